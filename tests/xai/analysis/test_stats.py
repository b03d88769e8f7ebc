"""xai/analysis/stats.py: summaries, the paired bootstrap, paired t-tests and Holm's adjustment, Wilson's
interval and the bootstrap over whole groups, against known values and independent computations."""
import numpy as np
import pytest
from scipy.stats import ttest_rel

from xai.analysis.stats import group_bootstrap, holm, paired_bootstrap, paired_t_p_values, summary, wilson

# --- summaries and paired differences ---

def test_summary_gives_the_mean_the_standard_error_and_the_count():
    values = np.array([1.0, 2.0, 4.0, 9.0])
    assert summary(values) == pytest.approx({"mean": 4.0, "sem": np.std(values, ddof=1) / 2, "n": 4})
    assert summary([3.0]) == {"mean": 3.0, "sem": 0.0, "n": 1}                 # one value: no spread to estimate


def test_paired_bootstrap_covers_the_truth_and_detects_clear_differences():
    rng = np.random.default_rng(0)
    a = rng.normal(1.0, 1.0, 400)
    b = a - 0.5 + rng.normal(0, 0.2, 400)                   # a is larger by 0.5 on average
    ci = paired_bootstrap(a, b, n_boot=2000, seed=1)
    assert ci["low"] < 0.5 < ci["high"] and ci["excludes_zero"]
    same = paired_bootstrap(a, a + rng.normal(0, 0.2, 400), n_boot=2000)
    assert same["low"] < 0 < same["high"] and not same["excludes_zero"]
    assert paired_bootstrap(a, b, n_boot=500, seed=3) == paired_bootstrap(a, b, n_boot=500, seed=3)
    with pytest.raises(ValueError, match="paired samples"):
        paired_bootstrap(a, b[:10])
    with pytest.raises(ValueError, match="NaN"):
        paired_bootstrap(np.r_[a[:-1], np.nan], b)


def test_paired_t_p_values_are_scipys_paired_t_test_and_handle_constant_differences():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, (5, 30)), rng.normal(0.3, 1, (5, 30))
    np.testing.assert_allclose(paired_t_p_values(list(a - b)), [ttest_rel(x, y).pvalue for x, y in zip(a, b)], rtol=1e-10)
    np.testing.assert_array_equal(paired_t_p_values([np.zeros(5), np.full(5, 0.2)]), [1.0, 0.0])


def test_holm_multiplies_the_kth_smallest_p_value_by_m_minus_k_and_keeps_the_order():
    np.testing.assert_allclose(holm(np.array([0.01, 0.04, 0.03])), [0.03, 0.06, 0.06])
    np.testing.assert_allclose(holm(np.array([0.5, 0.001, 0.9, 0.02])), [1.0, 0.004, 1.0, 0.06])


# --- a proportion, and a mean over groups ---

def test_wilson_interval_gives_known_values():
    assert wilson(0, 10) == pytest.approx([0.0, 0.27753], abs=1e-4)
    assert wilson(5, 10) == pytest.approx([0.23659, 0.76341], abs=1e-4)
    assert wilson(460, 496) == pytest.approx([0.9012, 0.9471], abs=1e-4)               # the course split's 0.927
    assert wilson(0, 0) is None


def test_group_bootstrap_resamples_slides_so_its_interval_is_wide():
    slides = np.repeat(list("abcd"), 25)
    correct = np.repeat([True, True, False, True], 25)                           # slide c all wrong
    lo, hi = group_bootstrap(correct, slides, n_boot=500, seed=0)
    assert 0.2 < lo < 0.75 < hi <= 1.0                                           # far wider than the tiles' Wilson
    assert group_bootstrap(correct, slides, n_boot=500, seed=0) == [lo, hi]
    assert group_bootstrap(correct[:50], slides[:50]) is None                  # two slides: no interval


def test_group_bootstrap_resamples_whole_groups():
    groups = np.repeat(list("abcde"), [1, 2, 3, 4, 10])
    assert group_bootstrap(np.full(20, 0.3), groups, n_boot=100) == pytest.approx([0.3, 0.3])   # no spread to find
    values = np.repeat([1.0, 1.0, -1.0, 0.0, 0.5], [1, 2, 3, 4, 10])            # constant within a group
    lo, hi = group_bootstrap(values, groups, n_boot=2000, seed=1)
    assert -1 <= lo < values.mean() < hi <= 1
    counts = np.repeat([1, 2, 3, 4, 10], 1)
    draws = np.random.default_rng(1).integers(0, 5, (2000, 5))                     # the same draws, by hand
    means = (counts * np.array([1.0, 1.0, -1.0, 0.0, 0.5]))[draws].sum(1) / counts[draws].sum(1)
    assert [lo, hi] == pytest.approx(np.percentile(means, [2.5, 97.5]).tolist())
    assert group_bootstrap(values, groups, min_groups=6) is None


def test_auroc_is_the_mann_whitney_share_of_pairs_ordered_right():
    from xai.analysis.stats import auroc
    assert auroc([3, 4], [1, 2]) == 1.0
    assert auroc([1, 2], [3, 4]) == 0.0
    assert auroc([1, 3], [2]) == 0.5
    assert auroc([1, 1], [1, 1]) == 0.5                                      # ties count half
    with pytest.raises(ValueError, match="both sides"):
        auroc([], [1])
    with pytest.raises(ValueError, match="NaN"):
        auroc([np.nan], [1])


def test_kendall_tau_is_1_for_one_order_minus_1_for_its_reverse_and_undefined_for_a_constant_side():
    from xai.analysis.stats import kendall_tau
    assert kendall_tau([1, 2, 3], [10, 20, 30]) == pytest.approx(1.0)
    assert kendall_tau([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert np.isnan(kendall_tau([1, 1, 1], [1, 2, 3]))                  # undefined, not "no agreement"
    with pytest.raises(ValueError, match="same length"):
        kendall_tau([1, 2], [1, 2, 3])
