"""The core every explanation method and metric shares: checks at the door (inputs, options, and
what a model must do: :func:`check_behaviour`), the score being explained (:func:`score_model`), the
classes explained, compiled steps cached per model and dropped when its graph changes, and fixed-size
batches. The model's layers (what is supported, nested models, the layer a method explains) are in
``xai/layers.py``; maps as data (resizing, scaling, one value a position) in ``xai/maps.py``.

``xai.methods.cam`` (Grad-CAM, Grad-CAM++, Score-CAM), ``xai.methods.integrated_gradients`` (IG),
``xai.methods.gradients`` (gradients, noise tunnel, expected gradients), ``xai.methods.perturbation``
(RISE, SISE) and ``xai.metrics`` build on these public names only, and on the steps they share, each
written once: the gradient at points and along straight paths (:func:`input_gradients`,
:func:`path_gradients`) and the score of masked inputs (:func:`masked_scores`). Compiled steps are
built by module-level factories through :func:`cached_step`, keyed by the factory and every argument it
gets, and held weakly by their model.

Axis key: N examples, T signal length, H, W image size, C channels, K classes, S steps or masks,
B items in one model call, F feature channels of a layer, D positions.
"""
from __future__ import annotations

import weakref
from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from xai.layers import all_layers, check_model, contains, flatten_chain, layer_tensors, output_activation, split_head

