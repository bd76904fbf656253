"""Reverse-mode autograd: grad mode, the graph node, version counters and the backward pass.

A tensor made by a differentiable op holds a ``Node``: a closure that maps the output's gradient to one
gradient per input, and one edge per input — the input's own node at the time of the op, or the input
itself when it is a leaf that requires grad. Edges point at nodes, not at tensors, so an in-place op that
gives a tensor a new node leaves the graph recorded before it intact. Closures keep the bookkeeping to one
Python call per op, which keeps a small layer's forward+backward in the tens of microseconds.

This module knows no Tensor class: a leaf takes its gradient through its own ``_receive_grad`` method.
"""
from __future__ import annotations

import functools
import threading

import numpy as np

__all__ = ["no_grad", "enable_grad", "inference_mode", "is_grad_enabled", "set_grad_enabled",
           "is_inference_mode_enabled", "Node", "backward", "grad", "gradcheck", "queue_callback", "Function",
           "FunctionCtx"]


class _GradMode(threading.local):
    enabled = True


_mode = _GradMode()


def is_grad_enabled() -> bool:
    """Whether ops record the graph (False inside ``no_grad``)."""
    return _mode.enabled


def is_inference_mode_enabled() -> bool:
    return not _mode.enabled


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


class inference_mode(_ModeContext):
    """``with pyfastnn.inference_mode():`` (or ``inference_mode(False)``): like no_grad, as torch's."""

    def __new__(cls, mode=True):
        if callable(mode) and not isinstance(mode, bool):     # bare decorator
            return cls()(mode)
        return super().__new__(cls)

    def __init__(self, mode=True):
        if callable(mode) and not isinstance(mode, bool):
            mode = True
        if not isinstance(mode, (bool, int)):
            raise TypeError(f"inference_mode: argument 'mode' must be a bool, got {type(mode).__name__}")
        self.mode = not bool(mode)


class set_grad_enabled(_ModeContext):
    """Like torch.set_grad_enabled: switches at once, and as a context manager restores the previous mode on
    exit."""

    def __init__(self, mode: bool):
        if not isinstance(mode, (bool, int, np.bool_)):
            raise TypeError(f"set_grad_enabled: argument 'mode' must be a bool, got {type(mode).__name__}")
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
    """How an op's output gradient flows back to its inputs.

    next: one edge per input (a Node, a leaf that requires grad, or None); backward: grad_out -> a tuple
    of input gradients; saved: (version counter, version at save, array) for each tensor the closure reads,
    checked before backward runs; hooks: functions applied to the output gradient first; retained: a
    weak reference to the tensor whose .grad this node's output gradient fills (retain_grad)."""
    __slots__ = ("next", "backward", "name", "saved", "hooks", "retained", "__weakref__")

    def __init__(self, next, backward, name, saved=()):
        self.next = next
        self.backward = backward
        self.name = name
        self.saved = saved
        self.hooks = None
        self.retained = None

    def __repr__(self):
        return f"<{self.name} object>"

    def name_(self):
        return self.name

    @property
    def next_functions(self):
        return tuple((e if isinstance(e, Node) else None, 0) for e in self.next)


def check_saved(node):
    """The error torch raises when a tensor the backward needs was changed in place after it was saved."""
    for counter, version, array in node.saved:
        if counter[0] != version:
            raise RuntimeError(
                f"one of the variables needed for gradient computation has been modified by an inplace "
                f"operation: [tensor of shape {tuple(array.shape)} and dtype {array.dtype}], which is used by {node.name}, is at version {counter[0]}; expected "
                f"version {version} instead. Hint: replace the in-place op (x += ..., x.add_(...), x[i] = ..., "
                f"relu(inplace=True)) with its out-of-place form, or clone() the tensor before changing it.")


