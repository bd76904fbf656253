"""Where each Keras weight of a model lives in Keras's two HDF5 weight layouts, worked out from the generic layer
interface (name, _keras_weights(), layers) alone.

Keras 3 (`.weights.h5`): every object Keras saves has a group `<path>/vars` holding its own variables as datasets
"0", "1", ...; a path element is the attribute that holds the object, or, inside a list such as a model's
`layers`, the snake_case class name made unique among its siblings (dense, dense_1, ..., functional,
sequential), never the layer's `.name`. An object met twice (a shared layer) is saved once, where it is met
first. Some layers keep their variables in sub-objects (an LSTM's `cell`, MultiHeadAttention's query_dense, ...):
`groups()` knows those.

Keras 2 (legacy `.h5`): one group per top-level layer, named by the layer's name, listing its weights in
`weight_names` in the legacy order (a nested model's trainable weights first, then its non-trainable ones).
"""
from __future__ import annotations

import re

from ..layers.base import Layer

__all__ = ["keras_class_name", "snake_case", "is_graph_model", "aggregates_children", "groups", "keras3_entries",
           "legacy_layers", "legacy_pairs", "weight_names"]


def snake_case(name):
    """Keras's naming.to_snake_case, as its saver names list members (Conv2D -> conv2d, LSTM -> lstm)."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def is_graph_model(obj):
    """A functional model or a Sequential (Keras saves its `layers` list first)."""
    return isinstance(obj, Layer) and getattr(obj, "_graph", None) is not None


def keras_class_name(obj):
    """The class name Keras would save the object under: Model(inputs, outputs) is Keras's Functional. A layer
    class named differently from its Keras counterpart may say which it stands for in `_keras_class_name`."""
    name = getattr(obj, "_keras_class_name", None) or type(obj).__name__
    if name == "Model" and is_graph_model(obj):
        return "Functional"
    return name


def _unique(name, used):
    if name in used:
        used[name] += 1
        return f"{name}_{used[name]}"
    used[name] = 0
    return name


def _name_key(name):
    return f"~{name}" if name.startswith("_") else name


def _layer_children(obj):
    """(attribute or list member name, child) for the Keras layers an object holds, in the order Keras's saver
    walks them: a graph model's `layers` first; otherwise attributes sorted by name (private ones last), a
    list attribute expanding into its members. Yields ("<attr>", layer) or ("<attr>", [layers])."""
    if is_graph_model(obj):
        return [("layers", list(obj.layers))]
    attrs = {}
    for name, child in obj._modules.items():
        if isinstance(child, Layer):
            attrs[name] = child
    for name, value in vars(obj).items():
        if isinstance(value, (list, tuple)) and value and all(isinstance(v, Layer) for v in value):
            attrs[name] = list(value)
        elif isinstance(value, dict) and value and all(isinstance(v, Layer) for v in value.values()):
            attrs[name] = list(value.values())
    if "layers" in dir(type(obj)):        # a subclassed Model: Keras also walks its `layers` property
        attrs.setdefault("layers", list(obj.layers))
    return sorted(attrs.items(), key=lambda kv: _name_key(kv[0]))


def _direct_layers(obj):
    out, seen = [], set()
    for _, child in _layer_children(obj):
        for layer in child if isinstance(child, list) else [child]:
            if id(layer) not in seen:
                seen.add(id(layer))
                out.append(layer)
    return out


def _pairs(layer):
    return layer._keras_weights() if layer.built else []


def aggregates_children(obj):
    """True when obj's weights are those of the layers it holds (a model, a wrapper that lists its inner
    layer's weights): its own `vars` group is then empty and each inner layer saves its own."""
    if is_graph_model(obj):
        return True
    children = _direct_layers(obj)
    if not children:
        return False
    own = [tuple(get().shape) for get, _ in _pairs(obj)]
    return own == [tuple(get().shape) for c in _weight_children(obj) for get, _ in _pairs(c)]


def _weight_children(obj):
    """The layers an object holds, in the order their weights follow each other in its weight list (a model's
    `layers`; otherwise the order they were assigned)."""
    if "layers" in dir(type(obj)):
        return list(obj.layers)
    seen, out = set(), []
    for child in obj._modules.values():
        if isinstance(child, Layer) and id(child) not in seen:
            seen.add(id(child))
            out.append(child)
    return out or _direct_layers(obj)


# Layers whose Keras variables live in sub-objects: class name -> function(layer, n) giving
# [(sub-path, name attribute of its vars group, how many of the layer's weights, in order)].
def _rnn(cell_name):
    return lambda layer, n: [("", layer.name, 0), ("cell", cell_name, n)]


def _mha(layer, n):
    if n % 4:
        return None
    k = n // 4
    return [("", layer.name, 0), ("query_dense", "query", k), ("key_dense", "key", k), ("value_dense", "value", k),
            ("output_dense", "attention_output", k)]


