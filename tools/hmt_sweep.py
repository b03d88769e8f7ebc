"""The settings grid on HMT with power: every method setting x every removal setting
(``xai.analysis.sweep``) on the comparison's tiles of the course test split, in stored batches
(``xai.analysis.sweep_store``), so that ``XAI_methods.ipynb`` loads the grid instead of computing it.

    python tools/hmt_sweep.py                        # the notebook's 128 tiles (16 a class), resumable
    python tools/hmt_sweep.py --per-class 62         # every test tile (496)
    python tools/hmt_sweep.py --max-minutes 60       # start no batch after an hour; run again to go on
    python tools/hmt_sweep.py --report-only          # the summary again from the stored batches
    python tools/hmt_sweep.py --quick --out /tmp/sw  # smoke run: a tiny model, 4 tiles, few draws

The tiles are ``xai.analysis.stats.stratified_sample(y_test, per_class, seed)``, the notebook's
"common" tiles for RISE and the four-method table (``RISE_TILES_PER_CLASS`` = 16: 128 tiles), and
the explained class is the committed model's prediction, as in the notebook. The settings are the
notebook's: IG from six baselines (expected gradients from 64 training tiles drawn with the seed)
and its tunnel, SmoothGrad at two sigmas, RISE with 1000 masks, a quarter of them and 10 px cells,
the other methods' defaults, each scored by ROAD, a blur and a grey fill on pixels and 8 px patches.

Writes ``<out>/models/hmt_sweep/batch_<key>_<first tile>_<n>.npz`` as each batch finishes and
``<out>/models/hmt_sweep.json``: the key (model and data hashes, options), the tiles, how many are
stored, the time, and, once every tile is stored, the verdicts' findings and the tables. Batches of
another key (an earlier model) are left in the folder and never read; ``--prune`` removes them.
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


def sweep_options(x_train, *, seed: int, rise_masks: int, quick: bool) -> dict:
    """The notebook's HMT settings (section 3): ``xai.analysis.sweep_store.run_batch``'s options."""
    refs = x_train[np.random.default_rng(seed).choice(len(x_train), min(N_REFERENCES, len(x_train)), replace=False)]
    return dict(value_range=(0.0, 255.0), patch=8, blur_sigma=10.0, references=refs.astype(np.float32),
                rise_settings=((rise_masks, None), (rise_masks // 4, None), (rise_masks, 10)),
                steps=4 if quick else 10, noise_std=0.01, noise_scale=255.0, seed=seed, batch_size=128,
                **(QUICK_DRAWS if quick else {}))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--per-class", type=int, default=16, help="tiles a class (16: the notebook's 128; 62: all 496)")
    p.add_argument("--batch", type=int, default=16, help="tiles a stored batch")
    p.add_argument("--rise-masks", type=int, default=1000, help="RISE's masks (the notebook's RISE_MASKS_2D)")
    p.add_argument("--seed", type=int, default=0, help="the notebook's SEED")
    p.add_argument("--max-minutes", type=float, default=None, help="start no batch after this many minutes")
    p.add_argument("--report-only", action="store_true", help="the summary again from the stored batches")
    p.add_argument("--prune", action="store_true", help="remove stored batches of any other key")
    p.add_argument("--n-boot", type=int, default=2000, help="bootstrap draws for each pair's narrowest margin")
    p.add_argument("--model", default=None, help="the model explained (default: <repo>/models/HMT.keras)")
    p.add_argument("--data", default=None, help="HMT folder (default: $HMT_DIR or data/hmt)")
    p.add_argument("--quick", action="store_true", help="smoke run: a tiny untrained model, 4 tiles, few draws")
    p.add_argument("--out", default=None, help="folder holding models/ (default: the repository; required with --quick)")
    args = p.parse_args(argv)
    if args.quick and args.out is None:
        p.error("--quick needs --out FOLDER: its batches would otherwise land among the repository's")
    if args.per_class < 1 or args.batch < 2:
        p.error(f"--per-class must be >= 1 and --batch >= 2, got {args.per_class} and {args.batch}")
    args.out = args.out or _REPO
    return args


def _data(args):
    """The course split's tiles, the model, its predictions and the tiles of the grid."""
    import keras

    import hmt_utils as hmt
    (x_train, _), (x_test, y_test), names = hmt.load_hmt(args.data, progress=False)
    if args.quick:
        from xai.training.vgg import build_vgg7
        model_path = os.path.join(args.out, "models", "quick_sweep_model.keras")
        if not os.path.isfile(model_path):
            os.makedirs(os.path.dirname(model_path), exist_ok=True)
            build_vgg7(len(names), (150, 150, 3), width=4, block3_width=8, seed=0).save(model_path)
        x_train, args.per_class, args.rise_masks = x_train[:32], 1, 40
    else:
        model_path = args.model or os.path.join(_REPO, "models", "HMT.keras")
    model = keras.models.load_model(model_path)
    x = x_test.astype(np.float32)
    classes = model.predict(x, batch_size=64, verbose=0).argmax(-1)
    tiles = stratified_sample(y_test, args.per_class, args.seed, n_classes=len(names))
    if args.quick:
        tiles = tiles[:4]
    return model, model_path, x, y_test, classes, tiles, x_train


