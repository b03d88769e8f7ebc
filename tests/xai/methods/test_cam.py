"""xai/methods/cam.py: Grad-CAM, Grad-CAM++ and Score-CAM against hand computations in NumPy and
TensorFlow and models with known answers; Grad-CAM on the real models."""
import keras
import numpy as np
import pytest
import tensorflow as tf

import xai.core
import xai.methods.cam as xc
from tests.conftest import resize_linear_np, tiny_conv1d, tiny_conv2d, upsample_np
from xai.layers import find_layer
from xai.methods.cam import grad_cam


def _rng(seed=0):
    return np.random.default_rng(seed)


def _features_and_logits(model, layer_name, x, classes):
    """The layer's maps A, the gradient g of the picked logit with respect to A, and the logits, by tape."""
    sub = keras.Model(model.inputs[0], [model.get_layer(layer_name).output, model.layers[-2].output])
    with tf.GradientTape() as tape:
        feats, logits = sub(tf.constant(x))
        picked = tf.reduce_sum(tf.gather(logits, classes, batch_dims=1))
    return feats.numpy().astype(np.float64), tape.gradient(picked, feats).numpy().astype(np.float64), logits.numpy()


# --- Grad-CAM against an independent hand computation ---

def _hand_grad_cam(model, layer_name, x, classes):
    conv = model.get_layer(layer_name)
    sub = keras.Model(model.inputs, [conv.output, model.layers[-2].output])   # features, logits
    with tf.GradientTape() as tape:
        feats, logits = sub(tf.constant(x))
        picked = tf.reduce_sum(tf.gather(logits, classes, batch_dims=1))
    grads = tape.gradient(picked, feats).numpy()
    feats = feats.numpy()
    weights = grads.mean(axis=tuple(range(1, grads.ndim - 1)), keepdims=True)
    cam = np.maximum((weights * feats).sum(-1), 0)                         # (N, t) or (N, h, w)
    cam = resize_linear_np(cam, x.shape[1])
    if cam.ndim == 3:
        cam = np.swapaxes(resize_linear_np(np.swapaxes(cam, 1, 2), x.shape[2]), 1, 2)
    return cam


def test_grad_cam_1d_matches_hand_computation():
    model = tiny_conv1d()
    x = _rng(7).normal(size=(6, 16, 1)).astype(np.float32)
    classes = np.array([0, 1, 2, 0, 1, 2], np.int32)
    cam = grad_cam(model, x, classes)
    assert cam.shape == (6, 16) and cam.dtype == np.float32
    np.testing.assert_allclose(cam, _hand_grad_cam(model, "c2", x, classes), atol=1e-5)


def test_grad_cam_2d_matches_hand_computation():
    model = tiny_conv2d()
    x = _rng(8).uniform(0, 255, size=(5, 12, 12, 3)).astype(np.float32)
    classes = np.array([0, 1, 2, 3, 0], np.int32)
    cam = grad_cam(model, x, classes, layer="k2")
    assert cam.shape == (5, 12, 12)
    np.testing.assert_allclose(cam, _hand_grad_cam(model, "k2", x, classes), atol=1e-5)


def test_grad_cam_batch_invariant_deterministic_and_traced_once():
    model = tiny_conv2d()
    x = _rng(9).uniform(0, 255, size=(9, 12, 12, 3)).astype(np.float32)
    ref = grad_cam(model, x, batch_size=64)
    for bs in (1, 4, 9):
        np.testing.assert_allclose(grad_cam(model, x, batch_size=bs), ref, atol=1e-6)
    np.testing.assert_array_equal(grad_cam(model, x, batch_size=64), ref)
    steps = [f for k, f in xai.core.STEPS[model].items() if k[0] == "_grad_cam_step"]
    assert len(steps) == 1 and steps[0].experimental_get_tracing_count() <= 3   # 9, then 1, 4 (relaxed)


# --- Grad-CAM++ ---

