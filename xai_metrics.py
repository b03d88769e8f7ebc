"""Metrics of explanations, batched: faithfulness (deletion/insertion, average drop/increase),
localisation against a ground-truth mask, the cascading-randomisation sanity check, and agreement.

Each metric returns per-example values (and curves where there are curves); :func:`summary` turns
them into mean and standard error. All model scores go through ``xai_utils.predict_scores``, the
one definition of the score being explained.

Axis key: N examples, T signal length, H, W image size, C channels, D positions (T or H*W),
S steps of a curve, L layers.
"""
from __future__ import annotations

from typing import Callable

import keras
import numpy as np
from scipy.ndimage import gaussian_filter
from scipy.stats import rankdata

from xai_utils import _classes, check_input, predict_scores

__all__ = [
    "summary",
    "saliency_positions",
    "average_drop_increase",
    "deletion_insertion",
    "relevance_mass_accuracy",
    "pointing_game",
    "spearman",
    "cascading_randomization",
    "compare_methods",
    "comparison_table",
]


def summary(values) -> dict:
    """Mean, standard error and count of per-example values."""
    v = np.asarray(values, np.float64)
    return {"mean": float(v.mean()), "sem": float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else 0.0,
            "n": int(len(v))}


def saliency_positions(maps, x_shape) -> np.ndarray:
    """One relevance value per spatial position, float32 (N, D): channels summed for IG-like maps
    shaped like x, as they are; Grad-CAM/RISE/SISE maps (N, T) or (N, H, W) are taken as they are."""
    maps = np.asarray(maps, np.float32)
    if maps.shape == tuple(x_shape):
        maps = maps.sum(-1)                                                 # (N, T) or (N, H, W)
    if maps.shape != tuple(x_shape[:-1]):
        raise ValueError(f"maps have shape {maps.shape}, expected {tuple(x_shape[:-1])} or {tuple(x_shape)}")
    if not np.isfinite(maps).all():
        raise ValueError("maps have non-finite values")
    return maps.reshape(len(maps), -1)                                      # (N, D)


def _fill(x: np.ndarray, fill: str | float, blur_sigma: float) -> np.ndarray:
    """What a removed position becomes: zeros, a constant, or a blurred copy of the input."""
    if fill == "zeros":
        return np.zeros_like(x)
    if fill == "blur":
        sigma = (0,) + (blur_sigma,) * (x.ndim - 2) + (0,)                  # blur the spatial axes only
        return gaussian_filter(x, sigma=sigma).astype(np.float32)
    if isinstance(fill, (int, float)):
        return np.full_like(x, float(fill))
    raise ValueError(f"fill must be 'zeros', 'blur' or a number, got {fill!r}")


def _picked(model, x, classes, score, batch_size):
    s = predict_scores(model, x, score=score, batch_size=batch_size, check=False)
    return s[np.arange(len(x)), classes]


# --- average drop and increase in confidence (Chattopadhyay et al., WACV 2018) ---

def average_drop_increase(model, x, maps, class_index=None, *, keep_fraction: float = 0.15,
                          fill: str | float = "zeros", blur_sigma: float = 5.0, score: str = "probability",
                          batch_size: int = 256) -> dict:
    """Keep the top ``keep_fraction`` of positions of each map, fill the rest, and compare the
    class score before (Y) and after (O).

    Returns dict with per-example ``drop`` = max(0, Y - O) / Y (the average drop is its mean x 100)
    and ``increase`` = 1[O > Y] (the rate of increase in confidence is its mean x 100).
    """
    x = check_input(model, x)
    if not 0 < keep_fraction <= 1:
        raise ValueError(f"keep_fraction must be in (0, 1], got {keep_fraction}")
    relevance = saliency_positions(maps, x.shape)                             # (N, D)
    classes = _classes(model, x, class_index, "probability", batch_size)
    k = max(1, int(round(keep_fraction * relevance.shape[1])))
    order = np.argsort(-relevance, axis=1, kind="stable")[:, :k]             # (N, k) the top positions
    keep = np.zeros_like(relevance, bool)
    np.put_along_axis(keep, order, True, axis=1)
    keep = keep.reshape(x.shape[:-1] + (1,))
    kept = np.where(keep, x, _fill(x, fill, blur_sigma))
    y = _picked(model, x, classes, score, batch_size)
    o = _picked(model, kept, classes, score, batch_size)
    return {"drop": np.maximum(0, y - o) / np.maximum(y, 1e-12), "increase": (o > y).astype(np.float32),
            "original": y, "explained": o}


# --- deletion and insertion (Petsiuk et al., BMVC 2018) ---

