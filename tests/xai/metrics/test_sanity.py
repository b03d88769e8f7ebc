"""xai/metrics/sanity.py: the cascading model-randomisation test (Adebayo et al., 2018): Grad-CAM passes
it, a method blind to the weights fails it; every layer with weights is redrawn, normalisation layers
with the layer before them, and the model explained is left untouched."""
import keras
import numpy as np
import pytest
from keras import layers

import xai.metrics.sanity as xs
from tests.conftest import tiny_conv1d
from xai.methods.cam import grad_cam


def test_sanity_check_passes_for_grad_cam_and_fails_for_a_weight_blind_method():
    model = tiny_conv1d()
    x = np.random.default_rng(1).normal(size=(8, 16, 1)).astype(np.float32)
    before = [w.copy() for w in model.get_weights()]
    cam = xs.cascading_randomization(model, x, lambda m, xb, c: grad_cam(m, xb, c))
    assert cam["layers"][0] == "out" and cam["correlation"].shape == (3, 8)
    assert cam["mean"][-1] < 0.6
    for w, v in zip(before, model.get_weights()):
        np.testing.assert_array_equal(w, v)                                  # the original is untouched
    # "explanation" = |input|: ignores the weights, so it stays perfectly correlated
    blind = xs.cascading_randomization(model, x, lambda m, xb, c: np.abs(xb[..., 0]))
    np.testing.assert_allclose(blind["mean"], 1.0)


def test_sanity_check_randomises_batch_normalisation_too():
    inp = keras.Input((16, 1))
    h = keras.layers.Conv1D(4, 3, padding="same", name="conv")(inp)
    h = keras.layers.BatchNormalization(name="bn")(h)
    h = keras.layers.GlobalAveragePooling1D()(h)
    model = keras.Model(inp, keras.layers.Softmax()(keras.layers.Dense(3, name="dense")(h)))
    groups = xs._randomisation_groups(model)
    assert [[layer.name for layer in g] for g in groups] == [["dense"], ["conv", "bn"]]
    seen = {}

    def explain(m, xb, c):
        seen[len(seen)] = [w.copy() for w in m.get_layer("bn").get_weights()]
        return grad_cam(m, xb, c)
    x = np.random.default_rng(0).normal(size=(4, 16, 1)).astype(np.float32)
    xs.cascading_randomization(model, x, explain)
    gamma_before, gamma_after = seen[0][0], seen[2][0]
    assert not np.allclose(gamma_before, gamma_after)
    np.testing.assert_array_equal(seen[2][3], 1.0)           # moving variance back to its initial state


def test_cascading_randomization_redraws_layer_and_group_normalisation():
    inp = keras.Input((12, 12, 3))
    h = layers.Conv2D(4, 3, name="c1")(inp)
    h = layers.GroupNormalization(groups=2, name="gn")(h)
    h = layers.Conv2D(4, 3, name="c2")(h)
    h = layers.LayerNormalization(name="ln")(h)
    model = keras.Model(inp, layers.Dense(2, name="d")(layers.GlobalAveragePooling2D()(h)))
    groups = xs._randomisation_groups(model)
    assert [[lay.name for lay in g] for g in groups] == [["d"], ["c2", "ln"], ["c1", "gn"]]
    for layer in (model.get_layer("gn"), model.get_layer("ln")):
        before = [w.copy() for w in layer.get_weights()]
        xs._randomise(layer, np.random.default_rng(0))
        assert all(not np.allclose(a, b) for a, b in zip(before, layer.get_weights()))


def test_separable_convolutions_start_their_own_step_of_the_cascade():
    model = keras.Sequential([keras.Input((12, 12, 3)), layers.SeparableConv2D(4, 3, name="s1"),
                              layers.BatchNormalization(name="bn1"), layers.SeparableConv2D(4, 3, name="s2"),
                              layers.SeparableConv2D(4, 3, name="s3"), layers.GlobalAveragePooling2D(),
                              layers.Dense(2, name="d")])
    groups = [[lay.name for lay in g] for g in xs._randomisation_groups(model)]
    assert groups == [["d"], ["s3"], ["s2"], ["s1", "bn1"]]