def _topological_order(root):
    """The graph's nodes and leaves, each after every node that sends it gradient: a leaf comes after all its
    uses, so its gradient is complete, and delivered once, when the walk reaches it."""
    order, seen = [], set()
    stack = [(root, False)]
    while stack:
        item, done = stack.pop()
        if done:
            order.append(item)
            continue
        if id(item) in seen:
            continue
        seen.add(id(item))
        stack.append((item, True))
        if type(item) is Node:
            for e in item.next:
                if e is not None and id(e) not in seen:
                    stack.append((e, False))
    order.reverse()
    return order


_final_callbacks = []


def queue_callback(fn):
    """Runs fn() once the backward pass in progress has finished (DistributedDataParallel waits for its last
    gradient bucket there)."""
    _final_callbacks.append(fn)


def _freed(_grad):
    raise RuntimeError("backward: trying to backward through the graph a second time (or directly access "
                       "saved tensors after they have already been freed); call backward(retain_graph=True) "
                       "the first time to go through it twice")


def _accumulate(grads, key, g):
    prev = grads.get(key)
    grads[key] = g if prev is None else prev + g


def backward(root_edge, root_grad, retain_graph=False, _only=None):
    """Runs the backward pass from root_edge (a Node, or a leaf that requires grad) with gradient root_grad
    (an array), delivering each leaf's complete gradient through leaf._receive_grad.

    _only (for ``grad``): a dict {id(node or leaf): None}; the gradients arriving there are summed into it
    and no leaf's .grad is touched."""
    handed = set()    # ids of arrays already handed to a leaf: a second leaf gets a copy, never an alias
    try:
        if type(root_edge) is not Node:
            if _only is None:
                root_edge._receive_grad(root_grad, False)
            elif id(root_edge) in _only:
                _only[id(root_edge)] = root_grad
            return
        grads = {id(root_edge): root_grad}
        for item in _topological_order(root_edge):
            g = grads.pop(id(item), None)
            if g is None:
                continue
            if type(item) is not Node:          # a leaf: every use has contributed
                if _only is None:
                    owner = g
                    while getattr(owner, "base", None) is not None:   # views of one buffer count as one
                        owner = owner.base
                    item._receive_grad(g, id(owner) in handed)
                    handed.add(id(owner))
                elif id(item) in _only:
                    _only[id(item)] = g
                continue
            if item.hooks:
                for hook in item.hooks:
                    g = hook(g)
            if _only is not None and id(item) in _only:
                _only[id(item)] = g
            elif _only is None and item.retained is not None:
                kept = item.retained()
                if kept is not None:
                    kept._receive_grad(g, True, retained=True)
            check_saved(item)
            input_grads = item.backward(g)
            if not retain_graph:
                item.backward = _freed
                item.saved = ()
            for e, gi in zip(item.next, input_grads):
                if e is not None and gi is not None:
                    _accumulate(grads, id(e), gi)
    finally:
        if _only is None:
            while _final_callbacks:
                _final_callbacks.pop(0)()


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, allow_unused=None,
         materialize_grads=False):
    """d(outputs)/d(inputs) as a tuple of Tensors (None for an input the outputs do not depend on, when
    allow_unused), leaving every ``.grad`` as it was, like torch.autograd.grad."""
    if create_graph:
        raise NotImplementedError("grad: create_graph=True (higher-order gradients) is not supported")
    single = not isinstance(outputs, (list, tuple))
    outputs = [outputs] if single else list(outputs)
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    elif not isinstance(grad_outputs, (list, tuple)):
        grad_outputs = [grad_outputs]
    if len(grad_outputs) != len(outputs):
        raise ValueError(f"grad: got {len(grad_outputs)} grad_outputs for {len(outputs)} outputs")
    inputs_seq = [inputs] if not isinstance(inputs, (list, tuple)) else list(inputs)
    keys = []
    for i, t in enumerate(inputs_seq):
        if not getattr(t, "requires_grad", False):
            raise RuntimeError(f"grad: input {i} does not require grad")
        keys.append(id(t._grad_edge()))
    totals = {k: None for k in keys}
    keep = bool(retain_graph) or len(outputs) > 1
    for n, (out, go) in enumerate(zip(outputs, grad_outputs)):
        edge, g = out._backward_root(go, "grad")
        last = n == len(outputs) - 1
        only = {k: None for k in keys}
        backward(edge, g, keep if not last else bool(retain_graph), _only=only)
        for k, v in only.items():
            if v is not None:
                totals[k] = v if totals[k] is None else totals[k] + v
    result = []
    for i, (t, k) in enumerate(zip(inputs_seq, keys)):
        g = totals[k]
        if g is None:
            if not allow_unused and not materialize_grads:
                raise RuntimeError(f"grad: one of the differentiated tensors (input {i}) appears to not have "
                                   f"been used in the graph; set allow_unused=True if this is the desired "
                                   f"behavior")
            result.append(t._grad_tensor(None) if materialize_grads else None)
        else:
            result.append(t._grad_tensor(g))
    return tuple(result)


