"""The settings grid (:mod:`xai.analysis.sweep`) on many examples, in batches stored as they finish:
a run that stops keeps its finished batches, a later run computes only the examples not yet stored,
and a notebook loads the grid instead of recomputing it (``tools/settings_grid.py`` runs it on HMT and MNIST-1D).

A batch file holds, for each of its examples (``tiles``: their indices in the data source), every
grid cell's per-example scores and IG's completeness gap for each baseline, beside the ``key`` it
was computed under: the model file's hash, the examples' content hash, every option of the sweep
and :data:`STORE_VERSION`. Only batches whose key equals the requested one are read, so a retrained
model, other options or other data never mix into the grid. Each example's scores come from the
batch it was computed in: the noise draws (SmoothGrad, the tunnel, uniform baselines, ROAD) are
seeded per call, so an example's maps depend on the batch it fell in, as they would in any batch
of one call; the examples of a batch are the batch's own, in the order given.

Axis key: N examples, B a batch's examples, C grid cells, M swept metrics, G IG baselines checked.
"""
from __future__ import annotations

import glob
import hashlib
import json
import os
import time
from collections.abc import Callable

import numpy as np

from xai.analysis.sweep import (
    SWEPT_METRICS,
    completeness_gaps,
    evaluate_grid,
    evaluations,
    method_variants,
    summarise_grid,
)
from xai.files import atomic_path
from xai.methods import METHODS

__all__ = ["STORE_VERSION", "sweep_key", "run_batch", "save_batch", "stored_tiles", "gather", "run_stored",
           "load_sweep", "load_record", "load_or_compute", "file_sha1", "key_sha1"]

STORE_VERSION = 1
_RUN_OPTIONS = ("value_range", "patch", "blur_sigma", "rise_settings", "steps", "noise_std", "noise_scale", "seed",
                "batch_size")


def file_sha1(path: str) -> str:
    """The sha1 of a file's bytes (20 hex digits): names the exact model a grid explains."""
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:20]


def _array_sha1(a) -> str:
    a = np.ascontiguousarray(a)
    h = hashlib.sha1(f"{a.shape}|{a.dtype}|".encode())
    h.update(memoryview(a).cast("B"))
    return h.hexdigest()[:20]


def sweep_key(model_sha1: str, x, classes, options: dict) -> dict:
    """The key a batch is stored and read under: the model's hash (:func:`file_sha1`), the hash of
    ALL the examples the grid may draw from (``x``: the data source, indexed by the tiles) and of
    the classes explained (``classes``: int (N,), one a row of ``x``), the options of
    :func:`run_batch` (``references`` by their hash), METHODS' names and the version."""
    _checked_options(options)
    classes = np.asarray(classes)
    if classes.shape != (len(x),) or classes.dtype.kind not in "iu":
        raise ValueError(f"classes must be int (N,) = ({len(x)},), one a row of x, got {classes.dtype} {classes.shape}")
    opts = {k: v for k, v in options.items() if k != "references"}
    opts["rise_settings"] = [[m, c] for m, c in options["rise_settings"]]
    refs = options.get("references")
    key = {"version": STORE_VERSION, "model_sha1": str(model_sha1), "data_sha1": _array_sha1(x),
           "classes_sha1": _array_sha1(classes.astype(np.int64)),
           "references_sha1": None if refs is None else _array_sha1(np.asarray(refs, np.float32)),
           "options": opts, "methods": sorted(METHODS)}
    return json.loads(json.dumps(key, default=_plain))          # as stored: tuples as lists, numpy as Python


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"sweep options must be plain numbers, strings, lists or None, got {type(value).__name__}")


def key_sha1(key: dict) -> str:
    """A short hash of a key, for batch file names."""
    return hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:10]


