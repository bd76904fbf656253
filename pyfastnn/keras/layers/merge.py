"""Keras's merge layers: Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate, Dot. They take a list
of tensors; the elementwise ones broadcast like Keras and work on NCHW images as well as channels_last."""
from __future__ import annotations

import numpy as np

from ...nn import functional as F
from ...tensor import cat
from ...tensor import maximum as _maximum
from ...tensor import minimum as _minimum
from .base import Layer, _as_input

__all__ = ["Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate", "Dot", "add", "subtract",
           "multiply", "average", "maximum", "minimum", "concatenate", "dot"]


class _Merge(Layer):
    layout_agnostic = True
    _min_inputs = 2

    def _check(self, inputs):
        if not isinstance(inputs, (list, tuple)):
            raise ValueError(f"{type(self).__name__} '{self.name}': a merge layer should be called on a list of "
                             f"inputs, got {type(inputs).__name__}")
        if len(inputs) < self._min_inputs:
            raise ValueError(f"{type(self).__name__} '{self.name}': a merge layer should be called on a list of at "
                             f"least {self._min_inputs} inputs. Got {len(inputs)} inputs.")

    def build(self, input_shape):
        self._check(input_shape)
        shapes = [tuple(s) for s in input_shape]
        try:
            np.broadcast_shapes(*[tuple(1 if d is None else d for d in s) for s in shapes])
        except ValueError:
            raise ValueError(f"{type(self).__name__} '{self.name}': inputs must have compatible shapes, got "
                             f"{shapes}") from None

    def compute_output_shape(self, input_shape):
        self._check(input_shape)
        shapes = [tuple(s) for s in input_shape]
        rank = max(len(s) for s in shapes)
        padded = [(1,) * (rank - len(s)) + s for s in shapes]
        out = []
        for dims in zip(*padded):
            known = [d for d in dims if d not in (None, 1)]
            out.append(known[0] if known else (None if None in dims else 1))
        return tuple(out)

    def forward(self, inputs, training=None):
        self._check(inputs)
        xs = [_as_input(x, self.name) for x in inputs]
        self._ensure_built([tuple(x.shape[1:]) for x in xs])
        return self._merge(xs)


class Add(_Merge):
    def _merge(self, xs):
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out


class Subtract(_Merge):
    def _check(self, inputs):
        super()._check(inputs)
        if len(inputs) != 2:
            raise ValueError(f"Subtract '{self.name}': a `Subtract` layer should be called on exactly 2 inputs. "
                             f"Received: inputs={len(inputs)}")

    def _merge(self, xs):
        return xs[0] - xs[1]


class Multiply(_Merge):
    def _merge(self, xs):
        out = xs[0]
        for x in xs[1:]:
            out = out * x
        return out


class Average(_Merge):
    def _merge(self, xs):
        return Add._merge(self, xs) * (1.0 / len(xs))


class Maximum(_Merge):
    def _merge(self, xs):
        out = xs[0]
        for x in xs[1:]:
            out = _maximum(out, x)
        return out


class Minimum(_Merge):
    def _merge(self, xs):
        out = xs[0]
        for x in xs[1:]:
            out = _minimum(out, x)
        return out


class Concatenate(_Merge):
    """Joins the inputs along axis (default the last, channels_last's channel axis; on NCHW images the model
    runs it on the channel dim)."""
    layout_agnostic = False
    takes_list = True

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise TypeError(f"Concatenate: argument 'axis' must be an int, got {type(axis).__name__}")
        self.axis = int(axis)

    def build(self, input_shape):
        self._check(input_shape)
        shapes = [tuple(s) for s in input_shape]
        rank = len(shapes[0])
        if any(len(s) != rank for s in shapes):
            raise ValueError(f"Concatenate '{self.name}': inputs must have the same rank, got shapes {shapes}")
        ax = self.axis % (rank + 1) - 1 if self.axis < 0 else self.axis - 1
        for d in range(rank):
            if d != ax and len({s[d] for s in shapes if s[d] is not None}) > 1:
                raise ValueError(f"Concatenate '{self.name}': A `Concatenate` layer requires inputs with matching "
                                 f"shapes except for the concatenation axis. Received: input_shape={shapes}")

    def compute_output_shape(self, input_shape):
        shapes = [tuple(s) for s in input_shape]
        rank = len(shapes[0])
        ax = self.axis % (rank + 1) - 1 if self.axis < 0 else self.axis - 1
        out = list(shapes[0])
        sizes = [s[ax] for s in shapes]
        out[ax] = None if None in sizes else sum(sizes)
        return tuple(out)

    def _merge(self, xs):
        return cat(xs, self.axis)

    def call_nchw(self, xs, training=False):
        # channels_last axis -> NCHW axis: (N, H, W, C) dims 0, 1, 2, 3 are dims 0, 2, 3, 1
        ax = self.axis % 4
        return cat(list(xs), {0: 0, 1: 2, 2: 3, 3: 1}[ax])


class Dot(_Merge):
    """Dot products of samples of two tensors along the given axes (normalize: cosine similarity)."""
    layout_agnostic = False

    def __init__(self, axes, normalize=False, **kwargs):
        super().__init__(**kwargs)
        self.axes, self.normalize = axes, bool(normalize)

    def _check(self, inputs):
        super()._check(inputs)
        if len(inputs) != 2:
            raise ValueError(f"Dot '{self.name}': A `Dot` layer should be called on a list of 2 inputs")

    def _axes(self, r1, r2):
        axes = self.axes if isinstance(self.axes, (list, tuple)) else (self.axes, self.axes)
        return [a % r if a < 0 else a for a, r in zip(axes, (r1, r2))]

    def build(self, input_shape):
        self._check(input_shape)

    def compute_output_shape(self, input_shape):
        s1, s2 = (tuple(s) for s in input_shape)
        a1, a2 = self._axes(len(s1) + 1, len(s2) + 1)
        out = [d for i, d in enumerate(s1) if i != a1 - 1] + [d for i, d in enumerate(s2) if i != a2 - 1]
        return tuple(out) if out else (1,)

    def _merge(self, xs):
        x1, x2 = xs
        a1, a2 = self._axes(x1.ndim, x2.ndim)
        if self.normalize:
            x1, x2 = F.normalize(x1, dim=a1), F.normalize(x2, dim=a2)
        x1 = x1.movedim(a1, -1)
        x2 = x2.movedim(a2, 1) if x2.ndim > 2 else x2
        if x1.ndim == 2 and x2.ndim == 2:
            return (x1 * x2).sum(-1, keepdim=True)
        b = x1.shape[0]
        out = x1.reshape(b, -1, x1.shape[-1]).bmm(x2.reshape(b, x2.shape[1], -1))
        shape = tuple(x1.shape[1:-1]) + tuple(x2.shape[2:])
        return out.reshape((b,) + shape)


def _functional(cls):
    def merge(inputs, **kwargs):
        return cls(**kwargs)(inputs)
    merge.__name__ = cls.__name__.lower()
    merge.__doc__ = f"The functional form of {cls.__name__}: {cls.__name__}(**kwargs)(inputs)."
    return merge


add, subtract, multiply, average = (_functional(c) for c in (Add, Subtract, Multiply, Average))
concatenate = _functional(Concatenate)


def maximum(inputs, **kwargs):
    return Maximum(**kwargs)(inputs)


def minimum(inputs, **kwargs):
    return Minimum(**kwargs)(inputs)


def dot(inputs, axes, normalize=False, **kwargs):
    return Dot(axes, normalize, **kwargs)(inputs)
