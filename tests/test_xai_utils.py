import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import resize_linear_np, shared_path, tiny_conv1d, tiny_conv2d

import xai.core
import xai_utils as xu


def _rng(seed=0):
    return np.random.default_rng(seed)


# --- Integrated Gradients: the mathematics ---

def _linear_model(length=8, classes=3, seed=0):
    x = keras.Input((length, 1))
    h = keras.layers.Flatten()(x)
    out = keras.layers.Dense(classes, kernel_initializer=keras.initializers.RandomNormal(seed=seed),
                             bias_initializer="ones")(h)
    return keras.Model(x, out)


@pytest.mark.parametrize("method", xu.IG_METHODS)
def test_ig_is_exact_on_a_linear_model(method):
    model = _linear_model()
    w = model.layers[-1].kernel.numpy()                                  # (8, 3)
    x = _rng().normal(size=(5, 8, 1)).astype(np.float32)
    base = _rng(1).normal(size=(8, 1)).astype(np.float32)
    attr, delta = xu.integrated_gradients(model, x, 2, baseline=base, steps=7, method=method, return_delta=True)
    expected = (x - base) * w[:, 2][None, :, None]
    np.testing.assert_allclose(attr, expected, atol=1e-5)
    assert np.abs(delta).max() < 1e-4


def _sigmoid_model(length=10, seed=0):
    x = keras.Input((length, 1))
    h = keras.layers.Flatten()(x)
    out = keras.layers.Dense(1, activation="sigmoid", kernel_initializer=keras.initializers.RandomNormal(stddev=0.8, seed=seed),
                             use_bias=False)(h)
    return keras.Model(x, out)


def test_ig_gauss_legendre_matches_the_closed_form_of_a_sigmoid():
    model = _sigmoid_model()
    w = model.layers[-1].kernel.numpy()[:, 0].astype(np.float64)         # (10,)
    x = _rng(2).normal(size=(6, 10, 1)).astype(np.float32)
    attr = xu.integrated_gradients(model, x, 0, steps=32, method="gausslegendre", score="probability")
    z = x[..., 0].astype(np.float64) @ w                                 # (6,)
    # the logit of a sigmoid head is the pre-sigmoid value, linear here: IG_i = x_i w_i exactly
    np.testing.assert_allclose(xu.integrated_gradients(model, x, 0)[..., 0], x[..., 0] * w[None], rtol=1e-5, atol=1e-6)
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    # IG_i = x_i w_i * (sigma(w.x) - sigma(0)) / (w.x) for a zero baseline
    expected = x[..., 0] * w[None] * ((sig(z) - 0.5) / z)[:, None]
    np.testing.assert_allclose(attr[..., 0], expected, rtol=1e-5, atol=1e-7)


def test_ig_quadrature_rules_sum_to_one_and_gauss_legendre_integrates_polynomials():
    for method in xu.IG_METHODS:
        alphas, weights = xu.ig_nodes(9, method)
        assert alphas.min() >= 0 and alphas.max() <= 1
        assert abs(weights.sum() - 1) < 1e-12
    alphas, weights = xu.ig_nodes(4, "gausslegendre")
    assert abs((weights * alphas ** 7).sum() - 1 / 8) < 1e-12             # exact to degree 2S - 1


def test_ig_completeness_on_a_smooth_conv_net():
    model = tiny_conv1d(softmax="none")
    x = _rng(3).normal(size=(20, 16, 1)).astype(np.float32)
    _, delta = xu.integrated_gradients(model, x, steps=64, return_delta=True)
    assert np.abs(delta).max() < 5e-3


def test_ig_batch_size_invariance_and_steps_above_batch_size():
    model = tiny_conv1d()
    x = _rng(4).normal(size=(7, 16, 1)).astype(np.float32)
    ref = xu.integrated_gradients(model, x, steps=16, batch_size=1000)
    for bs in (1, 5, 16, 33):
        np.testing.assert_allclose(xu.integrated_gradients(model, x, steps=16, batch_size=bs), ref, atol=1e-6)


