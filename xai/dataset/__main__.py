"""The command line of :func:`xai.dataset.explain_dataset`: ``python -m xai.dataset --help``, and
``python -m xai.dataset merge --out all.h5 shard*.h5`` to join the shard files of one run.
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np

import xai.dataset.runner as runner
from xai.dataset.explain import explain_dataset
from xai.dataset.store import merge_shards
from xai.methods import METHODS

__all__ = ["main"]


def _parse_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["merge"]:
        return _merge(argv[1:])
    parser = _parser()
    args = parser.parse_args(argv)
    options, shard, class_index = _options(parser, args), _shard(parser, args.shard), _class_index(parser, args.class_index)
    if args.method not in METHODS:
        parser.error(f"--method must be one of {', '.join(sorted(METHODS))}, got {args.method!r}")
    if args.labels and not args.data.endswith(".npy"):
        parser.error("--labels goes with .npy data; a folder with one folder a class has its labels")

    strategy, model = _load_model(args.model, args.strategy)
    data = np.load(args.data, mmap_mode="r") if args.data.endswith(".npy") else args.data
    if args.labels:
        data = (data, np.load(args.labels))
    try:
        path = explain_dataset(model, data, args.method, args.out, class_index=class_index,
                               batch_size=args.batch_size, strategy=strategy, shard=shard, resume=not args.no_resume,
                               progress=not args.no_progress, method_batch_size=args.method_batch_size,
                               compression=None if args.compression == "none" else args.compression, **options)
    except ValueError as err:
        parser.exit(2, f"error: {err}\n")
    print(path)
    return 0


def _merge(argv: list[str]) -> int:
    """``python -m xai.dataset merge --out all.h5 shard*.h5``."""
    parser = argparse.ArgumentParser(prog="python -m xai.dataset merge",
                                     description="Join the shard files of one run into one file.")
    parser.add_argument("shards", nargs="+", help="the shard files (every shard of the run once)")
    parser.add_argument("--out", required=True, help="the merged HDF5 file")
    args = parser.parse_args(argv)
    try:
        print(merge_shards(args.shards, args.out))
    except ValueError as err:
        parser.exit(2, f"error: {err}\n")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m xai.dataset",
        description="Explain every example of a data set and store the maps in HDF5 (resumable). "
                    "`python -m xai.dataset merge --out all.h5 shard*.h5` joins shard files.")
    parser.add_argument("--model", required=True, help="a saved Keras model (.keras or legacy .h5)")
    parser.add_argument("--data", required=True, help="a folder of images (flat, or one folder a class) or a .npy file")
    parser.add_argument("--labels", default=None, help="a .npy file of int labels for .npy data (for --class-index label)")
    parser.add_argument("--method", required=True, help=f"one of {', '.join(sorted(METHODS))}")
    parser.add_argument("--out", required=True, help="the HDF5 file to write")
    parser.add_argument("--batch-size", type=int, default=64, help="examples a batch (default 64)")
    parser.add_argument("--method-batch-size", type=int, default=None, help="the method's model inputs a call")
    parser.add_argument("--class-index", default="predicted", help="'predicted' (default), 'label' or an int")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="a method option, the value read as JSON where it parses (e.g. steps=32); repeatable")
    parser.add_argument("--shard", default=None, metavar="I/N", help="explain shard I of N (0-based)")
    parser.add_argument("--strategy", choices=("none", "mirrored", "multi-worker"), default="none",
                        help="mirrored: every GPU of this machine; multi-worker: machines from TF_CONFIG")
    parser.add_argument("--compression", choices=("gzip", "lzf", "none"), default="gzip")
    parser.add_argument("--no-resume", action="store_true", help="start again even if --out exists")
    parser.add_argument("--no-progress", action="store_true")
    return parser


def _options(parser, args) -> dict:
    """``--option KEY=VALUE`` (repeated) as the method's keyword arguments."""
    options = {}
    for item in args.option:
        key, sep, value = item.partition("=")
        if not sep or not key:
            parser.error(f"--option takes KEY=VALUE, got {item!r}")
        options[key] = _parse_value(value)
    return options


def _shard(parser, text: str | None) -> tuple[int, int] | None:
    """``--shard I/N`` as ``(i, n)``; None without it."""
    if not text:
        return None
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        parser.error(f"--shard takes I/N, e.g. 0/4, got {text!r}")
    if not 0 <= i < n:
        parser.error(f"--shard I/N needs 0 <= I < N, got {text!r}")
    return i, n


def _class_index(parser, text: str) -> str | int:
    """``--class-index``: "predicted", "label" or an int."""
    if text in ("predicted", "label"):
        return text
    try:
        return int(text)
    except ValueError:
        parser.error(f"--class-index takes 'predicted', 'label' or an int, got {text!r}")


def _load_model(path: str, strategy_name: str):
    """``(strategy, model)``: the ``--strategy`` (None for "none") and the model loaded in its scope."""
    import keras
    import tensorflow as tf
    strategy = {"none": None, "mirrored": tf.distribute.MirroredStrategy,
                "multi-worker": tf.distribute.MultiWorkerMirroredStrategy}[strategy_name]
    strategy = strategy() if strategy else None
    with strategy.scope() if strategy else runner.nothing():
        model = keras.models.load_model(path, compile=False)
    return strategy, model


if __name__ == "__main__":
    sys.exit(main())