class FunctionCtx:
    """The ctx a custom Function's forward and backward share (torch.autograd.function.FunctionCtx)."""

    def __init__(self):
        self._saved = ()
        self.needs_input_grad = ()
        self.materialize_grads = True
        self.non_differentiable = set()

    def save_for_backward(self, *tensors):
        self._saved = tuple((t, t._counter[0]) if hasattr(t, "_counter") else (t, None) for t in tensors)

    @property
    def saved_tensors(self):
        for t, version in self._saved:
            if version is not None and t._counter[0] != version:
                raise RuntimeError("one of the variables needed for gradient computation has been modified by an "
                                   f"inplace operation: [tensor of shape {tuple(t.shape)}] is at version "
                                   f"{t._counter[0]}; expected version {version} instead.")
        return tuple(t for t, _ in self._saved)

    def mark_non_differentiable(self, *tensors):
        self.non_differentiable.update(id(t) for t in tensors)

    def mark_dirty(self, *tensors):
        pass

    def set_materialize_grads(self, value):
        self.materialize_grads = bool(value)


class _Slots:
    """The gradients of a multi-output Function, one slot per output, summed slot-wise."""
    __slots__ = ("grads",)

    def __init__(self, grads):
        self.grads = grads

    def __add__(self, other):
        return _Slots([b if a is None else a if b is None else a + b for a, b in zip(self.grads, other.grads)])


class Function:
    """Custom differentiable ops, as torch.autograd.Function: subclass with static forward(ctx, *args) and
    backward(ctx, *grad_outputs) (or forward(*args) plus setup_context(ctx, inputs, output)) and call
    YourFunction.apply(*args). forward runs without recording; backward returns one gradient (or None) per
    argument of forward."""

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("You must implement the forward function for custom autograd.Function.")

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError("You must implement either the backward or vjp method for your custom "
                                  "autograd.Function to use it with backward mode AD.")

    vjp = backward

    @classmethod
    def apply(cls, *args, **kwargs):
        ctx = FunctionCtx()
        is_tensor = [hasattr(a, "_grad_edge") for a in args]
        ctx.needs_input_grad = tuple(bool(t and a.requires_grad) for a, t in zip(args, is_tensor))
        separate_setup = "setup_context" in cls.__dict__ or any(
            "setup_context" in k.__dict__ for k in cls.__mro__[1:] if k is not Function)
        with no_grad():
            out = cls.forward(*args, **kwargs) if separate_setup else cls.forward(ctx, *args, **kwargs)
        if separate_setup:
            cls.setup_context(ctx, args, out)
        if not (_mode.enabled and any(ctx.needs_input_grad)):
            return out
        outs = out if isinstance(out, tuple) else (out,)
        edges = tuple(a._grad_edge() if t and a.requires_grad else None for a, t in zip(args, is_tensor))
        n_out = len(outs)

        def run_backward(grads):
            wrapped = []
            for o, g in zip(outs, grads):
                if g is None and ctx.materialize_grads and hasattr(o, "_grad_tensor"):
                    wrapped.append(o._grad_tensor(None))
                else:
                    wrapped.append(None if g is None else o._grad_tensor(g))
            result = cls.backward(ctx, *wrapped)
            result = result if isinstance(result, tuple) else (result,)
            if len(result) < len(args):
                raise RuntimeError(f"function {cls.__name__}Backward returned an incorrect number of gradients "
                                   f"(expected {len(args)}, got {len(result)})")
            return tuple(None if r is None or not need else (r._array if hasattr(r, "_array") else r)
                         for r, need in zip(result[:len(args)], ctx.needs_input_grad))
        name = f"{cls.__name__}Backward"
        differentiable = [o for o in outs if hasattr(o, "_grad_edge") and id(o) not in ctx.non_differentiable
                          and o.dtype.kind in "fc"]
        if n_out == 1:
            node = Node(edges, lambda g: run_backward([g]), name)
            for o in differentiable:
                o._node, o.requires_grad = node, True
            return out
        joint = Node(edges, lambda slots: run_backward(slots.grads), name)
        chosen = {id(o) for o in differentiable}
        for i, o in enumerate(outs):
            if id(o) in chosen:
                def to_slot(g, i=i):
                    slots = [None] * n_out
                    slots[i] = g
                    return (_Slots(slots),)
                o._node, o.requires_grad = Node((joint,), to_slot, name), True
        return out