def test_ig_is_deterministic_and_takes_every_baseline_form():
    model = tiny_conv1d()
    x = _rng(5).normal(size=(3, 16, 1)).astype(np.float32)
    a = xu.integrated_gradients(model, x)
    np.testing.assert_array_equal(a, xu.integrated_gradients(model, x))
    np.testing.assert_allclose(xu.integrated_gradients(model, x, baseline=0.0), a, atol=1e-7)
    per_example = np.stack([np.full((16, 1), v, np.float32) for v in (0.1, 0.2, 0.3)])
    for baseline in (0.5, np.full((16, 1), 0.5), np.full((1,), 0.5), per_example):
        attr, delta = xu.integrated_gradients(model, x, baseline=baseline, steps=64, return_delta=True)
        assert attr.shape == x.shape and np.abs(delta).max() < 1e-2
    with pytest.raises(ValueError, match="baseline of shape"):
        xu.integrated_gradients(model, x, baseline=np.zeros((5, 2)))


def test_ig_gradient_step_is_traced_at_most_twice():
    model = tiny_conv1d()
    x = _rng(6).normal(size=(11, 16, 1)).astype(np.float32)
    xu.integrated_gradients(model, x, steps=8, batch_size=32)              # 4 examples a call, padded
    xu.integrated_gradients(model, x, steps=8, batch_size=32)
    steps = [f for k, f in xai.core.STEPS[model].items() if k[0] == "_ig_step"]
    assert len(steps) == 1 and steps[0].experimental_get_tracing_count() == 1
    # fewer examples than a call holds: a smaller call (no padding beyond the work), traced once
    # more with a relaxed shape that every later size reuses
    xu.integrated_gradients(model, x[:3], steps=8, batch_size=32)
    xu.integrated_gradients(model, x[:2], steps=8, batch_size=32)
    assert steps[0].experimental_get_tracing_count() <= 2


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
    cam = xu.grad_cam(model, x, classes)
    assert cam.shape == (6, 16) and cam.dtype == np.float32
    np.testing.assert_allclose(cam, _hand_grad_cam(model, "c2", x, classes), atol=1e-5)


def test_grad_cam_2d_matches_hand_computation():
    model = tiny_conv2d()
    x = _rng(8).uniform(0, 255, size=(5, 12, 12, 3)).astype(np.float32)
    classes = np.array([0, 1, 2, 3, 0], np.int32)
    cam = xu.grad_cam(model, x, classes, layer="k2")
    assert cam.shape == (5, 12, 12)
    np.testing.assert_allclose(cam, _hand_grad_cam(model, "k2", x, classes), atol=1e-5)


def test_default_layer_is_the_last_spatial_feature_map_whatever_its_type():
    from keras import layers
    inp = keras.Input((12, 12, 3))
    h = layers.Conv2D(4, 3, name="c1")(inp)
    h = layers.BatchNormalization(name="bn")(h)
    h = layers.Activation("relu", name="act")(h)                      # after the last conv
    se = layers.Reshape((1, 1, 4), name="se")(layers.GlobalAveragePooling2D()(h))   # a 1x1 map: passed over
    h = layers.Multiply(name="excite")([h, se])
    out = layers.Dense(3)(layers.GlobalAveragePooling2D()(h))
    model = keras.Model(inp, out)
    assert xu.find_layer(model).name == "excite"
    assert [lay.name for lay in xu.spatial_layers(model)] == ["c1", "bn", "act", "se", "excite"]
    seq = keras.Sequential([keras.Input((16, 2)), layers.SeparableConv1D(3, 3, name="sep"),
                            layers.Dropout(0.1, name="drop"), layers.Flatten(), layers.Dense(2)])
    assert xu.find_layer(seq).name == "drop"
    assert xu.find_layer(tiny_conv2d()).name == "k2"                   # Conv with its activation built in
    with pytest.raises(ValueError, match="no layer with a spatial feature map"):
        xu.find_layer(keras.Sequential([keras.Input((8, 1)), layers.Flatten(), layers.Dense(2)]))


