"""Each notebook runs top to bottom in QUICK mode, into a temporary folder; any cell error fails."""
import os

import nbformat
import papermill
import pytest

from conftest import ROOT


def _run(name, tmp_path, **parameters):
    out = tmp_path / name
    papermill.execute_notebook(os.path.join(ROOT, name), str(out), parameters=dict(QUICK=True, **parameters),
                               cwd=ROOT, kernel_name="python3", progress_bar=False)
    nb = nbformat.read(str(out), as_version=4)
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    return nb


def _parameters_cell_is_second(name):
    nb = nbformat.read(os.path.join(ROOT, name), as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "parameters" in code[1].metadata.get("tags", []), f"{name}: the second code cell must be tagged 'parameters'"
    assert "import" in code[0].source


@pytest.mark.parametrize("name", ["MNIST1D.ipynb", "HMT.ipynb", "XAI_methods.ipynb"])
def test_committed_notebook_layout(name):
    _parameters_cell_is_second(name)
    nb = nbformat.read(os.path.join(ROOT, name), as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.get("outputs") is not None for c in code)
    assert "papermill" not in nb.metadata, "strip machine-specific metadata: python tools/clean_notebook.py"
    assert any(c.get("outputs") for c in code), f"{name} is committed without outputs"


def test_mnist1d_notebook_quick(tmp_path):
    _run("MNIST1D.ipynb", tmp_path, MODEL_DIR=str(tmp_path / "models"), FIGURE_DIR=str(tmp_path / "figures"))
    assert (tmp_path / "models" / "MNIST1D.keras").is_file()
    assert (tmp_path / "figures" / "mnist1d_examples.png").is_file()


def test_hmt_notebook_quick(tmp_path):
    _run("HMT.ipynb", tmp_path, MODEL_DIR=str(tmp_path / "models"), FIGURE_DIR=str(tmp_path / "figures"))
    assert (tmp_path / "models" / "HMT.keras").is_file()
    assert (tmp_path / "figures" / "hmt_confusion.png").is_file()


def test_xai_notebook_quick(tmp_path):
    _run("XAI_methods.ipynb", tmp_path, FIGURE_DIR=str(tmp_path / "figures"))
    assert (tmp_path / "figures" / "xai_tables.md").is_file()
    assert (tmp_path / "figures" / "xai_mnist1d_correct.png").is_file()
