"""The settings grid with power: every method setting x every removal setting (``xai.analysis.sweep``)
on the comparison's examples, in stored batches (``xai.analysis.sweep_store``), so that
``XAI_methods.ipynb`` loads the grid instead of computing it.

    python tools/settings_grid.py --data hmt                 # the notebook's 128 HMT tiles (16 a class)
    python tools/settings_grid.py --data hmt --per-class 62  # every HMT test tile (496)
    python tools/settings_grid.py --data mnist1d             # all 1000 MNIST-1D test examples (about 12 min)
    python tools/settings_grid.py --data hmt-held-out        # each slide-CV fold model on its held-out slide
    python tools/settings_grid.py --data hmt --max-minutes 60   # start no batch after an hour; run again to go on
    python tools/settings_grid.py --data hmt --report-only   # the summary again from the stored batches
    python tools/settings_grid.py --data hmt --quick --out /tmp/sw   # smoke run: a tiny model, 4 tiles

The examples are the notebook's: on HMT ``xai.analysis.stats.stratified_sample(y_test, per_class,
seed)``, the "common" tiles of RISE and the four-method table (``RISE_TILES_PER_CLASS`` = 16: 128
tiles); on MNIST-1D the whole test set. The explained class is the committed model's prediction.
The settings are the notebook's section 3: IG from six baselines (expected gradients from 64
training examples drawn with the seed) and its tunnel, SmoothGrad at two sigmas, RISE with the
notebook's masks (HMT 1000, MNIST-1D 2000), a quarter of them and finer cells, the other methods'
defaults, each scored by ROAD, a blur and a constant at the middle of the range on single
positions and on patches (HMT 8 px, MNIST-1D 4 positions).

``hmt-held-out`` ranks the methods on tissue the model never saw: each fold model the slide
cross-validation kept (``models/hmt_slide_cv_fold{k}.keras``) explains ``--per-class-held-out``
tiles a class of its held-out slide (the classes the slide has), and the grids of all folds are
pooled (a tile's methods are still compared on that tile, by the same model), so that its verdicts
can be set beside the course tiles' (whose source images the committed model saw).

Writes ``<out>/models/sweep_<data>/batch_<key>_<first>_<n>.npz`` as each batch finishes and
``<out>/models/sweep_<data>.json``: the key (model and data hashes, options), the examples, how many
are stored, and, once all are, the compute time, the findings and the tables. Batches of another key
(an earlier model) stay in the folder, never read; ``--prune`` removes them.
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

from xai.analysis.stats import stratified_sample  # noqa: E402
from xai.files import atomic_open  # noqa: E402
from xai.training.saving import library_versions  # noqa: E402

N_REFERENCES = 64
QUICK_DRAWS = dict(smoothgrad_samples=4, expected_samples=8, tunnel_samples=2, uniform_samples=2)
SETTINGS = {   # per data set: patch, blur sigma, RISE's masks and finer cell, batch size (the notebook's section 3)
    "hmt": dict(patch=8, blur_sigma=10.0, rise_masks=1000, rise_cell=10, batch_size=128),
    "mnist1d": dict(patch=4, blur_sigma=3.0, rise_masks=2000, rise_cell=3, batch_size=1024),
}
SETTINGS["hmt-held-out"] = SETTINGS["hmt"]


def sweep_options(data: str, x_train, *, value_range, noise_scale: float, seed: int, quick: bool) -> dict:
    """The notebook's settings for ``data``: ``xai.analysis.sweep_store.run_batch``'s options."""
    s = SETTINGS[data]
    refs = x_train[np.random.default_rng(seed).choice(len(x_train), min(N_REFERENCES, len(x_train)), replace=False)]
    masks = 40 if quick else s["rise_masks"]
    return dict(value_range=tuple(value_range), patch=s["patch"], blur_sigma=s["blur_sigma"],
                references=refs.astype(np.float32),
                rise_settings=((masks, None), (masks // 4, None), (masks, s["rise_cell"])),
                steps=4 if quick else 10, noise_std=0.01, noise_scale=float(noise_scale), seed=seed,
                batch_size=s["batch_size"], **(QUICK_DRAWS if quick else {}))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", choices=tuple(SETTINGS), required=True)
    p.add_argument("--per-class", type=int, default=16, help="HMT tiles a class (16: the notebook's 128; 62: all 496)")
    p.add_argument("--per-class-held-out", type=int, default=1, help="hmt-held-out: tiles a class of each held-out slide")
    p.add_argument("--batch", type=int, default=None, help="examples a stored batch (default: HMT 16, MNIST-1D 250)")
    p.add_argument("--seed", type=int, default=0, help="the notebook's SEED")
    p.add_argument("--max-minutes", type=float, default=None, help="start no batch after this many minutes")
    p.add_argument("--report-only", action="store_true", help="the summary again from the stored batches")
    p.add_argument("--prune", action="store_true", help="remove stored batches of any other key")
    p.add_argument("--n-boot", type=int, default=2000, help="bootstrap draws for each pair's narrowest margin")
    p.add_argument("--data-dir", default=None, help="HMT folder (default: $HMT_DIR or data/hmt)")
    p.add_argument("--quick", action="store_true", help="smoke run: a tiny untrained model, 4 examples, few draws")
    p.add_argument("--out", default=None, help="folder holding models/ (default: the repository; required with --quick)")
    args = p.parse_args(argv)
    if args.quick and args.out is None:
        p.error("--quick needs --out FOLDER: its batches would otherwise land among the repository's")
    args.batch = args.batch or (250 if args.data == "mnist1d" else 16)
    if args.per_class < 1 or args.batch < 2:
        p.error(f"--per-class must be >= 1 and --batch >= 2, got {args.per_class} and {args.batch}")
    args.out = args.out or _REPO
    return args


def _quick_model(path: str, num_classes: int, shape: tuple):
    """A tiny untrained network for the smoke run, saved once."""
    from xai.training.vgg import build_vgg7
    if not os.path.isfile(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if len(shape) == 3:
            build_vgg7(num_classes, shape, width=4, block3_width=8, seed=0).save(path)
        else:
            import mnist1d_utils as m1d
            m1d.build_model(seed=0).save(path)
    return path


def _data(args):
    """The model file, the examples (the whole source), their labels, the examples of the grid, the
    training inputs, the value range and ROAD's noise scale."""
    if args.data == "hmt":
        import hmt_utils as hmt
        (x_train, _), (x_test, y), names = hmt.load_hmt(args.data_dir, progress=False)
        x, value_range, scale = x_test.astype(np.float32), (0.0, 255.0), 255.0
        tiles = stratified_sample(y, 1 if args.quick else args.per_class, args.seed, n_classes=len(names))
    else:
        import mnist1d_utils as m1d
        d = m1d.make_dataset()
        x, y, x_train = d["x_test"][..., None].astype(np.float32), d["y_test"], d["x"][..., None]
        value_range = (float(d["x"].min()), float(d["x"].max()))
        scale, tiles = float(d["x_test"].max() - d["x_test"].min()), np.arange(len(y))
        names = list(range(int(y.max()) + 1))
    name = "HMT.keras" if args.data == "hmt" else "MNIST1D.keras"
    path = (_quick_model(os.path.join(args.out, "models", f"quick_{name}"), len(names), x.shape[1:]) if args.quick
            else os.path.join(_REPO, "models", name))
    return path, x, y, (tiles[:4] if args.quick else tiles), x_train, value_range, scale


