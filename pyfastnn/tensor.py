"""``pyfastnn.Tensor``: an ndarray (numpy or CuPy) with a gradient and a graph.

Arithmetic, reductions and shape ops are here; the neural-network ops (conv,
pooling, LSTM, attention, losses) are in ``pyfastnn.nn.functional``. Every op
returns a new Tensor whose ``_node`` knows how to send its gradient back.
Storage is never copied on the way in or out when it need not be: numpy and
CuPy arrays are wrapped as they are, DLPack producers (torch, JAX) are viewed,
and ``__array__``/``__dlpack__`` hand the same memory back out.
"""
from __future__ import annotations

import numbers

import numpy as np

from . import ops
from .autograd import Node, _mode, backward as _run_backward

__all__ = ["Tensor", "tensor", "from_numpy", "zeros", "ones", "randn", "rand", "arange", "cat", "stack", "where"]


def _is_cupy(x) -> bool:
    return type(x).__module__.startswith("cupy")


def _xp_of(array):
    if _is_cupy(array):
        import cupy
        return cupy
    return np


def _as_storage(data, dtype=None, where="tensor"):
    """An ndarray for data, without a copy where one is not needed."""
    if isinstance(data, Tensor):
        arr = data.data
    elif isinstance(data, np.ndarray) or _is_cupy(data):
        arr = data
    elif isinstance(data, np.generic):   # a numpy scalar keeps its dtype, like an array
        arr = np.asarray(data)
    elif hasattr(data, "__dlpack__") and not isinstance(data, (numbers.Number, list, tuple)):
        arr = ops._as_array(where, "data", data)
    else:
        try:
            arr = np.asarray(data)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{where}: cannot make a tensor from {type(data).__name__}: {exc}") from None
        if arr.dtype == object:
            raise TypeError(f"{where}: cannot make a tensor from {type(data).__name__} (ragged or non-numeric)")
        if arr.dtype == np.float64 and dtype is None:
            arr = arr.astype(np.float32)   # Python floats give float32, PyTorch's default dtype
    if isinstance(arr, np.ndarray) and arr.dtype.kind in "OSUVMm":   # strings, objects, dates: not numbers
        raise TypeError(f"{where}: cannot make a tensor from {type(data).__name__} of dtype {arr.dtype} "
                        f"(expected numbers or bools)")
    if dtype is not None:
        arr = arr.astype(_to_dtype(dtype, where), copy=False)
    return arr


_DTYPE_NAMES = {"float32": np.float32, "float": np.float32, "float64": np.float64, "double": np.float64,
                "float16": np.float16, "half": np.float16, "int64": np.int64, "long": np.int64,
                "int32": np.int32, "int": np.int32, "bool": np.bool_, "uint8": np.uint8}


def _to_dtype(dtype, where):
    if isinstance(dtype, str):
        if dtype not in _DTYPE_NAMES:
            raise TypeError(f"{where}: unknown dtype {dtype!r}")
        return np.dtype(_DTYPE_NAMES[dtype])
    try:
        return np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{where}: unknown dtype {dtype!r}") from None


def _unbroadcast(g, shape):
    """Sums g down to `shape` (the reverse of broadcasting)."""
    if g.shape == shape:
        return g
    lead = g.ndim - len(shape)
    if lead:
        g = g.sum(axis=tuple(range(lead)))
    axes = tuple(i for i, s in enumerate(shape) if s == 1 and g.shape[i] != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return g.reshape(shape)


def _result(data, inputs, backward, name):
    """A Tensor holding `data` that records (inputs, backward) when grad mode is on."""
    out = Tensor.__new__(Tensor)
    out.data = np.asarray(data) if isinstance(data, np.generic) else data   # numpy reductions give scalars
    out.grad = None
    out._retain = False
    if _mode.enabled:
        for t in inputs:
            if t is not None and t.requires_grad:
                out.requires_grad = True
                out._node = Node(inputs, backward, name)
                return out
    out.requires_grad = False
    out._node = None
    return out


def _operand(x, like):
    """Tensor operands pass; scalars stay Python scalars (so float32 stays float32);
    arrays become constant Tensors."""
    if isinstance(x, Tensor):
        return x
    if isinstance(x, (bool, int, float)):
        return x.item() if isinstance(x, np.generic) else x   # np.float64 would promote float32 (NEP 50)
    if isinstance(x, np.generic) and x.dtype.kind in "biuf":
        return x.item()
    return Tensor(_as_storage(x, where="Tensor arithmetic"), _trusted=True)


def _normalize_axis(axis, ndim, where):
    if axis is None:
        return None
    if isinstance(axis, (list, tuple)):
        return tuple(_normalize_axis(a, ndim, where) for a in axis)
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"{where}: argument 'dim' must be an int or a tuple of ints, got {type(axis).__name__}")
    if not -max(ndim, 1) <= axis < max(ndim, 1):
        raise IndexError(f"{where}: dimension {axis} is out of range for a tensor with {ndim} dimensions")
    return int(axis) % max(ndim, 1)


