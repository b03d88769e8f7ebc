"""Explain a whole data set: streamed from disk in batches, stored in HDF5, resumable after any kill,
spread over the devices of one machine or over machines with ``tf.distribute``.

    explain_dataset(model, data, "grad_cam", "hmt_gradcam.h5")                 # a notebook
    python -m xai_dataset --model models/HMT.keras --data data/hmt/HMT_test \\
        --method grad_cam --out hmt_gradcam.h5                                  # a batch job

How the file stays readable at every instant. HDF5 rewrites its metadata in place, so a process
killed while it has a file open for writing can leave it unreadable (SWMR mode needs ``h5clear``
after a crash). Here no file is ever left open: each finished batch is written to its own small
HDF5 file in ``<out>.parts/`` under a temporary name and renamed into place (atomic), and ``<out>``
itself, written once before the work starts, maps its datasets onto those parts with HDF5 virtual
datasets whose source names follow the block number (``<out>.parts/%b.h5``). Opened with plain
``h5py.File(out)`` at any time, it shows every completed batch and nothing else. When the run
completes, one self-contained file (the compressed chunks copied as they are) replaces ``<out>``
by rename and the parts are removed. A killed run leaves ``<out>`` and its parts; the same call
resumes after the last completed batch and refuses, naming the difference, when the model (weights
fingerprint), method, options, data or batch size differ from the file's.

Datasets in the file (rows in the shard's order of examples):
``maps`` float32 (N, ...) the method's maps; ``class_index`` int32 (N,) the class explained;
``probabilities`` float32 (N, K) the model's probabilities; ``index`` int64 (N,) each example's
position in ``data``; ``label`` int64 (N,) where the data carry labels (-1 where not); ``paths``
(N,) for a folder of images, relative to it. Attributes: ``method``, ``method_options`` (JSON),
``model_fingerprint``, ``versions``, ``data`` (JSON), ``complete`` and the rest of the call.

Axis key: N examples, B examples in one batch, T signal length, H, W image size, C channels,
K classes, R replicas (devices).
"""
from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import os
import queue
import shutil
import sys
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

__all__ = [
    "METHODS",
    "explain_dataset",
    "merge_shards",
    "load_explanations",
    "model_fingerprint",
    "shard_path",
    "main",
]

FORMAT = "xai_dataset/1"
# every method of the library, by name: module and function (imported when asked for)
METHODS = {
    "grad_cam": ("xai_utils", "grad_cam"),
    "integrated_gradients": ("xai_utils", "integrated_gradients"),
    "rise": ("xai_perturbation", "rise"),
    "sise": ("xai_perturbation", "sise"),
    "saliency": ("xai_gradients", "saliency"),
    "gradient_x_input": ("xai_gradients", "gradient_x_input"),
    "smoothgrad": ("xai_gradients", "smoothgrad"),
    "smoothgrad_squared": ("xai_gradients", "smoothgrad_squared"),
    "vargrad": ("xai_gradients", "vargrad"),
    "noise_tunnel": ("xai_gradients", "noise_tunnel"),
    "expected_gradients": ("xai_gradients", "expected_gradients"),
    "grad_cam_plus_plus": ("xai_cam", "grad_cam_plus_plus"),
    "score_cam": ("xai_cam", "score_cam"),
}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp")
COMPRESSIONS = ("gzip", "lzf", None)
CHUNK_BYTES = 1 << 20                 # at most this much of one dataset in a chunk


# --- the method, its options and the model, as recorded in the file ---

def _resolve_method(method) -> tuple[Callable, str]:
    if isinstance(method, str):
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; expected one of {sorted(METHODS)} or a function "
                             "f(model, x, class_index, **options) -> maps")
        module, name = METHODS[method]
        try:
            return getattr(importlib.import_module(module), name), method
        except (ImportError, AttributeError) as err:
            raise ValueError(f"method {method!r} ({module}.{name}) is not available: {err}") from err
    if callable(method):
        return method, f"{getattr(method, '__module__', '?')}.{getattr(method, '__qualname__', repr(method))}"
    raise ValueError(f"method must be a name ({sorted(METHODS)}) or a function, got {type(method).__name__}")


def _array_digest(a: np.ndarray) -> str:
    a = np.ascontiguousarray(a)
    h = hashlib.sha1(f"{a.shape}|{a.dtype}|".encode())
    h.update(memoryview(a).cast("B"))
    return h.hexdigest()[:20]


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
        return {"array": list(value.shape), "dtype": str(value.dtype), "sha1": _array_digest(value)}
    if isinstance(value, keras.layers.Layer):
        return {"layer": value.name}
    raise ValueError(f"option {name}={value!r} ({type(value).__name__}) cannot be recorded in the file; pass "
                     "a number, a string, a list or a NumPy array (a layer by its name)")