def _checked_options(options: dict) -> None:
    missing = [k for k in _RUN_OPTIONS if k not in options]
    draws = {"smoothgrad_samples", "expected_samples", "tunnel_samples", "uniform_samples"}
    unknown = set(options) - set(_RUN_OPTIONS) - draws - {"references"}
    if missing or unknown:
        raise ValueError(f"sweep options must name {_RUN_OPTIONS} (and may name references and {sorted(draws)}); "
                         f"missing {missing}, unknown {sorted(unknown)}")


def run_batch(model, x, classes, options: dict, log: Callable | None = None) -> dict:
    """The grid on one batch: ``{"grid": {(method, setting, evaluation): {metric: (B,)}},
    "references": {(method, setting): ref}, "evaluations": ..., "gaps": {setting: {"gap", "how"}}}``.
    ``options``: ``value_range, patch, blur_sigma, rise_settings, steps, noise_std, noise_scale,
    seed, batch_size``, optional ``references`` and noise draws (see :func:`xai.analysis.sweep.run_sweep`)."""
    _checked_options(options)
    o = dict(options)
    draws = {k: o.pop(k) for k in list(o) if k.endswith("_samples")}
    variants, refs = method_variants(model, x, classes, value_range=o["value_range"], references=o.get("references"),
                                     blur_sigma=o["blur_sigma"], rise_settings=o["rise_settings"], seed=o["seed"],
                                     batch_size=o["batch_size"], log=log, **draws)
    evals = evaluations(o["value_range"])
    grid = evaluate_grid(model, x, classes, variants, evals, patch=o["patch"], steps=o["steps"],
                         noise_std=o["noise_std"], noise_scale=o["noise_scale"], seed=o["seed"],
                         batch_size=o["batch_size"])
    gaps = completeness_gaps(model, x, classes, variants[METHODS["integrated_gradients"].label],
                             value_range=o["value_range"], references=o.get("references"), blur_sigma=o["blur_sigma"],
                             uniform_samples=draws.get("uniform_samples", 4), seed=o["seed"], batch_size=o["batch_size"])
    return {"grid": grid, "references": refs, "evaluations": evals, "gaps": gaps}


def save_batch(path: str, key: dict, tiles, batch: dict, seconds: float) -> str:
    """One batch (:func:`run_batch`) of the examples ``tiles``, written atomically as ``.npz``."""
    tiles = np.asarray(tiles, np.int64)
    cells = list(batch["grid"])
    scores = np.stack([[batch["grid"][c][m] for m in SWEPT_METRICS] for c in cells]).astype(np.float64)   # (C, M, B)
    if scores.shape[2] != len(tiles):
        raise ValueError(f"the batch scores {scores.shape[2]} examples, but {len(tiles)} tiles were named")
    gap_names = list(batch["gaps"])
    meta = {"key": key, "cells": [list(c) for c in cells], "metrics": list(SWEPT_METRICS), "gap_settings": gap_names,
            "gap_how": [batch["gaps"][g]["how"] for g in gap_names],
            "references": [[m, s, r] for (m, s), r in batch["references"].items()],
            "evaluations": batch["evaluations"], "seconds": float(seconds)}
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, tiles=tiles, scores=scores, gaps=np.stack([batch["gaps"][g]["gap"] for g in gap_names]),
                     meta_json=np.array(json.dumps(meta)))
    return path


def _read(path: str) -> tuple[dict, dict]:
    with np.load(path) as z:
        return json.loads(str(z["meta_json"])), {k: z[k] for k in ("tiles", "scores", "gaps")}


def _batches(folder: str, key: dict) -> list[tuple[dict, dict]]:
    """The folder's batches whose key equals ``key`` (others, e.g. of an earlier model, are left alone)."""
    key = json.loads(json.dumps(key, default=_plain))              # as stored: tuples as lists
    out = []
    for path in sorted(glob.glob(os.path.join(folder, "batch_*.npz"))):
        meta, arrays = _read(path)
        if meta["key"] == key:
            out.append((meta, arrays))
    return out


def stored_tiles(folder: str, key: dict) -> np.ndarray:
    """The examples already stored under ``key``: int (M,), sorted."""
    found = [a["tiles"] for _, a in _batches(folder, key)]
    return np.unique(np.concatenate(found)) if found else np.zeros(0, np.int64)


