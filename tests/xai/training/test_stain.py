"""xai/training/stain.py: colour deconvolution on known colours: each stain's own colour is that stain
alone, RGB -> HED -> RGB round-trips, zero jitter is the identity, the jitter moves colours within
its bounds, and LAB round-trips and takes the drawn statistics."""
import numpy as np
import pytest

from xai.training.stain import RGB_FROM_HED, hed_jitter, hed_to_rgb, lab_jitter, lab_statistics, lab_to_rgb, rgb_to_hed, rgb_to_lab


def _stain_colour(k, amount=1.0):
    """The RGB (0-255) of ``amount`` of stain k alone: OD = amount * its vector."""
    return 256.0 * np.exp(-amount * RGB_FROM_HED[k]) - 1.0


def test_each_stains_own_colour_is_that_stain_alone_and_round_trips():
    tiles = np.stack([_stain_colour(k) for k in range(3)])[:, None, None, :].astype(np.float32)   # (3, 1, 1, 3)
    hed = rgb_to_hed(tiles).numpy()[:, 0, 0, :]
    np.testing.assert_allclose(hed, np.eye(3), atol=1e-5)
    np.testing.assert_allclose(hed_to_rgb(rgb_to_hed(tiles)).numpy(), tiles, atol=1e-3)    # 0-255: 1e-5 relative


def test_zero_jitter_is_the_identity_and_the_jitter_stays_within_its_bounds():
    x = np.random.default_rng(0).uniform(20, 240, (4, 8, 8, 3)).astype(np.float32)
    np.testing.assert_allclose(hed_jitter(x, seed=0, sigma=0.0, bias=0.0).numpy(), x, atol=2e-3)
    y = hed_jitter(x, seed=1, sigma=0.05, bias=0.05).numpy()
    change = rgb_to_hed(y).numpy() - rgb_to_hed(x).numpy()
    assert 0 < np.abs(change).max() < 0.05 * np.abs(rgb_to_hed(x).numpy()).max() + 0.05 + 1e-4
    np.testing.assert_array_equal(hed_jitter(x, seed=1).numpy(), hed_jitter(x, seed=1).numpy())   # seeded
    assert not np.array_equal(hed_jitter(x, seed=1).numpy(), hed_jitter(x, seed=2).numpy())


def test_lab_round_trips_and_known_colours_have_their_lab():
    x = np.random.default_rng(1).uniform(0, 255, (2, 6, 6, 3)).astype(np.float32)
    np.testing.assert_allclose(lab_to_rgb(rgb_to_lab(x)).numpy(), x, atol=0.05)
    corners = np.array([[255, 255, 255], [0, 0, 0], [255, 0, 0]], np.float32)[:, None, None, :]
    lab = rgb_to_lab(corners).numpy()[:, 0, 0]
    np.testing.assert_allclose(lab[0], [100, 0, 0], atol=0.05)
    np.testing.assert_allclose(lab[1], [0, 0, 0], atol=0.05)
    np.testing.assert_allclose(lab[2], [53.24, 80.09, 67.20], atol=0.05)          # sRGB red, D65


def test_lab_jitter_gives_tiles_the_drawn_statistics():
    x = np.random.default_rng(2).uniform(60, 200, (64, 8, 8, 3)).astype(np.float32)
    stats = lab_statistics(x)
    fixed = {"mean": (np.array([50.0, 10.0, -5.0]), np.zeros(3)), "std": (np.array([5.0, 3.0, 3.0]), np.zeros(3))}
    lab = rgb_to_lab(lab_jitter(x[:4], fixed, seed=0)).numpy()
    np.testing.assert_allclose(lab.mean((1, 2)), np.tile([50.0, 10.0, -5.0], (4, 1)), atol=0.5)
    assert stats["mean"][0].shape == (3,) and (stats["std"][0] > 0).all()


def test_bad_tiles_and_options_are_refused():
    with pytest.raises(ValueError, match=r"\(B, H, W, 3\)"):
        rgb_to_hed(np.zeros((4, 4, 3)))
    with pytest.raises(ValueError, match="sigma must be"):
        hed_jitter(np.zeros((1, 4, 4, 3)), seed=0, sigma=1.5)
    with pytest.raises(ValueError, match="at least 2"):
        lab_statistics(np.zeros((1, 4, 4, 3)))
