"""xai/plots.py: colour limits and colormaps by the kind of map, the values drawn, tiles drawn as they
are, grids, and maps refused when they do not match their input or hold NaN."""
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest

import xai.plots as xplt


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
    summed = ig.sum(-1)                                                # (20, 20): the channels summed
    assert lo == -hi and hi == pytest.approx(np.percentile(np.abs(summed), 99), rel=1e-6) and hi < 100
    np.testing.assert_allclose(np.asarray(im.get_array()), np.clip(summed, lo, hi), rtol=1e-5, atol=1e-6)
    plt.close(fig)


def test_absolute_overlays_draw_the_magnitude_so_negatives_count():
    # the negative values outweigh the positive ones three to one: drawing the signed map, or the
    # magnitude of the channels' sum, gives other values and another upper limit than |map| does
    fig, (a, b, c) = plt.subplots(1, 3)
    tile = np.random.default_rng(0).uniform(0, 255, (20, 20, 3))
    ig = np.random.default_rng(1).normal(size=(20, 20, 3))
    ig = np.where(ig < 0, 3 * ig, ig)
    im = xplt.plot_image(a, tile, ig, kind="absolute", percentile=99)
    magnitude = np.abs(ig).sum(-1)                                     # (20, 20): |value| summed over channels
    hi = np.percentile(magnitude, 99)
    assert im.get_clim() == pytest.approx((0.0, hi), rel=1e-6) and im.get_cmap().name == "inferno"
    np.testing.assert_allclose(np.asarray(im.get_array()), np.clip(magnitude, 0, hi), rtol=1e-5, atol=1e-6)
    single = np.zeros((8, 8), np.float32)
    single[2, 2], single[5, 5] = -3.0, 1.0
    drawn = np.asarray(xplt.plot_image(b, np.full((8, 8, 3), 128, np.uint8), single, kind="absolute",
                                       percentile=100).get_array())
    assert drawn[2, 2] == 3.0 and drawn[5, 5] == 1.0                   # the negative value is drawn, strongest
    signed = np.linspace(-3, 1, 40)
    line = xplt.plot_signal(c, np.zeros(40), signed, kind="absolute")
    np.testing.assert_allclose(np.asarray(line.get_array())[0], np.abs(signed), rtol=1e-6)
    assert line.get_clim() == pytest.approx((0.0, 3.0))
    plt.close(fig)


