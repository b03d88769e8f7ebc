"""xai/layers.py: which models are supported, the layer a method explains by default (the last spatial
feature map, whatever its type, at any depth and inside nested models), and layers looked up by name
or object in nested, non-chain, shared and repeated graphs; Grad-CAM is the probe."""
import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers

import xai.methods.perturbation as xp
from tests.conftest import tiny_conv2d
from xai.core import predict_scores
from xai.layers import find_layer, layer_tensors, spatial_layers, times_called
from xai.maps import upsample
from xai.methods.cam import grad_cam
from xai.methods.integrated_gradients import completeness_gap, integrated_gradients


def _rng(seed=0):
    return np.random.default_rng(seed)


def _x(n=3, size=12, channels=3, seed=0):
    return np.random.default_rng(seed).random((n, size, size, channels)).astype(np.float32)


# --- which models ---

def test_unusual_models_are_refused_with_what_is_supported():
    inp = keras.Input((16, 1))
    h = keras.layers.GlobalAveragePooling1D()(keras.layers.Conv1D(2, 3)(inp))
    two_out = keras.Model(inp, [keras.layers.Dense(3, name="a")(h), keras.layers.Dense(2, name="b")(h)])
    x = np.zeros((2, 16, 1), np.float32)
    with pytest.raises(ValueError, match="2 outputs; choose the one"):
        grad_cam(two_out, x)
    other = keras.Input((16, 1))
    two_in = keras.Model([inp, other], keras.layers.Dense(3)(keras.layers.Concatenate()([h, keras.layers.Flatten()(other)])))
    with pytest.raises(ValueError, match="2 inputs"):
        integrated_gradients(two_in, x)

    class Sub(keras.Model):
        def __init__(self):
            super().__init__()
            self.conv, self.pool, self.out = keras.layers.Conv1D(2, 3), keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(3)

        def call(self, z):
            return self.out(self.pool(self.conv(z)))
    sub = Sub()
    sub(x)
    with pytest.raises(ValueError, match="subclassed"):
        grad_cam(sub, x)
    with pytest.raises(ValueError, match="keras.Model"):
        grad_cam(lambda z: z, x)


# --- the default layer ---

def test_default_layer_is_the_last_spatial_feature_map_whatever_its_type():
    inp = keras.Input((12, 12, 3))
    h = layers.Conv2D(4, 3, name="c1")(inp)
    h = layers.BatchNormalization(name="bn")(h)
    h = layers.Activation("relu", name="act")(h)                      # after the last conv
    se = layers.Reshape((1, 1, 4), name="se")(layers.GlobalAveragePooling2D()(h))   # a 1x1 map: passed over
    h = layers.Multiply(name="excite")([h, se])
    out = layers.Dense(3)(layers.GlobalAveragePooling2D()(h))
    model = keras.Model(inp, out)
    assert find_layer(model).name == "excite"
    assert [lay.name for lay in spatial_layers(model)] == ["c1", "bn", "act", "se", "excite"]
    seq = keras.Sequential([keras.Input((16, 2)), layers.SeparableConv1D(3, 3, name="sep"),
                            layers.Dropout(0.1, name="drop"), layers.Flatten(), layers.Dense(2)])
    assert find_layer(seq).name == "drop"
    assert find_layer(tiny_conv2d()).name == "k2"                   # Conv with its activation built in
    with pytest.raises(ValueError, match="no layer with a spatial feature map"):
        find_layer(keras.Sequential([keras.Input((8, 1)), layers.Flatten(), layers.Dense(2)]))


def test_the_default_layer_is_found_in_a_very_deep_model():
    inp = keras.Input((32, 1))
    h = inp
    for i in range(600):                                        # deeper than Python's recursion limit allows
        h = layers.Activation("relu" if i % 2 else "linear")(layers.Conv1D(2, 1)(h) if i % 50 == 0 else h)
    model = keras.Model(inp, layers.Dense(2)(layers.GlobalAveragePooling1D()(h)))
    assert find_layer(model) is model.layers[-3]