def test_grad_cam_batch_invariant_deterministic_and_traced_once():
    model = tiny_conv2d()
    x = _rng(9).uniform(0, 255, size=(9, 12, 12, 3)).astype(np.float32)
    ref = xu.grad_cam(model, x, batch_size=64)
    for bs in (1, 4, 9):
        np.testing.assert_allclose(xu.grad_cam(model, x, batch_size=bs), ref, atol=1e-6)
    np.testing.assert_array_equal(xu.grad_cam(model, x, batch_size=64), ref)
    steps = [f for k, f in xai.core.STEPS[model].items() if k[0] == "_grad_cam_step"]
    assert len(steps) == 1 and steps[0].experimental_get_tracing_count() <= 3   # 9, then 1, 4 (relaxed)


def test_score_logit_bypasses_softmax_layer_and_softmax_dense():
    x = _rng(10).normal(size=(4, 16, 1)).astype(np.float32)
    with_layer, with_dense = tiny_conv1d(softmax="layer"), tiny_conv1d(softmax="dense")
    logits = xu.predict_scores(with_layer, x, score="logit")
    np.testing.assert_allclose(xu.predict_scores(with_dense, x, score="logit"), logits, atol=1e-5)
    np.testing.assert_allclose(xu.predict_scores(with_layer, x, score="probability"),
                               with_layer.predict(x, verbose=0), atol=1e-6)
    np.testing.assert_allclose(tf.nn.softmax(logits).numpy(), with_layer.predict(x, verbose=0), atol=1e-6)
    # the same Grad-CAM and IG whether the softmax is a layer or the Dense's activation
    np.testing.assert_allclose(xu.grad_cam(with_dense, x), xu.grad_cam(with_layer, x), atol=1e-5)
    np.testing.assert_allclose(xu.integrated_gradients(with_dense, x), xu.integrated_gradients(with_layer, x), atol=1e-5)


def test_probability_score_differs_from_logit():
    model = tiny_conv1d()
    x = _rng(11).normal(size=(3, 16, 1)).astype(np.float32)
    _, delta = xu.integrated_gradients(model, x, score="probability", steps=64, return_delta=True)
    assert np.abs(delta).max() < 1e-3
    assert not np.allclose(xu.integrated_gradients(model, x, score="probability"), xu.integrated_gradients(model, x))


def test_class_index_forms():
    model = tiny_conv1d()
    x = _rng(12).normal(size=(4, 16, 1)).astype(np.float32)
    predicted = model.predict(x, verbose=0).argmax(-1)
    np.testing.assert_array_equal(xu.grad_cam(model, x), xu.grad_cam(model, x, predicted))
    np.testing.assert_array_equal(xu.grad_cam(model, x, 1), xu.grad_cam(model, x, np.ones(4, int)))
    for bad in (3, -1, np.array([0, 1, 5, 0])):
        with pytest.raises(ValueError, match="out of range"):
            xu.grad_cam(model, x, bad)
    with pytest.raises(ValueError, match="expected a scalar or"):
        xu.integrated_gradients(model, x, np.array([0, 1]))


def test_errors_at_the_door():
    model = tiny_conv1d()
    x = _rng(13).normal(size=(2, 16, 1)).astype(np.float32)
    with pytest.raises(ValueError, match="single example without the batch axis"):
        xu.grad_cam(model, x[0])
    with pytest.raises(ValueError, match=r"expected \(None, 16, 1\)"):
        xu.integrated_gradients(model, x[:, :8])
    bad = x.copy()
    bad[1, 3, 0] = np.nan
    with pytest.raises(ValueError, match=r"non-finite .* \[1\]"):
        xu.grad_cam(model, bad)
    with pytest.raises(ValueError, match="unknown method"):
        xu.integrated_gradients(model, x, method="simpson")
    with pytest.raises(ValueError, match="score must be one of"):
        xu.grad_cam(model, x, score="loss")
    with pytest.raises(ValueError, match=r"no layer named 'nope'.*candidates: \['c1', 'c2'\]"):
        xu.grad_cam(model, x, layer="nope")
    with pytest.raises(ValueError, match="does not output a spatial feature map"):
        xu.grad_cam(model, x, layer=model.layers[-1])
    with pytest.raises(ValueError, match="is not a layer of model"):
        xu.grad_cam(model, x, layer=keras.layers.Dense(2))
    with pytest.raises(ValueError, match="steps must be"):
        xu.integrated_gradients(model, x, steps=0)


