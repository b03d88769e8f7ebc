"""xai/shortcut/scores.py: the scorer on maps with a known answer (the mask scores 1, a disjoint map
0, a random map the area share), reliance on a model built to use the marker, detection and rank
agreement on scores with a known separation."""
import numpy as np
import pytest

from xai.shortcut.markers import ZIGZAG_LENGTH, add_marker, marker_pattern
from xai.shortcut.scores import (
    detection,
    edge_map,
    flip_trend,
    map_change,
    marker_scores,
    mean_interval,
    random_map,
    rank_agreement,
    reliance,
)


def _marked_images(n=64, seed=0):
    x = np.random.default_rng(seed).uniform(0, 255, (n, 60, 60, 3)).astype(np.float32)
    return add_marker(x, "local", seed=seed)


def test_a_map_equal_to_the_mask_scores_1_a_disjoint_map_0_and_a_random_map_the_area_share():
    x, mask = _marked_images()
    exact = marker_scores(mask.astype(np.float32), mask, x.shape)
    for k in ("mass", "rank", "pointing"):
        np.testing.assert_allclose(exact[k], 1.0)
    disjoint = marker_scores((~mask).astype(np.float32), mask, x.shape)
    for k in ("mass", "rank"):
        np.testing.assert_allclose(disjoint[k], 0.0)
    share = mask.mean()
    rnd = marker_scores(random_map(x, seed=1), mask, x.shape)
    got = mean_interval(rnd["mass"][None])
    assert got["low"] <= share <= got["high"], (got, share)
    assert abs(rnd["rank"].mean() - share) < 0.03
    like_x = np.repeat(mask[..., None], 3, -1).astype(np.float32)      # maps shaped like x: channels summed
    np.testing.assert_allclose(marker_scores(like_x, mask, x.shape)["mass"], 1.0)
    np.testing.assert_allclose(marker_scores(-like_x, mask, x.shape)["mass"], 0.0)   # positive relevance only


def test_the_edge_map_finds_a_marker_on_a_flat_input_and_has_no_model_in_it():
    x, mask = add_marker(np.full((4, 40, 1), 0.3, np.float32), seed=0)   # the zigzag replaces flat samples
    edges = edge_map(x)
    assert edges.shape == (4, 40)
    assert marker_scores(edges, mask, x.shape)["mass"].min() > 0.8        # a neighbour on each side shares the step
    tiles, tmask = add_marker(np.full((2, 50, 50, 3), 100.0, np.float32), seed=0)
    assert marker_scores(edge_map(tiles), tmask, tiles.shape)["mass"].min() > 0.5   # area share 0.058; Sobel spills a pixel out
    stripes = np.zeros((3, 20, 20, 1), np.float32)
    stripes[1, :, ::2] = 255.0                                            # a flat image between two, one striped
    np.testing.assert_array_equal(edge_map(stripes)[[0, 2]], 0.0)        # each image's edges are its own


def _marker_reading_model():
    """Class 0 for a negative signal, 1 for a positive one, class 2 wherever the zigzag is: a model
    that relies on the marker by construction."""
    import keras
    x = keras.Input((40, 1))
    mean = keras.layers.GlobalAveragePooling1D()(x)                                    # (N, 1)
    zig = keras.layers.GlobalMaxPooling1D()(keras.layers.Conv1D(1, ZIGZAG_LENGTH, use_bias=False, name="zig")(x))   # (N, 1)
    logits = keras.layers.Dense(3, name="out")(keras.layers.Concatenate()([mean, zig]))
    model = keras.Model(x, logits)
    model.get_layer("zig").set_weights([marker_pattern("local", 3)[:, None, None]])
    model.get_layer("out").set_weights([np.array([[-10, 10, 0], [0, 0, 10]], np.float32), np.array([0, 0, -20], np.float32)])
    return model


def test_reliance_of_a_model_built_to_read_the_marker_is_a_full_flip_and_a_full_drop():
    y = np.repeat([0, 1, 2], 20)
    x = np.concatenate([np.full((20, 40, 1), -1.0), np.full((20, 40, 1), 1.0), np.zeros((20, 40, 1))]).astype(np.float32)
    marked, _ = add_marker(x, seed=0)
    got = reliance(_marker_reading_model(), x, marked, y, 2)
    assert got["flip_rate"] == 1.0 and got["flip_n"] == 40 and got["flip_rate_by_class"] == {0: [20, 20], 1: [20, 20]}
    assert got["marked_accuracy_with"] == 1.0 and got["marked_accuracy_without"] == 0.0
    assert got["accuracy_drop"] == 1.0
    unmoved = reliance(_marker_reading_model(), x, x, y, 2)               # "marked" inputs without a marker
    assert unmoved["flip_rate"] == 0.0 and unmoved["accuracy_drop"] == 0.0
    with pytest.raises(ValueError, match="same N"):
        reliance(_marker_reading_model(), x, marked[:5], y, 2)


