"""xai/analysis/summaries.py: the tools' records read back as tables, figures and the agreement matrix."""
import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import xai.analysis.summaries as xsum  # noqa: E402


def _check(mean, low, high, passes):
    return {"mean": mean, "low": low, "high": high, "n": 10, "passes": passes}


def test_randomisation_table_names_verdicts_and_disagreements():
    record = {"thresholds": {"correlation_below": 0.5, "ratio_above": 1.0},
              "summary": {"A": {"cascade": _check(0.1, 0.05, 0.2, True), "emprt": _check(0.9, 0.8, 0.95, False),
                                "smprt": _check(0.2, 0.1, 0.3, True)},
                          "B": {"cascade": _check(0.7, 0.6, 0.8, False), "emprt": _check(0.9, 0.8, 0.95, False),
                                "smprt": _check(0.7, 0.6, 0.8, False)}},
              "disagree": {"emprt": ["A"], "smprt": []}}
    table = xsum.randomisation_table(record)
    assert "| A | 0.10 [0.05, 0.20] pass | 0.90 [0.80, 0.95] fail | 0.20 [0.10, 0.30] pass | eMPRT |" in table
    assert table.splitlines()[-1].endswith("| - |")


def test_gridpg_table_and_figure_read_null_as_missing():
    summary = {"A": {"mean": 0.6, "interval95": [0.5, 0.7]}, "B": {"mean": None, "interval95": [None, None]}}
    record = {"chance": 0.25, "rows": {"seen": {"n_grids": 4, "grid_accuracy": 1.0, "summary": summary}}}
    table = xsum.gridpg_table(record)
    assert "| A | 0.600 [0.500, 0.700] |" in table and "| B | - |" in table and "Chance: 0.25" in table
    fig = xsum.gridpg_figure(record)
    assert fig.axes[0].get_yticklabels()[0].get_text() == "A"
    plt.close(fig)


def test_agreement_from_record_and_a_missing_record(tmp_path):
    record = {"metrics": ["a", "b"], "tau": [[None, 0.5], [0.5, None]], "low": [[None, 0.1], [0.1, None]],
              "high": [[None, 0.9], [0.9, None]], "shared": [[3, 3], [3, 3]]}
    (tmp_path / "r.json").write_text(json.dumps(record))
    r = xsum.agreement_from_record(xsum.read_record(tmp_path / "r.json"))
    assert np.isnan(r["tau"][0, 0]) and r["tau"][0, 1] == 0.5 and r["shared"].dtype.kind == "i"
    assert "undefined_draws" not in r
    with_draws = xsum.agreement_from_record(dict(record, undefined_draws=[[0, 2], [2, 0]]))
    assert with_draws["undefined_draws"].tolist() == [[0, 2], [2, 0]]
    with pytest.raises(FileNotFoundError, match="written by the tool"):
        xsum.read_record(tmp_path / "missing.json")


def test_agreement_table_lists_every_pair_most_opposite_first_with_its_verdict():
    record = {"metrics": ["a", "b", "c"], "tau": [[None, 0.5, -0.8], [0.5, None, 0.1], [-0.8, 0.1, None]],
              "low": [[None, 0.1, -0.9], [0.1, None, -0.3], [-0.9, -0.3, None]],
              "high": [[None, 0.9, -0.6], [0.9, None, 0.4], [-0.6, 0.4, None]], "shared": [[3] * 3] * 3}
    rows = xsum.agreement_table(record).splitlines()[2:]
    assert rows == ["| a | c | -0.80 [-0.90, -0.60] | opposite | 3 |", "| b | c | +0.10 [-0.30, +0.40] | undecided | 3 |",
                    "| a | b | +0.50 [+0.10, +0.90] | alike | 3 |"]


def test_sections_say_what_to_run_when_a_record_is_missing_or_stale(tmp_path):
    from tests.conftest import tiny_conv2d
    from xai.analysis.sweep_store import file_sha1
    tiny_conv2d().save(tmp_path / "HMT.keras")
    assert "is not there yet" in xsum.randomisation_section(str(tmp_path), "hmt")
    record = {"model_sha1": "0" * 20, "command": "python tools/randomisation_checks.py --data hmt"}
    (tmp_path / "randomisation_hmt.json").write_text(json.dumps(record))
    text = xsum.randomisation_section(str(tmp_path), "hmt")
    assert "retrained since" in text and "--data hmt" in text
    gridpg = {"models": {"committed": file_sha1(tmp_path / "HMT.keras")}, "command": "python tools/hmt_gridpg.py",
              "chance": 0.25, "rows": {"seen": {"n_grids": 2, "grid_accuracy": 1.0,
                                                "summary": {"A": {"mean": 0.5, "interval95": [0.4, 0.6]}}}}}
    (tmp_path / "hmt_gridpg.json").write_text(json.dumps(gridpg))
    text, fig = xsum.gridpg_section(str(tmp_path))
    assert "| A | 0.500 [0.400, 0.600] |" in text and fig is not None
    plt.close(fig)
