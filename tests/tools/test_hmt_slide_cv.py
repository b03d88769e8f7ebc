"""tools/hmt_slide_cv.py: the whole tool in its --quick mode on a few real tiles (the full run trains 10
models for hours and is not run here), resuming and restarting its folds, and its small parts: a
failed probe, its arguments. The folds, intervals and probe it calls are tested in
tests/xai/training/test_slides.py and tests/xai/analysis/test_stats.py."""
import argparse
import json
import os

import numpy as np
import pytest

from tests.conftest import hmt_root, load_tool, repo_path


@pytest.fixture(scope="module")
def cv():
    return load_tool("hmt_slide_cv")


@pytest.fixture(scope="module")
def quick_run(cv, tmp_path_factory):
    """One --quick run (2 folds, 1 epoch, tiny width) into a temporary folder: (record, folder)."""
    out = tmp_path_factory.mktemp("slide_cv")
    return cv.main(["--quick", "--epochs", "1", "--schedule-check", "0", "--out", str(out), "--data", hmt_root()]), out


@pytest.mark.slow
def test_quick_mode_writes_the_record_and_figures(quick_run):
    record, out = quick_run
    with open(out / "models" / "hmt_slide_cv.json") as f:
        saved = json.load(f)
    assert saved["complete"] and saved["quick"] and saved["epochs_override"] == 1 and saved["config"]["epochs"] == 1
    assert saved["config"]["val_split"] == "source_image" and saved["summary"] == json.loads(json.dumps(record["summary"]))
    assert saved["config"]["seed"] == saved["seed"] == 0
    assert saved["n_boot"] == 200 and saved["ig_steps"] == 4 and saved["explained_per_fold"] == 1
    assert saved["folds_reused"] == [] and not any(f["reused"] for f in saved["folds"])
    assert {"wilson95", "slide_bootstrap95"} <= set(saved["interval_notes"]) and "HMT_train" in saved["probe_note"]
    assert len(saved["folds"]) == 2
    schedule = saved["summary"]["schedule"]                                    # 1 epoch: every fold stops at its last
    assert schedule["epochs"] == 1 and schedule["folds_at_last_epoch"] == [0, 1] and "too short" in schedule["reading"]
    check = saved["schedule_check"]                                             # fold 0 again, at the "full" 2 epochs
    assert check["fold"] == 0 and check["epochs_short"] == 1 and check["epochs_full"] == 2
    assert check["accuracy_short"] == saved["folds"][0]["accuracy"] and 0 <= check["accuracy_full"] <= 1
    assert check["difference_full_minus_short"] == pytest.approx(
        (check["right_only_with_full"] - check["right_only_with_short"]) / check["n_test"])
    assert (out / "models" / "hmt_slide_cv_fold0_full.npz").is_file()
    for k in (0, 1):                                                          # each fold's model kept beside it
        with open(out / "models" / f"hmt_slide_cv_fold{k}.json") as f:
            kept = json.load(f)
        assert kept["fold_record"]["held_out"] == saved["folds"][k]["held_out"]
        assert (out / "models" / f"hmt_slide_cv_fold{k}.keras").is_file()
    assert "majority_cv_accuracy" in next(iter(saved["probe"].values()))    # the folds' bias on a count baseline
    slides_seen = sorted(s for f in saved["folds_of_slides"] for s in f)
    assert slides_seen == [f"CRC-Prim-HE-{i:02d}" for i in range(1, 11)]
    assert not any({"CRC-Prim-HE-06", "CRC-Prim-HE-10"} <= set(f) for f in saved["folds_of_slides"])   # EMPTY's two slides
    with np.load(out / "models" / "hmt_slide_cv_predictions.npz") as z:
        fold, slide, y_pred, y_true = z["fold"], z["slide"], z["y_pred"], z["y_true"]
    assert (fold >= 0).all() and len(fold) == saved["n_tiles"]                   # every tile tested once
    for k, held in enumerate(saved["folds_of_slides"]):
        assert set(slide[fold == k]) == set(held)                               # ... by the fold that held its slide out
        with np.load(out / "models" / f"hmt_slide_cv_fold{k}.npz") as z:
            assert (z["test_index"] == np.flatnonzero(fold == k)).all()
            assert (z["prob"].argmax(-1) == y_pred[fold == k]).all()
            assert z["explained_grad_cam"].shape[1:] == (150, 150) and z["explained_ig"].shape[1:] == (150, 150, 3)
            assert json.loads(str(z["record_json"]))["held_out"] == held
    pooled = saved["summary"]["pooled"]
    assert pooled["correct"] == int(np.sum(y_pred == y_true)) and pooled["n"] == len(y_true)
    assert "empty" in saved["summary"]["confined_classes"] and saved["summary"]["per_class"]["empty"]["confined"]
    for fold_record in saved["folds"]:
        assert fold_record["val_groups"]["n_val"] >= 1
        assert sum(fold_record["training_slides_tiles_per_class"].values()) == fold_record["n_train"] + fold_record["n_val"]
        absent = fold_record["val_groups"]["classes_absent_from_val"]
        assert saved["summary"]["classes_absent_from_fold_validation"].get("+".join(fold_record["held_out"]), []) == absent
        for name, confined in saved["summary"]["confined_classes"].items():
            for s, entry in confined["slides"].items():
                if s in fold_record["held_out"]:
                    assert entry["absent_from_fold_validation"] == (name in absent)
    course = saved["course_split"]
    with open(repo_path("models", "HMT.json")) as f:
        committed = json.load(f)                                          # the committed model's record
    assert course["test_accuracy"] == pytest.approx(committed["test_accuracy"], abs=1e-9)
    assert course["epochs"] == committed["train_config"]["epochs"] and course["val_split"] == "source_image"
    assert course["same_schedule_as_cv"] is False
    for probe in saved["probe"].values():
        assert "skipped" in probe or "error" in probe or 0 <= probe["probe_accuracy"] <= 1
        if "probe_accuracy" in probe:
            assert probe["probed_tiles_from_hmt_train"] == int(np.sum(~_course_test(out)))
            assert probe["difference_bootstrap95"] is None or len(probe["difference_bootstrap95"]) == 2
    rows = [r["measurement"] for r in saved["table"]]           # no colour or ablation record in out: their rows left out
    assert rows[0].startswith("CNN, course split") and not any(r.startswith(("colour", "recipe")) for r in rows)
    assert sum(r.startswith("slide told") for r in rows) == sum("probe_accuracy" in p for p in saved["probe"].values())
    for name in ("hmt_slide_cv.png", "hmt_slide_cv_explanations.png"):
        assert (out / "figures" / name).stat().st_size > 10_000
    leftovers = [n for d in ("models", "figures") for n in os.listdir(out / d) if n.startswith("tmp")]
    assert leftovers == []


