"""What the planted-shortcut benchmark measures: whether a model relies on its marker (on the model,
not assumed), how much of each map lies on the marker, against two reference maps, and whether a
method's mass on the marker tells a reliant model from the controls.

Conventions: relevance is the *positive* relevance (maps shaped like x have their channels summed,
signed, first); the class explained is the marked class, on every model, so that reliant and control
models are explained on the same inputs for the same class.

Axis key: N examples, T signal length, H, W image size, C channels, D positions, M models, B draws.
"""
from __future__ import annotations

import numpy as np

from xai.analysis.stats import auroc, kendall_tau
from xai.core import check_number, predict_scores
from xai.metrics.agreement import spearman
from xai.metrics.localisation import pointing_game, relevance_mass_accuracy, relevance_rank_accuracy

__all__ = ["reliance", "random_map", "edge_map", "marker_scores", "map_change", "flip_trend",
           "mean_interval", "detection", "rank_agreement"]


# --- reliance: does the model use the marker? ---

def _predicted(model, x, batch_size: int) -> np.ndarray:
    return predict_scores(model, np.asarray(x, np.float32), score="logit", batch_size=batch_size).argmax(1)


def reliance(model, x_clean, x_marked, y, marked_class: int, *, batch_size: int = 128,
             require_marked_class: bool = True) -> dict:
    """The flip rate and the accuracy drop on marker removal, measured on held-out examples.

    Args:
        x_clean, x_marked: the same held-out inputs without and with the marker; y: int (N,) labels.
        marked_class: the class whose training examples carried the marker.

    Returns:
        dict: ``flip_rate`` (of the other classes' examples the model gets right without the marker,
        the share predicted as ``marked_class`` with it), ``flip_n`` and ``flip_rate_by_class`` (class ->
        [flipped, of]); ``marked_accuracy_with`` and
        ``marked_accuracy_without`` (the marked class's accuracy with and without its marker) and
        ``accuracy_drop`` (with - without: what removing the marker costs; None without examples of
        the marked class where ``require_marked_class`` is False); ``accuracy_clean`` (all classes,
        no marker) and ``n``.
    """
    y = np.asarray(y)
    x_clean, x_marked = _check_batch(x_clean), _check_batch(x_marked)
    if x_clean.shape != x_marked.shape or y.ndim != 1 or len(y) != len(x_clean) or y.dtype.kind not in "iu":
        raise ValueError(f"x_clean and x_marked must have the same shape and y int labels for the same N examples, "
                         f"got {x_clean.shape}, {x_marked.shape} and y {y.dtype} {y.shape}")
    n_classes = int(model.output_shape[-1])
    if isinstance(marked_class, bool) or not isinstance(marked_class, (int, np.integer)) or not 0 <= marked_class < n_classes:
        raise ValueError(f"marked_class must be a class index in [0, {n_classes}), got {marked_class!r}")
    clean, marked = _predicted(model, x_clean, batch_size), _predicted(model, x_marked, batch_size)
    others = (y != marked_class) & (clean == y)                           # right without the marker
    own = y == marked_class
    if not others.any() or (require_marked_class and not own.any()):
        raise ValueError(f"need held-out examples of class {marked_class} and of other classes that the model "
                         f"gets right; got {int(own.sum())} and {int(others.sum())}")
    with_marker = float(np.mean(marked[own] == marked_class)) if own.any() else None
    without = float(np.mean(clean[own] == marked_class)) if own.any() else None
    by_class = {int(c): [int(np.sum(marked[others & (y == c)] == marked_class)), int(np.sum(others & (y == c)))]
                for c in np.unique(y[others])}
    return {"flip_rate": float(np.mean(marked[others] == marked_class)), "flip_n": int(others.sum()),
            "flip_rate_by_class": by_class,
            "marked_accuracy_with": with_marker, "marked_accuracy_without": without,
            "accuracy_drop": None if with_marker is None else with_marker - without,
            "accuracy_clean": float(np.mean(clean == y)), "n": int(len(y))}


# --- reference maps ---

def _check_batch(x) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim not in (3, 4) or len(x) == 0 or x.dtype.kind not in "fu":
        raise ValueError(f"x must be float or uint8 signals (N, T, C) or images (N, H, W, C), got {x.dtype} {x.shape}")
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        raise ValueError("x has NaN or inf values")
    return x


