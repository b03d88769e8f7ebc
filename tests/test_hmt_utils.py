"""hmt_utils.py: loading the HMT tiles (cache, groups of slides and source images, every refusal), the
download, the model, its training configuration and what HMT.ipynb reports; on the real data and models,
the fingerprints and accuracies recorded beside them."""
import hashlib
import http.server
import io
import json
import os
import threading
import zipfile

import numpy as np
import pytest
from PIL import Image

import hmt_utils as hmt
from tests.conftest import hmt_root, repo_path, shared_path
from xai.training.saving import read_provenance
from xai.training.splits import grouped_split


def _tile(seed, shape=hmt.TILE_SHAPE):
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


def _make_layout(root, per_class=(2, 1), fmt="png"):
    for split, n in zip(hmt.SPLITS, per_class):
        for c, folder in enumerate(hmt.CLASS_FOLDERS):
            os.makedirs(root / split / folder, exist_ok=True)
            for i in range(n):
                Image.fromarray(_tile(100 * c + i)).save(root / split / folder / f"t{i}.{fmt}")
    return root


def test_load_small_layout_gives_the_tiles_losslessly_with_their_labels(tmp_path):
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


# --- where each tile comes from ---

# One real name of each of the nine forms (from HMT_test, HMT_train), with its slide and source image.
NAME_FORMS = [
    ("13859_CRC-Prim-HE-04_033.tif_Row_601_Col_1.webp", "CRC-Prim-HE-04", "CRC-Prim-HE-04_033"),
    ("17158_CRC-Prim-HE-07.tif_Row_601_Col_301.webp", "CRC-Prim-HE-07", "CRC-Prim-HE-07"),
    ("13051_CRC-Prim-HE-05_009a.tif_Row_151_Col_151.webp", "CRC-Prim-HE-05", "CRC-Prim-HE-05_009"),
    ("15143_CRC-Prim-HE-02_003b.tif_Row_151_Col_151.webp", "CRC-Prim-HE-02", "CRC-Prim-HE-02_003"),
    ("A8D0_CRC-Prim-HE-10_002c.tif_Row_1_Col_451.webp", "CRC-Prim-HE-10", "CRC-Prim-HE-10_002"),
    ("16859_CRC-Prim-HE-07_001_copy.tif_Row_451_Col_1.webp", "CRC-Prim-HE-07", "CRC-Prim-HE-07_001"),
    ("E115_CRC-Prim-HE-01b.tif_Row_1_Col_1.webp", "CRC-Prim-HE-01", "CRC-Prim-HE-01"),
    ("E174_CRC-Prim-HE-10c.tif_Row_601_Col_151.webp", "CRC-Prim-HE-10", "CRC-Prim-HE-10"),
    ("105DB_CRC-Prim-HE-02_copy.tif_Row_1_Col_601.webp", "CRC-Prim-HE-02", "CRC-Prim-HE-02"),
]


@pytest.mark.parametrize("name, slide, image", NAME_FORMS)
def test_tile_groups_reads_every_name_form(name, slide, image):
    assert hmt.tile_groups(name) == (slide, image)
    assert hmt.tile_groups(os.path.join("HMT_train", "01_TUMOR", name)) == (slide, image)     # a path
    assert hmt.tile_groups(name.replace(".webp", ".tif")) == (slide, image)                    # Zenodo's tifs
    assert len(NAME_FORMS) == len(hmt.TILE_NAME_FORMS)


@pytest.mark.parametrize("name", ["t0.png", "10009_CRC-Prim-HE-3_009.tif_Row_1_Col_1.webp",
                                  "10009_CRC-Prim-HE-03_009d.tif_Row_1_Col_1.webp", "10009_CRC-Prim-HE-03a.tif_Row_1_Col_1.webp",
                                  "CRC-Prim-HE-03_009.tif_Row_1_Col_1.webp", "10009_CRC-Prim-HE-03_009.tif_Row_1.webp"])
def test_unparsable_name_is_named_with_the_known_forms(name):
    with pytest.raises(hmt.HMTDataError) as err:
        hmt.tile_groups(os.path.join("somewhere", name))
    assert repr(name) in str(err.value) and all(form in str(err.value) for form in hmt.TILE_NAME_FORMS)


def _hmt_names():
    """Every tile name of the shared data, with its split and label, in load_hmt's order."""
    root = hmt_root()
    return [(split, label, name) for split in hmt.SPLITS for label, folder in enumerate(hmt.CLASS_FOLDERS)
            for name in sorted(os.listdir(os.path.join(root, split, folder)))]


