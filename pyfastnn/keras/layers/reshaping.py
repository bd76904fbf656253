"""Keras's reshaping and resizing layers: Reshape, Permute, RepeatVector, Rescaling, ZeroPadding2D, Cropping2D,
UpSampling2D (nearest, bilinear). The image ones run on NCHW tensors in a model (F.pad, slicing,
F.interpolate)."""
from __future__ import annotations

import numpy as np

from ...nn import functional as F
from ...tensor import Tensor
from .base import Layer
from .base import check_positive as _check_positive
from .core import _pair

__all__ = ["Reshape", "Permute", "RepeatVector", "Rescaling", "ZeroPadding2D", "Cropping2D", "UpSampling2D"]


def _is_int(v):
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


class Reshape(Layer):
    """Reshapes each sample to target_shape (batch dim left out; one -1 is inferred)."""

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        if _is_int(target_shape):
            target_shape = (target_shape,)
        if not isinstance(target_shape, (tuple, list)) or not all(_is_int(d) and (d > 0 or d == -1)
                                                                  for d in target_shape):
            raise ValueError(f"Reshape: argument 'target_shape' must be a tuple of positive ints (one may be -1), "
                             f"got {target_shape!r}")
        if sum(1 for d in target_shape if d == -1) > 1:
            raise ValueError(f"Reshape: There must be at most one unknown dimension (-1) in target_shape. Received: "
                             f"target_shape={tuple(target_shape)}")
        self.target_shape = tuple(int(d) for d in target_shape)

    def compute_output_shape(self, input_shape):
        known = int(np.prod([d for d in self.target_shape if d != -1]))
        if any(d is None for d in input_shape):
            return tuple(None if d == -1 else d for d in self.target_shape)
        size = int(np.prod(input_shape))
        if (-1 in self.target_shape and size % known) or (-1 not in self.target_shape and size != known):
            raise ValueError(f"Reshape '{self.name}': The total size of the tensor must be unchanged. Received: "
                             f"input_shape={tuple(input_shape)}, target_shape={self.target_shape}")
        return tuple(size // known if d == -1 else d for d in self.target_shape)

    def build(self, input_shape):
        self.compute_output_shape(input_shape)

    def call(self, x, training=False):
        return x.reshape((x.shape[0],) + self.compute_output_shape(tuple(x.shape[1:])))


class Permute(Layer):
    """Permutes the non-batch axes: dims is a permutation of 1..rank (1-indexed, as Keras)."""

    def __init__(self, dims, **kwargs):
        super().__init__(**kwargs)
        dims = tuple(dims) if isinstance(dims, (tuple, list)) else (dims,)
        if not all(_is_int(d) for d in dims) or sorted(dims) != list(range(1, len(dims) + 1)):
            raise ValueError(f"Permute: Invalid permutation argument `dims` for Permute Layer. The set of indices "
                             f"in `dims` must be consecutive and start from 1. Received dims={dims}")
        self.dims = tuple(int(d) for d in dims)

    def compute_output_shape(self, input_shape):
        if len(input_shape) != len(self.dims):
            raise ValueError(f"Permute '{self.name}': dims={self.dims} needs inputs of rank {len(self.dims)} (batch "
                             f"dim left out), got {tuple(input_shape)}")
        return tuple(input_shape[d - 1] for d in self.dims)

    def build(self, input_shape):
        self.compute_output_shape(input_shape)

    def call(self, x, training=False):
        self.compute_output_shape(tuple(x.shape[1:]))
        return x.permute((0,) + self.dims)


class RepeatVector(Layer):
    """(features,) -> (n, features): the input repeated n times."""

    def __init__(self, n, **kwargs):
        super().__init__(**kwargs)
        _check_positive("RepeatVector", n=n)
        self.n = int(n)

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 1:
            raise ValueError(f"RepeatVector '{self.name}': expected input (batch, features), got "
                             f"{(None,) + tuple(input_shape)}")
        return (self.n, input_shape[0])

    def build(self, input_shape):
        self.compute_output_shape(input_shape)

    def call(self, x, training=False):
        self.compute_output_shape(tuple(x.shape[1:]))
        return x.unsqueeze(1).repeat(1, self.n, 1)


class Rescaling(Layer):
    """x * scale + offset (e.g. Rescaling(1/255) for images); per-channel scale/offset lists act on the last
    axis."""

    def __init__(self, scale, offset=0.0, **kwargs):
        super().__init__(**kwargs)
        for arg, v in (("scale", scale), ("offset", offset)):
            a = np.asarray(v)
            if a.dtype.kind not in "iuf":
                raise TypeError(f"Rescaling: argument '{arg}' must be a number or a list of numbers, got {v!r}")
        self.scale, self.offset = scale, offset
        self._scale = np.asarray(scale, np.float32)
        self._offset = np.asarray(offset, np.float32)
        self.layout_agnostic = self._scale.ndim == 0 and self._offset.ndim == 0

    def call(self, x, training=False):
        scale = float(self._scale) if self._scale.ndim == 0 else Tensor(self._scale)
        offset = float(self._offset) if self._offset.ndim == 0 else Tensor(self._offset)
        return x * scale + offset


def _pairs_of_pairs(owner, arg, value):
    """An int, (sym_h, sym_w) or ((top, bottom), (left, right)) as ((top, bottom), (left, right))."""
    msg = (f"{owner}: `{arg}` should be either an int, a tuple of 2 ints (symmetric_height_{arg}, "
           f"symmetric_width_{arg}), or a tuple of 2 tuples of 2 ints ((top_{arg}, bottom_{arg}), (left_{arg}, "
           f"right_{arg})). Received: {arg}={value!r}")
    if _is_int(value):
        out = ((value, value), (value, value))
    elif isinstance(value, (tuple, list)) and len(value) == 2 and all(_is_int(v) for v in value):
        out = ((value[0], value[0]), (value[1], value[1]))
    elif isinstance(value, (tuple, list)) and len(value) == 2 and all(
            isinstance(v, (tuple, list)) and len(v) == 2 and all(_is_int(e) for e in v) for v in value):
        out = (tuple(value[0]), tuple(value[1]))
    else:
        raise ValueError(msg)
    if any(e < 0 for p in out for e in p):
        raise ValueError(msg)
    return tuple(tuple(int(e) for e in p) for p in out)


def _image_shape(layer, input_shape):
    if len(input_shape) != 3:
        raise ValueError(f"{type(layer).__name__} '{layer.name}': expected input (H, W, C) per sample, got "
                         f"{tuple(input_shape)}")
    return input_shape


class ZeroPadding2D(Layer):
    """Pads images with zeros: padding as an int, (sym_h, sym_w) or ((top, bottom), (left, right))."""

    def __init__(self, padding=(1, 1), data_format=None, **kwargs):
        super().__init__(**kwargs)
        if data_format not in (None, "channels_last"):
            raise ValueError("ZeroPadding2D: only data_format='channels_last' is supported")
        self.padding = _pairs_of_pairs("ZeroPadding2D", "padding", padding)

    def compute_output_shape(self, input_shape):
        h, w, c = _image_shape(self, input_shape)
        (t, b), (l, r) = self.padding
        return (None if h is None else h + t + b, None if w is None else w + l + r, c)

    def call_nchw(self, x, training=False):
        (t, b), (l, r) = self.padding
        return F.pad(x, (l, r, t, b))


class Cropping2D(Layer):
    """Crops images: cropping as an int, (sym_h, sym_w) or ((top, bottom), (left, right))."""

    def __init__(self, cropping=((0, 0), (0, 0)), data_format=None, **kwargs):
        super().__init__(**kwargs)
        if data_format not in (None, "channels_last"):
            raise ValueError("Cropping2D: only data_format='channels_last' is supported")
        self.cropping = _pairs_of_pairs("Cropping2D", "cropping", cropping)

    def compute_output_shape(self, input_shape):
        h, w, c = _image_shape(self, input_shape)
        (t, b), (l, r) = self.cropping
        if (h is not None and h <= t + b) or (w is not None and w <= l + r):
            raise ValueError(f"Cropping2D '{self.name}': Values in `cropping` argument should be smaller than the "
                             f"corresponding spatial dimension of the input. Received: input_shape="
                             f"{(None,) + tuple(input_shape)}, cropping={self.cropping}")
        return (None if h is None else h - t - b, None if w is None else w - l - r, c)

    def build(self, input_shape):
        self.compute_output_shape(input_shape)

    def call_nchw(self, x, training=False):
        self.compute_output_shape((x.shape[2], x.shape[3], x.shape[1]))
        (t, b), (l, r) = self.cropping
        return x[:, :, t:x.shape[2] - b, l:x.shape[3] - r]


class UpSampling2D(Layer):
    """Repeats rows and columns size times ('nearest') or interpolates ('bilinear', half-pixel centres as
    Keras's resize)."""

    def __init__(self, size=(2, 2), data_format=None, interpolation="nearest", **kwargs):
        super().__init__(**kwargs)
        if data_format not in (None, "channels_last"):
            raise ValueError("UpSampling2D: only data_format='channels_last' is supported")
        _check_positive("UpSampling2D", size=size)
        if interpolation not in ("nearest", "bilinear"):
            raise ValueError(f"UpSampling2D: interpolation must be 'nearest' or 'bilinear', got {interpolation!r}")
        self.size, self.interpolation = tuple(int(s) for s in _pair(size)), interpolation

    def compute_output_shape(self, input_shape):
        h, w, c = _image_shape(self, input_shape)
        return (None if h is None else h * self.size[0], None if w is None else w * self.size[1], c)

    def call_nchw(self, x, training=False):
        if self.interpolation == "nearest":
            return F.interpolate(x, scale_factor=self.size, mode="nearest")
        return F.interpolate(x, scale_factor=self.size, mode="bilinear", align_corners=False)
