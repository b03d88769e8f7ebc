"""The sanity checks of model randomisation: the cascading test (Adebayo et al., NeurIPS 2018) and
the two repairs of Hedström et al. ("Sanity checks revisited", TMLR 2024): eMPRT, the rise in a map's
complexity when every layer is randomised, and sMPRT, the cascade from the input side with each map
averaged over noisy copies of the input (so that gradient noise does not pass for sensitivity).

Maps are compared in absolute value by default, for every method.

Axis key: N examples, L randomisation steps (layers with a kernel), S noisy samples.
"""
from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np

from xai.core import check_input, explained_classes
from xai.layers import all_layers
from xai.metrics.agreement import spearman

__all__ = ["cascading_randomization", "randomisation_layers", "map_entropy", "efficient_randomization",
           "smooth_randomization"]


def _randomisation_groups(model) -> list:
    """Layers re-drawn together in the cascade, top (output side) first: each layer with a kernel
    (Conv, Dense), with the batch normalisation that follows it; nested models expanded."""
    flat = [layer for layer in all_layers(model) if not isinstance(layer, keras.Model)]
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


def randomisation_layers(model) -> list[str]:
    """The names of the cascade's steps, top first: each layer with a kernel (its normalisation is
    re-drawn with it). ``cascading_randomization`` randomises down to each in turn."""
    return [group[0].name for group in _randomisation_groups(model)]


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
                            absolute: bool = True, return_maps: bool = False) -> dict:
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
        return_maps: also return the maps themselves, as the method gave them (signed where it is).

    Returns:
        dict with ``layers`` (names of each step's kernel layer, top first), ``correlation`` float
        (L, N): Spearman after randomising up to and including each step, and ``mean`` (L,); with
        ``return_maps``, ``maps`` (L + 1, N, ...): the original maps, then each step's.
    """
    x = check_input(model, x)
    if not callable(explain):
        raise ValueError(f"explain must be a function (model, x, class_index) -> maps, got {type(explain).__name__}")
    if not isinstance(return_maps, bool):
        raise ValueError(f"return_maps must be True or False, got {return_maps!r}")
    classes = explained_classes(model, x, class_index)
    original = np.asarray(explain(model, x, classes))
    reference = np.abs(original) if absolute else original
    clone = _randomised_clone(model)
    rng = np.random.default_rng(seed)
    names, corr, kept = [], [], [original]
    for group in _randomisation_groups(clone):
        for layer in group:
            _randomise(layer, rng)
        maps = np.asarray(explain(clone, x, classes))
        corr.append(spearman(reference, np.abs(maps) if absolute else maps))
        names.append(group[0].name)
        if return_maps:
            kept.append(maps)
    corr = np.asarray(corr)
    out = {"layers": names, "correlation": corr, "mean": corr.mean(1)}
    if return_maps:
        out["maps"] = np.stack(kept)
    return out


# --- Hedström et al. 2024: eMPRT and sMPRT ---

def _randomised_clone(model):
    """A copy of the model with its weights, to be randomised (the model explained stays untouched)."""
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    return clone


def map_entropy(maps, n_bins: int) -> np.ndarray:
    """The complexity of each map: the Shannon entropy (nats) of the histogram of its values in
    ``n_bins`` equal bins over its own range; float64 (N,). A constant map has entropy 0; the most
    complex, values spread evenly, ``log(n_bins)``."""
    m = np.asarray(maps, np.float64)
    if m.ndim < 2:
        raise ValueError(f"maps must be (N, ...) with one map a row, got shape {m.shape}; pass maps[None] for one map")
    m = m.reshape(len(m), -1)                                                # (N, D)
    if not np.isfinite(m).all():
        raise ValueError("maps have NaN or inf values; explain again or drop those examples")
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 2:
        raise ValueError(f"n_bins must be an int >= 2, got {n_bins!r}")
    out = np.zeros(len(m))
    for i, row in enumerate(m):
        if np.ptp(row) == 0:
            continue
        counts = np.histogram(row, bins=n_bins)[0]
        p = counts[counts > 0] / counts.sum()
        out[i] = float(-(p * np.log(p)).sum())
    return out


def _bins(maps, low: int = 10, high: int = 200) -> int:
    """Bins for :func:`map_entropy` by the Freedman-Diaconis rule on the maps' values pooled, in [low, high]."""
    values = np.asarray(maps, np.float64).ravel()
    q75, q25 = np.percentile(values, [75, 25])
    width = 2 * (q75 - q25) / len(values) ** (1 / 3)
    return int(np.clip(np.ceil(np.ptp(values) / width) if width > 0 else low, low, high))


def efficient_randomization(model, x, explain: Callable, *, class_index=None, seed: int = 0,
                            absolute: bool = True, n_bins: int | None = None) -> dict:
    """eMPRT (Hedström et al., TMLR 2024): how much more complex a method's maps become when every
    layer of the model is randomised: the entropy of each map of the fully randomised model over
    that of the trained model's (:func:`map_entropy`: the same number of bins, each map binned over
    its own range). Above 1: the maps lose their structure with the weights (a pass); about 1: they
    do not depend on them; below 1: the random model's maps are simpler, e.g. Grad-CAM's ReLU leaving
    a constant map (entropy 0) where no feature of the random model points to the class.

    Args:
        model, x, explain, class_index, seed, absolute: as :func:`cascading_randomization`.
        n_bins: histogram bins (None: Freedman-Diaconis on the trained model's maps, in [10, 200]).
    Returns:
        ``ratio`` float (N,), ``mean``, ``entropy_trained`` and ``entropy_random`` (N,), ``n_bins``.
    """
    x = check_input(model, x)
    if not callable(explain):
        raise ValueError(f"explain must be a function (model, x, class_index) -> maps, got {type(explain).__name__}")
    classes = explained_classes(model, x, class_index)
    fold = np.abs if absolute else np.asarray
    trained = fold(np.asarray(explain(model, x, classes)))
    clone, rng = _randomised_clone(model), np.random.default_rng(seed)
    for group in _randomisation_groups(clone):
        for layer in group:
            _randomise(layer, rng)
    random = fold(np.asarray(explain(clone, x, classes)))
    if random.shape != trained.shape:
        raise ValueError(f"explain gave maps of shape {trained.shape} for the trained model and {random.shape} for "
                         "the randomised one; it must return one map an example, shaped alike")
    bins = _bins(trained) if n_bins is None else n_bins
    before, after = map_entropy(trained, bins), map_entropy(random, bins)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(before > 0, after / np.where(before > 0, before, 1), np.nan)   # a constant map: undefined
    return {"ratio": ratio, "mean": float(np.nanmean(ratio)) if np.isfinite(ratio).any() else float("nan"),
            "entropy_trained": before, "entropy_random": after, "n_bins": bins}


def smooth_randomization(model, x, explain: Callable, *, class_index=None, seed: int = 0, absolute: bool = True,
                         samples: int = 50, noise: float = 0.1, value_range=None) -> dict:
    """sMPRT (Hedström et al., TMLR 2024): the cascade run from the input side up ("bottom-up": the
    first layer with a kernel randomised first, then one more each step), each map the mean of the
    method's maps of ``samples`` noisy copies of the input (Gaussian noise of ``noise`` times the
    data's span), compared with the trained model's, denoised alike, by Spearman correlation.

    Args:
        samples, noise: the denoising (the paper's 50 and 0.1); ``value_range``: (lo, hi) of the
            data, whose span scales the noise (None: the span of ``x``).
        the rest: as :func:`cascading_randomization`.
    Returns:
        ``layers`` (bottom first), ``correlation`` float (L, N), ``mean`` (L,).
    """
    x = check_input(model, x)
    if not callable(explain):
        raise ValueError(f"explain must be a function (model, x, class_index) -> maps, got {type(explain).__name__}")
    if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or samples < 1:
        raise ValueError(f"samples must be an int >= 1, got {samples!r}")
    if isinstance(noise, bool) or not (isinstance(noise, (int, float, np.floating, np.integer)) and noise >= 0):
        raise ValueError(f"noise must be a number >= 0 (a fraction of the data's span), got {noise!r}")
    lo, hi = (float(x.min()), float(x.max())) if value_range is None else value_range
    if not hi > lo:
        raise ValueError(f"value_range must be (lo, hi) with hi > lo, got {(lo, hi)}")
    classes = explained_classes(model, x, class_index)
    draws = np.random.default_rng(seed).normal(0.0, noise * (hi - lo), (samples,) + x.shape).astype(np.float32)  # (S, N, ...)
    fold = np.abs if absolute else np.asarray

    def denoised(m):
        return np.mean([fold(np.asarray(explain(m, x + d, classes))) for d in draws], axis=0)

    reference = denoised(model)
    clone, rng = _randomised_clone(model), np.random.default_rng(seed)
    names, corr = [], []
    for group in _randomisation_groups(clone)[::-1]:                    # bottom-up
        for layer in group:
            _randomise(layer, rng)
        corr.append(spearman(reference, denoised(clone)))
        names.append(group[0].name)
    corr = np.asarray(corr)
    return {"layers": names, "correlation": corr, "mean": corr.mean(1), "samples": samples, "noise": noise}
