"""tools/metric_agreement.py in its --quick mode: every method under every metric, the planted-shortcut
AUROCs from the committed records, the tau matrix written as JSON (null where no tau)."""
import json

import numpy as np
import pytest

from tests.conftest import load_tool


@pytest.mark.slow
def test_quick_run_scores_every_method_under_every_metric(tmp_path):
    from xai.methods import METHODS
    tool = load_tool("metric_agreement")
    record = tool.main(["--quick", "--out", str(tmp_path)])
    with open(tmp_path / "models" / "metric_agreement.json") as f:
        saved = json.load(f)
    assert saved["metrics"] == record["metrics"] and saved["sentence"].startswith("Of ")
    names = saved["metrics"]
    assert {"SRG (MNIST-1D)", "eMPRT (MNIST-1D)", "sanity cascade (MNIST-1D)", "pointing game (MNIST-1D)"} <= set(names)
    assert any(n.startswith("shortcut detection AUROC") for n in names)            # from models/shortcut/runs
    labels = {m.label for m in METHODS.values()}
    assert set(saved["per_metric"]["SRG (MNIST-1D)"]["methods"]) == labels
    tau = np.array(saved["tau"], dtype=float)                                      # null -> nan
    assert tau.shape == (len(names), len(names)) and np.allclose(tau, tau.T, equal_nan=True)
    assert np.nanmax(np.abs(tau)) <= 1
    figure = tmp_path / "figures" / "xai_metric_agreement.png"
    assert saved["readme_sentence"].startswith("Of ") and figure.stat().st_size > 10_000
    figure.unlink()
    again = tool.main(["--report-only", "--out", str(tmp_path)])                   # from the record alone
    assert again["readme_sentence"] == saved["readme_sentence"] and figure.is_file()
    with pytest.raises(SystemExit):
        tool.main(["--quick"])                                                     # --quick needs --out
    with pytest.raises(SystemExit):
        tool.main(["--report-only", "--out", str(tmp_path / "nothing")])           # no record to report