def deletion_insertion(model, x, maps, class_index=None, *, steps: int = 20, fill: str | float = "zeros",
                       blur_sigma: float = 5.0, score: str = "probability", batch_size: int = 256) -> dict:
    """Deletion: remove the most relevant positions first, ``D / steps`` at a time, replacing them
    with ``fill`` ("zeros", a number, or "blur": a Gaussian-blurred copy). Insertion: start from the
    filled input and put the most relevant positions back first. The curves hold the class score
    after 0, 1, ..., steps moves; the AUC is the trapezoid area over a [0, 1] x-axis.

    Returns dict with ``deletion_curve`` and ``insertion_curve`` float32 (N, steps + 1), and
    per-example ``deletion_auc`` (lower is more faithful) and ``insertion_auc`` (higher is better).
    """
    x = check_input(model, x)
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    relevance = saliency_positions(maps, x.shape)                             # (N, D)
    classes = _classes(model, x, class_index, "probability", batch_size)
    n, d = relevance.shape
    filled = _fill(x, fill, blur_sigma)
    rank = np.empty_like(relevance, np.int64)                                # rank 0 = most relevant
    np.put_along_axis(rank, np.argsort(-relevance, axis=1, kind="stable"), np.arange(d)[None], axis=1)
    cuts = np.round(np.linspace(0, d, steps + 1)).astype(int)               # (S+1,) positions moved
    curves = {}
    for name, (start, end) in {"deletion": (x, filled), "insertion": (filled, x)}.items():
        curve = np.empty((n, steps + 1), np.float32)
        for s, cut in enumerate(cuts):
            moved = (rank < cut).reshape(x.shape[:-1] + (1,))               # (N, ..., 1)
            curve[:, s] = _picked(model, np.where(moved, end, start), classes, score, batch_size)
        curves[f"{name}_curve"] = curve
        curves[f"{name}_auc"] = np.trapezoid(curve, dx=1.0 / steps, axis=1)
    return curves


# --- localisation against a ground-truth mask ---

def _relevance_and_masks(maps, masks, x_shape):
    """Maps and ground truth as (N, D) relevance and (N, D) bool, checked to match."""
    masks = np.asarray(masks, bool)
    rel = saliency_positions(maps, x_shape) if x_shape is not None else \
        np.asarray(maps, np.float32).reshape(len(masks), -1)
    masks = masks.reshape(len(masks), -1)
    if rel.shape != masks.shape:
        raise ValueError(f"maps give {rel.shape} positions, masks {masks.shape}; expected one mask per map")
    return rel, masks


def relevance_mass_accuracy(maps, masks, x_shape=None) -> np.ndarray:
    """Share of the positive relevance that falls inside the ground truth (Arras et al. 2022):
    float (N,); an example with no positive relevance scores 0."""
    rel, masks = _relevance_and_masks(maps, masks, x_shape)
    pos = np.maximum(rel, 0)
    total = pos.sum(1)
    return np.where(total > 0, (pos * masks).sum(1) / np.where(total > 0, total, 1), 0.0)


def pointing_game(maps, masks, x_shape=None) -> np.ndarray:
    """1 where the map's maximum lies inside the ground truth (Zhang et al. 2018), else 0: (N,).
    Ties count as a hit only if every tied maximum is inside."""
    rel, masks = _relevance_and_masks(maps, masks, x_shape)
    top = rel == rel.max(1, keepdims=True)
    return np.all(~top | masks, axis=1).astype(np.float32)


# --- agreement and the sanity check ---

def spearman(a, b) -> np.ndarray:
    """Spearman rank correlation per example between two sets of maps (N, ...): float (N,)."""
    a = np.asarray(a, np.float64).reshape(len(a), -1)
    b = np.asarray(b, np.float64).reshape(len(b), -1)
    if a.shape != b.shape:
        raise ValueError(f"maps differ in shape: {a.shape} vs {b.shape}")
    ra, rb = rankdata(a, axis=1), rankdata(b, axis=1)
    ra -= ra.mean(1, keepdims=True)
    rb -= rb.mean(1, keepdims=True)
    denom = np.sqrt((ra ** 2).sum(1) * (rb ** 2).sum(1))
    return np.where(denom > 0, (ra * rb).sum(1) / np.where(denom > 0, denom, 1), 0.0)


def _weighted_layers(model) -> list:
    """Conv and Dense layers (those with a kernel), top (output side) first, nested models expanded.
    Batch-norm layers keep their statistics: randomising a kernel already destroys what they scale."""
    out = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            out.extend(reversed(_weighted_layers(layer)))
        elif getattr(layer, "kernel", None) is not None:
            out.append(layer)
    return out[::-1]