def random_map(x, *, seed: int = 0) -> np.ndarray:
    """Uniform random relevance a position, float32 (N, T) or (N, H, W): its expected mass on a
    mask is the mask's area share, so it checks the scorer."""
    x = _check_batch(x)
    return np.random.default_rng(check_number("seed", seed, 0, integer=True)).random(x.shape[:-1]).astype(np.float32)


def edge_map(x) -> np.ndarray:
    """The input's edge magnitude, float32 (N, T) or (N, H, W): the mean |difference| of each
    position to its neighbours along every axis (of an image's channel mean). Central differences
    and Sobel filters would miss a zigzag or a pixel checkerboard. A map that knows nothing of the
    model: what a method must beat to say something about it."""
    x = _check_batch(x).astype(np.float32).mean(-1)                       # (N, T) or (N, H, W)
    total = np.zeros_like(x)
    for axis in range(1, x.ndim):
        d = np.abs(np.diff(x, axis=axis))                                 # one shorter along axis
        before = [(0, 0)] * x.ndim
        after = [(0, 0)] * x.ndim
        before[axis], after[axis] = (1, 0), (0, 1)
        total += np.pad(d, before) + np.pad(d, after)                     # to the previous and the next
    return (total / (2 * (x.ndim - 1))).astype(np.float32)


# --- attribution on the marker ---

def marker_scores(maps, masks, x_shape) -> dict[str, np.ndarray]:
    """Per example: ``mass`` (share of positive relevance inside the mask), ``rank`` (share of the
    top-|mask| positions inside it) and ``pointing`` (1 where the map's maximum is on the marker:
    the method "flags" the marker). float (N,) each."""
    return {"mass": relevance_mass_accuracy(maps, masks, x_shape, absolute=False),
            "rank": relevance_rank_accuracy(maps, masks, x_shape, absolute=False),
            "pointing": pointing_game(maps, masks, x_shape, absolute=False)}


def map_change(maps_clean, maps_marked, x_shape) -> np.ndarray:
    """1 - Spearman correlation between the maps of the same inputs without and with the marker,
    per example: float (N,). For a marker no pixel map can localise (a hue shift), this is what a
    map can show: that something changed."""
    from xai.maps import saliency_positions
    a = saliency_positions(maps_clean, x_shape)
    b = saliency_positions(maps_marked, x_shape)
    return np.where((a == b).all(1), 0.0, 1.0 - spearman(a, b))          # two equal constant maps: no change


# --- detection: reliant models against the controls ---

def _resample_models(rng, scores: np.ndarray) -> np.ndarray:
    """One bootstrap draw of the rows (models), with replacement."""
    return scores[rng.integers(0, len(scores), len(scores))]


def mean_interval(rows, *, n_boot: int = 1000, seed: int = 0) -> dict:
    """Mean of per-input scores over models and inputs, float (M, N), with a 95 % bootstrap interval
    that resamples the models and the inputs (the same drawn inputs for every model)."""
    rows = np.asarray(rows, np.float64)
    if rows.ndim != 2 or rows.size == 0 or not np.isfinite(rows).all():
        raise ValueError(f"rows must be finite (M models, N inputs), got shape {rows.shape}")
    rng = np.random.default_rng(seed)
    n = rows.shape[1]
    draws = [_resample_models(rng, rows)[:, rng.integers(0, n, n)].mean()
             for _ in range(check_number("n_boot", n_boot, 1, integer=True))]
    low, high = np.percentile(draws, [2.5, 97.5])
    return {"mean": float(rows.mean()), "low": float(low), "high": float(high), "models": int(len(rows)), "n": int(n)}


def detection(reliant, controls, *, n_boot: int = 1000, seed: int = 0, keep_draws: bool = False) -> dict:
    """How well a per-example score (a method's mass on the marker) tells reliant models from
    controls on the same marked inputs: AUROC (reliant > control) with a 95 % bootstrap interval.

    Args:
        reliant, controls: float (M, N) each: one row a model (seeds, settings), one column an input,
            the same N inputs on both sides.
    The bootstrap resamples models within each side and the inputs jointly (every model keeps the
    same drawn inputs), so both the seeds and the inputs count in the interval. ``keep_draws``:
    the bootstrap's AUROCs too, as ``draws`` (B,) (e.g. for ``xai.analysis.metric_agreement``).
    """
    reliant, controls = np.asarray(reliant, np.float64), np.asarray(controls, np.float64)
    if reliant.ndim != 2 or controls.ndim != 2 or reliant.shape[1] != controls.shape[1]:
        raise ValueError(f"reliant and controls must be (M, N) with the same N inputs, got {reliant.shape} "
                         f"and {controls.shape}")
    if not (np.isfinite(reliant).all() and np.isfinite(controls).all()):
        raise ValueError("detection scores contain NaN or inf")
    rng = np.random.default_rng(seed)
    n = reliant.shape[1]
    draws = np.empty(check_number("n_boot", n_boot, 1, integer=True))
    for b in range(n_boot):
        cols = rng.integers(0, n, n)
        draws[b] = auroc(_resample_models(rng, reliant)[:, cols], _resample_models(rng, controls)[:, cols])
    low, high = np.percentile(draws, [2.5, 97.5])
    out = {"auroc": auroc(reliant, controls), "low": float(low), "high": float(high),
           "models": [int(len(reliant)), int(len(controls))], "n": int(n)}
    return dict(out, draws=draws) if keep_draws else out


