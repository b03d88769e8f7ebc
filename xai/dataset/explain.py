"""Explain a whole data set: streamed from disk in batches, stored in HDF5, resumable after any kill,
spread over the devices of one machine or over machines with ``tf.distribute``.

    explain_dataset(model, data, "grad_cam", "hmt_gradcam.h5")                 # a notebook
    python -m xai.dataset --model models/HMT.keras --data data/hmt/HMT_test \\
        --method grad_cam --out hmt_gradcam.h5                                  # a batch job

A run killed at any point (SIGKILL included) leaves ``out`` readable with every completed batch
(see ``xai.dataset.store`` for how); the same call resumes after the last one and refuses, naming the
difference, when the model (weights fingerprint), method, options, data or batch size differ from
the file's. Data are read by ``xai.dataset.sources``, the batches run by ``xai.dataset.runner`` (devices, reading
ahead, writing behind), and the file's layout is ``xai.dataset.store``'s.

Axis key: N examples, B examples in one batch, T signal length, H, W image size, C channels,
K classes, R replicas (devices).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable

import numpy as np

import xai.dataset.runner as runner
import xai.dataset.store as store
from xai.dataset.sources import array_digest, open_source
from xai.dataset.store import COMPRESSIONS, FORMAT, shard_path
from xai.methods import METHODS, method_function

__all__ = ["explain_dataset", "model_fingerprint"]

# --- the method, its options and the model, as recorded in the file ---

def _resolve_method(method) -> tuple[Callable, str]:
    if isinstance(method, str):
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; expected one of {sorted(METHODS)} or a function "
                             "f(model, x, class_index, **options) -> maps")
        return method_function(method), method
    if callable(method):
        return method, f"{getattr(method, '__module__', '?')}.{getattr(method, '__qualname__', repr(method))}"
    raise ValueError(f"method must be a name ({sorted(METHODS)}) or a function, got {type(method).__name__}")


def _recordable(name: str, value):
    """An option as JSON: arrays by shape and content hash, layers by name; refuses what cannot be
    recorded, since a resumed run is checked against it."""
    import keras
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float, np.integer, np.floating)):
        return value.item() if isinstance(value, np.generic) else value
    if isinstance(value, (list, tuple)):
        return [_recordable(name, v) for v in value]
    if isinstance(value, dict):
        return {str(k): _recordable(name, v) for k, v in sorted(value.items())}
    if isinstance(value, np.ndarray):
        return {"array": list(value.shape), "dtype": str(value.dtype), "sha1": array_digest(value)}
    if isinstance(value, keras.layers.Layer):
        return {"layer": value.name}
    raise ValueError(f"option {name}={value!r} ({type(value).__name__}) cannot be recorded in the file; pass "
                     "a number, a string, a list or a NumPy array (a layer by its name)")


# the layer arguments that change what a trained model computes (names, initializers, regularizers,
# dtype policies and trainability do not), so that the fingerprint is stable across saving and
# across Keras versions that add arguments
_ARCHITECTURE_ARGS = ("activation", "padding", "strides", "pool_size", "kernel_size", "dilation_rate", "data_format",
                      "keepdims", "axis", "units", "filters", "use_bias", "epsilon", "center", "scale", "scale_",
                      "offset", "target_shape", "interpolation", "size", "depth_multiplier", "groups", "negative_slope",
                      "max_value", "threshold", "approximate")


def _architecture(model) -> list:
    from xai.layers import all_layers
    described = []
    for layer in all_layers(model):
        config = layer.get_config()
        described.append([type(layer).__name__] + [
            [k, config[k] if isinstance(config[k], (int, float, str, bool, type(None), list, tuple)) else str(config[k])]
            for k in _ARCHITECTURE_ARGS if k in config])
    return described


def model_fingerprint(model) -> str:
    """sha1 (20 hex digits) of every weight's shape, dtype and bytes, in the model's order, and of
    the architecture (each layer's type and the arguments that change what it computes): the same
    for a model and its saved and reloaded copy, whatever the layers' names."""
    h = hashlib.sha1(json.dumps(_architecture(model), default=str).encode())
    for w in model.weights:
        a = np.ascontiguousarray(w.numpy())
        h.update(f"{a.shape}|{a.dtype}|".encode())
        h.update(memoryview(a).cast("B"))
    return h.hexdigest()[:20]


def _versions() -> dict:
    import h5py
    import keras
    import tensorflow as tf
    return {"python": sys.version.split()[0], "numpy": np.__version__, "tensorflow": tf.__version__,
            "keras": keras.__version__, "h5py": h5py.__version__}


# --- checks at the door ---

def _check_shard(shard):
    if shard is None:
        return (0, 1)
    ok = isinstance(shard, (tuple, list)) and len(shard) == 2 and all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in shard)
    if not ok or not (shard[1] >= 1 and 0 <= shard[0] < shard[1]):
        raise ValueError(f"shard must be (i, n) with 0 <= i < n, got {shard!r}")
    return int(shard[0]), int(shard[1])


