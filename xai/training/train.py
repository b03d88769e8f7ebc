"""What training both models shares: one config base and one training function (augmented batches,
a validation split from ``xai.training.splits``, a schedule, the best validation epoch kept, saved with
``xai.training.saving``); its figures are in ``xai.plots``.

Axis key: N examples, B batch, T signal length, H, W image size, C channels, K classes.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import keras
import numpy as np

from xai.training.saving import library_versions, save_model_with_provenance
from xai.training.splits import grouped_split, stratified_split

__all__ = [
    "TrainConfig",
    "validation_split",
    "train_model",
    "save_trained_model",
    "AugmentedBatches",
    "fit",
]


@dataclass(frozen=True)
class TrainConfig:
    """What every training recipe sets; each model's config adds its own fields to this base."""
    seed: int = 0                  # seeds weights, batch order, augmentation and the val split
    epochs: int = 60               # passes over the training split
    batch_size: int = 64
    learning_rate: float = 3e-3    # peak of the warm-up + cosine schedule
    weight_decay: float = 1e-4     # AdamW's decoupled weight decay
    label_smoothing: float = 0.05
    val_fraction: float = 0.1      # share of each class held out to choose the epoch
    warmup_epochs: int = 2         # linear warm-up before the cosine decay
    ema_decay: float = 0.0         # > 0: validate and keep an exponential moving average of the weights

    def __post_init__(self):
        checks = {"epochs": self.epochs >= 1, "batch_size": self.batch_size >= 1,
                  "learning_rate": self.learning_rate > 0, "weight_decay": self.weight_decay >= 0,
                  "label_smoothing": 0 <= self.label_smoothing < 1, "val_fraction": 0 < self.val_fraction < 1,
                  "warmup_epochs": self.warmup_epochs >= 0, "ema_decay": 0 <= self.ema_decay < 1}
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"invalid training config field(s) {bad}: {self}")


def validation_split(y: np.ndarray, config: TrainConfig, groups: np.ndarray | None = None,
                     one_group_classes: str = "raise") -> tuple[np.ndarray, np.ndarray]:
    """The split :func:`train_model` makes: ``(train_idx, val_idx)`` int arrays, stratified by class
    without ``groups``, else :func:`grouped_split` by them (seeded by ``config``)."""
    if groups is None:
        return stratified_split(y, config.val_fraction, config.seed)
    return grouped_split(y, groups, config.val_fraction, config.seed, one_group_classes=one_group_classes)


def train_model(build: Callable, x: np.ndarray, y: np.ndarray, config: TrainConfig, *,
                augment: Callable | None = None, callbacks: Sequence = (), verbose: int = 0,
                groups: np.ndarray | None = None, one_group_classes: str = "raise", jit_compile="auto"):
    """The one training path: seed everything, split off a validation set (stratified, or grouped
    with ``groups``), build the model with ``build()``, train (:func:`fit`) and keep the best
    validation epoch.

    Args:
        build: ``() -> keras.Model``, called after the seeds are set.
        x: (N, ...) training inputs; y: int (N,) labels. The test split never comes here.
        config: a :class:`TrainConfig` (or a subclass with the model's own fields).
        augment: ``f(batch, rng) -> batch`` or None.
        callbacks: extra Keras callbacks for ``fit`` (they run after the ones that keep the best epoch).
        groups: None (a :func:`stratified_split`), or str/int (N,) groups of the examples, e.g. the
            source image of each tile: then :func:`grouped_split` keeps every group on one side.
        one_group_classes: passed to :func:`grouped_split` ("raise" or "train").
        jit_compile: passed to Keras's ``compile`` (see :func:`fit`).

    Returns:
        ``(model, info)``: info holds the history, ``train_seconds``, ``best_epoch``,
        ``val_accuracy``, the config as a dict, the split's sizes, ``val_split`` ("stratified" or
        "grouped") and, for a grouped split, ``val_groups`` (groups a side, classes absent from val).
    """
    keras.utils.set_random_seed(config.seed)
    train_idx, val_idx = validation_split(y, config, groups, one_group_classes)
    if groups is None:
        val_groups = None
    else:
        groups = np.asarray(groups)
        val_groups = {"n_train": int(len(np.unique(groups[train_idx]))), "n_val": int(len(np.unique(groups[val_idx]))),
                      "classes_absent_from_val": sorted(set(np.unique(y).tolist()) - set(np.unique(y[val_idx]).tolist()))}
    model = build()
    history, seconds = fit(
        model, x[train_idx], y[train_idx], x[val_idx], y[val_idx],
        epochs=config.epochs, batch_size=config.batch_size, learning_rate=config.learning_rate,
        weight_decay=config.weight_decay, label_smoothing=config.label_smoothing, augment=augment,
        seed=config.seed, warmup_epochs=config.warmup_epochs, ema_decay=config.ema_decay, callbacks=callbacks,
        verbose=verbose, jit_compile=jit_compile)
    info = {"history": history, "train_seconds": seconds, "best_epoch": history["best_epoch"],
            "val_accuracy": max(history["val_accuracy"]), "config": asdict(config),
            "n_train": int(len(train_idx)), "n_val": int(len(val_idx)),
            "val_split": "stratified" if val_groups is None else "grouped", "val_groups": val_groups}
    return model, info