def test_groups_of_all_5000_tiles_give_10_slides_and_298_source_images():
    rows = _hmt_names()
    assert len(rows) == 5000
    groups = [hmt.tile_groups(name) for _, _, name in rows]
    slides, images = {s for s, _ in groups}, {i for _, i in groups}
    assert slides == {f"CRC-Prim-HE-{i:02d}" for i in range(1, 11)} and len(images) == 298
    assert all(image.startswith(slide) for slide, image in groups)
    train = {i for (split, _, _), (_, i) in zip(rows, groups) if split == "HMT_train"}
    test = [i for (split, _, _), (_, i) in zip(rows, groups) if split == "HMT_test"]
    assert (len(train), len(set(test)), len(train & set(test))) == (297, 169, 168)
    assert sum(i in train for i in test) == 495                                # of the 496 test tiles
    empty = {i for (_, label, _), (_, i) in zip(rows, groups) if label == 7}
    assert empty == {"CRC-Prim-HE-06_005", "CRC-Prim-HE-10_026"}               # EMPTY: two source images


@pytest.mark.slow
def test_real_data_loads_with_groups_and_keeps_its_fingerprints(hmt_data):
    (xt, yt), (xs, ys), names, (gt, gs) = hmt.load_hmt(hmt_root(), groups=True, progress=False)
    rows = _hmt_names()
    assert list(gt.source_image) + list(gs.source_image) == [hmt.tile_groups(n)[1] for _, _, n in rows]
    np.testing.assert_array_equal(xt, hmt_data[0][0])
    with open(repo_path("models", "HMT.json")) as f:
        data = json.load(f)["data"]
    assert hmt.data_fingerprint(xs, ys) == data["test_fingerprint"]            # unchanged without groups


def _make_named_layout(root, per_class=(3, 1)):
    """The small layout with Kather-style names: two source images of two slides a class."""
    for split, n in zip(hmt.SPLITS, per_class):
        for c, folder in enumerate(hmt.CLASS_FOLDERS):
            os.makedirs(root / split / folder, exist_ok=True)
            for i in range(n):
                name = f"{c}{i}{'AB'[split == 'HMT_test']}_CRC-Prim-HE-0{1 + i % 2}_00{c}.tif_Row_{1 + 150 * i}_Col_1.png"
                Image.fromarray(_tile(100 * c + i)).save(root / split / folder / name)
    return root


def test_load_with_groups_aligns_them_with_the_tiles_and_caches_them(tmp_path):
    root = _make_named_layout(tmp_path / "hmt")
    cache = tmp_path / "cache"
    plain = hmt.load_hmt(str(root), cache_dir=str(cache), progress=False)
    assert len(plain) == 3                                                     # the return value as before
    (xt, yt), (xs, ys), names, (gt, gs) = hmt.load_hmt(str(root), cache_dir=str(cache), progress=False, groups=True)
    np.testing.assert_array_equal(xt, plain[0][0])
    assert isinstance(gt, hmt.TileGroups) and gt.slide.shape == gt.source_image.shape == yt.shape and len(gs.slide) == 8
    assert list(gt.source_image[:3]) == ["CRC-Prim-HE-01_000", "CRC-Prim-HE-02_000", "CRC-Prim-HE-01_000"]
    assert list(gs.slide) == ["CRC-Prim-HE-01"] * 8
    with np.load(cache / os.listdir(cache)[0]) as z:
        assert {"slide_train", "source_image_train", "slide_test", "source_image_test"} <= set(z.files)


def test_cache_without_groups_is_rebuilt(tmp_path):
    root = _make_named_layout(tmp_path / "hmt")
    cache = tmp_path / "cache"
    hmt.load_hmt(str(root), cache_dir=str(cache), progress=False)
    path = cache / os.listdir(cache)[0]
    with np.load(path) as z:
        old = {k: z[k] for k in z.files if k[0] in "xy"}                      # as written before groups existed
    np.savez_compressed(path, **old)
    *_, (gt, _) = hmt.load_hmt(str(root), cache_dir=str(cache), progress=False, groups=True)
    assert len(gt.slide) == 24
    with np.load(path) as z:
        assert "source_image_train" in z.files


