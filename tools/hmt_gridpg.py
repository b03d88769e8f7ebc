"""GridPG on HMT (Rao et al., CVPR 2022) for every method of METHODS: 2 x 2 mosaics of test tiles of
four classes, each tile classified right with probability >= ``--confidence`` on its own (0.8: Rao et
al.'s 0.99 is out of reach for a model trained with label smoothing 0.05, whose probabilities stop
near 0.96; at 0.8 every class keeps 20 or more of the committed model's test tiles), fed whole (300 x 300)
to the same fully convolutional network, each cell's class explained; the score is the share of a
method's positive relevance inside that cell (chance: 0.25).

    python tools/hmt_gridpg.py                      # 32 grids of the course test tiles, the committed model
    python tools/hmt_gridpg.py --grids 64
    python tools/hmt_gridpg.py --quick --out /tmp/gp

Two rows: the committed ``HMT.keras`` on grids of the course's test tiles (their source images were
seen in training), and, where the slide cross-validation kept its fold models
(``models/hmt_slide_cv_fold{k}.keras``), each fold's model on grids of its held-out slide's tiles,
pooled over the folds (tissue the model never saw); a fold whose slide has fewer than four classes
that its model gets right confidently is skipped, and said so (``skipped_folds``). Each row says how often the mosaic's top class
is one of its four cells' classes (the grid accuracy: whether the network still works at 300 x 300).

Writes ``<out>/models/hmt_gridpg.json``: per row and method the per-cell scores, the mean with its
95 % interval, the grid accuracy, the command, the models' hashes and the time.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import time

import numpy as np

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if __name__ == "__main__" and _REPO not in sys.path:
    sys.path.insert(0, _REPO)

from xai.files import atomic_open, json_ready  # noqa: E402
from xai.training.saving import library_versions  # noqa: E402


def _functions(x_train, rise_masks: int, quick: bool) -> dict:
    from xai.analysis.compare import draw_references, every_method
    refs = np.tile(draw_references(x_train, 32), (1, 2, 2, 1))          # references at the mosaic's size
    return every_method(refs, rise_masks=50 if quick else rise_masks, eg_samples=4 if quick else 32,
                        noise_samples=2 if quick else None, rise_batch_size=64)


def _row(results: list[dict]) -> dict:
    """Rows pooled over models: every cell's score, the mean with a normal 95 % interval, grid accuracy."""
    from xai.analysis.gridpg import share_interval
    scores = {m: np.concatenate([r["scores"][m] for r in results]) for m in results[0]["scores"]}
    grids = sum(r["n_grids"] for r in results)
    top = sum(r["grid_top_in_grid"] * r["n_grids"] for r in results) / grids
    return {"scores": json_ready(scores),
            "summary": {m: share_interval(s, results[0]["grid"] ** 2) for m, s in scores.items()},
            "n_grids": int(grids), "grid_accuracy": top,
            "usable": [r["usable"] for r in results], "models": len(results)}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--grids", type=int, default=32, help="mosaics a row (held-out: a fold)")
    p.add_argument("--rise-masks", type=int, default=1000)
    p.add_argument("--confidence", type=float, default=0.8, help="a tile's probability of its class, at the least")
    p.add_argument("--quick", action="store_true", help="smoke run: 2 grids, few masks and draws, no held-out row")
    p.add_argument("--out", default=None, help="folder holding models/ (default: the repository; required with --quick)")
    args = p.parse_args(argv)
    if args.quick and args.out is None:
        p.error("--quick needs --out FOLDER")
    import keras

    import hmt_utils as hmt
    from xai.analysis.gridpg import grid_pointing
    from xai.analysis.sweep_store import file_sha1
    from xai.training.slides import pooled_tiles
    start = time.perf_counter()
    n_grids = 2 if args.quick else args.grids
    (x_train, _), (x_test, y_test), _ = hmt.load_hmt(None, progress=False)
    functions = _functions(x_train, args.rise_masks, args.quick)
    committed = os.path.join(_REPO, "models", "HMT.keras")
    seen = grid_pointing(keras.models.load_model(committed), x_test.astype(np.float32), y_test, functions,
                         n_grids=n_grids, seed=0, confidence=args.confidence)
    rows = {"course test tiles, committed model": _row([seen])}
    models, skipped = {"committed": file_sha1(committed)}, {}
    fold_models = [] if args.quick else sorted(glob.glob(os.path.join(_REPO, "models", "hmt_slide_cv_fold*.keras")))
    fold_models = [f for f in fold_models if not f.endswith("_full.keras")]
    if fold_models:
        x, y, groups, _ = pooled_tiles(None, progress=False)
        held = []
        for path in fold_models:
            with open(os.path.splitext(path)[0] + ".json") as f:
                slides = json.load(f)["fold_record"]["held_out"]
            inside = np.isin(groups.slide, slides)
            try:
                held.append(grid_pointing(keras.models.load_model(path), x[inside].astype(np.float32), y[inside],
                                          functions, n_grids=n_grids, seed=0, confidence=args.confidence))
            except ValueError as err:                    # a slide with fewer than 4 classes the fold model gets right
                skipped[os.path.basename(path)] = str(err)
                print(f"{os.path.basename(path)} ({slides}) skipped: {err}", flush=True)
                continue
            models[os.path.basename(path)] = file_sha1(path)
            print(f"{os.path.basename(path)} ({slides}): grid accuracy {held[-1]['grid_top_in_grid']:.2f}", flush=True)
        if held:
            rows["held-out slides, fold models"] = _row(held)
    record = {"command": "python tools/hmt_gridpg.py " + " ".join(sys.argv[1:] if argv is None else argv),
              "rows": rows, "skipped_folds": skipped, "chance": seen["chance"], "confidence": seen["confidence"], "models": models,
              "rise_masks": args.rise_masks, "quick": args.quick, "seconds": round(time.perf_counter() - start, 1),
              "versions": library_versions()}
    path = os.path.join(args.out or _REPO, "models", "hmt_gridpg.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with atomic_open(path, "w") as f:
        json.dump(json_ready(record), f, indent=1, allow_nan=False)
        f.write("\n")
    for name, row in rows.items():
        best = max(row["summary"], key=lambda m: row["summary"][m]["mean"])
        print(f"{name}: grid accuracy {row['grid_accuracy']:.2f}; best {best} {row['summary'][best]['mean']:.3f}")
    print(f"{record['seconds'] / 60:.1f} min -> {path}")
    return record


if __name__ == "__main__":
    main()
