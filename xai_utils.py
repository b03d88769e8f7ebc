"""The door of the design card: the names the README and the course use, in one import. Grad-CAM
(``xai/methods/cam.py``), Integrated Gradients with its baselines and completeness gap
(``xai/methods/integrated_gradients.py``), and the core's public names (``xai/core.py``: checks at the
door, the score explained, batching; ``xai/layers.py``: the layers explained; ``xai/maps.py``: maps).
This module re-exports only and holds no logic; nothing inside the package imports it.

Every other method is in ``xai.methods`` (``METHODS`` lists them all), metrics in ``xai.metrics``, plots
in ``xai.plots``; ``import xai`` gives the methods by name (``xai.rise``, ``xai.smoothgrad``...).
"""
from __future__ import annotations

from xai.core import (
    SCORES,
    check_batch_size,
    check_flag,
    check_input,
    explained_classes,
    predict_scores,
    resolve_class_index,
    score_model,
)
from xai.layers import all_layers, check_model, conv_layers, find_layer, is_spatial, lookup_layer, spatial_layers
from xai.maps import normalize, upsample
from xai.methods.cam import grad_cam
from xai.methods.integrated_gradients import (
    IG_BASELINES,
    IG_RULES,
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
    "IG_RULES",
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