def test_other_names_load_without_groups_unless_asked(tmp_path):
    root = _make_layout(tmp_path / "hmt")                                      # names t0.png, t1.png
    cache = tmp_path / "cache"
    (xt, _), _, _ = hmt.load_hmt(str(root), cache_dir=str(cache), progress=False)
    assert xt.shape[0] == 16
    with np.load(cache / os.listdir(cache)[0]) as z:
        assert sorted(z.files) == ["x_test", "x_train", "y_test", "y_train"]
    with pytest.raises(hmt.HMTDataError, match="t0.png.*CRC-Prim-HE-NN_NNN"):
        hmt.load_hmt(str(root), cache_dir=str(cache), progress=False, groups=True)
    with pytest.raises(TypeError, match="True or False"):
        hmt.load_hmt(str(root), cache_dir=str(cache), progress=False, groups="yes")


def test_data_fingerprint_is_unchanged_without_groups_and_covers_them():
    x, y = np.arange(12, dtype=np.uint8).reshape(3, 4), np.arange(3)
    h = hashlib.sha1()
    for a in (x, y):                                                           # the formula models/HMT.json used
        h.update(f"{a.shape}|{a.dtype}|".encode())
        h.update(a.tobytes())
    assert hmt.data_fingerprint(x, y) == hmt.data_fingerprint(x, y, None) == h.hexdigest()[:20]
    groups = hmt.TileGroups(np.array(["s1", "s1", "s2"]), np.array(["s1_001", "s1_002", "s2_001"]))
    with_groups = hmt.data_fingerprint(x, y, groups)
    assert with_groups != hmt.data_fingerprint(x, y)
    wide = hmt.TileGroups(groups.slide.astype("<U40"), groups.source_image.astype(object))
    assert hmt.data_fingerprint(x, y, wide) == with_groups                     # the text, not its dtype
    moved = hmt.TileGroups(groups.slide, np.array(["s1_001", "s1_001", "s2_001"]))
    assert hmt.data_fingerprint(x, y, moved) != with_groups
    with pytest.raises(ValueError, match=r"expected shape \(3,\)"):
        hmt.data_fingerprint(x, y, np.array(["a", "b"]))


def test_data_fingerprint_follows_content():
    x = np.zeros((2, 3), np.uint8)
    a = hmt.data_fingerprint(x, np.arange(2))
    assert a == hmt.data_fingerprint(x.copy(), np.arange(2)) and len(a) == 20
    x[0, 0] = 1
    assert hmt.data_fingerprint(x, np.arange(2)) != a


def test_missing_root_says_make_data(tmp_path):
    with pytest.raises(hmt.HMTDataError, match="make data.*HMT_DIR"):
        hmt.load_hmt(str(tmp_path / "nowhere"), progress=False)


def test_a_missing_split_is_named(tmp_path):
    root = _make_layout(tmp_path / "hmt")
    os.rename(root / "HMT_test", root / "other")
    with pytest.raises(hmt.HMTDataError, match="HMT_test"):
        hmt.load_hmt(str(root), cache_dir=str(tmp_path / "c"), progress=False)


def test_missing_and_unexpected_class_folders(tmp_path):
    root = _make_layout(tmp_path / "hmt")
    os.rename(root / "HMT_train" / "08_EMPTY", root / "HMT_train" / "09_OTHER")
    with pytest.raises(hmt.HMTDataError, match=r"missing \['08_EMPTY'\], unexpected \['09_OTHER'\]"):
        hmt.load_hmt(str(root), cache_dir=str(tmp_path / "c"), progress=False)


def test_an_empty_class_folder_is_named(tmp_path):
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


# --- what HMT.ipynb reports ---

def test_two_accuracies_says_what_is_missing(tmp_path):
    model_json = tmp_path / "HMT.json"
    model_json.write_text(json.dumps({"test_accuracy": 0.9}))
    text = hmt.two_accuracies(str(model_json), str(tmp_path / "none.json"))
    assert "| the course's HMT_test | 496 | 0.900 |" in text and "not run" in text
    cv = tmp_path / "cv.json"
    cv.write_text(json.dumps({"quick": False, "folds": [{}, {}]}))
    assert "incomplete" in hmt.two_accuracies(str(model_json), str(cv))
    cv.write_text(json.dumps({"quick": False, "folds": [{}] * 10, "config": {"epochs": 20},
                              "summary": {"pooled": {"n": 5000, "accuracy": 0.8, "slide_bootstrap95": [0.7, 0.85]}}}))
    text = hmt.two_accuracies(str(model_json), str(cv))
    assert "| slides held out (10 folds, 20 epochs) | 5000 | 0.800 | 0.700–0.850 (slides resampled) |" in text


