"""Keras's Sequential: a stack of layers, built as a functional graph once its input shape is known (from an
Input, the first layer's input_shape, build(), or the first batch of data)."""
from __future__ import annotations

from ..graph import KerasTensor
from ..layers.base import Input, InputLayer, Layer, auto_name, deserialize_layer, serialize_layer
from .model import Model

__all__ = ["Sequential"]


class Sequential(Model):
    """A stack of Keras layers: Sequential([...]), .add(layer), .pop()."""

    def __init__(self, layers=None, name=None, trainable=True):
        super().__init__(name=name or auto_name("Sequential"), trainable=trainable)
        object.__setattr__(self, "_stack", [])
        object.__setattr__(self, "_stale", True)
        if layers is not None and not isinstance(layers, (list, tuple)):
            raise TypeError(f"Sequential: argument 'layers' must be a list of layers, got {type(layers).__name__}")
        for layer in layers or []:
            self.add(layer)

    @property
    def layers(self):
        return [layer for layer in self._stack if not isinstance(layer, InputLayer)]

    def add(self, layer):
        if isinstance(layer, KerasTensor) and getattr(layer, "input_layer", None) is not None:
            layer = layer.input_layer
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add: The added layer must be an instance of class Layer. Received: "
                            f"layer={layer!r} of type {type(layer).__name__}")
        if isinstance(layer, InputLayer) and self._stack:
            raise ValueError("Sequential.add: an Input can only be the first layer")
        if any(existing.name == layer.name for existing in self._stack):
            raise ValueError(f"Sequential.add: All layers added to a Sequential model should have unique names. "
                             f"Name '{layer.name}' is already the name of a layer in this model.")
        self._stack.append(layer)
        self.add_module(layer.name, layer)
        object.__setattr__(self, "_stale", True)
        self.built = False
        if self._known_input_shape() is not None:
            self._rebuild()

    def pop(self):
        if not self.layers:
            raise TypeError("Sequential.pop: there are no layers in the model")
        layer = self._stack.pop()
        del self._modules[layer.name]
        object.__setattr__(self, "_stale", True)
        self.built = False
        if self._known_input_shape() is not None and self.layers:
            self._rebuild()
        return layer

    def _known_input_shape(self):
        if not self._stack:
            return None
        first = self._stack[0]
        return first._input_shape

    def _rebuild(self, input_shape=None):
        shape = input_shape if input_shape is not None else self._known_input_shape()
        first = self._stack[0]
        if isinstance(first, InputLayer):
            inp = getattr(first, "_tensor", None)
            if inp is None:
                inp = Input(shape=first._input_shape)
        else:
            inp = Input(shape=shape)
        x = inp
        for layer in self.layers:
            layer._inbound_nodes = [n for n in layer._inbound_nodes if not getattr(n, "_sequential", None) is self]
            x = layer(x)
            layer._inbound_nodes[-1]._sequential = self
        if not self.layers:
            return
        saved = dict(self._modules)
        self._init_graph(inp, x)
        # keep the stack's own registration order (the InputLayer the graph adds is not one of its layers)
        self._modules.clear()
        for name, m in saved.items():
            self._modules[name] = m
        object.__setattr__(self, "_stale", False)

    def build(self, input_shape=None):
        if input_shape is None:
            raise ValueError("Sequential.build: give the input shape (with the batch dim), e.g. build((None, 28, 28, 1))")
        shape = tuple(input_shape)
        self._rebuild(shape[1:])

    def forward(self, inputs, training=None, mask=None, **kwargs):
        if self._stale:
            if not self.layers:
                raise ValueError(f"Sequential '{self.name}': the model has no layers")
            x = inputs[0] if isinstance(inputs, (list, tuple)) and len(inputs) == 1 else inputs
            self._rebuild(tuple(getattr(x, "shape", ())[1:]))
        return super().forward(inputs, training=training, mask=mask, **kwargs)

    def summary(self, *args, **kwargs):
        if self._stale:
            raise ValueError(f"Sequential '{self.name}': this model has not yet been built. Build the model first by "
                             f"calling `build()` or by calling the model on a batch of data (or give the first "
                             f"layer input_shape=..., or add an Input)")
        return super().summary(*args, **kwargs)

    def get_config(self):
        """Keras's Sequential config: the layers in order, an InputLayer first once the input shape is known."""
        entries = [serialize_layer(layer) for layer in self._stack]
        if self._graph is not None and not isinstance(self._stack[0], InputLayer):
            t = self._graph["inputs"][0]
            entries.insert(0, {"module": InputLayer.__module__, "class_name": "InputLayer", "name": t.input_layer.name,
                               "config": t.input_layer.get_config()})
        return {"name": self.name, "trainable": self._trainable, "layers": entries}

    @classmethod
    def from_config(cls, config):
        layers = config.get("layers")
        if not isinstance(layers, list):
            raise ValueError(f"load_model: Sequential '{config.get('name')}': 'layers' must be a list")
        model = cls(name=config.get("name"), trainable=config.get("trainable", True))
        for i, entry in enumerate(layers):
            if isinstance(entry, dict) and entry.get("class_name") == "InputLayer":
                if i:
                    raise ValueError("load_model: an InputLayer can only be a Sequential's first layer")
                c = entry.get("config", {})
                model.add(Input(batch_shape=c.get("batch_shape"), dtype=c.get("dtype"), name=c.get("name")))
            else:
                model.add(deserialize_layer(entry))
        return model
