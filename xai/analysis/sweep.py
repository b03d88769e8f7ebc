"""Settings as an axis of the comparison: each method in several settings (IG's baseline, the noise
tunnel's sigma, RISE's masks...), each scored under several evaluation settings (ROAD's fill and the
granularity of the ranking), and, for every pair of methods, how often the ordering holds.

A claim "A beats B on SRG" holds in one cell of the grid (a setting of A, a setting of B, an
evaluation setting) when the paired t-test of the per-example differences rejects 0 after Holm's
adjustment over all the pair's cells on that metric (family-wise 5 %). :func:`robustness` counts
the cells: **robust** when A wins every cell, **setting-dependent** when A wins some and B none,
**reversed somewhere** when each wins at least one, **not resolved** when neither wins any (an
absence of evidence, not evidence of a tie). Where a method's baseline and the removal fill
share a reference (IG from a blurred tile and a blur fill; ROAD, which fills from the neighbours,
counts as a blur; a baseline of zeros, the noise tunnel from zeros and gradient x input, whose
implicit reference is 0, with a constant near 0), the cell says so (:func:`shared_reference`),
and the verdict is given again without those cells, so that a reader can see whether an
advantage comes from the metric agreeing with the method. "Robust" is demanding on purpose: the
worst setting of A against the best of B, deliberately odd baselines (IG from white) included.

Axis key: N examples; a grid cell is (setting of A, setting of B, evaluation).
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.stats import rankdata

import xai.metrics.removal as xm
from xai.analysis.stats import holm, paired_bootstrap, paired_t_p_values
from xai.core import check_value_range
from xai.methods import METHODS, method_function
from xai.methods.integrated_gradients import IG_BASELINES
from xai.metrics import METRICS

__all__ = [
    "evaluations",
    "SWEPT_METRICS",
    "METRIC_NAMES",
    "GRAINS",
    "method_variants",
    "evaluate_grid",
    "robustness",
    "robustness_table",
    "settings_table",
    "verdicts",
    "shared_reference",
    "findings",
    "completeness_by_baseline",
    "completeness_gaps",
    "completeness_table",
    "summarise_grid",
    "LEFT_OUT",
    "sweep_plan",
    "comparison_defaults",
    "run_sweep",
    "sweep_sections",
    "sections_markdown",
    "settings_maps_figure",
    "rise_setting",
]

# the metrics of xai.metrics.METRICS scored across the grid -> higher is better (SRG first: it summarises both curves)
SWEPT_METRICS = {key: m.higher_is_better for key, m in sorted(METRICS.items(), key=lambda km: km[0] != "srg") if m.swept}
GRAINS = ("pixels", "patches")


def evaluations(value_range: tuple, *, grains=GRAINS) -> dict[str, dict]:
    """The removal settings: ROAD's noisy linear imputation, a blur and a constant at the middle of
    the data's range (``value_range``: ``(lo, hi)``; grey for 0-255 tiles: a fill that no baseline
    of the sweep stands for, unless the middle is near 0), each ranking single positions
    ("pixels") and patches. ``{label: {"fill", "granularity", "reference"}}``: ``reference`` is
    the input the fill removes information towards ("blur" for the blur and for ROAD, which fills
    from the neighbours; "zeros" for a constant within a tenth of the range from 0; None
    otherwise), compared with the methods' baselines by :func:`shared_reference`."""
    lo, hi = check_value_range(value_range, needed_for="the removal settings")
    for g in grains:
        if g not in GRAINS:
            raise ValueError(f"grains must be among {GRAINS}, got {g!r}")
    middle = (lo + hi) / 2
    near_zero = abs(middle) <= 0.1 * (hi - lo)                # within a tenth of the range: what zeros remove
    fills = {"road": ("road", "blur"), "blur": ("blur", "blur"),
             f"constant {middle:.4g}": (middle, "zeros" if near_zero else None)}
    return {f"{name}, {g}": {"fill": fill, "granularity": g, "reference": ref}
            for name, (fill, ref) in fills.items() for g in grains}


def shared_reference(method_reference: str | None, evaluation: dict) -> bool:
    """Whether a method setting's reference (the input its baseline stands for: "blur", "zeros";
    None: none) and an evaluation's fill (its ``reference``, see :func:`evaluations`) remove
    information towards the same input."""
    return method_reference is not None and method_reference == evaluation.get("reference")


