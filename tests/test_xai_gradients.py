"""The gradient methods against independent computations: linear models (known answers), NumPy and
SciPy, gradient tapes, and the completeness of every Integrated Gradients baseline."""
import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import tiny_conv1d, tiny_conv2d
from scipy.ndimage import gaussian_filter

import xai.methods.gradients as xg
import xai_utils as xu


def _rng(seed=0):
    return np.random.default_rng(seed)


def _linear_model(shape=(8, 1), classes=3, seed=0):
    """Flatten -> Dense (logits): the score of class c is w[:, c] . x + b_c."""
    x = keras.Input(shape)
    out = keras.layers.Dense(classes, kernel_initializer=keras.initializers.RandomNormal(seed=seed),
                             bias_initializer="ones")(keras.layers.Flatten()(x))
    return keras.Model(x, out)


def _weights(model, shape, c):
    return model.layers[-1].kernel.numpy()[:, c].reshape(shape)       # one example's shape


LINEAR = {"1d": (8, 2), "2d": (4, 5, 3)}


# --- plain gradients ---

@pytest.mark.parametrize("dims", list(LINEAR))
def test_gradient_and_gradient_x_input_on_a_linear_model(dims):
    shape = LINEAR[dims]
    model = _linear_model(shape)
    x = _rng(1).normal(size=(6,) + shape).astype(np.float32)
    w = _weights(model, shape, 2)
    np.testing.assert_allclose(xg.saliency(model, x, 2), np.broadcast_to(w, x.shape), rtol=1e-6)
    np.testing.assert_allclose(xg.gradient_x_input(model, x, 2), w * x, rtol=1e-5, atol=1e-7)
    # with a zero baseline, IG of a linear score is gradient x input
    np.testing.assert_allclose(xu.integrated_gradients(model, x, 2, steps=3), w * x, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("score", ["logit", "probability"])
def test_gradient_matches_a_gradient_tape(score):
    model = tiny_conv2d()
    x = _rng(2).uniform(0, 255, size=(5, 12, 12, 3)).astype(np.float32)
    classes = np.array([0, 1, 2, 3, 1])
    head = keras.Model(model.inputs, model.layers[-2].output if score == "logit" else model.outputs[0])
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        picked = tf.reduce_sum(tf.gather(head(xt), classes, batch_dims=1))
    expected = tape.gradient(picked, xt).numpy()
    np.testing.assert_allclose(xg.saliency(model, x, classes, score=score), expected, rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(xg.gradient_x_input(model, x, classes, score=score), x * expected, rtol=1e-5, atol=1e-7)


# --- the noise tunnel ---

def test_noise_tunnel_with_no_noise_is_its_base_method():
    model = tiny_conv1d()
    x = _rng(3).normal(size=(4, 16, 1)).astype(np.float32)
    g = xg.saliency(model, x)
    np.testing.assert_allclose(xg.smoothgrad(model, x, noise=0.0, samples=5), g, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(xg.smoothgrad_squared(model, x, noise=0.0, samples=5), g ** 2, rtol=1e-5, atol=1e-10)
    assert np.abs(xg.vargrad(model, x, noise=0.0, samples=5)).max() < 1e-12
    # noise -> 0: SmoothGrad -> the gradient
    close = xg.smoothgrad(model, x, noise=1e-5, samples=5)
    np.testing.assert_allclose(close, g, rtol=1e-2, atol=1e-4 * np.abs(g).max())
    np.testing.assert_allclose(xg.smoothgrad(model, x, base="gradient_x_input", noise=0.0, samples=3),
                               xg.gradient_x_input(model, x), rtol=1e-5, atol=1e-8)
    ig = xu.integrated_gradients(model, x, steps=8, baseline="mean")
    np.testing.assert_allclose(xg.smoothgrad(model, x, base="integrated_gradients", baseline="mean", steps=8,
                                             noise=0.0, samples=2), ig, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("dims", list(LINEAR))
def test_noise_tunnel_kinds_match_numpy_on_a_linear_model(dims):
    shape = LINEAR[dims]
    model = _linear_model(shape)
    x = _rng(4).uniform(-1, 1, size=(3,) + shape).astype(np.float32)
    w = _weights(model, shape, 1)
    z = xg.tunnel_noise(7, shape, seed=5).astype(np.float64)                       # (M, ...)
    sigmas = {  # (options, sigma per example)
        "absolute": (dict(noise=0.3, noise_unit="absolute"), np.full(3, 0.3)),
        "value range": (dict(noise=0.1, value_range=(-2, 2)), np.full(3, 0.4)),
        "own range": (dict(noise=0.15), 0.15 * np.ptp(x.reshape(3, -1), axis=1)),
    }
    for options, sigma in sigmas.values():
        noisy = x[:, None] + sigma.reshape((3, 1) + (1,) * len(shape)) * z[None]  # (N, M, ...)
        v = noisy * w                                                           # gradient x input
        run = lambda kind, o=options: xg.noise_tunnel(model, x, 1, base="gradient_x_input", kind=kind,  # noqa: E731
                                                      samples=7, seed=5, batch_size=4, **o)
        np.testing.assert_allclose(run("smoothgrad"), v.mean(1), rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(run("smoothgrad_sq"), (v ** 2).mean(1), rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(run("vargrad"), v.var(1), rtol=1e-3, atol=1e-6)
        # the gradient of a linear score is w whatever the noise: VarGrad 0
        assert np.abs(xg.vargrad(model, x, 1, samples=7, **options)).max() < 1e-10
        # IG from a zero baseline to each noisy copy: (x + sigma z) w, as gradient x input
        np.testing.assert_allclose(xg.smoothgrad(model, x, 1, base="integrated_gradients", steps=2, samples=7, seed=5,
                                                 **options), v.mean(1), rtol=1e-4, atol=1e-6)


def test_noise_tunnel_splits_long_paths_across_calls():
    model = tiny_conv1d()
    x = _rng(6).normal(size=(3, 16, 1)).astype(np.float32)
    run = lambda kind, bs: xg.noise_tunnel(model, x, base="integrated_gradients", kind=kind, samples=4,  # noqa: E731
                                           steps=8, batch_size=bs)
    for kind in xg.TUNNEL_KINDS:
        ref = run(kind, 1000)                                            # all draws and steps in one call
        for bs in (3, 8, 20):                                            # part of a path, one path, two paths a call
            np.testing.assert_allclose(run(kind, bs), ref, rtol=1e-4, atol=1e-8)


def test_noise_draws_are_the_same_for_every_example_and_set_by_the_seed():
    a = xg.tunnel_noise(4, (6, 1), seed=0)
    assert a.shape == (4, 6, 1) and a.dtype == np.float32
    np.testing.assert_array_equal(a, xg.tunnel_noise(4, (6, 1), seed=0))
    np.testing.assert_array_equal(a[:2], xg.tunnel_noise(2, (6, 1), seed=0))   # draw k depends on (seed, k) only
    assert not np.allclose(a, xg.tunnel_noise(4, (6, 1), seed=1))
    model = tiny_conv1d()
    x = _rng(7).normal(size=(3, 16, 1)).astype(np.float32)
    same = np.repeat(x[:1], 3, axis=0)                                   # one example three times
    maps = xg.smoothgrad(model, same, samples=4)
    np.testing.assert_allclose(maps[1:], maps[:1].repeat(2, 0), rtol=1e-6)
    assert not np.allclose(xg.smoothgrad(model, x, samples=4, seed=1), xg.smoothgrad(model, x, samples=4))


# --- Integrated Gradients' baselines ---

def _blur_by_hand(x, sigma):
    """Separable Gaussian, kernel cut at 4 sigma, half-sample symmetric edges: a direct convolution."""
    radius = int(4 * sigma + 0.5)
    t = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (t / sigma) ** 2)
    kernel /= kernel.sum()
    out = x.astype(np.float64)
    for axis in range(1, x.ndim - 1):
        n = out.shape[axis]
        pad = [(0, 0)] * x.ndim
        pad[axis] = (radius, radius)
        padded = np.pad(out, pad, mode="symmetric")
        out = sum(k * np.take(padded, np.arange(i, i + n), axis=axis) for i, k in enumerate(kernel))
    return out


@pytest.mark.parametrize("dims", ["1d", "2d"])
def test_ig_baselines_match_numpy_and_scipy(dims):
    shape = (16, 2) if dims == "1d" else (9, 11, 3)
    x = _rng(8).uniform(0, 255, size=(3,) + shape).astype(np.float32)
    axes = tuple(range(1, x.ndim - 1))
    (mean,) = xu.ig_baselines(x, "mean")
    np.testing.assert_allclose(mean, np.broadcast_to(x.mean(axis=axes, keepdims=True), x.shape), rtol=1e-6)
    (blur,) = xu.ig_baselines(x, "blur", blur_sigma=1.5)
    np.testing.assert_allclose(blur, _blur_by_hand(x, 1.5), rtol=1e-5, atol=1e-3)
    sigmas = (0,) + (1.5,) * len(axes) + (0,)
    np.testing.assert_allclose(blur, gaussian_filter(x.astype(np.float64), sigmas, mode="reflect"), rtol=1e-5, atol=1e-3)
    (white,) = xu.ig_baselines(x, "white", value_range=(0, 255))
    np.testing.assert_array_equal(white, np.full_like(x, 255))
    (zeros,) = xu.ig_baselines(x, None)
    np.testing.assert_array_equal(zeros, xu.ig_baselines(x, "zeros")[0])
    assert not zeros.any()
    draws = xu.ig_baselines(x, "uniform", value_range=(0, 255), baseline_samples=4, seed=3)
    assert len(draws) == 4 and all(d.shape == x.shape and d.dtype == np.float32 for d in draws)
    assert all(d.min() >= 0 and d.max() <= 255 for d in draws)
    for d in draws:                                                      # the same draw for every example
        np.testing.assert_array_equal(d, np.broadcast_to(d[:1], x.shape))
    assert not np.allclose(draws[0], draws[1])
    alone = xu.ig_baselines(x[1:2], "uniform", value_range=(0, 255), baseline_samples=4, seed=3)
    np.testing.assert_array_equal(draws[2][0], alone[2][0])


def test_the_zero_baseline_keeps_its_results():
    model = tiny_conv1d()
    x = _rng(9).normal(size=(4, 16, 1)).astype(np.float32)
    ref = xu.integrated_gradients(model, x, steps=8)
    np.testing.assert_array_equal(xu.integrated_gradients(model, x, steps=8, baseline="zeros"), ref)
    np.testing.assert_array_equal(xu.integrated_gradients(model, x, steps=8, baseline=np.zeros((16, 1))), ref)


def _smooth_model(shape, seed=0):
    """Conv (tanh) -> Conv (tanh) -> GAP -> Dense -> Softmax: smooth, so quadrature converges fast
    (ReLU kinks on a path slow every rule down, far baselines such as uniform noise most)."""
    conv = keras.layers.Conv1D if len(shape) == 2 else keras.layers.Conv2D
    pool = keras.layers.GlobalAveragePooling1D if len(shape) == 2 else keras.layers.GlobalAveragePooling2D
    init = lambda i: keras.initializers.GlorotUniform(seed=seed + i)  # noqa: E731
    inp = keras.Input(shape)
    h = keras.layers.Rescaling(1 / 255.0)(inp) if len(shape) == 3 else inp
    h = conv(4, 3, padding="same", activation="tanh", kernel_initializer=init(0))(h)
    h = conv(5, 3, padding="same", activation="tanh", kernel_initializer=init(1))(h)
    h = keras.layers.Dense(3, kernel_initializer=init(2))(pool()(h))
    return keras.Model(inp, keras.layers.Softmax()(h))


@pytest.mark.parametrize("dims", ["1d", "2d"])
@pytest.mark.parametrize("baseline", xu.IG_BASELINES)
def test_ig_meets_completeness_with_every_baseline(dims, baseline):
    if dims == "1d":
        model, x, value_range = _smooth_model((16, 1)), _rng(10).uniform(-2, 2, size=(5, 16, 1)), (-2, 2)
    else:
        model, x, value_range = _smooth_model((12, 12, 3)), _rng(10).uniform(0, 255, size=(4, 12, 12, 3)), (0, 255)
    x = x.astype(np.float32)
    options = dict(baseline=baseline, value_range=value_range, blur_sigma=2.0, baseline_samples=3, seed=1)
    attr, delta = xu.integrated_gradients(model, x, steps=64, return_delta=True, **options)
    again, relative = xu.completeness_gap(model, x, attr, **options)
    np.testing.assert_allclose(again, delta, atol=1e-6)
    # the gap, by hand: F(x) - mean_k F(x'_k)
    bases = xu.ig_baselines(x, **options)
    scores = xu.predict_scores(model, x)
    c = scores.argmax(-1)
    rows = np.arange(len(x))
    gap = scores[rows, c] - np.mean([xu.predict_scores(model, b)[rows, c] for b in bases], axis=0)
    np.testing.assert_allclose(attr.reshape(len(x), -1).sum(1) - gap, delta, atol=1e-5)
    assert relative.max() < 1e-3, relative


def test_ig_with_the_uniform_baseline_is_the_mean_over_its_draws():
    model = tiny_conv1d()
    x = _rng(11).uniform(0, 1, size=(3, 16, 1)).astype(np.float32)
    options = dict(value_range=(0, 1), baseline_samples=3, seed=4)
    draws = xu.ig_baselines(x, "uniform", **options)
    by_hand = np.mean([xu.integrated_gradients(model, x, steps=8, baseline=d) for d in draws], axis=0)
    np.testing.assert_allclose(xu.integrated_gradients(model, x, steps=8, baseline="uniform", **options), by_hand,
                               rtol=1e-5, atol=1e-8)


# --- expected gradients ---

@pytest.mark.parametrize("dims", list(LINEAR))
def test_expected_gradients_on_a_linear_model_is_w_times_x_minus_the_reference_mean(dims):
    shape = LINEAR[dims]
    model = _linear_model(shape)
    x = _rng(12).normal(size=(4,) + shape).astype(np.float32)
    refs = _rng(13).normal(size=(5,) + shape).astype(np.float32)
    w = _weights(model, shape, 0)
    # 15 draws = every reference three times: exact, whatever the alphas
    attr, delta = xg.expected_gradients(model, x, 0, references=refs, samples=15, batch_size=4, return_delta=True)
    np.testing.assert_allclose(attr, w * (x - refs.mean(0)), rtol=1e-4, atol=1e-5)
    assert np.abs(delta).max() < 1e-4
    _, relative = xu.completeness_gap(model, x, attr, 0, references=refs)
    assert relative.max() < 1e-4


def test_expected_gradients_with_one_reference_estimates_integrated_gradients():
    model = tiny_conv1d(softmax="none")
    x = _rng(14).normal(size=(3, 16, 1)).astype(np.float32)
    ref = _rng(15).normal(size=(1, 16, 1)).astype(np.float32)
    ig = xu.integrated_gradients(model, x, baseline=ref[0], steps=32)
    eg = xg.expected_gradients(model, x, references=ref, samples=2000, seed=1)
    # Monte Carlo over alpha: close to the integral, not equal to it
    assert np.abs(eg - ig).max() < 0.05 * np.abs(ig).max()
    assert not np.allclose(eg, ig, rtol=1e-6, atol=0)


# --- compiled steps ---

def test_jit_compiled_gradient_methods_agree():
    model = tiny_conv2d()
    x = _rng(16).uniform(0, 255, size=(3, 12, 12, 3)).astype(np.float32)
    refs = _rng(17).uniform(0, 255, size=(4, 12, 12, 3)).astype(np.float32)
    for run in (lambda j: xg.saliency(model, x, jit_compile=j),
                lambda j: xg.noise_tunnel(model, x, base="integrated_gradients", kind="smoothgrad_sq", samples=3,
                                          steps=4, jit_compile=j),
                lambda j: xg.expected_gradients(model, x, references=refs, samples=8, jit_compile=j)):
        plain, compiled = run(False), run(True)
        assert np.abs(compiled - plain).max() <= 1e-5 * max(np.abs(plain).max(), 1e-12)
