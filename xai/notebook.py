"""What a notebook's set-up cell calls once the repository is reachable (:func:`setup`): install only
what the runtime lacks, get the HMT tiles, and say where the notebook runs and on which devices.

Standard library only at import time, so it runs in a fresh Colab runtime before anything is
installed. It never replaces an installed TensorFlow, Keras or NumPy (Colab ships its own, and
replacing them forces a runtime restart); it prints every package it installs, and installs
nothing when everything is present, so running the set-up cell twice does nothing the second time.
"""
from __future__ import annotations

import importlib.metadata
import os
import re
import subprocess
import sys

__all__ = ["NOTEBOOK_PACKAGES", "setup", "missing_packages", "ensure_packages", "ensure_hmt", "describe_runtime"]

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))     # the repository: xai/ sits at its top
SHARED_HMT = os.path.join(ROOT, "..", "shared", "data", "hmt")
# Packages the notebooks import (distribution names as in requirements.txt); the test and
# notebook-running tools (pytest, papermill, jupyter) are left to the runtime.
NOTEBOOK_PACKAGES = ("tensorflow", "keras", "numpy", "scipy", "matplotlib", "h5py", "scikit-learn",
                     "pillow", "tqdm")
NEVER_REPLACE = ("tensorflow", "keras", "numpy")


def _requirements(path: str | None = None) -> dict[str, str]:
    """requirements.txt as {distribution name: full specifier line}."""
    path = os.path.join(ROOT, "requirements.txt") if path is None else path
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} is missing: xai.notebook sets up this repository's notebooks and reads the "
                                "repository's requirements.txt; run the notebooks from a checkout (or a clone that "
                                "the set-up cell makes), not from an installed copy of the package")
    specs = {}
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                name = re.split(r"[<>=!~\[; ]", line, maxsplit=1)[0].lower()
                specs[name] = line
    return specs


def missing_packages(packages=NOTEBOOK_PACKAGES) -> list[str]:
    """Distribution names among ``packages`` that are not installed at any version."""
    missing = []
    for name in packages:
        try:
            importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(name)
    return missing


def ensure_packages(packages=NOTEBOOK_PACKAGES, *, dry_run: bool = False) -> list[str]:
    """Install the missing ones among ``packages`` with requirements.txt's version ranges.

    An installed TensorFlow, Keras or NumPy is kept whatever its version (a warning says when it
    is outside the supported range). Returns the requirement lines installed (or, with
    ``dry_run``, that would be).
    """
    specs = _requirements()
    unknown = [p for p in packages if p not in specs]
    if unknown:
        raise ValueError(f"{unknown} are not in requirements.txt; expected some of {sorted(specs)}")
    todo = [specs[name] for name in missing_packages(packages)]
    for name in NEVER_REPLACE:
        if name in packages and name not in missing_packages((name,)):
            version = importlib.metadata.version(name)
            print(f"keeping the installed {name} {version} (requirements.txt: {specs[name]})")
    if todo and not dry_run:
        print("installing:", ", ".join(todo))
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *todo], check=True)
        importlib.invalidate_caches()
    elif not todo:
        print("every package the notebooks need is installed; nothing to install")
    return todo


def shown_path(path: str) -> str:
    """A path as a notebook prints it: relative to the working folder when inside it, so that a
    committed output names no machine's folders."""
    path = os.path.abspath(path)
    here = os.path.abspath(os.getcwd())
    return os.path.relpath(path, here) if path == here or path.startswith(here + os.sep) else path


def location() -> str:
    """Where the notebook runs, without a machine's folder names when it runs in the repository."""
    here = os.path.realpath(os.getcwd())
    if here == os.path.realpath(ROOT):
        return "running in the repository's folder"
    return f"running in {os.getcwd()}; the repository's modules come from {ROOT}"


def ensure_hmt(data_dir: str | None = None) -> str:
    """The folder holding HMT_train and HMT_test: ``data_dir``, else ``$HMT_DIR``, else ``data/hmt``
    in the repository (linked to ``../shared/data/hmt`` where that exists, as ``make data`` does,
    otherwise downloaded from Zenodo with the md5-checked :func:`hmt_utils.download_hmt`)."""
    for given, what in ((data_dir, "DATA_DIR"), (os.environ.get("HMT_DIR"), "$HMT_DIR")):
        if given:
            if not os.path.isdir(os.path.join(given, "HMT_train")):
                raise FileNotFoundError(f"{what}={given!r} holds no HMT_train folder; point it at the "
                                        "folder that holds HMT_train and HMT_test, or leave it unset "
                                        "to download the tiles")
            print(f"HMT tiles: {shown_path(given)} (from {what})")
            return given
    target = os.path.join(ROOT, "data", "hmt")
    if os.path.isdir(os.path.join(target, "HMT_train")):
        print("HMT tiles:", shown_path(target))
    elif os.path.isdir(os.path.join(SHARED_HMT, "HMT_train")) and not os.path.lexists(target):
        os.makedirs(os.path.dirname(target), exist_ok=True)
        link = os.path.relpath(SHARED_HMT, os.path.dirname(target))
        os.symlink(link, target)
        print("HMT tiles: linked", shown_path(target), "->", link)
    else:
        import hmt_utils  # needs numpy, tqdm: installed by now
        print("HMT tiles: downloading Zenodo record 53169 (md5-checked) into", shown_path(target))
        hmt_utils.download_hmt(target)
    return target


def describe_runtime() -> str:
    """One line: Python, TensorFlow, Keras and the devices TensorFlow will use."""
    import keras
    import tensorflow as tf
    gpus = tf.config.list_physical_devices("GPU")
    where = f"GPU ({', '.join(g.name for g in gpus)})" if gpus else "CPU (no GPU visible to TensorFlow)"
    return (f"Python {sys.version.split()[0]} | TensorFlow {tf.__version__} | Keras {keras.__version__} | "
            f"training and explanations run on: {where}")


def setup(data_dir: str | None = None, *, hmt: bool = False, install: bool = False) -> str | None:
    """The set-up cell's one call, once the repository is on the path: with ``install`` (a lone
    notebook that fetched the repository) install what the runtime lacks; say where the notebook
    runs and on which devices; with ``hmt``, find or fetch the HMT tiles (:func:`ensure_hmt`) and
    return their folder (else return ``data_dir`` as given)."""
    if install:
        print("using the repository at", ROOT)
        ensure_packages()
    print(location())
    if hmt:
        data_dir = ensure_hmt(data_dir)
    print(describe_runtime())
    return data_dir
