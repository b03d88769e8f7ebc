"""xai/__init__.py: each public name of `import xai` is the object its defining module holds, imported on use."""
import importlib
import subprocess
import sys

import pytest

import xai
from tests.conftest import ROOT


def test_every_public_name_is_the_defining_modules_object():
    for name, module in xai._PUBLIC.items():
        assert getattr(xai, name) is getattr(importlib.import_module(module), name), name
        assert name in importlib.import_module(module).__all__, f"{name} is not public in {module}"
    assert sorted(xai.__all__) == sorted(xai._PUBLIC)


def test_every_method_of_METHODS_is_a_public_name():
    assert set(xai.METHODS) <= set(xai.__all__)


def test_an_unknown_name_says_what_there_is():
    with pytest.raises(AttributeError, match="grad_cam"):
        _ = xai.no_such_method


def test_import_xai_loads_no_tensorflow():
    code = "import sys, xai; assert 'tensorflow' not in sys.modules; import xai.files, xai.notebook"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
