import keras
import numpy as np
import pytest
from conftest import tiny_conv1d, tiny_conv2d

import xai.methods.perturbation as xp


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


def test_sise_finds_blocks_and_gives_maps():
    model = tiny_conv2d()
    names = [layer.name for layer in xp.sise_layers(model)]
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


def test_otsu_separates_two_modes():
    values = np.concatenate([np.full(100, 0.1), np.full(100, 0.9)])
    assert 0.1 < xp._otsu(values) < 0.9
