"""The core every explanation method and metric shares: what a model must be, checks at the door,
the score being explained (:func:`score_model`), the classes explained, walking nested models,
compiled steps cached per model, fixed-size batches, and resizing maps to the input.

``xai_utils`` (Grad-CAM, IG), ``xai_gradients`` (gradients, noise tunnel, expected gradients),
``xai_cam`` (Grad-CAM++, Score-CAM), ``xai_perturbation`` (RISE, SISE) and ``xai_metrics`` build on
these public names only. Compiled steps are built by module-level factories through :func:`cached_step`,
keyed by the factory and every argument it gets, and held weakly by their model.

Axis key: N examples, T signal length, H, W image size, C channels, K classes, S steps or masks,
B items in one model call, F feature channels of a layer, D positions.
"""
from __future__ import annotations

import weakref
from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

__all__ = [
    "SCORES",
    "check_model",
    "check_input",
    "check_batch_size",
    "check_flag",
    "check_number",
    "check_choice",
    "check_value_range",
    "check_references",
    "resolve_class_index",
    "explained_classes",
    "flatten_chain",
    "all_layers",
    "is_spatial",
    "lookup_layer",
    "contains",
    "split_head",
    "Forward",
    "feature_gradients",
    "cached_step",
    "score_model",
    "predict_scores",
    "batches",
    "pad_to",
    "progress_bar",
    "upsample",
    "resize_maps",
    "minmax",
]

SCORES = ("logit", "probability")


# --- validation at the door ---

def check_input(model, x, name: str = "x") -> np.ndarray:
    """``x`` as float32 (N, T, C) or (N, H, W, C) matching the model's input; raises ValueError.

    A single example without the batch axis is an error (add one with ``x[None]``), so that a
    batch of one is never mistaken for an example.
    """
    check_model(model)
    want = tuple(model.input_shape)                               # (None, T, C) or (None, H, W, C)
    x = np.asarray(x)
    if x.dtype.kind not in "fiub":
        raise ValueError(f"{name} must be numeric, got dtype {x.dtype}")
    if x.ndim == len(want) - 1 and all(w is None or w == s for w, s in zip(want[1:], x.shape)):
        raise ValueError(f"{name} has shape {x.shape}: a single example without the batch axis; "
                         f"the model expects {want}. Pass {name}[None] for one example.")
    if x.ndim != len(want) or any(w is not None and w != s for w, s in zip(want[1:], x.shape[1:])):
        raise ValueError(f"{name} has shape {x.shape}, expected {want} (N examples first)")
    if len(x) == 0:
        raise ValueError(f"{name} holds no examples (shape {x.shape})")
    x = x.astype(np.float32, copy=False)
    if not np.isfinite(x).all():
        bad = np.flatnonzero(~np.isfinite(x.reshape(len(x), -1)).all(1))
        raise ValueError(f"{name} has non-finite values (NaN or inf) in example(s) {bad[:10].tolist()}; "
                         "clean or drop them first")
    return x


def check_model(model) -> None:
    """What every method supports: a Keras model (Sequential or functional, nested models included)
    with one input, of rank 3 (N, T, C) or 4 (N, H, W, C), and one output (N, K). Raises ValueError
    that says what is supported otherwise."""
    if not isinstance(model, keras.Model):
        raise ValueError(f"model must be a keras.Model, got {type(model).__name__}")
    try:
        inputs, outputs = model.inputs, model.outputs
    except (AttributeError, ValueError):
        inputs = outputs = None
    if not inputs or not outputs:
        raise ValueError(f"model {model.name!r} has no symbolic inputs and outputs (a subclassed model?); the "
                         "methods need a Sequential or functional model: wrap it, e.g. "
                         "inp = keras.Input(shape); model = keras.Model(inp, subclassed(inp))")
    if len(inputs) != 1:
        raise ValueError(f"model {model.name!r} has {len(inputs)} inputs; the methods explain models with one "
                         "input (N, T, C) or (N, H, W, C). Fix the other inputs in a wrapper model.")
    if len(outputs) != 1:
        raise ValueError(f"model {model.name!r} has {len(outputs)} outputs; choose the one to explain: "
                         f"keras.Model(model.inputs, model.outputs[i]) (names: {[t.name for t in outputs]})")
    if len(model.input_shape) not in (3, 4):
        raise ValueError(f"model {model.name!r} takes input {model.input_shape}; the methods explain 1D "
                         "(N, T, C) and 2D (N, H, W, C) inputs")
    if len(model.output_shape) != 2:
        raise ValueError(f"model {model.name!r} outputs {model.output_shape}; the methods explain class scores (N, K)")


