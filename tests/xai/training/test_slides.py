"""xai/training/slides.py: HMT across slides: folds of whole slides that keep every class in training,
the accuracy with its intervals, and the slide probe on features that do and do not carry the slide."""
import os

import numpy as np
import pytest

import hmt_utils as hmt
from xai.training.slides import slide_folds, slide_probe, tiny_subset, train_held_out


def _slides_and_labels():
    """6 slides of 10 tiles; class 2 on slides a and b only, class 1 on c only."""
    slides = np.repeat(list("abcdef"), 10)
    y = np.zeros(60, int)
    y[[0, 1, 10, 11]] = 2
    y[[20, 21]] = 1
    return slides, y


def test_slide_folds_leave_one_slide_out_and_keep_classes_in_training():
    slides, y = _slides_and_labels()
    assert slide_folds(slides, y, 6) == [[s] for s in "abcdef"]
    for seed in range(5):
        folds = slide_folds(slides, y, 3, seed=seed)
        assert sorted(s for f in folds for s in f) == list("abcdef") and [len(f) for f in folds] == [2, 2, 2]
        assert not any({"a", "b"} <= set(f) for f in folds)                    # class 2 stays in every training fold
    for bad in (1, 7, 2.5):
        with pytest.raises(ValueError, match="n_folds"):
            slide_folds(slides, y, bad)


def test_slide_probe_finds_a_slide_in_the_features_beyond_the_class():
    rng = np.random.default_rng(0)
    slides = np.repeat([f"s{i}" for i in range(4)], 60)
    y = np.tile(np.repeat([0, 1], 30), 4)                                        # classes spread evenly
    images = np.array([f"{s}_{i // 6}" for s, i in zip(slides, np.tile(np.arange(60), 4))])
    marked = rng.normal(size=(240, 6)) + 4 * np.eye(6)[np.repeat(np.arange(4), 60)]   # slide in features 0-3
    probe = slide_probe(marked, slides, y, images)
    assert probe["probe_accuracy"] > 0.95 and probe["class_only_accuracy"] < 0.5
    assert probe["chance_majority"] == probe["chance_uniform"] == 0.25
    assert probe["difference"] == pytest.approx(probe["probe_accuracy"] - probe["class_only_accuracy"])
    assert 0 < probe["difference_bootstrap95"][0] <= probe["difference"] <= probe["difference_bootstrap95"][1]
    assert probe["probe_bootstrap95"][0] <= probe["probe_accuracy"] <= probe["probe_bootstrap95"][1] <= 1
    assert probe["reading"].startswith("the features carry the slide") and "source images" in probe["bootstrap"]
    blind = slide_probe(rng.normal(size=(240, 6)), slides, y, images)
    assert blind["probe_accuracy"] < 0.45
    assert not blind["reading"].startswith("the features carry the slide")
    lo, hi = blind["difference_bootstrap95"]
    assert lo < hi and hi - lo > 0.05                                            # 40 images: no point-sized interval
    with pytest.raises(ValueError, match="finite"):
        slide_probe(np.full((240, 6), np.nan), slides, y, images)


def test_grouped_folds_bias_a_count_baseline_below_chance():
    # slide a: two images of 8 tiles (the largest slide, 16 of 40); b and c: one image of 12. Holding an
    # image of a out leaves b the training folds' majority; holding b or c out leaves a: always wrong
    slides = np.repeat(["a", "a", "b", "c"], [8, 8, 12, 12])
    images = np.repeat(["a0", "a1", "b0", "c0"], [8, 8, 12, 12])
    y = np.zeros(40, int)
    probe = slide_probe(np.random.default_rng(0).normal(size=(40, 3)), slides, y, images, n_splits=4)
    assert probe["chance_majority"] == 0.4                                       # slide a: 16 of the 40 tiles
    assert probe["majority_cv_accuracy"] == 0.0                                 # the folds' bias, measured
    assert probe["class_only_accuracy"] == probe["majority_cv_accuracy"]       # one class: the same baseline


def test_tiny_subset_links_a_tile_a_class_and_slide_and_skips_dotfiles(tmp_path):
    root = tmp_path / "hmt"
    for split in hmt.SPLITS:
        for i, folder in enumerate(hmt.CLASS_FOLDERS):
            (root / split / folder).mkdir(parents=True)
            (root / split / folder / f"{i:04x}_CRC-Prim-HE-01_001.tif_Row_1_Col_1.webp").write_bytes(b"")
            (root / split / folder / ".DS_Store").write_bytes(b"")
    tiny_subset(str(root), str(tmp_path / "work"), seed=0)
    linked = [n for split in hmt.SPLITS for f in hmt.CLASS_FOLDERS for n in os.listdir(tmp_path / "work" / split / f)]
    assert len(linked) == 2 * len(hmt.CLASS_FOLDERS) and not any(n.startswith(".") for n in linked)


def test_train_held_out_refuses_a_fold_that_holds_every_tile_or_none():
    groups = hmt.TileGroups(np.array(["a", "b"]), np.array(["a_1", "b_1"]))
    for held in (["c"], ["a", "b"]):
        with pytest.raises(ValueError, match="held-out slides"):
            train_held_out(np.zeros((2, 150, 150, 3), np.uint8), np.zeros(2, int), groups, held, hmt.TrainConfig())
