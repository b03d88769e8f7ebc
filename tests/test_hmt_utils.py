import hashlib
import http.server
import io
import json
import os
import threading
import zipfile

import numpy as np
import pytest
from conftest import repo_path, shared_path
from PIL import Image

import hmt_utils as hmt


def _tile(seed, shape=hmt.TILE_SHAPE):
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


def _make_layout(root, per_class=(2, 1), fmt="png"):
    for split, n in zip(hmt.SPLITS, per_class):
        for c, folder in enumerate(hmt.CLASS_FOLDERS):
            os.makedirs(root / split / folder, exist_ok=True)
            for i in range(n):
                Image.fromarray(_tile(100 * c + i)).save(root / split / folder / f"t{i}.{fmt}")
    return root


def test_load_small_layout_and_labels(tmp_path):
    root = _make_layout(tmp_path / "hmt", fmt="tif")
    (xt, yt), (xs, ys), names = hmt.load_hmt(str(root), cache_dir=str(tmp_path / "cache"), progress=False)
    assert xt.shape == (16, 150, 150, 3) and xt.dtype == np.uint8
    assert xs.shape == (8, 150, 150, 3)
    np.testing.assert_array_equal(yt, np.repeat(np.arange(8), 2))
    np.testing.assert_array_equal(ys, np.arange(8))
    np.testing.assert_array_equal(xt[0], _tile(0))                      # lossless, in sorted file order
    assert names == hmt.CLASS_NAMES


def test_cache_hit_and_rebuild_on_change(tmp_path):
    root = _make_layout(tmp_path / "hmt")
    cache = tmp_path / "cache"
    hmt.load_hmt(str(root), cache_dir=str(cache), progress=False)
    first = sorted(os.listdir(cache))
    assert len(first) == 1
    stamp = os.stat(cache / first[0]).st_mtime_ns
    hmt.load_hmt(str(root), cache_dir=str(cache), progress=False)         # hit: nothing rewritten
    assert sorted(os.listdir(cache)) == first and os.stat(cache / first[0]).st_mtime_ns == stamp
    changed = root / "HMT_test" / "01_TUMOR" / "t0.png"
    Image.fromarray(np.zeros(hmt.TILE_SHAPE, np.uint8)).save(changed)
    os.utime(changed, ns=(1, 1))
    (_, _), (xs, _), _ = hmt.load_hmt(str(root), cache_dir=str(cache), progress=False)
    assert len(os.listdir(cache)) == 2                                   # a new fingerprint
    assert xs[0].max() == 0


def test_cache_rebuilt_when_content_changes_but_size_and_mtime_do_not(tmp_path):
    root = _make_layout(tmp_path / "hmt", fmt="bmp")                    # BMP: size fixed by the shape
    cache = tmp_path / "cache"
    hmt.load_hmt(str(root), cache_dir=str(cache), progress=False)
    target = root / "HMT_test" / "02_STROMA" / "t0.bmp"
    before = os.stat(target)
    Image.fromarray(np.full(hmt.TILE_SHAPE, 7, np.uint8)).save(target)
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert os.stat(target).st_size == before.st_size and os.stat(target).st_mtime_ns == before.st_mtime_ns
    (_, _), (xs, _), _ = hmt.load_hmt(str(root), cache_dir=str(cache), progress=False)
    assert (xs[1] == 7).all()


