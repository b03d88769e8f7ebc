"""xai/metrics/agreement.py: Spearman's rank correlation between maps, example by example."""
import numpy as np

from xai.metrics.agreement import spearman


def test_spearman_compares_ranks_not_values_and_a_constant_map_scores_zero():
    a = np.random.default_rng(0).normal(size=(3, 50))
    np.testing.assert_allclose(spearman(a, a), 1.0)
    np.testing.assert_allclose(spearman(a, -a), -1.0)
    np.testing.assert_allclose(spearman(a, np.exp(a)), 1.0)               # ranks, not values
    np.testing.assert_allclose(spearman(a, np.ones_like(a)), 0.0)
