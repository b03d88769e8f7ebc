"""What the notebook shows of the tools' records: the sanity checks three ways
(``tools/randomisation_checks.py``), GridPG (``tools/hmt_gridpg.py``) and which metrics agree
(``tools/metric_agreement.py``), as tables, figures and sentences, read from the JSON they wrote.

Axis key: M metrics, K methods.
"""
from __future__ import annotations

import json

import numpy as np

__all__ = ["read_record", "agreement_from_record", "agreement_table", "randomisation_table", "gridpg_table",
           "gridpg_figure", "current_record", "randomisation_section", "gridpg_section", "agreement_section"]


def read_record(path: str) -> dict:
    """A tool's JSON record; a missing file raises FileNotFoundError naming the tool to run."""
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError as err:
        raise FileNotFoundError(f"{path} is missing: it is written by the tool its name points to under tools/ "
                                "(see BENCHMARKS.md for its command and time)") from err


def _array(rows) -> np.ndarray:
    return np.array([[np.nan if v is None else v for v in row] for row in rows], float)


def agreement_from_record(record: dict) -> dict:
    """``xai.analysis.metric_agreement.agreement_matrix``'s result (less the statistics) from the
    tool's JSON, for :func:`xai.analysis.metric_agreement.plot_agreement`."""
    result = {"metrics": record["metrics"], "tau": _array(record["tau"]), "low": _array(record["low"]),
              "high": _array(record["high"]), "shared": np.array(record["shared"], int)}
    if "undefined_draws" in record:                                # the tool's records carry it
        result["undefined_draws"] = np.array(record["undefined_draws"], int)
    return result


def agreement_table(record: dict) -> str:
    """Markdown: every pair of metrics with a tau, most opposite first: tau, its 95 % interval, the
    verdict (alike: the interval above 0; opposite: below; undecided) and the methods they share."""
    names, tau, low, high = record["metrics"], _array(record["tau"]), _array(record["low"]), _array(record["high"])
    pairs = sorted((tau[i, j], i, j) for i in range(len(names)) for j in range(i + 1, len(names)) if np.isfinite(tau[i, j]))
    lines = ["| metric | metric | Kendall's tau [95 %] | verdict | methods |", "|---|---|---|---|---|"]
    for t, i, j in pairs:
        verdict = "alike" if low[i, j] > 0 else "opposite" if high[i, j] < 0 else "undecided"
        lines.append(f"| {names[i]} | {names[j]} | {t:+.2f} [{low[i, j]:+.2f}, {high[i, j]:+.2f}] | {verdict} | "
                     f"{record['shared'][i][j]} |")
    return "\n".join(lines)


def _cell(s: dict, n: int | None = None, digits: int = 2) -> str:
    mark = "pass" if s["passes"] else "fail"
    scored = f" (n = {s['n']})" if n is not None and s["n"] != n else ""          # examples without a value
    return f"{s['mean']:.{digits}f} [{s['low']:.{digits}f}, {s['high']:.{digits}f}] {mark}{scored}"


def randomisation_table(record: dict) -> str:
    """Markdown: a method a row; the plain cascade's correlation, eMPRT's ratio and sMPRT's
    correlation after randomising every layer, each with its 95 % interval and verdict (the
    record's thresholds), and whether the repairs disagree with the plain test."""
    t = record["thresholds"]
    lines = [f"| method | cascade ↓ (pass: below {t['correlation_below']}) | eMPRT ↑ (pass: above {t['ratio_above']}) | "
             f"sMPRT ↓ (pass: below {t['correlation_below']}) | disagrees with the cascade |", "|---|---|---|---|---|"]
    for m, s in record["summary"].items():
        differ = [name for name, test in (("eMPRT", "emprt"), ("sMPRT", "smprt")) if m in record["disagree"][test]]
        lines.append(f"| {m} | {_cell(s['cascade'])} | {_cell(s['emprt'], record.get('n'))} | {_cell(s['smprt'])} | "
                     f"{', '.join(differ) or '-'} |")
    return "\n".join(lines)


def gridpg_table(record: dict) -> str:
    """Markdown: a method a row, a column per row of the record (course tiles; held-out slides), each
    the mean share of positive relevance in the explained cell with its 95 % interval."""
    rows = record["rows"]
    methods = list(next(iter(rows.values()))["summary"])
    head = " | ".join(f"{name} ({r['n_grids']} grids; grid accuracy {r['grid_accuracy']:.2f})" for name, r in rows.items())
    lines = [f"| method | {head} |", "|---|" + "---|" * len(rows)]
    for m in methods:
        cells = []
        for r in rows.values():
            s = r["summary"].get(m)
            cells.append("-" if s is None or s["mean"] is None else
                         f"{s['mean']:.3f} [{s['interval95'][0]:.3f}, {s['interval95'][1]:.3f}]")
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + f"\n\nChance: {record['chance']:.2f} (a map spread evenly over the four cells)."


