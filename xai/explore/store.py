"""The explorer's data: the maps that :func:`xai.dataset.explain_dataset` stored, one file a method,
read lazily (a map is read from its file when it is drawn; only the per-example columns, classes
and probabilities, are held in memory), with the inputs, labels, groups and metrics beside them.

Nothing is ever written into the files read: they are opened read-only.

Axis key: N examples stored (the rows), D examples in the data, K classes.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import numpy as np

from xai.dataset.store import READ_FORMATS, attr_value

__all__ = ["Table", "MapSet"]


@dataclass
class Table:
    """The per-example columns the explorer selects and sorts on, one value a stored row.

    ``position``: int64 (N,) the example's place in the data; ``label``: int64 (N,) or None;
    ``predicted``: int64 (N,) the model's arg-max; ``explained``: int64 (N,) the class each map
    explains; ``confidence``: float32 (N,) the probability of the predicted class; ``groups``:
    name -> (N,) values (HMT: slide, source image); ``metrics``: name -> float (N,); ``n_classes``:
    K, the width of the stored probabilities (None: the largest class seen, plus one)."""
    position: np.ndarray
    label: np.ndarray | None
    predicted: np.ndarray
    explained: np.ndarray
    confidence: np.ndarray
    groups: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    n_classes: int | None = None

    @property
    def n(self) -> int:
        return len(self.position)

    @property
    def k(self) -> int:
        """The number of classes."""
        if self.n_classes is not None:
            return int(self.n_classes)
        seen = [self.predicted, self.explained] + ([] if self.label is None else [self.label])
        return int(max(a.max() for a in seen if len(a)) + 1)

    @property
    def correct(self) -> np.ndarray | None:
        return None if self.label is None else self.label == self.predicted


def _name_paths(paths) -> list[tuple[str | None, str]]:
    if isinstance(paths, (str, os.PathLike)):
        return [(None, os.fspath(paths))]
    if isinstance(paths, dict) and paths:
        return [(str(k), os.fspath(v)) for k, v in paths.items()]
    if isinstance(paths, (list, tuple)) and paths and all(isinstance(p, (str, os.PathLike)) for p in paths):
        return [(None, os.fspath(p)) for p in paths]
    raise TypeError(f"paths must be a path, a non-empty list of paths or dict name -> path of explain_dataset's "
                    f"files, got {paths!r:.80}")


def _open(path: str):
    """One file opened read-only, after the checks that it is a finished file of explain_dataset."""
    import h5py
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no file {path!r}: pass the HDF5 files that explain_dataset wrote")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise ValueError(f"{path!r} is not an HDF5 file ({e}); pass the files that explain_dataset wrote") from None
    fmt = attr_value(f.attrs.get("format", ""))
    datasets = sorted(f)
    if fmt not in READ_FORMATS or not {"maps", "index", "class_index", "probabilities"} <= set(datasets):
        f.close()
        raise ValueError(f"{path!r} is not a file of explain_dataset (format {fmt!r}, datasets {datasets}); expected "
                         f"format {READ_FORMATS[0]!r} with maps, index, class_index and probabilities")
    if not bool(f.attrs.get("complete", False)):
        f.close()
        raise ValueError(f"{path!r} is still being written (or its run stopped): wait until explain_dataset returns, "
                         "or finish it with the same call (it resumes), then open it again")
    return f


class MapSet:
    """The maps of one or more methods over the same examples.

    Args:
        paths: a file of ``explain_dataset``, a list of them, or a dict name -> file (the names shown;
            default: each file's method, with its file name where two files share one).
        data: the inputs the files were made from, (D, T, C) or (D, H, W, C), indexed like them; or None.
        labels: int (D,) true classes, where the files hold none; groups: name -> (D,) values, e.g.
            ``{"slide": ..., "source image": ...}``; metrics: name -> float (D,) per-example scores to
            sort by (the files' own per-example datasets are added).

    Raises:
        FileNotFoundError: a missing file. ValueError: a file that is not ``explain_dataset``'s, one
        still being written, files over different examples, or data, labels, groups or metrics of
        another length than the data the files were made from.
    """

    def __init__(self, paths, data=None, *, labels=None, groups=None, metrics=None):
        named = _name_paths(paths)
        self._files = []
        try:
            for _, path in named:
                self._files.append(_open(path))
            self.names = _method_names(named, self._files)
            rows, total = _common_rows(named, self._files)
            self.total = total
            self.data = _checked_data(data, total, self._files[0])
            self.table = self._table(rows, labels, groups or {}, metrics or {})
            self.map_shape = _common_map_shape(self.names, [tuple(f["maps"].shape[1:]) for f in self._files])
            self.spatial_shape = _spatial_shape(self._files[0], self.data, self.map_shape)
        except BaseException:
            self.close()
            raise
        self._rows = rows                                                   # (N,) row in the files of each example

    def _table(self, rows, labels, groups, metrics) -> Table:
        f = self._files[0]
        index = f["index"][:][rows]                                         # (N,) positions in the data
        probabilities = f["probabilities"][:][rows]                         # (N, K)
        k = int(probabilities.shape[1])
        stored = f["label"][:][rows].astype(np.int64) if "label" in f else None
        if labels is not None:
            given = _checked_labels(labels, self.total, index, k)
            if stored is not None and not np.array_equal(given, stored):
                raise ValueError(f"labels differ from the ones stored in the files at {int(np.sum(given != stored))} "
                                 "examples: leave labels= out (the files hold them) or pass the same")
            stored = given
        extra = {name: _checked_metric(name, v, self.total, index) for name, v in metrics.items()}
        for name, g in zip(self.names, self._files):                       # the files' own per-example scores
            for key in g:
                if key not in ("maps", "index", "class_index", "probabilities", "label", "paths", "block_digest") \
                        and g[key].ndim == 1 and g[key].dtype.kind == "f":
                    extra[f"{name}: {key}"] = g[key][:][rows].astype(np.float32)
        return Table(position=index.astype(np.int64), label=stored, predicted=probabilities.argmax(1).astype(np.int64),
                     explained=f["class_index"][:][rows].astype(np.int64),
                     confidence=probabilities.max(1).astype(np.float32),
                     groups={name: _checked_column(f"groups[{name!r}]", v, self.total, index).astype(str)
                             for name, v in groups.items()},
                     metrics=extra, n_classes=k)

    # --- reading ---

    def maps(self, i: int) -> dict[str, np.ndarray]:
        """Each method's map of the ``i``-th example (a row of ``table``), read from its file now."""
        i = self._row(i)
        return {name: np.asarray(f["maps"][int(self._rows[i])], np.float32) for name, f in zip(self.names, self._files)}

    def _row(self, i) -> int:
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or not 0 <= i < self.table.n:
            raise IndexError(f"an example is an int row of the table in 0..{self.table.n - 1}, got {i!r}")
        return int(i)

    def maps_of(self, rows, name: str) -> np.ndarray:
        """One method's maps of several examples (rows of ``table``), float32 (len(rows), ...) as stored
    (with channels where the method keeps them), read now."""
        if name not in self.names:
            raise ValueError(f"no method {name!r}; the files hold {self.names}")
        f = self._files[self.names.index(name)]
        rows = [self._row(i) for i in np.asarray(rows).ravel().tolist()]
        unique, inverse = np.unique(self._rows[np.asarray(rows, np.int64)], return_inverse=True)   # h5py: increasing, once
        return np.asarray(f["maps"][unique], np.float32)[inverse]

    def input(self, i: int):
        """The ``i``-th example's input, or None without data."""
        i = self._row(i)
        return None if self.data is None else np.asarray(self.data[int(self.table.position[i])])

    @property
    def attrs(self) -> list[dict]:
        """Each file's attributes (JSON decoded)."""
        return [{k: _json_attr(f, k) for k in f.attrs} for f in self._files]

    def close(self) -> None:
        for f in getattr(self, "_files", []):
            try:
                f.close()
            except Exception:                                               # already closed
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self) -> str:
        return f"MapSet({self.table.n} examples, methods {self.names}, maps {self.map_shape})"


def _common_map_shape(names, shapes) -> tuple:
    """The maps' shape without channels, the same for every method: CAM maps (H, W) sit beside
    gradient maps (H, W, C), and (T,) beside (T, 1)."""
    spatial = min(shapes, key=len)
    for name, shape in zip(names, shapes):
        if shape[:len(spatial)] != spatial or len(shape) > len(spatial) + 1:
            raise ValueError(f"{name}'s maps are {shape}, another method's {spatial}: explain the same inputs with every "
                             "method")
    return spatial


def _method_names(named, files) -> list[str]:
    names = [name or str(attr_value(f.attrs.get("method", "maps"))) for name, f in zip([n for n, _ in named], files)]
    if len(set(names)) < len(names):                                        # the same method twice: say which file
        names = [f"{n} ({os.path.basename(p)})" for n, (_, p) in zip(names, named)]
    if len(set(names)) < len(names):
        raise ValueError(f"two files have the same name {names}: pass a dict name -> path")
    return names


def _common_rows(named, files) -> tuple[np.ndarray, int]:
    """The rows holding an example (not a padded block's), and the data's length; the same examples,
    in the same order, made from the same data, in every file."""
    first = files[0]["index"][:]
    rows = np.flatnonzero(first >= 0)
    described = attr_value(files[0].attrs.get("data", ""))
    for (_, path), f in zip(named[1:], files[1:]):
        index = f["index"][:]
        if index.shape != first.shape or not np.array_equal(index, first):
            raise ValueError(f"{path!r} holds other examples than {named[0][1]!r} ({int((index >= 0).sum())} against "
                             f"{len(rows)}, or in another order): explain the same data, unsharded or merged, with every method")
        if attr_value(f.attrs.get("data", "")) != described:
            raise ValueError(f"{path!r} was made from other data than {named[0][1]!r}: {attr_value(f.attrs.get('data'))} "
                             f"against {described}")
        if attr_value(f.attrs.get("model_fingerprint", "")) != attr_value(files[0].attrs.get("model_fingerprint", "")):
            raise ValueError(f"{path!r} explains another model than {named[0][1]!r}: explore one model's maps at a time")
        if not np.array_equal(f["class_index"][:], files[0]["class_index"][:]):
            raise ValueError(f"{path!r} explains other classes than {named[0][1]!r} ({attr_value(f.attrs.get('class_index'))}"
                             f" against {attr_value(files[0].attrs.get('class_index'))}): explain every method with the "
                             "same class_index")
    total = int(attr_value(files[0].attrs.get("n_total", -1)))
    return rows, (total if total >= 0 else int(first.max()) + 1)


def _checked_data(data, total: int, f):
    """The inputs, as given (read one example at a time), after the checks that they are the ones the
    files were made from: their length, and for an array source the shape of an example and a digest
    of the first and last example (``explain_dataset`` records both)."""
    from xai.dataset.sources import array_digest
    if data is None:
        return None
    if not hasattr(data, "shape") or not hasattr(data, "__getitem__") or len(getattr(data, "shape", ())) < 2:
        raise ValueError(f"data must be an array of the inputs (D, T, C) or (D, H, W, C), got {type(data).__name__} "
                         f"{getattr(data, 'shape', '')}")
    if len(data) != total:
        raise ValueError(f"data has {len(data)} examples, but the files were made from data of {total}: pass the "
                         "same data, in the same order, that explain_dataset was given")
    described = _json_attr(f, "data")
    if isinstance(described, dict) and described.get("kind") == "array":
        shape, dtype = tuple(described["shape"][1:]), np.dtype(described["dtype"])
        if tuple(data.shape[1:]) != shape:
            raise ValueError(f"data's examples are {tuple(data.shape[1:])}, the files' inputs were {shape}: pass the "
                             "inputs that explain_dataset was given")
        ends = np.stack([np.asarray(data[0]), np.asarray(data[len(data) - 1])]).astype(dtype)
        if described.get("ends_sha1") and array_digest(ends) != described["ends_sha1"]:
            raise ValueError("data's first and last examples are not the files' (another array, or another order): pass "
                             "the inputs that explain_dataset was given, in the same order")
    return data


def _json_attr(f, key):
    value = attr_value(f.attrs.get(key, ""))
    try:
        return json.loads(value) if isinstance(value, str) and value[:1] in "[{" else value
    except json.JSONDecodeError:
        return value


def _spatial_shape(f, data, map_shape) -> tuple:
    """The inputs' spatial axes ((T,) or (H, W)): from the recorded input shape, the data, or the maps."""
    described = _json_attr(f, "data")
    if isinstance(described, dict) and described.get("shape"):
        return tuple(described["shape"][1:-1])
    if data is not None:
        return tuple(data.shape[1:-1])
    return tuple(map_shape[:2]) if len(map_shape) >= 2 and map_shape[-1] > 4 else tuple(map_shape[:1])


def _checked_column(what: str, values, total: int, index) -> np.ndarray:
    """One value an example of the data, taken at the stored examples' positions ``index``."""
    values = np.asarray(values)
    if values.ndim != 1 or len(values) != total:
        raise ValueError(f"{what} must be one value an example of the data, shape ({total},), got {values.shape}: "
                         "pass it for the same data, in the same order, that explain_dataset was given")
    return values[index]


def _checked_labels(labels, total: int, index, k: int) -> np.ndarray:
    values = _checked_column("labels", labels, total, index)
    if values.dtype.kind not in "iu" or (values.size and (values.min() < 0 or values.max() >= k)):
        raise ValueError(f"labels must be int class indices in 0..{k - 1} (the files' {k} classes), got "
                         f"{values.dtype} in [{values.min() if values.size else ''}, {values.max() if values.size else ''}]")
    return values.astype(np.int64)


def _checked_metric(name: str, values, total: int, index) -> np.ndarray:
    values = _checked_column(f"metrics[{name!r}]", values, total, index)
    if values.dtype.kind not in "iuf":
        raise ValueError(f"metrics[{name!r}] must be numbers, got dtype {values.dtype}")
    if not np.isfinite(values.astype(np.float64)).all():
        raise ValueError(f"metrics[{name!r}] holds NaN or inf: drop those examples or fill them before exploring")
    return values.astype(np.float32)
