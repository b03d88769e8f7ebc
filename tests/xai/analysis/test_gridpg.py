"""xai/analysis/gridpg.py: the grid pointing game on a model: the network at the mosaic's size with the
same weights, a map that knows the cells scores 1 and one blind to them the chance level, and networks
that cannot take another size are refused by name."""
import keras
import numpy as np
import pytest

from tests.conftest import tiny_conv2d
from xai.analysis.gridpg import at_input_size, grid_pointing


def _functional(size=12):
    x = keras.Input((size, size, 3))
    h = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="k1")(x)
    h = keras.layers.GlobalAveragePooling2D()(h)
    return keras.Model(x, keras.layers.Softmax()(keras.layers.Dense(4, name="logits")(h)))


def test_at_input_size_keeps_the_weights_and_refuses_a_fixed_size_network():
    model = _functional()
    big = at_input_size(model, (24, 24, 3))
    assert big.input_shape == (None, 24, 24, 3)
    tile = np.random.default_rng(0).uniform(0, 1, (1, 12, 12, 3)).astype(np.float32)
    mosaic = np.tile(tile, (1, 2, 2, 1))                         # the same tile four times: the same mean features
    assert np.allclose(big(mosaic).numpy(), model(tile).numpy(), atol=0.05)
    x = keras.Input((12, 12, 3))
    flat = keras.Model(x, keras.layers.Dense(4)(keras.layers.Flatten()(keras.layers.Conv2D(2, 3)(x))))
    with pytest.raises(ValueError, match="does not take inputs"):
        at_input_size(flat, (24, 24, 3))


def _channel_classifier():
    """Class k is the channel with the largest mean, with probability about 0.9999 on a one-hot image."""
    x = keras.Input((12, 12, 4))
    h = keras.layers.Conv2D(4, 1, use_bias=False, kernel_initializer=keras.initializers.Constant(np.eye(4)[None, None]),
                            name="k1")(x)
    h = keras.layers.GlobalAveragePooling2D()(h)
    logits = keras.layers.Dense(4, kernel_initializer=keras.initializers.Identity(10.0), name="logits")(h)
    return keras.Model(x, keras.layers.Softmax()(logits))


def test_grid_pointing_scores_a_cell_aware_map_1_and_a_blind_one_at_chance():
    model = _channel_classifier()
    y = np.arange(20) % 4
    x = np.zeros((20, 12, 12, 4), np.float32)
    x[np.arange(20), :, :, y] = 1.0                                # one-hot images: confidently right

    def knows(m, xb, c):                                           # relevance where the asked class's channel is on
        return xb[np.arange(len(xb)), :, :, c]
    result = grid_pointing(model, x, y, {"knows": knows, "blind": lambda m, xb, c: np.ones(xb.shape)},
                           n_grids=3, confidence=0.01)
    np.testing.assert_allclose(result["scores"]["knows"], 1.0)
    np.testing.assert_allclose(result["scores"]["blind"], 0.25)    # IG-like maps: channels summed first
    assert result["classes"].shape == (3, 4) and 0 <= result["grid_top_in_grid"] <= 1
    lo, hi = result["summary"]["knows"]["interval95"]
    assert lo == hi == 1.0


def test_grid_pointing_refuses_bad_labels_and_confidence():
    model = tiny_conv2d()
    x = np.zeros((8, 12, 12, 3), np.float32)
    with pytest.raises(ValueError, match="y must be int"):
        grid_pointing(model, x, np.zeros(8), {})
    with pytest.raises(ValueError, match="confidence"):
        grid_pointing(model, x, np.zeros(8, int), {}, confidence=1.5)


def test_share_interval_takes_grids_as_units():
    from xai.analysis.gridpg import share_interval
    cells = np.array([1.0, 0.0, 0.5, 0.5, np.nan, 0.2, 0.4, 0.6])      # 2 grids of 4 cells, one without relevance
    s = share_interval(cells, 4)
    assert s["n"] == 2 and s["unit"] == "grid" and s["without_positive_relevance"] == 1
    assert s["mean"] == pytest.approx(np.mean([0.5, 0.4]))              # each grid's mean, then the grids'
    one = share_interval(cells[:4], 4)
    assert one["n"] == 1 and np.isnan(one["interval95"][0])             # one grid: no interval
    with pytest.raises(ValueError, match="grid by grid"):
        share_interval(cells[:6], 4)
