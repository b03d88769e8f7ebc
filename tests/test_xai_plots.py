import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import xai.plots as xplt  # noqa: E402


def test_signed_map_is_centred_at_zero_and_unsigned_starts_at_zero():
    fig, (a, b) = plt.subplots(1, 2)
    signal = np.sin(np.linspace(0, 6, 40))
    signed = np.linspace(-1, 3, 40)
    im = xplt.plot_signal(a, signal, signed, mask=np.arange(40) < 10)
    lo, hi = im.get_clim()
    assert lo == -hi and hi == 3 and im.get_cmap().name == "RdBu_r"
    im = xplt.plot_signal(b, signal, np.abs(signed))
    assert im.get_clim()[0] == 0 and im.get_cmap().name == "inferno"
    plt.close(fig)


def test_image_overlays_clip_at_percentile_and_sum_channels():
    fig, ax = plt.subplots()
    tile = np.random.default_rng(0).uniform(0, 255, (20, 20, 3))
    ig = np.random.default_rng(1).normal(size=(20, 20, 3))
    ig[0, 0] = 1000                                                    # an outlier is clipped
    im = xplt.plot_image(ax, tile, ig, percentile=99)
    lo, hi = im.get_clim()
    assert lo == -hi and hi < 100
    im = xplt.plot_image(ax, tile, ig, kind="absolute")
    assert im.get_clim()[0] == 0
    plt.close(fig)


def test_grid_has_a_panel_per_method_and_example():
    x1 = np.random.default_rng(0).normal(size=(3, 40, 1))
    maps = {"A": np.random.default_rng(1).uniform(size=(3, 40)), "B": np.random.default_rng(2).normal(size=(3, 40, 1))}
    fig = xplt.plot_grid(x1, maps, masks=np.ones((3, 40), bool), row_titles=["a", "b", "c"])
    assert len(fig.axes) == 6
    x2 = np.random.default_rng(0).uniform(0, 255, (2, 12, 12, 3))
    fig = xplt.plot_grid(x2, {"A": np.ones((2, 12, 12))})
    assert len(fig.axes) == 4
    plt.close("all")


def test_pick_examples():
    correct, wrong = xplt.pick_examples([0, 0, 1, 1, 2], [0, 1, 1, 0, 1], 3)
    assert correct == [0, 2] and wrong == [1, 3, 4]


def test_plots_refuse_maps_that_do_not_match_their_input():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pytest

    import xai.plots as xplt
    fig, ax = plt.subplots()
    with pytest.raises(ValueError, match="match the signal"):
        xplt.plot_signal(ax, np.zeros(40), np.zeros(39))
    with pytest.raises(ValueError, match="mask must be boolean"):
        xplt.plot_signal(ax, np.zeros(40), np.zeros(40), mask=np.ones(40))
    with pytest.raises(ValueError, match="match the tile"):
        xplt.plot_image(ax, np.zeros((20, 20, 3), np.uint8), np.zeros((10, 10)))
    with pytest.raises(ValueError, match="outside"):
        xplt.plot_image(ax, np.full((4, 4, 3), 300.0))
    with pytest.raises(ValueError, match="holds 1 maps for 2 inputs"):
        xplt.plot_grid(np.zeros((2, 40, 1)), {"a": np.zeros((1, 40))})
    plt.close(fig)


def test_uint8_and_float_tiles_are_drawn_as_they_are():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import xai.plots as xplt
    dark = np.ones((4, 4, 3), np.uint8)                                   # 1 of 255: nearly black
    for tile, expected in ((dark, 1 / 255), (dark.astype(np.float32), 1.0), (np.full((4, 4, 3), 200.0), 200 / 255),
                           (np.full((4, 4, 3), 0.5), 0.5)):
        fig, ax = plt.subplots()
        xplt.plot_image(ax, tile)
        shown = ax.images[0].get_array()
        np.testing.assert_allclose(np.asarray(shown)[0, 0, 0], expected, rtol=1e-6)
        plt.close(fig)
    fig, ax = plt.subplots()
    xplt.plot_image(ax, dark.astype(np.float32), value_range=255)
    np.testing.assert_allclose(np.asarray(ax.images[0].get_array())[0, 0, 0], 1 / 255, rtol=1e-6)
    plt.close(fig)
