"""The colour augmentation and the padding of the HMT CNN, chosen on slides held out from training:
each variant trained on the same folds of the slide cross-validation and tested on their held-out
slides, its maps' artefacts measured on tiles of its training slides.

    python tools/hmt_stain_ablation.py                          # 6 variants x 3 folds at 20 epochs (resumable)
    python tools/hmt_stain_ablation.py --epochs 64 --folds 2 6  # the full schedule on two of them: same ranking?
    python tools/hmt_stain_ablation.py --max-minutes 100        # stop before a run that would start past 100 min
    python tools/hmt_stain_ablation.py --report-only            # the summary again from the saved runs
    python tools/hmt_stain_ablation.py --quick --out /tmp/abl   # smoke test: tiny data and network

Variants (:data:`VARIANTS`, ``hmt_utils.TrainConfig`` fields over the committed recipe): the committed
recipe itself (valid convolutions, a 3 x 3 stem, the per-channel RGB gain and offset), and on reflect
padding with a 4 x 4 stem (no centre pile, no checkerboard: ``hmt_utils.build_model``) each colour
augmentation: none, the RGB gain and offset, HED-space stain jitter (Tellez et al. 2019: "light"
0.05 and "strong" 0.2) and RandStainNA-style LAB statistics (Shen et al. 2022). Each run also
measures its model's map artefacts (``xai.analysis.artefacts.map_artefacts``) on
:data:`ARTEFACT_TILES` a class of its training slides (not the held-out ones: no accuracy there).

The folds are the slide cross-validation's (``xai.training.slides.slide_folds``: one slide a fold);
the ablation uses :data:`ABLATION_FOLDS` of them, drawn once with seed 0 (not picked by their
accuracy). The choice for each test fold of the cross-validation uses only the other ablation folds
(``xai.training.ablation.choice_by_test_fold``): a fold's own tiles are never scored for its choice,
though the runs that choose were trained with its slide among their training slides (not a nested
choice). The course test split is pooled in as tiles of their slides, as in the cross-validation.

Writes, atomically (``<out>``: the repository, or ``--out``):
- ``<out>/models/hmt_stain_ablation/<variant>_e<epochs>_s<seed>_fold<k>.json`` after each run: its key
  (the recipe, the data fingerprint, the held-out slides, the artefact measurement), accuracy, best
  epoch, seconds, the held-out tiles' indices (``pooled_tiles`` order) and predictions, and the
  artefacts. A run whose key matches is reused; a record of another key is left out of the summary.
- ``<out>/models/hmt_stain_ablation.json``: per schedule, each variant's pooled accuracy and paired
  difference from "rgb" with intervals, the choice by test fold, and the schedules' agreement.

A run whose recipe, schedule, data and held-out slides are those of a slide cross-validation fold whose
model ``tools/hmt_slide_cv.py`` kept (``models/<--slide-cv-name>_fold<k>.keras``) takes that model and its
predictions instead of training the same run again (``trained_by`` in its record).

On this 2-core CPU a run at 20 epochs took 11-13 min for the committed network and 17-24 min for the
reflect-padded ones alone, 22-36 min beside other jobs (each record's ``train_seconds``); 64 epochs take about 3.2
times as long.

Axis key: N tiles, K classes.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

import numpy as np

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if __name__ == "__main__" and _REPO not in sys.path:     # run as a script: the repository's modules
    sys.path.insert(0, _REPO)

import hmt_utils as hmt  # noqa: E402
from xai.analysis.artefacts import map_artefacts  # noqa: E402
from xai.analysis.stats import stratified_sample  # noqa: E402
from xai.files import atomic_open  # noqa: E402
from xai.training.ablation import choice_by_test_fold, schedule_agreement, variant_table  # noqa: E402
from xai.training.saving import library_versions  # noqa: E402
from xai.training.slides import load_pooled, slide_folds, train_held_out  # noqa: E402

REFLECT = {"padding": "reflect", "stem_kernel": 4}
VARIANTS = {"valid_rgb": {"padding": "valid", "stem_kernel": 3, "colour_augment": "rgb"},   # the committed model's
            "reflect_rgb": dict(REFLECT, colour_augment="rgb"),
            "reflect_none": dict(REFLECT, colour_augment="none"),
            "reflect_hed": dict(REFLECT, colour_augment="hed", hed_strength=0.05),
            "reflect_hed_strong": dict(REFLECT, colour_augment="hed", hed_strength=0.2),
            "reflect_lab": dict(REFLECT, colour_augment="lab")}
BASELINE = "valid_rgb"
_TOOL = "tools/hmt_stain_ablation.py"             # a run's trained_by where this tool trained it
ARTEFACT_TILES = 2                 # a class, drawn from the training slides (seed 0)
ARTEFACT_INNER = 112               # the central square of the centre ratio: the committed model's training crop
N_ABLATION_FOLDS, FOLD_SEED = 3, 0
QUICK = {"width": 4, "block3_width": 8, "train_crop": 64, "batch_size": 16}


def ablation_folds(n_folds: int, count: int = N_ABLATION_FOLDS) -> list[int]:
    """The folds the ablation trains on: ``count`` of ``n_folds``, drawn with seed :data:`FOLD_SEED`."""
    return sorted(int(k) for k in np.random.default_rng(FOLD_SEED).choice(n_folds, min(count, n_folds), replace=False))


def run_path(out: str, variant: str, epochs: int, seed: int, fold: int) -> str:
    return os.path.join(out, "models", "hmt_stain_ablation", f"{variant}_e{epochs}_s{seed}_fold{fold}.json")


def run_config(variant: str, epochs: int, seed: int, quick: bool) -> hmt.TrainConfig:
    return hmt.TrainConfig(seed=seed, epochs=epochs, **(QUICK if quick else {}), **VARIANTS[variant])


def run_key(config: hmt.TrainConfig, held: list[str], fingerprint: str, quick: bool) -> dict:
    """What a saved run must match: the recipe (``hmt_utils.recipe_key``), the data, the held-out
    slides and how its artefacts were measured."""
    return json.loads(json.dumps({"train_config": hmt.recipe_key(config), "data_fingerprint": fingerprint,
                                  "held_out": held, "epochs": config.epochs, "artefact_tiles": ARTEFACT_TILES,
                                  "artefact_inner": ARTEFACT_INNER, "ig_steps": _ig_steps(quick)}, sort_keys=True))


def _ig_steps(quick: bool) -> int:
    return 4 if quick else 32


def _write_json(path: str, record: dict) -> None:
    with atomic_open(path, "w") as f:
        f.write(json.dumps(record, indent=1, sort_keys=True) + "\n")


def _stored(path: str, key: dict) -> dict | None:
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        record = json.load(f)
    return record if record.get("key") == key else None


def run_one(args, data, folds, variant: str, fold: int, fingerprint: str) -> dict:
    """One variant on one fold: reused where its record's key matches, else trained, tested and written."""
    x, y, groups = data
    config = run_config(variant, args.epochs, args.seed, args.quick)
    key = run_key(config, folds[fold], fingerprint, args.quick)
    path = run_path(args.out, variant, args.epochs, args.seed, fold)
    stored = None if args.restart else _stored(path, key)
    if stored is not None:
        return stored
    reused = None if args.restart else slide_cv_fold(args.out, fold, config, fingerprint, folds[fold], x, groups.slide,
                                                     args.slide_cv_name)
    if reused is None:
        model, info, prob, test = train_held_out(x, y, groups, folds[fold], config, label=f"{variant} fold {fold} ")
    else:
        print(f"{variant} fold {fold}: the slide cross-validation's model of this fold, same recipe and data", flush=True)
        model, info, prob, test = reused
    pred = prob.argmax(-1)
    shown = np.flatnonzero(~test)[stratified_sample(y[~test], ARTEFACT_TILES, 0)]
    artefacts = map_artefacts(model, x[shown].astype(np.float32), inner=ARTEFACT_INNER,
                              steps=_ig_steps(args.quick))
    record = {"key": key, "variant": variant, "fold": fold, "seed": args.seed, "held_out": folds[fold], "epochs": args.epochs,
              "accuracy": float(np.mean(pred == y[test])), "n_test": int(test.sum()), "best_epoch": info["best_epoch"],
              "val_accuracy": info["val_accuracy"], "train_seconds": round(info["train_seconds"], 1),
              "test_index": np.flatnonzero(test).tolist(), "pred": pred.tolist(),
              "versions": library_versions() if reused is None else info["versions"],
              "trained_by": _TOOL if reused is None else info["trained_by"],
              "artefacts": dict(artefacts, tiles=shown.tolist())}
    _write_json(path, record)
    print(f"{variant} fold {fold} {folds[fold]}: accuracy {record['accuracy']:.4f}, best epoch {record['best_epoch']} "
          f"of {args.epochs}, {record['train_seconds'] / 60:.1f} min; |IG| centre / outside "
          f"{artefacts['centre_to_outside']:.2f}, columns alternate {artefacts['column_alternation']:.2f}", flush=True)
    return record


