"""Which metrics agree: Kendall's tau between the methods' rankings under every pair of metrics,
with a bootstrap interval, as one matrix.

Each metric ranks the methods by a statistic of its own units (examples, tiles, grids, models x
inputs). A metric is given either as per-unit scores of every method on the same units (the
statistic is the mean; the bootstrap resamples the units jointly for all methods), or as a point
value and bootstrap replicates per method (e.g. the planted-shortcut detection AUROC, whose
resampling is its own; row r of every method's replicates must come from the same resample).
Metrics that name the same ``units`` (e.g. MoRF, LeRF and SRG on the same
examples) share their resampled indices; the others are resampled independently, as the data
they come from are. The interval of a pair's tau is the percentile interval of tau over the
replicates; tau is computed over the methods both metrics have (at least 3), each oriented so
that higher is better, so a positive tau means the two metrics prefer the same methods. A replicate
in which a metric cannot order the methods (all tied) counts as tau 0, no agreement, so that such
draws widen the interval instead of being dropped; their number is reported (``undefined_draws``).

Axis key: M metrics, K methods, N units of one metric, B bootstrap replicates.
"""
from __future__ import annotations

import textwrap

import numpy as np

from xai.analysis.stats import kendall_tau
from xai.core import check_number

__all__ = ["metric_statistics", "agreement_matrix", "plot_agreement", "agreement_sentence", "readme_sentence"]


MIN_DRAWS = 200       # bootstrap draws (or replicates) at the least, for a 2.5-97.5 % percentile interval


def _check_scores(name: str, entry: dict) -> None:
    if not isinstance(entry, dict) or not isinstance(entry.get("higher_is_better"), (bool, np.bool_)) or \
            ("scores" in entry) == ("point" in entry and "replicates" in entry):
        raise ValueError(f"metric {name!r} must be {{'scores': {{method: (N,)}}, 'higher_is_better': bool[, 'units': "
                         f"str]}} or {{'point': {{method: float}}, 'replicates': {{method: (B,)}}, 'higher_is_better': "
                         f"bool}} (a bool, not a string), got {entry!r:.200}")


def metric_statistics(metrics: dict[str, dict], *, n_boot: int = 2000, seed: int = 0) -> dict[str, dict]:
    """Each metric's methods, point statistic (K,) and replicates (B, K), oriented so that higher is
    better: ``{metric: {"methods", "point", "replicates", "n"}}``. Per-unit scores are averaged over
    the units, ignoring NaN units of a method (e.g. eMPRT where a map is constant); their replicates
    resample the units (shared by metrics of the same ``units``)."""
    n_boot = int(check_number("n_boot", n_boot, MIN_DRAWS, integer=True))
    rng = np.random.default_rng(seed)
    drawn: dict[str, np.ndarray] = {}
    out = {}
    for name, entry in metrics.items():
        _check_scores(name, entry)
        sign = 1.0 if entry["higher_is_better"] else -1.0
        if "scores" in entry:
            methods = list(entry["scores"])
            table = np.stack([np.asarray(entry["scores"][m], np.float64).ravel() for m in methods])   # (K, N)
            if np.isinf(table).any() or np.isnan(table).all(axis=1).any():
                raise ValueError(f"metric {name!r}: scores must be finite (NaN units are skipped), and every method "
                                 "needs at least one scored unit")
            units = entry.get("units", name)
            if units not in drawn:
                drawn[units] = rng.integers(0, table.shape[1], (n_boot, table.shape[1]))
            index = drawn[units]
            if index.shape[1] != table.shape[1]:
                raise ValueError(f"metric {name!r} has {table.shape[1]} units, but another metric of units {units!r} "
                                 f"has {index.shape[1]}")
            point = sign * np.nanmean(table, axis=1)
            replicates = sign * np.stack([np.nanmean(table[:, idx], axis=1) for idx in index])           # (B, K)
            n = table.shape[1]
        else:
            methods = list(entry["point"])
            if set(entry["replicates"]) != set(methods):
                raise ValueError(f"metric {name!r}: replicates must name the point's methods {methods}, got "
                                 f"{sorted(entry['replicates'])}")
            point = sign * np.array([float(entry["point"][m]) for m in methods])
            replicates = sign * np.stack([np.asarray(entry["replicates"][m], np.float64).ravel() for m in methods], 1)
            if not (np.isfinite(point).all() and np.isfinite(replicates).all()):
                raise ValueError(f"metric {name!r}: point values and replicates must be finite")
            if replicates.shape[0] < MIN_DRAWS:
                raise ValueError(f"metric {name!r}: replicates must hold at least {MIN_DRAWS} draws a method, got "
                                 f"{replicates.shape[0]}")
            n = entry.get("n")
        out[name] = {"methods": methods, "point": point, "replicates": replicates, "n": n}
    return out


