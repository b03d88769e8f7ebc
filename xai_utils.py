"""Explanations for CNNs on 1D signals and 2D images: Grad-CAM and Integrated Gradients.

Every method has the same front, ``method(model, x, class_index=None, *, options) -> np.ndarray``,
and shares one core: input validation, the score being explained (:func:`score_model`), the
class indices, and batched, compiled gradient steps. RISE and SISE live in ``xai_perturbation.py``,
metrics in ``xai_metrics.py`` and plots in ``xai_plots.py``; they use this core too.

Axis key: N examples, T signal length, H, W image size, C channels, K classes, S steps or masks,
B items in one model call, F feature channels of a conv layer.
"""
from __future__ import annotations

import weakref
from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

__all__ = [
    "explained_classes",
    "completeness_gap",
    "SCORES",
    "IG_METHODS",
    "grad_cam",
    "integrated_gradients",
    "normalize",
    "score_model",
    "predict_scores",
    "resolve_class_index",
    "conv_layers",
    "find_layer",
    "check_input",
    "check_model",
    "ig_nodes",
    "check_batch_size",
    "check_flag",
    "upsample",
]

SCORES = ("logit", "probability")
IG_METHODS = ("riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid", "gausslegendre")
_CONV_TYPES = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.SeparableConv1D, keras.layers.SeparableConv2D,
               keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D)


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


# --- the model as a chain of layers, and the score being explained ---

def _flatten_chain(model, keep_graphs: bool = False) -> list | None:
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
            inner = _flatten_chain(layer, keep_graphs)
            if inner is None:
                if not keep_graphs:
                    return None
                inner = [layer]                                 # a graph-shaped unit, run whole
            flat.extend(inner)
        else:
            flat.append(layer)
    return flat


def _contains(model, layer) -> bool:
    """Whether ``layer`` is one of ``model``'s layers, at any depth."""
    for inner in model.layers:
        if inner is layer or (isinstance(inner, keras.Model) and _contains(inner, layer)):
            return True
    return False


def conv_layers(model) -> list:
    """Every Conv1D/Conv2D layer of the model, nested models included, in order."""
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            found.extend(conv_layers(layer))
        elif isinstance(layer, _CONV_TYPES):
            found.append(layer)
    return found


def _all_layers(model) -> list:
    """Every layer of the model at any depth (nested models and their layers), in order."""
    found = []
    for layer in model.layers:
        found.append(layer)
        if isinstance(layer, keras.Model):
            found.extend(_all_layers(layer))
    return found


def _spatial(layer, rank: int) -> bool:
    """Whether the layer outputs one feature map of the input's rank (N, T, F) or (N, H, W, F)."""
    try:
        shape = layer.output.shape
    except (AttributeError, ValueError):
        return False
    return isinstance(layer, keras.layers.Layer) and len(shape) == rank


def find_layer(model, layer=None):
    """The layer to explain: ``None`` -> the last convolution (Conv1D/2D, SeparableConv, DepthwiseConv;
    nested models included); a name or a layer object -> that layer, at any depth, if it outputs a
    spatial feature map (rank 3 for 1D, 4 for 2D). Raises ValueError listing the candidates."""
    candidates = conv_layers(model)
    names = [c.name for c in candidates]
    if layer is None:
        if not candidates:
            raise ValueError(f"model {model.name!r} has no convolutional layer; Grad-CAM needs a "
                             "convolutional feature map: pass layer=")
        return candidates[-1]
    rank = len(model.input_shape)
    every = _all_layers(model)
    if isinstance(layer, str):
        matches = [c for c in every if c.name == layer]
        if not matches:
            raise ValueError(f"no layer named {layer!r} in model {model.name!r} (nested models included); "
                             f"convolutional candidates: {names[-10:]}")
        layer = matches[-1]
    elif not any(layer is c for c in every):
        raise ValueError(f"layer {getattr(layer, 'name', layer)!r} is not a layer of model {model.name!r}; "
                         f"convolutional candidates: {names[-10:]}")
    if not _spatial(layer, rank):
        raise ValueError(f"layer {layer.name!r} does not output a spatial feature map of rank {rank} "
                         f"(like the input {model.input_shape}); convolutional candidates: {names[-10:]}")
    return layer


def _activation_name(layer) -> str | None:
    act = layer.get_config().get("activation")
    return act if isinstance(act, str) else getattr(act, "__name__", None)


