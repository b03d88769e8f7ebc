"""HMT without leakage: cross-validation with whole slides held out, a probe for slide identity in a
model's features, and explanations of held-out tiles that a fold model gets wrong and right.

    python tools/hmt_slide_cv.py                           # full run: 10 folds (one slide each), 64 epochs
    python tools/hmt_slide_cv.py --epochs 20               # a shorter schedule (recorded in the JSON)
    python tools/hmt_slide_cv.py --quick --out /tmp/cv     # smoke test: a few tiles a class, well under a minute
    python tools/hmt_slide_cv.py --restart                 # retrain every fold, ignoring the saved ones
    python tools/hmt_slide_cv.py --epochs 20 --schedule-check 0   # and fold 0 again at the recipe's full schedule
    python tools/hmt_slide_cv.py --figures-only            # both figures again from the saved record, no data or training
    python tools/hmt_slide_cv.py --name hmt_slide_cv_full  # a run over several sessions, beside the record others read

Why: the course's split cuts both sides from the same source images (495 of its 496 HMT_test tiles
share a source image with HMT_train), so its test accuracy measures how well the model knows those
images. Here the 5000 tiles are pooled and the 10 slides dealt into folds (``--folds``, default: one
slide a fold). Each fold's model is trained with the committed recipe (``hmt_utils.TrainConfig``
defaults, ``seed=--seed``) on the other slides and tested on the held-out slides. The epoch is
chosen on an inner validation split grouped by source image within the training slides (not by
slide), so the validation accuracy in each fold record is more optimistic than its held-out slide.
The recipe itself was chosen on validation splits of HMT_train, which spans all ten slides, so every
held-out slide had a say in it: a mild selection bias in the cross-validation's favour.

Reported: accuracy pooled over folds with a Wilson interval (tiles taken as independent: too narrow,
as tiles of one slide or source image are correlated) and a slide bootstrap (slides resampled: the
one to read), per class and per fold, beside the course split's number and schedule
(``course_split.epochs``, ``.val_split``); classes found on one or two slides only (EMPTY: 06 and 10)
are reported apart, with what they can and cannot show (including whether the class was absent from
the fold's inner validation split). The probe is a logistic regression on the global-average-pooled
features of the committed model, of the committed model before it (``--previous-model``, where kept)
and of the course model, cross-validated by source image, predicting
the slide; it is read against chance and against predicting the slide from the class alone, through
a paired bootstrap over source images of (probe correct - class-only correct): it assumes source
images independent (tiles of one image are not) and holds the probe's cross-validated predictions
fixed. The probed models were trained on most of the probed tiles (the 4504 of HMT_train among the
5000; the committed model fitted 4056 of them): the probe shows what their features hold for tiles
they learned, which may separate slides better than new tissue would.

Writes, atomically (``<out>`` is ``--out``: the repository by default, required with ``--quick``; every
``hmt_slide_cv`` below is ``--name``'s stem, so that a run spanning sessions, e.g. ``--name
hmt_slide_cv_full``, leaves the complete record that the README, HMT.ipynb and the tests read as it is):
- ``<out>/models/hmt_slide_cv_fold{k}.npz``, after each fold k (0-based): ``test_index`` int64
  (N_k,) the held-out tiles (``load_hmt`` order: HMT_train then HMT_test), ``prob`` float32 (N_k, K),
  the tiles explained (``explained_index`` int64 (E,), ``explained_kind`` "wrong"/"right",
  ``explained_rank``, ``explained_pred``, ``explained_p``, ``explained_tile`` uint8 (E, 150, 150, 3),
  ``explained_grad_cam`` float32 (E, 150, 150), ``explained_ig`` float32 (E, 150, 150, 3)), and
  ``record_json`` (the fold record) and ``resume_key_json`` (recipe, data fingerprint, held-out
  slides, epochs, explanations a fold, IG steps). A later run reuses a fold whose key matches its
  own (``folds_reused`` in the JSON, ``"reused": true`` in the fold record); ``--restart`` ignores them.
- ``<out>/models/hmt_slide_cv_fold{k}.keras`` and its ``.json`` (the fold record and key), before the
  checkpoint: the fold's model, so that its held-out tiles can be explained by a model that never
  saw their slide (folds reused from checkpoints written before this have none).
- ``<out>/models/hmt_slide_cv.json``: rewritten after each fold and, with its ``summary``, before the
  probe (``"complete": false`` until the probe is done; a probe that fails is recorded as
  ``{"error": ...}``). Fields beside the folds: ``interval_notes`` (what each interval assumes),
  ``n_boot``, ``ig_steps``, ``explained_per_fold``, ``seed``, ``probe_note``.
- ``table`` in the JSON: the CNN, colour alone (``tools/hmt_colour_baseline.py``'s record), the recipe's
  choice (``tools/hmt_stain_ablation.py``'s) and the probe, a row each with its interval and command
  (``xai.training.across_slides``; the rows of a record not written yet are left out).
- ``<out>/models/hmt_slide_cv_predictions.npz`` (each tile's fold, prediction, probability of its
  class, slide and source image, in ``load_hmt`` order), ``<out>/figures/hmt_slide_cv.png`` and
  ``<out>/figures/hmt_slide_cv_explanations.png``.

Run it alone: on a 2-core CPU with nothing else running a fold trains about 17 s an epoch (the
recipe's 64 epochs: about 18 min a fold, 3 h for 10 folds; ``--epochs 20``: about 6 min a fold, an
hour in all). An interrupted run picks up at the first fold not saved. ``--schedule-check K`` also
trains fold K at the recipe's full schedule (saved as ``hmt_slide_cv_fold{K}_full.npz``) and records,
under ``schedule_check``, both accuracies on the same held-out tiles and the tiles each gets right
that the other misses: how far the shorter schedule is from the full one.

Axis key: N tiles, F pooled features, K classes (8), S slides (10), B bootstrap draws, E tiles explained.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import sys
import tempfile
from dataclasses import asdict

import numpy as np

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if __name__ == "__main__" and _REPO not in sys.path:     # run as a script: the repository's modules
    sys.path.insert(0, _REPO)

import hmt_utils as hmt  # noqa: E402
from xai.analysis.stats import wilson  # noqa: E402
from xai.files import atomic_open  # noqa: E402
from xai.plots import save_figure  # noqa: E402
from xai.training.across_slides import across_slides_rows  # noqa: E402
from xai.training.saving import library_versions  # noqa: E402
from xai.training.slide_figures import cv_figure, explanation_figure  # noqa: E402
from xai.training.slides import (  # noqa: E402
    INTERVAL_NOTES,
    accuracy_block,
    load_pooled,
    pooled_features,
    slide_folds,
    slide_probe,
    train_held_out,
)

QUICK = {"epochs": 1, "width": 4, "block3_width": 8, "train_crop": 64, "batch_size": 16}   # recipe fields in --quick
QUICK_FOLDS, QUICK_EXPLAIN = 2, 2
NAME = "hmt_slide_cv"         # the files' stem (--name): the record the README, HMT.ipynb and the tests read
CONFINED_SLIDES = 2     # a class found on this many slides or fewer is reported apart


# --- data ---

def _shown(path: str) -> str:
    """A path as the record shows it: relative to the repository when inside it."""
    path = os.path.abspath(path)
    return os.path.relpath(path, _REPO) if path.startswith(_REPO + os.sep) else path


def course_split_record(groups: hmt.TileGroups, is_test: np.ndarray, model_json: str, cv_epochs: int) -> dict:
    """The course split's test accuracy and schedule (from the committed model's JSON: its epochs and
    validation split, "stratified" where the JSON predates the field) and how much its test side
    shares with its training side; ``same_schedule_as_cv``: the same number of epochs as the folds."""
    train_images = set(groups.source_image[~is_test])
    shared = np.array([g in train_images for g in groups.source_image[is_test]])
    record = {"n_test": int(is_test.sum()), "test_tiles_sharing_a_source_image_with_train": int(shared.sum()),
              "source_images_train": len(train_images), "source_images_test": len(set(groups.source_image[is_test])),
              "source_images_shared": len(train_images & set(groups.source_image[is_test])),
              "test_accuracy": None, "wilson95": None, "epochs": None, "val_split": None, "same_schedule_as_cv": None,
              "model": _shown(model_json)}
    if os.path.isfile(model_json):
        with open(model_json) as f:
            provenance = json.load(f)
        acc, epochs = provenance["test_accuracy"], provenance.get("train_config", {}).get("epochs")
        n = len(hmt.CLASS_NAMES) * hmt.TEST_PER_CLASS                      # the course's HMT_test: 496 tiles
        record.update(test_accuracy=acc, wilson95=wilson(round(acc * n), n), n_test_of_model=n, epochs=epochs,
                      val_split=provenance.get("data", {}).get("val_split", "stratified"),
                      same_schedule_as_cv=None if epochs is None else epochs == cv_epochs)
    return record


# --- one fold ---

def _explain(model, x, y_true, prob, slides, fold: int, per_fold: int, ig_steps: int) -> list[dict]:
    """Grad-CAM and IG of the fold's most confident wrong tiles and, for the same true classes where
    possible, its most confident right ones; ``index``: the tile's position in ``x``."""
    import xai_utils as xu
    pred = prob.argmax(-1)
    wrong = np.flatnonzero(pred != y_true)
    wrong = wrong[np.argsort(-prob[wrong, pred[wrong]])][:per_fold]         # the most confident errors
    hits, right = np.flatnonzero(pred == y_true), []
    for c in [y_true[i] for i in wrong] + [None] * (per_fold - len(wrong)):
        pool = np.setdiff1d(hits, right)
        same = pool[y_true[pool] == c]
        pool = same if len(same) else pool                                  # the same true class where there is one
        if len(pool):
            right.append(int(pool[np.argmax(prob[pool, y_true[pool]])]))
    chosen = [("wrong", int(i), r) for r, i in enumerate(wrong)] + [("right", i, r) for r, i in enumerate(right)]
    if not chosen:
        return []
    idx = np.array([i for _, i, _ in chosen])
    xs = x[idx].astype(np.float32)                                         # (E, 150, 150, 3)
    cams = xu.grad_cam(model, xs, pred[idx], batch_size=16)                # (E, 150, 150)
    ig = xu.integrated_gradients(model, xs, pred[idx], steps=ig_steps, batch_size=64)   # (E, 150, 150, 3)
    return [{"kind": kind, "rank": rank, "index": int(i), "tile": x[i], "grad_cam": cams[j], "ig": ig[j], "fold": fold,
             "slide": str(slides[i]), "true": int(y_true[i]), "pred": int(pred[i]), "p": float(prob[i, pred[i]])}
            for j, (kind, i, rank) in enumerate(chosen)]