def agreement_matrix(metrics: dict[str, dict], *, n_boot: int = 2000, seed: int = 0) -> dict:
    """Kendall's tau-b between every two metrics' rankings of the methods they share (at least 3),
    with a 95 % percentile interval over the bootstrap replicates: ``{"metrics", "tau", "low",
    "high" (M, M; NaN where fewer than 3 methods are shared or tau is undefined), "shared" (M, M
    method counts), "undefined_draws" (M, M), "statistics"}``. See the module's docstring for the
    metrics' form."""
    stats = metric_statistics(metrics, n_boot=n_boot, seed=seed)
    names = list(stats)
    m = len(names)
    if m < 2:
        raise ValueError(f"agreement needs at least 2 metrics, got {names}")
    tau, low, high = (np.full((m, m), np.nan) for _ in range(3))
    shared, undefined = np.zeros((m, m), int), np.zeros((m, m), int)
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            common = [k for k in stats[a]["methods"] if k in stats[b]["methods"]]
            shared[i, j] = len(common)
            if len(common) < 3:
                continue
            ia = [stats[a]["methods"].index(k) for k in common]
            ib = [stats[b]["methods"].index(k) for k in common]
            tau[i, j] = kendall_tau(stats[a]["point"][ia], stats[b]["point"][ib])
            reps = min(len(stats[a]["replicates"]), len(stats[b]["replicates"]))
            draws = np.array([_tau(stats[a]["replicates"][r, ia], stats[b]["replicates"][r, ib]) for r in range(reps)])
            undefined[i, j] = int(np.sum(~np.isfinite(draws)))
            low[i, j], high[i, j] = np.percentile(np.nan_to_num(draws, nan=0.0), [2.5, 97.5])
    return {"metrics": names, "tau": tau, "low": low, "high": high, "shared": shared, "undefined_draws": undefined,
            "statistics": stats}


def _tau(a, b) -> float:
    return kendall_tau(a, b) if np.ptp(a) > 0 and np.ptp(b) > 0 else float("nan")


def agreement_sentence(result: dict) -> str:
    """One sentence: of the metric pairs with a tau, how many agree (interval above 0), disagree
    (below 0) or are undecided, naming the pairs that disagree."""
    names, tau, low, high = result["metrics"], result["tau"], result["low"], result["high"]
    pairs = [(names[i], names[j], tau[i, j], low[i, j], high[i, j]) for i in range(len(names))
             for j in range(i + 1, len(names)) if np.isfinite(tau[i, j])]
    agree = [p for p in pairs if p[3] > 0]
    disagree = [p for p in pairs if p[4] < 0]
    text = (f"Of {len(pairs)} pairs of metrics, {len(agree)} rank the methods alike (Kendall's tau's 95 % interval "
            f"above 0), {len(disagree)} in opposite orders (below 0), and {len(pairs) - len(agree) - len(disagree)} "
            "are undecided")
    tied = int(np.sum(np.triu(result["undefined_draws"], 1)))
    if tied:
        text += (f" (bootstrap draws in which a metric tied every method counted as no agreement: {tied} over all "
                 "pairs)")
    if disagree:
        text += "; opposite: " + ", ".join(f"{a} vs {b} ({t:+.2f} [{lo:+.2f}, {hi:+.2f}])" for a, b, t, lo, hi in disagree)
    return text + "."


def source_of(metric: str) -> str:
    """What a metric scores, as its label names it in its last brackets: "SRG (MNIST-1D)" and
    "eMPRT (MNIST-1D)" both score the committed MNIST-1D model on its test set ("MNIST-1D"), while
    "shortcut detection AUROC (mnist1d_local)" scores the planted-shortcut models ("mnist1d_local");
    a label without brackets gives ""."""
    if not isinstance(metric, str):
        raise ValueError(f"a metric's label must be a string, got {metric!r}")
    if not metric.endswith(")") or "(" not in metric:
        return ""
    return metric[metric.rindex("(") + 1:-1]


