"""What training both models shares: one config base, one training function (augmented batches, a
stratified or a grouped validation split, a schedule, the best validation epoch kept), saving a model
portably and atomically beside its provenance JSON, and the notebooks' training plots.

Axis key: N examples, B batch, T signal length, H, W image size, C channels, K classes.
"""
from __future__ import annotations

import json
import os
import platform
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import keras
import numpy as np

from xai.files import atomic_open, atomic_path

OLDEST_KERAS_CHECKED = "3.10"   # the oldest Keras the saved models were loaded in (see the README)

__all__ = [
    "TrainConfig",
    "train_model",
    "save_trained_model",
    "stratified_split",
    "grouped_split",
    "AugmentedBatches",
    "fit",
    "library_versions",
    "save_portable",
    "save_model_with_provenance",
    "read_provenance",
    "save_figure",
    "plot_history",
    "plot_confusion",
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


def train_model(build: Callable, x: np.ndarray, y: np.ndarray, config: TrainConfig, *,
                augment: Callable | None = None, callbacks: Sequence = (), verbose: int = 0,
                groups: np.ndarray | None = None, one_group_classes: str = "raise"):
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

    Returns:
        ``(model, info)``: info holds the history, ``train_seconds``, ``best_epoch``,
        ``val_accuracy``, the config as a dict, the split's sizes, ``val_split`` ("stratified" or
        "grouped") and, for a grouped split, ``val_groups`` (groups a side, classes absent from val).
    """
    keras.utils.set_random_seed(config.seed)
    if groups is None:
        train_idx, val_idx = stratified_split(y, config.val_fraction, config.seed)
        val_groups = None
    else:
        train_idx, val_idx = grouped_split(y, groups, config.val_fraction, config.seed,
                                           one_group_classes=one_group_classes)
        groups = np.asarray(groups)
        val_groups = {"n_train": int(len(np.unique(groups[train_idx]))), "n_val": int(len(np.unique(groups[val_idx]))),
                      "classes_absent_from_val": sorted(set(np.unique(y).tolist()) - set(np.unique(y[val_idx]).tolist()))}
    model = build()
    history, seconds = fit(
        model, x[train_idx], y[train_idx], x[val_idx], y[val_idx],
        epochs=config.epochs, batch_size=config.batch_size, learning_rate=config.learning_rate,
        weight_decay=config.weight_decay, label_smoothing=config.label_smoothing, augment=augment,
        seed=config.seed, warmup_epochs=config.warmup_epochs, ema_decay=config.ema_decay, callbacks=callbacks,
        verbose=verbose)
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


def stratified_split(y: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val) with ``val_fraction`` of each class in val, chosen by ``seed``."""
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    rng = np.random.default_rng(seed)
    train, val = [], []
    for label in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == label))
        n_val = int(round(len(idx) * val_fraction))
        val.append(idx[:n_val]), train.append(idx[n_val:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


_ONE_GROUP_CLASSES = ("raise", "train")
_MISSING_PENALTY = 1e3      # a class absent from one side costs more than any deviation of the shares can
_MAX_SWAPS = 200_000        # swaps weighed a step (val groups x train groups); above it, a seeded sample


def grouped_split(y: np.ndarray, groups: np.ndarray, val_fraction: float, seed: int, *,
                  one_group_classes: str = "raise") -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val) that keep every group whole on one side, with every class on both sides
    and each class's share in val close to ``val_fraction``, chosen by ``seed``.

    For tiles cut from larger images, the groups are the source images: neighbouring windows of one
    image share stain, focus and tissue, so a validation tile whose image is also in training is
    nearly a training tile. Groups may hold several classes.

    The search: groups are added to val in a seeded random order where that lowers the cost, then
    single moves and swaps of groups between the sides are made, the best first, until none lowers it.
    The cost is the sum over classes of (share in val - val_fraction)^2, plus a penalty for each class
    absent from one side; every class with groups enough ends on both sides.

    Args:
        y: int (N,) labels.
        groups: str or int (N,) group of each example (e.g. ``hmt_utils.TileGroups.source_image``).
        val_fraction: the share of each class wanted in val, in (0, 1).
        seed: seeds the order of the search; other seeds give other splits where the groups allow.
        one_group_classes: what to do with a class whose examples all lie in one group, which cannot be
            on both sides: "raise" (the default) stops with an error naming it; "train" keeps that group
            in training, and the class is absent from val.

    Returns:
        ``(train, val)``: sorted int64 index arrays, disjoint, covering all N examples.

    Raises:
        ValueError: y or groups of the wrong shape or dtype, val_fraction outside (0, 1), a class in one
            group only (with "raise"), or classes the groups do not allow on both sides.
    """
    y, groups = _check_grouped_inputs(y, groups, val_fraction, one_group_classes)
    classes, y_index = np.unique(y, return_inverse=True)
    names, group_index = np.unique(groups, return_inverse=True)
    k = len(classes)
    counts = np.bincount(group_index * k + y_index, minlength=len(names) * k).reshape(len(names), k)  # (G, K)
    per_class = counts.sum(0)                                                  # (K,)
    n_groups = (counts > 0).sum(0)                                             # (K,) groups holding each class
    lonely = np.flatnonzero(n_groups == 1)
    if len(lonely) and one_group_classes == "raise":
        which = ", ".join(f"class {classes[c]} ({per_class[c]} examples, all in group {names[counts[:, c] > 0][0].tolist()!r})"
                          for c in lonely)
        raise ValueError(f"{which}: a class in one group cannot be on both sides of a grouped split. Gather more "
                         "groups (source images) of it, or pass one_group_classes='train' to keep it in training "
                         "only (it is then absent from validation).")
    forced = (counts[:, lonely] > 0).any(1)                                    # (G,) groups that must stay in training
    judged = n_groups >= 2                                                     # (K,) classes that must be on both sides

    def cost(v):                                                               # v (..., K) -> (...)
        share = v[..., judged] / per_class[judged]
        missing = (v[..., judged] == 0) | (v[..., judged] == per_class[judged])
        return ((share - val_fraction) ** 2).sum(-1) + _MISSING_PENALTY * missing.sum(-1)

    rng = np.random.default_rng(seed)
    in_val, v = np.zeros(len(names), bool), np.zeros(k, np.int64)
    for g in rng.permutation(len(names)):                                      # a seeded greedy start
        if not forced[g] and cost(v + counts[g]) < cost(v):
            in_val[g], v = True, v + counts[g]
    for _ in range(10 * len(names)):                                           # then the best move or swap, until none helps
        movable = np.flatnonzero(~forced)
        moves = v + np.where(in_val[movable, None], -1, 1) * counts[movable]    # (M, K): one group changes side
        val_g, train_g = np.flatnonzero(in_val), np.flatnonzero(~in_val & ~forced)
        if len(val_g) * len(train_g) > _MAX_SWAPS:                             # many groups: a seeded sample of swaps
            train_g = np.sort(rng.choice(train_g, max(1, _MAX_SWAPS // max(len(val_g), 1)), replace=False))
        swaps = v - counts[val_g][:, None] + counts[train_g][None]             # (V, T, K): one out, one in
        best_move = int(np.argmin(cost(moves))) if len(movable) else None
        swap_costs = cost(swaps).ravel()
        best_swap = int(np.argmin(swap_costs)) if swap_costs.size else None
        now = cost(v)
        move_cost = cost(moves[best_move]) if best_move is not None else np.inf
        swap_cost = swap_costs[best_swap] if best_swap is not None else np.inf
        if min(move_cost, swap_cost) >= now - 1e-12:
            break
        if move_cost <= swap_cost:
            g = movable[best_move]
            in_val[g], v = not in_val[g], moves[best_move]
        else:
            i, j = divmod(best_swap, len(train_g))
            in_val[val_g[i]], in_val[train_g[j]], v = False, True, swaps[i, j]
    absent = classes[judged & ((v == 0) | (v == per_class))].tolist()
    if absent:
        raise ValueError(f"classes {absent} cannot be put on both sides with whole groups: their groups are shared "
                         "with classes held in training. Gather more groups of them, or use a stratified split.")
    val = np.flatnonzero(in_val[group_index])
    train = np.flatnonzero(~in_val[group_index])
    return train.astype(np.int64), val.astype(np.int64)


def _check_grouped_inputs(y, groups, val_fraction, one_group_classes) -> tuple[np.ndarray, np.ndarray]:
    y, groups = np.asarray(y), np.asarray(groups)
    if y.ndim != 1 or y.dtype.kind not in "iu" or len(y) < 2:
        raise ValueError(f"y must be int labels of shape (N,) with N >= 2, got {y.dtype} {y.shape}")
    if groups.shape != y.shape:
        raise ValueError(f"groups must hold one group per example: expected shape {y.shape}, got {groups.shape}; "
                         "pass e.g. the source image of each tile (hmt_utils.load_hmt(..., groups=True))")
    if groups.dtype.kind == "O" and not all(isinstance(g, (str, int, np.integer)) for g in groups):
        bad = next(g for g in groups if not isinstance(g, (str, int, np.integer)))
        raise ValueError(f"groups must be str or int ids, got an object array holding {bad!r}")
    if groups.dtype.kind not in "USiuO":
        raise ValueError(f"groups must be str or int ids, got dtype {groups.dtype}; map them to str or int "
                         "(float ids compare badly, NaN is never equal to itself)")
    if groups.dtype.kind == "O":
        groups = groups.astype(str)
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    if one_group_classes not in _ONE_GROUP_CLASSES:
        raise ValueError(f"one_group_classes must be one of {_ONE_GROUP_CLASSES}, got {one_group_classes!r}")
    return y, groups


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
        warmup_epochs: int = 2, ema_decay: float = 0.0, callbacks: Sequence = (), verbose: int = 0):
    """Train with AdamW, linear warm-up then cosine decay; keep the weights of the best val epoch.

    With ``ema_decay`` > 0 an exponential moving average of all the weights (batch-norm statistics
    included) is updated after every step (see :class:`_WeightAverage`); it is what is validated and
    kept (the raw weights' validation accuracy is in the history as ``raw_val_accuracy``; the
    seconds returned include that second validation pass).

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
                  metrics=["accuracy"])
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