def _check_class_index(class_index):
    if isinstance(class_index, str):
        if class_index not in ("predicted", "label"):
            raise ValueError(f"class_index must be 'predicted', 'label', an int or an int array indexed by example, "
                             f"got {class_index!r}")
        return class_index
    a = np.asarray(class_index)
    if a.dtype.kind not in "iu" or a.ndim > 1:
        raise ValueError(f"class_index must be 'predicted', 'label', an int or a 1-D int array (one per example "
                         f"of data), got {class_index!r}")
    return a.astype(np.int64)


def _class_index_record(spec):
    if isinstance(spec, str):
        return spec
    return int(spec) if spec.ndim == 0 else {"array": list(spec.shape), "sha1": array_digest(spec)}


def _check_writable(out: str) -> None:
    if os.path.isdir(out):
        raise ValueError(f"out={out!r} is a folder; give a file name (e.g. {os.path.join(out, 'maps.h5')!r})")
    folder = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(folder):
        raise ValueError(f"the folder of out={out!r} does not exist; create it first")
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".write-check-")
        os.close(fd)
        os.remove(probe)
    except OSError as err:
        raise ValueError(f"cannot write in {folder!r} ({err}); choose another out") from err


def _check_space(out: str, need_bytes: int) -> None:
    folder = os.path.dirname(os.path.abspath(out))
    free = shutil.disk_usage(folder).free
    if need_bytes > free:
        raise ValueError(f"{folder!r} has {free / 1e9:.2f} GB free; the maps need up to {need_bytes / 1e9:.2f} GB "
                         "uncompressed. Free space, choose another out, or shard the run")


# --- the public entry points ---