def cascading_randomization(model, x, explain: Callable, *, class_index=None, seed: int = 0,
                            absolute: bool = True) -> dict:
    """Sanity check (Adebayo et al., NeurIPS 2018): randomise the weights of a copy of the model
    from the top layer down, one layer more at a time, and compare the explanations with the
    original ones by Spearman rank correlation. A method that passes decorrelates quickly.

    Args:
        model: the trained model (left untouched: the randomisation happens on a clone).
        x: inputs (N, ...).
        explain: ``explain(model, x, class_index) -> maps``; e.g. ``lambda m, x, c: grad_cam(m, x, c)``.
        class_index: classes explained, fixed across the cascade (None: the trained model's predictions).
        absolute: compare |maps| (the paper's main variant), else signed maps.

    Returns:
        dict with ``layers`` (names, top first), ``correlation`` float (L, N): Spearman after
        randomising up to and including each layer, and ``mean`` (L,).
    """
    x = check_input(model, x)
    classes = _classes(model, x, class_index, "probability", 256)
    reference = np.asarray(explain(model, x, classes))
    reference = np.abs(reference) if absolute else reference
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    rng = np.random.default_rng(seed)
    names, corr = [], []
    for layer in _weighted_layers(clone):
        new = []
        for w in layer.weights:                     # He-normal kernels, small random biases
            v = w.numpy()
            scale = np.sqrt(2.0 / max(1, np.prod(v.shape[:-1]))) if v.ndim > 1 else 0.1
            new.append(rng.normal(0.0, scale, v.shape).astype(v.dtype))
        layer.set_weights(new)
        maps = np.asarray(explain(clone, x, classes))
        corr.append(spearman(reference, np.abs(maps) if absolute else maps))
        names.append(layer.name)
    corr = np.asarray(corr)
    return {"layers": names, "correlation": corr, "mean": corr.mean(1)}


# --- one call for the comparison table ---

def compare_methods(model, x, maps: dict, classes, *, masks=None, seconds: dict | None = None,
                    keep_fraction: float = 0.15, steps: int = 20, fill: str | float = "zeros",
                    batch_size: int = 256) -> dict:
    """Every metric for every method's maps on the same examples.

    Args:
        maps: method name -> maps for ``x`` (any shape :func:`saliency_positions` takes).
        classes: int (N,) the explained classes.
        masks: bool (N, D) ground truth, or None (no localisation metrics).
        seconds: method name -> seconds per example, copied into the results.

    Returns:
        method name -> dict of per-example arrays (``deletion_auc``, ``insertion_auc``, ``drop``,
        ``increase``, ``relevance_mass``, ``pointing``), the curves, agreement with each other method
        (``agreement_<other>``), and ``seconds_per_example``.
    """
    results = {}
    for name, m in maps.items():
        r = deletion_insertion(model, x, m, classes, steps=steps, fill=fill, batch_size=batch_size)
        r.update(average_drop_increase(model, x, m, classes, keep_fraction=keep_fraction, fill=fill,
                                       batch_size=batch_size))
        if masks is not None:
            r["relevance_mass"] = relevance_mass_accuracy(m, masks, x.shape)
            r["pointing"] = pointing_game(m, masks, x.shape)
        for other, m2 in maps.items():
            if other != name:
                r[f"agreement_{other}"] = spearman(saliency_positions(m, x.shape), saliency_positions(m2, x.shape))
        if seconds and name in seconds:
            r["seconds_per_example"] = seconds[name]
        results[name] = r
    return results


def comparison_table(results: dict, sanity: dict | None = None) -> str:
    """A Markdown table of :func:`compare_methods` results (mean ± standard error) and, if given,
    the sanity check's correlation after randomising every layer (method name -> cascade result)."""
    names = list(results)
    cols = [("deletion AUC ↓", "deletion_auc", 1), ("insertion AUC ↑", "insertion_auc", 1),
            ("average drop % ↓", "drop", 100), ("increase in confidence % ↑", "increase", 100)]
    if any("relevance_mass" in r for r in results.values()):
        cols += [("relevance mass ↑", "relevance_mass", 1), ("pointing game ↑", "pointing", 1)]
    head = ["method", "n"] + [c[0] for c in cols]
    if sanity:
        head.append("sanity: Spearman, all layers random ↓")
    head += [f"agreement with {o}" for o in names] + ["s / example"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name in names:
        r = results[name]
        row = [name, str(len(r["deletion_auc"]))]
        for _, key, scale in cols:
            s = summary(np.asarray(r[key]) * scale)
            row.append(f"{s['mean']:.3f} ± {s['sem']:.3f}" if scale == 1 else f"{s['mean']:.1f} ± {s['sem']:.1f}")
        if sanity:
            row.append(f"{sanity[name]['mean'][-1]:.3f}" if name in sanity else "-")
        row += ["-" if o == name else f"{np.mean(r[f'agreement_{o}']):.2f}" for o in names]
        row.append(f"{r['seconds_per_example']:.4f}" if "seconds_per_example" in r else "-")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)