def run_fold(x, y, groups: hmt.TileGroups, held: list[str], config: hmt.TrainConfig, fold: int, n_folds: int,
             per_fold_explained: int, ig_steps: int):
    """Train on the slides not held out, test on the held-out ones. Returns (model, record,
    probabilities float32 (N_test, K), test mask bool (N,), explanations with ``index`` into the
    pooled tiles)."""
    model, info, prob, test = train_held_out(x, y, groups, held, config, label=f"fold {fold + 1}/{n_folds} ")
    train = ~test
    correct = prob.argmax(-1) == y[test]
    present = set(np.unique(y[train]).tolist())
    record = {"fold": fold, "held_out": held, "n_train": info["n_train"], "n_val": info["n_val"], "n_test": int(test.sum()),
              "best_epoch": info["best_epoch"], "val_accuracy": info["val_accuracy"],
              "train_seconds": round(info["train_seconds"], 1),
              "val_groups": dict(info["val_groups"], classes_absent_from_val=[
                  hmt.CLASS_NAMES[c] for c in info["val_groups"]["classes_absent_from_val"]]),
              "classes_missing_from_training": [hmt.CLASS_NAMES[c] for c in range(len(hmt.CLASS_NAMES)) if c not in present],
              "accuracy": float(correct.mean()), "wilson95": wilson(int(correct.sum()), int(len(correct))),
              "per_class": {hmt.CLASS_NAMES[c]: {"n": int(np.sum(y[test] == c)), "correct": int(correct[y[test] == c].sum())}
                            for c in np.unique(y[test])},
              # all tiles of the training slides: n_train (fitted) + n_val (inner validation) of them
              "training_slides_tiles_per_class": {hmt.CLASS_NAMES[c]: int(np.sum(y[train] == c))
                                                  for c in range(len(hmt.CLASS_NAMES))},
              "reused": False}
    explained = _explain(model, x[test], y[test], prob, groups.slide[test], fold, per_fold_explained, ig_steps)
    test_index = np.flatnonzero(test)
    for e in explained:
        e["index"] = int(test_index[e["index"]])                            # into the pooled tiles
    return model, record, prob.astype(np.float32), test, explained


