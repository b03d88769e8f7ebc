import json
import os
import zipfile

import keras
import numpy as np
import pytest

import xai.training.train as tu


def _tiny(seed=0):
    x = keras.Input((8, 1))
    h = keras.layers.Conv1D(3, 3, padding="same", kernel_initializer=keras.initializers.HeNormal(seed=seed))(x)
    h = keras.layers.BatchNormalization()(h)
    h = keras.layers.GlobalAveragePooling1D()(h)
    return keras.Model(x, keras.layers.Softmax()(keras.layers.Dense(2)(h)))


def _toy(n=120, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    x = (rng.normal(size=(n, 8, 1)) + y[:, None, None]).astype(np.float32)
    return x, y


@pytest.mark.parametrize("fraction", [0.1, 0.25, 0.5])
def test_stratified_split_keeps_class_proportions(fraction):
    y = np.repeat(np.arange(4), [40, 80, 120, 160])
    train, val = tu.stratified_split(y, fraction, seed=3)
    assert len(np.intersect1d(train, val)) == 0 and len(train) + len(val) == len(y)
    np.testing.assert_array_equal(np.bincount(y[val]), np.round(np.bincount(y) * fraction).astype(int))
    again, _ = tu.stratified_split(y, fraction, seed=3)
    np.testing.assert_array_equal(train, again)
    other, _ = tu.stratified_split(y, fraction, seed=4)
    assert not np.array_equal(train, other)


def test_train_config_refuses_impossible_values():
    for bad in ({"epochs": 0}, {"val_fraction": 1.0}, {"learning_rate": -1.0}, {"label_smoothing": 1.0},
                {"ema_decay": 1.0}, {"ema_decay": -0.1}):
        with pytest.raises(ValueError, match=list(bad)[0]):
            tu.TrainConfig(**bad)


def test_train_model_keeps_the_best_validation_epoch():
    x, y = _toy()
    config = tu.TrainConfig(epochs=4, batch_size=16, learning_rate=0.05, val_fraction=0.25)
    model, info = tu.train_model(_tiny, x, y, config)
    history = info["history"]
    keys = list(zip(history["val_accuracy"], [-v for v in history["val_loss"]]))
    assert keys[info["best_epoch"] - 1] == max(keys)
    assert info["val_accuracy"] == max(history["val_accuracy"])
    # the restored weights are the best epoch's: their validation loss is the recorded one
    _, val = tu.stratified_split(y, config.val_fraction, config.seed)
    model.compile(loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing))
    loss = model.evaluate(x[val], np.eye(2, dtype=np.float32)[y[val]], verbose=0, return_dict=True)["loss"]
    assert abs(loss - history["val_loss"][info["best_epoch"] - 1]) < 1e-4
    assert (info["n_train"], info["n_val"]) == (90, 30)


def test_weight_average_is_what_is_validated_and_kept():
    x, y = _toy()
    config = tu.TrainConfig(epochs=3, batch_size=16, learning_rate=0.05, val_fraction=0.25, ema_decay=0.9)
    seen = []
    extra = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append(dict(logs)))
    model, info = tu.train_model(_tiny, x, y, config, callbacks=[extra])
    history = info["history"]
    assert len(history["raw_val_accuracy"]) == 3
    # extra callbacks run after the average's: they see both validation accuracies
    assert [s["raw_val_accuracy"] for s in seen] == pytest.approx(history["raw_val_accuracy"])
    # the kept weights are the average's at the best epoch: their validation loss is the recorded one
    _, val = tu.stratified_split(y, config.val_fraction, config.seed)
    model.compile(loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing))
    loss = model.evaluate(x[val], np.eye(2, dtype=np.float32)[y[val]], verbose=0, return_dict=True)["loss"]
    assert abs(loss - history["val_loss"][info["best_epoch"] - 1]) < 1e-4