def _plus_plus_by_hand(feats, grads):
    """The closed form of Chattopadhay et al. from A and g: cam at the layer's resolution."""
    axes = tuple(range(1, feats.ndim - 1))
    total = feats.sum(axis=axes, keepdims=True)
    denominator = 2 * grads ** 2 + total * grads ** 3
    alpha = np.where(denominator != 0, grads ** 2 / np.where(denominator != 0, denominator, 1), 0)
    weights = (alpha * np.maximum(grads, 0)).sum(axis=axes, keepdims=True)       # (N, 1.., F)
    return np.maximum((weights * feats).sum(-1), 0)


@pytest.mark.parametrize("dims", ["1d", "2d"])
def test_grad_cam_plus_plus_is_the_papers_closed_form_for_an_exponential_score(dims):
    # the layer feeds GAP -> Dense, so the logit S is linear in A: g = W[k, c] / positions exactly,
    # and Y = exp(S) has derivatives exp(S) g, exp(S) g², exp(S) g³: the paper's closed form is exact
    if dims == "1d":
        model, layer, x = tiny_conv1d(), "c2", _rng(1).normal(size=(5, 16, 1))
    else:
        model, layer, x = tiny_conv2d(), "k2", _rng(1).uniform(0, 255, size=(4, 12, 12, 3))
    x = x.astype(np.float32)
    classes = np.arange(len(x)) % 3
    feats, _, logits = _features_and_logits(model, layer, x, classes)
    positions = np.prod(feats.shape[1:-1])
    w = model.layers[-2].kernel.numpy().astype(np.float64)                      # (F, K)
    g = np.broadcast_to((w[:, classes].T / positions).reshape((len(x),) + (1,) * (feats.ndim - 2) + (-1,)), feats.shape)
    y = np.exp(logits[np.arange(len(x)), classes]).reshape((-1,) + (1,) * (feats.ndim - 1))   # exp(S) (N, 1..)
    d1, d2, d3 = y * g, y * g ** 2, y * g ** 3
    axes = tuple(range(1, feats.ndim - 1))
    alpha = d2 / (2 * d2 + feats.sum(axis=axes, keepdims=True) * d3)
    paper = np.maximum(((alpha * np.maximum(d1, 0)).sum(axis=axes, keepdims=True) * feats).sum(-1), 0)
    cam = xc.grad_cam_plus_plus(model, x, classes)
    assert cam.shape == x.shape[:-1] and cam.dtype == np.float32
    # the method leaves out the positive factor exp(S) of every weight of a map
    expected = upsample_np(paper / y.reshape((-1,) + (1,) * (paper.ndim - 1)), x.shape[1:-1])
    assert expected.max() > 1e-3
    np.testing.assert_allclose(cam, expected, rtol=1e-4, atol=1e-6 * expected.max())


@pytest.mark.parametrize("dims", ["1d", "2d"])
def test_grad_cam_plus_plus_matches_a_hand_computation_on_an_earlier_layer(dims):
    # an earlier layer: the gradient varies over positions, and alpha with it
    if dims == "1d":
        model, layer, x = tiny_conv1d(), "c1", _rng(2).normal(size=(4, 16, 1))
    else:
        model, layer, x = tiny_conv2d(), "k1", _rng(2).uniform(0, 255, size=(3, 12, 12, 3))
    x = x.astype(np.float32)
    classes = np.arange(len(x)) % 3
    feats, grads, _ = _features_and_logits(model, layer, x, classes)
    assert np.ptp(grads, axis=tuple(range(1, grads.ndim - 1))).max() > 0
    expected = upsample_np(_plus_plus_by_hand(feats, grads), x.shape[1:-1])
    np.testing.assert_allclose(xc.grad_cam_plus_plus(model, x, classes, layer=layer), expected,
                               rtol=1e-4, atol=1e-6 * expected.max())


# --- Score-CAM ---

def _indicator_model(shape, classes=4, seed=0):
    """An identity 1 x 1 convolution ("ind"), GAP, a Dense head and a softmax: fed an input whose
    channel j is a_j times the indicator of a region R_j, the layer's map k is a_k 1[R_k]."""
    channels = shape[-1]
    conv = keras.layers.Conv1D if len(shape) == 2 else keras.layers.Conv2D
    pool = keras.layers.GlobalAveragePooling1D if len(shape) == 2 else keras.layers.GlobalAveragePooling2D
    inp = keras.Input(shape)
    ind = conv(channels, 1, use_bias=False, name="ind")
    head = keras.layers.Dense(classes, name="head")
    model = keras.Model(inp, keras.layers.Softmax()(head(pool()(ind(inp)))))
    ind.set_weights([np.eye(channels, dtype=np.float32).reshape(ind.kernel.shape)])
    rng = _rng(seed)
    head.set_weights([rng.normal(size=(channels, classes)).astype(np.float32) * 3,
                      rng.normal(size=classes).astype(np.float32)])
    return model, head