def fold_model_path(fold_npz: str) -> str:
    """The fold's model beside its checkpoint (``..._fold{k}.keras`` and its provenance ``.json``),
    kept so that held-out tiles can be explained by the model that never saw their slide."""
    return os.path.splitext(fold_npz)[0] + ".keras"


def _train_and_save(x, y, groups, held, config, fold: int, n_folds: int, per_fold: int, ig_steps: int,
                    path: str, key: dict):
    """run_fold, then its model (with the fold record and key as provenance) and its checkpoint."""
    from xai.training.saving import save_model_with_provenance
    model, *saved = run_fold(x, y, groups, held, config, fold, n_folds, per_fold, ig_steps)
    save_model_with_provenance(model, fold_model_path(path), {"fold_record": saved[0], "resume_key": key})
    save_fold(path, key, *saved)
    return saved


# --- per-fold checkpoints ---

def fold_key(config: hmt.TrainConfig, fingerprint: str, held: list[str], per_fold: int, ig_steps: int) -> dict:
    """What a saved fold must match to be reused: the recipe (``hmt_utils.recipe_key``), the data, the
    held-out slides, the schedule and the explanations."""
    return {"train_config": hmt.recipe_key(config), "data_fingerprint": fingerprint, "held_out": held,
            "epochs": config.epochs, "explained_per_fold": per_fold, "ig_steps": ig_steps}


