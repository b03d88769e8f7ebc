"""xai/training/colour_baseline.py: the features are histograms that sum to one and the moments
of each channel; the baseline tells classes that differ in colour apart; its folds are the CNN's
(the committed slide CV's folds, every slide once)."""
import json
import os

import numpy as np
import pytest

from tests.conftest import ROOT
from xai.training.colour_baseline import BINS, colour_features, fit_predict, slide_cv_predictions


def _tiles(n, colour, seed):
    rng = np.random.default_rng(seed)
    return np.clip(rng.normal(colour, 12, size=(n, 10, 10, 3)), 0, 255).astype(np.uint8)


def test_features_are_histograms_summing_to_one_and_channel_moments():
    f = colour_features(_tiles(5, (200, 120, 180), 0))
    assert f.shape == (5, 6 * BINS + 12)
    for k in range(6):
        np.testing.assert_allclose(f[:, k * BINS:(k + 1) * BINS].sum(1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(f[:, 6 * BINS:6 * BINS + 3].mean(0), [200, 120, 180], atol=3)


def test_the_baseline_tells_pink_from_purple_tiles_and_held_out_slides_are_predicted_by_the_others():
    x = np.concatenate([_tiles(40, (230, 150, 200), 1), _tiles(40, (120, 60, 160), 2)])
    y = np.repeat([0, 1], 40)
    slides = np.tile(np.repeat(["s1", "s2", "s3", "s4"], 10), 2)
    f = colour_features(x)
    predicted = slide_cv_predictions(f, y, slides, [["s1"], ["s2"], ["s3", "s4"]])
    assert (predicted == y).mean() == 1.0
    assert fit_predict(f[:60], y[:60] * 0 + np.arange(60) % 2, f[60:]).shape == (20, 8)


def test_the_folds_must_name_every_slide_once_and_bad_tiles_are_refused():
    f, y, slides = np.zeros((4, 3)), np.array([0, 1, 0, 1]), np.array(["a", "a", "b", "b"])
    with pytest.raises(ValueError, match="every slide exactly once"):
        slide_cv_predictions(f, y, slides, [["a"]])
    with pytest.raises(ValueError, match="every slide exactly once"):
        slide_cv_predictions(f, y, slides, [["a"], ["a", "b"]])
    with pytest.raises(ValueError, match=r"\(N, H, W, 3\)"):
        colour_features(np.zeros((2, 4, 4)))
    with pytest.raises(ValueError, match="0-255"):
        colour_features(np.full((1, 2, 2, 3), 300.0))


def test_the_committed_baselines_folds_are_the_cnns():
    path = os.path.join(ROOT, "models", "hmt_colour_baseline.json")
    if not os.path.isfile(path):
        pytest.skip("no committed colour baseline yet: python tools/hmt_colour_baseline.py")
    with open(path) as f, open(os.path.join(ROOT, "models", "hmt_slide_cv.json")) as g:
        assert json.load(f)["folds_of_slides"] == json.load(g)["folds_of_slides"]
