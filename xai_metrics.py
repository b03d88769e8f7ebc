"""Metrics of explanations, batched: faithfulness (removal curves with ROAD's noisy linear imputation,
MoRF, LeRF and the symmetric relevance gain; deletion/insertion; average drop/increase), localisation
against a ground-truth mask, the cascading-randomisation sanity check, agreement, and the border
share of a map's mass.

Conventions (stated once, used by every table):
- The score is the explained class's probability (``score="probability"``), read through
  ``xai_utils.predict_scores``, the one definition of the score being explained.
- Faithfulness orders positions by *signed* relevance (channels summed): the most positive
  evidence for the class is removed first. Grad-CAM, RISE and SISE maps are non-negative, so for
  them signed and absolute are the same.
- Agreement, the sanity check and localisation compare *absolute* values by default
  (``absolute=True``), for every method; signed IG is reported separately where it says more.

Axis key: N examples, T signal length, H, W image size, C channels, D positions (T or H*W),
R removed positions of one example, S steps of a curve, L layers.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import keras
import numpy as np
from scipy import sparse
from scipy.ndimage import gaussian_filter
from scipy.sparse.linalg import splu
from scipy.stats import rankdata

from xai_core import check_input, explained_classes, output_activation, predict_scores

__all__ = [
    "summary",
    "saliency_positions",
    "road_impute",
    "usable_cores",
    "removal_curves",
    "patch_ids",
    "patch_ranks",
    "deletion_insertion",
    "average_drop_increase",
    "average_drop_increase_topk",
    "relevance_mass_accuracy",
    "pointing_game",
    "spearman",
    "border_mass_share",
    "band_area_share",
    "cascading_randomization",
]

FILLS = ("zeros", "blur", "road")


def summary(values) -> dict:
    """Mean, standard error and count of per-example values."""
    v = np.asarray(values, np.float64)
    return {"mean": float(v.mean()), "sem": float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else 0.0,
            "n": int(len(v))}


def saliency_positions(maps, x_shape, *, absolute: bool = False) -> np.ndarray:
    """One relevance value per spatial position, float32 (N, D).

    Maps shaped like x (IG) have their channels summed (signed) or, with ``absolute``, the absolute
    values summed; Grad-CAM/RISE/SISE maps (N, T) or (N, H, W) are taken as they are (or their
    absolute values). Raises ValueError for a shape that matches neither, or NaN/inf.
    """
    maps = np.asarray(maps)
    if maps.dtype.kind not in "fiu":
        raise ValueError(f"maps must be numeric, got dtype {maps.dtype}")
    maps = maps.astype(np.float32)
    x_shape = tuple(x_shape)
    if absolute:
        maps = np.abs(maps)
    if maps.shape == x_shape:
        maps = maps.sum(-1)                                                 # (N, T) or (N, H, W)
    if maps.shape != x_shape[:-1]:
        raise ValueError(f"maps have shape {maps.shape}, expected {x_shape[:-1]} (one value a position) or "
                         f"{x_shape} (shaped like x); pass the maps of these inputs")
    if not np.isfinite(maps).all():
        bad = np.flatnonzero(~np.isfinite(maps.reshape(len(maps), -1)).all(1))
        raise ValueError(f"maps have NaN or inf in example(s) {bad[:10].tolist()}; a metric of such a map "
                         "would be meaningless: explain again or drop those examples")
    return maps.reshape(len(maps), -1)                                      # (N, D)


def _check_positive_int(name, value, low=1):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")


# --- ROAD: noisy linear imputation (Rong et al., ICML 2022) ---

# Neighbour weights of the reference: 1/6 for an edge neighbour, 1/12 for a diagonal one (2D);
# 1/2 for each neighbour (1D). At the borders they are renormalised over the neighbours that exist.
_NEIGHBOURS = {
    1: [((-1,), 1 / 2), ((1,), 1 / 2)],
    2: [((-1, 0), 1 / 6), ((1, 0), 1 / 6), ((0, -1), 1 / 6), ((0, 1), 1 / 6),
        ((-1, -1), 1 / 12), ((-1, 1), 1 / 12), ((1, -1), 1 / 12), ((1, 1), 1 / 12)],
}


def _impute_example(x: np.ndarray, removed: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """Values of one example's removed positions, float64 (R, C), from one sparse linear system
    solved directly (LU) for all channels at once: each removed value is the weighted mean of its
    neighbours, removed or kept. x: (T, C) or (H, W, C); removed: bool (T,) or (H, W)."""
    spatial = np.asarray(removed.shape)
    unknown = np.flatnonzero(removed.ravel())                              # (R,)
    if unknown.size == removed.size:                                       # nothing kept to impute from
        return np.repeat(fallback[None], unknown.size, axis=0)
    index = np.full(removed.size, -1)
    index[unknown] = np.arange(unknown.size)
    coords = np.stack(np.unravel_index(unknown, removed.shape), axis=1)    # (R, d)
    neighbours, weights = [], []
    for offset, w in _NEIGHBOURS[removed.ndim]:
        q = coords + np.asarray(offset)                                     # (R, d)
        inside = np.all((q >= 0) & (q < spatial), axis=1)                   # (R,)
        neighbours.append(np.ravel_multi_index(tuple(np.clip(q, 0, spatial - 1).T), removed.shape))
        weights.append(np.where(inside, w, 0.0))
    neighbours = np.stack(neighbours, 1)                                    # (R, K)
    weights = np.stack(weights, 1)                                          # (R, K)
    weights /= weights.sum(1, keepdims=True)                                # renormalised at borders
    coupled = (index[neighbours] >= 0) & (weights > 0)                      # neighbour is removed too
    rows = np.broadcast_to(np.arange(unknown.size)[:, None], neighbours.shape)
    system = sparse.csc_matrix(
        (np.concatenate([np.ones(unknown.size), -weights[coupled]]),
         (np.concatenate([np.arange(unknown.size), rows[coupled]]),
          np.concatenate([np.arange(unknown.size), index[neighbours[coupled]]]))),
        shape=(unknown.size, unknown.size))                                  # (R, R): I - W_removed
    known = x.reshape(removed.size, -1)[neighbours]                         # (R, K, C)
    rhs = np.einsum("rk,rkc->rc", np.where(coupled, 0.0, weights), known)   # (R, C): W_kept x_kept
    return splu(system, permc_spec="MMD_ATA").solve(rhs)


def usable_cores() -> int:
    """The cores this process may run on (its affinity where the system tells it, else all)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def road_impute(x, removed, *, noise_std: float = 0.01, seed: int = 0, value_range: float | None = None,
                threads: int | None = None) -> np.ndarray:
    """ROAD's noisy linear imputation (Rong et al., ICML 2022, "A Consistent and Efficient Evaluation
    Strategy for Attribution Methods"): every removed position takes the weighted mean of its
    neighbours (2D: 1/6 per edge and 1/12 per diagonal neighbour; 1D: 1/2 each; renormalised at the
    borders), solved jointly for all removed positions of an example, then Gaussian noise is added
    to the imputed values only.

    Args:
        x: float (N, T, C) or (N, H, W, C).
        removed: bool (N, T) or (N, H, W): the positions to impute (all channels).
        noise_std: the noise's standard deviation for inputs scaled to [0, 1] (the reference's
            0.01); it is multiplied by ``value_range``.
        seed: seeds the noise (the same seed gives the same result).
        value_range: the data set's value range (255 for raw tiles); None: ``x.max() - x.min()``.
        threads: examples solved at once (SuperLU releases the GIL); None: one per core this
            process may use. The result does not depend on it.

    Returns:
        float32 shaped like x; kept positions are exactly x. An example with every position removed
        has nothing to impute from and takes the mean of x over the batch (plus the noise).
    """
    x = np.asarray(x)
    removed = np.asarray(removed)
    if x.dtype.kind not in "fiu" or x.ndim not in (3, 4):
        raise ValueError(f"x must be numeric (N, T, C) or (N, H, W, C), got {x.dtype} {x.shape}")
    if removed.dtype != bool:
        raise ValueError(f"removed must be a boolean array, got dtype {removed.dtype}; build it with a comparison")
    if removed.shape != x.shape[:-1]:
        raise ValueError(f"removed has shape {removed.shape}, expected {x.shape[:-1]} (x's positions)")
    x = x.astype(np.float64)
    if not np.isfinite(x).all():
        raise ValueError("x has NaN or inf values")
    if not (np.isfinite(noise_std) and noise_std >= 0):
        raise ValueError(f"noise_std must be a finite number >= 0, got {noise_std!r}")
    scale = float(x.max() - x.min()) if value_range is None else float(value_range)
    if not (np.isfinite(scale) and scale >= 0):
        raise ValueError(f"value_range must be a finite number >= 0, got {value_range!r}")
    fallback = x.reshape(-1, x.shape[-1]).mean(0)                           # (C,)
    rng = np.random.default_rng(seed)
    out = x.copy()
    todo = [i for i in range(len(x)) if removed[i].any()]
    # SuperLU releases the GIL, so the examples' systems are solved on every core; the noise is
    # drawn afterwards in the examples' order, so the result does not depend on the threads
    if threads is None:
        threads = usable_cores()
    elif isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
        raise ValueError(f"threads must be None or an int >= 1, got {threads!r}")
    workers = min(len(todo), int(threads))
    if workers > 1:
        with ThreadPoolExecutor(workers) as pool:
            solved = list(pool.map(lambda i: _impute_example(x[i], removed[i], fallback), todo))
    else:
        solved = [_impute_example(x[i], removed[i], fallback) for i in todo]
    for i, values in zip(todo, solved):                                      # values: (R, C)
        if noise_std > 0:
            values = values + rng.normal(0.0, noise_std * scale, values.shape)
        flat = out[i].reshape(-1, x.shape[-1])                              # a view: (D, C)
        flat[np.flatnonzero(removed[i].ravel())] = values
    return out.astype(np.float32)


