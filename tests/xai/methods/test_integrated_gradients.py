"""xai/methods/integrated_gradients.py: Integrated Gradients against its mathematics (exact on linear
models, the closed form of a sigmoid, quadrature rules, completeness), its baselines against NumPy and
SciPy, and the one definition of the completeness gap; on the real models, completeness on every test
example."""
import keras
import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

import xai.core
from tests.conftest import tiny_conv1d
from xai.core import predict_scores
from xai.methods.integrated_gradients import (
    IG_BASELINES,
    IG_RULES,
    completeness_gap,
    ig_baselines,
    ig_nodes,
    integrated_gradients,
)


def _rng(seed=0):
    return np.random.default_rng(seed)


def _linear_model(length=8, classes=3, seed=0):
    x = keras.Input((length, 1))
    h = keras.layers.Flatten()(x)
    out = keras.layers.Dense(classes, kernel_initializer=keras.initializers.RandomNormal(seed=seed),
                             bias_initializer="ones")(h)
    return keras.Model(x, out)


def _sigmoid_model(length=10, seed=0):
    x = keras.Input((length, 1))
    h = keras.layers.Flatten()(x)
    out = keras.layers.Dense(1, activation="sigmoid", kernel_initializer=keras.initializers.RandomNormal(stddev=0.8, seed=seed),
                             use_bias=False)(h)
    return keras.Model(x, out)


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


# --- the mathematics ---

@pytest.mark.parametrize("rule", IG_RULES)
def test_ig_is_exact_on_a_linear_model(rule):
    model = _linear_model()
    w = model.layers[-1].kernel.numpy()                                  # (8, 3)
    x = _rng().normal(size=(5, 8, 1)).astype(np.float32)
    base = _rng(1).normal(size=(8, 1)).astype(np.float32)
    attr, delta = integrated_gradients(model, x, 2, baseline=base, steps=7, rule=rule, return_delta=True)
    expected = (x - base) * w[:, 2][None, :, None]
    np.testing.assert_allclose(attr, expected, atol=1e-5)
    assert np.abs(delta).max() < 1e-4


def test_ig_gauss_legendre_matches_the_closed_form_of_a_sigmoid():
    model = _sigmoid_model()
    w = model.layers[-1].kernel.numpy()[:, 0].astype(np.float64)         # (10,)
    x = _rng(2).normal(size=(6, 10, 1)).astype(np.float32)
    attr = integrated_gradients(model, x, 0, steps=32, rule="gausslegendre", score="probability")
    z = x[..., 0].astype(np.float64) @ w                                 # (6,)
    # the logit of a sigmoid head is the pre-sigmoid value, linear here: IG_i = x_i w_i exactly
    np.testing.assert_allclose(integrated_gradients(model, x, 0)[..., 0], x[..., 0] * w[None], rtol=1e-5, atol=1e-6)
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    # IG_i = x_i w_i * (sigma(w.x) - sigma(0)) / (w.x) for a zero baseline
    expected = x[..., 0] * w[None] * ((sig(z) - 0.5) / z)[:, None]
    np.testing.assert_allclose(attr[..., 0], expected, rtol=1e-5, atol=1e-7)


def test_ig_quadrature_rules_sum_to_one_and_gauss_legendre_integrates_polynomials():
    for rule in IG_RULES:
        alphas, weights = ig_nodes(9, rule)
        assert alphas.min() >= 0 and alphas.max() <= 1
        assert abs(weights.sum() - 1) < 1e-12
    alphas, weights = ig_nodes(4, "gausslegendre")
    assert abs((weights * alphas ** 7).sum() - 1 / 8) < 1e-12             # exact to degree 2S - 1


def test_ig_completeness_on_a_smooth_conv_net():
    model = tiny_conv1d(softmax="none")
    x = _rng(3).normal(size=(20, 16, 1)).astype(np.float32)
    _, delta = integrated_gradients(model, x, steps=64, return_delta=True)
    assert np.abs(delta).max() < 5e-3


def test_ig_batch_size_invariance_and_steps_above_batch_size():
    model = tiny_conv1d()
    x = _rng(4).normal(size=(7, 16, 1)).astype(np.float32)
    ref = integrated_gradients(model, x, steps=16, batch_size=1000)
    for bs in (1, 5, 16, 33):
        np.testing.assert_allclose(integrated_gradients(model, x, steps=16, batch_size=bs), ref, atol=1e-6)


def test_ig_is_deterministic_and_takes_every_baseline_form():
    model = tiny_conv1d()
    x = _rng(5).normal(size=(3, 16, 1)).astype(np.float32)
    a = integrated_gradients(model, x)
    np.testing.assert_array_equal(a, integrated_gradients(model, x))
    np.testing.assert_allclose(integrated_gradients(model, x, baseline=0.0), a, atol=1e-7)
    per_example = np.stack([np.full((16, 1), v, np.float32) for v in (0.1, 0.2, 0.3)])
    for baseline in (0.5, np.full((16, 1), 0.5), np.full((1,), 0.5), per_example):
        attr, delta = integrated_gradients(model, x, baseline=baseline, steps=64, return_delta=True)
        assert attr.shape == x.shape and np.abs(delta).max() < 1e-2
    with pytest.raises(ValueError, match="baseline of shape"):
        integrated_gradients(model, x, baseline=np.zeros((5, 2)))


