"""explain_dataset: every data kind, the file's layout, resume after SIGKILL, refusals, shards,
devices and workers (tf.distribute), merge_shards and the command line."""
import json
import os
import signal
import socket
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest
from conftest import ROOT, tiny_conv1d, tiny_conv2d

import xai.dataset.explain as xd
import xai.dataset.store
import xai_utils as xu

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": os.pathsep.join([ROOT, os.path.join(ROOT, "tests")])}


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
    ra, rb = xd.load_explanations(a), xd.load_explanations(b)
    assert sorted(ra) == sorted(rb)
    for key in ra:
        if key == "attrs":
            continue
        if ra[key].dtype.kind == "f":
            np.testing.assert_allclose(ra[key], rb[key], rtol=rtol, atol=atol, err_msg=key)
        else:
            np.testing.assert_array_equal(ra[key], rb[key], err_msg=key)


def test_array_layout_and_values(tmp_path, model2d, images):
    out = xd.explain_dataset(model2d, images, "grad_cam", tmp_path / "a.h5", batch_size=5, progress=False)
    assert out == str(tmp_path / "a.h5") and not os.path.exists(out + ".parts")
    r = xd.load_explanations(out)
    np.testing.assert_allclose(r["maps"], xu.grad_cam(model2d, images), rtol=1e-5, atol=1e-6)
    probs = xu.predict_scores(model2d, images, score="probability")
    np.testing.assert_allclose(r["probabilities"], probs, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(r["class_index"], probs.argmax(1))
    np.testing.assert_array_equal(r["index"], np.arange(len(images)))
    a = r["attrs"]
    assert a["complete"] and a["method"] == "grad_cam" and a["n_examples"] == len(images)
    assert a["model_fingerprint"] == xd.model_fingerprint(model2d) and a["versions"]["h5py"]
    with h5py.File(out) as f:                                             # one self-contained, compressed file
        assert not f["maps"].is_virtual and f["maps"].compression == "gzip" and "label" not in f


def test_options_class_index_and_labels(tmp_path, model2d, images):
    labels = np.arange(len(images)) % 4
    out = xd.explain_dataset(model2d, (images, labels), "integrated_gradients", tmp_path / "ig.h5",
                             class_index="label", batch_size=6, progress=False, steps=8, method_batch_size=20)
    r = xd.load_explanations(out)
    np.testing.assert_array_equal(r["label"], labels)
    np.testing.assert_array_equal(r["class_index"], labels)
    np.testing.assert_allclose(r["maps"], xu.integrated_gradients(model2d, images, labels, steps=8),
                               rtol=1e-4, atol=1e-5)
    assert r["attrs"]["method_options"] == {"steps": 8}
    per_example = np.arange(len(images)) % 3
    out = xd.explain_dataset(model2d, images, "grad_cam", tmp_path / "c.h5", class_index=per_example, progress=False)
    np.testing.assert_array_equal(xd.load_explanations(out)["class_index"], per_example)


def test_memmap_and_1d(tmp_path):
    model = tiny_conv1d()
    x = np.random.default_rng(1).normal(size=(30, 16, 1)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    mm = np.load(tmp_path / "x.npy", mmap_mode="r")
    out = xd.explain_dataset(model, mm, "rise", tmp_path / "r.h5", batch_size=7, progress=False, n_masks=16, seed=2)
    np.testing.assert_allclose(xd.load_explanations(out)["maps"], xu_rise(model, x), rtol=1e-5, atol=1e-6)


def xu_rise(model, x):
    import xai.methods.perturbation
    return xai.methods.perturbation.rise(model, x, n_masks=16, seed=2)


def test_tf_data_batched_unbatched_unknown_length(tmp_path, model2d, images):
    import tensorflow as tf
    labels = (np.arange(len(images)) % 4).astype(np.int64)
    ref = xd.load_explanations(xd.explain_dataset(model2d, (images, labels), "grad_cam", tmp_path / "ref.h5",
                                                  batch_size=4, progress=False))
    kinds = {
        "unbatched": tf.data.Dataset.from_tensor_slices((images, labels)),
        "batched": tf.data.Dataset.from_tensor_slices((images, labels)).batch(5),
        "unknown": tf.data.Dataset.from_tensor_slices((images, labels)).filter(lambda x, y: True),
    }
    for name, ds in kinds.items():
        r = xd.load_explanations(xd.explain_dataset(model2d, ds, "grad_cam", tmp_path / f"{name}.h5", batch_size=4,
                                                    progress=False))
        for key in ("maps", "class_index", "label", "index"):
            np.testing.assert_allclose(r[key], ref[key], rtol=1e-5, atol=1e-6, err_msg=f"{name}: {key}")
    inputs_only = tf.data.Dataset.from_tensor_slices(images)
    r = xd.load_explanations(xd.explain_dataset(model2d, inputs_only, "grad_cam", tmp_path / "x.h5", progress=False))
    assert "label" not in r and len(r["maps"]) == len(images)


def write_images(folder, images, names):
    from PIL import Image
    for img, name in zip(images, names):
        os.makedirs(os.path.dirname(folder / name), exist_ok=True)
        Image.fromarray(img.astype(np.uint8)).save(folder / name)


def test_folders_flat_and_one_folder_a_class(tmp_path, model2d, images):
    flat = tmp_path / "flat"
    write_images(flat, images, [f"t{i:02d}.png" for i in range(len(images))])
    r = xd.load_explanations(xd.explain_dataset(model2d, flat, "grad_cam", tmp_path / "f.h5", batch_size=4,
                                                progress=False))
    np.testing.assert_allclose(r["maps"], xu.grad_cam(model2d, images), rtol=1e-5, atol=1e-6)
    assert r["paths"].tolist() == [f"t{i:02d}.png" for i in range(len(images))] and "label" not in r

    classes = tmp_path / "classes"
    names = [f"{'01_A' if i % 2 else '02_B'}/t{i:02d}.png" for i in range(len(images))]
    write_images(classes, images, names)
    r = xd.load_explanations(xd.explain_dataset(model2d, classes, "grad_cam", tmp_path / "c.h5", batch_size=4,
                                                progress=False))
    order = np.argsort(names)                                             # sorted by class folder, then name
    assert r["paths"].tolist() == sorted(names)
    np.testing.assert_array_equal(r["label"], [0 if n.startswith("01_A") else 1 for n in sorted(names)])
    np.testing.assert_allclose(r["maps"], xu.grad_cam(model2d, images[order]), rtol=1e-5, atol=1e-6)
    assert r["attrs"]["data"]["classes"] == ["01_A", "02_B"]

    odd = tmp_path / "odd"
    write_images(odd, np.zeros((1, 10, 12, 3)), ["a.png"])
    with pytest.raises(ValueError, match=r"is \(10, 12, 3\), the model takes \(12, 12, 3\)"):
        xd.explain_dataset(model2d, odd, "grad_cam", tmp_path / "o.h5", progress=False)


def test_refusals_at_the_door(tmp_path, model2d, images, monkeypatch):
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
            xd.explain_dataset(**call)
        assert not os.path.exists(out), change
    monkeypatch.setattr(xd.shutil, "disk_usage", lambda path: type("U", (), {"free": 1000})())
    with pytest.raises(ValueError, match="GB free"):
        xd.explain_dataset(model2d, images, "grad_cam", out, progress=False)
    assert not os.path.exists(out)


def test_resume_refuses_another_model_method_option_or_batch(tmp_path, model2d, images):
    out = tmp_path / "r.h5"
    xd.explain_dataset(model2d, images, "integrated_gradients", out, batch_size=5, progress=False, steps=8)
    stamp = os.path.getmtime(out)
    xd.explain_dataset(model2d, images, "integrated_gradients", out, batch_size=5, progress=False, steps=8)
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
            xd.explain_dataset(**call)
    xd.explain_dataset(model2d, images, "integrated_gradients", out, batch_size=5, progress=False, steps=16,
                       resume=False)
    assert xd.load_explanations(out)["attrs"]["method_options"] == {"steps": 16}


@pytest.mark.slow                      # child processes
def test_killed_run_is_readable_and_resumes_to_the_same_file(tmp_path, saved, model2d, images):
    out = tmp_path / "k.h5"
    script = ("import keras, numpy as np, xai.dataset as xd, dataset_helpers as h\n"
              f"m = keras.models.load_model({str(saved / 'model.keras')!r})\n"
              f"xd.explain_dataset(m, np.load({str(saved / 'x.npy')!r}), h.slow_grad_cam, {str(out)!r},"
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
    import dataset_helpers

    with h5py.File(out) as f:                                             # plain h5py reads the killed run
        done = f["maps"].shape[0]
        assert done >= 6 and done % 2 == 0 and not f.attrs["complete"]
        np.testing.assert_array_equal(f["index"][:], np.arange(done))
        np.testing.assert_allclose(f["maps"][:], xu.grad_cam(model2d, images[:done]), rtol=1e-5, atol=1e-6)
    open(os.path.join(parts, ".tmp-half-written.h5"), "wb").write(b"\0" * 100)   # a write cut short
    xd.explain_dataset(model2d, images, dataset_helpers.slow_grad_cam, out, batch_size=2, progress=False, delay=0.25)
    assert not os.path.exists(parts)
    xd.explain_dataset(model2d, images, dataset_helpers.slow_grad_cam, tmp_path / "whole.h5", batch_size=2,
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
        xd.explain_dataset(model2d, images, "grad_cam", out, batch_size=4, progress=False)
    with h5py.File(out) as f:
        assert f["maps"].shape[0] == 8
    monkeypatch.setattr(xai.dataset.store, "write_part", real)
    xd.explain_dataset(model2d, images, "grad_cam", out, batch_size=4, progress=False)
    np.testing.assert_allclose(xd.load_explanations(out)["maps"], xu.grad_cam(model2d, images), rtol=1e-5, atol=1e-6)


def test_shards_merge_to_the_single_run(tmp_path, model2d, images):
    whole = xd.explain_dataset(model2d, images, "grad_cam", tmp_path / "whole.h5", batch_size=4, progress=False)
    shards = [xd.explain_dataset(model2d, images, "grad_cam", xd.shard_path(str(tmp_path / "s.h5"), i, 3),
                                 batch_size=4, shard=(i, 3), progress=False) for i in range(3)]
    assert [len(xd.load_explanations(s)["index"]) for s in shards] == [8, 8, 7]
    same_file(xd.merge_shards(shards, tmp_path / "merged.h5"), whole)
    with pytest.raises(ValueError, match="each of 0..n-1"):
        xd.merge_shards(shards[:2], tmp_path / "m2.h5")
    with pytest.raises(ValueError, match="each of 0..n-1"):
        xd.merge_shards(shards + shards[:1], tmp_path / "m3.h5")
    other = xd.explain_dataset(model2d, images, "grad_cam", tmp_path / "o.h5", batch_size=4, shard=(2, 3),
                               progress=False, layer="k1")
    with pytest.raises(ValueError, match="differ in method_options"):
        xd.merge_shards(shards[:2] + [other], tmp_path / "m4.h5")


@pytest.mark.slow                      # child processes
def test_two_logical_devices_equal_one(tmp_path, saved):
    script = f"""
import json, keras, numpy as np, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import xai.dataset.explain as xd
import xai.dataset.store
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
    model = keras.models.load_model({str(saved / 'model.keras')!r})
x = np.load({str(saved / 'x.npy')!r})
for name, s in (("two", strategy), ("one", None)):
    xd.explain_dataset(model, x, "integrated_gradients", {str(tmp_path)!r} + f"/{{name}}.h5", batch_size=6,
                       strategy=s, progress=False, steps=8)
import xai.dataset.runner
print(json.dumps(xai.dataset.runner.devices(strategy)))
"""
    run = subprocess.run([sys.executable, "-c", script], env=ENV, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert len(json.loads(run.stdout.strip().splitlines()[-1])) == 2
    same_file(tmp_path / "two.h5", tmp_path / "one.h5")


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


@pytest.mark.slow                      # child processes
def test_two_workers_and_the_command_line(tmp_path, saved, model2d, images):
    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    command = [sys.executable, "-m", "xai.dataset", "--model", str(saved / "model.keras"), "--data",
               str(saved / "x.npy"), "--method", "integrated_gradients", "--option", "steps=8", "--out",
               str(tmp_path / "w.h5"), "--batch-size", "4", "--strategy", "multi-worker", "--no-progress"]
    procs = [subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**ENV, "TF_CONFIG": json.dumps({"cluster": cluster,
                                                                   "task": {"type": "worker", "index": i}})})
             for i in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (_, stderr) in zip(procs, outs):
        assert p.returncode == 0, stderr[-3000:]
    shards = [xd.shard_path(str(tmp_path / "w.h5"), i, 2) for i in range(2)]
    assert [o[0].strip().splitlines()[-1] for o in outs] == shards
    assert xd.main(["merge", "--out", str(tmp_path / "merged.h5")] + shards) == 0
    single = xd.explain_dataset(model2d, images, "integrated_gradients", tmp_path / "one.h5", batch_size=4,
                                progress=False, steps=8)
    same_file(tmp_path / "merged.h5", single)
    help_text = subprocess.run([sys.executable, "-m", "xai.dataset", "--help"], cwd=ROOT, env=ENV,
                               capture_output=True, text=True)
    assert help_text.returncode == 0 and "--method" in help_text.stdout and "merge" in help_text.stdout


def test_interrupted_before_the_last_step_finishes_on_resume(tmp_path, model2d, images, monkeypatch):
    out = tmp_path / "i.h5"
    real = xai.dataset.store.consolidate

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(xai.dataset.store, "consolidate", interrupted)
    with pytest.raises(KeyboardInterrupt):
        xd.explain_dataset(model2d, images, "grad_cam", out, batch_size=4, progress=False)
    with h5py.File(out) as f:                                             # every batch is there, virtually
        assert f["maps"].is_virtual and f["maps"].shape[0] == 24 and not f.attrs["complete"]
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".tmp-")]
    monkeypatch.setattr(xai.dataset.store, "consolidate", real)
    xd.explain_dataset(model2d, images, "grad_cam", out, batch_size=4, progress=False)   # nothing left but the end
    r = xd.load_explanations(out)
    assert r["attrs"]["complete"] and len(r["maps"]) == len(images)
    np.testing.assert_allclose(r["maps"], xu.grad_cam(model2d, images), rtol=1e-5, atol=1e-6)


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
        xd.explain_dataset(model2d, images, "grad_cam", tmp_path / "a.h5", batch_size=4, progress=False)
    restore()
    with pytest.raises(ValueError, match="other data: examples 8..11"):
        xd.explain_dataset(model2d, changed, "grad_cam", tmp_path / "a.h5", batch_size=4, progress=False)
    # a complete file, asked for again with other data of the same kind and length
    ds = tf.data.Dataset.from_tensor_slices(images)
    xd.explain_dataset(model2d, ds, "grad_cam", tmp_path / "t.h5", batch_size=4, progress=False)
    with pytest.raises(ValueError, match="other data"):
        xd.explain_dataset(model2d, tf.data.Dataset.from_tensor_slices(images + 5), "grad_cam", tmp_path / "t.h5",
                           batch_size=4, progress=False)
    # a pipeline that reshuffles cannot resume
    shuffled = tf.data.Dataset.from_tensor_slices(images).shuffle(len(images), seed=None)
    restore = stop_after(monkeypatch, 2)
    with pytest.raises(OSError):
        xd.explain_dataset(model2d, shuffled, "grad_cam", tmp_path / "s.h5", batch_size=4, progress=False)
    restore()
    with pytest.raises(ValueError, match="without reshuffling"):
        xd.explain_dataset(model2d, shuffled, "grad_cam", tmp_path / "s.h5", batch_size=4, progress=False)


def test_more_refusals(tmp_path, model2d, images):
    import tensorflow as tf
    out = tmp_path / "x.h5"
    call = dict(model=model2d, data=images, method="grad_cam", out=out, progress=False, batch_size=4)

    def refused(message, **change):
        with pytest.raises(ValueError, match=message):
            xd.explain_dataset(**{**call, **change})
        assert not os.path.exists(out)
    refused("returned maps of shape", method=lambda m, x, c: np.zeros((1, 12, 12), np.float32))
    refused("returned maps of shape", method=lambda m, x, c: np.zeros(len(x), np.float32))
    refused("non-finite maps", method=lambda m, x, c: np.full((len(x), 12, 12), np.nan, np.float32))
    refused("unknown option", bogus=1)
    refused("at most that many shards", shard=(0, 24))
    refused("class_index has 5 entries", class_index=np.zeros(5, int))
    refused("out of range", class_index=4)
    refused("labels range over", data=(images, np.full(len(images), 9)), class_index="label")
    refused("infinite", data=tf.data.Dataset.from_tensor_slices(images).repeat())
    refused("one-hot", data=tf.data.Dataset.from_tensor_slices((images, np.eye(4)[np.arange(23) % 4])))
    refused("integer class indices", data=tf.data.Dataset.from_tensor_slices((images, np.ones(23))))
    os.makedirs(tmp_path / "folder.h5")
    refused("is a folder", out=tmp_path / "folder.h5")
    with xd._exclusive(str(out)):                                        # another run holds the file
        with pytest.raises(ValueError, match="another run is writing"):
            xd.explain_dataset(**call)


def test_odd_file_names_palette_images_and_architecture(tmp_path, model2d, images):
    import keras
    from PIL import Image
    out = xd.explain_dataset(model2d, images, "grad_cam", tmp_path / "a%d 50%.h5", batch_size=4, progress=False)
    assert len(xd.load_explanations(out)["maps"]) == len(images)
    folder = tmp_path / "palette"
    os.makedirs(folder)
    rgb = images[0].astype(np.uint8)
    Image.fromarray(rgb).convert("P", palette=Image.ADAPTIVE, colors=8).save(folder / "p.png")
    r = xd.load_explanations(xd.explain_dataset(model2d, folder, "grad_cam", tmp_path / "p.h5", progress=False))
    colours = np.asarray(Image.open(folder / "p.png").convert("RGB"), np.float32)[None]
    np.testing.assert_allclose(r["maps"], xu.grad_cam(model2d, colours), rtol=1e-5, atol=1e-6)
    Image.fromarray(np.zeros((12, 12), np.uint16)).save(tmp_path / "palette" / "q.png")
    with pytest.raises(ValueError, match="mode"):
        xd.explain_dataset(model2d, folder, "grad_cam", tmp_path / "q.h5", progress=False)

    def build(pooling):
        x = keras.Input((16, 1))
        h = keras.layers.Conv1D(3, 3, kernel_initializer=keras.initializers.Ones())(x)
        h = pooling()(h)
        return keras.Model(x, keras.layers.Dense(2, kernel_initializer=keras.initializers.Ones())(h))
    mean, top = build(keras.layers.GlobalAveragePooling1D), build(keras.layers.GlobalMaxPooling1D)
    assert xd.model_fingerprint(mean) != xd.model_fingerprint(top)
    assert xd.model_fingerprint(mean) == xd.model_fingerprint(build(keras.layers.GlobalAveragePooling1D))


def test_merge_checks_the_whole_data(tmp_path, model2d, images):
    import tensorflow as tf
    a = xd.explain_dataset(model2d, tf.data.Dataset.from_tensor_slices(images), "grad_cam",
                           xd.shard_path(str(tmp_path / "m.h5"), 0, 2), shard=(0, 2), progress=False)
    b = xd.explain_dataset(model2d, tf.data.Dataset.from_tensor_slices(images[:-1]), "grad_cam",
                           xd.shard_path(str(tmp_path / "m.h5"), 1, 2), shard=(1, 2), progress=False)
    with pytest.raises(ValueError, match="differ in n_total"):
        xd.merge_shards([a, b], tmp_path / "all.h5")


@pytest.mark.slow                      # child processes
def test_command_line_errors(tmp_path, saved):
    base = ["--model", str(saved / "model.keras"), "--data", str(saved / "x.npy"), "--out", str(tmp_path / "c.h5")]
    for extra, message in ((["--method", "grad_cam", "--shard", "5/4"], "0 <= I < N"),
                           (["--method", "grad_cam", "--class-index", "foo"], "--class-index"),
                           (["--method", "nope"], "--method must be one of"),
                           (["--method", "grad_cam", "--option", "bogus=3"], "unknown option")):
        run = subprocess.run([sys.executable, "-m", "xai.dataset"] + base + extra, cwd=ROOT, env=ENV,
                             capture_output=True, text=True)
        assert run.returncode == 2 and message in run.stderr, (extra, run.stderr[-500:])
        assert "Traceback" not in run.stderr


OPTIONS = {"integrated_gradients": {"steps": 4}, "rise": {"n_masks": 16, "seed": 1}, "smoothgrad": {"samples": 3},
           "smoothgrad_squared": {"samples": 3}, "vargrad": {"samples": 3}, "noise_tunnel": {"samples": 3},
           "expected_gradients": {"samples": 4}}


@pytest.mark.parametrize("name", sorted(xd.METHODS))
def test_every_method_by_name(tmp_path, model2d, images, name):
    options = dict(OPTIONS.get(name, {}))
    if name == "expected_gradients":
        options["references"] = images[:5]
    out = xd.explain_dataset(model2d, images[:7], name, tmp_path / f"{name}.h5", batch_size=3, progress=False,
                             **options)
    want = xd.method_function(name)(model2d, images[:7], xu.predict_scores(model2d, images[:7]).argmax(1), **options)
    np.testing.assert_allclose(xd.load_explanations(out)["maps"], want, rtol=1e-4, atol=1e-5)
