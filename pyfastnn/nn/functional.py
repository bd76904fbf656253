"""Differentiable neural-network ops on Tensors, like ``torch.nn.functional``.

Each function runs one native forward kernel from ``pyfastnn.ops`` and records
a closure that calls the matching native backward kernel; composites (losses
built from log_softmax, batch norm) are written in array code with one
hand-derived backward each, so no op costs more than one graph node.
"""
from __future__ import annotations

import numpy as np

from .. import ops
from ..tensor import (Tensor, _result, _storage, _unbroadcast, _wrap, gelu, log_softmax, relu, sigmoid, softmax,
                      tanh)

__all__ = ["linear", "conv2d", "max_pool2d", "avg_pool2d", "relu", "gelu", "sigmoid", "tanh", "softmax",
           "log_softmax", "layer_norm", "batch_norm", "dropout", "embedding", "lstm", "scaled_dot_product_attention",
           "cross_entropy", "nll_loss", "mse_loss", "l1_loss", "binary_cross_entropy",
           "binary_cross_entropy_with_logits", "flatten", "one_hot"]


def _t(x, where=None):
    """Tensors pass through; arrays become constant Tensors (None too: optional arguments)."""
    if isinstance(x, Tensor) or x is None:
        return x
    return Tensor(x) if where is None else Tensor(_storage(x, where=where), _trusted=True)


def _req(x, where, name="input"):
    """A required argument as a Tensor; None or non-numbers are a TypeError naming the op and argument."""
    if isinstance(x, Tensor):
        return x
    if x is None:
        raise TypeError(f"{where}: argument '{name}' must be a Tensor or an array, got None")
    return _t(x, f"{where}: argument '{name}'")


def _data(x):
    return None if x is None else x._array


def _needs(t):
    return t is not None and t.requires_grad


class _OutputGrads:
    """The gradient of a multi-output op: one slot per output, summed slot-wise."""
    __slots__ = ("grads",)

    def __init__(self, grads):
        self.grads = grads

    def __add__(self, other):
        return _OutputGrads([b if a is None else a if b is None else a + b for a, b in zip(self.grads, other.grads)])


def _multi_output(arrays, inputs, backward, name):
    """Tensors for several outputs of one op; backward(list of output grads, None
    where an output got none) -> grads for inputs. The op runs its backward once."""
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


# -------------------------------------------------------------------- linear
_FUSED_BACKWARD = {"relu": lambda g, y: g * (y > 0),
                   "sigmoid": lambda g, y: ops.sigmoid_backward(g, y),
                   "tanh": lambda g, y: ops.tanh_backward(g, y)}


def linear(x, weight, bias=None, activation=None):
    """``act(x @ weight.T + bias)``, the bias and activation fused into the GEMM.

    x (..., in); weight (out, in); bias (out,). ``activation`` (None, 'relu',
    'sigmoid', 'tanh') is an extension over torch's signature: layers use it
    to skip a separate activation pass.
    """
    x, weight, bias = _req(x, "linear"), _req(weight, "linear", "weight"), _t(bias)
    X, W, b = x._array, weight._array, _data(bias)
    if X.ndim == 0:
        raise ValueError("linear: argument 'input' must have at least one dimension")
    if W.ndim != 2 or X.shape[-1] != W.shape[1]:
        raise ValueError(f"linear: input has {X.shape[-1]} features (shape {X.shape}) but the weight "
                         f"has shape {W.shape}, expecting (out_features, {X.shape[-1]})")
    if activation is not None and activation not in _FUSED_BACKWARD:
        raise ValueError(f"linear: argument 'activation' must be None, 'relu', 'sigmoid' or 'tanh', "
                         f"got {activation!r}")
    lead = X.shape[:-1]
    X2 = X.reshape(-1, X.shape[-1]) if X.ndim != 2 else X
    if X2.dtype != W.dtype:
        raise TypeError(f"linear: input dtype {X2.dtype} does not match the weight dtype {W.dtype}")
    Y = ops.matmul(X2, W, b, activation=activation, trans_b=True)

    def back(g):
        g2 = g.reshape(-1, g.shape[-1]) if g.ndim != 2 else g
        if activation is not None:
            g2 = _FUSED_BACKWARD[activation](g2, Y)
        gx = ops.matmul(g2, W).reshape(X.shape) if x.requires_grad else None
        gw = ops.matmul(g2, X2, trans_a=True) if weight.requires_grad else None
        gb = g2.sum(axis=0) if _needs(bias) else None
        return gx, gw, gb
    return _result(Y.reshape(lead + (W.shape[0],)) if X.ndim != 2 else Y, (x, weight, bias), back, "LinearBackward")