def _fold_models(args) -> list[tuple[str, list[str]]]:
    """The slide CV's kept fold models and their held-out slides (``<out>/models``)."""
    found = []
    for path in sorted(glob.glob(os.path.join(args.out, "models", "hmt_slide_cv_fold*.keras"))):
        if path.endswith("_full.keras"):
            continue
        with open(os.path.splitext(path)[0] + ".json") as f:
            found.append((path, json.load(f)["fold_record"]["held_out"]))
    if not found:
        raise SystemExit(f"no fold models in {os.path.join(args.out, 'models')}: run tools/hmt_slide_cv.py, which keeps them")
    return found


def held_out_main(args, argv) -> dict:
    """``--data hmt-held-out``: each fold model's grid on its held-out slide, stored, then pooled."""
    import keras

    import xai.analysis.sweep_store as store
    from xai.analysis.sweep import findings, summarise_grid
    from xai.methods import METHODS
    from xai.training.slides import pooled_tiles
    start = time.time()
    x, y, groups, _ = pooled_tiles(args.data_dir, progress=False)
    options = sweep_options("hmt", x, value_range=(0.0, 255.0), noise_scale=255.0, seed=args.seed,
                            quick=args.quick)                               # references: per fold, below
    folder, deadline = os.path.join(args.out, "models", "sweep_hmt-held-out"), (
        None if args.max_minutes is None else start + 60 * args.max_minutes)
    parts, gathered = [], []
    for path, slides in _fold_models(args):
        inside = np.flatnonzero(np.isin(groups.slide, slides))
        xf, yf = x[inside].astype(np.float32), y[inside]
        model = keras.models.load_model(path)
        classes = model.predict(xf, batch_size=64, verbose=0).argmax(-1)
        tiles = stratified_sample(yf, args.per_class_held_out, args.seed)[:2 if args.quick else None]
        opts = dict(options, references=_references_outside(x, groups.slide, slides, args.seed))
        key = store.sweep_key(store.file_sha1(path), xf, classes, opts)
        missing = len(tiles) - int(np.isin(tiles, store.stored_tiles(folder, key)).sum())
        if not args.report_only and missing:
            missing = store.run_stored(model, xf, classes, tiles, folder, key, opts, batch_tiles=args.batch,
                                       deadline=deadline, log=lambda m: print(m, flush=True))
        parts.append({"model": os.path.basename(path), "held_out": slides, "tiles": inside[tiles].tolist(),
                      "stored": int(len(tiles) - missing), "complete": missing == 0, "key": key})
        if missing == 0:
            gathered.append(store.gather(folder, key, tiles))
    record = {"command": "python tools/settings_grid.py " + " ".join(sys.argv[1:] if argv is None else argv),
              "data": args.data, "parts": parts, "complete": all(p["complete"] for p in parts),
              "stored": sum(p["stored"] for p in parts), "quick": args.quick, "versions": library_versions()}
    if record["complete"]:
        grid = {cell: {m: np.concatenate([g["grid"][cell][m] for g in gathered]) for m in gathered[0]["grid"][cell]}
                for cell in gathered[0]["grid"]}
        gaps = {k: {"gap": np.concatenate([g["gaps"][k]["gap"] for g in gathered]), "how": v["how"]}
                for k, v in gathered[0]["gaps"].items()}
        sweep = summarise_grid(grid, gathered[0]["references"], gathered[0]["evaluations"], gaps, n_boot=args.n_boot,
                               seed=args.seed)
        record.update(n=sweep["n"], seconds=round(sum(g["seconds"] for g in gathered), 1),
                      findings=findings(sweep["rows"], f"HMT held-out slides ({sweep['n']} tiles, {len(parts)} fold models)",
                                        methods=[m.label for m in METHODS.values()]),
                      settings_table=sweep["settings_table"])
    _write_record(os.path.join(args.out, "models", f"sweep_{args.data}.json"), record)
    print(f"{record['stored']} held-out tiles stored over {len(parts)} folds" +
          (f"; grids computed in {record['seconds'] / 60:.1f} min" if record["complete"] else ""))
    return record


