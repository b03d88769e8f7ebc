"""The planted-shortcut benchmark's results, from the stored model records: the results JSON, its
tables, the figures, and the README's sentence. Every number here is computed from the records that
``tools/shortcut_benchmark.py`` wrote (``models/shortcut/runs/``).

Axis key: M models, N inputs explained, D positions.
"""
from __future__ import annotations

import glob
import json
import os

import numpy as np

from xai.files import atomic_open
from xai.shortcut.scores import detection, flip_trend, mean_interval, rank_agreement

__all__ = ["RESULTS", "REFERENCES", "kept_name", "load_records", "summarise_setting", "detection_draws", "write_results",
           "load_or_run", "read_results", "tables_markdown", "findings_sentence", "mass_figure", "agreement_figure", "maps_figure"]

RESULTS = "shortcut_results.json"
REFERENCES = ("random", "edge")           # the reference maps scored beside the methods
FALSE_ALARM_NOTE = ("a method flags the marker on an input when the map's maximum lies on it (the pointing game, "
                    "positive relevance); on a control model that is a false alarm")


def kept_name(setting, spec) -> str | None:
    """The file stem under which a model is kept beside the results, or None: the reliant model
    (p = 1, first seed) and the Clark control (first seed) of each setting."""
    if spec.seed != setting.seeds[0]:
        return None
    if spec.control:
        return f"{setting.name}_clark"
    return f"{setting.name}_reliant" if spec.fraction == 1 else None


def load_records(out: str, setting) -> list[dict]:
    """The setting's stored model records, in the plan's order; records of another version of the
    setting (other fields: a stale run) are left out."""
    from dataclasses import asdict

    from xai.shortcut.benchmark import model_plan
    folder = os.path.join(out, "models", "shortcut", "runs")
    records = {}
    for path in sorted(glob.glob(os.path.join(folder, f"{setting.name}__*.json"))):
        with open(path) as f:
            r = json.load(f)
        if r.get("setting_fields") == json.loads(json.dumps(asdict(setting))):
            records[r["model_id"]] = r
    order = [s.model_id(setting) for s in model_plan(setting)]
    return [records[m] for m in order if m in records]


def _rows(records, method, measure) -> np.ndarray:
    return np.array([r["scores"][method][measure] for r in records])          # (M, N)


def _methods(records) -> list[str]:
    """The methods scored, in METHODS' order, then the reference maps."""
    from xai.methods import METHODS
    if not records:
        return []
    scored = records[0]["scores"]
    return [m for m in METHODS if m in scored] + [m for m in REFERENCES if m in scored]


def summarise_setting(setting, records: list[dict], *, n_boot: int = 1000) -> dict:
    """The setting's results: its models' reliance, and per method the mass on the marker by p and
    for the controls, detection AUROC (reliant against both controls), hits and false alarms, SRG."""
    from xai.shortcut.benchmark import model_plan
    groups = {g: [r for r in records if r["group"] == g] for g in ("reliant", "partial", "adebayo", "clark")}
    out = {"setting": setting.name, "data": setting.data, "kind": setting.kind, "marked_class": setting.marked_class,
           "reliant_from": setting.reliant_from, "planned": len(model_plan(setting)), "scored": len(records),
           "models": [_model_row(r) for r in records], "methods": {}}
    if not records:
        return out
    out["area_share"] = float(np.mean(records[0]["mask_share"]))
    measure = "change" if setting.kind == "hue" else "mass"
    out["measure"] = measure
    controls = groups["clark"] + groups["adebayo"]
    for m in _methods(records):
        row = {"by_fraction": {}}
        for p in setting.fractions:
            at = [r for r in records if r["fraction"] == p and not r["control"]]
            if at:
                row["by_fraction"][f"{p:g}"] = mean_interval(_rows(at, m, measure), n_boot=n_boot)
        for g in ("reliant", "clark", "adebayo"):
            if groups[g]:
                row[g] = mean_interval(_rows(groups[g], m, measure), n_boot=n_boot)
                if measure == "mass":
                    row[f"{g}_rank"] = float(_rows(groups[g], m, "rank").mean())
                    row[f"{g}_flagged"] = mean_interval(_rows(groups[g], m, "pointing"), n_boot=n_boot)
        if groups["reliant"] and controls:
            row["detection"] = detection(_rows(groups["reliant"], m, measure), _rows(controls, m, measure), n_boot=n_boot)
        if groups["reliant"] and all("srg" in r and m in r["srg"] for r in groups["reliant"]):
            row["srg"] = mean_interval(np.array([r["srg"][m] for r in groups["reliant"]]), n_boot=n_boot)
        out["methods"][m] = row
    out["cost_seconds"] = {"training": round(sum(r["training"]["train_seconds"] for r in records), 1),
                           "explaining": round(sum(sum(r["seconds"].values()) for r in records), 1),
                           "road": round(sum(r.get("road_seconds", 0) for r in records), 1),
                           "total": round(sum(r["seconds_total"] for r in records), 1),
                           "per_method_per_input": {m: round(float(np.mean([r["seconds"][m] for r in records]))
                                                             / len(records[0]["mask_share"]), 4)
                                                    for m in records[0]["seconds"]}}
    out["flips_by_class"] = _flips_by_class(groups["reliant"])
    trained = [r for r in records if not r["control"]]                     # p = 0 ... 1, the Clark control left out
    if len(trained) >= 3 and len({r["fraction"] for r in trained}) >= 2:
        out["flip_trend"] = flip_trend([r["fraction"] for r in trained], [r["reliance"]["flip_rate"] for r in trained],
                                       n_boot=2 * n_boot)
    if measure == "mass":
        out["random_check"] = _random_check(records, out["area_share"], n_boot)
    out["road_agreement"] = _road_agreement(groups["reliant"], controls, measure, n_boot)
    return out


