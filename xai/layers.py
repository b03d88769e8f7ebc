"""What a model is, as the explanation methods see it: the models they support (:func:`check_model`),
the model as a chain of layers with nested models walked once, how often a layer runs and its
tensors in this model's graph, the rules that choose the layer a CAM method explains
(:func:`find_layer`) and SISE's blocks (:func:`sise_layers`), and what the model's head is
(:func:`split_head`, :func:`output_activation`).

Axis key: N examples, T signal length, H, W image size, C channels, K classes, F feature channels.
"""
from __future__ import annotations

from collections.abc import Callable

import keras

__all__ = [
    "check_model",
    "flatten_chain",
    "contains",
    "all_layers",
    "is_spatial",
    "times_called",
    "layer_tensors",
    "check_called_once",
    "lookup_layer",
    "conv_layers",
    "spatial_layers",
    "find_layer",
    "sise_layers",
    "activation_name",
    "split_head",
    "output_activation",
]


# --- what every method supports ---

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
    dtype = str(getattr(inputs[0], "dtype", "float32"))
    if "float" not in dtype:
        raise ValueError(f"model {model.name!r} takes {dtype} input; the methods feed it float inputs (interpolations, "
                         "noise, masked copies) and take gradients with respect to them, which an integer input "
                         "would round or cut. Rebuild it on keras.Input(shape, dtype='float32') (its layers can be "
                         "reused) and scale inside the model, e.g. with a Rescaling layer")
    if len(model.input_shape) not in (3, 4):
        raise ValueError(f"model {model.name!r} takes input {model.input_shape}; the methods explain 1D "
                         "(N, T, C) and 2D (N, H, W, C) inputs")
    if len(model.output_shape) != 2:
        raise ValueError(f"model {model.name!r} outputs {model.output_shape}; the methods explain class scores (N, K)")


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


def _graph_nodes(model) -> list | None:
    """The nodes (layer calls) of a model's own graph, or None where Keras keeps none (a subclassed
    model). ``_nodes_by_depth`` and ``Sequential._functional`` are private but stable (Keras 3.0-3.15)."""
    graph = getattr(model, "_functional", None) if isinstance(model, keras.Sequential) else model
    by_depth = getattr(graph, "_nodes_by_depth", None)
    if by_depth is None:
        return None
    return [node for nodes in by_depth.values() for node in nodes]


def times_called(model, layer) -> int | None:
    """How many times ``layer`` runs in one call of ``model`` (nested models counted through their
    calls), or None where the graph is not known. A layer shared with another model counts only
    its calls here."""
    nodes = _graph_nodes(model)
    if nodes is None:
        return None
    total = 0
    for node in nodes:
        op = node.operation
        if op is layer:
            total += 1
        elif isinstance(op, keras.Model) and op is not model and contains(op, layer):
            total += times_called(op, layer) or 0
    return total


def layer_tensors(model, layer) -> tuple:
    """``(input, output)`` symbolic tensors of ``layer`` in ``model``'s own graph. ``layer.output``
    is the tensor of the layer's first call anywhere, which for a layer shared with another model
    may be that model's; this is the call in this model (a layer of a nested model: its own)."""
    nodes = [n for n in (_graph_nodes(model) or []) if n.operation is layer]
    if len(nodes) == 1:
        ins, outs = nodes[0].input_tensors, nodes[0].output_tensors
        return (ins[0] if len(ins) == 1 else list(ins)), (outs[0] if len(outs) == 1 else list(outs))
    return layer.input, layer.output


def check_called_once(model, layer) -> None:
    """Refuse a layer that runs more than once in the model: its feature maps are ambiguous."""
    n = times_called(model, layer)
    if n is not None and n > 1:
        raise ValueError(f"layer {layer.name!r} runs {n} times in one call of model {model.name!r} (one layer applied to "
                         "several tensors), so 'its' feature map is ambiguous and the explanation would use one call's "
                         "without saying which. Pass layer= a layer that runs once (e.g. the one after it)")


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
    check_called_once(model, layer)
    return layer


# --- the layers explained: one home for the rules that choose them ---

_CONV_TYPES = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.SeparableConv1D, keras.layers.SeparableConv2D,
               keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D)


def conv_layers(model) -> list:
    """Every convolution (Conv, SeparableConv, DepthwiseConv; 1D or 2D) of the model, nested models
    included, in order."""
    return [layer for layer in all_layers(model) if isinstance(layer, _CONV_TYPES)]


_GLOBAL_POOLING = (keras.layers.GlobalAveragePooling1D, keras.layers.GlobalAveragePooling2D,
                   keras.layers.GlobalMaxPooling1D, keras.layers.GlobalMaxPooling2D)


def _parents(op) -> list:
    nodes = getattr(op, "_inbound_nodes", [])
    tensors = list(nodes[0].input_tensors) if nodes else []
    return [t._keras_history[0] for t in tensors if hasattr(t, "_keras_history")]


