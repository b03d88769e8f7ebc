"""xai/shortcut/report.py: on records with a known answer the summary finds the method that puts its
mass on the marker only in reliant models, flags the one that raises false alarms, checks the random
map against the area share, and leaves out records of another version of the setting."""
import json
import os
from dataclasses import asdict, replace

import numpy as np

from xai.methods import METHODS
from xai.shortcut import benchmark as sb
from xai.shortcut import report

N = 40


def _record(setting, spec, rng):
    group = spec.group(setting)
    scores = {}
    for m in list(METHODS) + list(report.REFERENCES):
        if m == "grad_cam":                    # finds the marker only where the model relies on it
            mass = rng.uniform(0.6, 0.9, N) if group == "reliant" else rng.uniform(0.0, 0.2, N)
        elif m == "saliency":                  # always on the marker: a false alarm on the controls
            mass = rng.uniform(0.6, 0.9, N)
        elif m == "random":
            mass = rng.normal(0.15, 0.02, N)
        else:
            mass = rng.uniform(0.1, 0.3, N)
        pointing = (mass > 0.5).astype(float)
        scores[m] = {"mass": mass.tolist(), "rank": mass.tolist(), "pointing": pointing.tolist()}
    record = {"model_id": spec.model_id(setting), "fraction": spec.fraction, "seed": spec.seed, "control": spec.control,
              "group": group, "scores": scores, "seconds": {m: 1.0 for m in METHODS}, "mask_share": [0.15] * N,
              "setting_fields": json.loads(json.dumps(asdict(setting))), "seconds_total": 1.0,
              "reliance": {"flip_rate": 0.9 if group == "reliant" else 0.0, "flip_n": 10, "accuracy_clean": 0.9,
                           "accuracy_drop": 0.5, "marked_accuracy_with": 1.0, "marked_accuracy_without": 0.5,
                           "flip_rate_by_class": {"1": [9, 10], "2": [0, 5]} if group == "reliant" else {"1": [0, 10]}},
              "training": {"best_epoch": 1, "config": {"epochs": 1}, "train_seconds": 1.0}}
    if group == "reliant":
        record["srg"] = {m: rng.normal(0.1 * i, 0.01, 8).tolist() for i, m in enumerate(list(METHODS) + ["edge"])}
    return record


def _write(tmp_path, setting, records):
    folder = tmp_path / "models" / "shortcut" / "runs"
    folder.mkdir(parents=True, exist_ok=True)
    for r in records:
        (folder / f"{setting.name}__{r['model_id']}.json").write_text(json.dumps(r))


def test_the_summary_finds_the_faithful_method_flags_the_false_alarm_and_checks_the_scorer(tmp_path):
    setting = replace(sb.SETTINGS["mnist1d_local"], fractions=(0.0, 1.0))
    rng = np.random.default_rng(0)
    _write(tmp_path, setting, [_record(setting, spec, rng) for spec in sb.model_plan(setting)])
    s = report.summarise_setting(setting, report.load_records(str(tmp_path), setting), n_boot=200)
    assert s["scored"] == s["planned"] == 9
    assert s["methods"]["grad_cam"]["detection"]["low"] > 0.9
    assert 0.3 < s["methods"]["saliency"]["detection"]["auroc"] < 0.7       # on the marker everywhere: detects nothing
    assert s["methods"]["saliency"]["clark_flagged"]["mean"] == 1.0
    assert s["random_check"]["matches"]
    assert s["flips_by_class"] == {"1": [27, 30], "2": [0, 15]}              # three reliant seeds summed
    assert s["flip_trend"]["mean_by_p"] == {"0": 0.0, "1": 0.9} and s["flip_trend"]["rising"]
    assert s["flip_trend"]["models"] == 6                                   # p = 0 and p = 1, not the Clark control
    tables = report.tables_markdown({"conventions": {}, "settings": {setting.name: s}})
    assert "1 27/30, 2 0/15" in tables and "mean flip rate p = 0: 0.00, p = 1: 0.90" in tables
    assert list(s["methods"])[:2] == ["grad_cam", "grad_cam_plus_plus"] and list(s["methods"])[-2:] == ["random", "edge"]
    sentence = report.findings_sentence({"settings": {setting.name: s}})
    found, alarms = sentence.split("False alarms")
    assert "in every setting) for Grad-CAM;" in found                       # Grad-CAM alone
    assert ": Gradient." in alarms                                          # the gradient alone


def test_records_of_another_version_of_the_setting_are_left_out(tmp_path):
    setting = replace(sb.SETTINGS["mnist1d_local"], fractions=(0.0, 1.0))
    rng = np.random.default_rng(1)
    records = [_record(setting, spec, rng) for spec in sb.model_plan(setting)]
    records[0]["setting_fields"]["epochs"] = 99                          # a stale run
    _write(tmp_path, setting, records)
    assert len(report.load_records(str(tmp_path), setting)) == len(records) - 1
    assert os.path.isdir(tmp_path / "models")


def test_the_sentence_reports_a_marker_no_map_can_localise_with_its_spray():
    """A hue shift: the sentence names the setting, its reliance, how many methods' maps change more on the
    reliant models, and whether SpRAy isolated the marked tiles (none here: the interval reaches below 0.5)."""
    change = {"detection": {"auroc": 0.9, "low": 0.8, "high": 1.0}}
    setting = {"measure": "change", "kind": "hue", "scored": 3, "planned": 3,
               "models": [{"flip_rate": 0.3, "fraction": 1.0, "control": False},
                          {"flip_rate": 0.01, "fraction": 0.5, "control": True},
                          {"flip_rate": 0.02, "fraction": 0.0, "control": False}],
               "methods": {"grad_cam": change, "saliency": {"detection": {"auroc": 0.6, "low": 0.4, "high": 0.8}}},
               "spray": {"methods": {"grad_cam": {"difference": {"ari": 0.2, "low": 0.0, "high": 0.4}}}}}
    clause = report._global_clause({"settings": {"toy_hue": setting, "toy_local": {"measure": "mass", "methods": {}}}})
    assert clause.startswith(" toy_hue (hue: no pixel map can localise it; 3 of 3 models): flip rates 0.30–0.30")
    assert "controls ≤ 0.020" in clause and f"the maps of 1 of {len(METHODS)} methods change" in clause
    assert "isolate the marked tiles for none of them (largest ARI difference 0.20, Grad-CAM)" in clause
    assert "toy_local" not in clause
