"""Class activation maps, 1D and 2D: Grad-CAM, Grad-CAM++ and Score-CAM.

All three explain one layer (``xai.layers.find_layer``: by default the last spatial feature map;
``layer=`` any spatial layer at any depth, nested backbones included, through ``xai.core.Forward``)
and give maps (N, T) or (N, H, W), non-negative, computed at the layer's resolution and upsampled to
the input (linear in 1D, bilinear in 2D, half-pixel centres), outside any XLA step.

Axis key: N examples, T signal length, H, W image size, C channels, K classes, F feature channels of
the layer, t or h, w its positions, E examples in one call, G channels (masked inputs) in one call.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from xai.core import (
    SCORES,
    Forward,
    cached_step,
    check_batch_size,
    check_choice,
    check_flag,
    check_input,
    even_chunk,
    explained_classes,
    feature_gradients,
    masked_scores_step,
    padded_batches,
    predict_scores,
    progress_bar,
)
from xai.layers import find_layer
from xai.maps import resize_maps, upsample

__all__ = ["grad_cam", "grad_cam_plus_plus", "score_cam"]


def _front(model, x, class_index, layer, batch_size, score, jit_compile):
    """The checks the CAM methods share: (x, the layer, the classes, batch_size, jit_compile)."""
    x = check_input(model, x)
    batch_size = check_batch_size(batch_size)
    check_choice(score, SCORES, "score")
    jit_compile = check_flag(jit_compile, "jit_compile")
    target = find_layer(model, layer)
    classes = explained_classes(model, x, class_index, batch_size=batch_size)
    return x, target, classes, batch_size, jit_compile


# --- Grad-CAM ---

def _grad_cam_step(model, target, score: str, jit_compile: bool):
    """(xb (B, ...), cb (B,)) -> cam (B, t) or (B, h, w) at the feature map's resolution."""
    forward = Forward(model, (target,), score)

    def step(xb, cb):
        features, grads = feature_gradients(forward, xb, cb)        # (B, ..., F) each, float32
        axes = list(range(1, len(features.shape) - 1))
        weights = tf.reduce_mean(grads, axis=axes, keepdims=True)   # (B, 1.., F)
        return tf.nn.relu(tf.reduce_sum(weights * features, axis=-1))   # (B, ...)
    return tf.function(step, jit_compile=jit_compile, reduce_retracing=True)


def grad_cam(model, x, class_index=None, *, layer=None, batch_size: int = 64, score: str = "logit",
             jit_compile: bool = False, progress=None) -> np.ndarray:
    """Grad-CAM (Selvaraju et al., ICCV 2017): ReLU of a layer's feature maps weighted by the
    spatial mean of the score's gradient, upsampled to the input.

    Args:
        model: a Keras model (Sequential or functional; legacy HDF5 models included).
        x: float32 (N, T, C) or (N, H, W, C).
        class_index: None (each example's predicted class), an int, or an int array (N,).
        layer: the layer explained (name or object, at any depth; see :func:`find_layer`). None:
            the last layer whose output is still a spatial feature map before pooling or flattening
            (for a Conv-BN-Activation block, the Activation).
        batch_size: examples per gradient call (a positive int).
        score: "logit" (the paper's y^c, pre-softmax) or "probability".
        jit_compile: compile the gradient step with XLA (the upsampling stays outside it, so the
            maps equal those without XLA up to float rounding).
        progress: show a progress bar (None: when there are more than 20 batches).

    Returns:
        float32 (N, T) or (N, H, W), non-negative, not normalised; upsampled linearly (1D) or
        bilinearly (2D) with half-pixel centres.
    """
    x, target, classes, batch_size, jit_compile = _front(model, x, class_index, layer, batch_size, score, jit_compile)
    return _maps_at_layer(cached_step(model, _grad_cam_step, target, score, jit_compile), x, classes, batch_size,
                          "Grad-CAM", progress)


def _maps_at_layer(step, x, classes, batch_size: int, desc: str, progress) -> np.ndarray:
    """``step(xb, cb)`` -> maps at the layer's resolution, over fixed-size batches, upsampled to the
    input outside the step: float32 (N, T) or (N, H, W). The loop of Grad-CAM and Grad-CAM++."""
    chunk = min(batch_size, len(x))                                     # one shape for every call of N >= batch
    spatial = tuple(x.shape[1:-1])                                      # (T,) or (H, W)
    out = np.empty((len(x),) + spatial, np.float32)
    with progress_bar(int(np.ceil(len(x) / chunk)), desc, progress) as bar:
        for a, b, (xb, cb) in padded_batches(len(x), chunk, x, classes):
            out[a:b] = upsample(step(xb, cb), spatial).numpy()[: b - a]
            bar.update()
    return out


