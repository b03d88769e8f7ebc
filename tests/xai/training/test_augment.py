"""xai/training/augment.py: the augmentations of image tiles (the 8 flips and rotations, colour jitter,
random crops) keep the range and shape, and each crop is a window of its own tile."""
import numpy as np
import pytest

from xai.training.augment import augment_tiles, dihedral


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
