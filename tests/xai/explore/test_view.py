"""xai/explore/view.py: the maps share one colour scale: per map each reaches 1, shared only the
largest; absolute maps are |value| summed over channels; PNGs come out for tiles and signals."""
import numpy as np
import pytest

from xai.explore.view import Renderer, display_maps


def test_per_map_scales_each_map_to_its_own_top_and_shared_keeps_their_sizes():
    maps = {"big": np.linspace(-10, 10, 101), "small": np.linspace(-1, 1, 101)}
    per = display_maps(maps)
    assert per["big"].max() == pytest.approx(1.0) and per["small"].max() == pytest.approx(1.0)
    shared = display_maps(maps, normalisation="shared")
    assert shared["big"].max() == pytest.approx(1.0) and shared["small"].max() == pytest.approx(0.1, rel=0.03)


def test_absolute_maps_count_negative_relevance_and_sum_the_channels():
    m = np.zeros((4, 4, 3))
    m[0, 0] = [-2, -2, -2]                       # signed sum -6: the strongest, but negative
    m[1, 1] = [1, 1, 1]
    signed = display_maps({"m": m})["m"]
    absolute = display_maps({"m": m}, sign="absolute")["m"]
    assert signed.shape == (4, 4) and signed[0, 0] < 0 and absolute[0, 0] == pytest.approx(1.0)
    assert absolute.min() >= 0


def test_bad_options_and_maps_are_refused():
    with pytest.raises(ValueError, match="normalisation must be one of"):
        display_maps({"m": np.ones(3)}, normalisation="global")
    with pytest.raises(ValueError, match="sign must be one of"):
        display_maps({"m": np.ones(3)}, sign="positive")
    with pytest.raises(ValueError, match="NaN"):
        display_maps({"m": np.array([1.0, np.nan])})
    with pytest.raises(ValueError, match="opacity"):
        Renderer(["m"]).render(None, {"m": np.ones((4, 4))}, opacity=2)


def test_a_tile_and_a_signal_both_render_to_png():
    png = Renderer(["a", "b"]).render(np.zeros((8, 8, 3), np.uint8), {"a": np.ones((8, 8)), "b": np.ones((8, 8, 3))})
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    r = Renderer(["ig"])
    first = r.render(np.sin(np.arange(16.0))[:, None], {"ig": np.arange(16.0)})
    second = r.render(np.cos(np.arange(16.0))[:, None], {"ig": -np.arange(16.0)})
    assert first[:4] == second[:4] == b"\x89PNG" and first != second


def test_tiles_are_scaled_by_their_dtype_and_odd_channel_counts_are_refused():
    from xai.explore.view import _as_image
    dark = np.ones((2, 2, 3), np.uint8)                                       # uint8 values of 1: nearly black
    assert _as_image(dark).max() == pytest.approx(1 / 255)
    standardised = np.random.default_rng(0).normal(0, 3, (4, 4, 3)).astype(np.float32)
    shown = _as_image(standardised)
    assert shown.min() == 0.0 and shown.max() == 1.0                         # stretched, not clipped to black
    assert _as_image(np.full((2, 2, 1), 0.5, np.float32)).shape == (2, 2, 3)
    with pytest.raises(ValueError, match="C 1, 3 or 4"):
        _as_image(np.zeros((4, 4, 2)))


def test_maps_of_another_rank_than_the_inputs_are_refused():
    with pytest.raises(ValueError, match=r"expected \(T,\) or \(T, C\)"):
        display_maps({"m": np.ones((4, 4, 4))}, spatial_ndim=1)
    with pytest.raises(TypeError, match="non-empty dict"):
        display_maps([np.ones(3)])
    assert display_maps({"m": np.ones((16, 3))}, spatial_ndim=1)["m"].shape == (16,)
