"""The argument checks every op family shares, CPU and CUDA alike.

``pyfastnn.ops`` (the dispatch point) and ``pyfastnn.cuda_ops`` (the CUDA
launches) both take their arrays and scalars through these, so an error
names the op and argument the same way on either device, and neither has
to import the other.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np


def _is_cupy(x) -> bool:
    return type(x).__module__.startswith("cupy")


def _as_array(op: str, name: str, x):
    """numpy/CuPy arrays pass through; DLPack producers are wrapped without a copy."""
    if x is None or isinstance(x, np.ndarray) or _is_cupy(x):
        return x
    if hasattr(x, "__dlpack__"):
        device = x.__dlpack_device__()[0] if hasattr(x, "__dlpack_device__") else 1
        if device == 1:  # kDLCPU
            return np.from_dlpack(x)
        import cupy  # a GPU producer: CuPy is how pyfastnn holds device memory

        return cupy.from_dlpack(x)
    if isinstance(x, (list, tuple, int, float)):
        raise TypeError(f"{op}: argument '{name}' must be an array (numpy, CuPy or __dlpack__), "
                        f"got {type(x).__name__}; wrap it with numpy.asarray first")
    raise TypeError(f"{op}: argument '{name}' must be an array (numpy, CuPy or __dlpack__), got {type(x).__name__}")


def _device_of(op: str, **arrays) -> str:
    """'cpu' or 'cuda' for all given arrays; mixing them is an error."""
    devices = {name: ("cuda" if _is_cupy(a) else "cpu") for name, a in arrays.items() if a is not None}
    kinds = set(devices.values())
    if len(kinds) > 1:
        desc = ", ".join(f"'{n}' on {d}" for n, d in devices.items())
        raise ValueError(f"{op}: all arrays must be on one device, got {desc}")
    return kinds.pop() if kinds else "cpu"


def _scalar(op: str, name: str, value, kind=float):
    """A Python number for a scalar argument; anything else is a TypeError naming the op and argument."""
    if not isinstance(value, (str, bytes)):
        try:
            return kind(value)
        except (TypeError, ValueError):
            pass
    what = "an int" if kind is int else "a real number"
    raise TypeError(f"{op}: argument '{name}' must be {what}, got {type(value).__name__} {value!r}")


def _int64(op: str, name: str, value) -> int:
    """A Python int for an argument the kernels hold in 64 bits."""
    v = _scalar(op, name, value, int)
    if not -2**63 <= v < 2**63:
        raise ValueError(f"{op}: argument '{name}' must fit in 64 bits (|value| < 2**63), got {v}")
    return v


def _axis_last(op, x, axis):
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
        raise TypeError(f"{op}: argument 'axis' must be an int, got {type(axis).__name__}")
    nd = np.ndim(x)
    if nd == 0:
        raise ValueError(f"{op}: argument 'x' must have at least one dimension")
    if not -nd <= axis < nd:
        raise ValueError(f"{op}: argument 'axis' {axis} is out of range for {nd} dimensions")
    return axis % nd


def _normalized_size(op, x, normalized_shape):
    shape = (normalized_shape,) if isinstance(normalized_shape, (int, np.integer)) else tuple(normalized_shape)
    if any(not isinstance(d, (int, np.integer)) or isinstance(d, bool) for d in shape):
        raise TypeError(f"{op}: argument 'normalized_shape' must be an int or a tuple of ints, got {normalized_shape!r}")
    if len(shape) == 0 or len(shape) > np.ndim(x) or tuple(np.shape(x)[-len(shape):]) != shape:
        raise ValueError(f"{op}: argument 'normalized_shape' {shape} must match the trailing dimensions of 'x' "
                         f"{tuple(np.shape(x))}")
    return int(np.prod(shape))


def _normalized_ndim(normalized_shape):
    return 1 if isinstance(normalized_shape, (int, np.integer)) else len(tuple(normalized_shape))


class LSTMCache(NamedTuple):
    """What lstm_backward needs from the forward pass."""
    x: np.ndarray          # (T, B, I)
    hs: np.ndarray         # (T+1, B, H): h0, h_1 .. h_T
    cs: np.ndarray         # (T+1, B, H): c0, c_1 .. c_T
    gates: np.ndarray      # (T, B, 4H): activated gates i, f, g, o
    w_ih: np.ndarray
    w_hh: np.ndarray
    has_b_ih: bool
    has_b_hh: bool
