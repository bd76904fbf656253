"""Functional kernels: arrays in, arrays out.

numpy arrays run the CPU kernels; CuPy arrays run the CUDA kernels on CuPy's
current stream. Anything exporting ``__dlpack__`` (PyTorch, JAX, ...) is taken
without a copy. This is the only module that calls the native extensions.
"""
from __future__ import annotations

import functools
from typing import NamedTuple, Optional

import numpy as np

from . import _backend
from ._backend import _core
from ._random import generator as _generator
from ._random import manual_seed  # re-exported: ops.manual_seed predates the Tensor layer
from ._args import (LSTMCache, _as_array, _axis_last, _device_of, _int64, _is_cupy, _normalized_ndim,
                       _normalized_size, _scalar)
from .cuda_ops import attention as cuda_attention
from .cuda_ops import conv as _cuda_conv
from .cuda_ops import gemm as _cuda_gemm
from .cuda_ops import nn as _cuda_nn

__all__ = ["matmul", "bias_activation", "conv2d", "conv2d_backward", "max_pool2d", "max_pool2d_backward",
           "avg_pool2d", "avg_pool2d_backward", "relu", "gelu", "sigmoid", "tanh", "relu_backward",
           "gelu_backward", "sigmoid_backward", "tanh_backward", "gelu_tanh", "gelu_tanh_backward", "silu",
           "silu_backward", "softmax", "log_softmax", "softmax_backward",
           "log_softmax_backward", "layer_norm", "layer_norm_backward", "cross_entropy",
           "cross_entropy_backward", "dropout", "dropout_backward", "lstm", "lstm_backward", "lstm_cell",
           "LSTMCache", "sgd_step", "adam_step", "rmsprop_step", "attention", "attention_backward",
           "embedding", "embedding_backward", "index_select", "gather", "scatter_add", "adaptive_avg_pool2d",
           "adaptive_avg_pool2d_backward", "adaptive_max_pool2d", "adaptive_max_pool2d_backward", "group_norm",
           "group_norm_backward", "cumsum", "topk", "sort"]

_ACTIVATIONS = (None, "relu", "gelu", "sigmoid", "tanh", "gelu_tanh", "silu")
_ACT_CODES = {None: 0, "relu": 1, "gelu": 2, "sigmoid": 3, "tanh": 4, "gelu_tanh": 5, "silu": 6}  # common/activation.h


def _check_activation(op: str, activation):
    if activation not in _ACTIVATIONS:
        raise ValueError(f"{op}: argument 'activation' must be one of None, 'relu', 'gelu', 'sigmoid', 'tanh', "
                         f"'gelu_tanh', 'silu', got {activation!r}")


def matmul(a, b, bias=None, *, activation=None, trans_a=False, trans_b=False):
    """``act(a @ b + bias)`` with the bias add and activation fused into the GEMM.

    a: (M, K) or (B, M, K) — (K, M) / (B, K, M) with ``trans_a``;
    b: (K, N) or (B, K, N) — (N, K) / (B, N, K) with ``trans_b``;
    bias: (N,) or None; activation: None, 'relu', 'gelu', 'sigmoid', 'tanh', 'gelu_tanh', 'silu'.
    float32 or float64; any strides (transposed and sliced views are read in place).
    """
    a = _as_array("matmul", "a", a)
    b = _as_array("matmul", "b", b)
    bias = _as_array("matmul", "bias", bias)
    if _device_of("matmul", a=a, b=b, bias=bias) == "cuda":
        # CuPy arrays: float32 on the tiled SGEMM, float16 on the tensor cores
        # (bfloat16: pyfastnn.cuda_ops.gemm.matmul_bf16).
        _backend.require_cuda("matmul")
        return _cuda_gemm.matmul(a, b, bias, activation=activation, trans_a=trans_a, trans_b=trans_b)
    return _core.matmul(a, b, bias, activation, bool(trans_a), bool(trans_b))


def bias_activation(x, bias=None, *, activation=None):
    """``act(x + bias)`` for a 2-D float32 array x (rows, cols) and bias (cols,).

    The epilogue of ``matmul`` as a standalone op; on CuPy arrays it runs the
    CUDA kernel on the current stream.
    """
    x = _as_array("bias_activation", "x", x)
    bias = _as_array("bias_activation", "bias", bias)
    _check_activation("bias_activation", activation)
    device = _device_of("bias_activation", x=x, bias=bias)
    if device == "cpu":
        return _core.bias_activation(x, bias, activation)
    cuda = _backend.require_cuda("bias_activation")
    import cupy

    if x.dtype != cupy.float32:
        raise TypeError(f"bias_activation: argument 'x' has dtype {x.dtype}; the CUDA kernel takes float32")
    if x.ndim != 2:
        raise ValueError(f"bias_activation: argument 'x' must be 2-D, got shape {tuple(x.shape)}")
    if bias is not None:
        if bias.dtype != cupy.float32:
            raise TypeError(f"bias_activation: argument 'bias' has dtype {bias.dtype}; expected float32")
        if bias.shape != (x.shape[1],):
            raise ValueError(f"bias_activation: argument 'bias' must have shape ({x.shape[1]},), got {tuple(bias.shape)}")
        bias = cupy.ascontiguousarray(bias)
    x = cupy.ascontiguousarray(x)
    y = cupy.empty_like(x)
    stream = cupy.cuda.get_current_stream().ptr
    cuda.bias_act_f32(x.data.ptr, 0 if bias is None else bias.data.ptr, y.data.ptr,
                      x.shape[0], x.shape[1], _ACT_CODES[activation], stream)
    return y


