"""The VGG-style CNN for image tiles (HMT's, ``hmt_utils.build_model``): three blocks of two 3 x 3
convolutions, smooth activations and average pooling, global average pooling and a linear classifier,
with the padding and the first layer that keep a map free of the network's own marks.

Axis key: N tiles, H, W tile size, K classes; w, 2w, w3 channels of the three blocks.
"""
from __future__ import annotations

from xai.training.padding import reflect_padding

__all__ = ["build_vgg7"]


def build_vgg7(num_classes: int, input_shape: tuple, *, width: int = 32, seed: int = 0, activation: str = "gelu",
               dropout: float = 0.2, padding: str = "valid", block3_width: int = 192, stem_width: int = 0,
               stem_kernel: int = 3, name: str = "vgg7"):
    """A VGG-7: three blocks of two 3x3 conv + batch norm + activation, 2x2 pooling between blocks,
    global average pooling, a linear classifier and a separate softmax layer (so the pre-softmax
    scores are one layer away).

    Valid convolutions: no layer pads its input, so no unit ever sees a border that is not tissue.
    With "same" zero padding every near-white tile (empty, adipose) meets a black frame at every
    layer, and a model trained that way learns to use the frame (its Grad-CAM mass piles up in the
    tile's outer band). Valid convolutions lose only one pixel a side a layer, but see a border pixel
    fewer times than a central one: |IG| of the committed model is 3.9 times as high in the central
    112 px as outside it (16 course test tiles, ``xai.analysis.artefacts.map_artefacts``). ``padding="reflect"`` pads every
    convolution's input with its own mirror (``xai.training.padding.reflect_padding``, Keras's own
    layers: the file still loads anywhere) and pools with "same" padding, so no row is dropped.
    ``stem_kernel=4``: the stride-2 first convolution's 4 x 4 windows overlap every pixel equally; 3 x 3
    windows at stride 2 overlap alternate pixels once and twice, a checkerboard in every gradient map
    (the committed model's |IG| columns alternate by 0.51).

    Smooth by design: GELU in place of ReLU and average in place of max pooling make the score an
    analytic function of the pixels, so Integrated Gradients' path integrand is smooth and 32
    Gauss-Legendre points meet completeness to well under 1 % on every tile.

    Channels: width, 2 * width and block3_width (0: 4 * width) in the three blocks.

    Input: raw RGB tiles, float32 (None, H, W, 3), values 0-255; the model scales its own input.
    ``input_shape=(None, None, 3)`` builds the same network for any tile size (training on crops).
    The first convolution has stride 2 (it quarters the cost); with ``stem_width`` > 0 it runs at
    full resolution with that many channels and is followed by 2 x 2 average pooling instead (it sees
    every pixel's neighbourhood at 0.495 um/px, for a sixth more cost with 16 channels). Feature maps
    with valid padding: 74 -> 72, pool 36 -> 34 -> 32, pool 16 -> 14 -> 12 (the last feature map,
    after its activation, is where Grad-CAM looks); with reflect padding 75 -> 75, pool 38, pool 19.
    Output: probabilities (None, num_classes).
    """
    import keras
    from keras import layers
    if padding not in ("valid", "same", "reflect"):
        raise ValueError(f"padding must be 'valid', 'same' or 'reflect', got {padding!r}")
    if stem_kernel not in (3, 4) or (stem_width and stem_kernel != 3):
        raise ValueError(f"stem_kernel must be 3 or 4, and 3 with a full-resolution stem (stem_width > 0); got "
                         f"stem_kernel={stem_kernel!r}, stem_width={stem_width!r}")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes must be an int >= 2, got {num_classes!r}")
    x = keras.Input(tuple(input_shape), name="tile")                     # (N, H, W, 3), 0-255
    h = _vgg_blocks(layers.Rescaling(1 / 255.0, name="rescale")(x), width, block3_width or 4 * width, seed,
                    activation, padding, stem_width, stem_kernel)       # (N, 12, 12, w3); reflect: 19 x 19
    h = layers.GlobalAveragePooling2D(name="gap")(h)                     # (N, w3)
    h = layers.Dropout(dropout, seed=seed, name="dropout")(h)
    logits = layers.Dense(num_classes, kernel_initializer=keras.initializers.GlorotUniform(seed=seed + 6),
                          name="logits")(h)                              # (N, K)
    prob = layers.Softmax(name="softmax")(logits)
    return keras.Model(x, prob, name=name)


def _vgg_blocks(h, width: int, w3: int, seed: int, activation: str, padding: str, stem_width: int, stem_kernel: int):
    """The three blocks of :func:`build_vgg7` on the rescaled tiles h (N, H, W, 3); shapes for 150 x 150: valid
    padding (reflect padding in brackets, where pooling pads odd sizes instead of dropping a row)."""
    import keras
    from keras import layers
    init = lambda i: keras.initializers.HeNormal(seed=seed + i)  # noqa: E731  one seed per layer
    pool = lambda name: layers.AveragePooling2D(2, padding="same" if padding == "reflect" else "valid", name=name)  # noqa: E731

    def conv(h, filters, i, name, strides=1, kernel=3):
        if padding == "reflect":
            h = reflect_padding(f"{name}_pad")(h)
        h = layers.Conv2D(filters, kernel, strides=strides, padding="valid" if padding == "reflect" else padding,
                          use_bias=False, kernel_initializer=init(i), name=name)(h)
        h = layers.BatchNormalization(name=f"{name}_bn")(h)
        return layers.Activation(activation, name=f"{name}_{activation}")(h)

    if stem_width:   # full resolution, then pooled: (N, 148, 148, s) -> (N, 74, 74, s)
        h = pool("block1_stem_pool")(conv(h, stem_width, 0, "block1_conv1"))
    else:
        h = conv(h, width, 0, "block1_conv1", strides=2, kernel=stem_kernel)   # (N, 74, 74, w) [75]
    h = conv(h, width, 1, "block1_conv2")                                # (N, 72, 72, w) [75]
    h = pool("block1_pool")(h)                                           # (N, 36, 36, w) [38]
    h = conv(h, 2 * width, 2, "block2_conv1")                            # (N, 34, 34, 2w) [38]
    h = conv(h, 2 * width, 3, "block2_conv2")                            # (N, 32, 32, 2w) [38]
    h = pool("block2_pool")(h)                                           # (N, 16, 16, 2w) [19]
    h = conv(h, w3, 4, "block3_conv1")                                   # (N, 14, 14, w3) [19]
    return conv(h, w3, 5, "block3_conv2")                                # last conv: (N, 12, 12, w3) [19]
