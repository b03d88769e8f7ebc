"""The sanity check: the cascading model-randomisation test (Adebayo et al., NeurIPS 2018).

Maps are compared in absolute value by default, for every method.

Axis key: N examples, L randomisation steps (layers with a kernel).
"""
from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np

from xai.core import check_input, explained_classes
from xai.layers import all_layers
from xai.metrics.agreement import spearman

__all__ = ["cascading_randomization"]


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
