"""Real architectures: keras.applications models (weights=None, small inputs, nothing downloaded),
alone and as a nested backbone under a new head. Grad-CAM is checked against an independent
computation, IG against completeness."""
import keras
import numpy as np
import pytest
import tensorflow as tf

import xai.methods.perturbation as xp
from xai.core import predict_scores
from xai.layers import all_layers, find_layer, spatial_layers
from xai.methods.cam import grad_cam
from xai.methods.integrated_gradients import completeness_gap, integrated_gradients

# constructor, smallest input it takes, IG steps and the completeness gap they reach. MobileNetV2's
# ReLU6 saturates and cuts the path integrand into jumps, so no quadrature rule converges fast: its
# gap shrinks like 1 / steps (about 4 % at 1024 steps on raw 0-255 inputs), and the test says so.
APPS = {
    "MobileNetV2": (keras.applications.MobileNetV2, 32, (256, 0.15)),
    "ResNet50": (keras.applications.ResNet50, 32, (64, 0.01)),
    "EfficientNetB0": (keras.applications.EfficientNetB0, 32, (64, 0.01)),
    "DenseNet121": (keras.applications.DenseNet121, 32, (64, 0.01)),
    "Xception": (keras.applications.Xception, 71, (64, 0.01)),
    "ConvNeXtTiny": (keras.applications.ConvNeXtTiny, 32, (64, 0.01)),
    "MobileNetV3Small": (keras.applications.MobileNetV3Small, 64, (256, 0.15)),   # 64: its last maps 2 x 2
    "MobileNetV3Large": (keras.applications.MobileNetV3Large, 64, (256, 0.15)),
}


@pytest.fixture(autouse=True)
def _seeded():
    """keras.applications draw their weights unseeded: seed every test, so each builds the same model."""
    keras.utils.set_random_seed(0)


def _inputs(size):
    return np.random.default_rng(0).uniform(0, 255, (2, size, size, 3)).astype(np.float32)


def _hand_grad_cam(features, logits_fn, x, classes, size):
    """Grad-CAM written out: gradient of the picked logit w.r.t. the features, GAP, ReLU, resize."""
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        feats, logits = logits_fn(xt)
        picked = tf.reduce_sum(tf.gather(logits, classes, batch_dims=1))
    grads = tape.gradient(picked, feats)
    cam = tf.nn.relu(tf.reduce_sum(tf.reduce_mean(grads, axis=(1, 2), keepdims=True) * feats, -1))
    return tf.image.resize(cam[..., None], (size, size), method="bilinear")[..., 0].numpy()


def _check_ig(model, x, steps_and_gap):
    steps, gap = steps_and_gap
    ig = integrated_gradients(model, x, steps=steps, batch_size=64)
    _, relative = completeness_gap(model, x, ig)
    assert relative.max() <= gap, f"completeness gap {relative} with {steps} steps"


@pytest.mark.slow                      # keras.applications
@pytest.mark.parametrize("name", list(APPS))
def test_application_alone_gets_the_hand_grad_cam_and_ig_completeness(name):
    ctor, size, steps = APPS[name]
    model = ctor(weights=None, input_shape=(size, size, 3), classes=5)
    x = _inputs(size)
    target = find_layer(model)
    # the default: the last spatial feature map, the one the final global pooling reduces
    pools = [lay for lay in all_layers(model) if isinstance(lay, keras.layers.GlobalAveragePooling2D)]
    producer = pools[-1].input._keras_history[0]
    if isinstance(producer, keras.layers.Layer):
        assert producer is target, (target.name, producer.name)
    else:                       # an operation, not a layer (ConvNeXt's residual x + y): the last layer before it
        assert target is spatial_layers(model)[-1] and target.output.shape == pools[-1].input.shape
    # MobileNetV3's head pools with keepdims and runs 1 x 1 convs on the pooled map: the default
    # passes them over (their maps have no positions); at these sizes every last map has several
    assert any(d > 1 for d in target.output.shape[1:-1]) or size < 64, target.name
    classes = predict_scores(model, x).argmax(-1)
    head = model.layers[-1]            # a Dense with softmax, or (MobileNetV3) a softmax Activation on the logits
    sub = keras.Model(model.inputs, [target.output, head.input])
    if isinstance(head, keras.layers.Dense):
        logits_fn = lambda z: (lambda f, h: (f, h @ head.kernel + head.bias))(*sub(z))  # noqa: E731
    else:
        logits_fn = sub
    expected = _hand_grad_cam(target, logits_fn, x, classes, size)
    cam = grad_cam(model, x)
    assert np.ptp(cam) > 0, "a flat map"
    assert np.abs(cam - expected).max() <= 1e-5 * max(1.0, np.abs(expected).max())
    _check_ig(model, x, steps)


@pytest.mark.slow                      # keras.applications
@pytest.mark.parametrize("name", list(APPS))
@pytest.mark.parametrize("outer", ["sequential", "functional"])
def test_application_as_a_nested_backbone_gets_the_hand_grad_cam_and_ig_completeness(name, outer):
    ctor, size, steps = APPS[name]
    backbone = ctor(weights=None, input_shape=(size, size, 3), include_top=False)
    gap, dense = keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(4, name="head")
    if outer == "sequential":
        model = keras.Sequential([keras.Input((size, size, 3)), backbone, gap, dense, keras.layers.Softmax()])
    else:
        inp = keras.Input((size, size, 3))
        model = keras.Model(inp, keras.layers.Softmax()(dense(gap(backbone(inp)))))
    x = _inputs(size)
    target = find_layer(model)                                      # found inside the backbone
    assert any(target is layer for layer in backbone.layers) and target.output is backbone.layers[-1].output
    assert find_layer(model, target.name) is target
    tap = keras.Model(backbone.inputs, [target.output, backbone.output])
    classes = predict_scores(model, x).argmax(-1)
    expected = _hand_grad_cam(target, lambda z: (lambda f, b: (f, dense(gap(b))))(*tap(z)), x, classes, size)
    cam = grad_cam(model, x)
    assert np.abs(cam - expected).max() <= 1e-5 * max(1.0, np.abs(expected).max())
    _check_ig(model, x, steps)
    if name == "MobileNetV2":                                          # the perturbation methods too
        assert xp.rise(model, x, n_masks=16).shape == (2, size, size)
        assert np.isfinite(xp.sise(model, x, batch_size=64)).all()
