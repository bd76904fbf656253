"""CUDA conv2d for CuPy arrays: the CUDA branches of ``pyfastnn.ops.conv2d``
and ``pyfastnn.ops.conv2d_backward``, with the same arguments, the same
results (up to float32 rounding) and the same argument errors as the CPU
kernels.

float32 only (float64 runs on the CPU path). The forward pass and the
gradient of x are implicit GEMMs that gather their input tiles straight from
the NCHW tensors; the gradient of w is an implicit GEMM over all pixels, split
into slices whose partial sums are added in a fixed order (no atomics: the
same inputs give the same bits, run after run, on the same GPU); the gradient
of the bias is a per-channel tree sum. Depthwise convolutions (C/groups == 1)
run direct kernels. See csrc/cuda/conv/.

Private keywords for tests and benchmarks: ``_algo`` ('auto', 'tap',
'generic', 'direct', or 'reference' for the one-thread-per-output kernels),
``_tile`` (a TILES name) and, for the backward pass, ``_splits`` (the number
of pixel slices of the grad-w reduction; 0 chooses).
"""
from __future__ import annotations

import numpy as np

from . import cupy, module, stream_ptr
from . import device_array as _device_array, int_pair as _int_pair

__all__ = ["conv2d", "conv2d_backward", "ALGOS", "TILES"]

# ConvAlgo and ConvTile of csrc/cuda/conv/conv.h; None: the reference kernels.
ALGOS = {"auto": 0, "tap": 1, "generic": 2, "direct": 3, "reference": None}
TILES = {"auto": 0, "128x128": 1, "128x64": 2, "128x32": 3, "64x128": 4, "64x64": 5, "64x32": 6}
_MAX_ELEMS = 2**31 - 1024  # conv.h's kConvMaxElems: the kernels index with 32-bit ints


# --------------------------------------------------------------------- checks


def _float_kind(op, name, x):
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(f"{op}: argument '{name}' has dtype {x.dtype}; expected float32")


def _shape(a) -> str:
    return str(tuple(int(d) for d in a.shape))




def _fits(*dims) -> bool:
    n = 1
    for d in dims:
        n *= d
    return n <= _MAX_ELEMS


