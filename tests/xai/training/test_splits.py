"""xai/training/splits.py: the validation splits: stratified (class shares kept, seeded) and grouped
(groups kept whole, every class on both sides, close to the fraction per class, refusals that say why)."""
import numpy as np
import pytest

from xai.training.splits import grouped_split, stratified_split


@pytest.mark.parametrize("fraction", [0.1, 0.25, 0.5])
def test_stratified_split_keeps_class_proportions(fraction):
    y = np.repeat(np.arange(4), [40, 80, 120, 160])
    train, val = stratified_split(y, fraction, seed=3)
    assert len(np.intersect1d(train, val)) == 0 and len(train) + len(val) == len(y)
    np.testing.assert_array_equal(np.bincount(y[val]), np.round(np.bincount(y) * fraction).astype(int))
    again, _ = stratified_split(y, fraction, seed=3)
    np.testing.assert_array_equal(train, again)
    other, _ = stratified_split(y, fraction, seed=4)
    assert not np.array_equal(train, other)


def _grouped_toy(seed=0, n_groups=60, classes=4):
    """Groups of 1-30 examples, most of one class, some mixing two (as source images do)."""
    rng = np.random.default_rng(seed)
    y, groups = [], []
    for g in range(n_groups):
        size = int(rng.integers(1, 31))
        main, other = g % classes, (g + 1) % classes
        labels = np.where(rng.random(size) < (0.3 if g % 7 == 0 else 0.0), other, main)
        y += labels.tolist()
        groups += [f"img{g:03d}"] * size
    return np.array(y), np.array(groups)


@pytest.mark.parametrize("fraction", [0.1, 0.2, 0.3])
def test_grouped_split_keeps_groups_whole_and_classes_on_both_sides(fraction):
    y, groups = _grouped_toy()
    train, val = grouped_split(y, groups, fraction, seed=0)
    assert train.dtype == val.dtype == np.int64
    np.testing.assert_array_equal(np.sort(np.concatenate([train, val])), np.arange(len(y)))
    assert not set(groups[train]) & set(groups[val])                            # no group on both sides
    assert set(y[train]) == set(y[val]) == set(y)                                # every class on both sides
    share = np.bincount(y[val], minlength=4) / np.bincount(y)
    assert np.abs(share - fraction).max() < 0.03, share                         # close to the fraction, per class


def test_grouped_split_is_seeded():
    y, groups = _grouped_toy()
    a = grouped_split(y, groups, 0.2, seed=3)
    b = grouped_split(y, groups, 0.2, seed=3)
    c = grouped_split(y, groups, 0.2, seed=4)
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])


def test_grouped_split_takes_int_and_object_groups():
    y, groups = _grouped_toy()
    ids = np.unique(groups, return_inverse=True)[1]
    by_str = grouped_split(y, groups, 0.2, seed=0)
    for same in (ids, ids.astype(np.int32), groups.astype(object)):
        np.testing.assert_array_equal(grouped_split(y, same, 0.2, seed=0)[1], by_str[1])


def test_grouped_split_reaches_the_one_good_split_of_two_uneven_groups():
    # a class in two groups of 30 and 3: only the small one in val is close to 10 %
    y = np.r_[np.zeros(30), np.zeros(3), np.ones(40)].astype(int)
    groups = np.r_[["big"] * 30, ["small"] * 3, [f"b{i // 4}" for i in range(40)]]
    _, val = grouped_split(y, groups, 0.1, seed=0)
    assert set(groups[val][y[val] == 0]) == {"small"}


def test_grouped_split_refuses_a_class_in_one_group_or_keeps_it_in_training():
    y = np.r_[np.zeros(20), np.ones(20)].astype(int)
    groups = np.r_[[f"a{i // 2}" for i in range(20)], ["only"] * 20]
    with pytest.raises(ValueError, match=r"class 1 \(20 examples, all in group 'only'\).*one_group_classes='train'"):
        grouped_split(y, groups, 0.2, seed=0)
    train, val = grouped_split(y, groups, 0.2, seed=0, one_group_classes="train")
    assert set(y[val]) == {0} and (y[train] == 1).sum() == 20


@pytest.mark.parametrize("groups, why", [
    (np.arange(5), r"expected shape \(6,\), got \(5,\)"),
    (np.zeros((6, 2)), "one group per example"),
    (np.linspace(0, 1, 6), "str or int ids, got dtype float64"),
    (np.array(["a", None, "b", "c", "d", "e"], dtype=object), "holding None"),
])
def test_grouped_split_checks_groups(groups, why):
    with pytest.raises(ValueError, match=why):
        grouped_split(np.arange(6) % 2, groups, 0.5, seed=0)


def test_grouped_split_checks_labels_fraction_and_option():
    groups = np.array(list("aabbcc"))
    for y, fraction, option, why in ((np.linspace(0, 1, 6), 0.5, "raise", "int labels"),
                                     (np.arange(6) % 2, 1.0, "raise", "val_fraction"),
                                     (np.arange(6) % 2, 0.5, "drop", "one_group_classes")):
        with pytest.raises(ValueError, match=why):
            grouped_split(y, groups, fraction, seed=0, one_group_classes=option)


def test_grouped_split_says_when_shared_groups_leave_a_class_no_way_into_val():
    # class 0 lies only in the groups that hold all of class 1 and all of class 2: both stay in training
    y = np.r_[[0, 1, 1, 1], [0, 2, 2, 2]]
    groups = np.array(["p"] * 4 + ["q"] * 4)
    with pytest.raises(ValueError, match=r"classes \[0\] cannot be put on both sides"):
        grouped_split(y, groups, 0.2, seed=0, one_group_classes="train")