def test_corrupt_or_truncated_cache_is_rebuilt(tmp_path):
    root = _make_layout(tmp_path / "hmt")
    cache = tmp_path / "cache"
    (xt, _), _, _ = hmt.load_hmt(str(root), cache_dir=str(cache), progress=False)
    path = cache / os.listdir(cache)[0]
    data = path.read_bytes()
    for broken in (data[: len(data) // 2], b"not a zip at all", b""):
        path.write_bytes(broken)
        (again, _), _, _ = hmt.load_hmt(str(root), cache_dir=str(cache), progress=False)
        np.testing.assert_array_equal(again, xt)
        assert path.read_bytes() == data or np.load(path)["x_train"].shape == xt.shape


def test_read_only_cache_folder_still_loads(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root ignores folder permissions")
    root = _make_layout(tmp_path / "hmt")
    cache = tmp_path / "cache"
    cache.mkdir()
    cache.chmod(0o500)
    try:
        with pytest.warns(UserWarning, match="without a cache"):
            (xt, _), _, _ = hmt.load_hmt(str(root), cache_dir=str(cache), progress=False)
        assert xt.shape[0] == 16 and os.listdir(cache) == []
    finally:
        cache.chmod(0o700)


def test_unwritable_cache_location_still_loads(tmp_path):
    root = _make_layout(tmp_path / "hmt")
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder should be")
    with pytest.warns(UserWarning, match="without a cache"):
        (xt, _), _, _ = hmt.load_hmt(str(root), cache_dir=str(blocker / "cache"), progress=False)
    assert xt.shape[0] == 16


def test_interrupted_cache_build_leaves_no_temporary_files(tmp_path, monkeypatch):
    root = _make_layout(tmp_path / "hmt")
    cache = tmp_path / "cache"

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(np, "savez_compressed", interrupted)
    with pytest.raises(KeyboardInterrupt):
        hmt.load_hmt(str(root), cache_dir=str(cache), progress=False)
    assert os.listdir(cache) == []


def test_data_fingerprint_follows_content():
    x = np.zeros((2, 3), np.uint8)
    a = hmt.data_fingerprint(x, np.arange(2))
    assert a == hmt.data_fingerprint(x.copy(), np.arange(2)) and len(a) == 20
    x[0, 0] = 1
    assert hmt.data_fingerprint(x, np.arange(2)) != a


def test_missing_root_says_make_data(tmp_path):
    with pytest.raises(hmt.HMTDataError, match="make data.*HMT_DIR"):
        hmt.load_hmt(str(tmp_path / "nowhere"), progress=False)


def test_missing_split(tmp_path):
    root = _make_layout(tmp_path / "hmt")
    os.rename(root / "HMT_test", root / "other")
    with pytest.raises(hmt.HMTDataError, match="HMT_test"):
        hmt.load_hmt(str(root), cache_dir=str(tmp_path / "c"), progress=False)


def test_missing_and_unexpected_class_folders(tmp_path):
    root = _make_layout(tmp_path / "hmt")
    os.rename(root / "HMT_train" / "08_EMPTY", root / "HMT_train" / "09_OTHER")
    with pytest.raises(hmt.HMTDataError, match=r"missing \['08_EMPTY'\], unexpected \['09_OTHER'\]"):
        hmt.load_hmt(str(root), cache_dir=str(tmp_path / "c"), progress=False)


def test_empty_class(tmp_path):
    root = _make_layout(tmp_path / "hmt")
    for f in os.listdir(root / "HMT_test" / "03_COMPLEX"):
        os.remove(root / "HMT_test" / "03_COMPLEX" / f)
    with pytest.raises(hmt.HMTDataError, match="03_COMPLEX.*empty"):
        hmt.load_hmt(str(root), cache_dir=str(tmp_path / "c"), progress=False)


def test_corrupt_file_is_named(tmp_path):
    root = _make_layout(tmp_path / "hmt")
    bad = root / "HMT_train" / "05_DEBRIS" / "t1.png"
    bad.write_bytes(b"not an image at all")
    with pytest.raises(hmt.HMTDataError, match="t1.png.*corrupt"):
        hmt.load_hmt(str(root), cache_dir=str(tmp_path / "c"), progress=False)


@pytest.mark.parametrize("image", [np.zeros((100, 150, 3), np.uint8), np.zeros((150, 150), np.uint8),
                                   np.zeros((150, 150, 4), np.uint8)])
def test_wrong_size_or_mode_is_named(tmp_path, image):
    root = _make_layout(tmp_path / "hmt")
    Image.fromarray(image).save(root / "HMT_train" / "02_STROMA" / "t0.png")
    with pytest.raises(hmt.HMTDataError, match="t0.png.*expected a \\(150, 150, 3\\)"):
        hmt.load_hmt(str(root), cache_dir=str(tmp_path / "c"), progress=False)


def test_default_root_follows_hmt_dir(monkeypatch):
    monkeypatch.setenv("HMT_DIR", "/somewhere/hmt")
    assert hmt.default_root() == "/somewhere/hmt"
    monkeypatch.delenv("HMT_DIR")
    assert hmt.default_root().endswith(os.path.join("data", "hmt"))


# --- download, offline, from a local server ---

def _make_zip(per_class=4):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for c, folder in enumerate(hmt.CLASS_FOLDERS):
            for i in range(per_class):
                png = io.BytesIO()
                Image.fromarray(_tile(10 * c + i)).save(png, format="TIFF")
                z.writestr(f"{hmt.ZIP_FOLDER}/{folder}/{c}_{i}.tif", png.getvalue())
    return buf.getvalue()


@pytest.fixture
def server():
    """A local HTTP server: /ok serves the zip, /short announces more bytes than it sends."""
    payload = _make_zip()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "application/zip")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload if self.path == "/ok" else payload[: len(payload) // 3])

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", hashlib.md5(payload).hexdigest()
    httpd.shutdown()


def test_download_success_splits_deterministically(tmp_path, server):
    base, md5 = server
    dest = hmt.download_hmt(str(tmp_path / "hmt"), url=base + "/ok", md5=md5, test_per_class=1, progress=False)
    for folder in hmt.CLASS_FOLDERS:
        assert len(os.listdir(os.path.join(dest, "HMT_train", folder))) == 3
        assert len(os.listdir(os.path.join(dest, "HMT_test", folder))) == 1
    (xt, yt), (xs, ys), _ = hmt.load_hmt(dest, cache_dir=str(tmp_path / "c"), progress=False)
    assert xt.shape == (24, 150, 150, 3) and xs.shape == (8, 150, 150, 3)
    again = hmt.download_hmt(str(tmp_path / "hmt2"), url=base + "/ok", md5=md5, test_per_class=1, progress=False)
    for folder in hmt.CLASS_FOLDERS:
        assert os.listdir(os.path.join(dest, "HMT_test", folder)) == os.listdir(os.path.join(again, "HMT_test", folder))
    assert [p for p in os.listdir(tmp_path) if p.startswith(".hmt-download")] == []


def test_download_checksum_mismatch_leaves_nothing(tmp_path, server):
    base, _ = server
    with pytest.raises(hmt.HMTDataError, match="checksum mismatch"):
        hmt.download_hmt(str(tmp_path / "hmt"), url=base + "/ok", md5="0" * 32, progress=False)
    assert os.listdir(tmp_path) == []


def test_download_cut_short_leaves_nothing(tmp_path, server):
    base, md5 = server
    with pytest.raises(hmt.HMTDataError):
        hmt.download_hmt(str(tmp_path / "hmt"), url=base + "/short", md5=md5, progress=False, timeout=5)
    assert os.listdir(tmp_path) == []


def test_download_refuses_existing_destination(tmp_path):
    (tmp_path / "hmt").mkdir()
    with pytest.raises(hmt.HMTDataError, match="already exists"):
        hmt.download_hmt(str(tmp_path / "hmt"), url="http://127.0.0.1:9/none", progress=False)


# --- the model ---

def test_model_shapes_softmax_and_raw_pixel_input():
    import keras
    model = hmt.build_model(width=8)
    assert model.input_shape == (None, 150, 150, 3) and model.output_shape == (None, 8)
    assert isinstance(model.layers[-1], keras.layers.Softmax)
    assert model.layers[-2].get_config()["activation"] == "linear"
    assert isinstance(model.layers[1], keras.layers.Rescaling)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert tuple(convs[-1].output.shape[1:3]) == (12, 12)                # valid convolutions: no padding
    assert all(c.get_config()["padding"] == "valid" for c in convs)
    assert tuple(hmt.build_model(padding="same").layers[-5].output.shape[1:3]) == (18, 18)
    with pytest.raises(ValueError, match="padding"):
        hmt.build_model(padding="reflect")
    assert hmt.build_model().count_params() <= 1_000_000
    prob = model(np.full((2, 150, 150, 3), 255.0, np.float32)).numpy()
    assert np.isfinite(prob).all()
    np.testing.assert_allclose(prob.sum(-1), 1.0, rtol=1e-5)


def test_augmentation_keeps_range_and_shape():
    rng = np.random.default_rng(0)
    xb = _tile(1).astype(np.float32)[None].repeat(8, 0)
    out = hmt.augment_tiles(xb, rng)
    assert out.shape == xb.shape and out.min() >= 0 and out.max() <= 255
    # the 8 dihedral transforms of one tile are 8 distinct tiles
    d = hmt._dihedral(xb, np.arange(8))
    assert len({arr.tobytes() for arr in d}) == 8


def test_augmentation_crops_a_window_of_each_tile():
    rng = np.random.default_rng(1)
    xb = np.random.default_rng(2).uniform(0, 255, (5, 150, 150, 3)).astype(np.float32)
    out = hmt.augment_tiles(xb, rng, colour_jitter=0.0, crop=112).astype(np.float32)
    assert out.shape == (5, 112, 112, 3)
    # with no colour jitter each crop is a flipped/rotated window of its own tile
    for tile, crop in zip(xb, out):
        windows = {tile[i:i + 112, j:j + 112].tobytes() for i in range(39) for j in range(39)}
        assert any(t.tobytes() in windows for t in hmt._dihedral(crop[None].repeat(8, 0), np.arange(8)))
    with pytest.raises(ValueError, match="crop"):
        hmt.augment_tiles(xb, rng, crop=151)


def test_train_config_checks_the_model_fields():
    for bad in ({"train_crop": 16}, {"train_crop": 151}, {"width": 0}, {"block3_width": -1}, {"stem_width": -1}):
        with pytest.raises(ValueError, match="invalid HMT config"):
            hmt.TrainConfig(**bad)


def test_full_resolution_stem_keeps_the_feature_map_sizes():
    plain = hmt.build_model(width=4, block3_width=8)
    stem = hmt.build_model(width=4, block3_width=8, stem_width=6)
    assert stem.get_layer("block1_conv1").output.shape == (None, 148, 148, 6)
    assert stem.get_layer("block1_stem_pool").output.shape == (None, 74, 74, 6)
    for name in ("block1_conv2", "block3_conv2_gelu"):
        assert stem.get_layer(name).output.shape == plain.get_layer(name).output.shape


def test_trial_tool_parses_recipe_fields():
    import importlib.util
    spec = importlib.util.spec_from_file_location("hmt_trial", repo_path("tools", "hmt_trial.py"))
    trial = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(trial)
    defaults = hmt.TrainConfig()
    fields = trial.parse_fields(["ema_decay=0.998", "stem_width=16", "activation=relu", "weight_decay=0"], defaults)
    assert fields == {"ema_decay": 0.998, "stem_width": 16, "activation": "relu", "weight_decay": 0.0}
    assert type(fields["weight_decay"]) is float
    for bad, why in ((["stem_width"], "key=value"), (["no_such_field=1"], "unknown field"),
                     (["epochs=20.0"], "takes a int"), (["width=1", "width=2"], "twice"),
                     (["activation={1}"], "takes a str")):
        with pytest.raises(SystemExit, match=why):
            trial.parse_fields(bad, defaults)


def test_training_on_crops_returns_a_whole_tile_model():
    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, (40, 150, 150, 3), dtype=np.uint8)
    y = np.repeat(np.arange(8), 5)
    config = hmt.TrainConfig(epochs=1, width=4, block3_width=8, train_crop=64, batch_size=8, val_fraction=0.2)
    model, info = hmt.train(x, y, config)
    assert model.input_shape == (None, 150, 150, 3) and model.output_shape == (None, 8)
    assert info["config"]["train_crop"] == 64 and len(info["history"]["val_accuracy"]) == 1
    assert np.isfinite(model.predict(x[:2].astype(np.float32), verbose=0)).all()


def test_saved_model_reaches_92_percent(hmt_data, hmt_model):
    (_, _), (x_test, y_test), _ = hmt_data
    acc = np.mean(hmt_model.predict(x_test.astype(np.float32), verbose=0).argmax(-1) == y_test)
    assert acc >= 0.92
    with open(repo_path("models", "HMT.json")) as f:
        meta = json.load(f)
    assert abs(meta["test_accuracy"] - acc) < 1e-6
    assert {"seed", "per_class_accuracy", "train_seconds", "versions"} <= set(meta)


def test_course_model_scores_08347(hmt_data):
    (_, _), (x_test, y_test), _ = hmt_data
    model = hmt.load_course_model(shared_path("models", "course", "HMT.h5"))
    prob = np.concatenate([model.predict(xb, verbose=0) for xb in hmt.course_model_inputs(x_test)])
    acc = np.mean(prob.argmax(-1) == y_test)
    assert abs(acc - 0.8347) <= 0.002
