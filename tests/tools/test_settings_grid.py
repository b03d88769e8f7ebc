"""tools/settings_grid.py in its --quick mode (a tiny untrained model, 4 real examples): batches stored
and reused, the record complete with its findings, the notebook's examples, and its arguments."""
import json
import os

import pytest

from tests.conftest import hmt_root, load_tool


@pytest.fixture(scope="module")
def tool():
    return load_tool("settings_grid")


@pytest.mark.slow
@pytest.mark.parametrize("data", ["hmt", "mnist1d"])
def test_quick_run_stores_batches_reuses_them_and_reports(tool, tmp_path, data):
    common = ["--data", data, "--quick", "--out", str(tmp_path), "--data-dir", hmt_root(), "--n-boot", "100"]
    partial = tool.main(common + ["--batch", "2", "--max-minutes", "0"])       # no batch started
    assert partial["stored"] == 0 and not partial["complete"] and "findings" not in partial
    first = tool.main(common + ["--batch", "2"])
    folder = tmp_path / "models" / f"sweep_{data}"
    assert first["complete"] and first["stored"] == 4 and len(os.listdir(folder)) == 2
    assert first["findings"] and "| IG | zeros |" in first["settings_table"] and first["seconds"] > 0
    stamps = {n: os.path.getmtime(folder / n) for n in os.listdir(folder)}
    again = tool.main(common + ["--report-only"])
    assert {n: os.path.getmtime(folder / n) for n in os.listdir(folder)} == stamps
    assert again["findings"] == first["findings"] and again["tiles"] == first["tiles"]
    with open(tmp_path / "models" / f"sweep_{data}.json") as f:
        assert json.load(f)["key"] == first["key"]


def test_arguments_are_checked(tool):
    with pytest.raises(SystemExit):
        tool.parse_args(["--data", "hmt", "--quick"])                    # --quick needs --out
    with pytest.raises(SystemExit):
        tool.parse_args(["--data", "hmt", "--batch", "1"])
    with pytest.raises(SystemExit):
        tool.parse_args(["--data", "cifar"])
    assert tool.parse_args(["--data", "hmt"]).per_class == 16             # the notebook's 128 tiles
    assert tool.parse_args(["--data", "mnist1d"]).batch == 250


@pytest.mark.slow
def test_held_out_grids_of_fold_models_are_stored_and_pooled(tool, tmp_path):
    from xai.training.vgg import build_vgg7
    models = tmp_path / "models"
    models.mkdir()
    for k, slide in enumerate(("CRC-Prim-HE-01", "CRC-Prim-HE-02")):             # two stand-in fold models
        build_vgg7(8, (150, 150, 3), width=4, block3_width=8, seed=k).save(models / f"hmt_slide_cv_fold{k}.keras")
        (models / f"hmt_slide_cv_fold{k}.json").write_text(json.dumps({"fold_record": {"held_out": [slide]}}))
    common = ["--data", "hmt-held-out", "--quick", "--out", str(tmp_path), "--data-dir", hmt_root(), "--n-boot", "100"]
    record = tool.main(common + ["--batch", "2"])
    assert record["complete"] and [p["held_out"] for p in record["parts"]] == [["CRC-Prim-HE-01"], ["CRC-Prim-HE-02"]]
    assert record["n"] == sum(len(p["tiles"]) for p in record["parts"]) and record["findings"]
    assert record["parts"][0]["key"] != record["parts"][1]["key"]                # a key a fold model
    again = tool.main(common + ["--report-only"])
    assert again["findings"] == record["findings"]
    (models / "hmt_slide_cv_fold0.keras").unlink()
    (models / "hmt_slide_cv_fold1.keras").unlink()
    with pytest.raises(SystemExit, match="no fold models"):
        tool.main(common)