def test_map_entropy_is_0_for_a_constant_map_and_log_bins_for_an_even_spread():
    even = np.arange(100, dtype=float)[None]                                  # 10 values a bin
    np.testing.assert_allclose(xs.map_entropy(np.vstack([np.ones((1, 100)), even]), 10), [0.0, np.log(10)])
    two = np.r_[np.zeros(50), np.ones(50)][None]
    np.testing.assert_allclose(xs.map_entropy(two, 10), np.log(2))


def test_emprt_rises_above_1_when_randomisation_makes_maps_noisier_and_stays_1_for_a_blind_method():
    model = tiny_conv1d()
    x = np.random.default_rng(1).normal(size=(8, 16, 1)).astype(np.float32)
    trained = [w.copy() for w in model.get_weights()]
    noise = np.random.default_rng(5).uniform(size=(8, 16))

    def explain(noisy_when_random):
        def f(m, xb, c):
            is_trained = all(np.array_equal(a, b) for a, b in zip(m.get_weights(), trained))
            two_values = np.tile((np.arange(16) >= 8).astype(float), (len(xb), 1))   # entropy log 2
            return two_values if is_trained == noisy_when_random else noise          # spread: more complex
        return f
    rises = xs.efficient_randomization(model, x, explain(True), n_bins=10)
    assert (rises["ratio"] > 1).all() and rises["mean"] > 1                          # the random model was randomised
    np.testing.assert_allclose(rises["entropy_trained"], np.log(2))
    falls = xs.efficient_randomization(model, x, explain(False), n_bins=10)
    assert (falls["ratio"] < 1).all()                                                # the direction is random / trained
    blind = xs.efficient_randomization(model, x, lambda m, xb, c: np.abs(xb[..., 0]), n_bins=10)
    np.testing.assert_allclose(blind["ratio"], 1.0)
    for w, v in zip(trained, model.get_weights()):
        np.testing.assert_array_equal(w, v)                                          # the original is untouched
    cam = xs.efficient_randomization(model, x, lambda m, xb, c: grad_cam(m, xb, c))
    assert cam["ratio"].shape == (8,) and 10 <= cam["n_bins"] <= 200


def test_smprt_runs_bottom_up_and_a_weight_blind_method_stays_correlated():
    model = tiny_conv1d()
    x = np.random.default_rng(2).normal(size=(4, 16, 1)).astype(np.float32)
    cascade = xs.cascading_randomization(model, x, lambda m, xb, c: grad_cam(m, xb, c))
    smooth = xs.smooth_randomization(model, x, lambda m, xb, c: grad_cam(m, xb, c), samples=3)
    assert smooth["layers"] == cascade["layers"][::-1] and smooth["correlation"].shape == (3, 4)
    blind = xs.smooth_randomization(model, x, lambda m, xb, c: np.abs(xb[..., 0]), samples=3)
    np.testing.assert_allclose(blind["mean"], 1.0)
    calls = []
    xs.smooth_randomization(model, x, lambda m, xb, c: calls.append(xb.copy()) or np.abs(xb[..., 0]), samples=2,
                            noise=0.0)
    assert all(np.array_equal(c, x) for c in calls) and len(calls) == 2 * (1 + 3)   # no noise: the input itself


def test_the_repairs_refuse_bad_options():
    model = tiny_conv1d()
    x = np.zeros((2, 16, 1), np.float32)
    f = lambda m, xb, c: np.abs(xb[..., 0])  # noqa: E731
    for kwargs, match in (({"samples": 0}, "samples"), ({"noise": -1.0}, "noise"), ({"value_range": (1, 1)}, "value_range")):
        with pytest.raises(ValueError, match=match):
            xs.smooth_randomization(model, x + 1, f, **kwargs)
    with pytest.raises(ValueError, match="n_bins"):
        xs.map_entropy(np.ones((1, 4)), 1)
    with pytest.raises(ValueError, match="one map a row"):
        xs.map_entropy(np.arange(6.0), 3)
    with pytest.raises(ValueError, match="explain must be"):
        xs.efficient_randomization(model, x, "grad_cam")
