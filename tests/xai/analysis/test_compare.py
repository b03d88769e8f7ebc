"""xai/analysis/compare.py: every metric on the same examples of a model with a known answer, the
tables, paired differences, claims and orderings (with the settings grid's verdicts), and the maps
stored on disk equal to those kept in memory."""
import os

import keras
import numpy as np
import pytest

import xai.analysis.compare as xc
import xai.analysis.sweep as xs
import xai.plots as xplt
from tests.conftest import tiny_conv1d, tiny_conv2d
from xai.methods.integrated_gradients import IG_RULES, integrated_gradients

REGION = slice(10, 20)


def _region_model(length=40):
    """p(class 0) = sigmoid-free softmax of [mean of x over 10..19, 0]: a probability model."""
    weights = np.zeros((length, 2), np.float32)
    weights[REGION, 0] = 1.0 / 10
    inp = keras.Input((length, 1))
    h = keras.layers.Dense(2, kernel_initializer=keras.initializers.Constant(weights))(keras.layers.Flatten()(inp))
    return keras.Model(inp, keras.layers.Softmax()(h))


def _region_map(n, length=40):
    maps = np.zeros((n, length), np.float32)
    maps[:, REGION] = np.linspace(1, 2, 10)[None]
    return maps


def test_compare_methods_table_and_differences():
    model = _region_model()
    rng = np.random.default_rng(2)
    x = rng.normal(0, 0.1, size=(12, 40, 1)).astype(np.float32)
    x[:, REGION] += 3                                         # the evidence sits in the region alone
    masks = np.zeros((12, 40), bool)
    masks[:, REGION] = True
    maps = {"Grad-CAM": _region_map(12), "IG": integrated_gradients(model, x, 0),
            "RISE": rng.random((12, 40)).astype(np.float32)}
    res = xc.compare_methods(model, x, maps, np.zeros(12, int), masks=masks, seconds={"Grad-CAM": 0.5},
                             road_steps=4, noise_std=0.0)
    assert set(res) == set(maps)
    np.testing.assert_allclose(res["Grad-CAM"]["relevance_mass"], 1.0)
    np.testing.assert_allclose(res["Grad-CAM"]["agreement_IG"], res["IG"]["agreement_Grad-CAM"])
    assert "relevance_mass_signed" in res["IG"] and "agreement_signed_RISE" in res["IG"]
    assert (res["Grad-CAM"]["srg"] > res["RISE"]["srg"]).mean() > 0.9    # the true region beats noise
    sanity = {k: {"correlation": np.full((2, 5), v)} for k, v in (("Grad-CAM", 0.1), ("IG", 0.5), ("RISE", 0.9))}
    table = xc.comparison_table(res, sanity)
    lines = table.splitlines()
    assert len(lines) == 5 and lines[0].startswith("| method | n |") and "| Grad-CAM | 12 |" in lines[2]
    assert "0.100 ± 0.000" in lines[2]
    rows = xc.paired_differences(res, sanity, n_boot=500)
    srg = next(r for r in rows if r["key"] == "srg" and r["first"] == "Grad-CAM" and r["second"] == "RISE")
    assert srg["better"] == "Grad-CAM"
    sanity_rows = [r for r in rows if r["key"] == "sanity"]
    assert len(sanity_rows) == 3 and all(r["n"] == 5 for r in sanity_rows)
    text = xc.differences_table(rows)
    assert "confidence interval" in text and "Grad-CAM − RISE" in text
    claims = xc.supported_claims(rows)
    assert any(c.startswith("Grad-CAM beats RISE on SRG") for c in claims)
    assert all("95 % CI" in c for c in claims)


