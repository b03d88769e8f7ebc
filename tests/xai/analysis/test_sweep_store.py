"""xai/analysis/sweep_store.py: the settings grid in stored batches, resumed, gathered in any order,
keyed so that another model or other options never mix in, and summarised as run_sweep does."""
import os

import numpy as np
import pytest

import xai.analysis.sweep as xs
import xai.analysis.sweep_store as store
from tests.conftest import tiny_conv2d

OPTIONS = dict(value_range=(0.0, 255.0), patch=4, blur_sigma=2.0, rise_settings=((24, None), (6, None), (24, 4)),
               steps=3, noise_std=0.01, noise_scale=255.0, seed=0, batch_size=32, smoothgrad_samples=2,
               expected_samples=2, tunnel_samples=2, uniform_samples=2)


@pytest.fixture(scope="module")
def setting():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (8, 12, 12, 3)).astype(np.float32)
    options = dict(OPTIONS, references=rng.uniform(0, 255, (3, 12, 12, 3)).astype(np.float32))
    model = tiny_conv2d()
    classes = model.predict(x, verbose=0).argmax(-1)
    return model, x, classes, options


def test_batches_are_stored_resumed_and_gathered_in_the_order_asked(setting, tmp_path):
    model, x, classes, options = setting
    key = store.sweep_key("model-a", x, classes, options)
    tiles = np.array([6, 1, 4, 3, 0])
    assert store.run_stored(model, x, classes, tiles[:3], tmp_path, key, options, batch_tiles=2, log=None) == 0
    assert len(os.listdir(tmp_path)) == 2 and store.stored_tiles(tmp_path, key).tolist() == [1, 4, 6]
    stamps = {n: os.path.getmtime(tmp_path / n) for n in os.listdir(tmp_path)}
    assert store.run_stored(model, x, classes, tiles, tmp_path, key, options, batch_tiles=2, log=None) == 0
    assert {n: os.path.getmtime(tmp_path / n) for n in stamps} == stamps           # only the new tiles computed
    assert store.stored_tiles(tmp_path, key).tolist() == [0, 1, 3, 4, 6]
    g = store.gather(tmp_path, key, tiles)
    again = store.gather(tmp_path, key, tiles[::-1])
    direct = store.run_batch(model, x[[3, 0]], classes[[3, 0]], options)            # the second run's batch
    for cell, scores in g["grid"].items():
        assert set(scores) == set(xs.SWEPT_METRICS) and all(len(v) == 5 for v in scores.values())
        np.testing.assert_array_equal(again["grid"][cell]["srg"], scores["srg"][::-1])
        np.testing.assert_allclose(scores["srg"][3:], direct["grid"][cell]["srg"], atol=1e-6)
    assert set(g["gaps"]) == set(direct["gaps"]) and g["batches"] == 3
    np.testing.assert_allclose(g["gaps"]["zeros"]["gap"][3:], direct["gaps"]["zeros"]["gap"], atol=1e-6)
    assert g["references"] == direct["references"] and g["evaluations"] == direct["evaluations"]


def test_load_sweep_summarises_as_run_sweep_does(setting, tmp_path):
    model, x, classes, options = setting
    key = store.sweep_key("model-a", x, classes, options)
    tiles = np.arange(6)
    store.run_stored(model, x, classes, tiles, tmp_path, key, options, batch_tiles=6, log=None)
    loaded = store.load_sweep(tmp_path, key, tiles, n_boot=200)
    draws = {k: v for k, v in options.items() if k.endswith("_samples")}
    direct = xs.run_sweep(model, x[tiles], classes[tiles], value_range=options["value_range"], patch=options["patch"],
                          references=options["references"], blur_sigma=options["blur_sigma"],
                          rise_settings=options["rise_settings"], steps=options["steps"], noise_std=options["noise_std"],
                          noise_scale=options["noise_scale"], n_boot=200, seed=0, batch_size=32, **draws)
    assert loaded["n"] == direct["n"] == 6 and loaded["n_settings"] == direct["n_settings"]
    assert loaded["settings_table"] == direct["settings_table"]
    assert loaded["robustness_table"] == direct["robustness_table"]
    assert loaded["completeness_table"] == direct["completeness_table"]
    assert {k: v["verdict"] for k, v in loaded["verdicts"].items()} == {k: v["verdict"] for k, v in direct["verdicts"].items()}


