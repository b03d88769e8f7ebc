"""xai/methods/perturbation.py: RISE and SISE on models with known answers: the masks, the region a
model reads, which feature maps SISE keeps at a gradient threshold, Otsu's cut and the block fusion."""
import keras
import numpy as np
import pytest

import xai.methods.perturbation as xp
from tests.conftest import tiny_conv1d, tiny_conv2d
from xai.layers import sise_layers


def _x1d(n=3, seed=0):
    return np.random.default_rng(seed).normal(size=(n, 16, 1)).astype(np.float32)


def _x2d(n=2, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, size=(n, 12, 12, 3)).astype(np.float32)


def test_rise_masks_are_smooth_binary_grids_with_the_right_density():
    m1 = xp.rise_masks(2000, (40,), cell_size=5, p_keep=0.3, seed=1)
    assert m1.shape == (2000, 40) and m1.min() >= 0 and m1.max() <= 1
    assert abs(m1.mean() - 0.3) < 0.02
    m2 = xp.rise_masks(50, (12, 12), cell_size=4, seed=1)
    assert m2.shape == (50, 12, 12)
    assert not np.array_equal(m2[0], m2[1])


def test_rise_shapes_and_determinism_per_seed():
    model = tiny_conv1d()
    a = xp.rise(model, _x1d(), n_masks=300, seed=3)
    assert a.shape == (3, 16) and a.dtype == np.float32 and np.isfinite(a).all()
    np.testing.assert_array_equal(a, xp.rise(model, _x1d(), n_masks=300, seed=3))
    assert not np.allclose(a, xp.rise(model, _x1d(), n_masks=300, seed=4))
    b = xp.rise(tiny_conv2d(), _x2d(), n_masks=200, cell_size=3, seed=0)
    assert b.shape == (2, 12, 12)


def test_rise_is_batch_size_invariant():
    model = tiny_conv1d()
    ref = xp.rise(model, _x1d(5), n_masks=250, batch_size=1000)
    for bs in (7, 64, 250):
        np.testing.assert_allclose(xp.rise(model, _x1d(5), n_masks=250, batch_size=bs), ref, rtol=1e-5, atol=1e-6)


def test_rise_recovers_the_region_a_model_reads():
    # the score is the mean of positions 4..7: RISE must rank them above the rest
    inp = keras.Input((16, 1))
    weights = np.zeros((16, 2), np.float32)
    weights[4:8, 0] = 0.25
    h = keras.layers.Flatten()(inp)
    out = keras.layers.Dense(2, kernel_initializer=keras.initializers.Constant(weights), use_bias=False)(h)
    model = keras.Model(inp, out)
    x = np.ones((1, 16, 1), np.float32)
    sal = xp.rise(model, x, 0, n_masks=2000, cell_size=2, score="logit")[0]
    assert sal[4:8].min() > np.delete(sal, range(4, 8)).max()


def test_sise_finds_the_blocks_before_pooling_and_gives_deterministic_maps_in_0_1():
    model = tiny_conv2d()
    names = [layer.name for layer in sise_layers(model)]
    assert names == ["k1", "k2"]
    out = xp.sise(model, _x2d())
    assert out.shape == (2, 12, 12) and out.min() >= 0 and out.max() <= 1
    out1d = xp.sise(tiny_conv1d(), _x1d(), layers=["c1", "c2"])
    assert out1d.shape == (3, 16)
    np.testing.assert_array_equal(out1d, xp.sise(tiny_conv1d(), _x1d(), layers=["c1", "c2"]))


def test_sise_unknown_layer_and_no_pooling_errors():
    with pytest.raises(ValueError, match="no layer named 'nope'"):
        xp.sise(tiny_conv2d(), _x2d(), layers=["nope"])
    inp = keras.Input((16, 1))
    h = keras.layers.Conv1D(2, 3)(inp)
    model = keras.Model(inp, keras.layers.Dense(2)(keras.layers.Flatten()(h)))
    with pytest.raises(ValueError, match="no pooling layer"):
        xp.sise(model, _x1d())


def _three_map_model(mean_gradients):
    """x (16, 3) -> an identity 1 x 1 convolution "maps" (map k is channel k of x) -> GAP -> Dense (logits).
    The logit of class 0 is sum_k D_k mean_t x_k(t), so the spatially averaged gradient of map k is
    D_k / 16: D is set so that it is ``mean_gradients[k]``."""
    inp = keras.Input((16, 3))
    conv = keras.layers.Conv1D(3, 1, use_bias=False, name="maps")
    head = keras.layers.Dense(2, name="head")
    model = keras.Model(inp, head(keras.layers.GlobalAveragePooling1D()(conv(inp))))
    conv.set_weights([np.eye(3, dtype=np.float32)[None]])
    kernel = np.zeros((3, 2), np.float32)
    kernel[:, 0] = np.asarray(mean_gradients, np.float32) * 16
    head.set_weights([kernel, np.zeros(2, np.float32)])
    return model, kernel[:, 0].astype(np.float64)