__all__ = [
    "SCORES",
    "check_input",
    "check_batch_size",
    "check_flag",
    "check_number",
    "check_choice",
    "check_value_range",
    "check_references",
    "resolve_class_index",
    "check_class_range",
    "explained_classes",
    "graph_signature",
    "model_cache",
    "check_behaviour",
    "Forward",
    "feature_gradients",
    "cached_step",
    "score_model",
    "input_gradients",
    "path_gradients",
    "masked_scores",
    "masked_scores_step",
    "predict_scores",
    "batches",
    "even_chunk",
    "pad_to",
    "padded_batches",
    "sum_over_steps",
    "progress_bar",
    "num_classes",
    "linear_without_activation",
    "STEPS",
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
    check_behaviour(model, x)
    return x


def _tolerance(model) -> float:
    """How far two calls on the same example may differ by rounding alone: float16 or bfloat16;
    TF32 matrix products on a GPU (TensorFlow's default on Ampere and newer, and cuDNN may choose
    another algorithm for another batch size); float32. Batch statistics differ by far more."""
    if "16" in str(getattr(model, "compute_dtype", "float32")):
        return 2e-2
    if tf.config.experimental.tensor_float_32_execution_enabled() and tf.config.list_logical_devices("GPU"):
        return 1e-2
    return 1e-4


def check_behaviour(model, x: np.ndarray) -> None:
    """What a model must do for its explanations to mean anything, tried once per model graph on
    the first examples of ``x`` (already checked): give the same output for the same input twice
    (no layer run with ``training=True``), give each example an output that does not depend on the
    other examples of its batch (the methods batch steps, masks and examples together, and pad the
    last batch), and, when nothing marks its output as probabilities, not output probabilities all
    the same (they would be taken for logits, and softmaxed again for ``score="probability"``).
    Raises ValueError saying which and what to do."""
    cache = model_cache(model)
    if cache.get("behaviour_checked"):
        return
    probe = x[: min(len(x), 4)]                                            # (b, ...)
    one = probe[:1]
    run = lambda xb: np.asarray(tf.cast(model(tf.constant(xb), training=False), tf.float32))  # noqa: E731
    first, again = run(one), run(one)
    mixed = run(np.concatenate([one, np.zeros_like(one), probe[::-1] * 0.5]))     # one, then other examples
    tol = _tolerance(model)
    scale = 1.0 + np.abs(first).max()
    if np.abs(first - again).max() > tol * scale:
        raise ValueError(f"model {model.name!r} gives different outputs for the same input on two calls: a layer runs "
                         "in training mode (Dropout or noise called with training=True?) or draws random numbers. "
                         "Explanations need a deterministic model: call such layers with training=False")
    if np.abs(first[0] - mixed[0]).max() > tol * scale:
        raise ValueError(f"model {model.name!r} gives an example a different output when other examples share its batch "
                         f"(by up to {np.abs(first[0] - mixed[0]).max():.3g}): a BatchNormalization (or another layer) "
                         "uses the batch's statistics at inference, e.g. called with training=True. The methods batch "
                         "examples, steps and masks together and pad the last batch, so its explanations would depend "
                         "on the batching; rebuild it so that inference uses the moving statistics (training=False)")
    # probabilities for the examples, a blank input and the examples dimmed alike: a probability head
    # gives them for any input, a logits head that happens to give one for an example does not for all
    if output_activation(model) is None and first.shape[-1] >= 2:
        if np.all(mixed >= 0) and np.allclose(mixed.sum(-1), 1.0, atol=1e-4):
            raise ValueError(f"model {model.name!r} outputs non-negative rows that sum to 1 on every input tried: "
                             f"probabilities, but its last layer ({type(model.layers[-1]).__name__} "
                             f"{model.layers[-1].name!r}) is no Softmax layer, softmax or sigmoid Activation, or Dense "
                             "with a softmax, so the methods would take them for logits (and softmax them again for "
                             "score='probability'). End the model in keras.layers.Softmax() on its logits (in place of a "
                             "Lambda), or explain keras.Model(model.inputs, <logits layer>.output)")
    cache["behaviour_checked"] = True


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
    check_class_range(idx, num_classes)
    return idx.astype(np.int32)


def check_class_range(classes, num_classes: int, *, what: str = "class_index", positions=None) -> None:
    """The one range check of classes: every entry of ``classes`` (int array) in 0..num_classes-1.
    Raises ValueError naming up to five bad values (``what``: "class_index", "labels"...) and, with
    ``positions`` (the examples' positions in the whole data, as ``classes``), where they are."""
    classes = np.asarray(classes)
    bad = (classes < 0) | (classes >= num_classes)
    if bad.any():
        where = "" if positions is None else f" at example(s) {np.asarray(positions)[bad][:5].tolist()}"
        raise ValueError(f"{what} {classes[bad][:5].tolist()} out of range{where}: the model has {num_classes} classes "
                         f"(0..{num_classes - 1})")



def linear_without_activation(dense, h):
    """A Dense layer's affine map without its activation: (B, D) -> (B, K), in the kernel's dtype
    (float32 under a mixed-precision policy, whose features come in float16)."""
    h = tf.cast(h, dense.kernel.dtype)
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
            end = model.outputs[0] if whole else layer_tensors(model, model.layers[-1])[0]
            return keras.Model(model.inputs, [layer_tensors(model, lay)[1] for lay in layers] + [end])
        taps = {key: (keras.Model(unit.inputs, [layer_tensors(unit, t)[1] for t in inside] + list(unit.outputs)),
                      inside, unit) for key, (unit, inside) in nested.items()}
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


def graph_signature(model) -> tuple:
    """What a model's graph is made of: its layers at any depth and its output tensors, as objects
    (compared by identity). ``Sequential.pop()`` and ``add()`` change it; training does not."""
    return tuple(all_layers(model)) + tuple(model.outputs or ())


def _same_graph(a: tuple, b: tuple) -> bool:
    return len(a) == len(b) and all(u is v for u, v in zip(a, b))


def model_cache(model) -> dict:
    """The per-model cache of compiled steps and checks, emptied when the model's graph changed
    since they were made (a layer popped or added), so that no step runs an old graph."""
    signature = graph_signature(model)
    per_model = STEPS.get(model)
    if per_model is None or not _same_graph(per_model.get("graph", ()), signature):
        per_model = STEPS[model] = {"graph": signature}
    return per_model


def cached_step(model, factory: Callable, *args):
    """The step ``factory(model, *args)``, built once per model and cached under ``(factory, *args)``.

    Factories are module-level functions whose steps capture nothing but their arguments, so the
    key holds every value a step depends on (input size, layer, score, XLA...) and cannot go stale;
    a change to the model's graph (:func:`graph_signature`) drops every step built for the old one.
    """
    per_model = model_cache(model)
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


# --- the steps every gradient and perturbation method shares, run inside its compiled step ---

def input_gradients(score_fn: Callable, points, cb, lead: int):
    """The gradient of each example's picked score with respect to the input, at every point:
    points float32 (E, L.., ...), its first ``lead`` axes E examples then L.. points of each (steps,
    draws), then one input's axes; cb int32 (E,). Returns float32 (E, L.., ...). ``score_fn``:
    (B, ...) -> (B, K), as :func:`score_model` gives."""
    shape = tf.shape(points)
    flat = tf.reshape(points, tf.concat([[-1], shape[lead:]], 0))                        # (E*L.., ...)
    with tf.GradientTape() as tape:
        tape.watch(flat)
        per_example = tf.reduce_prod(shape[1:lead])                                      # L.. points of an example
        picked = tf.gather(score_fn(flat), tf.repeat(cb, per_example), batch_dims=1)     # (E*L..,)
    return tf.reshape(tape.gradient(picked, flat), shape)                                # (E, L.., ...)


def path_gradients(score_fn: Callable, start, end, alphas, cb, lead: int):
    """The gradient along straight paths, the one path step of Integrated Gradients, its noise
    tunnel and expected gradients: the gradients (:func:`input_gradients`) at the points
    ``start + alphas * (end - start)``, and ``end - start``.

    start, end: float32 broadcasting to (E, L.., ...) (``lead`` axes: E examples, then the paths'
    and steps' axes L..); alphas: float32 broadcasting against them (size 1 on the input's axes);
    cb: int32 (E,). Returns (gradients (E, L.., ...), end - start as broadcast), float32.
    """
    diff = end - start
    points = start + alphas * diff                                                       # (E, L.., ...)
    return input_gradients(score_fn, points, cb, lead), diff


def masked_scores(score_fn: Callable, xb, masks, cb):
    """The picked score of each example under each mask, the one scoring of masked inputs of
    Score-CAM, RISE and SISE: xb float32 (E, ..., C); masks float32 (E, M, ...) or (1, M, ...)
    (one set for every example), without the channel axis; cb int32 (E,). Returns float32 (E, M)."""
    masked = xb[:, None] * masks[..., None]                                              # (E, M, ..., C)
    flat = tf.reshape(masked, tf.concat([[-1], tf.shape(xb)[1:]], 0))                    # (E*M, ..., C)
    n_masks = tf.shape(masks)[1]
    picked = tf.gather(score_fn(flat), tf.repeat(cb, n_masks), batch_dims=1)             # (E*M,)
    return tf.reshape(picked, [tf.shape(xb)[0], n_masks])                                # (E, M)


def masked_scores_step(model, score: str, jit_compile: bool):
    """A factory for :func:`cached_step`: the compiled :func:`masked_scores` of the model's ``score``,
    (xb (E, ..., C), masks (E or 1, M, ...), cb (E,)) -> (E, M)."""
    score_fn = score_model(model, score)
    return tf.function(lambda xb, masks, cb: masked_scores(score_fn, xb, masks, cb), jit_compile=jit_compile,
                       reduce_retracing=True)


def check_batch_size(batch_size, name: str = "batch_size") -> int:
    """A positive int (bools and floats refused), as every method's ``batch_size``."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"{name} must be a positive int (model inputs per call), got {batch_size!r}")
    return int(batch_size)


def check_flag(value, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def even_chunk(n: int, limit: int) -> int:
    """The chunk size that covers ``n`` items in the fewest calls of at most ``limit`` items, split as
    evenly as those calls allow, so that padding the last call wastes least: 10 draws at most 8 a call
    give 5 + 5, not 8 + 2 padded to 8 + 8 (which runs 16 for 10). The methods split their draws,
    steps, masks and channels so; their examples keep ``min(limit, N)`` a call, one shape for every
    call with N >= limit (an XLA-compiled step is not compiled again for another N)."""
    for name, value in (("n", n), ("limit", limit)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    calls = -(-n // limit)
    return -(-n // calls)


def batches(n: int, batch_size: int):
    for start in range(0, n, batch_size):
        yield start, min(start + batch_size, n)


def padded_batches(n: int, size: int, *arrays):
    """The one batching loop of the methods: for each ``[a, b)`` of ``range(n)`` in steps of ``size``,
    yields ``(a, b, tensors)``, each array's rows ``a:b`` zero-padded to ``size`` (one shape a call,
    so one trace). Callers keep ``[: b - a]`` of a result, or give padded rows weight 0."""
    for a, b in batches(n, size):
        yield a, b, [tf.constant(pad_to(np.asarray(arr[a:b]), size)) for arr in arrays]


def sum_over_steps(step: Callable, inputs: tuple, cb, alphas: np.ndarray, weights: np.ndarray, size: int, bar):
    """The sum of ``step(*inputs, ab, wb, cb)`` over the path's steps, ``size`` steps a call: alphas
    and weights float32 (S,), the last call's padded steps weighing 0; a float32 array as one call
    gives (e.g. (E, ...)). The host loop of a path whose steps do not fit one call (IG, the noise tunnel)."""
    total = 0
    for _, _, (ab, wb) in padded_batches(len(alphas), size, alphas, weights):
        total = total + step(*inputs, ab, wb, cb).numpy()
        bar.update()
    return total


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
    for a, b, (xb,) in padded_batches(len(x), chunk, x):
        out.append(step(xb).numpy()[: b - a])
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
