"""Recurrent layers with PyTorch's gate order and weight names: LSTM/LSTMCell on the native sequence
kernel, GRU and RNN stepped over time."""
from __future__ import annotations

import math

import numpy as np

from .. import _device
from ..tensor import Tensor, cat, stack
from . import functional as F
from .init import uniform_
from .module import Module, Parameter

__all__ = ["LSTM", "LSTMCell", "GRU", "GRUCell", "RNN", "RNNCell"]


def _check_size(owner, **values):
    for name, v in values.items():
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
            raise ValueError(f"{owner}: argument '{name}' must be a positive int, got {v!r}")


class _RNNBase(Module):
    """Parameters, input handling and the layer/direction loop shared by LSTM, GRU and RNN (torch's names:
    weight_ih_l{k}[_reverse] (gates*H, I), weight_hh_l{k} (gates*H, H), bias_ih_l{k}, bias_hh_l{k}; all
    U(-1/sqrt(H), 1/sqrt(H)))."""
    _gates = 1

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, device=None, dtype=None):
        super().__init__()
        name = type(self).__name__
        _check_size(name, input_size=input_size, hidden_size=hidden_size, num_layers=num_layers)
        if not 0.0 <= dropout <= 1.0:
            raise ValueError(f"{name}: argument 'dropout' must be in [0, 1], got {dropout}")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout, self.bidirectional = bias, batch_first, float(dropout), bidirectional
        dirs = 2 if bidirectional else 1
        G, H = self._gates, hidden_size
        dt = _device.param_dtype(dtype, name)
        for layer in range(num_layers):
            layer_in = input_size if layer == 0 else H * dirs
            for d in range(dirs):
                sfx = f"l{layer}" + ("_reverse" if d else "")
                setattr(self, f"weight_ih_{sfx}", Parameter(np.empty((G * H, layer_in), dt)))
                setattr(self, f"weight_hh_{sfx}", Parameter(np.empty((G * H, H), dt)))
                if bias:
                    setattr(self, f"bias_ih_{sfx}", Parameter(np.empty(G * H, dt)))
                    setattr(self, f"bias_hh_{sfx}", Parameter(np.empty(G * H, dt)))
        self.reset_parameters()

    def reset_parameters(self):
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            uniform_(p, -bound, bound)

    def _weights(self, layer, d):
        sfx = f"l{layer}" + ("_reverse" if d else "")
        p = self._parameters
        return (p[f"weight_ih_{sfx}"], p[f"weight_hh_{sfx}"], p.get(f"bias_ih_{sfx}"), p.get(f"bias_hh_{sfx}"))

    def _sequence(self, input):
        """The input as (T, B, I) and whether it came unbatched."""
        name = type(self).__name__
        x = F._req(input, name)
        if x.ndim not in (2, 3) or x.shape[-1] != self.input_size:
            raise ValueError(f"{name}(input_size={self.input_size}): expected input (T, B, {self.input_size}) "
                             f"{'[batch_first: (B, T, I)] ' if self.batch_first else ''}or (T, {self.input_size}), "
                             f"got shape {tuple(x.shape)}")
        if x.ndim == 2:
            return x.unsqueeze(1), True
        return (x.transpose(0, 1) if self.batch_first else x), False

    def _initial_state(self, state, x, unbatched, what):
        """hx entry `what` as (L*dirs, B, H), zeros when not given."""
        name = type(self).__name__
        want = (self.num_layers * (2 if self.bidirectional else 1), x.shape[1], self.hidden_size)
        if state is None:
            return Tensor(np.zeros(want, x._array.dtype), _trusted=True)
        state = F._req(state, name, what)
        if unbatched:
            state = state.unsqueeze(1)
        if tuple(state.shape) != want:
            shown = (want[0], want[2]) if unbatched else want
            got = (state.shape[0],) + tuple(state.shape[2:]) if unbatched else tuple(state.shape)
            raise ValueError(f"{name}: {what} must have shape {shown}, got {got}")
        return state

    def _run(self, x, states, unbatched, layer_fn):
        """Every layer and direction: layer_fn(seq, [state_k...], weights) -> (y, [final_k...]) runs one
        direction forward in time (the reverse direction gets the sequence flipped); returns the output in the
        caller's layout and the final states stacked per entry."""
        dirs = 2 if self.bidirectional else 1
        finals = [[] for _ in states]
        layer_in = x
        for layer in range(self.num_layers):
            outs = []
            for d in range(dirs):
                k = layer * dirs + d
                seq = layer_in if d == 0 else layer_in[::-1].contiguous()
                y, ends = layer_fn(seq, [s[k] for s in states], self._weights(layer, d))
                outs.append(y if d == 0 else y[::-1])
                for f, e in zip(finals, ends):
                    f.append(e)
            layer_in = outs[0] if dirs == 1 else cat(outs, dim=2)
            if self.dropout and self.training and layer < self.num_layers - 1:
                layer_in = F.dropout(layer_in, self.dropout, True)
        finals = [stack(f) for f in finals]
        if unbatched:
            return layer_in.squeeze(1), [f.squeeze(1) for f in finals]
        return (layer_in.transpose(0, 1) if self.batch_first else layer_in), finals

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s