def test_weight_average_update_rule_and_swap():
    keras.utils.set_random_seed(0)
    model = _tiny()
    avg = tu._WeightAverage(0.5, None, None, 4)
    avg.set_model(model)
    avg.on_train_begin()
    start = [w.copy() for w in model.get_weights()]
    model.set_weights([w + 1.0 for w in start])
    avg.on_train_batch_end(0)            # first step: decay min(0.5, 1 / 10) = 0.1
    for a, w in zip(avg.weights(), start):
        np.testing.assert_allclose(a, w + 0.9, rtol=1e-6, atol=1e-6)
    avg.on_train_batch_end(1)            # second step: decay min(0.5, 2 / 11)
    d = 2 / 11
    for a, w in zip(avg.weights(), start):
        np.testing.assert_allclose(a, d * (w + 0.9) + (1 - d) * (w + 1.0), rtol=1e-6, atol=1e-6)
    # validation sees the average, and the raw weights come back after it
    avg.on_test_begin()
    for m, a in zip(model.get_weights(), avg.weights()):
        np.testing.assert_array_equal(m, a)
    avg.on_test_end()
    for m, w in zip(model.get_weights(), start):
        np.testing.assert_array_equal(m, w + 1.0)
    with pytest.raises(ValueError, match="ema decay"):
        tu._WeightAverage(1.0, None, None, 4)


def test_provenance_json_and_portable_file(tmp_path):
    x, y = _toy()
    model, info = tu.train_model(_tiny, x, y, tu.TrainConfig(epochs=1, batch_size=32))
    path = str(tmp_path / "toy.keras")
    tu.save_trained_model(model, info, path, 0.5, data_args={"seed": 7})
    meta = tu.read_provenance(path)
    assert meta["data_args"] == {"seed": 7} and meta["test_accuracy"] == 0.5
    assert meta["saved_with_keras"] == keras.__version__
    assert meta["loads_in_keras"] == f">={tu.OLDEST_KERAS_CHECKED}"
    assert {"seed", "train_config", "best_epoch", "val_accuracy", "train_seconds", "history", "versions"} <= set(meta)
    assert sorted(os.listdir(tmp_path)) == ["toy.json", "toy.keras"]            # no temporary files left
    with zipfile.ZipFile(path) as z:
        config = json.loads(z.read("config.json"))
        text = z.read("config.json").decode()
        with z.open("model.weights.h5") as f:
            import h5py
            weights = h5py.File(f, "r")
            stored = []
            if "optimizer" in weights:
                weights["optimizer"].visititems(lambda name, item: stored.append(name) if isinstance(item, h5py.Dataset) else None)
            assert stored == []                                                 # inference only: no optimizer state
    assert "compile_config" not in config
    for word in ("input_axes", "output_axes", "renorm"):
        assert word not in text
    loaded = keras.models.load_model(path)
    np.testing.assert_array_equal(loaded.predict(x[:5], verbose=0), model.predict(x[:5], verbose=0))


def test_portable_config_keeps_non_default_values():
    node = {"module": "keras.layers", "class_name": "BatchNormalization",
            "config": {"name": "bn", "momentum": 0.9, "renorm": True, "renorm_clipping": None, "renorm_momentum": 0.99}}
    out = tu._portable_config(node)["config"]
    assert out == {"name": "bn", "momentum": 0.9, "renorm": True}
    init = {"module": "keras.initializers", "class_name": "HeNormal", "config": {"seed": 3, "input_axes": None}}
    assert tu._portable_config(init)["config"] == {"seed": 3}
    rescale = {"module": "keras.layers", "class_name": "Rescaling", "config": {"scale": 0.5, "offset": 0.0}}
    assert tu._portable_config(rescale)["config"] == {"scale": 0.5, "offset": 0.0}   # known since 3.0: kept


def test_save_figure_is_atomic(tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, _ = plt.subplots()
    tu.save_figure(fig, str(tmp_path / "f.png"))
    assert os.listdir(tmp_path) == ["f.png"]


# --- the grouped validation split ---

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
    train, val = tu.grouped_split(y, groups, fraction, seed=0)
    assert train.dtype == val.dtype == np.int64
    np.testing.assert_array_equal(np.sort(np.concatenate([train, val])), np.arange(len(y)))
    assert not set(groups[train]) & set(groups[val])                            # no group on both sides
    assert set(y[train]) == set(y[val]) == set(y)                                # every class on both sides
    share = np.bincount(y[val], minlength=4) / np.bincount(y)
    assert np.abs(share - fraction).max() < 0.03, share                         # close to the fraction, per class


def test_grouped_split_is_seeded():
    y, groups = _grouped_toy()
    a = tu.grouped_split(y, groups, 0.2, seed=3)
    b = tu.grouped_split(y, groups, 0.2, seed=3)
    c = tu.grouped_split(y, groups, 0.2, seed=4)
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])


