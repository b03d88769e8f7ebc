"""xai/shortcut/benchmark.py: settings refuse what cannot run, the plan puts whole seeds first, the
clean model is shared by the marker kinds, the training set carries the marker where the spec says,
and a record's key changes with anything its numbers depend on."""
from dataclasses import replace

import numpy as np
import pytest

import xai.shortcut.markers as markers
from xai.shortcut import benchmark as sb


@pytest.mark.parametrize("fields, match", [
    ({"data": "cifar"}, "data"), ({"kind": "hue"}, "kind"), ({"fractions": (0.2, 1.0)}, "include 0"),
    ({"fractions": (0.0, 0.5)}, "reliant"), ({"n_road": 100}, "n_road"),
])
def test_a_setting_that_cannot_run_is_refused_by_name(fields, match):
    with pytest.raises(ValueError, match=match):
        replace(sb.SETTINGS["mnist1d_local"], **fields)


def test_the_plan_puts_whole_seeds_of_reliant_clark_and_clean_models_first():
    setting = sb.SETTINGS["mnist1d_local"]
    plan = sb.model_plan(setting)
    first = [s.group(setting) for s in plan[:3 * len(setting.seeds)]]
    assert first == ["reliant", "clark", "adebayo"] * len(setting.seeds)
    assert len({s.model_id(setting) for s in plan}) == len(plan)


def _bundle(setting):
    return sb.load_bundle(replace(setting, **sb.QUICK))


def test_the_training_set_carries_the_marker_on_the_specs_share_and_nowhere_else():
    setting = replace(sb.SETTINGS["mnist1d_local"], **sb.QUICK)
    bundle = sb.load_bundle(setting)
    x, chosen = sb.marked_training_set(setting, sb.ModelSpec(1.0, 0), bundle)
    assert set(bundle.y_train[chosen]) == {setting.marked_class} and chosen.sum() == np.sum(bundle.y_train == 3)
    np.testing.assert_array_equal(x[~chosen], bundle.x_train[~chosen])
    assert (x[chosen] != bundle.x_train[chosen]).any(axis=(1, 2)).all()
    _, control = sb.marked_training_set(setting, sb.ModelSpec(0.5, 0, control=True), bundle)
    assert len(set(bundle.y_train[control])) == len(set(bundle.y_train))


def test_model_keys_share_the_clean_model_and_change_with_the_marker(monkeypatch):
    setting = replace(sb.SETTINGS["mnist1d_local"], **sb.QUICK)
    bundle = sb.load_bundle(setting)
    clean, reliant = sb.ModelSpec(0.0, 0), sb.ModelSpec(1.0, 0)
    before = sb.model_key(setting, clean, bundle), sb.model_key(setting, reliant, bundle), sb.resume_key(setting, reliant, bundle)
    assert sb.model_key(replace(setting, marked_class=4), clean, bundle) == before[0]       # no marker, no class
    assert sb.model_key(replace(setting, marked_class=4), reliant, bundle) != before[1]
    monkeypatch.setitem(markers.DEFAULT_STRENGTH, ("local", 3), 9.0)
    assert sb.model_key(setting, clean, bundle) == before[0]
    assert sb.model_key(setting, reliant, bundle) != before[1] and sb.resume_key(setting, reliant, bundle) != before[2]
