"""Stain augmentation for H&E tiles, as TensorFlow ops: HED-space jitter (Tellez et al. 2019, "Quantifying
the effects of data augmentation and stain color normalization in convolutional neural networks for
computational pathology", Medical Image Analysis 58) and a RandStainNA-style LAB augmentation (Shen et
al. 2022, MICCAI: each tile's LAB mean and spread replaced by ones drawn from the training tiles').

HED. Ruifrok and Johnston's colour deconvolution (2001): optical density ``OD = -log((x + 1) / 256)``
per RGB channel (x in 0-255) is a linear mix of the haematoxylin, eosin and DAB stains,
``OD = S @ M`` with ``M``'s rows the stains' OD vectors (:data:`RGB_FROM_HED`, normalised); the
jitter scales and shifts each stain, ``S' = S * a + b`` with ``a ~ U(1 - sigma, 1 + sigma)`` and
``b ~ U(-bias, bias)`` per tile and stain, and mixes back. No stain is clipped on the way, so zero
jitter gives the tile back (to float rounding); only the result is clipped to 0-255.

LAB. sRGB (D65) to CIELAB and back, exactly invertible in float; the statistics are the per-tile
mean and standard deviation of L, a and b over the training tiles (:func:`lab_statistics`), and
each augmented tile gets a mean and spread drawn from a normal fitted to them.

Axis key: B tiles of a batch, N tiles, H, W tile size, 3 channels (RGB, HED or LAB).
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

__all__ = ["RGB_FROM_HED", "HED_FROM_RGB", "rgb_to_hed", "hed_to_rgb", "hed_jitter", "rgb_to_lab", "lab_to_rgb",
           "lab_statistics", "lab_jitter"]

# Ruifrok & Johnston's stain vectors (OD of haematoxylin, eosin, DAB), each row normalised to unit length
_STAINS = np.array([[0.65, 0.70, 0.29], [0.07, 0.99, 0.11], [0.27, 0.57, 0.78]])
RGB_FROM_HED = (_STAINS / np.linalg.norm(_STAINS, axis=1, keepdims=True)).astype(np.float64)   # (3 stains, 3 RGB)
HED_FROM_RGB = np.linalg.inv(RGB_FROM_HED)


def _check_tiles(x) -> tf.Tensor:
    x = tf.convert_to_tensor(x)
    if x.shape.rank != 4 or x.shape[-1] != 3:
        raise ValueError(f"tiles must be RGB (B, H, W, 3) in 0-255, got shape {tuple(x.shape)}")
    if not (x.dtype.is_floating or x.dtype == tf.uint8):
        raise ValueError(f"tiles must be float or uint8 in 0-255, got {x.dtype.name}")
    return tf.cast(x, tf.float32)


# --- HED ---

def rgb_to_hed(x) -> tf.Tensor:
    """RGB tiles (B, H, W, 3), 0-255, to stain concentrations (B, H, W, 3): H, E, DAB (not clipped)."""
    od = -tf.math.log((_check_tiles(x) + 1.0) / 256.0)                                   # (B, H, W, 3) >= 0
    return tf.einsum("bhwc,cs->bhws", od, tf.constant(HED_FROM_RGB, tf.float32))


def hed_to_rgb(hed) -> tf.Tensor:
    """Stain concentrations (B, H, W, 3) back to RGB tiles in 0-255 (clipped)."""
    od = tf.einsum("bhws,sc->bhwc", tf.convert_to_tensor(hed, tf.float32), tf.constant(RGB_FROM_HED, tf.float32))
    return tf.clip_by_value(256.0 * tf.exp(-od) - 1.0, 0.0, 255.0)


def hed_jitter(x, *, seed, sigma: float = 0.05, bias: float = 0.05) -> tf.Tensor:
    """HED-space jitter of each tile: every stain's concentration scaled by ``U(1 - sigma, 1 + sigma)``
    and shifted by ``U(-bias, bias)`` (Tellez et al.'s "HED-light" is 0.05, 0.05; "strong" 0.2, 0.2).

    Args:
        x: RGB tiles float32 or uint8 (B, H, W, 3), 0-255.
        seed: int or ``np.random.Generator``: the draws (two ints from a Generator seed TF's stateless ops).
    Returns float32 (B, H, W, 3) in 0-255.
    """
    for name, value in (("sigma", sigma), ("bias", bias)):
        if not (isinstance(value, (int, float)) and 0 <= value < 1):
            raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")
    hed = rgb_to_hed(x)
    b = tf.shape(hed)[0]
    keys = _stateless_seed(seed)
    scale = tf.random.stateless_uniform((b, 1, 1, 3), keys[0], 1.0 - sigma, 1.0 + sigma)   # (B, 1, 1, 3)
    shift = tf.random.stateless_uniform((b, 1, 1, 3), keys[1], -bias, bias)
    return hed_to_rgb(hed * scale + shift)


def _stateless_seed(seed) -> list[tf.Tensor]:
    """Two stateless seeds from an int or a Generator."""
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(int(seed))
    return [tf.constant(rng.integers(0, 2**31 - 1, 2), tf.int32) for _ in range(2)]


# --- LAB ---

_RGB_TO_XYZ = np.array([[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750],
                        [0.0193339, 0.1191920, 0.9503041]])          # sRGB (linear) to XYZ, D65
_WHITE = np.array([0.95047, 1.0, 1.08883])                           # D65 reference white
_DELTA = 6.0 / 29.0


def rgb_to_lab(x) -> tf.Tensor:
    """RGB tiles (B, H, W, 3), 0-255, sRGB, to CIELAB (D65): L in 0-100, a and b about -128..127."""
    c = _check_tiles(x) / 255.0
    linear = tf.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = tf.einsum("bhwc,kc->bhwk", linear, tf.constant(_RGB_TO_XYZ, tf.float32)) / tf.constant(_WHITE, tf.float32)
    f = tf.where(xyz > _DELTA ** 3, tf.math.pow(tf.maximum(xyz, 1e-12), 1.0 / 3.0), xyz / (3 * _DELTA ** 2) + 4.0 / 29.0)
    return tf.stack([116.0 * f[..., 1] - 16.0, 500.0 * (f[..., 0] - f[..., 1]), 200.0 * (f[..., 1] - f[..., 2])], -1)


def lab_to_rgb(lab) -> tf.Tensor:
    """CIELAB (B, H, W, 3) back to sRGB tiles in 0-255 (clipped)."""
    lab = tf.convert_to_tensor(lab, tf.float32)
    fy = (lab[..., 0] + 16.0) / 116.0
    f = tf.stack([fy + lab[..., 1] / 500.0, fy, fy - lab[..., 2] / 200.0], -1)
    xyz = tf.where(f > _DELTA, f ** 3, 3 * _DELTA ** 2 * (f - 4.0 / 29.0)) * tf.constant(_WHITE, tf.float32)
    linear = tf.einsum("bhwk,ck->bhwc", xyz, tf.constant(np.linalg.inv(_RGB_TO_XYZ), tf.float32))
    linear = tf.clip_by_value(linear, 0.0, 1.0)
    c = tf.where(linear <= 0.0031308, 12.92 * linear, 1.055 * tf.math.pow(tf.maximum(linear, 1e-12), 1 / 2.4) - 0.055)
    return tf.clip_by_value(255.0 * c, 0.0, 255.0)


def lab_statistics(x, *, batch_size: int = 256) -> dict:
    """The training tiles' LAB statistics: ``{"mean": (mu, sd), "std": (mu, sd)}``, each float (3,):
    the mean and the standard deviation over tiles of each tile's per-channel mean and spread."""
    x = np.asarray(x)
    if x.ndim != 4 or x.shape[-1] != 3 or len(x) < 2:
        raise ValueError(f"lab_statistics needs at least 2 RGB tiles (N, H, W, 3), got {x.shape}")
    means, stds = [], []
    for start in range(0, len(x), batch_size):
        lab = rgb_to_lab(x[start:start + batch_size])
        means.append(tf.reduce_mean(lab, (1, 2)).numpy())
        stds.append(tf.math.reduce_std(lab, (1, 2)).numpy())
    means, stds = np.concatenate(means), np.concatenate(stds)                     # (N, 3) each
    return {"mean": (means.mean(0), means.std(0)), "std": (stds.mean(0), stds.std(0))}


def lab_jitter(x, statistics: dict, *, seed) -> tf.Tensor:
    """RandStainNA-style augmentation: each tile's LAB channels standardised and given a mean and
    spread drawn from normals fitted to the training tiles (``statistics`` of :func:`lab_statistics`).
    Returns float32 (B, H, W, 3) in 0-255."""
    lab = rgb_to_lab(x)
    b = tf.shape(lab)[0]
    keys = _stateless_seed(seed)
    (mu_m, sd_m), (mu_s, sd_s) = (tuple(tf.constant(np.asarray(v, np.float32)) for v in statistics[k])
                                  for k in ("mean", "std"))
    target_mean = mu_m + sd_m * tf.random.stateless_normal((b, 1, 1, 3), keys[0])              # (B, 1, 1, 3)
    target_std = tf.maximum(mu_s + sd_s * tf.random.stateless_normal((b, 1, 1, 3), keys[1]), 1e-3)
    mean = tf.reduce_mean(lab, (1, 2), keepdims=True)
    std = tf.maximum(tf.math.reduce_std(lab, (1, 2), keepdims=True), 1e-3)
    return lab_to_rgb((lab - mean) / std * target_std + target_mean)
