"""xai/metrics/removal.py: ROAD's imputation (exact on linear ramps, seeded, the same in threads),
MoRF / LeRF / SRG, deletion / insertion and average drop on models with a known answer, and removal by
patches."""
import keras
import numpy as np
import pytest

import xai.metrics.removal as xm
from tests.conftest import tiny_conv2d
from xai.analysis.stats import summary
from xai.methods.cam import grad_cam
from xai.methods.integrated_gradients import integrated_gradients

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


# --- deletion / insertion, average drop ---

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


def test_deletion_with_blur_fill_and_signed_ig_maps_starts_where_insertion_ends():
    model = _region_model()
    x = np.random.default_rng(0).normal(size=(3, 40, 1)).astype(np.float32)
    ig = integrated_gradients(model, x, 0)
    out = xm.deletion_insertion(model, x, ig, 0, steps=8, fill="blur", blur_sigma=2.0, score="logit")
    assert out["deletion_curve"].shape == (3, 9)
    np.testing.assert_allclose(out["deletion_curve"][:, 0], out["insertion_curve"][:, -1], atol=1e-6)
    with pytest.raises(ValueError, match="fill must be"):
        xm.deletion_insertion(model, x, ig, 0, fill="noise")


def test_average_drop_topk_on_an_analytic_case():
    model = _region_model()
    x = np.ones((4, 40, 1), np.float32)
    # keep 25 % = 10 positions: the region map keeps all of the score, a map elsewhere none of it
    good = xm.average_drop_increase_topk(model, x, _region_map(), 0, keep_fraction=0.25, fill="zeros", score="logit")
    np.testing.assert_allclose(good["drop"], 0, atol=1e-6)
    np.testing.assert_array_equal(good["increase"], 0)
    elsewhere = np.zeros((4, 40), np.float32)
    elsewhere[:, 25:35] = 1
    bad = xm.average_drop_increase_topk(model, x, elsewhere, 0, keep_fraction=0.25, fill="zeros", score="logit")
    np.testing.assert_allclose(bad["drop"], 1, atol=1e-6)
    s = summary(bad["drop"])
    assert s["mean"] == pytest.approx(1.0) and s["n"] == 4
    # with ROAD the removed region is imputed from its neighbours (constant 1 here): nothing is lost
    road = xm.average_drop_increase_topk(model, x, elsewhere, 0, keep_fraction=0.25, noise_std=0.0, score="logit")
    np.testing.assert_allclose(road["drop"], 0, atol=1e-5)


def test_average_drop_is_the_papers_multiplicative_definition():
    model = _region_model()
    x = np.ones((2, 40, 1), np.float32)
    maps = np.zeros((2, 40), np.float32)
    maps[0, REGION] = 2.0                                    # scaled to 1 on the region: the score survives
    maps[1, REGION] = 1.0
    maps[1, 10:15] = 0.5 / 1.0                               # half the region at weight 0.5 of the max
    out = xm.average_drop_increase(model, x, maps, 0, score="logit")
    np.testing.assert_allclose(out["drop"], [0.0, 0.25], atol=1e-6)          # mean of [0.5]*5 + [1]*5 = 0.75
    # signed maps count by absolute value; a map of zeros keeps nothing
    np.testing.assert_allclose(xm.average_drop_increase(model, x, -maps, 0, score="logit")["drop"], [0.0, 0.25], atol=1e-6)
    np.testing.assert_allclose(xm.average_drop_increase(model, x, np.zeros((2, 40)), 0, score="logit")["drop"], 1.0)


# --- ROAD ---

def test_road_reconstructs_a_linear_ramp_exactly_1d():
    rng = np.random.default_rng(0)
    x = (np.linspace(-1, 3, 40)[None, :, None] * np.array([1.0, -2.0])).repeat(3, 0)   # (3, 40, 2)
    removed = np.zeros((3, 40), bool)
    removed[:, 1:-1] = rng.random((3, 38)) < 0.6
    removed[2, 1:-1] = True                                  # every interior position at once
    out = xm.road_impute(x, removed, noise_std=0.0)
    assert out.dtype == np.float32 and out.shape == x.shape
    np.testing.assert_allclose(out, x, atol=1e-5)


def test_road_reconstructs_a_linear_ramp_exactly_2d_multichannel():
    i, j = np.meshgrid(np.arange(20), np.arange(24), indexing="ij")
    x = np.stack([0.3 * i + 0.1 * j, 2 - 0.2 * i, 0.05 * j + 1], -1)[None].repeat(2, 0)   # (2, 20, 24, 3)
    removed = np.zeros((2, 20, 24), bool)
    removed[0, 1:-1, 1:-1] = np.random.default_rng(1).random((18, 22)) < 0.7
    removed[1, 3:15, 4:20] = True                            # one large interior block
    np.testing.assert_allclose(xm.road_impute(x, removed, noise_std=0.0), x, atol=1e-5)


