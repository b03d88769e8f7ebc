"""tools/shortcut_benchmark.py: a smoke run writes a record a model, the results and the figures;
a second run reuses every record; the tables and the README sentence come from the results."""
import importlib.util
import json
import os

import numpy as np
import pytest

from tests.conftest import ROOT, repo_path
from xai.shortcut import benchmark as sb
from xai.shortcut import report
from xai.shortcut.markers import ZIGZAG_LENGTH

_spec = importlib.util.spec_from_file_location("shortcut_benchmark", repo_path("tools", "shortcut_benchmark.py"))
tool = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tool)


def test_model_plan_has_each_p_and_seed_and_a_clark_control_a_seed_with_clean_models_shared():
    setting = sb.SETTINGS["hmt_local"]
    plan = sb.model_plan(setting)
    assert len(plan) == len(setting.fractions) * len(setting.seeds) + len(setting.seeds)
    groups = [s.group(setting) for s in plan]
    assert groups.count("clark") == groups.count("adebayo") == len(setting.seeds)
    hue = sb.SETTINGS["hmt_hue"]
    assert sb.ModelSpec(0.0, 1).model_id(setting) == sb.ModelSpec(0.0, 1).model_id(hue) == "hmt_p0_s1"
    assert sb.ModelSpec(1.0, 1).model_id(setting) != sb.ModelSpec(1.0, 1).model_id(hue)
    assert report.kept_name(setting, sb.ModelSpec(1.0, 0)) == "hmt_local_reliant"
    assert report.kept_name(setting, sb.ModelSpec(0.5, 0, control=True)) == "hmt_local_clark"
    assert report.kept_name(setting, sb.ModelSpec(1.0, 1)) is None


def test_quick_needs_an_out_folder_outside_the_repository():
    with pytest.raises(SystemExit):
        tool.parse_args(["--quick", "--out", ROOT])


@pytest.mark.slow
def test_quick_run_writes_records_results_and_figures_and_resumes_without_training(tmp_path, capsys):
    out = str(tmp_path)
    results = tool.main(["--quick", "--out", out, "--settings", "mnist1d_local"])
    s = results["settings"]["mnist1d_local"]
    assert s["scored"] == s["planned"] == 6
    assert not results["complete"] and results["settings"]["hmt_local"]["scored"] == 0   # every setting is reported
    runs = os.listdir(os.path.join(out, "models", "shortcut", "runs"))
    assert len([r for r in runs if "__" in r]) == 6 and "mnist1d_local.spray.json" in runs
    from xai.methods import METHODS
    spray = s["spray"]
    assert list(spray["methods"]) == list(METHODS) and spray["marked"] == spray["n"] // 2
    for r in spray["methods"].values():
        assert -1 <= r["reliant"]["low"] <= r["reliant"]["high"] <= 1 and sum(r["control"]["sizes"]) == spray["n"]
    assert os.path.isfile(os.path.join(out, "figures", "shortcut_spray.png"))
    for m in ("grad_cam", "integrated_gradients", "rise", "random", "edge"):
        row = s["methods"][m]
        assert 0 <= row["detection"]["low"] <= row["detection"]["high"] <= 1 and 0 <= row["detection"]["auroc"] <= 1
        assert {"reliant", "clark", "adebayo"} <= set(row)
    assert "srg" in s["methods"]["grad_cam"] and "srg" not in s["methods"]["random"]
    assert s["random_check"]["area_share"] == pytest.approx(ZIGZAG_LENGTH / 40)
    assert s["road_agreement"]["methods"][0] == "grad_cam"
    assert os.path.isfile(os.path.join(out, "models", "shortcut", "mnist1d_local_reliant.keras"))
    assert os.path.isfile(os.path.join(out, "models", "shortcut", "mnist1d_local_clark.json"))
    assert os.path.isfile(os.path.join(out, "figures", "shortcut_mnist1d_local.png"))
    tables = open(os.path.join(out, "figures", "shortcut_tables.md")).read()
    assert "Grad-CAM" in tables and "Kendall tau" in tables
    assert "**Planted shortcuts** (mnist1d_local (6 of 6 models))" in report.findings_sentence(results)
    capsys.readouterr()
    again = tool.main(["--quick", "--out", out, "--settings", "mnist1d_local"])
    assert "trained" not in capsys.readouterr().out                       # every record reused
    assert again["settings"]["mnist1d_local"]["methods"] == json.loads(json.dumps(s["methods"]))


def test_the_pilot_holds_out_part_of_the_training_data_only():
    spec = importlib.util.spec_from_file_location("shortcut_pilot", repo_path("tools", "shortcut_pilot.py"))
    pilot = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pilot)
    from dataclasses import replace
    setting = replace(sb.SETTINGS["mnist1d_local"], **sb.QUICK)
    bundle = sb.load_bundle(setting)
    split = pilot.pilot_bundle(setting, bundle)
    assert len(split.y_train) + len(split.y_held) == len(bundle.y_train) and len(split.y_held) == len(bundle.y_train) // 5
    np.testing.assert_array_equal(np.concatenate([split.x_train, split.x_held]), bundle.x_train)   # training data only
    assert split.mask_held.sum(1).min() > 0
