"""xai/explore/widget.py: driven from Python, the widget's controls change the selection and what
is drawn; a static snapshot is written; an empty selection says so."""
import numpy as np
import pytest

from xai.explore import explore


def test_changing_the_class_control_draws_an_example_of_that_class(tile_files, tiles):
    ex = explore(tile_files, tiles, class_names=["a", "b", "c", "d"])
    box = ex.widget
    controls = ex._widgets
    controls["true_class"].value = 2                                      # as a click in the browser does
    assert all(ex.maps.table.label[r] == 2 for r in ex.rows) and len(ex.rows) > 0
    assert ex.drawn["position"] % 4 == 2
    np.testing.assert_array_equal(ex.maps.input(ex.drawn["row"]), tiles[ex.drawn["position"]])
    before = ex.drawn["png"]
    controls["at"].value = 1                                               # the next example of the class
    assert ex.drawn["row"] == ex.rows[1] and ex.drawn["png"] != before
    assert controls["image"].value == ex.drawn["png"] and "2 of" in controls["status"].value
    assert box is ex.widget


def test_display_controls_change_the_maps_drawn_not_the_example(tile_files, tiles):
    ex = explore(tile_files, tiles)
    assert ex.widget is not None
    row = ex.drawn["row"]
    ex._widgets["sign"].value = "absolute"
    assert ex.drawn["row"] == row and all(m.min() >= 0 for m in ex.drawn["maps"].values())
    ex._widgets["normalisation"].value = "shared"
    tops = sorted(float(np.abs(m).max()) for m in ex.drawn["maps"].values())
    assert tops[-1] == pytest.approx(1.0)


def test_sorting_by_a_metric_and_filtering_wrong_predictions(tile_files, tiles):
    score = np.arange(23, dtype=np.float32)
    ex = explore(tile_files, tiles, metrics={"score": score})
    ex.set_query(sort_by="score")
    assert ex.drawn["position"] == 22
    rows = ex.set_query(outcome="wrong")
    assert not ex.maps.table.correct[rows].any()


def test_an_empty_selection_draws_nothing_and_says_so(tile_files, tiles):
    ex = explore(tile_files, tiles, groups={"slide": np.repeat(["x", "y"], [20, 3])})
    assert ex.widget is not None
    ex.set_query(group=("slide", "y"), true_class=0, predicted=1, outcome="right")
    assert ex.drawn is None and "no example matches" in ex._widgets["status"].value


def test_the_snapshot_draws_the_view_for_pages_without_widgets(tile_files, tiles, tmp_path):
    ex = explore(tile_files, tiles)
    path = ex.snapshot(str(tmp_path / "explorer.png"), count=2)
    from PIL import Image
    w, h = Image.open(path).size
    assert h > w / 4                                                       # two rows of panels


def test_signals_are_explored_too(signal_file):
    x, path = signal_file
    ex = explore(path, x)
    ex.set_query(sort_by="position", descending=False)
    assert ex.drawn["position"] == 0 and ex.drawn["maps"]["integrated_gradients"].shape == (16,)


def test_a_bad_change_raises_and_leaves_the_explorer_as_it_was(tile_files, tiles):
    ex = explore(tile_files, tiles, class_names=list("abcd"))
    ex.set_query(true_class=1)
    rows = ex.rows.copy()
    with pytest.raises(ValueError, match="outcome must be one of"):
        ex.set_query(outcome="Right")
    with pytest.raises(ValueError, match=r"int class in 0..3"):
        ex.set_query(true_class=99)
    with pytest.raises(ValueError, match="opacity"):
        ex.set_display(opacity=2)
    with pytest.raises(IndexError, match="go to an int"):
        ex.go(1.5)
    assert ex.query.true_class == 1 and ex.query.outcome == "all" and ex.opacity == 0.5
    np.testing.assert_array_equal(ex.rows, rows)
    ex.set_query(predicted=None)                                             # later calls still work
    with pytest.raises(ValueError, match="4 classes"):
        explore(tile_files, tiles, class_names=list("abcdef"))


def test_an_unknown_group_value_is_refused_and_an_empty_selection_blanks_the_image(tile_files, tiles):
    ex = explore(tile_files, tiles, groups={"slide": np.repeat(["x", "y"], [20, 3])})
    assert ex.widget is not None
    with pytest.raises(ValueError, match=r"no slide 'z'; the values are \['x', 'y'\]"):
        ex.set_query(group=("slide", "z"))
    shown = ex._widgets["image"].value
    ex.set_query(group=("slide", "y"), true_class=0, predicted=1, outcome="right")
    assert ex.drawn is None and ex._widgets["image"].value != shown


def test_the_snapshot_returns_to_the_example_shown(tile_files, tiles, tmp_path):
    ex = explore(tile_files, tiles)
    ex.go(4)
    ex.snapshot(str(tmp_path / "s.png"), count=2)
    assert ex.at == 4
    with pytest.raises(ValueError, match="count must be"):
        ex.snapshot(str(tmp_path / "s.png"), count=0)


def test_signal_maps_with_channels_are_summed_and_drawn_as_signals(tmp_path):
    from tests.conftest import tiny_conv1d
    from xai.dataset import explain_dataset
    x = np.random.default_rng(3).normal(size=(9, 16, 3)).astype(np.float32)
    path = explain_dataset(tiny_conv1d(channels=3), x, "saliency", str(tmp_path / "s.h5"), batch_size=4, progress=False)
    for data in (x, None):
        ex = explore(path, data)
        ex.draw()
        assert ex.drawn["maps"]["saliency"].shape == (16,)