# --------------------------------------------------------------- convolution
def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution, NCHW input and OIHW weight (torch.nn.functional.conv2d)."""
    x, weight, bias = _req(x, "conv2d"), _req(weight, "conv2d", "weight"), _t(bias)
    unbatched = x._array.ndim == 3
    X = x._array[None] if unbatched else x._array
    crop = None
    if isinstance(padding, str) and padding == "same" and X.ndim == 4 and weight._array.ndim == 4:
        # torch's 'same' for an even effective kernel pads one more at the bottom/right:
        # pad that extra row/column here and give the kernel the symmetric part
        dil = dilation if isinstance(dilation, (tuple, list)) else (dilation, dilation)
        total = [int(dil[i]) * (weight._array.shape[2 + i] - 1) for i in range(2)]
        lo = [t // 2 for t in total]
        extra = [t - 2 * l for t, l in zip(total, lo)]
        if any(extra) and all(s == 1 for s in (stride if isinstance(stride, (tuple, list)) else (stride, stride))):
            crop = X.shape[2:]
            xp = np if isinstance(X, np.ndarray) else __import__("cupy")
            X = xp.pad(X, ((0, 0), (0, 0), (0, extra[0]), (0, extra[1])))
            padding = tuple(lo)
    Y = ops.conv2d(X, weight._array, _data(bias), stride, padding, dilation, groups)

    def back(g):
        gx, gw, gb = ops.conv2d_backward(g[None] if unbatched else g, X, weight._array, stride, padding, dilation,
                                         groups, need_grad_x=x.requires_grad, need_grad_w=weight.requires_grad)
        if crop is not None and gx is not None:
            gx = gx[:, :, :crop[0], :crop[1]]
        return (gx[0] if unbatched and gx is not None else gx), gw, gb if _needs(bias) else None
    return _result(Y[0] if unbatched else Y, (x, weight, bias), back, "ConvolutionBackward")


def max_pool2d(x, kernel_size, stride=None, padding=0, return_indices=False):
    """Max pooling over (…, H, W) windows with PyTorch's semantics."""
    x = _req(x, "max_pool2d")
    shape = x._array.shape
    Y, idx = ops.max_pool2d(x._array, kernel_size, stride, padding)
    out = _result(Y, (x,), lambda g: (ops.max_pool2d_backward(g, idx, shape),), "MaxPool2DBackward")
    return (out, Tensor(idx, _trusted=True)) if return_indices else out


def avg_pool2d(x, kernel_size, stride=None, padding=0):
    """Average pooling; padding counts in the divisor (PyTorch's default)."""
    x = _req(x, "avg_pool2d")
    shape = x._array.shape
    Y = ops.avg_pool2d(x._array, kernel_size, stride, padding)
    return _result(Y, (x,), lambda g: (ops.avg_pool2d_backward(g, shape, kernel_size, stride, padding),),
                   "AvgPool2DBackward")


# --------------------------------------------------------------- activations
# relu, gelu, sigmoid, tanh, softmax and log_softmax are one-kernel primitives: they live in tensor.py


def flatten(x, start_dim=0, end_dim=-1):
    return _req(x, "flatten").flatten(start_dim, end_dim)


def one_hot(target, num_classes=-1):
    t = np.asarray(_data(_req(target, "one_hot", "target")))
    if t.dtype.kind not in "iu":
        raise TypeError(f"one_hot: argument 'target' must be integer, got {t.dtype}")
    n = int(t.max()) + 1 if num_classes < 0 else num_classes
    return Tensor((t[..., None] == np.arange(n)).astype(np.int64), _trusted=True)


