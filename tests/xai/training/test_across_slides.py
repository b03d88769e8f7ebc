"""xai.training.across_slides: the table of HMT across slides from the committed records."""
import copy
import json

import pytest

from tests.conftest import repo_path
from xai.training.across_slides import across_slides_markdown, across_slides_rows


def _record(name):
    with open(repo_path("models", name)) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def records():
    cv = _record("hmt_slide_cv.json")
    if "summary" not in cv:
        pytest.skip("models/hmt_slide_cv.json is being rewritten by a cross-validation in progress")
    return cv, _record("hmt_colour_baseline.json"), _record("hmt_stain_ablation.json")


def test_the_table_takes_every_number_from_its_record(records):
    cv, colour, ablation = records
    rows = across_slides_rows(cv, colour, ablation)
    course = rows[0]
    assert course["measurement"].startswith("CNN, course split") and course["value"] == cv["course_split"]["test_accuracy"]
    assert f"{cv['course_split']['epochs']} epochs" in course["measurement"]
    held = next(r for r in rows if r["measurement"].startswith("CNN, whole slides held out"))
    assert held["value"] == cv["summary"]["pooled"]["accuracy"] and held["interval_over"] == "slides resampled"
    assert held["interval95"] == cv["summary"]["pooled"]["slide_bootstrap95"]
    without = rows[rows.index(held) + 1]
    assert without["value"] == cv["summary"]["pooled_without_confined_classes"]["accuracy"]
    assert all(f"`{c}`" in without["measurement"] for c in cv["summary"]["confined_classes"])
    assert next(r for r in rows if r["measurement"] == "colour alone, course split")["value"] == colour["course_split"]["accuracy"]
    recipes = [r for r in rows if r["measurement"].startswith("recipe ")]
    assert recipes[0]["measurement"].startswith(f"recipe {ablation['baseline']} (the ablation's baseline)")
    for r in recipes[1:]:                                   # the chosen (or best) recipe, paired against the baseline
        assert r["minus_baseline"] == pytest.approx(r["value"] - recipes[0]["value"])
        chosen = next(e for e in ablation["schedules"].values() if "table" in e).get("choice", {}).get("chosen")
        assert ("optimistic" in r["measurement"]) == (chosen is None)
    probes = [r for r in rows if r["measurement"].startswith("slide told")]
    assert len(probes) == sum("probe_accuracy" in p for p in cv["probe"].values())
    assert all(p["minus_class_alone"] == pytest.approx(p["value"] - float(p["measurement"].split("class alone: ")[1][:4]),
                                                       abs=0.006) for p in probes)
    assert all("--report-only" not in r["command"] and "--max-minutes" not in r["command"] for r in rows)
    text = across_slides_markdown(rows)
    assert text.count("\n") == len(rows) + 1 and f"{held['value']:.3f}" in text and "against the class alone" in text


def test_records_not_written_yet_leave_their_rows_out_and_wrong_records_are_refused(records):
    cv, colour, ablation = records
    rows = across_slides_rows(cv)
    assert not any(r["measurement"].startswith(("colour", "recipe")) for r in rows)
    assert across_slides_rows(cv, ablation=dict(ablation, schedules={})) == rows      # an ablation without a table yet
    unscored = copy.deepcopy(cv)
    unscored["course_split"]["test_accuracy"] = None                         # no committed model's record beside it
    assert not across_slides_rows(unscored)[0]["measurement"].startswith("CNN, course split")
    with pytest.raises(ValueError, match="complete record"):
        across_slides_rows({"folds": []})
    with pytest.raises(ValueError, match="colour must be a record"):
        across_slides_rows(cv, colour={})
    with pytest.raises(ValueError, match="other folds of slides"):
        across_slides_rows(cv, ablation=dict(ablation, folds_of_slides=ablation["folds_of_slides"][::-1]))
    with pytest.raises(ValueError, match="no rows"):
        across_slides_markdown([])
