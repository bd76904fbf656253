"""The functional API's graph: symbolic tensors (KerasTensor) and the nodes that layer calls on them record.

Calling a layer on KerasTensors builds the layer from their shapes, works out the output shapes and returns
new KerasTensors whose history points at a Node (the layer, its call's argument structure, its inputs).
A Functional model is the set of nodes between its inputs and outputs, run in order.
"""
from __future__ import annotations

import itertools

import numpy as np

__all__ = ["KerasTensor", "Node", "is_symbolic", "flatten", "substitute", "nodes_between"]

_node_ids = itertools.count()


class KerasTensor:
    """A symbolic tensor: shape (the batch dim None), dtype and the (layer, node, index) that made it."""

    def __init__(self, shape, dtype="float32", name=None, node=None, index=0):
        self.shape = tuple(None if s is None else int(s) for s in shape)
        self.dtype = str(np.dtype(dtype)) if not isinstance(dtype, str) else dtype
        self.name = name
        self.node, self.index = node, index

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def _keras_history(self):
        return (self.node.layer if self.node else None, 0, self.index)

    def __repr__(self):
        return f"<KerasTensor shape={self.shape}, dtype={self.dtype}, name={self.name}>"

    def __len__(self):
        raise TypeError("KerasTensor: len() of a symbolic tensor is not defined (its batch size is unknown)")

    def __iter__(self):
        raise TypeError("KerasTensor: a symbolic tensor cannot be iterated; index it or use a layer")

    def __bool__(self):
        raise TypeError("KerasTensor: a symbolic tensor has no truth value (it is a placeholder for data); use "
                        "keras layers or keras.ops to compute with it")

    # arithmetic on symbolic tensors records an op node (keras.ops-style), as Keras does
    def _op(self, fn, name, *others):
        from_layers = _op_layer_factory()
        return from_layers(fn, name)(self, *others)

    def __add__(self, other):
        return self._op(lambda a, b: a + b, "add", other)

    def __radd__(self, other):
        return self._op(lambda a, b: b + a, "add", other)

    def __sub__(self, other):
        return self._op(lambda a, b: a - b, "subtract", other)

    def __rsub__(self, other):
        return self._op(lambda a, b: b - a, "subtract", other)

    def __mul__(self, other):
        return self._op(lambda a, b: a * b, "multiply", other)

    def __rmul__(self, other):
        return self._op(lambda a, b: b * a, "multiply", other)

    def __truediv__(self, other):
        return self._op(lambda a, b: a / b, "divide", other)

    def __rtruediv__(self, other):
        return self._op(lambda a, b: b / a, "divide", other)

    def __neg__(self):
        return self._op(lambda a: -a, "negative")

    def __pow__(self, other):
        return self._op(lambda a, b: a ** b, "power", other)

    def __matmul__(self, other):
        return self._op(lambda a, b: a @ b, "matmul", other)

    def __getitem__(self, idx):
        return self._op(lambda a: a[idx], "get_item")


_OP_LAYER = None


def set_op_layer(factory):
    """Registered by keras.layers: factory(fn, name) -> a layer applying fn to its (tensor) inputs."""
    global _OP_LAYER
    _OP_LAYER = factory


def _op_layer_factory():
    if _OP_LAYER is None:
        raise RuntimeError("KerasTensor: arithmetic needs pyfastnn.keras.layers to be imported")
    return _OP_LAYER


class Node:
    """One call of a layer on symbolic inputs: args/kwargs with the KerasTensors in place, the flat list of those
    inputs, and the output KerasTensors."""

    def __init__(self, layer, args, kwargs, outputs_struct):
        self.id = next(_node_ids)
        self.layer = layer
        self.args, self.kwargs = args, kwargs
        self.inputs = flatten((args, kwargs))
        self.outputs_struct = outputs_struct
        self.outputs = flatten(outputs_struct)

    def __repr__(self):
        return f"<Node {getattr(self.layer, 'name', self.layer)} #{self.id}>"


def is_symbolic(struct):
    return any(isinstance(t, KerasTensor) for t in flatten(struct))


def flatten(struct):
    """The KerasTensors (or values) in a nested structure of lists/tuples/dicts, in order."""
    if isinstance(struct, KerasTensor):
        return [struct]
    if isinstance(struct, dict):
        return [t for v in struct.values() for t in flatten(v)]
    if isinstance(struct, (list, tuple)):
        return [t for v in struct for t in flatten(v)]
    return []


def substitute(struct, values):
    """struct with every KerasTensor replaced by values[id(tensor)]."""
    if isinstance(struct, KerasTensor):
        return values[id(struct)]
    if isinstance(struct, dict):
        return {k: substitute(v, values) for k, v in struct.items()}
    if isinstance(struct, list):
        return [substitute(v, values) for v in struct]
    if isinstance(struct, tuple):
        return tuple(substitute(v, values) for v in struct)
    return struct


def nodes_between(inputs, outputs):
    """The nodes that compute outputs from inputs, each after the nodes it depends on (ties in creation
    order); a ValueError naming the tensor when an output needs an input that is not among inputs."""
    input_ids = {id(t) for t in inputs}
    order, state = [], {}

    def visit(t):
        if id(t) in input_ids:
            return
        node = t.node
        if node is None:
            raise ValueError(f"Model: the graph is disconnected: {t} is needed but is not one of the model's "
                             f"inputs (give it in inputs=[...])")
        mark = state.get(node.id)
        if mark == "done":
            return
        if mark == "active":
            raise ValueError("Model: the layer graph has a cycle")
        state[node.id] = "active"
        for t_in in sorted(node.inputs, key=lambda k: (k.node.id if k.node else -1)):
            visit(t_in)
        state[node.id] = "done"
        order.append(node)
    for t in outputs:
        visit(t)
    return order


def layers_in_keras_order(inputs, outputs, nodes):
    """The graph's layers (input layers included) in Keras's order: deepest first (depth = how far a layer's
    nodes sit from the outputs), and within one depth in the order a walk from the outputs first reaches them."""
    input_ids = {id(t) for t in inputs}
    depth, index = {}, {}
    keys = {}

    def layer_of(t):
        return t.input_layer if id(t) in input_ids else t.node.layer

    def key_of(layer):
        keys[id(layer)] = layer
        return id(layer)

    def visit(t, seen):
        layer = layer_of(t)
        index.setdefault(key_of(layer), len(index))
        if id(t) in input_ids or t.node.id in seen:
            return
        seen.add(t.node.id)
        for t_in in t.node.inputs:
            visit(t_in, seen)
    seen = set()
    for t in outputs:
        visit(t, seen)
    node_depth = {}
    for t in outputs:
        if id(t) not in input_ids:
            node_depth[t.node.id] = 0
    for node in reversed(nodes):                 # consumers before producers
        d = node_depth.get(node.id, 0)
        for t in node.inputs:
            if id(t) in input_ids:
                k = key_of(t.input_layer)
                depth[k] = max(depth.get(k, 0), d + 1)
            else:
                node_depth[t.node.id] = max(node_depth.get(t.node.id, 0), d + 1)
    for node in nodes:
        k = key_of(node.layer)
        depth[k] = max(depth.get(k, 0), node_depth.get(node.id, 0))
    for t in inputs:                             # an input that is also an output (or unused)
        depth.setdefault(key_of(t.input_layer), 0)
        index.setdefault(id(t.input_layer), len(index))
    order = sorted(depth, key=lambda k: (-depth[k], index.get(k, len(index))))
    return [keys[k] for k in order]