# -------------------------------------------------------------- normalization
def layer_norm(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    x, weight, bias = _req(x, "layer_norm"), _t(weight), _t(bias)
    X = x._array
    Y, mean, rstd = ops.layer_norm(X, normalized_shape, _data(weight), _data(bias), eps)

    def back(g):
        gx, gw, gb = ops.layer_norm_backward(g, X, mean, rstd, normalized_shape, _data(weight))
        return gx, gw if _needs(weight) else None, gb if _needs(bias) else None
    return _result(Y, (x, weight, bias), back, "NativeLayerNormBackward")


def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    """Batch normalization over every dim but the channel dim 1 (torch.nn.functional.batch_norm).

    In training, batch statistics normalize and the running buffers (arrays,
    updated in place) move by `momentum` with the unbiased variance, as in
    PyTorch; in eval, the running statistics normalize.
    """
    x, weight, bias = _req(x, "batch_norm"), _t(weight), _t(bias)
    X = x._array
    if X.ndim < 2:
        raise ValueError(f"batch_norm: input must be at least 2-D (N, C, ...), got shape {X.shape}")
    C = X.shape[1]
    axes = (0,) + tuple(range(2, X.ndim))
    bshape = (1, C) + (1,) * (X.ndim - 2)
    count = X.size // max(C, 1)
    if training:
        if count <= 1:
            raise ValueError(f"batch_norm: expected more than 1 value per channel when training, got input "
                             f"shape {X.shape}")
        mean = X.mean(axis=axes)
        var = X.var(axis=axes)
        if running_mean is not None:
            running_mean *= 1 - momentum
            running_mean += momentum * mean.astype(running_mean.dtype)
        if running_var is not None:
            running_var *= 1 - momentum
            running_var += momentum * (var * count / (count - 1)).astype(running_var.dtype)
    else:
        mean, var = running_mean, running_var
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
    return _result(Y, (x, weight, bias), back, "NativeBatchNormBackward")


# ------------------------------------------------------------------- dropout
def dropout(x, p=0.5, training=True):
    x = _req(x, "dropout")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: argument 'p' must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return x
    if p == 1.0:
        X = x._array
        return _result(np.zeros_like(X), (x,), lambda g: (np.zeros_like(g),), "DropoutBackward")
    Y, mask = ops.dropout(x._array, p, True)
    return _result(Y, (x,), lambda g: (ops.dropout_backward(g, mask, p),), "DropoutBackward")


# ----------------------------------------------------------------- embedding
def embedding(indices, weight, padding_idx=None):
    """Rows of weight picked by integer indices; padding_idx rows get no gradient."""
    weight = _req(weight, "embedding", "weight")
    idx = np.asarray(_data(_t(indices)) if isinstance(indices, Tensor) else indices)
    W = weight._array
    if idx.dtype.kind not in "iu":
        raise TypeError(f"embedding: argument 'input' must hold integer indices, got dtype {idx.dtype}")
    if idx.size and (idx.min() < 0 or idx.max() >= W.shape[0]):
        bad = idx.min() if idx.min() < 0 else idx.max()
        raise IndexError(f"embedding: index {int(bad)} is out of range for {W.shape[0]} embeddings")

    def back(g):
        flat_idx = idx.reshape(-1)
        g2 = g.reshape(-1, W.shape[1])
        if padding_idx is not None:
            keep = flat_idx != padding_idx
            flat_idx, g2 = flat_idx[keep], g2[keep]
        gw = np.zeros_like(W)
        np.add.at(gw, flat_idx, g2)
        return (gw,)
    return _result(W[idx], (weight,), back, "EmbeddingBackward")


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
def scaled_dot_product_attention(query, key, value, attn_mask=None, is_causal=False, scale=None):
    """softmax(q k^T * scale + mask) v over (..., N, D) tensors, by the flash kernel.

    attn_mask: bool (True = take part) or additive float, broadcastable to
    (..., Nq, Nk). Query rows with every key masked give zeros.
    """
    where = "scaled_dot_product_attention"
    q, k, v = _req(query, where, "query"), _req(key, where, "key"), _req(value, where, "value")
    Q, K, V = q._array, k._array, v._array
    if Q.ndim < 2 or K.ndim != Q.ndim or V.ndim != Q.ndim:
        raise ValueError(f"scaled_dot_product_attention: query, key and value must have the same number of "
                         f"dimensions (at least 2), got shapes {Q.shape}, {K.shape}, {V.shape}")
    lead = Q.shape[:-2]
    if K.shape[:-2] != lead or V.shape[:-2] != lead:
        raise ValueError(f"scaled_dot_product_attention: batch dimensions differ: {Q.shape}, {K.shape}, {V.shape}")
    if K.shape[-1] != Q.shape[-1] or V.shape[-2] != K.shape[-2]:
        raise ValueError(f"scaled_dot_product_attention: shapes do not fit: query {Q.shape}, key {K.shape}, "
                         f"value {V.shape}")
    if V.shape[-1] != Q.shape[-1]:
        raise ValueError(f"scaled_dot_product_attention: the value head dim {V.shape[-1]} must equal the query "
                         f"head dim {Q.shape[-1]} in this kernel")

    def to4(a):
        if a.ndim == 4:
            return a
        if a.ndim < 4:
            return a.reshape((1,) * (4 - a.ndim) + a.shape)
        return a.reshape((-1,) + a.shape[-3:])
    mask = _data(_t(attn_mask)) if isinstance(attn_mask, Tensor) else attn_mask
    if mask is not None:
        mask = np.asarray(mask)
        if mask.ndim > 4:
            mask = np.broadcast_to(mask, lead + (Q.shape[-2], K.shape[-2])).reshape((-1,) + mask.shape[-3:])
        elif mask.ndim < 4:
            mask = mask.reshape((1,) * (4 - mask.ndim) + mask.shape)
    Q4, K4, V4 = to4(Q), to4(K), to4(V)
    out, lse = ops.attention(Q4, K4, V4, causal=is_causal, mask=mask, scale=scale)

    def back(g):
        gq, gk, gv = ops.attention_backward(to4(g), Q4, K4, V4, out, lse, causal=is_causal, mask=mask, scale=scale)
        return gq.reshape(Q.shape), gk.reshape(K.shape), gv.reshape(V.shape)
    return _result(out.reshape(Q.shape), (q, k, v), back, "ScaledDotProductAttentionBackward")


# -------------------------------------------------------------------- losses
def cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """Cross entropy of logits (N, C) or (N, C, d1, ...) with class indices, or
    with class probabilities of the logits' shape (torch's CrossEntropyLoss)."""
    x = _req(input, "cross_entropy")
    X = x._array
    T = _data(target) if isinstance(target, Tensor) else np.asarray(target)
    if X.ndim == 0:
        raise ValueError("cross_entropy: argument 'input' must be (N, C) or (N, C, d1, ...), got a scalar")
    if T.dtype.kind == "f":   # class probabilities
        if T.shape != X.shape:
            raise ValueError(f"cross_entropy: probability targets must have the input's shape {X.shape}, "
                             f"got {T.shape}")
        cdim = 1 if X.ndim > 1 else 0
        C = X.shape[cdim]
        # a Tensor target stays in the graph: torch differentiates soft targets too
        tt = target if isinstance(target, Tensor) else Tensor(T.astype(X.dtype, copy=False), _trusted=True)
        if label_smoothing:
            tt = tt * (1 - label_smoothing) + label_smoothing / C
        w = 1.0 if weight is None else np.asarray(_data(_t(weight)), X.dtype).reshape(
            (C,) + (1,) * (X.ndim - cdim - 1))
        loss = -(log_softmax(x, cdim) * (tt * w)).sum(dim=cdim)
        return _reduce(loss, reduction, "cross_entropy")
    if T.dtype.kind not in "iu":
        raise TypeError(f"cross_entropy: argument 'target' must hold integer class indices or float "
                        f"probabilities, got dtype {T.dtype}")
    if X.ndim == 1:      # one unbatched sample
        return cross_entropy(x.reshape(1, -1), T.reshape(1), weight, ignore_index, reduction,
                             label_smoothing).reshape(())
    if X.ndim > 2:       # (N, C, d...) -> (N*d, C)
        C = X.shape[1]
        if T.shape != (X.shape[0],) + X.shape[2:]:
            raise ValueError(f"cross_entropy: target shape {T.shape} does not fit input shape {X.shape}")
        moved = x.permute((0,) + tuple(range(2, X.ndim)) + (1,)).reshape(-1, C)
        loss = cross_entropy(moved, T.reshape(-1), weight, ignore_index,
                             "none" if reduction == "none" else reduction, label_smoothing)
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
                       "NllLossBackward")
    # weights or other reductions: the composite form (torch's formula)
    logp = log_softmax(x, 1)
    safe_t = np.where(valid, T, 0)
    w = np.ones(C, X.dtype) if weight is None else np.asarray(_data(_t(weight)), X.dtype)
    wt = w[safe_t] * valid
    nll = -logp[np.arange(N), safe_t] * Tensor(wt, _trusted=True)
    if label_smoothing:
        smooth = -(logp * Tensor(w, _trusted=True)).sum(dim=1) * Tensor(valid.astype(X.dtype), _trusted=True)
        loss = nll * (1 - label_smoothing) + smooth * (label_smoothing / C)
    else:
        loss = nll
    if reduction == "mean":
        return loss.sum() / float(wt.sum())
    return _reduce(loss, reduction, "cross_entropy")