def _regions(shape):
    """Disjoint regions, one per channel: float (C, *spatial) of 0/1."""
    spatial, channels = shape[:-1], shape[-1]
    regions = np.zeros((channels,) + spatial)
    if len(spatial) == 1:
        for j in range(channels):
            regions[j, j * spatial[0] // channels:(j + 1) * spatial[0] // channels] = 1
    else:
        h, w = spatial
        regions[0, : h // 2, : w // 2] = 1
        regions[1, : h // 2, w // 2:] = 1
        regions[2, h // 2:] = 1
    return regions


@pytest.mark.parametrize("score", ["logit", "probability"])
@pytest.mark.parametrize("shape", [(12, 3), (8, 8, 3)])
def test_score_cam_of_indicator_maps_gives_the_known_answer(shape, score):
    model, head = _indicator_model(shape)
    regions = _regions(shape)                                                   # (C, ...)
    amplitude = np.array([[1.0, 2.0, 0.5], [0.3, 0.0, 1.5], [2.0, 1.0, 1.0]])    # (N, C); a zero channel: no mask
    x = np.moveaxis(amplitude[:, :, None] * regions.reshape(1, 3, -1), 1, -1).reshape((3,) + shape).astype(np.float32)
    classes = np.array([0, 3, 1])
    kernel, bias = (v.astype(np.float64) for v in head.get_weights())
    share = regions.reshape(3, -1).mean(1)                                      # |R_k| / positions
    softmax = lambda z: np.exp(z - z.max(-1, keepdims=True)) / np.exp(z - z.max(-1, keepdims=True)).sum(-1, keepdims=True)  # noqa: E731
    expected = np.zeros((3,) + shape[:-1])
    for n in range(3):
        c = classes[n]
        for k in range(3):
            if amplitude[n, k] == 0:                                            # a constant map: a zero mask, weight 0
                continue
            # x masked by 1[R_k] keeps channel k alone, on R_k: the pooled features are a_k |R_k| / P e_k
            logits = amplitude[n, k] * share[k] * kernel[k] + bias
            weight = (logits[c] - bias[c]) if score == "logit" else softmax(logits)[c] - softmax(bias)[c]
            expected[n] += weight * amplitude[n, k] * regions[k]
    expected = np.maximum(expected, 0)
    assert find_layer(model).name == "ind"
    cam = xc.score_cam(model, x, classes, score=score, batch_size=4)
    assert cam.shape == x.shape[:-1] and cam.dtype == np.float32 and expected.max() > 1e-3
    np.testing.assert_allclose(cam, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dims", ["1d", "2d"])
def test_score_cam_matches_a_loop_over_channels_in_numpy(dims):
    if dims == "1d":
        model, layer, x = tiny_conv1d(), "c2", _rng(3).normal(size=(3, 16, 1))
    else:
        model, layer, x = tiny_conv2d(), "k2", _rng(3).uniform(0, 255, size=(3, 12, 12, 3))
    x = x.astype(np.float32)
    classes = np.array([0, 1, 2])
    feats = keras.Model(model.inputs[0], model.get_layer(layer).output)(x).numpy().astype(np.float64)
    base = model(np.zeros((1,) + x.shape[1:], np.float32)).numpy()[0]
    expected = np.zeros(x.shape[:-1])
    for n in range(len(x)):
        weights = []
        for k in range(feats.shape[-1]):
            mask = upsample_np(feats[n, ..., k][None], x.shape[1:-1])[0]
            span = mask.max() - mask.min()
            mask = (mask - mask.min()) / span if span > 0 else np.zeros_like(mask)
            p = model((x[n] * mask[..., None])[None].astype(np.float32)).numpy()[0]
            weights.append(p[classes[n]] - base[classes[n]])
        cam = np.maximum((feats[n] * np.array(weights)).sum(-1), 0)
        expected[n] = upsample_np(cam[None], x.shape[1:-1])[0]
    assert expected.max() > 1e-4
    np.testing.assert_allclose(xc.score_cam(model, x, classes), expected, rtol=1e-4, atol=1e-5 * expected.max())


# --- nested models, compiled steps ---

def test_cams_of_a_nested_model_equal_those_of_the_inner_model():
    inner = tiny_conv2d()
    outer = keras.Sequential([keras.Input((12, 12, 3)), keras.layers.Identity(), inner])
    x = _rng(4).uniform(0, 255, size=(3, 12, 12, 3)).astype(np.float32)
    for method in (xc.grad_cam_plus_plus, xc.score_cam):
        np.testing.assert_allclose(method(outer, x), method(inner, x), atol=1e-6)
        np.testing.assert_allclose(method(outer, x, layer="k1"), method(inner, x, layer="k1"), atol=1e-6)


@pytest.mark.parametrize("method", [xc.grad_cam_plus_plus, xc.score_cam])
def test_jit_compiled_cams_agree(method):
    model = tiny_conv2d()
    x = _rng(5).uniform(0, 255, size=(3, 12, 12, 3)).astype(np.float32)
    plain, compiled = method(model, x), method(model, x, jit_compile=True)
    assert np.abs(compiled - plain).max() <= 1e-5 * max(np.abs(plain).max(), 1e-12)


def test_grad_cam_plus_plus_never_flips_sign_on_negative_maps():
    """The closed form assumes A >= 0; on a linear layer with negative values its denominator
    g² (2 + sum A g) goes negative, and alpha must be 0 there, not negative."""
    x_in = keras.Input((16, 1))
    h = keras.layers.Conv1D(1, 1, use_bias=False, kernel_initializer=keras.initializers.Ones(), name="lin")(x_in)
    h = keras.layers.GlobalAveragePooling1D()(h)
    out = keras.layers.Dense(2, kernel_initializer=keras.initializers.Constant([[1.0, 0.0]]), use_bias=False)(h)
    model = keras.Model(x_in, out)
    for mean in (-1.0, -3.0):
        x = (np.linspace(-2, 2, 16) + mean).astype(np.float32)[None, :, None]
        cam = xc.grad_cam_plus_plus(model, x, 0, layer="lin")
        plain = grad_cam(model, x, 0, layer="lin")
        assert np.isfinite(cam).all() and cam.min() >= 0
        if mean == -3.0:                                  # sum A g = -3 * 16 / 16 < -2: no evidence kept
            np.testing.assert_array_equal(cam, 0)
            np.testing.assert_array_equal(plain, 0)


# --- options checked at the door ---

def test_bad_options_of_the_cams_are_refused():
    model = tiny_conv1d()
    x = np.random.default_rng(0).uniform(0, 1, size=(3, 16, 1)).astype(np.float32)
    cases = [
        (lambda: grad_cam(model, x, score="prob"), "score"),
        (lambda: grad_cam(model, x, jit_compile="yes"), "jit_compile"),
        (lambda: xc.grad_cam_plus_plus(model, x, layer="nope"), "no layer named 'nope'"),
        (lambda: xc.score_cam(model, x, layer=model.layers[-1]), "spatial feature map"),
        (lambda: xc.score_cam(model, x, jit_compile="no"), "jit_compile"),
    ]
    for call, message in cases:
        with pytest.raises(ValueError, match=message):
            call()


# --- the real models ---

@pytest.mark.slow
def test_grad_cam_on_the_trained_models_is_non_negative_at_the_input_size(mnist1d_data, mnist1d_model, hmt_data, hmt_model):
    cam = grad_cam(mnist1d_model, mnist1d_data["x_test"][:50, :, None])
    assert cam.shape == (50, 40) and (cam >= 0).all() and (cam.max(1) > 0).mean() > 0.9
    (_, _), (x_test, _), _ = hmt_data
    cam = grad_cam(hmt_model, x_test[:16].astype(np.float32))
    assert cam.shape == (16, 150, 150) and (cam >= 0).all()
