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
