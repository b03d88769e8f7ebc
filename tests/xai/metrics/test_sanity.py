"""xai/metrics/sanity.py: the cascading model-randomisation test (Adebayo et al., 2018): Grad-CAM passes
it, a method blind to the weights fails it; every layer with weights is redrawn, normalisation layers
with the layer before them, and the model explained is left untouched."""
import keras
import numpy as np
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