def main(argv=None) -> dict:
    args = parse_args(argv)
    import xai.analysis.sweep_store as store
    from xai.analysis.sweep import findings
    from xai.methods import METHODS
    start = time.time()
    model, model_path, x, y, classes, tiles, x_train = _data(args)
    options = sweep_options(x_train, seed=args.seed, rise_masks=args.rise_masks, quick=args.quick)
    key = store.sweep_key(store.file_sha1(model_path), x, options)
    folder = os.path.join(args.out, "models", "hmt_sweep")
    if args.prune:
        for path in glob.glob(os.path.join(folder, "batch_*.npz")):
            if not os.path.basename(path).startswith(f"batch_{store.key_sha1(key)}_"):
                os.remove(path)
    missing = len(tiles) - int(np.isin(tiles, store.stored_tiles(folder, key)).sum())
    if not args.report_only:
        deadline = None if args.max_minutes is None else start + 60 * args.max_minutes
        print(f"{len(tiles)} tiles ({args.per_class} a class), {missing} to compute, batches of {args.batch}", flush=True)
        missing = store.run_stored(model, x, classes, tiles, folder, key, options, batch_tiles=args.batch,
                                   deadline=deadline, log=lambda s: print(s, flush=True))
    record = {"command": "python tools/hmt_sweep.py " + " ".join(sys.argv[1:] if argv is None else argv),
              "key": key, "tiles": tiles.tolist(), "labels": y[tiles].tolist(), "classes": classes[tiles].tolist(),
              "per_class": args.per_class, "stored": int(len(tiles) - missing), "complete": missing == 0,
              "model": os.path.relpath(model_path, _REPO) if model_path.startswith(_REPO) else model_path,
              "quick": args.quick, "versions": library_versions()}
    if missing == 0:
        sweep = store.load_sweep(folder, key, tiles, n_boot=args.n_boot, seed=args.seed)
        names = [m.label for m in METHODS.values()]
        record.update(seconds=round(sweep["seconds"], 1), n_settings=sweep["n_settings"],
                      findings=findings(sweep["rows"], f"HMT ({len(tiles)} tiles)", methods=names),
                      settings_table=sweep["settings_table"], completeness_table=sweep["completeness_table"])
    path = os.path.join(args.out, "models", "hmt_sweep.json")
    with atomic_open(path, "w") as f:
        json.dump(record, f, indent=1)
        f.write("\n")
    print(f"{record['stored']} of {len(tiles)} tiles stored" +
          (f"; grid computed in {record['seconds'] / 60:.1f} min" if record["complete"] else "") + f" -> {path}")
    return record


if __name__ == "__main__":
    main()