def _fill_source(x, fill, blur_sigma):
    """What removed positions take, computed once for every step of a curve: the blurred copy of x
    (spatial axes only) for "blur", 0 for "zeros", the constant for a number, None for "road" (its
    values depend on which positions are removed)."""
    if isinstance(fill, str) and fill == "road":
        return None
    if isinstance(fill, str) and fill == "zeros":
        return np.float32(0.0)
    if isinstance(fill, str) and fill == "blur":
        return gaussian_filter(x, sigma=(0,) + (blur_sigma,) * (x.ndim - 2) + (0,))
    return np.float32(fill)


def _removed_input(x, removed, source, road):
    """x with the positions of ``removed`` (bool (N, T) or (N, H, W)) replaced by ``source`` (see
    :func:`_fill_source`), or, where it is None, by ROAD's noisy linear imputation (``road``: its
    keyword arguments)."""
    if source is None:
        return road_impute(x, removed, **road)
    return np.where(removed[..., None], source, x).astype(np.float32)


def _check_fill(fill, blur_sigma):
    if isinstance(fill, str):
        if fill not in FILLS:
            raise ValueError(f"fill must be one of {FILLS} or a number, got {fill!r}")
    elif isinstance(fill, bool) or not isinstance(fill, (int, float, np.number)) or not np.isfinite(fill):
        raise ValueError(f"fill must be one of {FILLS} or a finite number, got {fill!r}")
    if isinstance(fill, str) and fill == "blur" and not (np.isfinite(blur_sigma) and blur_sigma > 0):
        raise ValueError(f"blur_sigma must be > 0, got {blur_sigma!r}")


