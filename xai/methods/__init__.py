"""Every explanation method of the library, by name: the one list that the data-set runner
(``xai.dataset``), the comparison (``xai.analysis.compare``), the contract test and the benchmarks read.

Each entry says where the method lives and what its map is: ``"positions"`` (non-negative, one
value a position: (N, T) or (N, H, W)) or ``"like_x"`` (signed, shaped like the input). A method is
imported only when asked for, so this module needs nothing but the standard library.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import NamedTuple

__all__ = ["Method", "METHODS", "method_function", "map_shape_kind"]


class Method(NamedTuple):
    module: str          # where it lives
    function: str        # its name there
    maps: str            # "positions" (non-negative, (N, T) or (N, H, W)) or "like_x" (signed, (N, ...) like x)
    family: str          # "CAM", "path", "gradient", "noise tunnel", "perturbation"
    label: str           # as tables and figures name it


METHODS: dict[str, Method] = {
    "grad_cam": Method("xai.methods.cam", "grad_cam", "positions", "CAM", "Grad-CAM"),
    "grad_cam_plus_plus": Method("xai.methods.cam", "grad_cam_plus_plus", "positions", "CAM", "Grad-CAM++"),
    "score_cam": Method("xai.methods.cam", "score_cam", "positions", "CAM", "Score-CAM"),
    "integrated_gradients": Method("xai.methods.integrated_gradients", "integrated_gradients", "like_x", "path", "IG"),
    "expected_gradients": Method("xai.methods.gradients", "expected_gradients", "like_x", "path", "Expected gradients"),
    "saliency": Method("xai.methods.gradients", "saliency", "like_x", "gradient", "Gradient"),
    "gradient_x_input": Method("xai.methods.gradients", "gradient_x_input", "like_x", "gradient", "Gradient × input"),
    "smoothgrad": Method("xai.methods.gradients", "smoothgrad", "like_x", "noise tunnel", "SmoothGrad"),
    "smoothgrad_squared": Method("xai.methods.gradients", "smoothgrad_squared", "like_x", "noise tunnel", "SmoothGrad²"),
    "vargrad": Method("xai.methods.gradients", "vargrad", "like_x", "noise tunnel", "VarGrad"),
    "noise_tunnel": Method("xai.methods.gradients", "noise_tunnel", "like_x", "noise tunnel", "Noise tunnel"),
    "rise": Method("xai.methods.perturbation", "rise", "positions", "perturbation", "RISE"),
    "sise": Method("xai.methods.perturbation", "sise", "positions", "perturbation", "SISE"),
}


def method_function(name: str) -> Callable:
    """The method called ``name`` (a key of :data:`METHODS`): ``f(model, x, class_index=None, **options)``."""
    if not isinstance(name, str) or name not in METHODS:
        raise ValueError(f"unknown method {name!r}; expected one of {sorted(METHODS)}")
    entry = METHODS[name]
    try:
        return getattr(importlib.import_module(entry.module), entry.function)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"method {name!r} ({entry.module}.{entry.function}) is not available: {err}") from err


def map_shape_kind(name: str) -> str:
    """``"positions"`` or ``"like_x"``: the shape and sign of the method's maps."""
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; expected one of {sorted(METHODS)}")
    return METHODS[name].maps