def _split_head(last):
    """What the model's last layer is: ``(kind, dense)`` with kind "layer" (a separate Softmax or
    sigmoid/softmax Activation: drop it for the logit), "dense" (a Dense with softmax or sigmoid:
    apply it without the activation for the logit) or "logits" (anything else: the output is taken
    as logits), and ``dense`` the Dense layer for "dense"."""
    if isinstance(last, keras.layers.Softmax):
        return "layer", None
    if isinstance(last, keras.layers.Activation) and _activation_name(last) in ("softmax", "sigmoid"):
        return "layer", None
    if isinstance(last, keras.layers.Dense) and _activation_name(last) in ("softmax", "sigmoid"):
        return "dense", last
    return "logits", None


def _linear(dense, h):
    """A Dense layer's affine map without its activation: (B, D) -> (B, K)."""
    out = tf.matmul(h, dense.kernel)
    return out + dense.bias if dense.use_bias else out


class _Forward:
    """Runs a model and returns (feature maps of ``layers``, the score being explained (B, K)).

    It keeps the model's layers (or a graph built on them), never the model object itself, so a
    compiled step that holds it does not keep the model alive.
    """

    def __init__(self, model, layers: tuple, score: str):
        if score not in SCORES:
            raise ValueError(f"score must be one of {SCORES}, got {score!r}")
        self.layers, self.score = tuple(layers), score
        self.chain = _flatten_chain(model, keep_graphs=True)
        self.taps = {}                                              # unit position -> graph that taps it
        for i, unit in enumerate(self.chain or []):
            if isinstance(unit, keras.Model):
                inside = [lay for lay in self.layers if lay is not unit and _contains(unit, lay)]
                if inside:
                    self.taps[i] = self._graph_model(unit, inside, whole=True)
        last = self.chain[-1] if self.chain else model.layers[-1]
        if isinstance(last, keras.Model):
            if _split_head(last.layers[-1])[0] != "logits":
                raise ValueError(f"model {model.name!r} ends in the nested model {last.name!r}, whose last layer is a "
                                 f"{type(last.layers[-1]).__name__}; put the softmax or sigmoid at the top level")
        kind, dense = _split_head(last)
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
        """A functional model on ``model``'s graph giving the outputs of ``layers`` (top-level layers of
        it) and its output (``whole``) or its last layer's input."""
        for lay in layers:
            if not any(lay is top for top in model.layers):
                raise ValueError(f"layer {lay.name!r} sits inside a nested model of {model.name!r} whose graph is not "
                                 "a chain, two levels down; pass a layer of the outer model or of its first level "
                                 "of nested models")
        end = model.outputs[0] if whole else model.layers[-1].input
        return keras.Model(model.inputs, [lay.output for lay in layers] + [end])

    def __call__(self, x):
        """x (B, ...) -> ([features (B, ..., F) per layer], scores (B, K))."""
        if self.chain is not None:
            h, found = x, {}
            for i, lay in enumerate(self.chain if self.head == "as_is" else self.chain[:-1]):
                if i in self.taps:                                  # a graph-shaped unit holding targets
                    outs = self.taps[i](h, training=False)
                    inside = [t for t in self.layers if t is not lay and _contains(lay, t)]
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
            h = _linear(self.dense, h)
        h = tf.cast(h, tf.float32)                                  # mixed-precision models: scores in float32
        if self.softmax:
            h = tf.nn.softmax(h, axis=-1)
        return features, h                                          # features in the model's dtype


# Compiled steps live with the model they belong to and die with it (no id()-keyed state): the
# cache is keyed weakly by the model, and no step holds the model object (see _Forward).
_STEPS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _step(model, factory: Callable, *args):
    """The step ``factory(model, *args)``, built once per model and cached under ``(factory, *args)``.

    Factories are module-level functions whose steps capture nothing but their arguments, so the
    key holds every value a step depends on (input size, layer, score, XLA...) and cannot go stale.
    """
    per_model = _STEPS.setdefault(model, {})
    key = (factory.__qualname__,) + args
    if key not in per_model:
        per_model[key] = factory(model, *args)
    return per_model[key]


def _forward(model, layers: tuple, score: str) -> _Forward:
    return _Forward(model, layers, score)


def score_model(model, score: str = "logit") -> Callable:
    """The score being explained, shared by every method and metric: ``f(x) -> (B, K)`` tensor.

    ``"logit"``: the pre-softmax (or pre-sigmoid) scores: a separate Softmax layer or a softmax or
    sigmoid Activation is bypassed; a last Dense with softmax or sigmoid activation is applied
    without it; a model whose last layer is anything else is taken to output logits already.
    ``"probability"``: the model's output, or the softmax of a logits head (a single logits unit is
    refused). A single sigmoid unit has one class, 0: the positive class; its logit is the
    log-odds of the positive class and its probability the sigmoid.
    """
    forward = _step(model, _forward, (), score)
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


