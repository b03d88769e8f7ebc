"""tools/hmt_sweep.py in its --quick mode (a tiny untrained model, 4 real tiles): batches stored and
reused, the record complete with its findings, the notebook's tiles, and its arguments."""
import json
import os

import pytest

from tests.conftest import hmt_root, load_tool


@pytest.fixture(scope="module")
def tool():
    return load_tool("hmt_sweep")


@pytest.mark.slow
def test_quick_run_stores_batches_reuses_them_and_reports(tool, tmp_path):
    common = ["--quick", "--out", str(tmp_path), "--data", hmt_root(), "--n-boot", "100"]
    partial = tool.main(common + ["--batch", "2", "--max-minutes", "0"])       # no batch started
    assert partial["stored"] == 0 and not partial["complete"] and "findings" not in partial
    first = tool.main(common + ["--batch", "2"])
    folder = tmp_path / "models" / "hmt_sweep"
    assert first["complete"] and first["stored"] == 4 and len(os.listdir(folder)) == 2
    assert first["findings"] and "| IG | zeros |" in first["settings_table"] and first["seconds"] > 0
    stamps = {n: os.path.getmtime(folder / n) for n in os.listdir(folder)}
    again = tool.main(common + ["--report-only"])
    assert {n: os.path.getmtime(folder / n) for n in os.listdir(folder)} == stamps
    assert again["findings"] == first["findings"] and again["tiles"] == first["tiles"]
    with open(tmp_path / "models" / "hmt_sweep.json") as f:
        assert json.load(f)["key"] == first["key"]


def test_arguments_are_checked(tool):
    with pytest.raises(SystemExit):
        tool.parse_args(["--quick"])                                    # --quick needs --out
    with pytest.raises(SystemExit):
        tool.parse_args(["--batch", "1"])
    assert tool.parse_args([]).per_class == 16                           # the notebook's 128 tiles