def readme_sentence(result: dict, most: int = 3) -> str:
    """The short form of :func:`agreement_sentence` for the README: the counts, then the strongest
    opposite rankings between metrics of the same models and inputs (:func:`source_of`; pairs across
    sources compare different models or inputs: they stay in the figure)."""
    check_number("most", most, low=1, integer=True)
    missing = [k for k in ("metrics", "tau", "low", "high") if k not in result]
    if missing:
        raise ValueError(f"result must be agreement_matrix's (or agreement_from_record's), missing {missing}")
    names, tau, low, high = result["metrics"], np.asarray(result["tau"], float), result["low"], result["high"]
    if tau.shape != (len(names), len(names)):
        raise ValueError(f"tau must be ({len(names)}, {len(names)}) for {len(names)} metrics, got {tau.shape}")
    pairs = [(i, j) for i in range(len(names)) for j in range(i + 1, len(names)) if np.isfinite(tau[i, j])]
    agree = sum(low[i][j] > 0 for i, j in pairs)
    opposite = [(i, j) for i, j in pairs if high[i][j] < 0]
    text = (f"of {len(pairs)} pairs of the {len(names)} metrics, {agree} rank the methods alike (Kendall's tau's 95 % "
            f"interval above 0), {len(opposite)} in opposite orders and {len(pairs) - agree - len(opposite)} are undecided")
    same = sorted((p for p in opposite if source_of(names[p[0]]) and source_of(names[p[0]]) == source_of(names[p[1]])),
                  key=lambda p: tau[p])
    if same:
        shown = ", ".join(f"{names[i]} against {names[j]} ({tau[i, j]:+.2f} [{low[i][j]:+.2f}, {high[i][j]:+.2f}])"
                          for i, j in same[:most])
        verb = "pair ranks" if len(same) == 1 else "pairs rank"
        text += f"; of the same models and inputs, {len(same)} {verb} in opposite orders, the strongest: {shown}"
    return text[0].upper() + text[1:] + "."


def plot_agreement(result: dict, title: str = ""):
    """The matrix's lower triangle (it is symmetric): tau coloured from -1 (opposite rankings) to +1
    (the same) and written in each cell, bold where its 95 % interval excludes 0 and grey in brackets
    where it does not (undecided); the intervals themselves are in the record and the notebook's
    table. Where a pair shares fewer methods than the most any pair shares, the count is added."""
    import matplotlib.pyplot as plt
    names, tau = result["metrics"], np.asarray(result["tau"], float)
    m = len(names)
    lower = np.tril(np.ones((m, m), bool), -1)
    most = int(np.max(np.where(lower, result["shared"], 0))) if m > 1 else 0
    fig, ax = plt.subplots(figsize=(0.62 * m + 2.6, 0.5 * m + 1.9), layout="constrained")
    shown = ax.imshow(np.ma.masked_where(~lower | ~np.isfinite(tau), tau), cmap="RdBu", vmin=-1, vmax=1)
    for i in range(m):
        for j in range(i):
            if not np.isfinite(tau[i, j]):
                ax.text(j, i, "–", ha="center", va="center", color="grey", fontsize=10)
                continue
            decided = result["low"][i, j] > 0 or result["high"][i, j] < 0
            few = f"\n{result['shared'][i, j]} m." if result["shared"][i, j] < most else ""
            text = f"{tau[i, j]:+.2f}" if decided else f"({tau[i, j]:+.2f})"
            ax.text(j, i, text + few, ha="center", va="center", fontsize=9.5 if decided else 8.5,
                    fontweight="bold" if decided else "normal",
                    color=("white" if abs(tau[i, j]) > 0.6 else "black") if decided else "dimgrey")
    labels = ["\n".join(textwrap.wrap(n, 18)) for n in names]
    ax.set_xticks(range(m - 1), labels[:-1], rotation=45, ha="right", fontsize=9)
    ax.set_yticks(range(1, m), labels[1:], fontsize=9)
    ax.set_xlim(-0.5, m - 1.5), ax.set_ylim(m - 0.5, 0.5)
    for spine in ax.spines.values():
        spine.set_visible(False)
    fig.colorbar(shown, ax=ax, shrink=0.7, label="Kendall's tau of the methods' rankings")
    ax.set_title(title or f"Which metrics agree: Kendall's tau of their rankings of the {most} methods\n"
                          "bold: the 95 % bootstrap interval excludes 0; (grey): it does not", fontsize=10)
    return fig