# --- nested, non-chain, shared and repeated graphs ---

def test_a_nested_model_is_explained_as_its_inner_model_and_a_residual_model_at_all():
    inner = tiny_conv2d()
    outer = keras.Sequential([keras.Input((12, 12, 3)), keras.layers.Identity(), inner])
    x = _rng(14).uniform(0, 255, size=(3, 12, 12, 3)).astype(np.float32)
    assert find_layer(outer).name == "k2"
    np.testing.assert_allclose(grad_cam(outer, x), grad_cam(inner, x), atol=1e-6)
    np.testing.assert_allclose(integrated_gradients(outer, x), integrated_gradients(inner, x), atol=1e-5)
    # a residual (non-chain) functional model
    inp = keras.Input((16, 1))
    a = keras.layers.Conv1D(3, 3, padding="same", activation="relu", name="ra")(inp)
    b = keras.layers.Conv1D(3, 3, padding="same", name="rb")(a)
    h = keras.layers.Add()([a, b])
    h = keras.layers.Dense(2)(keras.layers.GlobalAveragePooling1D()(h))
    res = keras.Model(inp, keras.layers.Softmax()(h))
    xs = _rng(15).normal(size=(4, 16, 1)).astype(np.float32)
    cam = grad_cam(res, xs, layer="ra")
    assert cam.shape == (4, 16) and np.isfinite(cam).all()
    _, delta = integrated_gradients(res, xs, steps=128, return_delta=True)
    assert np.abs(delta).max() < 5e-2


def _backbone():
    """A small functional backbone with a residual (non-chain) graph: (12, 12, 3) -> (6, 6, 6)."""
    init = lambda i: keras.initializers.GlorotUniform(seed=40 + i)  # noqa: E731
    inp = keras.Input((12, 12, 3))
    a = layers.Conv2D(6, 3, padding="same", activation="gelu", kernel_initializer=init(0), name="bb_a")(inp)
    b = layers.Conv2D(6, 3, padding="same", activation="gelu", kernel_initializer=init(1), name="bb_b")(a)
    h = layers.Add(name="bb_add")([a, b])
    return keras.Model(inp, layers.AveragePooling2D(2, name="bb_pool")(h), name="backbone")


