"""Each notebook runs top to bottom in QUICK mode, into a temporary folder; any cell error fails.
MNIST1D.ipynb and XAI_methods.ipynb also run alone, from nothing: copied into an empty folder, with
REPO_URL pointing at a clone of this repository and PYTHONPATH clear of it."""
import importlib.util
import json
import os
import shutil
import subprocess
import sys

import nbformat
import papermill
import pytest

from tests.conftest import ROOT, hmt_root, snapshot_repo


def _colab_links():
    spec = importlib.util.spec_from_file_location("colab_links", os.path.join(ROOT, "tools", "colab_links.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


NOTEBOOKS = _colab_links().NOTEBOOKS          # the Makefile's NOTEBOOKS, read once, by tools/colab_links.py


def test_every_notebook_at_the_top_is_in_the_makefiles_list():
    assert sorted(NOTEBOOKS) == sorted(f for f in os.listdir(ROOT) if f.endswith(".ipynb")) and NOTEBOOKS


def _run(source, out, cwd, **parameters):
    papermill.execute_notebook(str(source), str(out), parameters=dict(QUICK=True, **parameters),
                               cwd=str(cwd), kernel_name="python3", progress_bar=False)
    nb = nbformat.read(str(out), as_version=4)
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, errors[0].get("evalue") if errors else ""
    return nb


def _cell_text(nb, index):
    code = [c for c in nb.cells if c.cell_type == "code"]
    return "".join(o.get("text", "") for o in code[index].get("outputs", []) if o.get("output_type") == "stream")


@pytest.mark.slow                      # the notebooks
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_notebook_layout(name):
    nb = nbformat.read(os.path.join(ROOT, name), as_version=4)
    # the parameters a reader sees are the ones the outputs came from: papermill's injected cell is folded into the
    # parameters cell by tools/clean_notebook.py, never committed beside it
    assert not [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])], \
        f"{name} carries papermill's injected-parameters cell: run python tools/clean_notebook.py {name}"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", []), f"{name}: the first code cell must be tagged 'parameters'"
    assert "REPO_URL = " in code[0].source and "DRIVE_DIR = " in code[0].source
    assert code[1].source.startswith("# Set-up.") and "xai.notebook" in code[1].source
    assert "import keras" in code[2].source
    assert all(c.get("outputs") is not None for c in code)
    assert "papermill" not in nb.metadata, "strip machine-specific metadata: python tools/clean_notebook.py"
    assert any(c.get("outputs") for c in code), f"{name} is committed without outputs"
    assert os.path.getsize(os.path.join(ROOT, name)) <= 5 * 2**20, f"{name} is over 5 MB"


@pytest.mark.slow
def test_hmt_notebook_quick(tmp_path):
    _run(os.path.join(ROOT, "HMT.ipynb"), tmp_path / "HMT.ipynb", ROOT, RETRAIN=True,
         MODEL_DIR=str(tmp_path / "models"), FIGURE_DIR=str(tmp_path / "figures"))
    assert (tmp_path / "models" / "HMT.keras").is_file()
    assert (tmp_path / "figures" / "hmt_confusion.png").is_file()


@pytest.fixture(scope="module")
def lone(tmp_path_factory, monkeypatch_module):
    """An empty working folder, a snapshot clone of the repository to point REPO_URL at, and an
    environment without the repository on PYTHONPATH."""
    source = snapshot_repo(tmp_path_factory.mktemp("origin"))
    work = tmp_path_factory.mktemp("lone")
    monkeypatch_module.delenv("PYTHONPATH", raising=False)
    monkeypatch_module.setenv("HMT_DIR", os.path.realpath(hmt_root()))
    return source, work


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


@pytest.mark.slow
def test_lone_notebook_without_repo_url_says_what_to_set(lone, tmp_path):
    _, _ = lone
    shutil.copy(os.path.join(ROOT, "MNIST1D.ipynb"), tmp_path / "MNIST1D.ipynb")
    with pytest.raises(papermill.PapermillExecutionError, match="REPO_URL"):
        papermill.execute_notebook(str(tmp_path / "MNIST1D.ipynb"), str(tmp_path / "out.ipynb"),
                                   parameters={"QUICK": True, "REPO_URL": "", "DRIVE_DIR": ""},
                                   cwd=str(tmp_path), kernel_name="python3", progress_bar=False)


@pytest.mark.slow
def test_lone_mnist1d_notebook_clones_and_runs_then_reuses(lone):
    source, work = lone
    shutil.copy(os.path.join(ROOT, "MNIST1D.ipynb"), work / "MNIST1D.ipynb")
    url = "file://" + source
    nb = _run(work / "MNIST1D.ipynb", work / "out1.ipynb", work, REPO_URL=url)
    clone = work / os.path.basename(source)
    assert (clone / ".git").is_dir() and (clone / "models" / "MNIST1D.keras").is_file()
    assert "nothing to install" in _cell_text(nb, 2) or "installing" not in _cell_text(nb, 2)
    (clone / "marker").write_text("the first clone")
    nb = _run(work / "MNIST1D.ipynb", work / "out2.ipynb", work, REPO_URL=url)
    assert (clone / "marker").is_file(), "the second run must reuse the clone"
    assert "installing" not in _cell_text(nb, 2)
    assert "using the repository at " + str(clone) in _cell_text(nb, 2).replace(os.path.realpath(str(clone)), str(clone))
    assert "running in the repository's folder" in _cell_text(nb, 2)


@pytest.mark.slow
def test_lone_xai_notebook_clones_and_runs(lone):
    source, work = lone
    shutil.copy(os.path.join(ROOT, "XAI_methods.ipynb"), work / "XAI_methods.ipynb")
    nb = _run(work / "XAI_methods.ipynb", work / "out_xai.ipynb", work, REPO_URL=source)
    clone = work / os.path.basename(source)
    assert (clone / "figures" / "xai_tables.md").is_file()
    assert "HMT tiles:" in _cell_text(nb, 2)


@pytest.mark.slow
def test_colab_links_from_a_github_remote(tmp_path):
    repo = snapshot_repo(tmp_path / "clone")
    subprocess.run(["git", "remote", "add", "origin", "git@github.com:someone/xai-cnn.git"], cwd=repo, check=True)
    out = subprocess.run([sys.executable, "tools/colab_links.py"], cwd=repo, capture_output=True, text=True, check=True)
    assert "README.md" in out.stdout
    readme = open(os.path.join(repo, "README.md")).read()
    for name in NOTEBOOKS:
        assert f"https://colab.research.google.com/github/someone/xai-cnn/blob/main/{name}" in readme
        nb = json.load(open(os.path.join(repo, name)))
        params = "".join(next(c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", []))["source"])
        assert 'REPO_URL = "https://github.com/someone/xai-cnn.git"' in params
        nbformat.validate(nbformat.read(os.path.join(repo, name), as_version=4))
    again = subprocess.run([sys.executable, "tools/colab_links.py"], cwd=repo, capture_output=True, text=True, check=True)
    assert "nothing" in again.stdout
    subprocess.run(["git", "remote", "set-url", "origin", "https://gitlab.com/a/b.git"], cwd=repo, check=True)
    bad = subprocess.run([sys.executable, "tools/colab_links.py"], cwd=repo, capture_output=True, text=True)
    assert bad.returncode != 0 and "not a GitHub URL" in bad.stderr


@pytest.mark.slow
def test_readme_shows_the_results_the_notebook_wrote():
    """The README's tables and claims are those of figures/xai_tables.md (tools/readme_results.py)."""
    out = subprocess.run([sys.executable, "tools/readme_results.py", "--check"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