def test_nested_model_with_preprocessing_and_functional_non_chain():
    inner = tiny_conv2d()
    outer = keras.Sequential([keras.Input((12, 12, 3)), keras.layers.Identity(), inner])
    x = _rng(14).uniform(0, 255, size=(3, 12, 12, 3)).astype(np.float32)
    assert xu.find_layer(outer).name == "k2"
    np.testing.assert_allclose(xu.grad_cam(outer, x), xu.grad_cam(inner, x), atol=1e-6)
    np.testing.assert_allclose(xu.integrated_gradients(outer, x), xu.integrated_gradients(inner, x), atol=1e-5)
    # a residual (non-chain) functional model
    inp = keras.Input((16, 1))
    a = keras.layers.Conv1D(3, 3, padding="same", activation="relu", name="ra")(inp)
    b = keras.layers.Conv1D(3, 3, padding="same", name="rb")(a)
    h = keras.layers.Add()([a, b])
    h = keras.layers.Dense(2)(keras.layers.GlobalAveragePooling1D()(h))
    res = keras.Model(inp, keras.layers.Softmax()(h))
    xs = _rng(15).normal(size=(4, 16, 1)).astype(np.float32)
    cam = xu.grad_cam(res, xs, layer="ra")
    assert cam.shape == (4, 16) and np.isfinite(cam).all()
    _, delta = xu.integrated_gradients(res, xs, steps=128, return_delta=True)
    assert np.abs(delta).max() < 5e-2


def _backbone():
    """A small functional backbone with a residual (non-chain) graph: (12, 12, 3) -> (6, 6, 6)."""
    from keras import layers
    init = lambda i: keras.initializers.GlorotUniform(seed=40 + i)  # noqa: E731
    inp = keras.Input((12, 12, 3))
    a = layers.Conv2D(6, 3, padding="same", activation="gelu", kernel_initializer=init(0), name="bb_a")(inp)
    b = layers.Conv2D(6, 3, padding="same", activation="gelu", kernel_initializer=init(1), name="bb_b")(a)
    h = layers.Add(name="bb_add")([a, b])
    return keras.Model(inp, layers.AveragePooling2D(2, name="bb_pool")(h), name="backbone")