def gather(folder: str, key: dict, tiles) -> dict:
    """The stored grid of the examples ``tiles``, in their order: :func:`run_batch`'s dict with
    every example's scores, plus ``seconds`` (the batches' compute time) and ``batches``. Raises
    when an example is not stored under ``key``."""
    tiles = np.asarray(tiles, np.int64)
    if tiles.ndim != 1 or len(tiles) < 2:
        raise ValueError(f"tiles must name at least 2 examples (N,), got shape {tiles.shape}")
    batches = _batches(folder, key)
    where = {}
    for b, (_, arrays) in enumerate(batches):
        for j, t in enumerate(arrays["tiles"]):
            where.setdefault(int(t), (b, j))
    missing = [int(t) for t in tiles if int(t) not in where]
    if missing:
        raise LookupError(f"{len(missing)} of {len(tiles)} examples are not stored in {folder} under this key "
                          f"(first: {missing[:5]}); run the tool that fills it (e.g. tools/settings_grid.py)")
    first = batches[0][0]
    if any(m["cells"] != first["cells"] or m["gap_settings"] != first["gap_settings"] or m["metrics"] != first["metrics"]
           for m, _ in batches):
        raise ValueError(f"the batches in {folder} disagree on the grid's cells under one key: remove them and rerun")
    pick = [where[int(t)] for t in tiles]
    scores = np.stack([batches[b][1]["scores"][:, :, j] for b, j in pick], -1)                  # (C, M, N)
    gaps = np.stack([batches[b][1]["gaps"][:, j] for b, j in pick], -1)                      # (G, N)
    grid = {tuple(c): {m: scores[i, k] for k, m in enumerate(first["metrics"])} for i, c in enumerate(first["cells"])}
    used = sorted({b for b, _ in pick})
    return {"grid": grid, "references": {(m, s): r for m, s, r in first["references"]},
            "evaluations": first["evaluations"],
            "gaps": {g: {"gap": gaps[i], "how": h} for i, (g, h) in enumerate(zip(first["gap_settings"], first["gap_how"]))},
            "seconds": float(sum(batches[b][0]["seconds"] for b in used)), "batches": len(used)}


def run_stored(model, x, classes, tiles, folder: str, key: dict, options: dict, *, batch_tiles: int = 16,
               deadline: float | None = None, log: Callable | None = print) -> int:
    """Compute and store the examples of ``tiles`` not yet stored under ``key``, ``batch_tiles`` at a
    time (``x``, ``classes``: the whole source, indexed by ``tiles``); start no batch after
    ``deadline`` (a ``time.time()``). Returns how many examples are still missing."""
    if not isinstance(batch_tiles, (int, np.integer)) or batch_tiles < 2:
        raise ValueError(f"batch_tiles must be an int >= 2 (paired tests need two examples), got {batch_tiles!r}")
    if json.loads(json.dumps(key, default=_plain)) != sweep_key(key.get("model_sha1"), x, classes, options):
        raise ValueError("key does not match x, classes and options (build it with sweep_key(model_sha1, x, classes, "
                         "options)): batches stored under it would mix with another grid's")
    tiles = np.asarray(tiles, np.int64)
    todo = tiles[~np.isin(tiles, stored_tiles(folder, key))]
    for start in range(0, len(todo), batch_tiles):
        if deadline is not None and time.time() > deadline:
            break
        part = todo[start:start + batch_tiles]
        began = time.perf_counter()
        batch = run_batch(model, x[part], np.asarray(classes)[part], options)
        seconds = time.perf_counter() - began
        save_batch(os.path.join(folder, f"batch_{key_sha1(key)}_{int(part[0]):05d}_{len(part)}.npz"), key,
                   part, batch, seconds)
        if log:
            log(f"stored {len(part)} examples from {int(part[0])} in {seconds / 60:.1f} min; "
                f"{len(todo) - start - len(part)} to go")
    return int(len(tiles) - np.isin(tiles, stored_tiles(folder, key)).sum())


