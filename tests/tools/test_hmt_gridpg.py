"""tools/hmt_gridpg.py in its --quick mode (2 grids of real tiles, the committed model): every method's
cell shares, their intervals, the grid accuracy, the record as strict JSON."""
import json

import numpy as np
import pytest

from tests.conftest import load_tool


@pytest.mark.slow
def test_quick_run_scores_every_method_on_grids(tmp_path):
    from xai.methods import METHODS
    tool = load_tool("hmt_gridpg")
    tool.main(["--quick", "--out", str(tmp_path)])
    with open(tmp_path / "models" / "hmt_gridpg.json") as f:
        saved = json.load(f)                                              # strict JSON: NaN written as null
    row = saved["rows"]["course test tiles, committed model"]
    assert set(row["scores"]) == {m.label for m in METHODS.values()} and row["n_grids"] == 2
    for cells in row["scores"].values():
        assert len(cells) == 8                                            # 2 grids of 4 cells
        shares = np.array([np.nan if v is None else v for v in cells])
        assert np.all((shares[np.isfinite(shares)] >= 0) & (shares[np.isfinite(shares)] <= 1))
    assert 0 <= row["grid_accuracy"] <= 1 and saved["chance"] == 0.25 and "committed" in saved["models"]
    with pytest.raises(SystemExit):
        tool.main(["--quick"])