def library_versions() -> dict:
    import tensorflow as tf
    return {"python": platform.python_version(), "tensorflow": tf.__version__,
            "keras": keras.__version__, "numpy": np.__version__}


# Arguments every Keras 3 initializer has known since 3.0. Newer Keras writes more (3.15 adds
# input_axes and output_axes), which older versions reject; initialisers matter only for training.
_INITIALIZER_ARGS = {"seed", "scale", "mode", "distribution", "mean", "stddev", "minval", "maxval",
                     "value", "gain"}


# Layer arguments that Keras versions newer than 3.10 write and 3.10 rejects, with their defaults:
# dropped where they hold that default (whatever Keras does the saving).
_NEWER_LAYER_ARGS = {"renorm": False, "renorm_clipping": None, "renorm_momentum": 0.99,
                     "quantization_config": None, "lora_alpha": None}


def _portable_config(node):
    """A Keras config tree that every Keras 3 from 3.10 reads.

    Newer Keras versions write constructor arguments that older ones reject (3.15: BatchNormalization's
    renorm, renorm_clipping, renorm_momentum; the initializers' input_axes, output_axes). Those layer
    arguments (:data:`_NEWER_LAYER_ARGS`) are dropped where they equal the constructor's default:
    leaving them out gives the same layer in every version that has them and loads in those that do
    not. Initializer configs keep only the arguments Keras 3.0 knew (they matter only for training).
    A non-default value of a newer argument is kept: older Keras cannot represent it anyway.
    """
    if isinstance(node, list):
        return [_portable_config(v) for v in node]
    if not isinstance(node, dict):
        return node
    node = {k: _portable_config(v) for k, v in node.items()}
    config = node.get("config")
    if isinstance(config, dict) and node.get("module") == "keras.initializers":
        node["config"] = {k: v for k, v in config.items() if k in _INITIALIZER_ARGS}
    elif isinstance(config, dict) and node.get("module") == "keras.layers":
        node["config"] = {k: v for k, v in config.items()
                          if not (k in _NEWER_LAYER_ARGS and _same(v, _NEWER_LAYER_ARGS[k]))}
    return node


