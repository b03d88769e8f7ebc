"""Augmentations of image tiles for training, and test-time augmentation: the 8 flips and rotations
of the dihedral group (tissue has no orientation), a colour augmentation (:data:`COLOUR_AUGMENTS`:
none, a per-channel RGB gain and offset, HED-space stain jitter or RandStainNA-style LAB statistics,
the last two from ``xai.training.stain``), random crops.

Axis key: B tiles of a batch, N tiles, H, W tile size, C channels (3), K classes.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["COLOUR_AUGMENTS", "dihedral", "rgb_jitter", "colour_augment", "augment_tiles", "predict_tta"]

# "none"; "rgb": per-channel gain and offset; "hed": stain jitter (Tellez et al. 2019); "lab": RandStainNA-style
COLOUR_AUGMENTS = ("none", "rgb", "hed", "lab")


def dihedral(xb: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Apply the k-th of the 8 flips/rotations (k in 0..7) to each tile of (B, H, W, C)."""
    out = np.empty_like(xb)
    for i, ki in enumerate(k):
        t = np.rot90(xb[i], ki % 4, axes=(0, 1))
        out[i] = t[:, ::-1] if ki >= 4 else t
    return out


def rgb_jitter(xb: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    """A per-channel gain ``1 + U(-s, s)`` and offset ``255 s / 2 U(-1, 1)`` of each tile (B, H, W, 3), 0-255:
    float32 (drawn and computed in float64, as the committed model's batches were)."""
    gain = 1 + strength * rng.uniform(-1, 1, size=(len(xb), 1, 1, 3))     # (B, 1, 1, 3)
    offset = 255 * strength / 2 * rng.uniform(-1, 1, size=(len(xb), 1, 1, 3))
    return np.clip(xb * gain + offset, 0, 255).astype(np.float32)


def colour_augment(kind: str, *, rgb_strength: float = 0.08, hed_strength: float = 0.05,
                   statistics: dict | None = None) -> Callable[[np.ndarray, np.random.Generator], np.ndarray] | None:
    """The colour augmentation ``f(tiles, rng) -> tiles`` of ``kind`` (one of :data:`COLOUR_AUGMENTS`), or
    None for "none". "rgb": :func:`rgb_jitter` of ``rgb_strength``; "hed": ``xai.training.stain.hed_jitter``
    with sigma = bias = ``hed_strength`` (Tellez et al.'s HED-light is 0.05); "lab":
    ``xai.training.stain.lab_jitter`` with the training tiles' ``statistics`` (``lab_statistics``).
    Tiles: float32 (B, H, W, 3) in 0-255, returned so."""
    if kind not in COLOUR_AUGMENTS:
        raise ValueError(f"colour augmentation must be one of {COLOUR_AUGMENTS}, got {kind!r}")
    for name, value in (("rgb_strength", rgb_strength), ("hed_strength", hed_strength)):
        if isinstance(value, bool) or not (isinstance(value, (int, float, np.floating, np.integer)) and 0 <= value < 1):
            raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")
    if (kind == "lab") != (statistics is not None):
        raise ValueError(f"the 'lab' augmentation needs the training tiles' statistics (xai.training.stain."
                         f"lab_statistics) and the others take none; got kind {kind!r} with statistics "
                         f"{'given' if statistics is not None else 'None'}")
    if kind == "none":
        return None
    if kind == "rgb":
        return lambda xb, rng: rgb_jitter(xb, rng, rgb_strength)
    from xai.training import stain
    if kind == "hed":
        return lambda xb, rng: stain.hed_jitter(xb, seed=rng, sigma=hed_strength, bias=hed_strength).numpy()
    return lambda xb, rng: stain.lab_jitter(xb, statistics, seed=rng).numpy()


def augment_tiles(xb: np.ndarray, rng: np.random.Generator, colour_jitter: float = 0.08,
                  crop: int = 0, colour: Callable | None | str = "rgb") -> np.ndarray:
    """Random flip/rotation (the 8 of the dihedral group: tissue has no orientation), a colour
    augmentation and, with ``crop`` > 0, a random ``crop`` x ``crop`` window of each tile.

    Args:
        xb: float32 (B, 150, 150, 3) in 0-255.
        rng: the batch's Generator (crop corners, then the flips, then the colour's draws).
        colour_jitter: the strength of the "rgb" colour augmentation (a per-channel gain and offset).
        crop: 0, or the side of the random window.
        colour: "rgb" (:func:`rgb_jitter` of ``colour_jitter``), None (no colour change), or a function
            ``f(tiles, rng) -> tiles`` from :func:`colour_augment`.
    Returns float32 (B, crop or 150, crop or 150, 3) in 0-255.
    """
    if crop:
        size = xb.shape[1]
        if xb.shape[2] != size:
            raise ValueError(f"crop needs square tiles (B, S, S, C), got {xb.shape}")
        if not 0 < crop <= size:
            raise ValueError(f"crop must be in [1, {size}], got {crop}")
        top, left = rng.integers(0, size - crop + 1, size=(2, len(xb)))
        xb = np.stack([t[i:i + crop, j:j + crop] for t, i, j in zip(xb, top, left)])
    xb = dihedral(xb, rng.integers(0, 8, size=len(xb)))
    if isinstance(colour, str):
        if colour != "rgb":
            raise ValueError(f"colour must be 'rgb', None or a function from colour_augment, got {colour!r}")
        return rgb_jitter(xb, rng, colour_jitter)
    return xb if colour is None else colour(xb, rng)


def predict_tta(model, x: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Mean probabilities over the 8 flips/rotations: float32 (N, 8)."""
    probs = [model.predict(dihedral(x.astype(np.float32), np.full(len(x), k)), batch_size=batch_size,
                           verbose=0) for k in range(8)]
    return np.mean(probs, axis=0)
