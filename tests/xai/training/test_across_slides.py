"""xai.training.across_slides: the table of HMT across slides from the committed records."""
import json

import pytest

from tests.conftest import repo_path
from xai.training.across_slides import across_slides_markdown, across_slides_rows


def _record(name):
    with open(repo_path("models", name)) as f:
        return json.load(f)


def test_the_table_takes_every_number_from_its_record():
    cv, colour, ablation = (_record(n) for n in ("hmt_slide_cv.json", "hmt_colour_baseline.json", "hmt_stain_ablation.json"))
    rows = across_slides_rows(cv, colour, ablation)
    by_name = {r["measurement"].split(" (")[0]: r for r in rows}
    assert by_name["CNN, course split"]["value"] == cv["course_split"]["test_accuracy"]
    held = next(r for r in rows if r["measurement"].startswith("CNN, whole slides held out"))
    assert held["value"] == cv["summary"]["pooled"]["accuracy"] and held["interval_over"] == "slides resampled"
    assert held["interval95"] == cv["summary"]["pooled"]["slide_bootstrap95"]
    assert by_name["colour alone, course split"]["value"] == colour["course_split"]["accuracy"]
    recipes = [r for r in rows if r["measurement"].startswith("recipe ")]
    assert recipes[0]["measurement"].startswith(f"recipe {ablation['baseline']} (before)") and len(recipes) == 2
    assert recipes[1]["minus_before"] == pytest.approx(recipes[1]["value"] - recipes[0]["value"])
    probes = [r for r in rows if r["measurement"].startswith("slide told")]
    assert len(probes) == sum("probe_accuracy" in p for p in cv["probe"].values())
    assert all("--report-only" not in r["command"] and "--max-minutes" not in r["command"] for r in rows)
    text = across_slides_markdown(rows)
    assert text.count("\n") == len(rows) + 1 and f"{held['value']:.3f}" in text


def test_records_not_written_yet_leave_their_rows_out_and_an_incomplete_cv_is_refused():
    cv = _record("hmt_slide_cv.json")
    rows = across_slides_rows(cv)
    assert not any(r["measurement"].startswith(("colour", "recipe")) for r in rows)
    assert across_slides_rows(cv, ablation={"schedules": {}}) == rows          # an ablation without a table yet
    with pytest.raises(ValueError, match="complete record"):
        across_slides_rows({"folds": []})
    with pytest.raises(ValueError, match="no rows"):
        across_slides_markdown([])
