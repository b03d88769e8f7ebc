"""The network's own marks in its maps, measured on a model and some inputs: how much Integrated
Gradients' relevance piles up in the centre of an image (valid convolutions see border pixels fewer
times), how much it alternates between neighbouring columns and rows (a stride-2 layer's
checkerboard), and how much of Grad-CAM's mass sits on the image's frame (zero padding's mark).

Conventions: IG from a zero (black) baseline, 32 Gauss-Legendre points, the predicted class's logit,
|IG| summed over the channels; Grad-CAM of the predicted class at the last convolution.

Axis key: N images, H, W image size, C channels.
"""
from __future__ import annotations

import numpy as np

from xai.core import check_batch_size, check_input
from xai.methods.cam import grad_cam
from xai.methods.integrated_gradients import integrated_gradients
from xai.metrics.localisation import band_area_share, border_mass_share, centre_to_outside_ratio, period_two_alternation

__all__ = ["map_artefacts"]


def map_artefacts(model, x, *, inner: int, band: int = 12, steps: int = 32, batch_size: int = 64) -> dict:
    """The centre ratio and the checkerboard of |IG|, and Grad-CAM's frame share, on images ``x``.

    Args:
        model: a Keras image classifier.
        x: float32 (N, H, W, C) as the model takes it (HMT: 0-255).
        inner: the central square's side (HMT: 112, the training crop).
        band: Grad-CAM's frame, in pixels (its area share is reported beside its mass share).
        steps: IG's quadrature points.
        batch_size: model inputs a call, for IG's path points and Grad-CAM alike.
    Returns:
        ``centre_to_outside`` (1: no pile in the centre), ``column_alternation`` and ``row_alternation``
        (0: none), ``grad_cam_border_share`` (mean, against ``border_area_share``), the mean |IG|
        profiles over columns and rows (lists), and the conventions.
    """
    x = check_input(model, x)
    if x.ndim != 4:
        raise ValueError(f"map_artefacts needs images (N, H, W, C), got shape {x.shape}")
    h, w = x.shape[1:3]
    if isinstance(inner, bool) or not (isinstance(inner, (int, np.integer)) and 0 < inner < min(h, w)):
        raise ValueError(f"inner must be an int in (0, {min(h, w)}) for {h} x {w} images, got {inner!r}")
    band_area_share((h, w), band)                                                                    # checks band
    check_batch_size(batch_size)
    ig = np.abs(integrated_gradients(model, x, steps=steps, batch_size=batch_size)).sum(-1)         # (N, H, W)
    cam = grad_cam(model, x, batch_size=batch_size)                                                  # (N, H, W)
    border = border_mass_share(cam, band)
    return {"n": int(len(x)), "inner": inner, "centre_to_outside": centre_to_outside_ratio(ig, inner),
            "column_alternation": period_two_alternation(ig, axis=2), "row_alternation": period_two_alternation(ig, axis=1),
            "grad_cam_border_share": float(np.nanmean(border)), "border_area_share": band_area_share(x.shape[1:3], band),
            "band": band, "column_profile": ig.mean(axis=(0, 1)).tolist(), "row_profile": ig.mean(axis=(0, 2)).tolist(),
            "conventions": f"|IG| summed over channels, zero baseline, {steps} Gauss-Legendre points, predicted "
                           "class's logit; Grad-CAM of the predicted class at the last convolution"}