# Methods of METHODS that the sweep leaves out, and why; every other method is swept (a new method
# in METHODS without settings here gets its defaults, so none is left out silently).
LEFT_OUT = {
    "saliency": "the noise tunnel's rows (SmoothGrad at each σ) stand for the plain gradient",
    "smoothgrad_squared": "a variant of the SmoothGrad row's tunnel; swept through SmoothGrad's σ",
    "vargrad": "a variant of the SmoothGrad row's tunnel; swept through SmoothGrad's σ",
    "noise_tunnel": "the general form of SmoothGrad, swept as IG's tunnel settings and SmoothGrad's rows",
}


def rise_setting(n_masks: int, cell_size=None) -> str:
    """The sweep's name of a RISE setting."""
    return f"{n_masks} masks, cell {cell_size or 'default'}"


def _sweep_settings(p: dict) -> dict[str, dict[tuple[str, str], dict]]:
    """Each swept method's settings: ``{method: {(row, setting): options}}``. A row is a method as
    the tables name it (its METHODS label); expected gradients and the tunnel over IG are settings of
    the IG row (IG with a reference-set baseline, IG smoothed)."""
    label = {name: m.label for name, m in METHODS.items()}
    ig, sg = label["integrated_gradients"], label["smoothgrad"]
    common = {"seed": p["seed"], "batch_size": p["batch_size"]}
    noise = {"value_range": p["value_range"], **common}
    return {
        "integrated_gradients": {(ig, b): {"baseline": b, "steps": p["ig_steps"], "value_range": p["value_range"],
                                             "blur_sigma": p["blur_sigma"], "baseline_samples": p["uniform_samples"],
                                             **common} for b in IG_BASELINES},
        "expected_gradients": {} if p["references"] is None else {
            (ig, "expected"): {"references": p["references"], "samples": p["expected_samples"], **common}},
        "smoothgrad": {**{(ig, f"tunnel {s:g}"): {"base": "integrated_gradients", "samples": p["tunnel_samples"],
                                                     "steps": max(4, p["ig_steps"] // 4), "noise": s, **noise}
                          for s in p["ig_tunnel_sigmas"]},
                       **{(sg, f"σ {s:g}"): {"samples": p["smoothgrad_samples"], "noise": s, **noise}
                          for s in p["smoothgrad_sigmas"]}},
        "gradient_x_input": {(label["gradient_x_input"], "default"): {"batch_size": p["batch_size"]}},
        "grad_cam": {(label["grad_cam"], "default"): {}},
        "grad_cam_plus_plus": {(label["grad_cam_plus_plus"], "default"): {}},
        "score_cam": {(label["score_cam"], "default"): {"batch_size": p["batch_size"]}},
        "rise": {(label["rise"], rise_setting(m, c)): {"n_masks": m, "cell_size": c, **common}
                 for m, c in p["rise_settings"]},
        "sise": {(label["sise"], "default"): {"batch_size": p["batch_size"]}},
    }


def sweep_plan(p: dict) -> dict[tuple[str, str], tuple[str, dict]]:
    """``{(row, setting): (method, options)}`` for every method of METHODS but :data:`LEFT_OUT`: those
    without settings in :func:`_sweep_settings` run once with their defaults, in a row of their own."""
    settings = _sweep_settings(p)
    plan = {}
    for method in list(settings) + [m for m in METHODS if m not in settings]:
        if method in LEFT_OUT:
            continue
        for key, options in settings.get(method, {(METHODS[method].label, "default"): {}}).items():
            plan[key] = (method, options)
    return plan


def method_variants(model, x, classes, *, value_range: tuple, given: dict | None = None, references=None,
                    blur_sigma: float = 10.0, ig_steps: int = 32, ig_tunnel_sigmas=(0.05, 0.15), tunnel_samples: int = 10,
                    smoothgrad_sigmas=(0.05, 0.15), smoothgrad_samples: int = 50, expected_samples: int = 64,
                    rise_settings=((1000, None),), uniform_samples: int = 4, seed: int = 0,
                    batch_size: int = 128, log: Callable | None = None, rows=None) -> tuple[dict, dict]:
    """The settings swept, each method's maps in each: ``({row: {setting: maps}}, references)``.

    - "IG": baselines zeros, white (the range's top), mean, blur (``blur_sigma``), uniform
      (``uniform_samples`` draws), expected gradients from ``references`` (e.g. training examples;
      skipped when None; ``expected_samples`` draws), and the noise tunnel over IG (SmoothGrad of IG
      from zeros) at each ``ig_tunnel_sigmas`` (sigma as a share of the range; ``tunnel_samples`` draws of
      ``ig_steps`` / 4 steps, to bound the cost): the setting "zeros" is the tunnel off.
    - "SmoothGrad": the noise tunnel over the plain gradient at each ``smoothgrad_sigmas``.
    - "Gradient × input", "Grad-CAM", "Grad-CAM++", "Score-CAM", "SISE", and any method of METHODS
      not named here or in :data:`LEFT_OUT`: their defaults (the CAMs at the default layer).
    - "RISE": each ``(n_masks, cell_size)`` of ``rise_settings`` (None: RISE's default cell).

    ``given``: ``{(row, setting): maps}`` already computed for ``x`` (e.g. the comparison's
    defaults), used instead of recomputing. ``rows``: only these rows (e.g. ``["IG"]``; None: all).
    The second value, ``{(row, setting): "blur" | "zeros" | None}``, is the input each baseline
    stands for, for :func:`robustness`.
    ``value_range``: ``(lo, hi)`` of the data (never guessed)."""
    lo, hi = check_value_range(value_range, needed_for="the method settings' baselines and noise")
    for name, values in (("ig_tunnel_sigmas", ig_tunnel_sigmas), ("smoothgrad_sigmas", smoothgrad_sigmas),
                         ("rise_settings", rise_settings)):
        if len(set(values)) != len(values):
            raise ValueError(f"{name} repeats a setting: {values!r}")
    plan = sweep_plan(dict(value_range=(lo, hi), references=references, blur_sigma=blur_sigma, ig_steps=ig_steps,
                           ig_tunnel_sigmas=ig_tunnel_sigmas, tunnel_samples=tunnel_samples, smoothgrad_sigmas=smoothgrad_sigmas,
                           smoothgrad_samples=smoothgrad_samples, expected_samples=expected_samples,
                           rise_settings=rise_settings, uniform_samples=uniform_samples, seed=seed,
                           batch_size=batch_size))
    if rows is not None:
        unknown = set(rows) - {row for row, _ in plan}
        if isinstance(rows, str) or unknown or not rows:
            raise ValueError(f"rows must be a list of the sweep's rows {sorted({r for r, _ in plan})}, got {rows!r}")
        plan = {k: v for k, v in plan.items() if k[0] in rows}
    given = _checked_given(given, plan, len(x))
    variants: dict[str, dict[str, np.ndarray]] = {}
    for (row, setting), (method, options) in plan.items():
        if (row, setting) in given:
            maps = np.asarray(given[(row, setting)])
        else:
            maps = method_function(method)(model, x, classes, **options)
            if log:
                log(f"{row} ({setting}): computed")
        variants.setdefault(row, {})[setting] = maps
    ig = METHODS["integrated_gradients"].label
    refs = {(ig, "zeros"): "zeros", (ig, "blur"): "blur", (METHODS["gradient_x_input"].label, "default"): "zeros",
            **{(ig, f"tunnel {sigma:g}"): "zeros" for sigma in ig_tunnel_sigmas}}
    return variants, refs


def _checked_given(given, plan: dict, n: int) -> dict:
    """``given`` maps: one per example of x, and only for settings the plan sweeps."""
    given = dict(given or {})
    for key, maps in given.items():
        if np.shape(maps)[:1] != (n,):
            raise ValueError(f"given maps for {key} have shape {np.shape(maps)}, expected one map per example "
                             f"of x ({n})")
    unknown = set(given) - set(plan)
    if unknown:
        raise ValueError(f"given maps for settings that are not swept: {sorted(unknown)}; the swept ones are "
                         f"{sorted(plan)}")
    return given


def evaluate_grid(model, x, classes, variants: dict[str, dict[str, np.ndarray]], evaluations: dict[str, dict], *,
                  patch: int, steps: int = 10, noise_std: float = 0.01, noise_scale: float | None = None,
                  seed: int = 0, batch_size: int = 256, log: Callable | None = None) -> dict:
    """Every method setting's maps scored under every evaluation setting.

    ``variants``: ``{method: {setting: maps}}``, maps of ``x`` as :func:`xai.metrics.removal.removal_curves`
    takes them. ``evaluations``: ``{label: {"fill": "road" | "blur" | "zeros" | number,
    "granularity": "pixels" | "patches", "reference": ...}}`` (see :func:`evaluations`); ``patch`` is
    the side of a patch. Returns ``{(method, setting, evaluation): {"srg", "morf_auc", "lerf_auc":
    float (N,)}}``.
    """
    if not variants or not evaluations:
        raise ValueError("variants and evaluations must each hold at least one entry")
    grid = {}
    for label, ev in evaluations.items():
        if not {"fill", "granularity"} <= set(ev) <= {"fill", "granularity", "reference"} or \
                ev["granularity"] not in GRAINS:
            raise ValueError(f"evaluation {label!r} must be {{'fill': ..., 'granularity': 'pixels' | 'patches'"
                             f"[, 'reference': ...]}} (see evaluations()), got {ev!r}")
        for method, settings in variants.items():
            for setting, maps in settings.items():
                curves = xm.removal_curves(model, x, maps, classes, steps=steps, fill=ev["fill"], noise_std=noise_std,
                                           noise_scale=noise_scale, seed=seed, batch_size=batch_size,
                                           patch=patch if ev["granularity"] == "patches" else 1)
                grid[(method, setting, label)] = {k: np.asarray(curves[k], np.float64) for k in SWEPT_METRICS}
                if log:
                    log(f"{method} ({setting}), {label}: SRG {grid[(method, setting, label)]['srg'].mean():+.3f}")
    return grid


def robustness(grid: dict, *, references: dict | None = None, evaluations: dict | None = None,
               metrics=tuple(SWEPT_METRICS), alpha: float = 0.05, n_boot: int = 2000, seed: int = 0) -> list[dict]:
    """For every metric and pair of methods, the grid's cells (a setting of each method and an
    evaluation): in how many the first method wins, the second wins or neither, the verdict, the
    verdict again without the cells where a method's baseline shares its reference with the fill
    (``verdict_unshared``, ``leader_unshared``), the narrowest margin of the leader (the cell where
    its advantage is smallest, with a paired bootstrap 95 % interval: ``margin``), and each cell.

    A method wins a cell when the paired t-test of the per-example differences rejects 0 at
    ``alpha`` after Holm's adjustment over the pair's cells on that metric, so that a pair with
    144 cells does not gather "reversals" by chance. ``references``: ``{(method, setting):
    reference}`` (the second value of :func:`method_variants`); ``evaluations``: the evaluations of
    the grid (:func:`evaluations`), for their fills' references (required with ``references``)."""
    if references and evaluations is None:
        raise ValueError("references need the grid's evaluations (xai.analysis.sweep.evaluations) to tell which fills "
                         "share a baseline's reference")
    references = references or {}
    evaluations = evaluations or {}
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    for metric in metrics:
        if metric not in SWEPT_METRICS:
            raise ValueError(f"metrics must be among {tuple(SWEPT_METRICS)}, got {metric!r}")
    methods = list(dict.fromkeys(m for m, _, _ in grid))
    labels = list(dict.fromkeys(e for _, _, e in grid))
    settings = {m: list(dict.fromkeys(s for mm, s, _ in grid if mm == m)) for m in methods}
    rows = []
    for metric in metrics:
        sign = 1.0 if SWEPT_METRICS[metric] else -1.0                       # differences oriented: > 0 favours a
        for i, a in enumerate(methods):
            for b in methods[i + 1:]:
                cells, diffs = [], []
                for sa in settings[a]:
                    for sb in settings[b]:
                        for ev in labels:
                            if (a, sa, ev) not in grid or (b, sb, ev) not in grid:
                                continue
                            d = sign * (np.asarray(grid[(a, sa, ev)][metric], np.float64)
                                        - np.asarray(grid[(b, sb, ev)][metric], np.float64))
                            diffs.append(d)
                            shared = [m for m, s in ((a, sa), (b, sb))
                                      if shared_reference(references.get((m, s)), evaluations.get(ev, {}))]
                            cells.append({"first_setting": sa, "second_setting": sb, "evaluation": ev,
                                          "mean": float(d.mean()), "n": len(d), "shared_reference": shared})
                adjusted = holm(paired_t_p_values(diffs)) if cells else np.array([])
                for c, q in zip(cells, adjusted):
                    c["p_holm"] = float(q)
                    c["winner"] = (a if c["mean"] > 0 else b) if q < alpha else None
                row = {"metric": metric, "first": a, "second": b, **_verdict(cells, a, b),
                       "shared_cells": sum(bool(c["shared_reference"]) for c in cells), "detail": cells}
                unshared = _verdict([c for c in cells if not c["shared_reference"]], a, b)
                row["verdict_unshared"], row["leader_unshared"] = unshared["verdict"], unshared["leader"]
                row["margin"] = None
                if cells and row["leader"] is not None:
                    lead_sign = 1.0 if row["leader"] == a else -1.0
                    k = int(np.argmin([lead_sign * c["mean"] for c in cells]))
                    ci = paired_bootstrap(lead_sign * diffs[k], np.zeros_like(diffs[k]), n_boot=n_boot, seed=seed)
                    row["margin"] = {**cells[k], "difference": ci["mean"], "low": ci["low"], "high": ci["high"]}
                rows.append(row)
    return rows


def _verdict(cells: list[dict], a: str, b: str) -> dict:
    """Counts of the cells each method wins, the leader (None when they win equally often) and the
    verdict (see the module's docstring)."""
    wins = {m: sum(c["winner"] == m for c in cells) for m in (a, b)}
    lead = None if wins[a] == wins[b] else a if wins[a] > wins[b] else b
    if not cells:
        verdict = "no cells"
    elif wins[a] == wins[b] == 0:
        verdict = "not resolved"
    elif wins[a] > 0 and wins[b] > 0:
        verdict = "reversed somewhere"
    elif max(wins.values()) == len(cells):
        verdict = "robust"
    else:
        verdict = "setting-dependent"
    top = max(wins.values())
    return {"cells": len(cells), "wins_first": wins[a], "wins_second": wins[b],
            "ties": len(cells) - wins[a] - wins[b], "leader": lead,
            "share_leader": top / len(cells) if cells else 0.0, "verdict": verdict}


def verdicts(rows: list[dict]) -> dict[tuple[str, frozenset], dict]:
    """:func:`robustness`'s rows by ``(metric, frozenset({first, second}))``."""
    return {(r["metric"], frozenset((r["first"], r["second"]))): r for r in rows}


def _method_set(methods) -> set | None:
    if methods is None:
        return None
    if isinstance(methods, str) or not all(isinstance(m, str) for m in methods):
        raise ValueError(f"methods must be None or a list of method names, got {methods!r}")
    return set(methods)


def _margin_text(r: dict) -> str:
    m = r.get("margin")
    if not m:
        return "-"
    return f"{m['difference']:+.3f} [{m['low']:+.3f}, {m['high']:+.3f}]"


def robustness_table(rows: list[dict], *, methods=None) -> str:
    """Markdown: per metric and pair (of ``methods`` only, if given), the cells each method wins,
    the ties, the verdict, the leader's narrowest margin (the cell where its advantage is
    smallest: mean difference and paired bootstrap 95 % interval), and the verdict without the
    cells where a baseline shares the fill's reference."""
    keep = _method_set(methods)
    lines = ["| metric | pair | cells | first wins | second wins | neither | verdict | leader's narrowest margin | "
             "cells with a shared reference | verdict without them |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if keep is not None and not {r["first"], r["second"]} <= keep:
            continue
        lead = f" ({r['leader']} leads)" if r["leader"] else ""
        lead_unshared = f" ({r['leader_unshared']} leads)" if r["leader_unshared"] else ""
        lines.append(f"| {r['metric']} | {r['first']} vs {r['second']} | {r['cells']} | {r['wins_first']} | "
                     f"{r['wins_second']} | {r['ties']} | {r['verdict']}{lead} | {_margin_text(r)} | "
                     f"{r['shared_cells']} | {r['verdict_unshared']}{lead_unshared} |")
    return "\n".join(lines)


def settings_table(grid: dict, *, references: dict | None = None, evaluations: dict | None = None,
                   metric: str = "srg") -> str:
    """Markdown: one row a method's setting, one column an evaluation; each cell the mean of
    ``metric`` and its rank among the rows in that evaluation (1: best), marked † where the
    setting's baseline shares its reference with the fill; the last column the row's best and worst
    rank over the evaluations."""
    if metric not in SWEPT_METRICS:
        raise ValueError(f"metric must be one of {tuple(SWEPT_METRICS)}, got {metric!r}")
    references = references or {}
    evaluations = evaluations or {}
    labels = list(dict.fromkeys(e for _, _, e in grid))
    keys = list(dict.fromkeys((m, s) for m, s, _ in grid))
    sign = 1 if SWEPT_METRICS[metric] else -1
    ranks = {}
    for ev in labels:
        have = [k for k in keys if (*k, ev) in grid]
        order = rankdata([-sign * float(np.mean(grid[(*k, ev)][metric])) for k in have], method="min")  # ties share
        ranks.update({(*k, ev): int(r) for r, k in zip(order, have)})
    lines = ["| method | setting | " + " | ".join(labels) + " | rank range |", "|---|---|" + "---|" * (len(labels) + 1)]
    for m, st in keys:
        cells = []
        for ev in labels:
            if (m, st, ev) not in grid:
                cells.append("-")
                continue
            mark = " †" if shared_reference(references.get((m, st)), evaluations.get(ev, {})) else ""
            cells.append(f"{np.mean(grid[(m, st, ev)][metric]):+.3f} ({ranks[(m, st, ev)]}){mark}")
        own = [ranks[(m, st, ev)] for ev in labels if (m, st, ev) in grid]
        span = f"{min(own)}" if min(own) == max(own) else f"{min(own)}–{max(own)}"
        lines.append(f"| {m} | {st} | " + " | ".join(cells) + f" | {span} of {len(keys)} |")
    return "\n".join(lines)


METRIC_NAMES = {key: METRICS[key].name for key in SWEPT_METRICS}


def findings(rows: list[dict], label: str, *, methods=None) -> list[str]:
    """One line per metric: the pairs (of ``methods`` only, if given) by verdict, e.g.
    ``MNIST-1D, SRG: **robust**: RISE > IG (all 144 cells; narrowest margin +0.21 [+0.19, +0.23]);
    **setting-dependent**: ...``. The verdict without the cells where a baseline shares the fill's
    reference follows in brackets where it differs."""
    keep = _method_set(methods)
    out = []
    for metric in dict.fromkeys(r["metric"] for r in rows):
        parts = {}
        for r in rows:
            if r["metric"] != metric or (keep is not None and not {r["first"], r["second"]} <= keep):
                continue
            a, b, n = r["first"], r["second"], r["cells"]
            if r["verdict"] == "robust":
                other = b if r["leader"] == a else a
                text = f"{r['leader']} > {other} (all {n} cells; narrowest margin {_margin_text(r)})"
            elif r["verdict"] == "setting-dependent":
                other = b if r["leader"] == a else a
                wins = max(r["wins_first"], r["wins_second"])
                text = f"{r['leader']} > {other} ({wins} of {n} cells)"
            elif r["verdict"] == "reversed somewhere":
                text = f"{a} vs {b} ({a} wins {r['wins_first']}, {b} {r['wins_second']} of {n} cells)"
            else:
                text = f"{a} vs {b} (no cell of {n})"
            if r["verdict_unshared"] != r["verdict"]:
                lead = f", {r['leader_unshared']} leads" if r["leader_unshared"] else ""
                text += f" [without the {r['shared_cells']} shared-reference cells: {r['verdict_unshared']}{lead}]"
            parts.setdefault(r["verdict"], []).append(text)
        order = ("robust", "setting-dependent", "reversed somewhere", "not resolved", "no cells")
        body = "; ".join(f"**{v}**: " + ", ".join(parts[v]) for v in order if v in parts)
        out.append(f"{label}, {METRIC_NAMES.get(metric, metric)}: {body or 'no pairs'}")
    return out


def completeness_gaps(model, x, classes, ig_variants: dict[str, np.ndarray], *, value_range: tuple,
                      references=None, blur_sigma: float = 10.0, uniform_samples: int = 4, seed: int = 0,
                      batch_size: int = 128) -> dict[str, dict]:
    """IG's completeness gap of each example for each baseline of :func:`method_variants` (the same
    options), relative to |F(x) - F(x')|: ``{setting: {"gap": float (N,), "how": str}}``. Expected
    gradients meets completeness in expectation only (against the reference set's mean score), so
    its gap is Monte Carlo error; the noise tunnel's maps average IG over noisy inputs and have no
    single F(x'), so it has no entry."""
    import xai.methods.integrated_gradients as xig
    out = {}
    for setting, maps in ig_variants.items():
        if setting.startswith("tunnel"):
            continue
        if setting == "expected":
            if references is None:
                raise ValueError("the 'expected' setting (expected gradients) needs its references to check "
                                 "completeness against")
            _, rel = xig.completeness_gap(model, x, maps, classes, references=references, batch_size=batch_size)
            how = "in expectation (Monte Carlo)"
        else:
            _, rel = xig.completeness_gap(model, x, maps, classes, baseline=setting, value_range=value_range,
                                          blur_sigma=blur_sigma, baseline_samples=uniform_samples, seed=seed,
                                          batch_size=batch_size)
            how = "up to quadrature"
        out[setting] = {"gap": np.asarray(rel, np.float64), "how": how}
    return out


def completeness_table(gaps: dict[str, dict]) -> str:
    """Markdown of :func:`completeness_gaps`: a baseline a row, its median and maximum relative gap
    and the share of examples within 1 %."""
    lines = ["| baseline | median relative gap | max | share within 1 % | meets it |", "|---|---|---|---|---|"]
    for setting, entry in gaps.items():
        rel = np.asarray(entry["gap"], np.float64)
        lines.append(f"| {setting} | {np.median(rel):.1e} | {rel.max():.1e} | {np.mean(rel <= 0.01):.3f} | "
                     f"{entry['how']} |")
    return "\n".join(lines)


def completeness_by_baseline(model, x, classes, ig_variants: dict[str, np.ndarray], **options) -> str:
    """Markdown: :func:`completeness_table` of :func:`completeness_gaps` (the same arguments)."""
    return completeness_table(completeness_gaps(model, x, classes, ig_variants, **options))


# --- the whole sweep on one data set, as the notebook runs it ---

def comparison_defaults(maps: dict, index, rise_masks: int) -> dict[tuple[str, str], np.ndarray]:
    """The comparison's maps (``{label: maps}`` for the methods of ``xai.analysis.compare.COMPARED``,
    e.g. from its ``explain_all``) at the positions ``index``, keyed by the sweep setting each is: the
    method's defaults (IG from zeros), RISE with ``rise_masks`` masks."""
    from xai.analysis.compare import COMPARED
    defaults = {"integrated_gradients": "zeros", "rise": rise_setting(rise_masks)}
    settings = {METHODS[name].label: defaults.get(name, "default") for name in COMPARED}
    unknown = set(maps) - set(settings)
    if unknown:
        raise ValueError(f"no sweep setting for the comparison's maps of {sorted(unknown)}; expected some of {sorted(settings)}")
    return {(name, settings[name]): np.asarray(m)[index] for name, m in maps.items()}


def run_sweep(model, x, classes, *, value_range: tuple, patch: int, given: dict | None = None, references=None,
              blur_sigma: float, rise_settings, steps: int = 10, noise_std: float = 0.01, noise_scale: float | None = None,
              n_boot: int = 2000, seed: int = 0, batch_size: int = 128, **draws) -> dict:
    """Every method in each of its settings (:func:`method_variants`) scored under every removal
    setting (:func:`evaluations`, :func:`evaluate_grid`), the pairs' verdicts across the grid
    (:func:`robustness`, :func:`verdicts`) and IG's completeness for each baseline. ``draws``:
    the noise draws of :func:`method_variants` (``smoothgrad_samples``, ``expected_samples``,
    ``tunnel_samples``, ``uniform_samples``). Returns :func:`summarise_grid`'s dict with the maps
    (``variants``) beside it."""
    variants, refs = method_variants(model, x, classes, value_range=value_range, given=given, references=references,
                                     blur_sigma=blur_sigma, rise_settings=rise_settings, seed=seed,
                                     batch_size=batch_size, **draws)
    evals = evaluations(value_range)
    grid = evaluate_grid(model, x, classes, variants, evals, patch=patch, steps=steps, noise_std=noise_std,
                         noise_scale=noise_scale, seed=seed, batch_size=batch_size)
    gaps = completeness_gaps(model, x, classes, variants[METHODS["integrated_gradients"].label], value_range=value_range,
                             references=references, blur_sigma=blur_sigma,
                             uniform_samples=draws.get("uniform_samples", 4), seed=seed, batch_size=batch_size)
    return dict(summarise_grid(grid, refs, evals, gaps, n_boot=n_boot, seed=seed), variants=variants)


def summarise_grid(grid: dict, references: dict, evaluations: dict, gaps: dict, *, n_boot: int = 2000,
                   seed: int = 0) -> dict:
    """What :func:`run_sweep` returns, from the grid's per-example scores (:func:`evaluate_grid`),
    the settings' references, the evaluations and IG's gaps (:func:`completeness_gaps`), e.g. as
    ``xai.analysis.sweep_store`` gathers them from stored batches: ``n``, the grid, the pairs'
    ``rows`` and ``verdicts``, ``n_settings`` and the Markdown tables ``settings_table``,
    ``robustness_table`` and ``completeness_table``."""
    lengths = {len(v[m]) for v in grid.values() for m in v} | {len(g["gap"]) for g in gaps.values()}
    if len(lengths) != 1:
        raise ValueError(f"every cell of the grid and every completeness gap must score the same examples, got "
                         f"lengths {sorted(lengths)}")
    rows = robustness(grid, references=references, evaluations=evaluations, n_boot=n_boot, seed=seed)
    return {"n": lengths.pop(), "references": references, "evaluations": evaluations, "grid": grid, "rows": rows,
            "verdicts": verdicts(rows), "n_settings": len({(m, s) for m, s, _ in grid}),
            "settings_table": settings_table(grid, references=references, evaluations=evaluations),
            "robustness_table": robustness_table(rows), "completeness": gaps,
            "completeness_table": completeness_table(gaps)}


def settings_maps_figure(x, settings: dict[str, np.ndarray], grid: dict, row: str, *, evaluation: str = "road, pixels",
                         title: str | None = None):
    """One method's maps in each of its settings on the same inputs (``settings``: ``{setting: maps}``,
    e.g. :func:`method_variants` with ``rows=[row]``), each column titled with the setting's mean SRG
    and rank among the settings shown that the grid scores under ``evaluation`` (the sweep's, on its
    own examples): how a setting that changes the ranking changes the maps."""
    from xai.plots import plot_grid
    if not any(k[0] == row and k[2] == evaluation for k in grid):
        raise ValueError(f"the grid has no cell of row {row!r} under {evaluation!r}; its rows "
                         f"{sorted({k[0] for k in grid})}, evaluations {sorted({k[2] for k in grid})}")
    have = {st: float(np.mean(grid[(row, st, evaluation)]["srg"])) for st in settings if (row, st, evaluation) in grid}
    order = sorted(have, key=lambda st: -have[st])
    titles = {st: f"{row}, {st}" + (f"\nSRG {have[st]:+.3f} (rank {order.index(st) + 1} of {len(order)})"
                                     if st in have else "") for st in settings}
    return plot_grid(x, {titles[st]: m for st, m in settings.items()}, title=title, cell_size=(1.9, 1.9))


def sweep_sections(sweep: dict, label: str, *, unit: str = "examples", methods=None) -> list[dict]:
    """The tables file's sections for one :func:`run_sweep`: its settings table with the findings
    (over ``methods``), every pair across the grid, and IG's completeness for each baseline."""
    sized = f"{label} ({sweep['n']} {unit})"
    return [{"heading": f"Settings sweep, {sized}: SRG by method setting and removal setting "
                        "(rank among the method settings; †: the baseline shares the fill's reference)",
             "text": sweep["settings_table"], "findings": findings(sweep["rows"], sized, methods=methods)},
            {"heading": f"Settings sweep, {label}: every pair of methods across the grid", "text": sweep["robustness_table"]},
            {"heading": f"Settings sweep, {label}: IG's completeness gap for each baseline",
             "text": sweep["completeness_table"]}]


def sections_markdown(sections: list[dict]) -> str:
    """Markdown of :func:`sweep_sections` for a notebook: each heading in bold, its table, its findings."""
    parts = []
    for s in sections:
        parts += [f"**{s['heading']}**", s["text"]]
        if s.get("findings"):
            parts.append("\n".join(f"- {line}" for line in s["findings"]))
    return "\n\n".join(parts)
