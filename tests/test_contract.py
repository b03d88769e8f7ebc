"""One contract over every method: the same front, the same checks, the same guarantees.

Every method takes ``(model, x, class_index=None, *, batch_size, ...)`` for 1D and 2D inputs and
gives finite float32 maps of a documented shape that do not depend on the batch size or on how the
explained class is given, are deterministic, and refuse bad inputs with a message that names them.
"""
import numpy as np
import pytest
from conftest import tiny_conv1d, tiny_conv2d

import xai_perturbation as xp
import xai_utils as xu

METHODS = {
    "grad_cam": (lambda m, x, c=None, **k: xu.grad_cam(m, x, c, **k), "positions"),
    "integrated_gradients": (lambda m, x, c=None, **k: xu.integrated_gradients(m, x, c, steps=8, **k), "like_x"),
    "rise": (lambda m, x, c=None, **k: xp.rise(m, x, c, n_masks=24, seed=3, **k), "positions"),
    "sise": (lambda m, x, c=None, **k: xp.sise(m, x, c, **k), "positions"),
}
MODELS = {"1d": (tiny_conv1d, (16, 1), 3), "2d": (tiny_conv2d, (12, 12, 3), 4)}


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
