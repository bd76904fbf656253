"""pyfastnn: a small, fast neural-network library.

Hot paths are hand-written C++ (SIMD per ISA level, the library's own thread
pool) and CUDA kernels; this package is the thin Python layer over them.
"""
from __future__ import annotations

from . import _backend, ops
from ._backend import _core
from ._random import manual_seed
from .autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .tensor import Tensor, arange, cat, from_numpy, ones, rand, randn, stack, tensor, where, zeros
from . import autograd, callbacks, metrics, nn, optim  # noqa: E402  (they build on Tensor)
from .serialization import load, save

__version__ = "0.1.0"

__all__ = ["ops", "nn", "optim", "metrics", "callbacks", "autograd", "Tensor", "tensor", "from_numpy", "zeros", "ones", "randn",
           "rand", "arange", "cat", "stack", "where", "no_grad", "enable_grad", "set_grad_enabled",
           "is_grad_enabled", "save", "load", "backend_info", "manual_seed", "set_num_threads",
           "get_num_threads", "use_deterministic", "is_deterministic", "__version__"]


def set_num_threads(n: int) -> None:
    """Sets the number of threads the CPU kernels use (1 to 1024). Ops already
    running in other threads finish with the count they started with. Raises
    RuntimeError, keeping the old setting, if the OS refuses to start a thread."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"set_num_threads: argument 'n' must be an int, got {type(n).__name__}")
    if not 1 <= n <= _core.max_threads:
        raise ValueError(f"set_num_threads: argument 'n' must be between 1 and {_core.max_threads}, got {n}")
    _core.set_num_threads(n)


def use_deterministic(mode: bool = True) -> None:
    """Makes the CUDA backward kernels that would add with atomics use a fixed
    order instead (bit-identical runs, slower). The CPU kernels are
    deterministic at a fixed thread count regardless."""
    if not isinstance(mode, (bool, int)):
        raise TypeError(f"use_deterministic: argument 'mode' must be a bool, got {type(mode).__name__}")
    _backend.deterministic = bool(mode)


def is_deterministic() -> bool:
    """Whether use_deterministic(True) is in effect."""
    return _backend.deterministic


def get_num_threads() -> int:
    """Threads the CPU kernels use: PYFASTNN_NUM_THREADS, else one per physical core."""
    return _core.get_num_threads()


def backend_info() -> dict:
    """What runs where: CPU ISA level, threads, caches, and CUDA status."""
    info = {
        "cpu_isa": _core.cpu_isa(),
        "cpu_isa_best": _core.best_cpu_isa(),
        "num_threads": _core.get_num_threads(),
        **{f"cpu_{k}": v for k, v in _core.cpu_info().items()},
        "cuda_built": _backend.cuda_built,
        "cuda_available": _backend._cuda is not None,
        "cuda_error": _backend.cuda_error or None,
        "gpu_name": None,
        "allocator_tuned": _backend.allocator["applied"],
    }
    if _backend._cuda is not None:
        dev = _backend._cuda.device_info()
        info["gpu_name"] = dev.get("name")
        info["gpu_compute_capability"] = dev.get("compute_capability")
    return info


def __getattr__(name):
    # `import pyfastnn as tf; tf.keras.Sequential(...)` works without importing keras eagerly
    if name in ("keras", "distributed"):
        import importlib
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'pyfastnn' has no attribute '{name}'")