def model_fingerprint(model) -> str:
    """sha1 of every weight's shape, dtype and bytes, in the model's order (20 hex digits): the same
    for a model and its saved and reloaded copy, whatever the layers' names."""
    h = hashlib.sha1()
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


# --- the data: arrays, tf.data, a folder of images ---

class _Source:
    """One shard of the data, read in batches from any position: ``n`` examples (None: unknown until
    read), ``index`` of position k is its place in the whole data, labels where the data have them."""

    def __init__(self, n, describe: dict, has_labels: bool, paths=None, class_names=None):
        self.n, self.describe, self.has_labels = n, describe, has_labels
        self.paths, self.class_names = paths, class_names

    def batches(self, start: int, size: int):
        """Yields (positions (B,), x float32 (B, ...), labels int64 (B,) or None) from ``start``."""
        raise NotImplementedError


def _shard_positions(total: int, shard) -> np.ndarray:
    i, n = shard
    return np.arange(i, total, n)


class _ArraySource(_Source):
    def __init__(self, x, y, shard):
        self.x, self.y = x, y
        self.positions = _shard_positions(len(x), shard)
        ends = [0, len(x) - 1]
        describe = {"kind": "array", "shape": list(x.shape), "dtype": str(x.dtype),
                    "ends_sha1": _array_digest(np.stack([np.asarray(x[e]) for e in ends])),
                    "labels_sha1": None if y is None else _array_digest(np.asarray(y))}
        super().__init__(len(self.positions), describe, y is not None)

    def batches(self, start, size):
        for a in range(start, self.n, size):
            pos = self.positions[a:a + size]
            if len(pos) and pos[-1] - pos[0] == len(pos) - 1:              # contiguous: one slice of a memmap
                xb = np.asarray(self.x[pos[0]:pos[-1] + 1])
            else:
                xb = np.asarray(self.x[pos])
            yb = None if self.y is None else np.asarray(self.y[pos], np.int64)
            yield pos, xb.astype(np.float32, copy=False), yb


class _DatasetSource(_Source):
    def __init__(self, ds, rank: int, shard):
        import tensorflow as tf
        spec = ds.element_spec
        has_labels = isinstance(spec, tuple)
        x_spec = spec[0] if has_labels else spec
        if not isinstance(x_spec, tf.TensorSpec):
            raise ValueError(f"a tf.data.Dataset of inputs or (inputs, labels) was expected, got elements {spec}")
        if len(x_spec.shape) == rank:                                       # batched: one example at a time
            ds = ds.unbatch()
        elif len(x_spec.shape) != rank - 1:
            raise ValueError(f"dataset elements of shape {x_spec.shape} do not match the model's input rank "
                             f"{rank} (batched) or {rank - 1} (one example)")
        self.ds, self.shard = ds.shard(shard[1], shard[0]) if shard[1] > 1 else ds, shard
        card = int(self.ds.cardinality())
        super().__init__(card if card >= 0 else None, {"kind": "tf.data", "element_spec": str(spec)}, has_labels)

    def batches(self, start, size):
        i, n = self.shard
        k = start
        for element in self.ds.skip(start).batch(size).as_numpy_iterator():
            xb = element[0] if self.has_labels else element
            yb = np.asarray(element[1], np.int64).reshape(len(xb)) if self.has_labels else None
            pos = i + n * np.arange(k, k + len(xb))
            k += len(xb)
            yield pos, np.asarray(xb, np.float32), yb


def _list_images(root: str):
    """(relative paths, labels or None, class names or None): image files directly in ``root`` (a flat
    folder), or one folder deep with one folder a class (HMT's layout: labels by sorted folder name)."""
    entries = sorted(os.listdir(root))
    files = [e for e in entries if e.lower().endswith(IMAGE_SUFFIXES) and os.path.isfile(os.path.join(root, e))]
    folders = [e for e in entries if os.path.isdir(os.path.join(root, e)) and not e.startswith(".")]
    if files and folders:
        raise ValueError(f"{root!r} holds both image files and folders; expected a flat folder of images or one "
                         "folder a class")
    if files:
        return files, None, None
    paths, labels = [], []
    for label, folder in enumerate(folders):
        inner = sorted(e for e in os.listdir(os.path.join(root, folder)) if e.lower().endswith(IMAGE_SUFFIXES))
        paths += [os.path.join(folder, e) for e in inner]
        labels += [label] * len(inner)
    if not paths:
        raise ValueError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) in {root!r} nor in its folders; pass a "
                         "flat folder of images or a folder with one folder a class (e.g. data/hmt/HMT_test)")
    return paths, np.asarray(labels, np.int64), folders