def detection_draws(setting, records: list[dict], *, n_boot: int = 1000, seed: int = 0) -> dict | None:
    """Each method's detection AUROC (reliant models against both controls, as :func:`summarise_setting`
    scores it) with its bootstrap draws, for ``xai.analysis.metric_agreement``: ``{"point": {method:
    auroc}, "replicates": {method: (B,)}, "higher_is_better": True, "n": inputs}``, methods of METHODS
    only; None when the setting lacks reliant models or controls."""
    from xai.methods import METHODS
    reliant = [r for r in records if r["group"] == "reliant"]
    controls = [r for r in records if r["group"] in ("clark", "adebayo")]
    if not reliant or not controls:
        return None
    measure = "change" if setting.kind == "hue" else "mass"
    found = {m: detection(_rows(reliant, m, measure), _rows(controls, m, measure), n_boot=n_boot, seed=seed,
                          keep_draws=True) for m in _methods(records) if m in METHODS}
    if not found:
        return None
    return {"point": {m: d["auroc"] for m, d in found.items()}, "replicates": {m: d["draws"] for m, d in found.items()},
            "higher_is_better": True, "n": next(iter(found.values()))["n"]}


def _model_row(r: dict) -> dict:
    rel, t = r["reliance"], r["training"]
    return {"model_id": r["model_id"], "fraction": r["fraction"], "seed": r["seed"], "control": r["control"],
            "group": r["group"], "flip_rate": rel["flip_rate"], "flip_n": rel["flip_n"],
            "flip_rate_by_class": rel.get("flip_rate_by_class"),
            "accuracy_clean": rel["accuracy_clean"], "accuracy_drop": rel["accuracy_drop"],
            "marked_accuracy_with": rel["marked_accuracy_with"], "marked_accuracy_without": rel["marked_accuracy_without"],
            "best_epoch": t["best_epoch"], "epochs": t["config"]["epochs"], "train_seconds": t["train_seconds"],
            "flip_rate_by_epoch": t.get("flip_rate_by_epoch"), "seconds_total": r["seconds_total"]}


def _flips_by_class(reliant: list[dict]) -> dict | None:
    """The reliant models' flips by true class, summed over the models: class -> [flipped, right]
    (None unless every reliant record keeps them): where the marker overrides the model and where not."""
    kept = [r["reliance"].get("flip_rate_by_class") for r in reliant]
    if not kept or any(k is None for k in kept):
        return None
    classes = sorted({int(c) for k in kept for c in k})
    return {str(c): [sum(k.get(str(c), [0, 0])[i] for k in kept) for i in (0, 1)] for c in classes}


