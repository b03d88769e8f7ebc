"""xai_sweep: settings as an axis, and verdicts on how robust an ordering is."""
import keras
import numpy as np
import pytest

import xai_sweep as xs


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
    assert "| srg | A vs B | 3 | 2 | 1 | 0 | A: 67% | reversed somewhere |" in xs.robustness_table([ab])


def test_shared_references_are_marked():
    assert xs.shared_reference("blur", "blur") and xs.shared_reference("blur", "road")
    assert not xs.shared_reference(None, "road") and not xs.shared_reference("mean", "zeros")
    grid = _grid({("IG", "blur", "blur, pixels"): 0.5, ("G", "-", "blur, pixels"): 0.1})
    row = xs.robustness(grid, references={("IG", "blur"): "blur"}, metrics=("srg",), n_boot=200)[0]
    assert row["detail"][0]["shared_reference"] == ["IG"]


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
                            {k: v for k, v in xs.EVALUATIONS.items() if v["fill"] != "road"}, patch=4, steps=4)
    assert len(grid) == 2 * 4 and grid[("right", "-", "blur, patches")]["srg"].shape == (12,)
    row = xs.robustness(grid, metrics=("srg",), n_boot=300)[0]
    assert row["verdict"] == "robust" and row["leader"] == "right" and row["cells"] == 4
    with pytest.raises(ValueError, match="granularity"):
        xs.evaluate_grid(model, x, 0, {"right": {"-": right}}, {"bad": {"fill": "zeros", "granularity": "blocks"}},
                         patch=4)


def test_method_variants_give_every_setting_its_maps():
    from conftest import tiny_conv2d
    model = tiny_conv2d()
    x = np.random.default_rng(0).uniform(0, 255, (3, 12, 12, 3)).astype(np.float32)
    variants, references = xs.method_variants(model, x, 0, value_range=(0, 255), blur_sigma=2.0, ig_steps=4,
                                              tunnel_noise=(0.1,), tunnel_samples=2, rise_settings=((20, 3), (20, None)),
                                              uniform_samples=2)
    assert set(variants["IG"]) == {"zeros", "white", "mean", "blur", "uniform", "tunnel 0.1"}
    assert set(variants["RISE"]) == {"20 masks, cell 3", "20 masks, cell default"}
    assert all(m.shape == x.shape for m in variants["IG"].values())
    assert variants["Grad-CAM"]["default"].shape == (3, 12, 12)
    assert references[("IG", "blur")] == "blur" and not np.allclose(variants["IG"]["zeros"], variants["IG"]["blur"])
