"""The names the README and the course use, in one import: Grad-CAM (``xai_cam.py``), Integrated
Gradients with its baselines and completeness gap (``xai_integrated_gradients.py``), and the core's
public names (``xai_core.py``: checks at the door, the score explained, the layers explained,
batching). This module holds no logic of its own; ``import xai_utils as xu`` keeps working.

The other methods live beside them: the plain gradient, the noise tunnel (SmoothGrad, SmoothGrad²,
VarGrad) and expected gradients in ``xai_gradients.py``; Grad-CAM++ and Score-CAM in ``xai_cam.py``;
RISE and SISE in ``xai_perturbation.py``; every method by name in ``xai_methods.py``; metrics in
``xai_metrics.py``; plots in ``xai_plots.py``.
"""
from __future__ import annotations

from xai_cam import grad_cam
from xai_core import (
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
from xai_integrated_gradients import (
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
