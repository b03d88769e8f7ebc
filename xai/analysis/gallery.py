"""Maps to look at beside the numbers: one example explained by every method of METHODS, and the
maps of the sanity cascade (Adebayo et al. 2018) as the model is randomised from the top down.

Axis key: N examples (here 1), L randomisation steps.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from xai.analysis.compare import draw_references, every_method, explain_all
from xai.core import check_input, explained_classes
from xai.metrics.sanity import cascading_randomization, randomisation_layers
from xai.plots import cascade_steps, plot_cascade, plot_panels

__all__ = ["every_method_figure", "cascade_figure"]


def _one(model, x, class_index, mask):
    """One example (a batch of 1), its class (None: the model's prediction) and its mask, checked
    before any method runs."""
    x = check_input(model, x)
    if len(x) != 1:
        raise ValueError(f"give one example (a batch of 1), got {len(x)}; pick it with x[i:i + 1]")
    if class_index is not None and np.size(class_index) != 1:
        raise ValueError(f"class_index must be None or the one example's class, got {class_index!r}")
    classes = explained_classes(model, x, class_index)
    if mask is not None and (x.ndim != 3 or np.shape(mask) != (x.shape[1],)):
        raise ValueError(f"mask is the ground truth of a signal, ({x.shape[1]},) for this one; got shape "
                         f"{np.shape(mask)} for inputs of shape {x.shape}")
    return x, classes


def every_method_figure(model, x, class_index, x_train, *, rise_masks: int, eg_samples: int = 64, n_references: int = 32,
                        seed: int = 0, mask=None, title: str | None = None):
    """One example (a batch of 1) under every method of METHODS (``xai.analysis.compare.every_method``:
    the library's defaults, RISE with ``rise_masks``, expected gradients from ``n_references``
    training inputs drawn with ``seed``), each map on its own scale. ``class_index``: the class
    explained (None: the predicted one). ``mask``: (T,) ground truth of a signal, or None."""
    x, classes = _one(model, x, class_index, mask)
    functions = every_method(draw_references(x_train, n_references, seed), rise_masks=rise_masks, eg_samples=eg_samples,
                             seed=seed)
    maps, _ = explain_all(model, x, classes, functions, log=None)
    return plot_panels(x[0], {label: m[0] for label, m in maps.items()}, mask=mask, title=title)


def cascade_figure(model, x, class_index, functions: dict[str, Callable], *, seed: int = 0, steps=None, mask=None,
                   title: str | None = None):
    """The sanity cascade's maps of one example (a batch of 1): a method of ``functions`` (name ->
    ``f(model, x, classes) -> maps``) a row, its original map and its maps after randomising the model
    down to the chosen layers (``xai.plots.cascade_steps``: by default the top layer, the middle and
    every layer). ``seed`` draws the random weights; pass the sanity check's to see its cascade.
    Returns ``(figure, cascades)``: each cascade's ``correlation`` is each step's Spearman of
    absolute maps, as in the check."""
    x, classes = _one(model, x, class_index, mask)
    if not functions or not all(callable(f) for f in functions.values()):
        raise ValueError("functions must map method names to f(model, x, classes) -> maps")
    steps = cascade_steps(steps, len(randomisation_layers(model)))
    cascades = {name: cascading_randomization(model, x, f, class_index=classes, seed=seed, return_maps=True)
                for name, f in functions.items()}
    return plot_cascade(x[0], cascades, steps=steps, mask=mask, title=title), cascades