def test_a_layer_inside_a_backbone_of_a_non_chain_outer_model():
    backbone = _backbone()
    inp = keras.Input((12, 12, 3))
    side = layers.Conv2D(2, 2, strides=2, kernel_initializer=keras.initializers.GlorotUniform(seed=50), name="side")(inp)
    h = layers.Concatenate(name="cat")([backbone(inp), side])                  # a branch around the backbone
    dense = layers.Dense(3, kernel_initializer=keras.initializers.GlorotUniform(seed=51), name="head")
    model = keras.Model(inp, layers.Softmax()(dense(layers.GlobalAveragePooling2D()(h))))
    x = _rng(30).uniform(0, 1, size=(4, 12, 12, 3)).astype(np.float32)
    target = backbone.get_layer("bb_add")
    classes = predict_scores(model, x).argmax(-1)
    cam = grad_cam(model, x, classes, layer=target)
    # independent: the backbone's tap, then the rest of the outer graph by hand
    tap = keras.Model(backbone.inputs, [target.output, backbone.outputs[0]])
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        feats, out = tap(xt)
        tape.watch(feats)
        logits = dense(tf.reduce_mean(tf.concat([out, model.get_layer("side")(xt)], -1), axis=(1, 2)))
        picked = tf.gather(logits, classes, batch_dims=1)
    grads = tape.gradient(picked, feats)
    expected = tf.nn.relu(tf.reduce_sum(tf.reduce_mean(grads, axis=(1, 2), keepdims=True) * feats, -1))
    expected = upsample(expected, (12, 12)).numpy()
    assert expected.max() > 1e-3
    np.testing.assert_allclose(cam, expected, atol=1e-5 * max(1.0, expected.max()))
    assert find_layer(model).name == "cat"                                    # the default: the last spatial map
    _, gap = completeness_gap(model, x, integrated_gradients(model, x, classes), classes)
    assert gap.max() <= 0.01
    sise = xp.sise(model, x, classes, layers=[target, "bb_pool", "cat"])
    assert sise.shape == (4, 12, 12) and np.isfinite(sise).all()
    assert xp.rise(model, x, classes, n_masks=32).shape == (4, 12, 12)
    for bad in ([model.layers[0].name], [], "cat", ["head"]):                 # the input, none, a str, not spatial
        with pytest.raises(ValueError, match="layer"):
            xp.sise(model, x, classes, layers=bad)
    # a compiled model with a loss Keras cannot deserialise is explained the same (no recompiling)
    model.compile(loss=lambda y, p: tf.reduce_mean((y - p) ** 2))
    np.testing.assert_allclose(grad_cam(model, x, classes, layer=target, batch_size=3), cam, atol=1e-6)
    # a backbone called twice: its feature maps are ambiguous, so it is refused
    twice = keras.Model(inp, layers.Dense(2)(layers.GlobalAveragePooling2D()(
        layers.Concatenate()([backbone(inp), backbone(1.0 - inp), side]))))
    with pytest.raises(ValueError, match="runs 2 times in one call"):
        grad_cam(twice, x, layer=target)
    # two levels down in a non-chain graph: refused, saying what works
    wrap = keras.Sequential([keras.Input((12, 12, 3)), backbone], name="wrap")
    wrapped = keras.Model(inp, layers.Dense(2)(layers.GlobalAveragePooling2D()(layers.Concatenate()([wrap(inp), side]))))
    with pytest.raises(ValueError, match="two or more levels down"):
        grad_cam(wrapped, x, layer=target)


def test_a_layer_called_twice_is_refused_by_name_and_by_default():
    inp = keras.Input((12, 12, 3))
    shared = layers.Conv2D(3, 3, padding="same", name="twice")
    h = shared(layers.Conv2D(3, 1, name="first")(shared(inp)))
    out = layers.Dense(2)(layers.GlobalAveragePooling2D()(h))
    model = keras.Model(inp, out)
    assert times_called(model, shared) == 2
    with pytest.raises(ValueError, match="runs 2 times"):
        grad_cam(model, _x(), layer="twice")
    with pytest.raises(ValueError, match="runs 2 times"):
        grad_cam(model, _x())                                 # the default would be its second call
    assert grad_cam(model, _x(), layer="first").shape == (3, 12, 12)


def test_a_layer_shared_with_another_model_is_explained_in_this_model():
    shared = layers.Conv2D(4, 3, name="shared", kernel_initializer=keras.initializers.HeNormal(1))
    inp0 = keras.Input((12, 12, 3))
    keras.Model(inp0, shared(inp0))                              # its first call belongs to another model
    inp = keras.Input((12, 12, 3))
    branch = layers.Conv2D(4, 3, name="branch")(inp)
    h = layers.Add()([shared(inp), branch])                      # not a chain: the graph path
    model = keras.Model(inp, layers.Dense(3)(layers.GlobalAveragePooling2D()(h)))
    x = _x()
    cam = grad_cam(model, x, 1, layer="shared")
    # by hand: features of this model's call, gradient of the logit, weights = mean gradient
    tap = keras.Model(inp, [layer_tensors(model, shared)[1], model.output])
    with tf.GradientTape() as tape:
        feats, logits = tap(x)
        picked = logits[:, 1]
    grads = tape.gradient(picked, feats)
    weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
    raw = tf.nn.relu(tf.reduce_sum(weights * feats, -1))
    expected = tf.image.resize(raw[..., None], (12, 12), method="bilinear")[..., 0].numpy()
    np.testing.assert_allclose(cam, expected, rtol=1e-4, atol=1e-6)