def resolve_class_index(class_index, n: int, num_classes: int, predicted: Callable[[], np.ndarray]):
    """Class per example, int32 (N,): ``None`` -> ``predicted()``; an int -> that class for all;
    an int array (N,) -> per example. Raises ValueError when out of range or mis-shaped."""
    if class_index is None:
        return np.asarray(predicted(), np.int32)
    idx = np.asarray(class_index)
    if idx.dtype.kind not in "iu" and not (idx.dtype.kind == "f" and np.all(idx == np.round(idx))):
        raise ValueError(f"class_index must be None, an int or an int array, got {idx.dtype}")
    idx = idx.astype(np.int64)
    if idx.ndim == 0:
        idx = np.full(n, int(idx))
    if idx.shape != (n,):
        raise ValueError(f"class_index has shape {idx.shape}, expected a scalar or ({n},), one per example")
    if idx.min() < 0 or idx.max() >= num_classes:
        raise ValueError(f"class_index {idx[(idx < 0) | (idx >= num_classes)][:5].tolist()} out of range: "
                         f"the model has {num_classes} classes (0..{num_classes - 1})")
    return idx.astype(np.int32)



# --- the model as a chain of layers, nested models walked once ---

def flatten_chain(model, keep_graphs: bool = False) -> list | None:
    """The layers of a model whose graph is a single chain, nested chains expanded; None otherwise.

    With ``keep_graphs``, a nested model whose own graph is not a chain (a ``keras.applications``
    backbone under a new head) stays in the list as one unit instead of making the answer None.
    Nested layers keep their own names: ``model.get_layer("mobilenetv2_1.00_96").get_layer("Conv_1")``.
    """
    if isinstance(model, keras.Sequential):
        layers = list(model.layers)
    elif isinstance(model, keras.Model) and len(model.inputs) == 1 and len(model.outputs) == 1:
        layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
        previous = model.inputs[0]
        for layer in layers:
            # the node of this graph that feeds on the previous tensor (a nested model used as a layer
            # also has the node of its own construction)
            nodes = [n for n in layer._inbound_nodes
                     if len(n.input_tensors) == 1 and n.input_tensors[0] is previous and len(n.output_tensors) == 1]
            if len(nodes) != 1:
                return None
            previous = nodes[0].output_tensors[0]
        if previous is not model.outputs[0]:
            return None
    else:
        return None
    flat = []
    for layer in layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if isinstance(layer, keras.Model):
            inner = flatten_chain(layer, keep_graphs)
            if inner is None:
                if not keep_graphs:
                    return None
                inner = [layer]                                 # a graph-shaped unit, run whole
            flat.extend(inner)
        else:
            flat.append(layer)
    return flat


def contains(model, layer) -> bool:
    """Whether ``layer`` is one of ``model``'s layers, at any depth."""
    for inner in model.layers:
        if inner is layer or (isinstance(inner, keras.Model) and contains(inner, layer)):
            return True
    return False



def all_layers(model) -> list:
    """Every layer of the model at any depth (nested models and their layers), in order."""
    found = []
    for layer in model.layers:
        found.append(layer)
        if isinstance(layer, keras.Model):
            found.extend(all_layers(layer))
    return found


def is_spatial(layer, rank: int) -> bool:
    """Whether ``layer`` (not a nested model, not an input) outputs one feature map of the input's
    rank: (N, T, F) for 1D, (N, H, W, F) for 2D."""
    if isinstance(layer, (keras.Model, keras.layers.InputLayer)) or not isinstance(layer, keras.layers.Layer):
        return False
    try:
        shape = layer.output.shape
    except (AttributeError, ValueError):                 # no symbolic output
        return False
    return len(shape) == rank