def _same(value, default) -> bool:
    """A serialized config value equals a constructor default (tuples serialize as lists)."""
    if isinstance(default, tuple):
        default = list(default)
    try:
        return type(value) is type(default) and value == default
    except Exception:
        return False


def save_portable(model, path: str) -> None:
    """Save ``model`` as a ``.keras`` file for inference that loads with a plain
    ``keras.models.load_model(path)`` in every Keras the project supports (3.10 and newer).

    The file holds the architecture and the weights, nothing that matters only for training: no
    optimizer state, schedule or compile settings (an uncompiled copy is saved), and initializer
    configs reduced to the arguments every Keras 3 knows. Written to ``path`` directly; callers
    that need atomicity write to a temporary path and rename.
    """
    if not path.endswith(".keras"):
        raise ValueError(f"path must end in .keras, got {path!r}")
    try:
        copy = type(model).from_config(model.get_config())   # uncompiled: no optimizer, no compile config
        copy.set_weights(model.get_weights())
    except Exception as err:                            # subclassed models may not clone
        raise ValueError(f"cannot save {model.name!r} portably: it does not clone from its config "
                         f"({type(err).__name__}: {err}); use a Sequential or functional model") from err
    copy.save(path)
    with zipfile.ZipFile(path) as z:
        entries = [(info, z.read(info.filename)) for info in z.infolist()]
    with zipfile.ZipFile(path, "w") as z:
        for info, data in entries:
            if info.filename == "config.json":
                config = _portable_config(json.loads(data))
                config.pop("compile_config", None)
                data = json.dumps(config).encode()
            z.writestr(info, data)


