"""One contract over every method: the same front, the same checks, the same guarantees.

Every method takes ``(model, x, class_index=None, *, batch_size, ...)`` for 1D and 2D inputs and
gives finite float32 maps of a documented shape that do not depend on the batch size or on how the
explained class is given, are deterministic, and refuse bad inputs with a message that names them.
"""
import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import tiny_conv1d, tiny_conv2d

import xai.methods.cam as xc
import xai.methods.gradients as xg
import xai.methods
import xai.methods.perturbation as xp
import xai_utils as xu


def _references(x):
    """A fixed reference set for expected gradients: it depends on the shape of an example only."""
    top = 1 if x.ndim == 3 else 255
    return np.random.default_rng(11).uniform(0, top, size=(5,) + x.shape[1:]).astype(np.float32)


def _range(x):
    return (0, 1) if x.ndim == 3 else (0, 255)


METHODS = {
    "grad_cam": (lambda m, x, c=None, **k: xu.grad_cam(m, x, c, **k), "positions"),
    "integrated_gradients": (lambda m, x, c=None, **k: xu.integrated_gradients(m, x, c, steps=8, **k), "like_x"),
    "rise": (lambda m, x, c=None, **k: xp.rise(m, x, c, n_masks=24, seed=3, **k), "positions"),
    "sise": (lambda m, x, c=None, **k: xp.sise(m, x, c, **k), "positions"),
    "integrated_gradients_blur": (lambda m, x, c=None, **k: xu.integrated_gradients(
        m, x, c, steps=4, baseline="blur", blur_sigma=2.0, **k), "like_x"),
    "integrated_gradients_uniform": (lambda m, x, c=None, **k: xu.integrated_gradients(
        m, x, c, steps=4, baseline="uniform", baseline_samples=3, value_range=_range(x), seed=2, **k), "like_x"),
    "saliency": (lambda m, x, c=None, **k: xg.saliency(m, x, c, **k), "like_x"),
    "gradient_x_input": (lambda m, x, c=None, **k: xg.gradient_x_input(m, x, c, **k), "like_x"),
    "smoothgrad": (lambda m, x, c=None, **k: xg.smoothgrad(m, x, c, samples=6, seed=1, **k), "like_x"),
    "smoothgrad_squared": (lambda m, x, c=None, **k: xg.smoothgrad_squared(
        m, x, c, base="gradient_x_input", samples=6, value_range=_range(x), **k), "like_x"),
    "vargrad": (lambda m, x, c=None, **k: xg.vargrad(m, x, c, samples=6, noise=0.2, noise_unit="absolute", **k), "like_x"),
    "noise_tunnel": (lambda m, x, c=None, **k: xg.noise_tunnel(
        m, x, c, base="integrated_gradients", kind="vargrad", samples=3, steps=4, **k), "like_x"),
    "expected_gradients": (lambda m, x, c=None, **k: xg.expected_gradients(
        m, x, c, references=_references(x), samples=12, **k), "like_x"),
    "grad_cam_plus_plus": (lambda m, x, c=None, **k: xc.grad_cam_plus_plus(m, x, c, **k), "positions"),
    "score_cam": (lambda m, x, c=None, **k: xc.score_cam(m, x, c, **k), "positions"),
}
MODELS = {"1d": (tiny_conv1d, (16, 1), 3), "2d": (tiny_conv2d, (12, 12, 3), 4)}


def test_every_method_of_the_library_is_under_contract():
    """The one list of methods (xai.methods.METHODS): each is here, with the shape of maps it declares."""
    assert set(xai.methods.METHODS) <= set(METHODS), set(xai.methods.METHODS) - set(METHODS)
    for name, entry in xai.methods.METHODS.items():
        assert METHODS[name][1] == entry.maps, name
        assert callable(xai.methods.method_function(name))
    with pytest.raises(ValueError, match="unknown method"):
        xai.methods.method_function("gradcam")


@pytest.fixture(scope="module", params=list(MODELS))
def setting(request):
    build, shape, classes = MODELS[request.param]
    model = build()
    x = np.random.default_rng(0).uniform(0, 1 if request.param == "1d" else 255, size=(9,) + shape).astype(np.float32)
    return model, x, classes


@pytest.mark.parametrize("name", list(METHODS))
def test_contract(name, setting):
    model, x, k = setting
    method, kind = METHODS[name]
    want = x.shape if kind == "like_x" else x.shape[:-1]
    predicted = xu.predict_scores(model, x).argmax(-1)

    ref = method(model, x)
    assert ref.shape == want and ref.dtype == np.float32 and np.isfinite(ref).all()
    np.testing.assert_array_equal(method(model, x), ref)                                # deterministic
    for batch_size in (1, 7, 10**6):                                                      # batch invariant
        np.testing.assert_allclose(method(model, x, batch_size=batch_size), ref, rtol=1e-4, atol=1e-5)
    # the three forms of class_index: None (predicted), the same as an array, one int for all
    np.testing.assert_allclose(method(model, x, predicted), ref, rtol=1e-5, atol=1e-6)
    one = method(model, x, 1)
    np.testing.assert_allclose(method(model, x, np.ones(len(x), int)), one, rtol=1e-5, atol=1e-6)
    # an example explained alone gets the map it gets in a batch
    np.testing.assert_allclose(method(model, x[4:5]), ref[4:5], rtol=1e-4, atol=1e-5)

    refusals = [(lambda: method(model, x[0]), "single example"),
                (lambda: method(model, x[:, :-1]), "expected"),
                (lambda: method(model, np.where(np.arange(x.size).reshape(x.shape) == 5, np.nan, x)), "non-finite"),
                (lambda: method(model, x[:0]), "no examples"),
                (lambda: method(model, x.astype(str)), "numeric"),
                (lambda: method(model, x, k), "out of range"),
                (lambda: method(model, x, -1), "out of range"),
                (lambda: method(model, x, np.zeros(3, int)), "one per example"),
                (lambda: method(model, x, 0.5), "int"),
                (lambda: method(model, x, batch_size=0), "batch_size"),
                (lambda: method(model, x, score="prob"), "score")]
    for call, message in refusals:
        with pytest.raises(ValueError, match=message):
            call()