def gradcheck(fn, inputs, eps=1e-6, rtol=1e-4, atol=1e-7, seed=0):
    """Compares the autograd gradients of ``sum(fn(*inputs) * w)`` (w random, fixed; summed over the outputs
    when fn returns a tuple) with central finite differences. inputs: float64 Tensors (other arguments pass
    through); the ones with requires_grad are checked. Returns True or raises AssertionError naming the input
    and the worst element."""
    rng = np.random.default_rng(seed)
    inputs = tuple(inputs)

    def is_tensor(t):
        return hasattr(t, "_grad_edge")
    checked = [t for t in inputs if is_tensor(t) and t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input requires grad")
    for t in checked:
        if t.dtype != np.float64:
            raise TypeError(f"gradcheck: inputs must be float64 for finite differences, got {t.dtype}")

    def outputs():
        out = fn(*inputs)
        outs = out if isinstance(out, (tuple, list)) else (out,)
        return [o for o in outs if is_tensor(o) and o.dtype.kind == "f"]
    outs = outputs()
    weights = [rng.standard_normal(o.shape) for o in outs]
    terms = [(o * w).sum() for o, w in zip(outs, weights) if o.requires_grad]
    if not terms:
        raise ValueError("gradcheck: no output of fn requires grad")
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    analytic = grad(total, checked, allow_unused=True)

    def objective():
        return sum(float((np.asarray(o.detach().numpy(), np.float64) * w).sum())
                   for o, w in zip(outputs(), weights))
    with no_grad():
        for n, (t, ga) in enumerate(zip(checked, analytic)):
            numeric = np.zeros(t.shape)
            data = t.detach().numpy()          # perturbed in place, whatever its strides
            for i in np.ndindex(*t.shape):
                keep = data[i]
                data[i] = keep + eps
                plus = objective()
                data[i] = keep - eps
                minus = objective()
                data[i] = keep
                numeric[i] = (plus - minus) / (2 * eps)
            ga = np.zeros(t.shape) if ga is None else np.asarray(ga.numpy(), dtype=np.float64)
            err = np.abs(ga - numeric)
            bad = err > atol + rtol * np.abs(numeric)
            if bad.any():
                i = np.unravel_index(int(np.argmax(err - rtol * np.abs(numeric))), t.shape) if t.shape else ()
                raise AssertionError(f"gradcheck: input {n} of shape {t.shape}: element {tuple(int(j) for j in i)} "
                                     f"autograd {float(ga[i])!r} vs finite difference {float(numeric[i])!r}")
    return True
