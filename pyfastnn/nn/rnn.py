"""LSTM and LSTMCell on the native sequence kernel (PyTorch's gate order and weight names)."""
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


class LSTM(Module):
    """Multi-layer LSTM. Input (T, B, I), or (B, T, I) with batch_first, or
    unbatched (T, I); returns ``output, (h_n, c_n)`` like torch.nn.LSTM.
    Weights U(-1/sqrt(H), 1/sqrt(H)), names weight_ih_l{k}[_reverse] etc."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, proj_size=0, dtype=np.float32):
        super().__init__()
        _check_size("LSTM", input_size=input_size, hidden_size=hidden_size, num_layers=num_layers)
        if proj_size:
            raise ValueError("LSTM: proj_size is not supported (use proj_size=0)")
        if not 0.0 <= dropout <= 1.0:
            raise ValueError(f"LSTM: argument 'dropout' must be in [0, 1], got {dropout}")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, float(dropout)
        self.bidirectional = bidirectional
        dirs = 2 if bidirectional else 1
        H = hidden_size
        for layer in range(num_layers):
            layer_in = input_size if layer == 0 else H * dirs
            for d in range(dirs):
                sfx = f"l{layer}" + ("_reverse" if d else "")
                setattr(self, f"weight_ih_{sfx}", Parameter(np.empty((4 * H, layer_in), dtype)))
                setattr(self, f"weight_hh_{sfx}", Parameter(np.empty((4 * H, H), dtype)))
                if bias:
                    setattr(self, f"bias_ih_{sfx}", Parameter(np.empty(4 * H, dtype)))
                    setattr(self, f"bias_hh_{sfx}", Parameter(np.empty(4 * H, dtype)))
        self.reset_parameters()

    def reset_parameters(self):
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            uniform_(p, -bound, bound)

    def _weights(self, layer, d):
        sfx = f"l{layer}" + ("_reverse" if d else "")
        p = self._parameters
        return (p[f"weight_ih_{sfx}"], p[f"weight_hh_{sfx}"], p.get(f"bias_ih_{sfx}"), p.get(f"bias_hh_{sfx}"))

    def forward(self, input, hx=None):
        x = F._req(input, "LSTM")
        if x.ndim not in (2, 3) or x.shape[-1] != self.input_size:
            raise ValueError(f"LSTM(input_size={self.input_size}): expected input (T, B, {self.input_size}) "
                             f"{'[batch_first: (B, T, I)] ' if self.batch_first else ''}or (T, {self.input_size}), "
                             f"got shape {x.shape}")
        unbatched = x.ndim == 2
        if unbatched:
            x = x.unsqueeze(1)
        elif self.batch_first:
            x = x.transpose(0, 1)
        x = x.contiguous()
        T, B, _ = x.shape
        dirs = 2 if self.bidirectional else 1
        H, L = self.hidden_size, self.num_layers
        if hx is None:
            zeros = np.zeros((L * dirs, B, H), x.dtype)
            h0 = c0 = Tensor(zeros, _trusted=True)
        else:
            h0, c0 = (F._t(h) for h in hx)
            want = (L * dirs, H) if unbatched else (L * dirs, B, H)
            if h0.shape != want or c0.shape != want:
                raise ValueError(f"LSTM: hx must be (h_0, c_0) of shape {want}, got {h0.shape} and {c0.shape}")
            if unbatched:
                h0, c0 = h0.unsqueeze(1), c0.unsqueeze(1)
        h_n, c_n = [], []
        layer_in = x
        for layer in range(L):
            outs = []
            for d in range(dirs):
                k = layer * dirs + d
                seq = layer_in if d == 0 else layer_in[::-1].contiguous()
                y, hT, cT = F.lstm(seq, h0[k], c0[k], *self._weights(layer, d))
                outs.append(y if d == 0 else y[::-1])
                h_n.append(hT)
                c_n.append(cT)
            layer_in = outs[0] if dirs == 1 else cat(outs, dim=2)
            if self.dropout and self.training and layer < L - 1:
                layer_in = F.dropout(layer_in, self.dropout, True)
        out = layer_in
        h_n, c_n = stack(h_n), stack(c_n)
        if unbatched:
            return out.squeeze(1), (h_n.squeeze(1), c_n.squeeze(1))
        if self.batch_first:
            out = out.transpose(0, 1)
        return out, (h_n, c_n)

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.batch_first:
            s += ", batch_first=True"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s


class LSTMCell(Module):
    """One LSTM step: (x (B, I), (h, c)) -> (h', c')."""

    def __init__(self, input_size, hidden_size, bias=True, dtype=np.float32):
        super().__init__()
        _check_size("LSTMCell", input_size=input_size, hidden_size=hidden_size)
        self.input_size, self.hidden_size = input_size, hidden_size
        H = hidden_size
        self.weight_ih = Parameter(np.empty((4 * H, input_size), dtype))
        self.weight_hh = Parameter(np.empty((4 * H, H), dtype))
        if bias:
            self.bias_ih = Parameter(np.empty(4 * H, dtype))
            self.bias_hh = Parameter(np.empty(4 * H, dtype))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        bound = 1.0 / math.sqrt(H)
        for p in self.parameters():
            uniform_(p, -bound, bound)

    def forward(self, input, hx=None):
        x = F._req(input, "LSTMCell")
        if x.ndim not in (1, 2) or x.shape[-1] != self.input_size:
            raise ValueError(f"LSTMCell(input_size={self.input_size}): expected input (B, {self.input_size}), "
                             f"got shape {x.shape}")
        unbatched = x.ndim == 1
        if unbatched:
            x = x.unsqueeze(0)
        B, H = x.shape[0], self.hidden_size
        if hx is None:
            h = c = Tensor(np.zeros((B, H), x.dtype), _trusted=True)
        else:
            h, c = (F._t(v) for v in hx)
            if unbatched:
                h, c = h.unsqueeze(0), c.unsqueeze(0)
            if h.shape != (B, H) or c.shape != (B, H):
                raise ValueError(f"LSTMCell: hx must be (h, c) of shape {(B, H)}, got {h.shape} and {c.shape}")
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


class _StepRNN(Module):
    """A recurrent layer stepped in Python over time (GRU, plain RNN): the input projection of every step is one
    GEMM, each step one hidden-to-hidden GEMM plus the gate arithmetic. torch's names: weight_ih_l{k}[_reverse]
    ({gates}*H, I), weight_hh_l{k} ({gates}*H, H), bias_ih_l{k}, bias_hh_l{k}."""
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
        dt = _device.param_dtype(dtype, type(self).__name__)
        for layer in range(num_layers):
            layer_in = input_size if layer == 0 else H * dirs
            for d in range(dirs):
                sfx = f"l{layer}" + ("_reverse" if d else "")
                setattr(self, f"weight_ih_{sfx}", Parameter(np.empty((G * H, layer_in), dt)))
                setattr(self, f"weight_hh_{sfx}", Parameter(np.empty((G * H, H), dt)))
                if bias:
                    setattr(self, f"bias_ih_{sfx}", Parameter(np.empty(G * H, dt)))
                    setattr(self, f"bias_hh_{sfx}", Parameter(np.empty(G * H, dt)))
        bound = 1.0 / math.sqrt(hidden_size)
        for p in self.parameters():
            uniform_(p, -bound, bound)

    def _cell(self, xp_t, h, w_hh, b_hh):
        raise NotImplementedError

    def forward(self, input, hx=None):
        name = type(self).__name__
        x = F._req(input, name)
        if x.ndim not in (2, 3) or x.shape[-1] != self.input_size:
            raise ValueError(f"{name}(input_size={self.input_size}): expected input (T, B, {self.input_size}) "
                             f"{'[batch_first: (B, T, I)] ' if self.batch_first else ''}or (T, {self.input_size}), "
                             f"got shape {tuple(x.shape)}")
        unbatched = x.ndim == 2
        if unbatched:
            x = x.unsqueeze(1)
        elif self.batch_first:
            x = x.transpose(0, 1)
        T, B, _ = x.shape
        dirs = 2 if self.bidirectional else 1
        H, L = self.hidden_size, self.num_layers
        if hx is None:
            h0 = Tensor(np.zeros((L * dirs, B, H), x._array.dtype), _trusted=True)
        else:
            h0 = F._req(hx, name, "hx")
            if unbatched:
                h0 = h0.unsqueeze(1)
            if tuple(h0.shape) != (L * dirs, B, H):
                raise ValueError(f"{name}: hx must have shape {(L * dirs, B, H)}, got {tuple(h0.shape)}")
        p = self._parameters
        layer_in, h_n = x, []
        for layer in range(L):
            outs = []
            for d in range(dirs):
                sfx = f"l{layer}" + ("_reverse" if d else "")
                w_ih, w_hh = p[f"weight_ih_{sfx}"], p[f"weight_hh_{sfx}"]
                b_ih, b_hh = p.get(f"bias_ih_{sfx}"), p.get(f"bias_hh_{sfx}")
                proj = F.linear(layer_in, w_ih, b_ih)              # every step's input projection at once
                h = h0[layer * dirs + d]
                steps = []
                order = range(T - 1, -1, -1) if d else range(T)
                for t in order:
                    h = self._cell(proj[t], h, w_hh, b_hh)
                    steps.append(h)
                if d:
                    steps.reverse()
                outs.append(stack(steps) if steps else proj[:, :, :H] * 0)
                h_n.append(h)
            layer_in = outs[0] if dirs == 1 else cat(outs, dim=2)
            if self.dropout and self.training and layer < L - 1:
                layer_in = F.dropout(layer_in, self.dropout, True)
        out, h_n = layer_in, stack(h_n)
        if unbatched:
            return out.squeeze(1), h_n.squeeze(1)
        if self.batch_first:
            out = out.transpose(0, 1)
        return out, h_n

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.batch_first:
            s += ", batch_first=True"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s


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


class _StepCell(Module):
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

    def forward(self, input, hx=None):
        x = F._req(input, type(self).__name__)
        unbatched = x.ndim == 1
        if unbatched:
            x = x.unsqueeze(0)
        h = Tensor(np.zeros((x.shape[0], self.hidden_size), x._array.dtype), _trusted=True) if hx is None else \
            F._req(hx, type(self).__name__, "hx")
        if unbatched and h.ndim == 1:
            h = h.unsqueeze(0)
        out = self._step(F.linear(x, self.weight_ih, self.bias_ih), h)
        return out.squeeze(0) if unbatched else out


class GRUCell(_StepCell):
    _gates = 3

    def _step(self, xp, h):
        return _gru_step(xp, h, self.weight_hh, self.bias_hh)


class RNNCell(_StepCell):
    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, device, dtype)
        self.nonlinearity = nonlinearity

    def _step(self, xp, h):
        pre = xp + F.linear(h, self.weight_hh, self.bias_hh)
        return pre.tanh() if self.nonlinearity == "tanh" else pre.relu()