def test_plots_refuse_nan_maps_and_unknown_kinds():
    fig, ax = plt.subplots()
    tile = np.full((8, 8, 3), 128, np.uint8)
    heat = np.zeros((8, 8), np.float32)
    heat[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        xplt.plot_image(ax, tile, heat)
    with pytest.raises(ValueError, match="NaN"):
        xplt.plot_signal(ax, np.zeros(8), np.full(8, np.nan))
    with pytest.raises(ValueError, match="kind must be"):
        xplt.plot_image(ax, tile, np.zeros((8, 8)), kind="abs")
    plt.close(fig)


def test_grid_has_a_panel_per_method_and_example():
    x1 = np.random.default_rng(0).normal(size=(3, 40, 1))
    maps = {"A": np.random.default_rng(1).uniform(size=(3, 40)), "B": np.random.default_rng(2).normal(size=(3, 40, 1))}
    fig = xplt.plot_grid(x1, maps, masks=np.ones((3, 40), bool), row_titles=["a", "b", "c"], title="T")
    assert len(fig.axes) == 6 + 2                                      # a colour bar a method
    assert fig._suptitle.get_text() == "T" and "ground truth" in fig._supxlabel.get_text()
    x2 = np.random.default_rng(0).uniform(0, 255, (2, 12, 12, 3))
    fig = xplt.plot_grid(x2, {"A": np.ones((2, 12, 12))})
    assert len(fig.axes) == 4 + 1 and fig.axes[0].get_title() == "input"
    with pytest.raises(ValueError, match="row_titles"):
        xplt.plot_grid(x2, {"A": np.ones((2, 12, 12))}, row_titles=["one"])
    plt.close("all")


def test_panels_draw_one_example_under_every_method_and_hide_the_spare_axes():
    x2 = np.random.default_rng(0).uniform(0, 255, (12, 12, 3))
    maps = {f"m{k}": np.random.default_rng(k).normal(size=(12, 12)) for k in range(8)}
    fig = xplt.plot_panels(x2, maps, ncols=4, title="T")
    visible = [ax for ax in fig.axes if ax.axison]
    assert len(fig.axes) == 12 and len(visible) == 9 and visible[0].get_title() == "input"   # input + 8; 3 spare
    assert [ax.get_title() for ax in visible[1:]] == list(maps) and "own scale" in fig._supxlabel.get_text()
    fig = xplt.plot_panels(np.zeros((40, 1)), {"A": np.ones(40)}, mask=np.ones(40, bool))
    assert "ground truth" in fig._supxlabel.get_text()
    with pytest.raises(ValueError, match="one signal"):
        xplt.plot_panels(np.zeros((2, 12, 12, 3)), maps)
    with pytest.raises(ValueError, match="ncols"):
        xplt.plot_panels(x2, maps, ncols=0)
    with pytest.raises(ValueError, match="NaN"):
        xplt.plot_panels(x2, {"A": np.full((12, 12), np.nan)})
    with pytest.raises(ValueError, match="ground truth of a signal"):
        xplt.plot_panels(x2, maps, mask=np.ones(12, bool))                     # a tile has no mask band
    with pytest.raises(ValueError, match=r"pass x\[0\]"):
        xplt.plot_panels(np.zeros((1, 40, 1)), {"A": np.ones(40)})             # a batch of one signal
    with pytest.raises(ValueError, match="percentile"):
        xplt.plot_panels(x2, maps, percentile=150)
    with pytest.raises(ValueError, match="not drawn"):
        xplt.plot_panels(x2, maps, kinds={"Z": "signed"})
    plt.close("all")


def test_cascade_draws_a_method_a_row_and_the_chosen_steps_as_columns():
    import xai.metrics.sanity as xs
    from tests.conftest import tiny_conv1d
    from xai.methods.cam import grad_cam
    model = tiny_conv1d()
    x = np.random.default_rng(1).normal(size=(1, 16, 1)).astype(np.float32)
    r = xs.cascading_randomization(model, x, lambda m, xb, c: grad_cam(m, xb, c), return_maps=True)
    assert r["maps"].shape == (4, 1, 16)                              # the original, then 3 layers
    np.testing.assert_allclose(r["maps"][0], grad_cam(model, x), rtol=1e-5, atol=1e-6)
    from xai.metrics.agreement import spearman
    for k in (1, 2, 3):                                               # each step's maps are the ones it scored
        np.testing.assert_allclose(spearman(np.abs(r["maps"][0]), np.abs(r["maps"][k])), r["correlation"][k - 1])
    fig = xplt.plot_cascade(x[0], {"Grad-CAM": r, "again": r})
    assert len(fig.axes) == 2 * 4                                     # the original, the top, the middle, all 3
    assert fig.axes[0].get_title().endswith("original") and fig.axes[0].get_ylabel() == "Grad-CAM"
    fig = xplt.plot_cascade(x[0], {"Grad-CAM": r}, steps=[0, 3])
    assert "random down to\nc1" in fig.axes[1].get_title()          # the last step: every layer, c1 last
    for bad in ([0, 4], [True]):
        with pytest.raises(ValueError, match="steps"):
            xplt.plot_cascade(x[0], {"Grad-CAM": r}, steps=bad)
    no_maps = {k: v for k, v in r.items() if k != "maps"}
    with pytest.raises(ValueError, match="return_maps=True"):
        xplt.plot_cascade(x[0], {"Grad-CAM": no_maps})
    with pytest.raises(ValueError, match="return_maps=True"):
        xplt.plot_cascade(x[0], {"Grad-CAM": {"maps": r["maps"]}})              # no layers
    assert xplt.cascade_steps(None, 8) == [0, 1, 4, 8] and xplt.cascade_steps((2,), 3) == [2]
    with pytest.raises(ValueError, match="n_layers"):
        xplt.cascade_steps(None, 0)
    with pytest.raises(ValueError, match="return_maps must be"):
        xs.cascading_randomization(model, x, lambda m, xb, c: grad_cam(m, xb, c), return_maps=1)
    plt.close("all")


def test_grid_stretches_a_near_flat_map_and_scales_signed_maps_to_plus_minus_1():
    flat = 0.5 + 0.01 * np.linspace(0, 1, 100).reshape(10, 10)       # RISE-like: all near 0.5
    shown = xplt._shown_scale(flat, xplt.UNSIGNED, 100)
    assert shown.min() == 0 and shown.max() == 1                       # its structure, not a wash of one colour
    signed = np.linspace(-2, 4, 100).reshape(10, 10)
    scaled = xplt._shown_scale(signed, xplt.SIGNED, 100)
    assert scaled.max() == 1 and scaled.min() == pytest.approx(-0.5)   # zero stays zero: divided, not shifted


def test_pick_examples_splits_right_from_wrong_predictions():
    correct, wrong = xplt.pick_examples([0, 0, 1, 1, 2], [0, 1, 1, 0, 1], 3)
    assert correct == [0, 2] and wrong == [1, 3, 4]


def test_plots_refuse_maps_that_do_not_match_their_input():
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
    dark = np.ones((4, 4, 3), np.uint8)                                   # 1 of 255: nearly black
    for tile, expected in ((dark, 1 / 255), (dark.astype(np.float32), 1.0), (np.full((4, 4, 3), 200.0), 200 / 255),
                           (np.full((4, 4, 3), 0.5), 0.5)):
        fig, ax = plt.subplots()
        xplt.plot_image(ax, tile)
        shown = ax.images[0].get_array()
        np.testing.assert_allclose(np.asarray(shown)[0, 0, 0], expected, rtol=1e-6)
        plt.close(fig)
    fig, ax = plt.subplots()
    xplt.plot_image(ax, dark.astype(np.float32), pixel_max=255)
    np.testing.assert_allclose(np.asarray(ax.images[0].get_array())[0, 0, 0], 1 / 255, rtol=1e-6)
    plt.close(fig)


def test_save_figure_writes_the_file_whole_and_leaves_no_temporary_file(tmp_path):
    fig, _ = plt.subplots()
    xplt.save_figure(fig, str(tmp_path / "f.png"))
    assert os.listdir(tmp_path) == ["f.png"]


def test_removal_curves_carry_a_confidence_band_a_method():
    import matplotlib.pyplot as plt
    from matplotlib.collections import PolyCollection
    rng = np.random.default_rng(0)
    curves = {name: {"morf_curve": rng.uniform(0, 1, (30, 5)), "lerf_curve": rng.uniform(0, 1, (30, 5)),
                     "morf_auc": rng.uniform(0, 1, 30), "lerf_auc": rng.uniform(0, 1, 30)} for name in ("A", "B")}
    fig = xplt.plot_curves(curves, "toy")
    for ax in fig.axes:
        bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
        assert len(bands) == 2                                           # one band a method
        curve = curves["A"]["morf_curve" if ax is fig.axes[0] else "lerf_curve"]
        top = bands[0].get_paths()[0].vertices[:, 1].max()
        half = 1.96 * curve.std(0, ddof=1) / np.sqrt(30)
        assert top == pytest.approx((curve.mean(0) + half).max())
    assert "pointwise 95 % confidence interval" in fig._supxlabel.get_text() and "(30)" in fig._supxlabel.get_text()
    plt.close(fig)
