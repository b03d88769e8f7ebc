"""xai/analysis/metric_agreement.py: Kendall's tau between metrics' rankings of the methods, with
bootstrap intervals, on known answers."""
import numpy as np
import pytest

import xai.analysis.metric_agreement as ma


def _scores(means, n=60, seed=0, noise=0.05):
    rng = np.random.default_rng(seed)
    return {f"m{k}": mu + rng.normal(0, noise, n) for k, mu in enumerate(means)}


def test_same_and_opposite_rankings_and_the_orientation():
    base = _scores([0.1, 0.3, 0.5, 0.7, 0.9])
    flipped = {k: -v for k, v in base.items()}
    metrics = {"a": {"scores": base, "higher_is_better": True, "units": "ex"},
               "a lower": {"scores": flipped, "higher_is_better": False, "units": "ex"},   # the same ranking
               "opposite": {"scores": flipped, "higher_is_better": True, "units": "ex"}}
    r = ma.agreement_matrix(metrics, n_boot=200)
    i = {n: k for k, n in enumerate(r["metrics"])}
    assert r["tau"][i["a"], i["a lower"]] == pytest.approx(1) and r["low"][i["a"], i["a lower"]] == pytest.approx(1)
    assert r["tau"][i["a"], i["opposite"]] == pytest.approx(-1) and r["high"][i["a"], i["opposite"]] == pytest.approx(-1)
    assert r["shared"][0, 1] == 5
    sentence = ma.agreement_sentence(r)
    assert sentence.startswith("Of 3 pairs of metrics, 1 rank the methods alike") and "2 in opposite orders" in sentence


def test_the_readme_sentence_names_opposite_pairs_on_the_same_data_set_only():
    assert [ma.source_of(n) for n in ("SRG (MNIST-1D)", "shortcut detection AUROC (mnist1d_local)", "GridPG (HMT)",
                                      "no brackets")] == ["MNIST-1D", "mnist1d_local", "HMT", ""]
    base = _scores([0.1, 0.3, 0.5, 0.7, 0.9])
    flipped = {k: -v for k, v in base.items()}
    r = ma.agreement_matrix({"SRG (MNIST-1D)": {"scores": base, "higher_is_better": True, "units": "ex"},
                             "eMPRT (MNIST-1D)": {"scores": flipped, "higher_is_better": True, "units": "ex"},
                             "AUROC (mnist1d_local)": {"scores": flipped, "higher_is_better": True}}, n_boot=200)
    sentence = ma.readme_sentence(r)
    assert sentence.startswith("Of 3 pairs of the 3 metrics, 1 rank the methods alike") and "2 in opposite orders" in sentence
    assert "of the same models and inputs, 1 pair ranks in opposite orders, the strongest: SRG (MNIST-1D) against eMPRT " \
           "(MNIST-1D) (-1.00 [-1.00, -1.00])." in sentence and "against AUROC" not in sentence
    for bad in (0, -1, 1.5):
        with pytest.raises(ValueError, match="most"):
            ma.readme_sentence(r, most=bad)
    with pytest.raises(ValueError, match="missing"):
        ma.readme_sentence({"metrics": ["a"]})


def test_noise_leaves_the_pair_undecided_and_few_shared_methods_give_no_tau():
    a = _scores([0.5] * 6, seed=1, noise=1.0)
    b = _scores([0.5] * 6, seed=2, noise=1.0)
    r = ma.agreement_matrix({"a": {"scores": a, "higher_is_better": True},
                             "b": {"scores": b, "higher_is_better": True},
                             "two": {"scores": {"m0": np.ones(5), "m1": np.zeros(5)}, "higher_is_better": True}},
                            n_boot=300)
    assert r["low"][0, 1] < 0 < r["high"][0, 1]                    # independent noise: undecided
    assert np.isnan(r["tau"][0, 2]) and r["shared"][0, 2] == 2
    assert "0 rank the methods alike" in ma.agreement_sentence(r) and "1 are undecided" in ma.agreement_sentence(r)


