"""xai/explore/spray.py: SpRAy finds two groups of maps that look at different places (the eigengap
says two), its clusters isolate the group with an ARI near 1 against a control's near 0, and bad
inputs are refused."""
import numpy as np
import pytest

from xai.explore.spray import cluster_agreement, spray, spray_features


def _maps(n=60, seed=0):
    """Half the maps peak in the top-left corner (a planted tag), half spread over the tile."""
    rng = np.random.default_rng(seed)
    maps = rng.uniform(0, 0.2, size=(n, 32, 32))
    tagged = np.arange(n) < n // 2
    maps[tagged, 2:8, 2:8] += 3.0
    return maps.astype(np.float32), tagged


def test_spray_separates_maps_that_look_at_a_tag_and_the_eigengap_says_two():
    maps, tagged = _maps()
    result = spray(maps, n_neighbors=8)
    assert result.eigengap_k == 2 and result.k == 2
    agreement = cluster_agreement(result.labels, tagged, n_boot=200)
    assert agreement["model"]["ari"] == pytest.approx(1.0)
    tag_cluster = result.labels[0]
    assert result.mean_maps.shape == (2, 16, 16) and result.mean_maps[tag_cluster, 1:4, 1:4].min() > 0.5
    assert sorted(result.sizes.tolist()) == [30, 30] and len(result.members(tag_cluster)) == 30


def test_against_a_control_whose_clusters_ignore_the_tag_the_difference_is_positive():
    maps, tagged = _maps()
    control = np.random.default_rng(3).integers(0, 2, len(tagged))
    a = cluster_agreement(spray(maps, 2, n_neighbors=8).labels, tagged, control_labels=control, n_boot=300)
    assert a["control"]["low"] < 0.1 < 0.9 < a["model"]["ari"] and a["difference"]["low"] > 0.5


def test_features_are_block_means_scaled_to_one_for_signals_and_images():
    f = spray_features(np.tile(np.arange(40.0), (3, 1))[..., None], grid=4)
    np.testing.assert_allclose(f[0], np.array([4.5, 14.5, 24.5, 34.5]) / 34.5, rtol=1e-6)
    assert spray_features(np.ones((3, 10, 10, 3)), grid=5).shape == (3, 25)


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="NaN"):
        spray_features(np.full((3, 4, 4), np.nan))
    with pytest.raises(ValueError, match="grid"):
        spray_features(np.ones((3, 4, 4)), grid=8)
    with pytest.raises(ValueError, match="more maps than n_neighbors"):
        spray(np.ones((5, 8, 8)), n_neighbors=10)
    with pytest.raises(ValueError, match="same length"):
        cluster_agreement([0, 1, 0, 1], [True, False, True])


def test_mean_maps_keep_the_grid_of_non_square_maps_and_many_channel_signals_say_so():
    rng = np.random.default_rng(4)
    maps = rng.uniform(0, 0.1, (30, 12, 40))
    maps[:15, :3, :5] += 1.0
    result = spray(maps, 2, n_neighbors=5)
    assert result.mean_maps.shape == (2, 12, 16)
    tagged = result.labels[0]
    assert result.mean_maps[tagged, 0, 0] > 0.5 and result.mean_maps[tagged, -1, -1] < 0.5
    assert spray(maps, 2, grid=(2, 8), n_neighbors=5).mean_maps.shape == (2, 2, 8)
    leads = rng.uniform(0, 1, (30, 50, 12))                                # 12-lead signals
    assert spray(leads, 2, kind="signal", n_neighbors=5).mean_maps.shape == (2, 20)


def test_the_agreement_interval_is_not_lifted_by_repeated_inputs():
    rng = np.random.default_rng(0)
    truth = np.arange(20) % 2 == 0
    mids = [np.mean([(a := cluster_agreement(rng.integers(0, 2, 20), truth, n_boot=200, seed=s))["model"]["low"],
                     a["model"]["high"]]) for s in range(20)]
    assert abs(np.mean(mids)) < 0.1                                         # with repeats: about 0.14


def test_constant_maps_a_one_group_truth_and_float_categories_are_refused():
    with pytest.raises(ValueError, match="every map is the same"):
        spray(np.ones((20, 8, 8)), 2, n_neighbors=5)
    with pytest.raises(ValueError, match="one group only"):
        cluster_agreement([0, 1, 0, 1], [True] * 4)
    with pytest.raises(ValueError, match="bool or int category"):
        cluster_agreement([0, 1, 0, 1], [0.1, 0.2, 0.3, 0.4])
    with pytest.raises(ValueError, match="grid"):
        spray_features(np.ones((3, 8, 8)), grid=4.0)
