"""Evaluation with groups, for data whose examples come in correlated groups (HMT's tiles: slides
and source images): folds of whole groups with every class kept in training where the data allow,
Wilson and group-bootstrap intervals, and a probe of how well a model's features tell the group.
``tools/hmt_slide_cv.py`` runs them on HMT.

Axis key: N examples, F pooled features, K classes, S groups (slides), B bootstrap draws.
"""
from __future__ import annotations

import os

import numpy as np

from xai.analysis.stats import group_bootstrap, wilson

__all__ = ["INTERVAL_NOTES", "pooled_tiles", "tiny_subset", "load_pooled", "slide_folds", "train_held_out", "accuracy_block",
           "pooled_features", "slide_probe"]


# --- the tiles, pooled ---

def pooled_tiles(root: str | None = None, **load_args):
    """HMT's tiles with the course's train and test splits pooled, for evaluation across slides:
    x uint8 (N, 150, 150, 3), y int64 (N,), ``TileGroups`` (N,) and bool (N,), True for a tile of the
    course's test split. ``load_args`` go to ``hmt_utils.load_hmt`` (``progress``, ``cache_dir``)."""
    import hmt_utils as hmt
    (x_tr, y_tr), (x_te, y_te), _, (g_tr, g_te) = hmt.load_hmt(root, groups=True, **load_args)
    groups = hmt.TileGroups(np.concatenate([g_tr.slide, g_te.slide]), np.concatenate([g_tr.source_image, g_te.source_image]))
    return (np.concatenate([x_tr, x_te]), np.concatenate([y_tr, y_te]), groups,
            np.r_[np.zeros(len(y_tr), bool), np.ones(len(y_te), bool)])

def tiny_subset(root: str, work: str, seed: int) -> str:
    """A tiny copy of the HMT layout for smoke tests (symbolic links, in ``work``): in HMT_train one tile
    of each class from each slide that has it (about 70), in HMT_test one tile a class. Returns ``work``."""
    import hmt_utils as hmt
    rng = np.random.default_rng(seed)
    for split in hmt.SPLITS:
        for folder in hmt.CLASS_FOLDERS:
            names = sorted(n for n in os.listdir(os.path.join(root, split, folder)) if not n.startswith("."))   # as load_hmt
            by_slide = {}
            for name in names:
                by_slide.setdefault(hmt.tile_groups(name)[0], []).append(name)
            os.makedirs(os.path.join(work, split, folder), exist_ok=True)
            for slide in sorted(by_slide):
                if split == hmt.SPLITS[1] and len(by_slide) > 1 and slide != sorted(by_slide)[0]:
                    continue                                   # the test split: one slide's tile a class
                name = by_slide[slide][rng.integers(len(by_slide[slide]))]
                link = os.path.join(work, split, folder, name)
                if not os.path.lexists(link):
                    os.symlink(os.path.abspath(os.path.join(root, split, folder, name)), link)
    return work


def load_pooled(root: str | None, quick: bool, work: str, seed: int):
    """:func:`pooled_tiles` of ``root`` (None: ``hmt_utils.default_root()``); ``quick``: of a
    :func:`tiny_subset` made in ``work`` (and cached there), for smoke tests."""
    import hmt_utils as hmt
    root = hmt.default_root() if root is None else root
    if quick:
        root = tiny_subset(root, os.path.join(work, "hmt"), seed)
    return pooled_tiles(root, progress=not quick, cache_dir=os.path.join(work, "cache") if quick else None)


# --- a fold: trained on the other slides ---

