"""Explaining convolutional networks in Keras 3: 1D signals and 2D images, any Keras CNN.

    import xai
    maps = xai.grad_cam(model, x)                          # (N, T) or (N, H, W), non-negative
    attributions = xai.integrated_gradients(model, x)      # like x, signed; completeness by construction

The package, by layer (each folder's ``__init__`` lists its files):

    core.py, layers.py   the score explained, checks at the door, compiled steps, batching; finding layers
    maps.py              maps as data: resizing to the input, min-max scaling, one value a position
    methods/             one file a family: cam (Grad-CAM, Grad-CAM++, Score-CAM), gradients (saliency,
                         gradient x input, the noise tunnel, expected gradients), integrated_gradients,
                         perturbation (RISE, SISE). ``methods.METHODS``: the one list of methods
    metrics/             removal (ROAD, MoRF / LeRF / SRG, deletion / insertion, average drop),
                         localisation, sanity (model randomisation), agreement
    analysis/            stats (bootstrap, paired intervals, Holm), compare (every metric on the same
                         examples), sweep (every method in each setting under every removal setting;
                         sweep_store: in stored batches), metric_agreement (which metrics agree)
    dataset/             explain a whole data set into HDF5, resumable: ``python -m xai.dataset``
    shortcut/            planted shortcuts: markers, reliance, mass on the marker against controls
    plots.py             heatmaps over signals and images, curves, the claims figure
    training/            the repository's models: one training path, saving with provenance,
                         slide-held-out evaluation for HMT, what a trained classifier reports
    files.py, notebook.py  files written whole or not at all; a notebook's set-up

Conventions: ``x`` is float32 ``(N, T, C)`` or ``(N, H, W, C)``; every method is
``method(model, x, class_index=None, *, options) -> np.ndarray``; ``class_index=None`` explains the
predicted class; the score explained is the logit unless ``score="probability"``; ``value_range`` is
always the data's ``(lo, hi)``.

The names below are imported on first use, so ``import xai`` costs nothing until a method is called.
"""
from __future__ import annotations

import importlib

__version__ = "0.4.0"

# public name -> the module that defines it
_PUBLIC = {
    "METHODS": "xai.methods",
    "method_function": "xai.methods",
    "grad_cam": "xai.methods.cam",
    "grad_cam_plus_plus": "xai.methods.cam",
    "score_cam": "xai.methods.cam",
    "integrated_gradients": "xai.methods.integrated_gradients",
    "completeness_gap": "xai.methods.integrated_gradients",
    "ig_baselines": "xai.methods.integrated_gradients",
    "saliency": "xai.methods.gradients",
    "gradient_x_input": "xai.methods.gradients",
    "smoothgrad": "xai.methods.gradients",
    "smoothgrad_squared": "xai.methods.gradients",
    "vargrad": "xai.methods.gradients",
    "noise_tunnel": "xai.methods.gradients",
    "expected_gradients": "xai.methods.gradients",
    "rise": "xai.methods.perturbation",
    "sise": "xai.methods.perturbation",
    "predict_scores": "xai.core",
    "normalize": "xai.maps",
    "add_marker": "xai.shortcut.markers",
    "explain_dataset": "xai.dataset.explain",
    "load_explanations": "xai.dataset.store",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name in _PUBLIC:
        value = getattr(importlib.import_module(_PUBLIC[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'xai' has no attribute {name!r}; its public names: {', '.join(__all__)}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
