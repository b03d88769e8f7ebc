"""xai/analysis/gallery.py: one example under every method, and the sanity cascade's maps of one example."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest

import xai.analysis.gallery as xg
from tests.conftest import tiny_conv1d, tiny_conv2d
from xai.methods import METHODS
from xai.methods.cam import grad_cam


def test_every_method_figure_has_a_panel_a_method_for_signals_and_tiles():
    model = tiny_conv1d()
    x = np.random.default_rng(0).normal(size=(1, 16, 1)).astype(np.float32)
    train = np.random.default_rng(1).normal(size=(20, 16, 1))
    fig = xg.every_method_figure(model, x, [0], train, rise_masks=30, eg_samples=4, n_references=8, mask=np.ones(16, bool))
    titles = [ax.get_title() for ax in fig.axes if ax.axison]
    assert titles == [m.label for m in METHODS.values()]
    model2 = tiny_conv2d()
    shape = model2.input_shape[1:]
    x2 = np.random.default_rng(0).uniform(0, 1, (1, *shape)).astype(np.float32)
    fig = xg.every_method_figure(model2, x2, 1, np.random.default_rng(1).uniform(0, 1, (10, *shape)), rise_masks=30,
                                 eg_samples=4, n_references=4)
    assert [ax.get_title() for ax in fig.axes if ax.axison] == ["input"] + [m.label for m in METHODS.values()]
    fig = xg.every_method_figure(model, x, None, train, rise_masks=30, eg_samples=4, n_references=8)   # the prediction
    assert len([ax for ax in fig.axes if ax.axison]) == len(METHODS)
    with pytest.raises(ValueError, match="ground truth of a signal"):             # refused before any method runs
        xg.every_method_figure(model, x, 0, train, rise_masks=30, mask=np.ones(15, bool))
    with pytest.raises(ValueError, match="rise_masks"):
        xg.every_method_figure(model, x, 0, train, rise_masks=0, n_references=8)
    with pytest.raises(ValueError, match="one example"):
        xg.every_method_figure(model, np.repeat(x, 2, 0), [0, 1], train, rise_masks=30)
    with pytest.raises(ValueError, match="class_index"):
        xg.every_method_figure(model, x, [0, 1], train, rise_masks=30)
    plt.close("all")


def test_cascade_figure_returns_the_maps_it_draws():
    model = tiny_conv1d()
    x = np.random.default_rng(0).normal(size=(1, 16, 1)).astype(np.float32)
    fig, cascades = xg.cascade_figure(model, x, 2, {"Grad-CAM": lambda m, xb, c: grad_cam(m, xb, c)}, steps=[0, 3])
    np.testing.assert_allclose(cascades["Grad-CAM"]["maps"][0], grad_cam(model, x, [2]), rtol=1e-5, atol=1e-6)
    assert cascades["Grad-CAM"]["correlation"].shape == (3, 1) and len(fig.axes) == 2
    with pytest.raises(ValueError, match="functions must map"):
        xg.cascade_figure(model, x, 2, {"bad": "grad_cam"})
    with pytest.raises(ValueError, match=r"steps must be indices in \[0, 3\]"):   # before any cascade runs
        xg.cascade_figure(model, x, None, {"Grad-CAM": lambda m, xb, c: grad_cam(m, xb, c)}, steps=[0, 4])
    plt.close("all")