def lookup_layer(model, layer, hint: Callable[[], str]):
    """A layer with a spatial feature map, given by name or object at any depth of ``model`` (a
    repeated name means its last layer). Raises ValueError ending in ``hint()`` (the candidates,
    worked out only when there is an error)."""
    every = all_layers(model)
    if isinstance(layer, str):
        matches = [c for c in every if c.name == layer]
        if not matches:
            raise ValueError(f"no layer named {layer!r} in model {model.name!r} (nested models included); {hint()}")
        layer = matches[-1]
    elif not any(layer is c for c in every):
        raise ValueError(f"layer {getattr(layer, 'name', layer)!r} is not a layer of model {model.name!r}; {hint()}")
    rank = len(model.input_shape)
    if not is_spatial(layer, rank):
        raise ValueError(f"layer {layer.name!r} does not output a spatial feature map of rank {rank} "
                         f"(like the input {model.input_shape}); {hint()}")
    return layer


def activation_name(layer) -> str | None:
    act = layer.get_config().get("activation")
    return act if isinstance(act, str) else getattr(act, "__name__", None)


def split_head(last):
    """What the model's last layer is: ``(kind, dense)`` with kind "layer" (a separate Softmax or
    sigmoid/softmax Activation: drop it for the logit), "dense" (a Dense with softmax or sigmoid:
    apply it without the activation for the logit) or "logits" (anything else: the output is taken
    as logits), and ``dense`` the Dense layer for "dense"."""
    if isinstance(last, keras.layers.Softmax):
        return "layer", None
    if isinstance(last, keras.layers.Activation) and activation_name(last) in ("softmax", "sigmoid"):
        return "layer", None
    if isinstance(last, keras.layers.Dense) and activation_name(last) in ("softmax", "sigmoid"):
        return "dense", last
    return "logits", None


def linear_without_activation(dense, h):
    """A Dense layer's affine map without its activation: (B, D) -> (B, K)."""
    out = tf.matmul(h, dense.kernel)
    return out + dense.bias if dense.use_bias else out


