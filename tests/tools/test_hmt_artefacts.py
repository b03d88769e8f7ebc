"""tools/hmt_artefacts.py: a model's map artefacts recorded under its hash, a second model beside it,
the figure a column a model, and the label required."""
import json

import pytest

from tests.conftest import hmt_root, load_tool


@pytest.mark.slow
def test_models_are_recorded_side_by_side(tmp_path):
    tool = load_tool("hmt_artefacts")
    common = ["--out", str(tmp_path), "--data", hmt_root()]
    first = tool.main(common + ["--label", "committed"])
    from xai.training.vgg import build_vgg7
    other = tmp_path / "reflect.keras"
    build_vgg7(8, (150, 150, 3), width=4, block3_width=8, padding="reflect", stem_kernel=4).save(other)
    both = tool.main(common + ["--model", str(other), "--label", "untrained reflect"])
    assert len(first) == 1 and len(both) == 2 and [r["label"] for r in both.values()] == ["committed", "untrained reflect"]
    committed = next(iter(first.values()))
    assert committed["centre_to_outside"] > 1.5 and committed["n"] == 16          # the committed model's centre pile
    with open(tmp_path / "models" / "hmt_artefacts.json") as f:
        assert json.load(f) == json.loads(json.dumps(both))
    assert (tmp_path / "figures" / "hmt_artefacts.png").stat().st_size > 0
    assert tool.main(common + ["--figure-only"]) == json.loads(json.dumps(both))
    with pytest.raises(SystemExit):
        tool.main(common)                                                       # no label