def save_model_with_provenance(model, path: str, provenance: dict) -> None:
    """Save ``model`` portably (:func:`save_portable`) to ``path`` (.keras) and ``provenance`` to
    the .json beside it, atomically.

    Both are written to temporary files in the same folder and renamed into place, so an
    interrupted save never leaves a half-written model. The JSON also records the Keras version
    that saved the model and the oldest Keras the portable format is checked to load in.
    """
    folder = os.path.dirname(os.path.abspath(path)) or "."
    os.makedirs(folder, exist_ok=True)
    json_path = os.path.splitext(path)[0] + ".json"
    provenance = dict(provenance, saved_with_keras=keras.__version__,
                      loads_in_keras=f">={OLDEST_KERAS_CHECKED}")
    with atomic_open(json_path, "w") as f:                   # renamed second: never new provenance by an old model
        json.dump(provenance, f, indent=2, sort_keys=True)
        f.write("\n")
        with atomic_path(path, suffix=".keras") as tmp_model:
            save_portable(model, tmp_model)


def load_legacy_model(path: str):
    """A course model saved by Keras 2 (``.h5``), loaded by Keras 3 without compiling. Keras 3 warns
    that the file's first layer takes an ``input_shape`` argument, a property of the file that the
    reader can do nothing about; that one warning is silenced, any other passes."""
    import warnings
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no model file at {path!r}")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Do not pass an `input_shape`", category=UserWarning)
        return keras.models.load_model(path, compile=False)


def read_provenance(path: str) -> dict:
    """The JSON written beside a saved model by :func:`save_model_with_provenance`."""
    with open(os.path.splitext(path)[0] + ".json") as f:
        return json.load(f)


# --- plots and figures shared by the notebooks ---

def save_figure(fig, path: str, dpi: int = 120) -> str:
    """Write a matplotlib figure to ``path`` through a temporary file and a rename."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    ext = os.path.splitext(path)[1]
    with atomic_path(path, suffix=ext or ".png") as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", metadata={"Software": None} if ext == ".png" else None)
    return path


def plot_history(history: dict, title: str = ""):
    """Loss and accuracy per epoch, train and validation, with the chosen epoch marked. With a
    weight average (``raw_val_accuracy`` in the history) validation is the average's, and the raw
    weights' validation accuracy is drawn beside it."""
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    epochs = np.arange(1, len(history["loss"]) + 1)
    averaged = "raw_val_accuracy" in history
    for ax, key in zip(axes, ("loss", "accuracy")):
        ax.plot(epochs, history[key], label="train (augmented)")
        ax.plot(epochs, history[f"val_{key}"], label="validation, averaged weights" if averaged else "validation")
        if averaged and key == "accuracy":
            ax.plot(epochs, history["raw_val_accuracy"], lw=0.8, alpha=0.6, label="validation, raw weights")
        ax.axvline(history["best_epoch"], color="grey", ls=":", label=f"chosen epoch {history['best_epoch']}")
        ax.set_xlabel("epoch"), ax.set_ylabel(key), ax.grid(alpha=0.3)
    axes[1].legend(loc="lower right")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_confusion(y_true, y_pred, class_names: list[str], title: str = ""):
    """Confusion matrix (counts) and per-class accuracy, side by side. Returns (fig, per-class acc)."""
    import matplotlib.pyplot as plt
    from sklearn.metrics import confusion_matrix
    k = len(class_names)
    cm = confusion_matrix(y_true, y_pred, labels=np.arange(k))            # (K, K)
    per_class = cm.diagonal() / np.maximum(cm.sum(1), 1)
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [1.1, 1]})
    ax0.imshow(cm, cmap="Blues")
    for i in range(k):
        for j in range(k):
            ax0.text(j, i, cm[i, j], ha="center", va="center", fontsize=8,
                     color="white" if cm[i, j] > cm.max() / 2 else "black")
    ax0.set_xticks(range(k), class_names, rotation=45, ha="right"), ax0.set_yticks(range(k), class_names)
    ax0.set_xlabel("predicted"), ax0.set_ylabel("true"), ax0.set_title("confusion matrix")
    ax1.bar(range(k), per_class, color="tab:blue")
    for i, a in enumerate(per_class):
        ax1.text(i, a + 0.005, f"{a:.3f}", ha="center", fontsize=7)
    ax1.set_xticks(range(k), class_names, rotation=45, ha="right")
    ax1.set_ylim(max(0.0, per_class.min() - 0.1), 1.02), ax1.set_title("per-class accuracy")
    fig.suptitle(title)
    fig.tight_layout()
    return fig, per_class
