"""CUDA branches of the memory-bound ``pyfastnn.ops``: activations, dropout,
softmax, layer_norm, cross_entropy, optimizer steps, pooling and LSTM.

Each public function takes the arguments of the ``ops`` function of the same
name (CuPy arrays instead of numpy) and returns the same structure. Checks
come first, in the CPU op's order and with its wording (the op, the argument,
what was expected, what was given); then inputs are made contiguous, outputs
allocated through CuPy, and the kernels launched on CuPy's current stream.

dtypes: float32 everywhere; the activations (and their gradients), dropout
and softmax/log_softmax (and their gradients) also take float16 (float32
math). float64 runs on the CPU path only.

Host synchronisations, where a result or an error depends on device data:
``cross_entropy`` returns a Python float; ``cross_entropy_backward`` reads
the number of counted rows (and whether a target is out of range);
``max_pool2d_backward`` reads a flag raised by an index outside its plane.

The row-wise functions take a private ``_impl`` keyword (0 automatic, 1 one
warp per row, 2 one block per row, 3 the one-thread-per-row reference) and
the activations a ``_reference`` flag, so that tests can compare the kernels.
"""
from __future__ import annotations

import numpy as np

from .. import _backend
from .._args import LSTMCache, _axis_last, _normalized_ndim, _normalized_size, _scalar
from .._random import generator
from . import cupy, module, stream_ptr
from . import device_array as _device_array, int_pair as _int_pair
from . import gemm

__all__ = ["relu", "gelu", "sigmoid", "tanh", "relu_backward", "gelu_backward", "sigmoid_backward", "tanh_backward",
           "gelu_tanh", "silu", "gelu_tanh_backward", "silu_backward",
           "dropout", "dropout_backward", "softmax", "log_softmax", "softmax_backward", "log_softmax_backward",
           "layer_norm", "layer_norm_backward", "cross_entropy", "cross_entropy_backward", "sgd_step", "adam_step",
           "rmsprop_step", "max_pool2d", "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward", "lstm",
           "lstm_backward", "lstm_cell"]

# Under pyfastnn.use_deterministic(True), max_pool2d_backward adds each
# plane's gradients in output order (one thread per plane: bit-identical to
# the CPU, slower) instead of with atomics.

_STORAGE = {np.dtype(np.float32): 0, np.dtype(np.float16): 1}
_ACT_CODES = {"relu": 1, "gelu": 2, "sigmoid": 3, "tanh": 4, "gelu_tanh": 5, "silu": 6}  # common/activation.h


# --------------------------------------------------------------------- checks


def _float_input(op, name, x, half=False):
    """A CuPy float32 (or, with ``half``, float16) array; TypeError otherwise."""
    _device_array(op, name, x)
    if x.dtype == np.float32 or (half and x.dtype == np.float16):
        return
    takes = "float32 or float16" if half else "float32"
    if x.dtype.kind == "f":
        raise TypeError(f"{op}: argument '{name}' has dtype {x.dtype}; the CUDA kernel takes {takes} "
                        f"({x.dtype} runs on the CPU path: pass numpy arrays)")
    raise TypeError(f"{op}: argument '{name}' has dtype {x.dtype}; expected {takes}")


def _like(op, name_a, a, name_b, b):
    """b has a's dtype and shape (the CPU's require_like wording)."""
    _device_array(op, name_b, b)
    if b.dtype != a.dtype:
        raise TypeError(f"{op}: argument '{name_b}' must have dtype {a.dtype} like '{name_a}', got {b.dtype}")
    if b.shape != a.shape:
        raise ValueError(f"{op}: argument '{name_b}' must have the shape of '{name_a}' {tuple(a.shape)}, "
                         f"got {tuple(b.shape)}")


def _shape_of(op, name, a, want):
    if tuple(a.shape) != tuple(want):
        raise ValueError(f"{op}: argument '{name}' must have shape {tuple(want)}, got {tuple(a.shape)}")


def _num(x):
    return str(float(x))


def _real(op, name, v):
    """A hyper-parameter as a float, refused as the CPU optimizer steps refuse it."""
    number = (not isinstance(v, (bool, np.bool_, str, bytes))
              and (isinstance(v, (int, float)) or hasattr(v, "__float__")))
    if not number:
        raise TypeError(f"{op}: argument '{name}' must be a real number, got {type(v).__name__}")
    try:
        return float(v)
    except (TypeError, ValueError):
        raise TypeError(f"{op}: argument '{name}' must be a real number, got {v!r}") from None


def _at_least(op, name, x, lo):
    if not x >= lo:
        raise ValueError(f"{op}: argument '{name}' must be >= {_num(lo)}, got {_num(x)}")




def _ptr(x):
    return 0 if x is None else x.data.ptr


# ---------------------------------------------------------------- activations
def _activation(op, kind, x, reference):
    cuda = module(op)
    _float_input(op, "x", x, half=True)
    x = cupy().ascontiguousarray(x)
    y = cupy().empty_like(x)
    if x.size:
        cuda.nn_activation_forward(x.data.ptr, y.data.ptr, x.size, _ACT_CODES[kind], _STORAGE[x.dtype], reference,
                                   stream_ptr())
    return y


def _activation_backward(op, kind, grad_y, saved, saved_name, reference):
    cuda = module(op)
    _float_input(op, "grad_y", grad_y, half=True)
    _like(op, "grad_y", grad_y, saved_name, saved)
    cp = cupy()
    g = cp.ascontiguousarray(grad_y)
    s = cp.ascontiguousarray(saved)
    gx = cp.empty_like(g)
    if g.size:
        cuda.nn_activation_backward(g.data.ptr, s.data.ptr, gx.data.ptr, g.size, _ACT_CODES[kind], _STORAGE[g.dtype],
                                    reference, stream_ptr())
    return gx


