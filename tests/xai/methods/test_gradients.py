"""xai/methods/gradients.py: the plain gradient, gradient x input, the noise tunnel (SmoothGrad,
SmoothGrad², VarGrad) and expected gradients against independent computations: linear models (known
answers), NumPy and gradient tapes."""
import keras
import numpy as np
import pytest
import tensorflow as tf

import xai.methods.gradients as xg
from tests.conftest import tiny_conv1d, tiny_conv2d
from xai.methods.integrated_gradients import completeness_gap, integrated_gradients


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
    np.testing.assert_allclose(integrated_gradients(model, x, 2, steps=3), w * x, rtol=1e-5, atol=1e-6)


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
    ig = integrated_gradients(model, x, steps=8, baseline="mean")
    np.testing.assert_allclose(xg.smoothgrad(model, x, base="integrated_gradients", baseline="mean", steps=8,
                                             noise=0.0, samples=2), ig, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("dims", list(LINEAR))
def test_noise_tunnel_kinds_match_numpy_on_a_linear_model(dims):
    shape = LINEAR[dims]
    model = _linear_model(shape)
    x = _rng(4).uniform(-1, 1, size=(3,) + shape).astype(np.float32)
    w = _weights(model, shape, 1)
    z = xg.tunnel_noise_draws(7, shape, seed=5).astype(np.float64)                       # (M, ...)
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
    a = xg.tunnel_noise_draws(4, (6, 1), seed=0)
    assert a.shape == (4, 6, 1) and a.dtype == np.float32
    np.testing.assert_array_equal(a, xg.tunnel_noise_draws(4, (6, 1), seed=0))
    np.testing.assert_array_equal(a[:2], xg.tunnel_noise_draws(2, (6, 1), seed=0))   # draw k depends on (seed, k) only
    assert not np.allclose(a, xg.tunnel_noise_draws(4, (6, 1), seed=1))
    model = tiny_conv1d()
    x = _rng(7).normal(size=(3, 16, 1)).astype(np.float32)
    same = np.repeat(x[:1], 3, axis=0)                                   # one example three times
    maps = xg.smoothgrad(model, same, samples=4)
    np.testing.assert_allclose(maps[1:], maps[:1].repeat(2, 0), rtol=1e-6)
    assert not np.allclose(xg.smoothgrad(model, x, samples=4, seed=1), xg.smoothgrad(model, x, samples=4))


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
    _, relative = completeness_gap(model, x, attr, 0, references=refs)
    assert relative.max() < 1e-4


def test_expected_gradients_with_one_reference_estimates_integrated_gradients():
    model = tiny_conv1d(softmax="none")
    x = _rng(14).normal(size=(3, 16, 1)).astype(np.float32)
    ref = _rng(15).normal(size=(1, 16, 1)).astype(np.float32)
    ig = integrated_gradients(model, x, baseline=ref[0], steps=32)
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


# --- options checked at the door ---

def test_bad_options_of_the_gradient_methods_are_refused():
    model = tiny_conv1d()
    x = np.random.default_rng(0).uniform(0, 1, size=(3, 16, 1)).astype(np.float32)
    refs = x[:2]
    cases = [
        (lambda: xg.smoothgrad(model, x, samples=0), "samples"),
        (lambda: xg.smoothgrad(model, x, samples=2.5), "samples"),
        (lambda: xg.smoothgrad(model, x, noise=-0.1), "noise must be >= 0"),
        (lambda: xg.smoothgrad(model, x, noise=float("nan")), "noise"),
        (lambda: xg.smoothgrad(model, x, noise_unit="pixels"), "noise_unit"),
        (lambda: xg.smoothgrad(model, x, value_range=(0, 0.5)), "outside value_range"),
        (lambda: xg.smoothgrad(model, x, seed=1.5), "seed"),
        (lambda: xg.smoothgrad(model, np.ones_like(x)), "constant"),
        (lambda: xg.noise_tunnel(model, x, base="deconvnet"), "base"),
        (lambda: xg.noise_tunnel(model, x, kind="mean"), "kind"),
        (lambda: xg.noise_tunnel(model, x, baseline="blur"), r"\['baseline'\] are options of base="),
        (lambda: xg.noise_tunnel(model, x, steps=-5), r"\['steps'\] are options of base="),
        (lambda: xg.noise_tunnel(model, x, rule="bogus", blur_sigma=-1.0), r"\['rule', 'blur_sigma'\]"),
        (lambda: xg.noise_tunnel(model, x, base="integrated_gradients", steps=0), "steps"),
        (lambda: xg.noise_tunnel(model, x, base="integrated_gradients", baseline="uniform", value_range=(0, 1)),
         "uniform"),
        (lambda: xg.noise_tunnel(model, x, base="integrated_gradients", baseline="white"), "pass value_range"),
        (lambda: xg.saliency(model, x, jit_compile=1), "jit_compile"),
        (lambda: xg.expected_gradients(model, x, references=refs[0]), "references has shape"),
        (lambda: xg.expected_gradients(model, x, references=refs[:, :8]), "references has shape"),
        (lambda: xg.expected_gradients(model, x, references=refs[:0]), "R >= 1"),
        (lambda: xg.expected_gradients(model, x, references=np.where(refs > 0.5, np.nan, refs)), "non-finite"),
        (lambda: xg.expected_gradients(model, x, references=refs.astype(str)), "numeric"),
        (lambda: xg.expected_gradients(model, x, references=refs, samples=0), "samples"),
    ]
    for call, message in cases:
        with pytest.raises(ValueError, match=message):
            call()
    with pytest.raises(TypeError):
        xg.expected_gradients(model, x)                                   # references are required