def test_a_layer_inside_a_backbone_of_a_non_chain_outer_model():
    from keras import layers
    backbone = _backbone()
    inp = keras.Input((12, 12, 3))
    side = layers.Conv2D(2, 2, strides=2, kernel_initializer=keras.initializers.GlorotUniform(seed=50), name="side")(inp)
    h = layers.Concatenate(name="cat")([backbone(inp), side])                  # a branch around the backbone
    dense = layers.Dense(3, kernel_initializer=keras.initializers.GlorotUniform(seed=51), name="head")
    model = keras.Model(inp, layers.Softmax()(dense(layers.GlobalAveragePooling2D()(h))))
    x = _rng(30).uniform(0, 1, size=(4, 12, 12, 3)).astype(np.float32)
    target = backbone.get_layer("bb_add")
    classes = xu.predict_scores(model, x).argmax(-1)
    cam = xu.grad_cam(model, x, classes, layer=target)
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
    expected = xu.upsample(expected, (12, 12)).numpy()
    assert expected.max() > 1e-3
    np.testing.assert_allclose(cam, expected, atol=1e-5 * max(1.0, expected.max()))
    assert xu.find_layer(model).name == "cat"                                    # the default: the last spatial map
    _, gap = xu.completeness_gap(model, x, xu.integrated_gradients(model, x, classes), classes)
    assert gap.max() <= 0.01
    import xai.methods.perturbation as xp
    sise = xp.sise(model, x, classes, layers=[target, "bb_pool", "cat"])
    assert sise.shape == (4, 12, 12) and np.isfinite(sise).all()
    assert xp.rise(model, x, classes, n_masks=32).shape == (4, 12, 12)
    for bad in ([model.layers[0].name], [], "cat", ["head"]):                 # the input, none, a str, not spatial
        with pytest.raises(ValueError, match="layer"):
            xp.sise(model, x, classes, layers=bad)
    # a compiled model with a loss Keras cannot deserialise is explained the same (no recompiling)
    model.compile(loss=lambda y, p: tf.reduce_mean((y - p) ** 2))
    np.testing.assert_allclose(xu.grad_cam(model, x, classes, layer=target, batch_size=3), cam, atol=1e-6)
    # a backbone called twice: its feature maps are ambiguous, so it is refused
    twice = keras.Model(inp, layers.Dense(2)(layers.GlobalAveragePooling2D()(
        layers.Concatenate()([backbone(inp), backbone(1.0 - inp), side]))))
    with pytest.raises(ValueError, match="runs 2 times in one call"):
        xu.grad_cam(twice, x, layer=target)
    # two levels down in a non-chain graph: refused, saying what works
    wrap = keras.Sequential([keras.Input((12, 12, 3)), backbone], name="wrap")
    wrapped = keras.Model(inp, layers.Dense(2)(layers.GlobalAveragePooling2D()(layers.Concatenate()([wrap(inp), side]))))
    with pytest.raises(ValueError, match="two or more levels down"):
        xu.grad_cam(wrapped, x, layer=target)


def test_normalize():
    maps = np.stack([np.arange(4.0), np.full(4, 3.0)])
    out = xu.normalize(maps)
    np.testing.assert_allclose(out[0], [0, 1 / 3, 2 / 3, 1])
    np.testing.assert_array_equal(out[1], 0)


# --- the course's legacy models and the trained models ---

