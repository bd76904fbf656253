"""Keras's recurrent layers (LSTM, GRU, SimpleRNN) on pyfastnn.nn's LSTM, GRU and RNN, with Keras's weight
layouts and initializers (kernel glorot_uniform, recurrent_kernel orthogonal, bias zeros).

Keras's GRU with reset_after=True (its default) is the same recurrence as torch's GRU:
    z = sigmoid(x W_z + b_z + h U_z + c_z), r = sigmoid(x W_r + b_r + h U_r + c_r),
    n = tanh(x W_h + b_h + r * (h U_h + c_h)), h' = z * h + (1 - z) * n,
with torch's bias_ih = b (Keras's bias[0]) and bias_hh = c (bias[1]); only the gate order of the kernels
differs (Keras z, r, h; torch r, z, n), so the Keras layout maps onto nn.GRU's parameters by swapping the first
two gate blocks. reset_after=False (tf.keras 1's GRU: r multiplies h before U_h) is a different recurrence that
nn.GRU does not compute, and is refused.
"""
from __future__ import annotations

import numpy as np

from ... import nn
from ...nn import functional as F
from ...nn import init
from ...tensor import Tensor, _wrap
from .base import Layer, _as_input
from .base import check_positive as _check_positive
from .base import setter as _setter

__all__ = ["LSTM", "GRU", "SimpleRNN"]


class _RNN(Layer):
    """What Keras's recurrent layers share: input (timesteps, features) per sample, batch first; outputs the
    last state or the whole sequence, plus the final states with return_state; go_backwards processes the
    sequence in reverse (and returns it in that order); initial_state in the call; dropout on the inputs with one
    mask for every step (Keras's rule)."""
    _gates = 1
    _n_states = 1

    def _setup(self, units, activation, recurrent_activation, return_sequences, return_state, go_backwards, stateful,
               dropout, recurrent_dropout, allowed=("tanh",)):
        name = type(self).__name__
        _check_positive(name, units=units)
        if activation not in allowed:
            raise ValueError(f"{name}: activation={activation!r} is not supported; the recurrence computes "
                             f"{' or '.join(repr(a) for a in allowed)}")
        if recurrent_activation not in (None, "sigmoid"):
            raise ValueError(f"{name}: only recurrent_activation='sigmoid' is supported (the fused gates), got "
                             f"{recurrent_activation!r}")
        if stateful:
            raise NotImplementedError(f"{name}: stateful=True is not supported")
        for arg, rate in (("dropout", dropout), ("recurrent_dropout", recurrent_dropout)):
            if not isinstance(rate, (int, float, np.floating)) or isinstance(rate, bool) or not 0.0 <= rate < 1.0:
                raise ValueError(f"{name}: argument '{arg}' must be a float in [0, 1), got {rate!r}")
        self.units, self.activation = int(units), activation
        self.return_sequences, self.return_state = bool(return_sequences), bool(return_state)
        self.go_backwards, self.stateful = bool(go_backwards), False
        self.dropout, self.recurrent_dropout = float(dropout), float(recurrent_dropout)

    def build(self, input_shape):
        if len(input_shape) != 2 or input_shape[-1] is None:
            raise ValueError(f"{type(self).__name__} '{self.name}': expected input (timesteps, features) per sample, "
                             f"got {tuple(input_shape)}")
        self._make(int(input_shape[-1]))
        self._keras_init(int(input_shape[-1]))

    def _keras_init(self, features):
        """Keras's initial values, written through the Keras-layout setters."""
        u, g = self.units, self._gates
        pairs = self._keras_weights()
        kernel = _wrap(np.empty((features, g * u), np.float32))
        bound = np.sqrt(6.0 / (features + g * u))
        init.uniform_(kernel, -bound, bound)
        recurrent = _wrap(np.empty((u, g * u), np.float32))
        init.orthogonal_(recurrent)
        pairs[0][1](kernel._array)
        pairs[1][1](recurrent._array)
        if len(pairs) > 2:
            pairs[2][1](self._initial_bias(pairs[2][0]().shape))

    def _initial_bias(self, shape):
        return np.zeros(shape, np.float32)

    def compute_output_shape(self, input_shape):
        out = (input_shape[0], self.units) if self.return_sequences else (self.units,)
        if self.return_state:
            return [out] + [(self.units,)] * self._n_states
        return out

    def _states(self, initial_state, batch):
        if initial_state is None:
            return None
        states = list(initial_state) if isinstance(initial_state, (list, tuple)) else [initial_state]
        if len(states) != self._n_states:
            raise ValueError(f"{type(self).__name__} '{self.name}': initial_state must hold {self._n_states} "
                             f"tensor(s) of shape (batch, {self.units}), got {len(states)}")
        out = []
        for s in states:
            t = _as_input(s, self.name)
            if tuple(t.shape) != (batch, self.units):
                raise ValueError(f"{type(self).__name__} '{self.name}': each initial state must have shape "
                                 f"{(batch, self.units)}, got {tuple(t.shape)}")
            out.append(t.unsqueeze(0))
        return out

    def call(self, x, training=False, initial_state=None, mask=None):
        name = type(self).__name__
        if mask is not None:
            raise NotImplementedError(f"{name} '{self.name}': masks are not supported")
        if x.ndim != 3 or x.shape[-1] != self._input_size():
            raise ValueError(f"{name} '{self.name}': expected input (batch, timesteps, {self._input_size()}), got "
                             f"shape {tuple(x.shape)}")
        if training and self.recurrent_dropout:
            raise NotImplementedError(f"{name} '{self.name}': training with recurrent_dropout is not supported "
                                      f"(the recurrence has no per-step mask); use dropout=..., or "
                                      f"recurrent_dropout=0")
        if training and self.dropout:       # one mask per sequence, as Keras
            keep = F.dropout(Tensor(np.ones((x.shape[0], 1, x.shape[2]), x._array.dtype)), self.dropout, True)
            x = x * keep
        if self.go_backwards:
            x = x.flip(1)
        y, states = self._run(x.contiguous(), self._states(initial_state, x.shape[0]))
        out = y if self.return_sequences else states[0]
        return [out] + states if self.return_state else out


