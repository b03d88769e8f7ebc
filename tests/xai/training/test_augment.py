"""xai/training/augment.py: the augmentations of image tiles (the 8 flips and rotations, colour jitter,
random crops) keep the range and shape, and each crop is a window of its own tile."""
import numpy as np
import pytest

from xai.training.augment import COLOUR_AUGMENTS, augment_tiles, colour_augment, dihedral, rgb_jitter
from xai.training.stain import lab_statistics


def _tile(seed, shape=(150, 150, 3)):
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


def test_augmentation_keeps_range_and_shape_and_the_8_dihedral_transforms_differ():
    rng = np.random.default_rng(0)
    xb = _tile(1).astype(np.float32)[None].repeat(8, 0)
    out = augment_tiles(xb, rng)
    assert out.shape == xb.shape and out.min() >= 0 and out.max() <= 255
    # the 8 dihedral transforms of one tile are 8 distinct tiles
    d = dihedral(xb, np.arange(8))
    assert len({arr.tobytes() for arr in d}) == 8


def test_augmentation_crops_a_window_of_each_tile():
    rng = np.random.default_rng(1)
    xb = np.random.default_rng(2).uniform(0, 255, (5, 150, 150, 3)).astype(np.float32)
    out = augment_tiles(xb, rng, colour_jitter=0.0, crop=112).astype(np.float32)
    assert out.shape == (5, 112, 112, 3)
    # with no colour jitter each crop is a flipped/rotated window of its own tile
    for tile, crop in zip(xb, out):
        windows = {tile[i:i + 112, j:j + 112].tobytes() for i in range(39) for j in range(39)}
        assert any(t.tobytes() in windows for t in dihedral(crop[None].repeat(8, 0), np.arange(8)))
    with pytest.raises(ValueError, match="crop"):
        augment_tiles(xb, rng, crop=151)


def test_the_rgb_default_draws_as_before_so_the_committed_recipe_reproduces():
    """The default colour is the per-channel gain and offset drawn after the crop and the flip, from the same
    Generator, in the same order as the recipe that trained the committed model."""
    xb = np.random.default_rng(3).uniform(0, 255, (4, 150, 150, 3)).astype(np.float32)
    out = augment_tiles(xb, np.random.default_rng(7), colour_jitter=0.08, crop=112)
    rng = np.random.default_rng(7)
    top, left = rng.integers(0, 39, size=(2, 4))
    crops = np.stack([t[i:i + 112, j:j + 112] for t, i, j in zip(xb, top, left)])
    flipped = dihedral(crops, rng.integers(0, 8, size=4))
    gain = 1 + 0.08 * rng.uniform(-1, 1, size=(4, 1, 1, 3))
    offset = 255 * 0.08 / 2 * rng.uniform(-1, 1, size=(4, 1, 1, 3))
    np.testing.assert_array_equal(out, np.clip(flipped * gain + offset, 0, 255).astype(np.float32))
    same = augment_tiles(xb, np.random.default_rng(7), crop=112, colour=colour_augment("rgb", rgb_strength=0.08))
    np.testing.assert_array_equal(out, same)


@pytest.mark.parametrize("kind", COLOUR_AUGMENTS)
def test_every_colour_augmentation_keeps_range_and_shape_and_is_seeded(kind):
    xb = np.random.default_rng(4).uniform(30, 230, (3, 16, 16, 3)).astype(np.float32)
    colour = colour_augment(kind, statistics=lab_statistics(xb) if kind == "lab" else None)
    outs = [augment_tiles(xb, np.random.default_rng(s), colour=colour) for s in (0, 0, 1)]
    for out in outs:
        assert out.shape == xb.shape and out.dtype == np.float32 and 0 <= out.min() and out.max() <= 255
    np.testing.assert_array_equal(outs[0], outs[1])
    flipped = dihedral(xb, np.random.default_rng(0).integers(0, 8, size=3))
    assert (kind == "none") == np.array_equal(outs[0], flipped)      # only "none" leaves the colours alone
    assert (kind == "none") == (colour is None)


def test_colour_augment_refuses_unknown_kinds_strengths_and_missing_statistics():
    with pytest.raises(ValueError, match="one of"):
        colour_augment("hsv")
    with pytest.raises(ValueError, match="hed_strength"):
        colour_augment("hed", hed_strength=1.0)
    with pytest.raises(ValueError, match="statistics"):
        colour_augment("lab")
    with pytest.raises(ValueError, match="statistics"):
        colour_augment("hed", statistics={"mean": None})
    with pytest.raises(ValueError, match="colour must be"):
        augment_tiles(np.zeros((1, 8, 8, 3), np.float32), np.random.default_rng(0), colour="hed")
    assert rgb_jitter(np.zeros((1, 2, 2, 3)), np.random.default_rng(0), 0.0).max() == 0