def _decode_image(path: str, shape: tuple) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(path) as im:
            arr = np.asarray(im)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise ValueError(f"cannot decode image {path!r}: {err}") from err
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.shape != shape:
        raise ValueError(f"image {path!r} is {arr.shape}, the model takes {shape}; resize the images first "
                         "or pass a tf.data.Dataset that does")
    return arr.astype(np.float32)                                        # pixels as stored (0-255 for 8 bits)


class _FolderSource(_Source):
    def __init__(self, root, shape, shard):
        paths, labels, names = _list_images(root)
        self.root, self.shape = root, shape
        self.positions = _shard_positions(len(paths), shard)
        self.all_labels = labels
        listing = hashlib.sha1("\n".join(paths).encode()).hexdigest()[:20]
        describe = {"kind": "folder", "n_files": len(paths), "listing_sha1": listing, "classes": names}
        super().__init__(len(self.positions), describe, labels is not None,
                         paths=[paths[p] for p in self.positions], class_names=names)

    def batches(self, start, size):
        for a in range(start, self.n, size):
            pos = self.positions[a:a + size]
            xb = np.stack([_decode_image(os.path.join(self.root, self.paths[a + k]), self.shape)
                           for k in range(len(pos))])
            yield pos, xb, None if self.all_labels is None else self.all_labels[pos]


def _source(data, model, shard) -> _Source:
    import tensorflow as tf
    shape = tuple(model.input_shape[1:])
    if isinstance(data, (str, os.PathLike)):
        root = os.fspath(data)
        if not os.path.isdir(root):
            raise ValueError(f"data folder {root!r} does not exist")
        if any(s is None for s in shape):
            raise ValueError(f"the model takes inputs of any size {model.input_shape}; a folder of images needs a "
                             "fixed input shape (pass a tf.data.Dataset instead)")
        return _FolderSource(root, shape, shard)
    if isinstance(data, tf.data.Dataset):
        return _DatasetSource(data, len(model.input_shape), shard)
    y = None
    if isinstance(data, tuple) and len(data) == 2:
        data, y = data
    if not hasattr(data, "shape") or not hasattr(data, "dtype"):
        raise ValueError(f"data must be a NumPy array or memory map (N, ...), a pair (x, labels), a "
                         f"tf.data.Dataset or a folder of images, got {type(data).__name__}")
    if np.dtype(data.dtype).kind not in "fiub":
        raise ValueError(f"data must be numeric, got dtype {data.dtype}")
    want = tuple(model.input_shape)
    if len(data.shape) != len(want) or any(w is not None and w != s for w, s in zip(want[1:], data.shape[1:])):
        raise ValueError(f"data has shape {data.shape}, the model expects {want} (N examples first)")
    if len(data) == 0:
        raise ValueError("data holds no examples")
    if y is not None:
        y = np.asarray(y)
        if y.shape != (len(data),) or y.dtype.kind not in "iu":
            raise ValueError(f"labels must be ints of shape ({len(data)},), got {y.dtype} {y.shape}")
    return _ArraySource(data, y, shard)


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
    return int(spec) if spec.ndim == 0 else {"array": list(spec.shape), "sha1": _array_digest(spec)}


def shard_path(out: str, i: int, n: int) -> str:
    """The file of shard i of n: ``maps.h5`` -> ``maps.shard-1-of-4.h5``."""
    stem, ext = os.path.splitext(out)
    return f"{stem}.shard-{i}-of-{n}{ext or '.h5'}"


def _check_writable(out: str, need_bytes: int) -> None:
    folder = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(folder):
        raise ValueError(f"the folder of out={out!r} does not exist; create it first")
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".write-check-")
        os.close(fd)
        os.remove(probe)
    except OSError as err:
        raise ValueError(f"cannot write in {folder!r} ({err}); choose another out") from err
    free = shutil.disk_usage(folder).free
    if need_bytes > free:
        raise ValueError(f"{folder!r} has {free / 1e9:.2f} GB free; the maps need up to {need_bytes / 1e9:.2f} GB "
                         "uncompressed. Free space, choose another out, or shard the run")


# --- writing: one part file per batch, a virtual main file, one file at the end ---

def _part_name(k: int) -> str:
    return f"{k}.h5"