def test_another_key_is_never_read_and_bad_arguments_are_refused(setting, tmp_path):
    model, x, classes, options = setting
    key = store.sweep_key("model-a", x, classes, options)
    store.run_stored(model, x, classes, [0, 1], tmp_path, key, options, log=None)
    retrained = store.sweep_key("model-b", x, classes, options)
    other_options = store.sweep_key("model-a", x, classes, dict(options, steps=4))
    other_data = store.sweep_key("model-a", x[::-1], classes, options)
    other_classes = store.sweep_key("model-a", x, (classes + 1) % 4, options)
    for k in (retrained, other_options, other_data, other_classes):
        assert k != key and store.stored_tiles(tmp_path, k).size == 0
        with pytest.raises(LookupError, match="2 of 2 examples are not stored"):
            store.gather(tmp_path, k, [0, 1])
    with pytest.raises(LookupError, match="1 of 3"):
        store.gather(tmp_path, key, [0, 1, 2])
    assert store.run_stored(model, x, classes, [2, 3], tmp_path, key, options, deadline=0.0, log=None) == 2
    assert store.key_sha1(key) != store.key_sha1(retrained)
    with pytest.raises(ValueError, match="missing \\['patch'\\]"):
        store.sweep_key("m", x, classes, {k: v for k, v in options.items() if k != "patch"})
    with pytest.raises(ValueError, match="unknown \\['stride'\\]"):
        store.sweep_key("m", x, classes, dict(options, stride=2))
    with pytest.raises(ValueError, match="batch_tiles"):
        store.run_stored(model, x, classes, [0, 1], tmp_path, key, options, batch_tiles=1)
    with pytest.raises(ValueError, match="key does not match"):                  # a key of other options
        store.run_stored(model, x, classes, [0, 1], tmp_path, other_options, options)
    as_tuples = dict(key, options=dict(key["options"], value_range=(0.0, 255.0)))  # as built by hand: found all the same
    assert store.stored_tiles(tmp_path, as_tuples).tolist() == [0, 1]
    with pytest.raises(ValueError, match="at least 2"):
        store.gather(tmp_path, key, [])
    with pytest.raises(ValueError, match="classes must be int"):
        store.sweep_key("m", x, classes[:3], options)
    assert not [n for n in os.listdir(tmp_path) if not n.startswith("batch_")]     # no temporary file left


def test_summarise_grid_refuses_cells_of_different_lengths():
    grid = {("A", "s", "e"): {m: np.zeros(3) for m in xs.SWEPT_METRICS},
            ("B", "t", "e"): {m: np.zeros(4) for m in xs.SWEPT_METRICS}}
    with pytest.raises(ValueError, match="same examples"):
        xs.summarise_grid(grid, {}, {}, {})


def test_load_record_checks_the_model_the_data_and_the_tiles(setting, tmp_path):
    import json
    model, x, classes, options = setting
    model_path = tmp_path / "m.keras"
    model.save(model_path)
    key = store.sweep_key(store.file_sha1(model_path), x, classes, options)
    folder = tmp_path / "grid"
    store.run_stored(model, x, classes, [0, 1, 2], folder, key, options, log=None)
    record = {"key": key, "tiles": [0, 1, 2], "complete": True, "stored": 3, "command": "python tools/x.py"}
    (tmp_path / "grid.json").write_text(json.dumps(record))
    loaded = store.load_record(tmp_path / "grid.json", model_path, x, [2, 0, 1], n_boot=100)
    assert loaded["n"] == 3 and loaded["record"]["command"] == "python tools/x.py"
    tiny_conv2d(seed=5).save(tmp_path / "other.keras")
    with pytest.raises(ValueError, match="another model.*python tools/x.py"):
        store.load_record(tmp_path / "grid.json", tmp_path / "other.keras", x, [0, 1, 2])
    with pytest.raises(ValueError, match="other data"):
        store.load_record(tmp_path / "grid.json", model_path, x + 1, [0, 1, 2])
    with pytest.raises(ValueError, match="other tiles"):
        store.load_record(tmp_path / "grid.json", model_path, x, [0, 1])
    with pytest.raises(ValueError, match="other classes"):
        store.load_record(tmp_path / "grid.json", model_path, x, [0, 1, 2], classes=(classes + 1) % 4)
    (tmp_path / "grid.json").write_text(json.dumps(dict(record, quick=True)))
    with pytest.raises(ValueError, match="smoke run"):
        store.load_record(tmp_path / "grid.json", model_path, x, [0, 1, 2])


def test_load_or_compute_falls_back_and_says_why(setting, tmp_path):
    model, x, classes, options = setting
    said = []
    sweep, ran = store.load_or_compute(str(tmp_path / "none.json"), str(tmp_path / "m.keras"), x, [0, 1, 2],
                                       lambda t: {"n": len(t)}, fallback_tiles=[0, 1], log=said.append)
    assert sweep == {"n": 2} and ran.tolist() == [0, 1] and "is not there" in said[0] and "on 2 examples" in said[0]