def _batches(n: int, batch_size: int):
    for start in range(0, n, batch_size):
        yield start, min(start + batch_size, n)


def _pad_to(a: np.ndarray, size: int) -> np.ndarray:
    """Pad the first axis to ``size`` with zeros, so every call has one shape (one trace)."""
    if len(a) == size:
        return a
    pad = np.zeros((size - len(a),) + a.shape[1:], a.dtype)
    return np.concatenate([a, pad])


def _progress(total: int, desc: str, progress):
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
    step = _step(model, _predict_step, score, check_flag(jit_compile, "jit_compile"))
    out = []
    for a, b in _batches(len(x), chunk):
        out.append(step(tf.constant(_pad_to(x[a:b], chunk))).numpy()[: b - a])
    return np.concatenate(out)


def _num_classes(model) -> int:
    return int(model.output_shape[-1])


def explained_classes(model, x, class_index=None, *, batch_size: int = 256) -> np.ndarray:
    """The class explained for each example, int32 (N,): ``class_index`` checked and broadcast, or
    (None) the model's prediction (the arg-max of the logits, which is that of the probabilities).
    ``x`` must already have passed :func:`check_input`."""
    return resolve_class_index(class_index, len(x), _num_classes(model),
                               lambda: predict_scores(model, x, score="logit",
                                                      batch_size=batch_size, check=False).argmax(-1))


def _classes(model, x, class_index, score, batch_size):
    return explained_classes(model, x, class_index, batch_size=batch_size)


# --- Grad-CAM ---

def _grad_cam_step(model, target, score: str, jit_compile: bool):
    """(xb (B, ...), cb (B,)) -> cam (B, t) or (B, h, w) at the feature map's resolution."""
    forward = _Forward(model, (target,), score)

    def step(xb, cb):
        with tf.GradientTape() as tape:
            (features,), scores = forward(xb)                       # (B, ..., F), (B, K)
            tape.watch(features)
            picked = tf.gather(scores, cb, batch_dims=1)            # (B,)
        grads = tf.cast(tape.gradient(picked, features), tf.float32)   # (B, ..., F)
        features = tf.cast(features, tf.float32)
        axes = list(range(1, len(features.shape) - 1))
        weights = tf.reduce_mean(grads, axis=axes, keepdims=True)   # (B, 1.., F)
        return tf.nn.relu(tf.reduce_sum(weights * features, axis=-1))   # (B, ...)
    return tf.function(step, jit_compile=jit_compile, reduce_retracing=True)


def grad_cam(model, x, class_index=None, *, layer=None, batch_size: int = 64, score: str = "logit",
             jit_compile: bool = False, progress=None) -> np.ndarray:
    """Grad-CAM (Selvaraju et al., ICCV 2017): ReLU of the feature maps of a conv layer weighted
    by the spatial mean of the score's gradient, upsampled to the input.

    Args:
        model: a Keras model (Sequential or functional; legacy HDF5 models included).
        x: float32 (N, T, C) or (N, H, W, C).
        class_index: None (each example's predicted class), an int, or an int array (N,).
        layer: the conv layer (name or object); None means the last Conv1D/Conv2D.
        batch_size: examples per gradient call (a positive int).
        score: "logit" (the paper's y^c, pre-softmax) or "probability".
        jit_compile: compile the gradient step with XLA (the upsampling stays outside it, so the
            maps equal those without XLA up to float rounding).
        progress: show a progress bar (None: when there are more than 20 batches).

    Returns:
        float32 (N, T) or (N, H, W), non-negative, not normalised; upsampled linearly (1D) or
        bilinearly (2D) with half-pixel centres.
    """
    x = check_input(model, x)
    target = find_layer(model, layer)
    chunk = min(check_batch_size(batch_size), len(x))
    classes = _classes(model, x, class_index, score, batch_size)
    spatial = tuple(x.shape[1:-1])                                      # (T,) or (H, W)
    step = _step(model, _grad_cam_step, target, score, check_flag(jit_compile, "jit_compile"))
    out = np.empty((len(x),) + spatial, np.float32)
    with _progress(int(np.ceil(len(x) / chunk)), "Grad-CAM", progress) as bar:
        for a, b in _batches(len(x), chunk):
            cam = step(tf.constant(_pad_to(x[a:b], chunk)), tf.constant(_pad_to(classes[a:b], chunk)))
            out[a:b] = upsample(cam, spatial).numpy()[: b - a]
            bar.update()
    return out


