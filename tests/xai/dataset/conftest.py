"""The explain_dataset tests' shared fixtures: a tiny image model, images, both on disk for other
processes, and the comparison of two written files."""
import os

import numpy as np
import pytest

from tests.conftest import ROOT, tiny_conv2d
from xai.dataset.store import load_explanations

# child processes import the package and tests.dataset_helpers from the repository
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ROOT}


@pytest.fixture(scope="module")
def model2d():
    return tiny_conv2d()


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).integers(0, 256, size=(23, 12, 12, 3)).astype(np.float32)


@pytest.fixture(scope="module")
def saved(tmp_path_factory, model2d, images):
    """The tiny model and the images on disk, for other processes."""
    folder = tmp_path_factory.mktemp("saved")
    model2d.save(folder / "model.keras")
    np.save(folder / "x.npy", images)
    return folder


def same_file(a, b, rtol=1e-5, atol=1e-6):
    ra, rb = load_explanations(a), load_explanations(b)
    assert sorted(ra) == sorted(rb)
    for key in ra:
        if key == "attrs":
            continue
        if ra[key].dtype.kind == "f":
            np.testing.assert_allclose(ra[key], rb[key], rtol=rtol, atol=atol, err_msg=key)
        else:
            np.testing.assert_array_equal(ra[key], rb[key], err_msg=key)
