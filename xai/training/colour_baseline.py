"""A colour baseline for HMT: how much of a tile's class its colours alone tell, on the same splits
as the CNN (the course's train/test split, and whole slides held out, fold by fold).

Features: each tile's histogram of every RGB channel and of every HED stain (Ruifrok's
deconvolution, ``xai.training.stain``), ``bins`` bins each, as shares of the tile's pixels, plus
each channel's mean and standard deviation: colour and its spread, no spatial layout. Classifier:
multinomial logistic regression on standardised features (scikit-learn), the same for every split.
Ignatov and Malivenko (2024) report above 82 % from colour histograms on NCT-CRC-HE.

Axis key: N tiles, H, W tile size, F features, K classes.
"""
from __future__ import annotations

import numpy as np

__all__ = ["BINS", "colour_features", "fit_predict", "slide_cv_predictions", "colour_sentence"]

BINS = 16
_HED_RANGE = (-0.3, 2.5)          # stain concentrations of H&E tiles fall inside (OD units)


def colour_features(x, *, bins: int = BINS, batch_size: int = 256) -> np.ndarray:
    """float32 (N, 6 * bins + 12): per-channel histograms (RGB on 0-255, HED on their range) as
    shares of pixels, then each of the 6 channels' mean and standard deviation.

    Args:
        x: RGB tiles uint8 or float (N, H, W, 3), 0-255.
    """
    from xai.training.stain import rgb_to_hed
    x = np.asarray(x)
    if x.ndim != 4 or x.shape[-1] != 3 or len(x) == 0:
        raise ValueError(f"tiles must be RGB (N, H, W, 3) in 0-255, got {x.shape}")
    if x.dtype != np.uint8 and (not np.isfinite(x).all() or x.min() < 0 or x.max() > 255):
        raise ValueError("float tiles must be finite and in 0-255")
    if not isinstance(bins, (int, np.integer)) or bins < 2:
        raise ValueError(f"bins must be an int >= 2, got {bins!r}")
    out = []
    for start in range(0, len(x), batch_size):
        rgb = x[start:start + batch_size].astype(np.float32)
        hed = rgb_to_hed(rgb).numpy()
        parts = [_histograms(rgb, (0.0, 255.0), bins), _histograms(hed, _HED_RANGE, bins)]
        for a in (rgb, hed):
            flat = a.reshape(len(a), -1, 3)                                  # (B, H * W, 3)
            parts += [flat.mean(1), flat.std(1)]
        out.append(np.concatenate(parts, 1))
    return np.concatenate(out).astype(np.float32)


def _histograms(a: np.ndarray, value_range, bins: int) -> np.ndarray:
    """(B, 3 * bins): each channel's histogram as shares of the pixels (values outside the range
    counted in the end bins)."""
    lo, hi = value_range
    index = np.clip(((a - lo) / (hi - lo) * bins).astype(np.int64), 0, bins - 1)   # (B, H, W, 3)
    flat = index.reshape(len(a), -1, 3)
    counts = np.stack([np.stack([np.bincount(t[:, c], minlength=bins) for c in range(3)]) for t in flat])
    return (counts / flat.shape[1]).reshape(len(a), -1)


def fit_predict(features_train, y_train, features_test, *, seed: int = 0) -> np.ndarray:
    """Train the baseline on one side and predict the other: float (N_test, K) probabilities over
    the classes present in training (classes absent from it get 0)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    y_train = np.asarray(y_train)
    if len(features_train) != len(y_train) or len(np.unique(y_train)) < 2:
        raise ValueError(f"need one label a training tile and at least 2 classes, got {len(features_train)} tiles, "
                         f"{len(y_train)} labels, classes {np.unique(y_train).tolist()}")
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=1.0, random_state=seed))
    model.fit(features_train, y_train)
    k = int(max(y_train.max() + 1, 8))
    prob = np.zeros((len(features_test), k))
    prob[:, model.classes_] = model.predict_proba(features_test)
    return prob


def slide_cv_predictions(features, y, slides, folds: list[list[str]], *, seed: int = 0) -> np.ndarray:
    """Each tile's predicted class from the baseline trained without its fold's slides: int (N,).
    ``folds``: the slide names of each fold, the CNN's own (``models/hmt_slide_cv.json``,
    ``folds_of_slides``), so both are scored on the same held-out tissue."""
    y, slides = np.asarray(y), np.asarray(slides)
    named = [s for f in folds for s in f]
    if sorted(named) != sorted(set(named)) or set(named) != set(np.unique(slides)):
        raise ValueError(f"folds must name every slide exactly once: folds {folds}, slides {sorted(set(slides))}")
    predicted = np.full(len(y), -1)
    for fold in folds:
        held = np.isin(slides, fold)
        predicted[held] = fit_predict(features[~held], y[~held], features[held], seed=seed).argmax(1)
    return predicted


def colour_sentence(baseline: dict, cnn_cv: dict) -> str:
    """The README's sentence: the colour baseline's accuracies beside the CNN's on the same splits
    (``models/hmt_colour_baseline.json`` and ``models/hmt_slide_cv.json``)."""
    held, course = baseline["slide_held_out"], baseline["course_split"]
    cnn_pooled, cnn_course = cnn_cv["summary"]["pooled"], cnn_cv["course_split"]
    ci = lambda a: f"[{a[0]:.3f}, {a[1]:.3f}]"                               # noqa: E731
    return (f"**Colour alone** (`tools/hmt_colour_baseline.py`: per-tile histograms of R, G, B and of the H, E, DAB "
            f"stains, logistic regression) scores {course['accuracy']:.3f} {ci(course['wilson95'])} on the course split, "
            f"against the CNN's {cnn_course['test_accuracy']:.3f}, and {held['pooled']['accuracy']:.3f} "
            f"{ci(held['pooled']['slide_bootstrap95'])} with each slide held out on the CNN's folds "
            f"({held['pooled_without_empty']['accuracy']:.3f} without `empty`), against the CNN's "
            f"{cnn_pooled['accuracy']:.3f} {ci(cnn_pooled['slide_bootstrap95'])}: on tiles of seen images colour is "
            f"{'as good as' if course['accuracy'] >= cnn_course['test_accuracy'] - 0.01 else 'below'} the CNN, and "
            f"across slides the CNN adds {cnn_pooled['accuracy'] - held['pooled']['accuracy']:+.3f} to it.")
