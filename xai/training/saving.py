"""Saving the repository's models: a portable ``.keras`` file that every Keras from 3.10 loads, written
atomically beside its provenance JSON (seed, recipe, accuracies, library versions); reading that JSON
back; loading the course's Keras 2 models.
"""
from __future__ import annotations

import json
import os
import platform
import zipfile

import keras
import numpy as np

from xai.files import atomic_open, atomic_path

__all__ = [
    "OLDEST_KERAS_CHECKED",
    "library_versions",
    "save_portable",
    "save_model_with_provenance",
    "read_provenance",
    "load_legacy_model",
]

OLDEST_KERAS_CHECKED = "3.10"   # the oldest Keras the saved models were loaded in (see the README)


def library_versions() -> dict:
    import tensorflow as tf
    return {"python": platform.python_version(), "tensorflow": tf.__version__,
            "keras": keras.__version__, "numpy": np.__version__}


# Arguments every Keras 3 initializer has known since 3.0. Newer Keras writes more (3.15 adds
# input_axes and output_axes), which older versions reject; initialisers matter only for training.
_INITIALIZER_ARGS = {"seed", "scale", "mode", "distribution", "mean", "stddev", "minval", "maxval",
                     "value", "gain"}


# Layer arguments that Keras versions newer than 3.10 write and 3.10 rejects, with their defaults:
# dropped where they hold that default (whatever Keras does the saving).
_NEWER_LAYER_ARGS = {"renorm": False, "renorm_clipping": None, "renorm_momentum": 0.99,
                     "quantization_config": None, "lora_alpha": None}


def _portable_config(node):
    """A Keras config tree that every Keras 3 from 3.10 reads.

    Newer Keras versions write constructor arguments that older ones reject (3.15: BatchNormalization's
    renorm, renorm_clipping, renorm_momentum; the initializers' input_axes, output_axes). Those layer
    arguments (:data:`_NEWER_LAYER_ARGS`) are dropped where they equal the constructor's default:
    leaving them out gives the same layer in every version that has them and loads in those that do
    not. Initializer configs keep only the arguments Keras 3.0 knew (they matter only for training).
    A non-default value of a newer argument is kept: older Keras cannot represent it anyway.
    """
    if isinstance(node, list):
        return [_portable_config(v) for v in node]
    if not isinstance(node, dict):
        return node
    node = {k: _portable_config(v) for k, v in node.items()}
    config = node.get("config")
    if isinstance(config, dict) and node.get("module") == "keras.initializers":
        node["config"] = {k: v for k, v in config.items() if k in _INITIALIZER_ARGS}
    elif isinstance(config, dict) and node.get("module") == "keras.layers":
        node["config"] = {k: v for k, v in config.items()
                          if not (k in _NEWER_LAYER_ARGS and _same(v, _NEWER_LAYER_ARGS[k]))}
    return node


def _same(value, default) -> bool:
    """A serialized config value equals a constructor default (tuples serialize as lists)."""
    if isinstance(default, tuple):
        default = list(default)
    try:
        return type(value) is type(default) and value == default
    except Exception:
        return False


def save_portable(model, path: str) -> None:
    """Save ``model`` as a ``.keras`` file for inference that loads with a plain
    ``keras.models.load_model(path)`` in every Keras the project supports (3.10 and newer).

    The file holds the architecture and the weights, nothing that matters only for training: no
    optimizer state, schedule or compile settings (an uncompiled copy is saved), and initializer
    configs reduced to the arguments every Keras 3 knows. Written to ``path`` directly; callers
    that need atomicity write to a temporary path and rename.
    """
    if not path.endswith(".keras"):
        raise ValueError(f"path must end in .keras, got {path!r}")
    try:
        copy = type(model).from_config(model.get_config())   # uncompiled: no optimizer, no compile config
        copy.set_weights(model.get_weights())
    except Exception as err:                            # subclassed models may not clone
        raise ValueError(f"cannot save {model.name!r} portably: it does not clone from its config "
                         f"({type(err).__name__}: {err}); use a Sequential or functional model") from err
    copy.save(path)
    with zipfile.ZipFile(path) as z:
        entries = [(info, z.read(info.filename)) for info in z.infolist()]
    with zipfile.ZipFile(path, "w") as z:
        for info, data in entries:
            if info.filename == "config.json":
                config = _portable_config(json.loads(data))
                config.pop("compile_config", None)
                data = json.dumps(config).encode()
            z.writestr(info, data)


def save_model_with_provenance(model, path: str, provenance: dict) -> None:
    """Save ``model`` portably (:func:`save_portable`) to ``path`` (.keras) and ``provenance`` to
    the .json beside it, atomically.

    Both are written to temporary files in the same folder and renamed into place, so an
    interrupted save never leaves a half-written model. The JSON also records the Keras version
    that saved the model and the oldest Keras the portable format is checked to load in.
    """
    folder = os.path.dirname(os.path.abspath(path)) or "."
    os.makedirs(folder, exist_ok=True)
    json_path = os.path.splitext(path)[0] + ".json"
    provenance = dict(provenance, saved_with_keras=keras.__version__,
                      loads_in_keras=f">={OLDEST_KERAS_CHECKED}")
    with atomic_open(json_path, "w") as f:                   # renamed second: never new provenance by an old model
        json.dump(provenance, f, indent=2, sort_keys=True)
        f.write("\n")
        with atomic_path(path, suffix=".keras") as tmp_model:
            save_portable(model, tmp_model)


def load_legacy_model(path: str):
    """A course model saved by Keras 2 (``.h5``), loaded by Keras 3 without compiling. Keras 3 warns
    that the file's first layer takes an ``input_shape`` argument, a property of the file that the
    reader can do nothing about; that one warning is silenced, any other passes."""
    import warnings
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no model file at {path!r}")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Do not pass an `input_shape`", category=UserWarning)
        return keras.models.load_model(path, compile=False)


def read_provenance(path: str) -> dict:
    """The JSON written beside a saved model by :func:`save_model_with_provenance`, its ``history``
    holding the chosen epoch (``best_epoch``) as a freshly trained model's does."""
    with open(os.path.splitext(path)[0] + ".json") as f:
        info = json.load(f)
    if isinstance(info.get("history"), dict) and "best_epoch" in info:
        info["history"]["best_epoch"] = info["best_epoch"]
    return info
