"""tools/hmt_trial.py: the recipe fields of a trial are parsed to the config's types, and bad ones
refused by name."""
import importlib.util

import pytest

import hmt_utils as hmt
from tests.conftest import repo_path


def test_trial_tool_parses_recipe_fields():
    spec = importlib.util.spec_from_file_location("hmt_trial", repo_path("tools", "hmt_trial.py"))
    trial = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(trial)
    defaults = hmt.TrainConfig()
    fields = trial.parse_fields(["ema_decay=0.998", "stem_width=16", "activation=relu", "weight_decay=0"], defaults)
    assert fields == {"ema_decay": 0.998, "stem_width": 16, "activation": "relu", "weight_decay": 0.0}
    assert type(fields["weight_decay"]) is float
    for bad, why in ((["stem_width"], "key=value"), (["no_such_field=1"], "unknown field"),
                     (["epochs=20.0"], "takes a int"), (["width=1", "width=2"], "twice"),
                     (["activation={1}"], "takes a str")):
        with pytest.raises(SystemExit, match=why):
            trial.parse_fields(bad, defaults)
