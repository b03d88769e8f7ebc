"""xai/core.py: the checks at the door, the score explained for every head, the classes explained,
compiled steps (cached per model, dropped when its graph changes, never keeping a model alive, equal
under XLA) and batching; answers that used to be silently wrong are now right or refused.

Each model test builds the case a user met (a model edited after it was explained, a probability head
that is no Softmax layer, batch statistics at inference, mixed precision, integer inputs, a sigmoid
head) and checks the answer against the model's own output or a hand computation. Grad-CAM and IG
serve as the probes: what they share is the core's.
"""
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers

import xai.methods.perturbation as xp
from tests.conftest import shared_path, tiny_conv1d, tiny_conv2d
from xai.core import predict_scores
from xai.methods.cam import grad_cam
from xai.methods.integrated_gradients import completeness_gap, integrated_gradients


def _rng(seed=0):
    return np.random.default_rng(seed)


def _x(n=3, size=12, channels=3, seed=0):
    return np.random.default_rng(seed).random((n, size, size, channels)).astype(np.float32)


def _small_cnn(k=4, seed=0, head=None):
    inp = keras.Input((12, 12, 3))
    h = layers.Conv2D(5, 3, activation="relu", name="conv", kernel_initializer=keras.initializers.HeNormal(seed))(inp)
    h = layers.GlobalAveragePooling2D()(h)
    out = layers.Dense(k, name="logits", kernel_initializer=keras.initializers.GlorotUniform(seed))(h)
    return keras.Model(inp, head(out) if head else out)


# --- a model edited after it was explained ---