def _course(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return keras.models.load_model(shared_path("models", "course", name), compile=False)


def test_course_mnist1d_model_legacy_dense_softmax(mnist1d_data):
    model = _course("MNIST1D.h5")
    x = mnist1d_data["x_test"][:32, :, None].astype(np.float32)
    cam = xu.grad_cam(model, x)
    assert cam.shape == (32, 40) and np.isfinite(cam).all() and cam.max() > 0
    logits = xu.predict_scores(model, x)
    np.testing.assert_allclose(tf.nn.softmax(logits).numpy(), model.predict(x, verbose=0), atol=1e-5)
    attr = xu.integrated_gradients(model, x, steps=256)
    assert np.median(xu.completeness_gap(model, x, attr)[1]) < 0.01


def test_course_hmt_model_runs(hmt_data):
    import hmt_utils
    model = _course("HMT.h5")
    (_, _), (x_test, _), _ = hmt_data
    x = next(hmt_utils.course_model_inputs(x_test[:4]))
    cam = xu.grad_cam(model, x)
    assert cam.shape == (4, 224, 224) and np.isfinite(cam).all()
    attr = xu.integrated_gradients(model, x[:2], steps=8)
    assert attr.shape == (2, 224, 224, 3)


def test_ig_completeness_on_all_mnist1d_test_examples(mnist1d_data, mnist1d_model):
    x = mnist1d_data["x_test"][..., None].astype(np.float32)
    attr = xu.integrated_gradients(mnist1d_model, x, progress=False)
    _, rel = xu.completeness_gap(mnist1d_model, x, attr)
    assert np.mean(rel <= 0.01) >= 0.99, np.quantile(rel, [0.5, 0.99])


def test_ig_completeness_on_all_hmt_test_tiles(hmt_data, hmt_model):
    (_, _), (x_test, _), _ = hmt_data
    x = x_test.astype(np.float32)
    attr = xu.integrated_gradients(hmt_model, x, batch_size=128, progress=False)
    _, rel = xu.completeness_gap(hmt_model, x, attr, batch_size=128)
    assert np.mean(rel <= 0.01) >= 0.99, np.quantile(rel, [0.5, 0.99])


def test_grad_cam_on_trained_models(mnist1d_data, mnist1d_model, hmt_data, hmt_model):
    cam = xu.grad_cam(mnist1d_model, mnist1d_data["x_test"][:50, :, None])
    assert cam.shape == (50, 40) and (cam >= 0).all() and (cam.max(1) > 0).mean() > 0.9
    (_, _), (x_test, _), _ = hmt_data
    cam = xu.grad_cam(hmt_model, x_test[:16].astype(np.float32))
    assert cam.shape == (16, 150, 150) and (cam >= 0).all()


def test_jit_compiled_steps_agree():
    model = tiny_conv1d()
    x = _rng(16).normal(size=(5, 16, 1)).astype(np.float32)
    np.testing.assert_allclose(xu.grad_cam(model, x, jit_compile=True), xu.grad_cam(model, x), atol=1e-5)
    np.testing.assert_allclose(xu.integrated_gradients(model, x, jit_compile=True),
                               xu.integrated_gradients(model, x), atol=1e-5)


# --- compiled steps: no stale keys, no leaks, XLA equal, options checked (issue: any Keras CNN) ---

def _fully_convolutional(seed=0):
    inp = keras.Input((None, None, 3))
    h = keras.layers.Conv2D(4, 3, padding="same", activation="tanh", name="fc1",
                            kernel_initializer=keras.initializers.GlorotUniform(seed=seed))(inp)
    h = keras.layers.Conv2D(5, 3, padding="same", activation="tanh", name="fc2",
                            kernel_initializer=keras.initializers.GlorotUniform(seed=seed + 1))(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    out = keras.layers.Dense(3, name="fc_out", kernel_initializer=keras.initializers.GlorotUniform(seed=seed + 2))(h)
    return keras.Model(inp, keras.layers.Softmax()(out))


def test_a_model_explained_at_two_sizes_matches_a_fresh_copy():
    import xai.methods.perturbation as xp
    rng = np.random.default_rng(0)
    small, large = rng.normal(size=(2, 8, 8, 3)).astype(np.float32), rng.normal(size=(2, 12, 10, 3)).astype(np.float32)
    used = _fully_convolutional()
    for f in (lambda m, x: xu.grad_cam(m, x), lambda m, x: xu.integrated_gradients(m, x, steps=8),
              lambda m, x: xp.rise(m, x, n_masks=20, seed=0), lambda m, x: xp.sise(m, x, layers=["fc2"])):
        f(used, small)
        np.testing.assert_allclose(f(used, large), f(_fully_convolutional(), large), atol=1e-5)


def test_explained_models_are_not_kept_alive():
    import gc
    import weakref

    import xai.methods.perturbation as xp
    model = _fully_convolutional()
    x = np.random.default_rng(1).normal(size=(2, 8, 8, 3)).astype(np.float32)
    xu.grad_cam(model, x)
    xu.integrated_gradients(model, x, steps=4)
    xp.rise(model, x, n_masks=10)
    xp.sise(model, x, layers=["fc2"])
    ref = weakref.ref(model)
    del model
    gc.collect()
    assert ref() is None, "the compiled-step cache keeps the model alive"


@pytest.mark.parametrize("method", ["grad_cam", "ig", "rise", "sise"])
def test_jit_compile_gives_the_same_maps(method):
    import xai.methods.perturbation as xp
    model = tiny_conv2d()
    x = np.random.default_rng(2).uniform(0, 255, size=(3, 12, 12, 3)).astype(np.float32)
    run = {"grad_cam": lambda j: xu.grad_cam(model, x, jit_compile=j),
           "ig": lambda j: xu.integrated_gradients(model, x, steps=8, jit_compile=j),
           "rise": lambda j: xp.rise(model, x, n_masks=50, cell_size=5, jit_compile=j),
           "sise": lambda j: xp.sise(model, x, jit_compile=j)}[method]
    plain, compiled = run(False), run(True)
    scale = np.abs(plain).max()
    assert np.abs(compiled - plain).max() <= 1e-5 * max(scale, 1e-12)


def test_huge_batch_size_allocates_no_padding_beyond_the_work():
    import xai.methods.perturbation as xp
    model = tiny_conv2d()
    x = np.random.default_rng(3).uniform(0, 255, size=(2, 12, 12, 3)).astype(np.float32)
    # uncapped, 10**8 padded inputs of 12 x 12 x 3 floats would need 173 GB
    np.testing.assert_allclose(xu.grad_cam(model, x, batch_size=10**8), xu.grad_cam(model, x), atol=1e-6)
    np.testing.assert_allclose(xu.integrated_gradients(model, x, steps=4, batch_size=10**8),
                               xu.integrated_gradients(model, x, steps=4), atol=1e-5)
    xp.rise(model, x, n_masks=8, batch_size=10**8)
    xu.predict_scores(model, x, batch_size=10**8)


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "8", None])
def test_batch_size_is_checked_by_every_method(bad):
    import xai.methods.perturbation as xp
    model = tiny_conv1d()
    x = np.zeros((2, 16, 1), np.float32)
    for call in (lambda: xu.grad_cam(model, x, batch_size=bad), lambda: xu.integrated_gradients(model, x, batch_size=bad),
                 lambda: xp.rise(model, x, n_masks=4, batch_size=bad), lambda: xp.sise(model, x, batch_size=bad),
                 lambda: xu.predict_scores(model, x, batch_size=bad)):
        with pytest.raises(ValueError, match="batch_size"):
            call()


