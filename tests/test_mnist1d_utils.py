"""mnist1d_utils.py: the data set reproduces the reference pickle without touching the global random
state, its masks hold the signal, pickles load only plain data, the model and its training are
deterministic; on the real models, the accuracies recorded beside them."""
import json
import os
import pickle

import numpy as np
import pytest

import mnist1d_utils as m1d
from tests.conftest import repo_path, shared_path


def test_generator_reproduces_reference_pickle(mnist1d_data):
    ref = m1d.load_pickle_dataset(shared_path("data", "mnist1d", "MNIST1D.pkl"))
    assert np.abs(mnist1d_data["x"] - ref["x"]).max() <= 1e-12
    assert np.abs(mnist1d_data["x_test"] - ref["x_test"]).max() <= 1e-12
    np.testing.assert_array_equal(mnist1d_data["y"], ref["y"])
    np.testing.assert_array_equal(mnist1d_data["y_test"], ref["y_test"])
    np.testing.assert_array_equal(mnist1d_data["t"], ref["t"])


def test_generator_does_not_touch_global_random_state():
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    m1d.make_dataset(m1d.get_dataset_args(num_samples=50))
    np.testing.assert_array_equal(np.random.get_state()[1], before)


def test_other_seed_gives_other_data():
    a = m1d.make_dataset(m1d.get_dataset_args(num_samples=50, seed=1))
    b = m1d.make_dataset(m1d.get_dataset_args(num_samples=50, seed=2))
    assert not np.allclose(a["x"], b["x"])


def test_dataset_args_defaults_and_unknown_names():
    args = m1d.get_dataset_args()
    assert (args.num_samples, args.template_len, tuple(args.padding), args.max_translation,
            args.final_seq_length, args.seed) == (5000, 12, (36, 60), 48, 40, 42)
    with pytest.raises(ValueError, match="unknown MNIST-1D argument"):
        m1d.get_dataset_args(sead=1)


def test_masks_shape_dtype_nonempty_and_hold_the_signal(mnist1d_data):
    for key, xkey in (("mask", "x"), ("mask_test", "x_test")):
        mask, x = mnist1d_data[key], mnist1d_data[xkey]
        assert mask.dtype == bool and mask.shape == x.shape
        assert mask.sum(1).min() >= 1 and mask.sum(1).max() < x.shape[1]
        # the template carries much more energy than the noise filling the padding
        inside = (x ** 2)[mask].mean()
        outside = (x ** 2)[~mask].mean()
        assert inside > 2.5 * outside, (inside, outside)


def test_mask_matches_where_the_noiseless_template_lies():
    # with no noise and no shear the signal is exactly zero outside the mask (up to the 1e-8 eps)
    args = m1d.get_dataset_args(num_samples=100, corr_noise_scale=0.0, iid_noise_scale=0.0, shear_scale=0.0)
    data = m1d.make_dataset(args)
    x, mask = data["x"], data["mask"]
    x_raw = x * 1.0 - x[~mask].mean()           # undo the data set's centring
    assert np.abs(x_raw[~mask]).max() < 0.35 * np.abs(x_raw[mask]).max()
    assert (np.abs(x_raw) * ~mask).sum() < 0.2 * (np.abs(x_raw) * mask).sum()


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"echo pwned > {self.marker}",))


def test_restricted_unpickler_refuses_code(tmp_path):
    marker = str(tmp_path / "pickle_exploit")                  # the file the payload would write if it ran
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"x": np.zeros(3), "evil": _Exploit(marker)}))
    with pytest.raises(pickle.UnpicklingError, match="refusing to load"):
        m1d.load_pickle_dataset(path)
    assert not os.path.exists(marker)


def test_restricted_unpickler_loads_plain_data(tmp_path):
    path = tmp_path / "ok.pkl"
    data = {"x": np.arange(6.0).reshape(2, 3), "y": np.array([1, 2]), "x_test": np.zeros((1, 3)),
            "y_test": np.array([0]), "templates": {"t": [1.0, 2.0]}}
    path.write_bytes(pickle.dumps(data))
    out = m1d.load_pickle_dataset(path)
    np.testing.assert_array_equal(out["x"], data["x"])