def _check_conv(op, x, w, stride, padding, dilation, groups):
    """The CPU's check_conv, in its order: (x, w) contiguous, and the geometry
    [N, C, H, W, K, R, S, SH, SW, PH, PW, DH, DW, groups, P, Q]."""
    cp = cupy()
    _device_array(op, "x", x)
    _device_array(op, "w", w)
    _float_kind(op, "x", x)
    _float_kind(op, "w", w)
    if w.dtype != x.dtype:
        raise TypeError(f"{op}: arguments 'x' and 'w' must have the same dtype, got {x.dtype} and {w.dtype}")
    if x.dtype != np.float32:
        raise TypeError(f"{op}: argument 'x' has dtype {x.dtype}; the CUDA kernels take float32 "
                        f"({x.dtype} runs on the CPU path: pass numpy arrays)")
    if x.ndim != 4:
        raise ValueError(f"{op}: argument 'x' must be 4-D (N, C, H, W), got shape {_shape(x)}")
    if w.ndim != 4:
        raise ValueError(f"{op}: argument 'w' must be 4-D (O, C/groups, kH, kW), got shape {_shape(w)}")
    N, C, H, W = (int(d) for d in x.shape)
    K, R, S = int(w.shape[0]), int(w.shape[2]), int(w.shape[3])
    SH, SW = _int_pair(op, "stride", stride, 1)
    DH, DW = _int_pair(op, "dilation", dilation, 1)
    if isinstance(padding, str):
        if padding == "valid":
            PH = PW = 0
        elif padding == "same":
            if SH != 1 or SW != 1:
                raise ValueError(f"{op}: padding='same' needs stride 1")
            th, tw = DH * (R - 1), DW * (S - 1)
            if th % 2 or tw % 2:
                raise ValueError(f"{op}: padding='same' with an even effective kernel size needs asymmetric "
                                 "padding, which is not supported; pad the input explicitly")
            PH, PW = th // 2, tw // 2
        else:
            raise ValueError(f"{op}: argument 'padding' must be an int, a pair of ints, 'valid' or 'same', "
                             f"got '{padding}'")
    else:
        PH, PW = _int_pair(op, "padding", padding, 0)
    if isinstance(groups, bool) or not isinstance(groups, int):
        raise TypeError(f"{op}: argument 'groups' must be an int, got {groups!r}")
    if groups < 1:
        raise ValueError(f"{op}: argument 'groups' must be >= 1, got {groups}")
    if C % groups:
        raise ValueError(f"{op}: input channels {C} of 'x' {_shape(x)} are not divisible by groups={groups}")
    if K % groups:
        raise ValueError(f"{op}: output channels {K} of 'w' {_shape(w)} are not divisible by groups={groups}")
    if int(w.shape[1]) != C // groups:
        raise ValueError(f"{op}: argument 'w' has shape {_shape(w)}; expected (O, {C // groups}, kH, kW) for {C} "
                         f"input channels and groups={groups}")
    if R == 0 or S == 0:
        raise ValueError(f"{op}: argument 'w' has an empty kernel, shape {_shape(w)}")
    ekh, ekw = DH * (R - 1) + 1, DW * (S - 1) + 1
    if ekh > H + 2 * PH or ekw > W + 2 * PW:
        raise ValueError(f"{op}: kernel ({ekh}x{ekw} with dilation) is larger than the padded input "
                         f"({H + 2 * PH}x{W + 2 * PW}) of 'x' {_shape(x)}")
    P = (H + 2 * PH - ekh) // SH + 1
    Q = (W + 2 * PW - ekw) // SW + 1
    if N * K * P * Q * 4 >= 2**63:
        raise MemoryError(f"{op}: output of shape ({N}, {K}, {P}, {Q}) is too large to allocate")
    Cg, Kg = C // groups, K // groups
    round4 = lambda n: -(-n // 4) * 4  # noqa: E731
    if not (_fits(max(C, 1), H + 2 * PH, W + 2 * PW) and _fits(K, P, Q) and _fits(N, H, W) and _fits(N, P, Q)
            and _fits(K, Cg, R, S) and _fits(groups, R, S, Cg, round4(Kg)) and _fits(groups, R, S, Kg, round4(Cg))):
        raise ValueError(f"{op}: the CUDA kernels index with 32-bit ints and take at most {_MAX_ELEMS} elements per "
                         f"(padded) image, per batch of pixels and per weight tensor; x {_shape(x)} with w "
                         f"{_shape(w)} exceeds that (split the batch)")
    # A stride past the padded input (one output row) or a dilation of a
    # one-tap axis changes nothing, but the kernels hold them in 32-bit ints
    # (conv2d_validate refuses more): pass the smallest equivalent value.
    SH, SW = min(SH, H + 2 * PH - ekh + 1), min(SW, W + 2 * PW - ekw + 1)
    DH, DW = (DH if R > 1 else 1), (DW if S > 1 else 1)
    geometry = [N, C, H, W, K, R, S, SH, SW, PH, PW, DH, DW, groups, P, Q]
    return cp.ascontiguousarray(x), cp.ascontiguousarray(w), geometry


def _check_bias(op, bias, x, K):
    if bias is None:
        return None
    _device_array(op, "bias", bias)
    if bias.dtype != x.dtype:
        raise TypeError(f"{op}: argument 'bias' must have dtype {x.dtype} like 'x', got {bias.dtype}")
    if bias.ndim != 1 or bias.shape[0] != K:
        raise ValueError(f"{op}: argument 'bias' must have shape ({K},), got {_shape(bias)}")
    return cupy().ascontiguousarray(bias)


def _choice(op, name, value, table):
    if value is None:
        value = "auto"
    if value not in table:
        raise ValueError(f"{op}: unknown {name} {value!r}; choose from {', '.join(table)}")
    return table[value]


def _options(op, geometry, algo, tile):
    algo_code = _choice(op, "algorithm", algo, ALGOS)
    tile_code = _choice(op, "tile", tile, TILES)
    C, groups = geometry[1], geometry[13]
    if algo == "direct" and not (C == groups and groups > 1):
        raise ValueError(f"{op}: algorithm 'direct' runs depthwise convolutions only (C/groups == 1, groups > 1); "
                         f"got C={C}, groups={groups}")
    return algo_code, tile_code


def _empty(op, shape):
    cp = cupy()
    try:
        return cp.empty(shape, cp.float32)
    except cp.cuda.memory.OutOfMemoryError as exc:
        raise MemoryError(f"{op}: cannot allocate an array of shape {shape} on the GPU: {exc}") from exc


def _workspace(nbytes):
    return cupy().empty(nbytes, cupy().uint8) if nbytes else None


def _ptr(a):
    return 0 if a is None else a.data.ptr


# -------------------------------------------------------------------- forward
def conv2d(x, w, bias=None, stride=1, padding=0, dilation=1, groups=1, *, _algo="auto", _tile="auto"):
    """``ops.conv2d`` on the GPU: x (N, C, H, W), w (O, C/groups, kH, kW), bias
    (O,) or None, float32 CuPy arrays. Returns y (N, O, OH, OW)."""
    op = "conv2d"
    cuda = module(op)
    x, w, g = _check_conv(op, x, w, stride, padding, dilation, groups)
    bias = _check_bias(op, bias, x, g[4])
    algo, tile = _options(op, g, _algo, _tile)
    N, K, P, Q = g[0], g[4], g[14], g[15]
    y = _empty(op, (N, K, P, Q))
    if y.size == 0:
        return y
    if algo is None:
        cuda.conv2d_forward_reference_f32(_ptr(x), _ptr(w), _ptr(bias), y.data.ptr, g, stream_ptr())
        return y
    nbytes = cuda.conv2d_forward_workspace_bytes(g, algo)
    ws = _workspace(nbytes)
    cuda.conv2d_forward_f32(_ptr(x), _ptr(w), _ptr(bias), y.data.ptr, _ptr(ws), nbytes, g, algo, tile, stream_ptr())
    return y


# ------------------------------------------------------------------- backward
def conv2d_backward(grad_y, x, w, stride=1, padding=0, dilation=1, groups=1, *, need_grad_x=True,
                    need_grad_w=True, _algo="auto", _tile="auto", _splits=0):
    """``ops.conv2d_backward`` on the GPU: ``(grad_x, grad_w, grad_b)``; a
    gradient whose ``need_*`` flag is False is not computed and comes back as None."""
    op = "conv2d_backward"
    cuda = module(op)
    x, w, g = _check_conv(op, x, w, stride, padding, dilation, groups)
    _device_array(op, "grad_y", grad_y)
    if grad_y.dtype != x.dtype:
        raise TypeError(f"{op}: argument 'grad_y' must have dtype {x.dtype} like 'x', got {grad_y.dtype}")
    N, C, H, W, K, R, S = g[:7]
    P, Q = g[14], g[15]
    if tuple(grad_y.shape) != (N, K, P, Q):
        raise ValueError(f"{op}: argument 'grad_y' must have the output's shape ({N}, {K}, {P}, {Q}), "
                         f"got {_shape(grad_y)}")
    algo, tile = _options(op, g, _algo, _tile)
    if isinstance(_splits, bool) or not isinstance(_splits, int) or _splits < 0:
        raise ValueError(f"{op}: _splits must be an int >= 0, got {_splits!r}")
    gy = cupy().ascontiguousarray(grad_y)
    stream = stream_ptr()

    grad_x = None
    if need_grad_x:
        grad_x = _empty(op, (N, C, H, W))
        if grad_x.size:
            if algo is None:
                cuda.conv2d_backward_data_reference_f32(_ptr(gy), _ptr(w), grad_x.data.ptr, g, stream)
            else:
                nbytes = cuda.conv2d_backward_data_workspace_bytes(g, algo)
                ws = _workspace(nbytes)
                cuda.conv2d_backward_data_f32(_ptr(gy), _ptr(w), grad_x.data.ptr, _ptr(ws), nbytes, g, algo, tile,
                                              stream)
    grad_w = None
    if need_grad_w:
        grad_w = _empty(op, (K, C // groups, R, S))
        if grad_w.size:
            if algo is None:
                cuda.conv2d_backward_filter_reference_f32(_ptr(gy), _ptr(x), grad_w.data.ptr, g, stream)
            else:
                nbytes = cuda.conv2d_backward_filter_workspace_bytes(g, algo, tile, _splits)
                ws = _workspace(nbytes)
                cuda.conv2d_backward_filter_f32(_ptr(gy), _ptr(x), grad_w.data.ptr, _ptr(ws), nbytes, g, algo, tile,
                                                _splits, stream)
    grad_b = _empty(op, (K,))
    if K:
        cuda.conv2d_backward_bias_f32(_ptr(gy), grad_b.data.ptr, g, stream)
    return grad_x, grad_w, grad_b
