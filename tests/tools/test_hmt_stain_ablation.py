"""tools/hmt_stain_ablation.py: the tool in its --quick mode on a few real tiles (the real ablation trains
15 models for hours): runs saved and reused, the summary with its choice by test fold and the two
schedules' agreement, its arguments. The comparisons it calls are tested in tests/xai/training/test_ablation.py."""
import json
import os

import pytest

from tests.conftest import hmt_root, load_tool


@pytest.fixture(scope="module")
def tool():
    return load_tool("hmt_stain_ablation")


@pytest.mark.slow
def test_quick_runs_are_saved_reused_and_summarised(tool, tmp_path):
    common = ["--quick", "--out", str(tmp_path), "--data", hmt_root()]
    three = ["valid_rgb", "reflect_none", "reflect_hed"]
    first = tool.main(common + ["--variants", *three, "--folds", "0", "1"])
    runs = tmp_path / "models" / "hmt_stain_ablation"
    assert sorted(os.listdir(runs)) == sorted(f"{v}_e1_s0_fold{k}.json" for v in three for k in (0, 1))
    stamps = {n: os.path.getmtime(runs / n) for n in os.listdir(runs)}
    again = tool.main(common + ["--variants", *three, "--folds", "0", "1"])
    assert {n: os.path.getmtime(runs / n) for n in stamps} == stamps                # the same runs: reused
    assert again["schedules"]["1"]["table"] == json.loads(json.dumps(first["schedules"]["1"]["table"]))
    entry = first["schedules"]["1"]
    assert entry["folds"] == [0, 1] and set(entry["table"]) == set(three)
    assert entry["table"]["valid_rgb"]["minus_valid_rgb"] == 0 and set(entry["choice"]["by_test_fold"]) == set(range(10))
    assert set(entry["artefacts"]) == set(three) and entry["artefacts"]["reflect_hed"]["centre_to_outside"] > 0
    second = tool.main(common + ["--variants", "valid_rgb", "reflect_none", "--folds", "0"] + ["--epochs", "2"])
    agreement = second["schedule_agreement"]
    assert agreement["epochs_short"] == 1 and agreement["epochs_full"] == 2 and agreement["folds"] == [0]
    assert set(agreement["short"]) == {"valid_rgb", "reflect_none"}
    with open(tmp_path / "models" / "hmt_stain_ablation.json") as f:
        saved = json.load(f)
    assert saved["baseline"] == "valid_rgb" and saved["quick"] and set(saved["schedules"]) == {"1", "2"}
    edited = runs / "reflect_hed_e1_s0_fold1.json"                              # a variant edited since: left out
    with open(edited) as f:
        record = json.load(f)
    record["key"]["train_config"]["hed_strength"] = 0.5
    with open(runs / "reflect_hed_e1_s0_fold0.json", "w") as f:
        json.dump(dict(record, fold=0, key=dict(record["key"], held_out=first["folds_of_slides"][0])), f)
    third = tool.main(common + ["--report-only"])
    assert third["schedules"]["1"]["folds"] == [1] and "reflect_hed" in third["schedules"]["1"]["variants"]
    with open(runs / "reflect_hed_e1_s0_fold1.json") as f:
        run = json.load(f)
    assert run["key"]["train_config"]["colour_augment"] == "hed" and run["key"]["train_config"]["padding"] == "reflect"
    assert len(run["pred"]) == run["n_test"] and len(run["artefacts"]["tiles"]) == 16
    assert not set(run["artefacts"]["tiles"]) & set(run["test_index"])          # measured on training slides' tiles


def test_tool_refuses_bad_arguments(tool):
    for argv in (["--epochs", "0"], ["--quick"], ["--variants", "hsv"]):              # --quick without --out
        with pytest.raises(SystemExit):
            tool.parse_args(argv)