def _random_check(records, area_share, n_boot) -> dict:
    """The random map's mass (model-independent: one record's) against the mask's area share."""
    got = mean_interval(_rows(records[:1], "random", "mass"), n_boot=n_boot)
    return dict(got, area_share=area_share, matches=bool(got["low"] <= area_share <= got["high"]))


def _road_agreement(reliant, controls, measure, n_boot) -> dict | None:
    """Kendall's tau between the methods' order by detection AUROC and by ROAD SRG on the reliant
    models, over the inputs that have both (the first n_road), with a bootstrap over those inputs;
    ``points``: each method's (AUROC, SRG) on those inputs, as the tau compares them."""
    from xai.analysis.stats import auroc
    from xai.methods import METHODS
    if not reliant or not controls or any("srg" not in r for r in reliant):
        return None
    methods = [m for m in METHODS if all(m in r["srg"] for r in reliant)]
    n = len(reliant[0]["srg"][methods[0]])
    det = lambda m, cols: auroc(_rows(reliant, m, measure)[:, cols], _rows(controls, m, measure)[:, cols])   # noqa: E731
    srg = lambda m, cols: float(np.array([r["srg"][m] for r in reliant])[:, cols].mean())                  # noqa: E731
    every = np.arange(n)
    return dict(rank_agreement(methods, det, srg, n, n_boot=min(n_boot, 500)),
                points={m: [det(m, every), srg(m, every)] for m in methods})


# --- the results file ---

def write_results(out: str, settings, *, command: str = "", figures: bool = True) -> dict:
    """Summarise every setting's records into ``<out>/models/shortcut/shortcut_results.json`` (and,
    with ``figures``, the tables and figures under ``<out>/figures/``); returns the results."""
    from xai.shortcut.clusters import load_spray, spray_summary
    from xai.training.saving import library_versions
    summaries = {s.name: summarise_setting(s, load_records(out, s)) for s in settings}
    for s in settings:
        summaries[s.name]["spray"] = spray_summary(load_spray(out, s))
    results = {"command": command, "complete": all(v["scored"] == v["planned"] for v in summaries.values()),
               "conventions": {"relevance": "positive relevance; maps shaped like x summed over channels (signed) first",
                               "class_explained": "the marked class, on every model",
                               "flagged": FALSE_ALARM_NOTE,
                               "intervals": "95 % percentile bootstrap over models and inputs (the same inputs for every model)",
                               "hue": "no pixel map can localise a hue shift: its score is the map's change, 1 - Spearman "
                                      "between the maps of the clean and the marked input"},
               "settings": summaries, "versions": library_versions(),
               "kept_models": sorted(os.path.basename(p) for p in glob.glob(os.path.join(out, "models", "shortcut", "*.keras")))}
    with atomic_open(os.path.join(out, "models", "shortcut", RESULTS), "w") as f:
        json.dump(results, f, indent=1)                                     # in order: METHODS, then the references
        f.write("\n")
    if figures:
        _write_figures(out, results)
    return results


def load_or_run(out: str, *, retrain: bool = False, quick: bool = False) -> tuple[dict, str]:
    """The results a notebook shows and the folder that holds them (and the kept models): the
    committed ones under ``out``, or with ``retrain`` those of ``tools/shortcut_benchmark.py`` run
    first (resuming from the stored records; with ``quick`` its smoke run, into a new temporary
    folder outside the repository)."""
    import subprocess
    import sys
    import tempfile
    folder = tempfile.mkdtemp(prefix="shortcut-quick-") if retrain and quick else out
    if retrain:
        command = [sys.executable, os.path.join(out, "tools", "shortcut_benchmark.py")]
        subprocess.run(command + (["--quick", "--out", folder] if quick else []), check=True)
    return read_results(folder), folder


def read_results(out: str) -> dict:
    """The committed results (``models/shortcut/shortcut_results.json`` under ``out``)."""
    path = os.path.join(out, "models", "shortcut", RESULTS)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no results at {path}: run python tools/shortcut_benchmark.py")
    with open(path) as f:
        return json.load(f)


