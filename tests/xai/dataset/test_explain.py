"""xai/dataset/explain.py: explain_dataset's file (layout, values, options, class indices, labels), its
refusals at the door, resuming after a kill, a failed write or an interruption (and refusing to resume
another call or other data), and every method of METHODS by name."""
import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

import xai.dataset.explain
import xai.dataset.store
from tests import dataset_helpers
from tests.conftest import ROOT, tiny_conv2d
from tests.xai.dataset.conftest import ENV, same_file
from xai.core import predict_scores
from xai.dataset.explain import explain_dataset, model_fingerprint
from xai.dataset.store import load_explanations
from xai.methods import METHODS, method_function
from xai.methods.cam import grad_cam
from xai.methods.integrated_gradients import integrated_gradients


def test_array_gives_the_layout_and_the_maps_of_the_method(tmp_path, model2d, images):
    out = explain_dataset(model2d, images, "grad_cam", tmp_path / "a.h5", batch_size=5, progress=False)
    assert out == str(tmp_path / "a.h5") and not os.path.exists(out + ".parts")
    r = load_explanations(out)
    np.testing.assert_allclose(r["maps"], grad_cam(model2d, images), rtol=1e-5, atol=1e-6)
    probs = predict_scores(model2d, images, score="probability")
    np.testing.assert_allclose(r["probabilities"], probs, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(r["class_index"], probs.argmax(1))
    np.testing.assert_array_equal(r["index"], np.arange(len(images)))
    a = r["attrs"]
    assert a["complete"] and a["method"] == "grad_cam" and a["n_examples"] == len(images)
    assert a["model_fingerprint"] == model_fingerprint(model2d) and a["versions"]["h5py"]
    with h5py.File(out) as f:                                             # one self-contained, compressed file
        assert not f["maps"].is_virtual and f["maps"].compression == "gzip" and "label" not in f


def test_options_class_index_and_labels_are_used_and_recorded(tmp_path, model2d, images):
    labels = np.arange(len(images)) % 4
    out = explain_dataset(model2d, (images, labels), "integrated_gradients", tmp_path / "ig.h5",
                             class_index="label", batch_size=6, progress=False, steps=8, method_batch_size=20)
    r = load_explanations(out)
    np.testing.assert_array_equal(r["label"], labels)
    np.testing.assert_array_equal(r["class_index"], labels)
    np.testing.assert_allclose(r["maps"], integrated_gradients(model2d, images, labels, steps=8),
                               rtol=1e-4, atol=1e-5)
    assert r["attrs"]["method_options"] == {"steps": 8}
    per_example = np.arange(len(images)) % 3
    out = explain_dataset(model2d, images, "grad_cam", tmp_path / "c.h5", class_index=per_example, progress=False)
    np.testing.assert_array_equal(load_explanations(out)["class_index"], per_example)


def test_bad_arguments_are_refused_at_the_door_and_leave_no_file(tmp_path, model2d, images, monkeypatch):
    out = tmp_path / "x.h5"
    cases = [
        (dict(method="no_such_method"), "unknown method"),
        (dict(data=images[:, :5]), "the model expects"),
        (dict(data=[1, 2]), "NumPy array"),
        (dict(data=tmp_path / "missing"), "does not exist"),
        (dict(batch_size=0), "batch_size"),
        (dict(shard=(2, 2)), "shard"),
        (dict(class_index="labels"), "class_index"),
        (dict(class_index="label"), "needs labels"),
        (dict(compression="zip"), "compression"),
        (dict(out=tmp_path / "no" / "x.h5"), "does not exist"),
        (dict(out="/proc/x.h5"), "cannot write"),
        (dict(steps=0, method="integrated_gradients"), "steps"),
        (dict(return_delta=True, method="integrated_gradients"), "return_delta"),
        (dict(layer=object()), "cannot be recorded"),
    ]
    for change, message in cases:
        call = dict(model=model2d, data=images, method="grad_cam", out=out, progress=False)
        call.update(change)
        with pytest.raises(ValueError, match=message):
            explain_dataset(**call)
        assert not os.path.exists(out), change
    monkeypatch.setattr(xai.dataset.explain.shutil, "disk_usage", lambda path: type("U", (), {"free": 1000})())
    with pytest.raises(ValueError, match="GB free"):
        explain_dataset(model2d, images, "grad_cam", out, progress=False)
    assert not os.path.exists(out)


def test_bad_methods_options_shards_classes_labels_and_outputs_are_refused(tmp_path, model2d, images):
    import tensorflow as tf
    out = tmp_path / "x.h5"
    call = dict(model=model2d, data=images, method="grad_cam", out=out, progress=False, batch_size=4)

    def refused(message, **change):
        with pytest.raises(ValueError, match=message):
            explain_dataset(**{**call, **change})
        assert not os.path.exists(out)
    refused("returned maps of shape", method=lambda m, x, c: np.zeros((1, 12, 12), np.float32))
    refused("returned maps of shape", method=lambda m, x, c: np.zeros(len(x), np.float32))
    refused("non-finite maps", method=lambda m, x, c: np.full((len(x), 12, 12), np.nan, np.float32))
    refused("unknown option", bogus=1)
    refused("at most that many shards", shard=(0, 24))
    refused("class_index has 5 entries", class_index=np.zeros(5, int))
    refused("out of range", class_index=4)
    refused("labels .* out of range", data=(images, np.full(len(images), 9)), class_index="label")
    refused("infinite", data=tf.data.Dataset.from_tensor_slices(images).repeat())
    refused("one-hot", data=tf.data.Dataset.from_tensor_slices((images, np.eye(4)[np.arange(23) % 4])))
    refused("integer class indices", data=tf.data.Dataset.from_tensor_slices((images, np.ones(23))))
    os.makedirs(tmp_path / "folder.h5")
    refused("is a folder", out=tmp_path / "folder.h5")
    with xai.dataset.explain._exclusive(str(out)):                                        # another run holds the file
        with pytest.raises(ValueError, match="another run is writing"):
            explain_dataset(**call)


def test_odd_file_names_palette_images_and_the_fingerprint_of_the_architecture(tmp_path, model2d, images):
    import keras
    from PIL import Image
    out = explain_dataset(model2d, images, "grad_cam", tmp_path / "a%d 50%.h5", batch_size=4, progress=False)
    assert len(load_explanations(out)["maps"]) == len(images)
    folder = tmp_path / "palette"
    os.makedirs(folder)
    rgb = images[0].astype(np.uint8)
    Image.fromarray(rgb).convert("P", palette=Image.ADAPTIVE, colors=8).save(folder / "p.png")
    r = load_explanations(explain_dataset(model2d, folder, "grad_cam", tmp_path / "p.h5", progress=False))
    colours = np.asarray(Image.open(folder / "p.png").convert("RGB"), np.float32)[None]
    np.testing.assert_allclose(r["maps"], grad_cam(model2d, colours), rtol=1e-5, atol=1e-6)
    Image.fromarray(np.zeros((12, 12), np.uint16)).save(tmp_path / "palette" / "q.png")
    with pytest.raises(ValueError, match="mode"):
        explain_dataset(model2d, folder, "grad_cam", tmp_path / "q.h5", progress=False)

    def build(pooling):
        x = keras.Input((16, 1))
        h = keras.layers.Conv1D(3, 3, kernel_initializer=keras.initializers.Ones())(x)
        h = pooling()(h)
        return keras.Model(x, keras.layers.Dense(2, kernel_initializer=keras.initializers.Ones())(h))
    mean, top = build(keras.layers.GlobalAveragePooling1D), build(keras.layers.GlobalMaxPooling1D)
    assert model_fingerprint(mean) != model_fingerprint(top)
    assert model_fingerprint(mean) == model_fingerprint(build(keras.layers.GlobalAveragePooling1D))


# --- resuming ---

def test_resume_refuses_another_model_method_option_or_batch(tmp_path, model2d, images):
    out = tmp_path / "r.h5"
    explain_dataset(model2d, images, "integrated_gradients", out, batch_size=5, progress=False, steps=8)
    stamp = os.path.getmtime(out)
    explain_dataset(model2d, images, "integrated_gradients", out, batch_size=5, progress=False, steps=8)
    assert os.path.getmtime(out) == stamp                                 # complete: nothing to do
    changes = [(dict(model=tiny_conv2d(seed=5)), "model_fingerprint"),
               (dict(steps=16), "method_options"),
               (dict(method="grad_cam", steps=None), "method"),
               (dict(batch_size=6), "batch_size"),
               (dict(data=images[:-1]), "data")]
    for change, key in changes:
        call = dict(model=model2d, data=images, method="integrated_gradients", out=out, batch_size=5,
                    progress=False, steps=8)
        call.update(change)
        if call["steps"] is None:
            del call["steps"]
        with pytest.raises(ValueError, match=f"different call.*{key}: file has"):
            explain_dataset(**call)
    explain_dataset(model2d, images, "integrated_gradients", out, batch_size=5, progress=False, steps=16,
                       resume=False)
    assert load_explanations(out)["attrs"]["method_options"] == {"steps": 16}


@pytest.mark.slow                      # child processes
def test_killed_run_is_readable_and_resumes_to_the_same_file(tmp_path, saved, model2d, images):
    out = tmp_path / "k.h5"
    script = ("import keras, numpy as np, tests.dataset_helpers as h\nfrom xai.dataset import explain_dataset\n"
              f"m = keras.models.load_model({str(saved / 'model.keras')!r})\n"
              f"explain_dataset(m, np.load({str(saved / 'x.npy')!r}), h.slow_grad_cam, {str(out)!r},"
              " batch_size=2, progress=False, delay=0.25)\n")
    proc = subprocess.Popen([sys.executable, "-c", script], env=ENV, cwd=ROOT)
    parts = str(out) + ".parts"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        # completed parts only: a part being written is a ".tmp-..." file until it is renamed
        if os.path.isdir(parts) and len([p for p in os.listdir(parts) if p[:-3].isdigit()]) >= 3:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with h5py.File(out) as f:                                             # plain h5py reads the killed run
        done = f["maps"].shape[0]
        assert done >= 6 and done % 2 == 0 and not f.attrs["complete"]
        np.testing.assert_array_equal(f["index"][:], np.arange(done))
        np.testing.assert_allclose(f["maps"][:], grad_cam(model2d, images[:done]), rtol=1e-5, atol=1e-6)
    open(os.path.join(parts, ".tmp-half-written.h5"), "wb").write(b"\0" * 100)   # a write cut short
    explain_dataset(model2d, images, dataset_helpers.slow_grad_cam, out, batch_size=2, progress=False, delay=0.25)
    assert not os.path.exists(parts)
    explain_dataset(model2d, images, dataset_helpers.slow_grad_cam, tmp_path / "whole.h5", batch_size=2,
                       progress=False, delay=0.0 + 0.25)
    same_file(out, tmp_path / "whole.h5", rtol=0, atol=0)


def test_a_failed_write_keeps_the_completed_batches(tmp_path, model2d, images, monkeypatch):
    out = tmp_path / "d.h5"
    real, calls = xai.dataset.store.write_part, []

    def full_disk(path, *args):
        calls.append(path)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        return real(path, *args)
    monkeypatch.setattr(xai.dataset.store, "write_part", full_disk)
    with pytest.raises(OSError, match="completed batches are kept"):
        explain_dataset(model2d, images, "grad_cam", out, batch_size=4, progress=False)
    with h5py.File(out) as f:
        assert f["maps"].shape[0] == 8
    monkeypatch.setattr(xai.dataset.store, "write_part", real)
    explain_dataset(model2d, images, "grad_cam", out, batch_size=4, progress=False)
    np.testing.assert_allclose(load_explanations(out)["maps"], grad_cam(model2d, images), rtol=1e-5, atol=1e-6)


def test_interrupted_before_the_last_step_finishes_on_resume(tmp_path, model2d, images, monkeypatch):
    out = tmp_path / "i.h5"
    real = xai.dataset.store.consolidate

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(xai.dataset.store, "consolidate", interrupted)
    with pytest.raises(KeyboardInterrupt):
        explain_dataset(model2d, images, "grad_cam", out, batch_size=4, progress=False)
    with h5py.File(out) as f:                                             # every batch is there, virtually
        assert f["maps"].is_virtual and f["maps"].shape[0] == 24 and not f.attrs["complete"]
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".tmp-")]
    monkeypatch.setattr(xai.dataset.store, "consolidate", real)
    explain_dataset(model2d, images, "grad_cam", out, batch_size=4, progress=False)   # nothing left but the end
    r = load_explanations(out)
    assert r["attrs"]["complete"] and len(r["maps"]) == len(images)
    np.testing.assert_allclose(r["maps"], grad_cam(model2d, images), rtol=1e-5, atol=1e-6)


