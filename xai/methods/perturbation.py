"""Perturbation-based explanations, 1D and 2D: RISE and SISE.

Both score masked copies of the input with the model and share the core (``xai/core.py``): input
validation, the score being explained, class indices, fixed-shape batches, compiled steps, and the
scoring of masked inputs (:func:`xai.core.masked_scores`, also Score-CAM's).

Axis key: N examples, T signal length, H, W image size, C channels, K classes, S masks,
E examples in one call, M masks in one call, g grid cells per axis.
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from xai.core import (
    Forward,
    batches,
    cached_step,
    check_batch_size,
    check_flag,
    check_input,
    check_number,
    even_chunk,
    explained_classes,
    masked_scores,
    masked_scores_step,
    pad_to,
    padded_batches,
    progress_bar,
    score_model,
)
from xai.layers import lookup_layer, sise_layers
from xai.maps import minmax, resize_maps, upsample

__all__ = ["rise", "rise_masks", "sise"]


# --- RISE ---

def _rise_grid(n_masks: int, spatial: tuple, cell_size, p_keep: float, seed: int):
    """The low-resolution random grids and shifts of every mask, drawn at once from ``seed``:
    grids float32 (S, g+1[, g+1]) of 0/1, shifts int32 (S, D), and the cell size per axis."""
    check_number("n_masks", n_masks, low=1, integer=True)
    check_number("p_keep", p_keep, low=0, high=1, low_open=True)
    check_number("seed", seed, low=0, integer=True)
    if cell_size is None:
        cells = tuple(int(np.ceil(n / 8)) for n in spatial)
    else:
        values = np.atleast_1d(np.asarray(cell_size))
        if values.dtype.kind not in "iu" or values.ndim != 1 or len(values) not in (1, len(spatial)):
            raise ValueError(f"cell_size must be None, an int, or one int per spatial axis {spatial}, got {cell_size!r}")
        cells = tuple(int(c) for c in np.broadcast_to(values, (len(spatial),)))
    if min(cells) < 1 or any(c > n for c, n in zip(cells, spatial)):
        raise ValueError(f"cell_size must be between 1 and the input size {spatial}, got {cell_size!r}")
    grid = tuple(int(np.ceil(n / c)) + 1 for n, c in zip(spatial, cells))          # (g+1, ...)
    keys = tf.constant([seed, 0], tf.int64), tf.constant([seed, 1], tf.int64)
    grids = tf.cast(tf.random.stateless_uniform((n_masks,) + grid, keys[0]) < p_keep, tf.float32)
    shifts = tf.stack([tf.random.stateless_uniform((n_masks,), tf.stack([keys[1][0], keys[1][1] + d]),
                                                   0, c, dtype=tf.int64)
                       for d, c in enumerate(cells)], axis=1)                     # (S, D)
    return grids, tf.cast(shifts, tf.int32), cells


def _expand_masks(grids, shifts, cells, spatial):
    """Upsample (bilinear) the grids to (g+1) * cell and crop each at its own shift: (M, *spatial)."""
    big = tuple((g) * c for g, c in zip(grids.shape[1:], cells))
    up = resize_maps(grids, big)                                                     # (M, *big)
    for axis, n in enumerate(spatial):
        idx = shifts[:, axis:axis + 1] + tf.range(n)[None]                         # (M, n)
        up = tf.gather(up, idx, axis=axis + 1, batch_dims=1)
    return up


def rise_masks(n_masks: int, spatial: tuple, *, cell_size=None, p_keep: float = 0.5, seed: int = 0) -> np.ndarray:
    """The RISE masks as float32 (S, T) or (S, H, W) in [0, 1], for inspection and tests."""
    grids, shifts, cells = _rise_grid(n_masks, tuple(spatial), cell_size, p_keep, seed)
    return _expand_masks(grids, shifts, cells, tuple(spatial)).numpy()


def _rise_mask_step(model, cells: tuple, spatial: tuple):
    """(grids, shifts, valid (M,)) -> masks (M, ...); padded masks (valid 0) are all zeros."""
    def step(gb, sb, vb):
        return _expand_masks(gb, sb, cells, spatial) * tf.reshape(vb, [-1] + [1] * len(spatial))
    return tf.function(step, reduce_retracing=True)


def _rise_score_step(model, score: str, jit_compile: bool):
    """(xb (E, ..., C), masks (M, ...), cb (E,)) -> sum over masks of score x mask, (E, ...)."""
    score_fn = score_model(model, score)

    def step(xb, masks, cb):
        picked = masked_scores(score_fn, xb, masks[None], cb)                     # (E, M): every example, every mask
        flat_masks = tf.reshape(masks, [tf.shape(masks)[0], -1])                  # (M, D)
        return tf.reshape(picked @ flat_masks, tf.concat([[-1], tf.shape(masks)[1:]], 0))   # (E, ...)
    return tf.function(step, jit_compile=jit_compile, reduce_retracing=True)


def rise(model, x, class_index=None, *, n_masks: int = 4000, cell_size=None, p_keep: float = 0.5,
         batch_size: int = 256, score: str = "probability", seed: int = 0, jit_compile: bool = False,
         progress=None) -> np.ndarray:
    """RISE (Petsiuk, Das and Saenko, BMVC 2018): the mean of random masks weighted by the score of
    the masked input, divided by ``p_keep``.

    Masks: binary grids with cells of ``cell_size`` positions/pixels kept with probability
    ``p_keep``, upsampled (linear in 1D, bilinear in 2D) to one cell more than the input and cropped
    at a random shift, all generated in TensorFlow from ``seed`` (the same seed gives the same map,
    whatever ``batch_size``).

    Args:
        model: a Keras model; x: float32 (N, T, C) or (N, H, W, C).
        class_index: None (predicted class), an int, or an int array (N,).
        n_masks: masks S (the paper: 4000 for ImageNet).
        cell_size: cell size per axis in input positions; None means input size / 8 (the paper's
            7 x 7 grid on 224 px is cells of 32 px).
        p_keep: probability of keeping a cell (the paper: 0.5).
        batch_size: model inputs per call (examples x masks).
        score: "probability" (the paper) or "logit".
        seed: seeds the masks.

    Returns:
        float32 (N, T) or (N, H, W) saliency.
    """
    x = check_input(model, x)
    batch_size = check_batch_size(batch_size)
    spatial = tuple(x.shape[1:-1])
    grids, shifts, cells = _rise_grid(n_masks, spatial, cell_size, p_keep, seed)
    classes = explained_classes(model, x, class_index, batch_size=batch_size)
    m_chunk = even_chunk(n_masks, batch_size)           # masks per call
    e_chunk = max(1, min(batch_size // m_chunk, len(x)))  # examples per call, no more than there are
    # masks are made outside the (optionally XLA-compiled) scoring step: XLA's bilinear resize
    # differs from TensorFlow's at odd factors, so only the model and the weighting are compiled
    make_masks = cached_step(model, _rise_mask_step, cells, spatial)
    step = cached_step(model, _rise_score_step, score, check_flag(jit_compile, "jit_compile"))

    out = np.zeros((len(x),) + spatial, np.float32)
    grids, shifts = grids.numpy(), shifts.numpy()
    n_calls = int(np.ceil(len(x) / e_chunk)) * int(np.ceil(n_masks / m_chunk))
    with progress_bar(n_calls, "RISE", progress) as bar:
        ones = np.ones(n_masks, np.float32)
        for a, b, (xb, cb) in padded_batches(len(x), e_chunk, x, classes):
            for _, _, (gb, sb, valid) in padded_batches(n_masks, m_chunk, grids, shifts, ones):  # padded: weigh 0
                masks = make_masks(gb, sb, valid)
                out[a:b] += step(xb, masks, cb).numpy()[: b - a]
                bar.update()
    return out / (n_masks * p_keep)


# --- SISE ---

def _resolve_layers(model, layers):
    """SISE's block outputs: None finds them; else names or layer objects at any depth (nested
    models included; a repeated name means its last layer), each with a spatial feature map."""
    if layers is None:
        return sise_layers(model)
    if isinstance(layers, (str, keras.layers.Layer)) or not hasattr(layers, "__iter__"):
        raise ValueError(f"layers must be a list of layer names or objects, got {layers!r}")
    layers = list(layers)
    if not layers:
        raise ValueError("layers must name at least one layer")

    def hint():
        try:
            return f"SISE needs feature-map layers such as {[v.name for v in sise_layers(model)]}"
        except ValueError:
            return "SISE needs layers that output spatial feature maps"
    return [lookup_layer(model, lay, hint) for lay in layers]


def _otsu(values: np.ndarray, bins: int = 64) -> float:
    """Otsu's threshold of a map: the cut maximising the between-class variance."""
    hist, edges = np.histogram(values, bins=bins)
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centres) / np.maximum(w0, 1)
    m1 = ((hist * centres).sum() - np.cumsum(hist * centres)) / np.maximum(w1, 1)
    between = w0 * w1 * (m0 - m1) ** 2
    return float(centres[np.argmax(between)])


