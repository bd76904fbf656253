"""CUDA matmul for CuPy arrays: float32 runs the tiled SGEMM (CUDA cores),
float16 and bfloat16 the tensor-core GEMM (fp32 accumulation, one rounding
of the result to the input dtype). Bias and activation are fused into the
kernels' epilogue.

bfloat16: CuPy has no bfloat16 dtype, so :func:`matmul_bf16` takes and
returns ``uint16`` arrays that hold bfloat16 bit patterns (the upper 16 bits
of the float32 encoding, as ``torch_tensor.view(torch.uint16)`` or
``ml_dtypes.bfloat16`` store them). :func:`bf16_from_float32` and
:func:`bf16_to_float32` convert.

Layouts: an operand is read in place when its last axis or its second-to-last
axis has unit stride (a column-major operand is read as the transpose of a
row-major one); anything else is copied first. The tensor-core kernel also
needs 16-byte aligned rows; an operand without them is copied into a padded
buffer.
"""
from __future__ import annotations

import os

from . import cupy, module, stream_ptr
from . import device_array as _require_device_array

__all__ = ["matmul", "matmul_bf16", "matmul_reference", "matmul_reference_bf16", "bf16_from_float32",
           "bf16_to_float32"]

_ACT_CODES = {None: 0, "relu": 1, "gelu": 2, "sigmoid": 3, "tanh": 4, "gelu_tanh": 5, "silu": 6}  # common/activation.h
# SGEMM configurations (csrc/cuda/gemm/sgemm.cu): "k8x2" (k tile 8, two blocks
# per SM; the default) and "k16x1" (k tile 16, one block per SM, unrolled).
# PYFASTNN_SGEMM_VARIANT picks one for the whole process.
SGEMM_VARIANTS = {"default": 0, "k8x2": 1, "k16x1": 2}
_MAX_DIM = 2**31 - 1024  # the kernels index rows, columns and k with 32-bit ints
_TC_ALIGN = 8  # elements per 16-byte cp.async chunk of the tensor-core kernel


def matmul(a, b, bias=None, activation=None, trans_a=False, trans_b=False, *, _variant=None):
    """``act(op(a) @ op(b) + bias)`` on the GPU, the CUDA branch of ``pyfastnn.ops.matmul``.

    a: (M, K) or (B, M, K) — (K, M) / (B, K, M) with ``trans_a``; b: (K, N) or
    (B, K, N) — (N, K) / (B, N, K) with ``trans_b``; a batch of 1 (or a 2-D
    operand) broadcasts. float32 (SGEMM) or float16 (tensor cores, fp32
    accumulation); bias: (N,) of the same dtype (float16 inputs also take a
    float32 bias). Returns a new CuPy array (M, N) or (B, M, N) in the input dtype.
    ``_variant`` (tests, benchmarks): an SGEMM_VARIANTS name for float32.
    """
    cp = cupy()
    _check_pair("matmul", a, b, (cp.float32, cp.float16), _dtype_hint)
    kind = "f32" if a.dtype == cp.float32 else "f16"
    return _gemm("matmul", kind, a, b, bias, activation, trans_a, trans_b, reference=False, variant=_variant)


def matmul_bf16(a, b, bias=None, activation=None, trans_a=False, trans_b=False):
    """bfloat16 ``matmul`` on the tensor cores; a, b: uint16 CuPy arrays of bf16 bits.

    bias: (N,) float32, or uint16 bf16 bits, or None. Returns uint16 bf16 bits
    (fp32 accumulation, bias and activation in fp32, rounded to nearest even once).
    """
    cp = cupy()
    _check_pair("matmul_bf16", a, b, (cp.uint16,), _bf16_hint)
    return _gemm("matmul_bf16", "bf16", a, b, bias, activation, trans_a, trans_b, reference=False)


def matmul_reference(a, b, bias=None, activation=None, trans_a=False, trans_b=False):
    """``matmul`` through the plain one-thread-per-output kernel (float32 or float16): for tests."""
    cp = cupy()
    _check_pair("matmul", a, b, (cp.float32, cp.float16), _dtype_hint)
    kind = "f32" if a.dtype == cp.float32 else "f16"
    return _gemm("matmul", kind, a, b, bias, activation, trans_a, trans_b, reference=True)


def matmul_reference_bf16(a, b, bias=None, activation=None, trans_a=False, trans_b=False):
    """``matmul_bf16`` through the plain one-thread-per-output kernel: for tests."""
    cp = cupy()
    _check_pair("matmul_bf16", a, b, (cp.uint16,), _bf16_hint)
    return _gemm("matmul_bf16", "bf16", a, b, bias, activation, trans_a, trans_b, reference=True)


