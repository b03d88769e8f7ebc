"""What a trained image classifier reports, in functions the tests reach: the test accuracy (plain
and with test-time augmentation over the 8 flips and rotations), and whether
Grad-CAM's mass sits on the tile's frame. HMT.ipynb calls them.

Axis key: N tiles, K classes.
"""
from __future__ import annotations

import numpy as np

from xai.metrics.localisation import band_area_share, border_mass_share
from xai.training.augment import predict_tta

__all__ = ["test_accuracy", "border_table"]


def test_accuracy(model, x_test, y_test, batch_size: int = 64) -> dict:
    """The model's probabilities float32 (N, K), predictions int (N,), accuracy, the number right,
    and the accuracy of the mean over the 8 flips and rotations (:func:`xai.training.augment.predict_tta`)."""
    x = np.asarray(x_test).astype(np.float32)                           # (N, 150, 150, 3), 0-255
    y = np.asarray(y_test)
    if len(x) != len(y) or len(y) == 0:
        raise ValueError(f"x_test ({len(x)} tiles) and y_test ({len(y)} labels) must be as long, and not empty")
    prob = model.predict(x, batch_size=batch_size, verbose=0)              # (N, K)
    pred = prob.argmax(-1)
    tta = predict_tta(model, x, batch_size=batch_size).argmax(-1)
    return {"prob": prob, "y_pred": pred, "accuracy": float(np.mean(pred == y)), "n_correct": int(np.sum(pred == y)),
            "n": int(len(y)), "tta_accuracy": float(np.mean(tta == y))}


def border_table(cams, y, class_names, band: int = 12, margin: float = 0.05) -> tuple[str, dict]:
    """Whether each class's Grad-CAM maps sit on the tile's frame: the median share of a map's mass
    in the outer ``band`` pixels (:func:`xai.metrics.localisation.border_mass_share`; all-zero maps skipped),
    against the band's share of the area plus ``margin``. ``cams``: non-negative (N, H, W).
    Returns ``(markdown table, {class: median share})``."""
    cams = np.asarray(cams)
    y = np.asarray(y)
    if cams.ndim != 3 or len(cams) != len(y):
        raise ValueError(f"cams must be (N, H, W) with one map a label ({len(y)}), got {cams.shape}")
    share = border_mass_share(cams, band=band)                          # (N,), NaN for an all-zero map
    area = band_area_share(cams.shape[1:], band)
    limit = area + margin
    lines = [f"outer {band}-pixel band: {area:.1%} of the area; limit for each class's median: {limit:.1%}", "",
             "| class | tiles | median share in the band | ≤ limit |", "|---|---|---|---|"]
    medians = {}
    for c, name in enumerate(class_names):
        kept = share[(y == c) & np.isfinite(share)]
        medians[name] = float(np.median(kept)) if len(kept) else float("nan")
        verdict = "—" if not len(kept) else "yes" if medians[name] <= limit else "NO"
        lines.append(f"| {name} | {len(kept)} | {medians[name]:.1%} | {verdict} |")
    return "\n".join(lines), medians