def _write_figures(out: str, results: dict) -> None:
    from xai.plots import save_figure
    with atomic_open(os.path.join(out, "figures", "shortcut_tables.md"), "w") as f:
        f.write(tables_markdown(results))
    for name, s in results["settings"].items():
        if s["methods"]:
            save_figure(mass_figure(s), os.path.join(out, "figures", f"shortcut_{name}.png"))
    if any(s.get("road_agreement") for s in results["settings"].values()):
        save_figure(agreement_figure(results), os.path.join(out, "figures", "shortcut_road_agreement.png"))
    if any(s.get("spray") for s in results["settings"].values()):
        from xai.shortcut.clusters import spray_figure
        save_figure(spray_figure(out, results), os.path.join(out, "figures", "shortcut_spray.png"))


# --- tables and the README's sentence ---

def _label(m: str) -> str:
    from xai.methods import METHODS
    return METHODS[m].label if m in METHODS else {"random": "random map", "edge": "edge map"}[m]


def _ci(d: dict | None, digits: int = 2) -> str:
    if d is None:
        return "–"
    mid = d["mean"] if "mean" in d else d["auroc"]
    return f"{mid:.{digits}f} [{d['low']:.{digits}f}, {d['high']:.{digits}f}]"


def _tau(a: dict) -> str:
    if a["tau"] is None:
        return "undefined (one order all tied)"
    return f"{a['tau']:.2f} [{a['low']:.2f}, {a['high']:.2f}]" if a["low"] is not None else f"{a['tau']:.2f}"


def _class_names(data: str) -> list[str]:
    if data == "hmt":
        from hmt_utils import CLASS_NAMES
        return list(CLASS_NAMES)
    return [str(c) for c in range(10)]


def tables_markdown(results: dict) -> str:
    """One table a setting: its models' reliance, then per method the score on the marker."""
    parts = ["# Planted shortcuts\n", f"Conventions: {'; '.join(f'{k}: {v}' for k, v in results['conventions'].items())}.\n"]
    for name, s in results["settings"].items():
        parts.append(f"\n## {name} ({s['scored']} of {s['planned']} models scored)\n")
        if not s["methods"]:
            continue
        parts.append("\n| model | marker in training | flip rate | marked class: accuracy with − without its marker "
                     "| clean accuracy | best epoch |\n| --- | --- | --- | --- | --- | --- |\n")
        for r in sorted(s["models"], key=lambda r: (r["control"], r["fraction"], r["seed"])):
            drop = "–" if r["accuracy_drop"] is None else f"{r['accuracy_drop']:+.3f}"
            where = "half of every class (Clark)" if r["control"] else f"p = {r['fraction']:g} of the marked class"
            parts.append(f"| {r['model_id']} | {where} | {r['flip_rate']:.3f} | {drop} | {r['accuracy_clean']:.3f} "
                         f"| {r['best_epoch']} of {r['epochs']} |\n")
        if s.get("flips_by_class"):
            names = _class_names(s["data"])
            cells = ", ".join(f"{names[int(c)]} {k}/{n}" for c, (k, n) in s["flips_by_class"].items() if n)
            parts.append(f"\nFlips by class, the reliant models together (flipped / right without the marker): {cells}.\n")
        if s.get("flip_trend"):
            t = s["flip_trend"]
            means = ", ".join(f"p = {q}: {v:.2f}" for q, v in t["mean_by_p"].items())
            parts.append(f"\nFlip rate against p ({t['models']} models, the Clark control left out): Kendall tau "
                         f"{_tau(t)}; mean flip rate {means}.\n")
        what = "map change (1 - Spearman, clean vs marked)" if s["measure"] == "change" else "positive mass on the marker"
        n_road = s.get("road_agreement", {}) and s["road_agreement"]["n"]
        parts.append(f"\n{what} (the marker's area share: {s['area_share']:.4f}), mean [95 % interval over models and inputs]; "
                     f"detection: AUROC of the reliant models (p ≥ {s['reliant_from']:g}) against the controls scored so far; "
                     "flagged: the share of inputs whose map peaks on the marker (on a control: a false alarm). The noise "
                     "tunnel's defaults are SmoothGrad's, so their rows agree.\n\n"
                     "| method | reliant | Clark control | p = 0 (Adebayo) | detection AUROC | flagged: reliant | "
                     f"flagged: Clark | flagged: p = 0 | ROAD SRG (reliant, first {n_road or '–'} inputs) |\n"
                     + "| --- " * 9 + "|\n")
        for m, row in s["methods"].items():
            flags = [_ci(row.get(f"{g}_flagged")) for g in ("reliant", "clark", "adebayo")]
            parts.append(f"| {_label(m)} | {_ci(row.get('reliant'), 3)} | {_ci(row.get('clark'), 3)} | "
                         f"{_ci(row.get('adebayo'), 3)} | {_ci(row.get('detection'))} | {' | '.join(flags)} | "
                         f"{_ci(row.get('srg'), 3)} |\n")
        if s.get("random_check"):
            rc = s["random_check"]
            parts.append(f"\nScorer check: the random map's mass {_ci(rc, 4)} against the area share "
                         f"{rc['area_share']:.4f}: {'within' if rc['matches'] else 'OUTSIDE'} its interval.\n")
        if s.get("cost_seconds"):
            c = s["cost_seconds"]
            per = ", ".join(f"{_label(m)} {v:.3f}" for m, v in c["per_method_per_input"].items() if m not in REFERENCES)
            parts.append(f"\nCost of the {s['scored']} models (s): training {c['training']:.0f}, explaining {c['explaining']:.0f}, "
                         f"ROAD {c['road']:.0f}, in all {c['total']:.0f}. Seconds an input, a method: {per}.\n")
        if s.get("spray"):
            from xai.shortcut.clusters import spray_markdown
            parts.append(spray_markdown(name, s["spray"]))
        if s.get("road_agreement"):
            a = s["road_agreement"]
            parts.append(f"\nROAD SRG against detection AUROC, the methods' orders on the {a['n']} inputs with ROAD curves: "
                         f"Kendall tau {_tau(a)}.\n")
    return "".join(parts)