def explain_dataset(model, data, method, out, *, class_index="predicted", batch_size: int = 64, strategy=None,
                    shard=None, resume: bool = True, progress: bool = True, method_batch_size: int | None = None,
                    compression: str | None = "gzip", **method_options) -> str:
    """Explain every example of ``data`` with ``method`` and store the maps in the HDF5 file ``out``.

    Args:
        model: a Keras model (see ``xai.layers.check_model``). Under a ``strategy``, load or build it in
            ``strategy.scope()`` so each device holds its own copy of the weights.
        data: a NumPy array or memory map float/int (N, T, C) or (N, H, W, C), a pair ``(x, labels)``,
            a ``tf.data.Dataset`` of inputs or (inputs, labels) (batched or not), or a folder of image
            files (flat, or one folder a class as ``data/hmt/HMT_test``; pixels as stored, 0-255).
            Read ``batch_size`` examples at a time, never all at once.
        method: a name of :data:`METHODS` (``"grad_cam"``, ``"integrated_gradients"``, ``"rise"``...)
            or a function ``f(model, x, class_index, **options) -> maps``.
        out: the HDF5 file to write (its folder must exist); its layout is in ``xai.dataset.store``'s docstring.
        class_index: ``"predicted"`` (the model's arg-max), ``"label"`` (the data's labels), an int, or
            an int array indexed by example position in ``data``.
        batch_size: examples read, explained and stored together (one block of the file); a resumed
            run must use the same.
        strategy: a ``tf.distribute`` strategy. ``MirroredStrategy``: each batch is split over its
            devices; ``MultiWorkerMirroredStrategy``: each worker takes shard (task, workers) and
            writes :func:`shard_path` ``(out, task, workers)``; join them with :func:`merge_shards`.
        shard: ``(i, n)``: explain examples i, i + n, i + 2n, ... only (a job array without a
            strategy); ``out`` is this shard's file.
        resume: continue an existing ``out`` made by the same call (False: start again, replacing it).
        progress: a progress bar (examples done, rate, time left).
        method_batch_size: the method's own ``batch_size`` (model inputs per call); None: its default.
        compression: of the maps: "gzip" (level 1 with byte shuffling; any HDF5 reader), "lzf"
            (faster; h5py only) or None.
        **method_options: passed to the method and recorded in the file (e.g. ``steps=32``).

    Returns:
        the path of the file written (``out``, or this worker's shard file).

    Raises:
        ValueError: an unknown method or option, data that do not fit the model, classes out of range,
            an unwritable folder or too little free space (before any file is written), maps of the
            wrong shape or not finite, another run writing ``out``, or a resumed file made by another
            model, method, option, data or batch size (the message names the difference; the done
            batches' inputs are read again and compared with the digests stored with them).
        OSError: writing failed during the run (the disk filled up): the completed batches are kept.
    """
    from xai.core import num_classes
    from xai.layers import check_model
    check_model(model)
    function, method_name = _resolve_method(method)
    batch_size, resume, progress = _check_settings(batch_size, method_batch_size, resume, progress, compression)
    _check_method_options(function, method_options)
    class_spec = _check_class_index(class_index)
    shard, out = _worker_shard(strategy, _check_shard(shard), out)
    source = open_source(data, model, shard)
    _check_against_data(class_spec, source, shard, num_classes(model))
    attrs = _file_attrs(model, method_name, method_options, class_spec, batch_size, shard, source, compression,
                        method_batch_size)

    _check_writable(out)
    with _exclusive(out):
        done_blocks = _resume_point(out, attrs, _CHECKED_ATTRS, batch_size, resume, source)
        if done_blocks is None:                                            # complete already
            return out
        explainer = runner.Explainer(model, function, method_options, class_spec, runner.devices(strategy),
                                     method_batch_size)
        try:
            fields = _explain_remaining(source, explainer, num_classes(model), out, attrs, batch_size, done_blocks,
                                        compression, progress)
            _consolidate(out, attrs, fields, batch_size, source, compression)
            return out
        finally:
            explainer.close()


# --- the steps of explain_dataset ---

# the attributes a resumed run must share with the file (the rest describe the run)
_CHECKED_ATTRS = ("format", "method", "method_options", "model_fingerprint", "class_index", "batch_size", "shard",
                  "data", "n_examples", "n_total", "compression")


def _check_settings(batch_size, method_batch_size, resume, progress, compression) -> tuple[int, bool, bool]:
    """The run's own settings, checked: ``(batch_size, resume, progress)``."""
    from xai.core import check_batch_size, check_flag
    batch_size = check_batch_size(batch_size)
    if method_batch_size is not None:
        check_batch_size(method_batch_size, "method_batch_size")
    resume, progress = check_flag(resume, "resume"), check_flag(progress, "progress")
    if compression not in COMPRESSIONS:
        raise ValueError(f"compression must be one of {COMPRESSIONS}, got {compression!r}")
    return batch_size, resume, progress


def _check_method_options(function, method_options: dict) -> None:
    """The method's options: none that explain_dataset sets itself, none the method does not take."""
    for bad in ("return_delta", "class_index", "x", "model"):
        if bad in method_options:
            raise ValueError(f"option {bad!r} is set by explain_dataset itself; leave it out")
    _check_options(function, method_options)


