"""The HDF5 files of :func:`xai.dataset.explain_dataset`: one part file per finished batch, a
virtual main file over the parts, one self-contained file at the end, shards merged.

How the file stays readable at every instant. HDF5 rewrites its metadata in place, so a process
killed while it has a file open for writing can leave it unreadable (SWMR mode needs ``h5clear``
after a crash). Here no file is ever left open: each finished batch is written to its own small
HDF5 file in ``<out>.parts/`` under a temporary name and renamed into place (atomic), and ``<out>``
itself, written once before the work starts, maps its datasets onto those parts with HDF5 virtual
datasets whose source names follow the block number (``<out>.parts/%b.h5``). Opened with plain
``h5py.File(out)`` at any time, it shows every completed batch and nothing else. When the run
completes, one self-contained file (the compressed chunks copied as they are) replaces ``<out>``
by rename and the parts are removed.

Datasets (rows in the shard's order of examples): ``maps`` float32 (N, ...); ``class_index`` int32
(N,); ``probabilities`` float32 (N, K); ``index`` int64 (N,), each example's position in the data;
``label`` int64 (N,) where the data carry labels; ``paths`` (N,) for a folder of images. Attributes:
``format``, ``method``, ``method_options`` (JSON), ``model_fingerprint``, ``versions``, ``data``
(JSON), ``complete`` and the rest of the call.

Axis key: N examples, B rows in one block (the batch size), K classes.
"""
from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable

import numpy as np

from xai.files import atomic_path

__all__ = ["FORMAT", "READ_FORMATS", "COMPRESSIONS", "fields_for", "chunk_rows", "create_kwargs", "atomic_h5", "part_name",
           "write_part", "write_virtual_main", "completed_parts", "rows_written", "consolidate", "attr_value",
           "tmp_prefix", "part_digests", "file_digests",
           "shard_path", "load_explanations", "merge_shards"]

FORMAT = "xai.dataset/1"
# every format name this code reads: the same layout was named "xai_dataset/1" before the package existed
READ_FORMATS = (FORMAT, "xai_dataset/1")
COMPRESSIONS = ("gzip", "lzf", None)
CHUNK_BYTES = 1 << 20                 # at most this much of one dataset in a chunk


def part_name(k: int) -> str:
    return f"{k}.h5"


def fields_for(map_shape, map_dtype, num_classes, has_labels):
    """name -> (row shape, dtype, fill) of every per-example dataset."""
    fields = {"maps": (tuple(map_shape), np.dtype(map_dtype), np.nan),
              "class_index": ((), np.dtype(np.int32), -1),
              "probabilities": ((num_classes,), np.dtype(np.float32), np.nan),
              "index": ((), np.dtype(np.int64), -1)}
    if has_labels:
        fields["label"] = ((), np.dtype(np.int64), -1)
    return fields


