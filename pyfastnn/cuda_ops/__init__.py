"""The CUDA side of ``pyfastnn.ops``: argument checks and launches for CuPy arrays.

``pyfastnn.ops`` stays the one dispatch point: an op whose arrays are CuPy
arrays calls the function of the same name here. These functions check
shapes and dtypes (errors name the op and the argument, as on the CPU),
allocate outputs through CuPy and launch on CuPy's current stream. One module
per kernel family, mirroring ``csrc/cuda/<op>/``.
"""
from __future__ import annotations

from .. import _backend


def module(op: str):
    """The loaded ``_cuda`` extension, or a RuntimeError naming ``op``."""
    return _backend.require_cuda(op)


def cupy():
    import cupy as _cupy  # only reached with a GPU and CuPy present
    return _cupy


def stream_ptr() -> int:
    """CuPy's current stream, the one every kernel launches on."""
    return cupy().cuda.get_current_stream().ptr


def check_dtype(op: str, name: str, x, allowed) -> None:
    if x.dtype not in allowed:
        names = ", ".join(str(cupy().dtype(d)) for d in allowed)
        raise TypeError(f"{op}: argument '{name}' has dtype {x.dtype}; the CUDA kernel takes {names}")


def check_ndim(op: str, name: str, x, ndims) -> None:
    if x.ndim not in tuple(ndims):
        raise ValueError(f"{op}: argument '{name}' must have {' or '.join(map(str, ndims))} dims, got shape {tuple(x.shape)}")


def contiguous(x):
    """A C-contiguous version of ``x`` (no copy when it already is)."""
    return cupy().ascontiguousarray(x)


def device_array(op: str, name: str, x) -> None:
    """x must be a CuPy array on the current device (TypeError / ValueError naming op and argument)."""
    cp = cupy()
    if not isinstance(x, cp.ndarray):
        raise TypeError(f"{op}: argument '{name}' must be a CuPy array, got {type(x).__module__}.{type(x).__name__}")
    current = cp.cuda.Device().id
    if x.device.id != current:
        raise ValueError(f"{op}: argument '{name}' is on GPU {x.device.id} but the current device is GPU {current}")


def int_pair(op: str, name: str, v, lo: int):
    """An int or a pair of ints, each >= lo (the CPU's parse_int_pair)."""
    def as_int(h):
        if isinstance(h, bool) or not isinstance(h, int):
            raise TypeError(f"{op}: argument '{name}' must be an int or a pair of ints, got {v!r}")
        return h

    if isinstance(v, (tuple, list)):
        if len(v) != 2:
            raise ValueError(f"{op}: argument '{name}' must be an int or a pair of ints, got {v!r}")
        a, b = as_int(v[0]), as_int(v[1])
    else:
        a = b = as_int(v)
    if a < lo or b < lo:
        raise ValueError(f"{op}: argument '{name}' must be >= {lo}, got {v!r}")
    return a, b
