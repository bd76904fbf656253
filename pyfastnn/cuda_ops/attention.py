"""CUDA attention (csrc/cuda/attention/): argument checks and launches for CuPy arrays.

``attention`` / ``attention_backward`` are what ``pyfastnn.ops`` calls for CuPy
arrays; they take float32 or float16 arrays and return the same structure as
the CPU op, with one difference: ``lse`` is always float32 (for float16 inputs
too, as FlashAttention keeps it).

bfloat16: CuPy has no bfloat16 dtype, so ``attention_bf16`` /
``attention_backward_bf16`` take and return uint16 arrays holding bfloat16 bit
patterns (``to_bf16_bits`` / ``from_bf16_bits`` convert from/to float32; a
PyTorch bf16 tensor viewed as ``torch.uint16`` and passed through DLPack is the
same thing).

Masks: bool (True = keep) or additive float32 (float16 also for float16
inputs); they are read in place through broadcast strides, never expanded to
(B, H, Nq, Nk).

``impl`` (tests and benchmarks): 'auto' = tensor cores for float16/bfloat16
with D in {64, 128}, else fp32 FMA tiles for D <= 128 (where the device's
shared memory holds them: D > 64 needs more than sm_86/sm_89 have), else the
reference kernel (any D); 'mma', 'simt' and 'reference' force one (ValueError if it
cannot take the dtype/D).
"""
from __future__ import annotations

import math

import numpy as np

from . import check_dtype, contiguous, cupy, device_array, module, stream_ptr

__all__ = ["attention", "attention_backward", "attention_bf16", "attention_backward_bf16", "to_bf16_bits",
           "from_bf16_bits", "IMPLS"]

IMPLS = {"auto": 0, "reference": 1, "simt": 2, "mma": 3}
_F32, _F16, _BF16 = 0, 1, 2
_MASK_NONE, _MASK_BOOL, _MASK_ADD = 0, 1, 2


# ------------------------------------------------------------------ checks
def _impl_code(op, impl, dtype_code, D, backward):
    if impl not in IMPLS:
        raise ValueError(f"{op}: argument 'impl' must be one of {', '.join(map(repr, IMPLS))}, got {impl!r}")
    code = IMPLS[impl]
    if not module(op).attention_impl_supports(code, dtype_code, D, backward):
        dtype_name = ("float32", "float16", "bfloat16")[dtype_code]
        raise ValueError(f"{op}: impl {impl!r} does not support {dtype_name} with head size D={D} "
                         "('mma': float16/bfloat16 with D in (64, 128); 'simt': 1 <= D <= 128)")
    return code


def _require_cupy(op, name, x):
    # Also on the current device: the kernels launch there and would read
    # another GPU's pointer as their own.
    device_array(op, name, x)


def _launchable(x):
    """C-contiguous and 16-byte aligned: the tensor-core kernels read rows with
    16-byte cp.async, which faults on a view that starts mid-vector (e.g. a
    reshaped ``flat[1:]``); such a view is copied into a fresh allocation."""
    x = contiguous(x)
    return x.copy() if x.data.ptr % 16 else x


def _scale(op, scale, D):
    if scale is None:
        return 1.0 / math.sqrt(D) if D else 1.0
    if isinstance(scale, (str, bytes)):
        raise TypeError(f"{op}: argument 'scale' must be a real number, got {type(scale).__name__} {scale!r}")
    try:
        value = float(scale)
    except (TypeError, ValueError):
        raise TypeError(f"{op}: argument 'scale' must be a real number, got {type(scale).__name__} {scale!r}") from None
    # The CPU op's rule (csrc/ops/attention.cpp): a positive finite number.
    if not (value > 0) or not math.isfinite(value):
        raise ValueError(f"{op}: argument 'scale' must be a positive number, got {value}")
    return value


def _check_qkv(op, q, k, v, allowed):
    """(B, H, Nq, Nk, D) after the dtype and shape checks of the CPU op."""
    for name, x in (("q", q), ("k", k), ("v", v)):
        _require_cupy(op, name, x)
    check_dtype(op, "q", q, allowed)
    for name, x in (("k", k), ("v", v)):
        if x.dtype != q.dtype:
            raise TypeError(f"{op}: argument '{name}' must have dtype {q.dtype} like 'q', got {x.dtype}")
    for name, x in (("q", q), ("k", k), ("v", v)):
        if x.ndim != 4:
            raise ValueError(f"{op}: argument '{name}' must be 4-D (B, H, N, D), got shape {tuple(x.shape)}")
    B, H, Nq, D = q.shape
    Nk = k.shape[2]
    if k.shape[0] != B or k.shape[1] != H or k.shape[3] != D:
        raise ValueError(f"{op}: argument 'k' must have shape ({B}, {H}, Nk, {D}) to match 'q' {tuple(q.shape)}, "
                         f"got {tuple(k.shape)}")
    if v.shape != k.shape:
        raise ValueError(f"{op}: argument 'v' must have the shape of 'k' {tuple(k.shape)}, got {tuple(v.shape)}")
    return B, H, Nq, Nk, D


