"""xai/notebook.py: a notebook's set-up installs only what is missing, never replaces TensorFlow, Keras or NumPy,
finds the HMT tiles where it is told, and says where it runs."""
import os

import pytest

import xai.notebook as nb


def test_requirements_are_read_with_their_ranges():
    specs = nb._requirements()
    assert specs["tensorflow"].startswith("tensorflow>=") and set(nb.NOTEBOOK_PACKAGES) <= set(specs)


def test_nothing_is_installed_when_every_package_is_there(capsys):
    assert nb.ensure_packages(dry_run=True) == []
    out = capsys.readouterr().out
    assert "nothing to install" in out and "keeping the installed tensorflow" in out


def test_a_missing_package_is_installed_with_its_range(monkeypatch):
    monkeypatch.setattr(nb, "missing_packages", lambda packages=nb.NOTEBOOK_PACKAGES: ["tqdm"])
    assert nb.ensure_packages(dry_run=True) == [nb._requirements()["tqdm"]]


def test_a_package_outside_requirements_txt_is_refused():
    with pytest.raises(ValueError, match="not in requirements.txt"):
        nb.ensure_packages(("no-such-package",), dry_run=True)


def test_an_installed_copy_says_to_run_from_a_checkout(tmp_path):
    with pytest.raises(FileNotFoundError, match="from a checkout"):
        nb._requirements(str(tmp_path / "requirements.txt"))


def test_a_given_hmt_folder_is_used_and_a_wrong_one_refused(tmp_path, capsys):
    (tmp_path / "HMT_train").mkdir()
    assert nb.ensure_hmt(str(tmp_path)) == str(tmp_path)
    with pytest.raises(FileNotFoundError, match="holds no HMT_train"):
        nb.ensure_hmt(str(tmp_path / "elsewhere"))


def test_setup_says_where_it_runs_and_returns_the_data_folder(tmp_path, monkeypatch, capsys):
    (tmp_path / "HMT_train").mkdir()
    monkeypatch.setattr(nb, "describe_runtime", lambda: "runtime line")
    monkeypatch.chdir(nb.ROOT)
    assert nb.setup(str(tmp_path), hmt=True) == str(tmp_path)
    assert nb.setup() is None
    out = capsys.readouterr().out
    assert "running in the repository's folder" in out and "runtime line" in out and "installing" not in out
    assert os.path.isfile(os.path.join(nb.ROOT, "xai", "notebook.py"))
