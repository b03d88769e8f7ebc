"""The explorer tests' files: a tiny image model's maps of 23 tiles by two methods, and a tiny
signal model's maps, written by explain_dataset."""
import numpy as np
import pytest

from tests.conftest import tiny_conv1d, tiny_conv2d
from xai.dataset import explain_dataset


@pytest.fixture(scope="module")
def tiles():
    return np.random.default_rng(0).integers(0, 256, size=(23, 12, 12, 3)).astype(np.uint8)


@pytest.fixture(scope="module")
def tile_files(tmp_path_factory, tiles):
    """{method: path} for Grad-CAM and the gradient on the 23 tiles, labels stored."""
    folder = tmp_path_factory.mktemp("maps")
    model = tiny_conv2d()
    labels = np.arange(23) % 4
    return {m: explain_dataset(model, (tiles.astype(np.float32), labels), m, str(folder / f"{m}.h5"), batch_size=8,
                               progress=False) for m in ("grad_cam", "saliency")}


@pytest.fixture(scope="module")
def signal_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("signals")
    x = np.random.default_rng(1).normal(size=(15, 16, 1)).astype(np.float32)
    return x, explain_dataset(tiny_conv1d(), x, "integrated_gradients", str(folder / "ig.h5"), batch_size=4,
                              progress=False, steps=8)
