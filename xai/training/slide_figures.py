"""The slide cross-validation's figures (``tools/hmt_slide_cv.py``): per-fold and per-class accuracy
with their intervals beside the course split's number and the slide probe, and the held-out tiles a
fold model gets wrong and right with their Grad-CAM and IG.

Axis key: E tiles explained.
"""
from __future__ import annotations

import numpy as np

__all__ = ["cv_figure", "explanation_figure"]


def _error_bars(values, intervals):
    """Bar-chart error bars from intervals (None: no bar); a bootstrap interval of few slides can miss
    its own point estimate, so the bars are clipped at it."""
    lo = [v - (i[0] if i else v) for v, i in zip(values, intervals)]
    hi = [(i[1] if i else v) - v for v, i in zip(values, intervals)]
    return np.maximum(np.array([lo, hi]), 0)


def cv_figure(result: dict):
    """Per-fold and per-class accuracy with intervals, the course split's number, and the probe."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import hmt_utils as hmt
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.2), gridspec_kw={"width_ratios": [1.3, 1.1, 0.9]})
    folds = result["folds"]
    summary, course = result["summary"], result["course_split"]
    acc = [f["accuracy"] for f in folds]
    ax = axes[0]
    ax.bar(range(len(folds)), acc, yerr=_error_bars(acc, [f["wilson95"] for f in folds]), color="tab:blue", capsize=3,
           error_kw={"ecolor": "grey", "ls": ":"}, label="fold (bars: Wilson, tiles as independent: too narrow)")
    pooled = summary["pooled"]
    ax.axhline(pooled["accuracy"], color="black", label=f"pooled {pooled['accuracy']:.3f}")
    if pooled["slide_bootstrap95"]:
        ax.axhspan(*pooled["slide_bootstrap95"], color="grey", alpha=0.25, label="slide bootstrap 95 %")
    if course["test_accuracy"] is not None:
        label = f"course split {course['test_accuracy']:.3f} ({course['epochs']} epochs, {course['val_split']} val)"
        if course["same_schedule_as_cv"] is False:
            label += f"; CV: {result['config']['epochs']} epochs, source_image val"
        ax.axhline(course["test_accuracy"], color="tab:red", ls="--", label=label)
    ax.set_xticks(range(len(folds)), ["+".join(s.replace("CRC-Prim-HE-", "") for s in f["held_out"]) for f in folds],
                  rotation=45, ha="right")
    ax.set_xlabel("held-out slide(s)"), ax.set_ylabel("accuracy")
    ax.set_title("per fold (Wilson 95 %: tiles as independent, too narrow; read the slide bootstrap)", fontsize=8)
    ax.set_ylim(0, 1.02), ax.legend(loc="lower right", fontsize=7, framealpha=0.9)
    ax = axes[1]
    names = [n for n in hmt.CLASS_NAMES if n in summary["per_class"]]    # the classes' order, also from a sorted JSON
    blocks = [summary["per_class"][n] for n in names]
    vals = [b["accuracy"] for b in blocks]
    bars = ax.bar(range(len(names)), vals, yerr=_error_bars(vals, [b["slide_bootstrap95"] or b["wilson95"] for b in blocks]),
                  color="tab:green", capsize=3)
    for bar, b in zip(bars, blocks):
        if b["confined"]:                                   # the hatch is drawn in the edge colour: dark on orange
            bar.set_facecolor("tab:orange"), bar.set_edgecolor("0.15"), bar.set_hatch("//")
    ax.set_xticks(range(len(names)), [f"{n}\n({b['slides']} sl.)" for n, b in zip(names, blocks)], fontsize=8)
    ax.set_ylim(0, 1.02)
    ax.set_title("per class, pooled (slide bootstrap 95 %, Wilson under 3 slides; hatched: on <= 2 slides)", fontsize=8)
    ax = axes[2]
    probes = result["probe"]
    labels, values, colours = [], [], []
    for name, p in probes.items():
        if "probe_accuracy" in p:
            labels.append(f"probe: {name}"), values.append(p["probe_accuracy"]), colours.append("tab:purple")
    first = next((p for p in probes.values() if "probe_accuracy" in p), None)
    if first:
        for label, key in (("class only", "class_only_accuracy"), ("majority slide", "chance_majority"),
                           ("uniform", "chance_uniform")):
            labels.append(label), values.append(first[key]), colours.append("tab:grey")
    ax.barh(range(len(values)), values, color=colours)
    ax.set_yticks(range(len(values)), labels, fontsize=8), ax.invert_yaxis()
    ax.set_xlim(0, 1), ax.set_title("slide identity from pooled features", fontsize=9), ax.set_xlabel("accuracy")
    fig.suptitle(f"HMT, slides held out ({len(folds)} folds, {result['config']['epochs']} epochs)"
                 + (" - QUICK smoke test, not a result" if result["quick"] else ""))
    fig.tight_layout()
    return fig


def explanation_figure(explained: list[dict], n_each: int):
    """Rows: held-out tiles a fold model got wrong, then ones it got right; tile, Grad-CAM, IG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import hmt_utils as hmt
    import xai.plots as xplt
    rows = []
    for kind in ("wrong", "right"):                                     # each fold's best first, then its second...
        rows += sorted((e for e in explained if e["kind"] == kind), key=lambda e: (e["rank"], e["fold"]))[:n_each]
    if not rows:
        return None
    titles = [f"{e['kind']}: {hmt.CLASS_NAMES[e['true']]} -> {hmt.CLASS_NAMES[e['pred']]} ({e['p']:.2f})\n"
              f"{e['slide']}, fold {e['fold']}" for e in rows]                  # 0-based, as in the record
    fig = xplt.plot_grid(np.stack([e["tile"] for e in rows]),
                         {"Grad-CAM": np.stack([e["grad_cam"] for e in rows]), "IG": np.stack([e["ig"] for e in rows])},
                         row_titles=titles,
                         title="held-out slides: tiles the fold model gets wrong, then right (explaining its predicted class)")
    plt.close(fig)
    return fig
