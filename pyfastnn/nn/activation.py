"""Activation layers."""
from __future__ import annotations

from . import functional as F
from .module import Module

__all__ = ["ReLU", "GELU", "Sigmoid", "Tanh", "Softmax", "LogSoftmax"]


class ReLU(Module):
    fused_activation = "relu"      # what Sequential may fold into a preceding Linear

    def __init__(self, inplace=False):
        super().__init__()

    def forward(self, x):
        return F.relu(x)


class GELU(Module):
    def __init__(self, approximate="none"):
        super().__init__()
        if approximate != "none":
            raise ValueError(f"GELU: only approximate='none' (the erf form) is supported, got {approximate!r}")

    def forward(self, x):
        return F.gelu(x)


class Sigmoid(Module):
    fused_activation = "sigmoid"

    def forward(self, x):
        return F.sigmoid(x)


class Tanh(Module):
    fused_activation = "tanh"

    def forward(self, x):
        return F.tanh(x)


class Softmax(Module):
    def __init__(self, dim=None):
        super().__init__()
        self.dim = -1 if dim is None else dim

    def forward(self, x):
        return F.softmax(x, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class LogSoftmax(Softmax):
    def forward(self, x):
        return F.log_softmax(x, self.dim)
