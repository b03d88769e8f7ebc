import keras
import numpy as np
import pytest

import xai_metrics as xm
import xai_utils as xu
from conftest import tiny_conv1d

REGION = slice(10, 20)


def _region_model(length=40):
    """score(class 0) = mean of x over positions 10..19; class 1 is a constant."""
    weights = np.zeros((length, 2), np.float32)
    weights[REGION, 0] = 1.0 / 10
    inp = keras.Input((length, 1))
    out = keras.layers.Dense(2, kernel_initializer=keras.initializers.Constant(weights),
                             bias_initializer=keras.initializers.Constant([0.0, 0.5]))(keras.layers.Flatten()(inp))
    return keras.Model(inp, out)


def _region_map(n=4, length=40):
    maps = np.zeros((n, length), np.float32)
    maps[:, REGION] = np.linspace(1, 2, 10)[None]
    return maps


def test_deletion_insertion_on_an_analytic_case():
    model = _region_model()
    x = np.ones((4, 40, 1), np.float32)
    out = xm.deletion_insertion(model, x, _region_map(), 0, steps=4, score="logit")
    # deleting 10 positions a step: the region is gone after the first step
    np.testing.assert_allclose(out["deletion_curve"][0], [1, 0, 0, 0, 0], atol=1e-6)
    np.testing.assert_allclose(out["insertion_curve"][0], [0, 1, 1, 1, 1], atol=1e-6)
    np.testing.assert_allclose(out["deletion_auc"], 0.125, atol=1e-6)
    np.testing.assert_allclose(out["insertion_auc"], 0.875, atol=1e-6)
    # a constant map keeps the original order: the region (positions 10..19) goes second
    flat = xm.deletion_insertion(model, x, np.ones((4, 40)), 0, steps=4, score="logit")
    np.testing.assert_allclose(flat["deletion_curve"][0], [1, 1, 0, 0, 0], atol=1e-6)


def test_deletion_with_blur_fill_and_signed_ig_maps():
    model = _region_model()
    x = np.random.default_rng(0).normal(size=(3, 40, 1)).astype(np.float32)
    ig = xu.integrated_gradients(model, x, 0)
    out = xm.deletion_insertion(model, x, ig, 0, steps=8, fill="blur", blur_sigma=2.0, score="logit")
    assert out["deletion_curve"].shape == (3, 9)
    np.testing.assert_allclose(out["deletion_curve"][:, 0], out["insertion_curve"][:, -1], atol=1e-6)
    with pytest.raises(ValueError, match="fill must be"):
        xm.deletion_insertion(model, x, ig, 0, fill="noise")


def test_average_drop_and_increase_on_an_analytic_case():
    model = _region_model()
    x = np.ones((4, 40, 1), np.float32)
    # keep 25 % = 10 positions: the region map keeps all of the score, a map elsewhere none of it
    good = xm.average_drop_increase(model, x, _region_map(), 0, keep_fraction=0.25, score="logit")
    np.testing.assert_allclose(good["drop"], 0, atol=1e-6)
    np.testing.assert_array_equal(good["increase"], 0)
    elsewhere = np.zeros((4, 40), np.float32)
    elsewhere[:, 25:35] = 1
    bad = xm.average_drop_increase(model, x, elsewhere, 0, keep_fraction=0.25, score="logit")
    np.testing.assert_allclose(bad["drop"], 1, atol=1e-6)
    s = xm.summary(bad["drop"])
    assert s["mean"] == pytest.approx(1.0) and s["n"] == 4


def test_localisation_metrics():
    masks = np.zeros((4, 40), bool)
    masks[:, REGION] = True
    np.testing.assert_allclose(xm.relevance_mass_accuracy(_region_map(), masks), 1.0)
    np.testing.assert_array_equal(xm.pointing_game(_region_map(), masks), 1.0)
    constant = np.ones((4, 40))
    np.testing.assert_allclose(xm.relevance_mass_accuracy(constant, masks), 0.25)   # chance = mask share
    np.testing.assert_array_equal(xm.pointing_game(constant, masks), 0.0)            # a tie is no hit
    signed = -_region_map()
    np.testing.assert_allclose(xm.relevance_mass_accuracy(signed, masks), 0.0)       # no positive mass
    ig_shaped = _region_map()[..., None]
    np.testing.assert_allclose(xm.relevance_mass_accuracy(ig_shaped, masks, x_shape=(4, 40, 1)), 1.0)


def test_spearman():
    a = np.random.default_rng(0).normal(size=(3, 50))
    np.testing.assert_allclose(xm.spearman(a, a), 1.0)
    np.testing.assert_allclose(xm.spearman(a, -a), -1.0)
    np.testing.assert_allclose(xm.spearman(a, np.exp(a)), 1.0)               # ranks, not values
    np.testing.assert_allclose(xm.spearman(a, np.ones_like(a)), 0.0)


def test_sanity_check_passes_for_grad_cam_and_fails_for_a_weight_blind_method():
    model = tiny_conv1d()
    x = np.random.default_rng(1).normal(size=(8, 16, 1)).astype(np.float32)
    before = [w.copy() for w in model.get_weights()]
    cam = xm.cascading_randomization(model, x, lambda m, xb, c: xu.grad_cam(m, xb, c))
    assert cam["layers"][0] == "out" and cam["correlation"].shape == (3, 8)
    assert cam["mean"][-1] < 0.6
    for w, v in zip(before, model.get_weights()):
        np.testing.assert_array_equal(w, v)                                  # the original is untouched
    # "explanation" = |input|: ignores the weights, so it stays perfectly correlated
    blind = xm.cascading_randomization(model, x, lambda m, xb, c: np.abs(xb[..., 0]))
    np.testing.assert_allclose(blind["mean"], 1.0)


def test_compare_methods_and_table():
    model = _region_model()
    x = np.random.default_rng(2).normal(size=(5, 40, 1)).astype(np.float32) + 2
    masks = np.zeros((5, 40), bool)
    masks[:, REGION] = True
    maps = {"region": _region_map(5), "ig": xu.integrated_gradients(model, x, 0)}
    res = xm.compare_methods(model, x, maps, np.zeros(5, int), masks=masks, seconds={"region": 0.5}, steps=4)
    assert set(res) == {"region", "ig"}
    np.testing.assert_allclose(res["region"]["relevance_mass"], 1.0)
    np.testing.assert_allclose(res["region"]["agreement_ig"], res["ig"]["agreement_region"])
    table = xm.comparison_table(res)
    lines = table.splitlines()
    assert len(lines) == 4 and lines[0].startswith("| method | n |") and "| region | 5 |" in lines[2]


def test_localisation_metrics_refuse_mismatched_masks():
    with pytest.raises(ValueError, match="one mask per map"):
        xm.pointing_game(np.ones((4, 40)), np.ones((4, 30), bool))
    with pytest.raises(ValueError, match="one mask per map"):
        xm.relevance_mass_accuracy(np.ones((4, 40)), np.ones((4, 30), bool))