def test_detection_is_1_for_separated_scores_and_about_half_with_an_interval_over_it_for_none():
    rng = np.random.default_rng(0)
    high, low = rng.uniform(0.6, 1, (3, 30)), rng.uniform(0, 0.4, (4, 30))
    sep = detection(high, low, n_boot=200)
    assert sep["auroc"] == 1.0 and sep["low"] == 1.0 and sep["models"] == [3, 4]
    same = detection(rng.random((3, 40)), rng.random((3, 40)), n_boot=300)
    assert same["low"] < 0.5 < same["high"]
    with pytest.raises(ValueError, match="same N"):
        detection(high, low[:, :5])


def test_detection_and_mean_interval_resample_the_models_so_one_odd_seed_widens_the_interval():
    rng = np.random.default_rng(2)
    one_seed = rng.uniform(0.6, 1, (1, 40))
    odd = np.concatenate([one_seed, rng.uniform(0, 0.4, (1, 40))])          # a second reliant seed that did not learn it
    controls = rng.uniform(0, 0.4, (2, 40))
    assert detection(odd, controls, n_boot=400)["low"] < 0.6 < detection(one_seed, controls, n_boot=400)["low"]
    assert mean_interval(odd, n_boot=400)["low"] < 0.3 < mean_interval(one_seed, n_boot=400)["low"]


def test_rank_agreement_is_1_for_the_same_order_and_minus_1_for_the_reverse():
    rng = np.random.default_rng(1)
    values = {m: rng.normal(i, 0.1, 30) for i, m in enumerate("abcde")}
    mean = lambda m, cols: float(values[m][cols].mean())              # noqa: E731
    assert rank_agreement("abcde", mean, mean, 30, n_boot=50)["tau"] == pytest.approx(1.0)
    rev = rank_agreement("abcde", mean, lambda m, cols: -mean(m, cols), 30, n_boot=50)
    assert rev["tau"] == pytest.approx(-1.0) and rev["high"] == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="at least 3"):
        rank_agreement("ab", mean, mean, 30)


def test_map_change_is_0_for_the_same_maps_and_large_for_unrelated_ones():
    a = np.random.default_rng(0).random((5, 20, 20))
    np.testing.assert_allclose(map_change(a, a, (5, 20, 20, 3)), 0.0, atol=1e-12)
    flat = np.zeros((2, 20, 20))
    np.testing.assert_array_equal(map_change(flat, flat, (2, 20, 20, 3)), 0.0)   # two empty maps: nothing changed
    b = np.random.default_rng(1).random((5, 20, 20))
    assert map_change(a, b, (5, 20, 20, 3)).min() > 0.7


def test_flip_trend_is_at_its_maximum_for_flips_rising_with_p_its_minimum_for_falling_and_says_where_it_dips():
    p = [0, 0, 0.5, 0.5, 1, 1]
    top = np.sqrt(12 / 15)                            # tau-b's largest value with two seeds tied at each p
    up = flip_trend(p, [0.0, 0.01, 0.4, 0.5, 0.9, 0.95], n_boot=200)
    assert up["tau"] == pytest.approx(top) and up["rising"] and up["low"] > 0
    assert up["mean_by_p"] == pytest.approx({"0": 0.005, "0.5": 0.45, "1": 0.925})
    down = flip_trend(p, [0.9, 0.95, 0.4, 0.5, 0.0, 0.01], n_boot=200)
    assert down["tau"] == pytest.approx(-top) and not down["rising"] and down["high"] < 0
    dip = flip_trend(p, [0.0, 0.0, 0.7, 0.7, 0.6, 0.6], n_boot=200)        # up, then down a little
    assert not dip["rising"] and 0 < dip["tau"] < 1


def test_flip_trend_refuses_one_p_too_few_models_and_rates_outside_0_1():
    with pytest.raises(ValueError, match="2 or more p"):
        flip_trend([1, 1, 1], [0.9, 0.8, 0.95])
    with pytest.raises(ValueError, match="at least 3 models"):
        flip_trend([0, 1], [0.0, 0.9])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        flip_trend([0, 0.5, 1], [0.0, 0.5, 1.5])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        flip_trend([0, 0.5, 1], [0.0, np.nan, 1.0])
