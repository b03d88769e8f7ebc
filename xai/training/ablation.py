"""Choosing a recipe on slides held out from training: variants of the training recipe (the colour
augmentation, the padding) each trained on the same folds of held-out slides and compared tile by
tile, a choice made for every test fold of the slide cross-validation without scoring that fold's
tiles (the runs that choose were trained with its slide, though: not a nested choice), and whether
a shorter schedule ranks the variants as the full one does. ``tools/hmt_stain_ablation.py`` runs it.

A run is one variant on one fold: its held-out tiles' indices and predictions. Runs of different
variants on the same fold hold the same tiles, so variants are compared paired, tile by tile.

Axis key: N tiles (pooled over the folds compared), V variants, F folds, B bootstrap draws.
"""
from __future__ import annotations

import numpy as np

from xai.analysis.stats import group_bootstrap, kendall_tau

__all__ = ["pooled_correct", "variant_table", "choice_by_test_fold", "schedule_agreement", "describe_variant",
           "ablation_markdown"]


def _check_runs(runs: dict, variants, folds) -> None:
    missing = [(v, f) for v in variants for f in folds if (v, f) not in runs]
    if missing:
        raise ValueError(f"runs missing for (variant, fold) {missing}: every variant needs every fold compared")
    for f in folds:
        indices = [np.asarray(runs[(v, f)]["test_index"]) for v in variants]
        if any(i.shape != indices[0].shape or not np.array_equal(i, indices[0]) for i in indices):
            raise ValueError(f"fold {f}: the variants' runs hold different tiles; they must share the held-out slides")


def pooled_correct(runs: dict, variant: str, folds, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The variant's held-out tiles over ``folds``: their indices int (N,) and whether each was right, bool (N,).

    Args:
        runs: ``{(variant, fold): {"test_index": int (N_f,), "pred": int (N_f,)}}``.
        y: int (all tiles,) labels, indexed by ``test_index``.
    """
    index = np.concatenate([np.asarray(runs[(variant, f)]["test_index"], np.int64) for f in folds])
    pred = np.concatenate([np.asarray(runs[(variant, f)]["pred"], np.int64) for f in folds])
    if index.shape != pred.shape:
        raise ValueError(f"{variant}: test_index and pred differ in length ({index.shape} and {pred.shape})")
    return index, pred == np.asarray(y)[index]


def variant_table(runs: dict, variants, folds, y, images, slides, *, baseline: str, n_boot: int = 2000,
                  seed: int = 0) -> dict:
    """Each variant's accuracy pooled over ``folds`` and its paired difference from ``baseline``, with
    95 % intervals from a bootstrap over source images (the tiles of one image are correlated; images
    are taken as independent: with a few held-out slides, slides are too few to resample), and its
    accuracy on each held-out slide.

    Args:
        runs: as :func:`pooled_correct`; variants: names, ``baseline`` among them; folds: the folds compared.
        y: int (N_all,); images, slides: str (N_all,) each tile's source image and slide.
    """
    if baseline not in variants:
        raise ValueError(f"baseline {baseline!r} is not among the variants {list(variants)}")
    _check_runs(runs, variants, folds)
    images, slides = np.asarray(images), np.asarray(slides)
    index, base = pooled_correct(runs, baseline, folds, y)
    table = {}
    for v in variants:
        _, right = pooled_correct(runs, v, folds, y)
        difference = right.astype(float) - base
        table[v] = {"n": int(len(right)), "accuracy": float(right.mean()),
                    "image_bootstrap95": group_bootstrap(right.astype(float), images[index], n_boot, seed),
                    f"minus_{baseline}": float(difference.mean()),
                    f"minus_{baseline}_image_bootstrap95": group_bootstrap(difference, images[index], n_boot, seed),
                    "per_slide": {str(s): float(right[slides[index] == s].mean()) for s in np.unique(slides[index])}}
    return table


def choice_by_test_fold(runs: dict, variants, ablation_folds, all_folds, y) -> dict:
    """For every test fold of the cross-validation, the variant with the best accuracy pooled over the
    ablation folds other than it: a fold's own tiles are never scored for its choice (the runs that
    score were trained with its slide among theirs: this is not a nested choice). ``chosen`` is that variant
    where every test fold agrees, else None (each fold would then train its own choice).

    Returns ``{"by_test_fold": {fold: variant or None}, "chosen": variant or None, "scores": ...}``;
    a test fold that is the only ablation fold has no choice (None).
    """
    _check_runs(runs, variants, ablation_folds)
    by_fold, scores = {}, {}
    for k in all_folds:
        others = [f for f in ablation_folds if f != k]
        if not others:
            by_fold[int(k)] = None
            continue
        accuracy = {v: float(pooled_correct(runs, v, others, y)[1].mean()) for v in variants}
        scores[int(k)] = accuracy
        best = max(accuracy.values())
        winners = [v for v in variants if accuracy[v] == best]
        by_fold[int(k)] = winners[0] if len(winners) == 1 else None          # a tie chooses nothing
    values = set(by_fold.values())
    return {"by_test_fold": by_fold, "chosen": values.pop() if len(values) == 1 and None not in values else None,
            "scores": scores, "rule": "best accuracy pooled over the ablation folds other than the test fold; a tie "
                                      "chooses nothing"}


def schedule_agreement(short: dict, full: dict, variants, folds, y) -> dict:
    """Does the short schedule rank the variants as the full one does, on the ``folds`` both ran?
    ``short`` and ``full``: runs as :func:`pooled_correct`'s. Kendall's tau between the two orders of
    pooled accuracy, and each schedule's best variant."""
    if len(folds) < 1 or len(variants) < 2:
        raise ValueError(f"schedule_agreement needs a fold and two variants, got folds {folds}, variants {variants}")
    _check_runs(short, variants, folds)
    _check_runs(full, variants, folds)
    a = [float(pooled_correct(short, v, folds, y)[1].mean()) for v in variants]
    b = [float(pooled_correct(full, v, folds, y)[1].mean()) for v in variants]
    return {"folds": [int(f) for f in folds], "short": dict(zip(variants, a)), "full": dict(zip(variants, b)),
            "kendall_tau": kendall_tau(a, b), "best_short": variants[int(np.argmax(a))],
            "best_full": variants[int(np.argmax(b))],
            "same_best": bool(variants[int(np.argmax(a))] == variants[int(np.argmax(b))])}