def _check_score(score):
    if score not in ("probability", "logit"):
        raise ValueError(f"score must be 'probability' or 'logit', got {score!r}")


def _picked(model, x, classes, score, batch_size):
    """The explained class's score, float32 (N,). With ``score="probability"`` the model's output
    must be probabilities: in [0, 1] and, for several classes, summing to 1."""
    s = predict_scores(model, x, score=score, batch_size=batch_size, check=False)
    if score == "probability":
        # a sigmoid head (one unit, or several independent labels) gives each class its own
        # probability; any other must give rows summing to 1
        sigmoid = output_activation(model) == "sigmoid"
        sums_ok = sigmoid or s.shape[1] == 1 or np.allclose(s.sum(1), 1.0, atol=1e-3)
        in_range = np.all((s >= -1e-6) & (s <= 1 + 1e-6))
        if not in_range:
            raise ValueError(f"the model's outputs lie in [{s.min():.3g}, {s.max():.3g}], outside [0, 1], but these "
                             "metrics read the class probability: end the model in a softmax (or sigmoid), or pass "
                             "score='logit'")
        if not sums_ok:
            raise ValueError(f"the model's {s.shape[1]} outputs lie in [0, 1] but do not sum to 1 (sums "
                             f"{s.sum(1).min():.3g} to {s.sum(1).max():.3g}) and its last layer is no sigmoid, so they "
                             "are not one distribution over the classes: end the model in a softmax (one label) or a "
                             "sigmoid (independent labels), or pass score='logit'")
    return s[np.arange(len(x)), classes]


