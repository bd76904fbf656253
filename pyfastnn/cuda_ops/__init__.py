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
