"""xai_utils.py, the door the README and the course import through (``import xai_utils as xu``): it
re-exports names of the package, the very objects, and holds no logic of its own; the package never
imports it. What the names do is tested where they are defined (tests/xai/...)."""
import ast
import importlib
import pathlib

import xai_utils as xu
from tests.conftest import repo_path


def _door():
    with open(repo_path("xai_utils.py")) as f:
        return ast.parse(f.read())


def test_the_door_holds_no_logic_of_its_own():
    tree = _door()
    kinds = [type(node).__name__ for node in tree.body[1:]]              # after the docstring
    assert set(kinds) <= {"ImportFrom", "Assign"}, f"xai_utils.py holds {sorted(set(kinds))}: it only re-exports"
    assigned = [t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets]
    assert assigned == ["__all__"], assigned


def test_the_door_re_exports_the_very_objects_it_lists():
    imported = {alias.asname or alias.name: node.module for node in _door().body if isinstance(node, ast.ImportFrom)
                for alias in node.names if node.module != "__future__"}
    assert sorted(xu.__all__) == sorted(imported), "__all__ and the names imported differ"
    for name, module in imported.items():
        assert module.startswith("xai."), f"{name} comes from {module}, not from the package"
        assert getattr(xu, name) is getattr(importlib.import_module(module), name), f"xai_utils.{name} is not {module}.{name}"
    assert callable(xu.grad_cam) and callable(xu.integrated_gradients)   # the two the README's first example uses


def test_the_package_never_imports_its_own_door():
    package = pathlib.Path(repo_path("xai"))
    inside = [str(path.relative_to(package.parent)) for path in sorted(package.rglob("*.py"))
              if "import xai_utils" in path.read_text() or "from xai_utils" in path.read_text()]
    assert inside == [], f"modules of the package import xai_utils: {inside}; import from the defining module"
