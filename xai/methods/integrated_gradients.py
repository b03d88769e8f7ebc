"""Integrated Gradients (Sundararajan et al., ICML 2017) with its quadrature rules (:func:`ig_nodes`),
its baselines (:func:`ig_baselines`: zeros, white, each example's mean, a blur, uniform noise, or
values) and the completeness gap (:func:`completeness_gap`), one definition for every baseline and
for expected gradients' reference sets. Built on the core (``xai/core.py``).

Axis key: N examples, T signal length, H, W image size, C channels, K classes, S steps,
B items in one model call, E examples in one call, R references.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from xai.core import (
    cached_step,
    check_batch_size,
    check_flag,
    check_input,
    check_number,
    check_references,
    check_value_range,
    even_chunk,
    explained_classes,
    padded_batches,
    path_gradients,
    predict_scores,
    progress_bar,
    score_model,
    sum_over_steps,
)

__all__ = ["IG_RULES", "IG_BASELINES", "ig_nodes", "ig_baselines", "gaussian_blur", "integrated_gradients",
           "completeness_gap"]

IG_RULES = ("riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid", "gausslegendre")
IG_BASELINES = ("zeros", "white", "mean", "blur", "uniform")


# --- Integrated Gradients ---

def ig_nodes(steps: int, rule: str = "gausslegendre") -> tuple[np.ndarray, np.ndarray]:
    """Points alpha in [0, 1] and weights of a quadrature rule for the path integral, (S,) each;
    the weights sum to 1, so a linear model's attributions are exact for every rule."""
    if rule not in IG_RULES:
        raise ValueError(f"unknown quadrature rule {rule!r}; expected one of {IG_RULES}")
    too_few = rule == "riemann_trapezoid" and not isinstance(steps, bool) and steps < 2
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1 or too_few:
        raise ValueError(f"steps must be an int >= {2 if rule == 'riemann_trapezoid' else 1}, got {steps!r}")
    i = np.arange(steps, dtype=np.float64)
    if rule == "gausslegendre":
        nodes, weights = np.polynomial.legendre.leggauss(steps)
        return (nodes + 1) / 2, weights / 2
    if rule == "riemann_trapezoid":
        weights = np.full(steps, 1.0 / (steps - 1))
        weights[[0, -1]] /= 2
        return i / (steps - 1), weights
    offset = {"riemann_left": 0.0, "riemann_right": 1.0, "riemann_middle": 0.5}[rule]
    return (i + offset) / steps, np.full(steps, 1.0 / steps)


def _broadcast_baseline(baseline, x: np.ndarray) -> np.ndarray:
    """None -> zeros; a scalar; an array broadcastable to one example; or per example (N, ...)."""
    if baseline is None:
        return np.zeros_like(x)
    b = np.asarray(baseline)
    if b.dtype.kind not in "fiub":
        raise ValueError(f"baseline must be None, one of {IG_BASELINES} or numeric values, got {baseline!r}")
    b = b.astype(np.float32)
    try:
        if b.ndim == x.ndim:
            out = np.broadcast_to(b, x.shape)
        else:
            out = np.broadcast_to(b, x.shape[1:])[None].repeat(len(x), 0)
    except ValueError:
        raise ValueError(f"baseline of shape {b.shape} does not broadcast to one example {x.shape[1:]} "
                         f"nor to the batch {x.shape}") from None
    if not np.isfinite(out).all():
        raise ValueError("baseline has non-finite values (NaN or inf)")
    return np.ascontiguousarray(out, np.float32)


def gaussian_blur(x, sigma: float) -> np.ndarray:
    """Each example blurred along its spatial axes (T, or H and W), channel by channel, by a Gaussian
    of standard deviation ``sigma`` positions/pixels, reflected at the edges (scipy.ndimage's
    "reflect", the kernel cut at 4 sigma): float32 shaped like ``x`` (N, T, C) or (N, H, W, C)."""
    from scipy.ndimage import gaussian_filter
    check_number("blur_sigma", sigma, low=0, low_open=True)
    x = np.asarray(x, np.float32)
    sigmas = (0,) + (float(sigma),) * (x.ndim - 2) + (0,)              # no blur across examples or channels
    return gaussian_filter(x, sigmas, mode="reflect", truncate=4.0, output=np.float32)