def fold_path(out: str, fold: int, name: str = NAME) -> str:
    return os.path.join(out, "models", f"{name}_fold{fold}.npz")


def save_fold(path: str, key: dict, record: dict, prob: np.ndarray, test: np.ndarray, explained: list[dict]) -> None:
    """One fold's results, atomically: what a later run needs to reuse it (see the module docstring)."""
    e = len(explained)
    arrays = {"resume_key_json": np.array(json.dumps(key, sort_keys=True)), "record_json": np.array(json.dumps(record)),
              "test_index": np.flatnonzero(test).astype(np.int64), "prob": prob.astype(np.float32),   # (N_k,), (N_k, K)
              "explained_index": np.array([d["index"] for d in explained], np.int64).reshape(e),
              "explained_kind": np.array([d["kind"] for d in explained], str).reshape(e),
              "explained_rank": np.array([d["rank"] for d in explained], np.int64).reshape(e),
              "explained_pred": np.array([d["pred"] for d in explained], np.int64).reshape(e),
              "explained_p": np.array([d["p"] for d in explained], np.float64).reshape(e),
              "explained_tile": np.array([d["tile"] for d in explained], np.uint8).reshape(e, *hmt.TILE_SHAPE),
              "explained_grad_cam": np.array([d["grad_cam"] for d in explained], np.float32).reshape(e, *hmt.TILE_SHAPE[:2]),
              "explained_ig": np.array([d["ig"] for d in explained], np.float32).reshape(e, *hmt.TILE_SHAPE)}
    _write_atomic(path, lambda f: np.savez_compressed(f, **arrays))


def load_fold(path: str, key: dict, y: np.ndarray, slides: np.ndarray):
    """A saved fold whose resume key equals ``key``, as run_fold returns it (the record marked
    ``"reused": true``), or None: no file, another key, or a file that does not read."""
    if not os.path.isfile(path):
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            if json.loads(str(z["resume_key_json"])) != json.loads(json.dumps(key, sort_keys=True)):
                return None
            record, test_index, prob = json.loads(str(z["record_json"])), z["test_index"], z["prob"]
            explained = _saved_explanations(z, record["fold"], y, slides)
    except (OSError, ValueError, KeyError) as err:
        print(f"ignoring {path}: {err}", flush=True)
        return None
    test = np.zeros(len(y), bool)
    test[test_index] = True
    if record["n_test"] != len(test_index) or prob.shape != (len(test_index), len(hmt.CLASS_NAMES)):
        return None
    return dict(record, reused=True), prob, test, explained


def _saved_explanations(z, fold: int, y: np.ndarray, slides: np.ndarray) -> list[dict]:
    """The explained tiles of an open fold file, as run_fold gives them; ``y`` and ``slides`` (N,) in
    ``load_hmt`` order give each tile's class and slide."""
    return [{"kind": str(kind), "rank": int(rank), "index": int(i), "tile": tile, "grad_cam": cam, "ig": ig,
             "fold": fold, "slide": str(slides[i]), "true": int(y[i]), "pred": int(pred), "p": float(p)}
            for kind, rank, i, pred, p, tile, cam, ig in zip(
                z["explained_kind"], z["explained_rank"], z["explained_index"], z["explained_pred"],
                z["explained_p"], z["explained_tile"], z["explained_grad_cam"], z["explained_ig"])]


