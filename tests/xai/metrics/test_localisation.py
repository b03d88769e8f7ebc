"""xai/metrics/localisation.py: relevance mass and the pointing game against a ground-truth mask,
with their chance levels; the share of a map's mass on a tile's frame."""
import numpy as np
import pytest

import xai.metrics.localisation as xl

REGION = slice(10, 20)


def _region_map(n=4, length=40):
    maps = np.zeros((n, length), np.float32)
    maps[:, REGION] = np.linspace(1, 2, 10)[None]
    return maps


def test_localisation_metrics_score_the_true_region_1_and_chance_its_share():
    masks = np.zeros((4, 40), bool)
    masks[:, REGION] = True
    np.testing.assert_allclose(xl.relevance_mass_accuracy(_region_map(), masks), 1.0)
    np.testing.assert_array_equal(xl.pointing_game(_region_map(), masks), 1.0)
    constant = np.ones((4, 40))
    np.testing.assert_allclose(xl.relevance_mass_accuracy(constant, masks), 0.25)   # chance = mask share
    np.testing.assert_array_equal(xl.pointing_game(constant, masks), 0.0)            # a tie is no hit
    signed = -_region_map()
    np.testing.assert_allclose(xl.relevance_mass_accuracy(signed, masks), 1.0)       # absolute by default
    np.testing.assert_allclose(xl.relevance_mass_accuracy(signed, masks, absolute=False), 0.0)   # no positive mass
    ig_shaped = _region_map()[..., None]
    np.testing.assert_allclose(xl.relevance_mass_accuracy(ig_shaped, masks, x_shape=(4, 40, 1)), 1.0)


def test_localisation_metrics_refuse_nan_maps_non_boolean_and_mismatched_masks():
    nan_maps = _region_map()
    nan_maps[1, 3] = np.nan
    for call in (lambda: xl.relevance_mass_accuracy(nan_maps, np.ones((4, 40), bool)),
                 lambda: xl.pointing_game(nan_maps, np.ones((4, 40), bool))):
        with pytest.raises(ValueError, match="NaN"):
            call()
    with pytest.raises(ValueError, match="boolean"):
        xl.relevance_mass_accuracy(_region_map(), np.ones((4, 40)))
    with pytest.raises(ValueError, match="one mask per map"):
        xl.pointing_game(np.ones((4, 40)), np.ones((4, 30), bool))
    with pytest.raises(ValueError, match="one mask per map"):
        xl.relevance_mass_accuracy(np.ones((4, 40)), np.ones((4, 30), bool))


def test_border_mass_share_is_0_inside_the_band_area_for_a_uniform_map_and_nan_without_mass():
    maps = np.zeros((3, 30, 30))
    maps[0, 10:20, 10:20] = 1                                 # all inside
    maps[1] = 1                                               # uniform: the band's area share
    np.testing.assert_allclose(xl.border_mass_share(maps, band=3)[:2], [0.0, xl.band_area_share((30, 30), 3)])
    assert np.isnan(xl.border_mass_share(maps, band=3)[2])    # no mass, no share
    assert xl.band_area_share((150, 150), 12) == pytest.approx(0.2944, abs=1e-4)
    with pytest.raises(ValueError, match="non-negative"):
        xl.border_mass_share(-maps, band=3)
    with pytest.raises(ValueError, match="band"):
        xl.border_mass_share(maps, band=15)


def test_rank_accuracy_scores_the_mask_1_a_disjoint_map_0_and_a_random_map_its_area_share():
    masks = np.zeros((4, 40), bool)
    masks[:, REGION] = True
    np.testing.assert_allclose(xl.relevance_rank_accuracy(masks.astype(np.float32), masks), 1.0)
    np.testing.assert_allclose(xl.relevance_rank_accuracy((~masks).astype(np.float32), masks), 0.0)
    half = _region_map()
    half[:, 25:30] = 5.0                       # five positions outside outrank the region's ten
    np.testing.assert_allclose(xl.relevance_rank_accuracy(half, masks), 0.5)
    big = np.zeros((400, 400), bool)
    big[:, :100] = True                        # area share 0.25
    rnd = np.random.default_rng(0).random((400, 400))
    assert abs(xl.relevance_rank_accuracy(rnd, big).mean() - 0.25) < 0.01
    # no positive relevance at all: every position ties at 0, which says nothing: the area share
    np.testing.assert_allclose(xl.relevance_rank_accuracy(-_region_map(), masks, absolute=False), 0.25)
    np.testing.assert_allclose(xl.relevance_rank_accuracy(_region_map(), np.zeros((4, 40), bool)), 0.0)


