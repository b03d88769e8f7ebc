"""xai/analysis/artefacts.py: a network's marks in its maps, measured where the answer is known: a valid
convolution piles relevance in the centre, a stride-2 3 x 3 convolution alternates it between columns,
and inputs that are not images are refused."""
import keras
import numpy as np
import pytest

from xai.analysis.artefacts import map_artefacts


def _net(stride_kernel: int, padding: str = "valid", seed: int = 0):
    """A small classifier: a stride-2 convolution, two 3 x 3 convolutions, global average pooling."""
    init = lambda i: keras.initializers.RandomUniform(0.0, 0.1, seed=seed + i)  # noqa: E731  positive: no cancelling
    x = keras.Input((48, 48, 1))
    h = keras.layers.Conv2D(4, stride_kernel, strides=2, padding=padding, kernel_initializer=init(0), activation="gelu")(x)
    h = keras.layers.Conv2D(4, 3, padding=padding, kernel_initializer=init(1), activation="gelu")(h)
    h = keras.layers.Conv2D(4, 3, padding=padding, kernel_initializer=init(2), activation="gelu")(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    return keras.Model(x, keras.layers.Dense(2, kernel_initializer=init(3))(h))


def test_valid_convolutions_pile_relevance_in_the_centre_and_stride_2_alternates_it():
    x = np.ones((2, 48, 48, 1), np.float32)
    strided = map_artefacts(_net(3), x, inner=32, band=4, steps=8)
    even = map_artefacts(_net(4), x, inner=32, band=4, steps=8)
    assert strided["centre_to_outside"] > 1.5 and even["centre_to_outside"] > 1.5        # valid: fewer paths at the border
    assert strided["column_alternation"] > 3 * even["column_alternation"]                 # 3 x 3 at stride 2: uneven overlap
    assert len(strided["column_profile"]) == 48 and strided["n"] == 2
    padded = map_artefacts(_net(4, "same"), x, inner=32, band=4, steps=8)
    assert padded["centre_to_outside"] < even["centre_to_outside"]


def test_map_artefacts_refuses_signals():
    x = keras.Input((16, 1))
    h = keras.layers.Conv1D(2, 3)(x)
    model = keras.Model(x, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling1D()(h)))
    with pytest.raises(ValueError, match=r"images \(N, H, W, C\)"):
        map_artefacts(model, np.ones((1, 16, 1), np.float32), inner=8)