def save_trained_model(model, info: dict, path: str, test_accuracy: float, **extra) -> None:
    """Save a model trained by :func:`train_model` with its provenance JSON: seed, recipe, best
    epoch, validation and test accuracy, training time, library versions, plus ``extra`` fields
    (data arguments, data fingerprint, per-class accuracy...)."""
    provenance = {
        "seed": info["config"]["seed"], "train_config": info["config"], "best_epoch": info["best_epoch"],
        "val_accuracy": info["val_accuracy"], "test_accuracy": float(test_accuracy),
        "train_seconds": round(info["train_seconds"], 1), "history": info["history"],
        "versions": library_versions()}
    provenance.update(extra)
    save_model_with_provenance(model, path, provenance)


class AugmentedBatches(keras.utils.PyDataset):
    """Shuffled mini-batches with a numpy augmentation drawn from a seeded Generator.

    Args:
        x: (N, ...) inputs; y: (N, K) one-hot labels.
        augment: ``f(batch, rng) -> batch`` or None.
    """

    def __init__(self, x, y, batch_size: int, augment: Callable | None, seed: int):
        super().__init__(workers=1, use_multiprocessing=False)
        self.x, self.y, self.batch_size, self.augment = x, y, batch_size, augment
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(len(x))

    def __len__(self):
        return int(np.ceil(len(self.x) / self.batch_size))

    def __getitem__(self, i):
        idx = np.sort(self.order[i * self.batch_size:(i + 1) * self.batch_size])
        xb = self.x[idx].astype(np.float32)                    # (B, ...)
        if self.augment is not None:
            xb = self.augment(xb, self.rng).astype(np.float32)
        return xb, self.y[idx]                                    # y one-hot (B, K)

    def on_epoch_end(self):
        self.order = self.rng.permutation(len(self.x))


def fit(model, x_train, y_train, x_val, y_val, *, epochs: int, batch_size: int, learning_rate: float,
        weight_decay: float, label_smoothing: float, augment: Callable | None, seed: int,
        warmup_epochs: int = 2, ema_decay: float = 0.0, callbacks: Sequence = (), verbose: int = 0,
        jit_compile="auto"):
    """Train with AdamW, linear warm-up then cosine decay; keep the weights of the best val epoch.

    With ``ema_decay`` > 0 an exponential moving average of all the weights (batch-norm statistics
    included) is updated after every step (see :class:`_WeightAverage`); it is what is validated and
    kept (the raw weights' validation accuracy is in the history as ``raw_val_accuracy``; the
    seconds returned include that second validation pass).

    ``jit_compile``: Keras's (``"auto"``: XLA on an accelerator, not on a CPU; True: XLA everywhere,
    which fuses a network's elementwise layers, e.g. reflect padding's, into its convolutions).

    The validation split alone chooses the epoch. Returns ``(history dict, seconds)``.
    """
    num_classes = model.output_shape[-1]
    onehot = lambda y: np.eye(num_classes, dtype=np.float32)[y]  # noqa: E731  (N,) -> (N, K)
    batches = AugmentedBatches(x_train, onehot(y_train), batch_size, augment, seed)
    steps = epochs * len(batches)
    warmup = min(warmup_epochs * len(batches), steps // 2)
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0 if warmup else learning_rate, decay_steps=steps - warmup, alpha=0.01,
        warmup_target=learning_rate if warmup else None, warmup_steps=warmup)
    model.compile(optimizer=keras.optimizers.AdamW(schedule, weight_decay=weight_decay),
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing),
                  metrics=["accuracy"], jit_compile=jit_compile)
    x_val, y_val = x_val.astype(np.float32), onehot(y_val)
    average = _WeightAverage(ema_decay, x_val, y_val, batch_size) if ema_decay else None
    keeper = _KeepBest(average)
    start = time.perf_counter()
    history = model.fit(batches, validation_data=(x_val, y_val), epochs=epochs,
                        callbacks=[c for c in (average, keeper) if c is not None] + list(callbacks), verbose=verbose)
    seconds = time.perf_counter() - start
    model.set_weights(keeper.best_weights)
    hist = {k: [float(v) for v in vals] for k, vals in history.history.items()}
    hist["best_epoch"] = keeper.best_epoch + 1
    return hist, seconds