def test_replicates_and_nan_units_and_bad_input():
    point = {"m0": 0.9, "m1": 0.6, "m2": 0.3, "m3": 0.1}
    reps = {k: np.full(200, v) + np.random.default_rng(0).normal(0, 0.01, 200) for k, v in point.items()}
    scores = _scores([0.9, 0.6, 0.3, 0.1])
    scores["m3"][:10] = np.nan                                       # units a method could not score: skipped
    r = ma.agreement_matrix({"auroc": {"point": point, "replicates": reps, "higher_is_better": True},
                             "mass": {"scores": scores, "higher_is_better": True}}, n_boot=200)
    assert r["tau"][0, 1] == pytest.approx(1) and r["low"][0, 1] == pytest.approx(1)
    with pytest.raises(ValueError, match="must be"):
        ma.agreement_matrix({"x": {"scores": scores}, "y": {"scores": scores, "higher_is_better": True}})
    with pytest.raises(ValueError, match="finite"):
        ma.agreement_matrix({"x": {"scores": {"a": np.array([np.inf])}, "higher_is_better": True},
                             "y": {"scores": scores, "higher_is_better": True}})
    with pytest.raises(ValueError, match="units"):
        ma.agreement_matrix({"x": {"scores": scores, "higher_is_better": True, "units": "u"},
                             "y": {"scores": {k: v[:5] for k, v in scores.items()}, "higher_is_better": True,
                                   "units": "u"}}, n_boot=200)
    with pytest.raises(ValueError, match="not a string"):
        ma.agreement_matrix({"x": {"scores": scores, "higher_is_better": "False"},
                             "y": {"scores": scores, "higher_is_better": True}})
    with pytest.raises(ValueError, match="name the point's methods"):
        ma.agreement_matrix({"x": {"point": point, "replicates": {"m0": reps["m0"]}, "higher_is_better": True},
                             "y": {"scores": scores, "higher_is_better": True}})
    with pytest.raises(ValueError, match="at least 200 draws"):
        ma.agreement_matrix({"x": {"point": point, "replicates": {k: v[:20] for k, v in reps.items()},
                                   "higher_is_better": True}, "y": {"scores": scores, "higher_is_better": True}})
    with pytest.raises(ValueError, match="n_boot"):
        ma.agreement_matrix({"x": {"scores": scores, "higher_is_better": True},
                             "y": {"scores": scores, "higher_is_better": True}}, n_boot=50)
    with pytest.raises(ValueError, match="at least 2 metrics"):
        ma.agreement_matrix({"x": {"scores": scores, "higher_is_better": True}})


def test_the_figure_shows_each_pair():
    import matplotlib.pyplot as plt
    base = _scores([0.1, 0.3, 0.5, 0.7])
    r = ma.agreement_matrix({"a": {"scores": base, "higher_is_better": True},
                             "b": {"scores": base, "higher_is_better": False}}, n_boot=200)
    fig = ma.plot_agreement(r)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert any(t.startswith("-1.00") for t in texts) and len(texts) == 1          # the lower triangle only
    plt.close(fig)


def test_draws_where_a_metric_ties_every_method_count_as_no_agreement():
    # one method of four scores 1 on a single unit of 30: a third of the draws leave the metric all tied
    rare = {f"m{k}": np.zeros(30) for k in range(4)}
    rare["m3"][0] = 1.0
    ordered = _scores([0.1, 0.2, 0.3, 0.9], n=30)
    r = ma.agreement_matrix({"rare": {"scores": rare, "higher_is_better": True},
                             "ordered": {"scores": ordered, "higher_is_better": True}}, n_boot=1000)
    assert r["undefined_draws"][0, 1] > 200 and r["low"][0, 1] == 0.0           # not a point-sized interval
    assert "counted as no agreement" in ma.agreement_sentence(r)
