"""xai/dataset/store.py: shards merge into the file a single run writes, and only shards of one call over
the whole data do."""
import pytest

from tests.xai.dataset.conftest import same_file
from xai.dataset.explain import explain_dataset
from xai.dataset.store import load_explanations, merge_shards, shard_path


def test_shards_merge_to_the_single_run(tmp_path, model2d, images):
    whole = explain_dataset(model2d, images, "grad_cam", tmp_path / "whole.h5", batch_size=4, progress=False)
    shards = [explain_dataset(model2d, images, "grad_cam", shard_path(str(tmp_path / "s.h5"), i, 3),
                                 batch_size=4, shard=(i, 3), progress=False) for i in range(3)]
    assert [len(load_explanations(s)["index"]) for s in shards] == [8, 8, 7]
    same_file(merge_shards(shards, tmp_path / "merged.h5"), whole)
    with pytest.raises(ValueError, match="each of 0..n-1"):
        merge_shards(shards[:2], tmp_path / "m2.h5")
    with pytest.raises(ValueError, match="each of 0..n-1"):
        merge_shards(shards + shards[:1], tmp_path / "m3.h5")
    other = explain_dataset(model2d, images, "grad_cam", tmp_path / "o.h5", batch_size=4, shard=(2, 3),
                               progress=False, layer="k1")
    with pytest.raises(ValueError, match="differ in method_options"):
        merge_shards(shards[:2] + [other], tmp_path / "m4.h5")


def test_merge_refuses_shards_of_different_data(tmp_path, model2d, images):
    import tensorflow as tf
    a = explain_dataset(model2d, tf.data.Dataset.from_tensor_slices(images), "grad_cam",
                           shard_path(str(tmp_path / "m.h5"), 0, 2), shard=(0, 2), progress=False)
    b = explain_dataset(model2d, tf.data.Dataset.from_tensor_slices(images[:-1]), "grad_cam",
                           shard_path(str(tmp_path / "m.h5"), 1, 2), shard=(1, 2), progress=False)
    with pytest.raises(ValueError, match="differ in n_total"):
        merge_shards([a, b], tmp_path / "all.h5")
