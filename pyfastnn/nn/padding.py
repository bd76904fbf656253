"""Padding layers: ZeroPad, ConstantPad, ReflectionPad, ReplicationPad, CircularPad (1-D and 2-D)."""
from __future__ import annotations

from . import functional as F
from .module import Module

__all__ = ["ZeroPad1d", "ZeroPad2d", "ConstantPad1d", "ConstantPad2d", "ReflectionPad1d", "ReflectionPad2d",
           "ReplicationPad1d", "ReplicationPad2d", "CircularPad1d", "CircularPad2d"]


class _Pad(Module):
    _n = 2
    _mode = "constant"

    def __init__(self, padding, value=0.0):
        super().__init__()
        self.padding = tuple(padding) if isinstance(padding, (tuple, list)) else (int(padding),) * (2 * self._n)
        if len(self.padding) != 2 * self._n:
            raise ValueError(f"{type(self).__name__}: padding must be an int or a {2 * self._n}-tuple, got {padding!r}")
        self.value = value

    def forward(self, input):
        return F.pad(input, self.padding, self._mode, self.value if self._mode == "constant" else None)

    def extra_repr(self):
        return f"{self.padding}"


class ConstantPad2d(_Pad):
    def __init__(self, padding, value):
        super().__init__(padding, value)

    def extra_repr(self):
        return f"padding={self.padding}, value={self.value}"


class ConstantPad1d(ConstantPad2d):
    _n = 1


class ZeroPad2d(_Pad):
    def __init__(self, padding):
        super().__init__(padding, 0.0)


class ZeroPad1d(ZeroPad2d):
    _n = 1


class ReflectionPad2d(_Pad):
    _mode = "reflect"

    def __init__(self, padding):
        super().__init__(padding)


class ReflectionPad1d(ReflectionPad2d):
    _n = 1


class ReplicationPad2d(ReflectionPad2d):
    _mode = "replicate"


class ReplicationPad1d(ReplicationPad2d):
    _n = 1


class CircularPad2d(ReflectionPad2d):
    _mode = "circular"


class CircularPad1d(CircularPad2d):
    _n = 1