def test_course_accuracy_is_none_without_the_file(tmp_path):
    assert hmt.course_accuracy(str(tmp_path / "HMT.h5"), np.zeros((1, 150, 150, 3)), np.zeros(1)) is None
    assert hmt.TEST_PER_CLASS * len(hmt.CLASS_NAMES) == 496


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
        hmt.build_model(padding="circular")
    with pytest.raises(ValueError, match="stem_kernel"):
        hmt.build_model(stem_kernel=5)
    assert hmt.build_model().count_params() <= 1_000_000
    prob = model(np.full((2, 150, 150, 3), 255.0, np.float32)).numpy()
    assert np.isfinite(prob).all()
    np.testing.assert_allclose(prob.sum(-1), 1.0, rtol=1e-5)


def test_reflect_padding_keeps_every_size_and_the_stem_kernel_4_the_same_sizes():
    reflect = hmt.build_model(width=4, block3_width=8, padding="reflect", stem_kernel=4)
    assert reflect.get_layer("block3_conv2").output.shape[1:3] == (19, 19)      # 150 -> 75 -> 38 -> 19: no row dropped
    valid = hmt.build_model(width=4, block3_width=8, stem_kernel=4)
    assert valid.get_layer("block3_conv2").output.shape[1:3] == (12, 12)        # as the 3 x 3 stem's
    crops = hmt.build_model(width=4, block3_width=8, padding="reflect", stem_kernel=4, input_shape=(None, None, 3))
    assert crops(np.zeros((1, 112, 112, 3), np.float32)).shape == (1, 8)
    crops.set_weights(reflect.get_weights())                                     # the same weights for any size
    x = np.random.default_rng(0).uniform(0, 255, (2, 150, 150, 3)).astype(np.float32)
    np.testing.assert_allclose(crops(x).numpy(), reflect(x).numpy(), atol=1e-5)


def test_train_config_checks_the_model_fields():
    for bad in ({"train_crop": 16}, {"train_crop": 151}, {"width": 0}, {"block3_width": -1}, {"stem_width": -1},
                {"val_split": "slide"}, {"val_split": None}, {"colour_augment": "hsv"}, {"colour_jitter": 1.5}, {"stem_kernel": 5},
                {"hed_strength": -0.1}):
        with pytest.raises(ValueError, match="invalid HMT config"):
            hmt.TrainConfig(**bad)


def test_train_config_splits_by_source_image_by_default():
    assert hmt.TrainConfig().val_split == "source_image" and hmt.VAL_SPLITS == ("stratified", "source_image")
    assert hmt.TrainConfig(val_split="stratified").val_split == "stratified"


def test_tile_groups_take_a_subset_of_both_fields():
    groups = hmt.TileGroups(np.array(["a", "b", "c"]), np.array(["a_1", "b_1", "c_1"]))
    sub = groups.take(np.array([2, 0]))
    assert sub.slide.tolist() == ["c", "a"] and sub.source_image.tolist() == ["c_1", "a_1"]
    assert groups.take(np.array([False, True, False])).slide.tolist() == ["b"]


def test_train_needs_groups_exactly_for_the_source_image_split():
    x, y = np.zeros((16, 150, 150, 3), np.uint8), np.repeat(np.arange(8), 2)
    groups = hmt.TileGroups(np.array(["s"] * 16), np.array([f"s_{i:03d}" for i in range(16)]))
    with pytest.raises(ValueError, match=r"'source_image' \(the default\) needs the tiles' groups"):
        hmt.train(x, y, hmt.TrainConfig(epochs=1))
    with pytest.raises(ValueError, match="'stratified' uses none"):
        hmt.train(x, y, hmt.TrainConfig(val_split="stratified", epochs=1), groups=groups)


