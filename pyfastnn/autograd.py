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

__all__ = ["no_grad", "enable_grad", "is_grad_enabled", "set_grad_enabled", "backward", "grad", "gradcheck",
           "queue_callback"]


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


class _NoArgModeContext(_ModeContext):
    """Also usable as a bare decorator (``@no_grad`` as well as ``@no_grad()``), like torch's."""

    def __new__(cls, fn=None):
        if fn is None:
            return super().__new__(cls)
        if not callable(fn):
            raise TypeError(f"{cls.__name__}: takes no arguments (or a function to decorate), got "
                            f"{type(fn).__name__}")
        return cls()(fn)


class no_grad(_NoArgModeContext):
    """``with pyfastnn.no_grad():`` or ``@pyfastnn.no_grad()``: ops record no graph."""
    mode = False


class enable_grad(_NoArgModeContext):
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

    def __call__(self, fn):
        # As a decorator it must not leave the mode switched (torch restores it too).
        _mode.enabled = self._prev
        return super().__call__(fn)


class Node:
    """How an op's output gradient flows back to its inputs."""
    __slots__ = ("inputs", "backward", "name")

    def __init__(self, inputs, backward, name):
        self.inputs = inputs        # tuple of Tensor (or None for non-tensor arguments)
        self.backward = backward    # grad_out -> tuple of input grads (arrays or None)
        self.name = name


def _topological_order(root):
    """The graph's tensors (with a node, or leaves that require grad), each after
    every tensor computed from it: a leaf comes after all its uses, so its
    gradient is complete, and delivered once, when the walk reaches it."""
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
        if t._node is None:
            continue
        for p in t._node.inputs:
            if p is not None and id(p) not in seen and (p._node is not None or p.requires_grad):
                stack.append((p, False))
    order.reverse()
    return order


_final_callbacks = []


def queue_callback(fn):
    """Runs fn() once the backward pass in progress has finished (DistributedDataParallel
    waits for its last gradient bucket there)."""
    _final_callbacks.append(fn)


def _freed(_grad):
    raise RuntimeError("backward: this graph was already freed by an earlier backward(); call backward("
                       "retain_graph=True) the first time to go through it twice")


def _accumulate_leaf(t, g, shared=False):
    """shared: g may be memory that something else holds (another leaf's .grad,
    the caller's gradient), so a fresh .grad must be a copy."""
    from .tensor import Tensor
    if g.shape != t.data.shape:
        g = g.reshape(t.data.shape)
    if g.dtype != t.data.dtype:
        g = g.astype(t.data.dtype)
    if t.grad is None:
        t.grad = Tensor(g if g.flags.c_contiguous and not shared else g.copy(), _trusted=True)
    else:
        t.grad = Tensor(t.grad.data + g, _trusted=True)


def backward(root, grad_output=None, retain_graph=False, _only=None):
    """Accumulates d(root)/d(leaf) into ``.grad`` of every leaf that requires grad.

    _only (for ``grad``): a dict {id(tensor): None}; the gradients of exactly
    those tensors are summed into it and no ``.grad`` is touched."""
    handed = set()   # ids of arrays already handed to a leaf: a second leaf gets a copy, never an alias

    def deliver(t, g):
        if _only is None:
            owner = g
            while getattr(owner, "base", None) is not None:   # views of one buffer count as one
                owner = owner.base
            _accumulate_leaf(t, g, id(owner) in handed)
            handed.add(id(owner))
        elif id(t) in _only:
            prev = _only[id(t)]
            _only[id(t)] = g if prev is None else prev + g
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
        g = g.astype(root.dtype, copy=True)   # never alias the caller's array into a .grad
    if root._node is None:  # a leaf
        deliver(root, g)
        for hook in (getattr(root, "_grad_hooks", None) or ()) if _only is None else ():
            hook(root)
        return
    grads = {id(root): g}
    try:
        for t in _topological_order(root):
            g = grads.pop(id(t), None)
            if g is None:
                continue
            node = t._node
            if node is None:          # a leaf: every use has contributed
                deliver(t, g)
                if _only is None:
                    for hook in getattr(t, "_grad_hooks", None) or ():
                        hook(t)
                continue
            if (t._retain if _only is None else id(t) in _only):
                deliver(t, g)
            input_grads = node.backward(g)
            if not retain_graph:
                node.backward = _freed
            for p, gp in zip(node.inputs, input_grads):
                if p is None or gp is None or not p.requires_grad:
                    continue
                k = id(p)
                prev = grads.get(k)
                grads[k] = gp if prev is None else prev + gp
    finally:
        if _only is None:
            while _final_callbacks:
                _final_callbacks.pop(0)()


def grad(output, inputs, grad_output=None, retain_graph=False):
    """d(output)/d(inputs) as a list of arrays (None for an input the output does
    not depend on), leaving every ``.grad`` as it was."""
    inputs = list(inputs)
    only = {id(t): None for t in inputs}
    backward(output, grad_output, retain_graph, _only=only)
    out = []
    for t in inputs:
        g = only[id(t)]
        if g is not None:
            g = g.reshape(t.data.shape).astype(t.data.dtype, copy=False)
        out.append(g)
    return out


def gradcheck(fn, inputs, eps=1e-6, rtol=1e-4, atol=1e-7, seed=0):
    """Compares the autograd gradients of ``sum(fn(*inputs) * w)`` (w random,
    fixed; summed over the outputs when fn returns a tuple) with central finite
    differences. inputs: float64 Tensors (other arguments pass through); the
    ones with requires_grad are checked. Returns True or raises AssertionError
    naming the input and the worst element."""
    from .tensor import Tensor
    rng = np.random.default_rng(seed)
    inputs = tuple(inputs)
    checked = [t for t in inputs if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input requires grad")
    for t in checked:
        if t.dtype != np.float64:
            raise TypeError(f"gradcheck: inputs must be float64 for finite differences, got {t.dtype}")

    def outputs():
        out = fn(*inputs)
        outs = out if isinstance(out, (tuple, list)) else (out,)
        return [o for o in outs if isinstance(o, Tensor) and o.dtype.kind == "f"]
    outs = outputs()
    weights = [rng.standard_normal(o.shape) for o in outs]
    terms = [(o * Tensor(w)).sum() for o, w in zip(outs, weights) if o.requires_grad]
    if not terms:
        raise ValueError("gradcheck: no output of fn requires grad")
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    analytic = grad(total, checked)

    def objective():
        return sum(float((o.data.astype(np.float64) * w).sum()) for o, w in zip(outputs(), weights))
    with no_grad():
        for n, (t, ga) in enumerate(zip(checked, analytic)):
            numeric = np.zeros(t.shape)
            data = t.data          # perturbed in place, whatever its strides
            for i in np.ndindex(*t.shape):
                keep = data[i]
                data[i] = keep + eps
                plus = objective()
                data[i] = keep - eps
                minus = objective()
                data[i] = keep
                numeric[i] = (plus - minus) / (2 * eps)
            ga = np.zeros(t.shape) if ga is None else np.asarray(ga, dtype=np.float64)
            err = np.abs(ga - numeric)
            bad = err > atol + rtol * np.abs(numeric)
            if bad.any():
                i = np.unravel_index(int(np.argmax(err - rtol * np.abs(numeric))), t.shape) if t.shape else ()
                raise AssertionError(f"gradcheck: input {n} of shape {t.shape}: element {tuple(int(j) for j in i)} "
                                     f"autograd {float(ga[i])!r} vs finite difference {float(numeric[i])!r}")
    return True