def _fuse(maps: list, softness: float) -> np.ndarray:
    """Block-wise fusion from low to high level: add the next map and gate by its soft Otsu mask."""
    fused = minmax(maps[0])
    for nxt in maps[1:]:
        nxt = minmax(nxt)
        gate = 1 / (1 + np.exp(-(nxt - _otsu(nxt)) / softness))
        fused = minmax((fused + nxt) * gate)
    return fused


def _sise_feature_step(model, targets: tuple, score: str, jit_compile: bool):
    """(x (...), c) -> per block: (feature maps (F, t..) at their own resolution, mean gradients (F,))."""
    forward = Forward(model, targets, score)

    def step(xb, cb):
        with tf.GradientTape() as tape:
            feats, scores = forward(xb[None])
            picked = tf.gather(scores[0], cb)
        grads = tape.gradient(picked, feats)
        out = []
        for f, g in zip(feats, grads):
            f, g = tf.cast(f, tf.float32), tf.cast(g, tf.float32)                        # mixed precision
            axes = list(range(1, len(f.shape) - 1))
            keep = tf.reduce_mean(g, axis=axes)[0]                                      # (F,)
            maps = tf.transpose(f[0], [len(f.shape) - 2] + list(range(len(f.shape) - 2)))  # (F, ...)
            out.append((maps, keep))
        return out
    return tf.function(step, jit_compile=jit_compile, reduce_retracing=True)