def load_sweep(folder: str, key: dict, tiles, *, n_boot: int = 2000, seed: int = 0) -> dict:
    """The grid of ``tiles`` from the stored batches, summarised as :func:`xai.analysis.sweep.run_sweep`
    returns it (without the maps), plus ``seconds`` and ``batches``."""
    g = gather(folder, key, tiles)
    return dict(summarise_grid(g["grid"], g["references"], g["evaluations"], g["gaps"], n_boot=n_boot, seed=seed),
                seconds=g["seconds"], batches=g["batches"])


def load_record(record_path: str, model_path: str, x, tiles, *, classes=None, n_boot: int = 2000, seed: int = 0) -> dict:
    """The grid a tool stored (its record, e.g. ``models/sweep_hmt.json``, and the batches in the
    folder of the same name beside it) for the model file and data given: :func:`load_sweep` of the
    record's key, after checking that the key names this model (its file's hash), these data (``x``:
    all the examples the tiles index), these ``classes`` (int (N,), if given), this version of the
    store and of METHODS, that the record holds these ``tiles`` and is not a smoke run. Adds
    ``record`` (the tool's JSON). Raises, naming what differs and the command to run, otherwise.
    The record's options are the tool's (``record["key"]["options"]``), not the caller's."""
    import json
    with open(record_path) as f:
        record = json.load(f)
    key, tiles = record["key"], np.asarray(tiles, np.int64)
    command = record.get("command", "the tool named in the record")
    problems = []
    if key["model_sha1"] != file_sha1(model_path):
        problems.append(f"it explains another model than {model_path} (retrained since?)")
    if key["data_sha1"] != _array_sha1(x):
        problems.append("it was computed on other data")
    if classes is not None and key.get("classes_sha1") != _array_sha1(np.asarray(classes).astype(np.int64)):
        problems.append("it explains other classes")
    if key.get("version") != STORE_VERSION or key.get("methods") != sorted(METHODS):
        problems.append(f"it was stored by another version of the store (version {key.get('version')}, methods "
                        f"{key.get('methods')}) than this one ({STORE_VERSION}, {sorted(METHODS)})")
    if record.get("quick"):
        problems.append("it is a --quick smoke run")
    if sorted(record["tiles"]) != sorted(tiles.tolist()):
        problems.append(f"it holds {len(record['tiles'])} other tiles than the {len(tiles)} asked for")
    if not record.get("complete"):
        problems.append(f"only {record.get('stored')} of its {len(record['tiles'])} tiles are stored")
    if problems:
        raise ValueError(f"the stored grid {record_path} does not fit: " + "; ".join(problems) +
                         f". Run `{command.replace(' --report-only', '')}` (resumable), or compute it here")
    folder = os.path.splitext(record_path)[0]
    return dict(load_sweep(folder, key, tiles, n_boot=n_boot, seed=seed), record=record)


def load_or_compute(record_path: str, model_path: str, x, tiles, compute: Callable, *, classes=None,
                    fallback_tiles=None, n_boot: int = 2000, seed: int = 0, log: Callable = print) -> tuple[dict, np.ndarray]:
    """:func:`load_record` where the stored grid fits; otherwise says why (``log``) and returns
    ``compute(fallback_tiles)`` (``fallback_tiles``: None for ``tiles``), so that a notebook still
    runs, on the examples it says. Returns ``(sweep, the examples it ran on)``."""
    import os
    try:
        if not os.path.isfile(record_path):
            raise FileNotFoundError(f"{record_path} is not there")
        return load_record(record_path, model_path, x, tiles, classes=classes, n_boot=n_boot, seed=seed), np.asarray(tiles)
    except (FileNotFoundError, LookupError, ValueError) as err:
        ran = np.asarray(tiles if fallback_tiles is None else fallback_tiles)
        log(f"not loading the stored grid ({err}); computing it here on {len(ran)} examples instead")
        return compute(ran), ran
