"""Maps as data: resizing a layer's maps to the input, min-max scaling, and one relevance value per
position, the forms every method, metric and plot shares.

Axis key: N or B maps, T signal length, H, W image size, C channels, D positions (T or H*W).
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

__all__ = ["upsample", "resize_maps", "minmax", "normalize", "saliency_positions"]


@tf.function(reduce_retracing=True)
def upsample(cam, size):
    """Maps to the input's size, outside any XLA step (XLA's bilinear resize differs at odd
    factors): (B, t) -> (B, T) linear, or (B, h, w) -> (B, H, W) bilinear, half-pixel centres."""
    return resize_maps(cam, size)


def resize_maps(cam, size):
    """(B, t) -> (B, T) linear, or (B, h, w) -> (B, H, W) bilinear, half-pixel centres."""
    if len(size) == 1:
        up = tf.image.resize(cam[:, :, None, None], (size[0], 1), method="bilinear")  # (B, T, 1, 1)
        return up[:, :, 0, 0]
    return tf.image.resize(cam[..., None], size, method="bilinear")[..., 0]          # (B, H, W)


def minmax(a, axis=None) -> np.ndarray:
    """Scale to [0, 1] over ``axis`` (None: the whole array; e.g. 1 for each row): float32. A
    constant slice becomes 0. The one min-max scaler of the project (display, SISE's masks and fusion)."""
    a = np.asarray(a, np.float32)
    lo = a.min(axis=axis, keepdims=True)
    span = a.max(axis=axis, keepdims=True) - lo
    return np.where(span > 0, (a - lo) / np.where(span > 0, span, 1), 0).astype(np.float32)


def normalize(maps) -> np.ndarray:
    """Per-map min-max scaling to [0, 1], for display only: float32 (N, ...), N maps first (one
    map: ``maps[None]``). A constant map becomes 0. Raises ValueError for a single map without the
    first axis (a (T,) signal map would otherwise be N one-value maps, all 0) and for NaN or inf
    (which min-max scaling would turn into a map of zeros)."""
    maps = np.asarray(maps)
    if maps.dtype.kind not in "fiub":
        raise ValueError(f"maps must be numeric, got dtype {maps.dtype}")
    if maps.ndim < 2 or maps.size == 0:
        raise ValueError(f"maps has shape {maps.shape}: expected (N, ...) with N maps first; for one map pass "
                         "maps[None]")
    maps = maps.astype(np.float32)
    bad = ~np.isfinite(maps.reshape(len(maps), -1)).all(1)
    if bad.any():
        raise ValueError(f"maps {np.flatnonzero(bad)[:10].tolist()} hold NaN or inf; a scaled map would hide them: "
                         "explain those examples again or drop them")
    return minmax(maps.reshape(len(maps), -1), axis=1).reshape(maps.shape)


def saliency_positions(maps, x_shape, *, absolute: bool = False) -> np.ndarray:
    """One relevance value per spatial position, float32 (N, D).

    Maps shaped like x (IG) have their channels summed (signed) or, with ``absolute``, the absolute
    values summed; Grad-CAM/RISE/SISE maps (N, T) or (N, H, W) are taken as they are (or their
    absolute values). Raises ValueError for a shape that matches neither, or NaN/inf.
    """
    maps = np.asarray(maps)
    if maps.dtype.kind not in "fiu":
        raise ValueError(f"maps must be numeric, got dtype {maps.dtype}")
    maps = maps.astype(np.float32)
    x_shape = tuple(x_shape)
    if absolute:
        maps = np.abs(maps)
    if maps.shape == x_shape:
        maps = maps.sum(-1)                                                 # (N, T) or (N, H, W)
    if maps.shape != x_shape[:-1]:
        raise ValueError(f"maps have shape {maps.shape}, expected {x_shape[:-1]} (one value a position) or "
                         f"{x_shape} (shaped like x); pass the maps of these inputs")
    if not np.isfinite(maps).all():
        bad = np.flatnonzero(~np.isfinite(maps.reshape(len(maps), -1)).all(1))
        raise ValueError(f"maps have NaN or inf in example(s) {bad[:10].tolist()}; a metric of such a map "
                         "would be meaningless: explain again or drop those examples")
    return maps.reshape(len(maps), -1)                                      # (N, D)