def _masked_copy_scores(score_step, xi, ci, masks: np.ndarray, chunk: int, pad: bool) -> np.ndarray:
    """The score of one example ``xi`` (..., C) for class ``ci`` under each mask, ``chunk`` masks a
    call: masks float32 (S, ...) -> float32 (S,). Calls of varying size share one trace
    (reduce_retracing); under XLA (``pad``), where every size would compile anew, they are padded to one size."""
    scores = [np.zeros(0, np.float32)]
    for a, b in batches(len(masks), chunk):
        mb = tf.constant(pad_to(masks[a:b], chunk) if pad else masks[a:b])                 # (M, ...)
        scores.append(score_step(xi[None], mb[None], ci[None]).numpy()[0, : b - a])     # (1, M) -> (M,)
    return np.concatenate(scores)


def sise(model, x, class_index=None, *, layers=None, grad_threshold: float = 0.0, batch_size: int = 256,
         score: str = "probability", softness: float = 0.05, jit_compile: bool = False, progress=None):
    """SISE (Sattarzadeh et al., AAAI 2021, "Explaining convolutional neural networks through
    attribution-based input sampling and block-wise feature aggregation").

    For each block (``layers``; None: the layers right before each pooling layer), the feature maps
    whose spatially averaged gradient exceeds ``grad_threshold`` are upsampled to the input
    (linear/bilinear), min-max normalised into masks, and scored by the model on the masked input,
    as in RISE; the block's map is the score-weighted mean of its masks. The block maps are fused
    from low to high level by adding and gating with a soft Otsu threshold (``softness`` is the
    width of the sigmoid around the threshold, on maps scaled to [0, 1]).

    Args:
        model: a Keras model; x: float32 (N, T, C) or (N, H, W, C).
        class_index: None (predicted class), an int, or an int array (N,).
        layers: names or layer objects of the block outputs; None finds them.
        batch_size: model inputs per call (masked copies).
        score: "probability" (the paper) or "logit".

    Returns:
        float32 (N, T) or (N, H, W) in [0, 1].
    """
    x = check_input(model, x)
    batch_size = check_batch_size(batch_size)
    check_number("grad_threshold", grad_threshold)
    check_number("softness", softness, low=0, low_open=True)
    jit_compile = check_flag(jit_compile, "jit_compile")
    targets = _resolve_layers(model, layers)
    classes = explained_classes(model, x, class_index, batch_size=batch_size)
    spatial = tuple(x.shape[1:-1])
    features_step = cached_step(model, _sise_feature_step, tuple(targets), score, jit_compile)
    # the masks of every block are scored together, so one tile's masks fill whole calls
    chunk = min(batch_size, sum(int(t.output.shape[-1]) for t in targets))
    score_step = cached_step(model, masked_scores_step, score, jit_compile)

    out = np.zeros((len(x),) + spatial, np.float32)
    with progress_bar(len(x), "SISE", progress) as bar:
        for i in range(len(x)):
            xi, ci = tf.constant(x[i]), tf.constant(classes[i])
            per_block = []
            for maps, keep in features_step(xi, ci):
                maps, keep = upsample(maps, spatial).numpy(), keep.numpy()   # (F, ...) at the input's size
                selected = maps[keep > grad_threshold]                      # (F', ...)
                per_block.append(minmax(selected.reshape(len(selected), -1), axis=1).reshape(selected.shape)
                                 if len(selected) else selected)
            sizes = [len(block) for block in per_block]
            masks = np.concatenate(per_block)                               # (sum F', ...)
            del per_block                                                   # one copy of the masks at a time
            weights = _masked_copy_scores(score_step, xi, ci, masks, chunk, pad=jit_compile)   # (sum F',)
            block_maps, start = [], 0
            for size in sizes:
                block = slice(start, start + size)
                start += size
                block_maps.append(np.tensordot(weights[block], masks[block], axes=1) / size if size
                                  else np.zeros(spatial, np.float32))
            out[i] = _fuse(block_maps, softness)
            bar.update()
    return out