def schedule_check(args, x, y, groups, folds, config, fingerprint, per_fold, ig_steps, y_pred) -> dict:
    """Fold ``args.schedule_check`` trained again at the recipe's full schedule: both accuracies on
    the same held-out tiles, and how many tiles each gets right that the other misses."""
    k = args.schedule_check
    if k >= len(folds):
        raise SystemExit(f"--schedule-check {k}: there are only {len(folds)} folds (0..{len(folds) - 1})")
    full = hmt.TrainConfig(**dict(asdict(config), epochs=2 if args.quick else hmt.TrainConfig.epochs))  # quick: 2
    key = fold_key(full, fingerprint, folds[k], per_fold, ig_steps)
    path = os.path.join(args.out, "models", f"{args.name}_fold{k}_full.npz")
    saved = None if args.restart else load_fold(path, key, y, groups.slide)
    if saved is None:
        saved = _train_and_save(x, y, groups, folds[k], full, k, len(folds), per_fold, ig_steps, path, key)
    fold, prob, test, _ = saved
    short_right = y_pred[test] == y[test]
    full_right = prob.argmax(-1) == y[test]
    result = {"fold": k, "held_out": folds[k], "n_test": int(test.sum()), "epochs_short": config.epochs,
              "epochs_full": full.epochs, "accuracy_short": float(short_right.mean()),
              "accuracy_full": float(full_right.mean()), "difference_full_minus_short":
                  float(full_right.mean() - short_right.mean()),
              "right_only_with_full": int(np.sum(full_right & ~short_right)),
              "right_only_with_short": int(np.sum(short_right & ~full_right)),
              "best_epoch_full": fold["best_epoch"], "train_seconds_full": fold["train_seconds"], "checkpoint": _shown(path)}
    print(f"schedule check, fold {k} {folds[k]}: {result['accuracy_short']:.4f} at {config.epochs} epochs, "
          f"{result['accuracy_full']:.4f} at {full.epochs}", flush=True)
    return result


# --- summaries and figures ---

def confined_classes(y, slides, folds_record, y_pred) -> dict:
    """Classes on at most CONFINED_SLIDES slides: per slide, its tiles, their accuracy when held out,
    what the fold's training slides had of the class and whether the fold's inner validation split
    lacked it (then its epoch was chosen without the class); with what that can and cannot show."""
    out = {}
    for c in np.unique(y):
        names, counts = np.unique(slides[y == c], return_counts=True)
        if len(names) > CONFINED_SLIDES:
            continue
        per_slide = {}
        for s, n in zip(names, counts):
            fold = next(f for f in folds_record if s in f["held_out"])
            mask = (y == c) & (slides == s)
            per_slide[str(s)] = {"tiles": int(n), "accuracy_held_out": float(np.mean(y_pred[mask] == c)),
                                 "training_slides_tiles_of_class": fold["training_slides_tiles_per_class"][hmt.CLASS_NAMES[c]],
                                 "absent_from_fold_validation": hmt.CLASS_NAMES[c] in fold["val_groups"]["classes_absent_from_val"]}
        name = hmt.CLASS_NAMES[c]
        out[name] = {"slides": per_slide, "note": (
            f"{name} occurs on {len(names)} slide(s) only ({', '.join(f'{s}: {n}' for s, n in zip(names, counts))} tiles). "
            "Each held-out slide's accuracy shows how the class transferred from the other slide(s) to that one, with the "
            "training tiles listed; it is no estimate for a new slide, and no slide-level interval can be formed. Where "
            "absent_from_fold_validation is true, the fold's epoch was chosen on a validation split without the class. "
            "Pooled numbers are given with and without it.")}
    return out


def schedule_reading(folds_record, epochs: int) -> dict:
    """Which folds chose their last epoch: their validation accuracy was still rising when the
    schedule ended, so a longer one might have scored more on them."""
    last = [int(f["fold"]) for f in folds_record if int(f["best_epoch"]) >= epochs]
    reading = (f"{len(last)} of {len(folds_record)} folds chose their last epoch ({epochs}): the schedule is too short "
               "for them" if last else f"every fold chose an epoch before its last ({epochs}): the schedule is long enough")
    return {"epochs": int(epochs), "folds_at_last_epoch": last, "reading": reading}


def summarise(y, slides, y_pred, folds_record, n_boot, seed, epochs: int) -> dict:
    correct = y_pred == y
    confined = confined_classes(y, slides, folds_record, y_pred)
    keep = ~np.isin(y, [hmt.CLASS_NAMES.index(n) for n in confined])
    per_class = {}
    for c in np.unique(y):
        m = y == c
        per_class[hmt.CLASS_NAMES[c]] = accuracy_block(correct[m], slides[m], n_boot, seed)
        per_class[hmt.CLASS_NAMES[c]]["confined"] = hmt.CLASS_NAMES[c] in confined
    per_slide = {str(s): accuracy_block(correct[slides == s], slides[slides == s], n_boot, seed) for s in np.unique(slides)}
    absent = {"+".join(f["held_out"]): f["val_groups"]["classes_absent_from_val"] for f in folds_record
              if f["val_groups"]["classes_absent_from_val"]}
    return {"pooled": accuracy_block(correct, slides, n_boot, seed), "classes_absent_from_fold_validation": absent,
            "pooled_without_confined_classes": accuracy_block(correct[keep], slides[keep], n_boot, seed),
            "per_class": per_class, "per_slide": per_slide, "confined_classes": confined,
            "schedule": schedule_reading(folds_record, epochs)}


# --- main ---