def bf16_from_float32(x):
    """uint16 bfloat16 bits of a float32 CuPy array, rounded to nearest even (NaN stays NaN)."""
    cp = cupy()
    x = cp.ascontiguousarray(x, dtype=cp.float32)
    u = x.view(cp.uint32)
    rounded = (u + cp.uint32(0x7FFF) + ((u >> cp.uint32(16)) & cp.uint32(1))) >> cp.uint32(16)
    return cp.where(cp.isnan(x), cp.uint32(0x7FC0), rounded).astype(cp.uint16)


def bf16_to_float32(bits):
    """float32 values of a uint16 CuPy array of bfloat16 bits (exact)."""
    cp = cupy()
    return (cp.asarray(bits).astype(cp.uint32) << cp.uint32(16)).view(cp.float32)


# --------------------------------------------------------------------- checks
def _dtype_hint(dtype) -> str:
    if dtype.name == "float64":
        return ("the CUDA kernels take float32 or float16 (bfloat16 through "
                "pyfastnn.cuda_ops.gemm.matmul_bf16); float64 runs on the CPU path only")
    return "the CUDA kernels take float32 or float16"


def _bf16_hint(dtype) -> str:
    return "expected uint16 holding bfloat16 bits (see pyfastnn.cuda_ops.gemm.bf16_from_float32)"




def _check_pair(op, a, b, allowed, hint):
    """The CPU matmul's checks, in its order: arrays, dtypes, same dtype, dims."""
    _require_device_array(op, "a", a)
    _require_device_array(op, "b", b)
    for name, x in (("a", a), ("b", b)):
        if x.dtype not in allowed:
            raise TypeError(f"{op}: argument '{name}' has dtype {x.dtype}; {hint(x.dtype)}")
    if a.dtype != b.dtype:
        raise TypeError(f"{op}: arguments 'a' and 'b' must have the same dtype, got {a.dtype} and {b.dtype}")
    for name, x in (("a", a), ("b", b)):
        if x.ndim not in (2, 3):
            raise ValueError(f"{op}: argument '{name}' must be 2-D to 3-D, got shape {tuple(x.shape)}")


def _activation_code(op, activation) -> int:
    if activation is not None and not isinstance(activation, str):
        raise TypeError(f"{op}: argument 'activation' must be None or a string, got {type(activation).__name__}")
    if activation not in _ACT_CODES:
        raise ValueError(f"{op}: argument 'activation' must be one of None, 'relu', 'gelu', 'sigmoid', 'tanh', "
                         f"'gelu_tanh', 'silu', "
                         f"got '{activation}'")
    return _ACT_CODES[activation]


def _bias_f32(op, kind, bias, a, n):
    """The bias as a contiguous float32 device array (the epilogue adds in fp32), or None."""
    if bias is None:
        return None
    cp = cupy()
    _require_device_array(op, "bias", bias)
    allowed = {"f32": (cp.float32,), "f16": (cp.float16, cp.float32), "bf16": (cp.uint16, cp.float32)}[kind]
    if bias.dtype not in allowed:
        like = "float32" if kind == "f32" else " or ".join(str(cp.dtype(d)) for d in allowed)
        raise TypeError(f"{op}: argument 'bias' must have dtype {like} like 'a', got {bias.dtype}")
    if bias.ndim != 1 or bias.shape[0] != n:
        raise ValueError(f"{op}: argument 'bias' must have shape ({n},), got {tuple(bias.shape)}")
    if bias.dtype == cp.uint16:
        return bf16_to_float32(cp.ascontiguousarray(bias))
    return cp.ascontiguousarray(bias, dtype=cp.float32)