def test_every_option_is_checked_at_the_door():
    import xai.methods.perturbation as xp
    model = tiny_conv1d()
    x = np.zeros((2, 16, 1), np.float32)
    cases = [(lambda: xu.integrated_gradients(model, x, steps=0), "steps"),
             (lambda: xu.integrated_gradients(model, x, steps=True), "steps"),
             (lambda: xu.integrated_gradients(model, x, method="simpson"), "method"),
             (lambda: xu.grad_cam(model, x, score="prob"), "score"),
             (lambda: xu.grad_cam(model, x, jit_compile="yes"), "jit_compile"),
             (lambda: xp.rise(model, x, n_masks=0), "n_masks"),
             (lambda: xp.rise(model, x, n_masks=2.5), "n_masks"),
             (lambda: xp.rise(model, x, p_keep=0.0), "p_keep"),
             (lambda: xp.rise(model, x, p_keep=1.5), "p_keep"),
             (lambda: xp.rise(model, x, cell_size=0), "cell_size"),
             (lambda: xp.rise(model, x, cell_size=2.5), "cell_size"),
             (lambda: xp.rise(model, x, seed=-1), "seed"),
             (lambda: xp.rise(model, x, seed=1.5), "seed"),
             (lambda: xp.sise(model, x, softness=0), "softness"),
             (lambda: xp.sise(model, x, grad_threshold=float("nan")), "grad_threshold"),
             (lambda: xp.sise(model, x, layers=["nope"]), "nope")]
    for call, name in cases:
        with pytest.raises(ValueError, match=name):
            call()


def test_completeness_gap_is_the_one_definition():
    model = tiny_conv1d()
    x = np.random.default_rng(4).normal(size=(3, 16, 1)).astype(np.float32)
    attributions, delta = xu.integrated_gradients(model, x, steps=64, return_delta=True)
    again, relative = xu.completeness_gap(model, x, attributions)
    np.testing.assert_allclose(again, delta, atol=1e-6)
    scores = xu.predict_scores(model, x)
    gap = scores[np.arange(3), scores.argmax(-1)] - xu.predict_scores(model, np.zeros_like(x))[np.arange(3), scores.argmax(-1)]
    np.testing.assert_allclose(relative, np.abs(delta) / np.abs(gap), rtol=1e-4)
    with pytest.raises(ValueError, match="attributions have shape"):
        xu.completeness_gap(model, x, attributions[:, :8])


# --- the score being explained, for every head; unusual models refused clearly ---