class _AtMost(keras.layers.Layer):
    """Fails any call that feeds the model more than ``limit`` inputs."""

    def __init__(self, limit, **kwargs):
        super().__init__(**kwargs)
        self.limit = limit

    def call(self, x):
        tf.debugging.assert_less_equal(tf.shape(x)[0], self.limit, message="more model inputs in one call than batch_size")
        return x


@pytest.mark.parametrize("name", list(METHODS))
def test_no_call_holds_more_model_inputs_than_batch_size(name):
    method, _ = METHODS[name]
    model = keras.Sequential([keras.Input((16, 1)), _AtMost(7, name="at_most"), tiny_conv1d()])
    x = np.random.default_rng(1).uniform(0, 1, size=(9, 16, 1)).astype(np.float32)
    assert np.isfinite(method(model, x, batch_size=7)).all()
    with pytest.raises(tf.errors.InvalidArgumentError, match="more model inputs"):
        method(model, x, batch_size=8)


def test_explained_models_are_not_kept_alive_by_the_new_methods():
    import gc
    import weakref
    model = tiny_conv1d()
    x = np.random.default_rng(2).uniform(0, 1, size=(2, 16, 1)).astype(np.float32)
    for name in METHODS:
        METHODS[name][0](model, x)
    ref = weakref.ref(model)
    del model
    gc.collect()
    assert ref() is None, "a compiled step keeps the model alive"


def test_sise_fusion_on_an_analytic_case():
    # two blocks: the low-level map covers both halves, the high-level one only the right half.
    low = np.ones((1, 8)) * np.r_[np.ones(4), np.ones(4)]
    high = np.r_[np.zeros(4), np.ones(4)][None]
    fused = xp._fuse([low[0], high[0]], softness=0.05)
    # the soft Otsu gate of the high-level map keeps the right half and shuts the left
    assert fused[4:].min() > 0.99 and fused[:4].max() < 0.01
    # a constant block map contributes nothing but keeps the earlier evidence
    ramp = np.linspace(0, 1, 8)
    np.testing.assert_allclose(xp._fuse([ramp], softness=0.05), ramp)


def test_bad_options_of_the_gradient_and_cam_methods_are_refused():
    model = tiny_conv1d()
    x = np.random.default_rng(0).uniform(0, 1, size=(3, 16, 1)).astype(np.float32)
    refs = x[:2]
    cases = [
        (lambda: xu.integrated_gradients(model, x, baseline="black"), "unknown baseline 'black'"),
        (lambda: xu.integrated_gradients(model, x, baseline="white"), "pass value_range"),
        (lambda: xu.integrated_gradients(model, x, baseline="uniform"), "pass value_range"),
        (lambda: xu.integrated_gradients(model, x, baseline="white", value_range=(1, 0)), "lo < hi"),
        (lambda: xu.integrated_gradients(model, x, baseline="white", value_range=1.0), "two finite numbers"),
        (lambda: xu.integrated_gradients(model, x, baseline="white", value_range=(0, np.inf)), "finite"),
        (lambda: xu.integrated_gradients(model, x, baseline="white", value_range=(0,)), "two finite numbers"),
        (lambda: xu.integrated_gradients(model, x, baseline="white", value_range="01"), "two finite numbers"),
        (lambda: xu.integrated_gradients(model, x, baseline="white", value_range=(0, 0.5)), "outside value_range"),
        (lambda: xu.integrated_gradients(model, x, baseline="blur", blur_sigma=0), "blur_sigma"),
        (lambda: xu.integrated_gradients(model, x, baseline="uniform", value_range=(0, 1), baseline_samples=0),
         "baseline_samples"),
        (lambda: xu.integrated_gradients(model, x, baseline="uniform", value_range=(0, 1), seed=-1), "seed"),
        (lambda: xu.completeness_gap(model, x, x, baseline=0.0, references=refs), "not both"),
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
        (lambda: xg.noise_tunnel(model, x, method="bogus", blur_sigma=-1.0), r"\['method', 'blur_sigma'\]"),
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
        (lambda: xc.grad_cam_plus_plus(model, x, layer="nope"), "no layer named 'nope'"),
        (lambda: xc.score_cam(model, x, layer=model.layers[-1]), "spatial feature map"),
        (lambda: xc.score_cam(model, x, jit_compile="no"), "jit_compile"),
    ]
    for call, message in cases:
        with pytest.raises(ValueError, match=message):
            call()
    with pytest.raises(TypeError):
        xg.expected_gradients(model, x)                                   # references are required