def ig_baselines(x, baseline=None, *, value_range=None, blur_sigma: float = 10.0, baseline_samples: int = 10,
                 seed: int = 0) -> list[np.ndarray]:
    """The baselines x' of Integrated Gradients: a list of float32 arrays shaped like ``x``, one per
    draw (one for every baseline but "uniform"), each example's baseline in its row.

    ``baseline``: None or "zeros" (all zeros, the default); "white" (the top of ``value_range``);
    "mean" (each example's mean per channel over its positions/pixels); "blur" (the example blurred
    by a Gaussian of ``blur_sigma`` positions/pixels, Fong and Vedaldi, ICCV 2017; Sturmfels et al.,
    Distill 2020); "uniform" (``baseline_samples`` draws uniform in ``value_range``, seeded, the same
    draws for every example, so an example's baseline does not depend on its batch); or values: a
    scalar, an array broadcastable to one example, or one per example (N, ...).
    "white" and "uniform" need ``value_range=(lo, hi)`` (never guessed from the data). The default
    ``blur_sigma`` (10) suits 150-pixel tiles; on a 40-position MNIST-1D signal it blurs the signal
    almost to its mean (use 1-2 positions there).
    """
    check_number("blur_sigma", blur_sigma, low=0, low_open=True)
    check_number("baseline_samples", baseline_samples, low=1, integer=True)
    check_number("seed", seed, low=0, integer=True)
    if value_range is not None:
        value_range = check_value_range(value_range, x, needed_for="a baseline")
    if not isinstance(baseline, str):
        return [_broadcast_baseline(baseline, x)]
    if baseline not in IG_BASELINES:
        raise ValueError(f"unknown baseline {baseline!r}; expected None, one of {IG_BASELINES}, or values "
                         "(a scalar, an array like one example, or one per example)")
    if baseline == "zeros":
        return [np.zeros(x.shape, np.float32)]
    if baseline == "mean":
        axes = tuple(range(1, x.ndim - 1))
        mean = x.astype(np.float64).mean(axis=axes, keepdims=True)                  # (N, 1.., C)
        return [np.ascontiguousarray(np.broadcast_to(mean, x.shape), np.float32)]
    if baseline == "blur":
        return [gaussian_blur(x, blur_sigma)]
    lo, hi = check_value_range(value_range, x, needed_for=f"baseline={baseline!r}")
    if baseline == "white":
        return [np.full(x.shape, hi, np.float32)]
    rng = np.random.default_rng(seed)
    draws = rng.uniform(lo, hi, size=(baseline_samples,) + x.shape[1:]).astype(np.float32)   # (k, ...)
    return [np.broadcast_to(draw, x.shape) for draw in draws]


def _ig_step(model, score: str, jit_compile: bool):
    """(xb, bb (E, ...), ab, wb (S,), cb (E,)) -> the weighted sum of gradients along the path (E, ...)."""
    forward = score_model(model, score)

    def step(xb, bb, ab, wb, cb):
        along_steps = [1, -1] + [1] * (len(xb.shape) - 1)                             # (1, S, 1..)
        grads, _ = path_gradients(forward, bb[:, None], xb[:, None], tf.reshape(ab, along_steps), cb, lead=2)
        return tf.reduce_sum(grads * tf.reshape(wb, along_steps), axis=1)              # (E, S, ...) -> (E, ...)
    return tf.function(step, jit_compile=jit_compile, reduce_retracing=True)


def _quadrature_gradients(step, x, base, classes, alphas, weights, e_chunk: int, s_chunk: int, bar) -> np.ndarray:
    """The quadrature-weighted gradient along the path from ``base`` to ``x``: float32 like x."""
    avg_grad = np.zeros_like(x)
    alphas, weights = alphas.astype(np.float32), weights.astype(np.float32)
    for a, b, (xb, bb, cb) in padded_batches(len(x), e_chunk, x, base, classes):
        avg_grad[a:b] += sum_over_steps(step, (xb, bb), cb, alphas, weights, s_chunk, bar)[: b - a]
    return avg_grad


