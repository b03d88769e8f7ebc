"""Gradient explanations, 1D and 2D: the plain gradient, gradient x input, the noise tunnel
(SmoothGrad, SmoothGrad², VarGrad) over any gradient method, and expected gradients.

Every method has the common front (``method(model, x, class_index=None, *, options)``),
validates at the door, and runs on the core of ``xai.core``: the score being explained, the
classes, fixed-shape batches of at most ``batch_size`` model inputs, compiled steps cached per
model, and the gradient along a path (:func:`xai.core.path_gradients`, also IG's). Integrated
Gradients' quadrature and baselines come from ``xai.methods.integrated_gradients``. The maps are signed
and shaped like the input; take ``np.abs(a).max(-1)`` for Simonyan et al.'s saliency map.

Random draws are the same for every example (noise draw k from ``(seed, k)``, reference draws
from ``seed``), so an example's map does not depend on its batch, its position or the batch size.

Axis key: N examples, T signal length, H, W image size, C channels, K classes, M noise samples or
reference draws, S steps on a path, E examples in one call, R references.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from xai.core import (
    SCORES,
    batches,
    cached_step,
    check_batch_size,
    check_choice,
    check_flag,
    check_input,
    check_number,
    check_references,
    check_value_range,
    even_chunk,
    explained_classes,
    input_gradients,
    pad_to,
    padded_batches,
    path_gradients,
    progress_bar,
    score_model,
    sum_over_steps,
)
from xai.methods.integrated_gradients import completeness_gap, ig_baselines, ig_nodes

__all__ = [
    "GRADIENT_BASES",
    "TUNNEL_KINDS",
    "saliency",
    "gradient_x_input",
    "noise_tunnel",
    "smoothgrad",
    "smoothgrad_squared",
    "vargrad",
    "tunnel_noise_draws",
    "expected_gradients",
]

GRADIENT_BASES = ("gradient", "gradient_x_input", "integrated_gradients")
TUNNEL_KINDS = ("smoothgrad", "smoothgrad_sq", "vargrad")
NOISE_UNITS = ("range", "absolute")


# --- the noise draws ---

def _draws(m0: int, m1: int, shape: tuple, seed: int) -> np.ndarray:
    """Standard normal draws m0..m1-1, float32 (M, ...): draw k from the generator seeded by (seed, k)."""
    return np.stack([np.random.default_rng([seed, k]).standard_normal(shape, np.float32) for k in range(m0, m1)])


def tunnel_noise_draws(samples: int, shape: tuple, *, seed: int = 0) -> np.ndarray:
    """The noise tunnel's standard normal draws, float32 (M, *shape) for one example's ``shape``
    (T, C) or (H, W, C); sample k is ``sigma * draw[k]`` added to every example. For inspection and tests."""
    check_number("samples", samples, low=1, integer=True)
    check_number("seed", seed, low=0, integer=True)
    return _draws(0, samples, tuple(shape), seed)


# --- the gradient step shared by the plain gradients and the noise tunnel ---

def _expand(t, rank: int, lead: int):
    """A (L,) tensor shaped to broadcast over ``lead`` leading axes and an example of ``rank`` axes."""
    return tf.reshape(t, [-1 if i == lead - 1 else 1 for i in range(lead)] + [1] * rank)


def _noisy(xb, sb, zb):
    """x + sigma z for every example and draw: (E, ...), (E,), (M, ...) -> (E, M, ...)."""
    rank = len(xb.shape) - 1
    return xb[:, None] + tf.reshape(sb, [-1, 1] + [1] * rank) * zb[None]


def _noisy_copy_gradients(forward, base: str, xb, bb, sb, zb, ab, wb, cb):
    """The weighted sum over the steps ab (weights wb) of the score's gradient on the path from the
    baseline bb to each noisy copy (for "gradient" and "gradient_x_input": at the copy): (E, M, ...)."""
    rank = len(xb.shape) - 1
    noisy = _noisy(xb, sb, zb)[:, :, None]                                         # (E, M, 1, ...)
    if base == "integrated_gradients":
        grads, _ = path_gradients(forward, bb[:, None, None], noisy, _expand(ab, rank, 3), cb, lead=3)   # (E, M, S, ...)
    else:
        grads = input_gradients(forward, noisy, cb, lead=3)                        # (E, M, 1, ...)
    return tf.reduce_sum(grads * _expand(wb, rank, 3), axis=2)                     # (E, M, ...)


def _moments(base: str, xb, bb, sb, zb, grads, mb):
    """The base method's attribution v of every noisy copy, summed over the valid draws (mb 1, padding 0):
    (sum v, sum v², sum (v - chunk mean)²), (E, ...) each."""
    rank = len(xb.shape) - 1
    if base == "gradient":
        v = grads
    elif base == "gradient_x_input":
        v = _noisy(xb, sb, zb) * grads
    else:
        v = (_noisy(xb, sb, zb) - bb[:, None]) * grads                             # (E, M, ...)
    w = _expand(mb, rank, 2)                                                       # (1, M, 1..)
    total = tf.reduce_sum(w * v, axis=1)                                           # (E, ...)
    centred = v - (total / tf.reduce_sum(mb))[:, None]
    return total, tf.reduce_sum(w * v * v, axis=1), tf.reduce_sum(w * centred * centred, axis=1)


def _tunnel_step(model, base: str, score: str, jit_compile: bool):
    """Every step of each draw in one call: (xb, bb, sb, zb, ab, wb, cb, mb) -> the three sums of :func:`_moments`."""
    forward = score_model(model, score)

    def step(xb, bb, sb, zb, ab, wb, cb, mb):
        return _moments(base, xb, bb, sb, zb, _noisy_copy_gradients(forward, base, xb, bb, sb, zb, ab, wb, cb), mb)
    return tf.function(step, jit_compile=jit_compile, reduce_retracing=True)


def _tunnel_gradient_step(model, base: str, score: str, jit_compile: bool):
    """Part of the steps of a path (more steps than a call holds): -> partial gradient sums (E, M, ...)."""
    forward = score_model(model, score)
    return tf.function(lambda *args: _noisy_copy_gradients(forward, base, *args), jit_compile=jit_compile,
                       reduce_retracing=True)


def _tunnel_moments_step(model, base: str):
    """(xb, bb, sb, zb, grads (E, M, ...), mb) -> the three sums of :func:`_moments` (no model call)."""
    return tf.function(lambda *args: _moments(base, *args), reduce_retracing=True)


def _tunnel(model, x, classes, *, base: str, kind: str, samples: int, sigma: np.ndarray, baseline: np.ndarray,
            alphas: np.ndarray, weights: np.ndarray, seed: int, batch_size: int, score: str, jit_compile: bool,
            progress, desc: str) -> np.ndarray:
    """The base method's attributions over ``samples`` noisy copies x + sigma z_k, reduced by ``kind``:
    float32 like x. Examples, draws and steps share calls, at most ``batch_size`` model inputs each."""
    steps = len(alphas)
    s_chunk = even_chunk(steps, batch_size)                            # steps per call
    m_chunk = even_chunk(samples, batch_size // s_chunk)               # draws per call
    e_chunk = max(1, min(batch_size // (s_chunk * m_chunk), len(x)))  # examples per call
    fused = s_chunk == steps                                           # a whole path in each call
    if fused:
        step = cached_step(model, _tunnel_step, base, score, jit_compile)
    else:
        gradient_step = cached_step(model, _tunnel_gradient_step, base, score, jit_compile)
        moments_step = cached_step(model, _tunnel_moments_step, base)
    # output-sized accumulators (float32, as the output): the sum, then the mean of v; the sum of v²
    # or of the squared deviations from the mean
    mean = np.zeros(x.shape, np.float32)
    second = np.zeros(x.shape, np.float32) if kind != "smoothgrad" else None
    noiseless = not np.any(sigma)
    done = 0
    n_calls = int(np.ceil(samples / m_chunk)) * int(np.ceil(len(x) / e_chunk)) * (1 if fused else
                                                                                   int(np.ceil(steps / s_chunk)))
    with progress_bar(n_calls, desc, progress) as bar:
        for m0, m1 in batches(samples, m_chunk):
            n_new = m1 - m0
            z = np.zeros((n_new,) + x.shape[1:], np.float32) if noiseless else _draws(m0, m1, x.shape[1:], seed)
            zb = tf.constant(pad_to(z, m_chunk))
            mb = tf.constant(pad_to(np.ones(n_new, np.float32), m_chunk))              # padded draws weigh 0
            for a, b, (xb, bb, sb, cb) in padded_batches(len(x), e_chunk, x, baseline, sigma, classes):
                if fused:
                    sums = step(xb, bb, sb, zb, tf.constant(alphas), tf.constant(weights), cb, mb)
                    bar.update()
                else:
                    grads = sum_over_steps(gradient_step, (xb, bb, sb, zb), cb, alphas, weights, s_chunk, bar)
                    sums = moments_step(xb, bb, sb, zb, tf.constant(grads), mb)
                total, squares, deviations = (t.numpy()[: b - a] for t in sums)
                if kind == "smoothgrad":
                    mean[a:b] += total
                elif kind == "smoothgrad_sq":
                    second[a:b] += squares
                else:                                                  # pooled variance (Chan et al. 1979)
                    delta = total / n_new - mean[a:b]
                    mean[a:b] += delta * n_new / (done + n_new)
                    second[a:b] += deviations + delta ** 2 * done * n_new / (done + n_new)
            done += n_new
    out = mean if kind == "smoothgrad" else second
    return (out / samples).astype(np.float32)


def _gradient_front(model, x, class_index, batch_size, score, jit_compile):
    """The checks every gradient method shares, for an ``x`` that passed check_input; the classes explained."""
    batch_size = check_batch_size(batch_size)
    check_choice(score, SCORES, "score")
    jit_compile = check_flag(jit_compile, "jit_compile")
    classes = explained_classes(model, x, class_index, batch_size=batch_size)
    return x, classes, batch_size, jit_compile


# --- plain gradients ---

def saliency(model, x, class_index=None, *, batch_size: int = 256, score: str = "logit", jit_compile: bool = False,
             progress=None) -> np.ndarray:
    """The gradient of the score with respect to the input (Simonyan, Vedaldi and Zisserman, ICLR
    workshop 2014, "Deep inside convolutional networks"), signed.

    Args:
        model: a Keras model; x: float32 (N, T, C) or (N, H, W, C).
        class_index: None (predicted class), an int, or an int array (N,).
        batch_size: model inputs per gradient call.
        score: "logit" (the paper's class score, pre-softmax) or "probability".
        jit_compile: compile the gradient step with XLA. progress: a progress bar (None: > 20 calls).

    Returns:
        float32 shaped like x; the paper's map is ``np.abs(g).max(-1)``.
    """
    x = check_input(model, x)
    x, classes, batch_size, jit_compile = _gradient_front(model, x, class_index, batch_size, score, jit_compile)
    one = np.ones(1, np.float32)
    return _tunnel(model, x, classes, base="gradient", kind="smoothgrad", samples=1, sigma=np.zeros(len(x), np.float32),
                   baseline=x, alphas=one, weights=one, seed=0, batch_size=batch_size, score=score,
                   jit_compile=jit_compile, progress=progress, desc="Gradient")


def gradient_x_input(model, x, class_index=None, *, batch_size: int = 256, score: str = "logit",
                     jit_compile: bool = False, progress=None) -> np.ndarray:
    """Gradient x input (Shrikumar et al., 2016, "Not just a black box"; Ancona et al., ICLR 2018):
    x times the score's gradient at x, signed. For a linear score w.x + b it is w * x exactly (IG
    with a zero baseline). Options as :func:`saliency`. Returns float32 shaped like x."""
    x = check_input(model, x)
    x, classes, batch_size, jit_compile = _gradient_front(model, x, class_index, batch_size, score, jit_compile)
    one = np.ones(1, np.float32)
    return _tunnel(model, x, classes, base="gradient_x_input", kind="smoothgrad", samples=1,
                   sigma=np.zeros(len(x), np.float32), baseline=x, alphas=one, weights=one, seed=0,
                   batch_size=batch_size, score=score, jit_compile=jit_compile, progress=progress,
                   desc="Gradient x input")


# --- the noise tunnel ---

def _noise_sigma(x, noise, noise_unit: str, value_range) -> np.ndarray:
    """The noise's standard deviation per example, float32 (N,)."""
    check_number("noise", noise, low=0)
    check_choice(noise_unit, NOISE_UNITS, "noise_unit")
    if value_range is not None:
        value_range = check_value_range(value_range, x, needed_for="the noise tunnel")
    if noise_unit == "absolute":
        return np.full(len(x), noise, np.float32)
    if value_range is not None:
        return np.full(len(x), noise * (value_range[1] - value_range[0]), np.float32)
    flat = x.reshape(len(x), -1)
    spread = flat.max(1) - flat.min(1)                                             # (N,)
    if noise > 0 and not np.all(spread > 0):
        raise ValueError(f"example(s) {np.flatnonzero(spread <= 0)[:10].tolist()} are constant, so a noise level "
                         "relative to their own range is 0; pass value_range=(lo, hi) or noise_unit='absolute'")
    return (noise * spread).astype(np.float32)