def test_ig_gradient_step_is_traced_at_most_twice():
    model = tiny_conv1d()
    x = _rng(6).normal(size=(11, 16, 1)).astype(np.float32)
    integrated_gradients(model, x, steps=8, batch_size=32)              # 4 examples a call, padded
    integrated_gradients(model, x, steps=8, batch_size=32)
    steps = [f for k, f in xai.core.STEPS[model].items() if k[0] == "_ig_step"]
    assert len(steps) == 1 and steps[0].experimental_get_tracing_count() == 1
    # fewer examples than a call holds: a smaller call (no padding beyond the work), traced once
    # more with a relaxed shape that every later size reuses
    integrated_gradients(model, x[:3], steps=8, batch_size=32)
    integrated_gradients(model, x[:2], steps=8, batch_size=32)
    assert steps[0].experimental_get_tracing_count() <= 2


def test_ig_of_the_probability_differs_from_the_logits_and_meets_completeness():
    model = tiny_conv1d()
    x = _rng(11).normal(size=(3, 16, 1)).astype(np.float32)
    _, delta = integrated_gradients(model, x, score="probability", steps=64, return_delta=True)
    assert np.abs(delta).max() < 1e-3
    assert not np.allclose(integrated_gradients(model, x, score="probability"), integrated_gradients(model, x))


def test_completeness_gap_is_the_one_definition():
    model = tiny_conv1d()
    x = np.random.default_rng(4).normal(size=(3, 16, 1)).astype(np.float32)
    attributions, delta = integrated_gradients(model, x, steps=64, return_delta=True)
    again, relative = completeness_gap(model, x, attributions)
    np.testing.assert_allclose(again, delta, atol=1e-6)
    scores = predict_scores(model, x)
    gap = scores[np.arange(3), scores.argmax(-1)] - predict_scores(model, np.zeros_like(x))[np.arange(3), scores.argmax(-1)]
    np.testing.assert_allclose(relative, np.abs(delta) / np.abs(gap), rtol=1e-4)
    with pytest.raises(ValueError, match="attributions have shape"):
        completeness_gap(model, x, attributions[:, :8])


# --- the baselines ---

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
    (mean,) = ig_baselines(x, "mean")
    np.testing.assert_allclose(mean, np.broadcast_to(x.mean(axis=axes, keepdims=True), x.shape), rtol=1e-6)
    (blur,) = ig_baselines(x, "blur", blur_sigma=1.5)
    np.testing.assert_allclose(blur, _blur_by_hand(x, 1.5), rtol=1e-5, atol=1e-3)
    sigmas = (0,) + (1.5,) * len(axes) + (0,)
    np.testing.assert_allclose(blur, gaussian_filter(x.astype(np.float64), sigmas, mode="reflect"), rtol=1e-5, atol=1e-3)
    (white,) = ig_baselines(x, "white", value_range=(0, 255))
    np.testing.assert_array_equal(white, np.full_like(x, 255))
    (zeros,) = ig_baselines(x, None)
    np.testing.assert_array_equal(zeros, ig_baselines(x, "zeros")[0])
    assert not zeros.any()
    draws = ig_baselines(x, "uniform", value_range=(0, 255), baseline_samples=4, seed=3)
    assert len(draws) == 4 and all(d.shape == x.shape and d.dtype == np.float32 for d in draws)
    assert all(d.min() >= 0 and d.max() <= 255 for d in draws)
    for d in draws:                                                      # the same draw for every example
        np.testing.assert_array_equal(d, np.broadcast_to(d[:1], x.shape))
    assert not np.allclose(draws[0], draws[1])
    alone = ig_baselines(x[1:2], "uniform", value_range=(0, 255), baseline_samples=4, seed=3)
    np.testing.assert_array_equal(draws[2][0], alone[2][0])


def test_the_zero_baseline_keeps_its_results_in_every_form():
    model = tiny_conv1d()
    x = _rng(9).normal(size=(4, 16, 1)).astype(np.float32)
    ref = integrated_gradients(model, x, steps=8)
    np.testing.assert_array_equal(integrated_gradients(model, x, steps=8, baseline="zeros"), ref)
    np.testing.assert_array_equal(integrated_gradients(model, x, steps=8, baseline=np.zeros((16, 1))), ref)


