"""Files written whole or not at all: into a temporary file beside the target, then renamed onto it
(atomic on POSIX and Windows within one folder). An error or an interruption leaves the old file,
or none, and no temporary file behind. The one writer every module and tool uses; standard library
only, so the tools can use it before anything is installed.
"""
from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["atomic_path", "atomic_open", "write_atomic", "json_ready"]


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str, *, prefix: str | None = None, suffix: str | None = None) -> Iterator[str]:
    """A temporary path beside ``path`` to write to; renamed onto ``path`` when the block ends
    without an error, removed otherwise. The folder is made if missing; the file gets the mode a
    plain ``open()`` would give it (``mkstemp`` gives 0600). ``suffix`` defaults to the target's
    extension (some writers choose the format by it)."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    name = os.path.basename(path)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=prefix if prefix is not None else f".{name}.",
                               suffix=suffix if suffix is not None else os.path.splitext(name)[1] or ".tmp")
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


@contextmanager
def atomic_open(path: str, mode: str = "w", **kwargs):
    """``open()`` for writing (``"w"`` or ``"wb"``), atomically: the file appears whole at the end."""
    if mode not in ("w", "wb"):
        raise ValueError(f"mode must be 'w' or 'wb', got {mode!r}")
    with atomic_path(path) as tmp:
        with open(tmp, mode, **kwargs) as f:
            yield f


def write_atomic(path: str, data: str | bytes) -> str:
    """Write text (UTF-8) or bytes to ``path`` atomically. Returns ``path``."""
    if isinstance(data, str):
        with atomic_open(path, "w", encoding="utf-8") as f:
            f.write(data)
    else:
        with atomic_open(path, "wb") as f:
            f.write(data)
    return path


def json_ready(value):
    """``value`` in JSON's types, for ``json.dump(..., allow_nan=False)``: dicts, lists and tuples walked;
    NumPy arrays and scalars (anything with ``tolist``) as Python lists and numbers; a float that is
    not finite (NaN: no value there) as None, written null."""
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return json_ready(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