def _shape_arg(shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(shape)


def _index_arg(idx):
    if isinstance(idx, Tensor):
        return idx.data
    if isinstance(idx, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in idx)
    return idx


def _basic_index(idx):
    """Whether idx selects a view (ints, slices, None, Ellipsis only)."""
    items = idx if isinstance(idx, tuple) else (idx,)
    return all(i is None or i is Ellipsis or isinstance(i, (int, np.integer, slice)) and not isinstance(i, bool)
               for i in items)


class Tensor:
    """An n-dimensional array with reverse-mode automatic differentiation."""
    __slots__ = ("data", "grad", "requires_grad", "_node", "_retain", "_grad_hooks", "__weakref__")
    __array_ufunc__ = None      # numpy defers `ndarray + Tensor` to Tensor.__radd__

    def __init__(self, data, requires_grad=False, dtype=None, *, _trusted=False):
        self.data = data if _trusted and not isinstance(data, np.generic) else _as_storage(data, dtype, "Tensor")
        self.grad = None
        self._node = None
        self._retain = False
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    # ------------------------------------------------------------- basics
    def _xp(self):
        return _xp_of(self.data)

    @property
    def shape(self):
        return tuple(self.data.shape)

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def ndim(self):
        return self.data.ndim

    @property
    def device(self):
        return "cuda" if _is_cupy(self.data) else "cpu"

    @property
    def is_leaf(self):
        return self._node is None

    @property
    def grad_fn(self):
        return None if self._node is None else self._node.name

    def size(self, dim=None):
        return self.shape if dim is None else self.shape[dim]

    def dim(self):
        return self.data.ndim

    def numel(self):
        return int(self.data.size)

    def __len__(self):
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.data.shape[0]

    def __repr__(self):
        grad = ", requires_grad=True" if self.requires_grad else ""
        if self._node is not None:
            grad = f", grad_fn=<{self._node.name}>"
        dev = ", device='cuda'" if self.device == "cuda" else ""
        body = np.array2string(self.numpy(), separator=", ", prefix="tensor(")
        return f"tensor({body}, dtype={self.dtype}{dev}{grad})"

    def requires_grad_(self, requires_grad=True):
        if requires_grad and self.data.dtype.kind not in "fc":
            raise TypeError(f"requires_grad: only floating-point tensors can require gradients, got {self.dtype}")
        if not requires_grad and self._node is not None:
            raise RuntimeError("requires_grad_: use detach() to cut a non-leaf tensor from its graph")
        self.requires_grad = bool(requires_grad)
        return self

    def register_post_accumulate_grad_hook(self, hook):
        """hook(tensor) runs after backward() has added this leaf's complete gradient to .grad."""
        if self._node is not None:
            raise RuntimeError("register_post_accumulate_grad_hook: only leaf tensors have an accumulated .grad")
        hooks = getattr(self, "_grad_hooks", None)
        if hooks is None:
            hooks = self._grad_hooks = []
        hooks.append(hook)
        return hook

    def retain_grad(self):
        """Keeps .grad on a non-leaf tensor after backward()."""
        self._retain = True
        return self

    def backward(self, gradient=None, retain_graph=False):
        """Accumulates gradients into .grad of the leaves this tensor was computed from."""
        _run_backward(self, gradient, retain_graph)

    def zero_(self):
        self.data[...] = 0
        return self

    def detach(self):
        return Tensor(self.data, _trusted=True)

    def clone(self):
        return _result(self.data.copy(), (self,), lambda g: (g,), "CloneBackward")

    def item(self):
        if self.data.size != 1:
            raise ValueError(f"item: only one-element tensors convert to a Python number, got shape {self.shape}")
        return self.data.reshape(()).item()

    def tolist(self):
        return self.numpy().tolist()

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __bool__(self):
        if self.data.size != 1:
            raise ValueError(f"the truth value of a tensor with {self.data.size} elements is ambiguous")
        return bool(self.item())

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    __hash__ = object.__hash__

    # ----------------------------------------------------------- interop
    def numpy(self):
        """The data as a numpy array (the same memory on the CPU; a copy from the GPU)."""
        if _is_cupy(self.data):
            return self.data.get()
        return self.data

    def __array__(self, dtype=None, copy=None):
        if _is_cupy(self.data):
            raise TypeError("Tensor.__array__: the tensor is on the GPU; call .numpy() (copies) or .to('cpu')")
        if dtype is not None and np.dtype(dtype) != self.data.dtype:
            if copy is False:
                raise ValueError("Tensor.__array__: converting the dtype needs a copy")
            return self.data.astype(dtype)
        return self.data.copy() if copy else self.data

    def __dlpack__(self, *args, **kwargs):
        return self.data.__dlpack__(*args, **kwargs)

    def __dlpack_device__(self):
        return self.data.__dlpack_device__()

    @property
    def __cuda_array_interface__(self):
        if not _is_cupy(self.data):
            raise AttributeError("__cuda_array_interface__: the tensor is on the CPU")
        return self.data.__cuda_array_interface__

    def to(self, device=None, dtype=None):
        """Tensor.to('cpu'|'cuda') and/or a dtype; differentiable."""
        if device is not None and not isinstance(device, str) and dtype is None:
            device, dtype = None, device
        out = self
        if dtype is not None:
            out = out.type(dtype)
        if device is not None:
            if device not in ("cpu", "cuda") and not str(device).startswith("cuda:"):
                raise ValueError(f"Tensor.to: device must be 'cpu' or 'cuda', got {device!r}")
            target = "cuda" if str(device).startswith("cuda") else "cpu"
            if target != out.device:
                if target == "cuda":
                    from . import _backend
                    _backend.require_cuda("Tensor.to")
                    import cupy
                    data = cupy.asarray(out.data)
                    out = _result(data, (out,), lambda g: (g.get(),), "ToCudaBackward")
                else:
                    import cupy
                    out = _result(out.data.get(), (out,), lambda g: (cupy.asarray(g),), "ToCpuBackward")
        return out

    def cpu(self):
        return self.to("cpu")

    def cuda(self):
        return self.to("cuda")

    def type(self, dtype):
        dt = _to_dtype(dtype, "Tensor.type")
        if dt == self.dtype:
            return self
        src = self.dtype
        if dt.kind not in "fc" or src.kind not in "fc":
            return Tensor(self.data.astype(dt), _trusted=True)
        return _result(self.data.astype(dt), (self,), lambda g: (g.astype(src),), "ToCopyBackward")

    def float(self):
        return self.type(np.float32)

    def double(self):
        return self.type(np.float64)

    def long(self):
        return self.type(np.int64)

    # -------------------------------------------------------- arithmetic
    def __add__(self, other):
        other = _operand(other, self)
        if not isinstance(other, Tensor):
            return _result(self.data + other, (self,), lambda g: (g,), "AddBackward")
        a_shape, b_shape = self.data.shape, other.data.shape
        return _result(self.data + other.data, (self, other),
                       lambda g: (_unbroadcast(g, a_shape), _unbroadcast(g, b_shape)), "AddBackward")

    __radd__ = __add__

    def __sub__(self, other):
        other = _operand(other, self)
        if not isinstance(other, Tensor):
            return _result(self.data - other, (self,), lambda g: (g,), "SubBackward")
        a_shape, b_shape = self.data.shape, other.data.shape
        return _result(self.data - other.data, (self, other),
                       lambda g: (_unbroadcast(g, a_shape), _unbroadcast(-g, b_shape)), "SubBackward")

    def __rsub__(self, other):
        return (-self).__add__(other)

    def __neg__(self):
        return _result(-self.data, (self,), lambda g: (-g,), "NegBackward")

    def __mul__(self, other):
        other = _operand(other, self)
        if not isinstance(other, Tensor):
            return _result(self.data * other, (self,), lambda g: (g * other,), "MulBackward")
        a, b = self.data, other.data
        return _result(a * b, (self, other),
                       lambda g: (_unbroadcast(g * b, a.shape) if self.requires_grad else None,
                                  _unbroadcast(g * a, b.shape) if other.requires_grad else None), "MulBackward")

    __rmul__ = __mul__

    def __truediv__(self, other):
        other = _operand(other, self)
        if not isinstance(other, Tensor):
            return _result(self.data / other, (self,), lambda g: (g / other,), "DivBackward")
        a, b = self.data, other.data
        return _result(a / b, (self, other),
                       lambda g: (_unbroadcast(g / b, a.shape) if self.requires_grad else None,
                                  _unbroadcast(-g * a / (b * b), b.shape) if other.requires_grad else None),
                       "DivBackward")

    def __rtruediv__(self, other):
        other = _operand(other, self)
        if isinstance(other, Tensor):
            return other.__truediv__(self)
        b = self.data
        return _result(other / b, (self,), lambda g: (-g * other / (b * b),), "DivBackward")

    def __pow__(self, exponent):
        if isinstance(exponent, Tensor):
            return exp(exponent * log(self))
        if isinstance(exponent, np.generic) and exponent.dtype.kind in "biuf":
            exponent = exponent.item()
        if not isinstance(exponent, (int, float)):
            raise TypeError(f"Tensor.__pow__: exponent must be a number or a Tensor, got {type(exponent).__name__}")
        a = self.data
        if exponent == 2:
            return _result(a * a, (self,), lambda g: (g * 2 * a,), "PowBackward")
        if exponent == 0:    # d/da a**0 is 0 everywhere, 0 included (not 0 * a**-1 = nan there)
            return _result(a ** 0, (self,), lambda g: (self._xp().zeros_like(g),), "PowBackward")
        return _result(a ** exponent, (self,), lambda g: (g * exponent * a ** (exponent - 1),), "PowBackward")

    def __rpow__(self, base):
        return exp(self * float(np.log(base)))

    def __matmul__(self, other):
        return matmul(self, other)

    def __rmatmul__(self, other):
        return matmul(_operand(other, self), self)

    # comparisons give constant boolean tensors
    def _compare(self, other, fn):
        o = other.data if isinstance(other, Tensor) else other
        return Tensor(fn(self.data, o), _trusted=True)

    def __eq__(self, other):
        return self._compare(other, lambda a, b: a == b)

    def __ne__(self, other):
        return self._compare(other, lambda a, b: a != b)

    def __lt__(self, other):
        return self._compare(other, lambda a, b: a < b)

    def __le__(self, other):
        return self._compare(other, lambda a, b: a <= b)

    def __gt__(self, other):
        return self._compare(other, lambda a, b: a > b)

    def __ge__(self, other):
        return self._compare(other, lambda a, b: a >= b)

    # -------------------------------------------------------- reductions
    def sum(self, dim=None, keepdim=False, axis=None):
        axis = _normalize_axis(axis if dim is None else dim, self.ndim, "sum")
        shape = self.data.shape
        xp = self._xp()

        def back(g):
            if axis is not None and not keepdim:
                g = xp.expand_dims(g, axis)
            return (xp.broadcast_to(g, shape),)
        return _result(self.data.sum(axis=axis, keepdims=keepdim), (self,), back, "SumBackward")

    def mean(self, dim=None, keepdim=False, axis=None):
        axis = _normalize_axis(axis if dim is None else dim, self.ndim, "mean")
        shape = self.data.shape
        xp = self._xp()
        if axis is None:
            count = self.data.size
        else:
            count = int(np.prod([shape[a] for a in (axis if isinstance(axis, tuple) else (axis,))]))

        def back(g):
            if axis is not None and not keepdim:
                g = xp.expand_dims(g, axis)
            return (xp.broadcast_to(g / count, shape),)
        return _result(self.data.mean(axis=axis, keepdims=keepdim), (self,), back, "MeanBackward")

    def _extremum(self, dim, keepdim, fn, name):
        axis = _normalize_axis(dim, self.ndim, name)
        a = self.data
        xp = self._xp()
        out = fn(a, axis=axis, keepdims=True)

        def back(g):
            if axis is not None and not keepdim:
                g = xp.expand_dims(g, axis)
            hit = (a == out)
            return (hit * (g / hit.sum(axis=axis, keepdims=True)),)   # ties share the gradient, like amax
        if keepdim:
            value = out
        else:
            value = out.reshape(()) if axis is None else out.squeeze(axis)
        return _result(value, (self,), back, name)

    def max(self, dim=None, keepdim=False):
        return self._extremum(dim, keepdim, lambda a, **k: a.max(**k), "MaxBackward")

    def min(self, dim=None, keepdim=False):
        return self._extremum(dim, keepdim, lambda a, **k: a.min(**k), "MinBackward")

    amax = max
    amin = min

    def argmax(self, dim=None, keepdim=False):
        return Tensor(self.data.argmax(axis=dim, keepdims=keepdim), _trusted=True)

    def argmin(self, dim=None, keepdim=False):
        return Tensor(self.data.argmin(axis=dim, keepdims=keepdim), _trusted=True)

    def var(self, dim=None, keepdim=False, unbiased=True):
        axis = _normalize_axis(dim, self.ndim, "var")
        count = self.data.size if axis is None else int(np.prod(
            [self.shape[a] for a in (axis if isinstance(axis, tuple) else (axis,))]))
        centered = self - self.mean(dim=axis, keepdim=True)
        return (centered * centered).sum(dim=axis, keepdim=keepdim) / max(count - int(unbiased), 1)

    def std(self, dim=None, keepdim=False, unbiased=True):
        return sqrt(self.var(dim, keepdim, unbiased))

    # ------------------------------------------------------------ shapes
    def reshape(self, *shape):
        shape = _shape_arg(shape)
        src = self.data.shape
        try:
            data = self.data.reshape(shape)
        except ValueError:
            raise ValueError(f"reshape: shape {shape} is invalid for a tensor of {self.numel()} elements "
                             f"(shape {src})") from None
        return _result(data, (self,), lambda g: (g.reshape(src),), "ReshapeBackward")

    view = reshape

    def flatten(self, start_dim=0, end_dim=-1):
        if self.ndim == 0:
            return self.reshape(1)
        s = _normalize_axis(start_dim, self.ndim, "flatten")
        e = _normalize_axis(end_dim, self.ndim, "flatten")
        if s > e:
            raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
        shape = self.shape
        return self.reshape(shape[:s] + (int(np.prod(shape[s:e + 1])),) + shape[e + 1:])

    def permute(self, *dims):
        dims = tuple(_normalize_axis(d, self.ndim, "permute") for d in _shape_arg(dims))
        if sorted(dims) != list(range(self.ndim)):
            raise ValueError(f"permute: dims {dims} are not a permutation of {self.ndim} dimensions")
        inverse = tuple(np.argsort(dims))
        return _result(self.data.transpose(dims), (self,), lambda g: (g.transpose(inverse),), "PermuteBackward")

    def transpose(self, dim0=None, dim1=None):
        if dim0 is None and dim1 is None:
            if self.ndim > 2:
                raise ValueError("transpose: give the two dimensions to swap for a tensor of more than 2 dims")
            dim0, dim1 = 0, -1
        d0 = _normalize_axis(dim0, self.ndim, "transpose")
        d1 = _normalize_axis(dim1, self.ndim, "transpose")
        return _result(self.data.swapaxes(d0, d1), (self,), lambda g: (g.swapaxes(d0, d1),), "TransposeBackward")

    @property
    def T(self):
        return self.permute(tuple(range(self.ndim))[::-1])

    def unsqueeze(self, dim):
        d = _normalize_axis(dim, self.ndim + 1, "unsqueeze")
        return self.reshape(self.shape[:d] + (1,) + self.shape[d:])

    def squeeze(self, dim=None):
        if dim is None:
            return self.reshape(tuple(s for s in self.shape if s != 1))
        d = _normalize_axis(dim, self.ndim, "squeeze")
        if isinstance(d, tuple):   # torch >= 2.0: several dims; those not of size 1 stay
            return self.reshape(tuple(s for i, s in enumerate(self.shape) if not (i in d and s == 1)))
        if self.shape[d] != 1:
            return self
        return self.reshape(self.shape[:d] + self.shape[d + 1:])

    def expand(self, *shape):
        shape = _shape_arg(shape)
        shape = tuple(s if t == -1 else t for s, t in zip((1,) * (len(shape) - self.ndim) + self.shape, shape))
        src = self.data.shape
        xp = self._xp()
        return _result(xp.broadcast_to(self.data, shape), (self,), lambda g: (_unbroadcast(g, src),),
                       "ExpandBackward")

    def contiguous(self):
        xp = self._xp()
        if self.data.flags.c_contiguous:
            return self
        return _result(xp.ascontiguousarray(self.data), (self,), lambda g: (g,), "ContiguousBackward")

    def __getitem__(self, idx):
        idx = _index_arg(idx)
        src, dtype = self.data.shape, self.data.dtype
        xp = self._xp()
        basic = _basic_index(idx)

        def back(g):
            full = xp.zeros(src, dtype)
            if basic:
                full[idx] = g
            else:
                xp.add.at(full, idx, g)
            return (full,)
        return _result(self.data[idx], (self,), back, "IndexBackward")

    def __setitem__(self, idx, value):
        if self.requires_grad and _mode.enabled:
            raise RuntimeError("Tensor.__setitem__: in-place assignment into a tensor that requires grad is "
                               "not supported; build a new tensor (or use no_grad())")
        self.data[_index_arg(idx)] = value.data if isinstance(value, Tensor) else value

    # --------------------------------------------------- math shortcuts
    def exp(self):
        return exp(self)

    def log(self):
        return log(self)

    def sqrt(self):
        return sqrt(self)

    def abs(self):
        return abs_(self)

    def __abs__(self):
        return abs_(self)

    def clamp(self, min=None, max=None):
        return clamp(self, min, max)

    def relu(self):
        from .nn import functional as F
        return F.relu(self)

    def sigmoid(self):
        from .nn import functional as F
        return F.sigmoid(self)

    def tanh(self):
        from .nn import functional as F
        return F.tanh(self)

    def softmax(self, dim=-1):
        from .nn import functional as F
        return F.softmax(self, dim)

    def log_softmax(self, dim=-1):
        from .nn import functional as F
        return F.log_softmax(self, dim)

    def matmul(self, other):
        return matmul(self, other)


# ------------------------------------------------------------ elementwise
def exp(x):
    y = x._xp().exp(x.data)
    return _result(y, (x,), lambda g: (g * y,), "ExpBackward")


def log(x):
    a = x.data
    return _result(x._xp().log(a), (x,), lambda g: (g / a,), "LogBackward")


def sqrt(x):
    y = x._xp().sqrt(x.data)
    return _result(y, (x,), lambda g: (g / (2 * y),), "SqrtBackward")


def abs_(x):
    a = x.data
    xp = x._xp()
    return _result(xp.abs(a), (x,), lambda g: (g * xp.sign(a),), "AbsBackward")


def clamp(x, min=None, max=None):
    a = x.data
    xp = x._xp()
    y = xp.clip(a, min, max)

    def back(g):
        keep = xp.ones(a.shape, bool)
        if min is not None:
            keep &= a >= min
        if max is not None:
            keep &= a <= max
        return (g * keep,)
    return _result(y, (x,), back, "ClampBackward")


def where(condition, x, y):
    """Elementwise choice, differentiable in x and y."""
    cond = condition.data if isinstance(condition, Tensor) else np.asarray(condition)
    x = x if isinstance(x, Tensor) else Tensor(x)
    y = y if isinstance(y, Tensor) else Tensor(y)
    xs, ys = x.data.shape, y.data.shape
    xp = x._xp()
    return _result(xp.where(cond, x.data, y.data), (x, y),
                   lambda g: (_unbroadcast(xp.where(cond, g, 0), xs), _unbroadcast(xp.where(cond, 0, g), ys)),
                   "WhereBackward")


# ---------------------------------------------------------------- matmul
def _native_matmul_ok(a, b):
    return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype == b.dtype
            and a.dtype in (np.float32, np.float64) and a.ndim >= 2 and b.ndim >= 2)