def nll_loss(input, target, weight=None, ignore_index=-100, reduction="mean"):
    """Negative log-likelihood of log-probabilities (N, C), (N, C, d1, ...) or (C,)
    at integer targets (N,), (N, d1, ...) or ()."""
    x = _req(input, "nll_loss")
    T = _data(target) if isinstance(target, Tensor) else np.asarray(target)
    if T.dtype.kind not in "iu":
        raise TypeError(f"nll_loss: argument 'target' must hold integer class indices, got dtype {T.dtype}")
    if x.ndim == 1 and T.ndim == 0:      # one unbatched sample
        return nll_loss(x.reshape(1, -1), T.reshape(1), weight, ignore_index, reduction).reshape(())
    if x.ndim > 2 and T.shape == (x.shape[0],) + x.shape[2:]:     # (N, C, d...) -> (N*d, C)
        moved = x.permute((0,) + tuple(range(2, x.ndim)) + (1,)).reshape(-1, x.shape[1])
        loss = nll_loss(moved, T.reshape(-1), weight, ignore_index, reduction)
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
    w = np.ones(C, x.dtype) if weight is None else np.asarray(_data(_t(weight)), x.dtype)
    wt = w[safe_t] * valid
    loss = -x[np.arange(N), safe_t] * Tensor(wt, _trusted=True)
    if reduction == "mean":
        return loss.sum() / float(wt.sum())
    return _reduce(loss, reduction, "nll_loss")


