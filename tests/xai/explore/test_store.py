"""xai/explore/store.py: the files are read lazily and checked: a missing file, a file that is not
explain_dataset's, one still being written, files over other examples and data of another length
are refused with a message that names the problem; nothing is written into the files."""
import hashlib
import shutil

import h5py
import numpy as np
import pytest

from xai.explore.store import MapSet


def _digest(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_two_methods_over_the_same_tiles_give_each_examples_maps_as_stored(tile_files, tiles):
    before = {p: _digest(p) for p in tile_files.values()}
    with MapSet(list(tile_files.values()), tiles) as ms:
        assert ms.names == ["grad_cam", "saliency"] and ms.table.n == 23 and ms.map_shape[:2] == (12, 12)
        with h5py.File(tile_files["saliency"]) as f:
            row = int(np.flatnonzero(f["index"][:] == 7)[0])
            stored = f["maps"][row]
        i = int(np.flatnonzero(ms.table.position == 7)[0])
        np.testing.assert_array_equal(ms.maps(i)["saliency"], stored)
        np.testing.assert_array_equal(ms.input(i), tiles[7])
        np.testing.assert_array_equal(ms.table.label, ms.table.position % 4)
        many = ms.maps_of([5, 1, 3], "grad_cam")
        np.testing.assert_array_equal(many[1], ms.maps(1)["grad_cam"])
    assert {p: _digest(p) for p in tile_files.values()} == before            # read-only


def test_a_missing_file_is_refused_by_name(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.h5"):
        MapSet(str(tmp_path / "nowhere.h5"))


def test_a_file_that_is_not_explain_datasets_is_refused(tmp_path):
    (tmp_path / "text.h5").write_text("not hdf5")
    with pytest.raises(ValueError, match="not an HDF5 file"):
        MapSet(str(tmp_path / "text.h5"))
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["maps"] = np.zeros((3, 4))
    with pytest.raises(ValueError, match="not a file of explain_dataset"):
        MapSet(str(tmp_path / "other.h5"))


def test_a_file_still_being_written_is_refused(tile_files, tmp_path):
    copy = shutil.copy(tile_files["grad_cam"], tmp_path / "running.h5")
    with h5py.File(copy, "a") as f:
        f.attrs["complete"] = False
    with pytest.raises(ValueError, match="still being written"):
        MapSet(str(copy))


def test_files_over_other_examples_are_refused(tile_files, tmp_path):
    from tests.conftest import tiny_conv2d
    from xai.dataset import explain_dataset
    x = np.random.default_rng(5).integers(0, 256, size=(10, 12, 12, 3)).astype(np.float32)
    other = explain_dataset(tiny_conv2d(), x, "grad_cam", str(tmp_path / "other.h5"), batch_size=8, progress=False)
    with pytest.raises(ValueError, match="other examples"):
        MapSet([tile_files["grad_cam"], other])


def test_data_labels_and_metrics_of_another_length_are_refused(tile_files, tiles):
    with pytest.raises(ValueError, match="data has 22 examples, but the files were made from data of 23"):
        MapSet(tile_files, tiles[:22])
    with pytest.raises(ValueError, match=r"labels must be one value an example of the data, shape \(23,\), got \(24,\)"):
        MapSet(tile_files, tiles, labels=np.zeros(24, int))
    with pytest.raises(ValueError, match=r"metrics\['drop'\] holds NaN"):
        MapSet(tile_files, tiles, metrics={"drop": np.full(23, np.nan)})
    with pytest.raises(ValueError, match=r"metrics\['name'\] must be numbers"):
        MapSet(tile_files, tiles, metrics={"name": np.array(["a"] * 23)})
    with pytest.raises(TypeError, match="paths must be"):
        MapSet(3)
    with pytest.raises(TypeError, match="non-empty"):
        MapSet({})


def test_other_data_of_the_same_length_or_another_order_are_refused(tile_files, tiles):
    with pytest.raises(ValueError, match="not the files'"):
        MapSet(tile_files, tiles[::-1])                                      # example 0's map over tile 22
    with pytest.raises(ValueError, match=r"examples are \(30, 30, 3\)"):
        MapSet(tile_files, np.zeros((23, 30, 30, 3), np.uint8))
    with pytest.raises(ValueError, match="data must be an array"):
        MapSet(tile_files, 5)
    with MapSet(tile_files, tiles.astype(np.float32)) as ms:                # the same values in another dtype
        assert ms.spatial_shape == (12, 12)


def test_labels_must_be_classes_of_the_files_and_agree_with_the_stored_ones(tile_files, tiles):
    with pytest.raises(ValueError, match=r"int class indices in 0..3"):
        MapSet(tile_files, tiles, labels=np.full(23, 1.7))
    with pytest.raises(ValueError, match=r"int class indices in 0..3"):
        MapSet(tile_files, tiles, labels=np.full(23, 9))
    with pytest.raises(ValueError, match="differ from the ones stored"):
        MapSet(tile_files, tiles, labels=np.zeros(23, int))
    with MapSet(tile_files, tiles, labels=np.arange(23) % 4) as ms:
        assert ms.table.k == 4


def test_files_of_another_model_or_other_classes_are_refused(tile_files, tiles, tmp_path):
    from tests.conftest import tiny_conv2d
    from xai.dataset import explain_dataset
    labels = np.arange(23) % 4
    other = explain_dataset(tiny_conv2d(seed=5), (tiles.astype(np.float32), labels), "grad_cam",
                            str(tmp_path / "other_model.h5"), batch_size=8, progress=False)
    with pytest.raises(ValueError, match="another model"):
        MapSet([tile_files["saliency"], other])
    fixed = explain_dataset(tiny_conv2d(), (tiles.astype(np.float32), labels), "grad_cam", str(tmp_path / "class3.h5"),
                            batch_size=8, progress=False, class_index=3)
    with pytest.raises(ValueError, match="other classes"):
        MapSet([tile_files["saliency"], fixed])


def test_reading_rows_checks_the_row_and_the_method(tile_files, tiles):
    with MapSet(tile_files, tiles) as ms:
        with pytest.raises(IndexError, match="0..22"):
            ms.maps(-1)
        with pytest.raises(IndexError, match="0..22"):
            ms.input(23)
        with pytest.raises(ValueError, match="no method 'nope'"):
            ms.maps_of([1], "nope")
        twice = ms.maps_of([3, 1, 3], "grad_cam")                            # repeated and unordered rows
        np.testing.assert_array_equal(twice[0], twice[2])
        np.testing.assert_array_equal(twice[1], ms.maps(1)["grad_cam"])


def test_the_same_method_twice_is_told_apart_by_file_name(tile_files, tmp_path):
    copy = shutil.copy(tile_files["grad_cam"], tmp_path / "again.h5")
    with MapSet([tile_files["grad_cam"], str(copy)]) as ms:
        assert ms.names == ["grad_cam (grad_cam.h5)", "grad_cam (again.h5)"]