def _fields(map_shape, map_dtype, num_classes, has_labels):
    """name -> (row shape, dtype, fill) of every per-example dataset."""
    fields = {"maps": (tuple(map_shape), np.dtype(map_dtype), np.nan),
              "class_index": ((), np.dtype(np.int32), -1),
              "probabilities": ((num_classes,), np.dtype(np.float32), np.nan),
              "index": ((), np.dtype(np.int64), -1)}
    if has_labels:
        fields["label"] = ((), np.dtype(np.int64), -1)
    return fields


def _chunk_rows(row_shape, dtype, block: int) -> int:
    """Rows per chunk: the largest divisor of the block that keeps a chunk under CHUNK_BYTES, so a
    block's chunks copy into the final file unchanged."""
    row = max(1, int(np.prod(row_shape)) * np.dtype(dtype).itemsize)
    fit = max(1, CHUNK_BYTES // row)
    return max(d for d in range(1, block + 1) if block % d == 0 and d <= fit)


def _create_kwargs(name, row_shape, dtype, block, compression):
    kwargs = {"chunks": (_chunk_rows(row_shape, dtype, block),) + tuple(row_shape)}
    if name == "maps" and compression is not None:
        kwargs.update(compression=compression, shuffle=True)
        if compression == "gzip":
            kwargs["compression_opts"] = 1
    return kwargs


def _atomic_h5(path: str, write: Callable) -> None:
    import h5py
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), prefix=".tmp-", suffix=".h5")
    os.close(fd)
    try:
        with h5py.File(tmp, "w") as f:
            write(f)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _write_part(path, fields, rows: dict, block, compression):
    def write(f):
        for name, (shape, dtype, fill) in fields.items():
            data = np.full((block,) + shape, fill, dtype)                 # the last block padded to full size
            data[:len(rows[name])] = rows[name]
            f.create_dataset(name, data=data, **_create_kwargs(name, shape, dtype, block, compression))
    _atomic_h5(path, write)


def _write_virtual_main(out, attrs: dict, fields, block, paths):
    """``out``: attributes, the paths, and virtual datasets over ``<out>.parts/%b.h5``, block by block."""
    import h5py
    unlimited = h5py.h5s.UNLIMITED
    parts = (os.path.basename(out) + ".parts/%b.h5").encode()

    def write(f):
        for key, value in attrs.items():
            f.attrs[key] = value
        if paths is not None:
            f.create_dataset("paths", data=np.asarray(paths, dtype=h5py.string_dtype()))
        for name, (shape, dtype, fill) in fields.items():
            rank = 1 + len(shape)
            vspace = h5py.h5s.create_simple((0,) + shape, (unlimited,) + shape)
            vspace.select_hyperslab((0,) * rank, (unlimited,) + (1,) * len(shape), stride=(block,) + (1,) * len(shape),
                                    block=(block,) + shape)
            dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
            dcpl.set_fill_value(np.array(fill, dtype))
            dcpl.set_virtual(vspace, parts, name.encode(), h5py.h5s.create_simple((block,) + shape))
            h5py.h5d.create(f.id, name.encode(), h5py.h5t.py_create(dtype),
                            h5py.h5s.create_simple((0,) + shape, (unlimited,) + shape), dcpl=dcpl).close()
    _atomic_h5(out, write)


def _completed_parts(parts_dir: str, block: int) -> int:
    """How many consecutive blocks 0, 1, ... are complete; stray temporary files and anything after a
    gap or an unreadable part are removed (a part is renamed into place only once it is whole)."""
    import h5py
    if not os.path.isdir(parts_dir):
        return 0
    for name in os.listdir(parts_dir):
        if name.startswith(".tmp-"):
            os.remove(os.path.join(parts_dir, name))
    k = 0
    while os.path.exists(os.path.join(parts_dir, _part_name(k))):
        try:
            with h5py.File(os.path.join(parts_dir, _part_name(k)), "r") as f:
                if f["maps"].shape[0] != block:
                    break
        except OSError:
            break
        k += 1
    for name in os.listdir(parts_dir):
        stem = name[:-3]
        if name.endswith(".h5") and stem.isdigit() and int(stem) >= k:
            os.remove(os.path.join(parts_dir, name))
    return k


