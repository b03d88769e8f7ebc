"""tools/randomisation_checks.py in its --quick mode: the plain cascade, eMPRT and sMPRT for every method
on the same examples, the verdicts by the stated thresholds, where the repairs disagree, the record."""
import json

import pytest

from tests.conftest import load_tool


@pytest.mark.slow
def test_quick_run_checks_every_method_three_ways(tmp_path):
    from xai.methods import METHODS
    tool = load_tool("randomisation_checks")
    record = tool.main(["--data", "mnist1d", "--quick", "--out", str(tmp_path)])
    with open(tmp_path / "models" / "randomisation_mnist1d.json") as f:
        saved = json.load(f)
    assert set(saved["summary"]) == {m.label for m in METHODS.values()} and saved["n"] == 4
    for label, s in saved["summary"].items():
        assert s["cascade"]["passes"] == (s["cascade"]["high"] < 0.5)             # the stated thresholds
        assert s["emprt"]["passes"] == (s["emprt"]["low"] > 1.0)
        assert len(saved["per_example"][label]["smprt"]) == 4
    for test in ("emprt", "smprt"):
        assert saved["disagree"][test] == [m for m, s in saved["summary"].items()
                                           if s["cascade"]["passes"] != s[test]["passes"]]
    assert saved["agreement"]["metrics"] == ["cascade", "emprt", "smprt"] and record["model"] == "models/MNIST1D.keras"
    with pytest.raises(SystemExit):
        tool.main(["--data", "mnist1d", "--quick"])                                # --quick needs --out