class Forward:
    """Runs a model and returns (feature maps of ``layers``, the score being explained (B, K)).

    It keeps the model's layers (or a graph built on them), never the model object itself, so a
    compiled step that holds it does not keep the model alive.
    """

    def __init__(self, model, layers: tuple, score: str):
        if score not in SCORES:
            raise ValueError(f"score must be one of {SCORES}, got {score!r}")
        self.layers, self.score = tuple(layers), score
        self.chain = flatten_chain(model, keep_graphs=True)
        self.taps = {}                                              # unit position -> graph that taps it
        for i, unit in enumerate(self.chain or []):
            if isinstance(unit, keras.Model):
                inside = [lay for lay in self.layers if lay is not unit and contains(unit, lay)]
                if inside:
                    self.taps[i] = self._graph_model(unit, inside, whole=True)
        last = self.chain[-1] if self.chain else model.layers[-1]
        if isinstance(last, keras.Model):
            if split_head(last.layers[-1])[0] != "logits":
                raise ValueError(f"model {model.name!r} ends in the nested model {last.name!r}, whose last layer is a "
                                 f"{type(last.layers[-1]).__name__}; put the softmax or sigmoid at the top level")
        kind, dense = split_head(last)
        self.softmax = False
        if score == "logit":
            self.head, self.dense = ("as_is", None) if kind == "logits" else \
                ("drop_last", None) if kind == "layer" else ("linear_dense", dense)
        else:
            self.head, self.dense = "as_is", None
            if kind == "logits":                                    # a logits head: its softmax
                if int(model.output_shape[-1]) < 2:
                    raise ValueError(f"model {model.name!r} ends in a single unit without a sigmoid: its output "
                                     "is no probability. Use score='logit', or add a sigmoid")
                self.softmax = True
        if self.chain is None:
            self._graph = self._graph_model(model, self.layers, whole=self.head == "as_is")

    @staticmethod
    def _graph_model(model, layers, whole: bool):
        """A functional model on ``model``'s graph giving the outputs of ``layers`` and its output
        (``whole``) or its last layer's input.

        ``layers`` are layers of ``model`` or of a model nested in it (one level down). For the
        nested ones the graph is rebuilt with the same layer objects (shared weights), the nested
        model being replaced by one that also returns the targets' feature maps.
        """
        top = list(model.layers)
        nested = {}                                             # id(unit) -> (unit, [targets inside])
        for lay in layers:
            if any(lay is t for t in top):
                continue
            unit = next((u for u in top if isinstance(u, keras.Model) and any(lay is v for v in u.layers)), None)
            if unit is None:
                raise ValueError(f"layer {lay.name!r} sits two or more levels down in the nested models of {model.name!r}, "
                                 "whose graph is not a chain; pass a layer of the outer model or of its first level "
                                 "of nested models")
            nested.setdefault(id(unit), (unit, []))[1].append(lay)
        if not nested:
            end = model.outputs[0] if whole else model.layers[-1].input
            return keras.Model(model.inputs, [lay.output for lay in layers] + [end])
        taps = {key: (keras.Model(unit.inputs, [t.output for t in inside] + list(unit.outputs)), inside, unit)
                for key, (unit, inside) in nested.items()}
        found, head_input, calls = {}, [], {}

        def call(layer, *args, **kwargs):
            if id(layer) in taps or any(layer is t for t in layers):
                calls[id(layer)] = calls.get(id(layer), 0) + 1
                if calls[id(layer)] > 1:
                    raise ValueError(f"{layer.name!r} is called more than once in the graph of {model.name!r}, so its "
                                     "feature maps are ambiguous; explain a layer that runs once")
            if id(layer) in taps:
                tap, inside, unit = taps[id(layer)]
                outs = tap(*args, **kwargs)
                found.update((id(t), f) for t, f in zip(inside, outs[:len(inside)]))
                rest = outs[len(inside):]
                out = rest[0] if len(unit.outputs) == 1 else rest
            else:
                if layer is top[-1]:
                    head_input.append(args[0] if args else next(iter(kwargs.values())))
                out = layer(*args, **kwargs)
            if any(layer is t for t in layers):
                found[id(layer)] = out
            return out

        # the outer graph run on new symbolic inputs with the same layers (shared weights); a private
        # but stable Keras 3 method (3.10 to 3.15): keras.models.clone_model would also recompile the
        # model, which fails for custom losses and builds a throwaway optimizer
        inputs = [keras.Input(batch_shape=tuple(t.shape), dtype=t.dtype) for t in model.inputs]
        outputs = model._run_through_graph(inputs, operation_fn=lambda op: op, call_fn=call)
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        end = outputs[0] if whole else head_input[-1]
        return keras.Model(inputs, [found[id(lay)] for lay in layers] + [end])

    def __call__(self, x):
        """x (B, ...) -> ([features (B, ..., F) per layer], scores (B, K))."""
        if self.chain is not None:
            h, found = x, {}
            for i, lay in enumerate(self.chain if self.head == "as_is" else self.chain[:-1]):
                if i in self.taps:                                  # a graph-shaped unit holding targets
                    outs = self.taps[i](h, training=False)
                    inside = [t for t in self.layers if t is not lay and contains(lay, t)]
                    for t, f in zip(inside, outs[:-1]):
                        found[id(t)] = f
                    h = outs[-1]
                else:
                    h = lay(h, training=False)
                if any(lay is want for want in self.layers):
                    found[id(lay)] = h
            features = [found[id(lay)] for lay in self.layers]
        else:
            outs = self._graph(x, training=False)
            outs = list(outs) if isinstance(outs, (list, tuple)) else [outs]
            features, h = outs[:-1], outs[-1]
        if self.head == "linear_dense":
            h = linear_without_activation(self.dense, h)
        h = tf.cast(h, tf.float32)                                  # mixed-precision models: scores in float32
        if self.softmax:
            h = tf.nn.softmax(h, axis=-1)
        return features, h                                          # features in the model's dtype


# Compiled steps live with the model they belong to and die with it (no id()-keyed state): the
# cache is keyed weakly by the model, and no step holds the model object (see Forward).
STEPS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def cached_step(model, factory: Callable, *args):
    """The step ``factory(model, *args)``, built once per model and cached under ``(factory, *args)``.

    Factories are module-level functions whose steps capture nothing but their arguments, so the
    key holds every value a step depends on (input size, layer, score, XLA...) and cannot go stale.
    """
    per_model = STEPS.setdefault(model, {})
    key = (factory.__qualname__,) + args
    if key not in per_model:
        per_model[key] = factory(model, *args)
    return per_model[key]