class LSTM(_RNNBase):
    """Multi-layer LSTM on the native sequence kernel. Input (T, B, I), or (B, T, I) with batch_first, or
    unbatched (T, I); returns ``output, (h_n, c_n)`` like torch.nn.LSTM."""
    _gates = 4

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, proj_size=0, device=None, dtype=None):
        if proj_size:
            raise ValueError("LSTM: proj_size is not supported (use proj_size=0)")
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, device, dtype)

    def forward(self, input, hx=None):
        x, unbatched = self._sequence(input)
        x = x.contiguous()
        if hx is not None and (not isinstance(hx, (tuple, list)) or len(hx) != 2):
            raise ValueError("LSTM: hx must be a tuple (h_0, c_0)")
        h0 = self._initial_state(None if hx is None else hx[0], x, unbatched, "hx[0] (h_0)")
        c0 = self._initial_state(None if hx is None else hx[1], x, unbatched, "hx[1] (c_0)")

        def layer(seq, state, weights):
            y, hT, cT = F.lstm(seq, state[0], state[1], *weights)
            return y, [hT, cT]
        out, (h_n, c_n) = self._run(x, [h0, c0], unbatched, layer)
        return out, (h_n, c_n)


class _CellBase(Module):
    """One step of a recurrent layer: weight_ih (gates*H, I), weight_hh (gates*H, H), bias_ih, bias_hh."""
    _gates = 1

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__()
        _check_size(type(self).__name__, input_size=input_size, hidden_size=hidden_size)
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        G, H = self._gates, hidden_size
        dt = _device.param_dtype(dtype, type(self).__name__)
        self.weight_ih = Parameter(np.empty((G * H, input_size), dt))
        self.weight_hh = Parameter(np.empty((G * H, H), dt))
        if bias:
            self.bias_ih = Parameter(np.empty(G * H, dt))
            self.bias_hh = Parameter(np.empty(G * H, dt))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        bound = 1.0 / math.sqrt(H)
        for p in self.parameters():
            uniform_(p, -bound, bound)

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if getattr(self, "nonlinearity", "tanh") != "tanh":
            s += f", nonlinearity={self.nonlinearity}"
        return s

    def _batch(self, input):
        name = type(self).__name__
        x = F._req(input, name)
        if x.ndim not in (1, 2) or x.shape[-1] != self.input_size:
            raise ValueError(f"{name}(input_size={self.input_size}): expected input (B, {self.input_size}), "
                             f"got shape {tuple(x.shape)}")
        return (x.unsqueeze(0), True) if x.ndim == 1 else (x, False)

    def _state(self, state, x, unbatched, what):
        B, H = x.shape[0], self.hidden_size
        if state is None:
            return Tensor(np.zeros((B, H), x._array.dtype), _trusted=True)
        state = F._req(state, type(self).__name__, what)
        if unbatched and state.ndim == 1:
            state = state.unsqueeze(0)
        if tuple(state.shape) != (B, H):
            raise ValueError(f"{type(self).__name__}: {what} must have shape {(B, H)}, got {tuple(state.shape)}")
        return state


