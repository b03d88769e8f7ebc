"""xai/shortcut/clusters.py: the inputs SpRAy clusters are the marked class's held-out inputs, a
seeded half of them with the benchmark's marker; the summary and table keep the numbers."""
from types import SimpleNamespace

import numpy as np
import pytest

from xai.shortcut.clusters import spray_inputs, spray_markdown, spray_summary


def _bundle(n=30):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 16, 1)).astype(np.float32)
    return SimpleNamespace(x_held=x, x_held_marked=x + 100.0, y_held=np.arange(n) % 3)


def test_half_of_the_marked_class_carries_the_benchmarks_marker_the_same_half_each_time():
    bundle, setting = _bundle(), SimpleNamespace(marked_class=1)
    x, marked = spray_inputs(setting, bundle)
    assert len(x) == 10 and marked.sum() == 5
    idx = np.flatnonzero(bundle.y_held == 1)
    np.testing.assert_array_equal(x[marked], bundle.x_held_marked[idx][marked])
    np.testing.assert_array_equal(x[~marked], bundle.x_held[idx][~marked])
    np.testing.assert_array_equal(spray_inputs(setting, bundle)[1], marked)


def test_too_few_inputs_of_the_marked_class_are_refused():
    with pytest.raises(ValueError, match="SpRAy needs at least 8"):
        spray_inputs(SimpleNamespace(marked_class=1), _bundle(12))


def test_the_summary_drops_the_mean_maps_and_the_table_shows_every_method():
    side = {"ari": 0.9, "low": 0.8, "high": 1.0, "eigengap_k": 2, "sizes": [5, 5], "marked_share": [1.0, 0.0],
            "mean_maps": [[0.0] * 4] * 2}
    record = {"n": 10, "marked": 5, "n_neighbors": 3,
              "methods": {"grad_cam": {"reliant": side, "control": dict(side, ari=0.0, low=-0.1, high=0.1),
                                       "difference": {"ari": 0.9, "low": 0.7, "high": 1.1}}}}
    summary = spray_summary(record)
    assert "mean_maps" not in summary["methods"]["grad_cam"]["reliant"]
    table = spray_markdown("mnist1d_local", summary)
    assert "| Grad-CAM | 0.90 [0.80, 1.00] | 0.00 [-0.10, 0.10] | 0.90 [0.70, 1.10] | 2 / 2 |" in table
    assert spray_summary(None) is None


def test_a_method_whose_maps_are_all_the_same_is_recorded_as_not_clustered_and_the_others_go_on(monkeypatch):
    import xai.methods as methods
    from tests.conftest import tiny_conv1d
    from xai.shortcut.clusters import spray_record
    bundle, setting = _bundle(60), SimpleNamespace(marked_class=1)
    real = methods.method_function

    def constant_grad_cam(name):
        if name == "grad_cam":
            return lambda model, x, c, **options: np.zeros(x.shape[:2], np.float32)   # a ReLU that cuts everything
        return real(name)
    monkeypatch.setattr(methods, "method_function", constant_grad_cam)
    monkeypatch.setattr(methods, "METHODS", {k: methods.METHODS[k] for k in ("grad_cam", "saliency")})
    record = spray_record(setting, bundle, tiny_conv1d(), tiny_conv1d(seed=1), n_boot=20)
    assert "all the same" in record["methods"]["grad_cam"]["not_clustered"]
    assert "ari" in record["methods"]["saliency"]["reliant"]
    summary = spray_summary(record)
    assert list(summary["methods"]) == ["saliency"] and "grad_cam" in summary["not_clustered"]
    assert "Not clustered: Grad-CAM, its maps are all the same on the reliant model" in spray_markdown("x", summary)