@pytest.mark.parametrize("dims", ["1d", "2d"])
@pytest.mark.parametrize("baseline", IG_BASELINES)
def test_ig_meets_completeness_with_every_baseline(dims, baseline):
    if dims == "1d":
        model, x, value_range = _smooth_model((16, 1)), _rng(10).uniform(-2, 2, size=(5, 16, 1)), (-2, 2)
    else:
        model, x, value_range = _smooth_model((12, 12, 3)), _rng(10).uniform(0, 255, size=(4, 12, 12, 3)), (0, 255)
    x = x.astype(np.float32)
    options = dict(baseline=baseline, value_range=value_range, blur_sigma=2.0, baseline_samples=3, seed=1)
    attr, delta = integrated_gradients(model, x, steps=64, return_delta=True, **options)
    again, relative = completeness_gap(model, x, attr, **options)
    np.testing.assert_allclose(again, delta, atol=1e-6)
    # the gap, by hand: F(x) - mean_k F(x'_k)
    bases = ig_baselines(x, **options)
    scores = predict_scores(model, x)
    c = scores.argmax(-1)
    rows = np.arange(len(x))
    gap = scores[rows, c] - np.mean([predict_scores(model, b)[rows, c] for b in bases], axis=0)
    np.testing.assert_allclose(attr.reshape(len(x), -1).sum(1) - gap, delta, atol=1e-5)
    assert relative.max() < 1e-3, relative


def test_ig_with_the_uniform_baseline_is_the_mean_over_its_draws():
    model = tiny_conv1d()
    x = _rng(11).uniform(0, 1, size=(3, 16, 1)).astype(np.float32)
    options = dict(value_range=(0, 1), baseline_samples=3, seed=4)
    draws = ig_baselines(x, "uniform", **options)
    by_hand = np.mean([integrated_gradients(model, x, steps=8, baseline=d) for d in draws], axis=0)
    np.testing.assert_allclose(integrated_gradients(model, x, steps=8, baseline="uniform", **options), by_hand,
                               rtol=1e-5, atol=1e-8)


# --- options checked at the door ---

def test_bad_options_of_integrated_gradients_are_refused():
    model = tiny_conv1d()
    x = np.random.default_rng(0).uniform(0, 1, size=(3, 16, 1)).astype(np.float32)
    cases = [
        (lambda: integrated_gradients(model, x, steps=0), "steps"),
        (lambda: integrated_gradients(model, x, steps=True), "steps"),
        (lambda: integrated_gradients(model, x, rule="simpson"), "unknown quadrature rule 'simpson'"),
        (lambda: integrated_gradients(model, x, baseline="black"), "unknown baseline 'black'"),
        (lambda: integrated_gradients(model, x, baseline="white"), "pass value_range"),
        (lambda: integrated_gradients(model, x, baseline="uniform"), "pass value_range"),
        (lambda: integrated_gradients(model, x, baseline="white", value_range=(1, 0)), "lo < hi"),
        (lambda: integrated_gradients(model, x, baseline="white", value_range=1.0), "two finite numbers"),
        (lambda: integrated_gradients(model, x, baseline="white", value_range=(0, np.inf)), "finite"),
        (lambda: integrated_gradients(model, x, baseline="white", value_range=(0,)), "two finite numbers"),
        (lambda: integrated_gradients(model, x, baseline="white", value_range="01"), "two finite numbers"),
        (lambda: integrated_gradients(model, x, baseline="white", value_range=(0, 0.5)), "outside value_range"),
        (lambda: integrated_gradients(model, x, baseline="blur", blur_sigma=0), "blur_sigma"),
        (lambda: integrated_gradients(model, x, baseline="uniform", value_range=(0, 1), baseline_samples=0),
         "baseline_samples"),
        (lambda: integrated_gradients(model, x, baseline="uniform", value_range=(0, 1), seed=-1), "seed"),
        (lambda: completeness_gap(model, x, x, baseline=0.0, references=x[:2]), "not both"),
    ]
    for call, message in cases:
        with pytest.raises(ValueError, match=message):
            call()


# --- the real models: completeness on every test example ---

@pytest.mark.slow
def test_ig_completeness_on_all_mnist1d_test_examples(mnist1d_data, mnist1d_model):
    x = mnist1d_data["x_test"][..., None].astype(np.float32)
    attr = integrated_gradients(mnist1d_model, x, progress=False)
    _, rel = completeness_gap(mnist1d_model, x, attr)
    assert np.mean(rel <= 0.01) >= 0.99, np.quantile(rel, [0.5, 0.99])


@pytest.mark.slow
def test_ig_completeness_on_all_hmt_test_tiles(hmt_data, hmt_model):
    (_, _), (x_test, _), _ = hmt_data
    x = x_test.astype(np.float32)
    attr = integrated_gradients(hmt_model, x, batch_size=128, progress=False)
    _, rel = completeness_gap(hmt_model, x, attr, batch_size=128)
    assert np.mean(rel <= 0.01) >= 0.99, np.quantile(rel, [0.5, 0.99])