def gridpg_figure(record: dict):
    """Each method's mean share with its 95 % interval, a row of the record a colour, chance dashed."""
    import matplotlib.pyplot as plt
    rows = record["rows"]
    methods = list(next(iter(rows.values()))["summary"])
    fig, ax = plt.subplots(figsize=(8, 0.32 * len(methods) + 1.4), layout="constrained")
    for k, (name, r) in enumerate(rows.items()):
        y = np.arange(len(methods)) + 0.18 * (k - (len(rows) - 1) / 2)
        s = [r["summary"][m] for m in methods]
        mean = np.array([np.nan if v["mean"] is None else v["mean"] for v in s])
        lo = np.array([np.nan if v["interval95"][0] is None else v["interval95"][0] for v in s])
        hi = np.array([np.nan if v["interval95"][1] is None else v["interval95"][1] for v in s])
        ax.errorbar(mean, y, xerr=[mean - lo, hi - mean], fmt="o", capsize=2, label=name)
    ax.axvline(record["chance"], color="grey", ls="--", label="chance")
    ax.set_yticks(range(len(methods)), methods), ax.invert_yaxis()
    ax.set_xlabel("share of positive relevance in the explained cell (95 % interval)")
    ax.set_xlim(0, 1), ax.grid(alpha=0.3, axis="x"), ax.legend(fontsize=8, loc="lower right")
    ax.set_title("GridPG on HMT: 2 x 2 mosaics of confidently classified tiles", fontsize=10)
    return fig


# --- the notebook's sections: a record of the committed model, or a sentence saying what to run ---

def current_record(path: str, model_paths: dict[str, str], tool: str) -> tuple[dict | None, str]:
    """``(record, "")`` when the tool's record at ``path`` exists, is not a smoke run, and every model
    it names in ``model_paths`` (``{record key path: model file}``, e.g. ``{"model_sha1":
    "models/HMT.keras"}``; a key ``a.b`` reads ``record["a"]["b"]``) has the file's hash; else
    ``(None, why)``, naming ``tool``, the command to run."""
    import os

    from xai.analysis.sweep_store import file_sha1
    if not os.path.isfile(path):
        return None, f"`{path}` is not there yet: run `{tool}`."
    record = read_record(path)
    if record.get("quick"):
        return None, f"`{path}` is a --quick smoke run, not a result: run `{tool}`."
    for key, model in model_paths.items():
        value = record
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if not os.path.isfile(model) or value != file_sha1(model):
            return None, (f"`{path}` explains another `{model}` than the one here (retrained since?): run "
                          f"`{record.get('command', tool)}` again.")
    return record, ""


def randomisation_section(model_dir: str, data: str) -> str:
    """Markdown: :func:`randomisation_table` of ``models/randomisation_<data>.json`` with its sentence,
    or what to run."""
    import os
    model = os.path.join(model_dir, "MNIST1D.keras" if data == "mnist1d" else "HMT.keras")
    record, why = current_record(os.path.join(model_dir, f"randomisation_{data}.json"), {"model_sha1": model},
                                 f"python tools/randomisation_checks.py --data {data}")
    if record is None:
        return why
    name = {"mnist1d": "MNIST-1D", "hmt": "HMT"}[data]
    return (f"**{name}**, {record['n']} examples (`{record['command']}`; sMPRT: {record['smprt_samples']} noisy copies)"
            f"\n\n{randomisation_table(record)}\n\nThe three tests' rankings of the methods: "
            f"{record['agreement']['sentence']}")


def gridpg_section(model_dir: str):
    """``(markdown, figure or None)`` of ``models/hmt_gridpg.json``, or what to run."""
    import os
    path = os.path.join(model_dir, "hmt_gridpg.json")
    names = read_record(path).get("models", {}) if os.path.isfile(path) else {}
    record, why = current_record(path, {f"models.{k}": os.path.join(model_dir, "HMT.keras" if k == "committed" else k)
                                        for k in names} or {"models.committed": os.path.join(model_dir, "HMT.keras")},
                                 "python tools/hmt_gridpg.py")
    if record is None:
        return why, None
    return f"`{record['command']}`\n\n{gridpg_table(record)}", gridpg_figure(record)


def agreement_section(model_dir: str):
    """``(markdown, figure or None)`` of ``models/metric_agreement.json``: the matrix and its sentence."""
    import os

    from xai.analysis.metric_agreement import plot_agreement
    path = os.path.join(model_dir, "metric_agreement.json")
    files = {"mnist1d": "MNIST1D.keras", "hmt": "HMT.keras"}
    names = read_record(path).get("models", {}) if os.path.isfile(path) else {}
    record, why = current_record(path, {f"models.{k}": os.path.join(model_dir, files[k]) for k in names if k in files}
                                 or {"models.mnist1d": os.path.join(model_dir, "MNIST1D.keras")},
                                 "python tools/metric_agreement.py")
    if record is None:
        return why, None
    table = agreement_table(record)
    text = (f"`{record['command']}`: {record['sentence']}\n\n<details><summary>Every pair: tau, interval, verdict"
            f"</summary>\n\n{table}\n\n</details>")
    return text, plot_agreement(agreement_from_record(record))