def test_grouped_split_takes_int_and_object_groups():
    y, groups = _grouped_toy()
    ids = np.unique(groups, return_inverse=True)[1]
    by_str = tu.grouped_split(y, groups, 0.2, seed=0)
    for same in (ids, ids.astype(np.int32), groups.astype(object)):
        np.testing.assert_array_equal(tu.grouped_split(y, same, 0.2, seed=0)[1], by_str[1])


def test_grouped_split_reaches_the_one_good_split_of_two_uneven_groups():
    # a class in two groups of 30 and 3: only the small one in val is close to 10 %
    y = np.r_[np.zeros(30), np.zeros(3), np.ones(40)].astype(int)
    groups = np.r_[["big"] * 30, ["small"] * 3, [f"b{i // 4}" for i in range(40)]]
    _, val = tu.grouped_split(y, groups, 0.1, seed=0)
    assert set(groups[val][y[val] == 0]) == {"small"}


def test_grouped_split_refuses_a_class_in_one_group_or_keeps_it_in_training():
    y = np.r_[np.zeros(20), np.ones(20)].astype(int)
    groups = np.r_[[f"a{i // 2}" for i in range(20)], ["only"] * 20]
    with pytest.raises(ValueError, match=r"class 1 \(20 examples, all in group 'only'\).*one_group_classes='train'"):
        tu.grouped_split(y, groups, 0.2, seed=0)
    train, val = tu.grouped_split(y, groups, 0.2, seed=0, one_group_classes="train")
    assert set(y[val]) == {0} and (y[train] == 1).sum() == 20


@pytest.mark.parametrize("groups, why", [
    (np.arange(5), r"expected shape \(6,\), got \(5,\)"),
    (np.zeros((6, 2)), "one group per example"),
    (np.linspace(0, 1, 6), "str or int ids, got dtype float64"),
    (np.array(["a", None, "b", "c", "d", "e"], dtype=object), "holding None"),
])
def test_grouped_split_checks_groups(groups, why):
    with pytest.raises(ValueError, match=why):
        tu.grouped_split(np.arange(6) % 2, groups, 0.5, seed=0)


def test_grouped_split_checks_labels_fraction_and_option():
    groups = np.array(list("aabbcc"))
    for y, fraction, option, why in ((np.linspace(0, 1, 6), 0.5, "raise", "int labels"),
                                     (np.arange(6) % 2, 1.0, "raise", "val_fraction"),
                                     (np.arange(6) % 2, 0.5, "drop", "one_group_classes")):
        with pytest.raises(ValueError, match=why):
            tu.grouped_split(y, groups, fraction, seed=0, one_group_classes=option)


def test_train_model_with_groups_validates_on_whole_groups():
    x, y = _toy()
    groups = np.array([f"g{i // 6}" for i in range(len(y))])     # 20 groups of 6, both classes in each
    config = tu.TrainConfig(epochs=1, batch_size=32, val_fraction=0.25)
    _, info = tu.train_model(_tiny, x, y, config, groups=groups)
    train, val = tu.grouped_split(y, groups, config.val_fraction, config.seed)
    assert info["val_split"] == "grouped" and (info["n_train"], info["n_val"]) == (len(train), len(val))
    assert info["val_groups"] == {"n_train": len(set(groups[train])), "n_val": len(set(groups[val])),
                                  "classes_absent_from_val": []}
    _, plain = tu.train_model(_tiny, x, y, config)
    assert plain["val_split"] == "stratified" and plain["val_groups"] is None


def test_grouped_split_says_when_shared_groups_leave_a_class_no_way_into_val():
    # class 0 lies only in the groups that hold all of class 1 and all of class 2: both stay in training
    y = np.r_[[0, 1, 1, 1], [0, 2, 2, 2]]
    groups = np.array(["p"] * 4 + ["q"] * 4)
    with pytest.raises(ValueError, match=r"classes \[0\] cannot be put on both sides"):
        tu.grouped_split(y, groups, 0.2, seed=0, one_group_classes="train")
