"""xai/analysis/sweep.py: settings as an axis, and verdicts on how robust an ordering is."""
import keras
import numpy as np
import pytest

import xai.analysis.sweep as xs
from tests.conftest import tiny_conv2d
from xai.analysis.stats import paired_t_p_values
from xai.methods.cam import grad_cam_plus_plus
from xai.methods.gradients import expected_gradients
from xai.methods.integrated_gradients import integrated_gradients


def _grid(values: dict, n=30, seed=0):
    """{(method, setting, evaluation): SRG values around the given means}, paired through one noise."""
    noise = np.random.default_rng(seed).normal(0, 0.01, n)
    return {key: {"srg": mean + noise, "morf_auc": -mean + noise, "lerf_auc": mean + noise}
            for key, mean in values.items()}


def test_verdicts_robust_setting_dependent_and_reversed():
    grid = _grid({("A", "s1", "e1"): 0.5, ("A", "s1", "e2"): 0.5, ("B", "t1", "e1"): 0.1, ("B", "t1", "e2"): 0.2,
                  ("C", "u1", "e1"): 0.5, ("C", "u1", "e2"): 0.9})
    rows = {(r["metric"], r["first"], r["second"]): r for r in xs.robustness(grid, n_boot=300)}
    ab = rows[("srg", "A", "B")]
    assert ab["verdict"] == "robust" and ab["cells"] == 2 and ab["wins_first"] == 2 and ab["leader"] == "A"
    ac = rows[("srg", "A", "C")]                        # a tie in e1 (same values), C wins in e2
    assert ac["verdict"] == "setting-dependent" and ac["leader"] == "C" and ac["ties"] == 1
    bc = rows[("srg", "B", "C")]
    assert bc["verdict"] == "robust" and bc["leader"] == "C"
    assert rows[("morf_auc", "A", "B")]["leader"] == "A"           # lower is better on MoRF
    grid[("A", "s2", "e1")] = _grid({("x", "y", "z"): 0.0})[("x", "y", "z")]   # a setting of A that loses to B
    ab = {(r["metric"], r["first"], r["second"]): r for r in xs.robustness(grid, n_boot=300)}[("srg", "A", "B")]
    assert ab["verdict"] == "reversed somewhere" and ab["cells"] == 3 and ab["wins_second"] == 1
    assert "| srg | A vs B | 3 | 2 | 1 | 0 | reversed somewhere (A leads) |" in xs.robustness_table([ab])
    assert "A vs B (A wins 2, B 1 of 3 cells)" in xs.findings([ab], "toy")[0]
    with pytest.raises(ValueError, match="list of method names"):
        xs.findings([ab], "toy", methods="AB")


def test_not_resolved_when_no_cell_rejects_and_holm_guards_against_chance():
    grid = _grid({("A", "s", "e1"): 0.3, ("B", "t", "e1"): 0.3})
    row = xs.robustness(grid, metrics=("srg",), n_boot=200)[0]
    assert row["verdict"] == "not resolved" and row["ties"] == 1 and row["leader"] is None
    with pytest.raises(ValueError, match="metrics"):
        xs.robustness(grid, metrics=("auc",))
    with pytest.raises(ValueError, match="evaluations"):
        xs.robustness(grid, references={("A", "s"): "blur"})
    # 60 cells of pure noise: unadjusted, 4 would "win" by chance; Holm keeps the family at 5 %
    rng = np.random.default_rng(1)
    noise = {("A", "s", f"e{k}"): {m: rng.normal(0, 1, 30) for m in xs.SWEPT_METRICS} for k in range(60)}
    noise.update({("B", "t", f"e{k}"): {m: rng.normal(0, 1, 30) for m in xs.SWEPT_METRICS} for k in range(60)})
    row = xs.robustness(noise, metrics=("srg",), n_boot=100)[0]
    assert row["verdict"] == "not resolved" and min(c["p_holm"] for c in row["detail"]) > 0.05
    raw = paired_t_p_values([noise[("A", "s", f"e{k}")]["srg"] - noise[("B", "t", f"e{k}")]["srg"] for k in range(60)])
    assert np.sum(raw < 0.05) == 4