def stop_after(monkeypatch, blocks):
    """Stop a run after ``blocks`` parts are written (a failed write: the run ends as a kill would)."""
    real, calls = xai.dataset.store.write_part, []

    def write(path, *args):
        if len(calls) == blocks:
            raise OSError(28, "No space left on device")
        calls.append(path)
        return real(path, *args)
    monkeypatch.setattr(xai.dataset.store, "write_part", write)
    return lambda: monkeypatch.setattr(xai.dataset.store, "write_part", real)


def test_resume_refuses_other_data(tmp_path, model2d, images, monkeypatch):
    import tensorflow as tf
    changed = images.copy()
    changed[9] += 1                                                       # one example in the middle
    restore = stop_after(monkeypatch, 3)
    with pytest.raises(OSError):
        explain_dataset(model2d, images, "grad_cam", tmp_path / "a.h5", batch_size=4, progress=False)
    restore()
    with pytest.raises(ValueError, match="other data: examples 8..11"):
        explain_dataset(model2d, changed, "grad_cam", tmp_path / "a.h5", batch_size=4, progress=False)
    # a complete file, asked for again with other data of the same kind and length
    ds = tf.data.Dataset.from_tensor_slices(images)
    explain_dataset(model2d, ds, "grad_cam", tmp_path / "t.h5", batch_size=4, progress=False)
    with pytest.raises(ValueError, match="other data"):
        explain_dataset(model2d, tf.data.Dataset.from_tensor_slices(images + 5), "grad_cam", tmp_path / "t.h5",
                           batch_size=4, progress=False)
    # a pipeline that reshuffles cannot resume
    shuffled = tf.data.Dataset.from_tensor_slices(images).shuffle(len(images), seed=None)
    restore = stop_after(monkeypatch, 2)
    with pytest.raises(OSError):
        explain_dataset(model2d, shuffled, "grad_cam", tmp_path / "s.h5", batch_size=4, progress=False)
    restore()
    with pytest.raises(ValueError, match="without reshuffling"):
        explain_dataset(model2d, shuffled, "grad_cam", tmp_path / "s.h5", batch_size=4, progress=False)


# --- every method ---

OPTIONS = {"integrated_gradients": {"steps": 4}, "rise": {"n_masks": 16, "seed": 1}, "smoothgrad": {"samples": 3},
           "smoothgrad_squared": {"samples": 3}, "vargrad": {"samples": 3}, "noise_tunnel": {"samples": 3},
           "expected_gradients": {"samples": 4}}


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_method_of_METHODS_by_name_gives_its_own_maps(tmp_path, model2d, images, name):
    options = dict(OPTIONS.get(name, {}))
    if name == "expected_gradients":
        options["references"] = images[:5]
    out = explain_dataset(model2d, images[:7], name, tmp_path / f"{name}.h5", batch_size=3, progress=False,
                             **options)
    want = method_function(name)(model2d, images[:7], predict_scores(model2d, images[:7]).argmax(1), **options)
    np.testing.assert_allclose(load_explanations(out)["maps"], want, rtol=1e-4, atol=1e-5)
