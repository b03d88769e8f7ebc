"""Augmentations of image tiles for training, and test-time augmentation: the 8 flips and rotations
of the dihedral group (tissue has no orientation), a mild colour jitter, random crops.

Axis key: B tiles of a batch, N tiles, H, W tile size, C channels (3), K classes.
"""
from __future__ import annotations

import numpy as np

__all__ = ["dihedral", "augment_tiles", "predict_tta"]


def dihedral(xb: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Apply the k-th of the 8 flips/rotations (k in 0..7) to each tile of (B, H, W, C)."""
    out = np.empty_like(xb)
    for i, ki in enumerate(k):
        t = np.rot90(xb[i], ki % 4, axes=(0, 1))
        out[i] = t[:, ::-1] if ki >= 4 else t
    return out


def augment_tiles(xb: np.ndarray, rng: np.random.Generator, colour_jitter: float = 0.08,
                  crop: int = 0) -> np.ndarray:
    """Random flip/rotation (the 8 of the dihedral group: tissue has no orientation), a mild
    per-channel gain and offset (stain variation) and, with ``crop`` > 0, a random ``crop`` x ``crop``
    window of each tile. xb: float32 (B, 150, 150, 3) in 0-255; returns (B, crop or 150, ..., 3)."""
    if crop:
        size = xb.shape[1]
        if xb.shape[2] != size:
            raise ValueError(f"crop needs square tiles (B, S, S, C), got {xb.shape}")
        if not 0 < crop <= size:
            raise ValueError(f"crop must be in [1, {size}], got {crop}")
        top, left = rng.integers(0, size - crop + 1, size=(2, len(xb)))
        xb = np.stack([t[i:i + crop, j:j + crop] for t, i, j in zip(xb, top, left)])
    xb = dihedral(xb, rng.integers(0, 8, size=len(xb)))
    gain = 1 + colour_jitter * rng.uniform(-1, 1, size=(len(xb), 1, 1, 3))     # (B, 1, 1, 3)
    offset = 255 * colour_jitter / 2 * rng.uniform(-1, 1, size=(len(xb), 1, 1, 3))
    return np.clip(xb * gain + offset, 0, 255)


def predict_tta(model, x: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Mean probabilities over the 8 flips/rotations: float32 (N, 8)."""
    probs = [model.predict(dihedral(x.astype(np.float32), np.full(len(x), k)), batch_size=batch_size,
                           verbose=0) for k in range(8)]
    return np.mean(probs, axis=0)