def relu(x, *, _reference=False):
    """max(x, 0) elementwise (NaN stays NaN)."""
    return _activation("relu", "relu", x, _reference)


def gelu(x, *, _reference=False):
    """x * Phi(x), the exact erf form."""
    return _activation("gelu", "gelu", x, _reference)


def sigmoid(x, *, _reference=False):
    """1 / (1 + exp(-x)) elementwise."""
    return _activation("sigmoid", "sigmoid", x, _reference)


def tanh(x, *, _reference=False):
    """tanh(x) elementwise."""
    return _activation("tanh", "tanh", x, _reference)


def gelu_tanh(x, *, _reference=False):
    """0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), torch's GELU(approximate='tanh')."""
    return _activation("gelu_tanh", "gelu_tanh", x, _reference)


def silu(x, *, _reference=False):
    """x * sigmoid(x) elementwise."""
    return _activation("silu", "silu", x, _reference)


def relu_backward(grad_y, x, *, _reference=False):
    """grad_y * (x > 0)."""
    return _activation_backward("relu_backward", "relu", grad_y, x, "x", _reference)


def gelu_backward(grad_y, x, *, _reference=False):
    """grad_y * (Phi(x) + x * phi(x))."""
    return _activation_backward("gelu_backward", "gelu", grad_y, x, "x", _reference)


def gelu_tanh_backward(grad_y, x, *, _reference=False):
    """grad_y * gelu_tanh'(x), from the forward input x."""
    return _activation_backward("gelu_tanh_backward", "gelu_tanh", grad_y, x, "x", _reference)


def silu_backward(grad_y, x, *, _reference=False):
    """grad_y * s (1 + x (1 - s)), s = sigmoid(x), from the forward input x."""
    return _activation_backward("silu_backward", "silu", grad_y, x, "x", _reference)


def sigmoid_backward(grad_y, y, *, _reference=False):
    """grad_y * y * (1 - y), from the forward output y."""
    return _activation_backward("sigmoid_backward", "sigmoid", grad_y, y, "y", _reference)


def tanh_backward(grad_y, y, *, _reference=False):
    """grad_y * (1 - y) * (1 + y), from the forward output y."""
    return _activation_backward("tanh_backward", "tanh", grad_y, y, "y", _reference)


# -------------------------------------------------------------------- dropout
def _dropout_scale(p):
    return 1.0 / (1.0 - p) if p < 1.0 else 0.0


def dropout(x, p=0.5, training=True, seed=None):
    """``ops.dropout`` on the GPU: the same (seed, index) hash as the CPU, so
    the same seed gives the same mask on both devices. Returns ``(y, mask)``."""
    op = "dropout"
    cuda = module(op)
    _device_array(op, "x", x)
    p = _scalar(op, "p", p)
    if not 0.0 <= p <= 1.0:   # checked in eval mode too, as torch does
        raise ValueError(f"{op}: argument 'p' must be in [0, 1], got {p}")
    cp = cupy()
    if not training or p == 0:  # the identity, for any dtype (as on the CPU)
        return x, cp.ones(x.shape, cp.uint8)
    _float_input(op, "x", x, half=True)
    if seed is None:
        seed = int(generator().integers(0, 2**63))
    seed = _scalar(op, "seed", seed, int) & (2**64 - 1)
    x = cp.ascontiguousarray(x)
    y = cp.empty_like(x)
    mask = cp.empty(x.shape, cp.uint8)
    if x.size:
        # keep iff u >= p, u uniform on [0, 1) in steps of 2^-32 (the CPU's threshold)
        threshold = int(p * 4294967296.0)
        cuda.nn_dropout_forward(x.data.ptr, y.data.ptr, mask.data.ptr, x.size, seed, threshold, _dropout_scale(p),
                                _STORAGE[x.dtype], stream_ptr())
    return y, mask


