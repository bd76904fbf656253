"""Keras's layer wrappers: Bidirectional (a recurrent layer run forwards and backwards, outputs merged) and
TimeDistributed (a layer applied to every step of a sequence)."""
from __future__ import annotations

from ...tensor import cat
from .base import Layer, deserialize_layer, serialize_layer
from .recurrent import _RNN

__all__ = ["Bidirectional", "TimeDistributed"]

_MERGE_MODES = ("sum", "mul", "ave", "concat", None)


def _removeprefix(name, prefix):
    return name[len(prefix):] if name.startswith(prefix) else name


class Bidirectional(Layer):
    """Runs a copy of `layer` forwards (forward_<name>) and one with go_backwards=True (backward_<name>, or the
    given backward_layer), flips the backward sequence back and merges: 'concat' (the default), 'sum', 'mul',
    'ave', or None for the pair. Weights: the forward layer's, then the backward layer's."""

    def __init__(self, layer, merge_mode="concat", weights=None, backward_layer=None, **kwargs):
        if not isinstance(layer, _RNN):
            raise ValueError(f"Bidirectional: Please initialize `Bidirectional` layer with a recurrent layer "
                             f"(LSTM, GRU, SimpleRNN) instance. Received: {layer!r}")
        if backward_layer is not None and not isinstance(backward_layer, _RNN):
            raise ValueError(f"Bidirectional: `backward_layer` need to be a recurrent layer instance. Received: "
                             f"{backward_layer!r}")
        if merge_mode not in _MERGE_MODES:
            raise ValueError(f'Bidirectional: Invalid merge mode. Received: {merge_mode!r}. Merge mode should be '
                             f'one of {{"sum", "mul", "ave", "concat", None}}')
        super().__init__(**kwargs)
        config = layer.get_config()
        config["name"] = "forward_" + _removeprefix(layer.name, "forward_")
        self.forward_layer = type(layer).from_config(config)
        if backward_layer is None:
            config = layer.get_config()
            config["go_backwards"] = True
            config["name"] = "backward_" + _removeprefix(layer.name, "backward_")
            backward_layer = type(layer).from_config(config)
        self.backward_layer = backward_layer
        fwd, bwd = self.forward_layer, self.backward_layer
        if fwd.go_backwards == bwd.go_backwards:
            raise ValueError(f"Bidirectional: Forward layer and backward layer should have different `go_backwards` "
                             f"value. Received: forward_layer.go_backwards {fwd.go_backwards}, "
                             f"backward_layer.go_backwards={bwd.go_backwards}")
        for attr in ("return_sequences", "return_state"):
            if getattr(fwd, attr) != getattr(bwd, attr):
                raise ValueError(f'Bidirectional: Forward layer and backward layer are expected to have the same '
                                 f'value for attribute "{attr}", got "{getattr(fwd, attr)}" for forward layer and '
                                 f'"{getattr(bwd, attr)}" for backward layer')
        self.merge_mode = merge_mode
        self.return_sequences, self.return_state = fwd.return_sequences, fwd.return_state
        self._initial_weights = list(weights) if weights else None

    def build(self, input_shape):
        self.forward_layer._ensure_built(input_shape)
        self.backward_layer._ensure_built(input_shape)
        if self._initial_weights:
            n = len(self._initial_weights) // 2
            self.forward_layer.set_weights(self._initial_weights[:n])
            self.backward_layer.set_weights(self._initial_weights[n:])
            self._initial_weights = None

    def compute_output_shape(self, input_shape):
        out = self.forward_layer.compute_output_shape(input_shape)
        states = []
        if self.return_state:
            out, states = out[0], list(out[1:])
        if self.merge_mode == "concat":
            out = tuple(out[:-1]) + (out[-1] * 2,)
        merged = [out, out] if self.merge_mode is None else [out]
        if self.return_state or self.merge_mode is None:
            return merged + states + states
        return out

    def call(self, x, training=False, initial_state=None, mask=None):
        fwd_state = bwd_state = None
        if initial_state is not None:
            half = len(initial_state) // 2
            fwd_state, bwd_state = list(initial_state[:half]), list(initial_state[half:])
        y = self.forward_layer(x, training=training, initial_state=fwd_state, mask=mask)
        y_rev = self.backward_layer(x, training=training, initial_state=bwd_state, mask=mask)
        states = []
        if self.return_state:
            states = list(y[1:]) + list(y_rev[1:])
            y, y_rev = y[0], y_rev[0]
        if self.return_sequences:
            y_rev = y_rev.flip(1)
        if self.merge_mode == "concat":
            out = [cat([y, y_rev], -1)]
        elif self.merge_mode == "sum":
            out = [y + y_rev]
        elif self.merge_mode == "ave":
            out = [(y + y_rev) * 0.5]
        elif self.merge_mode == "mul":
            out = [y * y_rev]
        else:
            out = [y, y_rev]
        if self.return_state or self.merge_mode is None:
            return out + states
        return out[0]

    def _keras_weights(self):
        return self.forward_layer._keras_weights() + self.backward_layer._keras_weights()

    def get_config(self):
        return {"name": self.name, "trainable": self._trainable, "merge_mode": self.merge_mode,
                "layer": serialize_layer(self.forward_layer), "backward_layer": serialize_layer(self.backward_layer)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["layer"] = deserialize_layer(config["layer"])
        if config.get("backward_layer") is not None:
            config["backward_layer"] = deserialize_layer(config["backward_layer"])
        return cls(**config)


class TimeDistributed(Layer):
    """Applies `layer` to every step: (batch, steps, ...) runs as (batch * steps, ...) through the layer and
    is reshaped back. The weights are the inner layer's."""

    def __init__(self, layer, **kwargs):
        if not isinstance(layer, Layer):
            raise ValueError(f"TimeDistributed: Please initialize `TimeDistributed` layer with a "
                             f"`keras.layers.Layer` instance. Received: {layer!r}")
        super().__init__(**kwargs)
        self.layer = layer

    def _child_shape(self, input_shape):
        if not isinstance(input_shape, (tuple, list)) or len(input_shape) < 2:
            raise ValueError(f"TimeDistributed '{self.name}': `TimeDistributed` Layer should be passed an "
                             f"`input_shape` with at least 3 dimensions, received: {(None,) + tuple(input_shape)}")
        return tuple(input_shape[1:])

    def build(self, input_shape):
        self.layer._ensure_built(self._child_shape(input_shape))

    def compute_output_shape(self, input_shape):
        if type(self.layer).compute_output_shape is Layer.compute_output_shape:
            raise NotImplementedError        # the model finds the shape by a dry run
        inner = self.layer.compute_output_shape(self._child_shape(input_shape))
        return (input_shape[0],) + tuple(inner)

    def call(self, x, training=False):
        if x.ndim < 3:
            raise ValueError(f"TimeDistributed '{self.name}': expected input (batch, steps, ...), got shape "
                             f"{tuple(x.shape)}")
        b, t = x.shape[0], x.shape[1]
        y = self.layer(x.reshape((b * t,) + tuple(x.shape[2:])), training=training)
        return y.reshape((b, t) + tuple(y.shape[1:]))

    def _keras_weights(self):
        return self.layer._keras_weights()

    def get_config(self):
        return {"name": self.name, "trainable": self._trainable, "layer": serialize_layer(self.layer)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["layer"] = deserialize_layer(config["layer"])
        return cls(**config)