def _cpu_only(op: str, **arrays):
    """Converts DLPack inputs and rejects CuPy ones for ops that have no CUDA kernel yet."""
    if all(v is None or type(v) is np.ndarray for v in arrays.values()):
        return arrays  # the common case, kept cheap: small ops are mostly this call's overhead
    out = {k: _as_array(op, k, v) for k, v in arrays.items()}
    if _device_of(op, **out) == "cuda":
        _backend.require_cuda(op)
        raise NotImplementedError(f"{op}: the CUDA kernel is not implemented yet; pass numpy arrays")
    return out


# ----------------------------------------------------------------- images
_FILL_MODES = ("constant", "nearest", "reflect", "wrap")
__all__ += ["affine_warp"]


def affine_warp(x, matrix, *, output_size=None, order=1, fill_mode="nearest", cval=0.0, flip_cols=None,
                flip_rows=None):
    """Resamples channels-last images through affine maps, as ``scipy.ndimage.affine_transform`` does for each
    channel (the same values to the last bit of the output type).

    x: (H, W, C) or (N, H, W, C), float32 or float64. matrix: float64 (2, 3), or (N, 2, 3) one per image;
    output pixel (r, c) reads the input at ``matrix[:, :2] @ (r, c) + matrix[:, 2]`` (row, column order).
    output_size: (OH, OW), default (H, W). order: 0 (nearest sample) or 1 (bilinear). fill_mode: scipy's
    'constant' (cval outside the image), 'nearest', 'reflect' or 'wrap'. flip_cols / flip_rows: optional bool
    arrays (N,) that mirror each output image left-right / upside-down after the warp. Images are split over
    the thread pool by rows, without the GIL."""
    op = "affine_warp"
    a = _cpu_only(op, x=x, matrix=matrix)
    if fill_mode not in _FILL_MODES:
        raise ValueError(f"{op}: argument 'fill_mode' must be one of {', '.join(map(repr, _FILL_MODES))}, "
                         f"got {fill_mode!r}")
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or order not in (0, 1):
        raise ValueError(f"{op}: argument 'order' must be 0 (nearest) or 1 (bilinear), got {order!r}")
    m = a["matrix"]
    if isinstance(m, np.ndarray) and m.dtype != np.float64 and m.dtype.kind in "fiu":
        m = m.astype(np.float64)
    return _core.affine_warp(a["x"], m, output_size, int(order), fill_mode, _scalar(op, "cval", cval),
                             flip_cols, flip_rows)