def chunk_rows(row_shape, dtype, block: int) -> int:
    """Rows per chunk: the largest divisor of the block that keeps a chunk under CHUNK_BYTES, so a
    block's chunks copy into the final file unchanged."""
    row = max(1, int(np.prod(row_shape)) * np.dtype(dtype).itemsize)
    fit = max(1, CHUNK_BYTES // row)
    return max(d for d in range(1, block + 1) if block % d == 0 and d <= fit)


def create_kwargs(name, row_shape, dtype, block, compression):
    kwargs = {"chunks": (chunk_rows(row_shape, dtype, block),) + tuple(row_shape)}
    if name == "maps" and compression is not None:
        kwargs.update(compression=compression, shuffle=True)
        if compression == "gzip":
            kwargs["compression_opts"] = 1
    return kwargs


def tmp_prefix(path: str) -> str:
    """The prefix of ``path``'s temporary files: ``.tmp-<name>-`` beside it, so that a resumed run
    removes its own leftovers and never another run's."""
    return f".tmp-{os.path.basename(path)}-"


def atomic_h5(path: str, write: Callable) -> None:
    """``write(f)`` into a temporary HDF5 file beside ``path``, then renamed onto it (atomic)."""
    import h5py
    with atomic_path(path, prefix=tmp_prefix(path), suffix=".h5") as tmp:
        with h5py.File(tmp, "w") as f:
            write(f)


def write_part(path, fields, rows: dict, block, compression, input_digest: str):
    """One finished block: every field padded to ``block`` rows, and the digest of its inputs (a
    resumed run checks that it reads the same data)."""
    def write(f):
        f.attrs["input_digest"] = input_digest
        f.attrs["rows"] = len(rows["index"])
        for name, (shape, dtype, fill) in fields.items():
            data = np.full((block,) + shape, fill, dtype)                 # the last block padded to full size
            data[:len(rows[name])] = rows[name]
            f.create_dataset(name, data=data, **create_kwargs(name, shape, dtype, block, compression))
    atomic_h5(path, write)


def write_virtual_main(out, attrs: dict, fields, block, paths):
    """``out``: attributes, the paths, and virtual datasets over ``<out>.parts/%b.h5``, block by block."""
    import h5py
    unlimited = h5py.h5s.UNLIMITED
    # a printf-style name: the block number fills %b, and a % of the file's own name is doubled
    parts = (os.path.basename(out).replace("%", "%%") + ".parts/%b.h5").encode()

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
    atomic_h5(out, write)


def completed_parts(parts_dir: str, block: int) -> int:
    """How many consecutive blocks 0, 1, ... are complete; stray temporary files and anything after a
    gap or an unreadable part are removed (a part is renamed into place only once it is whole)."""
    import h5py
    if not os.path.isdir(parts_dir):
        return 0
    for name in os.listdir(parts_dir):
        if name.startswith(".tmp-"):
            os.remove(os.path.join(parts_dir, name))
    k = 0
    while os.path.exists(os.path.join(parts_dir, part_name(k))):
        try:
            with h5py.File(os.path.join(parts_dir, part_name(k)), "r") as f:
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


def consolidate(out, parts_dir, attrs, fields, block, n_rows, paths, compression):
    """One self-contained file in place of the virtual one (atomic), chunks copied without
    recompressing, each block's input digest kept (``block_digest``); then the parts are removed."""
    import h5py
    n_blocks = -(-n_rows // block)

    def write(f):
        for key, value in attrs.items():
            f.attrs[key] = value
        f.create_dataset("block_digest", data=np.asarray(part_digests(parts_dir, n_blocks), dtype="S8"))
        if paths is not None:
            f.create_dataset("paths", data=np.asarray(paths[:n_rows], dtype=h5py.string_dtype()))
        # unlimited rows: a chunk may hold more rows than a small file has (chunks copied as they are)
        dsets = {name: f.create_dataset(name, shape=(n_rows,) + shape, maxshape=(None,) + shape, dtype=dtype,
                                        fillvalue=np.array(fill, dtype),
                                        **create_kwargs(name, shape, dtype, block, compression))
                 for name, (shape, dtype, fill) in fields.items()}
        for k in range(n_blocks):
            with h5py.File(os.path.join(parts_dir, part_name(k)), "r") as part:
                for name, d in dsets.items():
                    src = part[name]
                    rows = src.chunks[0]
                    for r in range(0, block, rows):
                        if k * block + r >= n_rows:
                            break
                        zeros = (0,) * (src.ndim - 1)
                        mask, chunk = src.id.read_direct_chunk((r,) + zeros)
                        d.id.write_direct_chunk((k * block + r,) + zeros, chunk, mask)
    atomic_h5(out, write)
    shutil.rmtree(parts_dir, ignore_errors=True)


def part_digests(parts_dir: str, n_blocks: int) -> list[str]:
    """The input digests of blocks 0 .. n_blocks - 1."""
    import h5py
    digests = []
    for k in range(n_blocks):
        with h5py.File(os.path.join(parts_dir, part_name(k)), "r") as part:
            digests.append(attr_value(part.attrs["input_digest"]))
    return digests


def file_digests(out: str) -> list[str]:
    """The input digests of a complete file's blocks."""
    import h5py
    with h5py.File(out, "r") as f:
        return [attr_value(d) for d in f["block_digest"][:]] if "block_digest" in f else []


def attr_value(value):
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, np.generic):
        value = value.item()
    return value


def rows_written(parts_dir, n_blocks, block) -> int:
    """Examples held by blocks 0 .. n_blocks - 1 (the last may be short)."""
    import h5py
    if n_blocks == 0:
        return 0
    with h5py.File(os.path.join(parts_dir, part_name(n_blocks - 1)), "r") as f:
        last = int(f.attrs["rows"])
    return (n_blocks - 1) * block + last


def shard_path(out: str, i: int, n: int) -> str:
    """The file of shard i of n: ``maps.h5`` -> ``maps.shard-1-of-4.h5``."""
    stem, ext = os.path.splitext(out)
    return f"{stem}.shard-{i}-of-{n}{ext or '.h5'}"


def load_explanations(path, fields=None) -> dict:
    """Every completed row of a file written by :func:`explain_dataset` (complete or not), as NumPy
    arrays, plus ``"attrs"`` (JSON attributes decoded). Reads everything into memory: for large
    files use ``h5py.File(path)`` and slice."""
    import h5py
    with h5py.File(path, "r") as f:
        index = f["index"][:]
        keep = index >= 0                                                     # a padded last block, if any
        names = [n for n in f if n not in ("paths", "block_digest")] if fields is None else \
            [n for n in fields if n != "paths"]
        result = {n: f[n][:][keep] for n in names}
        if "paths" in f and (fields is None or "paths" in fields):
            result["paths"] = np.asarray([p.decode() if isinstance(p, bytes) else p for p in f["paths"][:]])[:keep.sum()]
        attrs = {}
        for key, value in f.attrs.items():
            value = attr_value(value)
            if isinstance(value, str) and value[:1] in "[{\"" and key != "method":
                try:
                    value = json.loads(value)
                except json.JSONDecodeError:
                    pass
            attrs[key] = value
        result["attrs"] = attrs
    return result


def merge_shards(shards, out, *, compression: str | None = "gzip", rows_per_write: int = 256) -> str:
    """One file from the complete shard files of one run (:func:`shard_path`), rows in example order.

    Checks that every shard is complete, that all were made by the same model, method, options and
    data, and that together they hold every example of the data exactly once (where the data's
    length is known: arrays, folders, tf.data of known length). Streams ``rows_per_write`` rows at a
    time (memory stays flat); written atomically. ``compression`` is the merged maps' own."""
    shards = [os.fspath(s) for s in shards]
    if not shards:
        raise ValueError("no shard files given")
    if compression not in COMPRESSIONS:
        raise ValueError(f"compression must be one of {COMPRESSIONS}, got {compression!r}")
    infos = [_read_shard(path) for path in shards]
    total = _check_one_run(infos)
    owner, row = _merged_order(infos)
    first = infos[0][1]

    def write(f):
        for key, value in first.items():
            f.attrs[key] = value
        f.attrs.update({"shard": json.dumps([0, 1]), "n_examples": total, "compression": str(compression),
                        "merged_from": json.dumps([os.path.basename(p) for p, _, _ in infos])})
        _copy_rows(f, [p for p, _, _ in infos], owner, row, total, rows_per_write, compression)
    atomic_h5(out, write)
    return out


# --- the steps of merge_shards ---

# the attributes every shard of one run shares
_SAME_RUN = ("method", "method_options", "model_fingerprint", "class_index", "data", "n_total")


def _read_shard(path: str) -> tuple[str, dict, np.ndarray]:
    """``(path, attributes, index)`` of a complete shard file; raises for any other file."""
    import h5py
    try:
        with h5py.File(path, "r") as f:
            attrs = {k: attr_value(v) for k, v in f.attrs.items()}
            index = f["index"][:] if attrs.get("format") in READ_FORMATS else None        # int64 (N_shard,)
    except OSError as err:
        raise ValueError(f"cannot read shard {path!r} ({err})") from err
    if attrs.get("format") not in READ_FORMATS:
        raise ValueError(f"{path!r} is not a file written by explain_dataset")
    if not attrs.get("complete"):
        raise ValueError(f"{path!r} is not complete; finish (resume) that shard first")
    return path, attrs, index


def _check_one_run(infos: list) -> int:
    """The shards are one run, each shard once, every example once; returns the number of examples."""
    for key in _SAME_RUN:
        values = {str(a.get(key)) for _, a, _ in infos}
        if len(values) > 1:
            raise ValueError(f"the shards differ in {key}: {sorted(values)}; they are not one run")
    counts = {json.loads(a["shard"])[1] for _, a, _ in infos}
    ids = sorted(json.loads(a["shard"])[0] for _, a, _ in infos)
    if len(counts) != 1 or ids != list(range(next(iter(counts)))):
        raise ValueError(f"the shards are {ids} of {sorted(counts)}; each of 0..n-1 must be given once")
    index = np.concatenate([i for _, _, i in infos])
    total = int(infos[0][1].get("n_total", -1))
    total = len(index) if total < 0 else total
    if len(index) != total or not np.array_equal(np.sort(index), np.arange(total)):
        missing = np.setdiff1d(np.arange(total), index)[:10].tolist()
        raise ValueError(f"the shards hold {len(index)} rows for {total} examples: not every example once "
                         f"(missing e.g. {missing})")
    return total


def _merged_order(infos: list) -> tuple[np.ndarray, np.ndarray]:
    """``(owner, row)`` int (N,): output row j comes from shard owner[j], its row row[j]."""
    index = np.concatenate([i for _, _, i in infos])
    owner = np.concatenate([np.full(len(i), s) for s, (_, _, i) in enumerate(infos)])
    row = np.concatenate([np.arange(len(i)) for _, _, i in infos])
    order = np.argsort(index, kind="stable")
    return owner[order], row[order]


def _copy_rows(f, paths: list[str], owner, row, total: int, rows_per_write: int, compression) -> None:
    """Every dataset of the shards into the open file ``f``, ``rows_per_write`` output rows at a time."""
    import h5py
    sources = [h5py.File(p, "r") for p in paths]
    try:
        names = [n for n in sources[0] if n != "block_digest"]
        for name in names:
            src = sources[0][name]
            kwargs = {"dtype": h5py.string_dtype()} if name == "paths" else create_kwargs(
                name, src.shape[1:], src.dtype, rows_per_write, compression)
            dest = f.create_dataset(name, shape=(total,) + src.shape[1:], maxshape=(None,) + src.shape[1:],
                                    **({"dtype": src.dtype} | kwargs))
            for a in range(0, total, rows_per_write):
                b = min(a + rows_per_write, total)
                part = np.empty((b - a,) + src.shape[1:], dest.dtype if name != "paths" else object)
                for s, source in enumerate(sources):
                    take = np.flatnonzero(owner[a:b] == s)
                    if len(take):
                        part[take] = source[name][row[a:b][take]]             # rows increase within a shard
                dest[a:b] = part
    finally:
        for s in sources:
            s.close()
