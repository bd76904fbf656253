"""Conv2d on the native implicit-GEMM kernels."""
from __future__ import annotations

import numpy as np

from . import functional as F
from .init import _linear_default
from .module import Module, Parameter

__all__ = ["Conv2d"]


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _int_pair(name, v, minimum):
    """An int or a pair of ints, each >= minimum, as a pair; anything else names the argument."""
    pair = _pair(v)
    if len(pair) != 2 or any(isinstance(e, bool) or not isinstance(e, (int, np.integer)) or e < minimum
                             for e in pair):
        raise ValueError(f"Conv2d: argument '{name}' must be an int or a pair of ints >= {minimum}, got {v!r}")
    return tuple(int(e) for e in pair)


class Conv2d(Module):
    """2-D convolution over NCHW input; weight (out, in/groups, kh, kw)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, padding_mode="zeros", dtype=np.float32):
        super().__init__()
        for name, v in (("in_channels", in_channels), ("out_channels", out_channels), ("groups", groups)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
                raise ValueError(f"Conv2d: argument '{name}' must be a positive int, got {v!r}")
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"Conv2d: in_channels ({in_channels}) and out_channels ({out_channels}) must both be "
                             f"divisible by groups ({groups})")
        if padding_mode != "zeros":
            raise ValueError(f"Conv2d: only padding_mode='zeros' is supported, got {padding_mode!r}")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = _int_pair("kernel_size", kernel_size, 1)
        self.stride, self.dilation = _int_pair("stride", stride, 1), _int_pair("dilation", dilation, 1)
        self.padding = padding if isinstance(padding, str) else _int_pair("padding", padding, 0)
        if isinstance(padding, str) and padding not in ("same", "valid"):
            raise ValueError(f"Conv2d: argument 'padding' must be an int, a pair, 'valid' or 'same', got {padding!r}")
        if padding == "same" and self.stride != (1, 1):
            raise ValueError(f"Conv2d: padding='same' needs stride 1 (as in torch), got stride={self.stride}")
        self.groups = int(groups)
        kh, kw = self.kernel_size
        self.weight = Parameter(np.empty((out_channels, in_channels // groups, kh, kw), dtype))
        if bias:
            self.bias = Parameter(np.empty(out_channels, dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        _linear_default(self.weight, self.bias, self.in_channels // self.groups * self.kernel_size[0]
                        * self.kernel_size[1])

    def forward(self, x):
        shape = getattr(x, "shape", None)
        if shape is not None and (len(shape) not in (3, 4) or shape[-3] != self.in_channels):
            raise ValueError(f"Conv2d(in_channels={self.in_channels}): expected input (N, {self.in_channels}, H, W) "
                             f"or ({self.in_channels}, H, W), got shape {tuple(shape)}")
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)

    def extra_repr(self):
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}")
        if self.padding not in ((0, 0), "valid"):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        return s + ("" if self.bias is not None else ", bias=False")