def _references_outside(x, slides, held, seed: int) -> np.ndarray:
    """Expected gradients' references for a fold model: tiles of its training slides only."""
    pool = np.flatnonzero(~np.isin(slides, held))
    return x[np.sort(np.random.default_rng(seed).choice(pool, N_REFERENCES, replace=False))].astype(np.float32)


def _write_record(path: str, record: dict) -> None:
    with atomic_open(path, "w") as f:
        json.dump(record, f, indent=1)
        f.write("\n")


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.data == "hmt-held-out":
        return held_out_main(args, argv)
    import keras

    import xai.analysis.sweep_store as store
    from xai.analysis.sweep import findings
    from xai.methods import METHODS
    start = time.time()
    model_path, x, y, tiles, x_train, value_range, scale = _data(args)
    model = keras.models.load_model(model_path)
    classes = model.predict(x, batch_size=64, verbose=0).argmax(-1)
    options = sweep_options(args.data, x_train, value_range=value_range, noise_scale=scale, seed=args.seed,
                            quick=args.quick)
    key = store.sweep_key(store.file_sha1(model_path), x, classes, options)
    folder = os.path.join(args.out, "models", f"sweep_{args.data}")
    if args.prune:
        for path in glob.glob(os.path.join(folder, "batch_*.npz")):
            if not os.path.basename(path).startswith(f"batch_{store.key_sha1(key)}_"):
                os.remove(path)
    missing = len(tiles) - int(np.isin(tiles, store.stored_tiles(folder, key)).sum())
    if not args.report_only:
        deadline = None if args.max_minutes is None else start + 60 * args.max_minutes
        print(f"{args.data}: {len(tiles)} examples, {missing} to compute, batches of {args.batch}", flush=True)
        missing = store.run_stored(model, x, classes, tiles, folder, key, options, batch_tiles=args.batch,
                                   deadline=deadline, log=lambda s: print(s, flush=True))
    record = {"command": "python tools/settings_grid.py " + " ".join(sys.argv[1:] if argv is None else argv),
              "data": args.data, "key": key, "tiles": tiles.tolist(), "labels": y[tiles].tolist(),
              "classes": classes[tiles].tolist(), "stored": int(len(tiles) - missing), "complete": missing == 0,
              "model": os.path.relpath(model_path, _REPO) if model_path.startswith(_REPO) else model_path,
              "quick": args.quick, "versions": library_versions()}
    if missing == 0:
        sweep = store.load_sweep(folder, key, tiles, n_boot=args.n_boot, seed=args.seed)
        record.update(seconds=round(sweep["seconds"], 1), n_settings=sweep["n_settings"],
                      findings=findings(sweep["rows"], f"{args.data} ({len(tiles)} examples)",
                                        methods=[m.label for m in METHODS.values()]),
                      settings_table=sweep["settings_table"], completeness_table=sweep["completeness_table"])
    path = os.path.join(args.out, "models", f"sweep_{args.data}.json")
    _write_record(path, record)
    print(f"{record['stored']} of {len(tiles)} examples stored" +
          (f"; grid computed in {record['seconds'] / 60:.1f} min" if record["complete"] else "") + f" -> {path}")
    return record


if __name__ == "__main__":
    main()