class LSTMCell(_CellBase):
    """One LSTM step on the native kernel: (x (B, I), (h, c)) -> (h', c')."""
    _gates = 4

    def forward(self, input, hx=None):
        x, unbatched = self._batch(input)
        if hx is not None and (not isinstance(hx, (tuple, list)) or len(hx) != 2):
            raise ValueError("LSTMCell: hx must be a tuple (h, c)")
        h = self._state(None if hx is None else hx[0], x, unbatched, "hx[0] (h)")
        c = self._state(None if hx is None else hx[1], x, unbatched, "hx[1] (c)")
        _, h1, c1 = F.lstm(x.unsqueeze(0), h, c, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        if unbatched:
            return h1.squeeze(0), c1.squeeze(0)
        return h1, c1


def _gru_step(xp_t, h, w_hh, b_hh):
    """One GRU step from the step's input projection xp_t (B, 3H) and the hidden state h (B, H)."""
    xr, xz, xn = xp_t.chunk(3, -1)
    hr, hz, hn = F.linear(h, w_hh, b_hh).chunk(3, -1)
    r = (xr + hr).sigmoid()
    z = (xz + hz).sigmoid()
    n = (xn + r * hn).tanh()
    return (1 - z) * n + z * h


class _StepRNN(_RNNBase):
    """A recurrent layer stepped in Python over time (GRU, plain RNN): the input projection of every step is one
    GEMM, each step one hidden-to-hidden GEMM plus the gate arithmetic."""

    def _cell(self, xp_t, h, w_hh, b_hh):
        raise NotImplementedError

    def forward(self, input, hx=None):
        x, unbatched = self._sequence(input)
        h0 = self._initial_state(hx, x, unbatched, "hx")

        def layer(seq, state, weights):
            w_ih, w_hh, b_ih, b_hh = weights
            proj = F.linear(seq, w_ih, b_ih)              # every step's input projection at once
            h, steps = state[0], []
            for t in range(seq.shape[0]):
                h = self._cell(proj[t], h, w_hh, b_hh)
                steps.append(h)
            return (stack(steps) if steps else proj[:, :, :self.hidden_size] * 0), [h]
        out, (h_n,) = self._run(x, [h0], unbatched, layer)
        return out, h_n


class GRU(_StepRNN):
    """torch.nn.GRU: gates r, z, n; h' = (1 - z) * n + z * h with n = tanh(W_in x + b_in + r * (W_hn h + b_hn))."""
    _gates = 3

    def _cell(self, xp_t, h, w_hh, b_hh):
        return _gru_step(xp_t, h, w_hh, b_hh)


class RNN(_StepRNN):
    """torch.nn.RNN: h' = tanh (or relu) of W_ih x + b_ih + W_hh h + b_hh."""

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, device=None, dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNN: Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'.")
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, device, dtype)
        self.nonlinearity = nonlinearity

    def _cell(self, xp_t, h, w_hh, b_hh):
        pre = xp_t + F.linear(h, w_hh, b_hh)
        return pre.tanh() if self.nonlinearity == "tanh" else pre.relu()


class _StepCell(_CellBase):
    def forward(self, input, hx=None):
        x, unbatched = self._batch(input)
        h = self._state(hx, x, unbatched, "hx")
        out = self._step(F.linear(x, self.weight_ih, self.bias_ih), h)
        return out.squeeze(0) if unbatched else out


class GRUCell(_StepCell):
    _gates = 3

    def _step(self, xp, h):
        return _gru_step(xp, h, self.weight_hh, self.bias_hh)


class RNNCell(_StepCell):
    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", device=None, dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNNCell: Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'.")
        super().__init__(input_size, hidden_size, bias, device, dtype)
        self.nonlinearity = nonlinearity

    def _step(self, xp, h):
        pre = xp + F.linear(h, self.weight_hh, self.bias_hh)
        return pre.tanh() if self.nonlinearity == "tanh" else pre.relu()