def test_training_with_the_source_image_split_records_it(tmp_path):
    rng = np.random.default_rng(4)
    x = rng.integers(0, 256, (48, 150, 150, 3), dtype=np.uint8)
    y = np.repeat(np.arange(8), 6)
    images = np.array([f"CRC-Prim-HE-01_{c}{i // 2}" for c in range(8) for i in range(6)])   # 3 images a class
    groups = hmt.TileGroups(np.array(["CRC-Prim-HE-01"] * 48), images)
    config = hmt.TrainConfig(epochs=1, width=4, block3_width=8, train_crop=64, batch_size=16, val_fraction=0.3,
                             val_split="source_image")
    model, info = hmt.train(x, y, config, groups=groups)
    train, val = grouped_split(y, images, 0.3, seed=0)
    assert not set(images[train]) & set(images[val])
    assert info["n_val"] == len(val) == 16 and info["val_groups"]["n_val"] == 8
    assert info["config"]["val_split"] == "source_image"
    assert info["train_groups_fingerprint"] == hmt.data_fingerprint(x, y, groups) != info["train_fingerprint"]
    _, same = hmt.train(x, y, config, groups=images)                           # source images alone do too
    assert same["n_val"] == 16
    path = str(tmp_path / "m.keras")
    hmt.save_model(model, info, 0.5, np.zeros(8), path=path)
    data = read_provenance(path)["data"]
    assert data["val_split"] == "source_image" and data["val_groups"]["n_val"] == 8
    assert data["one_group_classes"] == "raise"                                 # recorded as train was called
    assert data["train_groups_fingerprint"] == info["train_groups_fingerprint"]


def test_full_resolution_stem_keeps_the_feature_map_sizes():
    plain = hmt.build_model(width=4, block3_width=8)
    stem = hmt.build_model(width=4, block3_width=8, stem_width=6)
    assert stem.get_layer("block1_conv1").output.shape == (None, 148, 148, 6)
    assert stem.get_layer("block1_stem_pool").output.shape == (None, 74, 74, 6)
    for name in ("block1_conv2", "block3_conv2_gelu"):
        assert stem.get_layer(name).output.shape == plain.get_layer(name).output.shape


def test_training_on_crops_returns_a_whole_tile_model():
    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, (40, 150, 150, 3), dtype=np.uint8)
    y = np.repeat(np.arange(8), 5)
    config = hmt.TrainConfig(epochs=1, width=4, block3_width=8, train_crop=64, batch_size=8, val_fraction=0.2,
                             val_split="stratified")
    model, info = hmt.train(x, y, config)
    assert model.input_shape == (None, 150, 150, 3) and model.output_shape == (None, 8)
    assert info["config"]["train_crop"] == 64 and len(info["history"]["val_accuracy"]) == 1
    assert np.isfinite(model.predict(x[:2].astype(np.float32), verbose=0)).all()


def test_lab_augmentation_fits_its_statistics_on_the_fitted_tiles_only(monkeypatch):
    """RandStainNA's statistics come from the tiles fitted, not from the validation tiles that choose the epoch."""
    import xai.training.stain as stain
    rng = np.random.default_rng(5)
    x = rng.integers(0, 256, (32, 150, 150, 3), dtype=np.uint8)
    y = np.repeat(np.arange(8), 4)
    seen = []
    real = stain.lab_statistics
    monkeypatch.setattr(stain, "lab_statistics", lambda tiles: seen.append(len(tiles)) or real(tiles))
    config = hmt.TrainConfig(epochs=1, width=4, block3_width=8, train_crop=64, batch_size=8, val_fraction=0.25,
                             val_split="stratified", colour_augment="lab", padding="reflect", stem_kernel=4)
    model, info = hmt.train(x, y, config)
    assert seen == [info["n_train"]] == [24] and model.output_shape == (None, 8)


@pytest.mark.slow
def test_saved_model_was_chosen_on_source_images_and_scores_its_record(hmt_data, hmt_model):
    # 0.899 on the course split (0.927 when the epoch was chosen on a stratified split, whose
    # validation tiles were windows of the training images); well above the course model's 0.835
    (_, _), (x_test, y_test), _ = hmt_data
    acc = np.mean(hmt_model.predict(x_test.astype(np.float32), verbose=0).argmax(-1) == y_test)
    assert acc >= 0.89
    with open(repo_path("models", "HMT.json")) as f:
        meta = json.load(f)
    assert abs(meta["test_accuracy"] - acc) < 1e-6
    assert {"seed", "per_class_accuracy", "train_seconds", "versions"} <= set(meta)
    assert meta["data"]["val_split"] == "source_image" and meta["data"]["val_groups"]["classes_absent_from_val"] == []


@pytest.mark.slow
def test_course_model_scores_08347(hmt_data):
    (_, _), (x_test, y_test), _ = hmt_data
    model = hmt.load_course_model(shared_path("models", "course", "HMT.h5"))
    prob = np.concatenate([model.predict(xb, verbose=0) for xb in hmt.course_model_inputs(x_test)])
    acc = np.mean(prob.argmax(-1) == y_test)
    assert abs(acc - 0.8347) <= 0.002