def test_load_pickle_missing_file_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="make_dataset"):
        m1d.load_pickle_dataset(tmp_path / "absent.pkl")


def test_model_shapes_and_a_separate_softmax_layer():
    import keras
    model = m1d.build_model(width=8)
    assert model.input_shape == (None, 40, 1)
    assert model.output_shape == (None, 10)
    assert isinstance(model.layers[-1], keras.layers.Softmax)
    assert model.layers[-2].get_config()["activation"] == "linear"
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv1D)]
    assert convs[-1].output.shape[1] >= 10
    prob = model(np.zeros((2, 40, 1), np.float32)).numpy()
    np.testing.assert_allclose(prob.sum(-1), 1.0, rtol=1e-5)


def test_training_is_deterministic(mnist1d_data):
    small = {k: (v[:300] if k in ("x", "y", "mask") else v) for k, v in mnist1d_data.items()}
    cfg = m1d.TrainConfig(epochs=1, width=8, batch_size=64)
    a, info_a = m1d.train(small, cfg)
    b, _ = m1d.train(small, cfg)
    x = mnist1d_data["x_test"][:16, :, None].astype(np.float32)
    np.testing.assert_allclose(a.predict(x, verbose=0), b.predict(x, verbose=0), atol=1e-5)
    assert info_a["best_epoch"] == 1


@pytest.mark.slow
def test_saved_model_reaches_98_percent(mnist1d_data, mnist1d_model):
    x_test = mnist1d_data["x_test"][..., None].astype(np.float32)
    assert mnist1d_model.input_shape == (None, 40, 1) and mnist1d_model.output_shape == (None, 10)
    acc = np.mean(mnist1d_model.predict(x_test, verbose=0).argmax(-1) == mnist1d_data["y_test"])
    assert acc >= 0.98
    with open(repo_path("models", "MNIST1D.json")) as f:
        meta = json.load(f)
    assert abs(meta["test_accuracy"] - acc) < 1e-6
    assert {"data_args", "seed", "train_seconds", "versions", "val_accuracy"} <= set(meta)


def test_course_model_loads_and_scores_0877(mnist1d_data):
    import warnings

    import keras
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model = keras.models.load_model(shared_path("models", "course", "MNIST1D.h5"), compile=False)
    x_test = mnist1d_data["x_test"][..., None].astype(np.float32)
    acc = np.mean(model.predict(x_test, verbose=0).argmax(-1) == mnist1d_data["y_test"])
    assert abs(acc - 0.877) <= 0.001


def test_plot_examples_draws_a_panel_an_example_and_the_mask(mnist1d_data):
    import matplotlib
    matplotlib.use("Agg")
    fig = m1d.plot_examples(mnist1d_data["x"][:4], mnist1d_data["y"][:4], mnist1d_data["mask"][:4], n=4, ncols=2)
    assert len(fig.axes) == 4
    assert any(len(ax.patches) > 0 for ax in fig.axes)


@pytest.mark.parametrize("bad", [{"num_samples": 5}, {"num_samples": 100.5}, {"train_split": 1.0},
                                 {"padding": (60, 36)}, {"padding": (1,)}, {"max_translation": 0},
                                 {"max_translation": 1000}, {"iid_noise_scale": -1.0}, {"final_seq_length": 1},
                                 {"seed": -3}, {"template_len": 10}])
def test_impossible_dataset_arguments_are_refused(bad):
    with pytest.raises(ValueError, match=list(bad)[0]):
        m1d.get_dataset_args(**bad)


def test_make_dataset_refuses_what_get_dataset_args_did_not_make():
    with pytest.raises(TypeError, match="get_dataset_args"):
        m1d.make_dataset({"num_samples": 100})


@pytest.mark.parametrize("content", [b"", b"this is not a pickle", b"\x80\x04\x95"])
def test_unreadable_pickles_are_named(tmp_path, content):
    path = tmp_path / "broken.pkl"
    path.write_bytes(content)
    with pytest.raises((ValueError, pickle.UnpicklingError), match="broken.pkl"):
        m1d.load_pickle_dataset(path)