def noise_tunnel(model, x, class_index=None, *, base: str = "gradient", kind: str = "smoothgrad", samples: int = 50,
                 noise: float = 0.15, noise_unit: str = "range", value_range=None, seed: int = 0, steps: int = 32,
                 rule: str = "gausslegendre", baseline=None, blur_sigma: float = 10.0, batch_size: int = 256,
                 score: str = "logit", jit_compile: bool = False, progress=None) -> np.ndarray:
    """A gradient method averaged over noisy copies of the input, x + sigma z_k with z_k ~ N(0, 1):

    - "smoothgrad": mean_k A(x + sigma z_k) (Smilkov et al., 2017, "SmoothGrad: removing noise by
      adding noise"), signed;
    - "smoothgrad_sq": mean_k A(x + sigma z_k)² (SmoothGrad², Hooker et al., NeurIPS 2019), >= 0;
    - "vargrad": the variance over k, mean_k (A_k - mean A)² (Adebayo et al., ICLR workshop 2018;
      Hooker et al. 2019), >= 0;

    where A is the base method applied to the noisy copy: "gradient" (its gradient),
    "gradient_x_input" (the copy times its gradient) or "integrated_gradients" (IG from ``baseline``
    to the copy, ``steps`` points of the quadrature ``rule``; the baseline is built from the clean
    example). The draws z_k are the same for every example (draw k from the generator seeded by
    ``(seed, k)``, see :func:`tunnel_noise_draws`). Examples x draws x steps share each gradient call, at
    most ``batch_size`` model inputs, so memory does not grow with ``samples`` or ``steps``.

    Args:
        model: a Keras model; x: float32 (N, T, C) or (N, H, W, C).
        class_index: None (predicted class), an int, or an int array (N,).
        base: "gradient", "gradient_x_input" or "integrated_gradients".
        kind: "smoothgrad", "smoothgrad_sq" or "vargrad".
        samples: noisy copies M (the paper: 50).
        noise: the noise level. With ``noise_unit="range"`` (the paper's), sigma = noise x (hi - lo):
            the paper's 10-20 % (default 0.15) of ``value_range``, or, when value_range is None, of
            each example's own range max - min (as the paper's code does). With "absolute", sigma =
            noise in the input's units.
        value_range: (lo, hi), the range of the data's values (e.g. (0, 255) for HMT tiles).
        seed: seeds the draws.
        steps, rule, baseline, blur_sigma: Integrated Gradients' options (base
            "integrated_gradients" only; baselines as :func:`xai.methods.integrated_gradients.ig_baselines`, but for "uniform").
        batch_size: model inputs per gradient call (examples x samples x steps).
        score: "logit" or "probability". jit_compile: XLA. progress: a progress bar.

    Returns:
        float32 shaped like x.
    """
    x = check_input(model, x)
    check_choice(base, GRADIENT_BASES, "base")
    check_choice(kind, TUNNEL_KINDS, "kind")
    check_number("samples", samples, low=1, integer=True)
    check_number("seed", seed, low=0, integer=True)
    sigma = _noise_sigma(x, noise, noise_unit, value_range)
    if base == "integrated_gradients":
        if isinstance(baseline, str) and baseline == "uniform":
            raise ValueError("baseline='uniform' draws several baselines, which the noise tunnel does not average; "
                             "use integrated_gradients(baseline='uniform') or another baseline")
        (start,) = ig_baselines(x, baseline, value_range=value_range, blur_sigma=blur_sigma)
        alphas, weights = (a.astype(np.float32) for a in ig_nodes(steps, rule))
    else:
        ignored = {"baseline": baseline is not None, "steps": steps != 32, "rule": rule != "gausslegendre",
                   "blur_sigma": blur_sigma != 10.0}
        if any(ignored.values()):
            names = [k for k, v in ignored.items() if v]
            raise ValueError(f"{names} are options of base='integrated_gradients', not of base={base!r}; leave "
                             "them out")
        start, alphas = x, np.ones(1, np.float32)
        weights = alphas
    x, classes, batch_size, jit_compile = _gradient_front(model, x, class_index, batch_size, score, jit_compile)
    names = {"smoothgrad": "SmoothGrad", "smoothgrad_sq": "SmoothGrad²", "vargrad": "VarGrad"}
    return _tunnel(model, x, classes, base=base, kind=kind, samples=int(samples), sigma=sigma, baseline=start,
                   alphas=alphas, weights=weights, seed=int(seed), batch_size=batch_size, score=score,
                   jit_compile=jit_compile, progress=progress, desc=f"{names[kind]} ({base})")