def flip_trend(fractions, flip_rates, *, n_boot: int = 2000, seed: int = 0) -> dict:
    """Does reliance rise with the share p of marked training examples? Kendall's tau between the
    models' p and their flip rates (one value a model, the controls left out), with a 95 % bootstrap
    interval over the models, and the mean flip rate at each p. Seeds tie on p, so tau-b's largest
    value is below 1 (0.89 for two seeds at each of three p). ``rising``: the means never fall with p.

    Args:
        fractions, flip_rates: float (M,) each, one value a model; at least two different p.
    """
    p, f = np.asarray(fractions, np.float64).ravel(), np.asarray(flip_rates, np.float64).ravel()
    if p.shape != f.shape or len(p) < 3 or len(np.unique(p)) < 2:
        raise ValueError(f"flip_trend needs the p and flip rate of at least 3 models at 2 or more p, got {p.shape} "
                         f"and {f.shape} with p {np.unique(p).tolist()}")
    if not (np.isfinite(p).all() and np.isfinite(f).all()) or (p < 0).any() or (p > 1).any() or (f < 0).any() or (f > 1).any():
        raise ValueError("flip_trend's p and flip rates must be finite and in [0, 1]")
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(check_number("n_boot", n_boot, 1, integer=True)):
        rows = rng.integers(0, len(p), len(p))
        if np.ptp(p[rows]) > 0 and np.ptp(f[rows]) > 0:                     # a draw of one p has no tau
            draws.append(kendall_tau(p[rows], f[rows]))
    low, high = np.percentile(draws, [2.5, 97.5]) if draws else (np.nan, np.nan)
    tau = kendall_tau(p, f)
    by_p = {f"{q:g}": float(f[p == q].mean()) for q in np.unique(p)}
    return {"tau": None if np.isnan(tau) else tau, "low": None if np.isnan(low) else float(low),
            "high": None if np.isnan(high) else float(high), "models": int(len(p)), "mean_by_p": by_p,
            "rising": bool(all(a <= b for a, b in zip(list(by_p.values()), list(by_p.values())[1:])))}


def rank_agreement(methods, statistic_first, statistic_second, n: int, *, n_boot: int = 2000,
                   seed: int = 0) -> dict:
    """Kendall's tau between the methods' order by two statistics of the same N inputs, with a
    bootstrap interval over the inputs (the same drawn inputs for both statistics and every method).

    Args:
        methods: the methods' names (at least 3).
        statistic_first, statistic_second: ``f(method, inputs) -> float``: a method's score from the
            inputs at the int (N,) indices ``inputs`` (repeated indices count twice).
        n: the number of inputs.
    """
    methods = list(methods)
    if len(methods) < 3:
        raise ValueError(f"a rank agreement needs at least 3 methods, got {methods}")
    n = int(check_number("n", n, 2, integer=True))
    score = lambda cols: kendall_tau([statistic_first(m, cols) for m in methods],   # noqa: E731
                                     [statistic_second(m, cols) for m in methods])
    rng = np.random.default_rng(seed)
    draws = np.array([score(rng.integers(0, n, n)) for _ in range(check_number("n_boot", n_boot, 1, integer=True))])
    defined = draws[np.isfinite(draws)]                                     # a draw with one side all tied has no tau
    low, high = np.percentile(defined, [2.5, 97.5]) if len(defined) else (np.nan, np.nan)
    tau = score(np.arange(n))
    return {"tau": None if np.isnan(tau) else tau, "low": None if np.isnan(low) else float(low),
            "high": None if np.isnan(high) else float(high), "undefined_draws": int(len(draws) - len(defined)),
            "methods": methods, "n": n}