def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=None, help="epochs a fold (default: the recipe's; --quick: 1)")
    parser.add_argument("--folds", type=int, default=None,
                        help=f"folds of slides (default: one slide a fold; --quick: {QUICK_FOLDS})")
    parser.add_argument("--quick", action="store_true", help="smoke test: a tile a class and slide, 1 epoch, tiny width")
    parser.add_argument("--out", default=None, help="folder for models/ (the JSON, the fold files) and figures/ "
                        "(default: the repository; required with --quick)")
    parser.add_argument("--restart", action="store_true", help="retrain every fold, ignoring saved fold files")
    parser.add_argument("--name", default=NAME,
                        help=f"stem of every file written (default {NAME}): another name keeps a run that spans "
                             "sessions apart from the complete record the others read until it is done")
    parser.add_argument("--schedule-check", type=int, default=None, metavar="FOLD",
                        help="also train this fold at the recipe's full schedule and compare (with --epochs)")
    parser.add_argument("--data", default=None, help="HMT folder (default: $HMT_DIR or data/hmt)")
    parser.add_argument("--model", default=os.path.join(_REPO, "models", "HMT.keras"), help="committed model to probe")
    parser.add_argument("--previous-model", default=os.path.join(_REPO, "models", "previous", "HMT.keras"),
                        help="the committed model before this recipe, probed beside it (skipped where absent; '' to skip)")
    parser.add_argument("--course-model", default=os.path.join(os.path.dirname(_REPO), "shared", "models", "course", "HMT.h5"),
                        help="course model to probe ('' to skip)")
    parser.add_argument("--explain", type=int, default=None,
                        help=f"held-out tiles explained, wrong and right each (default 6; --quick: {QUICK_EXPLAIN})")
    parser.add_argument("--figures-only", action="store_true",
                        help="draw both figures again from <out>/models/hmt_slide_cv.json, the fold files and the "
                             "predictions file: no data, no training")
    parser.add_argument("--seed", type=int, default=0,
                        help="seeds the folds, the quick subset, the training (TrainConfig.seed: weights, batch order, "
                             "augmentation, inner validation split; 0 is the committed recipe's), bootstraps and probe")
    args = parser.parse_args(argv)
    if args.epochs is not None and args.epochs < 1:
        parser.error(f"--epochs must be >= 1, got {args.epochs}")
    if args.explain is not None and args.explain < 0:
        parser.error(f"--explain must be >= 0, got {args.explain}")
    if args.schedule_check is not None and (args.epochs is None or args.schedule_check < 0):
        parser.error("--schedule-check FOLD needs a shorter schedule to compare (--epochs N) and a fold >= 0")
    training = {"--epochs": args.epochs is not None, "--folds": args.folds is not None, "--quick": args.quick,
                "--restart": args.restart, "--schedule-check": args.schedule_check is not None,
                "--explain": args.explain is not None}
    if args.figures_only and any(training.values()):
        parser.error(f"--figures-only redraws the saved record as it is; leave out {[k for k, v in training.items() if v]}")
    if args.quick and args.out is None:
        parser.error("--quick needs --out FOLDER (e.g. --out /tmp/hmt-cv): its smoke-test record would otherwise "
                     "overwrite the repository's models/hmt_slide_cv.json and figures")
    if not re.fullmatch(r"[a-z0-9_]+", args.name):
        parser.error(f"--name must be lower-case letters, digits and '_', got {args.name!r}")
    if args.out is None:
        args.out = _REPO
    if args.explain is None:
        args.explain = QUICK_EXPLAIN if args.quick else 6
    return args


def _write_atomic(path: str, write) -> None:
    """``write(file)`` into a temporary file beside ``path``, then renamed into place."""
    with atomic_open(path, "wb") as f:
        write(f)


def _table(record: dict, out: str):
    """The rows of HMT across slides (``xai.training.across_slides``) with the colour baseline's and the
    ablation's records where they were written; records of other folds are named in ``{"error": ...}``."""
    try:
        return across_slides_rows(record, *(_read_json(os.path.join(out, "models", name)) for name in
                                            ("hmt_colour_baseline.json", "hmt_stain_ablation.json")))
    except ValueError as err:
        print(f"the table across slides is left out: {err}", flush=True)
        return {"error": str(err)}


def _read_json(path: str) -> dict | None:
    """A record another tool wrote, or None where it has not run."""
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def _write_json(path: str, record: dict) -> None:
    _write_atomic(path, lambda f: f.write((json.dumps(record, indent=1, sort_keys=True) + "\n").encode()))