_EXPLANATION_FIELDS = ("explained_per_fold", "ig_steps")      # of a fold's key: what it explained, not how it trained
_CHECKED_TILES = 8                                             # held-out tiles predicted again: the model is the run's


def slide_cv_fold(out: str, fold: int, config: hmt.TrainConfig, fingerprint: str, held: list[str], x: np.ndarray,
                  slides: np.ndarray, name: str = "hmt_slide_cv"):
    """The slide cross-validation's model of ``fold`` (``tools/hmt_slide_cv.py`` keeps it beside its
    checkpoint) where it was trained with this recipe and schedule on the same data and slides: the same
    training run, so it is not trained twice. Every field of the fold's key but what it explained must
    match; the checkpoint must hold the same key and the held-out tiles' predictions, and the model must
    give those predictions again on :data:`_CHECKED_TILES` of them (a model and checkpoint of different
    runs are refused). Returns ``(model, info, prob, test)`` as ``train_held_out`` does (info:
    best_epoch, val_accuracy, train_seconds, trained_by, versions), or None (nothing to reuse, or a
    file that does not read: then the run is trained)."""
    import keras

    from xai.training.saving import read_provenance
    path = os.path.join(out, "models", f"{name}_fold{fold}.keras")
    checkpoint = os.path.splitext(path)[0] + ".npz"
    if not (os.path.isfile(path) and os.path.isfile(checkpoint)):
        return None
    wanted = {"train_config": hmt.recipe_key(config), "data_fingerprint": fingerprint, "held_out": held,
              "epochs": config.epochs}
    test = np.isin(slides, held)
    try:
        provenance = read_provenance(path)
        key = json.loads(json.dumps(provenance["resume_key"], sort_keys=True))
        training = {k: v for k, v in key.items() if k not in _EXPLANATION_FIELDS}
        if training != json.loads(json.dumps(wanted, sort_keys=True)):
            return None
        with np.load(checkpoint, allow_pickle=False) as z:                   # the checkpoint of the same run
            if json.loads(str(z["resume_key_json"])) != key:
                return None
            test_index, prob = z["test_index"], z["prob"]
        if not np.array_equal(test_index, np.flatnonzero(test)) or prob.shape != (len(test_index), len(hmt.CLASS_NAMES)):
            return None
        model = keras.models.load_model(path, compile=False)
        again = model.predict(x[test_index[:_CHECKED_TILES]].astype(np.float32), verbose=0)
        if not np.allclose(again, prob[:_CHECKED_TILES], atol=1e-3):
            print(f"not reusing {path}: its model does not give its checkpoint's predictions", flush=True)
            return None
        record = provenance["fold_record"]
        info = {k: record[k] for k in ("best_epoch", "val_accuracy", "train_seconds")}
    except (OSError, ValueError, KeyError) as err:
        print(f"not reusing {path}: {type(err).__name__}: {err}", flush=True)
        return None
    info["trained_by"] = f"tools/hmt_slide_cv.py (models/{os.path.basename(path)})"
    info["versions"] = provenance.get("versions") or {"keras": provenance.get("saved_with_keras")}
    return model, info, prob, test


