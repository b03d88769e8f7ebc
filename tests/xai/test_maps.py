"""xai/maps.py: maps resized to the input (linear and bilinear, half-pixel centres, as in NumPy), min-max
scaled for display, and reduced to one relevance value a position."""
import numpy as np
import pytest

from tests.conftest import upsample_np
from xai.maps import minmax, normalize, saliency_positions, upsample


@pytest.mark.parametrize("spatial, size", [((5,), (16,)), ((3, 4), (12, 10))])
def test_upsample_is_half_pixel_linear_interpolation(spatial, size):
    maps = np.random.default_rng(0).normal(size=(2,) + spatial).astype(np.float32)
    np.testing.assert_allclose(upsample(maps, size).numpy(), upsample_np(maps, size), rtol=1e-5, atol=1e-6)


def test_minmax_scales_over_the_axis_asked_and_a_constant_slice_to_zero():
    a = np.array([[1.0, 3.0, 2.0], [5.0, 5.0, 5.0]])
    np.testing.assert_allclose(minmax(a, axis=1), [[0, 1, 0.5], [0, 0, 0]])
    np.testing.assert_allclose(minmax(a), (a - 1) / 4)
    assert minmax(a).dtype == np.float32


def test_normalize_scales_each_map_alone_and_a_constant_map_to_zero():
    maps = np.stack([np.arange(4.0), np.full(4, 3.0)])
    out = normalize(maps)
    np.testing.assert_allclose(out[0], [0, 1 / 3, 2 / 3, 1])
    np.testing.assert_array_equal(out[1], 0)


def test_normalize_refuses_one_map_without_its_axis_and_nan():
    with pytest.raises(ValueError, match="maps\\[None\\]"):
        normalize(np.arange(4.0))
    np.testing.assert_allclose(normalize(np.arange(4.0)[None]), [[0, 1 / 3, 2 / 3, 1]], rtol=1e-6)
    maps = np.arange(8.0).reshape(2, 2, 2)
    maps[1, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"maps \[1\] hold NaN"):
        normalize(maps)


def test_saliency_positions_sum_channels_signed_or_absolute_and_refuse_other_shapes():
    x_shape = (2, 4, 3)
    like_x = np.arange(24.0).reshape(x_shape) - 12                         # (N, T, C), signed
    np.testing.assert_allclose(saliency_positions(like_x, x_shape), like_x.sum(-1))
    np.testing.assert_allclose(saliency_positions(like_x, x_shape, absolute=True), np.abs(like_x).sum(-1))
    positions = -np.ones((2, 4))
    np.testing.assert_allclose(saliency_positions(positions, x_shape, absolute=True), 1.0)
    images = np.ones((2, 3, 5))                                             # (N, H, W): one value a position
    assert saliency_positions(images, (2, 3, 5, 3)).shape == (2, 15)
    with pytest.raises(ValueError, match="expected"):
        saliency_positions(np.ones((2, 5)), x_shape)
    with pytest.raises(ValueError, match="NaN"):
        saliency_positions(np.full((2, 4), np.nan), x_shape)