# --- Grad-CAM++ ---

def _grad_cam_plus_plus_step(model, target, score: str, jit_compile: bool):
    """(xb (B, ...), cb (B,)) -> cam (B, t) or (B, h, w) at the feature map's resolution."""
    forward = Forward(model, (target,), score)

    def step(xb, cb):
        features, grads = feature_gradients(forward, xb, cb)            # (B, ..., F) each, float32
        axes = list(range(1, len(features.shape) - 1))
        # the closed form for an exponential score Y = exp(S): its 2nd and 3rd derivatives are
        # exp(S) g² and exp(S) g³ (higher derivatives of S taken as 0), and exp(S) cancels in alpha
        g2 = grads * grads
        total = tf.reduce_sum(features, axis=axes, keepdims=True)       # (B, 1.., F)
        denominator = 2 * g2 + total * g2 * grads                       # g² (2 + sum A g)
        # the closed form assumes A >= 0 (after a ReLU); where sum A g <= -2 it would flip or blow up
        # alpha, so those positions get alpha = 0 (as do those with g = 0) instead of a wrong sign
        alpha = tf.where(denominator > 0, g2 / tf.where(denominator > 0, denominator, 1.0), 0.0)   # (B, ..., F)
        weights = tf.reduce_sum(alpha * tf.nn.relu(grads), axis=axes, keepdims=True)   # (B, 1.., F)
        return tf.nn.relu(tf.reduce_sum(weights * features, axis=-1))  # (B, ...)
    return tf.function(step, jit_compile=jit_compile, reduce_retracing=True)


def grad_cam_plus_plus(model, x, class_index=None, *, layer=None, batch_size: int = 64, score: str = "logit",
                       jit_compile: bool = False, progress=None) -> np.ndarray:
    """Grad-CAM++ (Chattopadhay et al., WACV 2018): ReLU of a layer's feature maps A^k weighted by
    w_k = sum_ij alpha_ij^k ReLU(g_ij^k), with g the gradient of the score S with respect to A and
    the paper's closed form for an exponential score, alpha = g² / (2 g² + sum_ab A_ab^k g³).

    The weights use the gradients of S itself, as the paper's code and most implementations do (the
    paper's dY/dA = exp(S) g would scale every weight of a map by exp(S), which overflows for large
    logits and changes no map's shape). The closed form assumes non-negative feature maps (after a
    ReLU); on a layer with negative values (tanh, BatchNorm, a pre-activation convolution) its
    denominator g² (2 + sum A g) can reach 0 or go negative, which would flip the sign of alpha, so
    alpha is 0 wherever the denominator is not positive (and where g = 0).

    Args:
        model: a Keras model; x: float32 (N, T, C) or (N, H, W, C).
        class_index: None (each example's predicted class), an int, or an int array (N,).
        layer: the layer explained, as for Grad-CAM (:func:`xai.layers.find_layer`).
        batch_size: examples per gradient call.
        score: "logit" (the paper's S, pre-softmax) or "probability".
        jit_compile: compile the gradient step with XLA (the upsampling stays outside it).
        progress: show a progress bar (None: when there are more than 20 batches).

    Returns:
        float32 (N, T) or (N, H, W), non-negative, not normalised.
    """
    x, target, classes, batch_size, jit_compile = _front(model, x, class_index, layer, batch_size, score, jit_compile)
    return _maps_at_layer(cached_step(model, _grad_cam_plus_plus_step, target, score, jit_compile), x, classes,
                          batch_size, "Grad-CAM++", progress)


# --- Score-CAM ---

def _features_step(model, target, jit_compile: bool):
    """xb (E, ...) -> the layer's feature maps (E, ..., F), float32."""
    forward = Forward(model, (target,), "logit")
    return tf.function(lambda xb: tf.cast(forward(xb)[0][0], tf.float32), jit_compile=jit_compile,
                       reduce_retracing=True)