def dropout_backward(grad_y, mask, p=0.5):
    """grad_y * mask / (1 - p)."""
    op = "dropout_backward"
    cuda = module(op)
    _float_input(op, "grad_y", grad_y, half=True)
    _device_array(op, "mask", mask)
    if mask.dtype not in (np.uint8, np.bool_):
        raise TypeError(f"{op}: argument 'mask' must have dtype uint8 or bool (as returned by dropout), "
                        f"got {mask.dtype}")
    if mask.shape != grad_y.shape:
        raise ValueError(f"{op}: argument 'mask' must have the shape of 'grad_y' {tuple(grad_y.shape)}, "
                         f"got {tuple(mask.shape)}")
    p = _scalar(op, "p", p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{op}: argument 'p' must be in [0, 1], got {p}")
    cp = cupy()
    g = cp.ascontiguousarray(grad_y)
    m = cp.ascontiguousarray(mask)
    gx = cp.empty_like(g)
    if g.size:
        cuda.nn_dropout_backward(g.data.ptr, m.data.ptr, gx.data.ptr, g.size, _dropout_scale(p), _STORAGE[g.dtype],
                                 stream_ptr())
    return gx


# -------------------------------------------------------------------- softmax
def _last_axis_rows(x):
    """(rows, n) of a C-contiguous array seen as rows of its last axis."""
    n = x.shape[-1]
    return (x.size // n if n else 0), n


def _softmax(op, x, axis, log, impl):
    cuda = module(op)
    _device_array(op, "x", x)
    ax = _axis_last(op, x, axis)
    _float_input(op, "x", x, half=True)
    cp = cupy()
    last = x.ndim - 1
    xc = cp.ascontiguousarray(x if ax == last else cp.moveaxis(x, ax, last))
    y = cp.empty_like(xc)
    rows, n = _last_axis_rows(xc)
    if rows and n:
        cuda.nn_softmax_forward(xc.data.ptr, y.data.ptr, rows, n, log, _STORAGE[xc.dtype], impl, stream_ptr())
    return y if ax == last else cp.moveaxis(y, last, ax)


def _softmax_backward(op, grad_y, y, axis, log, impl):
    cuda = module(op)
    _device_array(op, "grad_y", grad_y)
    ax = _axis_last(op, grad_y, axis)
    _float_input(op, "grad_y", grad_y, half=True)
    _like(op, "grad_y", grad_y, "y", y)
    cp = cupy()
    last = grad_y.ndim - 1
    if ax != last:
        grad_y, y = cp.moveaxis(grad_y, ax, last), cp.moveaxis(y, ax, last)
    g = cp.ascontiguousarray(grad_y)
    yc = cp.ascontiguousarray(y)
    gx = cp.empty_like(g)
    rows, n = _last_axis_rows(g)
    if rows and n:
        cuda.nn_softmax_backward(g.data.ptr, yc.data.ptr, gx.data.ptr, rows, n, log, _STORAGE[g.dtype], impl,
                                 stream_ptr())
    return gx if ax == last else cp.moveaxis(gx, last, ax)


def softmax(x, axis=-1, *, _impl=0):
    """exp(x) / sum(exp(x)) along ``axis`` (max subtracted)."""
    return _softmax("softmax", x, axis, False, _impl)


def log_softmax(x, axis=-1, *, _impl=0):
    """x - logsumexp(x) along ``axis``."""
    return _softmax("log_softmax", x, axis, True, _impl)


def softmax_backward(grad_y, y, axis=-1, *, _impl=0):
    """y * (grad_y - sum(grad_y * y)) along ``axis``."""
    return _softmax_backward("softmax_backward", grad_y, y, axis, False, _impl)


def log_softmax_backward(grad_y, y, axis=-1, *, _impl=0):
    """grad_y - exp(y) * sum(grad_y) along ``axis``."""
    return _softmax_backward("log_softmax_backward", grad_y, y, axis, True, _impl)


# ----------------------------------------------------------------- layer norm
def _rows_of(op, x, n):
    if n < 1 or x.size % n != 0:
        raise ValueError(f"{op}: normalized size {n} does not divide 'x' of shape {tuple(x.shape)}")
    return x.size // n


def _param_vector(op, name, v, x, n):
    """weight / bias: x's dtype and n elements (any shape), as a flat contiguous array."""
    if v is None:
        return None
    _device_array(op, name, v)
    if v.dtype != x.dtype:
        raise TypeError(f"{op}: argument '{name}' must have dtype {x.dtype} like 'x', got {v.dtype}")
    if v.size != n:
        raise ValueError(f"{op}: argument '{name}' must have {n} elements (the normalized shape), "
                         f"got shape {tuple(v.shape)}")
    return cupy().ascontiguousarray(v).reshape(n)


def layer_norm(x, normalized_shape, weight=None, bias=None, eps=1e-5, *, _impl=0):
    """``ops.layer_norm`` on the GPU: ``(y, mean, rstd)``, float32."""
    op = "layer_norm"
    cuda = module(op)
    _device_array(op, "x", x)
    n = _normalized_size(op, x, normalized_shape)
    _float_input(op, "x", x)
    rows = _rows_of(op, x, n)
    eps = _scalar(op, "eps", eps)
    if not eps >= 0:
        raise ValueError(f"{op}: argument 'eps' must be >= 0, got {eps}")
    w = _param_vector(op, "weight", weight, x, n)
    b = _param_vector(op, "bias", bias, x, n)
    cp = cupy()
    x = cp.ascontiguousarray(x)
    y = cp.empty_like(x)
    lead = tuple(x.shape)[:x.ndim - _normalized_ndim(normalized_shape)]
    mean = cp.empty(lead, cp.float32)
    rstd = cp.empty(lead, cp.float32)
    if rows:
        cuda.nn_layer_norm_forward(x.data.ptr, _ptr(w), _ptr(b), y.data.ptr, mean.data.ptr, rstd.data.ptr, rows, n,
                                   eps, _impl, stream_ptr())
    return y, mean, rstd


def layer_norm_backward(grad_y, x, mean, rstd, normalized_shape, weight=None, *, _impl=0):
    """``ops.layer_norm_backward`` on the GPU: ``(grad_x, grad_weight, grad_bias)``.
    The parameter gradients are column sums in a fixed order (deterministic)."""
    op = "layer_norm_backward"
    cuda = module(op)
    _device_array(op, "x", x)
    n = _normalized_size(op, x, normalized_shape)
    _float_input(op, "grad_y", grad_y)
    _like(op, "grad_y", grad_y, "x", x)
    rows = _rows_of(op, x, n)
    for name, a in (("mean", mean), ("rstd", rstd)):
        _device_array(op, name, a)
        if a.dtype != grad_y.dtype:
            raise TypeError(f"{op}: argument '{name}' must have dtype {grad_y.dtype}")
        if a.size != rows:
            raise ValueError(f"{op}: argument '{name}' must have one value per row ({rows}), got shape "
                             f"{tuple(a.shape)}")
    w = _param_vector(op, "weight", weight, x, n)
    cp = cupy()
    g = cp.ascontiguousarray(grad_y)
    xc = cp.ascontiguousarray(x)
    mc = cp.ascontiguousarray(mean)
    rc = cp.ascontiguousarray(rstd)
    gx = cp.empty_like(xc)
    gw = cp.empty(n, cp.float32)
    gb = cp.empty(n, cp.float32)
    workspace = cp.empty(max(1, 2 * cuda.nn_column_sum_workspace(rows, n)), cp.float32)
    cuda.nn_layer_norm_backward(g.data.ptr, xc.data.ptr, mc.data.ptr, rc.data.ptr, _ptr(w), gx.data.ptr, gw.data.ptr,
                                gb.data.ptr, workspace.data.ptr, rows, n, _impl, stream_ptr())
    tail = tuple(x.shape)[x.ndim - _normalized_ndim(normalized_shape):]
    return gx, gw.reshape(tail), gb.reshape(tail)


# -------------------------------------------------------------- cross entropy
def _cross_entropy_args(op, logits, target, smoothing):
    """The CPU op's checks, in its order; logits contiguous, target int64 contiguous."""
    _float_input(op, "logits", logits)
    if logits.ndim != 2:
        raise ValueError(f"{op}: argument 'logits' must be 2-D (N, C), got shape {tuple(logits.shape)}")
    _device_array(op, "target", target)
    if target.dtype.kind not in "iu":
        raise TypeError(f"{op}: argument 'target' must hold integer class indices, got dtype {target.dtype}")
    if target.ndim != 1 or target.shape[0] != logits.shape[0]:
        raise ValueError(f"{op}: argument 'target' must have shape ({logits.shape[0]},), got {tuple(target.shape)}")
    if not 0.0 <= smoothing <= 1.0:
        raise ValueError(f"{op}: argument 'label_smoothing' must be in [0, 1], got {smoothing}")
    cp = cupy()
    return cp.ascontiguousarray(logits), cp.ascontiguousarray(target, dtype=cp.int64)


def _raise_bad_target(op, target, classes, ignore_index):
    t = cupy().asnumpy(target)
    bad = (t != ignore_index) & ((t < 0) | (t >= classes))
    if bad.any():
        r = int(np.argmax(bad))
        raise ValueError(f"{op}: argument 'target' holds class {int(t[r])} at position {r}, "
                         f"outside [0, {classes})")


def cross_entropy(logits, target, *, ignore_index=-100, label_smoothing=0.0, _impl=0):
    """``ops.cross_entropy`` on the GPU: per-row losses, then a one-block sum in
    a fixed order; returns a Python float (this waits for the GPU)."""
    op = "cross_entropy"
    cuda = module(op)
    ignore = _scalar(op, "ignore_index", ignore_index, int)
    smoothing = _scalar(op, "label_smoothing", label_smoothing)
    _device_array(op, "logits", logits)
    logits, target = _cross_entropy_args(op, logits, target, smoothing)
    rows, classes = logits.shape
    if classes == 0 and rows > 0:
        _raise_bad_target(op, target, classes, ignore)
        raise ValueError(f"{op}: argument 'logits' has no classes (C = 0)")
    if rows == 0:
        return float("nan")  # the mean over no rows is 0/0, as in PyTorch
    cp = cupy()
    row_loss = cp.empty(rows, cp.float64)
    totals = cp.empty(3, cp.float64)
    cuda.nn_cross_entropy_forward(logits.data.ptr, target.data.ptr, rows, classes, ignore, smoothing,
                                  row_loss.data.ptr, totals.data.ptr, _impl, stream_ptr())
    total, valid, bad = (float(v) for v in totals.get())
    if bad:
        _raise_bad_target(op, target, classes, ignore)
    return total / valid if valid else float("nan")


def cross_entropy_backward(logits, target, grad=1.0, *, ignore_index=-100, label_smoothing=0.0, _impl=0):
    """``ops.cross_entropy_backward`` on the GPU (reads the counted-row total
    back to the host first, to scale by it and to refuse bad targets)."""
    op = "cross_entropy_backward"
    cuda = module(op)
    grad = _scalar(op, "grad", grad)
    ignore = _scalar(op, "ignore_index", ignore_index, int)
    smoothing = _scalar(op, "label_smoothing", label_smoothing)
    _device_array(op, "logits", logits)
    logits, target = _cross_entropy_args(op, logits, target, smoothing)
    rows, classes = logits.shape
    cp = cupy()
    out = cp.empty((rows, classes), cp.float32)
    if rows == 0:
        return out
    totals = cp.empty(3, cp.float64)
    cuda.nn_cross_entropy_count(target.data.ptr, rows, classes, ignore, totals.data.ptr, stream_ptr())
    _, valid, bad = (float(v) for v in totals.get())
    if bad:
        _raise_bad_target(op, target, classes, ignore)
    scale = grad / valid if valid else float("nan")
    if classes:
        cuda.nn_cross_entropy_backward(logits.data.ptr, target.data.ptr, rows, classes, ignore, smoothing, scale,
                                       out.data.ptr, _impl, stream_ptr())
    return out


# ------------------------------------------------------------ optimizer steps
class _Operands:
    """The arrays of one in-place step: param's dtype and shape, C-contiguous
    (a copy would be updated instead of the caller's array), and the arrays
    written overlapping nothing else."""

    def __init__(self, op, param):
        self.op = op
        _device_array(op, "param", param)
        if param.dtype != np.float32:
            if param.dtype.kind == "f":
                raise TypeError(f"{op}: argument 'param' has dtype {param.dtype}; the CUDA kernel takes float32 "
                                f"({param.dtype} runs on the CPU path: pass numpy arrays)")
            raise TypeError(f"{op}: argument 'param' has dtype {param.dtype}; expected float32")
        self._layout("param", param)
        self.param = param
        self.all = [("param", param, True)]

    def _layout(self, name, a):
        if not a.flags.c_contiguous:
            raise ValueError(f"{self.op}: argument '{name}' must be C-contiguous (it is updated in place, so it "
                             f"cannot be copied)")

    def array(self, name, a, written):
        if a is None:
            raise TypeError(f"{self.op}: argument '{name}' must be an array, got None")
        _device_array(self.op, name, a)
        if a.dtype != self.param.dtype:
            raise TypeError(f"{self.op}: argument '{name}' must have dtype {self.param.dtype} like 'param', "
                            f"got {a.dtype}")
        if a.shape != self.param.shape:
            raise ValueError(f"{self.op}: argument '{name}' must have the shape of 'param' "
                             f"{tuple(self.param.shape)}, got {tuple(a.shape)}")
        self._layout(name, a)
        self.all.append((name, a, written))
        return a

    def require_disjoint(self):
        spans = [(name, a.data.ptr, a.data.ptr + a.nbytes, w) for name, a, w in self.all]
        for i, (na, a0, a1, wa) in enumerate(spans):
            for nb, b0, b1, wb in spans[i + 1:]:
                if (wa or wb) and a0 != a1 and b0 != b1 and a0 < b1 and b0 < a1:
                    raise ValueError(f"{self.op}: arguments '{na}' and '{nb}' share memory; each must be its own "
                                     f"array")


def sgd_step(param, grad, momentum_buf=None, *, lr, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0,
             first_step=False):
    """``ops.sgd_step`` on the GPU, in place; bit-identical to the CPU's SIMD kernel."""
    op = "sgd_step"
    cuda = module(op)
    lr, momentum = _real(op, "lr", lr), _real(op, "momentum", momentum)
    dampening, weight_decay = _real(op, "dampening", dampening), _real(op, "weight_decay", weight_decay)
    nesterov, first_step = bool(nesterov), bool(first_step)
    _at_least(op, "lr", lr, 0.0)
    _at_least(op, "momentum", momentum, 0.0)
    _at_least(op, "weight_decay", weight_decay, 0.0)
    if nesterov and (momentum <= 0 or dampening != 0):
        raise ValueError(f"{op}: nesterov=True needs 'momentum' > 0 and 'dampening' == 0, got momentum="
                         f"{_num(momentum)}, dampening={_num(dampening)}")
    ops = _Operands(op, param)
    ops.array("grad", grad, False)
    buf = None
    if momentum != 0:
        if momentum_buf is None:
            raise ValueError(f"{op}: argument 'momentum_buf' is required when momentum > 0 (momentum="
                             f"{_num(momentum)}); pass an array like 'param' and first_step=True on the first step")
        buf = ops.array("momentum_buf", momentum_buf, True)
    ops.require_disjoint()
    if param.size:
        cuda.nn_sgd_step(param.data.ptr, grad.data.ptr, _ptr(buf), param.size, lr, momentum, dampening, weight_decay,
                         nesterov, first_step, stream_ptr())


def adam_step(param, grad, exp_avg, exp_avg_sq, *, step, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8,
              weight_decay=0.0, decoupled_weight_decay=False, amsgrad=False, max_exp_avg_sq=None):
    """``ops.adam_step`` (Adam / AdamW) on the GPU, in place; bit-identical to the CPU's SIMD kernel."""
    op = "adam_step"
    cuda = module(op)
    step, lr = _real(op, "step", step), _real(op, "lr", lr)
    beta1, beta2 = _real(op, "beta1", beta1), _real(op, "beta2", beta2)
    eps, weight_decay = _real(op, "eps", eps), _real(op, "weight_decay", weight_decay)
    decoupled_weight_decay, amsgrad = bool(decoupled_weight_decay), bool(amsgrad)
    if not (step >= 1 and np.isfinite(step)):
        raise ValueError(f"{op}: argument 'step' must be the step count after the increment (>= 1), got "
                         f"{_num(step)}")
    _at_least(op, "lr", lr, 0.0)
    _at_least(op, "eps", eps, 0.0)
    for name, b in (("beta1", beta1), ("beta2", beta2)):
        if not 0.0 <= b < 1.0:
            raise ValueError(f"{op}: argument '{name}' must be in [0, 1), got {_num(b)}")
    _at_least(op, "weight_decay", weight_decay, 0.0)
    ops = _Operands(op, param)
    ops.array("grad", grad, False)
    ops.array("exp_avg", exp_avg, True)
    ops.array("exp_avg_sq", exp_avg_sq, True)
    vmax = None
    if amsgrad:
        if max_exp_avg_sq is None:
            raise ValueError(f"{op}: argument 'max_exp_avg_sq' is required when amsgrad=True; pass zeros like "
                             f"'param' on the first step")
        vmax = ops.array("max_exp_avg_sq", max_exp_avg_sq, True)
    ops.require_disjoint()
    if param.size:
        cuda.nn_adam_step(param.data.ptr, grad.data.ptr, exp_avg.data.ptr, exp_avg_sq.data.ptr, _ptr(vmax),
                          param.size, step, lr, beta1, beta2, eps, weight_decay, decoupled_weight_decay, amsgrad,
                          stream_ptr())


def rmsprop_step(param, grad, square_avg, *, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                 momentum_buf=None, centered=False, grad_avg=None):
    """``ops.rmsprop_step`` on the GPU, in place; bit-identical to the CPU's SIMD kernel."""
    op = "rmsprop_step"
    cuda = module(op)
    lr, alpha, eps = _real(op, "lr", lr), _real(op, "alpha", alpha), _real(op, "eps", eps)
    weight_decay, momentum = _real(op, "weight_decay", weight_decay), _real(op, "momentum", momentum)
    centered = bool(centered)
    for name, v in (("lr", lr), ("alpha", alpha), ("eps", eps), ("weight_decay", weight_decay),
                    ("momentum", momentum)):
        _at_least(op, name, v, 0.0)
    ops = _Operands(op, param)
    ops.array("grad", grad, False)
    ops.array("square_avg", square_avg, True)
    ga = buf = None
    if centered:
        if grad_avg is None:
            raise ValueError(f"{op}: argument 'grad_avg' is required when centered=True; pass zeros like 'param' "
                             f"on the first step")
        ga = ops.array("grad_avg", grad_avg, True)
    if momentum > 0:
        if momentum_buf is None:
            raise ValueError(f"{op}: argument 'momentum_buf' is required when momentum > 0 (momentum="
                             f"{_num(momentum)}); pass zeros like 'param' on the first step")
        buf = ops.array("momentum_buf", momentum_buf, True)
    ops.require_disjoint()
    if param.size:
        cuda.nn_rmsprop_step(param.data.ptr, grad.data.ptr, square_avg.data.ptr, _ptr(ga), _ptr(buf), param.size, lr,
                             alpha, eps, weight_decay, momentum, centered, stream_ptr())


# -------------------------------------------------------------------- pooling
def _planes(op, name, shape):
    """(planes, H, W) of an (N, C, H, W) or (C, H, W) shape."""
    shape = tuple(shape)
    if len(shape) not in (3, 4):
        raise ValueError(f"{op}: argument '{name}' must be 3-D (C, H, W) or 4-D (N, C, H, W), got shape {shape}")
    planes = 1
    for d in shape[:-2]:
        planes *= d
    return planes, shape[-2], shape[-1]


def _window(op, H, W, kernel_size, stride, padding):
    """(KH, KW, SH, SW, PH, PW, OH, OW) with the CPU op's checks and messages."""
    KH, KW = _int_pair(op, "kernel_size", kernel_size, 1)
    SH, SW = (KH, KW) if stride is None else _int_pair(op, "stride", stride, 1)
    PH, PW = _int_pair(op, "padding", padding, 0)
    if 2 * PH > KH or 2 * PW > KW:
        raise ValueError(f"{op}: argument 'padding' ({PH}, {PW}) must be at most half of 'kernel_size' ({KH}, {KW})")
    if H + 2 * PH < KH or W + 2 * PW < KW:
        raise ValueError(f"{op}: 'kernel_size' ({KH}, {KW}) is larger than the padded input ({H + 2 * PH}, "
                         f"{W + 2 * PW})")
    return KH, KW, SH, SW, PH, PW, (H + 2 * PH - KH) // SH + 1, (W + 2 * PW - KW) // SW + 1


def _shape_arg(op, name, v):
    """x_shape: a tuple or list of non-negative ints (the CPU's parse_shape)."""
    if not isinstance(v, (tuple, list)):
        raise TypeError(f"{op}: argument '{name}' must be a tuple of ints, got {v!r}")
    if any(isinstance(d, bool) or not isinstance(d, int) or d < 0 for d in v):
        raise TypeError(f"{op}: argument '{name}' must be a tuple of non-negative ints, got {v!r}")
    return tuple(v)


def _pool_input(op, x, kernel_size, stride, padding):
    _float_input(op, "x", x)
    planes, H, W = _planes(op, "x", x.shape)
    window = _window(op, H, W, kernel_size, stride, padding)
    out_shape = tuple(x.shape[:-2]) + window[-2:]
    return cupy().ascontiguousarray(x), [planes, H, W, *window], out_shape


def max_pool2d(x, kernel_size, stride=None, padding=0):
    """``ops.max_pool2d`` on the GPU: ``(y, indices)``, int64 indices iy * W + ix per plane."""
    op = "max_pool2d"
    cuda = module(op)
    x, geometry, out_shape = _pool_input(op, x, kernel_size, stride, padding)
    cp = cupy()
    y = cp.empty(out_shape, cp.float32)
    indices = cp.empty(out_shape, cp.int64)
    if y.size:
        cuda.nn_max_pool2d_forward(x.data.ptr, y.data.ptr, indices.data.ptr, geometry, stream_ptr())
    return y, indices


def avg_pool2d(x, kernel_size, stride=None, padding=0):
    """``ops.avg_pool2d`` on the GPU (padding counted in the divisor)."""
    op = "avg_pool2d"
    cuda = module(op)
    x, geometry, out_shape = _pool_input(op, x, kernel_size, stride, padding)
    y = cupy().empty(out_shape, cupy().float32)
    if y.size:
        cuda.nn_avg_pool2d_forward(x.data.ptr, y.data.ptr, geometry, stream_ptr())
    return y


def max_pool2d_backward(grad_y, indices, x_shape):
    """``ops.max_pool2d_backward`` on the GPU: grad_y added at its indices
    (overlapping windows add up; atomics unless pyfastnn.use_deterministic(True)). Reads a
    flag back to the host to refuse an index outside its plane."""
    op = "max_pool2d_backward"
    cuda = module(op)
    _float_input(op, "grad_y", grad_y)
    _device_array(op, "indices", indices)
    if indices.dtype != np.int64:
        raise TypeError(f"{op}: argument 'indices' must have dtype int64 (as returned by max_pool2d), got "
                        f"{indices.dtype}")
    xs = _shape_arg(op, "x_shape", x_shape)
    planes, H, W = _planes(op, "x_shape", xs)
    if grad_y.ndim != len(xs) or tuple(grad_y.shape[:-2]) != xs[:-2]:
        raise ValueError(f"{op}: argument 'grad_y' of shape {tuple(grad_y.shape)} does not match 'x_shape'")
    if indices.shape != grad_y.shape:
        raise ValueError(f"{op}: argument 'indices' must have the shape of 'grad_y' {tuple(grad_y.shape)}, "
                         f"got {tuple(indices.shape)}")
    cp = cupy()
    g = cp.ascontiguousarray(grad_y)
    idx = cp.ascontiguousarray(indices)
    gx = cp.empty(xs, cp.float32)
    if g.size and gx.size == 0:  # every index is outside an empty plane
        raise ValueError(f"{op}: argument 'indices' holds a position outside the {H}x{W} input plane")
    if gx.size == 0:
        return gx
    bad = cp.zeros(1, cp.int32)
    OH, OW = grad_y.shape[-2:]
    geometry = [planes, H, W, 1, 1, 1, 1, 0, 0, OH, OW]
    cuda.nn_max_pool2d_backward(g.data.ptr, idx.data.ptr, gx.data.ptr, bad.data.ptr, bool(_backend.deterministic), geometry,
                                stream_ptr())
    if g.size and int(bad.get()[0]):
        raise ValueError(f"{op}: argument 'indices' holds a position outside the {H}x{W} input plane")
    return gx


def avg_pool2d_backward(grad_y, x_shape, kernel_size, stride=None, padding=0):
    """``ops.avg_pool2d_backward`` on the GPU: each input gathers the outputs that cover it."""
    op = "avg_pool2d_backward"
    cuda = module(op)
    _float_input(op, "grad_y", grad_y)
    xs = _shape_arg(op, "x_shape", x_shape)
    planes, H, W = _planes(op, "x_shape", xs)
    window = _window(op, H, W, kernel_size, stride, padding)
    if tuple(grad_y.shape) != xs[:-2] + window[-2:]:
        raise ValueError(f"{op}: argument 'grad_y' must have the pooled shape for 'x_shape', got "
                         f"{tuple(grad_y.shape)}")
    cp = cupy()
    g = cp.ascontiguousarray(grad_y)
    gx = cp.empty(xs, cp.float32)
    if gx.size:
        cuda.nn_avg_pool2d_backward(g.data.ptr, gx.data.ptr, [planes, H, W, *window], stream_ptr())
    return gx


# ----------------------------------------------------------------------- LSTM
def _mm(a, b, bias=None, trans_a=False, trans_b=False):
    """op(a) @ op(b) (+ bias) as a new contiguous float32 array, through the
    CUDA GEMM; empty and K = 0 products are formed here."""
    cp = cupy()
    m = a.shape[1] if trans_a else a.shape[0]
    k = a.shape[0] if trans_a else a.shape[1]
    n = b.shape[0] if trans_b else b.shape[1]
    if m == 0 or n == 0 or k == 0:
        out = cp.zeros((m, n), cp.float32)
        if bias is not None and out.size:
            out += bias
        return out
    return cp.ascontiguousarray(gemm.matmul(a, b, bias=bias, trans_a=trans_a, trans_b=trans_b))


def _lstm_weights(op, x, w_ih, w_hh):
    """x (T, B, I), w_ih (4H, I), w_hh (4H, H) checked (the CPU's check_core); returns H."""
    _float_input(op, "x", x)
    if x.ndim != 3:
        raise ValueError(f"{op}: argument 'x' must be 3-D (T, B, I), got shape {tuple(x.shape)}")
    for name, w in (("w_ih", w_ih), ("w_hh", w_hh)):
        _device_array(op, name, w)
        if w.dtype != x.dtype:
            raise TypeError(f"{op}: argument '{name}' must have dtype {x.dtype} like 'x', got {w.dtype}")
    if w_ih.ndim != 2 or w_ih.shape[0] % 4 != 0:
        raise ValueError(f"{op}: argument 'w_ih' must be 2-D (4*H, I), got shape {tuple(w_ih.shape)}")
    H = w_ih.shape[0] // 4
    _shape_of(op, "w_ih", w_ih, (4 * H, x.shape[2]))
    _shape_of(op, "w_hh", w_hh, (4 * H, H))
    return H


def _lstm_state(op, name, a, x, B, H):
    _device_array(op, name, a)
    if a.dtype != x.dtype:
        raise TypeError(f"{op}: argument '{name}' must have dtype {x.dtype} like 'x', got {a.dtype}")
    _shape_of(op, name, a, (B, H))


def _lstm_bias(op, x, H, b_ih, b_hh):
    """b_ih + b_hh (float32, added once as on the CPU), or None without biases."""
    for name, b in (("b_ih", b_ih), ("b_hh", b_hh)):
        if b is not None:
            _device_array(op, name, b)
            if b.dtype != x.dtype:
                raise TypeError(f"{op}: argument '{name}' must have dtype {x.dtype} like 'x', got {b.dtype}")
            _shape_of(op, name, b, (4 * H,))
    if b_ih is None and b_hh is None:
        return None
    cp = cupy()
    bias = cp.zeros(4 * H, cp.float32)
    for b in (b_ih, b_hh):
        if b is not None:
            bias += b
    return bias


def _lstm_forward(op, x, h0, c0, w_ih, w_hh, b_ih, b_hh, h_name, c_name):
    """hs (T+1, B, H), cs (T+1, B, H), gates (T, B, 4H) activated, and the contiguous x, w_ih, w_hh."""
    cuda = module(op)
    H = _lstm_weights(op, x, w_ih, w_hh)
    T, B, I = x.shape
    _lstm_state(op, h_name, h0, x, B, H)
    _lstm_state(op, c_name, c0, x, B, H)
    bias = _lstm_bias(op, x, H, b_ih, b_hh)
    cp = cupy()
    x, w_ih, w_hh = cp.ascontiguousarray(x), cp.ascontiguousarray(w_ih), cp.ascontiguousarray(w_hh)
    # The input projection of every step in one GEMM (bias folded in); each
    # step then adds h_{t-1} . w_hh^T inside the fused cell kernel, which
    # writes the activated gates over the projection.
    gates = _mm(x.reshape(T * B, I), w_ih, bias, trans_b=True).reshape(T, B, 4 * H)
    hs = cp.empty((T + 1, B, H), cp.float32)
    cs = cp.empty((T + 1, B, H), cp.float32)
    hs[0] = h0
    cs[0] = c0
    if B and H:
        stream = stream_ptr()
        for t in range(T):
            hproj = _mm(hs[t], w_hh, trans_b=True)
            cuda.nn_lstm_cell_forward(gates[t].data.ptr, hproj.data.ptr, cs[t].data.ptr, cs[t + 1].data.ptr,
                                      hs[t + 1].data.ptr, B, H, op, stream)
    return hs, cs, gates, x, w_ih, w_hh


def lstm(x, h0, c0, w_ih, w_hh, b_ih=None, b_hh=None):
    """``ops.lstm`` on the GPU: ``(y, h_T, c_T, cache)`` with an ``ops.LSTMCache`` of CuPy arrays."""
    op = "lstm"
    _device_array(op, "x", x)
    hs, cs, gates, xc, w_ih_c, w_hh_c = _lstm_forward(op, x, h0, c0, w_ih, w_hh, b_ih, b_hh, "h0", "c0")
    cache = LSTMCache(xc, hs, cs, gates, w_ih_c, w_hh_c, b_ih is not None, b_hh is not None)
    return hs[1:], hs[-1], cs[-1], cache


def lstm_cell(x, h, c, w_ih, w_hh, b_ih=None, b_hh=None):
    """``ops.lstm_cell`` on the GPU: one step, ``(h_new, c_new)``."""
    op = "lstm_cell"
    _device_array(op, "x", x)
    if x.ndim != 2:
        raise ValueError(f"{op}: argument 'x' must be 2-D (B, I), got shape {tuple(x.shape)}")
    hs, cs, _, _, _, _ = _lstm_forward(op, x[None], h, c, w_ih, w_hh, b_ih, b_hh, "h", "c")
    return hs[1], cs[1]


def lstm_backward(grad_y, grad_hT, grad_cT, cache):
    """``ops.lstm_backward`` on the GPU: the fused cell backward step by step
    (with dh_{t-1} = dG_t . w_hh between steps), then the weight and input
    gradients as three GEMMs over every step and the bias gradient as
    deterministic column sums."""
    op = "lstm_backward"
    cuda = module(op)
    x, hs, cs, gates, w_ih, w_hh = cache.x, cache.hs, cache.cs, cache.gates, cache.w_ih, cache.w_hh
    _device_array(op, "x", x)
    H = _lstm_weights(op, x, w_ih, w_hh)
    T, B, I = x.shape
    for name, a, shape in (("hs", hs, (T + 1, B, H)), ("cs", cs, (T + 1, B, H)), ("gates", gates, (T, B, 4 * H))):
        _device_array(op, name, a)
        if a.dtype != x.dtype:
            raise TypeError(f"{op}: argument '{name}' must have dtype {x.dtype} like 'x', got {a.dtype}")
        _shape_of(op, name, a, shape)
    cp = cupy()
    gy = None
    if grad_y is not None:
        _device_array(op, "grad_y", grad_y)
        if grad_y.dtype != x.dtype:
            raise TypeError(f"{op}: argument 'grad_y' must have dtype {x.dtype} like 'x', got {grad_y.dtype}")
        _shape_of(op, "grad_y", grad_y, (T, B, H))
        gy = cp.ascontiguousarray(grad_y)
    carried = []
    for name, a in (("grad_hT", grad_hT), ("grad_cT", grad_cT)):
        if a is None:
            carried.append(cp.zeros((B, H), cp.float32))
        else:
            _lstm_state(op, name, a, x, B, H)
            carried.append(a.astype(cp.float32, order="C", copy=True))  # dc is updated in place
    dh, dc = carried
    x, w_ih, w_hh = cp.ascontiguousarray(x), cp.ascontiguousarray(w_ih), cp.ascontiguousarray(w_hh)
    hs, cs, gates = cp.ascontiguousarray(hs), cp.ascontiguousarray(cs), cp.ascontiguousarray(gates)
    dG = cp.empty((T, B, 4 * H), cp.float32)
    if B and H:
        stream = stream_ptr()
        for t in range(T - 1, -1, -1):
            cuda.nn_lstm_cell_backward(dh.data.ptr, 0 if gy is None else gy[t].data.ptr, dc.data.ptr,
                                       gates[t].data.ptr, cs[t].data.ptr, cs[t + 1].data.ptr, dG[t].data.ptr, B, H,
                                       stream)
            dh = _mm(dG[t], w_hh)  # dh_{t-1} = dG_t . w_hh
    else:
        dG[...] = 0
    rows = T * B
    dG2 = dG.reshape(rows, 4 * H)
    gw_ih = _mm(dG2, x.reshape(rows, I), trans_a=True)
    gw_hh = _mm(dG2, hs[:T].reshape(rows, H), trans_a=True)
    gx = _mm(dG2, w_ih).reshape(T, B, I)
    gb = cp.empty(4 * H, cp.float32)
    if H:
        workspace = cp.empty(max(1, cuda.nn_column_sum_workspace(rows, 4 * H)), cp.float32)
        cuda.nn_column_sums(dG2.data.ptr, gb.data.ptr, rows, 4 * H, workspace.data.ptr, op, stream_ptr())
    return (gx, dh, dc, gw_ih, gw_hh, gb if cache.has_b_ih else None, gb.copy() if cache.has_b_hh else None)