def test_steps_follow_a_sequential_model_edited_after_it_was_explained():
    model = keras.Sequential([keras.Input((12, 12, 3)), layers.Conv2D(4, 3, name="c"), layers.GlobalAveragePooling2D(),
                              layers.Dense(10, name="head10")])
    x = _x()
    assert predict_scores(model, x).shape == (3, 10)
    grad_cam(model, x)
    model.pop()
    model.add(layers.Dense(3, name="head3"))
    scores = predict_scores(model, x)
    assert scores.shape == (3, 3)
    np.testing.assert_allclose(scores, model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    assert grad_cam(model, x, 2).shape == (3, 12, 12)
    ig = integrated_gradients(model, x, 2)
    _, gap = completeness_gap(model, x, ig, 2)
    assert gap.max() < 0.02


# --- the score explained, for every head ---

def test_score_logit_bypasses_softmax_layer_and_softmax_dense():
    x = _rng(10).normal(size=(4, 16, 1)).astype(np.float32)
    with_layer, with_dense = tiny_conv1d(softmax="layer"), tiny_conv1d(softmax="dense")
    logits = predict_scores(with_layer, x, score="logit")
    np.testing.assert_allclose(predict_scores(with_dense, x, score="logit"), logits, atol=1e-5)
    np.testing.assert_allclose(predict_scores(with_layer, x, score="probability"),
                               with_layer.predict(x, verbose=0), atol=1e-6)
    np.testing.assert_allclose(tf.nn.softmax(logits).numpy(), with_layer.predict(x, verbose=0), atol=1e-6)
    # the same Grad-CAM and IG whether the softmax is a layer or the Dense's activation
    np.testing.assert_allclose(grad_cam(with_dense, x), grad_cam(with_layer, x), atol=1e-5)
    np.testing.assert_allclose(integrated_gradients(with_dense, x), integrated_gradients(with_layer, x), atol=1e-5)


def test_a_probability_head_that_is_no_softmax_layer_is_refused():
    model = _small_cnn(head=layers.Lambda(lambda t: keras.ops.softmax(t), name="lambda_softmax"))
    for method in (grad_cam, integrated_gradients):
        with pytest.raises(ValueError, match="sum to 1 on every input tried"):
            method(model, _x())
    with pytest.raises(ValueError, match="keras.layers.Softmax"):
        predict_scores(model, _x())
    fine = _small_cnn(head=layers.Softmax())                     # the same head as a Softmax layer
    np.testing.assert_allclose(predict_scores(fine, _x(), score="probability"), fine.predict(_x(), verbose=0),
                               rtol=1e-5, atol=1e-6)


def test_mixed_precision_dense_softmax_head_gives_the_float32_logit():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = _small_cnn()
        model = keras.Model(model.inputs, layers.Dense(4, activation="softmax", dtype="mixed_float16")(model.output))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    x = _x()
    logits = predict_scores(model, x)
    dense = model.layers[-1]
    features = keras.Model(model.inputs, dense.input)(x)
    expected = tf.cast(features, tf.float32) @ dense.kernel + dense.bias
    np.testing.assert_allclose(logits, expected.numpy(), rtol=2e-2, atol=2e-2)
    assert grad_cam(model, x).shape == (3, 12, 12) and np.isfinite(integrated_gradients(model, x)).all()


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
    logit = predict_scores(model, x, score="logit")
    np.testing.assert_allclose(1 / (1 + np.exp(-logit)), prob, atol=1e-5)
    np.testing.assert_allclose(predict_scores(model, x, score="probability"), prob, atol=1e-6)
    assert not np.allclose(logit, prob)
    cam = grad_cam(model, x)                                                # class 0: the positive class
    assert cam.shape == (4, 16)


def test_a_logits_head_gets_its_softmax_as_probability():
    model = _head_model("logits")
    x = np.random.default_rng(1).normal(size=(4, 16, 1)).astype(np.float32)
    logits = model.predict(x, verbose=0)
    np.testing.assert_allclose(predict_scores(model, x, score="logit"), logits, atol=1e-6)
    e = np.exp(logits - logits.max(1, keepdims=True))
    np.testing.assert_allclose(predict_scores(model, x, score="probability"), e / e.sum(1, keepdims=True), atol=1e-6)


def test_mixed_precision_models_are_explained_in_float32():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = tiny_conv1d()
    finally:
        keras.mixed_precision.set_global_policy("float32")
    x = np.random.default_rng(2).normal(size=(3, 16, 1)).astype(np.float32)
    cam = grad_cam(model, x)
    ig, delta = integrated_gradients(model, x, steps=32, return_delta=True)
    assert cam.dtype == np.float32 and ig.dtype == np.float32 and np.isfinite(ig).all()
    assert np.abs(delta).max() < 5e-2                                          # float16 arithmetic inside


# --- checks at the door ---

def test_class_index_forms_give_the_same_maps_and_out_of_range_is_refused():
    model = tiny_conv1d()
    x = _rng(12).normal(size=(4, 16, 1)).astype(np.float32)
    predicted = model.predict(x, verbose=0).argmax(-1)
    np.testing.assert_array_equal(grad_cam(model, x), grad_cam(model, x, predicted))
    np.testing.assert_array_equal(grad_cam(model, x, 1), grad_cam(model, x, np.ones(4, int)))
    for bad in (3, -1, np.array([0, 1, 5, 0])):
        with pytest.raises(ValueError, match="out of range"):
            grad_cam(model, x, bad)
    with pytest.raises(ValueError, match="expected a scalar or"):
        integrated_gradients(model, x, np.array([0, 1]))


def test_bad_inputs_layers_and_options_are_refused_at_the_door():
    model = tiny_conv1d()
    x = _rng(13).normal(size=(2, 16, 1)).astype(np.float32)
    with pytest.raises(ValueError, match="single example without the batch axis"):
        grad_cam(model, x[0])
    with pytest.raises(ValueError, match=r"expected \(None, 16, 1\)"):
        integrated_gradients(model, x[:, :8])
    bad = x.copy()
    bad[1, 3, 0] = np.nan
    with pytest.raises(ValueError, match=r"non-finite .* \[1\]"):
        grad_cam(model, bad)
    with pytest.raises(ValueError, match="unknown quadrature rule"):
        integrated_gradients(model, x, rule="simpson")
    with pytest.raises(ValueError, match="score must be one of"):
        grad_cam(model, x, score="loss")
    with pytest.raises(ValueError, match=r"no layer named 'nope'.*candidates: \['c1', 'c2'\]"):
        grad_cam(model, x, layer="nope")
    with pytest.raises(ValueError, match="does not output a spatial feature map"):
        grad_cam(model, x, layer=model.layers[-1])
    with pytest.raises(ValueError, match="is not a layer of model"):
        grad_cam(model, x, layer=keras.layers.Dense(2))
    with pytest.raises(ValueError, match="steps must be"):
        integrated_gradients(model, x, steps=0)


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "8", None])
def test_batch_size_is_checked_by_every_method(bad):
    model = tiny_conv1d()
    x = np.zeros((2, 16, 1), np.float32)
    for call in (lambda: grad_cam(model, x, batch_size=bad), lambda: integrated_gradients(model, x, batch_size=bad),
                 lambda: xp.rise(model, x, n_masks=4, batch_size=bad), lambda: xp.sise(model, x, batch_size=bad),
                 lambda: predict_scores(model, x, batch_size=bad)):
        with pytest.raises(ValueError, match="batch_size"):
            call()