class _WeightAverage(keras.callbacks.Callback):
    """An exponential moving average of all the model's weights (batch-norm statistics included),
    updated after every training step n with decay min(decay, (1 + n) / (10 + n)): the average
    forgets its random start quickly, and the full decay is reached after about 10 / (1 - decay)
    steps (0.998: about 4500 steps, 35 epochs of HMT; 0.996 at 2500 steps). Validation sees the
    average: it is swapped in for fit's validation pass and the raw weights are put back after it;
    the raw weights' validation accuracy is logged as ``raw_val_accuracy`` (a second validation
    pass, inside fit's time). The average is installed in the model by :func:`fit` (through
    :class:`_KeepBest`), not by this callback."""

    def __init__(self, decay: float, x_val, y_val, batch_size: int):
        super().__init__()
        if not 0 < decay < 1:
            raise ValueError(f"ema decay must be in (0, 1), got {decay}")
        self.decay, self.x_val, self.y_val, self.batch_size = decay, x_val, y_val, batch_size
        self.average, self.dtypes, self.steps, self._raw = None, None, 0, None

    def on_train_begin(self, logs=None):
        start = self.model.get_weights()
        self.average = [np.array(w, dtype=np.float64) for w in start]
        self.dtypes = [w.dtype for w in start]
        self.steps, self._raw = 0, None

    def on_train_batch_end(self, batch, logs=None):
        d = min(self.decay, (1 + self.steps) / (10 + self.steps))
        for a, w in zip(self.average, self.model.get_weights()):
            a *= d
            a += (1 - d) * w
        self.steps += 1

    def weights(self) -> list:
        return [a.astype(dtype) for a, dtype in zip(self.average, self.dtypes)]

    def on_epoch_end(self, epoch, logs=None):
        # Runs after fit's validation pass (on the average, see on_test_begin): adds the raw weights'.
        if logs is not None and "val_accuracy" in logs:
            raw = self.model.evaluate(self.x_val, self.y_val, batch_size=self.batch_size, verbose=0,
                                      return_dict=True)
            logs["raw_val_accuracy"] = raw["accuracy"]

    def on_test_begin(self, logs=None):
        if self._raw is None and self.average is not None:
            self._raw = self.model.get_weights()
            self.model.set_weights(self.weights())

    def on_test_end(self, logs=None):
        if self._raw is not None:
            self.model.set_weights(self._raw)
            self._raw = None


class _KeepBest(keras.callbacks.Callback):
    """Keeps the weights of the epoch with the best val accuracy (ties: the lower val loss): the
    model's own weights, or ``average.weights()`` when a weight average is what was validated."""

    def __init__(self, average: _WeightAverage | None = None):
        super().__init__()
        self.average = average
        self.best, self.best_epoch, self.best_weights = None, -1, None

    def on_epoch_end(self, epoch, logs=None):
        key = (logs["val_accuracy"], -logs["val_loss"])
        if self.best is None or key > self.best:
            self.best, self.best_epoch = key, epoch
            self.best_weights = (self.average.weights() if self.average is not None
                                 else [w.copy() for w in self.model.get_weights()])
