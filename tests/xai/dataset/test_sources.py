"""xai/dataset/sources.py: every kind of data explain_dataset reads (NumPy memory maps, tf.data batched,
unbatched or of unknown length, image folders flat or one folder a class) gives the maps of the arrays."""
import os

import numpy as np
import pytest

from tests.conftest import tiny_conv1d
from xai.dataset.explain import explain_dataset
from xai.dataset.store import load_explanations
from xai.methods.cam import grad_cam
from xai.methods.perturbation import rise


def test_a_memory_map_of_1d_signals_gives_the_maps_of_the_array(tmp_path):
    model = tiny_conv1d()
    x = np.random.default_rng(1).normal(size=(30, 16, 1)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    mm = np.load(tmp_path / "x.npy", mmap_mode="r")
    out = explain_dataset(model, mm, "rise", tmp_path / "r.h5", batch_size=7, progress=False, n_masks=16, seed=2)
    np.testing.assert_allclose(load_explanations(out)["maps"], rise(model, x, n_masks=16, seed=2), rtol=1e-5, atol=1e-6)


def test_tf_data_batched_unbatched_or_of_unknown_length_gives_the_maps_of_the_arrays(tmp_path, model2d, images):
    import tensorflow as tf
    labels = (np.arange(len(images)) % 4).astype(np.int64)
    ref = load_explanations(explain_dataset(model2d, (images, labels), "grad_cam", tmp_path / "ref.h5",
                                                  batch_size=4, progress=False))
    kinds = {
        "unbatched": tf.data.Dataset.from_tensor_slices((images, labels)),
        "batched": tf.data.Dataset.from_tensor_slices((images, labels)).batch(5),
        "unknown": tf.data.Dataset.from_tensor_slices((images, labels)).filter(lambda x, y: True),
    }
    for name, ds in kinds.items():
        r = load_explanations(explain_dataset(model2d, ds, "grad_cam", tmp_path / f"{name}.h5", batch_size=4,
                                                    progress=False))
        for key in ("maps", "class_index", "label", "index"):
            np.testing.assert_allclose(r[key], ref[key], rtol=1e-5, atol=1e-6, err_msg=f"{name}: {key}")
    inputs_only = tf.data.Dataset.from_tensor_slices(images)
    r = load_explanations(explain_dataset(model2d, inputs_only, "grad_cam", tmp_path / "x.h5", progress=False))
    assert "label" not in r and len(r["maps"]) == len(images)


def write_images(folder, images, names):
    from PIL import Image
    for img, name in zip(images, names):
        os.makedirs(os.path.dirname(folder / name), exist_ok=True)
        Image.fromarray(img.astype(np.uint8)).save(folder / name)


def test_image_folders_flat_or_one_folder_a_class_give_the_maps_labels_and_paths(tmp_path, model2d, images):
    flat = tmp_path / "flat"
    write_images(flat, images, [f"t{i:02d}.png" for i in range(len(images))])
    r = load_explanations(explain_dataset(model2d, flat, "grad_cam", tmp_path / "f.h5", batch_size=4,
                                                progress=False))
    np.testing.assert_allclose(r["maps"], grad_cam(model2d, images), rtol=1e-5, atol=1e-6)
    assert r["paths"].tolist() == [f"t{i:02d}.png" for i in range(len(images))] and "label" not in r

    classes = tmp_path / "classes"
    names = [f"{'01_A' if i % 2 else '02_B'}/t{i:02d}.png" for i in range(len(images))]
    write_images(classes, images, names)
    r = load_explanations(explain_dataset(model2d, classes, "grad_cam", tmp_path / "c.h5", batch_size=4,
                                                progress=False))
    order = np.argsort(names)                                             # sorted by class folder, then name
    assert r["paths"].tolist() == sorted(names)
    np.testing.assert_array_equal(r["label"], [0 if n.startswith("01_A") else 1 for n in sorted(names)])
    np.testing.assert_allclose(r["maps"], grad_cam(model2d, images[order]), rtol=1e-5, atol=1e-6)
    assert r["attrs"]["data"]["classes"] == ["01_A", "02_B"]

    odd = tmp_path / "odd"
    write_images(odd, np.zeros((1, 10, 12, 3)), ["a.png"])
    with pytest.raises(ValueError, match=r"is \(10, 12, 3\), the model takes \(12, 12, 3\)"):
        explain_dataset(model2d, odd, "grad_cam", tmp_path / "o.h5", progress=False)