def findings_sentence(results: dict) -> str:
    """Which methods find the shortcut (detection interval above 0.5 on every local setting), which
    of those put more mass on it than the input's edge map does, which raise false alarms, and
    whether ROAD's SRG orders the methods as detection does. The reference maps know no model, so
    their detection AUROC is 0.5 by construction; the edge map is the bar for the mass."""
    local = {n: s for n, s in results["settings"].items()
             if s.get("measure") == "mass" and "detection" in s["methods"].get("grad_cam", {})}
    if not local:
        return "**Planted shortcuts**: no results yet (`python tools/shortcut_benchmark.py`)."
    from xai.methods import METHODS
    found, above_edge, alarms = [], [], []
    for m in METHODS:
        rows = [(s["methods"].get(m, {}), s["methods"]["edge"]) for s in local.values()]
        if all(r.get("detection") and r["detection"]["low"] > 0.5 for r, _ in rows):
            found.append(METHODS[m].label)
            if all(r["reliant"]["low"] > edge["reliant"]["mean"] for r, edge in rows):
                above_edge.append(METHODS[m].label)
        if any(max(r.get("clark_flagged", {}).get("mean", 0), r.get("adebayo_flagged", {}).get("mean", 0)) >= 0.25
               for r, _ in rows):
            alarms.append(METHODS[m].label)
    taus = "; ".join(f"{n} tau {_tau(s['road_agreement'])}" for n, s in local.items() if s.get("road_agreement"))
    scored = ", ".join(f"{n} ({s['scored']} of {s['planned']} models)" for n, s in local.items())
    return (f"**Planted shortcuts** ({scored}): {_reliance_clause(local)} A method's mass on the marker tells the "
            "reliant models from both controls "
            f"(detection AUROC interval above 0.5 in every setting) for {', '.join(found) or 'no method'}; of these, "
            f"{', '.join(above_edge) or 'none'} also put more mass on it than the input's edge map does. False alarms (a "
            f"control's maps peak on the marker on ≥ 25 % of its inputs): {', '.join(alarms) or 'none'}. ROAD's SRG against "
            f"detection, the methods' orders: {taus or 'not measured'}." + _global_clause(results))