def test_evaluations_name_each_fill_and_grain_and_share_references_only_where_they_are_the_same():
    tiles = xs.evaluations((0, 255))
    assert list(tiles) == ["road, pixels", "road, patches", "blur, pixels", "blur, patches",
                           "constant 127.5, pixels", "constant 127.5, patches"]
    assert tiles["constant 127.5, pixels"] == {"fill": 127.5, "granularity": "pixels", "reference": None}
    assert xs.evaluations((-1, 1))["constant 0, patches"]["reference"] == "zeros"
    assert xs.evaluations((-5.48, 4.53))["constant -0.475, pixels"]["reference"] == "zeros"   # near 0: what zeros remove
    assert xs.shared_reference("blur", tiles["blur, pixels"]) and xs.shared_reference("blur", tiles["road, patches"])
    assert not xs.shared_reference(None, tiles["road, pixels"])
    assert not xs.shared_reference("zeros", tiles["constant 127.5, pixels"])
    with pytest.raises(ValueError, match="lo < hi"):
        xs.evaluations((1, 1))
    with pytest.raises(ValueError, match="grains"):
        xs.evaluations((0, 1), grains=("blocks",))
    grid = _grid({("IG", "blur", "blur, pixels"): 0.5, ("G", "-", "blur, pixels"): 0.1,
                  ("IG", "blur", "constant 127.5, pixels"): 0.5, ("G", "-", "constant 127.5, pixels"): 0.6})
    row = xs.robustness(grid, references={("IG", "blur"): "blur"}, evaluations=tiles, metrics=("srg",), n_boot=200)[0]
    assert [c["shared_reference"] for c in row["detail"]] == [["IG"], []]
    assert row["verdict"] == "reversed somewhere" and row["shared_cells"] == 1
    assert row["verdict_unshared"] == "robust" and row["leader_unshared"] == "G"   # G wins where nothing is shared
    assert row["leader"] is None and "[without the 1 shared-reference cells: robust, G leads]" in xs.findings(
        [row], "toy")[0]
    table = xs.settings_table(grid, references={("IG", "blur"): "blur"}, evaluations=tiles)
    assert "| IG | blur | +0.499 (1) † | +0.499 (2) | 1–2 of 2 |" in table     # the noise's mean is -0.001
    assert "| G | - | +0.099 (2) | +0.599 (1) | 1–2 of 2 |" in table


def test_evaluate_grid_on_a_model_with_a_known_answer():
    # the logit is the sum of positions 0..3: a map on them beats a map on the rest, in every evaluation
    weights = np.zeros((16, 2), np.float32)
    weights[:4, 0] = 0.05                           # logit about 3: the probability does not saturate
    inp = keras.Input((16, 1))
    model = keras.Model(inp, keras.layers.Softmax()(keras.layers.Dense(
        2, use_bias=False, kernel_initializer=keras.initializers.Constant(weights))(keras.layers.Flatten()(inp))))
    x = np.random.default_rng(0).uniform(1, 2, (12, 16, 1)).astype(np.float32)
    x[:, :4] *= 10                                  # the read positions stand out, so a blur removes them too
    right = np.zeros((12, 16), np.float32)
    right[:, :4] = 1 + np.random.default_rng(1).random((12, 4))
    wrong = np.zeros((12, 16), np.float32)
    wrong[:, 8:] = 1 + np.random.default_rng(2).random((12, 8))
    grid = xs.evaluate_grid(model, x, 0, {"right": {"-": right}, "wrong": {"-": wrong}},
                            {k: v for k, v in xs.evaluations((0, 20)).items() if v["fill"] != "road"}, patch=4, steps=4)
    assert len(grid) == 2 * 4 and grid[("right", "-", "blur, patches")]["srg"].shape == (12,)
    row = xs.robustness(grid, metrics=("srg",), n_boot=300)[0]
    assert row["verdict"] == "robust" and row["leader"] == "right" and row["cells"] == 4
    assert row["margin"]["low"] > 0 and "right > wrong (all 4 cells; narrowest margin +" in xs.findings([row], "t")[0]
    with pytest.raises(ValueError, match="granularity"):
        xs.evaluate_grid(model, x, 0, {"right": {"-": right}}, {"bad": {"fill": "zeros", "granularity": "blocks"}},
                         patch=4)