def _score_cam_mask_step(model, spatial: tuple):
    """(features (E, ..., F), channels (G,)) -> those channels upsampled to the input and min-max
    normalised per example and channel (a constant map becomes 0): masks (E, G, *spatial)."""
    def step(features, channels):
        maps = tf.gather(features, channels, axis=-1)                   # (E, ..., G)
        rank = len(maps.shape)
        maps = tf.transpose(maps, [0, rank - 1] + list(range(1, rank - 1)))   # (E, G, ...)
        lead = tf.shape(maps)[:2]
        up = resize_maps(tf.reshape(maps, tf.concat([[-1], tf.shape(maps)[2:]], 0)), spatial)   # (E*G, *spatial)
        axes = list(range(1, len(spatial) + 1))
        lo = tf.reduce_min(up, axis=axes, keepdims=True)
        up = tf.math.divide_no_nan(up - lo, tf.reduce_max(up, axis=axes, keepdims=True) - lo)
        return tf.reshape(up, tf.concat([lead, spatial], 0))           # (E, G, *spatial)
    return tf.function(step, reduce_retracing=True)


def score_cam(model, x, class_index=None, *, layer=None, batch_size: int = 256, score: str = "probability",
              jit_compile: bool = False, progress=None) -> np.ndarray:
    """Score-CAM (Wang et al., CVPR workshops 2020, "Score-CAM: score-weighted visual explanations
    for convolutional neural networks"): ReLU(sum_k w_k A^k) over a layer's feature maps A^k, where
    w_k = S(x * H_k) - S(x_b) is the class score's increase when the input is masked by H_k, A^k
    upsampled to the input and min-max normalised to [0, 1] (a constant map gives a zero mask), over
    the score of the baseline x_b = 0 (the input masked by zeros).

    Every example costs F forward passes (one per channel); the masked inputs of several channels
    and examples share a call, at most ``batch_size`` of them, so memory stays bounded.

    Args:
        model: a Keras model; x: float32 (N, T, C) or (N, H, W, C).
        class_index: None (each example's predicted class), an int, or an int array (N,).
        layer: the layer explained, as for Grad-CAM (:func:`xai.layers.find_layer`).
        batch_size: masked inputs per call.
        score: "probability" (the paper: the softmax score's increase) or "logit".
        jit_compile: compile the feature and scoring steps with XLA (the masks' upsampling stays outside).
        progress: show a progress bar (None: when there are more than 20 calls).

    Returns:
        float32 (N, T) or (N, H, W), non-negative, not normalised.
    """
    x, target, classes, batch_size, jit_compile = _front(model, x, class_index, layer, batch_size, score, jit_compile)
    spatial = tuple(x.shape[1:-1])
    n_channels = int(target.output.shape[-1])
    g_chunk = even_chunk(n_channels, batch_size)                        # channels per call
    e_chunk = max(1, min(batch_size // g_chunk, len(x)))               # examples per call
    features_step = cached_step(model, _features_step, target, jit_compile)
    mask_step = cached_step(model, _score_cam_mask_step, spatial)
    score_step = cached_step(model, masked_scores_step, score, jit_compile)
    baseline = predict_scores(model, np.zeros((1,) + x.shape[1:], np.float32), score=score, check=False)[0]   # (K,)

    out = np.empty((len(x),) + spatial, np.float32)
    n_calls = int(np.ceil(len(x) / e_chunk)) * int(np.ceil(n_channels / g_chunk))
    with progress_bar(n_calls, "Score-CAM", progress) as bar:
        for a, b, (xb, cb) in padded_batches(len(x), e_chunk, x, classes):
            features = features_step(xb)                                # (E, ..., F)
            weights = np.empty((e_chunk, n_channels), np.float32)       # (E, F)
            every_channel = np.arange(n_channels, dtype=np.int32)
            for g0, g1, (channels,) in padded_batches(n_channels, g_chunk, every_channel):   # padding: channel 0
                masks = mask_step(features, channels)                   # (E, G, *spatial)
                weights[:, g0:g1] = score_step(xb, masks, cb).numpy()[:, : g1 - g0]
                bar.update()
            weights -= baseline[cb.numpy()][:, None]
            cam = np.maximum(np.einsum("e...f,ef->e...", features.numpy(), weights), 0)   # (E, t) or (E, h, w)
            out[a:b] = upsample(tf.constant(cam), spatial).numpy()[: b - a]
    return out
