"""The README's Python examples run as they are shown (the public imports it promises keep working)."""
import os
import re

import pytest

from tests.conftest import repo_path


@pytest.mark.slow
def test_readme_python_examples_run_as_shown(monkeypatch):
    monkeypatch.chdir(repo_path())
    with open(repo_path("README.md")) as f:
        blocks = re.findall(r"```python\n(.*?)```", f.read(), re.S)
    assert len(blocks) >= 2
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})                     # noqa: S102  the README's own code
    assert os.path.isfile(repo_path("models", "MNIST1D.keras"))


def test_readme_is_short_and_names_only_files_that_exist():
    with open(repo_path("README.md")) as f:
        text = f.read()
    assert len(text.splitlines()) <= 240, "the README is meant to be read in one sitting"
    for name in re.findall(r"`((?:xai|hmt|group|training|mnist1d|notebook|atomic)_?\w*\.py)`", text):
        assert os.path.isfile(repo_path(name)), name
