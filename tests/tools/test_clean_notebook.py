"""tools/clean_notebook.py: papermill's injected parameters are folded into the parameters cell, so a committed
notebook shows the parameters its outputs came from, once."""
import importlib.util

import nbformat
import pytest

from tests.conftest import repo_path


def _cleaner():
    spec = importlib.util.spec_from_file_location("clean_notebook", repo_path("tools", "clean_notebook.py"))
    cleaner = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cleaner)
    return cleaner


def _notebook(injected: str):
    params = nbformat.v4.new_code_cell('# Parameters (literals only)\nQUICK = False   # a smoke run\nSEED = 0\nNAME = "a"')
    params.metadata["tags"] = ["parameters"]
    cells = [params]
    if injected is not None:
        cell = nbformat.v4.new_code_cell(f"# Parameters\n{injected}\n")
        cell.metadata["tags"] = ["injected-parameters"]
        cells.append(cell)
    cells.append(nbformat.v4.new_code_cell("print(QUICK)"))
    nb = nbformat.v4.new_notebook()
    nb.cells = cells
    return nb


def test_injected_values_replace_their_lines_and_the_injected_cell_goes():
    nb = _notebook('QUICK = True\nNAME = "b # not a comment"')
    _cleaner().fold_injected(nb)
    assert [c.source for c in nb.cells] == [
        '# Parameters (literals only)\nQUICK = True   # a smoke run\nSEED = 0\nNAME = "b # not a comment"', "print(QUICK)"]


def test_a_notebook_run_without_parameters_is_left_as_it_is():
    nb = _notebook(None)
    before = [c.source for c in nb.cells]
    _cleaner().fold_injected(nb)
    assert [c.source for c in nb.cells] == before


def test_an_injected_parameter_the_notebook_does_not_declare_is_refused():
    with pytest.raises(ValueError, match="'OTHER' is not in the parameters cell"):
        _cleaner().fold_injected(_notebook("OTHER = 1"))