def _one_bias_weights(m, use_bias):
    """Keras's kernel, recurrent_kernel and single bias over an nn recurrent module's layer 0 (same gate order):
    the kernels transposed; the bias is bias_ih + bias_hh (written into bias_ih, bias_hh zeroed)."""
    out = [(lambda: m.weight_ih_l0._array.T, _setter(m.weight_ih_l0, lambda a: a.T)),
           (lambda: m.weight_hh_l0._array.T, _setter(m.weight_hh_l0, lambda a: a.T))]
    if use_bias:
        def put_bias(a):
            _setter(m.bias_ih_l0)(a)
            _setter(m.bias_hh_l0)(np.zeros_like(a))
        out.append((lambda: m.bias_ih_l0._array + m.bias_hh_l0._array, put_bias))
    return out


def _swap_zr(a, axis=0):
    """Keras's GRU gate blocks (z, r, h) <-> torch's (r, z, n): the first two blocks swap."""
    z, r, h = np.split(np.asarray(a), 3, axis=axis)
    return np.concatenate([r, z, h], axis=axis)


class LSTM(_RNN):
    """Keras LSTM on the native sequence kernel. kernel (F, 4U), recurrent_kernel (U, 4U), bias (4U,) with ones
    for the forget gate (unit_forget_bias); gates i, f, c, o."""
    _gates, _n_states = 4, 2

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True, unit_forget_bias=True,
                 dropout=0.0, recurrent_dropout=0.0, seed=None, return_sequences=False, return_state=False,
                 go_backwards=False, stateful=False, unroll=False, use_cudnn="auto", **kwargs):
        super().__init__(**kwargs)
        self._setup(units, activation, recurrent_activation, return_sequences, return_state, go_backwards, stateful,
                    dropout, recurrent_dropout)
        self.use_bias, self.unit_forget_bias = bool(use_bias), bool(unit_forget_bias)

    def _make(self, features):
        self.lstm = nn.LSTM(features, self.units, batch_first=True, bias=self.use_bias)

    def _input_size(self):
        return self.lstm.input_size

    def _initial_bias(self, shape):
        b = np.zeros(shape, np.float32)
        if self.unit_forget_bias:
            b[self.units:2 * self.units] = 1.0
        return b

    def _run(self, x, states):
        y, (h, c) = self.lstm(x, None if states is None else tuple(states))
        return y, [h[0], c[0]]

    def _keras_weights(self):
        return _one_bias_weights(self.lstm, self.use_bias)


