"""Gradient clipping (torch.nn.utils.clip_grad_norm_ / clip_grad_value_), in place on .grad."""
from __future__ import annotations

import math

import numpy as np

from ... import _device
from ...tensor import Tensor, _wrap

__all__ = ["clip_grad_norm_", "clip_grad_value_", "get_total_norm"]


def _grads(parameters):
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p.grad for p in parameters if p.grad is not None]


def get_total_norm(tensors, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """The norm of all the tensors' values taken together, as a 0-d tensor (float32 for float32 grads)."""
    if isinstance(tensors, Tensor):
        tensors = [tensors]
    tensors = list(tensors)
    norm_type = float(norm_type)
    if not tensors:
        return _wrap(np.asarray(0.0, np.float32))
    dtype = tensors[0]._array.dtype
    if norm_type == math.inf:
        total = max(float(np.abs(_device.host(t._array)).max()) if t.numel() else 0.0 for t in tensors)
    else:
        # each tensor's norm in float64, then the norm of those: a fixed order, whatever the thread count
        parts = [float(np.linalg.norm(_device.host(t._array).reshape(-1).astype(np.float64), ord=norm_type))
                 if t.numel() else 0.0 for t in tensors]
        total = float(np.linalg.norm(np.asarray(parts), ord=norm_type))
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"The total norm of order {norm_type} for gradients from `parameters` is non-finite, so "
                           f"it cannot be clipped. To disable this error and scale the gradients by the non-finite "
                           f"norm anyway, set `error_if_nonfinite=False`")
    return _wrap(np.asarray(total, dtype))


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """Scales every gradient by max_norm / total_norm when the total norm exceeds max_norm; returns the total
    norm (before clipping) as a tensor."""
    grads = _grads(parameters)
    max_norm = float(max_norm)
    total = get_total_norm(grads, norm_type, error_if_nonfinite)
    coef = max_norm / (float(total.item()) + 1e-6)
    if coef < 1.0:
        for g in grads:
            g._array *= np.asarray(coef, g._array.dtype)
            g._counter[0] += 1
    return total


def clip_grad_value_(parameters, clip_value, foreach=None):
    """Clamps every gradient element into [-clip_value, clip_value]."""
    clip_value = float(clip_value)
    for g in _grads(parameters):
        np.clip(g._array, -clip_value, clip_value, out=g._array) if isinstance(g._array, np.ndarray) else \
            g._array.clip(-clip_value, clip_value, out=g._array)
        g._counter[0] += 1