# --------------------------------------------------------------------- layout
def _stored(x, trans, align):
    """How the kernel reads ``x``: (array, row stride, batch stride, trans flag), strides in elements.

    A row-major view is read as it is; a column-major one is read as the
    transposed row-major matrix (the flag flips). ``align`` > 1 (tensor-core
    kernel): the first element and both strides must also be multiples of
    ``align`` elements / 16 bytes, else the operand is copied into a buffer
    whose rows are padded to a multiple of ``align``.
    """
    cp = cupy()
    item = x.itemsize
    rows, cols = x.shape[-2], x.shape[-1]
    batched = x.ndim == 3 and x.shape[0] > 1
    if x.size and all(s % item == 0 for s in x.strides):
        strides = [s // item for s in x.strides]
        batch_stride = strides[0] if batched else 0
        row_stride, col_stride = strides[-2], strides[-1]
        # A unit dimension's stride is never used: pick one that makes the view regular.
        if cols == 1:
            col_stride = 1
        if rows == 1:
            row_stride = 0 if col_stride == 1 else 1
        layout = None
        if batch_stride >= 0:
            if col_stride == 1 and row_stride >= 0:
                layout = (row_stride, batch_stride, trans)
            elif row_stride == 1 and col_stride >= 0:
                layout = (col_stride, batch_stride, not trans)
        if layout is not None and (align == 1 or (x.data.ptr % 16 == 0 and layout[0] % align == 0
                                                   and layout[1] % align == 0)):
            return (x,) + layout
    if align == 1:
        x = cp.ascontiguousarray(x)
        return x, cols, rows * cols if batched else 0, trans
    padded = -(-cols // align) * align
    buf = cp.empty(x.shape[:-1] + (padded,), x.dtype)
    buf[..., :cols] = x
    return buf, padded, rows * padded if batched else 0, trans


def _sgemm_variant(op, name):
    name = os.environ.get("PYFASTNN_SGEMM_VARIANT", "default") if name is None else name
    if name not in SGEMM_VARIANTS:
        raise ValueError(f"{op}: unknown SGEMM variant {name!r} (PYFASTNN_SGEMM_VARIANT); "
                         f"choose from {', '.join(SGEMM_VARIANTS)}")
    return SGEMM_VARIANTS[name]


def _gemm(op, kind, a, b, bias, activation, trans_a, trans_b, reference, variant=None):
    cp = cupy()
    act = _activation_code(op, activation)
    variant = _sgemm_variant(op, variant) if kind == "f32" and not reference else 0
    trans_a, trans_b = bool(trans_a), bool(trans_b)
    a_rows, a_cols = a.shape[-2:]
    b_rows, b_cols = b.shape[-2:]
    m, k = (a_cols, a_rows) if trans_a else (a_rows, a_cols)
    k_b, n = (b_cols, b_rows) if trans_b else (b_rows, b_cols)
    if k != k_b:
        raise ValueError(f"{op}: inner dimensions differ: 'a' has shape {tuple(a.shape)}"
                         f"{' (transposed)' if trans_a else ''} giving K={k}, 'b' has shape {tuple(b.shape)}"
                         f"{' (transposed)' if trans_b else ''} giving K={k_b}")
    batch_a = a.shape[0] if a.ndim == 3 else 1
    batch_b = b.shape[0] if b.ndim == 3 else 1
    if batch_a != batch_b and batch_a != 1 and batch_b != 1:
        raise ValueError(f"{op}: batch sizes differ: 'a' has shape {tuple(a.shape)}, 'b' has shape {tuple(b.shape)}")
    batch = max(batch_a, batch_b) if batch_a and batch_b else 0
    bias32 = _bias_f32(op, kind, bias, a, n)

    out_shape = (batch, m, n) if (a.ndim == 3 or b.ndim == 3) else (m, n)
    numel = batch * m * n
    nbytes = numel * a.itemsize
    if nbytes >= 2**62:
        raise MemoryError(f"{op}: the output of shape {out_shape} would need {nbytes} bytes")
    try:
        out = cp.empty(out_shape, a.dtype)
    except cp.cuda.memory.OutOfMemoryError as exc:
        raise MemoryError(f"{op}: cannot allocate the output of shape {out_shape} ({nbytes} bytes) on the GPU: "
                          f"{exc}") from exc
    if numel == 0:
        return out
    if max(m, n, k, batch) > _MAX_DIM:
        raise ValueError(f"{op}: the CUDA kernels take sizes up to {_MAX_DIM}, got M={m}, N={n}, K={k}, "
                         f"batch={batch}")

    align = _TC_ALIGN if (kind != "f32" and not reference) else 1
    a_arr, lda, stride_a, trans_a = _stored(a, trans_a, align)
    b_arr, ldb, stride_b, trans_b = _stored(b, trans_b, align)
    launch = getattr(module(op), f"gemm_{'reference_' if reference else ''}{kind}")
    launch(a_arr.data.ptr, b_arr.data.ptr, out.data.ptr, 0 if bias32 is None else bias32.data.ptr,
           m, n, k, batch, lda, ldb, n, stride_a, stride_b, m * n if batch > 1 else 0,
           trans_a, trans_b, act, stream_ptr(), variant)
    return out