def conv2d(x, w, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution like ``torch.nn.functional.conv2d``.

    x: (N, C, H, W); w: (O, C/groups, kH, kW); bias: (O,) or None; stride,
    padding, dilation: int or pair (padding also 'valid' or 'same');
    float32 or float64. Returns (N, O, OH, OW).
    """
    a = {k: _as_array("conv2d", k, v) for k, v in (("x", x), ("w", w), ("bias", bias))}
    if _device_of("conv2d", **a) == "cuda":
        _backend.require_cuda("conv2d")
        return _cuda_conv.conv2d(a["x"], a["w"], a["bias"], stride, padding, dilation, groups)
    return _core.conv2d(a["x"], a["w"], a["bias"], stride, padding, dilation, groups)


def conv2d_backward(grad_y, x, w, stride=1, padding=0, dilation=1, groups=1, *, need_grad_x=True,
                    need_grad_w=True):
    """Gradients of ``conv2d`` with respect to x, w and bias: ``(grad_x, grad_w, grad_b)``.
    A gradient whose ``need_*`` flag is False is not computed and comes back as None."""
    a = {k: _as_array("conv2d_backward", k, v) for k, v in (("grad_y", grad_y), ("x", x), ("w", w))}
    if _device_of("conv2d_backward", **a) == "cuda":
        _backend.require_cuda("conv2d_backward")
        return _cuda_conv.conv2d_backward(a["grad_y"], a["x"], a["w"], stride, padding, dilation, groups,
                                          need_grad_x=bool(need_grad_x), need_grad_w=bool(need_grad_w))
    return _core.conv2d_backward(a["grad_y"], a["x"], a["w"], stride, padding, dilation, groups,
                                 bool(need_grad_x), bool(need_grad_w))


def max_pool2d(x, kernel_size, stride=None, padding=0):
    """Max pooling like ``torch.nn.functional.max_pool2d(..., return_indices=True)``.

    x: (N, C, H, W) or (C, H, W). Returns ``(y, indices)``; indices are int64
    flat positions ``iy * W + ix`` within each input plane (PyTorch's).
    """
    x = _as_array("max_pool2d", "x", x)
    if _is_cupy(x):
        return _cuda_nn.max_pool2d(x, kernel_size, stride, padding)
    return _core.max_pool2d(x, kernel_size, stride, padding)


def max_pool2d_backward(grad_y, indices, x_shape):
    """Gradient of ``max_pool2d`` with respect to x (windows that overlap add up)."""
    a = {k: _as_array("max_pool2d_backward", k, v) for k, v in (("grad_y", grad_y), ("indices", indices))}
    if _device_of("max_pool2d_backward", **a) == "cuda":
        return _cuda_nn.max_pool2d_backward(**a, x_shape=x_shape)
    return _core.max_pool2d_backward(a["grad_y"], a["indices"], tuple(x_shape) if isinstance(x_shape, list) else x_shape)


def avg_pool2d(x, kernel_size, stride=None, padding=0):
    """Average pooling like ``torch.nn.functional.avg_pool2d`` (padding counted in the divisor)."""
    x = _as_array("avg_pool2d", "x", x)
    if _is_cupy(x):
        return _cuda_nn.avg_pool2d(x, kernel_size, stride, padding)
    return _core.avg_pool2d(x, kernel_size, stride, padding)


def avg_pool2d_backward(grad_y, x_shape, kernel_size, stride=None, padding=0):
    """Gradient of ``avg_pool2d`` with respect to x."""
    grad_y = _as_array("avg_pool2d_backward", "grad_y", grad_y)
    if _is_cupy(grad_y):
        return _cuda_nn.avg_pool2d_backward(grad_y, x_shape, kernel_size, stride, padding)
    return _core.avg_pool2d_backward(grad_y, x_shape, kernel_size, stride, padding)


# ---------------------------------------------------------------- activations
def _activation(name: str, doc: str):
    """ops.<name>(x): the elementwise activation kernel of that name, on x's device."""
    def forward(x):
        x = _as_array(name, "x", x)
        if _is_cupy(x):
            return getattr(_cuda_nn, name)(x)
        return _core.activation(x, name)
    forward.__name__ = forward.__qualname__ = name
    forward.__doc__ = doc
    return forward


def _activation_gradient(name: str, saved: str, doc: str):
    """ops.<name>_backward(grad_y, x) or (grad_y, y): the gradient from the forward's input x or output y."""
    op = f"{name}_backward"

    def run(grad_y, saved_value):
        a = {"grad_y": _as_array(op, "grad_y", grad_y), saved: _as_array(op, saved, saved_value)}
        if _device_of(op, **a) == "cuda":
            return getattr(_cuda_nn, op)(**a)
        return _core.activation_backward(a["grad_y"], a[saved], name)

    def from_input(grad_y, x):
        return run(grad_y, x)

    def from_output(grad_y, y):
        return run(grad_y, y)
    backward = from_input if saved == "x" else from_output
    backward.__name__ = backward.__qualname__ = op
    backward.__doc__ = doc
    return backward


relu = _activation("relu", "max(x, 0) elementwise.")
gelu = _activation("gelu", "x * Phi(x) (the exact erf form, PyTorch's default).")
sigmoid = _activation("sigmoid", "1 / (1 + exp(-x)) elementwise.")
tanh = _activation("tanh", "tanh(x) elementwise.")
gelu_tanh = _activation("gelu_tanh", "0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), torch's "
                                     "``GELU(approximate='tanh')`` (GPT-2's).")
silu = _activation("silu", "x * sigmoid(x) elementwise (SiLU / swish).")
relu_backward = _activation_gradient("relu", "x", "grad_y * (x > 0).")
gelu_backward = _activation_gradient("gelu", "x", "grad_y * (Phi(x) + x * phi(x)).")
gelu_tanh_backward = _activation_gradient("gelu_tanh", "x", "grad_y * gelu_tanh'(x), from the forward input x.")
silu_backward = _activation_gradient("silu", "x", "grad_y * s * (1 + x * (1 - s)) with s = sigmoid(x), from the "
                                                  "forward input x.")
sigmoid_backward = _activation_gradient("sigmoid", "y", "grad_y * y * (1 - y), from the forward output y.")
tanh_backward = _activation_gradient("tanh", "y", "grad_y * (1 - y**2), from the forward output y.")


# ------------------------------------------------------------------- softmax
def _along(op, fn, arrays, axis):
    """Runs fn on arrays with `axis` moved last, and moves it back."""
    ax = _axis_last(op, arrays[0], axis)
    last = arrays[0].ndim - 1
    if ax == last:
        return fn(*arrays)
    moved = [np.moveaxis(a, ax, last) for a in arrays]
    return np.moveaxis(fn(*moved), last, ax)


def softmax(x, axis=-1):
    """exp(x) / sum(exp(x)) along `axis`, computed stably (max subtracted)."""
    x = _as_array("softmax", "x", x)
    if _is_cupy(x):
        return _cuda_nn.softmax(x, axis)
    return _along("softmax", lambda a: _core.softmax(a, False), [x], axis)


def log_softmax(x, axis=-1):
    """x - logsumexp(x) along `axis`."""
    x = _as_array("log_softmax", "x", x)
    if _is_cupy(x):
        return _cuda_nn.log_softmax(x, axis)
    return _along("log_softmax", lambda a: _core.softmax(a, True), [x], axis)


def softmax_backward(grad_y, y, axis=-1):
    """Gradient of softmax from its output y: y * (grad_y - sum(grad_y * y))."""
    a = {k: _as_array("softmax_backward", k, v) for k, v in (("grad_y", grad_y), ("y", y))}
    if _device_of("softmax_backward", **a) == "cuda":
        return _cuda_nn.softmax_backward(**a, axis=axis)
    return _along("softmax_backward", lambda g, o: _core.softmax_backward(g, o, False), [a["grad_y"], a["y"]], axis)


def log_softmax_backward(grad_y, y, axis=-1):
    """Gradient of log_softmax from its output y: grad_y - exp(y) * sum(grad_y)."""
    a = {k: _as_array("log_softmax_backward", k, v) for k, v in (("grad_y", grad_y), ("y", y))}
    if _device_of("log_softmax_backward", **a) == "cuda":
        return _cuda_nn.log_softmax_backward(**a, axis=axis)
    return _along("log_softmax_backward", lambda g, o: _core.softmax_backward(g, o, True),
                  [a["grad_y"], a["y"]], axis)


# ---------------------------------------------------------------- layer norm
def layer_norm(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Layer normalization over the trailing `normalized_shape` dimensions.

    Returns ``(y, mean, rstd)`` (like ``torch.native_layer_norm``); mean and
    rstd have x's leading shape and feed ``layer_norm_backward``.
    """
    a = {k: _as_array("layer_norm", k, v) for k, v in (("x", x), ("weight", weight), ("bias", bias))}
    if _device_of("layer_norm", **a) == "cuda":
        return _cuda_nn.layer_norm(a["x"], normalized_shape, a["weight"], a["bias"], eps)
    n = _normalized_size("layer_norm", a["x"], normalized_shape)
    y, mean, rstd = _core.layer_norm(a["x"], n, a["weight"], a["bias"], _scalar("layer_norm", "eps", eps))
    # The kernel sees only the normalized size, so a normalized_shape starting with 1 would look like a
    # batch dim to it: the statistics take x's leading shape from here.
    lead = tuple(np.shape(a["x"]))[:np.ndim(a["x"]) - _normalized_ndim(normalized_shape)]
    return y, mean.reshape(lead), rstd.reshape(lead)


def layer_norm_backward(grad_y, x, mean, rstd, normalized_shape, weight=None):
    """Gradients of layer_norm: ``(grad_x, grad_weight, grad_bias)`` (the last two
    are what a weight and a bias would receive, summed over the rows)."""
    a = {k: _as_array("layer_norm_backward", k, v)
         for k, v in (("grad_y", grad_y), ("x", x), ("mean", mean), ("rstd", rstd), ("weight", weight))}
    if _device_of("layer_norm_backward", **a) == "cuda":
        return _cuda_nn.layer_norm_backward(a["grad_y"], a["x"], a["mean"], a["rstd"], normalized_shape, a["weight"])
    n = _normalized_size("layer_norm_backward", a["x"], normalized_shape)
    gx, gw, gb = _core.layer_norm_backward(a["grad_y"], a["x"], a["mean"], a["rstd"], a["weight"], n, True)
    tail = tuple(np.shape(a["x"]))[np.ndim(a["x"]) - _normalized_ndim(normalized_shape):]
    return gx, gw.reshape(tail), gb.reshape(tail)


# ------------------------------------------------------------- cross entropy
def cross_entropy(logits, target, *, ignore_index=-100, label_smoothing=0.0):
    """Mean of -log_softmax(logits)[i, target[i]] over rows whose target is not
    ignore_index (PyTorch's CrossEntropyLoss with class indices), with optional
    label smoothing. logits (N, C) float; target (N,) integer. Returns a float."""
    a = {k: _as_array("cross_entropy", k, v) for k, v in (("logits", logits), ("target", target))}
    if _device_of("cross_entropy", **a) == "cuda":
        return _cuda_nn.cross_entropy(**a, ignore_index=ignore_index, label_smoothing=label_smoothing)
    return _core.cross_entropy(a["logits"], a["target"], _int64("cross_entropy", "ignore_index", ignore_index),
                               _scalar("cross_entropy", "label_smoothing", label_smoothing))


def cross_entropy_backward(logits, target, grad=1.0, *, ignore_index=-100, label_smoothing=0.0):
    """Gradient of cross_entropy with respect to the logits, times `grad`."""
    a = {k: _as_array("cross_entropy_backward", k, v) for k, v in (("logits", logits), ("target", target))}
    if _device_of("cross_entropy_backward", **a) == "cuda":
        return _cuda_nn.cross_entropy_backward(**a, grad=grad, ignore_index=ignore_index,
                                               label_smoothing=label_smoothing)
    op = "cross_entropy_backward"
    return _core.cross_entropy_backward(a["logits"], a["target"], _scalar(op, "grad", grad),
                                        _int64(op, "ignore_index", ignore_index),
                                        _scalar(op, "label_smoothing", label_smoothing))


# ------------------------------------------------------------------- dropout

def dropout(x, p=0.5, training=True, seed=None):
    """Zeroes each element with probability p and scales the rest by 1/(1-p).

    Returns ``(y, mask)``; mask (uint8) feeds ``dropout_backward``. With
    ``training=False`` it is the identity. The mask is a function of the seed
    and the element index only (same for any thread count); without a seed one
    is drawn from the generator that ``manual_seed`` sets.
    """
    x = _as_array("dropout", "x", x)
    if _is_cupy(x):
        return _cuda_nn.dropout(x, p, training, seed)
    p = _scalar("dropout", "p", p)
    if not 0.0 <= p <= 1.0:   # checked in eval mode too, as torch does
        raise ValueError(f"dropout: argument 'p' must be in [0, 1], got {p}")
    if not training or p == 0:
        return x, np.ones(np.shape(x), np.uint8)
    if seed is None:
        seed = int(_generator().integers(0, 2**63))
    return _core.dropout(x, p, _scalar("dropout", "seed", seed, int) & (2**64 - 1))


def dropout_backward(grad_y, mask, p=0.5):
    """grad_y * mask / (1 - p)."""
    a = {k: _as_array("dropout_backward", k, v) for k, v in (("grad_y", grad_y), ("mask", mask))}
    if _device_of("dropout_backward", **a) == "cuda":
        return _cuda_nn.dropout_backward(**a, p=p)
    return _core.dropout_backward(a["grad_y"], a["mask"], _scalar("dropout_backward", "p", p))


# ---------------------------------------------------------------------- LSTM
def lstm(x, h0, c0, w_ih, w_hh, b_ih=None, b_hh=None):
    """One LSTM layer over a sequence, PyTorch's gates (i, f, g, o) and layout.

    x (T, B, I); h0, c0 (B, H); w_ih (4H, I); w_hh (4H, H); b_ih, b_hh (4H,).
    Returns ``(y (T, B, H), h_T, c_T, cache)``; cache feeds ``lstm_backward``.
    """
    a = {k: _as_array("lstm", k, v)
         for k, v in (("x", x), ("h0", h0), ("c0", c0), ("w_ih", w_ih), ("w_hh", w_hh), ("b_ih", b_ih), ("b_hh", b_hh))}
    if _device_of("lstm", **a) == "cuda":
        return _cuda_nn.lstm(**a)
    hs, cs, gates = _core.lstm(a["x"], a["h0"], a["c0"], a["w_ih"], a["w_hh"], a["b_ih"], a["b_hh"])
    cache = LSTMCache(np.ascontiguousarray(a["x"]), hs, cs, gates, a["w_ih"], a["w_hh"],
                      b_ih is not None, b_hh is not None)
    return hs[1:], hs[-1], cs[-1], cache


def lstm_backward(grad_y, grad_hT, grad_cT, cache: LSTMCache):
    """Gradients of ``lstm``: ``(grad_x, grad_h0, grad_c0, grad_w_ih, grad_w_hh,
    grad_b_ih, grad_b_hh)``. grad_y, grad_hT, grad_cT may be None (zero); the
    bias gradients are None for biases the forward pass did not have."""
    if not isinstance(cache, LSTMCache):
        raise TypeError(f"lstm_backward: argument 'cache' must be the LSTMCache returned by lstm, "
                        f"got {type(cache).__name__}")
    a = {k: _as_array("lstm_backward", k, v)
         for k, v in (("grad_y", grad_y), ("grad_hT", grad_hT), ("grad_cT", grad_cT))}
    if _device_of("lstm_backward", cache=cache.x, **a) == "cuda":
        return _cuda_nn.lstm_backward(**a, cache=cache)
    gx, gh0, gc0, gw_ih, gw_hh, gb = _core.lstm_backward(a["grad_y"], a["grad_hT"], a["grad_cT"], cache.x,
                                                         cache.hs, cache.cs, cache.gates, cache.w_ih, cache.w_hh)
    return (gx, gh0, gc0, gw_ih, gw_hh, gb if cache.has_b_ih else None,
            gb.copy() if cache.has_b_hh else None)


def lstm_cell(x, h, c, w_ih, w_hh, b_ih=None, b_hh=None):
    """One LSTM step: x (B, I), h, c (B, H) -> (h_new, c_new)."""
    x = _as_array("lstm_cell", "x", x)
    if _is_cupy(x):
        a = {k: _as_array("lstm_cell", k, v)
             for k, v in (("h", h), ("c", c), ("w_ih", w_ih), ("w_hh", w_hh), ("b_ih", b_ih), ("b_hh", b_hh))}
        _device_of("lstm_cell", x=x, **a)
        return _cuda_nn.lstm_cell(x, **a)
    if np.ndim(x) != 2:
        raise ValueError(f"lstm_cell: argument 'x' must be 2-D (B, I), got shape {tuple(np.shape(x))}")
    try:
        _, h_new, c_new, _ = lstm(x[None], h, c, w_ih, w_hh, b_ih, b_hh)
    except (TypeError, ValueError) as exc:
        msg = str(exc)
        if not msg.startswith("lstm: "):
            raise
        # name this op and its own arguments (h, c), not the sequence op it runs on
        msg = msg[len("lstm: "):].replace("'h0'", "'h'").replace("'c0'", "'c'")
        raise type(exc)(f"lstm_cell: {msg}") from None
    return h_new, c_new
# Optimizer steps. They update their arrays in place, so inputs are never
# converted or copied here: a DLPack producer (a torch tensor, say) is viewed
# without a copy and updated where it lies, and anything that would need a
# copy (non-contiguous, read-only) is refused by the extension.

def sgd_step(param, grad, momentum_buf=None, *, lr, momentum=0.0, dampening=0.0, nesterov=False,
             weight_decay=0.0, first_step=False):
    """One ``torch.optim.SGD`` step, in place on ``param`` (and ``momentum_buf``).

    ``g = grad + weight_decay * param``; with momentum, ``buf = momentum * buf +
    (1 - dampening) * g`` (``buf = g`` when ``first_step``, as torch starts it)
    and ``g = g + momentum * buf`` (nesterov) or ``g = buf``; then
    ``param -= lr * g``. ``momentum_buf`` is required when momentum > 0 and
    ignored otherwise. All arrays: param's shape and dtype (float32/float64),
    C-contiguous.
    """
    a = {k: _as_array("sgd_step", k, v) for k, v in (("param", param), ("grad", grad), ("momentum_buf", momentum_buf))}
    if _device_of("sgd_step", **a) == "cuda":
        return _cuda_nn.sgd_step(**a, lr=lr, momentum=momentum, dampening=dampening, nesterov=nesterov,
                                 weight_decay=weight_decay, first_step=first_step)
    _core.sgd_step(a["param"], a["grad"], a["momentum_buf"], lr=lr, momentum=momentum, dampening=dampening,
                   nesterov=bool(nesterov), weight_decay=weight_decay, first_step=bool(first_step))


def adam_step(param, grad, exp_avg, exp_avg_sq, *, step, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8,
              weight_decay=0.0, decoupled_weight_decay=False, amsgrad=False, max_exp_avg_sq=None):
    """One ``torch.optim.Adam`` step (``AdamW`` with ``decoupled_weight_decay=True``), in place.

    ``step`` is the step count after the increment (1 on the first step), used
    for the bias corrections. Updates ``param``, ``exp_avg``, ``exp_avg_sq``
    and, with ``amsgrad``, ``max_exp_avg_sq`` (start the state at zeros).
    All arrays: param's shape and dtype (float32/float64), C-contiguous.
    """
    a = {k: _as_array("adam_step", k, v)
         for k, v in (("param", param), ("grad", grad), ("exp_avg", exp_avg), ("exp_avg_sq", exp_avg_sq),
                      ("max_exp_avg_sq", max_exp_avg_sq))}
    if _device_of("adam_step", **a) == "cuda":
        return _cuda_nn.adam_step(**a, step=step, lr=lr, beta1=beta1, beta2=beta2, eps=eps,
                                  weight_decay=weight_decay, decoupled_weight_decay=decoupled_weight_decay,
                                  amsgrad=amsgrad)
    _core.adam_step(a["param"], a["grad"], a["exp_avg"], a["exp_avg_sq"], step=step, lr=lr, beta1=beta1,
                    beta2=beta2, eps=eps, weight_decay=weight_decay,
                    decoupled_weight_decay=bool(decoupled_weight_decay), amsgrad=bool(amsgrad),
                    max_exp_avg_sq=a["max_exp_avg_sq"])


def rmsprop_step(param, grad, square_avg, *, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                 momentum_buf=None, centered=False, grad_avg=None):
    """One ``torch.optim.RMSprop`` step, in place.

    Updates ``param``, ``square_avg`` and, when used, ``grad_avg`` (centered)
    and ``momentum_buf`` (momentum > 0); start the state at zeros, as torch
    does. All arrays: param's shape and dtype (float32/float64), C-contiguous.
    """
    a = {k: _as_array("rmsprop_step", k, v)
         for k, v in (("param", param), ("grad", grad), ("square_avg", square_avg), ("momentum_buf", momentum_buf),
                      ("grad_avg", grad_avg))}
    if _device_of("rmsprop_step", **a) == "cuda":
        return _cuda_nn.rmsprop_step(**a, lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                     momentum=momentum, centered=centered)
    _core.rmsprop_step(a["param"], a["grad"], a["square_avg"], lr=lr, alpha=alpha, eps=eps,
                       weight_decay=weight_decay, momentum=momentum, momentum_buf=a["momentum_buf"],
                       centered=bool(centered), grad_avg=a["grad_avg"])


# ----------------------------------------------------------------- attention
def _attention_args(op, q, k, v, mask, scale):
    a = _cpu_only(op, q=q, k=k, v=v, mask=mask)
    q, k, v, mask = a["q"], a["k"], a["v"], a["mask"]
    if np.ndim(q) != 4 or np.ndim(k) != 4:
        raise ValueError(f"{op}: arguments 'q' and 'k' must be 4-D (B, H, N, D), got shapes "
                         f"{tuple(np.shape(q))} and {tuple(np.shape(k))}")
    if scale is None:
        scale = 1.0 / float(np.sqrt(np.shape(q)[-1])) if np.shape(q)[-1] else 1.0
    if mask is not None:
        target = tuple(np.shape(q)[:3]) + (np.shape(k)[2],)
        try:
            mask = np.broadcast_to(mask, target)
        except ValueError:
            raise ValueError(f"{op}: argument 'mask' of shape {tuple(np.shape(mask))} does not broadcast to "
                             f"(B, H, Nq, Nk) = {target}") from None
    return q, k, v, mask, _scalar(op, "scale", scale)


def attention(q, k, v, *, causal=False, mask=None, scale=None):
    """Scaled dot-product attention, softmax(q k^T * scale + mask) v, computed
    FlashAttention's way (no Nq x Nk matrix is stored).

    q (B, H, Nq, D), k and v (B, H, Nk, D); mask broadcastable to
    (B, H, Nq, Nk): bool (True = keep) or additive float; causal: query i sees
    keys j <= i (PyTorch's is_causal); scale defaults to 1/sqrt(D).
    Returns ``(out, lse)``; a query whose keys are all masked gets out = 0 and
    lse = -inf (PyTorch's math path gives NaN there).
    CuPy arrays: float32 or float16 (lse is then float32), mask bool or
    float32 (also float16 for float16 inputs); bfloat16 through
    ``pyfastnn.cuda_ops.attention.attention_bf16``.
    """
    arrays = {n: _as_array("attention", n, x) for n, x in (("q", q), ("k", k), ("v", v), ("mask", mask))}
    if _device_of("attention", **arrays) == "cuda":
        _backend.require_cuda("attention")
        return cuda_attention.attention(arrays["q"], arrays["k"], arrays["v"], causal=bool(causal),
                                        mask=arrays["mask"], scale=scale)
    q, k, v, mask, scale = _attention_args("attention", arrays["q"], arrays["k"], arrays["v"], arrays["mask"], scale)
    return _core.attention(q, k, v, bool(causal), mask, scale)


def attention_backward(grad_out, q, k, v, out, lse, *, causal=False, mask=None, scale=None):
    """Gradients of ``attention``: ``(grad_q, grad_k, grad_v)``, recomputing the
    probabilities from the saved log-sum-exp."""
    op = "attention_backward"
    arrays = {n: _as_array(op, n, x) for n, x in (("grad_out", grad_out), ("q", q), ("k", k), ("v", v),
                                                  ("out", out), ("lse", lse), ("mask", mask))}
    if _device_of(op, **arrays) == "cuda":
        _backend.require_cuda(op)
        return cuda_attention.attention_backward(arrays["grad_out"], arrays["q"], arrays["k"], arrays["v"],
                                                 arrays["out"], arrays["lse"], causal=bool(causal),
                                                 mask=arrays["mask"], scale=scale)
    a = _cpu_only(op, grad_out=arrays["grad_out"], out=arrays["out"], lse=arrays["lse"])
    q, k, v, mask, scale = _attention_args(op, arrays["q"], arrays["k"], arrays["v"], arrays["mask"], scale)
    return _core.attention_backward(a["grad_out"], q, k, v, a["out"], a["lse"], bool(causal), mask, scale)


# ------------------------------------------------------------------ indexing
def embedding(weight, indices, padding_idx=None):
    """Rows of ``weight`` (V, D) at ``indices`` (integer array, any shape; int64 is
    used as is, other integer widths are converted): ``indices.shape + (D,)``, like
    ``torch.nn.functional.embedding``. An index outside [0, V) is an IndexError
    naming it. ``padding_idx`` only matters to ``embedding_backward``."""
    a = _cpu_only("embedding", weight=weight, indices=indices)
    return _core.embedding(a["weight"], a["indices"], padding_idx)


def embedding_backward(grad_y, indices, num_weights, padding_idx=None):
    """Gradient of ``embedding`` with respect to the weight: a dense (num_weights, D)
    array where row v sums the rows of ``grad_y`` (``indices.shape + (D,)``) whose
    index is v, in the order they appear (bit-identical for any thread count);
    the ``padding_idx`` row gets no gradient. Cost grows with the number of
    indices, not with num_weights (the zeroed rows are never written)."""
    a = _cpu_only("embedding_backward", grad_y=grad_y, indices=indices)
    return _core.embedding_backward(a["grad_y"], a["indices"], num_weights, padding_idx)


def index_select(x, dim, index):
    """The slices of x at a 0-D or 1-D integer ``index`` along ``dim``, like
    ``torch.index_select``. float32, float64 or int64."""
    a = _cpu_only("index_select", x=x, index=index)
    return _core.index_select(a["x"], dim, a["index"])


def gather(x, dim, index):
    """``torch.gather``: ``out[p] = x[p with p[dim] = index[p]]``; index (integer)
    has x's number of dims and is no larger than x outside ``dim``; out has the
    index's shape. float32, float64 or int64."""
    a = _cpu_only("gather", x=x, index=index)
    return _core.gather(a["x"], dim, a["index"])


def scatter_add(x, dim, index, src):
    """``torch.scatter_add`` out of place: a copy of x with ``out[p with p[dim] =
    index[p]] += src[p]`` for p over the index's shape. x may be a shape tuple
    instead (the result starts from zeros of src's dtype: the gradient of
    ``gather``). Each element takes its additions in index order on one thread,
    so the result is bit-identical for any thread count."""
    shape = x if isinstance(x, (tuple, list)) else None
    a = _cpu_only("scatter_add", index=index, src=src, **({} if shape is not None else {"x": x}))
    return _core.scatter_add(shape if shape is not None else a["x"], dim, a["index"], a["src"])


# ------------------------------------------------------------ adaptive pools
def adaptive_avg_pool2d(x, output_size):
    """``torch.nn.functional.adaptive_avg_pool2d``: x (N, C, H, W) or (C, H, W);
    output_size an int or a pair (None keeps that input size); output row i
    averages input rows [floor(i*H/OH), ceil((i+1)*H/OH)), columns alike.
    ``output_size=1`` (global average pooling) is one vectorised sum per plane."""
    x = _cpu_only("adaptive_avg_pool2d", x=x)["x"]
    return _core.adaptive_avg_pool2d(x, output_size)


def adaptive_avg_pool2d_backward(grad_y, x_shape):
    """Gradient of ``adaptive_avg_pool2d`` with respect to x (overlapping bins add up)."""
    grad_y = _cpu_only("adaptive_avg_pool2d_backward", grad_y=grad_y)["grad_y"]
    return _core.adaptive_avg_pool2d_backward(grad_y, tuple(x_shape) if isinstance(x_shape, list) else x_shape)


def adaptive_max_pool2d(x, output_size):
    """``torch.nn.functional.adaptive_max_pool2d(..., return_indices=True)`` -> ``(y, indices)``,
    indices int64 flat positions ``iy * W + ix`` in each input plane (a NaN takes
    its bin, the last one if several, as torch)."""
    x = _cpu_only("adaptive_max_pool2d", x=x)["x"]
    return _core.adaptive_max_pool2d(x, output_size)


def adaptive_max_pool2d_backward(grad_y, indices, x_shape):
    """Gradient of ``adaptive_max_pool2d`` with respect to x."""
    a = _cpu_only("adaptive_max_pool2d_backward", grad_y=grad_y, indices=indices)
    return _core.adaptive_max_pool2d_backward(a["grad_y"], a["indices"],
                                              tuple(x_shape) if isinstance(x_shape, list) else x_shape)


# ---------------------------------------------------------------- group norm
def group_norm(x, num_groups, weight=None, bias=None, eps=1e-5):
    """Group normalization of x (N, C, *) over groups of C/num_groups channels and
    all spatial positions, then ``* weight[c] + bias[c]`` (each (C,) or None).
    Returns ``(y, mean, rstd)`` like ``torch.native_group_norm``; mean and rstd
    are (N, num_groups) and feed ``group_norm_backward``. Statistics are
    bit-identical for any thread count."""
    a = _cpu_only("group_norm", x=x, weight=weight, bias=bias)
    return _core.group_norm(a["x"], num_groups, a["weight"], a["bias"], _scalar("group_norm", "eps", eps))


def group_norm_backward(grad_y, x, mean, rstd, num_groups, weight=None):
    """Gradients of ``group_norm``: ``(grad_x, grad_weight, grad_bias)`` (the last
    two are what a weight and a bias would receive, each (C,))."""
    a = _cpu_only("group_norm_backward", grad_y=grad_y, x=x, mean=mean, rstd=rstd, weight=weight)
    return _core.group_norm_backward(a["grad_y"], a["x"], a["mean"], a["rstd"], num_groups, a["weight"])


# -------------------------------------------------------------------- cumsum
def cumsum(x, dim, *, reverse=False):
    """``torch.cumsum(x, dim)``: float32/float64 keep their dtype (accumulated in
    double, as torch does on the CPU); integer and bool inputs give int64.
    ``reverse=True`` sums from the end (``y[i] = x[i] + ... + x[-1]``): the
    gradient of cumsum is ``cumsum(grad_y, dim, reverse=True)``."""
    x = _cpu_only("cumsum", x=x)["x"]
    return _core.cumsum(x, dim, bool(reverse))


# ---------------------------------------------------------------- topk, sort
class TopK(NamedTuple):
    """What ``topk`` returns (torch.return_types.topk's fields)."""
    values: np.ndarray
    indices: np.ndarray


class Sort(NamedTuple):
    """What ``sort`` returns (torch.return_types.sort's fields)."""
    values: np.ndarray
    indices: np.ndarray


def topk(x, k, dim=-1, largest=True, sorted=True):
    """The k largest (``largest=False``: smallest) entries along ``dim`` and their
    int64 indices, like ``torch.topk``, always best first (``sorted`` is
    accepted; an unsorted result is a sorted one). Ties go to the lower index
    and NaN ranks above every number, so the answer does not depend on the
    thread count. float32, float64 or int64; ``0 <= k <= x.shape[dim]``."""
    x = _cpu_only("topk", x=x)["x"]
    values, indices = _core.topk(x, k, dim, bool(largest))
    return TopK(values, indices)


def sort(x, dim=-1, descending=False, stable=True):
    """``torch.sort``: the entries along ``dim`` in order and their int64
    indices; always stable (equal values keep their order; ``stable`` is
    accepted), NaN after every number (first when descending)."""
    x = _cpu_only("sort", x=x)["x"]
    values, indices = _core.sort(x, dim, bool(descending))
    return Sort(values, indices)


# ----------------------------------------------------- errors name their op
_OP_PREFIXES = tuple(f"{name}:" for name in __all__)
_NAMED_TYPES = (MemoryError, OverflowError, TypeError, ValueError, RuntimeError)


def _names_its_errors(op: str, fn):
    """Every error leaving ``ops.<op>`` names the op (SPEC "Bad input"): the
    kernels' own checks already do; what comes from below them (numpy running
    out of memory for an output or a contiguous copy, ``std::bad_alloc`` from
    scratch space, pybind11 refusing an argument) gets the op's name put in
    front, keeping its type."""
    @functools.wraps(fn)
    def call(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except _NAMED_TYPES as exc:
            msg = str(exc)
            if msg.startswith(_OP_PREFIXES):
                raise
            base = next(t for t in _NAMED_TYPES if isinstance(exc, t))
            if msg in ("std::bad_alloc", ""):
                msg = "not enough memory for the op's outputs or scratch space" + (f" ({msg})" if msg else "")
            raise base(f"{op}: {msg}") from exc
    return call


for _name in __all__:
    if _name != "LSTMCache":
        globals()[_name] = _names_its_errors(_name, globals()[_name])
del _name