def integrated_gradients(model, x, class_index=None, *, baseline=None, steps: int = 32,
                         rule: str = "gausslegendre", batch_size: int = 256, score: str = "logit",
                         return_delta: bool = False, jit_compile: bool = False, progress=None,
                         value_range=None, blur_sigma: float = 10.0, baseline_samples: int = 10, seed: int = 0):
    """Integrated Gradients (Sundararajan et al., ICML 2017): (x - x') times the path integral of
    the score's gradient along the straight line from the baseline x' to x, by quadrature. With
    several baselines ("uniform"), the mean of the attributions over the draws.

    Args:
        model: a Keras model.
        x: float32 (N, T, C) or (N, H, W, C).
        class_index: None (predicted class), an int, or an int array (N,).
        baseline: None or "zeros" (default), "white", "mean", "blur", "uniform" (see
            :func:`ig_baselines`), a scalar, an array broadcastable to one example, or (N, ...).
        steps: quadrature points S on the path.
        rule: the quadrature rule: "gausslegendre" (default; exact for polynomials of degree 2S - 1) or one of
            "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid".
        batch_size: model inputs per gradient call (examples x steps), so memory stays bounded.
        score: "logit" or "probability" (see :func:`score_model`).
        return_delta: also return the completeness gap.
        jit_compile: compile the gradient step with XLA.
        progress: show a progress bar (None: when there are more than 20 calls).
        value_range: (lo, hi), the range of the data's values; needed by "white" and "uniform".
        blur_sigma: the "blur" baseline's Gaussian standard deviation, in positions/pixels.
        baseline_samples: draws k of the "uniform" baseline.
        seed: seeds the "uniform" draws.

    Returns:
        attributions float32 shaped like x; with ``return_delta`` also delta float32 (N,) =
        sum(attributions) - (F(x) - mean_k F(x'_k)) (see :func:`completeness_gap`), which is 0 for
        an exact integral (completeness), for one baseline and for the mean over k draws alike.
    """
    x = check_input(model, x)
    bases = ig_baselines(x, baseline, value_range=value_range, blur_sigma=blur_sigma,
                         baseline_samples=baseline_samples, seed=seed)
    alphas, weights = ig_nodes(steps, rule)
    batch_size = check_batch_size(batch_size)
    classes = explained_classes(model, x, class_index, batch_size=batch_size)
    s_chunk = even_chunk(steps, batch_size)              # steps per call
    e_chunk = max(1, min(batch_size // s_chunk, len(x)))  # examples per call: e_chunk * s_chunk <= batch_size
    step = cached_step(model, _ig_step, score, check_flag(jit_compile, "jit_compile"))

    total = None
    n_calls = int(np.ceil(len(x) / e_chunk)) * int(np.ceil(steps / s_chunk)) * len(bases)
    with progress_bar(n_calls, "Integrated Gradients", progress) as bar:
        for base in bases:
            part = (x - base) * _quadrature_gradients(step, x, base, classes, alphas, weights, e_chunk, s_chunk, bar)
            total = part if total is None else total + part
    attributions = total if len(bases) == 1 else (total / len(bases)).astype(np.float32)
    if not return_delta:
        return attributions
    reference = _mean_scores(model, bases, classes, score, batch_size)
    delta, _ = _gap(model, x, attributions, classes, reference, score, batch_size)
    return attributions, delta


# --- the completeness gap, one definition for every baseline ---

def _mean_scores(model, bases: list, classes, score: str, batch_size: int) -> np.ndarray:
    """mean_k F(x'_k) of each example's class over its baselines: float64 (N,)."""
    rows = np.arange(len(classes))
    total = np.zeros(len(classes))
    for base in bases:
        total += predict_scores(model, base, score=score, batch_size=batch_size, check=False)[rows, classes]
    return total / len(bases)


def _gap(model, x, attributions, classes, reference, score: str, batch_size: int):
    """(delta, relative) for attributions against the reference scores F(x') (N,)."""
    rows = np.arange(len(x))
    f_x = predict_scores(model, x, score=score, batch_size=batch_size, check=False)[rows, classes]
    gap = f_x.astype(np.float64) - reference
    delta = np.asarray(attributions, np.float64).reshape(len(x), -1).sum(1) - gap
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = np.where(gap != 0, np.abs(delta) / np.abs(gap), np.inf)
    return delta.astype(np.float32), relative.astype(np.float32)


def completeness_gap(model, x, attributions, class_index=None, *, baseline=None, references=None,
                     score: str = "logit", batch_size: int = 256, value_range=None, blur_sigma: float = 10.0,
                     baseline_samples: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The completeness axiom, checked: ``delta = sum(attributions) - (F(x) - F(x'))`` per example,
    with F(x') the score the attributions are measured against:

    - ``baseline`` (as :func:`integrated_gradients` takes it, with the same ``value_range``,
      ``blur_sigma``, ``baseline_samples`` and ``seed``): F(x') = mean_k F(x'_k) over its draws
      (one draw for every baseline but "uniform"). Integrated Gradients meets it up to quadrature,
      for one baseline and for the mean over k draws alike.
    - ``references`` (R, ...): F(x') = the mean of F over the reference set, the expectation that
      :func:`xai.methods.gradients.expected_gradients` meets in expectation (exactly for a linear model
      when every reference is drawn equally often).

    The one definition used by ``integrated_gradients(return_delta=True)``, the tests, the benchmark
    and the notebooks. Returns ``(delta, relative)``, float32 (N,) each, with
    ``relative = |delta| / |F(x) - F(x')|`` (inf where the score does not change).
    """
    x = check_input(model, x)
    attributions = np.asarray(attributions, np.float64)
    if attributions.shape != x.shape:
        raise ValueError(f"attributions have shape {attributions.shape}, expected x's {x.shape}")
    batch_size = check_batch_size(batch_size)
    classes = explained_classes(model, x, class_index, batch_size=batch_size)
    if references is not None:
        if baseline is not None:
            raise ValueError("pass baseline (integrated gradients) or references (expected gradients), not both")
        refs = check_references(references, x)
        reference = predict_scores(model, refs, score=score, batch_size=batch_size, check=False).astype(
            np.float64).mean(0)[classes]                                            # (N,)
    else:
        bases = ig_baselines(x, baseline, value_range=value_range, blur_sigma=blur_sigma,
                             baseline_samples=baseline_samples, seed=seed)
        reference = _mean_scores(model, bases, classes, score, batch_size)
    return _gap(model, x, attributions, classes, reference, score, batch_size)
