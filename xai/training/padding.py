"""Reflect padding from Keras's own layers, so that a model that uses it saves and loads with a plain
``keras.models.load_model`` in every Keras 3 (no custom layer to register).

Why: a valid convolution sees a border pixel fewer times than a central one, so a network of them
piles its relevance in the image's centre (HMT: 3.9 times the outside's); zero padding gives every
near-white tile a black frame that a model learns to use. Reflect padding does neither: each pixel
is seen about equally often, and the pad is the image's own content.

How: for one axis, ``P`` = the map zero-padded by one row each side; the rows two below and two
above, ``D[j] = P[j + 2]`` and ``U[j] = P[j - 2]`` (zero padding then cropping: a shift); a frame
indicator ``F`` (1 on the two pad rows, from a map of ones zero-padded); then ``P + F * (D + U)``
puts row 1 in pad row 0 and row H - 2 in pad row H + 1 (at the top U is 0, at the bottom D is).
Rows first, then columns of the result, so the corners are reflected too. Every layer works on any
height, width and channel count.

Axis key: N maps, H, W size, C channels.
"""
from __future__ import annotations

import keras
from keras import layers

__all__ = ["reflect_padding"]


def _reflect_axis(h, axis: int, name: str):
    """One pixel of reflect padding each side of ``axis`` (1: rows, 2: columns) of (N, H, W, C)."""
    pad = lambda before, after: ((before, after), (0, 0)) if axis == 1 else ((0, 0), (before, after))  # noqa: E731
    p = layers.ZeroPadding2D(pad(1, 1), name=f"{name}_zero")(h)                               # (N, H + 2, W, C) rows
    down = layers.Cropping2D(pad(2, 0), name=f"{name}_down")(layers.ZeroPadding2D(pad(0, 2), name=f"{name}_down_pad")(p))
    up = layers.Cropping2D(pad(0, 2), name=f"{name}_up")(layers.ZeroPadding2D(pad(2, 0), name=f"{name}_up_pad")(p))
    ones = layers.Rescaling(0.0, offset=1.0, name=f"{name}_ones")(h)                          # (N, H, W, C) of 1
    frame = layers.Rescaling(-1.0, offset=1.0, name=f"{name}_frame")(
        layers.ZeroPadding2D(pad(1, 1), name=f"{name}_ones_pad")(ones))                      # 1 on the pad rows only
    mirrored = layers.Multiply(name=f"{name}_mirrored")([frame, layers.Add(name=f"{name}_neighbours")([down, up])])
    return layers.Add(name=f"{name}_reflected")([p, mirrored])


def reflect_padding(name: str = "reflect_pad") -> keras.Model:
    """A block (a functional Keras model used as a layer) that reflect-pads by one pixel each side:
    float (N, H, W, C) -> (N, H + 2, W + 2, C), as ``np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), "reflect")``.
    H and W must be at least 2. Built for any H, W and C; use one block per place in a network."""
    x = keras.Input((None, None, None), name=f"{name}_in")
    return keras.Model(x, _reflect_axis(_reflect_axis(x, 1, f"{name}_rows"), 2, f"{name}_cols"), name=name)