def _head_model(head, seed=0):
    inp = keras.Input((16, 1))
    h = keras.layers.Conv1D(4, 3, padding="same", activation="tanh", name="conv",
                            kernel_initializer=keras.initializers.GlorotUniform(seed=seed))(inp)
    h = keras.layers.GlobalAveragePooling1D()(h)
    init = keras.initializers.GlorotUniform(seed=seed + 1)
    if head == "sigmoid_dense":
        return keras.Model(inp, keras.layers.Dense(1, activation="sigmoid", kernel_initializer=init, name="d")(h))
    if head == "sigmoid_layer":
        return keras.Model(inp, keras.layers.Activation("sigmoid")(keras.layers.Dense(1, kernel_initializer=init, name="d")(h)))
    if head == "logits":
        return keras.Model(inp, keras.layers.Dense(3, kernel_initializer=init, name="d")(h))
    raise ValueError(head)


@pytest.mark.parametrize("head", ["sigmoid_dense", "sigmoid_layer"])
def test_sigmoid_head_logit_is_the_pre_sigmoid_value(head):
    model = _head_model(head)
    x = np.random.default_rng(0).normal(size=(4, 16, 1)).astype(np.float32)
    prob = model.predict(x, verbose=0)                                         # (4, 1)
    logit = xu.predict_scores(model, x, score="logit")
    np.testing.assert_allclose(1 / (1 + np.exp(-logit)), prob, atol=1e-5)
    np.testing.assert_allclose(xu.predict_scores(model, x, score="probability"), prob, atol=1e-6)
    assert not np.allclose(logit, prob)
    cam = xu.grad_cam(model, x)                                                # class 0: the positive class
    assert cam.shape == (4, 16)


def test_a_logits_head_gets_its_softmax_as_probability():
    model = _head_model("logits")
    x = np.random.default_rng(1).normal(size=(4, 16, 1)).astype(np.float32)
    logits = model.predict(x, verbose=0)
    np.testing.assert_allclose(xu.predict_scores(model, x, score="logit"), logits, atol=1e-6)
    e = np.exp(logits - logits.max(1, keepdims=True))
    np.testing.assert_allclose(xu.predict_scores(model, x, score="probability"), e / e.sum(1, keepdims=True), atol=1e-6)


def test_unusual_models_are_refused_with_what_is_supported():
    inp = keras.Input((16, 1))
    h = keras.layers.GlobalAveragePooling1D()(keras.layers.Conv1D(2, 3)(inp))
    two_out = keras.Model(inp, [keras.layers.Dense(3, name="a")(h), keras.layers.Dense(2, name="b")(h)])
    x = np.zeros((2, 16, 1), np.float32)
    with pytest.raises(ValueError, match="2 outputs; choose the one"):
        xu.grad_cam(two_out, x)
    other = keras.Input((16, 1))
    two_in = keras.Model([inp, other], keras.layers.Dense(3)(keras.layers.Concatenate()([h, keras.layers.Flatten()(other)])))
    with pytest.raises(ValueError, match="2 inputs"):
        xu.integrated_gradients(two_in, x)

    class Sub(keras.Model):
        def __init__(self):
            super().__init__()
            self.conv, self.pool, self.out = keras.layers.Conv1D(2, 3), keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(3)

        def call(self, z):
            return self.out(self.pool(self.conv(z)))
    sub = Sub()
    sub(x)
    with pytest.raises(ValueError, match="subclassed"):
        xu.grad_cam(sub, x)
    with pytest.raises(ValueError, match="keras.Model"):
        xu.grad_cam(lambda z: z, x)


def test_mixed_precision_models_are_explained_in_float32():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = tiny_conv1d()
    finally:
        keras.mixed_precision.set_global_policy("float32")
    x = np.random.default_rng(2).normal(size=(3, 16, 1)).astype(np.float32)
    cam = xu.grad_cam(model, x)
    ig, delta = xu.integrated_gradients(model, x, steps=32, return_delta=True)
    assert cam.dtype == np.float32 and ig.dtype == np.float32 and np.isfinite(ig).all()
    assert np.abs(delta).max() < 5e-2                                          # float16 arithmetic inside
