"""The package as a user installs it: pyproject.toml agrees with requirements.txt, and `pip install .` gives
a working library outside the checkout."""
import os
import re
import subprocess
import sys
import tomllib

import pytest

from tests.conftest import ROOT
from xai.notebook import _requirements  # the one reader of requirements.txt (stdlib only)


def test_pyproject_dependencies_agree_with_requirements_txt():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        project = tomllib.load(f)["project"]
    declared = {re.split(r"[<>=!~\[; ]", d, maxsplit=1)[0].lower(): d.replace(" ", "")
                for d in project["dependencies"] + project["optional-dependencies"]["dev"]}
    assert declared == {name: line.replace(" ", "") for name, line in _requirements().items()}


def test_the_package_lists_every_subpackage_and_the_card_modules():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        setuptools = tomllib.load(f)["tool"]["setuptools"]
    assert setuptools["packages"]["find"]["include"] == ["xai", "xai.*"]
    roots = sorted(f[:-3] for f in os.listdir(ROOT) if f.endswith(".py"))
    assert sorted(setuptools["py-modules"]) == roots            # every root module, and at most four of them
    assert len(roots) <= 4
    for folder, _, files in os.walk(os.path.join(ROOT, "xai")):
        if any(f.endswith(".py") for f in files) and "__pycache__" not in folder:
            assert "__init__.py" in files, f"{folder} holds modules but no __init__.py: setuptools would leave it out"


USER_CODE = """
import os, sys
import numpy as np, keras
import xai
assert not xai.__file__.startswith({root!r}), xai.__file__          # the installed copy, not the checkout
model = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Conv2D(4, 3, activation="relu"),
                          keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3), keras.layers.Softmax()])
x = np.random.default_rng(0).uniform(0, 1, (2, 16, 16, 3)).astype(np.float32)
cam = xai.grad_cam(model, x)
ig = xai.integrated_gradients(model, x)
assert cam.shape == (2, 16, 16) and ig.shape == x.shape and np.isfinite(ig).all()
import xai_utils, mnist1d_utils, hmt_utils                             # the card's modules come along
print("explained", cam.shape, ig.shape)
"""


@pytest.mark.slow
def test_pip_install_gives_the_library_to_code_outside_the_checkout(tmp_path):
    """A fresh virtual environment; `pip install --no-deps .` (the dependencies come from this environment,
    through a .pth file, so the test needs no download of TensorFlow), then user code in another folder."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], check=True,
                          capture_output=True, text=True).stdout.strip()
    ours = [p for p in sys.path if p.endswith("site-packages") and os.path.isdir(os.path.join(p, "keras"))]
    with open(os.path.join(site, "dependencies.pth"), "w") as f:
        f.write("\n".join(ours) + "\n")
    snapshot = tmp_path / "checkout"
    from tests.conftest import snapshot_repo
    snapshot_repo(snapshot)                     # what a user would clone: tracked and untracked files, not ignored
    subprocess.run([python, "-m", "pip", "install", "--quiet", "--no-deps", str(snapshot)], check=True)
    user = tmp_path / "user"
    user.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run([python, "-c", USER_CODE.format(root=str(snapshot))], cwd=user, env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "explained (2, 16, 16) (2, 16, 16, 3)" in done.stdout