def _worker_shard(strategy, shard: tuple[int, int], out) -> tuple[tuple[int, int], str]:
    """``(shard, out)``: under a multi-worker strategy, this worker's shard and its shard file."""
    worker, workers = runner.worker_of(strategy) if strategy is not None else (0, 1)
    if workers > 1:
        if shard != (0, 1):
            raise ValueError("pass either shard= or a multi-worker strategy, not both")
        shard, out = (worker, workers), shard_path(os.fspath(out), worker, workers)
    return shard, os.fspath(out)


def _file_attrs(model, method_name, method_options, class_spec, batch_size, shard, source, compression,
                method_batch_size) -> dict:
    """The file's attributes: what made it (checked when a run resumes, :data:`_CHECKED_ATTRS`) and how."""
    options = {k: _recordable(k, v) for k, v in sorted(method_options.items())}
    return {"format": FORMAT, "method": method_name, "method_options": json.dumps(options, sort_keys=True),
            "model_fingerprint": model_fingerprint(model), "model_name": model.name,
            "class_index": json.dumps(_class_index_record(class_spec)), "batch_size": batch_size,
            "shard": json.dumps(list(shard)), "data": json.dumps(source.describe, sort_keys=True),
            "n_examples": -1 if source.n is None else source.n,
            "n_total": -1 if source.total is None else source.total, "compression": str(compression),
            "method_batch_size": -1 if method_batch_size is None else method_batch_size,
            "versions": json.dumps(_versions(), sort_keys=True), "complete": False}


def _explain_remaining(source, explainer, k: int, out, attrs, batch_size, done_blocks, compression, progress) -> dict:
    """Explain the batches after ``done_blocks`` into ``<out>.parts/``; returns the file's fields."""
    parts_dir = out + ".parts"
    batches = runner.prefetch(runner.with_digests(source.batches(done_blocks * batch_size, batch_size)))
    first = next(batches, None)
    if first is None and done_blocks == 0:
        raise ValueError("data holds no examples (for this shard)")
    if first is None:
        return _fields_of(out)
    # the first batch before any file is written: the options are checked, the maps' shape known
    first = (first, explainer(first[1], first[2], first[0]))
    fields = store.fields_for(first[1][0].shape[1:], np.float32, k, source.has_labels)
    row_bytes = sum(int(np.prod(s)) * d.itemsize for s, d, _ in fields.values())
    todo = batch_size if source.n is None else source.n - done_blocks * batch_size
    _check_space(out, 2 * row_bytes * max(todo, 1))                        # parts, then the one file
    if done_blocks == 0:
        shutil.rmtree(parts_dir, ignore_errors=True)
        os.makedirs(parts_dir)
        store.write_virtual_main(out, attrs, fields, batch_size, source.paths)
    os.makedirs(parts_dir, exist_ok=True)
    runner.run_blocks(first, batches, source, explainer, fields, out, parts_dir, batch_size, done_blocks,
                      compression, progress)
    return fields


def _consolidate(out, attrs, fields, batch_size, source, compression) -> None:
    """The parts written so far into one self-contained ``out``, marked complete."""
    parts_dir = out + ".parts"
    n_blocks = store.completed_parts(parts_dir, batch_size)
    n_rows = store.rows_written(parts_dir, n_blocks, batch_size)
    store.consolidate(out, parts_dir, {**attrs, "complete": True, "n_examples": n_rows}, fields, batch_size,
                      n_rows, source.paths, compression)


def _check_options(function, options: dict) -> None:
    """Options the method does not take are an error before any work (not a TypeError later)."""
    import inspect
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):                                        # a builtin: nothing to check
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return
    known = [name for name, p in list(parameters.items())[3:] if p.kind is not inspect.Parameter.VAR_POSITIONAL]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ValueError(f"unknown option(s) {unknown} for {getattr(function, '__name__', function)}; it takes "
                         f"{known}")