def matmul(a, b):
    """a @ b with numpy's rules (1-D operands, broadcast batch dims); 2-D and
    batched float32/float64 CPU products run the native GEMM both ways."""
    if not isinstance(a, Tensor):
        a = Tensor(a)
    if not isinstance(b, Tensor):
        b = Tensor(b)
    A, B = a.data, b.data
    if _native_matmul_ok(A, B) and (A.ndim == B.ndim == 2 or (A.ndim == B.ndim and A.shape[:-2] == B.shape[:-2])):
        batch = A.shape[:-2]
        if A.shape[-1] != B.shape[-2]:
            raise ValueError(f"matmul: shapes {A.shape} and {B.shape} cannot be multiplied "
                             f"({A.shape[-1]} != {B.shape[-2]})")
        if A.ndim > 3:   # fold the batch dims: the kernel takes 2-D or 3-D
            A3 = A.reshape((-1,) + A.shape[-2:])
            B3 = B.reshape((-1,) + B.shape[-2:])
        else:
            A3, B3 = A, B
        out = ops.matmul(A3, B3).reshape(batch + (A.shape[-2], B.shape[-1]))

        def back(g):
            g3 = g.reshape((-1,) + g.shape[-2:]) if g.ndim > 3 else g
            ga = ops.matmul(g3, B3, trans_b=True).reshape(A.shape) if a.requires_grad else None
            gb = ops.matmul(A3, g3, trans_a=True).reshape(B.shape) if b.requires_grad else None
            return ga, gb
        return _result(out, (a, b), back, "MmBackward")
    xp = a._xp()
    try:
        out = xp.matmul(A, B)
    except ValueError as exc:
        raise ValueError(f"matmul: shapes {A.shape} and {B.shape} cannot be multiplied: {exc}") from None

    def back_general(g):
        A2 = A[None, :] if A.ndim == 1 else A
        B2 = B[:, None] if B.ndim == 1 else B
        g2 = g
        if B.ndim == 1:      # restore the dims numpy dropped (g may be 0-d for vector @ vector)
            g2 = g2[..., None]
        if A.ndim == 1:
            g2 = g2[..., None, :]
        ga = _unbroadcast(xp.matmul(g2, xp.swapaxes(B2, -1, -2)), A2.shape).reshape(A.shape)
        gb = _unbroadcast(xp.matmul(xp.swapaxes(A2, -1, -2), g2), B2.shape).reshape(B.shape)
        return ga, gb
    return _result(out, (a, b), back_general, "MatmulBackward")