def smoothgrad(model, x, class_index=None, **options) -> np.ndarray:
    """SmoothGrad (Smilkov et al. 2017): :func:`noise_tunnel` with ``kind="smoothgrad"``; float32 like x, signed."""
    return noise_tunnel(model, x, class_index, kind="smoothgrad", **options)


def smoothgrad_squared(model, x, class_index=None, **options) -> np.ndarray:
    """SmoothGrad² (Hooker et al. 2019): :func:`noise_tunnel` with ``kind="smoothgrad_sq"``; float32 like x, >= 0."""
    return noise_tunnel(model, x, class_index, kind="smoothgrad_sq", **options)


def vargrad(model, x, class_index=None, **options) -> np.ndarray:
    """VarGrad (Adebayo et al. 2018): :func:`noise_tunnel` with ``kind="vargrad"``; float32 like x, >= 0."""
    return noise_tunnel(model, x, class_index, kind="vargrad", **options)


# --- expected gradients ---

def _reference_draws(samples: int, n_references: int, seed: int):
    """Which reference and which alpha in [0, 1) each draw takes: int (M,), float32 (M,). The
    references are drawn in random permutations, one after another, so each is taken floor or ceil
    (M / R) times: unbiased, as draws with replacement are, with less variance."""
    rng = np.random.default_rng(seed)
    cycles = int(np.ceil(samples / n_references))
    which = np.concatenate([rng.permutation(n_references) for _ in range(cycles)])[:samples]
    return which, rng.uniform(0, 1, samples).astype(np.float32)


