"""tools/hmt_slide_cv.py: the folds of slides, the intervals, the slide probe, and the whole tool in
its --quick mode on a few real tiles (the full run trains 10 models for hours and is not run here)."""
import importlib.util
import json
import os

import numpy as np
import pytest
from conftest import hmt_root, repo_path


@pytest.fixture(scope="module")
def cv():
    spec = importlib.util.spec_from_file_location("hmt_slide_cv", repo_path("tools", "hmt_slide_cv.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _slides_and_labels():
    """6 slides of 10 tiles; class 2 on slides a and b only, class 1 on c only."""
    slides = np.repeat(list("abcdef"), 10)
    y = np.zeros(60, int)
    y[[0, 1, 10, 11]] = 2
    y[[20, 21]] = 1
    return slides, y


def test_slide_folds_leave_one_slide_out_and_keep_classes_in_training(cv):
    slides, y = _slides_and_labels()
    assert cv.slide_folds(slides, y, 6) == [[s] for s in "abcdef"]
    for seed in range(5):
        folds = cv.slide_folds(slides, y, 3, seed=seed)
        assert sorted(s for f in folds for s in f) == list("abcdef") and [len(f) for f in folds] == [2, 2, 2]
        assert not any({"a", "b"} <= set(f) for f in folds)                    # class 2 stays in every training fold
    for bad in (1, 7, 2.5):
        with pytest.raises(ValueError, match="n_folds"):
            cv.slide_folds(slides, y, bad)


def test_wilson_interval_known_values(cv):
    assert cv.wilson(0, 10) == pytest.approx([0.0, 0.27753], abs=1e-4)
    assert cv.wilson(5, 10) == pytest.approx([0.23659, 0.76341], abs=1e-4)
    assert cv.wilson(460, 496) == pytest.approx([0.9012, 0.9471], abs=1e-4)               # the course split's 0.927
    assert cv.wilson(0, 0) is None


def test_slide_bootstrap_resamples_slides(cv):
    slides = np.repeat(list("abcd"), 25)
    correct = np.repeat([True, True, False, True], 25)                           # slide c all wrong
    lo, hi = cv.slide_bootstrap(correct, slides, n_boot=500, seed=0)
    assert 0.2 < lo < 0.75 < hi <= 1.0                                           # far wider than the tiles' Wilson
    assert cv.slide_bootstrap(correct, slides, n_boot=500, seed=0) == [lo, hi]
    assert cv.slide_bootstrap(correct[:50], slides[:50]) is None                  # two slides: no interval


def test_slide_probe_finds_a_slide_in_the_features_beyond_the_class(cv):
    rng = np.random.default_rng(0)
    slides = np.repeat([f"s{i}" for i in range(4)], 60)
    y = np.tile(np.repeat([0, 1], 30), 4)                                        # classes spread evenly
    images = np.array([f"{s}_{i // 6}" for s, i in zip(slides, np.tile(np.arange(60), 4))])
    marked = rng.normal(size=(240, 6)) + 4 * np.eye(6)[np.repeat(np.arange(4), 60)]   # slide in features 0-3
    probe = cv.slide_probe(marked, slides, y, images)
    assert probe["probe_accuracy"] > 0.95 and probe["class_only_accuracy"] < 0.5
    assert probe["chance_majority"] == probe["chance_uniform"] == 0.25
    blind = cv.slide_probe(rng.normal(size=(240, 6)), slides, y, images)
    assert blind["probe_accuracy"] < 0.45
    with pytest.raises(ValueError, match="finite"):
        cv.slide_probe(np.full((240, 6), np.nan), slides, y, images)


def test_quick_mode_writes_the_record_and_figures(cv, tmp_path):
    record = cv.main(["--quick", "--epochs", "1", "--out", str(tmp_path), "--data", hmt_root()])
    with open(tmp_path / "models" / "hmt_slide_cv.json") as f:
        saved = json.load(f)
    assert saved["complete"] and saved["quick"] and saved["epochs_override"] == 1 and saved["config"]["epochs"] == 1
    assert saved["config"]["val_split"] == "source_image" and saved["summary"] == json.loads(json.dumps(record["summary"]))
    assert len(saved["folds"]) == 2
    slides_seen = sorted(s for f in saved["folds_of_slides"] for s in f)
    assert slides_seen == [f"CRC-Prim-HE-{i:02d}" for i in range(1, 11)]
    assert not any({"CRC-Prim-HE-06", "CRC-Prim-HE-10"} <= set(f) for f in saved["folds_of_slides"])   # EMPTY's two slides
    with np.load(tmp_path / "models" / "hmt_slide_cv_predictions.npz") as z:
        fold, slide, y_pred, y_true = z["fold"], z["slide"], z["y_pred"], z["y_true"]
    assert (fold >= 0).all() and len(fold) == saved["n_tiles"]                   # every tile tested once
    for k, held in enumerate(saved["folds_of_slides"]):
        assert set(slide[fold == k]) == set(held)                               # ... by the fold that held its slide out
    pooled = saved["summary"]["pooled"]
    assert pooled["correct"] == int(np.sum(y_pred == y_true)) and pooled["n"] == len(y_true)
    assert "empty" in saved["summary"]["confined_classes"] and saved["summary"]["per_class"]["empty"]["confined"]
    assert saved["course_split"]["test_accuracy"] == pytest.approx(0.9274, abs=1e-3)
    for probe in saved["probe"].values():
        assert "skipped" in probe or 0 <= probe["probe_accuracy"] <= 1
    for fold_record in saved["folds"]:
        assert fold_record["val_groups"]["n_val"] >= 1
    for name in ("hmt_slide_cv.png", "hmt_slide_cv_explanations.png"):
        assert (tmp_path / "figures" / name).stat().st_size > 10_000
    leftovers = [n for d in ("models", "figures") for n in os.listdir(tmp_path / d) if n.startswith("tmp")]
    assert leftovers == []


def test_tool_refuses_bad_arguments(cv):
    for argv in (["--epochs", "0"], ["--explain", "-1"]):
        with pytest.raises(SystemExit):
            cv.parse_args(argv)
    assert cv.parse_args(["--quick"]).explain == cv.QUICK_EXPLAIN and cv.parse_args([]).explain == 6