def _mask_args(op, mask, additive_dtypes, target):
    """(array kept alive for the launch, kind, element strides) for the kernels."""
    if mask is None:
        return None, _MASK_NONE, (0, 0, 0, 0)
    cp = cupy()
    _require_cupy(op, "mask", mask)
    if mask.dtype == cp.bool_:
        kind = _MASK_BOOL  # one byte, 0/1: read as uint8
    elif mask.dtype in additive_dtypes:
        kind = _MASK_ADD
        mask = mask.astype(cp.float32, copy=False)  # before broadcasting: converts the small array only
    else:
        names = " or ".join(str(cp.dtype(d)) for d in additive_dtypes)
        raise TypeError(f"{op}: argument 'mask' must be bool (True = keep) or {names} (additive), got {mask.dtype}")
    if mask.data.ptr % mask.itemsize:  # a view into a byte buffer: misaligned float reads fault
        mask = mask.copy()  # before broadcasting, while it is small
    try:
        mask = cp.broadcast_to(mask, target)
    except ValueError:
        raise ValueError(f"{op}: argument 'mask' of shape {tuple(mask.shape)} does not broadcast to "
                         f"(B, H, Nq, Nk) = {target}") from None
    if any(s % mask.itemsize for s in mask.strides):
        mask = cp.ascontiguousarray(mask)
    return mask, kind, tuple(s // mask.itemsize for s in mask.strides)


def _additive_dtypes(dtype_code):
    cp = cupy()
    return (cp.float32, cp.float16) if dtype_code == _F16 else (cp.float32,)


def _dtype_code(op, q):
    cp = cupy()
    check_dtype(op, "q", q, (cp.float32, cp.float16))
    return _F32 if q.dtype == cp.float32 else _F16


# ------------------------------------------------------------------ launches
def _forward(op, q, k, v, causal, mask, scale, dtype_code, impl):
    cp = cupy()
    B, H, Nq, Nk, D = _check_qkv(op, q, k, v, (q.dtype,))
    scale = _scale(op, scale, D)
    mask, kind, ms = _mask_args(op, mask, _additive_dtypes(dtype_code), (B, H, Nq, Nk))
    code = _impl_code(op, impl, dtype_code, D, False)
    out = cp.empty((B, H, Nq, D), q.dtype)
    lse = cp.empty((B, H, Nq), cp.float32)
    if B * H * Nq == 0:
        return out, lse
    if Nk == 0:  # no keys: every row is fully masked
        out.fill(0)
        lse.fill(-np.inf)
        return out, lse
    q, k, v = _launchable(q), _launchable(k), _launchable(v)
    module(op).attention_forward(q.data.ptr, k.data.ptr, v.data.ptr, out.data.ptr, lse.data.ptr, B, H, Nq, Nk, D,
                                 scale, bool(causal), 0 if mask is None else mask.data.ptr, kind, *ms,
                                 dtype_code, code, stream_ptr())
    return out, lse


def _backward(op, grad_out, q, k, v, out, lse, causal, mask, scale, dtype_code, impl):
    cp = cupy()
    B, H, Nq, Nk, D = _check_qkv(op, q, k, v, (q.dtype,))
    for name, x in (("grad_out", grad_out), ("out", out), ("lse", lse)):
        _require_cupy(op, name, x)
    for name, x in (("grad_out", grad_out), ("out", out)):
        if x.dtype != q.dtype:
            raise TypeError(f"{op}: argument '{name}' must have dtype {q.dtype} like 'q', got {x.dtype}")
        if x.shape != q.shape:
            raise ValueError(f"{op}: argument '{name}' must have the shape of 'q' {tuple(q.shape)}, "
                             f"got {tuple(x.shape)}")
    if lse.dtype != cp.float32:  # a dtype error is a TypeError, as everywhere else
        raise TypeError(f"{op}: argument 'lse' must be the float32 log-sum-exp returned by attention, "
                        f"got dtype {lse.dtype}")
    if lse.shape != (B, H, Nq):
        raise ValueError(f"{op}: argument 'lse' must have shape (B, H, Nq) = {(B, H, Nq)} like the log-sum-exp "
                         f"returned by attention, got {tuple(lse.shape)}")
    scale = _scale(op, scale, D)
    mask, kind, ms = _mask_args(op, mask, _additive_dtypes(dtype_code), (B, H, Nq, Nk))
    code = _impl_code(op, impl, dtype_code, D, True)
    if B * H * Nq == 0 or Nk == 0 or D == 0:  # nothing flows back (or nothing to hold it)
        return cp.zeros(q.shape, q.dtype), cp.zeros(k.shape, k.dtype), cp.zeros(v.shape, v.dtype)
    grad_q = cp.empty(q.shape, q.dtype)
    grad_k = cp.empty(k.shape, k.dtype)
    grad_v = cp.empty(v.shape, v.dtype)
    delta = cp.empty((B, H, Nq), cp.float32)
    grad_out, q, k, v, out, lse = (_launchable(x) for x in (grad_out, q, k, v, out, lse))
    module(op).attention_backward(grad_out.data.ptr, q.data.ptr, k.data.ptr, v.data.ptr, out.data.ptr, lse.data.ptr,
                                  delta.data.ptr, grad_q.data.ptr, grad_k.data.ptr, grad_v.data.ptr, B, H, Nq, Nk, D,
                                  scale, bool(causal), 0 if mask is None else mask.data.ptr, kind, *ms,
                                  dtype_code, code, stream_ptr())
    return grad_q, grad_k, grad_v


# ------------------------------------------------------------------ public
def attention(q, k, v, *, causal=False, mask=None, scale=None, impl="auto"):
    """``ops.attention`` for CuPy float32/float16 arrays -> ``(out, lse)``, lse float32."""
    _require_cupy("attention", "q", q)
    return _forward("attention", q, k, v, causal, mask, scale, _dtype_code("attention", q), impl)


def attention_backward(grad_out, q, k, v, out, lse, *, causal=False, mask=None, scale=None, impl="auto"):
    """``ops.attention_backward`` for CuPy float32/float16 arrays -> ``(grad_q, grad_k, grad_v)``."""
    op = "attention_backward"
    _require_cupy(op, "q", q)
    return _backward(op, grad_out, q, k, v, out, lse, causal, mask, scale, _dtype_code(op, q), impl)


def attention_bf16(q, k, v, *, causal=False, mask=None, scale=None, impl="auto"):
    """Attention on bfloat16 bit patterns: q, k, v uint16 CuPy arrays -> ``(out uint16, lse float32)``.
    mask: bool or additive float32."""
    op = "attention_bf16"
    _require_cupy(op, "q", q)
    check_dtype(op, "q", q, (cupy().uint16,))
    return _forward(op, q, k, v, causal, mask, scale, _BF16, impl)


def attention_backward_bf16(grad_out, q, k, v, out, lse, *, causal=False, mask=None, scale=None, impl="auto"):
    """Backward of ``attention_bf16``: uint16 (bfloat16 bits) arrays, lse float32 ->
    ``(grad_q, grad_k, grad_v)`` as uint16 bfloat16 bits."""
    op = "attention_backward_bf16"
    _require_cupy(op, "q", q)
    check_dtype(op, "q", q, (cupy().uint16,))
    return _backward(op, grad_out, q, k, v, out, lse, causal, mask, scale, _BF16, impl)


def _xp(x):
    return np if isinstance(x, np.ndarray) else cupy()


def to_bf16_bits(x):
    """float32 (numpy or CuPy) -> uint16 bfloat16 bit patterns, rounded to nearest even."""
    xp = _xp(x)
    u = xp.ascontiguousarray(x, dtype=xp.float32).view(xp.uint32)
    rounded = (u + xp.uint32(0x7FFF) + ((u >> 16) & xp.uint32(1))) >> 16
    is_nan = (u & xp.uint32(0x7FFFFFFF)) > xp.uint32(0x7F800000)
    return xp.where(is_nan, (u >> 16) | xp.uint32(0x40), rounded).astype(xp.uint16)


def from_bf16_bits(bits):
    """uint16 bfloat16 bit patterns (numpy or CuPy) -> float32."""
    xp = _xp(bits)
    return (xp.ascontiguousarray(bits).astype(xp.uint32) << 16).view(xp.float32)