def _expected_gradients_step(model, score: str, jit_compile: bool):
    """(xb (E, ...), rb (M, ...), ab (M,), wb (M,), cb (E,)) -> sum_m wb_m (x - r_m) grad F(r_m + a_m (x - r_m)), (E, ...)."""
    forward = score_model(model, score)

    def step(xb, rb, ab, wb, cb):
        rank = len(xb.shape) - 1
        grads, diff = path_gradients(forward, rb[None], xb[:, None], _expand(ab, rank, 2), cb, lead=2)   # (E, M, ...) each
        return tf.reduce_sum(grads * diff * _expand(wb, rank, 2), axis=1)           # (E, ...)
    return tf.function(step, jit_compile=jit_compile, reduce_retracing=True)


def expected_gradients(model, x, class_index=None, *, references, samples: int = 200, seed: int = 0,
                       batch_size: int = 256, score: str = "logit", return_delta: bool = False,
                       jit_compile: bool = False, progress=None):
    """Expected gradients (Erion et al., Nature Machine Intelligence 2021, "Improving performance of
    deep learning models with axiomatic attribution priors and expected gradients"): Integrated
    Gradients averaged over baselines drawn from a reference set, one random point on each path:
    mean_k (x - x'_k) * grad F(x'_k + alpha_k (x - x'_k)), x'_k from ``references``, alpha_k ~ U(0, 1).

    The draws (which reference, which alpha) are the same for every example, from ``seed``; the
    references are taken in random permutations one after another (each floor or ceil(M / R) times),
    so with ``samples`` a multiple of R every reference is used equally often.

    Args:
        model: a Keras model; x: float32 (N, T, C) or (N, H, W, C).
        class_index: None (predicted class), an int, or an int array (N,).
        references: float32 (R, ...), e.g. training examples (the paper: the training set).
        samples: draws M per example (200, the default of the SHAP library's GradientExplainer,
            which implements the method).
        seed: seeds the draws.
        batch_size: model inputs per gradient call (examples x draws).
        score: "logit" or "probability". return_delta: also return the completeness gap.
        jit_compile: XLA. progress: a progress bar (None: > 20 calls).

    Returns:
        attributions float32 shaped like x, signed; with ``return_delta`` also delta float32 (N,) =
        sum(attributions) - (F(x) - mean over the references of F), 0 in expectation (exactly for a
        linear model with every reference drawn equally often); see :func:`xai.methods.integrated_gradients.completeness_gap`.
    """
    x = check_input(model, x)
    refs = check_references(references, x)
    check_number("samples", samples, low=1, integer=True)
    check_number("seed", seed, low=0, integer=True)
    x, classes, batch_size, jit_compile = _gradient_front(model, x, class_index, batch_size, score, jit_compile)
    which, alphas = _reference_draws(int(samples), len(refs), int(seed))
    m_chunk = even_chunk(samples, batch_size)                        # draws per call
    e_chunk = max(1, min(batch_size // m_chunk, len(x)))             # examples per call
    step = cached_step(model, _expected_gradients_step, score, jit_compile)
    out = np.zeros(x.shape, np.float32)
    n_calls = int(np.ceil(samples / m_chunk)) * int(np.ceil(len(x) / e_chunk))
    with progress_bar(n_calls, "Expected gradients", progress) as bar:
        for m0, m1 in batches(samples, m_chunk):
            rb = tf.constant(pad_to(refs[which[m0:m1]], m_chunk))
            ab = tf.constant(pad_to(alphas[m0:m1], m_chunk))
            wb = tf.constant(pad_to(np.full(m1 - m0, 1 / samples, np.float32), m_chunk))   # padded draws weigh 0
            for a, b, (xb, cb) in padded_batches(len(x), e_chunk, x, classes):
                out[a:b] += step(xb, rb, ab, wb, cb).numpy()[: b - a]
                bar.update()
    attributions = out
    if not return_delta:
        return attributions
    delta, _ = completeness_gap(model, x, attributions, classes, references=refs, score=score, batch_size=batch_size)
    return attributions, delta
