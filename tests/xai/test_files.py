"""xai.files: a file appears whole or not at all, and no temporary file is left behind."""
import os
import stat

import pytest

from xai.files import atomic_open, atomic_path, write_atomic


def test_write_atomic_text_and_bytes_in_a_new_folder(tmp_path):
    path = tmp_path / "new" / "a.txt"
    assert write_atomic(str(path), "héllo\n") == str(path)
    assert path.read_text(encoding="utf-8") == "héllo\n"
    write_atomic(str(path), b"\x00\x01")
    assert path.read_bytes() == b"\x00\x01"
    assert os.listdir(path.parent) == ["a.txt"]


def test_an_error_keeps_the_old_file_and_leaves_nothing(tmp_path):
    path = tmp_path / "a.json"
    path.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_open(str(path), "w") as f:
            f.write("half")
            raise RuntimeError("interrupted")
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["a.json"]
    with pytest.raises(RuntimeError):
        with atomic_path(str(tmp_path / "b.npz")) as tmp:
            assert tmp.endswith(".npz") and os.path.dirname(tmp) == str(tmp_path)
            raise RuntimeError
    assert os.listdir(tmp_path) == ["a.json"]


def test_the_file_gets_the_mode_open_would_give(tmp_path):
    old = os.umask(0o027)
    try:
        write_atomic(str(tmp_path / "m.txt"), "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "m.txt").st_mode) == 0o640
    with pytest.raises(ValueError, match="mode"):
        with atomic_open(str(tmp_path / "x"), "a"):
            pass


def test_json_ready_turns_numpy_into_json_and_nan_into_null():
    import json

    import numpy as np

    from xai.files import json_ready
    value = {"a": np.array([[1.5, np.nan], [np.inf, 2.0]], np.float32), "b": (np.int64(3), np.float64("nan")), "c": "text"}
    assert json_ready(value) == {"a": [[1.5, None], [None, 2.0]], "b": [3, None], "c": "text"}
    assert json.loads(json.dumps(json_ready(value), allow_nan=False))["a"][0] == [1.5, None]