def load_runs(out: str, folds, fingerprint: str, seed: int, quick: bool) -> dict:
    """Every saved run of this seed whose key is the one its variant, schedule and fold would get now:
    ``{epochs: {(variant, fold): record}}``. Others (an edited variant, other data) are left out, named."""
    found = {}
    folder = os.path.join(out, "models", "hmt_stain_ablation")
    for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
        with open(os.path.join(folder, name)) as f:
            record = json.load(f)
        variant, fold, epochs = record.get("variant"), record.get("fold"), record.get("epochs")
        if record.get("seed", 0) != seed:
            continue
        if (variant not in VARIANTS or not 0 <= fold < len(folds) or record.get("key") != run_key(
                run_config(variant, epochs, seed, quick), folds[fold], fingerprint, quick)):
            print(f"leaving out {name}: its key is not what {variant} would get now", flush=True)
            continue
        found.setdefault(epochs, {})[(variant, fold)] = record
    return found


def summarise(out: str, data, folds, fingerprint: str, n_boot: int, seed: int, quick: bool) -> dict:
    """Per schedule: the variant table on the folds every variant ran, the choice by test fold and,
    where two schedules share folds, their agreement."""
    _, y, groups = data
    by_epochs, summary = load_runs(out, folds, fingerprint, seed, quick), {"schedules": {}}
    complete = {}
    for epochs, runs in sorted(by_epochs.items()):
        variants = [v for v in VARIANTS if any(key[0] == v for key in runs)]
        shared = [f for f in range(len(folds)) if all((v, f) in runs for v in variants)]
        complete[epochs] = (variants, shared, runs)
        entry = {"variants": variants, "folds": shared, "held_out": [folds[f] for f in shared],
                 "runs": len(runs), "runs_from_slide_cv": sum(r.get("trained_by", _TOOL) != _TOOL for r in runs.values()),
                 "train_seconds": round(sum(r["train_seconds"] for r in runs.values()
                                            if r.get("trained_by", _TOOL) == _TOOL), 1)}      # this tool's training only
        if shared and BASELINE in variants:
            entry["table"] = variant_table(runs, variants, shared, y, groups.source_image, groups.slide,
                                           baseline=BASELINE, n_boot=n_boot)
            entry["choice"] = choice_by_test_fold(runs, variants, shared, range(len(folds)), y)
        entry["artefacts"] = {v: {k: float(np.mean([r["artefacts"][k] for key, r in runs.items() if key[0] == v]))
                                  for k in ("centre_to_outside", "column_alternation", "row_alternation",
                                            "grad_cam_border_share")} for v in variants}
        summary["schedules"][str(epochs)] = entry
    if len(complete) >= 2:
        ordered = sorted(complete.items())                          # the shortest and the longest schedule
        (e_short, (v_short, f_short, short)), (e_full, (v_full, f_full, full)) = ordered[0], ordered[-1]
        variants, common = [v for v in v_short if v in v_full], sorted(set(f_short) & set(f_full))
        if common and len(variants) >= 2:
            summary["schedule_agreement"] = dict(schedule_agreement(short, full, variants, common, y),
                                                 epochs_short=e_short, epochs_full=e_full)
    return summary


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=None, help="epochs a run (default 20, --quick: 1; the recipe's full: 64)")
    parser.add_argument("--folds", type=int, nargs="+", default=None, help="folds to run (default: ABLATION_FOLDS)")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--max-minutes", type=float, default=None, help="start no run after this many minutes")
    parser.add_argument("--report-only", action="store_true", help="the summary again from the saved runs")
    parser.add_argument("--restart", action="store_true", help="train again, ignoring saved runs")
    parser.add_argument("--slide-cv-name", default="hmt_slide_cv",
                        help="stem of the slide cross-validation's files whose fold models a run may take "
                             "(tools/hmt_slide_cv.py --name)")
    parser.add_argument("--quick", action="store_true", help="smoke test: a few tiles, a tiny network, 1 epoch")
    parser.add_argument("--out", default=None, help="folder for models/ (default: the repository; required with --quick)")
    parser.add_argument("--data", default=None, help="HMT folder (default: $HMT_DIR or data/hmt)")
    parser.add_argument("--seed", type=int, default=0, help="TrainConfig.seed (0: the committed recipe's)")
    args = parser.parse_args(argv)
    args.epochs = args.epochs if args.epochs is not None else (1 if args.quick else 20)
    if args.epochs < 1:
        parser.error(f"--epochs must be >= 1, got {args.epochs}")
    if args.quick and args.out is None:
        parser.error("--quick needs --out FOLDER: its runs would otherwise land among the repository's")
    args.out = args.out or _REPO
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    work = tempfile.mkdtemp(prefix="hmt-ablation-")
    try:
        return _main(args, argv, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _main(args, argv, work: str) -> dict:
    x, y, groups, _ = load_pooled(args.data, args.quick, work, args.seed)
    data, n_boot = (x, y, groups), 200 if args.quick else 2000
    folds = slide_folds(groups.slide, y, len(np.unique(groups.slide)), args.seed)
    default_folds = ablation_folds(len(folds), 2 if args.quick else N_ABLATION_FOLDS)
    chosen = args.folds if args.folds is not None else default_folds
    if any(not 0 <= k < len(folds) for k in chosen):
        raise SystemExit(f"--folds {chosen}: there are {len(folds)} folds (0..{len(folds) - 1})")
    fingerprint = hmt.data_fingerprint(x, y, groups)
    deadline = None if args.max_minutes is None else time.time() + 60 * args.max_minutes
    if not args.report_only:
        print(f"{len(y)} tiles; ablation folds {chosen} ({[folds[k] for k in chosen]}); variants {args.variants}; "
              f"{args.epochs} epochs", flush=True)
        for fold in chosen:                              # fold by fold: a stopped run holds whole paired folds
            for variant in args.variants:
                if deadline is not None and time.time() > deadline and not os.path.isfile(
                        run_path(args.out, variant, args.epochs, args.seed, fold)):
                    print(f"stopping before {variant} fold {fold}: --max-minutes reached", flush=True)
                    break
                run_one(args, data, folds, variant, fold, fingerprint)
            else:
                continue
            break
    summary = dict(summarise(args.out, data, folds, fingerprint, n_boot, args.seed, args.quick), folds_of_slides=folds,
                   baseline=BASELINE, variants={k: VARIANTS[k] for k in VARIANTS}, ablation_folds=default_folds, seed=args.seed,
                   data_fingerprint=fingerprint, quick=args.quick,
                   command="python tools/hmt_stain_ablation.py " + " ".join(sys.argv[1:] if argv is None else argv))
    _write_json(os.path.join(args.out, "models", "hmt_stain_ablation.json"), summary)
    for epochs, entry in summary["schedules"].items():
        for v, row in entry.get("table", {}).items():
            marks = entry["artefacts"][v]
            print(f"{epochs} epochs, {v}: {row['accuracy']:.4f} {row['image_bootstrap95']} on folds {entry['folds']}; "
                  f"|IG| centre / outside {marks['centre_to_outside']:.2f}, columns {marks['column_alternation']:.2f}")
        print(f"{epochs} epochs: chosen {entry.get('choice', {}).get('chosen')}", flush=True)
    return summary


if __name__ == "__main__":
    main()
