"""xai/training/train.py: one training path: its configuration refuses impossible values, it keeps the
best validation epoch, validates and keeps the weight average (whose update rule is checked by hand),
validates on whole groups when given them, and saves a model with its provenance, portably."""
import json
import os
import zipfile

import keras
import numpy as np
import pytest

import xai.training.train as tu
from xai.training.saving import OLDEST_KERAS_CHECKED, read_provenance
from xai.training.splits import grouped_split, stratified_split


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
    _, val = stratified_split(y, config.val_fraction, config.seed)
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
    _, val = stratified_split(y, config.val_fraction, config.seed)
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


def test_saved_model_has_its_provenance_no_optimizer_state_and_predicts_the_same(tmp_path):
    x, y = _toy()
    model, info = tu.train_model(_tiny, x, y, tu.TrainConfig(epochs=1, batch_size=32))
    path = str(tmp_path / "toy.keras")
    tu.save_trained_model(model, info, path, 0.5, data_args={"seed": 7})
    meta = read_provenance(path)
    assert meta["data_args"] == {"seed": 7} and meta["test_accuracy"] == 0.5
    assert meta["saved_with_keras"] == keras.__version__
    assert meta["loads_in_keras"] == f">={OLDEST_KERAS_CHECKED}"
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


def test_train_model_with_groups_validates_on_whole_groups():
    x, y = _toy()
    groups = np.array([f"g{i // 6}" for i in range(len(y))])     # 20 groups of 6, both classes in each
    config = tu.TrainConfig(epochs=1, batch_size=32, val_fraction=0.25)
    _, info = tu.train_model(_tiny, x, y, config, groups=groups)
    train, val = grouped_split(y, groups, config.val_fraction, config.seed)
    assert info["val_split"] == "grouped" and (info["n_train"], info["n_val"]) == (len(train), len(val))
    assert info["val_groups"] == {"n_train": len(set(groups[train])), "n_val": len(set(groups[val])),
                                  "classes_absent_from_val": []}
    _, plain = tu.train_model(_tiny, x, y, config)
    assert plain["val_split"] == "stratified" and plain["val_groups"] is None
