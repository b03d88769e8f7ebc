"""HMT across slides in one table: the CNN and colour alone on the course split and with whole slides
held out, the recipe's choice on held-out slides (the stain ablation), and the slide probe, each row
with its interval and the command that produced it. Built from the three records the tools write
(``tools/hmt_slide_cv.py``, ``tools/hmt_colour_baseline.py``, ``tools/hmt_stain_ablation.py``), so that
the README's table and ``models/hmt_slide_cv.json``'s are the same rows.
"""
from __future__ import annotations

__all__ = ["across_slides_rows", "across_slides_markdown"]

_SLIDES = "slides resampled"
_IMAGES = "source images resampled, predictions fixed"
_TILES = "Wilson, tiles independent"


def _command(command: str) -> str:
    """A tool's recorded command less the flags that do not change its results (a redraw, a time limit)."""
    words, kept, skip = command.split(), [], False
    for w in words:
        if skip:
            skip = False
        elif w == "--report-only":
            continue
        elif w == "--max-minutes":
            skip = True
        else:
            kept.append(w)
    return " ".join(kept)


def _row(what: str, value: float, interval, over: str, command: str, **extra) -> dict:
    return dict({"measurement": what, "value": float(value), "interval95": None if interval is None else
                 [float(v) for v in interval], "interval_over": None if interval is None else over, "command": command},
                **extra)


def _cv_rows(cv: dict) -> list[dict]:
    summary, course = cv["summary"], cv["course_split"]
    epochs = cv.get("epochs_override") or cv["config"]["epochs"]
    pooled, without = summary["pooled"], summary["pooled_without_confined_classes"]
    confined = ", ".join(f"`{c}` (on {len(e['slides'])} slides only)" for c, e in summary.get("confined_classes", {}).items())
    rows = []
    if course.get("test_accuracy") is not None:                       # the committed model's record beside it
        rows.append(_row(f"CNN, course split ({course['n_test']} test tiles, "
                         f"{course['test_tiles_sharing_a_source_image_with_train']} of them from source images training "
                         f"saw; {course['epochs']} epochs)", course["test_accuracy"], course.get("wilson95"), _TILES,
                         f"HMT.ipynb (its record: {course.get('model', 'models/HMT.json')})"))
    rows.append(_row(f"CNN, whole slides held out ({pooled['n']} tiles, {len(cv['folds_of_slides'])} folds, {epochs} "
                     "epochs a fold)", pooled["accuracy"], pooled["slide_bootstrap95"], _SLIDES, cv["command"]))
    if confined:
        rows.append(_row(f"the same without {confined} ({without['n']} tiles)", without["accuracy"],
                         without["slide_bootstrap95"], _SLIDES, cv["command"]))
    return rows


def _colour_rows(colour: dict) -> list[dict]:
    course, held = colour["course_split"], colour["slide_held_out"]
    return [_row("colour alone, course split", course["accuracy"], course["wilson95"], _TILES, colour["command"]),
            _row("colour alone, whole slides held out (the CNN's folds)", held["pooled"]["accuracy"],
                 held["pooled"]["slide_bootstrap95"], _SLIDES, colour["command"]),
            _row("the same without `empty`", held["pooled_without_empty"]["accuracy"],
                 held["pooled_without_empty"]["slide_bootstrap95"], _SLIDES, colour["command"])]


def _ablation_rows(ablation: dict) -> list[dict]:
    tables = {e: s for e, s in ablation["schedules"].items() if "table" in s}
    if not tables:
        return []
    epochs = min(tables, key=int)
    entry, base = tables[epochs], ablation["baseline"]
    slides = ", ".join(s[-2:] for held in entry["held_out"] for s in held)
    command = _command(ablation["command"])
    rows = [_row(f"recipe {base} (the ablation's baseline), slides {slides} held out ({epochs} epochs)",
                 entry["table"][base]["accuracy"], entry["table"][base]["image_bootstrap95"], _IMAGES, command)]
    chosen = entry.get("choice", {}).get("chosen")
    best = chosen or max((v for v in entry["variants"] if v != base), key=lambda v: entry["table"][v]["accuracy"],
                         default=None)
    if best is not None and best != base:
        row = entry["table"][best]
        how = ("chosen for every test fold, each on the other ablation folds" if chosen else
               f"the best of {len(entry['variants']) - 1} on these same slides, no choice yet: optimistic")
        rows.append(_row(f"recipe {best} ({how}), the same slides", row["accuracy"], row["image_bootstrap95"], _IMAGES,
                         command, minus_baseline=row[f"minus_{base}"],
                         minus_baseline_interval95=row[f"minus_{base}_image_bootstrap95"]))
    return rows