def test_the_ablation_folds_are_drawn_not_chosen(tool):
    assert tool.ablation_folds(10) == tool.ablation_folds(10) and len(tool.ablation_folds(10)) == 3
    assert tool.BASELINE in tool.VARIANTS
    baseline = tool.run_config(tool.BASELINE, 20, 0, False)          # the network before issue 28, named, so that
    assert (baseline.padding, baseline.stem_kernel, baseline.colour_augment) == ("valid", 3, "rgb")   # new defaults
    import json

    from tests.conftest import repo_path
    with open(repo_path("models", "hmt_stain_ablation", "valid_rgb_e20_s0_fold5.json")) as f:
        stored = json.load(f)["key"]                                     # the committed run still matches its key
    assert tool.run_key(baseline, stored["held_out"], stored["data_fingerprint"], False) == stored


def test_a_slide_cv_fold_of_the_same_run_is_taken_not_trained_again(tool, tmp_path):
    import numpy as np

    import hmt_utils as hmt
    from xai.training.saving import save_model_with_provenance
    slides = np.array(["a", "a", "b", "c", "b"])
    x = np.random.default_rng(0).integers(0, 256, (5, 150, 150, 3), dtype=np.uint8)
    config = tool.run_config("reflect_none", 3, 0, True)
    key = {"train_config": hmt.recipe_key(config), "data_fingerprint": "f", "held_out": ["b"], "epochs": 3,
           "explained_per_fold": 1, "ig_steps": 4}
    model = hmt.build_model(width=4, block3_width=8, padding="reflect", stem_kernel=4)
    keras_path = str(tmp_path / "models" / "hmt_slide_cv_fold2.keras")
    save_model_with_provenance(model, keras_path, {
        "fold_record": {"best_epoch": 3, "val_accuracy": 0.5, "train_seconds": 7.0}, "resume_key": key})
    prob = model.predict(x[[2, 4]].astype(np.float32), verbose=0)

    def checkpoint(p, **changed):
        np.savez(tmp_path / "models" / "hmt_slide_cv_fold2.npz", test_index=np.array([2, 4]), prob=p,
                 resume_key_json=np.array(json.dumps(dict(key, **changed), sort_keys=True)))

    checkpoint(prob)
    found = tool.slide_cv_fold(str(tmp_path), 2, config, "f", ["b"], x, slides)
    assert found is not None
    taken, info, p, test = found
    assert taken.count_params() == model.count_params() and np.array_equal(p, prob)
    assert test.tolist() == [False, False, True, False, True] and info["best_epoch"] == 3
    assert info["trained_by"] == "tools/hmt_slide_cv.py (models/hmt_slide_cv_fold2.keras)" and info["versions"]
    other_recipe = tool.run_config("reflect_rgb", 3, 0, True)
    assert tool.slide_cv_fold(str(tmp_path), 2, other_recipe, "f", ["b"], x, slides) is None     # another recipe
    assert tool.slide_cv_fold(str(tmp_path), 2, tool.run_config("reflect_none", 4, 0, True), "f", ["b"], x, slides) is None
    assert tool.slide_cv_fold(str(tmp_path), 2, config, "g", ["b"], x, slides) is None            # other data
    assert tool.slide_cv_fold(str(tmp_path), 2, config, "f", ["c"], x, slides) is None            # other slides
    assert tool.slide_cv_fold(str(tmp_path), 3, config, "f", ["b"], x, slides) is None            # no such fold
    assert tool.slide_cv_fold(str(tmp_path), 2, config, "f", ["b"], x, slides, "hmt_slide_cv_full") is None  # another run
    checkpoint(np.roll(prob, 1, axis=1))                              # a checkpoint of another run than the model's
    assert tool.slide_cv_fold(str(tmp_path), 2, config, "f", ["b"], x, slides) is None
    checkpoint(prob, ig_steps=8)                                      # the checkpoint's key is not the model's
    assert tool.slide_cv_fold(str(tmp_path), 2, config, "f", ["b"], x, slides) is None
    (tmp_path / "models" / "hmt_slide_cv_fold2.npz").write_bytes(b"not a checkpoint")
    assert tool.slide_cv_fold(str(tmp_path), 2, config, "f", ["b"], x, slides) is None            # unreadable: trained
