"""The names the README and the course use, in one import: Grad-CAM (``xai/methods/cam.py``), Integrated
Gradients with its baselines and completeness gap (``xai/methods/integrated_gradients.py``), and the core's
public names (``xai/core.py``: checks at the door, the score explained, the layers explained,
batching). This module holds no logic of its own; ``import xai_utils as xu`` keeps working.

The other methods live beside them: the plain gradient, the noise tunnel (SmoothGrad, SmoothGrad²,
VarGrad) and expected gradients in ``xai/methods/gradients.py``; Grad-CAM++ and Score-CAM in ``xai/methods/cam.py``;
RISE and SISE in ``xai/methods/perturbation.py``; every method by name in ``xai/methods/__init__.py``; metrics in
``xai/metrics/removal.py``; plots in ``xai/plots.py``.
"""
from __future__ import annotations

from xai.methods.cam import grad_cam
from xai.core import (
    SCORES,
    all_layers,
    check_batch_size,
    check_flag,
    check_input,
    check_model,
    conv_layers,
    explained_classes,
    find_layer,
    is_spatial,
    lookup_layer,
    normalize,
    predict_scores,
    resolve_class_index,
    score_model,
    spatial_layers,
    upsample,
)
from xai.methods.integrated_gradients import (
    IG_BASELINES,
    IG_METHODS,
    completeness_gap,
    gaussian_blur,
    ig_baselines,
    ig_nodes,
    integrated_gradients,
)

__all__ = [
    "grad_cam",
    "integrated_gradients",
    "ig_nodes",
    "ig_baselines",
    "gaussian_blur",
    "completeness_gap",
    "IG_METHODS",
    "IG_BASELINES",
    "normalize",
    "SCORES",
    "score_model",
    "predict_scores",
    "explained_classes",
    "resolve_class_index",
    "conv_layers",
    "spatial_layers",
    "find_layer",
    "all_layers",
    "is_spatial",
    "lookup_layer",
    "check_input",
    "check_model",
    "check_batch_size",
    "check_flag",
    "upsample",
]