def _check_same_shape(where, x, y):
    if x.shape != y.shape:
        raise ValueError(f"{where}: target shape {y.shape} must equal the input shape {x.shape}")


def mse_loss(input, target, reduction="mean"):
    x, y = _req(input, "mse_loss"), _req(target, "mse_loss", "target")
    _check_same_shape("mse_loss", x, y)
    d = x - y
    return _reduce(d * d, reduction, "mse_loss")


def l1_loss(input, target, reduction="mean"):
    x, y = _req(input, "l1_loss"), _req(target, "l1_loss", "target")
    _check_same_shape("l1_loss", x, y)
    return _reduce((x - y).abs(), reduction, "l1_loss")


def binary_cross_entropy(input, target, weight=None, reduction="mean"):
    """-(y log p + (1-y) log(1-p)) of probabilities p; logs clamped at -100 like torch."""
    p, y = _req(input, "binary_cross_entropy"), _req(target, "binary_cross_entropy", "target")
    _check_same_shape("binary_cross_entropy", p, y)
    P, Y = p._array, y._array.astype(p.dtype, copy=False)
    if P.size and (P.min() < 0 or P.max() > 1):
        raise ValueError("binary_cross_entropy: argument 'input' must hold probabilities in [0, 1]; "
                         "use binary_cross_entropy_with_logits for logits")
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
    out = _result(loss.astype(P.dtype, copy=False), (p, y), back, "BinaryCrossEntropyBackward")
    return _reduce(out, reduction, "binary_cross_entropy")


def binary_cross_entropy_with_logits(input, target, weight=None, reduction="mean", pos_weight=None):
    """Sigmoid + binary cross entropy in the stable log-sum-exp form."""
    x, y = _req(input, "binary_cross_entropy_with_logits"), _req(target, "binary_cross_entropy_with_logits", "target")
    _check_same_shape("binary_cross_entropy_with_logits", x, y)
    X, Y = x._array, y._array.astype(x.dtype, copy=False)
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
    out = _result(loss.astype(X.dtype, copy=False), (x, y), back, "BinaryCrossEntropyWithLogitsBackward")
    return _reduce(out, reduction, "binary_cross_entropy_with_logits")