def _consolidate(out, parts_dir, attrs, fields, block, n_rows, paths, compression):
    """One self-contained file in place of the virtual one (atomic), chunks copied without
    recompressing; then the parts are removed."""
    import h5py
    n_blocks = -(-n_rows // block)

    def write(f):
        for key, value in attrs.items():
            f.attrs[key] = value
        if paths is not None:
            f.create_dataset("paths", data=np.asarray(paths[:n_rows], dtype=h5py.string_dtype()))
        # unlimited rows: a chunk may hold more rows than a small file has (chunks copied as they are)
        dsets = {name: f.create_dataset(name, shape=(n_rows,) + shape, maxshape=(None,) + shape, dtype=dtype,
                                        fillvalue=np.array(fill, dtype),
                                        **_create_kwargs(name, shape, dtype, block, compression))
                 for name, (shape, dtype, fill) in fields.items()}
        for k in range(n_blocks):
            with h5py.File(os.path.join(parts_dir, _part_name(k)), "r") as part:
                for name, d in dsets.items():
                    src = part[name]
                    rows = src.chunks[0]
                    for r in range(0, block, rows):
                        if k * block + r >= n_rows:
                            break
                        zeros = (0,) * (src.ndim - 1)
                        mask, chunk = src.id.read_direct_chunk((r,) + zeros)
                        d.id.write_direct_chunk((k * block + r,) + zeros, chunk, mask)
    _atomic_h5(out, write)
    shutil.rmtree(parts_dir, ignore_errors=True)


# --- running the method, over the devices of a strategy ---

def _devices(strategy) -> list:
    if strategy is None:
        return [None]
    devices = list(strategy.extended.worker_devices)
    return devices or [None]


def _worker(strategy) -> tuple[int, int]:
    """(task id, number of workers) of a multi-worker strategy; (0, 1) otherwise."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return 0, 1
    n = len(resolver.cluster_spec().as_dict().get("worker", [])) + len(resolver.cluster_spec().as_dict().get("chief", []))
    task = resolver.task_id + (1 if resolver.task_type == "worker" and "chief" in resolver.cluster_spec().as_dict()
                               else 0)
    return int(task), max(1, int(n))


class _Explainer:
    """Probabilities, the class explained and the maps for one batch, split over the devices."""

    def __init__(self, model, function, options, class_spec, devices, method_batch_size):
        self.model, self.function, self.options = model, function, dict(options)
        if method_batch_size is not None:
            self.options["batch_size"] = method_batch_size
        self.class_spec, self.devices = class_spec, devices
        self.pool = ThreadPoolExecutor(len(devices)) if len(devices) > 1 else None
        self.warm = False

    def _one(self, device, xb, yb, pos):
        import tensorflow as tf

        from xai_core import predict_scores
        with tf.device(device) if device else _nothing():
            probs = predict_scores(self.model, xb, score="probability", batch_size=max(1, len(xb)))
            if isinstance(self.class_spec, str):
                classes = probs.argmax(1) if self.class_spec == "predicted" else yb
            elif self.class_spec.ndim == 0:
                classes = np.full(len(xb), int(self.class_spec))
            else:
                if pos.max() >= len(self.class_spec):
                    raise ValueError(f"class_index has {len(self.class_spec)} entries; example {int(pos.max())} has none")
                classes = self.class_spec[pos]
            maps = np.asarray(self.function(self.model, xb, np.asarray(classes, np.int32), **self.options))
        return maps, np.asarray(classes, np.int32), probs

    def __call__(self, xb, yb, pos):
        if self.pool is None or len(xb) < len(self.devices):
            return self._one(self.devices[0], xb, yb, pos)
        cuts = np.array_split(np.arange(len(xb)), len(self.devices))        # one contiguous slice a device
        args = [(d, xb[c], None if yb is None else yb[c], pos[c]) for d, c in zip(self.devices, cuts)]
        if not self.warm:                                                    # trace each device's steps one at a time
            results = [self._one(*a) for a in args]
            self.warm = True
        else:
            results = list(self.pool.map(lambda a: self._one(*a), args))
        return tuple(np.concatenate([r[i] for r in results]) for i in range(3))

    def close(self):
        if self.pool is not None:
            self.pool.shutdown()


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _prefetch(iterator, depth: int = 2):
    """Runs ``iterator`` in a thread, ``depth`` items ahead (reading and decoding overlap the work)."""
    q: queue.Queue = queue.Queue(depth)
    done = object()
    stop = threading.Event()

    def run():
        try:
            for item in iterator:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(done)
        except BaseException as err:                                          # handed to the consumer
            q.put(err)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()


# --- the public entry points ---

def explain_dataset(model, data, method, out, *, class_index="predicted", batch_size: int = 64, strategy=None,
                    shard=None, resume: bool = True, progress: bool = True, method_batch_size: int | None = None,
                    compression: str | None = "gzip", **method_options) -> str:
    """Explain every example of ``data`` with ``method`` and store the maps in the HDF5 file ``out``.

    Args:
        model: a Keras model (see ``xai_core.check_model``). Under a ``strategy``, load or build it in
            ``strategy.scope()`` so each device holds its own copy of the weights.
        data: a NumPy array or memory map float/int (N, T, C) or (N, H, W, C), a pair ``(x, labels)``,
            a ``tf.data.Dataset`` of inputs or (inputs, labels) (batched or not), or a folder of image
            files (flat, or one folder a class as ``data/hmt/HMT_test``; pixels as stored, 0-255).
            Read ``batch_size`` examples at a time, never all at once.
        method: a name of :data:`METHODS` (``"grad_cam"``, ``"integrated_gradients"``, ``"rise"``...)
            or a function ``f(model, x, class_index, **options) -> maps``.
        out: the HDF5 file to write (its folder must exist); see the module's docstring for its layout.
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
        ValueError: an unknown method or option, data that do not fit the model, an unwritable folder
            or too little free space (before any work), or a resumed file made by another model,
            method, option, data or batch size (the message names the difference).
    """
    from xai_core import check_batch_size, check_flag, check_model, num_classes
    check_model(model)
    function, method_name = _resolve_method(method)
    batch_size = check_batch_size(batch_size)
    if method_batch_size is not None:
        check_batch_size(method_batch_size, "method_batch_size")
    resume, progress = check_flag(resume, "resume"), check_flag(progress, "progress")
    if compression not in COMPRESSIONS:
        raise ValueError(f"compression must be one of {COMPRESSIONS}, got {compression!r}")
    for bad in ("return_delta", "class_index", "x", "model"):
        if bad in method_options:
            raise ValueError(f"option {bad!r} is set by explain_dataset itself; leave it out")
    class_spec = _check_class_index(class_index)
    shard = _check_shard(shard)
    worker, workers = _worker(strategy) if strategy is not None else (0, 1)
    if workers > 1:
        if shard != (0, 1):
            raise ValueError("pass either shard= or a multi-worker strategy, not both")
        shard, out = (worker, workers), shard_path(os.fspath(out), worker, workers)
    out = os.fspath(out)
    source = _source(data, model, shard)
    if isinstance(class_spec, str) and class_spec == "label" and not source.has_labels:
        raise ValueError("class_index='label' needs labels: pass (x, labels), a dataset of (inputs, labels) or a "
                         "folder with one folder a class")

    options = {k: _recordable(k, v) for k, v in sorted(method_options.items())}
    attrs = {"format": FORMAT, "method": method_name, "method_options": json.dumps(options, sort_keys=True),
             "model_fingerprint": model_fingerprint(model), "model_name": model.name,
             "class_index": json.dumps(_class_index_record(class_spec)), "batch_size": batch_size,
             "shard": json.dumps(list(shard)), "data": json.dumps(source.describe, sort_keys=True),
             "n_examples": -1 if source.n is None else source.n, "compression": str(compression),
             "versions": json.dumps(_versions(), sort_keys=True), "complete": False}
    checked = ("format", "method", "method_options", "model_fingerprint", "class_index", "batch_size", "shard",
               "data", "n_examples", "compression")
    parts_dir = out + ".parts"

    explainer = _Explainer(model, function, method_options, class_spec, _devices(strategy), method_batch_size)
    try:
        # one example first: the options are checked and the maps' shape known before any file is written
        first = next(source.batches(0, 1), None)
        if first is None:
            raise ValueError("data holds no examples (for this shard)")
        maps0, _, probs0 = explainer._one(explainer.devices[0], first[1], first[2], first[0])
        fields = _fields(maps0.shape[1:], np.float32, num_classes(model), source.has_labels)
        row_bytes = sum(int(np.prod(s)) * d.itemsize for s, d, _ in fields.values())
        _check_writable(out, 2 * row_bytes * (source.n or batch_size))     # parts, then the one file

        done_blocks = _start(out, parts_dir, attrs, checked, fields, batch_size, source, resume)
        if done_blocks is None:                                            # complete already
            return out
        _run(source, explainer, fields, out, parts_dir, batch_size, done_blocks, compression, progress)
        n_blocks = _completed_parts(parts_dir, batch_size)
        n_rows = _rows_written(parts_dir, n_blocks, batch_size)
        _consolidate(out, parts_dir, {**attrs, "complete": True, "n_examples": n_rows}, fields, batch_size, n_rows,
                     source.paths, compression)
        return out
    finally:
        explainer.close()


def _start(out, parts_dir, attrs, checked, fields, block, source, resume):
    """Blocks already done (0 for a fresh file), or None when ``out`` is complete already."""
    import h5py
    if os.path.exists(out) and resume:
        try:
            with h5py.File(out, "r") as f:
                found = dict(f.attrs)
        except OSError as err:
            raise ValueError(f"{out!r} exists but is not a readable HDF5 file ({err}); delete it or pass "
                             "resume=False") from err
        if bool(found.get("complete")) and attrs["n_examples"] == -1:      # counted when it completed
            checked = [k for k in checked if k != "n_examples"]
        differ = [k for k in checked if _attr(found.get(k)) != _attr(attrs[k])]
        if differ:
            lines = "; ".join(f"{k}: file has {_attr(found.get(k))!r}, this call {_attr(attrs[k])!r}" for k in differ)
            raise ValueError(f"{out!r} was made by a different call ({lines}). Use the same settings to resume, "
                             "another out, or resume=False to start again")
        if bool(found.get("complete")):
            return None
        os.makedirs(parts_dir, exist_ok=True)
        return _completed_parts(parts_dir, block)
    shutil.rmtree(parts_dir, ignore_errors=True)
    os.makedirs(parts_dir)
    _write_virtual_main(out, attrs, fields, block, source.paths)
    return 0


def _attr(value):
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, np.generic):
        value = value.item()
    return value


def _rows_written(parts_dir, n_blocks, block) -> int:
    import h5py
    if n_blocks == 0:
        return 0
    with h5py.File(os.path.join(parts_dir, _part_name(n_blocks - 1)), "r") as f:
        last = int((f["index"][:] >= 0).sum())
    return (n_blocks - 1) * block + last


def _run(source, explainer, fields, out, parts_dir, block, done_blocks, compression, progress):
    from tqdm.auto import tqdm
    start = done_blocks * block
    writes: queue.Queue = queue.Queue(2)
    failure = []

    def writer():
        while True:
            item = writes.get()
            if item is None:
                return
            k, rows = item
            try:
                _write_part(os.path.join(parts_dir, _part_name(k)), fields, rows, block, compression)
            except BaseException as err:                                      # e.g. the disk filled up
                failure.append(err)
                return

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        with tqdm(total=source.n, initial=start, unit="ex", desc=f"explaining -> {os.path.basename(out)}",
                  disable=not progress, smoothing=0.1) as bar:
            k = done_blocks
            for pos, xb, yb in _prefetch(source.batches(start, block)):
                maps, classes, probs = explainer(xb, yb, pos)
                rows = {"maps": maps, "class_index": classes, "probabilities": probs, "index": pos}
                if "label" in fields:
                    rows["label"] = yb
                if not _put(writes, (k, rows), thread):
                    break                                                       # the writer stopped: see below
                k += 1
                bar.update(len(xb))
    finally:
        _put(writes, None, thread)
        thread.join()
    if failure:
        raise OSError(f"writing {out!r} failed ({failure[0]}); the completed batches are kept: fix the cause and "
                      "call again to resume") from failure[0]


def _put(q: queue.Queue, item, thread) -> bool:
    """Hand ``item`` to the writer; False when it has stopped."""
    while thread.is_alive():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def load_explanations(path, fields=None) -> dict:
    """Every completed row of a file written by :func:`explain_dataset` (complete or not), as NumPy
    arrays, plus ``"attrs"`` (JSON attributes decoded). Reads everything into memory: for large
    files use ``h5py.File(path)`` and slice."""
    import h5py
    with h5py.File(path, "r") as f:
        index = f["index"][:]
        keep = index >= 0                                                     # a padded last block, if any
        names = [n for n in f if n != "paths"] if fields is None else list(fields)
        result = {n: f[n][:][keep] for n in names}
        if "paths" in f and (fields is None or "paths" in fields):
            result["paths"] = np.asarray([p.decode() if isinstance(p, bytes) else p for p in f["paths"][:]])[:keep.sum()]
        attrs = {}
        for key, value in f.attrs.items():
            value = _attr(value)
            if isinstance(value, str) and value[:1] in "[{\"" and key != "method":
                try:
                    value = json.loads(value)
                except json.JSONDecodeError:
                    pass
            attrs[key] = value
        result["attrs"] = attrs
    return result


def merge_shards(shards, out, *, compression: str | None = "gzip") -> str:
    """One file from the complete shard files of one run (:func:`shard_path`), rows in example order.

    Checks that every shard is complete, that all were made by the same model, method, options and
    data, and that together they cover every example exactly once; written atomically."""
    import h5py
    shards = [os.fspath(s) for s in shards]
    if not shards:
        raise ValueError("no shard files given")
    infos = []
    for path in shards:
        with h5py.File(path, "r") as f:
            attrs = {k: _attr(v) for k, v in f.attrs.items()}
            if attrs.get("format") != FORMAT:
                raise ValueError(f"{path!r} is not a file written by explain_dataset")
            if not attrs.get("complete"):
                raise ValueError(f"{path!r} is not complete; finish (resume) that shard first")
            infos.append((path, attrs, f["index"][:]))
    same = ("method", "method_options", "model_fingerprint", "class_index", "data", "compression")
    for key in same:
        values = {str(a[key]) for _, a, _ in infos}
        if len(values) > 1:
            raise ValueError(f"the shards differ in {key}: {sorted(values)}; they are not one run")
    counts = {json.loads(a["shard"])[1] for _, a, _ in infos}
    ids = sorted(json.loads(a["shard"])[0] for _, a, _ in infos)
    if len(counts) != 1 or ids != list(range(counts.pop())):
        raise ValueError(f"the shards are {ids} of {sorted({json.loads(a['shard'])[1] for _, a, _ in infos})}; "
                         "each of 0..n-1 must be given once")
    index = np.concatenate([i for _, _, i in infos])
    total = len(index)
    if not np.array_equal(np.sort(index), np.arange(total)):
        missing = np.setdiff1d(np.arange(index.max() + 1), index)[:10].tolist()
        raise ValueError(f"the shards do not cover every example once (repeated or missing, e.g. {missing})")
    order = np.argsort(index, kind="stable")
    first = infos[0][1]

    def write(f):
        for key, value in first.items():
            f.attrs[key] = value
        f.attrs["shard"] = json.dumps([0, 1])
        f.attrs["n_examples"] = total
        f.attrs["merged_from"] = json.dumps([os.path.basename(p) for p, _, _ in infos])
        sources = [h5py.File(p, "r") for p, _, _ in infos]
        try:
            for name in [n for n in sources[0] if n != "paths"]:
                data = np.concatenate([s[name][:] for s in sources])[order]
                kwargs = {}
                if name == "maps":
                    kwargs = {"chunks": (_chunk_rows(data.shape[1:], data.dtype, 1),) + data.shape[1:]}
                    if compression is not None:
                        kwargs.update(compression=compression, shuffle=True)
                        if compression == "gzip":
                            kwargs["compression_opts"] = 1
                f.create_dataset(name, data=data, **kwargs)
            if "paths" in sources[0]:
                paths = np.concatenate([s["paths"][:] for s in sources])[order]
                f.create_dataset("paths", data=paths, dtype=h5py.string_dtype())
        finally:
            for s in sources:
                s.close()
    _atomic_h5(out, write)
    return out


# --- the command line ---

def _parse_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["merge"]:
        parser = argparse.ArgumentParser(prog="python -m xai_dataset merge",
                                         description="Join the shard files of one run into one file.")
        parser.add_argument("shards", nargs="+", help="the shard files (every shard of the run once)")
        parser.add_argument("--out", required=True, help="the merged HDF5 file")
        args = parser.parse_args(argv[1:])
        print(merge_shards(args.shards, args.out))
        return 0
    parser = argparse.ArgumentParser(
        prog="python -m xai_dataset",
        description="Explain every example of a data set and store the maps in HDF5 (resumable). "
                    "`python -m xai_dataset merge --out all.h5 shard*.h5` joins shard files.")
    parser.add_argument("--model", required=True, help="a saved Keras model (.keras or legacy .h5)")
    parser.add_argument("--data", required=True, help="a folder of images (flat, or one folder a class) or a .npy file")
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
    args = parser.parse_args(argv)

    options = {}
    for item in args.option:
        key, sep, value = item.partition("=")
        if not sep or not key:
            parser.error(f"--option takes KEY=VALUE, got {item!r}")
        options[key] = _parse_value(value)
    shard = None
    if args.shard:
        try:
            i, n = (int(v) for v in args.shard.split("/"))
        except ValueError:
            parser.error(f"--shard takes I/N, e.g. 0/4, got {args.shard!r}")
        shard = (i, n)
    class_index = args.class_index if args.class_index in ("predicted", "label") else int(args.class_index)

    import keras
    import tensorflow as tf
    strategy = {"none": None, "mirrored": tf.distribute.MirroredStrategy,
                "multi-worker": tf.distribute.MultiWorkerMirroredStrategy}[args.strategy]
    strategy = strategy() if strategy else None
    with strategy.scope() if strategy else _nothing():
        model = keras.models.load_model(args.model, compile=False)
    data = np.load(args.data, mmap_mode="r") if args.data.endswith(".npy") else args.data
    path = explain_dataset(model, data, args.method, args.out, class_index=class_index, batch_size=args.batch_size,
                           strategy=strategy, shard=shard, resume=not args.no_resume, progress=not args.no_progress,
                           method_batch_size=args.method_batch_size,
                           compression=None if args.compression == "none" else args.compression, **options)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