def test_integer_inputs_are_refused_with_a_way_out():
    inp = keras.Input((12, 12, 3), dtype="uint8")
    h = layers.Conv2D(4, 3)(keras.ops.cast(inp, "float32"))
    model = keras.Model(inp, layers.Dense(2)(layers.GlobalAveragePooling2D()(h)))
    for method in (integrated_gradients, grad_cam):
        with pytest.raises(ValueError, match="takes uint8 input.*dtype='float32'"):
            method(model, _x() * 255)


# --- models that are no function of their input alone ---

class _BatchStatisticsNorm(layers.BatchNormalization):
    def call(self, inputs, training=None):
        return super().call(inputs, training=True)               # batch statistics, always


def test_a_model_using_batch_statistics_at_inference_is_refused():
    inp = keras.Input((12, 12, 3))
    h = _BatchStatisticsNorm()(layers.Conv2D(4, 3)(inp))
    model = keras.Model(inp, layers.Dense(2)(layers.GlobalAveragePooling2D()(h)))
    with pytest.raises(ValueError, match="other examples share its batch"):
        grad_cam(model, _x(5), batch_size=4)
    with pytest.raises(ValueError, match="other examples share its batch"):
        integrated_gradients(model, _x(1))


def test_a_model_that_is_random_at_inference_is_refused():
    inp = keras.Input((12, 12, 3))
    h = layers.GlobalAveragePooling2D()(layers.Conv2D(64, 3)(inp))      # 64 units: two masks never agree
    h = layers.Lambda(lambda t: keras.layers.Dropout(0.5)(t, training=True))(h)
    model = keras.Model(inp, layers.Dense(2)(h))
    with pytest.raises(ValueError, match="different outputs for the same input"):
        grad_cam(model, _x())


# --- compiled steps: no stale keys, no leaks, XLA equal; batching without padding beyond the work ---

def test_jit_compiled_steps_agree_with_plain_ones_on_1d_inputs():
    model = tiny_conv1d()
    x = _rng(16).normal(size=(5, 16, 1)).astype(np.float32)
    np.testing.assert_allclose(grad_cam(model, x, jit_compile=True), grad_cam(model, x), atol=1e-5)
    np.testing.assert_allclose(integrated_gradients(model, x, jit_compile=True),
                               integrated_gradients(model, x), atol=1e-5)


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
    rng = np.random.default_rng(0)
    small, large = rng.normal(size=(2, 8, 8, 3)).astype(np.float32), rng.normal(size=(2, 12, 10, 3)).astype(np.float32)
    used = _fully_convolutional()
    for f in (lambda m, x: grad_cam(m, x), lambda m, x: integrated_gradients(m, x, steps=8),
              lambda m, x: xp.rise(m, x, n_masks=20, seed=0), lambda m, x: xp.sise(m, x, layers=["fc2"])):
        f(used, small)
        np.testing.assert_allclose(f(used, large), f(_fully_convolutional(), large), atol=1e-5)


def test_explained_models_are_not_kept_alive():
    import gc
    import weakref

    model = _fully_convolutional()
    x = np.random.default_rng(1).normal(size=(2, 8, 8, 3)).astype(np.float32)
    grad_cam(model, x)
    integrated_gradients(model, x, steps=4)
    xp.rise(model, x, n_masks=10)
    xp.sise(model, x, layers=["fc2"])
    ref = weakref.ref(model)
    del model
    gc.collect()
    assert ref() is None, "the compiled-step cache keeps the model alive"


@pytest.mark.parametrize("method", ["grad_cam", "ig", "rise", "sise"])
def test_jit_compile_gives_the_same_maps(method):
    model = tiny_conv2d()
    x = np.random.default_rng(2).uniform(0, 255, size=(3, 12, 12, 3)).astype(np.float32)
    run = {"grad_cam": lambda j: grad_cam(model, x, jit_compile=j),
           "ig": lambda j: integrated_gradients(model, x, steps=8, jit_compile=j),
           "rise": lambda j: xp.rise(model, x, n_masks=50, cell_size=5, jit_compile=j),
           "sise": lambda j: xp.sise(model, x, jit_compile=j)}[method]
    plain, compiled = run(False), run(True)
    scale = np.abs(plain).max()
    assert np.abs(compiled - plain).max() <= 1e-5 * max(scale, 1e-12)


