"""xai/training/ablation.py: variants compared tile by tile on the same folds, a recipe chosen for each
test fold without that fold's tiles, and the agreement of two schedules' rankings."""
import numpy as np
import pytest

from xai.training.ablation import choice_by_test_fold, pooled_correct, schedule_agreement, variant_table

Y = np.arange(12) % 3                                       # 12 tiles; folds 0, 1, 2 hold 4 each
FOLD_TILES = {0: np.arange(4), 1: np.arange(4, 8), 2: np.arange(8, 12)}
IMAGES = np.array([f"i{i // 2}" for i in range(12)])
SLIDES = np.repeat(["s0", "s1", "s2"], 4)


def _runs(right: dict) -> dict:
    """Runs whose predictions are right on the tiles ``right[(variant, fold)]`` marks (bool (4,))."""
    runs = {}
    for (variant, fold), ok in right.items():
        index = FOLD_TILES[fold]
        runs[(variant, fold)] = {"test_index": index, "pred": np.where(ok, Y[index], (Y[index] + 1) % 3)}
    return runs


def test_pooled_correct_marks_the_right_tiles():
    runs = _runs({("a", 0): [1, 0, 1, 1], ("a", 2): [0, 0, 0, 1]})
    index, right = pooled_correct(runs, "a", [0, 2], Y)
    np.testing.assert_array_equal(index, np.r_[0:4, 8:12])
    np.testing.assert_array_equal(right, [1, 0, 1, 1, 0, 0, 0, 1])


def test_variant_table_gives_paired_differences_from_the_baseline():
    runs = _runs({("base", 0): [1, 1, 0, 0], ("base", 1): [1, 0, 0, 0],
                  ("new", 0): [1, 1, 1, 1], ("new", 1): [1, 1, 0, 0]})
    table = variant_table(runs, ["base", "new"], [0, 1], Y, IMAGES, SLIDES, baseline="base", n_boot=200)
    assert table["base"]["accuracy"] == pytest.approx(3 / 8) and table["new"]["accuracy"] == pytest.approx(6 / 8)
    assert table["new"]["minus_base"] == pytest.approx(3 / 8) and table["base"]["minus_base"] == 0
    assert table["new"]["per_slide"] == {"s0": 1.0, "s1": 0.5}
    lo, hi = table["new"]["minus_base_image_bootstrap95"]
    assert 0 <= lo <= 3 / 8 <= hi


def test_variants_on_different_tiles_or_missing_folds_are_refused():
    runs = _runs({("a", 0): [1] * 4, ("b", 1): [1] * 4})
    with pytest.raises(ValueError, match="missing"):
        variant_table(runs, ["a", "b"], [0], Y, IMAGES, SLIDES, baseline="a")
    runs[("b", 0)] = dict(runs[("b", 1)])
    with pytest.raises(ValueError, match="different tiles"):
        variant_table(runs, ["a", "b"], [0], Y, IMAGES, SLIDES, baseline="a")
    with pytest.raises(ValueError, match="baseline"):
        variant_table(runs, ["a", "b"], [0], Y, IMAGES, SLIDES, baseline="c")


def test_no_test_fold_chooses_its_own_recipe():
    # "a" wins on fold 0 alone, "b" on folds 1 and 2: fold 0's choice must come from folds 1 and 2
    runs = _runs({("a", 0): [1, 1, 1, 1], ("a", 1): [1, 0, 0, 0], ("a", 2): [1, 0, 0, 0],
                  ("b", 0): [0, 0, 0, 0], ("b", 1): [1, 1, 0, 0], ("b", 2): [1, 1, 0, 0]})
    choice = choice_by_test_fold(runs, ["a", "b"], [0, 1, 2], range(4), Y)
    assert choice["by_test_fold"][0] == "b" and choice["scores"][0] == {"a": 0.25, "b": 0.5}
    assert choice["by_test_fold"][1] == "a"          # folds 0 and 2: a 5/8, b 2/8
    assert choice["by_test_fold"][3] == "a"          # all three folds: a 6/12, b 4/12
    assert choice["chosen"] is None                  # the folds disagree
    single = choice_by_test_fold(runs, ["a", "b"], [0], range(2), Y)
    assert single["by_test_fold"] == {0: None, 1: "a"} and single["chosen"] is None