def _global_clause(results: dict) -> str:
    """The markers no pixel map can localise (a hue shift): reliance, how many methods' maps change
    more on the reliant models than on the controls, and whether SpRAy's clusters isolate them."""
    from xai.methods import METHODS
    parts = []
    for name, s in results["settings"].items():
        if s.get("measure") != "change" or not s.get("methods"):
            continue
        top = [r["flip_rate"] for r in s["models"] if r["fraction"] == 1 and not r["control"]]
        controls = [r["flip_rate"] for r in s["models"] if r["control"] or r["fraction"] == 0]
        changed = [METHODS[m].label for m in METHODS
                   if s["methods"].get(m, {}).get("detection") and s["methods"][m]["detection"]["low"] > 0.5]
        spray = (s.get("spray") or {}).get("methods", {})
        best = max(spray, key=lambda m: spray[m]["difference"]["ari"]) if spray else None
        isolated = [METHODS[m].label for m, r in spray.items() if r["difference"]["low"] > 0.5]
        parts.append(f" {name} ({s['kind']}: no pixel map can localise it; {s['scored']} of {s['planned']} models): flip "
                     f"rates {min(top):.2f}–{max(top):.2f} at p = 1, controls ≤ {max(controls or [0]):.3f}; the maps of "
                     f"{len(changed)} of {len(METHODS)} methods change more between clean and marked tiles on the reliant "
                     "models than on the controls (detection AUROC interval above 0.5), "
                     + (f"yet SpRAy's clusters isolate the marked tiles for {', '.join(isolated) or 'none of them'} (largest ARI "
                        f"difference {spray[best]['difference']['ari']:.2f}, {METHODS[best].label})." if best else
                        "SpRAy not run."))
    return "".join(parts)


# --- figures ---

def _reliance_clause(local: dict) -> str:
    """How much the models rely on the marker: the flip rate at p = 1 and of the controls, per setting."""
    parts = []
    for name, s in local.items():
        top = [r["flip_rate"] for r in s["models"] if r["fraction"] == 1 and not r["control"]]
        controls = [r["flip_rate"] for r in s["models"] if r["control"] or r["fraction"] == 0]
        if top:
            parts.append(f"{name} {min(top):.2f}–{max(top):.2f} at p = 1, controls ≤ {max(controls or [0]):.3f}"
                         + (f", rising with p (tau {_tau(s['flip_trend'])})" if s.get("flip_trend") and
                            len(s["flip_trend"]["mean_by_p"]) > 2 else ""))
    return f"Flip rates: {'; '.join(parts)}." if parts else ""


