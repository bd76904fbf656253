"""Reverse-mode autograd: the graph node, the backward pass, ``no_grad`` and a
finite-difference gradient check.

A Tensor made by a differentiable op holds a ``Node``: the input Tensors and a
closure that maps the output's gradient to one gradient per input. Closures
keep the bookkeeping to one Python call per op, which is what keeps a small
layer's forward+backward in the tens of microseconds.
"""
from __future__ import annotations

import functools
import threading

import numpy as np

__all__ = ["no_grad", "enable_grad", "is_grad_enabled", "set_grad_enabled", "backward", "grad", "gradcheck"]


class _GradMode(threading.local):
    enabled = True


_mode = _GradMode()


def is_grad_enabled() -> bool:
    """Whether ops record the graph (False inside ``no_grad``)."""
    return _mode.enabled


class _ModeContext:
    """Sets the recording mode for a ``with`` block or a decorated function."""
    mode = True

    def __enter__(self):
        self._prev = _mode.enabled
        _mode.enabled = self.mode
        return self

    def __exit__(self, *exc):
        _mode.enabled = self._prev
        return False

    def __call__(self, fn):
        mode = self.mode

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            prev = _mode.enabled
            _mode.enabled = mode
            try:
                return fn(*args, **kwargs)
            finally:
                _mode.enabled = prev
        return wrapper


class no_grad(_ModeContext):
    """``with pyfastnn.no_grad():`` or ``@pyfastnn.no_grad()``: ops record no graph."""
    mode = False


class enable_grad(_ModeContext):
    """Turns recording back on inside a ``no_grad`` block."""
    mode = True


class set_grad_enabled(_ModeContext):
    """Like torch.set_grad_enabled: switches at once, and as a context manager
    restores the previous mode on exit."""

    def __init__(self, mode: bool):
        self.mode = bool(mode)
        self._prev = _mode.enabled
        _mode.enabled = self.mode

    def __enter__(self):
        return self


class Node:
    """How an op's output gradient flows back to its inputs."""
    __slots__ = ("inputs", "backward", "name")

    def __init__(self, inputs, backward, name):
        self.inputs = inputs        # tuple of Tensor (or None for non-tensor arguments)
        self.backward = backward    # grad_out -> tuple of input grads (arrays or None)
        self.name = name


def _topological_order(root):
    """Tensors with a graph node, each after every tensor computed from it."""
    order, seen = [], set()
    stack = [(root, False)]
    while stack:
        t, done = stack.pop()
        if done:
            order.append(t)
            continue
        if id(t) in seen:
            continue
        seen.add(id(t))
        stack.append((t, True))
        for p in t._node.inputs:
            if p is not None and p._node is not None and id(p) not in seen:
                stack.append((p, False))
    order.reverse()
    return order


def _freed(_grad):
    raise RuntimeError("backward: this graph was already freed by an earlier backward(); call backward("
                       "retain_graph=True) the first time to go through it twice")


def _accumulate_leaf(t, g):
    from .tensor import Tensor
    if g.shape != t.data.shape:
        g = g.reshape(t.data.shape)
    if g.dtype != t.data.dtype:
        g = g.astype(t.data.dtype)
    if t.grad is None:
        t.grad = Tensor(g if g.flags.c_contiguous else g.copy(), _trusted=True)
    else:
        t.grad = Tensor(t.grad.data + g, _trusted=True)


def backward(root, grad_output=None, retain_graph=False):
    """Accumulates d(root)/d(leaf) into ``.grad`` of every leaf that requires grad."""
    if not root.requires_grad:
        raise RuntimeError("backward: the tensor does not require grad and has no graph (was it computed "
                           "inside no_grad(), or from tensors without requires_grad=True?)")
    xp = root._xp()
    if grad_output is None:
        if root.data.size != 1:
            raise RuntimeError(f"backward: grad can be implied only for a scalar output, got shape "
                               f"{tuple(root.shape)}; pass a gradient of that shape")
        g = xp.ones_like(root.data)
    else:
        g = grad_output.data if hasattr(grad_output, "_node") else xp.asarray(grad_output)
        if tuple(g.shape) != tuple(root.shape):
            raise ValueError(f"backward: argument 'gradient' has shape {tuple(g.shape)}, expected "
                             f"{tuple(root.shape)}")
        g = g.astype(root.dtype, copy=False)
    if root._node is None:  # a leaf
        _accumulate_leaf(root, g)
        return
    grads = {id(root): g}
    for t in _topological_order(root):
        g = grads.pop(id(t), None)
        if g is None:
            continue
        if t._retain:
            _accumulate_leaf(t, g)
        node = t._node
        input_grads = node.backward(g)
        if not retain_graph:
            node.backward = _freed
        for p, gp in zip(node.inputs, input_grads):
            if p is None or gp is None or not p.requires_grad:
                continue
            if p._node is None:
                _accumulate_leaf(p, gp)
            else:
                k = id(p)
                prev = grads.get(k)
                grads[k] = gp if prev is None else prev + gp


def grad(output, inputs, grad_output=None, retain_graph=False):
    """d(output)/d(inputs) as a list of arrays, leaving every ``.grad`` as it was."""
    inputs = list(inputs)
    saved = [(t.grad, t._retain) for t in inputs]
    for t in inputs:
        t.grad, t._retain = None, t._node is not None
    try:
        backward(output, grad_output, retain_graph)
        return [None if t.grad is None else t.grad.data for t in inputs]
    finally:
        for t, (g, r) in zip(inputs, saved):
            t.grad, t._retain = g, r


def gradcheck(fn, inputs, eps=1e-6, rtol=1e-4, atol=1e-7, seed=0):
    """Compares the autograd gradients of ``sum(fn(*inputs) * w)`` (w random,
    fixed) with central finite differences. inputs: float64 Tensors; the ones
    with requires_grad are checked. Returns True or raises AssertionError
    naming the input and the worst element."""
    from .tensor import Tensor
    rng = np.random.default_rng(seed)
    out = fn(*inputs)
    weights = rng.standard_normal(out.shape)
    analytic = grad((out * Tensor(weights)).sum(), [t for t in inputs if t.requires_grad])
    checked = [t for t in inputs if t.requires_grad]
    with no_grad():
        for t, ga in zip(checked, analytic):
            if t.dtype != np.float64:
                raise TypeError(f"gradcheck: inputs must be float64 for finite differences, got {t.dtype}")
            numeric = np.zeros(t.shape)
            flat = t.data.reshape(-1)
            for i in range(flat.size):
                keep = flat[i]
                flat[i] = keep + eps
                plus = float((fn(*inputs).data * weights).sum())
                flat[i] = keep - eps
                minus = float((fn(*inputs).data * weights).sum())
                flat[i] = keep
                numeric.reshape(-1)[i] = (plus - minus) / (2 * eps)
            ga = np.zeros(t.shape) if ga is None else ga
            err = np.abs(ga - numeric)
            bad = err > atol + rtol * np.abs(numeric)
            if bad.any():
                i = int(np.argmax(err - rtol * np.abs(numeric)))
                raise AssertionError(f"gradcheck: input {checked.index(t)} of shape {t.shape}: element {i} "
                                     f"autograd {ga.reshape(-1)[i]!r} vs finite difference "
                                     f"{numeric.reshape(-1)[i]!r}")
    return True