def _pooled(op, memo: dict) -> bool:
    """Whether an operation's output is made from globally pooled features only: a global pooling
    (with or without keepdims) or anything computed from such outputs alone (a squeeze-excitation
    reshape, the 1 x 1 convs of MobileNetV3's head). Its map, 1 x 1 or broadcast, has no positions.
    A map that shrank to 1 x 1 through strided convolutions (a small input) is not pooled.

    Walks the graph back with an explicit stack (a backbone of a thousand layers would overflow
    Python's recursion), ``memo`` shared by the calls of one search (each operation visited once)."""
    stack = [op]
    while stack:
        current = stack[-1]
        if id(current) in memo:
            stack.pop()
            continue
        if isinstance(current, _GLOBAL_POOLING) or isinstance(current, (keras.layers.InputLayer, keras.Model)):
            memo[id(current)] = isinstance(current, _GLOBAL_POOLING)
            stack.pop()
            continue
        parents = _parents(current)
        todo = [p for p in parents if id(p) not in memo]
        if todo:
            stack.extend(todo)
            continue
        memo[id(current)] = bool(parents) and all(memo[id(p)] for p in parents)
        stack.pop()
    return memo[id(op)]


def spatial_layers(model) -> list:
    """Every layer whose output is a spatial feature map of the input's rank, (N, T, F) for 1D or
    (N, H, W, F) for 2D, at any depth (the layers inside nested models, not the nested models
    themselves), in the order the model runs them. Grad-CAM can explain any of them."""
    check_model(model)
    rank = len(model.input_shape)
    return [layer for layer in all_layers(model) if is_spatial(layer, rank)]


def find_layer(model, layer=None):
    """The layer Grad-CAM explains.

    ``None``: the last layer whose output is still a spatial feature map before the spatial axes
    are pooled or flattened away, whatever its type (a convolution, the Activation, BatchNorm or Add
    after it, a layer inside a nested backbone); a map made from globally pooled features only is
    passed over (a global pooling with keepdims, a squeeze-excitation reshape, the 1 x 1 convs after
    the pooling in MobileNetV3's head: a map without positions cannot localise), while a map that
    is 1 x 1 because the input is small is kept. A model in which a
    spatial layer runs more than once has no single "last map": name the layer then (a layer that
    runs more than once is refused by name too, :func:`check_called_once`). A pooling layer
    that keeps the spatial axes counts (for VGG16 with its top, the default is ``block5_pool``;
    pass ``layer="block5_conv3"`` for the paper's choice). Only layers can be tapped: where the
    last map comes from an operation that is not a layer (ConvNeXt's residual ``x + y``), the
    default is the last layer before it. "Last" follows the order of ``model.layers``; in a model
    with several spatial branches, name the one to explain.

    A name or a layer object: that layer, at any depth, if it outputs a spatial feature map (rank 3
    for 1D, 4 for 2D). Nested layers keep their own names (``"out_relu"`` inside MobileNetV2, not
    ``"mobilenetv2_1.00_96/out_relu"``); where two layers share a name, the last one is taken, so
    pass the object (``backbone.get_layer(name)``) then.
    Raises ValueError listing the candidates.
    """
    candidates = spatial_layers(model)
    names = [c.name for c in candidates]
    if layer is None:
        if not candidates:
            raise ValueError(f"model {model.name!r} has no layer with a spatial feature map output of rank "
                             f"{len(model.input_shape)}; Grad-CAM needs one")
        for candidate in candidates:           # with a shared layer, "the last map" has no single answer
            check_called_once(model, candidate)
        memo = {}                                   # one walk of the graph for every candidate
        kept = [c for c in candidates if not _pooled(c, memo)]
        return (kept or candidates)[-1]
    return lookup_layer(model, layer, lambda: f"last spatial candidates: {names[-10:]}")


_POOLING = (keras.layers.MaxPooling1D, keras.layers.MaxPooling2D, keras.layers.AveragePooling1D,
            keras.layers.AveragePooling2D, keras.layers.GlobalAveragePooling1D,
            keras.layers.GlobalAveragePooling2D, keras.layers.GlobalMaxPooling1D,
            keras.layers.GlobalMaxPooling2D)


def sise_layers(model) -> list:
    """The last layer of each convolutional block: every layer right before a pooling layer."""
    chain = flatten_chain(model)
    if chain is None:
        layers = list(model.layers)
    else:
        layers = chain
    found = [prev for prev, nxt in zip(layers[:-1], layers[1:]) if isinstance(nxt, _POOLING)
             and not isinstance(prev, _POOLING)]
    if not found:
        raise ValueError(f"model {model.name!r} has no pooling layer, so SISE cannot find its blocks; "
                         "pass layers=[...] by name")
    return found


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


# --- the head ---

def output_activation(model) -> str | None:
    """The activation that ends the model: ``"softmax"`` or ``"sigmoid"`` (a Softmax layer, such an
    Activation, or a Dense with it), or None (the output is taken as logits)."""
    chain = flatten_chain(model, keep_graphs=True)
    last = chain[-1] if chain else model.layers[-1]
    if isinstance(last, keras.Model):
        last = last.layers[-1]
    if isinstance(last, keras.layers.Softmax):
        return "softmax"
    act = activation_name(last) if isinstance(last, (keras.layers.Activation, keras.layers.Dense)) else None
    return act if act in ("softmax", "sigmoid") else None