# -------------------------------------------------------------- factories
def tensor(data, requires_grad=False, dtype=None):
    """A Tensor over `data`: numpy/CuPy arrays and DLPack producers (torch,
    JAX) are wrapped without a copy; Python numbers and lists are converted
    (floats to float32)."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


def from_numpy(array):
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy: expected a numpy.ndarray, got {type(array).__name__}")
    return Tensor(array, _trusted=True)


def zeros(*shape, dtype=np.float32, requires_grad=False):
    return Tensor(np.zeros(_shape_arg(shape), _to_dtype(dtype, "zeros")), requires_grad=requires_grad)


def ones(*shape, dtype=np.float32, requires_grad=False):
    return Tensor(np.ones(_shape_arg(shape), _to_dtype(dtype, "ones")), requires_grad=requires_grad)


def randn(*shape, dtype=np.float32, requires_grad=False):
    from ._random import generator
    return Tensor(generator().standard_normal(_shape_arg(shape)).astype(_to_dtype(dtype, "randn")),
                  requires_grad=requires_grad)


def rand(*shape, dtype=np.float32, requires_grad=False):
    from ._random import generator
    return Tensor(generator().random(_shape_arg(shape)).astype(_to_dtype(dtype, "rand")),
                  requires_grad=requires_grad)


def arange(*args, dtype=None):
    return Tensor(np.arange(*args, dtype=dtype), _trusted=True)


def cat(tensors, dim=0):
    """Concatenates along dim; differentiable."""
    tensors = [t if isinstance(t, Tensor) else Tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("cat: expected a non-empty sequence of tensors")
    axis = _normalize_axis(dim, tensors[0].ndim, "cat")
    xp = tensors[0]._xp()
    sizes = [t.shape[axis] for t in tensors]
    try:
        out = xp.concatenate([t.data for t in tensors], axis=axis)
    except ValueError as exc:
        raise ValueError(f"cat: {exc}") from None
    bounds = np.cumsum(sizes)[:-1]
    return _result(out, tuple(tensors), lambda g: tuple(xp.split(g, bounds, axis=axis)), "CatBackward")


def stack(tensors, dim=0):
    """Stacks along a new dim; differentiable."""
    tensors = [t if isinstance(t, Tensor) else Tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("stack: expected a non-empty sequence of tensors")
    return cat([t.unsqueeze(dim) for t in tensors], dim)
