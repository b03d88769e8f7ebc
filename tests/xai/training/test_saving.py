"""xai/training/saving.py: portable saving keeps every value that differs from a default and drops only
the arguments newer Keras added with their defaults."""
from xai.training.saving import _portable_config


def test_portable_config_keeps_non_default_values():
    node = {"module": "keras.layers", "class_name": "BatchNormalization",
            "config": {"name": "bn", "momentum": 0.9, "renorm": True, "renorm_clipping": None, "renorm_momentum": 0.99}}
    out = _portable_config(node)["config"]
    assert out == {"name": "bn", "momentum": 0.9, "renorm": True}
    init = {"module": "keras.initializers", "class_name": "HeNormal", "config": {"seed": 3, "input_axes": None}}
    assert _portable_config(init)["config"] == {"seed": 3}
    rescale = {"module": "keras.layers", "class_name": "Rescaling", "config": {"scale": 0.5, "offset": 0.0}}
    assert _portable_config(rescale)["config"] == {"scale": 0.5, "offset": 0.0}   # known since 3.0: kept