def _check_against_data(class_spec, source, shard, k: int) -> None:
    """The classes asked for, and the shard, against what is known of the data before reading."""
    from xai.core import check_class_range
    if source.total is not None and shard[1] > source.total:
        raise ValueError(f"shard {shard} of {shard[1]}: the data have {source.total} examples, so some shards "
                         "would be empty; use at most that many shards")
    if isinstance(class_spec, str):
        if class_spec == "label":
            if not source.has_labels:
                raise ValueError("class_index='label' needs labels: pass (x, labels), a dataset of (inputs, labels) "
                                 "or a folder with one folder a class")
            if source.labels is not None:
                check_class_range(source.labels, k, what="labels")
        return
    check_class_range(class_spec, k)
    if class_spec.ndim == 1 and source.total is not None and len(class_spec) != source.total:
        raise ValueError(f"class_index has {len(class_spec)} entries; the data have {source.total} examples (one "
                         "each, by position in the whole data)")


class _exclusive:
    """An exclusive lock on ``<out>.lock`` (released by the system if the process dies), so two runs
    never write one file."""

    def __init__(self, out):
        self.path = out + ".lock"

    def __enter__(self):
        import fcntl
        self.handle = open(self.path, "w")
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.handle.close()
            raise ValueError(f"another run is writing {self.path[:-5]!r}; wait for it or choose another out") from None
        return self

    def __exit__(self, *exc):
        os.remove(self.path)
        self.handle.close()
        return False


def _resume_point(out, attrs, checked, block, resume, source):
    """Blocks already done: 0 for a new run (``out`` missing, or ``resume=False``), None when ``out``
    is complete already; raises when ``out`` was made by another call or from other data (every
    done block's inputs are read again and compared with the digest stored with it)."""
    import glob

    import h5py
    folder = os.path.dirname(os.path.abspath(out))
    for leftover in glob.glob(os.path.join(glob.escape(folder), glob.escape(store.tmp_prefix(out)) + "*")):
        os.remove(leftover)                                                # a consolidation cut short
    if not (os.path.exists(out) and resume):
        return 0
    try:
        with h5py.File(out, "r") as f:
            found = dict(f.attrs)
        if store.attr_value(found.get("format")) in store.READ_FORMATS:           # an earlier name of this layout
            found["format"] = FORMAT
    except OSError as err:
        raise ValueError(f"{out!r} exists but is not a readable HDF5 file ({err}); delete it or pass "
                         "resume=False") from err
    if bool(found.get("complete")) and attrs["n_examples"] == -1:          # counted when it completed
        checked = [k for k in checked if k != "n_examples"]
    differ = [k for k in checked if store.attr_value(found.get(k)) != store.attr_value(attrs[k])]
    if differ:
        lines = "; ".join(f"{k}: file has {store.attr_value(found.get(k))!r}, this call "
                          f"{store.attr_value(attrs[k])!r}" for k in differ)
        raise ValueError(f"{out!r} was made by a different call ({lines}). Use the same settings to resume, "
                         "another out, or resume=False to start again")
    parts_dir = out + ".parts"
    if bool(found.get("complete")):
        shutil.rmtree(parts_dir, ignore_errors=True)                       # left by a run killed at its very end
        stored, done = store.file_digests(out), None
    else:
        done = store.completed_parts(parts_dir, block) if os.path.isdir(parts_dir) else 0
        stored = store.part_digests(parts_dir, done)
    read = (digest for _, _, _, digest in runner.with_digests(source.batches(0, block)))
    for k, want in enumerate(stored):
        got = next(read, None)
        if got != want:
            raise ValueError(f"{out!r} was made from other data: examples {k * block}..{(k + 1) * block - 1} "
                             "differ from this call's (a tf.data pipeline must give the same examples in the same "
                             "order, without reshuffling, to resume). Use another out or resume=False")
    if done is None and next(read, None) is not None:
        raise ValueError(f"{out!r} was made from other data: this call's data have more examples. Use another out or "
                         "resume=False")
    return done


def _fields_of(out) -> dict:
    """The fields of an existing main file (a resumed run with nothing left to explain)."""
    import h5py
    with h5py.File(out, "r") as f:
        names = [n for n in f if n != "paths"]
        return store.fields_for(f["maps"].shape[1:], f["maps"].dtype, f["probabilities"].shape[1],
                                "label" in names)
