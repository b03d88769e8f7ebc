"""One contract over every method: the same front, the same checks, the same guarantees.

Every method takes ``(model, x, class_index=None, *, batch_size, ...)`` for 1D and 2D inputs and
gives finite float32 maps of a documented shape that do not depend on the batch size or on how the
explained class is given, are deterministic, and refuse bad inputs with a message that names them.
"""
import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import tiny_conv1d, tiny_conv2d
from xai.core import predict_scores
from xai.methods import METHODS, method_function


def _references(x):
    """A fixed reference set for expected gradients: it depends on the shape of an example only."""
    top = 1 if x.ndim == 3 else 255
    return np.random.default_rng(11).uniform(0, top, size=(5,) + x.shape[1:]).astype(np.float32)


def _range(x):
    return (0, 1) if x.ndim == 3 else (0, 255)


# The options each method of METHODS runs with here, as a function of the input x: what it needs (the
# references of expected gradients) and what keeps it small (steps, masks, samples); {} for its
# defaults (a method without a key runs with its defaults).
OPTIONS = {
    "grad_cam": lambda x: {},
    "grad_cam_plus_plus": lambda x: {},
    "score_cam": lambda x: {},
    "integrated_gradients": lambda x: {"steps": 8},
    "expected_gradients": lambda x: {"references": _references(x), "samples": 12},
    "saliency": lambda x: {},
    "gradient_x_input": lambda x: {},
    "smoothgrad": lambda x: {"samples": 6, "seed": 1},
    "smoothgrad_squared": lambda x: {"base": "gradient_x_input", "samples": 6, "value_range": _range(x)},
    "vargrad": lambda x: {"samples": 6, "noise": 0.2, "noise_unit": "absolute"},
    "noise_tunnel": lambda x: {"base": "integrated_gradients", "kind": "vargrad", "samples": 3, "steps": 4},
    "rise": lambda x: {"n_masks": 24, "seed": 3},
    "sise": lambda x: {},
}
# Further settings of a method that take another code path, under the same contract: {case: (method, options)}.
VARIANTS = {
    "integrated_gradients, blur baseline": ("integrated_gradients", lambda x: {
        "steps": 4, "baseline": "blur", "blur_sigma": 2.0}),
    "integrated_gradients, uniform baseline": ("integrated_gradients", lambda x: {
        "steps": 4, "baseline": "uniform", "baseline_samples": 3, "value_range": _range(x), "seed": 2}),
}
CASES = list(METHODS) + list(VARIANTS)


def _case(case):
    """(f(model, x, class_index=None, **options) with the case's options, the kind of map METHODS declares)."""
    name, options = VARIANTS[case] if case in VARIANTS else (case, OPTIONS.get(case, lambda x: {}))
    function = method_function(name)

    def run(model, x, class_index=None, **more):
        return function(model, x, class_index, **options(x), **more)
    return run, METHODS[name].maps


def test_every_method_of_the_library_is_under_contract():
    """The one list of methods (xai.methods.METHODS) is the list run here: a method added to it runs with its
    defaults unless OPTIONS keeps it small; options left for a method that is gone fail."""
    assert CASES[:len(METHODS)] == list(METHODS)
    assert set(OPTIONS) <= set(METHODS), {"not in METHODS": sorted(set(OPTIONS) - set(METHODS))}
    assert {name for name, _ in VARIANTS.values()} <= set(METHODS)
    for name, entry in METHODS.items():
        assert entry.maps in ("positions", "like_x"), name
        assert callable(method_function(name))
    with pytest.raises(ValueError, match="unknown method"):
        method_function("gradcam")


MODELS = {"1d": (tiny_conv1d, (16, 1), 3), "2d": (tiny_conv2d, (12, 12, 3), 4)}


@pytest.fixture(scope="module", params=list(MODELS))
def setting(request):
    build, shape, classes = MODELS[request.param]
    model = build()
    x = np.random.default_rng(0).uniform(0, 1 if request.param == "1d" else 255, size=(9,) + shape).astype(np.float32)
    return model, x, classes


@pytest.mark.parametrize("case", CASES)
def test_method_keeps_shape_dtype_determinism_batch_invariance_and_refusals(case, setting):
    model, x, k = setting
    method, kind = _case(case)
    want = x.shape if kind == "like_x" else x.shape[:-1]
    predicted = predict_scores(model, x).argmax(-1)

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


@pytest.mark.parametrize("case", CASES)
def test_no_call_holds_more_model_inputs_than_batch_size(case):
    method, _ = _case(case)
    model = keras.Sequential([keras.Input((16, 1)), _AtMost(7, name="at_most"), tiny_conv1d()])
    x = np.random.default_rng(1).uniform(0, 1, size=(9, 16, 1)).astype(np.float32)
    assert np.isfinite(method(model, x, batch_size=7)).all()
    with pytest.raises(tf.errors.InvalidArgumentError, match="more model inputs"):
        method(model, x, batch_size=8)


def test_no_method_keeps_an_explained_model_alive():
    import gc
    import weakref
    model = tiny_conv1d()
    x = np.random.default_rng(2).uniform(0, 1, size=(2, 16, 1)).astype(np.float32)
    for case in CASES:
        _case(case)[0](model, x)
    ref = weakref.ref(model)
    del model
    gc.collect()
    assert ref() is None, "a compiled step keeps the model alive"
