"""Loads the native extensions once and says why an optional one is missing."""
from __future__ import annotations

import importlib
import importlib.util
import numbers
import os
import warnings

from . import _core

if _core.isa_override_warning():
    warnings.warn(_core.isa_override_warning(), RuntimeWarning, stacklevel=2)

# Training steps free and re-allocate the same multi-MB arrays every step; with
# glibc's defaults those pages go back to the OS and are faulted in (zeroed)
# again each time, about a quarter of a small CNN's step. Keep blocks up to
# 64 MiB on the heap and up to 256 MiB of free heap. PYFASTNN_MALLOC_TUNING=0
# leaves the process's allocator alone.
allocator = {"applied": False, "mmap_threshold": 0, "trim_threshold": 0}
if os.environ.get("PYFASTNN_MALLOC_TUNING", "1") != "0":
    allocator = dict(_core.tune_allocator(64 << 20, 256 << 20))

# pyfastnn.use_deterministic: CUDA backward kernels that would add with atomics
# (max_pool2d's overlapping windows) take a fixed order instead. The CPU
# kernels are deterministic whatever the thread count either way.
deterministic = False

_cuda = None          # the CUDA module, only when it loaded and sees a GPU
cuda_built = False    # whether the CUDA extension exists in this install
cuda_error = ""       # why _cuda is None
if importlib.util.find_spec(f"{__package__}._cuda") is None:
    cuda_error = "the CUDA extension was not built (no nvcc at build time, or PYFASTNN_CUDA=OFF)"
else:
    cuda_built = True
    try:
        _cuda_module = importlib.import_module(f"{__package__}._cuda")
    except ImportError as exc:
        cuda_error = f"the CUDA extension could not be loaded: {exc}"
    else:
        _dev = _cuda_module.device_info()
        if _dev["device_count"] > 0:
            _cuda = _cuda_module
        else:
            cuda_error = f"no usable GPU: {_dev['error'] or 'no CUDA device'}"


def require_cuda(op: str):
    """The CUDA module, or a RuntimeError that names the op and the reason."""
    if _cuda is None:
        raise RuntimeError(f"{op}: CUDA is not available: {cuda_error}")
    return _cuda


def set_num_threads(n) -> None:
    """Sets the number of threads the CPU kernels use (1 to 1024). Ops already
    running in other threads finish with the count they started with. Raises
    RuntimeError, keeping the old setting, if the OS refuses to start a thread."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(f"set_num_threads: argument 'n' must be an int, got {type(n).__name__}")
    if not 1 <= n <= _core.max_threads:
        raise ValueError(f"set_num_threads: argument 'n' must be between 1 and {_core.max_threads}, got {n}")
    _core.set_num_threads(int(n))


def get_num_threads() -> int:
    """Threads the CPU kernels use: PYFASTNN_NUM_THREADS, else one per physical core."""
    return _core.get_num_threads()
