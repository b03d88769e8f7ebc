"""Data for :func:`xai.dataset.explain_dataset`, read in batches from any position, one shard at a
time: NumPy arrays and memory maps, ``tf.data`` datasets (batched or not, with or without labels,
of known or unknown length) and folders of image files (flat, or one folder a class).

Axis key: N examples, B examples in one batch, T signal length, H, W image size, C channels.
"""
from __future__ import annotations

import hashlib
import os

import numpy as np

__all__ = ["IMAGE_SUFFIXES", "Source", "open_source", "list_images", "array_digest", "block_digest"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp")


def block_digest(a: np.ndarray) -> str:
    """A fast check of a block's inputs (CRC-32 of the bytes, with shape and dtype; 5 GB/s): enough to
    tell that a resumed run reads other data, not a cryptographic hash."""
    import zlib
    a = np.ascontiguousarray(a)
    return f"{zlib.crc32(memoryview(a).cast('B'), zlib.crc32(f'{a.shape}|{a.dtype}'.encode())):08x}"


def array_digest(a: np.ndarray) -> str:
    a = np.ascontiguousarray(a)
    h = hashlib.sha1(f"{a.shape}|{a.dtype}|".encode())
    h.update(memoryview(a).cast("B"))
    return h.hexdigest()[:20]



class Source:
    """One shard of the data, read in batches from any position: ``n`` examples (None: unknown until
    read), ``index`` of position k is its place in the whole data, labels where the data have them."""

    def __init__(self, n, describe: dict, has_labels: bool, paths=None, class_names=None, total=None,
                 labels=None):
        self.n, self.describe, self.has_labels = n, describe, has_labels
        self.paths, self.class_names = paths, class_names
        self.total = total                  # examples in the whole data (every shard), None if unknown
        self.labels = labels                # every label, where known before reading (arrays, folders)

    def batches(self, start: int, size: int):
        """Yields (positions (B,), x float32 (B, ...), labels int64 (B,) or None) from ``start``."""
        raise NotImplementedError


def _shard_positions(total: int, shard) -> np.ndarray:
    i, n = shard
    return np.arange(i, total, n)


class _ArraySource(Source):
    def __init__(self, x, y, shard):
        self.x, self.y = x, y
        self.positions = _shard_positions(len(x), shard)
        ends = [0, len(x) - 1]
        describe = {"kind": "array", "shape": list(x.shape), "dtype": str(x.dtype),
                    "ends_sha1": array_digest(np.stack([np.asarray(x[e]) for e in ends])),
                    "labels_sha1": None if y is None else array_digest(np.asarray(y))}
        super().__init__(len(self.positions), describe, y is not None, total=len(x),
                         labels=None if y is None else np.asarray(y, np.int64))

    def batches(self, start, size):
        for a in range(start, self.n, size):
            pos = self.positions[a:a + size]
            if len(pos) and pos[-1] - pos[0] == len(pos) - 1:              # contiguous: one slice of a memmap
                xb = np.asarray(self.x[pos[0]:pos[-1] + 1])
            else:
                xb = np.asarray(self.x[pos])
            yb = None if self.y is None else np.asarray(self.y[pos], np.int64)
            yield pos, xb.astype(np.float32, copy=False), yb


class _DatasetSource(Source):
    def __init__(self, ds, rank: int, shard):
        import tensorflow as tf
        spec = ds.element_spec
        has_labels = isinstance(spec, tuple)
        x_spec = spec[0] if has_labels else spec
        if not isinstance(x_spec, tf.TensorSpec):
            raise ValueError(f"a tf.data.Dataset of inputs or (inputs, labels) was expected, got elements {spec}")
        batched = len(x_spec.shape) == rank
        if not batched and len(x_spec.shape) != rank - 1:
            raise ValueError(f"dataset elements of shape {x_spec.shape} do not match the model's input rank "
                             f"{rank} (batched) or {rank - 1} (one example)")
        if has_labels:
            y_spec = spec[1]
            if len(spec) != 2 or not isinstance(y_spec, tf.TensorSpec) or not y_spec.dtype.is_integer:
                raise ValueError(f"dataset labels must be integer class indices, got {spec[1:]}; for one-hot labels "
                                 "map them first: ds.map(lambda x, y: (x, tf.argmax(y, -1)))")
            label_rank = len(y_spec.shape) - (1 if batched else 0)
            if label_rank > 1 or (label_rank == 1 and y_spec.shape[-1] not in (1, None)):
                raise ValueError(f"dataset labels must be one int an example, got shape {y_spec.shape}; for one-hot "
                                 "labels map them first: ds.map(lambda x, y: (x, tf.argmax(y, -1)))")
        if batched:
            ds = ds.unbatch()
        card = int(ds.cardinality())
        if card == int(tf.data.INFINITE_CARDINALITY):
            raise ValueError("the dataset is infinite (a repeat() without a count?); explain a finite dataset")
        self.ds, self.shard = ds.shard(shard[1], shard[0]) if shard[1] > 1 else ds, shard
        n = int(self.ds.cardinality())
        super().__init__(n if n >= 0 else None, {"kind": "tf.data", "element_spec": str(spec)}, has_labels,
                         total=card if card >= 0 else None)

    def batches(self, start, size):
        i, n = self.shard
        k = start
        for element in self.ds.skip(start).batch(size).as_numpy_iterator():
            xb = element[0] if self.has_labels else element
            yb = np.asarray(element[1], np.int64).reshape(len(xb)) if self.has_labels else None
            pos = i + n * np.arange(k, k + len(xb))
            k += len(xb)
            yield pos, np.asarray(xb, np.float32), yb


def list_images(root: str):
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
            if im.mode == "P":                                          # palette: the colours, not the indices
                im = im.convert("RGBA" if "transparency" in im.info else "RGB")
            if im.mode not in ("L", "RGB", "RGBA"):
                raise ValueError(f"image {path!r} has mode {im.mode!r}; 8-bit L, RGB or RGBA images are read as they "
                                 "are (0-255). Convert the images, or pass a tf.data.Dataset that scales them")
            arr = np.asarray(im)
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise ValueError(f"cannot decode image {path!r}: {err}") from err
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.shape != shape:
        raise ValueError(f"image {path!r} is {arr.shape}, the model takes {shape}; resize the images first "
                         "or pass a tf.data.Dataset that does")
    return arr.astype(np.float32)                                        # pixels as stored (0-255 for 8 bits)


class _FolderSource(Source):
    def __init__(self, root, shape, shard):
        paths, labels, names = list_images(root)
        self.root, self.shape = root, shape
        self.positions = _shard_positions(len(paths), shard)
        self.all_labels = labels
        listing = hashlib.sha1("\n".join(paths).encode()).hexdigest()[:20]
        describe = {"kind": "folder", "n_files": len(paths), "listing_sha1": listing, "classes": names}
        super().__init__(len(self.positions), describe, labels is not None,
                         paths=[paths[p] for p in self.positions], class_names=names, total=len(paths), labels=labels)

    def batches(self, start, size):
        for a in range(start, self.n, size):
            pos = self.positions[a:a + size]
            xb = np.stack([_decode_image(os.path.join(self.root, self.paths[a + k]), self.shape)
                           for k in range(len(pos))])
            yield pos, xb, None if self.all_labels is None else self.all_labels[pos]


def open_source(data, model, shard) -> Source:
    """The shard ``(i, n)`` of ``data`` (see :func:`xai.dataset.explain_dataset` for the kinds), checked
    against the model's input; raises ValueError naming what does not fit."""
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