_COLOUR = {"none": "no colour augmentation", "rgb": "RGB gain and offset", "lab": "LAB statistics (RandStainNA-style)"}


def describe_variant(fields: dict) -> str:
    """A variant's recipe in words, from its ``hmt_utils.TrainConfig`` fields (padding, stem_kernel,
    colour_augment, hed_strength; each must be given, so that the words do not follow the defaults)."""
    missing = [k for k in ("padding", "stem_kernel", "colour_augment") if k not in fields]
    if missing or (fields.get("colour_augment") == "hed" and "hed_strength" not in fields):
        raise ValueError(f"a variant must name padding, stem_kernel and colour_augment (and hed_strength for 'hed'), "
                         f"got {fields}")
    net = f"{fields['padding']} padding, {fields['stem_kernel']} × {fields['stem_kernel']} stem"
    colour = (f"HED jitter {fields['hed_strength']:g}" if fields["colour_augment"] == "hed"
              else _COLOUR.get(fields["colour_augment"], fields["colour_augment"]))
    return f"{net}; {colour}"


def _interval(pair) -> str:
    return "-" if pair is None else f"[{pair[0]:.3f}, {pair[1]:.3f}]"


def ablation_markdown(summary: dict, epochs: str | None = None) -> str:
    """``tools/hmt_stain_ablation.py``'s summary as Markdown: a variant a row (its recipe, accuracy on
    the held-out slides pooled with its interval, the paired difference from the baseline, each
    slide's accuracy, its maps' artefacts), then the folds and the choice. ``epochs``: the schedule
    (default: the shortest with a table)."""
    schedules = {e: s for e, s in summary.get("schedules", {}).items() if "table" in s}
    if not schedules:
        raise ValueError("the summary has no schedule with a table yet: run tools/hmt_stain_ablation.py")
    epochs = str(epochs) if epochs is not None else min(schedules, key=int)
    if epochs not in schedules:
        raise ValueError(f"no table for {epochs} epochs; the summary has {sorted(schedules, key=int)}")
    entry, base = schedules[epochs], summary["baseline"]
    slides = [s for held in entry["held_out"] for s in held]
    lines = [f"| variant | recipe | accuracy, slides {', '.join(s[-2:] for s in slides)} held out [95 %] | minus "
             f"{base} [95 %] | per slide | \\|IG\\| centre / outside | columns alternate | Grad-CAM frame share |",
             "|---|---|---|---|---|---|---|---|"]
    for v in entry["variants"]:
        row, marks = entry["table"][v], entry["artefacts"][v]
        per_slide = ", ".join(f"{row['per_slide'][s]:.3f}" for s in slides)
        minus = "-" if v == base else f"{row[f'minus_{base}']:+.3f} {_interval(row[f'minus_{base}_image_bootstrap95'])}"
        lines.append(f"| {v} | {describe_variant(summary['variants'][v])} | {row['accuracy']:.3f} "
                     f"{_interval(row['image_bootstrap95'])} | {minus} | {per_slide} | "
                     f"{marks['centre_to_outside']:.2f} | {marks['column_alternation']:.2f} | "
                     f"{marks['grad_cam_border_share']:.3f} |")
    choice = entry.get("choice", {})
    by_variant = {}
    for k, v in choice.get("by_test_fold", {}).items():
        by_variant.setdefault(v or "none (no other ablation fold, or a tie)", []).append(str(k))
    chosen = (f"**{choice['chosen']}** for every test fold" if choice.get("chosen") else
              "; ".join(f"{v} for fold{'s' if len(k) > 1 else ''} {', '.join(k)}" for v, k in by_variant.items()) or "-")
    lines += ["", f"{epochs} epochs a run, on {len(slides)} of the {len(summary['folds_of_slides'])} folds "
                  f"({', '.join(slides)}); intervals: a bootstrap over source images. The choice for each test fold of "
                  f"the cross-validation (the best accuracy pooled over the other ablation folds): {chosen}."]
    return "\n".join(lines)
