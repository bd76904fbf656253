"""Differentiable neural-network ops on Tensors, like ``torch.nn.functional``.

Each op runs native kernels from ``pyfastnn.ops`` where one exists and records a closure that calls the
matching native backward; composites (losses built from log_softmax, batch norm, padding, resampling) are
array code with one hand-derived backward each, so no op costs more than one graph node. The one-kernel
primitives (relu, gelu, sigmoid, tanh, softmax, log_softmax) live in ``pyfastnn.tensor``.
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from .. import _device, ops
from .._errors import ArgumentError, DTypeError, ShapeError
from ..autograd import _mode
from ..tensor import Tensor, _result, _storage, _unbroadcast, _wrap, cat, where
# the tensor-level primitives, under names that leave F's own (relu(input, inplace), ...) free
from ..tensor import _float_array as _t_float_array, _rng as _t_rng, einsum as _t_einsum, gelu as _t_gelu
from ..tensor import log_softmax as _t_log_softmax, matmul as _t_matmul, minimum as _t_minimum
from ..tensor import ones_like as _t_ones_like, relu as _t_relu, sigmoid as _t_sigmoid, softmax as _t_softmax
from ..tensor import tanh as _t_tanh, zeros as _t_zeros, zeros_like as _t_zeros_like

__all__ = ["linear", "bilinear", "conv1d", "conv2d", "conv_transpose1d", "conv_transpose2d", "max_pool1d",
           "max_pool2d", "avg_pool1d", "avg_pool2d", "adaptive_avg_pool1d", "adaptive_avg_pool2d",
           "adaptive_max_pool1d", "adaptive_max_pool2d", "relu", "relu_", "relu6", "leaky_relu", "leaky_relu_",
           "elu", "selu", "celu", "gelu", "silu", "mish", "hardswish", "hardsigmoid", "hardtanh", "softplus",
           "softsign", "tanhshrink", "logsigmoid", "glu", "prelu", "threshold", "sigmoid", "tanh", "softmax",
           "log_softmax", "softmin", "normalize", "layer_norm", "batch_norm", "group_norm", "instance_norm",
           "rms_norm", "dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout", "embedding", "one_hot",
           "pad", "interpolate", "upsample", "pixel_shuffle", "pixel_unshuffle", "unfold", "fold", "lstm",
           "scaled_dot_product_attention", "cross_entropy", "nll_loss", "mse_loss", "l1_loss",
           "smooth_l1_loss", "huber_loss", "kl_div", "binary_cross_entropy", "binary_cross_entropy_with_logits",
           "cosine_similarity", "pairwise_distance", "cosine_embedding_loss", "margin_ranking_loss",
           "triplet_margin_loss", "soft_margin_loss", "multilabel_soft_margin_loss", "poisson_nll_loss",
           "gaussian_nll_loss", "hinge_embedding_loss", "flatten"]


def _t(x, where=None):
    """Tensors pass through; arrays become constant Tensors (None too: optional arguments)."""
    if isinstance(x, Tensor) or x is None:
        return x
    return _wrap(_storage(x, where=where or "nn.functional"))


def _req(x, where, name="input"):
    """A required argument as a Tensor; None or non-numbers are a TypeError naming the op and argument."""
    if isinstance(x, Tensor):
        return x
    if x is None:
        raise TypeError(f"{where}: argument '{name}' must be a Tensor or an array, got None")
    return _wrap(_storage(x, where=f"{where}: argument '{name}'"))


def _data(x):
    return None if x is None else x._array


def _needs(t):
    return t is not None and t.requires_grad


def _number(value, where, name, minimum=None, maximum=None):
    """A Python float for a scalar argument, or a TypeError/ValueError naming the op and argument."""
    if isinstance(value, Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, (bool, str, bytes)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{where}: argument '{name}' must be a number, got {type(value).__name__} {value!r}")
    value = float(value)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ValueError(f"{where}: argument '{name}' must be in [{minimum}, {maximum}], got {value}")
    return value


class _OutputGrads:
    """The gradient of a multi-output op: one slot per output, summed slot-wise."""
    __slots__ = ("grads",)

    def __init__(self, grads):
        self.grads = grads

    def __add__(self, other):
        return _OutputGrads([b if a is None else a if b is None else a + b for a, b in zip(self.grads, other.grads)])


def _multi_output(arrays, inputs, backward, name):
    """Tensors for several outputs of one op; backward(list of output grads, None where an output got none)
    -> grads for inputs. The op runs its backward once."""
    joint = _result(None, inputs, lambda slots: backward(slots.grads), name)
    n = len(arrays)
    outs = []
    for i, arr in enumerate(arrays):
        def to_slot(g, i=i):
            slots = [None] * n
            slots[i] = g
            return (_OutputGrads(slots),)
        outs.append(_result(arr, (joint,), to_slot, name))
    return tuple(outs)


def _reduce(loss, reduction, where):
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"{where}: argument 'reduction' must be 'mean', 'sum' or 'none', got {reduction!r}")


def _legacy_reduction(size_average, reduce, reduction):
    if size_average is None and reduce is None:
        return reduction
    if reduce is False:
        return "none"
    return "sum" if size_average is False else "mean"


def _tuple(v, n, where, name):
    out = tuple(v) if isinstance(v, (tuple, list)) else (v,) * n
    if len(out) != n or any(isinstance(e, bool) or not isinstance(e, (int, np.integer)) for e in out):
        raise TypeError(f"{where}: argument '{name}' must be an int or a tuple of {n} ints, got {v!r}")
    return tuple(int(e) for e in out)


# -------------------------------------------------------------------- linear
_FUSED_BACKWARD = {"relu": lambda g, y: ops.relu_backward(g, y),
                   "sigmoid": lambda g, y: ops.sigmoid_backward(g, y),
                   "tanh": lambda g, y: ops.tanh_backward(g, y)}
# activations whose derivative needs the pre-activation: fused into the GEMM when no gradient is recorded
# (inference, generation); under autograd the GEMM keeps z and the activation runs as its own kernel
_PREACTIVATION = {"gelu": (ops.gelu, ops.gelu_backward), "gelu_tanh": (ops.gelu_tanh, ops.gelu_tanh_backward),
                  "silu": (ops.silu, ops.silu_backward)}


def linear(input, weight, bias=None, activation=None):
    """``act(x @ weight.T + bias)``, the bias and activation fused into the GEMM.

    x (..., in); weight (out, in); bias (out,). ``activation`` (None, 'relu', 'sigmoid', 'tanh', 'gelu',
    'gelu_tanh', 'silu') is an extension over torch's signature: layers use it to skip a separate
    activation pass.
    """
    x, weight, bias = _req(input, "linear"), _req(weight, "linear", "weight"), _t(bias)
    X, W, b = x._array, weight._array, _data(bias)
    if X.ndim == 0:
        raise ValueError("linear: argument 'input' must have at least one dimension")
    if W.ndim == 1 and X.shape[-1] == W.shape[0]:        # torch allows a 1-D weight: a dot product
        return _t_matmul(x, weight) + (bias if bias is not None else 0)
    if W.ndim != 2 or X.shape[-1] != W.shape[1]:
        raise ShapeError(f"linear: mat1 and mat2 shapes cannot be multiplied ("
                           f"{'x'.join(map(str, (int(np.prod(X.shape[:-1])), X.shape[-1])))} and "
                           f"{'x'.join(map(str, W.shape[::-1]))}); the input has {X.shape[-1]} features, the "
                           f"weight expects {W.shape[1] if W.ndim == 2 else W.shape}")
    if activation is not None and activation not in _FUSED_BACKWARD and activation not in _PREACTIVATION:
        raise ValueError(f"linear: argument 'activation' must be None, 'relu', 'sigmoid', 'tanh', 'gelu', "
                         f"'gelu_tanh' or 'silu', got {activation!r}")
    if X.dtype != W.dtype or (b is not None and b.dtype != W.dtype):
        raise DTypeError(f"linear: expected the input ({_device.dtype_of(X)}), weight ({_device.dtype_of(W)})"
                           f"{' and bias (' + str(_device.dtype_of(b)) + ')' if b is not None else ''} to have "
                           f"the same dtype")
    if b is not None and b.shape != (W.shape[0],):
        raise RuntimeError(f"linear: bias of shape {tuple(b.shape)} does not fit {W.shape[0]} outputs")
    lead = X.shape[:-1]
    X2 = X.reshape(-1, X.shape[-1]) if X.ndim != 2 else X
    native = X2.dtype in (np.float32, np.float64) or _device.is_cupy(X2)
    if not native:
        if activation in _PREACTIVATION:
            raise DTypeError(f"linear: activation {activation!r} needs float32 or float64 input, got "
                             f"{_device.dtype_of(X2)}")
        Y = X2 @ W.T + (b if b is not None else 0)
        if activation is not None:
            Y = {"relu": _t_relu, "sigmoid": _t_sigmoid, "tanh": _t_tanh}[activation](_wrap(Y))._array
    split = activation in _PREACTIVATION and _mode.enabled and any(
        t is not None and t.requires_grad for t in (x, weight, bias))
    Z = None
    if split:
        Z = ops.matmul(X2, W, b, trans_b=True)
        Y = _PREACTIVATION[activation][0](Z)
    elif native:
        Y = ops.matmul(X2, W, b, activation=activation, trans_b=True)

    def back(g):
        g2 = g.reshape(-1, g.shape[-1]) if g.ndim != 2 else g
        if Z is not None:
            g2 = _PREACTIVATION[activation][1](g2, Z)
        elif activation is not None:
            g2 = _FUSED_BACKWARD[activation](g2, Y)
        if native:
            gx = ops.matmul(g2, W).reshape(X.shape) if x.requires_grad else None
            gw = ops.matmul(g2, X2, trans_a=True) if weight.requires_grad else None
        else:
            gx = (g2 @ W).reshape(X.shape) if x.requires_grad else None
            gw = g2.T @ X2 if weight.requires_grad else None
        gb = g2.sum(axis=0) if _needs(bias) else None
        return gx, gw, gb
    return _result(Y.reshape(lead + (W.shape[0],)) if X.ndim != 2 else Y, (x, weight, bias), back,
                   "AddmmBackward0", saved=(x if weight.requires_grad else None, weight if x.requires_grad else None),
                   saves_output=activation in _FUSED_BACKWARD)


def bilinear(input1, input2, weight, bias=None):
    """y_k = x1^T A_k x2 + b_k, weight (out, in1, in2)."""
    x1, x2, w = _req(input1, "bilinear"), _req(input2, "bilinear", "input2"), _req(weight, "bilinear", "weight")
    out = _t_einsum("bi,kij,bj->bk", x1.reshape(-1, x1.shape[-1]), w, x2.reshape(-1, x2.shape[-1]))
    out = out.reshape(x1.shape[:-1] + (w.shape[0],))
    return out + bias if bias is not None else out


# --------------------------------------------------------------- convolution
def _same_padding(X, weight, stride, dilation):
    """torch's 'same' for an even effective kernel pads one more at the bottom/right: that extra row/column
    is padded explicitly and the kernel gets the symmetric part."""
    dil = dilation if isinstance(dilation, (tuple, list)) else (dilation, dilation)
    st = stride if isinstance(stride, (tuple, list)) else (stride, stride)
    if any(int(s) != 1 for s in st):
        raise ValueError(f"conv2d: padding='same' is not supported for strided convolutions (stride={stride}), as "
                         f"in torch")
    total = []
    for i in range(2):
        k = weight.shape[2 + i]
        d = int(dil[i])
        if d > (1 << 40) or k > (1 << 40):
            raise ValueError(f"conv2d: argument 'dilation' ({dilation}) is too large for the kernel")
        total.append(d * (k - 1))
    lo = [t // 2 for t in total]
    extra = [t - 2 * l for t, l in zip(total, lo)]
    return tuple(lo), extra


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution, NCHW input and OIHW weight (torch.nn.functional.conv2d)."""
    x, weight, bias = _req(input, "conv2d"), _req(weight, "conv2d", "weight"), _t(bias)
    unbatched = x._array.ndim == 3
    X = x._array[None] if unbatched else x._array
    crop = None
    if isinstance(padding, str):
        if padding == "valid":
            padding = 0
        elif padding == "same":
            if X.ndim == 4 and weight._array.ndim == 4:
                lo, extra = _same_padding(X, weight._array, stride, dilation)
                if any(extra):
                    crop = X.shape[2:]
                    xp = _device.array_module(X)
                    X = xp.pad(X, ((0, 0), (0, 0), (0, extra[0]), (0, extra[1])))
                padding = lo
        else:
            raise ValueError(f"conv2d: argument 'padding' must be an int, a pair, 'valid' or 'same', got {padding!r}")
    W = weight._array
    Y = ops.conv2d(X, W, _data(bias), stride, padding, dilation, groups)

    def back(g):
        gx, gw, gb = ops.conv2d_backward(g[None] if unbatched else g, X, W, stride, padding, dilation,
                                         groups, need_grad_x=x.requires_grad, need_grad_w=weight.requires_grad)
        if crop is not None and gx is not None:
            gx = gx[:, :, :crop[0], :crop[1]]
        return (gx[0] if unbatched and gx is not None else gx), gw, gb if _needs(bias) else None
    return _result(Y[0] if unbatched else Y, (x, weight, bias), back, "ConvolutionBackward0", saved=(x, weight))


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """1-D convolution over (N, C, L) (or (C, L)) with weight (O, C/groups, K): a conv2d with height 1."""
    x, w = _req(input, "conv1d"), _req(weight, "conv1d", "weight")
    if w.ndim != 3:
        raise RuntimeError(f"conv1d: expected a 3-D weight (out_channels, in_channels/groups, kernel), got shape "
                           f"{tuple(w.shape)}")
    if x.ndim not in (2, 3):
        raise RuntimeError(f"conv1d: expected 2-D (unbatched) or 3-D (batched) input, got shape {tuple(x.shape)}")
    s = _tuple(stride, 1, "conv1d", "stride")[0]
    d = _tuple(dilation, 1, "conv1d", "dilation")[0]
    p = padding if isinstance(padding, str) else (0, _tuple(padding, 1, "conv1d", "padding")[0])
    if p == "same":
        lo = d * (w.shape[-1] - 1)
        x = pad(x, (lo // 2, lo - lo // 2))
        p = (0, 0)
    y = conv2d(x.unsqueeze(-2), w.unsqueeze(-2), bias, (1, s), p, (1, d), groups)
    return y.squeeze(-2)


def _conv_transpose_output(size_in, k, s, p, op, d):
    return (size_in - 1) * s - 2 * p + d * (k - 1) + op + 1


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Transposed 2-D convolution (the gradient of conv2d with respect to its input): weight
    (in_channels, out_channels/groups, kh, kw), as torch.nn.functional.conv_transpose2d."""
    x, w, bias = _req(input, "conv_transpose2d"), _req(weight, "conv_transpose2d", "weight"), _t(bias)
    unbatched = x.ndim == 3
    X = x._array[None] if unbatched else x._array
    W = w._array
    if X.ndim != 4 or W.ndim != 4:
        raise RuntimeError(f"conv_transpose2d: expected 4-D input and weight, got {tuple(X.shape)} and "
                           f"{tuple(W.shape)}")
    st = _tuple(stride, 2, "conv_transpose2d", "stride")
    pd = _tuple(padding, 2, "conv_transpose2d", "padding")
    op = _tuple(output_padding, 2, "conv_transpose2d", "output_padding")
    dl = _tuple(dilation, 2, "conv_transpose2d", "dilation")
    if X.shape[1] != W.shape[0]:
        raise ShapeError(f"conv_transpose2d: input has {X.shape[1]} channels, the weight expects {W.shape[0]}")
    for o, s_, d_ in zip(op, st, dl):
        if o >= s_ and o >= d_:
            raise ArgumentError(f"conv_transpose2d: output_padding ({output_padding}) must be smaller than either "
                               f"stride or dilation")
    N, C = X.shape[:2]
    out_c = W.shape[1] * groups
    oh = _conv_transpose_output(X.shape[2], W.shape[2], st[0], pd[0], op[0], dl[0])
    ow = _conv_transpose_output(X.shape[3], W.shape[3], st[1], pd[1], op[1], dl[1])
    if oh <= 0 or ow <= 0:
        raise RuntimeError(f"conv_transpose2d: the output size ({oh}, {ow}) is too small")
    # torch's transposed weight (C, out_c/groups, kh, kw) is exactly the weight of the convolution that maps
    # out_c channels back to C, so the transposed convolution is that convolution's input gradient
    shape = (N, out_c, oh, ow)
    xp = _device.array_module(X)
    template = xp.empty(shape, X.dtype)
    Y, _, _ = ops.conv2d_backward(X, template, W, st, pd, dl, groups, need_grad_x=True, need_grad_w=False)
    if bias is not None:
        Y = Y + bias._array.reshape(1, -1, 1, 1)

    def back(g):
        g = g[None] if unbatched else g
        gx = ops.conv2d(g, W, None, st, pd, dl, groups) if x.requires_grad else None
        gw = None
        if w.requires_grad:
            _, gw, _ = ops.conv2d_backward(X, g, W, st, pd, dl, groups, need_grad_x=False, need_grad_w=True)
        gb = g.sum(axis=(0, 2, 3)) if _needs(bias) else None
        return (gx[0] if unbatched and gx is not None else gx), gw, gb
    return _result(Y[0] if unbatched else Y, (x, w, bias), back, "ConvolutionBackward0", saved=(x, w))


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    x, w = _req(input, "conv_transpose1d"), _req(weight, "conv_transpose1d", "weight")
    y = conv_transpose2d(x.unsqueeze(-2), w.unsqueeze(-2), bias, (1, _tuple(stride, 1, "conv_transpose1d",
                                                                            "stride")[0]),
                         (0, _tuple(padding, 1, "conv_transpose1d", "padding")[0]),
                         (0, _tuple(output_padding, 1, "conv_transpose1d", "output_padding")[0]), groups,
                         (1, _tuple(dilation, 1, "conv_transpose1d", "dilation")[0]))
    return y.squeeze(-2)


# ------------------------------------------------------------------ pooling
def _pool_geometry(where, shape, kernel_size, stride, padding, dilation, ceil_mode):
    """Output size and the padded extent of each spatial dim, by torch's rule: with ceil_mode the last
    window may run past the right padding but must start inside the input or the left padding."""
    k = _tuple(kernel_size, 2, where, "kernel_size")
    s = k if stride is None or (isinstance(stride, (tuple, list)) and not stride) else _tuple(stride, 2, where,
                                                                                              "stride")
    p = _tuple(padding, 2, where, "padding")
    d = _tuple(dilation, 2, where, "dilation")
    if min(k) <= 0 or min(s) <= 0 or min(d) <= 0 or min(p) < 0:
        raise ValueError(f"{where}: kernel_size, stride and dilation must be positive and padding non-negative, "
                         f"got kernel_size={kernel_size!r}, stride={stride!r}, padding={padding!r}, "
                         f"dilation={dilation!r}")
    if any(2 * p_ > k_ for p_, k_ in zip(p, k)):
        raise ValueError(f"{where}: padding ({padding!r}) should be at most half of kernel_size ({kernel_size!r})")
    if len(shape) not in (3, 4):
        raise ValueError(f"{where}: expected 3-D or 4-D input, got shape {tuple(shape)}")
    outs, extents = [], []
    for size, k_, s_, p_, d_ in zip(shape[-2:], k, s, p, d):
        span = d_ * (k_ - 1) + 1
        room = size + 2 * p_ - span
        if room < 0:
            raise ValueError(f"{where}: the input ({tuple(shape)}) is smaller than the window {k!r} "
                             f"(dilation {d!r}, padding {p!r})")
        out = (-(-room // s_) if ceil_mode else room // s_) + 1
        if ceil_mode and (out - 1) * s_ >= size + p_:
            out -= 1
        outs.append(out)
        extents.append(max(size + 2 * p_, (out - 1) * s_ + span))
    return k, s, p, d, tuple(outs), tuple(extents)


def _pad_planes(X, p, extents, value):
    """X padded on the last two dims: p before, up to `extents` after, with `value`."""
    xp = _device.array_module(X)
    H, W = X.shape[-2:]
    out = xp.full(X.shape[:-2] + tuple(extents), value, X.dtype)
    out[..., p[0]:p[0] + H, p[1]:p[1] + W] = X
    return out


def _max_pool_general(x, kernel_size, stride, padding, dilation, ceil_mode):
    """Max pooling with dilation or ceil_mode: the input padded with -inf to the extent the windows need,
    then the native kernel (dilation 1) or a strided window view; indices point into the unpadded input."""
    X = x._array
    shape = X.shape
    k, s, p, d, (oh, ow), extents = _pool_geometry("max_pool2d", shape, kernel_size, stride, padding, dilation,
                                                   ceil_mode)
    Xp = _pad_planes(X, p, extents, -np.inf if X.dtype.kind == "f" else np.iinfo(X.dtype).min)
    xp = _device.array_module(X)
    Wp = extents[1]
    if d == (1, 1):
        Y, flat = ops.max_pool2d(Xp, k, s, 0)
        Y, flat = Y[..., :oh, :ow], flat[..., :oh, :ow]
        iy, ix = flat // Wp, flat % Wp
    else:
        windows = xp.lib.stride_tricks.sliding_window_view(
            Xp, (d[0] * (k[0] - 1) + 1, d[1] * (k[1] - 1) + 1), axis=(-2, -1))
        windows = windows[..., :oh * s[0]:s[0], :ow * s[1]:s[1], ::d[0], ::d[1]]
        windows = windows.reshape(windows.shape[:-2] + (-1,))
        best = xp.argmax(windows, axis=-1)
        Y = xp.take_along_axis(windows, best[..., None], axis=-1)[..., 0]
        rows = xp.arange(oh).reshape(-1, 1) * s[0]
        cols = xp.arange(ow).reshape(1, -1) * s[1]
        iy, ix = rows + (best // k[1]) * d[0], cols + (best % k[1]) * d[1]
    idx = ((iy - p[0]) * shape[-1] + (ix - p[1])).astype(np.int64)
    Y = xp.ascontiguousarray(Y)
    idx = xp.ascontiguousarray(idx)
    return Y, idx


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """Max pooling over (…, H, W) windows with PyTorch's semantics (dilation and ceil_mode included)."""
    x = _req(input, "max_pool2d")
    if isinstance(stride, (tuple, list)) and not stride:      # torch's modules pass [] for "the kernel size"
        stride = None
    shape = x._array.shape
    if ceil_mode or _tuple(dilation, 2, "max_pool2d", "dilation") != (1, 1):
        Y, idx = _max_pool_general(x, kernel_size, stride, padding, dilation, ceil_mode)
    else:
        Y, idx = ops.max_pool2d(x._array, kernel_size, stride, padding)
    out = _result(Y, (x,), lambda g: (ops.max_pool2d_backward(g, idx, shape),), "MaxPool2DWithIndicesBackward0")
    return (out, _wrap(idx)) if return_indices else out


def _avg_pool_ceil(x, kernel_size, stride, padding, count_include_pad, divisor_override):
    """Average pooling with ceil_mode: windows over a zero-padded copy, each divided by torch's divisor
    (the window clipped to input plus padding, or to the input alone without count_include_pad)."""
    X = x._array
    shape = X.shape
    k, s, p, _, (oh, ow), extents = _pool_geometry("avg_pool2d", shape, kernel_size, stride, padding, 1, True)
    Xp = _pad_planes(X, p, extents, 0)
    area = k[0] * k[1]
    if divisor_override is not None:
        scale = area / _number(divisor_override, "avg_pool2d", "divisor_override", 1)
    else:
        if count_include_pad:
            mask = np.zeros(extents, X.dtype)
            mask[:shape[-2] + 2 * p[0], :shape[-1] + 2 * p[1]] = 1
        else:
            mask = _pad_planes(np.ones(shape[-2:], X.dtype), p, extents, 0)
        counts = ops.avg_pool2d(mask[None, None], k, s, 0)[0, 0, :oh, :ow] * area
        scale = _device.array_module(X).asarray(area / counts)
    full = ops.avg_pool2d(Xp, k, s, 0)
    Y = full[..., :oh, :ow] * scale

    def back(g):
        gfull = _device.array_module(g).zeros(full.shape, g.dtype)
        gfull[..., :oh, :ow] = g * scale
        gp = ops.avg_pool2d_backward(gfull, Xp.shape, k, s, 0)
        return (gp[..., p[0]:p[0] + shape[-2], p[1]:p[1] + shape[-1]],)
    return _result(Y, (x,), back, "AvgPool2DBackward0")


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """Average pooling; padding counts in the divisor unless count_include_pad=False (PyTorch's options)."""
    x = _req(input, "avg_pool2d")
    if isinstance(stride, (tuple, list)) and not stride:
        stride = None
    if ceil_mode:
        return _avg_pool_ceil(x, kernel_size, stride, padding, count_include_pad, divisor_override)
    shape = x._array.shape
    Y = ops.avg_pool2d(x._array, kernel_size, stride, padding)
    scale = None
    kh, kw = _tuple(kernel_size, 2, "avg_pool2d", "kernel_size")
    if divisor_override is not None:
        scale = kh * kw / _number(divisor_override, "avg_pool2d", "divisor_override", 1)
    elif not count_include_pad and any(_tuple(padding, 2, "avg_pool2d", "padding")):
        ones = np.ones((1, 1) + shape[-2:], x._array.dtype)
        counts = ops.avg_pool2d(ones, kernel_size, stride, padding)[0, 0]
        scale = 1.0 / counts
    if scale is not None:
        Y = Y * scale
    return _result(Y, (x,), lambda g: (ops.avg_pool2d_backward(g if scale is None else g * scale, shape,
                                                               kernel_size, stride, padding),), "AvgPool2DBackward0")


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    x = _req(input, "max_pool1d")
    k = _tuple(kernel_size, 1, "max_pool1d", "kernel_size")[0]
    s = k if stride is None or stride == () else _tuple(stride, 1, "max_pool1d", "stride")[0]
    p = _tuple(padding, 1, "max_pool1d", "padding")[0]
    d = _tuple(dilation, 1, "max_pool1d", "dilation")[0]
    out = max_pool2d(x.unsqueeze(-2), (1, k), (1, s), (0, p), (1, d), ceil_mode, return_indices)
    if return_indices:
        return out[0].squeeze(-2), out[1].squeeze(-2)
    return out.squeeze(-2)


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    x = _req(input, "avg_pool1d")
    k = _tuple(kernel_size, 1, "avg_pool1d", "kernel_size")[0]
    s = k if stride is None or stride == () else _tuple(stride, 1, "avg_pool1d", "stride")[0]
    p = _tuple(padding, 1, "avg_pool1d", "padding")[0]
    return avg_pool2d(x.unsqueeze(-2), (1, k), (1, s), (0, p), ceil_mode, count_include_pad).squeeze(-2)


def _adaptive_bins(size, out):
    starts = [(i * size) // out for i in range(out)]
    ends = [-((-(i + 1) * size) // out) for i in range(out)]
    return starts, ends


def _output_size(output_size, shape, n, where):
    sizes = tuple(output_size) if isinstance(output_size, (tuple, list)) else (output_size,) * n
    if len(sizes) != n:
        raise ValueError(f"{where}: output_size must be an int or a tuple of {n}, got {output_size!r}")
    out = []
    for s, have in zip(sizes, shape[-n:]):
        if s is None:
            s = have
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s <= 0:
            raise ValueError(f"{where}: output_size entries must be positive ints (or None), got {output_size!r}")
        out.append(int(s))
    return tuple(out)


def adaptive_avg_pool2d(input, output_size):
    """Averages over torch's adaptive bins (start floor(i*H/OH), end ceil((i+1)*H/OH)); (1, 1) is the global
    average of each plane."""
    x = _req(input, "adaptive_avg_pool2d")
    if x.ndim not in (3, 4):
        raise ValueError(f"adaptive_avg_pool2d: expected 3-D or 4-D input, got shape {tuple(x.shape)}")
    oh, ow = _output_size(output_size, x.shape, 2, "adaptive_avg_pool2d")
    X = x._array
    H, W = X.shape[-2:]
    if isinstance(X, np.ndarray) and X.dtype in (np.float32, np.float64):
        shape = X.shape
        Y = ops.adaptive_avg_pool2d(X, (oh, ow))
        return _result(Y, (x,), lambda g: (ops.adaptive_avg_pool2d_backward(g, shape),),
                       "AdaptiveAvgPool2DBackward0")
    if (oh, ow) == (1, 1):
        return x.mean(dim=(-2, -1), keepdim=True)
    rs, re = _adaptive_bins(H, oh)
    cs, ce = _adaptive_bins(W, ow)
    rows = [x[..., a:b, :].mean(dim=-2, keepdim=True) for a, b in zip(rs, re)]
    xr = cat(rows, -2)
    cols = [xr[..., a:b].mean(dim=-1, keepdim=True) for a, b in zip(cs, ce)]
    return cat(cols, -1)


def adaptive_avg_pool1d(input, output_size):
    x = _req(input, "adaptive_avg_pool1d")
    return adaptive_avg_pool2d(x.unsqueeze(-2), (1, _tuple(output_size, 1, "adaptive_avg_pool1d",
                                                           "output_size")[0])).squeeze(-2)


def adaptive_max_pool2d(input, output_size, return_indices=False):
    x = _req(input, "adaptive_max_pool2d")
    if x.ndim not in (3, 4):
        raise ValueError(f"adaptive_max_pool2d: expected 3-D or 4-D input, got shape {tuple(x.shape)}")
    oh, ow = _output_size(output_size, x.shape, 2, "adaptive_max_pool2d")
    X = x._array
    if not (isinstance(X, np.ndarray) and X.dtype in (np.float32, np.float64)):
        raise NotImplementedError(f"adaptive_max_pool2d: float32/float64 CPU tensors only, got {x.dtype} on "
                                  f"{x.device}")
    shape = X.shape
    Y, idx = ops.adaptive_max_pool2d(X, (oh, ow))

    def back(g):
        return (ops.adaptive_max_pool2d_backward(g, idx, shape),)
    out = _result(Y, (x,), back, "AdaptiveMaxPool2DBackward0")
    return (out, _wrap(idx)) if return_indices else out


def adaptive_max_pool1d(input, output_size, return_indices=False):
    x = _req(input, "adaptive_max_pool1d")
    out = adaptive_max_pool2d(x.unsqueeze(-2), (1, _tuple(output_size, 1, "adaptive_max_pool1d",
                                                          "output_size")[0]), return_indices)
    if return_indices:
        return out[0].squeeze(-2), out[1].squeeze(-2)
    return out.squeeze(-2)


# --------------------------------------------------------------- activations
def relu(input, inplace=False):
    x = _req(input, "relu")
    return x.relu_() if inplace else _t_relu(x)


def relu_(input):
    return _req(input, "relu_").relu_()


def gelu(input, approximate="none"):
    return _t_gelu(_req(input, "gelu"), approximate)


def sigmoid(input):
    return _t_sigmoid(_req(input, "sigmoid"))


def tanh(input):
    return _t_tanh(_req(input, "tanh"))


def softmax(input, dim=None, _stacklevel=3, dtype=None):
    return _t_softmax(_req(input, "softmax"), dim, dtype)


def log_softmax(input, dim=None, _stacklevel=3, dtype=None):
    return _t_log_softmax(_req(input, "log_softmax"), dim, dtype)


def softmin(input, dim=None, _stacklevel=3, dtype=None):
    return _t_softmax(-_req(input, "softmin"), dim, dtype)


def _elementwise(x, fn, grad, name, inplace=False):
    """An activation from its forward formula and derivative (arrays), optionally in place."""
    if inplace:
        return x._inplace_unary(name + "_", lambda t: _elementwise(t, fn, grad, name))
    X = _t_float_array(x._array)
    xp = _device.array_module(X)
    with np.errstate(over="ignore", invalid="ignore"):
        Y = fn(xp, X)
    return _result(Y, (x,), lambda g: (g * grad(xp, X, Y),), name, saved=(x,))


def silu(input, inplace=False):
    x = _req(input, "silu")
    X = x._array
    if not inplace and X.dtype in (np.float32, np.float64):
        return _result(ops.silu(X), (x,), lambda g: (ops.silu_backward(g, X),), "SiluBackward0", saved=(x,))

    def fn(xp, a):
        return a / (1 + xp.exp(-a))

    def grad(xp, a, y):
        s = 1 / (1 + xp.exp(-a))
        return s * (1 + a * (1 - s))
    return _elementwise(x, fn, grad, "SiluBackward0", inplace)


def mish(input, inplace=False):
    def fn(xp, a):
        return a * xp.tanh(xp.logaddexp(0, a))

    def grad(xp, a, y):
        sp = xp.logaddexp(0, a)
        t = xp.tanh(sp)
        return t + a * (1 - t * t) / (1 + xp.exp(-a))
    return _elementwise(_req(input, "mish"), fn, grad, "MishBackward0", inplace)


def hardswish(input, inplace=False):
    return _elementwise(_req(input, "hardswish"), lambda xp, a: a * xp.clip(a + 3, 0, 6) / 6,
                        lambda xp, a, y: xp.where(a < -3, 0, xp.where(a > 3, 1, (2 * a + 3) / 6)),
                        "HardswishBackward0", inplace)


def hardsigmoid(input, inplace=False):
    return _elementwise(_req(input, "hardsigmoid"), lambda xp, a: xp.clip(a / 6 + 0.5, 0, 1),
                        lambda xp, a, y: ((a > -3) & (a < 3)) / 6.0, "HardsigmoidBackward0", inplace)


def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val ({min_val}) cannot be greater than max_val ({max_val})")
    return _elementwise(_req(input, "hardtanh"), lambda xp, a: xp.clip(a, min_val, max_val),
                        lambda xp, a, y: (a > min_val) & (a < max_val), "HardtanhBackward0", inplace)


def relu6(input, inplace=False):
    return hardtanh(input, 0.0, 6.0, inplace)


def leaky_relu(input, negative_slope=0.01, inplace=False):
    slope = _number(negative_slope, "leaky_relu", "negative_slope")
    return _elementwise(_req(input, "leaky_relu"), lambda xp, a: xp.where(a > 0, a, a * slope),
                        lambda xp, a, y: xp.where(a > 0, 1.0, slope), "LeakyReluBackward0", inplace)


def leaky_relu_(input, negative_slope=0.01):
    return leaky_relu(input, negative_slope, True)


def elu(input, alpha=1.0, inplace=False):
    alpha = _number(alpha, "elu", "alpha")
    return _elementwise(_req(input, "elu"), lambda xp, a: xp.where(a > 0, a, alpha * xp.expm1(xp.minimum(a, 0))),
                        lambda xp, a, y: xp.where(a > 0, 1.0, alpha * xp.exp(xp.minimum(a, 0))), "EluBackward0",
                        inplace)


def selu(input, inplace=False):
    alpha, scale = 1.6732632423543772, 1.0507009873554805
    return _elementwise(_req(input, "selu"),
                        lambda xp, a: scale * xp.where(a > 0, a, alpha * xp.expm1(xp.minimum(a, 0))),
                        lambda xp, a, y: scale * xp.where(a > 0, 1.0, alpha * xp.exp(xp.minimum(a, 0))),
                        "EluBackward0", inplace)


def celu(input, alpha=1.0, inplace=False):
    alpha = _number(alpha, "celu", "alpha")
    return _elementwise(_req(input, "celu"),
                        lambda xp, a: xp.maximum(a, 0) + xp.minimum(0, alpha * xp.expm1(xp.minimum(a, 0) / alpha)),
                        lambda xp, a, y: xp.where(a > 0, 1.0, xp.exp(xp.minimum(a, 0) / alpha)), "CeluBackward0",
                        inplace)


def softplus(input, beta=1.0, threshold=20.0):
    beta = _number(beta, "softplus", "beta")
    threshold = _number(threshold, "softplus", "threshold")
    return _elementwise(_req(input, "softplus"),
                        lambda xp, a: xp.where(a * beta > threshold, a, xp.logaddexp(0, a * beta) / beta),
                        lambda xp, a, y: xp.where(a * beta > threshold, 1.0, 1 / (1 + xp.exp(-a * beta))),
                        "SoftplusBackward0")


def softsign(input):
    return _elementwise(_req(input, "softsign"), lambda xp, a: a / (1 + xp.abs(a)),
                        lambda xp, a, y: 1 / (1 + xp.abs(a)) ** 2, "SoftsignBackward0")


def tanhshrink(input):
    return _elementwise(_req(input, "tanhshrink"), lambda xp, a: a - xp.tanh(a),
                        lambda xp, a, y: xp.tanh(a) ** 2, "TanhshrinkBackward0")


def logsigmoid(input):
    return _elementwise(_req(input, "logsigmoid"), lambda xp, a: -xp.logaddexp(0, -a),
                        lambda xp, a, y: 1 / (1 + xp.exp(a)), "LogSigmoidBackward0")


def threshold(input, threshold, value, inplace=False):
    th, val = _number(threshold, "threshold", "threshold"), _number(value, "threshold", "value")
    return _elementwise(_req(input, "threshold"), lambda xp, a: xp.where(a > th, a, val),
                        lambda xp, a, y: (a > th).astype(a.dtype), "ThresholdBackward0", inplace)


def glu(input, dim=-1):
    x = _req(input, "glu")
    d = dim % x.ndim if x.ndim else 0
    if x.shape[d] % 2:
        raise RuntimeError(f"glu: halving dimension must be even, but dimension {d} is size {x.shape[d]}")
    a, b = x.chunk(2, d)
    return a * _t_sigmoid(b)


def prelu(input, weight):
    x, w = _req(input, "prelu"), _req(weight, "prelu", "weight")
    shape = [1] * x.ndim
    if w.numel() > 1:
        shape[1 if x.ndim > 1 else 0] = w.numel()
    return where(x > 0, x, x * w.reshape(shape))


def normalize(input, p=2.0, dim=1, eps=1e-12, out=None):
    if out is not None:
        raise NotImplementedError("normalize: the out= argument is not supported")
    x = _req(input, "normalize")
    return x / x.norm(p, dim, keepdim=True).clamp_min(eps)


def cosine_similarity(x1, x2, dim=1, eps=1e-8):
    a, b = _req(x1, "cosine_similarity", "x1"), _req(x2, "cosine_similarity", "x2")
    num = (a * b).sum(dim)
    den = (a.norm(2, dim) * b.norm(2, dim)).clamp_min(eps)
    return num / den


def pairwise_distance(x1, x2, p=2.0, eps=1e-6, keepdim=False):
    a, b = _req(x1, "pairwise_distance", "x1"), _req(x2, "pairwise_distance", "x2")
    return (a - b + eps).norm(p, dim=-1, keepdim=keepdim)


def flatten(input, start_dim=0, end_dim=-1):
    return _req(input, "flatten").flatten(start_dim, end_dim)


def one_hot(tensor, num_classes=-1):
    t = _req(tensor, "one_hot", "target")
    T = _device.host(t._array)
    if T.dtype.kind not in "iu":
        raise DTypeError(f"one_hot: argument 'target' must be an index (integer) tensor, got {t.dtype}")
    if T.size and T.min() < 0:
        raise RuntimeError(f"one_hot: class values must be non-negative, got {int(T.min())}")
    n = (int(T.max()) + 1 if T.size else 0) if num_classes < 0 else int(num_classes)
    if T.size and T.max() >= n:
        raise RuntimeError(f"one_hot: class values must be smaller than num_classes ({n}), got {int(T.max())}")
    return _wrap((T[..., None] == np.arange(n)).astype(np.int64))


# -------------------------------------------------------------- normalization
def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    x, weight, bias = _req(input, "layer_norm"), _t(weight), _t(bias)
    X = x._array
    normalized_shape = tuple(normalized_shape) if isinstance(normalized_shape, (tuple, list)) else \
        (int(normalized_shape),)
    if tuple(X.shape[X.ndim - len(normalized_shape):]) != normalized_shape or len(normalized_shape) > X.ndim:
        raise ShapeError(f"layer_norm: given normalized_shape={list(normalized_shape)}, expected input with shape "
                           f"[*, {', '.join(map(str, normalized_shape))}], but got input of size {list(X.shape)}")
    Y, mean, rstd = ops.layer_norm(X, normalized_shape, _data(weight), _data(bias), eps)

    def back(g):
        gx, gw, gb = ops.layer_norm_backward(g, X, mean, rstd, normalized_shape, _data(weight))
        return gx, gw if _needs(weight) else None, gb if _needs(bias) else None
    return _result(Y, (x, weight, bias), back, "NativeLayerNormBackward0", saved=(x, weight))


def rms_norm(input, normalized_shape, weight=None, eps=None):
    x = _req(input, "rms_norm")
    n = len(normalized_shape) if isinstance(normalized_shape, (tuple, list)) else 1
    dims = tuple(range(-n, 0))
    e = eps if eps is not None else float(_device.finfo(x.dtype).eps)
    y = x * ((x * x).mean(dim=dims, keepdim=True) + e).rsqrt()
    return y * weight if weight is not None else y


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    """Batch normalization over every dim but the channel dim 1 (torch.nn.functional.batch_norm).

    In training, batch statistics normalize and the running buffers (updated in place) move by `momentum`
    with the unbiased variance, as in PyTorch; in eval, the running statistics normalize."""
    x, weight, bias = _req(input, "batch_norm"), _t(weight), _t(bias)
    X = x._array
    if X.ndim < 2:
        raise ValueError(f"batch_norm: input must be at least 2-D (N, C, ...), got shape {X.shape}")
    C = X.shape[1]
    rm = _data(running_mean) if isinstance(running_mean, Tensor) else running_mean
    rv = _data(running_var) if isinstance(running_var, Tensor) else running_var
    for name, buf in (("running_mean", rm), ("running_var", rv), ("weight", _data(weight)), ("bias", _data(bias))):
        if buf is not None and tuple(buf.shape) != (C,):
            raise RuntimeError(f"batch_norm: {name} should contain {C} elements not {int(np.prod(buf.shape))}")
    axes = (0,) + tuple(range(2, X.ndim))
    bshape = (1, C) + (1,) * (X.ndim - 2)
    count = X.size // max(C, 1)
    if training:
        if count <= 1:
            raise ValueError(f"batch_norm: expected more than 1 value per channel when training, got input "
                             f"size {list(X.shape)}")
        mean = X.mean(axis=axes)
        var = X.var(axis=axes)
        if rm is not None:
            rm *= 1 - momentum
            rm += momentum * mean.astype(rm.dtype)
            if isinstance(running_mean, Tensor):
                running_mean._counter[0] += 1
        if rv is not None:
            rv *= 1 - momentum
            rv += momentum * (var * count / (count - 1)).astype(rv.dtype)
            if isinstance(running_var, Tensor):
                running_var._counter[0] += 1
    else:
        if rm is None or rv is None:
            raise RuntimeError("batch_norm: running_mean and running_var are required when training=False")
        mean, var = rm, rv
    rstd = (1.0 / np.sqrt(var + eps)).astype(X.dtype)
    xhat = (X - mean.reshape(bshape).astype(X.dtype)) * rstd.reshape(bshape)
    W = _data(weight)
    Y = xhat * W.reshape(bshape) if W is not None else xhat.copy()
    if bias is not None:
        Y += bias._array.reshape(bshape)

    def back(g):
        gw = (g * xhat).sum(axis=axes) if _needs(weight) else None
        gb = g.sum(axis=axes) if _needs(bias) else None
        gx = None
        if x.requires_grad:
            scale = rstd if W is None else rstd * W
            if training:
                g_mean = g.mean(axis=axes, keepdims=True)
                gx_hat_mean = (g * xhat).mean(axis=axes, keepdims=True)
                gx = (g - g_mean - xhat * gx_hat_mean) * scale.reshape(bshape)
            else:
                gx = g * scale.reshape(bshape)
        return gx, gw, gb
    return _result(Y, (x, weight, bias), back, "NativeBatchNormBackward0", saved=(weight,))


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    """Normalizes each sample over groups of channels (torch.nn.functional.group_norm)."""
    x, weight, bias = _req(input, "group_norm"), _t(weight), _t(bias)
    X = x._array
    if X.ndim < 2:
        raise RuntimeError(f"group_norm: expected at least 2 dimensions for input tensor but received {X.ndim}")
    N, C = X.shape[:2]
    if isinstance(num_groups, bool) or not isinstance(num_groups, (int, np.integer)) or num_groups <= 0 or \
            C % num_groups:
        raise ShapeError(f"group_norm: expected number of channels in input to be divisible by num_groups, but "
                           f"got input of shape {list(X.shape)} and num_groups={num_groups}")
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None and tuple(p.shape) != (C,):
            raise ShapeError(f"group_norm: expected {name} to be a vector of size equal to the number of channels "
                               f"in input, but got {name} of shape {list(p.shape)} and input of shape {list(X.shape)}")
    G = int(num_groups)
    if X.dtype in (np.float32, np.float64) and isinstance(X, np.ndarray):
        Y, mean, rstd = ops.group_norm(X, G, _data(weight), _data(bias), eps)

        def native_back(g):
            gx, gw, gb = ops.group_norm_backward(g, X, mean, rstd, G, _data(weight))
            return gx, gw if _needs(weight) else None, gb if _needs(bias) else None
        return _result(Y, (x, weight, bias), native_back, "NativeGroupNormBackward0", saved=(x, weight))
    Xg = X.reshape(N, G, -1)
    mean = Xg.mean(axis=2, keepdims=True)
    var = Xg.var(axis=2, keepdims=True)
    rstd = 1.0 / np.sqrt(var + eps)
    xhat = ((Xg - mean) * rstd).astype(X.dtype)
    cshape = (1, C) + (1,) * (X.ndim - 2)
    xhat_full = xhat.reshape(X.shape)
    W = _data(weight)
    Y = xhat_full * W.reshape(cshape) if W is not None else xhat_full.copy()
    if bias is not None:
        Y = Y + bias._array.reshape(cshape)
    axes = (0,) + tuple(range(2, X.ndim))

    def back(g):
        gw = (g * xhat_full).sum(axis=axes) if _needs(weight) else None
        gb = g.sum(axis=axes) if _needs(bias) else None
        gx = None
        if x.requires_grad:
            gh = (g * W.reshape(cshape) if W is not None else g).reshape(N, G, -1)
            gx = (gh - gh.mean(axis=2, keepdims=True) - xhat * (gh * xhat).mean(axis=2, keepdims=True)) * rstd
            gx = gx.reshape(X.shape).astype(X.dtype)
        return gx, gw, gb
    return _result(Y.astype(X.dtype, copy=False), (x, weight, bias), back, "NativeGroupNormBackward0",
                   saved=(weight,))


def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None, use_input_stats=True,
                  momentum=0.1, eps=1e-5):
    """Normalizes each channel of each sample over its spatial dims."""
    x = _req(input, "instance_norm")
    if not use_input_stats:
        return batch_norm(x, running_mean, running_var, weight, bias, False, momentum, eps)
    N, C = x.shape[:2]
    y = group_norm(x, C, weight, bias, eps)
    if running_mean is not None or running_var is not None:
        X = x._array
        axes = tuple(range(2, X.ndim))
        m = X.mean(axis=axes).mean(axis=0)
        n = int(np.prod(X.shape[2:]))
        v = (X.var(axis=axes) * n / max(n - 1, 1)).mean(axis=0)
        for buf, val in ((running_mean, m), (running_var, v)):
            if buf is not None:
                arr = _data(buf) if isinstance(buf, Tensor) else buf
                arr *= 1 - momentum
                arr += momentum * val.astype(arr.dtype)
    return y


# ------------------------------------------------------------------- dropout
def dropout(input, p=0.5, training=True, inplace=False):
    x = _req(input, "dropout")
    p = _number(p, "dropout", "p", 0.0, 1.0)
    if not training or p == 0.0:
        return x
    X = x._array
    if p == 1.0 or X.dtype not in (np.float32, np.float64) and not _device.is_cupy(X):
        keep = _t_rng(None).random(X.shape) >= p
        scale = 0.0 if p == 1.0 else 1.0 / (1.0 - p)
        mask = (keep * scale).astype(X.dtype)
        out = _result(X * mask, (x,), lambda g: (g * mask,), "NativeDropoutBackward0")
    else:
        Y, mask = ops.dropout(X.reshape(-1) if X.ndim == 0 else X, p, True)
        Y = Y.reshape(X.shape)
        out = _result(Y, (x,), lambda g: (ops.dropout_backward(g.reshape(mask.shape), mask, p).reshape(X.shape),),
                      "NativeDropoutBackward0")
    if inplace:
        return x.copy_(out) if not x.requires_grad else x._inplace_unary("dropout_", lambda t: out)
    return out


def _channel_dropout(x, p, training, inplace, where, spatial):
    x = _req(x, where)
    p = _number(p, where, "p", 0.0, 1.0)
    if not training or p == 0.0:
        return x
    lead = x.shape[:x.ndim - spatial] if x.ndim > spatial else ()
    keep = (_t_rng(None).random(lead + (1,) * spatial) >= p).astype(x._array.dtype)
    mask = _wrap(keep / (1.0 - p) if p < 1 else keep * 0)
    return x.mul_(mask) if inplace else x * mask


def dropout1d(input, p=0.5, training=True, inplace=False):
    return _channel_dropout(input, p, training, inplace, "dropout1d", 1)


def dropout2d(input, p=0.5, training=True, inplace=False):
    return _channel_dropout(input, p, training, inplace, "dropout2d", 2)


def dropout3d(input, p=0.5, training=True, inplace=False):
    return _channel_dropout(input, p, training, inplace, "dropout3d", 3)


def alpha_dropout(input, p=0.5, training=False, inplace=False):
    x = _req(input, "alpha_dropout")
    p = _number(p, "alpha_dropout", "p", 0.0, 1.0)
    if not training or p == 0:
        return x
    alpha_p = -1.7580993408473766
    keep = _t_rng(None).random(x._array.shape) >= p
    a = (1 / math.sqrt((alpha_p ** 2 * p + 1) * (1 - p)))
    b = -a * alpha_p * p
    kept = _wrap(keep.astype(x._array.dtype))
    return (x * kept + alpha_p * (1 - kept)) * a + b


# ----------------------------------------------------------------- embedding
def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0, scale_grad_by_freq=False,
              sparse=False):
    """Rows of weight picked by integer indices; padding_idx rows get no gradient."""
    weight = _req(weight, "embedding", "weight")
    idx_t = _req(input, "embedding")
    idx = idx_t._array
    W = weight._array
    if idx.dtype.kind not in "iu":
        raise DTypeError(f"embedding: argument 'input' (the indices) must be int64 or int32 (Long, Int); got "
                         f"{idx_t.dtype}")
    if W.ndim != 2:
        raise RuntimeError(f"embedding: 'weight' must be 2-D, got shape {tuple(W.shape)}")
    n = W.shape[0]
    if idx.size:
        lo, hi = int(idx.min()), int(idx.max())
        if lo < 0 or hi >= n:
            raise IndexError(f"embedding: index {lo if lo < 0 else hi} is out of range for {n} embeddings "
                             f"(index out of range in self)")
    if padding_idx is not None and padding_idx < 0:
        padding_idx += n
    if max_norm is not None:
        rows = np.unique(_device.host(idx))
        norms = np.linalg.norm(W[rows], ord=norm_type, axis=1)
        scale = np.where(norms > max_norm, max_norm / (norms + 1e-7), 1.0).astype(W.dtype)
        W[rows] *= scale[:, None]
        weight._counter[0] += 1
    if sparse:
        raise NotImplementedError("embedding: sparse=True gradients are not supported; use sparse=False")
    native = isinstance(W, np.ndarray) and W.dtype in (np.float32, np.float64)
    if native:
        out = ops.embedding(W, idx.astype(np.int64, copy=False), padding_idx)
    else:
        out = W[idx]

    def back(g):
        flat_idx = idx.reshape(-1)
        g2 = g.reshape(-1, W.shape[1])
        if scale_grad_by_freq:
            counts = np.bincount(_device.host(flat_idx), minlength=n)
            g2 = g2 / counts[_device.host(flat_idx)][:, None]
        if native and not scale_grad_by_freq:
            return (ops.embedding_backward(g2, flat_idx.astype(np.int64, copy=False), n, padding_idx),)
        if padding_idx is not None:
            keep = flat_idx != padding_idx
            flat_idx, g2 = flat_idx[keep], g2[keep]
        xp = _device.array_module(g2)
        gw = xp.zeros_like(W)
        xp.add.at(gw, flat_idx, g2)
        return (gw,)
    return _result(out, (weight,), back, "EmbeddingBackward0")


# --------------------------------------------------- padding and resampling
def pad(input, pad, mode="constant", value=None):
    """torch.nn.functional.pad: pad is (left, right, top, bottom, ...) from the last dim backwards; modes
    constant, reflect, replicate, circular."""
    x = _req(input, "pad")
    if not isinstance(pad, (tuple, list)) or len(pad) % 2 or len(pad) // 2 > x.ndim:
        raise RuntimeError(f"pad: padding length must be divisible by 2 and at most twice the number of dims, got "
                           f"{pad!r}")
    pads = [(0, 0)] * x.ndim
    for i in range(len(pad) // 2):
        pads[x.ndim - 1 - i] = (int(pad[2 * i]), int(pad[2 * i + 1]))
    X = x._array
    xp = _device.array_module(X)
    if any(lo < 0 or hi < 0 for lo, hi in pads):       # negative padding crops
        sl = tuple(slice(max(-lo, 0), s - max(-hi, 0)) for (lo, hi), s in zip(pads, X.shape))
        x = x[sl]
        X = x._array
        pads = [(max(lo, 0), max(hi, 0)) for lo, hi in pads]
    if mode == "constant":
        Y = xp.pad(X, pads, mode="constant", constant_values=0 if value is None else value)
    elif mode in ("reflect", "replicate", "circular"):
        np_mode = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}[mode]
        for (lo, hi), s in zip(pads, X.shape):
            if mode == "reflect" and (lo >= s or hi >= s) and (lo or hi):
                raise RuntimeError(f"pad: padding size should be less than the corresponding input dimension, but "
                                   f"got: padding ({lo}, {hi}) at dimension of size {s}")
        Y = xp.pad(X, pads, mode=np_mode)
    else:
        raise NotImplementedError(f"pad: mode must be 'constant', 'reflect', 'replicate' or 'circular', got {mode!r}")
    if mode == "constant":
        sl = tuple(slice(lo, lo + s) for (lo, _), s in zip(pads, X.shape))
        return _result(Y, (x,), lambda g: (g[sl],), "ConstantPadNdBackward0")
    # the other modes copy input elements into the border: route gradients back through an index map
    index = xp.pad(xp.arange(X.size).reshape(X.shape), pads, mode=np_mode)
    shape = X.shape

    def back(g):
        full = xp.zeros(int(np.prod(shape)), g.dtype)
        xp.add.at(full, index.reshape(-1), g.reshape(-1))
        return (full.reshape(shape),)
    return _result(Y, (x,), back, "ReflectionPadBackward0")


def _resize_index(in_size, out_size, scale, align_corners, mode):
    """Source coordinates for each output position along one axis (torch's formulas)."""
    dst = np.arange(out_size, dtype=np.float64)
    if mode == "nearest":
        s = in_size / out_size if scale is None else 1.0 / scale
        return np.minimum(np.floor(dst * s).astype(np.int64), in_size - 1)
    if mode == "nearest-exact":
        s = in_size / out_size if scale is None else 1.0 / scale
        return np.minimum(np.floor((dst + 0.5) * s).astype(np.int64), in_size - 1)
    if align_corners:
        return dst * ((in_size - 1) / (out_size - 1)) if out_size > 1 else np.zeros(out_size)
    s = in_size / out_size if scale is None else 1.0 / scale
    src = (dst + 0.5) * s - 0.5
    return src if mode == "cubic" else np.maximum(src, 0.0)


def _cubic_taps(src, n_in, A=-0.75):
    """The four source indices (clamped to the edge) and Keys cubic-convolution weights (A = -0.75, torch's)
    for each fractional source coordinate."""
    base = np.floor(src)
    t = src - base
    base = base.astype(np.int64)

    def near(d):          # |d| <= 1
        return ((A + 2) * d - (A + 3)) * d * d + 1

    def far(d):           # 1 < |d| < 2
        return ((A * d - 5 * A) * d + 8 * A) * d - 4 * A
    weights = [far(t + 1), near(t), near(1 - t), far(2 - t)]
    return [(np.clip(base + o, 0, n_in - 1), w) for o, w in zip((-1, 0, 1, 2), weights)]


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None, recompute_scale_factor=None,
                antialias=False):
    """Resizes (N, C, *spatial): modes nearest, nearest-exact, linear, bilinear, trilinear, bicubic
    (separable interpolation per spatial axis) and area (adaptive average pooling), as
    torch.nn.functional.interpolate."""
    x = _req(input, "interpolate")
    spatial = x.ndim - 2
    if spatial < 1:
        raise ValueError(f"interpolate: expected (N, C, ...) input with spatial dims, got shape {tuple(x.shape)}")
    if mode in ("linear", "bilinear", "trilinear"):
        mode_kind = "linear"
    elif mode == "bicubic":
        if spatial != 2:
            raise ValueError(f"interpolate: mode 'bicubic' needs 4-D input, got shape {tuple(x.shape)}")
        mode_kind = "cubic"
    elif mode in ("nearest", "nearest-exact", "area"):
        mode_kind = mode
        if align_corners is not None:
            raise ValueError("interpolate: align_corners option can only be set with the interpolating modes: "
                             "linear | bilinear | bicubic | trilinear")
    else:
        raise ValueError(f"interpolate: mode {mode!r} is not one of nearest, nearest-exact, linear, bilinear, "
                         f"trilinear, bicubic, area")
    if antialias:
        raise NotImplementedError("interpolate: antialias=True is not supported")
    in_sizes = x.shape[2:]
    if (size is None) == (scale_factor is None):
        raise ValueError("interpolate: only one of size or scale_factor should be defined")
    if size is not None:
        outs = tuple(size) if isinstance(size, (tuple, list)) else (size,) * spatial
        scales = (None,) * spatial
    else:
        sf = tuple(scale_factor) if isinstance(scale_factor, (tuple, list)) else (scale_factor,) * spatial
        outs = tuple(int(math.floor(s * f)) for s, f in zip(in_sizes, sf))
        scales = (None,) * spatial if recompute_scale_factor else tuple(float(f) for f in sf)
    if len(outs) != spatial:
        raise ValueError(f"interpolate: size must have {spatial} entries for input of shape {tuple(x.shape)}")
    if mode_kind == "area":
        if spatial == 1:
            return adaptive_avg_pool1d(x, int(outs[0]))
        if spatial == 2:
            return adaptive_avg_pool2d(x, tuple(int(o) for o in outs))
        raise ValueError(f"interpolate: mode 'area' supports 3-D and 4-D input, got shape {tuple(x.shape)}")
    y = x
    for axis in range(spatial):
        dim = 2 + axis
        n_in, n_out = in_sizes[axis], int(outs[axis])
        if n_in == n_out and scales[axis] in (None, 1.0):
            continue
        src = _resize_index(n_in, n_out, scales[axis], bool(align_corners), mode_kind)
        if mode_kind == "cubic":
            shape = [1] * y.ndim
            shape[dim] = n_out
            taps = [y.index_select(dim, _wrap(idx)) * _wrap(w.astype(x._array.dtype).reshape(shape))
                    for idx, w in _cubic_taps(src, n_in)]
            y = taps[0] + taps[1] + taps[2] + taps[3]
            continue
        if mode_kind != "linear":
            y = y.index_select(dim, _wrap(src))
            continue
        lo = np.floor(src).astype(np.int64)
        lo = np.minimum(lo, n_in - 1)
        hi = np.minimum(lo + 1, n_in - 1)
        frac = (src - lo).astype(x._array.dtype)
        shape = [1] * y.ndim
        shape[dim] = n_out
        w_hi = _wrap(frac.reshape(shape))
        y = y.index_select(dim, _wrap(lo)) * (1 - w_hi) + y.index_select(dim, _wrap(hi)) * w_hi
    return y if y is not x else x.clone()


def upsample(input, size=None, scale_factor=None, mode="nearest", align_corners=None):
    return interpolate(input, size, scale_factor, mode, align_corners)


def pixel_shuffle(input, upscale_factor):
    x = _req(input, "pixel_shuffle")
    r = int(upscale_factor)
    *lead, C, H, W = x.shape
    if C % (r * r):
        raise ShapeError(f"pixel_shuffle expects its input's 'channel' dimension to be divisible by the square of "
                           f"upscale_factor, but input.size(-3)={C} is not divisible by {r * r}")
    n = len(lead)
    y = x.reshape(*lead, C // (r * r), r, r, H, W)
    y = y.permute(*range(n), n, n + 3, n + 1, n + 4, n + 2)
    return y.reshape(*lead, C // (r * r), H * r, W * r)


def pixel_unshuffle(input, downscale_factor):
    x = _req(input, "pixel_unshuffle")
    r = int(downscale_factor)
    *lead, C, H, W = x.shape
    if H % r or W % r:
        raise ShapeError(f"pixel_unshuffle expects height and width to be divisible by downscale_factor ({r}), got "
                           f"{H}x{W}")
    n = len(lead)
    y = x.reshape(*lead, C, H // r, r, W // r, r)
    y = y.permute(*range(n), n, n + 2, n + 4, n + 1, n + 3)
    return y.reshape(*lead, C * r * r, H // r, W // r)


def _patch_index(H, W, k, d, p, s):
    oh = (H + 2 * p[0] - d[0] * (k[0] - 1) - 1) // s[0] + 1
    ow = (W + 2 * p[1] - d[1] * (k[1] - 1) - 1) // s[1] + 1
    rows = (np.arange(oh) * s[0])[None, :] + (np.arange(k[0]) * d[0])[:, None]       # (kh, oh)
    cols = (np.arange(ow) * s[1])[None, :] + (np.arange(k[1]) * d[1])[:, None]       # (kw, ow)
    return oh, ow, rows, cols


def unfold(input, kernel_size, dilation=1, padding=0, stride=1):
    """Extracts sliding blocks (im2col): (N, C, H, W) -> (N, C*kh*kw, L)."""
    x = _req(input, "unfold")
    if x.ndim != 4:
        raise NotImplementedError(f"unfold: only 4-D (N, C, H, W) input is supported, got shape {tuple(x.shape)}")
    k, d = _tuple(kernel_size, 2, "unfold", "kernel_size"), _tuple(dilation, 2, "unfold", "dilation")
    p, s = _tuple(padding, 2, "unfold", "padding"), _tuple(stride, 2, "unfold", "stride")
    N, C, H, W = x.shape
    xp_ = pad(x, (p[1], p[1], p[0], p[0])) if any(p) else x
    oh, ow, rows, cols = _patch_index(H, W, k, d, p, s)
    if oh <= 0 or ow <= 0:
        raise RuntimeError(f"unfold: the kernel {k} does not fit the padded input {H + 2 * p[0]}x{W + 2 * p[1]}")
    Wp = W + 2 * p[1]
    flat = (rows[:, None, :, None] * Wp + cols[None, :, None, :]).reshape(-1)     # (kh*kw*oh*ow)
    picked = xp_.reshape(N, C, -1).index_select(2, _wrap(flat))
    return picked.reshape(N, C * k[0] * k[1], oh * ow)


def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """Sums sliding blocks back into an image (col2im), the adjoint of unfold."""
    x = _req(input, "fold")
    k, d = _tuple(kernel_size, 2, "fold", "kernel_size"), _tuple(dilation, 2, "fold", "dilation")
    p, s = _tuple(padding, 2, "fold", "padding"), _tuple(stride, 2, "fold", "stride")
    H, W = _tuple(output_size, 2, "fold", "output_size")
    N = x.shape[0]
    C = x.shape[1] // (k[0] * k[1])
    oh, ow, rows, cols = _patch_index(H, W, k, d, p, s)
    if x.shape[2] != oh * ow:
        raise ShapeError(f"fold: expected {oh * ow} blocks for output_size {(H, W)}, got {x.shape[2]}")
    Hp, Wp = H + 2 * p[0], W + 2 * p[1]
    flat = (rows[:, None, :, None] * Wp + cols[None, :, None, :]).reshape(-1)
    out = _t_zeros(N, C, Hp * Wp, dtype=x.dtype)
    out = out.index_add(2, _wrap(flat), x.reshape(N, C, -1))
    out = out.reshape(N, C, Hp, Wp)
    return out[:, :, p[0]:p[0] + H, p[1]:p[1] + W]


# ---------------------------------------------------------------------- LSTM
def lstm(x, h0, c0, w_ih, w_hh, b_ih=None, b_hh=None):
    """One LSTM layer over a (T, B, I) sequence: returns (y, h_T, c_T) Tensors."""
    x, h0, c0, w_ih, w_hh, b_ih, b_hh = (_t(v) for v in (x, h0, c0, w_ih, w_hh, b_ih, b_hh))
    y, hT, cT, cache = ops.lstm(x._array, h0._array, c0._array, w_ih._array, w_hh._array, _data(b_ih), _data(b_hh))

    def back(grads):
        gy, ghT, gcT = grads
        gx, gh0, gc0, gw_ih, gw_hh, gb_ih, gb_hh = ops.lstm_backward(gy, ghT, gcT, cache)
        return gx, gh0, gc0, gw_ih, gw_hh, gb_ih, gb_hh
    return _multi_output((y, hT, cT), (x, h0, c0, w_ih, w_hh, b_ih, b_hh), back, "LSTMBackward")


# ----------------------------------------------------------------- attention
def _explicit_attention(q, k, v, attn_mask, is_causal, scale, dropout_p):
    """softmax(q k^T * scale + mask) v with the weights formed (torch's math path): for attention-weight
    dropout and for a value head dim that differs from the query's."""
    s = (1.0 / math.sqrt(q.shape[-1])) if scale is None else scale
    scores = _t_matmul(q, k.transpose(-2, -1)) * s
    if is_causal:
        scores = scores.masked_fill(_wrap(~np.tril(np.ones((q.shape[-2], k.shape[-2]), bool))), float("-inf"))
    if attn_mask is not None:
        m = _req(attn_mask, "scaled_dot_product_attention", "attn_mask")
        scores = scores.masked_fill(~m, float("-inf")) if m.dtype == _device.bool_ else scores + m
    weights = _t_softmax(scores, -1)
    weights = where(weights.isnan(), _t_zeros_like(weights), weights)     # rows with every key masked
    if dropout_p:
        weights = dropout(weights, dropout_p, True)
    return _t_matmul(weights, v)


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None,
                                 enable_gqa=False):
    """softmax(q k^T * scale + mask) v over (..., N, D) tensors, by the flash kernel (torch's signature).

    attn_mask: bool (True = take part) or additive float, broadcastable to (..., Nq, Nk). Query rows with
    every key masked give zeros. dropout_p > 0 (training) runs the explicit form, which can drop weights.
    enable_gqa: key/value with fewer heads than query are repeated to match (grouped-query attention)."""
    where = "scaled_dot_product_attention"
    q, k, v = _req(query, where, "query"), _req(key, where, "key"), _req(value, where, "value")
    dropout_p = _number(dropout_p, where, "dropout_p", 0.0, 1.0)
    if is_causal and attn_mask is not None:
        raise RuntimeError(f"{where}: explicit attn_mask should not be set when is_causal=True")
    if q.ndim < 2 or k.ndim != q.ndim or v.ndim != q.ndim:
        raise ValueError(f"{where}: query, key and value must have the same number of dimensions (at least 2), "
                         f"got shapes {tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}")
    if enable_gqa and q.ndim >= 3 and k.shape[-3] != q.shape[-3]:
        if q.shape[-3] % k.shape[-3]:
            raise RuntimeError(f"{where}: the number of query heads ({q.shape[-3]}) must be a multiple of the key "
                               f"heads ({k.shape[-3]}) with enable_gqa")
        rep = q.shape[-3] // k.shape[-3]
        k, v = k.repeat_interleave(rep, dim=-3), v.repeat_interleave(rep, dim=-3)
    Q, K, V = q._array, k._array, v._array
    lead = np.broadcast_shapes(Q.shape[:-2], K.shape[:-2], V.shape[:-2])
    if K.shape[-1] != Q.shape[-1] or V.shape[-2] != K.shape[-2]:
        raise ValueError(f"{where}: shapes do not fit: query {tuple(Q.shape)}, key {tuple(K.shape)}, value "
                         f"{tuple(V.shape)}")
    mask = None
    if attn_mask is not None:
        mask = attn_mask._array if isinstance(attn_mask, Tensor) else np.asarray(attn_mask)
        if mask.dtype != np.bool_ and mask.dtype != Q.dtype:
            if mask.dtype.kind != "f":
                raise TypeError(f"{where}: attn_mask must be bool or of the query's float dtype, got {mask.dtype}")
            mask = mask.astype(Q.dtype)
        try:
            full = np.broadcast_shapes(mask.shape, lead + (Q.shape[-2], K.shape[-2]))
        except ValueError:
            raise RuntimeError(f"{where}: attn_mask of shape {tuple(mask.shape)} does not broadcast to "
                               f"{lead + (Q.shape[-2], K.shape[-2])}") from None
        lead = full[:-2]
    if dropout_p > 0.0:
        return _explicit_attention(q, k, v, attn_mask, is_causal, scale, dropout_p)
    shape_q = lead + Q.shape[-2:]
    shape_k = lead + K.shape[-2:]
    shape_v = lead + V.shape[-2:]
    xp = _device.array_module(Q)

    def to4(a, shape):
        a = xp.broadcast_to(a, shape) if a.shape != shape else a
        if a.ndim == 4:
            return a
        if a.ndim < 4:
            return a.reshape((1,) * (4 - a.ndim) + a.shape)
        return a.reshape((-1,) + a.shape[-3:])
    if mask is not None:
        # the kernel takes (B or 1, H or 1, Nq, Nk); q's leading dims beyond two fold into B, so the mask
        # is expanded over them only when it varies along them
        m = mask.reshape((1,) * (len(lead) + 2 - mask.ndim) + mask.shape)
        if m.ndim > 4:
            outer, head = m.shape[:len(lead) - 1], m.shape[len(lead) - 1]
            if all(o == 1 for o in outer):
                m = m.reshape((1, head) + m.shape[-2:])
            else:
                m = xp.broadcast_to(m, lead[:-1] + (head,) + m.shape[-2:]).reshape((-1, head) + m.shape[-2:])
        else:
            m = m.reshape((1,) * (4 - m.ndim) + m.shape)
        mask = m
    Q4, K4, V4 = to4(Q, shape_q), to4(K, shape_k), to4(V, shape_v)
    if V4.shape[-1] != Q4.shape[-1]:
        # the flash kernel wants one head dim for q/k and v: the explicit form handles a different value dim
        return _explicit_attention(q, k, v, attn_mask, is_causal, scale, 0.0)
    out, lse = ops.attention(Q4, K4, V4, causal=is_causal, mask=mask, scale=scale)
    q_shape, k_shape, v_shape = Q.shape, K.shape, V.shape

    def back(g):
        gq, gk, gv = ops.attention_backward(to4(g, shape_q), Q4, K4, V4, out, lse, causal=is_causal, mask=mask,
                                            scale=scale)
        return (_unbroadcast(gq.reshape(shape_q), q_shape), _unbroadcast(gk.reshape(shape_k), k_shape),
                _unbroadcast(gv.reshape(shape_v), v_shape))
    return _result(out.reshape(shape_q), (q, k, v), back, "ScaledDotProductFlashAttentionBackward0",
                   saved=(q, k, v))


# -------------------------------------------------------------------- losses
def _class_targets(target, where):
    """The integer class targets as an int64 array, refusing values int64 cannot hold (a uint64 2**64-100 must
    not wrap to -100 and be ignored)."""
    T = _data(target) if isinstance(target, Tensor) else np.asarray(target)
    if T.dtype.kind == "u" and T.dtype.itemsize == 8 and T.size and T.max() > np.iinfo(np.int64).max:
        raise IndexError(f"{where}: target {int(T.max())} is out of range (larger than int64 can hold)")
    return T


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean",
                  label_smoothing=0.0):
    """Cross entropy of logits (N, C) or (N, C, d1, ...) with class indices, or with class probabilities of the
    logits' shape (torch's CrossEntropyLoss)."""
    where = "cross_entropy"
    reduction = _legacy_reduction(size_average, reduce, reduction)
    x = _req(input, where)
    X = x._array
    T = _class_targets(target, where)
    label_smoothing = _number(label_smoothing, where, "label_smoothing", 0.0, 1.0)
    if X.ndim == 0:
        raise ValueError("cross_entropy: argument 'input' must be (N, C) or (N, C, d1, ...), got a scalar")
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"{where}: argument 'reduction' must be 'mean', 'sum' or 'none', got {reduction!r}")
    if T.dtype.kind == "f":   # class probabilities
        if T.shape != X.shape:
            raise ValueError(f"cross_entropy: probability targets must have the input's shape {X.shape}, "
                             f"got {T.shape}")
        cdim = 1 if X.ndim > 1 else 0
        C = X.shape[cdim]
        # a Tensor target stays in the graph: torch differentiates soft targets too
        tt = target if isinstance(target, Tensor) else _wrap(T.astype(X.dtype, copy=False))
        if label_smoothing:
            tt = tt * (1 - label_smoothing) + label_smoothing / C
        w = 1.0 if weight is None else _wrap(np.asarray(_data(_t(weight)), X.dtype).reshape(
            (C,) + (1,) * (X.ndim - cdim - 1)))
        loss = -(_t_log_softmax(x, cdim) * (tt * w)).sum(dim=cdim)
        return _reduce(loss, reduction, where)
    if T.dtype.kind not in "iu":
        raise TypeError(f"cross_entropy: argument 'target' must hold integer class indices or float "
                        f"probabilities, got dtype {T.dtype}")
    kw = dict(weight=weight, ignore_index=ignore_index, reduction=reduction, label_smoothing=label_smoothing)
    if X.ndim == 1:      # one unbatched sample
        if T.ndim != 0:
            raise ValueError(f"cross_entropy: an unbatched input ({X.shape}) needs a 0-d target, got {T.shape}")
        return cross_entropy(x.reshape(1, -1), T.reshape(1), **kw).reshape(())
    if X.ndim > 2:       # (N, C, d...) -> (N*d, C)
        C = X.shape[1]
        if T.shape != (X.shape[0],) + X.shape[2:]:
            raise ValueError(f"cross_entropy: target shape {T.shape} does not fit input shape {X.shape}")
        moved = x.permute((0,) + tuple(range(2, X.ndim)) + (1,)).reshape(-1, C)
        loss = cross_entropy(moved, T.reshape(-1), **kw)
        return loss.reshape(T.shape) if reduction == "none" else loss
    if T.shape != (X.shape[0],):
        raise ValueError(f"cross_entropy: target must have shape ({X.shape[0]},) for input {X.shape}, "
                         f"got {T.shape}")
    N, C = X.shape
    valid = T != ignore_index
    if valid.any() and (T[valid].min() < 0 or T[valid].max() >= C):
        raise IndexError(f"cross_entropy: target {int(T[valid].max() if T[valid].max() >= C else T[valid].min())} "
                         f"is out of range for {C} classes")
    if weight is None and reduction == "mean" and X.dtype in (np.float32, np.float64):
        T64 = T.astype(np.int64, copy=False)
        value = ops.cross_entropy(X, T64, ignore_index=ignore_index, label_smoothing=label_smoothing)
        return _result(np.asarray(value, X.dtype), (x,),
                       lambda g: (ops.cross_entropy_backward(X, T64, float(g), ignore_index=ignore_index,
                                                             label_smoothing=label_smoothing),),
                       "NllLossBackward0", saved=(x,))
    # weights or other reductions: the composite form (torch's formula)
    logp = _t_log_softmax(x, 1)
    safe_t = np.where(valid, T, 0)
    w = np.ones(C, X.dtype) if weight is None else np.asarray(_data(_t(weight)), X.dtype)
    wt = w[safe_t] * valid
    nll = -logp[np.arange(N), safe_t] * _wrap(wt)
    if label_smoothing:
        smooth = -(logp * _wrap(w)).sum(dim=1) * _wrap(valid.astype(X.dtype))
        loss = nll * (1 - label_smoothing) + smooth * (label_smoothing / C)
    else:
        loss = nll
    if reduction == "mean":
        return loss.sum() / float(wt.sum())
    return _reduce(loss, reduction, where)


def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean"):
    """Negative log-likelihood of log-probabilities (N, C), (N, C, d1, ...) or (C,) at integer targets (N,),
    (N, d1, ...) or ()."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    x = _req(input, "nll_loss")
    T = _class_targets(target, "nll_loss")
    if T.dtype.kind not in "iu":
        raise TypeError(f"nll_loss: argument 'target' must hold integer class indices, got dtype {T.dtype}")
    kw = dict(weight=weight, ignore_index=ignore_index, reduction=reduction)
    if x.ndim == 1 and T.ndim == 0:      # one unbatched sample
        return nll_loss(x.reshape(1, -1), T.reshape(1), **kw).reshape(())
    if x.ndim > 2 and T.shape == (x.shape[0],) + x.shape[2:]:     # (N, C, d...) -> (N*d, C)
        moved = x.permute((0,) + tuple(range(2, x.ndim)) + (1,)).reshape(-1, x.shape[1])
        loss = nll_loss(moved, T.reshape(-1), **kw)
        return loss.reshape(T.shape) if reduction == "none" else loss
    if x.ndim != 2 or T.shape != (x.shape[0],):
        raise ValueError(f"nll_loss: expected input (N, C) [or (N, C, d1, ...)] and target (N,) [or (N, d1, ...)], "
                         f"got {x.shape} and {T.shape}")
    N, C = x.shape
    valid = T != ignore_index
    if valid.any() and (T[valid].min() < 0 or T[valid].max() >= C):
        bad = T[valid].max() if T[valid].max() >= C else T[valid].min()
        raise IndexError(f"nll_loss: target {int(bad)} is out of range for {C} classes")
    safe_t = np.where(valid, T, 0)
    w = np.ones(C, x._array.dtype) if weight is None else np.asarray(_data(_t(weight)), x._array.dtype)
    wt = w[safe_t] * valid
    loss = -x[np.arange(N), safe_t] * _wrap(wt)
    if reduction == "mean":
        return loss.sum() / float(wt.sum())
    return _reduce(loss, reduction, "nll_loss")


def _pair_args(where, input, target):
    x, y = _req(input, where), _req(target, where, "target")
    if x.shape != y.shape:
        try:
            np.broadcast_shapes(x.shape, y.shape)
        except ValueError:
            raise ShapeError(f"{where}: the size of 'input' {tuple(x.shape)} must match the size of 'target' "
                             f"{tuple(y.shape)}") from None
        warnings.warn(f"{where}: Using a target size ({tuple(y.shape)}) that is different to the input size "
                      f"({tuple(x.shape)}). This will likely lead to incorrect results due to broadcasting. Please "
                      f"ensure they have the same size.", UserWarning, stacklevel=3)
    return x, y


def mse_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    x, y = _pair_args("mse_loss", input, target)
    d = x - y
    loss = d * d
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, _legacy_reduction(size_average, reduce, reduction), "mse_loss")


def l1_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    x, y = _pair_args("l1_loss", input, target)
    loss = (x - y).abs()
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, _legacy_reduction(size_average, reduce, reduction), "l1_loss")


def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction="mean", beta=1.0):
    x, y = _pair_args("smooth_l1_loss", input, target)
    beta = _number(beta, "smooth_l1_loss", "beta", 0.0)
    d = (x - y).abs()
    loss = d if beta == 0 else where(d < beta, 0.5 * d * d / beta, d - 0.5 * beta)
    return _reduce(loss, _legacy_reduction(size_average, reduce, reduction), "smooth_l1_loss")


def huber_loss(input, target, reduction="mean", delta=1.0, weight=None):
    x, y = _pair_args("huber_loss", input, target)
    delta = _number(delta, "huber_loss", "delta", 0.0)
    d = (x - y).abs()
    loss = where(d < delta, 0.5 * d * d, delta * (d - 0.5 * delta))
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction, "huber_loss")


def kl_div(input, target, size_average=None, reduce=None, reduction="mean", log_target=False):
    """KL divergence with input as log-probabilities (torch's convention); 'batchmean' divides by the batch."""
    x, y = _req(input, "kl_div"), _req(target, "kl_div", "target")
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if log_target:
        loss = y.exp() * (y - x)
    else:
        safe = where(y > 0, y, _t_ones_like(y))
        loss = where(y > 0, y * (safe.log() - x), _t_zeros_like(x * 0))
    if reduction == "batchmean":
        return loss.sum() / (x.shape[0] if x.ndim else 1)
    return _reduce(loss, reduction, "kl_div")


def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None, reduction="mean"):
    """-(y log p + (1-y) log(1-p)) of probabilities p; logs clamped at -100 like torch."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    p, y = _req(input, "binary_cross_entropy"), _req(target, "binary_cross_entropy", "target")
    if p.shape != y.shape:
        raise ValueError(f"binary_cross_entropy: using a target size ({tuple(y.shape)}) that is different to the "
                         f"input size ({tuple(p.shape)}) is deprecated; please ensure they have the same size")
    P, Y = p._array, y._array.astype(p._array.dtype, copy=False)
    if P.size and (P.min() < 0 or P.max() > 1):
        raise ArgumentError("binary_cross_entropy: all elements of argument 'input' should be between 0 and 1; use "
                           "binary_cross_entropy_with_logits for logits")
    with np.errstate(divide="ignore"):
        log_p = np.maximum(np.log(P), -100)
        log_1p = np.maximum(np.log1p(-P), -100)
    loss = -(Y * log_p + (1 - Y) * log_1p)
    W = None if weight is None else np.asarray(_data(_t(weight)), P.dtype)
    if W is not None:
        loss = loss * W
    eps = 1e-12

    def back(g):
        gp = g * (P - Y) / np.maximum(P * (1 - P), eps)
        gy = None if not y.requires_grad else g * (log_1p - log_p) * (1 if W is None else W)  # torch's target grad
        return (gp * W if W is not None else gp, gy)
    out = _result(loss.astype(P.dtype, copy=False), (p, y), back, "BinaryCrossEntropyBackward0", saved=(p, y))
    return _reduce(out, reduction, "binary_cross_entropy")


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None, reduce=None, reduction="mean",
                                     pos_weight=None):
    """Sigmoid + binary cross entropy in the stable log-sum-exp form."""
    where_ = "binary_cross_entropy_with_logits"
    reduction = _legacy_reduction(size_average, reduce, reduction)
    x, y = _req(input, where_), _req(target, where_, "target")
    if x.shape != y.shape:
        raise ValueError(f"{where_}: target size ({tuple(y.shape)}) must be the same as input size "
                         f"({tuple(x.shape)})")
    X, Y = x._array, y._array.astype(x._array.dtype, copy=False)
    W = None if weight is None else np.asarray(_data(_t(weight)), X.dtype)
    PW = None if pos_weight is None else np.asarray(_data(_t(pos_weight)), X.dtype)
    softplus_neg = np.logaddexp(0, -X)          # -log(sigmoid(x))
    if PW is None:
        loss = (1 - Y) * X + softplus_neg
    else:
        lw = 1 + (PW - 1) * Y
        loss = (1 - Y) * X + lw * softplus_neg
    if W is not None:
        loss = loss * W

    def back(g):
        s = ops.sigmoid(X) if X.dtype in (np.float32, np.float64) else 1 / (1 + np.exp(-X))
        gx = s - Y if PW is None else (1 - Y) - (1 + (PW - 1) * Y) * (1 - s)
        gx = g * gx
        if W is not None:
            gx = gx * W
        gy = None
        if y.requires_grad:   # torch differentiates in the target too
            gy = g * (-X if PW is None else (PW - 1) * softplus_neg - X) * (1 if W is None else W)
            gy = _unbroadcast(gy, Y.shape)
        return (_unbroadcast(gx, X.shape), gy)
    out = _result(loss.astype(X.dtype, copy=False), (x, y), back, "BinaryCrossEntropyWithLogitsBackward0",
                  saved=(x, y))
    return _reduce(out, reduction, where_)


def cosine_embedding_loss(input1, input2, target, margin=0.0, size_average=None, reduce=None, reduction="mean"):
    cos = cosine_similarity(input1, input2, dim=-1)
    t = _req(target, "cosine_embedding_loss", "target")
    loss = where(t > 0, 1 - cos, (cos - margin).clamp_min(0))
    return _reduce(loss, _legacy_reduction(size_average, reduce, reduction), "cosine_embedding_loss")


def margin_ranking_loss(input1, input2, target, margin=0.0, size_average=None, reduce=None, reduction="mean"):
    loss = (-_req(target, "margin_ranking_loss", "target") * (input1 - input2) + margin).clamp_min(0)
    return _reduce(loss, _legacy_reduction(size_average, reduce, reduction), "margin_ranking_loss")


def hinge_embedding_loss(input, target, margin=1.0, size_average=None, reduce=None, reduction="mean"):
    x, t = _req(input, "hinge_embedding_loss"), _req(target, "hinge_embedding_loss", "target")
    loss = where(t > 0, x, (margin - x).clamp_min(0))
    return _reduce(loss, _legacy_reduction(size_average, reduce, reduction), "hinge_embedding_loss")


def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2, eps=1e-6, swap=False, size_average=None,
                        reduce=None, reduction="mean"):
    d_pos = pairwise_distance(anchor, positive, p, eps)
    d_neg = pairwise_distance(anchor, negative, p, eps)
    if swap:
        d_neg = _t_minimum(d_neg, pairwise_distance(positive, negative, p, eps))
    loss = (d_pos - d_neg + margin).clamp_min(0)
    return _reduce(loss, _legacy_reduction(size_average, reduce, reduction), "triplet_margin_loss")


def soft_margin_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    x, y = _pair_args("soft_margin_loss", input, target)
    return _reduce(softplus(-y * x), _legacy_reduction(size_average, reduce, reduction), "soft_margin_loss")


def multilabel_soft_margin_loss(input, target, weight=None, size_average=None, reduce=None, reduction="mean"):
    x, y = _pair_args("multilabel_soft_margin_loss", input, target)
    loss = -(y * logsigmoid(x) + (1 - y) * logsigmoid(-x))
    if weight is not None:
        loss = loss * weight
    loss = loss.mean(dim=-1)
    return _reduce(loss, _legacy_reduction(size_average, reduce, reduction), "multilabel_soft_margin_loss")


def poisson_nll_loss(input, target, log_input=True, full=False, size_average=None, eps=1e-8, reduce=None,
                     reduction="mean"):
    x, y = _pair_args("poisson_nll_loss", input, target)
    loss = x.exp() - y * x if log_input else x - y * (x + eps).log()
    if full:
        yy = y.detach()
        stirling = yy * yy.clamp_min(1).log() - yy + 0.5 * (2 * math.pi * yy.clamp_min(1)).log()
        loss = loss + where(yy > 1, stirling, _t_zeros_like(yy))
    return _reduce(loss, _legacy_reduction(size_average, reduce, reduction), "poisson_nll_loss")


def gaussian_nll_loss(input, target, var, full=False, eps=1e-6, reduction="mean"):
    x, y = _pair_args("gaussian_nll_loss", input, target)
    v = _req(var, "gaussian_nll_loss", "var").clamp_min(eps)
    loss = 0.5 * (v.log() + (x - y) ** 2 / v)
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _reduce(loss, reduction, "gaussian_nll_loss")
