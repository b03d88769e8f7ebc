"""Shared fixtures: paths, the data sets (generated once a session) and tiny models; the rule that a
test using the real models or data carries the slow marker.

The test folders are packages (``tests/xai/methods/test_cam.py`` is ``tests.xai.methods.test_cam``), so
same-named files do not clash; helpers are imported as ``from tests.conftest import tiny_conv1d``.
"""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import pytest  # noqa: E402

SHARED = os.path.join(os.path.dirname(ROOT), "shared")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def shared_path(*parts):
    """A file under ../shared; in CI its absence fails the test instead of skipping it."""
    path = os.path.join(SHARED, *parts)
    if not os.path.exists(path):
        if IN_CI:
            pytest.fail(f"{path} is missing; CI must have ../shared beside the clone")
        pytest.skip(f"{path} not present on this machine")
    return path


def repo_path(*parts):
    return os.path.join(ROOT, *parts)


def snapshot_repo(dest) -> str:
    """A git repository at ``dest`` holding this working tree's files (tracked and untracked, not
    ignored) in one commit: what a user would clone, including changes not yet committed."""
    import shutil
    import subprocess
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True,
                           capture_output=True).stdout.decode().split("\0")
    for name in filter(None, files):
        if os.path.isfile(os.path.join(ROOT, name)):
            os.makedirs(os.path.dirname(os.path.join(dest, name)), exist_ok=True)
            shutil.copy2(os.path.join(ROOT, name), os.path.join(dest, name))
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com"]
    subprocess.run(git + ["init", "--quiet", "--initial-branch=main"], cwd=dest, check=True)
    subprocess.run(git + ["add", "-A"], cwd=dest, check=True)
    subprocess.run(git + ["commit", "--quiet", "-m", "snapshot"], cwd=dest, check=True)
    return str(dest)


def load_tool(name: str):
    """A script of tools/ (not a package) loaded as a module, for its tests."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(name, repo_path("tools", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def hmt_root():
    """The HMT tiles: $HMT_DIR, data/hmt (make data), or ../shared/data/hmt."""
    root = os.environ.get("HMT_DIR") or repo_path("data", "hmt")
    return root if os.path.isdir(root) else shared_path("data", "hmt")


@pytest.fixture(scope="session")
def mnist1d_data():
    import mnist1d_utils
    return mnist1d_utils.make_dataset()


@pytest.fixture(scope="session")
def hmt_data():
    import hmt_utils
    return hmt_utils.load_hmt(hmt_root(), progress=False)


@pytest.fixture(scope="session")
def mnist1d_model():
    import keras
    path = repo_path("models", "MNIST1D.keras")
    assert os.path.isfile(path), f"{path} is missing: run MNIST1D.ipynb (make reproduce)"
    return keras.models.load_model(path)


@pytest.fixture(scope="session")
def hmt_model():
    import keras
    path = repo_path("models", "HMT.keras")
    assert os.path.isfile(path), f"{path} is missing: run HMT.ipynb (make reproduce)"
    return keras.models.load_model(path)


# --- NumPy references for the explanation tests ---

def resize_linear_np(a, out_len):
    """Half-pixel-centre linear interpolation along axis 1 (what bilinear resize does), in NumPy."""
    import numpy as np
    n_in = a.shape[1]
    src = np.clip((np.arange(out_len) + 0.5) * n_in / out_len - 0.5, 0, n_in - 1)
    lo = np.floor(src).astype(int)
    hi = np.minimum(lo + 1, n_in - 1)
    frac = (src - lo).reshape((1, -1) + (1,) * (a.ndim - 2))
    return np.take(a, lo, axis=1) * (1 - frac) + np.take(a, hi, axis=1) * frac


def upsample_np(maps, spatial):
    """(B, t) -> (B, T) or (B, h, w) -> (B, H, W), as ``xai.maps.upsample`` does."""
    import numpy as np
    out = resize_linear_np(maps, spatial[0])
    if maps.ndim == 3:
        out = np.swapaxes(resize_linear_np(np.swapaxes(out, 1, 2), spatial[1]), 1, 2)
    return out


# --- tiny models for the explanation tests ---

def tiny_conv1d(seed=0, length=16, channels=1, classes=3, softmax="layer"):
    """Conv1D(4) -> ReLU -> Conv1D(6) -> GAP -> Dense -> softmax (a layer, the Dense's activation, or none)."""
    import keras
    from keras import layers
    init = lambda i: keras.initializers.GlorotUniform(seed=seed + i)  # noqa: E731
    x = keras.Input((length, channels))
    h = layers.Conv1D(4, 3, padding="same", activation="relu", kernel_initializer=init(0), name="c1")(x)
    h = layers.Conv1D(6, 3, strides=2, padding="same", activation="tanh", kernel_initializer=init(1), name="c2")(h)
    h = layers.GlobalAveragePooling1D()(h)
    act = "softmax" if softmax == "dense" else None
    h = layers.Dense(classes, activation=act, kernel_initializer=init(2),
                     bias_initializer=keras.initializers.RandomNormal(seed=seed + 3), name="out")(h)
    if softmax == "layer":
        h = layers.Softmax()(h)
    return keras.Model(x, h)


def tiny_conv2d(seed=0, size=12, channels=3, classes=4):
    """Rescaling -> Conv2D(4) -> MaxPool -> Conv2D(5) -> GAP -> Dense -> Softmax, as a Sequential."""
    import keras
    from keras import layers
    init = lambda i: keras.initializers.GlorotUniform(seed=seed + i)  # noqa: E731
    return keras.Sequential([
        keras.Input((size, size, channels)),
        layers.Rescaling(1 / 255.0),
        layers.Conv2D(4, 3, padding="same", activation="relu", kernel_initializer=init(0), name="k1"),
        layers.MaxPooling2D(2),
        layers.Conv2D(5, 3, padding="same", activation="relu", kernel_initializer=init(1), name="k2"),
        layers.GlobalAveragePooling2D(),
        layers.Dense(classes, kernel_initializer=init(2), name="logits"),
        layers.Softmax(),
    ])


# --- the fast tier: `make test-fast` runs `pytest -m "not slow"` ---

# Fixtures that load or run the real models and data whole: a test using one must carry
# @pytest.mark.slow itself (quick_run: tests/tools/test_hmt_slide_cv.py's run of the tool).
SLOW_FIXTURES = {"hmt_data", "hmt_model", "mnist1d_model", "quick_run"}


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: notebooks, keras.applications, the real models and data, processes "
                                       "(left out by `make test-fast`)")


def pytest_collection_modifyitems(config, items):
    """Refuse to run a test that uses a slow fixture without the slow marker: the marker is put on each
    test by hand, so that `make test-fast` cannot pick up an hour of work unnoticed."""
    unmarked = [f"{item.nodeid} (uses {', '.join(sorted(SLOW_FIXTURES & set(item.fixturenames)))})"
                for item in items
                if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())) and item.get_closest_marker("slow") is None]
    if unmarked:
        raise pytest.UsageError("these tests use the real models or data but are not marked slow; put "
                                "@pytest.mark.slow on each:\n  " + "\n  ".join(unmarked))