def feature_gradients(forward: Forward, xb, cb):
    """A layer's feature maps and the gradient of each example's picked score with respect to them,
    both float32 (B, ..., F): what the CAM methods weight. ``forward`` taps that one layer."""
    with tf.GradientTape() as tape:
        (features,), scores = forward(xb)                           # (B, ..., F), (B, K)
        tape.watch(features)
        picked = tf.gather(scores, cb, batch_dims=1)                # (B,)
    grads = tf.cast(tape.gradient(picked, features), tf.float32)    # (B, ..., F)
    return tf.cast(features, tf.float32), grads


def _forward(model, layers: tuple, score: str) -> Forward:
    return Forward(model, layers, score)


def score_model(model, score: str = "logit") -> Callable:
    """The score being explained, shared by every method and metric: ``f(x) -> (B, K)`` tensor.

    ``"logit"``: the pre-softmax (or pre-sigmoid) scores: a separate Softmax layer or a softmax or
    sigmoid Activation is bypassed; a last Dense with softmax or sigmoid activation is applied
    without it; a model whose last layer is anything else is taken to output logits already.
    ``"probability"``: the model's output, or the softmax of a logits head (a single logits unit is
    refused). A single sigmoid unit has one class, 0: the positive class; its logit is the
    log-odds of the positive class and its probability the sigmoid.
    """
    forward = cached_step(model, _forward, (), score)
    return lambda x: forward(x)[1]


def check_batch_size(batch_size, name: str = "batch_size") -> int:
    """A positive int (bools and floats refused), as every method's ``batch_size``."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"{name} must be a positive int (model inputs per call), got {batch_size!r}")
    return int(batch_size)


def check_flag(value, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def batches(n: int, batch_size: int):
    for start in range(0, n, batch_size):
        yield start, min(start + batch_size, n)


def pad_to(a: np.ndarray, size: int) -> np.ndarray:
    """Pad the first axis to ``size`` with zeros, so every call has one shape (one trace)."""
    if len(a) == size:
        return a
    pad = np.zeros((size - len(a),) + a.shape[1:], a.dtype)
    return np.concatenate([a, pad])


def progress_bar(total: int, desc: str, progress):
    from tqdm.auto import tqdm
    show = total > 20 if progress is None else bool(progress)
    return tqdm(total=total, desc=desc, disable=not show, leave=False)


def _predict_step(model, score: str, jit_compile: bool):
    f = score_model(model, score)
    return tf.function(lambda xb: f(xb), jit_compile=jit_compile, reduce_retracing=True)


def predict_scores(model, x, *, score: str = "logit", batch_size: int = 256, jit_compile: bool = False,
                   check: bool = True) -> np.ndarray:
    """Scores (logits or probabilities) of every class: float32 (N, K), in fixed-size batches
    (at most ``batch_size``, and no larger than the work there is)."""
    x = check_input(model, x) if check else x
    chunk = min(check_batch_size(batch_size), len(x))
    step = cached_step(model, _predict_step, score, check_flag(jit_compile, "jit_compile"))
    out = []
    for a, b in batches(len(x), chunk):
        out.append(step(tf.constant(pad_to(x[a:b], chunk))).numpy()[: b - a])
    return np.concatenate(out)


def num_classes(model) -> int:
    return int(model.output_shape[-1])


def explained_classes(model, x, class_index=None, *, batch_size: int = 256) -> np.ndarray:
    """The class explained for each example, int32 (N,): ``class_index`` checked and broadcast, or
    (None) the model's prediction (the arg-max of the logits, which is that of the probabilities).
    ``x`` must already have passed :func:`check_input`."""
    return resolve_class_index(class_index, len(x), num_classes(model),
                               lambda: predict_scores(model, x, score="logit",
                                                      batch_size=batch_size, check=False).argmax(-1))



# --- maps ---

@tf.function(reduce_retracing=True)
def upsample(cam, size):
    """Maps to the input's size, outside any XLA step (XLA's bilinear resize differs at odd
    factors): (B, t) -> (B, T) linear, or (B, h, w) -> (B, H, W) bilinear, half-pixel centres."""
    return resize_maps(cam, size)


def resize_maps(cam, size):
    """(B, t) -> (B, T) linear, or (B, h, w) -> (B, H, W) bilinear, half-pixel centres."""
    if len(size) == 1:
        up = tf.image.resize(cam[:, :, None, None], (size[0], 1), method="bilinear")  # (B, T, 1, 1)
        return up[:, :, 0, 0]
    return tf.image.resize(cam[..., None], size, method="bilinear")[..., 0]          # (B, H, W)




def minmax(a, axis=None) -> np.ndarray:
    """Scale to [0, 1] over ``axis`` (None: the whole array; e.g. 1 for each row): float32. A
    constant slice becomes 0. The one min-max scaler of the project (display, SISE's masks and fusion)."""
    a = np.asarray(a, np.float32)
    lo = a.min(axis=axis, keepdims=True)
    span = a.max(axis=axis, keepdims=True) - lo
    return np.where(span > 0, (a - lo) / np.where(span > 0, span, 1), 0).astype(np.float32)


def check_number(name, value, low=None, high=None, low_open=False, integer=False):
    """A finite number (an int where ``integer``) within the bounds; raises ValueError naming it."""
    kinds = (int, np.integer) if integer else (int, float, np.integer, np.floating)
    if isinstance(value, bool) or not isinstance(value, kinds) or not np.isfinite(value):
        raise ValueError(f"{name} must be a finite {'int' if integer else 'number'}, got {value!r}")
    if low is not None and (value <= low if low_open else value < low):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}, got {value!r}")
    if high is not None and value > high:
        raise ValueError(f"{name} must be <= {high}, got {value!r}")
    return value