class GRU(_RNN):
    """Keras GRU (reset_after=True) on nn.GRU: kernel (F, 3U) and recurrent_kernel (U, 3U) with gates z, r, h;
    bias (2, 3U): the input bias, then the recurrent one (see the module's note)."""
    _gates = 3

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True, dropout=0.0,
                 recurrent_dropout=0.0, seed=None, return_sequences=False, return_state=False, go_backwards=False,
                 stateful=False, unroll=False, reset_after=True, use_cudnn="auto", **kwargs):
        super().__init__(**kwargs)
        self._setup(units, activation, recurrent_activation, return_sequences, return_state, go_backwards, stateful,
                    dropout, recurrent_dropout)
        if not reset_after:
            raise NotImplementedError("GRU: reset_after=False (the reset gate applied before the recurrent kernel, "
                                      "tf.keras 1's GRU) is not supported; Keras's default reset_after=True is")
        self.use_bias, self.reset_after = bool(use_bias), True

    def _make(self, features):
        self.gru = nn.GRU(features, self.units, batch_first=True, bias=self.use_bias)

    def _input_size(self):
        return self.gru.input_size

    def _run(self, x, states):
        y, h = self.gru(x, None if states is None else states[0])
        return y, [h[0]]

    def _keras_weights(self):
        g = self.gru
        out = [(lambda: _swap_zr(g.weight_ih_l0._array).T, _setter(g.weight_ih_l0, lambda a: _swap_zr(a.T))),
               (lambda: _swap_zr(g.weight_hh_l0._array).T, _setter(g.weight_hh_l0, lambda a: _swap_zr(a.T)))]
        if self.use_bias:
            def put_bias(a):
                _setter(g.bias_ih_l0)(_swap_zr(a[0]))
                _setter(g.bias_hh_l0)(_swap_zr(a[1]))
            out.append((lambda: np.stack([_swap_zr(g.bias_ih_l0._array), _swap_zr(g.bias_hh_l0._array)]), put_bias))
        return out


class SimpleRNN(_RNN):
    """Keras SimpleRNN on nn.RNN: h' = activation(x W + h U + b); kernel (F, U), recurrent_kernel (U, U),
    bias (U,); activation 'tanh' or 'relu'."""

    def __init__(self, units, activation="tanh", use_bias=True, dropout=0.0, recurrent_dropout=0.0,
                 return_sequences=False, return_state=False, go_backwards=False, stateful=False, unroll=False,
                 seed=None, **kwargs):
        super().__init__(**kwargs)
        self._setup(units, activation, None, return_sequences, return_state, go_backwards, stateful, dropout,
                    recurrent_dropout, allowed=("tanh", "relu"))
        self.use_bias = bool(use_bias)

    def _make(self, features):
        self.rnn = nn.RNN(features, self.units, nonlinearity=self.activation, batch_first=True, bias=self.use_bias)

    def _input_size(self):
        return self.rnn.input_size

    def _run(self, x, states):
        y, h = self.rnn(x, None if states is None else states[0])
        return y, [h[0]]

    def _keras_weights(self):
        return _one_bias_weights(self.rnn, self.use_bias)