def test_method_variants_give_every_setting_its_maps():
    model = tiny_conv2d()
    x = np.random.default_rng(0).uniform(0, 255, (3, 12, 12, 3)).astype(np.float32)
    refs = np.random.default_rng(1).uniform(0, 255, (4, 12, 12, 3)).astype(np.float32)
    given = np.random.default_rng(2).random((3, 12, 12)).astype(np.float32)
    variants, references = xs.method_variants(
        model, x, 0, value_range=(0, 255), given={("SISE", "default"): given}, references=refs, blur_sigma=2.0,
        ig_steps=4, ig_tunnel_sigmas=(0.1,), tunnel_samples=2, smoothgrad_sigmas=(0.1,), smoothgrad_samples=2,
        expected_samples=4, rise_settings=((20, 3), (20, None)), uniform_samples=2)
    assert set(variants) == {"IG", "SmoothGrad", "Gradient × input", "Grad-CAM", "Grad-CAM++", "Score-CAM", "RISE",
                             "SISE"}
    assert set(variants["IG"]) == {"zeros", "white", "mean", "blur", "uniform", "expected", "tunnel 0.1"}
    assert set(variants["RISE"]) == {"20 masks, cell 3", "20 masks, cell default"}
    assert all(m.shape == x.shape for m in variants["IG"].values())
    assert variants["Grad-CAM"]["default"].shape == (3, 12, 12)
    np.testing.assert_array_equal(variants["SISE"]["default"], given)          # given maps are used as they are
    np.testing.assert_allclose(variants["Grad-CAM++"]["default"], grad_cam_plus_plus(model, x, 0), rtol=1e-6)
    assert references[("IG", "blur")] == "blur" and not np.allclose(variants["IG"]["zeros"], variants["IG"]["blur"])
    assert references[("IG", "tunnel 0.1")] == "zeros" and references[("Gradient × input", "default")] == "zeros"
    with pytest.raises(ValueError, match="not swept"):
        xs.method_variants(model, x, 0, value_range=(0, 255), given={("IG", "black"): given})
    with pytest.raises(ValueError, match="one map per example"):
        xs.method_variants(model, x, 0, value_range=(0, 255), given={("SISE", "default"): given[:2]})
    with pytest.raises(ValueError, match="repeats"):
        xs.method_variants(model, x, 0, value_range=(0, 255), ig_tunnel_sigmas=(0.1, 0.1))
    with pytest.raises(ValueError, match="lo < hi"):
        xs.method_variants(model, x, 0, value_range=255)


def test_completeness_by_baseline_is_exact_on_a_linear_model_and_expected_gradients_only_in_expectation():
    # IG is exact on a linear logit whatever the baseline; expected gradients only in expectation
    inp = keras.Input((16, 1))
    model = keras.Model(inp, keras.layers.Softmax()(keras.layers.Dense(
        2, kernel_initializer=keras.initializers.RandomNormal(seed=0))(keras.layers.Flatten()(inp))))
    x = np.random.default_rng(0).uniform(0, 1, (6, 16, 1)).astype(np.float32)
    refs = np.random.default_rng(1).uniform(0, 1, (8, 16, 1)).astype(np.float32)
    ig = {b: integrated_gradients(model, x, 0, baseline=b, steps=4, value_range=(0, 1), blur_sigma=2.0,
                                      baseline_samples=2) for b in ("zeros", "white", "mean", "blur", "uniform")}
    ig["expected"] = expected_gradients(model, x, 0, references=refs, samples=8)
    ig["tunnel 0.1"] = ig["zeros"]
    table = xs.completeness_by_baseline(model, x, 0, ig, value_range=(0, 1), references=refs, blur_sigma=2.0,
                                        uniform_samples=2)
    rows = {line.split(" | ")[0].lstrip("| "): line for line in table.splitlines()[2:]}
    assert set(rows) == {"zeros", "white", "mean", "blur", "uniform", "expected"}       # no row for the tunnel
    for baseline in ("zeros", "white", "mean", "blur", "uniform"):
        assert rows[baseline].endswith("| 1.000 | up to quadrature |"), rows[baseline]
    assert "in expectation" in rows["expected"]
    with pytest.raises(ValueError, match="references"):
        xs.completeness_by_baseline(model, x, 0, ig, value_range=(0, 1))


def test_one_rows_settings_and_their_maps_side_by_side():
    import matplotlib.pyplot as plt
    model = tiny_conv2d()
    x = np.random.default_rng(0).uniform(0, 255, (3, 12, 12, 3)).astype(np.float32)
    classes = model.predict(x, verbose=0).argmax(-1)
    variants, _ = xs.method_variants(model, x, classes, value_range=(0.0, 255.0), rows=["IG"], blur_sigma=2.0,
                                     uniform_samples=2, tunnel_samples=2, ig_tunnel_sigmas=(0.1,))
    assert list(variants) == ["IG"] and {"zeros", "white", "blur", "tunnel 0.1"} <= set(variants["IG"])
    with pytest.raises(ValueError, match="rows must be"):
        xs.method_variants(model, x, classes, value_range=(0.0, 255.0), rows=["Integrated"])
    grid = {("IG", "zeros", "road, pixels"): {"srg": np.array([0.1, 0.2, 0.3])},
            ("IG", "blur", "road, pixels"): {"srg": np.array([0.5, 0.5, 0.5])}}
    fig = xs.settings_maps_figure(x, {k: variants["IG"][k] for k in ("zeros", "blur", "white")}, grid, "IG")
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert "IG, blur\nSRG +0.500 (rank 1 of 2)" in titles and "IG, zeros\nSRG +0.200 (rank 2 of 2)" in titles
    assert "IG, white" in titles                                        # not in the grid: no score
    plt.close(fig)