def _course_test(out):
    with np.load(out / "models" / "hmt_slide_cv_predictions.npz") as z:
        return z["course_test"]


@pytest.mark.slow
def test_quick_mode_resumes_saved_folds_and_restart_retrains_them(cv, quick_run, capsys):
    first, out = quick_run
    argv = ["--quick", "--epochs", "1", "--out", str(out), "--data", hmt_root()]
    files = [out / "models" / f"hmt_slide_cv_fold{k}.npz" for k in range(2)]
    stamps = [f.stat().st_mtime_ns for f in files]
    again = cv.main(argv)                                                        # every fold from its file: no training
    assert again["folds_reused"] == [0, 1] and all(f["reused"] for f in again["folds"])
    assert [f.stat().st_mtime_ns for f in files] == stamps
    assert again["summary"] == first["summary"]
    assert [f["train_seconds"] for f in again["folds"]] == [f["train_seconds"] for f in first["folds"]]
    assert "epoch 1:" not in capsys.readouterr().out                              # no epoch line: nothing trained
    other = cv.main(argv + ["--explain", "4"])                                   # another key (explanations a fold)
    assert other["folds_reused"] == [] and other["explained_per_fold"] == 2
    capsys.readouterr()
    restarted = cv.main(argv + ["--restart"])
    assert restarted["folds_reused"] == [] and restarted["restart"] and not any(f["reused"] for f in restarted["folds"])
    assert "fold 2/2 epoch 1:" in capsys.readouterr().out
    with open(out / "models" / "hmt_slide_cv.json") as f:
        committed = f.read()
    named = cv.main(argv + ["--name", "hmt_slide_cv_full"])              # a run apart: its own files, trained anew
    assert named["folds_reused"] == [] and named["name"] == "hmt_slide_cv_full"
    for stem in ("hmt_slide_cv_full.json", "hmt_slide_cv_full_fold0.npz", "hmt_slide_cv_full_fold1.keras",
                 "hmt_slide_cv_full_predictions.npz"):
        assert (out / "models" / stem).is_file(), stem
    assert (out / "figures" / "hmt_slide_cv_full.png").is_file()
    with open(out / "models" / "hmt_slide_cv.json") as f:
        assert f.read() == committed                                     # the record the others read: untouched
    assert cv.redraw_figures(str(out), "hmt_slide_cv_full")["name"] == "hmt_slide_cv_full"