def _sise_by_hand(x, head, kept):
    """SISE of one block in NumPy for x (16, 3) when the feature maps ``kept`` pass the threshold:
    masks minmax(x_k), each weighted by the logit of x times its mask, averaged, min-max scaled."""
    if not kept:
        return np.zeros(16)
    masks = [(x[:, k] - x[:, k].min()) / np.ptp(x[:, k]) for k in kept]            # (16,) each
    weights = [head @ (x * m[:, None]).mean(0) for m in masks]                      # the logit of each masked copy
    block = sum(w * m for w, m in zip(weights, masks)) / len(kept)
    return (block - block.min()) / np.ptp(block)


def test_sise_keeps_exactly_the_feature_maps_whose_mean_gradient_exceeds_grad_threshold():
    # mean gradients 0.3, -0.2, 0.6: the kept maps change at -0.2, 0.3 and 0.6 and nowhere else
    model, head = _three_map_model([0.3, -0.2, 0.6])
    t = np.linspace(0, 1, 16)
    x = np.stack([t, 1 - t, np.exp(-((t - 0.5) ** 2) / 0.02)], -1)                  # (16, 3): distinct maps
    by_hand = {kept: _sise_by_hand(x, head, kept) for kept in ((0, 1, 2), (0, 2), (2,), ())}
    for a in by_hand:                                                               # each kept set gives its own map
        for b in by_hand:
            assert a == b or np.abs(by_hand[a] - by_hand[b]).max() > 0.05, (a, b)
    for threshold, kept in ((-0.25, (0, 1, 2)), (-0.15, (0, 2)), (0.0, (0, 2)), (0.29, (0, 2)), (0.31, (2,)),
                            (0.59, (2,)), (0.61, ())):
        out = xp.sise(model, x[None].astype(np.float32), 0, layers=["maps"], grad_threshold=threshold, score="logit")
        np.testing.assert_allclose(out[0], by_hand[kept], atol=1e-5, err_msg=f"grad_threshold={threshold}: expected "
                                   f"the maps {kept} kept")


def test_otsu_threshold_is_the_cut_of_largest_between_class_variance():
    # a map in [0, 1] with two unequal, overlapping modes: Otsu's cut (about 0.39) lies more than 6 bins
    # from the values' midpoint (0.5), mean (0.26) and median (0.16), so a threshold that is any of
    # those, or any cut more than one bin from Otsu's, fails
    rng = np.random.default_rng(0)
    values = np.clip(np.concatenate([rng.normal(0.15, 0.03, 300), rng.normal(0.6, 0.2, 100)]), 0, 1)
    cuts = np.linspace(values.min(), values.max(), 2001)[1:-1]
    spread = [np.sum(values <= c) * np.sum(values > c) * (values[values <= c].mean() - values[values > c].mean()) ** 2
              for c in cuts]
    best = cuts[int(np.argmax(spread))]                                             # by brute force on the values
    bin_width = np.ptp(values) / 64                                                 # _otsu works on 64 bins
    assert abs(xp._otsu(values) - best) <= bin_width, (xp._otsu(values), best)
    for naive in ((values.min() + values.max()) / 2, values.mean(), np.median(values)):
        assert abs(naive - best) > 5 * bin_width


def test_sise_fusion_gates_by_the_soft_otsu_threshold_on_an_analytic_case():
    # two blocks: the low-level map covers both halves, the high-level one only the right half.
    low = np.ones((1, 8)) * np.r_[np.ones(4), np.ones(4)]
    high = np.r_[np.zeros(4), np.ones(4)][None]
    fused = xp._fuse([low[0], high[0]], softness=0.05)
    # the soft Otsu gate of the high-level map keeps the right half and shuts the left
    assert fused[4:].min() > 0.99 and fused[:4].max() < 0.01
    # a constant block map contributes nothing but keeps the earlier evidence
    ramp = np.linspace(0, 1, 8)
    np.testing.assert_allclose(xp._fuse([ramp], softness=0.05), ramp)


# --- options checked at the door ---

def test_bad_options_of_rise_and_sise_are_refused():
    model = tiny_conv1d()
    x = np.zeros((2, 16, 1), np.float32)
    cases = [(lambda: xp.rise(model, x, n_masks=0), "n_masks"),
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