def _probe_models(args, x, y, groups, is_test, n_boot: int) -> dict:
    """The slide probe on each model's pooled features; a model that fails is recorded as
    ``{"error": ...}`` so the run goes on."""
    import keras
    probes = {}
    seen = int(np.sum(~is_test))                                            # tiles of the course's HMT_train
    tiles = lambda: (x[i:i + 64].astype(np.float32) for i in range(0, len(x), 64))      # noqa: E731
    for name, path, loader, inputs in (
            ("committed model", args.model, keras.models.load_model, tiles),
            ("previous committed model", args.previous_model, keras.models.load_model, tiles),
            ("course model", args.course_model, hmt.load_course_model, lambda: hmt.course_model_inputs(x, batch_size=64))):
        if not path or not os.path.isfile(path):
            probes[name] = {"skipped": f"no model at {_shown(path) if path else repr(path)}"}
            continue
        try:
            features = pooled_features(loader(path), inputs())                # (N, F)
            probes[name] = dict(slide_probe(features, groups.slide, y, groups.source_image, class_names=hmt.CLASS_NAMES,
                                            n_splits=3 if args.quick else 5, n_boot=n_boot, seed=args.seed),
                                path=_shown(path), probed_tiles_from_hmt_train=seen)
        except Exception as err:                                          # noqa: BLE001  recorded, the run goes on
            probes[name] = {"error": f"{type(err).__name__}: {err}", "path": _shown(path)}
            print(f"probe {name} failed: {probes[name]['error']}", flush=True)
            continue
        p = probes[name]
        print(f"probe {name}: slide from features {p['probe_accuracy']:.3f}, from the class alone "
              f"{p['class_only_accuracy']:.3f} (difference {p['difference']:+.3f}, 95 % {p['difference_bootstrap95']}), "
              f"majority {p['chance_majority']:.3f}: {p['reading']}", flush=True)
    return probes


def probe_note(is_test: np.ndarray) -> str:
    return (f"The probed models were trained on most of the probed tiles: {int(np.sum(~is_test))} of the {len(is_test)} "
            "are HMT_train (the committed model fitted part of it and validated on the rest; the course model was "
            "trained on the course's HMT_train). Features of learned tiles may separate slides better than new tissue "
            "would, so the probe shows what the features hold for those tiles, not for unseen slides.")


def redraw_figures(out: str, name: str = NAME) -> dict:
    """Both figures again from a complete record in ``<out>/models``: the JSON, the explained tiles
    saved in each fold file, and the predictions file for each tile's class and slide. Returns the record."""
    json_path = os.path.join(out, "models", f"{name}.json")
    if not os.path.isfile(json_path):
        raise SystemExit(f"--figures-only: no record at {json_path}; run the cross-validation first")
    with open(json_path) as f:
        record = json.load(f)
    if not record.get("complete"):
        raise SystemExit(f"--figures-only: {json_path} is not complete (its probe has not run); finish the run first")
    with np.load(os.path.join(out, "models", f"{name}_predictions.npz"), allow_pickle=False) as z:
        y, slides = z["y_true"], z["slide"]                                 # (N,), load_hmt order
    explained = []
    for fold in record["folds"]:
        with np.load(fold_path(out, fold["fold"], name), allow_pickle=False) as z:
            explained += _saved_explanations(z, fold["fold"], y, slides)
    fig = explanation_figure(explained, record["explain_requested"])
    if fig is not None:
        save_figure(fig, os.path.join(out, "figures", f"{name}_explanations.png"), dpi=80)
    save_figure(cv_figure(record), os.path.join(out, "figures", f"{name}.png"))
    print(f"redrew {name}.png and {name}_explanations.png in {os.path.join(out, 'figures')} from {json_path}",
          flush=True)
    return record