def test_probe_failure_is_recorded_not_raised(cv, tmp_path):
    bad = tmp_path / "broken.keras"
    bad.write_bytes(b"not a model")
    args = argparse.Namespace(model=str(bad), previous_model=str(tmp_path / "absent.keras"), course_model="", quick=True,
                              seed=0)
    slides = np.repeat(list("abc"), 4)
    groups = cv.hmt.TileGroups(slides, np.array([f"{s}_{i // 2}" for s, i in zip(slides, range(12))]))
    probes = cv._probe_models(args, np.zeros((12, 150, 150, 3), np.uint8), np.zeros(12, int), groups,
                              np.zeros(12, bool), n_boot=10)
    assert "error" in probes["committed model"] and "skipped" in probes["course model"]
    assert "skipped" in probes["previous committed model"]


def test_the_schedule_reading_names_the_folds_that_chose_their_last_epoch(cv):
    folds = [{"fold": 0, "best_epoch": 20}, {"fold": 1, "best_epoch": 13}]
    assert cv.schedule_reading(folds, 20)["folds_at_last_epoch"] == [0]
    assert "long enough" in cv.schedule_reading(folds[1:], 20)["reading"]


def test_tool_refuses_bad_arguments(cv):
    for argv in (["--epochs", "0"], ["--explain", "-1"], ["--quick"], ["--name", "../elsewhere"], ["--name", "CV"]):
        with pytest.raises(SystemExit):
            cv.parse_args(argv)
    assert cv.parse_args(["--quick", "--out", "/tmp/x"]).explain == cv.QUICK_EXPLAIN and cv.parse_args([]).explain == 6
    assert cv.parse_args([]).out == cv._REPO and not cv.parse_args([]).restart


def test_the_committed_folds_match_the_key_the_tool_builds_now(cv):
    """A recipe field added later (at the value that reproduces the old recipe) must not make the
    committed fold files look stale: they would be retrained, hours of CPU, for the same models."""
    with np.load(repo_path("models", "hmt_slide_cv_fold0.npz")) as z:
        stored = json.loads(str(z["resume_key_json"]))
    config = cv.hmt.TrainConfig(**stored["train_config"])
    now = cv.fold_key(config, stored["data_fingerprint"], stored["held_out"], stored["explained_per_fold"],
                      stored["ig_steps"])
    assert json.loads(json.dumps(now, sort_keys=True)) == stored
    other = cv.hmt.TrainConfig(**dict(stored["train_config"], colour_augment="hed"))
    assert cv.fold_key(other, "f", ["a"], 1, 32)["train_config"] != now["train_config"]
