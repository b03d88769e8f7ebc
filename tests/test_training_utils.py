import json
import os
import zipfile

import keras
import numpy as np
import pytest

import training_utils as tu


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
