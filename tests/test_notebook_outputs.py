"""The committed notebooks' outputs name no machine's folders and hold no warning, and the cleaner
that keeps them so works (tools/clean_notebook.py)."""
import importlib.util
import os
import re

import nbformat
import pytest

from tests.conftest import repo_path
from tests.test_notebooks import NOTEBOOKS  # noqa: E402  the Makefile's one list

MACHINE = re.compile(r"(?:/work/|/home/|/tmp/|/content/|/Users/|site-packages|[A-Za-z]:\\\\)")


def _outputs(nb):
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            texts = [out.get("text", "")] + [v for k, v in out.get("data", {}).items() if k.startswith("text/")]
            for text in texts:
                yield i, out, text if isinstance(text, str) else "".join(text)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_outputs_name_no_machine_path_and_hold_no_warning(name):
    nb = nbformat.read(repo_path(name), as_version=4)
    for i, out, text in _outputs(nb):
        assert not MACHINE.search(text), f"{name} cell {i} names a machine's folder: {MACHINE.search(text)[0]!r}"
        assert "Warning:" not in text, f"{name} cell {i} holds a warning: {text[:200]!r}"
        assert out.get("name") != "stderr" or not text.strip(), f"{name} cell {i} wrote to stderr: {text[:200]!r}"


def test_cleaner_scrubs_the_repository_path_and_package_warnings(capsys):
    spec = importlib.util.spec_from_file_location("clean_notebook", repo_path("tools", "clean_notebook.py"))
    cleaner = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cleaner)
    root = "/somewhere/repo"
    text = (f"HMT tiles: {root}/data/hmt\nrunning in {root}\n"
            "/x/lib/python3.11/site-packages/keras/base.py:113: UserWarning: Do not pass it.\n"
            "  super().__init__(**kwargs)\nkept line\n")
    assert cleaner.scrub(text, root) == "HMT tiles: data/hmt\nrunning in .\nkept line\n"
    assert cleaner.scrub(f"{root}-colab/x and {root} here", root) == f"{root}-colab/x and . here"   # a sibling stays
    assert "dropped a warning" in capsys.readouterr().err
    assert os.path.isfile(repo_path("tools", "clean_notebook.py"))
