"""xai/training/vgg.py: the VGG-7 for any number of classes and tile size, its options checked."""
import numpy as np
import pytest

from xai.training.vgg import build_vgg7


def test_build_vgg7_takes_the_classes_and_size_and_refuses_bad_options():
    model = build_vgg7(5, (64, 64, 3), width=4, block3_width=8, name="toy")
    assert model.name == "toy" and model.output_shape == (None, 5)
    np.testing.assert_allclose(model(np.zeros((2, 64, 64, 3), np.float32)).numpy().sum(-1), 1.0, rtol=1e-5)
    for kwargs, match in (({"padding": "circular"}, "padding"), ({"stem_kernel": 5}, "stem_kernel"),
                          ({"stem_width": 8, "stem_kernel": 4}, "stem_kernel")):
        with pytest.raises(ValueError, match=match):
            build_vgg7(5, (64, 64, 3), **kwargs)
    with pytest.raises(ValueError, match="num_classes"):
        build_vgg7(1, (64, 64, 3))