def train_held_out(x, y, groups, held: list[str], config, *, label: str = ""):
    """Train the HMT CNN (``hmt_utils.train``, ``config``) on the tiles of the slides not in ``held`` and
    predict the held-out slides' tiles (no test-time augmentation). The epoch is chosen on a split of
    the training slides grouped by source image (a class on one source image stays in training).

    Args:
        x: uint8 (N, 150, 150, 3); y: int (N,); groups: ``hmt_utils.TileGroups`` (N,); held: slide names.
        label: printed before each epoch's line (seconds, validation accuracy).
    Returns:
        ``(model, info, prob, test)``: ``hmt_utils.train``'s info, float32 (N_test, K) probabilities of
        the held-out tiles and bool (N,), True for a held-out tile.
    """
    import time

    import keras

    import hmt_utils as hmt
    unknown = sorted(set(held) - set(np.unique(groups.slide).tolist()))
    if unknown:
        raise ValueError(f"held-out slides {unknown} are not among the tiles' slides {np.unique(groups.slide).tolist()}")
    test = np.isin(groups.slide, held)
    if not test.any() or test.all():
        raise ValueError(f"held-out slides {held} must hold some tiles and leave some: of {np.unique(groups.slide)}")
    train = ~test

    class EpochLine(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            print(f"{label}epoch {epoch + 1}: {time.perf_counter() - self.start:.0f} s, "
                  f"val_accuracy {logs.get('val_accuracy', float('nan')):.4f}", flush=True)

    model, info = hmt.train(x[train], y[train], config, groups=hmt.TileGroups(groups.slide[train], groups.source_image[train]),
                            one_group_classes="train", callbacks=[EpochLine()])
    prob = model.predict(x[test].astype(np.float32), batch_size=64, verbose=0)     # (N_test, K)
    return model, info, prob.astype(np.float32), test


# --- folds, intervals ---

def slide_folds(slides: np.ndarray, y: np.ndarray, n_folds: int, seed: int = 0, tries: int = 2000) -> list[list[str]]:
    """Deal the slides into ``n_folds`` folds of about equal tile counts such that, where the data
    allow, no fold holds all the slides of a class (so every class is in every training fold).

    Args:
        slides: str (N,) slide of each tile; y: int (N,) labels.
        n_folds: 2 to the number of slides; the number of slides gives leave-one-slide-out.
    Returns:
        the folds, each a sorted list of slide names, in a seeded order of search.
    """
    slides, y = np.asarray(slides), np.asarray(y)
    if slides.shape != y.shape or slides.ndim != 1:
        raise ValueError(f"slides and y must be (N,) each, got {slides.shape} and {y.shape}")
    names = np.unique(slides)
    if not isinstance(n_folds, int) or not 2 <= n_folds <= len(names):
        raise ValueError(f"n_folds must be an int in [2, {len(names)}] (the number of slides), got {n_folds!r}")
    if n_folds == len(names):
        return [[str(s)] for s in names]
    size = {s: int(np.sum(slides == s)) for s in names}
    class_slides = [set(np.unique(slides[y == c])) for c in np.unique(y)]
    rng = np.random.default_rng(seed)
    best = None
    for _ in range(tries):
        folds, load = [[] for _ in range(n_folds)], np.zeros(n_folds)
        for s in rng.permutation(names):                   # each slide to the lightest fold so far
            i = int(np.argmin(load))
            folds[i].append(str(s))
            load[i] += size[s]
        lost = sum(any(cs <= set(f) for f in folds) for cs in class_slides)   # classes a training fold would lack
        key = (lost, load.max() - load.min())
        if best is None or key < best[0]:
            best = (key, folds)
    return [sorted(f) for f in best[1]]


INTERVAL_NOTES = {
    "wilson95": "Wilson score interval: takes the tiles as independent. Tiles of one slide (and of one source image) "
                "are correlated, so it is too narrow; shown for comparison only (and in the figure's per-fold bars).",
    "slide_bootstrap95": "percentile interval with slides resampled (each with all its tiles): the one to read. With 10 "
                         "slides it is coarse, and it can miss its own point estimate; None under 3 slides.",
    "probe.difference_bootstrap95": "paired bootstrap over source images of (probe correct - class-only correct): "
                                    "assumes source images independent and holds the probe's predictions fixed.",
}


def accuracy_block(correct: np.ndarray, slides: np.ndarray, n_boot: int, seed: int) -> dict:
    n, k = int(len(correct)), int(np.sum(correct))
    return {"n": n, "correct": k, "accuracy": k / n if n else None, "wilson95": wilson(k, n),
            "slide_bootstrap95": group_bootstrap(correct, slides, n_boot, seed) if n else None,
            "slides": int(len(np.unique(slides)))}


# --- features and the slide-identity probe ---

def pooled_features(model, batches) -> np.ndarray:
    """The output of the model's last GlobalAveragePooling2D layer: float32 (N, F), from an
    iterable of input batches as the model takes them."""
    import keras
    pools = [layer for layer in model.layers if isinstance(layer, keras.layers.GlobalAveragePooling2D)]
    if not pools:
        raise ValueError(f"model {model.name!r} has no GlobalAveragePooling2D layer to probe")
    features = keras.Model(model.inputs[0] if len(model.inputs) == 1 else model.inputs, pools[-1].output)
    return np.concatenate([np.asarray(features(xb, training=False)) for xb in batches]).astype(np.float32)


def slide_probe(features: np.ndarray, slides: np.ndarray, y: np.ndarray, images: np.ndarray, *,
                n_splits: int = 5, n_boot: int = 2000, seed: int = 0, class_names=None) -> dict:
    """How well a linear classifier tells the slide from a model's pooled features.

    Logistic regression (standardised features) cross-validated with GroupKFold by source image, so
    no image is on both sides: it has to recognise the slide in tissue it has not seen. Read against
    chance (the majority slide's share of all tiles, the fair level; 1 / slides) and against the
    class alone (each class's most frequent slide in the training folds): classes are unevenly
    spread over slides, so the class already tells something about the slide. Features that beat
    the class baseline carry the slide itself.

    Why the class alone can fall below chance: a held-out source image takes its slide's tiles out
    of the training folds, so the training folds' most frequent slide (of a class, or overall) is
    biased away from the held-out tiles' own slide. ``majority_cv_accuracy`` measures that bias:
    the training folds' overall majority slide, predicted for every held-out tile, under the same
    folds. The probe learns from the features, not from counts, and does not suffer it.

    Args:
        features: float32 (N, F); slides, images: str (N,); y: int (N,) class labels.
    Returns:
        accuracies of the probe (with ``probe_bootstrap95``, source images resampled), the class-only
        baseline and chance, overall and per class.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    features = np.asarray(features, np.float32)
    if features.ndim != 2 or len(features) != len(slides) or not np.isfinite(features).all():
        raise ValueError(f"features must be finite (N, F) with N = {len(slides)}, got {features.shape}")
    n_splits = min(n_splits, len(np.unique(images)))
    probe_pred = np.empty(len(slides), dtype=slides.dtype)
    class_pred = np.empty(len(slides), dtype=slides.dtype)
    majority_pred = np.empty(len(slides), dtype=slides.dtype)
    for train, test in GroupKFold(n_splits=n_splits).split(features, slides, images):
        probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000, random_state=seed))
        probe_pred[test] = probe.fit(features[train], slides[train]).predict(features[test])
        majority = {}
        for c in np.unique(y[train]):
            names, counts = np.unique(slides[train][y[train] == c], return_counts=True)
            majority[c] = names[np.argmax(counts)]
        overall = np.unique(slides[train], return_counts=True)
        fallback = overall[0][np.argmax(overall[1])]
        class_pred[test] = [majority.get(c, fallback) for c in y[test]]
        majority_pred[test] = fallback
    names, counts = np.unique(slides, return_counts=True)
    probe_accuracy, class_only = float(np.mean(probe_pred == slides)), float(np.mean(class_pred == slides))
    difference = (probe_pred == slides).astype(float) - (class_pred == slides)   # (N,) in {-1, 0, 1}
    interval = group_bootstrap(difference, images, n_boot, seed)
    if interval is not None and interval[0] > 0:
        reading = "the features carry the slide beyond what the class tells (95 % interval of the difference above 0)"
    elif interval is not None and interval[1] < 0:
        reading = "the features tell the slide less well than the class alone does (95 % interval below 0)"
    else:
        reading = "the features tell the slide no better than the class alone does (95 % interval includes 0)"
    name = (lambda c: str(c)) if class_names is None else (lambda c: class_names[c])  # noqa: E731
    per_class = {name(c): {"n": int(np.sum(y == c)), "probe": float(np.mean(probe_pred[y == c] == slides[y == c])),
                                      "class_only": float(np.mean(class_pred[y == c] == slides[y == c]))}
                 for c in np.unique(y)}
    return {"probe_accuracy": probe_accuracy, "class_only_accuracy": class_only, "reading": reading,
            "probe_bootstrap95": group_bootstrap((probe_pred == slides).astype(float), images, n_boot, seed),
            "difference": float(difference.mean()), "difference_bootstrap95": interval,
            "bootstrap": (f"{n_boot} draws of the {len(np.unique(images))} source images (each with all its tiles), "
                          "paired for the difference; assumes source images independent, holds the probe's "
                          "cross-validated predictions fixed (no refitting)"),
            "chance_majority": float(counts.max() / counts.sum()), "chance_uniform": 1.0 / len(names),
            "majority_cv_accuracy": float(np.mean(majority_pred == slides)),
            "n_tiles": int(len(slides)), "n_slides": int(len(names)), "n_features": int(features.shape[1]),
            "cv": f"GroupKFold({n_splits}) by source image", "per_class": per_class}