def test_road_keeps_kept_positions_and_is_seeded():
    rng = np.random.default_rng(2)
    x = rng.uniform(0, 255, (3, 16, 16, 3)).astype(np.float32)
    removed = rng.random((3, 16, 16)) < 0.5
    removed[2] = True                                        # nothing kept: the batch mean, plus noise
    a = xm.road_impute(x, removed, seed=5)
    np.testing.assert_array_equal(a[~removed], x[~removed])
    np.testing.assert_array_equal(a, xm.road_impute(x, removed, seed=5))
    assert not np.array_equal(a, xm.road_impute(x, removed, seed=6))
    # the noise's scale follows the value range (0.01 of 255 here)
    noise = a[removed] - xm.road_impute(x, removed, noise_std=0.0)[removed]
    assert 1.5 < noise.std() < 3.5
    np.testing.assert_allclose(xm.road_impute(x, removed, noise_std=0.0)[2], np.broadcast_to(x.mean((0, 1, 2)), (16, 16, 3)),
                               rtol=1e-5)


def test_road_is_the_same_solved_in_threads_or_alone():
    # the examples' systems are solved on every core; the noise is drawn in the examples' order after
    rng = np.random.default_rng(3)
    x = rng.uniform(0, 255, (5, 20, 20, 3)).astype(np.float32)
    removed = rng.random((5, 20, 20)) < 0.6
    removed[1] = False                                       # an example with nothing removed
    threaded = xm.road_impute(x, removed, seed=4, threads=3)
    np.testing.assert_array_equal(threaded, xm.road_impute(x, removed, seed=4, threads=1))
    np.testing.assert_array_equal(threaded, xm.road_impute(x, removed, seed=4))
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match="threads"):
            xm.road_impute(x, removed, threads=bad)
    alone = np.concatenate([xm.road_impute(x[i:i + 1], removed[i:i + 1], noise_std=0.0) for i in range(5)])
    np.testing.assert_allclose(xm.road_impute(x, removed, noise_std=0.0), alone, rtol=1e-6)


def test_road_border_weights_are_renormalised():
    x = np.array([[[0.0], [6.0], [3.0]]])                    # (1, 3, 1)
    removed = np.array([[True, False, False]])
    np.testing.assert_allclose(xm.road_impute(x, removed, noise_std=0.0)[0, 0, 0], 6.0)   # its only neighbour


def test_road_refuses_bad_arguments():
    x = np.zeros((2, 8, 1), np.float32)
    with pytest.raises(ValueError, match="boolean"):
        xm.road_impute(x, np.zeros((2, 8), int))
    with pytest.raises(ValueError, match="expected \\(2, 8\\)"):
        xm.road_impute(x, np.zeros((2, 7), bool))
    with pytest.raises(ValueError, match="noise_std"):
        xm.road_impute(x, np.zeros((2, 8), bool), noise_std=-1)
    with pytest.raises(ValueError, match="NaN"):
        xm.road_impute(np.full((2, 8, 1), np.nan), np.zeros((2, 8), bool))


def test_road_imputes_a_half_removed_tile_to_finite_values():
    # the cost claim lives in BENCHMARKS.md; here only that a half-removed tile is imputed at all
    rng = np.random.default_rng(3)
    x = rng.uniform(0, 255, (1, 150, 150, 3)).astype(np.float32)
    out = xm.road_impute(x, rng.random((1, 150, 150)) < 0.5)
    assert np.isfinite(out).all()


# --- MoRF / LeRF / SRG ---

def test_removal_curves_morf_lerf_srg_on_an_analytic_case():
    model = _region_model()
    x = np.ones((4, 40, 1), np.float32)
    out = xm.removal_curves(model, x, _region_map(), 0, steps=4, fill="zeros", score="logit")
    np.testing.assert_allclose(out["morf_curve"][0], [1, 0, 0, 0, 0], atol=1e-6)   # the region goes first
    np.testing.assert_allclose(out["lerf_curve"][0], [1, 1, 1, 1, 0], atol=1e-6)   # and last
    np.testing.assert_allclose(out["srg"], out["lerf_auc"] - out["morf_auc"])
    assert (out["srg"] > 0.7).all()
    road = xm.removal_curves(model, x, _region_map(), 0, steps=4, noise_std=0.0, score="logit")
    np.testing.assert_allclose(road["morf_curve"][:, :4], 1.0, atol=1e-5)          # imputed from the ones around