def test_a_tie_chooses_nothing_and_agreeing_folds_choose_one():
    tie = _runs({("a", 0): [1, 0, 0, 0], ("b", 0): [0, 1, 0, 0], ("a", 1): [1, 1, 0, 0], ("b", 1): [1, 1, 0, 0]})
    assert choice_by_test_fold(tie, ["a", "b"], [0, 1], [2], Y)["by_test_fold"][2] is None
    clear = _runs({("a", 0): [1] * 4, ("b", 0): [0] * 4, ("a", 1): [1] * 4, ("b", 1): [0] * 4})
    assert choice_by_test_fold(clear, ["a", "b"], [0, 1], range(3), Y)["chosen"] == "a"


def test_schedule_agreement_compares_the_orders():
    short = _runs({("a", 0): [1, 1, 1, 0], ("b", 0): [1, 1, 0, 0], ("c", 0): [1, 0, 0, 0]})
    full = _runs({("a", 0): [1, 1, 1, 1], ("b", 0): [1, 1, 1, 0], ("c", 0): [1, 1, 0, 0]})
    same = schedule_agreement(short, full, ["a", "b", "c"], [0], Y)
    assert same["kendall_tau"] == pytest.approx(1.0) and same["same_best"] and same["best_full"] == "a"
    reverse = _runs({("a", 0): [1, 0, 0, 0], ("b", 0): [1, 1, 0, 0], ("c", 0): [1, 1, 1, 0]})
    other = schedule_agreement(short, reverse, ["a", "b", "c"], [0], Y)
    assert other["kendall_tau"] == pytest.approx(-1.0) and not other["same_best"]


def test_the_markdown_table_describes_each_variant_and_the_choice():
    from xai.training.ablation import ablation_markdown, choice_by_test_fold, describe_variant
    runs = _runs({("base", 0): [1, 1, 0, 0], ("base", 1): [1, 0, 0, 0],
                  ("new", 0): [1, 1, 1, 1], ("new", 1): [1, 1, 0, 0]})
    marks = {"centre_to_outside": 1.2, "column_alternation": 0.05, "row_alternation": 0.04, "grad_cam_border_share": 0.29}
    summary = {"baseline": "base", "folds_of_slides": [["s0"], ["s1"], ["s2"]],
               "variants": {"base": {"padding": "valid", "stem_kernel": 3, "colour_augment": "rgb"},
                            "new": {"padding": "reflect", "stem_kernel": 4, "colour_augment": "hed", "hed_strength": 0.2}},
               "schedules": {"20": {"variants": ["base", "new"], "held_out": [["s0"], ["s1"]], "artefacts":
                                    {"base": marks, "new": marks},
                                    "table": variant_table(runs, ["base", "new"], [0, 1], Y, IMAGES, SLIDES, baseline="base",
                                                           n_boot=200),
                                    "choice": choice_by_test_fold(runs, ["base", "new"], [0, 1], range(3), Y)}}}
    text = ablation_markdown(summary)
    rows = text.splitlines()
    assert rows[2].startswith("| base | valid padding, 3 × 3 stem; RGB gain and offset | 0.375 ") and "| - |" in rows[2]
    assert rows[3].startswith("| new | reflect padding, 4 × 4 stem; HED jitter 0.2 | 0.750 ") and "| +0.375 [" in rows[3]
    assert "1.000, 0.500" in rows[3] and "**new** for every test fold" in text      # each slide; folds 0, 1 and 2 agree
    assert describe_variant({"padding": "reflect", "stem_kernel": 4, "colour_augment": "none"}).endswith("no colour augmentation")
    with pytest.raises(ValueError, match="must name padding"):
        describe_variant({"colour_augment": "hed", "padding": "valid", "stem_kernel": 3})   # hed without its strength
    with pytest.raises(ValueError, match="no table for 64 epochs"):
        ablation_markdown(summary, 64)
    with pytest.raises(ValueError, match="no schedule with a table"):
        ablation_markdown({"schedules": {}})