@tf.function(reduce_retracing=True)
def upsample(cam, size):
    """Maps to the input's size, outside any XLA step (XLA's bilinear resize differs at odd
    factors): (B, t) -> (B, T) linear, or (B, h, w) -> (B, H, W) bilinear, half-pixel centres."""
    return _upsample(cam, size)


def _upsample(cam, size):
    """(B, t) -> (B, T) linear, or (B, h, w) -> (B, H, W) bilinear, half-pixel centres."""
    if len(size) == 1:
        up = tf.image.resize(cam[:, :, None, None], (size[0], 1), method="bilinear")  # (B, T, 1, 1)
        return up[:, :, 0, 0]
    return tf.image.resize(cam[..., None], size, method="bilinear")[..., 0]          # (B, H, W)


# --- Integrated Gradients ---

def ig_nodes(steps: int, method: str = "gausslegendre") -> tuple[np.ndarray, np.ndarray]:
    """Points alpha in [0, 1] and weights of a quadrature rule for the path integral, (S,) each;
    the weights sum to 1, so a linear model's attributions are exact for every rule."""
    if method not in IG_METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {IG_METHODS}")
    too_few = method == "riemann_trapezoid" and not isinstance(steps, bool) and steps < 2
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1 or too_few:
        raise ValueError(f"steps must be an int >= {2 if method == 'riemann_trapezoid' else 1}, got {steps!r}")
    i = np.arange(steps, dtype=np.float64)
    if method == "gausslegendre":
        nodes, weights = np.polynomial.legendre.leggauss(steps)
        return (nodes + 1) / 2, weights / 2
    if method == "riemann_trapezoid":
        weights = np.full(steps, 1.0 / (steps - 1))
        weights[[0, -1]] /= 2
        return i / (steps - 1), weights
    offset = {"riemann_left": 0.0, "riemann_right": 1.0, "riemann_middle": 0.5}[method]
    return (i + offset) / steps, np.full(steps, 1.0 / steps)


def _broadcast_baseline(baseline, x: np.ndarray) -> np.ndarray:
    """None -> zeros; a scalar; an array broadcastable to one example; or per example (N, ...)."""
    if baseline is None:
        return np.zeros_like(x)
    b = np.asarray(baseline, np.float32)
    try:
        if b.ndim == x.ndim:
            out = np.broadcast_to(b, x.shape)
        else:
            out = np.broadcast_to(b, x.shape[1:])[None].repeat(len(x), 0)
    except ValueError:
        raise ValueError(f"baseline of shape {b.shape} does not broadcast to one example {x.shape[1:]} "
                         f"nor to the batch {x.shape}") from None
    if not np.isfinite(out).all():
        raise ValueError("baseline has non-finite values (NaN or inf)")
    return np.ascontiguousarray(out, np.float32)


def _ig_step(model, score: str, jit_compile: bool):
    """(xb, bb (E, ...), ab, wb (S,), cb (E,)) -> the weighted sum of gradients along the path (E, ...)."""
    forward = score_model(model, score)

    def step(xb, bb, ab, wb, cb):
        shape = tf.shape(xb)
        expand = [-1] + [1] * (len(xb.shape) - 1)
        path = bb[:, None] + tf.reshape(ab, [1] + expand) * (xb - bb)[:, None]   # (E, S, ...)
        flat = tf.reshape(path, tf.concat([[-1], shape[1:]], 0))                 # (E*S, ...)
        with tf.GradientTape() as tape:
            tape.watch(flat)
            scores = forward(flat)                                               # (E*S, K)
            picked = tf.gather(scores, tf.repeat(cb, tf.size(ab)), batch_dims=1)  # (E*S,)
        grads = tape.gradient(picked, flat)
        grads = tf.reshape(grads, tf.concat([[shape[0], tf.size(ab)], shape[1:]], 0))  # (E, S, ...)
        return tf.reduce_sum(grads * tf.reshape(wb, [1] + expand), axis=1)            # (E, ...)
    return tf.function(step, jit_compile=jit_compile, reduce_retracing=True)