def test_removal_metrics_refuse_nan_maps_wrong_shapes_non_probabilities_and_bad_options():
    model = _region_model()
    x = np.ones((4, 40, 1), np.float32)
    nan_maps = _region_map()
    nan_maps[1, 3] = np.nan
    for call in (lambda: xm.removal_curves(model, x, nan_maps, 0, fill="zeros", score="logit"),
                 lambda: xm.average_drop_increase(model, x, nan_maps, 0, score="logit")):
        with pytest.raises(ValueError, match="NaN"):
            call()
    with pytest.raises(ValueError, match="expected \\(4, 40\\)"):
        xm.removal_curves(model, x, np.ones((4, 39)), 0, fill="zeros", score="logit")
    one_logit = keras.Sequential([keras.Input((40, 1)), keras.layers.Flatten(), keras.layers.Dense(1)])
    with pytest.raises(ValueError, match="no probability"):
        xm.removal_curves(one_logit, x, _region_map(), 0, fill="zeros")          # a single unit, no sigmoid
    for bad in ({"steps": 0}, {"steps": 2.5}, {"fill": "noise"}, {"score": "prob"}, {"batch_size": 0}):
        with pytest.raises(ValueError, match=list(bad)[0]):
            xm.removal_curves(model, x, _region_map(), 0, **{"fill": "zeros", "score": "logit", **bad})


def _small_cnn(k=4, seed=0, head=None):
    inp = keras.Input((12, 12, 3))
    h = keras.layers.Conv2D(5, 3, activation="relu", name="conv", kernel_initializer=keras.initializers.HeNormal(seed))(inp)
    h = keras.layers.GlobalAveragePooling2D()(h)
    out = keras.layers.Dense(k, name="logits", kernel_initializer=keras.initializers.GlorotUniform(seed))(h)
    return keras.Model(inp, head(out) if head else out)


def test_multi_label_sigmoid_head_is_read_by_the_faithfulness_metrics():
    model = _small_cnn(head=keras.layers.Activation("sigmoid"))
    x = np.random.default_rng(0).random((3, 12, 12, 3)).astype(np.float32)
    maps = grad_cam(model, x, 1)
    probability = model.predict(x, verbose=0)[:, 1]                  # (N,) label 1's own probability
    result = xm.average_drop_increase(model, x, maps, 1)
    np.testing.assert_allclose(result["original"], probability, rtol=1e-5)
    assert np.all((result["drop"] >= 0) & (result["drop"] <= 1))
    curves = xm.removal_curves(model, x, maps, 1, steps=2, noise_scale=1.0)
    np.testing.assert_allclose(curves["morf_curve"][:, 0], probability, rtol=1e-5)


def test_patch_ids_and_ranks_remove_whole_patches_best_first():
    np.testing.assert_array_equal(xm.patch_ids((5,), 2), [0, 0, 1, 1, 2])
    np.testing.assert_array_equal(xm.patch_ids((3, 3), 2).reshape(3, 3), [[0, 0, 1], [0, 0, 1], [2, 2, 3]])
    for bad in (0, 1.5, True, 4):
        with pytest.raises(ValueError, match="patch"):
            xm.patch_ids((3, 3), bad)
    # a map constant within 2 x 2 patches, distinct between them: ranking pixels or patches agrees
    blocks = np.array([[3.0, 1.0], [4.0, 2.0]])
    relevance = np.kron(blocks, np.ones((2, 2))).reshape(1, 16)
    ids = xm.patch_ids((4, 4), 2)
    np.testing.assert_array_equal(xm.patch_ranks(relevance, ids), xm._ranks(relevance))
    # one sharp pixel in a dull patch loses to a patch that is good on average
    sharp = np.zeros((4, 4))
    sharp[0, 0] = 10.0                                            # patch 0: mean 2.5
    sharp[2:, 2:] = 3.0                                           # patch 3: mean 3
    rank = xm.patch_ranks(sharp.reshape(1, 16), ids).reshape(4, 4)
    assert set(rank[2:, 2:].ravel()) == {0, 1, 2, 3} and set(rank[:2, :2].ravel()) == {4, 5, 6, 7}
    assert xm._ranks(sharp.reshape(1, 16)).reshape(4, 4)[0, 0] == 0


def test_removal_curves_by_patches_equal_those_by_pixels_for_a_map_constant_in_patches():
    model = tiny_conv2d()
    x = np.random.default_rng(0).uniform(0, 255, (2, 12, 12, 3)).astype(np.float32)
    maps = np.kron(np.random.default_rng(1).random((2, 3, 3)), np.ones((4, 4)))   # constant within 4 x 4 patches
    kwargs = dict(steps=3, fill="zeros", score="logit")
    pixels = xm.removal_curves(model, x, maps, 0, **kwargs)
    patches = xm.removal_curves(model, x, maps, 0, patch=4, **kwargs)
    np.testing.assert_allclose(patches["morf_curve"], pixels["morf_curve"], rtol=1e-5)
    with pytest.raises(ValueError, match="patch"):
        xm.removal_curves(model, x, maps, 0, patch=13, **kwargs)
