"""Convolutions on the native implicit-GEMM kernels: Conv1d, Conv2d, ConvTranspose1d, ConvTranspose2d."""
from __future__ import annotations

import math

import numpy as np

from .. import _device
from .._errors import ShapeError
from . import functional as F
from .init import _linear_default
from .module import Module, Parameter

__all__ = ["Conv1d", "Conv2d", "ConvTranspose1d", "ConvTranspose2d"]

_PAD_MODES = {"zeros": None, "reflect": "reflect", "replicate": "replicate", "circular": "circular"}


def _int_tuple(owner, name, v, n, minimum):
    """An int or an n-tuple of ints, each >= minimum, as a tuple; anything else names the argument."""
    items = tuple(v) if isinstance(v, (tuple, list)) else (v,) * n
    if len(items) != n or any(isinstance(e, bool) or not isinstance(e, (int, np.integer)) or e < minimum
                              for e in items):
        raise ValueError(f"{owner}: argument '{name}' must be an int or a tuple of {n} ints >= {minimum}, got {v!r}")
    if any(e > (1 << 40) for e in items):
        raise ValueError(f"{owner}: argument '{name}' is too large ({v!r})")
    return tuple(int(e) for e in items)


class _ConvNd(Module):
    _n = 2
    _transposed = False

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True,
                 padding_mode="zeros", output_padding=0, device=None, dtype=None):
        super().__init__()
        owner = type(self).__name__
        for name, v in (("in_channels", in_channels), ("out_channels", out_channels), ("groups", groups)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
                raise ValueError(f"{owner}: argument '{name}' must be a positive int, got {v!r}")
        if in_channels % groups:
            raise ValueError(f"{owner}: in_channels must be divisible by groups")
        if out_channels % groups:
            raise ValueError(f"{owner}: out_channels must be divisible by groups")
        if padding_mode not in _PAD_MODES:
            raise ValueError(f"{owner}: padding_mode must be one of {sorted(_PAD_MODES)}, but got padding_mode="
                             f"'{padding_mode}'")
        n = self._n
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = _int_tuple(owner, "kernel_size", kernel_size, n, 1)
        self.stride = _int_tuple(owner, "stride", stride, n, 1)
        self.dilation = _int_tuple(owner, "dilation", dilation, n, 1)
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"{owner}: argument 'padding': invalid padding string {padding!r}, should be one of "
                                 f"{{'valid', 'same'}}")
            if padding == "same" and any(s != 1 for s in self.stride):
                raise ValueError(f"{owner}: padding='same' is not supported for strided convolutions")
            self.padding = padding
        else:
            self.padding = _int_tuple(owner, "padding", padding, n, 0)
        self.output_padding = _int_tuple(owner, "output_padding", output_padding, n, 0)
        self.groups, self.padding_mode = int(groups), padding_mode
        self.transposed = self._transposed
        np_dtype = _device.param_dtype(dtype, owner)
        if self._transposed:
            shape = (self.in_channels, self.out_channels // self.groups) + self.kernel_size
        else:
            shape = (self.out_channels, self.in_channels // self.groups) + self.kernel_size
        self.weight = Parameter(np.empty(shape, np_dtype))
        if bias:
            self.bias = Parameter(np.empty(self.out_channels, np_dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()
        if device is not None:
            self.to(device)

    def reset_parameters(self):
        # torch: kaiming_uniform_(a=sqrt(5)) on the weight, fan_in = weight.size(1) * receptive field
        fan_in = self.weight.shape[1] * math.prod(self.kernel_size)
        _linear_default(self.weight, self.bias, fan_in)

    def _padded(self, x):
        mode = _PAD_MODES[self.padding_mode]
        if mode is None or isinstance(self.padding, str):
            return x, self.padding
        pads = []
        for p in reversed(self.padding):
            pads += [p, p]
        return F.pad(x, tuple(pads), mode=mode), 0

    def extra_repr(self):
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding not in ((0,) * self._n, "valid"):
            s += f", padding={self.padding}"
        if self.dilation != (1,) * self._n:
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,) * self._n:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class _Conv(_ConvNd):
    """A forward convolution over (N, C, *spatial) or unbatched (C, *spatial) input."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True,
                 padding_mode="zeros", device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, device=device, dtype=dtype)

    def forward(self, input):
        n, name = self._n, type(self).__name__
        shape = getattr(input, "shape", None)
        if shape is not None and (len(shape) not in (n + 1, n + 2) or shape[-n - 1] != self.in_channels):
            dims = ", ".join("HW"[i] if n == 2 else "L" for i in range(n))
            raise ShapeError(f"{name}(in_channels={self.in_channels}): expected input (N, {self.in_channels}, "
                             f"{dims}) or ({self.in_channels}, {dims}), got shape {tuple(shape)}")
        x, padding = self._padded(F._req(input, f"conv{n}d"))
        conv = F.conv2d if n == 2 else F.conv1d
        return conv(x, self.weight, self.bias, self.stride, padding, self.dilation, self.groups)


class Conv2d(_Conv):
    """2-D convolution over NCHW input; weight (out, in/groups, kh, kw)."""


class Conv1d(_Conv):
    """1-D convolution over (N, C, L) input; weight (out, in/groups, k)."""
    _n = 1


class ConvTranspose2d(_ConvNd):
    """Transposed 2-D convolution; weight (in, out/groups, kh, kw)."""
    _transposed = True

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1,
                 bias=True, dilation=1, padding_mode="zeros", device=None, dtype=None):
        if padding_mode != "zeros":
            raise ValueError(f'Only "zeros" padding mode is supported for {type(self).__name__}')
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, output_padding, device=device, dtype=dtype)

    def _output_padding(self, x, output_size):
        if output_size is None:
            return self.output_padding
        want = tuple(output_size)[-self._n:]
        pads = []
        for i, w in enumerate(want):
            base = (x.shape[-self._n + i] - 1) * self.stride[i] - 2 * self.padding[i] + \
                self.dilation[i] * (self.kernel_size[i] - 1) + 1
            if not 0 <= w - base < max(self.stride[i], self.dilation[i]):
                raise ValueError(f"{type(self).__name__}: requested an output size of {want}, but valid sizes are "
                                 f"around {base}")
            pads.append(w - base)
        return tuple(pads)

    def forward(self, input, output_size=None):
        x = F._req(input, type(self).__name__)
        conv = F.conv_transpose2d if self._n == 2 else F.conv_transpose1d
        return conv(x, self.weight, self.bias, self.stride, self.padding, self._output_padding(x, output_size),
                    self.groups, self.dilation)


class ConvTranspose1d(ConvTranspose2d):
    """Transposed 1-D convolution; weight (in, out/groups, k)."""
    _n = 1
