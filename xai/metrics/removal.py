"""Faithfulness: remove what a map calls relevant and follow the class score. Removal curves with
ROAD's noisy linear imputation (MoRF, LeRF and the symmetric relevance gain), deletion / insertion,
and the average drop / increase in confidence.

Conventions (stated once, used by every table):
- The score is the explained class's probability (``score="probability"``), read through
  :func:`xai.core.predict_scores`, the one definition of the score being explained.
- Positions are ordered by *signed* relevance (channels summed): the most positive evidence for
  the class is removed first. Grad-CAM, RISE and SISE maps are non-negative, so for them signed and
  absolute are the same.
- ROAD's noise is ``noise_std`` times ``noise_scale``, the span of the data's values (255 for raw
  tiles): the reference's 0.01 is meant for inputs scaled to [0, 1].

Axis key: N examples, T signal length, H, W image size, C channels, D positions (T or H*W),
R removed positions of one example, S steps of a curve.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy import sparse
from scipy.ndimage import gaussian_filter
from scipy.sparse.linalg import splu

from xai.core import SCORES, check_choice, check_input, check_number, explained_classes, predict_scores
from xai.layers import output_activation
from xai.maps import saliency_positions

__all__ = [
    "FILLS",
    "road_impute",
    "usable_cores",
    "removal_curves",
    "patch_ids",
    "patch_ranks",
    "deletion_insertion",
    "average_drop_increase",
    "average_drop_increase_topk",
]

FILLS = ("zeros", "blur", "road")


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


def road_impute(x, removed, *, noise_std: float = 0.01, seed: int = 0, noise_scale: float | None = None,
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
            0.01); it is multiplied by ``noise_scale``.
        seed: seeds the noise (the same seed gives the same result).
        noise_scale: the span of the data set's values, hi - lo (255 for raw tiles), which scales
            ``noise_std``; None: ``x.max() - x.min()`` of this batch.
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
    check_number("noise_std", noise_std, low=0)
    if noise_scale is not None:
        check_number("noise_scale", noise_scale, low=0)
    scale = float(x.max() - x.min()) if noise_scale is None else float(noise_scale)
    if not (np.isfinite(scale) and scale >= 0):
        raise ValueError(f"noise_scale must be a finite number >= 0 (the span of the data's values, e.g. 255), got {noise_scale!r}")
    fallback = x.reshape(-1, x.shape[-1]).mean(0)                           # (C,)
    rng = np.random.default_rng(seed)
    out = x.copy()
    todo = [i for i in range(len(x)) if removed[i].any()]
    # SuperLU releases the GIL, so the examples' systems are solved on every core; the noise is
    # drawn afterwards in the examples' order, so the result does not depend on the threads
    if threads is None:
        threads = usable_cores()
    else:
        check_number("threads", threads, low=1, integer=True)
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
    if isinstance(fill, str) and fill == "blur":
        check_number("blur_sigma", blur_sigma, low=0, low_open=True)


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
    check_number("steps", steps, low=1, integer=True)
    _check_fill(fill, blur_sigma)
    check_choice(score, SCORES, "score")
    check_number("batch_size", batch_size, low=1, integer=True)
    ids = patch_ids(x.shape[1:-1], patch)
    relevance = saliency_positions(maps, x.shape)                             # (N, D)
    classes = explained_classes(model, x, class_index, batch_size=batch_size)
    d = relevance.shape[1]
    rank = _ranks(relevance) if patch == 1 else patch_ranks(relevance, ids)
    return x, relevance, classes, rank, np.round(np.linspace(0, d, steps + 1)).astype(int)


# --- removal curves with ROAD: MoRF, LeRF and the symmetric relevance gain ---

def removal_curves(model, x, maps, class_index=None, *, steps: int = 10, fill: str | float = "road",
                   noise_std: float = 0.01, noise_scale: float | None = None, seed: int = 0,
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
        noise_std, noise_scale, seed: ROAD's noise (see :func:`road_impute`); step k uses ``seed + k``.
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
    road = {"noise_std": noise_std, "noise_scale": noise_scale}
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
                       blur_sigma: float = 5.0, noise_std: float = 0.01, noise_scale: float | None = None,
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
    road = {"noise_std": noise_std, "noise_scale": noise_scale}
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
    check_choice(score, SCORES, "score")
    check_number("batch_size", batch_size, low=1, integer=True)
    relevance = saliency_positions(maps, x.shape, absolute=True)              # (N, D) >= 0
    classes = explained_classes(model, x, class_index, batch_size=batch_size)
    top = relevance.max(1, keepdims=True)
    weight = np.where(top > 0, relevance / np.where(top > 0, top, 1), 0.0)   # (N, D) in [0, 1]
    explained = (x * weight.reshape(x.shape[:-1] + (1,))).astype(np.float32)
    return _drop_increase(_picked(model, x, classes, score, batch_size),
                          _picked(model, explained, classes, score, batch_size))


def average_drop_increase_topk(model, x, maps, class_index=None, *, keep_fraction: float = 0.15,
                               fill: str | float = "road", blur_sigma: float = 5.0, noise_std: float = 0.01,
                               noise_scale: float | None = None, seed: int = 0, score: str = "probability",
                               batch_size: int = 256) -> dict:
    """A variant of :func:`average_drop_increase`: keep the top ``keep_fraction`` of positions of each
    map (signed relevance) and remove the rest with ``fill`` ("road" by default, so the model sees
    an input close to its data; "zeros", "blur" or a number otherwise). Same outputs."""
    check_number("keep_fraction", keep_fraction, low=0, high=1, low_open=True)
    x, relevance, classes, rank, _ = _curve_inputs(model, x, maps, class_index, 1, fill, blur_sigma, score, batch_size)
    k = max(1, int(round(keep_fraction * relevance.shape[1])))
    removed = (rank >= k).reshape(x.shape[:-1])
    kept = _removed_input(x, removed, _fill_source(x, fill, blur_sigma),
                          {"noise_std": noise_std, "noise_scale": noise_scale, "seed": seed})
    return _drop_increase(_picked(model, x, classes, score, batch_size),
                          _picked(model, kept, classes, score, batch_size))
