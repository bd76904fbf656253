"""pyfastnn: a small, fast neural-network library.

Hot paths are hand-written C++ (SIMD per ISA level, the library's own thread pool) and CUDA kernels; this
package is the thin Python layer over them, with PyTorch's surface: code written as
``import torch; from torch import nn; import torch.nn.functional as F`` runs with the import changed to
``import pyfastnn as torch``.
"""
from __future__ import annotations

import builtins as _builtins
import importlib as _importlib

import numpy as _np

from . import _backend, _device, ops
from ._backend import _core, get_num_threads, set_num_threads
from ._device import (bfloat16, complex64, complex128, device, dtype, finfo, float16, float32, float64, iinfo,
                      int8, int16, int32, int64, uint8)
from ._device import bool_ as bool  # noqa: A001  (torch.bool)
from ._random import Generator, get_rng_state, initial_seed, manual_seed, seed, set_rng_state
from .autograd import (enable_grad, inference_mode, is_grad_enabled, is_inference_mode_enabled, no_grad,
                       set_grad_enabled)
from .tensor import (FUNCTIONS as _FUNCTIONS, Size, Tensor, arange, as_tensor, asarray, bernoulli, block_diag,
                     broadcast_shapes, broadcast_tensors, cat, cdist, clamp, concat, concatenate, dstack, einsum,
                     empty, empty_like, exp, eye, from_numpy, full, full_like, gelu, hstack, is_tensor, linspace,
                     log, log_softmax, logspace, matmul, maximum, meshgrid, minimum, multinomial, normal, ones,
                     ones_like, poisson, rand, rand_like, randint, randint_like, randn, randn_like, randperm, relu,
                     searchsorted, bucketize,
                     sigmoid, softmax, sort, sqrt, stack, tanh, tensor, topk, tril_indices, triu_indices, vstack,
                     where, zeros, zeros_like)
from . import autograd, amp, backends, cuda, linalg  # noqa: E402
from . import nn, optim, metrics, utils  # noqa: E402  (they build on Tensor)
from . import training, callbacks  # noqa: E402  (the trainer: Module.fit & co. and Keras)
from .hub import load, save  # noqa: E402  (safe by default: nothing from a file runs)

globals().update(_FUNCTIONS)     # torch.sum(x, 1), torch.flatten(x, 1), ... : the methods' function forms

__version__ = "0.1.0"

# torch's other names for its dtypes
float = float32  # noqa: A001
double = float64
half = float16
long = int64
int = int32  # noqa: A001
short = int16
cfloat = complex64
cdouble = complex128
autocast = amp.autocast
strided = "strided"
contiguous_format = preserve_format = channels_last = None

__all__ = ["ops", "nn", "optim", "metrics", "callbacks", "training", "linalg", "autograd", "amp", "backends", "cuda", "utils", "Tensor",
           "Size", "dtype", "device", "tensor", "as_tensor", "asarray", "from_numpy", "from_dlpack", "is_tensor",
           "zeros", "ones", "empty", "full", "zeros_like", "ones_like", "empty_like", "full_like", "eye", "arange",
           "linspace", "logspace", "rand", "randn", "randint", "randperm", "rand_like", "randn_like",
           "randint_like", "multinomial", "normal", "bernoulli", "poisson", "cat", "concat", "concatenate",
           "stack", "hstack", "vstack", "dstack", "where", "matmul", "einsum", "maximum", "minimum", "clamp",
           "topk", "sort", "relu", "gelu", "sigmoid", "tanh", "softmax", "log_softmax", "exp", "log", "sqrt",
           "searchsorted", "bucketize", "meshgrid", "broadcast_tensors", "broadcast_shapes", "tril_indices", "triu_indices", "block_diag",
           "cdist", "no_grad", "enable_grad", "inference_mode", "set_grad_enabled", "is_grad_enabled",
           "is_inference_mode_enabled", "save", "load", "backend_info", "manual_seed", "seed", "initial_seed",
           "Generator", "get_rng_state", "set_rng_state", "set_num_threads", "get_num_threads",
           "use_deterministic", "is_deterministic", "use_deterministic_algorithms",
           "are_deterministic_algorithms_enabled", "get_default_dtype", "set_default_dtype", "set_printoptions",
           "compile", "finfo", "iinfo", "float32", "float64", "float16", "bfloat16", "int64", "int32", "int16",
           "int8", "uint8", "bool", "complex64", "complex128", "float", "double", "half", "long", "int", "short",
           "cfloat", "cdouble", "autocast", "__version__", *_FUNCTIONS]


def from_dlpack(ext_tensor):
    """A Tensor sharing the memory of any object exporting __dlpack__ (torch, JAX, CuPy, numpy)."""
    return as_tensor(ext_tensor)


def use_deterministic(mode=True) -> None:
    """Makes the CUDA backward kernels that would add with atomics use a fixed order instead (bit-identical
    runs, slower). The CPU kernels are deterministic whatever the thread count regardless."""
    if not isinstance(mode, (_builtins.bool, _builtins.int)):
        raise TypeError(f"use_deterministic: argument 'mode' must be a bool, got {type(mode).__name__}")
    _backend.deterministic = _builtins.bool(mode)


def use_deterministic_algorithms(mode, *, warn_only=False) -> None:
    """torch's name for use_deterministic."""
    use_deterministic(mode)


def is_deterministic() -> _builtins.bool:
    """Whether use_deterministic(True) is in effect."""
    return _backend.deterministic


are_deterministic_algorithms_enabled = is_deterministic


def get_default_dtype():
    """The dtype Python floats become: float32."""
    return _device.DEFAULT_FLOAT


def set_default_dtype(d) -> None:
    """Only float32 (pyfastnn's default and its kernels' main dtype) can be the default."""
    if _device.as_dtype(d, "set_default_dtype") != float32:
        raise NotImplementedError(f"set_default_dtype: pyfastnn's default dtype is float32; make float64 tensors "
                                  f"explicitly (dtype=pyfastnn.float64 or .double()), got {d}")


def set_printoptions(precision=None, threshold=None, edgeitems=None, linewidth=None, profile=None,
                     sci_mode=None) -> None:
    """How tensors print (numpy's print options underneath)."""
    opts = {k: v for k, v in dict(precision=precision, threshold=threshold, edgeitems=edgeitems,
                                  linewidth=linewidth).items() if v is not None}
    if sci_mode is not None:
        opts["suppress"] = not sci_mode
    _np.set_printoptions(**opts)


def compile(model=None, *, fullgraph=False, dynamic=None, backend="inductor", mode=None, options=None,
            disable=False):
    """torch.compile: pyfastnn's kernels are compiled ahead of time and there is no graph compiler, so the
    model (or function) comes back as it is and runs eagerly with the same results."""
    if model is None:
        return lambda m: m
    return model


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
    # `import pyfastnn as tf; tf.keras.Sequential(...)` works without importing keras (or MPI) eagerly
    if name in ("keras", "distributed", "models", "hub"):
        return _importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'pyfastnn' has no attribute '{name}'")