def _ranks(relevance):
    """Rank of each position in each map, int (N, D): 0 = most relevant (ties: first position first)."""
    rank = np.empty_like(relevance, np.int64)
    np.put_along_axis(rank, np.argsort(-relevance, axis=1, kind="stable"), np.arange(relevance.shape[1])[None], axis=1)
    return rank


def patch_ids(spatial_shape, patch: int) -> np.ndarray:
    """The patch of each position, int (D,): positions t // patch in 1D, (i // patch, j // patch) in
    2D, numbered in row-major order (edge patches may be smaller)."""
    if isinstance(patch, bool) or not isinstance(patch, (int, np.integer)) or patch < 1:
        raise ValueError(f"patch must be a positive int (positions a side of a patch), got {patch!r}")
    if patch > min(spatial_shape):
        raise ValueError(f"patch {patch} is larger than the input's spatial size {tuple(spatial_shape)}")
    if len(spatial_shape) == 1:
        return np.arange(spatial_shape[0]) // patch
    h, w = spatial_shape
    cols = -(-w // patch)
    return ((np.arange(h)[:, None] // patch) * cols + np.arange(w)[None, :] // patch).ravel()


def patch_ranks(relevance: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Ranks (0 = most relevant) when whole patches are ranked by their mean relevance: the patches'
    positions come together, the best patch first (ties: lower patch number, then position)."""
    n, d = relevance.shape
    counts = np.bincount(ids)                                                # (P,)
    rank = np.empty((n, d), np.int64)
    for i in range(n):
        means = np.bincount(ids, weights=relevance[i]) / counts              # (P,)
        order = np.lexsort((np.arange(d), ids, -means[ids]))                 # by patch mean, patch, position
        rank[i, order] = np.arange(d)
    return rank


def _curve_inputs(model, x, maps, class_index, steps, fill, blur_sigma, score, batch_size, patch=1):
    """Checks shared by the curves; returns (x, relevance (N, D), classes, ranks, cuts (S+1,))."""
    x = check_input(model, x)
    _check_positive_int("steps", steps)
    _check_fill(fill, blur_sigma)
    _check_score(score)
    _check_positive_int("batch_size", batch_size)
    ids = patch_ids(x.shape[1:-1], patch)
    relevance = saliency_positions(maps, x.shape)                             # (N, D)
    classes = explained_classes(model, x, class_index, batch_size=batch_size)
    d = relevance.shape[1]
    rank = _ranks(relevance) if patch == 1 else patch_ranks(relevance, ids)
    return x, relevance, classes, rank, np.round(np.linspace(0, d, steps + 1)).astype(int)


# --- removal curves with ROAD: MoRF, LeRF and the symmetric relevance gain ---

def removal_curves(model, x, maps, class_index=None, *, steps: int = 10, fill: str | float = "road",
                   noise_std: float = 0.01, value_range: float | None = None, seed: int = 0,
                   blur_sigma: float = 5.0, score: str = "probability", batch_size: int = 256,
                   patch: int = 1) -> dict:
    """Remove positions in the order of the map, ``D / steps`` more at a time, and follow the class
    score: most relevant first (MoRF, lower area is more faithful) and least relevant first (LeRF,
    higher is better). With ``fill="road"`` (the default) removed positions are imputed by
    :func:`road_impute`, so the model sees inputs close to its data at every step (Rong et al., ICML
    2022). The symmetric relevance gain ``srg = lerf_auc - morf_auc`` (Blücher et al., TMLR 2024)
    summarises both (higher is better; 0 for a random order, in expectation).

    Args:
        maps: the maps of ``x`` (see :func:`saliency_positions`; ordered by signed relevance).
        steps: removal steps; the curves hold the score after removing 0, 1/steps, ..., 1 of the positions.
        noise_std, value_range, seed: ROAD's noise (see :func:`road_impute`); step k uses ``seed + k``.
        fill: "road", "zeros", "blur" or a number.
        patch: the granularity of the ranking: 1 ranks positions (pixels); p > 1 averages the map
            over p x p patches (p positions in 1D) and removes whole patches, best first, so that a
            pixel-sharp map and a coarse one are ranked at the same granularity.

    Returns:
        dict with ``morf_curve`` and ``lerf_curve`` float32 (N, steps + 1), per-example ``morf_auc``,
        ``lerf_auc`` and ``srg`` (trapezoid areas over a [0, 1] axis), and ``fractions`` (steps + 1,).
    """
    x, relevance, classes, rank, cuts = _curve_inputs(model, x, maps, class_index, steps, fill, blur_sigma,
                                                      score, batch_size, patch)
    n, d = relevance.shape
    road = {"noise_std": noise_std, "value_range": value_range}
    source = _fill_source(x, fill, blur_sigma)
    out = {"fractions": cuts / d}
    for name, order in (("morf", rank), ("lerf", d - 1 - rank)):
        curve = np.empty((n, steps + 1), np.float32)
        for k, cut in enumerate(cuts):
            removed = (order < cut).reshape(x.shape[:-1])                    # (N, T) or (N, H, W)
            filled = x if cut == 0 else _removed_input(x, removed, source, dict(road, seed=seed + k))
            curve[:, k] = _picked(model, filled, classes, score, batch_size)
        out[f"{name}_curve"] = curve
        out[f"{name}_auc"] = np.trapezoid(curve, x=out["fractions"], axis=1)
    out["srg"] = out["lerf_auc"] - out["morf_auc"]
    return out


# --- deletion and insertion (Petsiuk et al., BMVC 2018) ---

def deletion_insertion(model, x, maps, class_index=None, *, steps: int = 20, fill: str | float = "zeros",
                       blur_sigma: float = 5.0, noise_std: float = 0.01, value_range: float | None = None,
                       seed: int = 0, score: str = "probability", batch_size: int = 256) -> dict:
    """Deletion: remove the most relevant positions first, ``D / steps`` at a time, replacing them
    with ``fill`` ("zeros", a number, "blur": a Gaussian-blurred copy, or "road": noisy linear
    imputation, see :func:`road_impute`). Insertion: start from the fully removed input and put the
    most relevant positions back first. The curves hold the class score after 0, 1, ..., steps
    moves; the AUC is the trapezoid area over a [0, 1] x-axis.

    Returns dict with ``deletion_curve`` and ``insertion_curve`` float32 (N, steps + 1), and
    per-example ``deletion_auc`` (lower is more faithful) and ``insertion_auc`` (higher is better).
    """
    x, relevance, classes, rank, cuts = _curve_inputs(model, x, maps, class_index, steps, fill, blur_sigma,
                                                      score, batch_size)
    n = len(x)
    road = {"noise_std": noise_std, "value_range": value_range}
    source = _fill_source(x, fill, blur_sigma)
    curves = {}
    for name in ("deletion", "insertion"):
        curve = np.empty((n, steps + 1), np.float32)
        for k, cut in enumerate(cuts):
            moved = rank < cut                                               # (N, D)
            removed = (moved if name == "deletion" else ~moved).reshape(x.shape[:-1])
            filled = x if not removed.any() else _removed_input(x, removed, source, dict(road, seed=seed + k))
            curve[:, k] = _picked(model, filled, classes, score, batch_size)
        curves[f"{name}_curve"] = curve
        curves[f"{name}_auc"] = np.trapezoid(curve, dx=1.0 / steps, axis=1)
    return curves


# --- average drop and increase in confidence (Chattopadhyay et al., WACV 2018) ---

def _drop_increase(y, o):
    return {"drop": np.maximum(0, y - o) / np.maximum(y, 1e-12), "increase": (o > y).astype(np.float32),
            "original": y, "explained": o}


def average_drop_increase(model, x, maps, class_index=None, *, score: str = "probability",
                          batch_size: int = 256) -> dict:
    """The paper's definition: the input multiplied by the explanation map, scaled to [0, 1], and the
    class score before (Y) and after (O).

    The map is taken in absolute value (channels summed for IG-like maps) and divided by its
    maximum, so its ratios survive (a map of zeros keeps nothing); it multiplies every channel.

    Returns dict with per-example ``drop`` = max(0, Y - O) / Y (the average drop is its mean x 100,
    lower is better) and ``increase`` = 1[O > Y] (the rate of increase in confidence is its mean x 100,
    higher is better), ``original`` Y and ``explained`` O.
    """
    x = check_input(model, x)
    _check_score(score)
    _check_positive_int("batch_size", batch_size)
    relevance = saliency_positions(maps, x.shape, absolute=True)              # (N, D) >= 0
    classes = explained_classes(model, x, class_index, batch_size=batch_size)
    top = relevance.max(1, keepdims=True)
    weight = np.where(top > 0, relevance / np.where(top > 0, top, 1), 0.0)   # (N, D) in [0, 1]
    explained = (x * weight.reshape(x.shape[:-1] + (1,))).astype(np.float32)
    return _drop_increase(_picked(model, x, classes, score, batch_size),
                          _picked(model, explained, classes, score, batch_size))


def average_drop_increase_topk(model, x, maps, class_index=None, *, keep_fraction: float = 0.15,
                               fill: str | float = "road", blur_sigma: float = 5.0, noise_std: float = 0.01,
                               value_range: float | None = None, seed: int = 0, score: str = "probability",
                               batch_size: int = 256) -> dict:
    """A variant of :func:`average_drop_increase`: keep the top ``keep_fraction`` of positions of each
    map (signed relevance) and remove the rest with ``fill`` ("road" by default, so the model sees
    an input close to its data; "zeros", "blur" or a number otherwise). Same outputs."""
    if isinstance(keep_fraction, bool) or not (isinstance(keep_fraction, (int, float)) and 0 < keep_fraction <= 1):
        raise ValueError(f"keep_fraction must be in (0, 1], got {keep_fraction!r}")
    x, relevance, classes, rank, _ = _curve_inputs(model, x, maps, class_index, 1, fill, blur_sigma, score, batch_size)
    k = max(1, int(round(keep_fraction * relevance.shape[1])))
    removed = (rank >= k).reshape(x.shape[:-1])
    kept = _removed_input(x, removed, _fill_source(x, fill, blur_sigma),
                          {"noise_std": noise_std, "value_range": value_range, "seed": seed})
    return _drop_increase(_picked(model, x, classes, score, batch_size),
                          _picked(model, kept, classes, score, batch_size))


# --- localisation against a ground-truth mask ---

def _relevance_and_masks(maps, masks, x_shape, absolute):
    """Maps and ground truth as (N, D) relevance and (N, D) bool, checked to match."""
    masks = np.asarray(masks)
    if masks.dtype != bool:
        raise ValueError(f"masks must be boolean (True on the ground truth), got dtype {masks.dtype}; "
                         "convert with masks.astype(bool) if 0/1 is what you mean")
    if x_shape is None:
        maps = np.asarray(maps)
        x_shape = maps.shape + (1,)                                         # maps are one value a position
    rel = saliency_positions(maps, x_shape, absolute=absolute)              # (N, D)
    if masks.shape != tuple(x_shape[:-1]):
        raise ValueError(f"masks have shape {masks.shape}, expected {tuple(x_shape[:-1])}: one boolean a "
                         "position, one mask per map")
    return rel, masks.reshape(len(masks), -1)


def relevance_mass_accuracy(maps, masks, x_shape=None, *, absolute: bool = True) -> np.ndarray:
    """Share of the relevance mass that falls inside the ground truth (Arras et al. 2022): float (N,).

    With ``absolute`` (the default, as for every method in the tables) the mass is |map|; otherwise
    only the positive relevance counts. An example with no mass scores 0. ``x_shape``: the inputs'
    shape when the maps are shaped like x (IG); None when maps are one value a position.
    """
    rel, masks = _relevance_and_masks(maps, masks, x_shape, absolute)
    pos = np.maximum(rel, 0)
    total = pos.sum(1)
    return np.where(total > 0, (pos * masks).sum(1) / np.where(total > 0, total, 1), 0.0)


def pointing_game(maps, masks, x_shape=None, *, absolute: bool = True) -> np.ndarray:
    """1 where the map's maximum (of |map| by default) lies inside the ground truth (Zhang et al.
    2018), else 0: (N,). Ties count as a hit only if every tied maximum is inside."""
    rel, masks = _relevance_and_masks(maps, masks, x_shape, absolute)
    top = rel == rel.max(1, keepdims=True)
    return np.all(~top | masks, axis=1).astype(np.float32)


# --- a map's share on the image's frame ---

def band_area_share(spatial_shape, band: int) -> float:
    """Share of an (H, W) image's area in its outer band of ``band`` pixels (12 of 150: 0.294)."""
    h, w = (int(v) for v in spatial_shape)
    if isinstance(band, bool) or not (isinstance(band, (int, np.integer)) and 0 < band and 2 * band < min(h, w)):
        raise ValueError(f"band must be an int in (0, {min(h, w) // 2}) for a {h} x {w} image, got {band!r}")
    return 1.0 - (h - 2 * band) * (w - 2 * band) / (h * w)


def border_mass_share(maps, band: int = 12) -> np.ndarray:
    """Share of each map's mass that lies in the image's outer band of ``band`` pixels: float64 (N,).

    A map that attends to the tile's frame rather than its content scores well above
    :func:`band_area_share`. ``maps``: non-negative float (N, H, W), such as Grad-CAM's. A map with
    no mass (all zeros) has no share: NaN, so that summaries skip it instead of counting it as 0.
    """
    m = np.asarray(maps, np.float64)
    if m.ndim != 3:
        raise ValueError(f"maps must be (N, H, W), got shape {m.shape}")
    if not np.isfinite(m).all():
        raise ValueError("maps contain NaN or inf; explain again or drop those examples")
    if (m < 0).any():
        raise ValueError("maps must be non-negative (mass); pass Grad-CAM-like maps or np.abs(maps)")
    band_area_share(m.shape[1:], band)                                    # checks band
    total = m.sum(axis=(1, 2))                                            # (N,)
    inner = m[:, band:-band, band:-band].sum(axis=(1, 2))                 # (N,)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, (total - inner) / total, np.nan)


# --- agreement and the sanity check ---

def spearman(a, b) -> np.ndarray:
    """Spearman rank correlation per example between two sets of maps (N, ...): float (N,).
    A constant map has no ranks to correlate: 0."""
    a = np.asarray(a, np.float64).reshape(len(a), -1)
    b = np.asarray(b, np.float64).reshape(len(b), -1)
    if a.shape != b.shape:
        raise ValueError(f"maps differ in shape: {a.shape} vs {b.shape}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("maps have NaN or inf values; explain again or drop those examples")
    ra, rb = rankdata(a, axis=1), rankdata(b, axis=1)
    ra -= ra.mean(1, keepdims=True)
    rb -= rb.mean(1, keepdims=True)
    denom = np.sqrt((ra ** 2).sum(1) * (rb ** 2).sum(1))
    return np.where(denom > 0, (ra * rb).sum(1) / np.where(denom > 0, denom, 1), 0.0)


def _randomisation_groups(model) -> list:
    """Layers re-drawn together in the cascade, top (output side) first: each layer with a kernel
    (Conv, Dense), with the batch normalisation that follows it; nested models expanded."""
    flat = []

    def walk(m):
        for layer in m.layers:
            if isinstance(layer, keras.Model):
                walk(layer)
            else:
                flat.append(layer)
    walk(model)
    groups = []
    for layer in flat:
        if any(getattr(layer, k, None) is not None for k in ("kernel", "depthwise_kernel", "pointwise_kernel")):
            groups.append([layer])                       # a layer with a kernel (separable ones included)
        elif layer.trainable_weights or isinstance(layer, _NORMALISATIONS):
            # learned parameters without a kernel (a normalisation's scale and shift, a PReLU's
            # slopes, a layer scale): re-drawn with the kernel layer before them
            if groups:
                groups[-1].append(layer)
            else:
                groups.append([layer])
    return groups[::-1]


_NORMALISATIONS = (keras.layers.BatchNormalization, keras.layers.LayerNormalization, keras.layers.GroupNormalization)


def _randomise(layer, rng):
    """Re-draw a layer's weights: He-normal kernels, small random biases; a normalisation (batch,
    layer or group) gets random scale and shift around (1, 0) and, for batch normalisation, the
    statistics of its initial state (mean 0, variance 1)."""
    if isinstance(layer, _NORMALISATIONS):
        new = []
        for w in layer.weights:
            v = w.numpy()
            name = w.path if hasattr(w, "path") else w.name
            if "moving_mean" in name:
                new.append(np.zeros_like(v))
            elif "moving_variance" in name:
                new.append(np.ones_like(v))
            elif "gamma" in name:
                new.append((1.0 + rng.normal(0.0, 0.1, v.shape)).astype(v.dtype))
            else:
                new.append(rng.normal(0.0, 0.1, v.shape).astype(v.dtype))
        layer.set_weights(new)
        return
    new = []
    for w in layer.weights:
        v = w.numpy()
        scale = np.sqrt(2.0 / max(1, np.prod(v.shape[:-1]))) if v.ndim > 1 else 0.1
        new.append(rng.normal(0.0, scale, v.shape).astype(v.dtype))
    layer.set_weights(new)


def cascading_randomization(model, x, explain: Callable, *, class_index=None, seed: int = 0,
                            absolute: bool = True) -> dict:
    """Sanity check (Adebayo et al., NeurIPS 2018): randomise the weights of a copy of the model
    from the top layer down, one layer more at a time, and compare the explanations with the
    original ones by Spearman rank correlation. A method that passes decorrelates quickly.

    Each step re-draws one layer with a kernel together with the layers after it that have learned
    parameters but no kernel (batch, layer or group normalisation: scale, shift and statistics; a
    PReLU...), so that no learned parameter survives the full cascade.

    Args:
        model: the trained model (left untouched: the randomisation happens on a clone).
        x: inputs (N, ...).
        explain: ``explain(model, x, class_index) -> maps``; e.g. ``lambda m, x, c: grad_cam(m, x, c)``.
        class_index: classes explained, fixed across the cascade (None: the trained model's predictions).
        absolute: compare |maps| (the default, for every method), else signed maps.

    Returns:
        dict with ``layers`` (names of each step's kernel layer, top first), ``correlation`` float
        (L, N): Spearman after randomising up to and including each step, and ``mean`` (L,).
    """
    x = check_input(model, x)
    if not callable(explain):
        raise ValueError(f"explain must be a function (model, x, class_index) -> maps, got {type(explain).__name__}")
    classes = explained_classes(model, x, class_index)
    reference = np.asarray(explain(model, x, classes))
    reference = np.abs(reference) if absolute else reference
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    rng = np.random.default_rng(seed)
    names, corr = [], []
    for group in _randomisation_groups(clone):
        for layer in group:
            _randomise(layer, rng)
        maps = np.asarray(explain(clone, x, classes))
        corr.append(spearman(reference, np.abs(maps) if absolute else maps))
        names.append(group[0].name)
    corr = np.asarray(corr)
    return {"layers": names, "correlation": corr, "mean": corr.mean(1)}
