"""Train the HMT CNN with some recipe fields changed and record what the validation split says: the
pilots (and longer trials) that choose HMT's recipe (``HMT.ipynb``, section 2). ``HMT_test`` is never
evaluated; the trained model is not saved, only its record.

    python tools/hmt_trial.py --epochs 20 ema_decay=0.998 stem_width=16 --out models/trials/pilot.json

Fields are those of ``hmt_utils.TrainConfig`` (``key=value``, values parsed as Python literals). Each
epoch's line is printed as it ends; the JSON record (the config, the history with the seconds of each
epoch, the best epoch, its validation accuracy, the training time and the library versions) is written
through a temporary file and a rename. Run it alone: on a 2-core CPU two trainings slow each other.
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import sys
import time

_TOOLS = os.path.dirname(os.path.abspath(__file__))


def parse_fields(pairs: list[str], defaults) -> dict:
    """``key=value`` pairs -> {field: value}, each value of its field's type in ``defaults`` (a
    config instance; an int is accepted for a float field). Unknown or repeated fields, and values of
    the wrong type, stop here, before any data is loaded."""
    fields = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"expected key=value, got {pair!r}")
        if key in fields:
            raise SystemExit(f"field {key!r} given twice")
        if not hasattr(defaults, key):
            raise SystemExit(f"unknown field {key!r}; the fields are {sorted(vars(defaults))}")
        want = type(getattr(defaults, key))
        try:
            parsed = ast.literal_eval(value)
        except (ValueError, SyntaxError, TypeError):
            parsed = value               # a bare string, e.g. activation=relu
        if want is float and type(parsed) is int:
            parsed = float(parsed)
        if type(parsed) is not want:
            raise SystemExit(f"field {key!r} takes a {want.__name__}, got {value!r}")
        fields[key] = parsed
    return fields


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("fields", nargs="*", help="TrainConfig fields to change, key=value")
    parser.add_argument("--epochs", type=int, default=None, help="epochs (default: the recipe's)")
    parser.add_argument("--data", default=None, help="HMT folder (default: $HMT_DIR or data/hmt)")
    parser.add_argument("--out", default=None, help="JSON record to write")
    args = parser.parse_args(argv)
    sys.path[:0] = [p for p in (_TOOLS, os.path.dirname(_TOOLS)) if p not in sys.path]   # tools/, the repository

    import keras

    import hmt_utils as hmt
    from xai.files import write_atomic
    from xai.training.saving import library_versions
    fields = parse_fields(args.fields, hmt.TrainConfig())
    if args.epochs is not None:
        if "epochs" in fields:
            raise SystemExit("give the epochs once: --epochs or epochs=")
        fields["epochs"] = args.epochs
    config = hmt.TrainConfig(**fields)          # refuses unknown fields and impossible values
    print(config, flush=True)
    grouped = config.val_split == "source_image"
    loaded = hmt.load_hmt(args.data, progress=False, groups=grouped)
    (x_train, y_train), groups = loaded[0], (loaded[3][0] if grouped else None)

    seconds = []

    class EpochLine(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            seconds.append(round(time.perf_counter() - self.start, 1))
            shown = " ".join(f"{k} {v:.4f}" for k, v in sorted(logs.items()))
            print(f"epoch {epoch + 1}: {seconds[-1]} s  {shown}", flush=True)

    _, info = hmt.train(x_train, y_train, config, groups=groups, callbacks=[EpochLine()])
    record = {"command": "python tools/hmt_trial.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "changed": fields, "config": info["config"], "best_epoch": info["best_epoch"],
              "val_accuracy": info["val_accuracy"], "train_seconds": round(info["train_seconds"], 1),
              "epoch_seconds": seconds, "history": info["history"], "n_train": info["n_train"],
              "n_val": info["n_val"], "train_fingerprint": info["train_fingerprint"],
              "versions": library_versions()}
    print(f"best validation accuracy {info['val_accuracy']:.4f} at epoch {info['best_epoch']}, "
          f"{info['train_seconds'] / 60:.1f} min", flush=True)
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        write_atomic(args.out, json.dumps(record, indent=1, sort_keys=True) + "\n")
        print("wrote", args.out)
    return record


if __name__ == "__main__":
    main()