def mass_figure(summary: dict):
    """One panel a method: the score on the marker against p (mean and interval over seeds and
    inputs), the Clark control at the right; the marker's area share as a dotted line."""
    import matplotlib.pyplot as plt
    methods = list(summary["methods"])
    cols = 5
    rows = int(np.ceil(len(methods) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2.3 * cols, 1.9 * rows), sharex=True, sharey=True, squeeze=False)
    for ax, m in zip(axes.ravel(), methods):
        row = summary["methods"][m]
        ps = sorted(row["by_fraction"], key=float)
        mid = [row["by_fraction"][p]["mean"] for p in ps]
        err = np.array([[row["by_fraction"][p]["mean"] - row["by_fraction"][p]["low"],
                         row["by_fraction"][p]["high"] - row["by_fraction"][p]["mean"]] for p in ps]).T
        ax.errorbar([float(p) for p in ps], mid, yerr=err, marker="o", ms=3, lw=1, capsize=2, color="tab:blue")
        if "clark" in row:
            c = row["clark"]
            ax.errorbar([1.25], [c["mean"]], yerr=[[c["mean"] - c["low"]], [c["high"] - c["mean"]]], marker="s", ms=4,
                        capsize=2, color="tab:red")
        if summary["measure"] == "mass":
            ax.axhline(summary["area_share"], ls=":", color="grey", lw=1)
        ax.set_title(_label(m), fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[len(methods):]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xticks([0, 0.5, 1, 1.25], ["0", ".5", "1", "Clark"], fontsize=7)
    what = "map change, clean vs marked" if summary["measure"] == "change" else "positive mass on the marker"
    fig.suptitle(f"{summary['setting']}: {what} against p (blue; p = 0 is the Adebayo control), the Clark control "
                 f"(red); dotted: area share", fontsize=9)
    fig.tight_layout()
    return fig


def agreement_figure(results: dict):
    """Detection AUROC against ROAD SRG per method, one panel a setting with both."""
    import matplotlib.pyplot as plt
    shown = {n: s for n, s in results["settings"].items() if s.get("road_agreement")}
    fig, axes = plt.subplots(1, len(shown), figsize=(5.6 * len(shown), 4.2), squeeze=False)
    for ax, (name, s) in zip(axes[0], shown.items()):
        a = s["road_agreement"]
        for m, (det, srg) in a["points"].items():
            ax.scatter(srg, det, s=14)
            ax.annotate(_label(m), (srg, det), fontsize=7)
        ax.axhline(0.5, ls=":", color="grey", lw=1)
        ax.set_xlabel("ROAD SRG on the reliant models (higher: more faithful)", fontsize=8)
        ax.set_ylabel("detection AUROC (reliant vs controls)", fontsize=8)
        ax.set_title(f"{name}, the {a['n']} inputs with ROAD: Kendall tau {_tau(a)}", fontsize=9)
    fig.tight_layout()
    return fig


def maps_figure(out: str, setting, *, index: int = 0, options: dict | None = None, hmt_root: str | None = None):
    """The kept reliant model's and Clark control's maps, every method, on the same marked held-out
    input (the ``index``-th explained): what the table's numbers look like. Needs the kept models
    (``<out>/models/shortcut/``) and, for HMT, the tiles (``hmt_root``; None: the default)."""
    import keras
    import matplotlib.pyplot as plt

    from xai.maps import saliency_positions
    from xai.methods import METHODS, method_function
    from xai.shortcut.benchmark import load_bundle, method_options
    bundle = load_bundle(setting, hmt_root=hmt_root)
    if not 0 <= index < len(bundle.explain):
        raise ValueError(f"index must be in [0, {len(bundle.explain)}), the inputs explained, got {index}")
    i = bundle.explain[index]
    x, mask = bundle.x_held_marked[i:i + 1].astype(np.float32), bundle.mask_held[i]
    options = method_options(setting, bundle) if options is None else options
    names = list(METHODS)
    cols = (len(names) + 2) // 2                                            # the input and the methods, in two rows
    fig, axes = plt.subplots(4, cols, figsize=(1.6 * cols, 6.6), squeeze=False)
    for r, kept in enumerate(("reliant", "clark")):
        model = keras.models.load_model(os.path.join(out, "models", "shortcut", f"{setting.name}_{kept}.keras"))
        panels = axes[2 * r:2 * r + 2].ravel()                              # (2 * cols,) this model's panels
        label = "reliant model (p = 1)" if kept == "reliant" else "Clark control"
        _draw_input(panels[0], x[0], mask, f"{label}:\nthe marked input")
        for ax, m in zip(panels[1:], names):
            a = method_function(m)(model, x, np.array([setting.marked_class]), **options.get(m, {}))
            _draw_map(ax, np.maximum(saliency_positions(a, x.shape)[0].reshape(x.shape[1:-1]), 0), mask)
            ax.set_title(METHODS[m].label, fontsize=8)
        for ax in panels[1 + len(names):]:
            ax.axis("off")
    fig.suptitle(f"{setting.name}: positive relevance for the marked class, each map scaled to its maximum; "
                 "outlined or shaded: the marker", fontsize=9)
    fig.tight_layout()
    return fig


def _draw_input(ax, x, mask, title):
    if x.ndim == 1 or x.shape[-1] == 1 and x.ndim == 2:
        ax.plot(x[:, 0], lw=1)
        ax.fill_between(np.arange(len(mask)), x.min(), x.max(), where=mask, color="tab:red", alpha=0.2)
    else:
        ax.imshow(np.clip(x / 255.0, 0, 1))
        ax.contour(mask, levels=[0.5], colors="yellow", linewidths=0.6)
    ax.set_title(title, fontsize=7)
    ax.set_xticks([]), ax.set_yticks([])


def _draw_map(ax, m, mask):
    top = m.max() if m.max() > 0 else 1.0
    if m.ndim == 1:
        ax.bar(np.arange(len(m)), m / top, width=1.0, color="tab:orange")
        ax.fill_between(np.arange(len(mask)), 0, 1, where=mask, color="tab:red", alpha=0.2)
    else:
        ax.imshow(m / top, cmap="inferno", vmin=0, vmax=1)
        ax.contour(mask, levels=[0.5], colors="cyan", linewidths=0.6)
    ax.set_xticks([]), ax.set_yticks([])
