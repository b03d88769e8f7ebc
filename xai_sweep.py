"""Settings as an axis of the comparison: each method in several settings (IG's baseline, the noise
tunnel's sigma, RISE's masks...), each scored under several evaluation settings (ROAD's fill and the
granularity of the ranking), and, for every pair of methods, how often the ordering holds.

A claim "A beats B on SRG" holds in one cell of the grid (a setting of A, a setting of B, an
evaluation setting) when the paired bootstrap confidence interval of A - B excludes 0 in A's
favour. :func:`robustness` counts the cells: **robust** when it holds in every cell, **reversed
somewhere** when B wins with an interval excluding 0 in at least one cell, **setting-dependent**
otherwise. Where a method's baseline and the removal fill share a reference (IG from a blurred
tile and a blur fill), the cell says so (:data:`SHARED_REFERENCE`), so that a reader can see
whether an advantage comes from the metric agreeing with the method.

Axis key: N examples; a grid cell is (setting of A, setting of B, evaluation).
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

import xai_metrics as xm
from xai_compare import paired_bootstrap

__all__ = ["EVALUATIONS", "SHARED_REFERENCE", "METRICS", "method_variants", "evaluate_grid", "robustness",
           "robustness_table", "shared_reference"]

# ROAD's noisy linear imputation, a blur and a constant (0: what no baseline of the sweep is, for
# inputs whose range does not start at 0, and what the zeros baseline is otherwise), each ranking
# pixels and 8 x 8 patches (4 positions in 1D)
EVALUATIONS = {f"{fill}, {grain}": {"fill": fill, "granularity": grain}
               for fill in ("road", "blur", "zeros") for grain in ("pixels", "patches")}
# (method setting's reference, evaluation fill) pairs that remove information towards the same input
SHARED_REFERENCE = {("blur", "blur"), ("zeros", "zeros"), ("blur", "road")}
METRICS = {"srg": True, "morf_auc": False, "lerf_auc": True}            # metric -> higher is better


def shared_reference(method_reference: str | None, fill: str) -> bool:
    """Whether a method setting's reference (a baseline such as "blur" or "zeros"; None: none) and
    an evaluation's fill remove information towards the same input. ROAD's imputation fills from
    the neighbours, close to what a blur keeps, so ("blur", "road") counts as shared too."""
    return method_reference is not None and (method_reference, fill) in SHARED_REFERENCE


def method_variants(model, x, classes, *, value_range: tuple, blur_sigma: float = 10.0, ig_steps: int = 32,
                    tunnel_noise=(0.05, 0.15), tunnel_samples: int = 10, rise_settings=((1000, None),),
                    uniform_samples: int = 4, seed: int = 0, batch_size: int = 128) -> tuple[dict, dict]:
    """The settings swept, each method's maps in each: ``({method: {setting: maps}}, references)``.

    - "IG": baselines zeros, white (the range's top), mean, blur (``blur_sigma``), uniform
      (``uniform_samples`` draws), and the noise tunnel over IG (SmoothGrad of IG from zeros) at each
      ``tunnel_noise`` (sigma as a share of the range; ``tunnel_samples`` draws of ``ig_steps`` / 4
      steps, to bound the cost): the setting "zeros" is the tunnel off.
    - "Grad-CAM": its default layer (no setting to sweep that changes its definition).
    - "RISE": each ``(n_masks, cell_size)`` of ``rise_settings`` (None: RISE's default cell).
    ``references``: ``{(method, setting): "blur" | "zeros" | None}``, the input each baseline
    stands for, for :func:`robustness`. ``value_range``: ``(lo, hi)`` of the data (never guessed)."""
    import xai_cam
    import xai_gradients
    import xai_integrated_gradients as xig
    import xai_perturbation
    lo, hi = value_range
    ig = {}
    for baseline in ("zeros", "white", "mean", "blur", "uniform"):
        ig[baseline] = xig.integrated_gradients(model, x, classes, baseline=baseline, steps=ig_steps, value_range=(lo, hi),
                                                blur_sigma=blur_sigma, baseline_samples=uniform_samples, seed=seed,
                                                batch_size=batch_size)
    for noise in tunnel_noise:
        ig[f"tunnel {noise:g}"] = xai_gradients.smoothgrad(
            model, x, classes, base="integrated_gradients", samples=tunnel_samples, steps=max(4, ig_steps // 4),
            noise=noise, value_range=(lo, hi), seed=seed, batch_size=batch_size)
    rise = {f"{m} masks, cell {c or 'default'}": xai_perturbation.rise(model, x, classes, n_masks=m, cell_size=c, seed=seed,
                                                                         batch_size=batch_size)
            for m, c in rise_settings}
    variants = {"IG": ig, "Grad-CAM": {"default": xai_cam.grad_cam(model, x, classes)}, "RISE": rise}
    references = {("IG", "zeros"): "zeros", ("IG", "blur"): "blur"}
    return variants, references


def evaluate_grid(model, x, classes, variants: dict[str, dict[str, np.ndarray]], evaluations: dict[str, dict], *,
                  patch: int, steps: int = 10, noise_std: float = 0.01, value_range: float | None = None,
                  seed: int = 0, batch_size: int = 256, log: Callable | None = None) -> dict:
    """Every method setting's maps scored under every evaluation setting.

    ``variants``: ``{method: {setting: maps}}``, maps of ``x`` as :func:`xai_metrics.removal_curves`
    takes them. ``evaluations``: ``{label: {"fill": "road" | "blur" | "zeros" | number,
    "granularity": "pixels" | "patches"}}`` (e.g. :data:`EVALUATIONS`); ``patch`` is the side of a
    patch. Returns ``{(method, setting, evaluation): {"srg", "morf_auc", "lerf_auc": float (N,)}}``.
    """
    if not variants or not evaluations:
        raise ValueError("variants and evaluations must each hold at least one entry")
    grid = {}
    for label, ev in evaluations.items():
        if set(ev) != {"fill", "granularity"} or ev["granularity"] not in ("pixels", "patches"):
            raise ValueError(f"evaluation {label!r} must be {{'fill': ..., 'granularity': 'pixels' | 'patches'}}, "
                             f"got {ev!r}")
        for method, settings in variants.items():
            for setting, maps in settings.items():
                curves = xm.removal_curves(model, x, maps, classes, steps=steps, fill=ev["fill"], noise_std=noise_std,
                                           value_range=value_range, seed=seed, batch_size=batch_size,
                                           patch=patch if ev["granularity"] == "patches" else 1)
                grid[(method, setting, label)] = {k: np.asarray(curves[k], np.float64) for k in METRICS}
                if log:
                    log(f"{method} ({setting}), {label}: SRG {grid[(method, setting, label)]['srg'].mean():+.3f}")
    return grid


def robustness(grid: dict, *, references: dict | None = None, metrics=tuple(METRICS), n_boot: int = 2000,
               seed: int = 0) -> list[dict]:
    """For every metric and pair of methods, the grid's cells (a setting of each method and an
    evaluation): in how many the first method wins, the second wins (paired 95 % interval excluding
    0) or neither, the verdict, and each cell. ``references``: ``{(method, setting): reference}``
    (e.g. ``("IG", "blur"): "blur"``) marks cells whose method shares its reference with the fill."""
    references = references or {}
    methods = list(dict.fromkeys(m for m, _, _ in grid))
    evaluations = list(dict.fromkeys(e for _, _, e in grid))
    settings = {m: list(dict.fromkeys(s for mm, s, _ in grid if mm == m)) for m in methods}
    rows = []
    for metric in metrics:
        higher = METRICS[metric]
        for i, a in enumerate(methods):
            for b in methods[i + 1:]:
                cells = []
                for sa in settings[a]:
                    for sb in settings[b]:
                        for ev in evaluations:
                            if (a, sa, ev) not in grid or (b, sb, ev) not in grid:
                                continue
                            ci = paired_bootstrap(grid[(a, sa, ev)][metric], grid[(b, sb, ev)][metric],
                                                  n_boot=n_boot, seed=seed)
                            winner = None
                            if ci["excludes_zero"]:
                                winner = a if (ci["mean"] > 0) == higher else b
                            fill = ev.split(",")[0]
                            shared = [m for m, s in ((a, sa), (b, sb)) if shared_reference(references.get((m, s)), fill)]
                            cells.append({"first_setting": sa, "second_setting": sb, "evaluation": ev,
                                          "winner": winner, "shared_reference": shared, **ci})
                wins = {m: sum(c["winner"] == m for c in cells) for m in (a, b)}
                lead = a if wins[a] >= wins[b] else b
                other = b if lead == a else a
                verdict = ("robust" if wins[lead] == len(cells) else
                           "reversed somewhere" if wins[other] > 0 else "setting-dependent")
                rows.append({"metric": metric, "first": a, "second": b, "cells": len(cells), "wins_first": wins[a],
                             "wins_second": wins[b], "ties": len(cells) - wins[a] - wins[b], "leader": lead,
                             "share_leader": wins[lead] / len(cells) if cells else 0.0, "verdict": verdict,
                             "detail": cells})
    return rows


def robustness_table(rows: list[dict]) -> str:
    """Markdown: per metric and pair, the cells each method wins, the ties and the verdict."""
    lines = ["| metric | pair | cells | first wins | second wins | neither | leader holds in | verdict |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['metric']} | {r['first']} vs {r['second']} | {r['cells']} | {r['wins_first']} | "
                     f"{r['wins_second']} | {r['ties']} | {r['leader']}: {r['share_leader']:.0%} | {r['verdict']} |")
    return "\n".join(lines)
