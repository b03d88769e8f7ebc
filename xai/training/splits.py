"""Validation splits of a training set: stratified by class, or grouped, keeping every group (e.g. the
source image of a tile) whole on one side.

Axis key: N examples, K classes, G groups, M groups that may change side, V val groups, T train groups.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["stratified_split", "grouped_split"]


def stratified_split(y: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val) with ``val_fraction`` of each class in val, chosen by ``seed``."""
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    rng = np.random.default_rng(seed)
    train, val = [], []
    for label in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == label))
        n_val = int(round(len(idx) * val_fraction))
        val.append(idx[:n_val]), train.append(idx[n_val:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


# --- grouped split ---

_ONE_GROUP_CLASSES = ("raise", "train")
_MISSING_PENALTY = 1e3      # a class absent from one side costs more than any deviation of the shares can
_MAX_SWAPS = 200_000        # swaps weighed a step (val groups x train groups); above it, a seeded sample


def grouped_split(y: np.ndarray, groups: np.ndarray, val_fraction: float, seed: int, *,
                  one_group_classes: str = "raise") -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val) that keep every group whole on one side, with every class on both sides
    and each class's share in val close to ``val_fraction``, chosen by ``seed``.

    For tiles cut from larger images, the groups are the source images: neighbouring windows of one
    image share stain, focus and tissue, so a validation tile whose image is also in training is
    nearly a training tile. Groups may hold several classes.

    The search: groups are added to val in a seeded random order where that lowers the cost, then
    single moves and swaps of groups between the sides are made, the best first, until none lowers it.
    The cost is the sum over classes of (share in val - val_fraction)^2, plus a penalty for each class
    absent from one side; every class with groups enough ends on both sides.

    Args:
        y: int (N,) labels.
        groups: str or int (N,) group of each example (e.g. ``hmt_utils.TileGroups.source_image``).
        val_fraction: the share of each class wanted in val, in (0, 1).
        seed: seeds the order of the search; other seeds give other splits where the groups allow.
        one_group_classes: what to do with a class whose examples all lie in one group, which cannot be
            on both sides: "raise" (the default) stops with an error naming it; "train" keeps that group
            in training, and the class is absent from val.

    Returns:
        ``(train, val)``: sorted int64 index arrays, disjoint, covering all N examples.

    Raises:
        ValueError: y or groups of the wrong shape or dtype, val_fraction outside (0, 1), a class in one
            group only (with "raise"), or classes the groups do not allow on both sides.
    """
    y, groups = _check_grouped_inputs(y, groups, val_fraction, one_group_classes)
    classes, y_index = np.unique(y, return_inverse=True)
    names, group_index = np.unique(groups, return_inverse=True)
    k = len(classes)
    counts = np.bincount(group_index * k + y_index, minlength=len(names) * k).reshape(len(names), k)  # (G, K)
    per_class = counts.sum(0)                                                  # (K,)
    n_groups = (counts > 0).sum(0)                                             # (K,) groups holding each class
    lonely = np.flatnonzero(n_groups == 1)
    if len(lonely) and one_group_classes == "raise":
        raise ValueError(_one_group_message(classes, names, counts, lonely))
    forced = (counts[:, lonely] > 0).any(1)                                    # (G,) groups that must stay in training
    judged = n_groups >= 2                                                     # (K,) classes that must be on both sides
    cost = _split_cost(per_class, judged, val_fraction)
    in_val, v = _search_split(counts, forced, cost, np.random.default_rng(seed))
    absent = classes[judged & ((v == 0) | (v == per_class))].tolist()
    if absent:
        raise ValueError(f"classes {absent} cannot be put on both sides with whole groups: their groups are shared "
                         "with classes held in training. Gather more groups of them, or use a stratified split.")
    val = np.flatnonzero(in_val[group_index])
    train = np.flatnonzero(~in_val[group_index])
    return train.astype(np.int64), val.astype(np.int64)


def _one_group_message(classes, names, counts, lonely) -> str:
    """The error for classes whose examples all lie in one group (``one_group_classes="raise"``)."""
    per_class = counts.sum(0)
    which = ", ".join(f"class {classes[c]} ({per_class[c]} examples, all in group {names[counts[:, c] > 0][0].tolist()!r})"
                      for c in lonely)
    return (f"{which}: a class in one group cannot be on both sides of a grouped split. Gather more "
            "groups (source images) of it, or pass one_group_classes='train' to keep it in training "
            "only (it is then absent from validation).")


def _split_cost(per_class, judged, val_fraction: float) -> Callable:
    """The search's cost of val holding ``v`` examples of each class: ``cost(v (..., K)) -> (...)``."""
    def cost(v):
        share = v[..., judged] / per_class[judged]
        missing = (v[..., judged] == 0) | (v[..., judged] == per_class[judged])
        return ((share - val_fraction) ** 2).sum(-1) + _MISSING_PENALTY * missing.sum(-1)
    return cost


def _search_split(counts, forced, cost: Callable, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``(in_val bool (G,), v int (K,) examples of each class in val)``: a seeded greedy start, then
    the best move or swap of groups between the sides, until none lowers ``cost``."""
    n = len(counts)
    in_val, v = np.zeros(n, bool), np.zeros(counts.shape[1], np.int64)
    for g in rng.permutation(n):                                               # a seeded greedy start
        if not forced[g] and cost(v + counts[g]) < cost(v):
            in_val[g], v = True, v + counts[g]
    for _ in range(10 * n):                                                    # then the best move or swap, until none helps
        movable = np.flatnonzero(~forced)
        moves = v + np.where(in_val[movable, None], -1, 1) * counts[movable]    # (M, K): one group changes side
        val_g, train_g = np.flatnonzero(in_val), np.flatnonzero(~in_val & ~forced)
        if len(val_g) * len(train_g) > _MAX_SWAPS:                             # many groups: a seeded sample of swaps
            train_g = np.sort(rng.choice(train_g, max(1, _MAX_SWAPS // max(len(val_g), 1)), replace=False))
        swaps = v - counts[val_g][:, None] + counts[train_g][None]             # (V, T, K): one out, one in
        best_move = int(np.argmin(cost(moves))) if len(movable) else None
        swap_costs = cost(swaps).ravel()
        best_swap = int(np.argmin(swap_costs)) if swap_costs.size else None
        now = cost(v)
        move_cost = cost(moves[best_move]) if best_move is not None else np.inf
        swap_cost = swap_costs[best_swap] if best_swap is not None else np.inf
        if min(move_cost, swap_cost) >= now - 1e-12:
            break
        if move_cost <= swap_cost:
            g = movable[best_move]
            in_val[g], v = not in_val[g], moves[best_move]
        else:
            i, j = divmod(best_swap, len(train_g))
            in_val[val_g[i]], in_val[train_g[j]], v = False, True, swaps[i, j]
    return in_val, v


def _check_grouped_inputs(y, groups, val_fraction, one_group_classes) -> tuple[np.ndarray, np.ndarray]:
    y, groups = np.asarray(y), np.asarray(groups)
    if y.ndim != 1 or y.dtype.kind not in "iu" or len(y) < 2:
        raise ValueError(f"y must be int labels of shape (N,) with N >= 2, got {y.dtype} {y.shape}")
    if groups.shape != y.shape:
        raise ValueError(f"groups must hold one group per example: expected shape {y.shape}, got {groups.shape}; "
                         "pass e.g. the source image of each tile (hmt_utils.load_hmt(..., groups=True))")
    if groups.dtype.kind == "O" and not all(isinstance(g, (str, int, np.integer)) for g in groups):
        bad = next(g for g in groups if not isinstance(g, (str, int, np.integer)))
        raise ValueError(f"groups must be str or int ids, got an object array holding {bad!r}")
    if groups.dtype.kind not in "USiuO":
        raise ValueError(f"groups must be str or int ids, got dtype {groups.dtype}; map them to str or int "
                         "(float ids compare badly, NaN is never equal to itself)")
    if groups.dtype.kind == "O":
        groups = groups.astype(str)
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    if one_group_classes not in _ONE_GROUP_CLASSES:
        raise ValueError(f"one_group_classes must be one of {_ONE_GROUP_CLASSES}, got {one_group_classes!r}")
    return y, groups