def test_rank_accuracy_shares_tied_places_so_the_score_does_not_depend_on_where_the_mask_lies():
    scores = []
    for start in (0, 17):                       # two positive positions inside a 6-long mask, the rest tied at 0
        mask = np.zeros((1, 40), bool)
        mask[0, start:start + 6] = True
        m = np.zeros((1, 40))
        m[0, start + 1:start + 3] = 1.0
        scores.append(xl.relevance_rank_accuracy(m, mask)[0])
    # 2 of 6 places won outright, the 4 left shared by the 38 tied positions of which 4 are inside
    np.testing.assert_allclose(scores, (2 + 4 * 4 / 38) / 6)
    np.testing.assert_allclose(xl.relevance_rank_accuracy(np.ones((1, 40)), mask), 6 / 40)


def test_centre_to_outside_ratio_is_1_for_flat_maps_and_finds_a_centred_pile():
    flat = np.ones((2, 20, 20))
    assert xl.centre_to_outside_ratio(flat, 10) == pytest.approx(1.0)
    piled = flat.copy()
    piled[:, 5:15, 5:15] = 4.0                                           # the central 10 x 10 square
    assert xl.centre_to_outside_ratio(piled, 10) == pytest.approx(4.0)
    assert xl.centre_to_outside_ratio(piled, 16) == pytest.approx((100 * 4 + 156) / 256 / 1.0)


def test_period_two_alternation_is_0_on_a_ramp_and_b_minus_a_over_a_on_a_checkerboard():
    ramp = np.broadcast_to(np.linspace(1, 3, 12), (3, 5, 12))
    assert xl.period_two_alternation(ramp) == pytest.approx(0.0, abs=1e-12)
    columns = np.tile([1.0, 1.4], 6)                                     # a, b, a, b: |b - a| / a = 0.4 ... and / b
    board = np.broadcast_to(columns, (2, 4, 12))
    assert xl.period_two_alternation(board) == pytest.approx(np.mean([0.4 / 1.4 if c == 1.0 else 0.4 for c in columns[1:-1]]))
    assert xl.period_two_alternation(board, axis=1) == pytest.approx(0.0)   # the rows are flat


def test_artefact_measures_refuse_bad_maps():
    for bad, match in ((np.ones((4, 4)), r"\(N, H, W\)"), (-np.ones((1, 4, 4)), "non-negative"),
                       (np.full((1, 4, 4), np.nan), "NaN")):
        with pytest.raises(ValueError, match=match):
            xl.centre_to_outside_ratio(bad, 2)
        with pytest.raises(ValueError, match=match):
            xl.period_two_alternation(bad)
    with pytest.raises(ValueError, match="inner must be"):
        xl.centre_to_outside_ratio(np.ones((1, 4, 4)), 4)
    with pytest.raises(ValueError, match="axis"):
        xl.period_two_alternation(np.ones((1, 4, 4)), axis=0)
    with pytest.raises(ValueError, match="no mass outside"):
        xl.centre_to_outside_ratio(np.pad(np.ones((1, 2, 2)), ((0, 0), (1, 1), (1, 1))), 2)


def test_grid_inputs_put_distinct_usable_classes_in_their_cells():
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(40, 3, 4, 2)).astype(np.float32)
    y = np.arange(40) % 5
    usable = np.ones(40, bool)
    usable[y == 4] = False                                               # class 4 never used
    grids, classes, sources = xl.grid_inputs(x, y, usable, n_grids=6, seed=1)
    assert grids.shape == (6, 6, 8, 2) and classes.shape == sources.shape == (6, 4)
    assert all(len(set(row)) == 4 for row in classes) and not (classes == 4).any()
    np.testing.assert_array_equal(y[sources], classes)
    np.testing.assert_array_equal(grids[:, 3:, :4], x[sources[:, 2]])   # cell 2: second row, first column
    np.testing.assert_array_equal(xl.grid_inputs(x, y, usable, n_grids=6, seed=1)[0], grids)
    with pytest.raises(ValueError, match="needs 4 classes"):
        xl.grid_inputs(x, y, y < 3, n_grids=1)


def test_grid_pointing_game_scores_the_explained_cells_share_of_positive_relevance():
    maps = np.zeros((3, 4, 4))
    maps[0, :2, :2] = 1.0                                                # all in cell 0
    maps[1] = 1.0                                                        # spread: a quarter a cell
    maps[1, 2:, 2:] = -5.0                                               # negative relevance does not count
    np.testing.assert_allclose(xl.grid_pointing_game(maps, np.array([0, 0, 1])), [1.0, 1 / 3, np.nan])
    np.testing.assert_allclose(xl.grid_pointing_game(maps[:1], np.array([3])), [0.0])
    for cell, match in ((np.array([4, 0, 0]), "cell must be"), (np.array([0.0, 0, 0]), "cell must be")):
        with pytest.raises(ValueError, match=match):
            xl.grid_pointing_game(maps, cell)
    with pytest.raises(ValueError, match="multiples"):
        xl.grid_pointing_game(np.zeros((1, 5, 4)), np.array([0]))
