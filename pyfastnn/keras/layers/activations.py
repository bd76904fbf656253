"""Keras's activation layers: ReLU (max_value, negative_slope, threshold), LeakyReLU, Softmax."""
from __future__ import annotations

import numbers
import warnings

import numpy as np

from ...nn import functional as F
from ...tensor import Tensor, where
from .base import Layer

__all__ = ["ReLU", "LeakyReLU", "Softmax"]


def _number(owner, arg, v, what):
    if v is None or isinstance(v, bool) or not isinstance(v, numbers.Real) or v < 0:
        raise ValueError(f"{owner}: {arg} of a {what} layer cannot be None or a negative value. Received: "
                         f"{arg}={v!r}")
    return float(v)


class ReLU(Layer):
    """Keras's ReLU: max_value for x >= max_value, x for threshold < x < max_value, and
    negative_slope * (x - threshold) below the threshold."""
    layout_agnostic = True

    def __init__(self, max_value=None, negative_slope=0.0, threshold=0.0, **kwargs):
        super().__init__(**kwargs)
        if max_value is not None and (isinstance(max_value, bool) or not isinstance(max_value, numbers.Real)
                                      or max_value < 0):
            raise ValueError(f"ReLU: max_value of a ReLU layer cannot be a negative value. Received: "
                             f"max_value={max_value!r}")
        self.max_value = None if max_value is None else float(max_value)
        self.negative_slope = _number("ReLU", "negative_slope", negative_slope, "ReLU")
        self.threshold = _number("ReLU", "threshold", threshold, "ReLU")

    def call(self, x, training=False):
        top, slope, thr = self.max_value, self.negative_slope, self.threshold
        if slope == 0.0 and thr == 0.0:
            if top is None:
                return F.relu(x)
            return F.relu6(x) if top == 6.0 else F.hardtanh(x, 0.0, top)
        if top is None and thr == 0.0:
            return F.leaky_relu(x, slope)
        pos = x if top is None else x.clamp(max=top)
        return where((x > thr)._array, pos, (x - thr) * slope)


class LeakyReLU(Layer):
    """x for x > 0, negative_slope * x below (Keras's default slope 0.3)."""
    layout_agnostic = True

    def __init__(self, negative_slope=0.3, **kwargs):
        if "alpha" in kwargs:          # Keras 2's name, as Keras 3 accepts it
            negative_slope = kwargs.pop("alpha")
            warnings.warn("Argument `alpha` is deprecated. Use `negative_slope` instead.", stacklevel=2)
        super().__init__(**kwargs)
        if negative_slope is None or isinstance(negative_slope, bool) or \
                not isinstance(negative_slope, numbers.Real) or negative_slope < 0:
            raise ValueError(f"LeakyReLU: The negative_slope value of a Leaky ReLU layer cannot be None or negative "
                             f"value. Expected a float. Received: negative_slope={negative_slope!r}")
        self.negative_slope = float(negative_slope)

    def call(self, x, training=False):
        return F.leaky_relu(x, self.negative_slope)


class Softmax(Layer):
    """Softmax along axis (the last by default); with a mask (True or > 0.5 = keep) the masked entries are left
    out and come out as zeros."""

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise TypeError(f"Softmax: argument 'axis' must be an int, got {axis!r}")
        self.axis = int(axis)

    def call(self, x, training=False, mask=None):
        if not -x.ndim <= self.axis < x.ndim or self.axis == 0 or self.axis == -x.ndim:
            raise ValueError(f"Softmax '{self.name}': axis={self.axis} is out of range for inputs of shape "
                             f"{tuple(x.shape)} (the batch axis cannot be used)")
        if mask is None:
            return F.softmax(x, self.axis)
        keep = np.asarray(mask._array if isinstance(mask, Tensor) else mask)
        keep = keep if keep.dtype == np.bool_ else keep > 0.5
        try:
            keep = np.broadcast_to(keep, x.shape)
        except ValueError:
            raise ValueError(f"Softmax '{self.name}': The `mask` must be broadcastable to `inputs`. Received: "
                             f"inputs.shape={tuple(x.shape)}, mask.shape={keep.shape}") from None
        y = F.softmax(where(keep, x, -1e9), self.axis)
        return where(keep, y, 0.0)      # a wholly masked row gives zeros, not a uniform row
