"""The comparison of explanation methods that XAI_methods.ipynb orchestrates: the methods (defined
once), running them all, IG's completeness report, every metric on the same examples, paired
differences between methods with bootstrap confidence intervals, and the tables file.

Conventions (those of ``xai.metrics``' modules): the class probability is the score; faithfulness orders
positions by signed relevance; agreement, localisation and the sanity check use absolute values
for every method, and signed IG is reported beside them where it says more.

Axis key: N examples, D positions, B bootstrap resamples.
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable
from functools import partial

import numpy as np
from scipy.stats import rankdata

import xai.metrics.removal as xm
from xai.analysis.stats import paired_bootstrap, summary
from xai.core import check_number
from xai.maps import saliency_positions
from xai.methods import METHODS, method_function
from xai.methods.integrated_gradients import IG_RULES, completeness_gap, integrated_gradients
from xai.metrics import METRICS
from xai.metrics.agreement import spearman
from xai.metrics.localisation import pointing_game, relevance_mass_accuracy
from xai.metrics.sanity import cascading_randomization, efficient_randomization, smooth_randomization

__all__ = [
    "COMPARED",
    "METHOD_NAMES",
    "MAP_KINDS",
    "MARKS",
    "MARKS_LEGEND",
    "claims_matrix",
    "CLAIMS_LEGEND",
    "method_settings",
    "method_functions",
    "draw_references",
    "every_method",
    "explain_all",
    "explain_stored",
    "sanity_checks",
    "randomisation_repairs",
    "fill_in",
    "completeness_report",
    "compare_methods",
    "comparison_table",
    "paired_differences",
    "differences_table",
    "supported_claims",
    "completeness_line",
    "orderings",
    "orderings_table",
    "tables_document",
]

# The four methods the comparison's tables hold (the settings sweep runs every method: xai.analysis.sweep),
# keys of METHODS; names and map kinds come from there.
COMPARED = ("grad_cam", "integrated_gradients", "rise", "sise")
_LIBRARY_NAMES = {METHODS[name].label: name for name in COMPARED}
METHOD_NAMES = tuple(_LIBRARY_NAMES)                     # as the tables name them: Grad-CAM, IG, RISE, SISE
# What each method's map is: IG is signed (shaped like x); the others are non-negative (positions).
MAP_KINDS = {label: "signed" if METHODS[name].maps == "like_x" else "unsigned" for label, name in _LIBRARY_NAMES.items()}


def method_settings(*, rise_masks: int = 4000, seed: int = 0) -> dict[str, tuple[str, dict]]:
    """The four methods with the notebook's settings: name -> (the library's method name, options).

    Grad-CAM and IG explain the logit (the papers' choice), RISE and SISE the probability (theirs).
    """
    options = {"rise": {"n_masks": rise_masks, "seed": seed}}
    return {label: (name, options.get(name, {})) for label, name in _LIBRARY_NAMES.items()}


def method_functions(*, rise_masks: int = 4000, seed: int = 0, batch_size: int | None = None) -> dict[str, Callable]:
    """The four methods of :func:`method_settings`: name -> ``f(model, x, classes) -> maps``.

    ``batch_size`` (model inputs per call) applies to IG, RISE and SISE; None keeps each default.
    """
    b = {} if batch_size is None else {"batch_size": batch_size}
    out = {}
    for name, (method, options) in method_settings(rise_masks=rise_masks, seed=seed).items():
        function = method_function(method)
        extra = {} if METHODS[method].family == "CAM" else b       # a CAM's batch counts examples: its default
        out[name] = lambda m, x, c, f=function, o=options, e=extra: f(m, x, c, **o, **e)
    return out


def draw_references(x_train, n: int, seed: int = 0) -> np.ndarray:
    """``n`` training inputs drawn without replacement with ``seed``, as float32: expected gradients'
    references (the same draw for every caller that passes the same training set, n and seed)."""
    x_train = np.asarray(x_train)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= len(x_train):
        raise ValueError(f"n must be an int in [1, {len(x_train)}] (the training inputs), got {n!r}")
    return x_train[np.random.default_rng(seed).choice(len(x_train), n, replace=False)].astype(np.float32)


_NOISE_TUNNELS = tuple(name for name, m in METHODS.items() if m.family == "noise tunnel")


def every_method(references, *, rise_masks: int, eg_samples: int, noise_samples: int | None = None, seed: int = 0,
                 rise_batch_size: int | None = None, key: str = "label") -> dict[str, Callable]:
    """Every method of METHODS as ``f(model, x, classes) -> maps``, each with the library's defaults but
    for what needs data or sets the cost: RISE's mask count (and batch, if given), expected
    gradients' ``references`` and samples, and, where given, the noise tunnels' samples (a smoke
    run's); every random draw seeded with ``seed``. Keys: the methods' labels ("Grad-CAM", as the
    tables name them) or, with ``key="name"``, METHODS' keys ("grad_cam")."""
    if key not in ("label", "name"):
        raise ValueError(f"key must be 'label' or 'name', got {key!r}")
    check_number("rise_masks", rise_masks, low=1, integer=True)
    check_number("eg_samples", eg_samples, low=1, integer=True)
    check_number("seed", seed, low=0, integer=True)
    for name, value in (("noise_samples", noise_samples), ("rise_batch_size", rise_batch_size)):
        if value is not None:
            check_number(name, value, low=1, integer=True)
    refs = np.asarray(references)
    if refs.dtype.kind not in "fiu" or refs.ndim < 3 or len(refs) == 0 or not np.isfinite(refs).all():
        raise ValueError(f"references must be finite inputs (R, T, C) or (R, H, W, C), e.g. draw_references(x_train, "
                         f"32); got dtype {refs.dtype}, shape {refs.shape}")
    rise = {"n_masks": rise_masks, "seed": seed, **({} if rise_batch_size is None else {"batch_size": rise_batch_size})}
    options = {"rise": rise, "expected_gradients": {"references": references, "samples": eg_samples, "seed": seed},
               **{name: {"seed": seed, **({} if noise_samples is None else {"samples": noise_samples})}
                  for name in _NOISE_TUNNELS}}
    return {(m.label if key == "label" else name): partial(method_function(name), **options.get(name, {}))
            for name, m in METHODS.items()}


def explain_all(model, x, classes, method_functions: dict, *, log: Callable | None = print):
    """Run every method on the same inputs, timing each: ``(maps dict, seconds-per-example dict)``."""
    maps, seconds = {}, {}
    for name, method in method_functions.items():
        start = time.perf_counter()
        maps[name] = np.asarray(method(model, x, classes))
        seconds[name] = (time.perf_counter() - start) / len(x)
        if log:
            log(f"{name:9s} {seconds[name] * 1e3:9.2f} ms / example  ({len(x)} examples)")
    return maps, seconds


def explain_stored(model, x, classes, names, folder: str, *, tag: str, rise_masks: int = 4000, seed: int = 0,
                   batch_size: int | None = None, log: Callable | None = print):
    """:func:`explain_all` through ``xai.dataset.explain_dataset``: each method's maps are written to
    ``folder/<tag>_<method>.h5`` (made afresh) and read back. Returns ``(maps dict, seconds-per-example
    dict)``; the seconds include storing."""
    import xai.dataset
    os.makedirs(folder, exist_ok=True)
    settings = method_settings(rise_masks=rise_masks, seed=seed)
    maps, seconds = {}, {}
    for name in names:
        method, options = settings[name]
        out = os.path.join(folder, f"{tag}_{method}.h5")
        start = time.perf_counter()
        xai.dataset.explain_dataset(model, x, method, out, class_index=np.asarray(classes), resume=False,
                                    progress=False, method_batch_size=None if METHODS[method].family == "CAM" else batch_size,
                                    **options)
        seconds[name] = (time.perf_counter() - start) / len(x)
        maps[name] = xai.dataset.load_explanations(out, fields=["maps", "index"])["maps"]
        if log:
            log(f"{name:9s} {seconds[name] * 1e3:9.2f} ms / example  ({len(x)} examples) -> {out}")
    return maps, seconds


def sanity_checks(model, x, classes, functions: dict[str, Callable], *, seed: int = 0) -> dict[str, dict]:
    """The cascading-randomisation sanity check (:func:`xai.metrics.sanity.cascading_randomization`)
    of each method of ``functions`` (name -> ``f(model, x, classes)``, e.g. :func:`method_functions`),
    on the same examples and classes: ``{name: its result}``."""
    return {name: cascading_randomization(model, x, f, class_index=classes, seed=seed) for name, f in functions.items()}


def randomisation_repairs(model, x, classes, functions: dict[str, Callable], *, seed: int = 0, samples: int = 50,
                          noise: float = 0.1, value_range=None) -> dict[str, dict]:
    """Hedström et al.'s repairs of the sanity check for each method of ``functions`` (name ->
    ``f(model, x, classes)``), on the same examples and classes: ``{name: {"emprt": ..., "smprt": ...}}``
    (:func:`xai.metrics.sanity.efficient_randomization`, :func:`xai.metrics.sanity.smooth_randomization`:
    ``samples`` noisy copies of ``noise`` times the span of ``value_range``)."""
    return {name: {"emprt": efficient_randomization(model, x, f, class_index=classes, seed=seed),
                   "smprt": smooth_randomization(model, x, f, class_index=classes, seed=seed, samples=samples,
                                                 noise=noise, value_range=value_range)}
            for name, f in functions.items()}


def fill_in(wanted, index, maps, compute: Callable) -> dict[int, np.ndarray]:
    """Maps for every example of ``wanted`` (indices into the data): those of ``index`` from ``maps``
    (one map a position of ``index``), the others computed in one call, ``compute(missing_indices)``.
    Returns ``{example index: map}``."""
    have = dict(zip(np.asarray(index).tolist(), maps))
    missing = [int(i) for i in wanted if int(i) not in have]
    if missing:
        have.update(zip(missing, compute(np.asarray(missing))))
    return {int(i): have[int(i)] for i in wanted}


def completeness_report(model, x, classes, label: str, steps_list=(8, 16, 32, 64), n_max: int | None = None):
    """IG's relative completeness gap for every quadrature rule and number of steps.

    Returns ``(rows, markdown)``: rows of (rule, steps, median, 99th percentile, max, share <= 1 %).
    With ``n_max``, an evenly spread subset of at most that many examples.
    """
    if n_max is not None and n_max < len(x):
        idx = np.linspace(0, len(x) - 1, n_max).astype(int)
        x, classes = x[idx], np.asarray(classes)[idx]
    rows = []
    for rule in IG_RULES:
        for steps in steps_list:
            attributions = integrated_gradients(model, x, classes, steps=steps, rule=rule)
            _, rel = completeness_gap(model, x, attributions, classes)
            rows.append((rule, steps, float(np.median(rel)), float(np.quantile(rel, 0.99)), float(rel.max()),
                         float(np.mean(rel <= 0.01))))
    lines = [f"**{label}** ({len(x)} examples): relative completeness gap |delta| / |F(x) - F(0)|", "",
             "| rule | steps | median | 99th percentile | max | share ≤ 1 % |", "|---|---|---|---|---|---|"]
    lines += [f"| {r} | {s} | {a:.1e} | {b:.1e} | {c:.1e} | {d:.3f} |" for r, s, a, b, c, d in rows]
    return rows, "\n".join(lines)


# --- every metric, on the same examples ---

def compare_methods(model, x, maps: dict, classes, *, masks=None, seconds: dict | None = None,
                    road_steps: int = 10, noise_std: float = 0.01, noise_scale: float | None = None,
                    seed: int = 0, batch_size: int = 256, faithfulness: bool = True,
                    average_drop: bool | None = None) -> dict:
    """Every metric for every method's maps on the same examples.

    Faithfulness: ROAD removal curves (MoRF, LeRF, SRG; :func:`xai.metrics.removal.removal_curves`) and the
    paper's average drop / increase (:func:`xai.metrics.removal.average_drop_increase`). Localisation
    against ``masks`` (bool (N, D)): relevance mass and pointing game of |map|, and of signed IG as
    ``relevance_mass_signed``. Agreement: Spearman of |map| with each other method's, and of signed IG.
    ``faithfulness=False`` leaves out the removal curves (the costly part); ``average_drop`` (None:
    as ``faithfulness``) keeps or leaves out the average drop / increase on its own.

    Returns:
        method name -> dict of per-example arrays, the curves, ``agreement_<other>`` and
        ``seconds_per_example``.
    """
    results = {}
    positions = {name: saliency_positions(m, x.shape, absolute=True) for name, m in maps.items()}
    for name, m in maps.items():
        r = {}
        if faithfulness:
            r.update(xm.removal_curves(model, x, m, classes, steps=road_steps, noise_std=noise_std,
                                      noise_scale=noise_scale, seed=seed, batch_size=batch_size))
        if faithfulness if average_drop is None else average_drop:
            r.update(xm.average_drop_increase(model, x, m, classes, batch_size=batch_size))
        if masks is not None:
            r["relevance_mass"] = relevance_mass_accuracy(m, masks, x.shape)
            r["pointing"] = pointing_game(m, masks, x.shape)
            if MAP_KINDS.get(name) == "signed":
                r["relevance_mass_signed"] = relevance_mass_accuracy(m, masks, x.shape, absolute=False)
                r["pointing_signed"] = pointing_game(m, masks, x.shape, absolute=False)
        signed = saliency_positions(m, x.shape) if MAP_KINDS.get(name) == "signed" else None
        for other in maps:
            if other != name:
                r[f"agreement_{other}"] = spearman(positions[name], positions[other])
                if signed is not None:
                    r[f"agreement_signed_{other}"] = spearman(signed, positions[other])
        if seconds and name in seconds:
            r["seconds_per_example"] = seconds[name]
        results[name] = r
    return results


# (column title, result key, scale, higher is better), from the one table of metrics
COLUMNS = [(m.title, key, m.scale, m.higher_is_better) for key, m in METRICS.items()]


def _with_sanity(results, sanity):
    """Results with each method's per-example sanity correlation (all layers random) as ``sanity``."""
    out = {k: dict(v) for k, v in results.items()}
    for name, s in (sanity or {}).items():
        if name in out:
            out[name]["sanity"] = np.asarray(s["correlation"])[-1]
    return out


def comparison_table(results: dict, sanity: dict | None = None, *, agreement: bool = True) -> str:
    """A Markdown table of :func:`compare_methods` results, mean ± standard error, and, if given,
    the sanity check's mean correlation after randomising every layer (its own n: ``sanity n``);
    ``agreement=False`` leaves out the agreement columns (the README's compact table)."""
    results = _with_sanity(results, sanity)
    names = list(results)
    cols = [c for c in COLUMNS if any(c[1] in r for r in results.values())]
    head = (["method", "n"] + [c[0] for c in cols] + (["sanity n"] if sanity else [])
            + ([f"agreement with {o}" for o in names] if agreement else []) + ["s / example"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name in names:
        r = results[name]
        n = next((len(np.atleast_1d(r[c[1]])) for c in cols if c[1] in r and c[1] != "sanity"), 0)
        row = [name, str(n)]
        for _, key, scale, _ in cols:
            if key not in r:
                row.append("-")
                continue
            s = summary(np.asarray(r[key]) * scale)
            row.append(f"{s['mean']:.3f} ± {s['sem']:.3f}" if scale == 1 else f"{s['mean']:.1f} ± {s['sem']:.1f}")
        if sanity:
            row.append(str(len(np.atleast_1d(r["sanity"]))) if "sanity" in r else "-")
        if agreement:
            row += ["-" if o == name or f"agreement_{o}" not in r else f"{np.mean(r[f'agreement_{o}']):.2f}"
                    for o in names]
        row.append(f"{r['seconds_per_example']:.4f}" if "seconds_per_example" in r else "-")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


# --- paired differences with bootstrap confidence intervals ---

def paired_differences(results: dict, sanity: dict | None = None, *, n_boot: int = 10000,
                       confidence: float = 0.95, seed: int = 0) -> list[dict]:
    """For every metric of :data:`COLUMNS` and every pair of methods with it on the same examples,
    the paired difference first - second with its bootstrap confidence interval."""
    results = _with_sanity(results, sanity)
    names = list(results)
    rows = []
    for title, key, scale, higher in COLUMNS:
        have = [n for n in names if key in results[n]]
        for i, first in enumerate(have):
            for second in have[i + 1:]:
                a, b = np.asarray(results[first][key]) * scale, np.asarray(results[second][key]) * scale
                if a.shape != b.shape:
                    continue
                ci = paired_bootstrap(a, b, n_boot=n_boot, confidence=confidence, seed=seed)
                better = None
                if ci["excludes_zero"]:
                    better = first if (ci["mean"] > 0) == higher else second
                rows.append({"metric": title, "key": key, "first": first, "second": second, "better": better, **ci})
    return rows


def differences_table(rows: list[dict], confidence: float = 0.95) -> str:
    """Markdown: each paired difference with its confidence interval and which method it favours."""
    pct = f"{confidence:.0%}"
    grouped = any("group" in r for r in rows)
    lines = [("| group " if grouped else "") + f"| metric | difference | mean | {pct} confidence interval | n | "
             "holds: better method |", ("|---" if grouped else "") + "|---|---|---|---|---|---|"]
    for r in rows:
        verdict = r["better"] if r["better"] else "no (the interval contains 0)"
        lines.append((f"| {r.get('group', '')} " if grouped else "") + f"| {r['metric']} | {r['first']} − {r['second']} | "
                     f"{r['mean']:+.3f} | [{r['low']:+.3f}, {r['high']:+.3f}] | {r['n']} | {verdict} |")
    return "\n".join(lines)


def _oriented(r: dict) -> tuple[str, str, float, float, float]:
    """``(better, worse, difference, low, high)`` with the difference taken as better - worse."""
    if r["better"] == r["first"]:
        return r["first"], r["second"], r["mean"], r["low"], r["high"]
    return r["second"], r["first"], -r["mean"], -r["high"], -r["low"]


def supported_claims(rows: list[dict]) -> list[str]:
    """One sentence per difference whose confidence interval excludes 0; nothing for the others. The
    difference is written as better − worse, with the direction that counts as better, so that its
    sign always reads with the sentence."""
    out = []
    for r in rows:
        if r["better"]:
            better, worse, diff, low, high = _oriented(r)
            direction = "higher" if r["metric"].endswith("↑") else "lower"
            out.append(f"{better} beats {worse} on {r['metric'].rstrip(' ↑↓')} ({direction} is better: "
                       f"{better} − {worse} = {diff:+.3f}, 95 % CI [{low:+.3f}, {high:+.3f}], n = {r['n']})")
    return out


# how an ordering of two methods fares across the settings grid (xai.analysis.sweep.robustness's verdicts)
MARKS = {"robust": "●", "setting-dependent": "◐", "reversed somewhere": "✕", "not resolved": "○"}
SWEPT = {m.title: key for key, m in METRICS.items() if m.swept}
MARKS_LEGEND = ("across the settings grid (xai.analysis.sweep): ● the neighbours' order holds in every cell, ◐ in some cells "
                "and is never reversed, ✕ it is reversed in some cell, ○ no cell resolves it (each cell: a paired "
                "t-test, Holm-adjusted over the pair's cells); unmarked: one setting only")


def _mark(verdicts: dict | None, title: str, better: str, worse: str) -> str:
    """The robustness mark of "better before worse" on a metric, '' where the metric was not swept."""
    row = (verdicts or {}).get((SWEPT.get(title), frozenset((better, worse))))
    if row is None:
        return ""
    if row["verdict"] in ("robust", "setting-dependent") and row["leader"] != better:
        return MARKS["reversed somewhere"]                   # the grid's leader is the other method
    return MARKS[row["verdict"]] if row["verdict"] in MARKS else ""


def orderings(results: dict, rows: list[dict], sanity: dict | None = None, verdicts: dict | None = None) -> dict[str, str]:
    """Per metric, the methods from best to worst by mean, written ``A > B ≈ C (n = ...)``: ``>``
    where the paired difference of the two neighbours has a confidence interval that excludes 0,
    ``≈`` where it does not (neighbours only: ``A ≈ B ≈ C`` does not say that A and C tie).
    ``rows``: :func:`paired_differences` of the same results. ``verdicts``: the settings grid's
    verdicts (:func:`xai.analysis.sweep.verdicts`), which mark each neighbour relation of the removal
    metrics with :data:`MARKS` (see :data:`MARKS_LEGEND`)."""
    results = _with_sanity(results, sanity)
    pairs = {(r["metric"], frozenset((r["first"], r["second"]))): r for r in rows}
    out = {}
    for title, key, scale, higher in COLUMNS:
        have = [n for n in results if key in results[n]]
        if len(have) < 2:
            continue
        means = {n: float(np.mean(np.asarray(results[n][key]) * scale)) for n in have}
        ranked = sorted(have, key=lambda n: -means[n] if higher else means[n])
        text, n = ranked[0], None
        for u, v in zip(ranked, ranked[1:]):
            r = pairs.get((title, frozenset((u, v))))
            n = r["n"] if r else n
            relation = "?" if r is None else ">" if r["better"] == u else "≈"          # ?: not compared
            text += f" {relation}{_mark(verdicts, title, u, v)} {v}"
        out[title] = text + (f" (n = {n})" if n else "")
    return out


# how strong a leader's wins are across the grid, weakest last: the mark of its weakest win
_STRENGTH = (MARKS["robust"], MARKS["setting-dependent"], MARKS["not resolved"], MARKS["reversed somewhere"])
CLAIMS_LEGEND = ("colour: how many methods beat the method on the metric (95 % interval of the paired difference "
                 "excluding 0): darkest none, each step lighter one more, so that methods the data cannot tell apart "
                 "share a colour. Marks on the methods that none beats: the weakest of their wins across the settings "
                 "grid (● every win holds in every cell, ◐ in some cells and is never reversed, ○ one is resolved in no "
                 "cell, ✕ one is reversed in some cell); unmarked: it beats none, or one setting only (* not swept)")


def claims_matrix(results: dict, rows: list[dict], sanity: dict | None = None, verdicts: dict | None = None) -> dict:
    """What :func:`xai.plots.plot_claims` draws for one group: ``methods``, ``metrics`` (the
    columns' titles), ``values`` and ``ranks`` (methods x metrics; 1 is the best, equal means share
    a rank, NaN where a method lacks the metric), ``tiers`` (how many methods beat it: their paired
    difference's interval excludes 0; NaN where missing), ``decimals`` (per metric) and ``marks``:
    on the methods of tier 0 that beat at least one other, the weakest grid verdict of those wins
    (:data:`MARKS`, see :data:`CLAIMS_LEGEND`), '' elsewhere and on metrics that were not swept."""
    results = _with_sanity(results, sanity)
    pairs = {(r["metric"], frozenset((r["first"], r["second"]))): r for r in rows}
    methods = list(results)
    cols = [c for c in COLUMNS if sum(c[1] in results[m] for m in methods) >= 2]
    values = np.full((len(methods), len(cols)), np.nan)
    ranks, tiers = np.full_like(values, np.nan), np.full_like(values, np.nan)
    marks = [["" for _ in cols] for _ in methods]
    for j, (title, key, scale, higher) in enumerate(cols):
        have = [i for i, m in enumerate(methods) if key in results[m]]
        for i in have:
            values[i, j] = float(np.mean(np.asarray(results[methods[i]][key]) * scale))
        ranks[have, j] = rankdata(-values[have, j] if higher else values[have, j], method="min")   # ties share
        won = {i: [] for i in have}
        for i in have:
            tiers[i, j] = 0
            for k in have:
                d = pairs.get((title, frozenset((methods[i], methods[k])))) if k != i else None
                if d and d["better"] == methods[k]:
                    tiers[i, j] += 1
                elif d and d["better"] == methods[i]:
                    won[i].append(_mark(verdicts, title, methods[i], methods[k]))
        for i in have:
            if tiers[i, j] == 0 and won[i] and all(won[i]):                  # '' : the metric was not swept
                marks[i][j] = max(won[i], key=_STRENGTH.index)
    return {"methods": methods, "metrics": [c[0] for c in cols], "values": values, "ranks": ranks, "tiers": tiers,
            "marks": marks, "decimals": [3 if c[2] == 1 else 1 for c in cols],
            "swept": [c[0] in SWEPT and verdicts is not None for c in cols]}


def orderings_table(groups: dict[str, dict]) -> str:
    """Markdown: one row a metric, one column a group (``{label: orderings(...)}``), "-" where a
    group lacks the metric."""
    titles = [c[0] for c in COLUMNS if any(c[0] in g for g in groups.values())]
    lines = ["| metric | " + " | ".join(groups) + " |", "|---|" + "---|" * len(groups)]
    for title in titles:
        lines.append(f"| {title} | " + " | ".join(g.get(title, "-") for g in groups.values()) + " |")
    return "\n".join(lines)


ORDERINGS_HEADING = ("Orderings (best first; > : the neighbours' paired 95 % confidence interval excludes 0, ≈ : it "
                     "does not)")


def _grid_sizes(groups: list[dict]) -> str:
    """'; the grid ran on MNIST-1D: n = 1000, ...' for the groups that say (``grid_n``), else ''."""
    sizes = [f"{g['label']}: n = {g['grid_n']}" for g in groups if g.get("grid_n")]
    return "; the grid ran on " + ", ".join(sizes) if sizes else ""


def tables_document(groups: list[dict], completeness: str, sweeps: list[dict] | None = None,
                    extra_sections: list[dict] | None = None) -> str:
    """The comparison's Markdown file (``figures/xai_tables.md``), its ``###`` sections read by
    ``tools/readme_results.py``: each group's full table (``heading``, ``results``, ``sanity``,
    optional ``extra`` Markdown below it), its compact table (``Summary: <heading>``, no agreement
    columns), the orderings of every group (marked with each group's ``verdicts``, if any, see
    :func:`orderings`), every paired difference, the claims whose interval excludes 0, the
    completeness line, then the settings sweeps: ``sweeps``, dicts with ``heading`` and ``text``
    (Markdown), and ``findings`` (lines, gathered under ``Findings across settings``); last
    ``extra_sections``, dicts with ``heading`` and ``text`` (the tools' records: the sanity check
    three ways, GridPG, which metrics agree).
    ``groups``: dicts with ``heading``, ``label`` (the orderings' column), ``results``, ``sanity``
    (or None), ``diffs`` (:func:`paired_differences`) and optional ``verdicts`` and ``grid_n`` (the
    examples the settings grid ran on, said beside the marks)."""
    sections = []
    for g in groups:
        sections += [f"### {g['heading']}", comparison_table(g["results"], g.get("sanity"))]
        if g.get("extra"):
            sections.append(g["extra"])
    for g in groups:
        sections += [f"### Summary: {g['heading']}", comparison_table(g["results"], g.get("sanity"), agreement=False)]
    marked = any(g.get("verdicts") for g in groups)
    sections += [f"### {ORDERINGS_HEADING}",
                 orderings_table({g["label"]: orderings(g["results"], g["diffs"], g.get("sanity"), g.get("verdicts"))
                                  for g in groups}) + (f"\n\nMarks {MARKS_LEGEND}{_grid_sizes(groups)}." if marked else "")]
    sections += ["### Paired differences (95 % bootstrap confidence intervals)",
                 differences_table([dict(r, group=g["label"]) for g in groups for r in g["diffs"]])]
    claims = [f"- {g['label']}: {c}" for g in groups for c in supported_claims(g["diffs"])]
    sections += ["### Differences whose confidence interval excludes 0", "\n".join(claims) or "- none", completeness]
    if sweeps:
        lines = [f"- {line}" for s in sweeps for line in s.get("findings", [])]
        sections += ["### Findings across settings", "\n".join(lines) or "- none"]
        for s in sweeps:
            sections += [f"### {s['heading']}", s["text"]]
    for extra in extra_sections or []:
        if not isinstance(extra, dict) or set(extra) != {"heading", "text"} \
                or any("\n### " in f"\n{extra[k]}" for k in ("heading", "text")):
            raise ValueError(f"an extra section is a dict of heading and text, without '### ' lines of its own, got "
                             f"{extra!r:.200}")
        sections += [f"### {extra['heading']}", extra["text"]]
    return "\n\n".join(sections) + "\n"


def completeness_line(gaps: dict[str, np.ndarray]) -> str:
    """One sentence: IG's relative completeness gap with the defaults for each data set
    (``{label: gaps (N,)}``, from :func:`xai.methods.integrated_gradients.completeness_gap`)."""
    parts = [f"{label} median {np.median(g):.1e}, max {np.max(g):.1e}, share within 1 % {np.mean(np.asarray(g) <= 0.01):.3f}"
             for label, g in gaps.items()]
    return "IG completeness with the defaults (Gauss-Legendre, 32 steps): " + "; ".join(parts) + "."
