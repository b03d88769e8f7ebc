"""xai.core: answers that used to be silently wrong are now right or refused with a message.

Each test builds the case a user met (a model edited after it was explained, a probability head
that is no Softmax layer, a layer called twice, batch statistics at inference, mixed precision,
integer inputs, a layer shared with another model, a multi-label head) and checks the answer
against the model's own output or a hand computation.
"""
import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers

import xai.core as core
import xai.metrics.removal as xm
import xai.plots as xplt
import xai_utils as xu


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
    assert xu.predict_scores(model, x).shape == (3, 10)
    xu.grad_cam(model, x)
    model.pop()
    model.add(layers.Dense(3, name="head3"))
    scores = xu.predict_scores(model, x)
    assert scores.shape == (3, 3)
    np.testing.assert_allclose(scores, model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    assert xu.grad_cam(model, x, 2).shape == (3, 12, 12)
    ig = xu.integrated_gradients(model, x, 2)
    _, gap = xu.completeness_gap(model, x, ig, 2)
    assert gap.max() < 0.02


# --- the head ---

def test_a_probability_head_that_is_no_softmax_layer_is_refused():
    model = _small_cnn(head=layers.Lambda(lambda t: keras.ops.softmax(t), name="lambda_softmax"))
    for method in (xu.grad_cam, xu.integrated_gradients):
        with pytest.raises(ValueError, match="sum to 1 on every input tried"):
            method(model, _x())
    with pytest.raises(ValueError, match="keras.layers.Softmax"):
        xu.predict_scores(model, _x())
    fine = _small_cnn(head=layers.Softmax())                     # the same head as a Softmax layer
    np.testing.assert_allclose(xu.predict_scores(fine, _x(), score="probability"), fine.predict(_x(), verbose=0),
                               rtol=1e-5, atol=1e-6)


def test_mixed_precision_dense_softmax_head_gives_the_float32_logit():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = _small_cnn()
        model = keras.Model(model.inputs, layers.Dense(4, activation="softmax", dtype="mixed_float16")(model.output))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    x = _x()
    logits = xu.predict_scores(model, x)
    dense = model.layers[-1]
    features = keras.Model(model.inputs, dense.input)(x)
    expected = tf.cast(features, tf.float32) @ dense.kernel + dense.bias
    np.testing.assert_allclose(logits, expected.numpy(), rtol=2e-2, atol=2e-2)
    assert xu.grad_cam(model, x).shape == (3, 12, 12) and np.isfinite(xu.integrated_gradients(model, x)).all()


def test_multi_label_sigmoid_head_is_read_by_the_faithfulness_metrics():
    model = _small_cnn(head=layers.Activation("sigmoid"))
    x = _x()
    maps = xu.grad_cam(model, x, 1)
    probability = model.predict(x, verbose=0)[:, 1]                  # (N,) label 1's own probability
    result = xm.average_drop_increase(model, x, maps, 1)
    np.testing.assert_allclose(result["original"], probability, rtol=1e-5)
    assert np.all((result["drop"] >= 0) & (result["drop"] <= 1))
    curves = xm.removal_curves(model, x, maps, 1, steps=2, value_range=1.0)
    np.testing.assert_allclose(curves["morf_curve"][:, 0], probability, rtol=1e-5)


# --- layers ---

def test_a_layer_called_twice_is_refused_by_name_and_by_default():
    inp = keras.Input((12, 12, 3))
    shared = layers.Conv2D(3, 3, padding="same", name="twice")
    h = shared(layers.Conv2D(3, 1, name="first")(shared(inp)))
    out = layers.Dense(2)(layers.GlobalAveragePooling2D()(h))
    model = keras.Model(inp, out)
    assert core.times_called(model, shared) == 2
    with pytest.raises(ValueError, match="runs 2 times"):
        xu.grad_cam(model, _x(), layer="twice")
    with pytest.raises(ValueError, match="runs 2 times"):
        xu.grad_cam(model, _x())                                 # the default would be its second call
    assert xu.grad_cam(model, _x(), layer="first").shape == (3, 12, 12)


def test_a_layer_shared_with_another_model_is_explained_in_this_model():
    shared = layers.Conv2D(4, 3, name="shared", kernel_initializer=keras.initializers.HeNormal(1))
    inp0 = keras.Input((12, 12, 3))
    keras.Model(inp0, shared(inp0))                              # its first call belongs to another model
    inp = keras.Input((12, 12, 3))
    branch = layers.Conv2D(4, 3, name="branch")(inp)
    h = layers.Add()([shared(inp), branch])                      # not a chain: the graph path
    model = keras.Model(inp, layers.Dense(3)(layers.GlobalAveragePooling2D()(h)))
    x = _x()
    cam = xu.grad_cam(model, x, 1, layer="shared")
    # by hand: features of this model's call, gradient of the logit, weights = mean gradient
    tap = keras.Model(inp, [core.layer_tensors(model, shared)[1], model.output])
    with tf.GradientTape() as tape:
        feats, logits = tap(x)
        picked = logits[:, 1]
    grads = tape.gradient(picked, feats)
    weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
    raw = tf.nn.relu(tf.reduce_sum(weights * feats, -1))
    expected = tf.image.resize(raw[..., None], (12, 12), method="bilinear")[..., 0].numpy()
    np.testing.assert_allclose(cam, expected, rtol=1e-4, atol=1e-6)


def test_integer_inputs_are_refused_with_a_way_out():
    inp = keras.Input((12, 12, 3), dtype="uint8")
    h = layers.Conv2D(4, 3)(keras.ops.cast(inp, "float32"))
    model = keras.Model(inp, layers.Dense(2)(layers.GlobalAveragePooling2D()(h)))
    for method in (xu.integrated_gradients, xu.grad_cam):
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
        xu.grad_cam(model, _x(5), batch_size=4)
    with pytest.raises(ValueError, match="other examples share its batch"):
        xu.integrated_gradients(model, _x(1))


def test_a_model_that_is_random_at_inference_is_refused():
    inp = keras.Input((12, 12, 3))
    h = layers.GlobalAveragePooling2D()(layers.Conv2D(64, 3)(inp))      # 64 units: two masks never agree
    h = layers.Lambda(lambda t: keras.layers.Dropout(0.5)(t, training=True))(h)
    model = keras.Model(inp, layers.Dense(2)(h))
    with pytest.raises(ValueError, match="different outputs for the same input"):
        xu.grad_cam(model, _x())


# --- maps for display ---

def test_normalize_refuses_one_map_without_its_axis_and_nan():
    with pytest.raises(ValueError, match="maps\\[None\\]"):
        xu.normalize(np.arange(4.0))
    np.testing.assert_allclose(xu.normalize(np.arange(4.0)[None]), [[0, 1 / 3, 2 / 3, 1]], rtol=1e-6)
    maps = np.arange(8.0).reshape(2, 2, 2)
    maps[1, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"maps \[1\] hold NaN"):
        xu.normalize(maps)


def test_plots_refuse_nan_maps_and_absolute_keeps_negatives():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots()
    tile = np.full((8, 8, 3), 128, np.uint8)
    heat = np.zeros((8, 8), np.float32)
    heat[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        xplt.plot_image(ax, tile, heat)
    with pytest.raises(ValueError, match="NaN"):
        xplt.plot_signal(ax, np.zeros(8), np.full(8, np.nan))
    with pytest.raises(ValueError, match="kind must be"):
        xplt.plot_image(ax, tile, np.zeros((8, 8)), kind="abs")
    signed = np.zeros((8, 8), np.float32)
    signed[2, 2], signed[5, 5] = -3.0, 1.0
    shown = xplt.plot_image(ax, tile, signed, kind="absolute", percentile=100)
    drawn = np.asarray(shown.get_array())
    assert drawn[2, 2] == 3.0 and drawn[5, 5] == 1.0              # the negative value is drawn, strongest
    line = xplt.plot_signal(ax, np.zeros(8), np.array([-2.0, 0, 0, 0, 0, 0, 0, 1.0]), kind="absolute")
    assert np.asarray(line.get_array())[0, 0] == 2.0
    plt.close(fig)


# --- the sanity check ---

def test_cascading_randomization_redraws_layer_and_group_normalisation():
    inp = keras.Input((12, 12, 3))
    h = layers.Conv2D(4, 3, name="c1")(inp)
    h = layers.GroupNormalization(groups=2, name="gn")(h)
    h = layers.Conv2D(4, 3, name="c2")(h)
    h = layers.LayerNormalization(name="ln")(h)
    model = keras.Model(inp, layers.Dense(2, name="d")(layers.GlobalAveragePooling2D()(h)))
    groups = xm._randomisation_groups(model)
    assert [[lay.name for lay in g] for g in groups] == [["d"], ["c2", "ln"], ["c1", "gn"]]
    for layer in (model.get_layer("gn"), model.get_layer("ln")):
        before = [w.copy() for w in layer.get_weights()]
        xm._randomise(layer, np.random.default_rng(0))
        assert all(not np.allclose(a, b) for a, b in zip(before, layer.get_weights()))


def test_the_default_layer_is_found_in_a_very_deep_model():
    inp = keras.Input((32, 1))
    h = inp
    for i in range(600):                                        # deeper than Python's recursion limit allows
        h = layers.Activation("relu" if i % 2 else "linear")(layers.Conv1D(2, 1)(h) if i % 50 == 0 else h)
    model = keras.Model(inp, layers.Dense(2)(layers.GlobalAveragePooling1D()(h)))
    assert xu.find_layer(model) is model.layers[-3]


def test_separable_convolutions_start_their_own_step_of_the_cascade():
    model = keras.Sequential([keras.Input((12, 12, 3)), layers.SeparableConv2D(4, 3, name="s1"),
                              layers.BatchNormalization(name="bn1"), layers.SeparableConv2D(4, 3, name="s2"),
                              layers.SeparableConv2D(4, 3, name="s3"), layers.GlobalAveragePooling2D(),
                              layers.Dense(2, name="d")])
    groups = [[lay.name for lay in g] for g in xm._randomisation_groups(model)]
    assert groups == [["d"], ["s3"], ["s2"], ["s1", "bn1"]]
