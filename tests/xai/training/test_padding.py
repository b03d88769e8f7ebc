"""xai/training/padding.py: the reflect padding built from Keras's own layers equals numpy's on maps of
any size and channel count, passes gradients as its mirror does, and saves and loads with plain Keras."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from xai.training.padding import reflect_padding


@pytest.mark.parametrize("shape", [(2, 5, 7, 3), (1, 2, 2, 1), (3, 12, 9, 32)])
def test_reflect_padding_equals_numpys(shape):
    x = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    out = reflect_padding()(x).numpy()
    np.testing.assert_allclose(out, np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="reflect"), atol=1e-6)


def test_the_gradient_counts_each_pixel_as_often_as_the_pad_copies_it():
    x = tf.Variable(np.ones((1, 4, 4, 1), np.float32))
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(reflect_padding()(x))
    grad = tape.gradient(total, x).numpy()[0, :, :, 0]
    count = np.ones(4)
    count[[1, 2]] += 1                                    # rows 1 and 2 are copied into the pad (and columns)
    np.testing.assert_allclose(grad, np.outer(count, count))


def test_a_model_with_it_saves_and_loads_with_plain_keras(tmp_path):
    x = keras.Input((None, None, 2))
    h = keras.layers.Conv2D(3, 3, padding="valid")(reflect_padding("pad1")(x))            # same size as its input
    model = keras.Model(x, h)
    path = str(tmp_path / "m.keras")
    model.save(path)
    again = keras.models.load_model(path)
    data = np.random.default_rng(1).normal(size=(2, 6, 5, 2)).astype(np.float32)
    np.testing.assert_allclose(again(data).numpy(), model(data).numpy(), atol=1e-6)
    assert again(data).shape == (2, 6, 5, 3)