def test_even_chunks_cover_the_items_in_the_fewest_calls_with_the_least_padding():
    from xai.core import even_chunk
    assert even_chunk(10, 8) == 5 and even_chunk(192, 128) == 96 and even_chunk(200, 128) == 100
    assert even_chunk(1000, 8) == 8 and even_chunk(7, 100) == 7 and even_chunk(np.int64(9), 4) == 3
    for bad in ((5, 0), (0, 4), (-5, 3), (2.9, 3), (True, 3), (5, None)):
        with pytest.raises(ValueError, match="must be an int >= 1"):
            even_chunk(*bad)
    for n in range(1, 60):
        for limit in range(1, 40):
            chunk = even_chunk(n, limit)
            calls = -(-n // chunk)
            assert chunk <= limit and calls == -(-n // limit) and calls * chunk - n < calls


def test_the_methods_split_draws_and_channels_evenly(monkeypatch):
    import xai.methods.cam as xcam
    import xai.methods.gradients as xg
    model = tiny_conv1d()
    x = np.random.default_rng(0).normal(size=(2, 16, 1)).astype(np.float32)
    padded, real_pad = [], xg.pad_to
    monkeypatch.setattr(xg, "pad_to", lambda a, size: (padded.append((len(a), size)), real_pad(a, size))[1])
    xg.smoothgrad(model, x, 0, samples=10, batch_size=8)              # 10 draws, at most 8 a call: 5 + 5
    assert {size for _, size in padded} == {5} and sum(n for n, _ in padded[::2]) == 10
    channels, real_batches = [], xcam.padded_batches

    def recording(n, size, *arrays):
        if n == 6:                                                     # the last conv layer's 6 channels
            channels.append(size)
        return real_batches(n, size, *arrays)
    monkeypatch.setattr(xcam, "padded_batches", recording)
    xcam.score_cam(model, x, 0, batch_size=4)                          # 6 channels, at most 4 a call: 3 + 3
    assert channels and set(channels) == {3}


def test_huge_batch_size_allocates_no_padding_beyond_the_work():
    model = tiny_conv2d()
    x = np.random.default_rng(3).uniform(0, 255, size=(2, 12, 12, 3)).astype(np.float32)
    # uncapped, 10**8 padded inputs of 12 x 12 x 3 floats would need 173 GB
    np.testing.assert_allclose(grad_cam(model, x, batch_size=10**8), grad_cam(model, x), atol=1e-6)
    np.testing.assert_allclose(integrated_gradients(model, x, steps=4, batch_size=10**8),
                               integrated_gradients(model, x, steps=4), atol=1e-5)
    xp.rise(model, x, n_masks=8, batch_size=10**8)
    predict_scores(model, x, batch_size=10**8)


# --- the course's legacy models ---

def _course(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return keras.models.load_model(shared_path("models", "course", name), compile=False)


def test_course_mnist1d_model_legacy_dense_softmax_gives_its_logits(mnist1d_data):
    model = _course("MNIST1D.h5")
    x = mnist1d_data["x_test"][:32, :, None].astype(np.float32)
    cam = grad_cam(model, x)
    assert cam.shape == (32, 40) and np.isfinite(cam).all() and cam.max() > 0
    logits = predict_scores(model, x)
    np.testing.assert_allclose(tf.nn.softmax(logits).numpy(), model.predict(x, verbose=0), atol=1e-5)
    attr = integrated_gradients(model, x, steps=256)
    assert np.median(completeness_gap(model, x, attr)[1]) < 0.01


@pytest.mark.slow
def test_course_hmt_model_is_explained_at_its_input_size(hmt_data):
    import hmt_utils
    model = _course("HMT.h5")
    (_, _), (x_test, _), _ = hmt_data
    x = next(hmt_utils.course_model_inputs(x_test[:4]))
    cam = grad_cam(model, x)
    assert cam.shape == (4, 224, 224) and np.isfinite(cam).all()
    attr = integrated_gradients(model, x[:2], steps=8)
    assert attr.shape == (2, 224, 224, 3)