def _rows(metric_values: dict, n=40, seed=0):
    """Paired results with known orderings: {method: mean} on SRG (higher better), MoRF (lower better)."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(0, 0.01, n)
    results = {m: {"srg": v + noise + rng.normal(0, 1e-4, n), "morf_auc": v + noise + rng.normal(0, 1e-4, n)}
               for m, v in metric_values.items()}
    return results, xc.paired_differences(results, n_boot=300)


def test_claims_write_the_difference_as_better_minus_worse():
    results, rows = _rows({"A": 0.5, "B": 0.2})
    claims = xc.supported_claims(rows)
    srg = next(c for c in claims if "SRG" in c)
    morf = next(c for c in claims if "MoRF" in c)
    assert srg.startswith("A beats B on SRG (ROAD) (higher is better: A − B = +0.300")
    assert morf.startswith("B beats A on MoRF AUC (ROAD) (lower is better: B − A = -0.300")


def test_orderings_mark_only_differences_that_hold():
    base = np.random.default_rng(1).normal(0.5, 0.01, 40)
    wiggle = np.resize([0.01, -0.01], 40)                             # paired differences of mean 0 exactly
    results = {"A": {"srg": base + 1e-6, "morf_auc": base}, "B": {"srg": base + wiggle, "morf_auc": base + wiggle},
               "C": {"srg": base - 0.4, "morf_auc": base - 0.4}}      # A and B tie; both beat C on SRG
    rows = xc.paired_differences(results, n_boot=300)
    order = xc.orderings(results, rows)
    assert order["SRG (ROAD) ↑"] == "A ≈ B > C (n = 40)"
    assert order["MoRF AUC (ROAD) ↓"].startswith("C > ")
    table = xc.orderings_table({"one": order, "two": {}})
    assert table.splitlines()[0] == "| metric | one | two |" and "| - |" in table


def test_tables_document_has_the_sections_the_readme_reads():
    results, rows = _rows({"A": 0.5, "B": 0.2})
    text = xc.tables_document([{"heading": "Toy (40)", "label": "toy", "results": results, "sanity": None,
                                "diffs": rows}], "completeness line.")
    headings = [line[4:] for line in text.splitlines() if line.startswith("### ")]
    assert headings == ["Toy (40)", "Summary: Toy (40)", xc.ORDERINGS_HEADING,
                        "Paired differences (95 % bootstrap confidence intervals)",
                        "Differences whose confidence interval excludes 0"]
    assert "- toy: A beats B on SRG" in text and text.rstrip().endswith("completeness line.")
    group = [{"heading": "Toy (40)", "label": "toy", "results": results, "sanity": None, "diffs": rows}]
    text = xc.tables_document(group, "completeness line.", extra_sections=[{"heading": "GridPG on HMT", "text": "| t |"}])
    assert text.rstrip().endswith("### GridPG on HMT\n\n| t |")
    for bad in ({"heading": "x"}, {"heading": "x", "text": "a\n### b"}, ("heading", "text")):
        with pytest.raises(ValueError, match="extra section"):
            xc.tables_document(group, "c.", extra_sections=[bad])


def _verdict(metric, a, b, verdict, leader):
    return {"metric": metric, "first": a, "second": b, "verdict": verdict, "leader": leader}


def test_orderings_and_the_claims_matrix_carry_the_grids_verdicts():
    results, rows = _rows({"A": 0.5, "B": 0.3, "C": 0.1})
    verdicts = xs.verdicts([_verdict("srg", "A", "B", "robust", "A"), _verdict("srg", "B", "C", "setting-dependent", "B"),
                            _verdict("srg", "A", "C", "robust", "A"),
                            _verdict("morf_auc", "B", "C", "robust", "B"),     # the grid's leader is not the default's
                            _verdict("morf_auc", "A", "B", "not resolved", None),
                            _verdict("morf_auc", "A", "C", "not resolved", None)])
    order = xc.orderings(results, rows, verdicts=verdicts)
    assert order["SRG (ROAD) ↑"] == "A >● B >◐ C (n = 40)"
    assert order["MoRF AUC (ROAD) ↓"] == "C >✕ B >○ A (n = 40)"
    matrix = xc.claims_matrix(results, rows, verdicts=verdicts)
    assert matrix["methods"] == ["A", "B", "C"] and matrix["metrics"] == ["MoRF AUC (ROAD) ↓", "SRG (ROAD) ↑"]
    srg, morf = matrix["metrics"].index("SRG (ROAD) ↑"), matrix["metrics"].index("MoRF AUC (ROAD) ↓")
    assert [matrix["marks"][i][srg] for i in range(3)] == ["●", "", ""]     # A: robust against both; marks on leaders only
    np.testing.assert_array_equal(matrix["tiers"][:, srg], [0, 1, 2])           # how many methods beat each
    assert [matrix["marks"][i][morf] for i in range(3)] == ["", "", "✕"]    # C leads: over A resolved nowhere, over B reversed
    np.testing.assert_array_equal(matrix["ranks"][:, srg], [1, 2, 3])
    np.testing.assert_allclose(matrix["values"][0, srg], results["A"]["srg"].mean())
    plain = xc.claims_matrix(results, rows)                                 # no grid: one setting only
    assert {m for r in plain["marks"] for m in r} == {""} and not any(plain["swept"])
    weakest = xs.verdicts([_verdict("srg", "A", "B", "robust", "A"), _verdict("srg", "A", "C", "robust", "C")])
    assert xc.claims_matrix(results, rows, verdicts=weakest)["marks"][0][srg] == "✕"   # reversed: the weakest win
    fig = xplt.plot_claims({"toy": matrix, "plain": plain})
    assert len(fig.axes) == 2 and fig.axes[0].get_title(loc="left") == "toy"
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert f"{results['A']['srg'].mean():.3f} ●" in texts and xc.CLAIMS_LEGEND.split()[0] in fig._supxlabel.get_text()
    import matplotlib.pyplot as plt
    plt.close(fig)
    with pytest.raises(ValueError, match="at least one"):
        xplt.plot_claims({})


def test_tables_document_gathers_the_sweeps():
    results, rows = _rows({"A": 0.5, "B": 0.2})
    verdicts = xs.verdicts([_verdict("srg", "A", "B", "robust", "A")])
    text = xc.tables_document([{"heading": "Toy (40)", "label": "toy", "results": results, "sanity": None,
                                "diffs": rows, "verdicts": verdicts}], "completeness line.",
                              [{"heading": "Sweep, toy", "text": "| a table |", "findings": ["toy, SRG: robust"]}])
    headings = [line[4:] for line in text.splitlines() if line.startswith("### ")]
    assert headings[-2:] == ["Findings across settings", "Sweep, toy"]
    assert "- toy, SRG: robust" in text and "A >● B" in text and f"Marks {xc.MARKS_LEGEND}." in text
    grid = xc.tables_document([{"heading": "T", "label": "toy", "results": results, "sanity": None, "diffs": rows,
                                "verdicts": verdicts, "grid_n": 12}], "c.")
    assert f"Marks {xc.MARKS_LEGEND}; the grid ran on toy: n = 12." in grid


def test_explain_all_gives_every_compared_method_its_maps_and_the_completeness_report_its_rows():
    model = tiny_conv1d()
    x = np.random.default_rng(0).normal(size=(3, 16, 1)).astype(np.float32)
    functions = xc.method_functions(rise_masks=50, seed=0)
    assert tuple(functions) == xc.METHOD_NAMES
    logged = []
    maps, seconds = xc.explain_all(model, x, np.zeros(3, int), functions, log=logged.append)
    assert maps["IG"].shape == x.shape and maps["Grad-CAM"].shape == (3, 16) and len(logged) == 4
    assert all(s > 0 for s in seconds.values())
    rows, text = xc.completeness_report(model, x, np.zeros(3, int), "tiny", steps_list=(4, 64))
    assert len(rows) == 2 * len(IG_RULES) and text.count("\n") == 3 + len(rows)
    gl64 = next(r for r in rows if r[0] == "gausslegendre" and r[1] == 64)
    assert gl64[4] < 1e-2


def test_explain_stored_equals_explain_all(tmp_path):
    model = tiny_conv2d()
    x = np.random.default_rng(0).uniform(0, 255, (10, 12, 12, 3)).astype(np.float32)
    classes = np.arange(10) % 4
    names = ("Grad-CAM", "IG", "RISE", "SISE")
    kept, _ = xc.explain_all(model, x, classes, xc.method_functions(rise_masks=50, seed=1), log=None)
    stored, seconds = xc.explain_stored(model, x, classes, names, str(tmp_path / "maps"), tag="t", rise_masks=50,
                                        seed=1, batch_size=32, log=None)
    assert sorted(stored) == sorted(names) and all(s > 0 for s in seconds.values())
    for name in names:
        np.testing.assert_allclose(stored[name], kept[name], rtol=1e-4, atol=1e-5, err_msg=name)
    assert sorted(os.listdir(tmp_path / "maps")) == ["t_grad_cam.h5", "t_integrated_gradients.h5", "t_rise.h5",
                                                     "t_sise.h5"]


def test_randomisation_repairs_run_both_checks_for_every_method_on_the_same_classes():
    model = tiny_conv1d()
    x = np.random.default_rng(3).normal(size=(4, 16, 1)).astype(np.float32)
    classes = np.array([0, 1, 2, 0])
    seen = []

    def blind(m, xb, c):
        seen.append(np.asarray(c).copy())
        return np.abs(xb[..., 0])
    out = xc.randomisation_repairs(model, x, classes, {"blind": blind}, samples=2)
    assert set(out) == {"blind"} and set(out["blind"]) == {"emprt", "smprt"}
    np.testing.assert_allclose(out["blind"]["emprt"]["ratio"], 1.0)
    np.testing.assert_allclose(out["blind"]["smprt"]["mean"], 1.0)
    assert all(np.array_equal(c, classes) for c in seen)


def test_every_method_runs_every_method_with_the_options_that_need_data():
    from xai.methods import METHODS
    model = tiny_conv1d()
    x = np.random.default_rng(0).normal(size=(3, 16, 1)).astype(np.float32)
    train = np.random.default_rng(1).normal(size=(20, 16, 1))
    refs = xc.draw_references(train, 8, seed=3)
    np.testing.assert_array_equal(refs, xc.draw_references(train, 8, seed=3))          # the same draw
    assert refs.dtype == np.float32 and len(refs) == 8
    functions = xc.every_method(refs, rise_masks=40, eg_samples=4, noise_samples=2, seed=5)
    assert list(functions) == [m.label for m in METHODS.values()]
    assert functions["RISE"].keywords == {"n_masks": 40, "seed": 5}
    assert functions["Expected gradients"].keywords["samples"] == 4
    assert functions["SmoothGrad"].keywords == {"seed": 5, "samples": 2} and functions["Grad-CAM"].keywords == {}
    classes = model.predict(x, verbose=0).argmax(-1)
    for label, f in functions.items():
        assert np.isfinite(np.asarray(f(model, x, classes))).all(), label
    named = xc.every_method(refs, rise_masks=40, eg_samples=4, key="name", rise_batch_size=16)
    assert set(named) == set(METHODS) and named["rise"].keywords["batch_size"] == 16
    assert "samples" not in named["smoothgrad"].keywords                                 # the library's default
    with pytest.raises(ValueError, match="key must be"):
        xc.every_method(refs, rise_masks=40, eg_samples=4, key="labels")
    for bad in ({"rise_masks": 0}, {"eg_samples": 2.5}, {"noise_samples": 0}, {"seed": -1}, {"rise_batch_size": 0}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            xc.every_method(refs, **{"rise_masks": 40, "eg_samples": 4, **bad})
    with pytest.raises(ValueError, match="references must be"):
        xc.every_method(np.full((4, 16, 1), np.nan), rise_masks=40, eg_samples=4)
    for bad in (0, 21, 2.0, True):
        with pytest.raises(ValueError, match="n must be an int"):
            xc.draw_references(train, bad)