def integrated_gradients(model, x, class_index=None, *, baseline=None, steps: int = 32,
                         method: str = "gausslegendre", batch_size: int = 256, score: str = "logit",
                         return_delta: bool = False, jit_compile: bool = False, progress=None):
    """Integrated Gradients (Sundararajan et al., ICML 2017): (x - x') times the path integral of
    the score's gradient along the straight line from the baseline x' to x, by quadrature.

    Args:
        model: a Keras model.
        x: float32 (N, T, C) or (N, H, W, C).
        class_index: None (predicted class), an int, or an int array (N,).
        baseline: None (zeros), a scalar, an array broadcastable to one example, or (N, ...).
        steps: quadrature points S on the path.
        method: "gausslegendre" (default; exact for polynomials of degree 2S - 1) or one of
            "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid".
        batch_size: model inputs per gradient call (examples x steps), so memory stays bounded.
        score: "logit" or "probability" (see :func:`score_model`).
        return_delta: also return the completeness gap.
        jit_compile: compile the gradient step with XLA.
        progress: show a progress bar (None: when there are more than 20 calls).

    Returns:
        attributions float32 shaped like x; with ``return_delta`` also delta float32 (N,) =
        sum(attributions) - (F(x) - F(x')), which is 0 for an exact integral (completeness).
    """
    x = check_input(model, x)
    base = _broadcast_baseline(baseline, x)
    alphas, weights = ig_nodes(steps, method)
    batch_size = check_batch_size(batch_size)
    classes = _classes(model, x, class_index, score, batch_size)
    s_chunk = min(steps, batch_size)                     # steps per call
    e_chunk = max(1, min(batch_size // s_chunk, len(x)))  # examples per call: e_chunk * s_chunk <= batch_size
    step = _step(model, _ig_step, score, check_flag(jit_compile, "jit_compile"))

    avg_grad = np.zeros_like(x)
    n_calls = int(np.ceil(len(x) / e_chunk)) * int(np.ceil(steps / s_chunk))
    with _progress(n_calls, "Integrated Gradients", progress) as bar:
        for a, b in _batches(len(x), e_chunk):
            xb = tf.constant(_pad_to(x[a:b], e_chunk))
            bb = tf.constant(_pad_to(base[a:b], e_chunk))
            cb = tf.constant(_pad_to(classes[a:b], e_chunk))
            for s0, s1 in _batches(steps, s_chunk):
                ab = tf.constant(_pad_to(alphas[s0:s1].astype(np.float32), s_chunk))
                wb = tf.constant(_pad_to(weights[s0:s1].astype(np.float32), s_chunk))  # padded: weight 0
                avg_grad[a:b] += step(xb, bb, ab, wb, cb).numpy()[: b - a]
                bar.update()
    attributions = (x - base) * avg_grad
    if not return_delta:
        return attributions
    delta, _ = completeness_gap(model, x, attributions, classes, baseline=base, score=score, batch_size=batch_size)
    return attributions, delta


def completeness_gap(model, x, attributions, class_index=None, *, baseline=None, score: str = "logit",
                     batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """IG's completeness axiom, checked: ``delta = sum(attributions) - (F(x) - F(x'))`` per example.

    The one definition used by ``integrated_gradients(return_delta=True)``, the tests, the benchmark
    and the notebooks. Returns ``(delta, relative)``, float32 (N,) each, with
    ``relative = |delta| / |F(x) - F(x')|`` (inf where the score does not change along the path).
    """
    x = check_input(model, x)
    attributions = np.asarray(attributions, np.float64)
    if attributions.shape != x.shape:
        raise ValueError(f"attributions have shape {attributions.shape}, expected x's {x.shape}")
    base = _broadcast_baseline(baseline, x)
    classes = explained_classes(model, x, class_index, batch_size=batch_size)
    rows = np.arange(len(x))
    f_x = predict_scores(model, x, score=score, batch_size=batch_size, check=False)[rows, classes]
    f_b = predict_scores(model, base, score=score, batch_size=batch_size, check=False)[rows, classes]
    gap = f_x.astype(np.float64) - f_b
    delta = attributions.reshape(len(x), -1).sum(1) - gap
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = np.where(gap != 0, np.abs(delta) / np.abs(gap), np.inf)
    return delta.astype(np.float32), relative.astype(np.float32)


# --- display helper ---

def normalize(maps) -> np.ndarray:
    """Per-map min-max scaling to [0, 1], for display only: float32 (N, ...). A constant map -> 0."""
    maps = np.asarray(maps, np.float32)
    flat = maps.reshape(len(maps), -1)                                   # (N, D)
    lo = flat.min(1, keepdims=True)
    span = flat.max(1, keepdims=True) - lo
    return ((flat - lo) / np.where(span > 0, span, 1)).reshape(maps.shape)
