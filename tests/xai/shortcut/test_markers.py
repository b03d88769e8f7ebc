"""xai/shortcut/markers.py: markers land where their mask says, with the strength asked for, the same
for the same seed; hue keeps luminance; the training subset marks the share asked for."""
import numpy as np
import pytest

from xai.shortcut.markers import (
    CHECKER,
    DEFAULT_STRENGTH,
    PATCH_SIZE,
    SIGNAL_MARGIN,
    ZIGZAG_LENGTH,
    add_marker,
    marked_subset,
    marker_pattern,
)


def test_local_marker_writes_its_zigzag_exactly_inside_its_mask_away_from_the_ends_and_nothing_outside():
    x = np.random.default_rng(0).normal(size=(200, 40, 1)).astype(np.float32)
    marked, mask = add_marker(x, "local", seed=3)
    assert marked.dtype == np.float32 and mask.shape == (200, 40) and mask.dtype == bool
    np.testing.assert_array_equal(mask.sum(1), ZIGZAG_LENGTH)
    np.testing.assert_array_equal((marked - x)[..., 0][~mask], 0)
    for m, row in zip(mask, marked[..., 0]):
        np.testing.assert_allclose(row[m], marker_pattern("local", 3), atol=1e-6)
    starts = mask.argmax(1)
    margin = int(SIGNAL_MARGIN * 40)
    assert starts.min() == margin and starts.max() == 40 - margin - ZIGZAG_LENGTH   # every allowed position drawn
    short, short_mask = add_marker(np.zeros((30, 6, 1), np.float32), "local", seed=0)
    assert short_mask.sum(1).min() == ZIGZAG_LENGTH                   # too short for the margin: anywhere


def test_image_marker_is_a_checkerboard_of_the_patch_size_that_flips_and_rotations_keep_up_to_sign():
    board = marker_pattern("local", 4)
    a = DEFAULT_STRENGTH[("local", 4)]
    assert board.shape == (PATCH_SIZE, PATCH_SIZE) and set(np.unique(board)) == {-a, a}
    for turned in [np.rot90(board, k) for k in range(4)] + [board[:, ::-1], board[::-1]]:
        assert np.allclose(turned, board) or np.allclose(turned, -board)
    np.testing.assert_allclose(board[:CHECKER, :CHECKER], a)         # squares of CHECKER pixels
    assert board[0, CHECKER] == -a
    tiles = np.full((6, 150, 150, 3), 128, np.uint8)
    marked, mask = add_marker(tiles, "local", seed=0)
    assert marked.dtype == np.uint8
    np.testing.assert_array_equal(mask.sum((1, 2)), PATCH_SIZE ** 2)
    changed = np.any(marked != tiles, -1)
    assert not (changed & ~mask).any()
    assert np.abs(marked.astype(int) - 128).max() <= a


def test_the_same_seed_plants_the_same_markers_and_another_seed_elsewhere():
    x = np.zeros((20, 40, 1), np.float32)
    a, ma = add_marker(x, seed=1)
    b, mb = add_marker(x, seed=1)
    c, mc = add_marker(x, seed=2)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ma, mb)
    assert (ma != mc).any()


def test_hue_marker_turns_the_hue_keeps_luminance_and_masks_every_pixel():
    x = np.random.default_rng(0).uniform(60, 200, (3, 20, 20, 3)).astype(np.float32)
    marked, mask = add_marker(x, "hue", seed=0)
    assert mask.all() and mask.shape == (3, 20, 20)
    luma = np.array([0.299, 0.587, 0.114])
    np.testing.assert_allclose(marked @ luma, x @ luma, atol=1e-3)
    assert np.abs(marked - x).max() > 5
    grey = np.full((1, 4, 4, 3), 100.0, np.float32)
    np.testing.assert_allclose(add_marker(grey, "hue", seed=0)[0], grey, atol=1e-3)   # no chroma, nothing to turn


@pytest.mark.parametrize("bad, match", [
    (np.zeros((2, 40)), "signals"), (np.zeros((2, 40, 2)), "one channel"), (np.zeros((2, 3, 1)), "smaller"),
    (np.zeros((2, 40, 1), np.int32), "float or uint8"), (np.full((2, 40, 1), np.nan), "NaN"),
])
def test_add_marker_refuses_inputs_it_cannot_mark(bad, match):
    with pytest.raises(ValueError, match=match):
        add_marker(bad, "local", seed=0)


def test_add_marker_refuses_unknown_kinds_hue_on_signals_and_bad_strength_or_seed():
    x = np.zeros((2, 40, 1), np.float32)
    with pytest.raises(ValueError, match="kind"):
        add_marker(x, "pen", seed=0)
    with pytest.raises(ValueError, match="RGB images"):
        add_marker(x, "hue", seed=0)
    with pytest.raises(ValueError, match="strength"):
        add_marker(x, "local", seed=0, strength=-1)
    with pytest.raises(ValueError, match="seed"):
        add_marker(x, "local", seed=1.5)
    clipped, _ = add_marker(x, "local", seed=0, strength=5.0, value_range=(-1, 1))
    assert clipped.max() == 1 and clipped.min() == -1


def test_marked_subset_marks_the_share_of_one_class_or_of_every_class_for_the_control():
    y = np.repeat(np.arange(4), 50)
    chosen = marked_subset(y, 2, 0.5, seed=0)
    assert chosen.sum() == 25 and set(y[chosen]) == {2}
    control = marked_subset(y, 2, 0.5, seed=0, control=True)
    np.testing.assert_array_equal(np.bincount(y[control]), [25, 25, 25, 25])
    assert marked_subset(y, 2, 0.0, seed=0).sum() == 0
    assert marked_subset(y, 2, 1.0, seed=0).sum() == 50
    with pytest.raises(ValueError, match="marked_class"):
        marked_subset(y, 7, 0.5, seed=0)
    with pytest.raises(ValueError, match="fraction"):
        marked_subset(y, 2, 1.5, seed=0)