def _run_folds(args, x, y, groups, folds, config, fingerprint, per_fold: int, ig_steps: int, record: dict,
               json_path: str):
    """Each fold trained (or reused from its checkpoint) and tested on its held-out slides, the record written
    after each. Returns the pooled predictions (N,), the true class's probability (N,), each tile's fold (N,)
    and the tiles explained."""
    y_pred = np.full(len(y), -1)
    p_true = np.zeros(len(y))
    fold_of = np.full(len(y), -1)
    explained = []
    for k, held in enumerate(folds):
        key = fold_key(config, fingerprint, held, per_fold, ig_steps)
        path = fold_path(args.out, k, args.name)
        saved = None if args.restart else load_fold(path, key, y, groups.slide)
        if saved is None:
            saved = _train_and_save(x, y, groups, held, config, k, len(folds), per_fold, ig_steps, path, key)
        fold, prob, test, shown = saved
        y_pred[test], p_true[test], fold_of[test] = prob.argmax(-1), prob[np.arange(len(prob)), y[test]], k
        explained += shown
        record["folds"].append(dict(fold, checkpoint=_shown(path)))
        if fold["reused"]:
            record["folds_reused"].append(k)
        absent = fold["val_groups"]["classes_absent_from_val"]
        print(f"fold {k} (of 0..{len(folds) - 1}) held out {held}: accuracy {fold['accuracy']:.4f} on {fold['n_test']} tiles, "
              f"{fold['train_seconds'] / 60:.1f} min" + (" (reused from " + _shown(path) + ")" if fold["reused"] else "")
              + (f"; absent from its validation: {', '.join(absent)}" if absent else ""), flush=True)
        _write_json(json_path, record)
    return y_pred, p_true, fold_of, explained


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.figures_only:
        return redraw_figures(args.out, args.name)
    quick_fields = QUICK if args.quick else {}
    epochs = args.epochs if args.epochs is not None else quick_fields.get("epochs")
    fields = dict(quick_fields, **({"epochs": epochs} if epochs is not None else {}))
    config = hmt.TrainConfig(val_split="source_image", seed=args.seed, **fields)
    n_boot = 200 if args.quick else 2000
    ig_steps = 4 if args.quick else 32
    json_path = os.path.join(args.out, "models", f"{args.name}.json")
    work = tempfile.mkdtemp(prefix="hmt-slide-cv-")
    try:
        x, y, groups, is_test = load_pooled(args.data, args.quick, work, args.seed)
        n_slides = len(np.unique(groups.slide))
        folds = slide_folds(groups.slide, y, args.folds or (QUICK_FOLDS if args.quick else n_slides), args.seed)
        if args.schedule_check is not None and args.schedule_check >= len(folds):
            raise SystemExit(f"--schedule-check {args.schedule_check}: there are only {len(folds)} folds "
                             f"(0..{len(folds) - 1})")
        per_fold = math.ceil(args.explain / len(folds)) if args.explain else 0
        fingerprint = hmt.data_fingerprint(x, y, groups)
        print(f"{len(y)} tiles, {n_slides} slides, {len(np.unique(groups.source_image))} source images; folds {folds}; "
              f"{config}", flush=True)
        record = {"command": "python tools/hmt_slide_cv.py " + " ".join(sys.argv[1:] if argv is None else argv),
                  "quick": args.quick, "complete": False, "epochs_override": args.epochs, "config": asdict(config),
                  "folds_of_slides": folds, "seed": args.seed, "n_tiles": int(len(y)), "data_fingerprint": fingerprint,
                  "n_boot": n_boot, "ig_steps": ig_steps, "explain_requested": args.explain, "explained_per_fold": per_fold,
                  "restart": args.restart, "folds_reused": [], "interval_notes": INTERVAL_NOTES, "probe_note": probe_note(is_test),
                  "name": args.name,
                  "course_split": course_split_record(groups, is_test, os.path.splitext(args.model)[0] + ".json", config.epochs),
                  "versions": library_versions(), "folds": [], "data": _shown(args.data or hmt.default_root())}
        y_pred, p_true, fold_of, explained = _run_folds(args, x, y, groups, folds, config, fingerprint, per_fold,
                                                        ig_steps, record, json_path)
        if args.schedule_check is not None:
            record["schedule_check"] = schedule_check(args, x, y, groups, folds, config, fingerprint, per_fold, ig_steps,
                                                      y_pred)
            _write_json(json_path, record)
        record["summary"] = summarise(y, groups.slide, y_pred, record["folds"], n_boot, args.seed, config.epochs)
        _write_atomic(os.path.join(args.out, "models", f"{args.name}_predictions.npz"), lambda f: np.savez_compressed(
            f, y_true=y, y_pred=y_pred, p_true=p_true.astype(np.float32), fold=fold_of, slide=groups.slide,
            source_image=groups.source_image, course_test=is_test))
        record["probe"] = {"pending": "the probe runs after this record is written"}
        _write_json(json_path, record)                                    # the summary, before the probe
        fig = explanation_figure(explained, args.explain)
        if fig is not None:
            save_figure(fig, os.path.join(args.out, "figures", f"{args.name}_explanations.png"), dpi=80)
        record["probe"] = _probe_models(args, x, y, groups, is_test, n_boot)
        record["table"] = _table(record, args.out)
        record["complete"] = True
        _write_json(json_path, record)
        save_figure(cv_figure(record), os.path.join(args.out, "figures", f"{args.name}.png"))
        pooled = record["summary"]["pooled"]
        print(f"pooled accuracy {pooled['accuracy']:.4f} (Wilson {pooled['wilson95']}, slide bootstrap "
              f"{pooled['slide_bootstrap95']}); course split {record['course_split']['test_accuracy']}; "
              f"{len(record['folds_reused'])} of {len(folds)} folds reused; wrote {json_path}", flush=True)
        return record
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