def check_choice(value, choices: tuple, name: str):
    """One of ``choices`` (compared by equality, strings only); raises ValueError listing them."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def check_value_range(value_range, x=None, *, needed_for: str) -> tuple[float, float]:
    """The range of the data's values, ``(lo, hi)`` with lo < hi, as floats; ``x``, when given,
    must lie inside it. ``None`` is refused with a message saying what needs it (``needed_for``)
    and what to pass: the range is never guessed from the data."""
    if value_range is None:
        raise ValueError(f"{needed_for} needs the range of the data's values: pass value_range=(lo, hi), "
                         "e.g. (0, 255) for HMT tiles or (x_train.min(), x_train.max()) for MNIST-1D")
    bad = ValueError(f"value_range must be two finite numbers (lo, hi) with lo < hi, got {value_range!r}")
    if isinstance(value_range, str) or not hasattr(value_range, "__len__") or len(value_range) != 2:
        raise bad
    if any(isinstance(v, (bool, str, bytes)) for v in value_range):
        raise bad
    try:
        lo, hi = (float(v) for v in value_range)
    except (TypeError, ValueError):
        raise bad from None
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo >= hi:
        raise bad
    # compared in float32, the data's type, so that a range taken from float64 data is not refused
    # for rounding (NumPy 1.26 would compare in float64)
    if x is not None and (x.min() < np.float32(lo) or x.max() > np.float32(hi)):
        raise ValueError(f"x has values in [{x.min():.4g}, {x.max():.4g}], outside value_range ({lo:.4g}, {hi:.4g}); "
                         "pass the range the data can take (widen it to cover every example)")
    return lo, hi


def check_references(references, x: np.ndarray, name: str = "references") -> np.ndarray:
    """A reference set for ``x`` (``x`` checked already): float32 (R, ...) with R >= 1 and one
    example's shape, numeric and finite (e.g. training tiles, the baselines of expected gradients)."""
    r = np.asarray(references)
    if r.dtype.kind not in "fiub":
        raise ValueError(f"{name} must be numeric, got dtype {r.dtype}")
    if r.ndim != x.ndim or r.shape[1:] != x.shape[1:] or len(r) == 0:
        raise ValueError(f"{name} has shape {r.shape}, expected (R,) + one example's shape {x.shape[1:]} with R >= 1 "
                         f"(e.g. training examples x_train[:200]); add the first axis for a single reference")
    r = r.astype(np.float32, copy=False)
    if not np.isfinite(r).all():
        raise ValueError(f"{name} has non-finite values (NaN or inf); clean or drop them first")
    return r