def _probe_rows(cv: dict) -> list[dict]:
    rows = []
    for name, probe in cv.get("probe", {}).items():
        if "probe_accuracy" not in probe:
            continue
        rows.append(_row(f"slide told from the {name}'s features (the majority slide: {probe['chance_majority']:.2f}; "
                         f"the class alone: {probe['class_only_accuracy']:.2f}; {probe['probed_tiles_from_hmt_train']} of "
                         f"{probe['n_tiles']} tiles from HMT_train)", probe["probe_accuracy"],
                         probe.get("probe_bootstrap95"), _IMAGES, cv["command"], path=probe.get("path"),
                         minus_class_alone=probe["difference"], minus_class_alone_interval95=probe["difference_bootstrap95"]))
    return rows


def _check(name: str, record, needed: tuple, cv: dict) -> None:
    if not isinstance(record, dict) or any(k not in record for k in needed):
        raise ValueError(f"{name} must be a record of its tool with {list(needed)}, got "
                         f"{sorted(record) if isinstance(record, dict) else type(record).__name__}")
    if record["folds_of_slides"] != cv["folds_of_slides"]:
        raise ValueError(f"{name} was run on other folds of slides than the cross-validation: "
                         f"{record['folds_of_slides']} against {cv['folds_of_slides']}; run it again on the same data and seed")


def across_slides_rows(cv: dict, colour: dict | None = None, ablation: dict | None = None) -> list[dict]:
    """The table's rows from the records of ``tools/hmt_slide_cv.py`` (``cv``: with its ``summary``),
    ``tools/hmt_colour_baseline.py`` (``colour``) and ``tools/hmt_stain_ablation.py`` (``ablation``);
    the last two may be None (their rows are then left out) and must be of the same folds of slides.
    Each row: ``measurement``, ``value``, ``interval95`` (or None), ``interval_over`` (what was
    resampled) and ``command``; a recipe's row also its paired difference from the ablation's
    baseline, a probe's its difference from the class alone (both with intervals)."""
    if not isinstance(cv, dict) or any(k not in cv for k in ("summary", "course_split", "folds_of_slides", "command")):
        raise ValueError("cv must be a complete record of tools/hmt_slide_cv.py (with 'summary', 'course_split', "
                         "'folds_of_slides' and 'command'); run the cross-validation first")
    if colour is not None:
        _check("colour", colour, ("course_split", "slide_held_out", "folds_of_slides", "command"), cv)
    if ablation is not None:
        _check("ablation", ablation, ("schedules", "baseline", "folds_of_slides", "command"), cv)
    return (_cv_rows(cv) + (_colour_rows(colour) if colour else []) + (_ablation_rows(ablation) if ablation else [])
            + _probe_rows(cv))


def _with_difference(value: str, difference, interval, against: str) -> str:
    lo, hi = interval if interval is not None else (float("nan"), float("nan"))
    return f"{value}; {difference:+.3f} [{lo:+.3f}, {hi:+.3f}] against {against}"


def across_slides_markdown(rows: list[dict]) -> str:
    """The rows as a Markdown table: measurement, value with its 95 % interval (and a paired difference
    where a row has one), what the interval resamples, the command."""
    if not rows:
        raise ValueError("no rows: build them with across_slides_rows")
    lines = ["| measurement | value [95 %] | interval | command |", "|---|---|---|---|"]
    for r in rows:
        value = f"{r['value']:.3f}" + ("" if r["interval95"] is None else
                                       f" [{r['interval95'][0]:.3f}, {r['interval95'][1]:.3f}]")
        if "minus_baseline" in r:
            value = _with_difference(value, r["minus_baseline"], r["minus_baseline_interval95"], "the baseline")
        if "minus_class_alone" in r:
            value = _with_difference(value, r["minus_class_alone"], r["minus_class_alone_interval95"], "the class alone")
        lines.append(f"| {r['measurement']} | {value} | {r['interval_over'] or '-'} | `{r['command']}` |")
    return "\n".join(lines)