def _bidirectional(layer, n):
    if n % 2:
        return None
    return [("", layer.name, 0), ("forward_layer/cell", "lstm_cell", n // 2), ("backward_layer/cell", "lstm_cell",
                                                                               n // 2)]


_SUB_OBJECTS = {
    "LSTM": _rnn("lstm_cell"), "GRU": _rnn("gru_cell"), "SimpleRNN": _rnn("simple_rnn_cell"),
    "MultiHeadAttention": _mha, "Bidirectional": _bidirectional,
    "TimeDistributed": lambda layer, n: [("", layer.name, 0), ("layer", None, n)],
}


def groups(layer):
    """[(sub-path, vars name attribute, [indices into layer._keras_weights()])] for a layer's own weights in the
    Keras 3 layout; sub-path "" is the layer's own `vars` group. A layer may describe its layout itself with
    `_keras_h5_layout()` returning [(sub-path, count)]."""
    n = len(_pairs(layer))
    spec = None
    hook = getattr(layer, "_keras_h5_layout", None)
    if callable(hook):
        spec = [(sub, None, count) for sub, count in hook()]
    elif n and keras_class_name(layer) in _SUB_OBJECTS:
        spec = _SUB_OBJECTS[keras_class_name(layer)](layer, n)
    if spec is None or sum(count for _, _, count in spec) != n:
        spec = [("", layer.name, n)]
    out, start = [], 0
    for sub, attr_name, count in spec:
        out.append((sub, attr_name if attr_name is not None else layer.name, list(range(start, start + count))))
        start += count
    return out


def keras3_entries(model):
    """[(object, path)] for every object Keras 3's saver visits in the model, in its order; path is "" for the
    model itself (its group is the file's root)."""
    entries, visited = [], set()

    def visit(obj, path):
        if id(obj) in visited:
            return
        visited.add(id(obj))
        entries.append((obj, path))
        for attr, child in _layer_children(obj):
            base = f"{path}/{attr}" if path else attr
            if isinstance(child, list):
                used = {}
                for member in child:
                    # the counter moves on for every member, saved already (shared) or not, as Keras's does
                    visit(member, f"{base}/{_unique(snake_case(keras_class_name(member)), used)}")
            else:
                visit(child, base)
    visit(model, "")
    return entries


def legacy_layers(model):
    """The layers that get a group in a legacy file: the model's top-level layers."""
    return list(model.layers)


def _leaves(layer, seen):
    """The layers under `layer` that own weights, each once, in weight order."""
    if id(layer) in seen:
        return []
    seen.add(id(layer))
    out = [] if aggregates_children(layer) else [layer]
    for child in _weight_children(layer) if _direct_layers(layer) else []:
        out += _leaves(child, seen)
    return out


def legacy_pairs(layer):
    """[(leaf layer, index into its _keras_weights())] in the legacy h5 order: the trainable weights of every
    layer inside, then the non-trainable ones (Keras 2's layer.trainable_weights + layer.non_trainable_weights;
    for a single layer this is its weight order)."""
    trainable, frozen = [], []
    for leaf in _leaves(layer, set()):
        n = len(_pairs(leaf))
        n_trainable = n - leaf._keras_non_trainable if leaf.trainable else 0
        trainable += [(leaf, i) for i in range(n_trainable)]
        frozen += [(leaf, i) for i in range(n_trainable, n)]
    return trainable + frozen


_NAMES = {
    "Dense": ["kernel", "bias"], "Conv1D": ["kernel", "bias"], "Conv2D": ["kernel", "bias"],
    "Conv3D": ["kernel", "bias"], "Conv1DTranspose": ["kernel", "bias"], "Conv2DTranspose": ["kernel", "bias"],
    "DepthwiseConv2D": ["depthwise_kernel", "bias"],
    "SeparableConv2D": ["depthwise_kernel", "pointwise_kernel", "bias"],
    "Embedding": ["embeddings"], "PReLU": ["alpha"], "Attention": ["scale"],
    "LSTM": ["lstm_cell/kernel", "lstm_cell/recurrent_kernel", "lstm_cell/bias"],
    "GRU": ["gru_cell/kernel", "gru_cell/recurrent_kernel", "gru_cell/bias"],
    "SimpleRNN": ["simple_rnn_cell/kernel", "simple_rnn_cell/recurrent_kernel", "simple_rnn_cell/bias"],
    "Normalization": ["mean", "variance", "count"],
}


def _norm_names(layer, stats):
    names = (["gamma"] if getattr(layer, "scale", True) else []) + (["beta"] if getattr(layer, "center", True) else [])
    return names + stats


def _mha_names(layer):
    parts = ["kernel", "bias"] if getattr(layer, "use_bias", True) else ["kernel"]
    return [f"{p}/{w}" for p in ("query", "key", "value", "attention_output") for w in parts]


def _leaf_names(leaf):
    """Keras's variable names of one layer's weights (without the layer name), or generic ones."""
    n = len(_pairs(leaf))
    cls = keras_class_name(leaf)
    if cls == "BatchNormalization":
        names = _norm_names(leaf, ["moving_mean", "moving_variance"])
    elif cls == "LayerNormalization":
        names = _norm_names(leaf, [])
    elif cls == "MultiHeadAttention":
        names = _mha_names(leaf)
    else:
        names = _NAMES.get(cls, [])[:n]
    if len(names) != n:
        names = [f"weight_{i}" for i in range(n)]
    return names


def weight_names(layer):
    """The legacy file's weight_names for one top-level layer, in legacy_pairs order: '<layer>/<var>:0'."""
    per_leaf, out, taken = {}, [], set()
    for leaf, i in legacy_pairs(layer):
        names = per_leaf.setdefault(id(leaf), _leaf_names(leaf))
        name, k = f"{leaf.name}/{names[i]}:0", 0
        while name in taken:           # two layers of the same name in different nested models
            k += 1
            name = f"{leaf.name}_{k}/{names[i]}:0"
        taken.add(name)
        out.append(name)
    return out
