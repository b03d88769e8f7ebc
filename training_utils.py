"""What training both models shares: augmented batches, a stratified validation split, a
schedule, saving a model atomically beside its provenance JSON, and the notebooks' training plots.

Axis key: N examples, B batch, T signal length, H, W image size, C channels, K classes.
"""
from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from typing import Callable

import keras
import numpy as np

__all__ = [
    "stratified_split",
    "AugmentedBatches",
    "fit",
    "library_versions",
    "save_model_with_provenance",
    "read_provenance",
    "save_figure",
    "plot_history",
    "plot_confusion",
]


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
        warmup_epochs: int = 2, verbose: int = 0):
    """Train with AdamW, linear warm-up then cosine decay; keep the weights of the best val epoch.

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
    keeper = _KeepBest()
    start = time.perf_counter()
    history = model.fit(batches, validation_data=(x_val.astype(np.float32), onehot(y_val)), epochs=epochs,
                        callbacks=[keeper], verbose=verbose)
    seconds = time.perf_counter() - start
    model.set_weights(keeper.best_weights)
    hist = {k: [float(v) for v in vals] for k, vals in history.history.items()}
    hist["best_epoch"] = keeper.best_epoch + 1
    return hist, seconds


class _KeepBest(keras.callbacks.Callback):
    """Keeps the weights of the epoch with the best val accuracy (ties: the lower val loss)."""

    def __init__(self):
        super().__init__()
        self.best, self.best_epoch, self.best_weights = None, -1, None

    def on_epoch_end(self, epoch, logs=None):
        key = (logs["val_accuracy"], -logs["val_loss"])
        if self.best is None or key > self.best:
            self.best, self.best_epoch = key, epoch
            self.best_weights = [w.copy() for w in self.model.get_weights()]


def library_versions() -> dict:
    import tensorflow as tf
    return {"python": platform.python_version(), "tensorflow": tf.__version__,
            "keras": keras.__version__, "numpy": np.__version__}


def save_model_with_provenance(model, path: str, provenance: dict) -> None:
    """Save ``model`` to ``path`` (.keras) and ``provenance`` to the .json beside it, atomically.

    Both are written to temporary files in the same folder and renamed into place, so an
    interrupted save never leaves a half-written model.
    """
    folder = os.path.dirname(os.path.abspath(path)) or "."
    os.makedirs(folder, exist_ok=True)
    json_path = os.path.splitext(path)[0] + ".json"
    fd, tmp_model = tempfile.mkstemp(suffix=".keras", dir=folder)
    os.close(fd)
    fd, tmp_json = tempfile.mkstemp(suffix=".json", dir=folder)
    try:
        model.save(tmp_model)
        with os.fdopen(fd, "w") as f:
            json.dump(provenance, f, indent=2, sort_keys=True)
            f.write("\n")
        os.replace(tmp_model, path)
        os.replace(tmp_json, json_path)
    finally:
        for tmp in (tmp_model, tmp_json):
            if os.path.exists(tmp):
                os.remove(tmp)


def read_provenance(path: str) -> dict:
    """The JSON written beside a saved model by :func:`save_model_with_provenance`."""
    with open(os.path.splitext(path)[0] + ".json") as f:
        return json.load(f)


# --- plots and figures shared by the notebooks ---

def save_figure(fig, path: str, dpi: int = 120) -> str:
    """Write a matplotlib figure to ``path`` through a temporary file and a rename."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    root, ext = os.path.splitext(path)
    fd, tmp = tempfile.mkstemp(suffix=ext or ".png", dir=folder)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", metadata={"Software": None} if ext == ".png" else None)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def plot_history(history: dict, title: str = ""):
    """Loss and accuracy per epoch, train and validation, with the chosen epoch marked."""
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    epochs = np.arange(1, len(history["loss"]) + 1)
    for ax, key in zip(axes, ("loss", "accuracy")):
        ax.plot(epochs, history[key], label="train (augmented)")
        ax.plot(epochs, history[f"val_{key}"], label="validation")
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
