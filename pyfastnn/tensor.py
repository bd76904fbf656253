"""``pyfastnn.Tensor``: an ndarray (numpy or CuPy) with a gradient, a graph, a version counter and torch's
semantics — and every one-kernel primitive (arithmetic, activations, softmax, matmul, reductions, shape and
indexing ops) with its backward.

Storage is never copied on the way in or out when it need not be: numpy and CuPy arrays are wrapped as they
are, DLPack producers (torch, JAX) are viewed, and ``__array__``/``__dlpack__`` hand the same memory back out.
In-place operators write into the storage; views share their base's storage and version counter, and a
backward pass refuses to run on a tensor that was changed in place after an op saved it (torch's rule).
"""
from __future__ import annotations

import builtins
import collections
import math
import numbers
import weakref

import numpy as np

from . import _device, ops
from ._device import dtype_of, is_cupy, result_dtype, scalar_result_dtype
from ._errors import DTypeError, ShapeError
from ._random import generator as _generator
from .autograd import Node, _mode, backward as _run_backward, check_saved, enable_grad, no_grad

__all__ = ["Tensor", "Size", "tensor", "as_tensor", "from_numpy", "is_tensor", "zeros", "ones", "empty", "full",
           "zeros_like", "ones_like", "empty_like", "full_like", "eye", "arange", "linspace", "rand", "randn",
           "randint", "randperm", "rand_like", "randn_like", "randint_like", "multinomial", "normal", "bernoulli",
           "cat", "concat", "concatenate", "stack", "where", "matmul", "einsum", "relu", "gelu", "sigmoid",
           "tanh", "softmax", "log_softmax", "exp", "log", "sqrt"]

_new = object.__new__
_ACT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
return_types = collections.namedtuple   # torch.return_types.* are named tuples too
max_result = return_types("max", ["values", "indices"])
min_result = return_types("min", ["values", "indices"])
topk_result = return_types("topk", ["values", "indices"])
sort_result = return_types("sort", ["values", "indices"])
median_result = return_types("median", ["values", "indices"])
mode_result = return_types("mode", ["values", "indices"])
kthvalue_result = return_types("kthvalue", ["values", "indices"])
cummax_result = return_types("cummax", ["values", "indices"])
var_mean_result = return_types("var_mean", ["var", "mean"])
std_mean_result = return_types("std_mean", ["std", "mean"])
aminmax_result = return_types("aminmax", ["min", "max"])


class Size(tuple):
    """A tensor's shape: a tuple, with torch.Size's numel()."""
    __slots__ = ()

    def numel(self):
        n = 1
        for s in self:
            n *= s
        return n

    def __repr__(self):
        return f"pyfastnn.Size({list(self)})"

    def __getitem__(self, item):
        got = tuple.__getitem__(self, item)
        return Size(got) if isinstance(item, slice) else got

    def __add__(self, other):
        return Size(tuple(self) + tuple(other))


# ------------------------------------------------------------------ storage
def _storage(data, dtype=None, where="tensor"):
    """An ndarray for data, without a copy where one is not needed; Python floats become float32 (torch's
    default dtype), Python ints int64."""
    if isinstance(data, Tensor):
        arr = data._array
    elif isinstance(data, np.ndarray) or is_cupy(data):
        arr = data
    elif isinstance(data, np.generic):   # a numpy scalar keeps its dtype, like an array
        arr = np.asarray(data)
    elif hasattr(data, "__dlpack__") and not isinstance(data, (numbers.Number, list, tuple)):
        arr = ops._as_array(where, "data", data)
    else:
        if isinstance(data, (list, tuple)) and any(isinstance(e, Tensor) for e in data):
            data = [e.item() if isinstance(e, Tensor) and e.numel() == 1 and e.ndim == 0 else
                    (_device.host(e._array) if isinstance(e, Tensor) else e) for e in data]
        try:
            arr = np.asarray(data)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{where}: cannot make a tensor from {type(data).__name__}: {exc}") from None
        if arr.dtype == object:
            raise TypeError(f"{where}: cannot make a tensor from {type(data).__name__} (ragged or non-numeric)")
        if dtype is None and arr.dtype == np.float64 and not _has_numpy_float64(data):
            arr = arr.astype(np.float32)
        elif dtype is None and arr.dtype.kind == "i" and arr.dtype != np.int64:
            arr = arr.astype(np.int64)
    if isinstance(arr, np.ndarray) and arr.dtype.kind in "OSUVMm" and arr.dtype.names is None and \
            not (_device.bfloat16.dtype == arr.dtype):
        raise TypeError(f"{where}: cannot make a tensor from {type(data).__name__} of dtype {arr.dtype} "
                        f"(expected numbers or bools)")
    if dtype is not None:
        arr = arr.astype(_device.as_numpy_dtype(dtype, where), copy=False)
    return arr


def _has_numpy_float64(data):
    """torch keeps numpy float64 scalars in a list as float64 (Python floats become float32)."""
    if isinstance(data, np.floating):
        return data.dtype == np.float64
    if isinstance(data, (list, tuple)):
        return builtins.any(_has_numpy_float64(e) for e in data[:8])
    return False


def _wrap(array):
    """A Tensor over array: no checks, no graph (the fast constructor every op uses)."""
    t = _new(Tensor)
    t._array = array
    t._counter = [0]
    return t


def _edge(t):
    """What a node records for input t: t's node, t itself when it is a leaf that requires grad, else None."""
    if t is None or not t.requires_grad:
        return None
    return t._node if t._node is not None else t


def _fresh(t):
    """Brings a view's graph up to date after its base was changed in place (it is then a view of the new
    base, not of the old one)."""
    if t._base is not None and t._counter[0] != t._view_version:
        t._refresh_view()


def _result(array, inputs, backward, name, saved=(), saves_output=False):
    """A Tensor holding array that records (inputs, backward) when grad mode is on and an input requires
    grad. saved: the tensors whose storage backward reads (checked for later in-place changes);
    saves_output: backward reads the output array too."""
    if isinstance(array, np.generic):      # numpy reductions give scalars
        array = np.asarray(array)
    out = _new(Tensor)
    out._array = array
    out._counter = [0]
    if not _mode.enabled:
        return out
    needed = False
    for t in inputs:
        if t is not None:
            if t._base is not None:
                _fresh(t)
            if t.requires_grad:
                needed = True
    if not needed:
        return out
    out.requires_grad = True
    checks = tuple((t._counter, t._counter[0], t._array) for t in saved if t is not None)
    if saves_output:
        checks += ((out._counter, 0, array),)
    out._node = Node(tuple(_edge(t) for t in inputs), backward, name, checks)
    return out


def _root_buffer(a):
    while getattr(a, "base", None) is not None:
        a = a.base
    return a


def _view(array, src, backward, name, view_fn):
    """Like _result for an op whose output may share src's memory (reshape, transpose, basic indexing, ...):
    a real view shares src's version counter and remembers how it was made from its root tensor, so in-place
    changes through it or to its base keep the graph right."""
    out = _result(array, (src,), backward, name)
    if array is src._array or _root_buffer(array) is _root_buffer(src._array):
        out._counter = src._counter
        if src._base is None:
            out._base, out._view_fn = src, view_fn
        else:
            parent_fn = src._view_fn
            out._base, out._view_fn = src._base, (lambda root: view_fn(parent_fn(root)))
        out._view_version = src._counter[0]
    return out


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


def _as_tensor_arg(x, where, name="input"):
    """A Tensor for a required tensor argument: Tensors pass, arrays and numbers are wrapped; None is a
    TypeError naming the op and argument."""
    if isinstance(x, Tensor):
        return x
    if x is None:
        raise TypeError(f"{where}: argument '{name}' must be a Tensor or an array, got None")
    return _wrap(_storage(x, where=f"{where}: argument '{name}'"))


def _scalar_operand(x):
    """A Python number for a scalar operand (numpy scalars included, so float32 stays float32 under NEP 50),
    or None when x is not a scalar."""
    if isinstance(x, np.generic):     # before the Python types: np.float64 is a float subclass
        return x.item() if x.dtype.kind in "biufc" else None
    if isinstance(x, (bool, int, float, complex)):
        return x
    return None


def _binary(a, other, where):
    """(A, B, other_tensor_or_None) for a binary op: arrays (or a Python scalar B) cast to the result dtype by
    torch's promotion rules."""
    A = a._array
    s = _scalar_operand(other)
    if s is not None:
        if A.dtype.kind in "biu":
            want = scalar_result_dtype(A.dtype, s)
            if want != A.dtype:
                A = A.astype(want)
        return A, s, None
    if not isinstance(other, Tensor):
        if isinstance(other, (list, tuple)) or other is None or isinstance(other, (str, bytes)):
            raise TypeError(f"{where}: unsupported operand type {type(other).__name__} (expected a Tensor, an "
                            f"array or a number)")
        other = _wrap(_storage(other, where=where))
    B = other._array
    if A.dtype != B.dtype:
        want = result_dtype(A, B)
        if A.dtype != want:
            A = A.astype(want)
        if B.dtype != want:
            B = B.astype(want)
    if is_cupy(A) != is_cupy(B):
        raise RuntimeError(f"{where}: expected all tensors to be on the same device, got cpu and cuda")
    return A, B, other


def _float_array(a):
    """a as floating point for ops torch defines on floats only (true division, exp, ...)."""
    return a if a.dtype.kind in "fc" or a.dtype == _device.bfloat16.dtype else a.astype(np.float32)


def _normalize_dim(dim, ndim, where):
    if dim is None:
        return None
    if isinstance(dim, (list, tuple)):
        return tuple(_normalize_dim(d, ndim, where) for d in dim)
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
        raise TypeError(f"{where}: argument 'dim' must be an int or a tuple of ints, got {type(dim).__name__}")
    if not -max(ndim, 1) <= dim < max(ndim, 1):
        raise IndexError(f"{where}: dimension {dim} is out of range for a tensor with {ndim} dimensions "
                         f"(expected to be in range of [{-max(ndim, 1)}, {max(ndim, 1) - 1}])")
    return int(dim) % max(ndim, 1)


def _shape_arg(shape, where="shape"):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list, Size)):
        shape = tuple(shape[0])
    out = []
    for s in shape:
        if isinstance(s, Tensor):
            s = s.__index__()
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)):
            raise TypeError(f"{where}: sizes must be ints, got {type(s).__name__}")
        out.append(int(s))
    return tuple(out)


def _index_arg(idx):
    """A tensor index as numpy understands it: Tensors (and Tensors in lists/tuples) become arrays."""
    if isinstance(idx, Tensor):
        return idx._array
    if isinstance(idx, tuple):
        return tuple(_index_arg(i) for i in idx)
    if isinstance(idx, list) and builtins.any(isinstance(i, Tensor) for i in idx):
        return np.asarray([i.item() if isinstance(i, Tensor) else i for i in idx])
    return idx


def _basic_index(idx):
    """Whether idx selects a view (ints, slices, None, Ellipsis only)."""
    items = idx if isinstance(idx, tuple) else (idx,)
    return builtins.all(i is None or i is Ellipsis or isinstance(i, slice) or
                        isinstance(i, (int, np.integer)) and not isinstance(i, bool) for i in items)


def _is_bool_mask(idx):
    return hasattr(idx, "dtype") and idx.dtype == np.bool_


def _keep(g, axis, keepdim, xp):
    """g with the reduced axes put back (size 1) so it broadcasts against the input."""
    if axis is None or keepdim:
        return g
    return xp.expand_dims(g, axis)


def _count(shape, axis):
    if axis is None:
        return int(np.prod(shape, dtype=np.int64))
    return int(np.prod([shape[a] for a in (axis if isinstance(axis, tuple) else (axis,))], dtype=np.int64))


def _rebuild(cls, array, requires_grad):
    t = _wrap(array)
    if cls is not Tensor:
        t.__class__ = cls
    t.requires_grad = requires_grad
    return t


def to_arguments(where, args, kwargs):
    """(device, dtype, copy) from the forms torch's .to() takes: to(device), to(dtype), to(device, dtype),
    to(other_tensor) and the keywords device/dtype/copy/non_blocking/memory_format."""
    kwargs = dict(kwargs)
    device = kwargs.pop("device", None)
    dtype = kwargs.pop("dtype", None)
    copy = bool(kwargs.pop("copy", False))
    kwargs.pop("non_blocking", None)
    kwargs.pop("memory_format", None)
    if kwargs:
        raise TypeError(f"{where}: unexpected keyword argument(s) {sorted(kwargs)}")
    for a in args:
        if isinstance(a, Tensor):
            device, dtype = a.device, a.dtype
        elif isinstance(a, (_device.dtype, np.dtype)) or isinstance(a, type) and issubclass(a, np.generic):
            dtype = a
        elif a is not None:
            device = a
    return device, dtype, copy


class Tensor:
    """An n-dimensional array with reverse-mode automatic differentiation, torch's API and semantics."""
    __array_ufunc__ = None      # numpy defers `ndarray + Tensor` to Tensor.__radd__
    __array_priority__ = 1000
    # defaults every tensor starts with (only _array and _counter are set per tensor)
    grad = None
    requires_grad = False
    _node = None
    _retain = False
    _grad_hooks = None
    _post_hooks = None
    _base = None
    _view_fn = None
    _view_version = 0

    def __init__(self, data=None, requires_grad=False, dtype=None, device=None, *, _trusted=False):
        if data is None:
            data = np.zeros((0,), np.float32)
        elif isinstance(data, Tensor):
            data = data._array
        if _trusted and not isinstance(data, np.generic):
            self._array = data
        else:
            self._array = _storage(data, dtype, "Tensor")
        if device is not None:
            self._array = _device.to_device(self._array, _device.parse_device(device, "Tensor"), "Tensor")
        self._counter = [0]
        if requires_grad:
            self.requires_grad_(True)

    # ------------------------------------------------------------- basics
    def _xp(self):
        return _device.array_module(self._array)

    @property
    def data(self):
        """The same storage as a tensor outside the graph (changes to it are not tracked), as torch's .data."""
        return _wrap(self._array)

    @data.setter
    def data(self, value):
        array = value._array if isinstance(value, Tensor) else _storage(value, where="Tensor.data")
        self._array = array
        self._counter[0] += 1

    @property
    def shape(self):
        return Size(self._array.shape)

    @property
    def dtype(self):
        return dtype_of(self._array)

    @property
    def ndim(self):
        return self._array.ndim

    @property
    def device(self):
        return _device.device("cuda", 0) if is_cupy(self._array) else _device.CPU

    @property
    def is_cuda(self):
        return is_cupy(self._array)

    @property
    def is_leaf(self):
        return self._node is None

    @property
    def grad_fn(self):
        _fresh(self)
        return self._node

    @property
    def itemsize(self):
        return self._array.itemsize

    @property
    def nbytes(self):
        return self._array.nbytes

    @property
    def _version(self):
        """How many times this tensor's storage was changed in place (torch's tensor._version)."""
        return self._counter[0]

    def size(self, dim=None):
        if dim is None:
            return Size(self._array.shape)
        if self.ndim == 0:
            raise IndexError("size: dimension specified as 0 but tensor has no dimensions")
        return self._array.shape[_normalize_dim(dim, self.ndim, "size")]

    def stride(self, dim=None):
        strides = tuple(s // self._array.itemsize for s in self._array.strides)
        return strides if dim is None else strides[_normalize_dim(dim, self.ndim, "stride")]

    def dim(self):
        return self._array.ndim

    ndimension = dim

    def numel(self):
        return int(self._array.size)

    nelement = numel

    def element_size(self):
        return self._array.itemsize

    def data_ptr(self):
        if is_cupy(self._array):
            return int(self._array.data.ptr)
        return int(self._array.__array_interface__["data"][0])

    def storage_offset(self):
        base = _root_buffer(self._array)
        if isinstance(base, np.ndarray) and isinstance(self._array, np.ndarray):
            return (self.data_ptr() - int(base.__array_interface__["data"][0])) // self._array.itemsize
        return 0

    def is_contiguous(self, memory_format=None):
        return bool(self._array.flags.c_contiguous)

    def is_floating_point(self):
        return self.dtype.is_floating_point

    def is_complex(self):
        return self._array.dtype.kind == "c"

    def is_nonzero(self):
        if self._array.size != 1:
            raise RuntimeError("is_nonzero: Boolean value of Tensor with more than one value is ambiguous")
        return bool(self.item())

    def is_signed(self):
        return self.dtype.is_signed

    @property
    def is_sparse(self):
        return False

    @property
    def layout(self):
        return "strided"

    def __len__(self):
        if self._array.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._array.shape[0]

    def __repr__(self):
        _fresh(self)
        extra = ""
        if self._node is not None:
            extra = f", grad_fn=<{self._node.name}>"
        elif self.requires_grad:
            extra = ", requires_grad=True"
        dev = ", device='cuda:0'" if is_cupy(self._array) else ""
        body = np.array2string(self.numpy(), separator=", ", prefix="tensor(")
        default = self._array.dtype in (np.float32, np.int64, np.bool_)
        return f"tensor({body}{dev}{'' if default else f', dtype={self.dtype}'}{extra})"

    def __format__(self, spec):
        if self._array.size == 1 and self._array.ndim == 0:
            return format(self.item(), spec)
        return format(repr(self), spec)

    def requires_grad_(self, requires_grad=True):
        if requires_grad and not (self.dtype.is_floating_point or self.dtype.is_complex):
            raise RuntimeError(f"requires_grad_: only Tensors of floating point and complex dtype can require "
                               f"gradients, got {self.dtype}")
        if not requires_grad and self._node is not None:
            raise RuntimeError("requires_grad_: you can only change requires_grad flags of leaf variables; use "
                               "detach() to cut a non-leaf tensor from its graph")
        self.requires_grad = bool(requires_grad)
        return self

    def register_hook(self, hook):
        """hook(grad) -> Tensor or None runs when this tensor's gradient is computed; a returned tensor
        replaces the gradient (torch.Tensor.register_hook)."""
        if not self.requires_grad:
            raise RuntimeError("register_hook: cannot register a hook on a tensor that doesn't require gradient")

        def on_array(g):
            out = hook(_wrap(g))
            return g if out is None else (out._array if isinstance(out, Tensor) else _storage(out))
        if self._node is None:
            if self._grad_hooks is None:
                self._grad_hooks = []
            self._grad_hooks.append(on_array)
        else:
            if self._node.hooks is None:
                self._node.hooks = []
            self._node.hooks.append(on_array)
        return _RemovableHandle(self._grad_hooks if self._node is None else self._node.hooks, on_array)

    def register_post_accumulate_grad_hook(self, hook):
        """hook(tensor) runs after backward() has added this leaf's complete gradient to .grad."""
        if self._node is not None:
            raise RuntimeError("register_post_accumulate_grad_hook: only leaf tensors have an accumulated .grad")
        if self._post_hooks is None:
            self._post_hooks = []
        self._post_hooks.append(hook)
        return _RemovableHandle(self._post_hooks, hook)

    def retain_grad(self):
        """Keeps .grad on a non-leaf tensor after backward()."""
        if self._node is not None:
            self._node.retained = weakref.ref(self)
            self._retain = True
        return self

    @property
    def retains_grad(self):
        return self._retain

    # the autograd engine's view of a tensor (autograd.py knows no Tensor class)
    def _grad_edge(self):
        _fresh(self)
        return self._node if self._node is not None else self

    def _grad_tensor(self, g):
        if g is None:
            return _wrap(self._xp().zeros(self._array.shape, self._array.dtype))
        return _wrap(g.reshape(self._array.shape).astype(self._array.dtype, copy=False))

    def _receive_grad(self, g, shared, retained=False):
        """Adds g, this leaf's complete gradient of one backward pass, to .grad (in place when .grad is a
        plain buffer of its own; shared: g may be memory that something else holds, so a fresh .grad copies)."""
        if self._grad_hooks and not retained:
            for hook in self._grad_hooks:
                g = hook(g)
        if g.shape != self._array.shape:
            g = g.reshape(self._array.shape)
        if g.dtype != self._array.dtype:
            g = g.astype(self._array.dtype)
            shared = False
        current = self.grad
        if current is None:
            self.grad = _wrap(g if g.flags.c_contiguous and not shared else g.copy())
        elif current._array.flags.writeable and current._node is None and current._array.shape == g.shape:
            current._array += g
            current._counter[0] += 1
        else:
            self.grad = _wrap(current._array + g)
        if self._post_hooks and not retained:
            for hook in self._post_hooks:
                hook(self)

    def _backward_root(self, gradient, where):
        if not self.requires_grad:
            raise RuntimeError(f"{where}: element 0 of tensors does not require grad and does not have a "
                               f"grad_fn (was it computed inside no_grad(), or from tensors without "
                               f"requires_grad=True?)")
        xp = self._xp()
        if gradient is None:
            if self._array.size != 1:
                raise RuntimeError(f"{where}: grad can be implicitly created only for scalar outputs, got "
                                   f"shape {tuple(self.shape)}; pass a gradient of that shape")
            g = xp.ones_like(self._array)
        else:
            g = gradient._array if isinstance(gradient, Tensor) else xp.asarray(gradient)
            if tuple(g.shape) != tuple(self._array.shape):
                raise RuntimeError(f"{where}: argument 'gradient' has shape {tuple(g.shape)}, expected "
                                   f"{tuple(self._array.shape)}")
            g = g.astype(self._array.dtype, copy=True)   # never alias the caller's array into a .grad
        return self._grad_edge(), g

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        """Accumulates gradients into .grad of the leaves this tensor was computed from."""
        if create_graph:
            raise NotImplementedError("backward: create_graph=True (higher-order gradients) is not supported")
        if inputs is not None:
            raise NotImplementedError("backward: the inputs= argument is not supported; use pyfastnn.autograd."
                                      "grad for selected inputs")
        edge, g = self._backward_root(gradient, "backward")
        _run_backward(edge, g, bool(retain_graph))

    def detach(self):
        out = _wrap(self._array)
        out._counter = self._counter      # torch: a detached tensor shares the version counter
        return out

    def detach_(self):
        if self._base is not None:
            raise RuntimeError("detach_: can't detach views in-place; use detach()")
        self._node = None
        self.requires_grad = False
        return self

    def clone(self, memory_format=None):
        return _result(self._array.copy(), (self,), lambda g: (g,), "CloneBackward0")

    def item(self):
        if self._array.size != 1:
            raise RuntimeError(f"item: a Tensor with {self._array.size} elements cannot be converted to Scalar")
        return self._array.reshape(()).item()

    def tolist(self):
        return self.numpy().tolist()

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __complex__(self):
        return complex(self.item())

    def __index__(self):
        if self._array.size != 1 or self._array.dtype.kind not in "iub":
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self.item())

    def __bool__(self):
        if self._array.size != 1:
            raise RuntimeError(f"Boolean value of Tensor with more than one value is ambiguous "
                               f"({self._array.size} elements)")
        return bool(self.item())

    def __iter__(self):
        if self._array.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self._array.shape[0]))

    def __contains__(self, element):
        return bool((self == element).any())

    __hash__ = object.__hash__

    def __reduce_ex__(self, protocol):
        return (_rebuild, (type(self), self._array, self.requires_grad))

    def __deepcopy__(self, memo):
        out = _rebuild(type(self), self._array.copy(), self.requires_grad)
        if self.grad is not None:
            out.grad = _wrap(self.grad._array.copy())
        memo[id(self)] = out
        return out

    # ----------------------------------------------------------- interop
    def numpy(self, force=False):
        """The data as a numpy array (the same memory on the CPU; a copy from the GPU)."""
        if is_cupy(self._array):
            return self._array.get()
        return self._array

    def __array__(self, dtype=None, copy=None):
        if is_cupy(self._array):
            raise TypeError("Tensor.__array__: the tensor is on the GPU; call .cpu() first")
        if dtype is not None and np.dtype(dtype) != self._array.dtype:
            if copy is False:
                raise ValueError("Tensor.__array__: converting the dtype needs a copy")
            return self._array.astype(dtype)
        return self._array.copy() if copy else self._array

    def __dlpack__(self, *args, **kwargs):
        return self._array.__dlpack__(*args, **kwargs)

    def __dlpack_device__(self):
        return self._array.__dlpack_device__()

    @property
    def __cuda_array_interface__(self):
        if not is_cupy(self._array):
            raise AttributeError("__cuda_array_interface__: the tensor is on the CPU")
        return self._array.__cuda_array_interface__

    def to(self, *args, **kwargs):
        """to(device), to(dtype), to(device, dtype), to(other_tensor), with non_blocking/copy like torch;
        differentiable."""
        device, dtype, copy = to_arguments("Tensor.to", args, kwargs)
        out = self
        if dtype is not None:
            out = out.type(dtype)
        if device is not None:
            target = _device.parse_device(device, "Tensor.to")
            if target != _device.device_of(out._array):
                src = out
                data = _device.to_device(out._array, target, "Tensor.to")
                back_to = _device.device_of(src._array)
                out = _result(data, (src,), lambda g: (_device.to_device(g, back_to),), "ToCopyBackward0")
        if copy and out is self:
            out = self.clone()
        return out

    def cpu(self):
        return self.to("cpu")

    def cuda(self, device=None, non_blocking=False):
        return self.to("cuda")

    def pin_memory(self):
        return self

    def share_memory_(self):
        return self

    def type(self, dtype=None, non_blocking=False):
        if dtype is None:
            names = {"float32": "FloatTensor", "float64": "DoubleTensor", "float16": "HalfTensor",
                     "bfloat16": "BFloat16Tensor", "int64": "LongTensor", "int32": "IntTensor",
                     "int16": "ShortTensor", "int8": "CharTensor", "uint8": "ByteTensor", "bool": "BoolTensor"}
            return f"pyfastnn.{names.get(self.dtype.name, self.dtype.name)}"
        dt = _device.as_numpy_dtype(dtype, "Tensor.type")
        if dt == self._array.dtype:
            return self
        src = self._array.dtype
        data = self._array.astype(dt)
        if dt.kind not in "fcV" or src.kind not in "fcV":
            return _wrap(data)
        return _result(data, (self,), lambda g: (g.astype(src),), "ToCopyBackward0")

    def type_as(self, other):
        return self.type(other.dtype)

    def float(self):
        return self.type(np.float32)

    def double(self):
        return self.type(np.float64)

    def half(self):
        return self.type(np.float16)

    def bfloat16(self):
        return self.type(_device.bfloat16)

    def long(self):
        return self.type(np.int64)

    def int(self):
        return self.type(np.int32)

    def short(self):
        return self.type(np.int16)

    def char(self):
        return self.type(np.int8)

    def byte(self):
        return self.type(np.uint8)

    def bool(self):
        return self.type(np.bool_)

    def new_tensor(self, data, dtype=None, device=None, requires_grad=False):
        arr = _storage(data, dtype or self.dtype, "new_tensor")
        return Tensor(np.array(arr, copy=True), requires_grad=requires_grad, device=device or self.device,
                      _trusted=True)

    def _new_filled(self, fill, size, dtype, device, requires_grad, where):
        shape = _shape_arg(size, where)
        dt = _device.as_numpy_dtype(dtype if dtype is not None else self.dtype, where)
        xp = self._xp() if device is None else (np if _device.parse_device(device, where) == "cpu"
                                                   else _device.cupy_module(where))
        arr = xp.empty(shape, dt) if fill is None else xp.full(shape, fill, dt)
        return _wrap(arr).requires_grad_(requires_grad) if requires_grad else _wrap(arr)

    def new_zeros(self, *size, dtype=None, device=None, requires_grad=False):
        return self._new_filled(0, size, dtype, device, requires_grad, "new_zeros")

    def new_ones(self, *size, dtype=None, device=None, requires_grad=False):
        return self._new_filled(1, size, dtype, device, requires_grad, "new_ones")

    def new_empty(self, *size, dtype=None, device=None, requires_grad=False):
        return self._new_filled(0, size, dtype, device, requires_grad, "new_empty")

    def new_full(self, size, fill_value, dtype=None, device=None, requires_grad=False):
        return self._new_filled(fill_value, (size,), dtype, device, requires_grad, "new_full")

    # -------------------------------------------------------- arithmetic
    def __add__(self, other):
        A, B, o = _binary(self, other, "add")
        if o is None:
            return _result(A + B, (self,), lambda g: (g,), "AddBackward0")
        a_shape, b_shape = A.shape, B.shape
        return _result(A + B, (self, o), lambda g: (_unbroadcast(g, a_shape), _unbroadcast(g, b_shape)),
                       "AddBackward0")

    __radd__ = __add__

    def add(self, other, alpha=1):
        return self + (other * alpha if alpha != 1 else other)

    def __sub__(self, other):
        A, B, o = _binary(self, other, "sub")
        if A.dtype == np.bool_:
            raise RuntimeError("sub: subtraction, the `-` operator, with two bool tensors is not supported; use "
                               "the `^` or logical_xor() operator instead")
        if o is None:
            return _result(A - B, (self,), lambda g: (g,), "SubBackward0")
        a_shape, b_shape = A.shape, B.shape
        return _result(A - B, (self, o), lambda g: (_unbroadcast(g, a_shape), _unbroadcast(-g, b_shape)),
                       "SubBackward0")

    def __rsub__(self, other):
        return (-self).__add__(other)

    def sub(self, other, alpha=1):
        return self - (other * alpha if alpha != 1 else other)

    subtract = sub

    def __neg__(self):
        if self._array.dtype == np.bool_:
            raise RuntimeError("neg: negation, the `-` operator, on a bool tensor is not supported; use the `~` "
                               "or logical_not() operator instead")
        return _result(-self._array, (self,), lambda g: (-g,), "NegBackward0")

    neg = negative = __neg__

    def __pos__(self):
        return self

    def __mul__(self, other):
        A, B, o = _binary(self, other, "mul")
        if o is None:
            return _result(A * B, (self,), lambda g: (g * B,), "MulBackward0")
        a_need, b_need = self.requires_grad, o.requires_grad
        return _result(A * B, (self, o),
                       lambda g: (_unbroadcast(g * B, A.shape) if a_need else None,
                                  _unbroadcast(g * A, B.shape) if b_need else None), "MulBackward0",
                       saved=(self if b_need else None, o if a_need else None))

    __rmul__ = __mul__
    mul = multiply = __mul__

    def __truediv__(self, other):
        A, B, o = _binary(self, other, "div")
        A = _float_array(A)
        if o is None:
            with np.errstate(divide="ignore", invalid="ignore"):     # x / 0 is inf (or nan), as in torch
                out = A / B
            return _result(out, (self,), lambda g: (g / B,), "DivBackward0")
        B = _float_array(B)
        a_need, b_need = self.requires_grad, o.requires_grad
        with np.errstate(divide="ignore", invalid="ignore"):
            out = A / B
        return _result(out, (self, o),
                       lambda g: (_unbroadcast(g / B, A.shape) if a_need else None,
                                  _unbroadcast(-g * out / B, B.shape) if b_need else None), "DivBackward0",
                       saved=(o,), saves_output=b_need)

    def __rtruediv__(self, other):
        s = _scalar_operand(other)
        if s is None:
            return _as_tensor_arg(other, "div").__truediv__(self)
        B = _float_array(self._array)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = s / B
        return _result(out, (self,), lambda g: (-g * out / B,), "DivBackward0", saved=(self,), saves_output=True)

    def div(self, other, rounding_mode=None):
        if rounding_mode is None:
            return self / other
        if rounding_mode == "floor":
            return self // other
        if rounding_mode == "trunc":
            q = self / other
            return q.trunc().type(self.dtype) if self._array.dtype.kind in "iu" else q.trunc()
        raise ValueError(f"div: rounding_mode must be None, 'floor' or 'trunc', got {rounding_mode!r}")

    divide = true_divide = div

    def __floordiv__(self, other):
        A, B, o = _binary(self, other, "floor_divide")
        if A.dtype.kind in "iu" and (np.any(np.asarray(B) == 0) if o is not None else B == 0):
            raise ZeroDivisionError("floor_divide: integer division by zero")
        xp = self._xp()
        return _result(A // B, (self,) if o is None else (self, o),
                       lambda g: (xp.zeros(A.shape, g.dtype),) + (() if o is None else (xp.zeros(B.shape, g.dtype),)),
                       "DivBackward0")

    def __rfloordiv__(self, other):
        return _as_tensor_arg(other, "floor_divide").__floordiv__(self)

    floor_divide = __floordiv__

    def __mod__(self, other):
        A, B, o = _binary(self, other, "remainder")
        out = A % B
        if o is None:
            return _result(out, (self,), lambda g: (g,), "RemainderBackward0")
        return _result(out, (self, o), lambda g: (_unbroadcast(g, A.shape),
                                                  _unbroadcast(-g * np.floor_divide(A, B), B.shape)),
                       "RemainderBackward0", saved=(self, o))

    def __rmod__(self, other):
        return _as_tensor_arg(other, "remainder").__mod__(self)

    remainder = __mod__

    def fmod(self, other):
        A, B, o = _binary(self, other, "fmod")
        xp = self._xp()
        return _result(xp.fmod(A, B), (self,) if o is None else (self, o),
                       lambda g: (g,) if o is None else (_unbroadcast(g, A.shape), _unbroadcast(
                           -g * xp.trunc(A / B), B.shape)), "FmodBackward0", saved=(self,) if o is None else
                       (self, o))

    def __pow__(self, exponent):
        s = _scalar_operand(exponent)
        A = self._array
        if s is None:
            e = _as_tensor_arg(exponent, "pow")
            X, E, _ = _binary(self, e, "pow")
            xp = self._xp()
            out = X ** E
            x_need, e_need = self.requires_grad, e.requires_grad

            def back(g):
                gx = _unbroadcast(g * E * X ** (E - 1), X.shape) if x_need else None
                ge = None
                if e_need:
                    with np.errstate(divide="ignore", invalid="ignore"):
                        ge = _unbroadcast(g * out * xp.where(X > 0, xp.log(xp.where(X > 0, X, 1)), 0), E.shape)
                return gx, ge
            return _result(out, (self, e), back, "PowBackward1", saved=(self, e), saves_output=True)
        if A.dtype.kind in "iu" and isinstance(s, int) and s < 0:
            raise RuntimeError("pow: integers to negative integer powers are not allowed")
        if A.dtype.kind in "biu" and isinstance(s, float):
            A = A.astype(np.float32)
        if s == 2:
            with np.errstate(over="ignore"):
                return _result(A * A, (self,), lambda g: (g * 2 * A,), "PowBackward0", saved=(self,))
        if s == 0:    # d/da a**0 is 0 everywhere, 0 included (not 0 * a**-1 = nan there)
            return _result(A ** 0, (self,), lambda g: (self._xp().zeros_like(g),), "PowBackward0")
        if s == 1:
            return _result(A.copy(), (self,), lambda g: (g,), "PowBackward0")
        with np.errstate(all="ignore"):
            out = A ** s
        return _result(out, (self,), lambda g: (g * s * A ** (s - 1),), "PowBackward0", saved=(self,))

    pow = __pow__

    def __rpow__(self, base):
        s = _scalar_operand(base)
        if s is None:
            return _as_tensor_arg(base, "pow").__pow__(self)
        E = _float_array(self._array)
        out = s ** E
        log_base = math.log(s) if s > 0 else float("nan")
        return _result(out, (self,), lambda g: (g * out * log_base,), "PowBackward2", saves_output=True)

    def __matmul__(self, other):
        return matmul(self, other)

    def __rmatmul__(self, other):
        return matmul(_as_tensor_arg(other, "matmul"), self)

    # comparisons and logic give constant tensors
    def _compare(self, other, fn):
        if isinstance(other, Tensor):
            o = other._array
        else:
            s = _scalar_operand(other)
            o = s if s is not None else (None if other is None else _storage(other, where="comparison"))
            if o is None:
                return _wrap(np.asarray(fn is _ne))
        return _wrap(fn(self._array, o))

    def __eq__(self, other):
        return self._compare(other, _eq)

    def __ne__(self, other):
        return self._compare(other, _ne)

    def __lt__(self, other):
        return self._compare(other, _lt)

    def __le__(self, other):
        return self._compare(other, _le)

    def __gt__(self, other):
        return self._compare(other, _gt)

    def __ge__(self, other):
        return self._compare(other, _ge)

    eq, ne, lt, le, gt, ge = __eq__, __ne__, __lt__, __le__, __gt__, __ge__
    greater, greater_equal, less, less_equal, not_equal = __gt__, __ge__, __lt__, __le__, __ne__

    def equal(self, other):
        other = _as_tensor_arg(other, "equal")
        return bool(self.shape == other.shape and (self._array == other._array).all())

    def _logic(self, other, fn, name):
        if self._array.dtype.kind not in "biu":
            raise TypeError(f"{name}: only bool and integer tensors, got {self.dtype}")
        o = other._array if isinstance(other, Tensor) else other
        if hasattr(o, "dtype") and o.dtype.kind not in "biu":
            raise TypeError(f"{name}: only bool and integer tensors, got {o.dtype}")
        return _wrap(fn(self._array, o))

    def __and__(self, other):
        return self._logic(other, np.bitwise_and, "bitwise_and")

    def __or__(self, other):
        return self._logic(other, np.bitwise_or, "bitwise_or")

    def __xor__(self, other):
        return self._logic(other, np.bitwise_xor, "bitwise_xor")

    __rand__, __ror__, __rxor__ = __and__, __or__, __xor__
    bitwise_and, bitwise_or, bitwise_xor = __and__, __or__, __xor__

    def __invert__(self):
        if self._array.dtype.kind not in "biu":
            raise TypeError(f"bitwise_not: only bool and integer tensors, got {self.dtype}")
        return _wrap(~self._array)

    bitwise_not = __invert__

    def logical_not(self):
        return _wrap(self._xp().logical_not(self._array))

    def logical_and(self, other):
        return _wrap(self._xp().logical_and(self._array, _array_of(other)))

    def logical_or(self, other):
        return _wrap(self._xp().logical_or(self._array, _array_of(other)))

    def logical_xor(self, other):
        return _wrap(self._xp().logical_xor(self._array, _array_of(other)))

    def isnan(self):
        return _wrap(self._xp().isnan(self._array))

    def isinf(self):
        return _wrap(self._xp().isinf(self._array))

    def isfinite(self):
        return _wrap(self._xp().isfinite(self._array))

    def isclose(self, other, rtol=1e-05, atol=1e-08, equal_nan=False):
        return _wrap(self._xp().isclose(self._array, _array_of(other), rtol=rtol, atol=atol, equal_nan=equal_nan))

    def allclose(self, other, rtol=1e-05, atol=1e-08, equal_nan=False):
        return bool(self._xp().allclose(self._array, _array_of(other), rtol=rtol, atol=atol, equal_nan=equal_nan))

    def nonzero(self, as_tuple=False):
        idx = self._xp().nonzero(self._array)
        if as_tuple:
            return tuple(_wrap(i.astype(np.int64)) for i in idx)
        return _wrap(self._xp().stack(idx, axis=1).astype(np.int64) if idx else
                     self._xp().zeros((int(bool(self._array)), 0), np.int64))

    def argwhere(self):
        return self.nonzero()

    def count_nonzero(self, dim=None):
        axis = _normalize_dim(dim, self.ndim, "count_nonzero")
        return _wrap(np.asarray(self._xp().count_nonzero(self._array, axis=axis), np.int64))

    # -------------------------------------------------------- reductions
    def sum(self, dim=None, keepdim=False, dtype=None, axis=None):
        axis = _normalize_dim(axis if dim is None else dim, self.ndim, "sum")
        A = self._array if dtype is None else self._array.astype(_device.as_numpy_dtype(dtype, "sum"))
        if A.dtype == np.bool_ or A.dtype.kind in "iu" and A.dtype.itemsize < 8:
            A = A.astype(np.int64)
        shape = A.shape
        xp = self._xp()
        src_dtype = self._array.dtype
        return _result(A.sum(axis=axis, keepdims=keepdim), (self,),
                       lambda g: (xp.broadcast_to(_keep(g, axis, keepdim, xp), shape).astype(src_dtype, copy=False),),
                       "SumBackward0")

    def nansum(self, dim=None, keepdim=False):
        return self.nan_to_num(0.0).sum(dim, keepdim) if self.dtype.is_floating_point else self.sum(dim, keepdim)

    def mean(self, dim=None, keepdim=False, dtype=None, axis=None):
        axis = _normalize_dim(axis if dim is None else dim, self.ndim, "mean")
        A = self._array if dtype is None else self._array.astype(_device.as_numpy_dtype(dtype, "mean"))
        if A.dtype.kind not in "fcV":
            raise RuntimeError(f"mean(): could not infer output dtype. Input dtype must be either a floating "
                               f"point or complex dtype. Got: {dtype_of(A)}")
        shape = A.shape
        xp = self._xp()
        count = _count(shape, axis)
        with np.errstate(invalid="ignore", divide="ignore"):
            out = A.mean(axis=axis, keepdims=keepdim) if count else xp.full(
                np.empty(shape).sum(axis=axis, keepdims=keepdim).shape, np.nan, A.dtype)
        return _result(out, (self,), lambda g: (xp.broadcast_to(_keep(g, axis, keepdim, xp) / max(count, 1),
                                                                shape),), "MeanBackward0")

    def nanmean(self, dim=None, keepdim=False):
        axis = _normalize_dim(dim, self.ndim, "nanmean")
        keep = ~self.isnan()
        return self.nan_to_num(0.0).sum(axis, keepdim) / keep.sum(axis, keepdim)

    def prod(self, dim=None, keepdim=False, dtype=None):
        axis = _normalize_dim(dim, self.ndim, "prod")
        if isinstance(axis, tuple):
            raise TypeError("prod: argument 'dim' must be an int")
        A = self._array if dtype is None else self._array.astype(_device.as_numpy_dtype(dtype, "prod"))
        if A.dtype == np.bool_ or A.dtype.kind in "iu" and A.dtype.itemsize < 8:
            A = A.astype(np.int64)
        xp = self._xp()
        out = A.prod(axis=axis, keepdims=keepdim)

        def back(g):
            g = _keep(g, axis, keepdim, xp)
            # the product of the others, zeros included (no division)
            moved = A.reshape(-1) if axis is None else xp.moveaxis(A, axis, -1)
            n = moved.shape[-1]
            ones = xp.ones(moved.shape[:-1] + (1,), A.dtype)
            left = xp.concatenate([ones, xp.cumprod(moved, axis=-1)[..., :-1]], axis=-1)
            right = xp.concatenate([xp.cumprod(moved[..., ::-1], axis=-1)[..., :-1][..., ::-1], ones], axis=-1) \
                if n else moved
            others = left * right
            others = others.reshape(A.shape) if axis is None else xp.moveaxis(others, -1, axis)
            return (g * others,)
        return _result(out, (self,), back, "ProdBackward0", saved=(self,))

    def _reduce_extremum(self, fn, name):
        a = self._array
        if a.size == 0:
            raise RuntimeError(f"{name}(): Expected reduction dim to be specified for input.numel() == 0. "
                               f"Specify the reduction dim with the 'dim' argument.")
        out = fn(a)
        xp = self._xp()

        def back(g):
            hit = (a == out)
            return (hit * (g / hit.sum()),)          # ties share the gradient, like torch's full reductions
        return _result(xp.asarray(out), (self,), back, name.capitalize() + "Backward1", saved=(self,))

    def _dim_extremum(self, dim, keepdim, arg, name, result_type):
        axis = _normalize_dim(dim, self.ndim, name)
        if isinstance(axis, tuple):
            raise TypeError(f"{name}: argument 'dim' must be an int for values and indices; use amax/amin for "
                            f"several dims")
        a = self._array
        xp = self._xp()
        if a.ndim and a.shape[axis] == 0:
            raise IndexError(f"{name}(): Expected reduction dim {axis} to have non-zero size.")
        if a.ndim == 0:
            idx = xp.zeros((), np.int64)
            values = a.copy()
        else:
            idx = arg(a, axis=axis, keepdims=True)     # numpy, like torch, picks a NaN where a row has one
            values = xp.take_along_axis(a, idx, axis=axis)
            if not keepdim:
                values, idx = values.squeeze(axis), idx.squeeze(axis)
        shape = a.shape

        def back(g):
            full = xp.zeros(shape, g.dtype)
            if a.ndim == 0:
                return (g.reshape(shape),)
            xp.put_along_axis(full, idx if keepdim else xp.expand_dims(idx, axis),
                              g if keepdim else xp.expand_dims(g, axis), axis=axis)
            return (full,)
        vals = _result(values, (self,), back, name.capitalize() + "Backward0")
        return result_type(vals, _wrap(idx.astype(np.int64, copy=False)))

    def max(self, dim=None, keepdim=False, *, other=None):
        if isinstance(dim, Tensor):
            return maximum(self, dim)
        if dim is None:
            if other is not None:
                return maximum(self, other)
            return self._reduce_extremum(lambda a: a.max(), "max")
        return self._dim_extremum(dim, keepdim, lambda a, **k: a.argmax(**k), "max", max_result)

    def min(self, dim=None, keepdim=False, *, other=None):
        if isinstance(dim, Tensor):
            return minimum(self, dim)
        if dim is None:
            if other is not None:
                return minimum(self, other)
            return self._reduce_extremum(lambda a: a.min(), "min")
        return self._dim_extremum(dim, keepdim, lambda a, **k: a.argmin(**k), "min", min_result)

    def _amax(self, dim, keepdim, fn, name):
        axis = _normalize_dim(dim if dim != () else None, self.ndim, name)
        a = self._array
        xp = self._xp()
        if a.size == 0 and (axis is None or a.ndim == 0):
            raise RuntimeError(f"{name}(): Expected reduction dim to be specified for input.numel() == 0.")
        out = fn(a, axis=axis, keepdims=True)

        def back(g):
            g = _keep(g, axis, keepdim, xp)
            hit = (a == out)
            return (hit * (g / hit.sum(axis=axis, keepdims=True)),)   # ties share the gradient
        value = out if keepdim else (out.reshape(()) if axis is None else out.squeeze(axis))
        return _result(value, (self,), back, name.capitalize() + "Backward0", saved=(self,))

    def amax(self, dim=(), keepdim=False):
        return self._amax(dim, keepdim, lambda a, **k: a.max(**k), "amax")

    def amin(self, dim=(), keepdim=False):
        return self._amax(dim, keepdim, lambda a, **k: a.min(**k), "amin")

    def aminmax(self, *, dim=None, keepdim=False):
        return aminmax_result(self.amin(() if dim is None else dim, keepdim),
                              self.amax(() if dim is None else dim, keepdim))

    def argmax(self, dim=None, keepdim=False):
        axis = _normalize_dim(dim, self.ndim, "argmax")
        if self._array.size == 0 and (axis is None or self.ndim == 0 or self._array.shape[axis] == 0):
            raise RuntimeError("argmax(): Expected reduction dim to be specified for input.numel() == 0.")
        out = self._array.argmax(axis=axis, keepdims=keepdim) if axis is not None else \
            self._array.reshape(-1).argmax().reshape((1,) * self.ndim if keepdim else ())
        return _wrap(self._xp().asarray(out).astype(np.int64))

    def argmin(self, dim=None, keepdim=False):
        axis = _normalize_dim(dim, self.ndim, "argmin")
        if self._array.size == 0 and (axis is None or self.ndim == 0 or self._array.shape[axis] == 0):
            raise RuntimeError("argmin(): Expected reduction dim to be specified for input.numel() == 0.")
        out = self._array.argmin(axis=axis, keepdims=keepdim) if axis is not None else \
            self._array.reshape(-1).argmin().reshape((1,) * self.ndim if keepdim else ())
        return _wrap(self._xp().asarray(out).astype(np.int64))

    def _correction(self, unbiased, correction, where):
        if correction is not None:
            if unbiased is not None and unbiased is not True:
                raise TypeError(f"{where}: give either 'unbiased' or 'correction', not both")
            return correction
        return 1 if unbiased is None or unbiased else 0

    def var(self, dim=None, unbiased=None, keepdim=False, *, correction=None):
        if isinstance(dim, builtins.bool):      # var(unbiased) positional form
            dim, unbiased = None, dim
        axis = _normalize_dim(dim, self.ndim, "var")
        c = self._correction(unbiased, correction, "var")
        A = _float_array(self._array)
        xp = self._xp()
        count = _count(A.shape, axis)
        denom = count - c
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = A.mean(axis=axis, keepdims=True) if count else xp.zeros((1,) * A.ndim, A.dtype)
            centered = A - mean
            squares = (centered * centered).sum(axis=axis, keepdims=keepdim)
            out = squares / denom if denom > 0 else xp.full(squares.shape, np.nan, A.dtype)

        def back(g):     # torch's var backward: 2 (x - mean) / (N - correction), whatever the sign of N - correction
            with np.errstate(divide="ignore", invalid="ignore"):
                return (_keep(g, axis, keepdim, xp) * centered * (2.0 / denom if denom else np.inf),)
        return _result(xp.asarray(out, A.dtype), (self,), back, "VarBackward0", saved=(self,))

    def std(self, dim=None, unbiased=None, keepdim=False, *, correction=None):
        if isinstance(dim, builtins.bool):
            dim, unbiased = None, dim
        v = self.var(dim, unbiased, keepdim, correction=correction)
        with np.errstate(invalid="ignore"):
            y = v._xp().sqrt(v._array)

        def back(g):      # torch's std backward: 0 where the std is 0 (not 0 / 0)
            with np.errstate(divide="ignore", invalid="ignore"):
                return (v._xp().where(y == 0, 0, g / (2 * y)),)
        return _result(y, (v,), back, "StdBackward0", saves_output=True)

    def var_mean(self, dim=None, unbiased=None, keepdim=False, *, correction=None):
        return var_mean_result(self.var(dim, unbiased, keepdim, correction=correction), self.mean(dim, keepdim))

    def std_mean(self, dim=None, unbiased=None, keepdim=False, *, correction=None):
        return std_mean_result(self.std(dim, unbiased, keepdim, correction=correction), self.mean(dim, keepdim))

    def norm(self, p="fro", dim=None, keepdim=False, dtype=None):
        x = self if dtype is None else self.type(dtype)
        if p in ("fro", 2, 2.0) or p is None:
            return (x * x).sum(dim, keepdim).sqrt()
        if p in (float("inf"), "inf"):
            return x.abs().amax(() if dim is None else dim, keepdim)
        if p in (float("-inf"), "-inf"):
            return x.abs().amin(() if dim is None else dim, keepdim)
        if p == 1:
            return x.abs().sum(dim, keepdim)
        if p == 0:
            return (x != 0).type(x.dtype).sum(dim, keepdim)
        if isinstance(p, (int, float)):
            return (x.abs() ** p).sum(dim, keepdim) ** (1.0 / p)
        raise ValueError(f"norm: unsupported norm type {p!r}")

    def logsumexp(self, dim, keepdim=False):
        axis = _normalize_dim(dim, self.ndim, "logsumexp")
        if self._array.size == 0:
            return (self.exp().sum(axis, keepdim)).log()
        m = self.amax(axis, keepdim=True).detach()
        m = where(m.isinf(), zeros_like(m), m)
        out = (self - m).exp().sum(axis, keepdim=True).log() + m
        return out if keepdim else out.squeeze(axis)

    def any(self, dim=None, keepdim=False):
        axis = _normalize_dim(dim, self.ndim, "any")
        return _wrap(self._xp().asarray(self._array.any(axis=axis, keepdims=keepdim)))

    def all(self, dim=None, keepdim=False):
        axis = _normalize_dim(dim, self.ndim, "all")
        return _wrap(self._xp().asarray(self._array.all(axis=axis, keepdims=keepdim)))

    def cumsum(self, dim, dtype=None):
        axis = _normalize_dim(dim, self.ndim, "cumsum")
        A = self._array if dtype is None else self._array.astype(_device.as_numpy_dtype(dtype, "cumsum"))
        if A.dtype == np.bool_ or A.dtype.kind in "iu" and A.dtype.itemsize < 8:
            A = A.astype(np.int64)
        xp = self._xp()
        if A.ndim == 0:
            return _result(A.copy(), (self,), lambda g: (g,), "CumsumBackward0")
        native = isinstance(A, np.ndarray) and (A.dtype in _ACT_DTYPES or A.dtype == np.int64)
        out = ops.cumsum(A, axis) if native else xp.cumsum(A, axis=axis)

        def back(g):
            if native:
                return (ops.cumsum(g, axis, reverse=True),)
            return (xp.flip(xp.cumsum(xp.flip(g, axis), axis=axis), axis),)
        return _result(out, (self,), back, "CumsumBackward0")

    def cumprod(self, dim, dtype=None):
        axis = _normalize_dim(dim, self.ndim, "cumprod")
        A = self._array if dtype is None else self._array.astype(_device.as_numpy_dtype(dtype, "cumprod"))
        xp = self._xp()
        out = xp.cumprod(A, axis=axis)

        def back(g):
            # d out_j / d a_i = prod_{k<=j, k!=i} a_k; computed by division where a has no zeros
            with np.errstate(divide="ignore", invalid="ignore"):
                r = xp.flip(xp.cumsum(xp.flip(g * out, axis), axis=axis), axis)
                return (xp.where(A != 0, r / xp.where(A != 0, A, 1), 0),)
        return _result(out, (self,), back, "CumprodBackward0", saved=(self,), saves_output=True)

    def cummax(self, dim):
        axis = _normalize_dim(dim, self.ndim, "cummax")
        a = self._array
        vals = np.maximum.accumulate(a, axis=axis)
        n = a.shape[axis]
        pos = np.arange(n).reshape((-1,) + (1,) * (a.ndim - 1 - axis))
        idx = np.maximum.accumulate(np.where(a == vals, pos, 0), axis=axis)
        return cummax_result(self.gather(axis, _wrap(idx.astype(np.int64))), _wrap(idx.astype(np.int64)))

    def median(self, dim=None, keepdim=False):
        a = self._array
        if dim is None:
            flat = self.reshape(-1)
            if flat.numel() == 0:
                xp = self._xp()
                return _result(xp.asarray(np.nan, a.dtype), (self,), lambda g: (xp.zeros(a.shape, g.dtype),),
                               "MedianBackward0")
            order = flat._array.argsort(kind="stable")
            k = (flat.numel() - 1) // 2
            return flat[int(order[k])]
        axis = _normalize_dim(dim, self.ndim, "median")
        order = self._xp().argsort(a, axis=axis, kind="stable")
        k = (a.shape[axis] - 1) // 2
        idx = self._xp().take(order, [k], axis=axis)
        vals = self.gather(axis, _wrap(idx.astype(np.int64)))
        if not keepdim:
            vals, idx = vals.squeeze(axis), idx.squeeze(axis)
        return median_result(vals, _wrap(idx.astype(np.int64)))

    def mode(self, dim=-1, keepdim=False):
        axis = _normalize_dim(dim, self.ndim, "mode")
        a = np.moveaxis(_device.host(self._array), axis, -1)
        flat = a.reshape(-1, a.shape[-1]) if a.ndim else a.reshape(1, 1)
        indices = np.empty(flat.shape[0], np.int64)
        for r, row in enumerate(flat):
            u, counts = np.unique(row, return_counts=True)
            v = u[counts.argmax()]                     # the smallest of the most frequent values
            indices[r] = np.nonzero(row == v)[0][-1]   # torch reports its last position
        shape = a.shape[:-1]
        indices = indices.reshape(shape)
        idx = _wrap(_device.to_device(np.expand_dims(indices, axis) if self.ndim else indices.reshape(()),
                                      _device.device_of(self._array)))
        vals = self.gather(axis, idx) if self.ndim else self.clone()
        if not keepdim and self.ndim:
            vals, idx = vals.squeeze(axis), idx.squeeze(axis)
        return mode_result(vals, idx)

    def kthvalue(self, k, dim=-1, keepdim=False):
        axis = _normalize_dim(dim, self.ndim, "kthvalue")
        n = self.shape[axis] if self.ndim else 1
        if not 1 <= k <= n:
            raise RuntimeError(f"kthvalue: k ({k}) is out of range for a dimension of size {n}")
        order = self._xp().argsort(self._array, axis=axis, kind="stable")
        idx = self._xp().take(order, [k - 1], axis=axis)
        vals = self.gather(axis, _wrap(idx.astype(np.int64)))
        if not keepdim:
            vals, idx = vals.squeeze(axis), idx.squeeze(axis)
        return kthvalue_result(vals, _wrap(idx.astype(np.int64)))

    def topk(self, k, dim=-1, largest=True, sorted=True):
        return topk(self, k, dim, largest, sorted)

    def sort(self, dim=-1, descending=False, stable=False):
        return sort(self, dim, descending, stable)

    def argsort(self, dim=-1, descending=False, stable=False):
        return sort(self, dim, descending, stable).indices

    def msort(self):
        return self.sort(0).values

    # ------------------------------------------------------------ shapes
    def reshape(self, *shape):
        shape = _shape_arg(shape, "reshape")
        src = self._array.shape
        try:
            data = self._array.reshape(shape)
        except ValueError:
            raise ShapeError(f"shape '{list(shape)}' is invalid for input of size {self._array.size}") from None
        return _view(data, self, lambda g: (g.reshape(src),), "ViewBackward0", lambda t: t.reshape(shape))

    def view(self, *shape):
        if len(shape) == 1 and not isinstance(shape[0], (tuple, list, Size, int, np.integer, Tensor)):
            return self.view_as_dtype(shape[0])       # view(dtype): reinterpret the bytes
        shape = _shape_arg(shape, "view")
        src = self._array.shape
        try:
            data = _no_copy_reshape(self._array, shape)
        except ValueError:
            raise ShapeError(f"shape '{list(shape)}' is invalid for input of size {self._array.size}") from None
        if data is None:
            raise ShapeError("view size is not compatible with input tensor's size and stride (at least one "
                               "dimension spans across two contiguous subspaces). Use .reshape(...) instead.")
        return _view(data, self, lambda g: (g.reshape(src),), "ViewBackward0", lambda t: t.view(shape))

    def view_as_dtype(self, dtype):
        dt = _device.as_numpy_dtype(dtype, "view")
        return _wrap(self._array.view(dt))

    def view_as(self, other):
        return self.view(other.shape)

    def reshape_as(self, other):
        return self.reshape(other.shape)

    def flatten(self, start_dim=0, end_dim=-1):
        if self.ndim == 0:
            return self.reshape(1)
        s = _normalize_dim(start_dim, self.ndim, "flatten")
        e = _normalize_dim(end_dim, self.ndim, "flatten")
        if s > e:
            raise RuntimeError(f"flatten() has invalid args: start_dim ({start_dim}) cannot come after end_dim "
                               f"({end_dim})")
        shape = self.shape
        return self.reshape(shape[:s] + (int(np.prod(shape[s:e + 1], dtype=np.int64)),) + shape[e + 1:])

    def ravel(self):
        return self.reshape(-1)

    def unflatten(self, dim, sizes):
        d = _normalize_dim(dim, self.ndim, "unflatten")
        sizes = tuple(sizes)
        return self.reshape(self.shape[:d] + sizes + self.shape[d + 1:])

    def permute(self, *dims):
        dims = tuple(_normalize_dim(d, self.ndim, "permute") for d in _shape_arg(dims, "permute"))
        if sorted(dims) != list(range(self.ndim)):
            raise RuntimeError(f"permute(sparse_coo): number of dimensions in the tensor input does not match "
                               f"the length of the desired ordering of dimensions: dims {dims} for a tensor of "
                               f"{self.ndim} dimensions")
        inverse = tuple(np.argsort(dims))
        return _view(self._array.transpose(dims), self, lambda g: (g.transpose(inverse),), "PermuteBackward0",
                     lambda t: t.permute(dims))

    def transpose(self, dim0, dim1):
        d0 = _normalize_dim(dim0, self.ndim, "transpose")
        d1 = _normalize_dim(dim1, self.ndim, "transpose")
        if self.ndim == 0:
            return self
        return _view(self._array.swapaxes(d0, d1), self, lambda g: (g.swapaxes(d0, d1),), "TransposeBackward0",
                     lambda t: t.transpose(d0, d1))

    swapaxes = swapdims = transpose

    def t(self):
        if self.ndim > 2:
            raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {self.ndim}D")
        return self.transpose(0, -1) if self.ndim == 2 else self

    @property
    def T(self):
        return self.permute(tuple(range(self.ndim))[::-1])

    @property
    def mT(self):
        return self.transpose(-2, -1)

    @property
    def H(self):
        return self.T.conj() if self.is_complex() else self.T

    def conj(self):
        return _result(self._xp().conj(self._array), (self,), lambda g: (self._xp().conj(g),), "ConjBackward0") \
            if self.is_complex() else self

    def movedim(self, source, destination):
        src = _normalize_dim(source, self.ndim, "movedim")
        dst = _normalize_dim(destination, self.ndim, "movedim")
        src = src if isinstance(src, tuple) else (src,)
        dst = dst if isinstance(dst, tuple) else (dst,)
        order = [d for d in range(self.ndim) if d not in src]
        for d, s in sorted(zip(dst, src)):
            order.insert(d, s)
        return self.permute(order)

    moveaxis = movedim

    def unsqueeze(self, dim):
        d = _normalize_dim(dim, self.ndim + 1, "unsqueeze")
        return self.reshape(self.shape[:d] + (1,) + self.shape[d:])

    def squeeze(self, dim=None):
        if dim is None:
            return self.reshape(tuple(s for s in self.shape if s != 1))
        d = _normalize_dim(dim, self.ndim, "squeeze")
        if self.ndim == 0:
            return self
        if isinstance(d, tuple):   # torch >= 2.0: several dims; those not of size 1 stay
            return self.reshape(tuple(s for i, s in enumerate(self.shape) if not (i in d and s == 1)))
        if self.shape[d] != 1:
            return self
        return self.reshape(self.shape[:d] + self.shape[d + 1:])

    def expand(self, *shape):
        shape = _shape_arg(shape, "expand")
        if len(shape) < self.ndim:
            raise RuntimeError(f"expand: the number of sizes provided ({len(shape)}) must be greater or equal to "
                               f"the number of dimensions in the tensor ({self.ndim})")
        full = (1,) * (len(shape) - self.ndim) + self.shape
        target = []
        for have, want in zip(full, shape):
            if want == -1:
                want = have
            elif have != 1 and have != want:
                raise ShapeError(f"expand: the expanded size of the tensor ({want}) must match the existing size "
                                   f"({have}) at a non-singleton dimension; target sizes {list(shape)}, tensor "
                                   f"sizes {list(self.shape)}")
            target.append(want)
        target = tuple(target)
        src = self._array.shape
        return _view(self._xp().broadcast_to(self._array, target), self, lambda g: (_unbroadcast(g, src),),
                     "ExpandBackward0", lambda t: t.expand(target))

    def expand_as(self, other):
        return self.expand(other.shape)

    def broadcast_to(self, shape):
        return self.expand(shape)

    def repeat(self, *sizes):
        sizes = _shape_arg(sizes, "repeat")
        if len(sizes) < self.ndim:
            raise RuntimeError("repeat: number of dimensions of repeat dims can not be smaller than number of "
                               "dimensions of tensor")
        src = (1,) * (len(sizes) - self.ndim) + self.shape
        a = self._array.reshape(src)
        xp = self._xp()
        out = xp.tile(a, sizes)
        orig = self._array.shape

        def back(g):
            split = []
            for r, s in zip(sizes, src):
                split += [r, s]
            return (g.reshape(split).sum(axis=tuple(range(0, 2 * len(sizes), 2))).reshape(orig),)
        return _result(out, (self,), back, "RepeatBackward0")

    def tile(self, *dims):
        dims = _shape_arg(dims, "tile")
        dims = (1,) * (self.ndim - len(dims)) + dims
        return self.repeat(dims)

    def repeat_interleave(self, repeats, dim=None, output_size=None):
        x = self.reshape(-1) if dim is None else self
        axis = 0 if dim is None else _normalize_dim(dim, self.ndim, "repeat_interleave")
        reps = repeats._array if isinstance(repeats, Tensor) else repeats
        n = x.shape[axis]
        idx = np.repeat(np.arange(n), _device.host(np.asarray(reps)) if not isinstance(reps, int) else reps)
        return x.index_select(axis, _wrap(idx.astype(np.int64)))

    def flip(self, *dims):
        dims = tuple(_normalize_dim(d, self.ndim, "flip") for d in _shape_arg(dims, "flip"))
        xp = self._xp()
        return _result(xp.flip(self._array, dims).copy(), (self,), lambda g: (xp.flip(g, dims),), "FlipBackward0")

    def fliplr(self):
        return self.flip(1)

    def flipud(self):
        return self.flip(0)

    def roll(self, shifts, dims=None):
        xp = self._xp()
        if dims is None:
            flat = self.reshape(-1)
            return _result(xp.roll(flat._array, shifts), (flat,), lambda g: (xp.roll(g, -shifts),),
                           "RollBackward0").reshape(self.shape)
        neg = tuple(-s for s in shifts) if isinstance(shifts, (tuple, list)) else -shifts
        return _result(xp.roll(self._array, shifts, dims), (self,), lambda g: (xp.roll(g, neg, dims),),
                       "RollBackward0")

    def narrow(self, dim, start, length):
        d = _normalize_dim(dim, self.ndim, "narrow")
        start = int(start)
        if start < 0:
            start += self.shape[d]
        if not (0 <= start and start + length <= self.shape[d]):
            raise IndexError(f"narrow: start ({start}) + length ({length}) exceeds dimension size "
                             f"({self.shape[d]})")
        idx = (slice(None),) * d + (slice(start, start + length),)
        return self[idx]

    def select(self, dim, index):
        d = _normalize_dim(dim, self.ndim, "select")
        return self[(slice(None),) * d + (int(index),)]

    def split(self, split_size_or_sections, dim=0):
        d = _normalize_dim(dim, self.ndim, "split")
        n = self.shape[d]
        if isinstance(split_size_or_sections, (int, np.integer)):
            step = int(split_size_or_sections)
            if step <= 0 and n > 0:
                raise RuntimeError(f"split: split_size must be positive, got {step}")
            bounds = list(range(0, n, step)) if n else [0]
            sizes = [min(step, n - b) for b in bounds]
        else:
            sizes = [int(s) for s in split_size_or_sections]
            if builtins.sum(sizes) != n:
                raise ShapeError(f"split_with_sizes expects split_sizes to sum exactly to {n} (input tensor's "
                                   f"size at dimension {d}), but got split_sizes={sizes}")
        out, start = [], 0
        for s in sizes:
            out.append(self[(slice(None),) * d + (slice(start, start + s),)])
            start += s
        return tuple(out)

    def tensor_split(self, indices_or_sections, dim=0):
        d = _normalize_dim(dim, self.ndim, "tensor_split")
        n = self.shape[d]
        if isinstance(indices_or_sections, int):
            k = indices_or_sections
            sizes = [n // k + (1 if i < n % k else 0) for i in range(k)]
        else:
            cuts = [0] + [int(i) for i in indices_or_sections] + [n]
            sizes = [max(b - a, 0) for a, b in zip(cuts, cuts[1:])]
        return self.split(sizes, d)

    def chunk(self, chunks, dim=0):
        if chunks <= 0:
            raise RuntimeError(f"chunk expects `chunks` to be greater than 0, got: {chunks}")
        d = _normalize_dim(dim, self.ndim, "chunk")
        n = self.shape[d]
        if n == 0:                       # torch gives `chunks` empty pieces
            return tuple(self.narrow(d, 0, 0) for _ in range(chunks))
        return self.split(-(-n // chunks), d)

    def unbind(self, dim=0):
        d = _normalize_dim(dim, self.ndim, "unbind")
        return tuple(self.select(d, i) for i in range(self.shape[d]))

    def contiguous(self, memory_format=None):
        if self._array.flags.c_contiguous:
            return self
        return _result(self._xp().ascontiguousarray(self._array), (self,), lambda g: (g,), "CloneBackward0")

    def diagonal(self, offset=0, dim1=0, dim2=1):
        xp = self._xp()
        src = self._array.shape
        d1, d2 = _normalize_dim(dim1, self.ndim, "diagonal"), _normalize_dim(dim2, self.ndim, "diagonal")
        out = xp.diagonal(self._array, offset, d1, d2)

        def back(g):
            full = xp.zeros(src, g.dtype)
            idx = xp.arange(out.shape[-1])
            rows, cols = (idx, idx + offset) if offset >= 0 else (idx - offset, idx)
            moved = xp.moveaxis(full, (d1, d2), (-2, -1))
            moved[..., rows, cols] = g
            return (full,)
        return _result(out.copy(), (self,), back, "DiagonalBackward0")

    def diag(self, diagonal=0):
        if self.ndim == 1:
            xp = self._xp()
            a = self._array

            def back(g):
                return (xp.diagonal(g, diagonal).copy(),)
            return _result(xp.diag(a, diagonal), (self,), back, "DiagBackward0")
        return self.diagonal(diagonal)

    def tril(self, diagonal=0):
        if self.ndim < 2:
            raise ShapeError("tril: input tensor must have at least 2 dimensions")
        xp = self._xp()
        keep = xp.tril(xp.ones(self.shape[-2:], bool), diagonal)
        return _result(xp.where(keep, self._array, xp.zeros((), self._array.dtype)), (self,),
                       lambda g: (g * keep,), "TrilBackward0")

    def triu(self, diagonal=0):
        if self.ndim < 2:
            raise ShapeError("triu: input tensor must have at least 2 dimensions")
        xp = self._xp()
        keep = xp.triu(xp.ones(self.shape[-2:], bool), diagonal)
        return _result(xp.where(keep, self._array, xp.zeros((), self._array.dtype)), (self,),
                       lambda g: (g * keep,), "TriuBackward0")

    def unfold(self, dimension, size, step):
        d = _normalize_dim(dimension, self.ndim, "unfold")
        n = self.shape[d]
        if size > n or size <= 0 or step <= 0:
            raise RuntimeError(f"unfold: size {size} and step {step} do not fit a dimension of size {n}")
        count = (n - size) // step + 1
        starts = np.arange(count) * step
        idx = (starts[:, None] + np.arange(size)[None, :]).reshape(-1)
        picked = self.index_select(d, _wrap(idx.astype(np.int64)))
        shape = self.shape[:d] + (count, size) + self.shape[d + 1:]
        return picked.reshape(shape).movedim(d + 1, -1)

    # ---------------------------------------------------------- indexing
    def __getitem__(self, idx):
        if isinstance(idx, Tensor) and idx._array.dtype.kind not in "biu":
            raise IndexError("tensors used as indices must be long, int, byte or bool tensors")
        idx = _index_arg(idx)
        src, xp = self._array.shape, self._xp()
        a = self._array
        if _basic_index(idx):
            if not isinstance(idx, tuple):
                idx = (idx,)
            if Ellipsis not in idx:
                idx = idx + (Ellipsis,)     # keeps a 0-d result a view (a[0] alone gives a numpy scalar copy)

            def back(g):
                full = xp.zeros(src, g.dtype)
                full[idx] = g
                return (full,)
            try:
                out = a[idx]
            except IndexError as exc:
                raise IndexError(f"index: {exc}") from None
            return _view(out, self, back, "SelectBackward0", lambda t: t[idx])
        try:
            out = a[idx]
        except IndexError as exc:
            raise IndexError(f"index: {exc}") from None
        mask = _is_bool_mask(idx)

        def back_advanced(g):
            full = xp.zeros(src, g.dtype)
            if mask:
                full[idx] = g
            else:
                xp.add.at(full, idx, g)
            return (full,)
        return _result(out, (self,), back_advanced, "IndexBackward0")

    def __setitem__(self, idx, value):
        idx = _index_arg(idx)
        val = value
        if isinstance(value, Tensor):
            V = value._array
        else:
            s = _scalar_operand(value)
            V = s if s is not None else _storage(value, where="Tensor.__setitem__")
            val = None

        def write():
            try:
                self._array[idx] = V.astype(self._array.dtype, copy=False) if hasattr(V, "astype") else V
            except (ValueError, IndexError) as exc:
                raise type(exc)(f"index_put: {exc}") from None

        def make_backward():
            xp = self._xp()
            region_shape = xp.empty(self._array.shape, bool)[idx].shape

            def back(g):
                g_self = g.copy()
                g_self[idx] = 0
                g_val = None
                if val is not None:
                    v_shape = tuple(V.shape)
                    core = v_shape[builtins.max(len(v_shape) - len(region_shape), 0):]
                    g_val = _unbroadcast(g[idx].reshape(region_shape), core).reshape(v_shape)
                return g_self, g_val
            return back
        return _inplace(self, "IndexPutBackward0", write, make_backward, (val,) if val is not None else ())

    def index_select(self, dim, index):
        d = _normalize_dim(dim, self.ndim, "index_select")
        index = _as_tensor_arg(index, "index_select", "index")
        I = index._array
        if I.dtype.kind not in "iu":
            raise TypeError(f"index_select: argument 'index' must be int64 or int32, got {I.dtype}")
        if I.ndim > 1:
            raise IndexError(f"index_select: argument 'index' must be 0-d or 1-d, got {I.ndim}-d")
        n = self.shape[d] if self.ndim else 1
        if I.size and (I.min() < -n or I.max() >= n):
            raise IndexError(f"index_select: index {int(I.max() if I.max() >= n else I.min())} is out of range for "
                             f"dimension {d} of size {n}")
        xp = self._xp()
        if (native_idx := self._native_index_select(d, I)) is not None:
            out = native_idx
        else:
            out = xp.take(self._array, I.reshape(-1), axis=d) if self.ndim else self._array.reshape(1)[I]
        src = self._array.shape

        def back(g):
            flat = I.reshape(-1).astype(np.int64, copy=False)
            if isinstance(g, np.ndarray) and g.dtype in _ACT_DTYPES:
                # rows of the moved-to-front gradient added at their indices: the embedding backward kernel
                moved = np.ascontiguousarray(np.moveaxis(g, d, 0)).reshape(len(flat), -1)
                n = src[d] if len(src) else 1
                summed = ops.embedding_backward(moved, flat, n).reshape((n,) + tuple(np.delete(src, d)))
                return (np.moveaxis(summed, 0, d),)
            full = xp.zeros(src, g.dtype)
            xp.add.at(xp.moveaxis(full, d, 0), flat, xp.moveaxis(g, d, 0))
            return (full,)
        return _result(out, (self,), back, "IndexSelectBackward0")

    def _native_index_select(self, d, I):
        if isinstance(self._array, np.ndarray) and self.ndim and (self._array.dtype in _ACT_DTYPES or
                                                                   self._array.dtype == np.int64):
            return ops.index_select(self._array, d, I.reshape(-1).astype(np.int64, copy=False))
        return None

    def gather(self, dim, index):
        d = _normalize_dim(dim, self.ndim, "gather")
        index = _as_tensor_arg(index, "gather", "index")
        I = index._array
        if I.dtype.kind not in "iu":
            raise RuntimeError(f"gather(): Expected dtype int64 for index, got {I.dtype}")
        if I.ndim != self.ndim:
            raise RuntimeError(f"gather: index tensor must have the same number of dimensions as input tensor "
                               f"({I.ndim} vs {self.ndim})")
        n = self.shape[d] if self.ndim else 1
        if I.size and (I.min() < -n or I.max() >= n):
            raise RuntimeError(f"gather: index {int(I.max() if I.max() >= n else I.min())} is out of bounds for "
                               f"dimension {d} with size {n}")
        for k in range(self.ndim):
            if k != d and I.shape[k] > self.shape[k]:
                raise RuntimeError(f"gather: size of index dimension {k} ({I.shape[k]}) exceeds the input's "
                                   f"({self.shape[k]})")
        xp = self._xp()
        lead = tuple(slice(0, s) for s in I.shape)
        lead = lead[:d] + (slice(None),) + lead[d + 1:]
        native = isinstance(self._array, np.ndarray) and self.ndim and self._array.dtype in _ACT_DTYPES
        I64 = I.astype(np.int64, copy=False)
        if native:
            out = ops.gather(self._array, d, I64)
        else:
            out = xp.take_along_axis(self._array[lead], I, axis=d) if self.ndim else self._array.copy()
        src = self._array.shape

        def back(g):
            if native and g.dtype in _ACT_DTYPES:
                return (ops.scatter_add(src, d, I64, g),)
            full = xp.zeros(src, g.dtype)
            _scatter_add_into(full[lead], d, I, g, xp)
            return (full,)
        return _result(out, (self,), back, "GatherBackward0")

    def take_along_dim(self, indices, dim):
        return self.gather(dim, indices)

    def scatter_add(self, dim, index, src):
        return self.clone().scatter_add_(dim, index, src)

    def scatter(self, dim, index, src=None, value=None, reduce=None):
        return self.clone().scatter_(dim, index, src if src is not None else value, reduce=reduce)

    def index_add(self, dim, index, source, alpha=1):
        return self.clone().index_add_(dim, index, source, alpha=alpha)

    def index_fill(self, dim, index, value):
        return self.clone().index_fill_(dim, index, value)

    def index_copy(self, dim, index, source):
        return self.clone().index_copy_(dim, index, source)

    def masked_fill(self, mask, value):
        mask = _as_tensor_arg(mask, "masked_fill", "mask")
        if mask._array.dtype != np.bool_:
            raise RuntimeError(f"masked_fill: expected a bool mask, got {mask.dtype}")
        M = mask._array
        if isinstance(value, Tensor):
            if value.ndim != 0:
                raise RuntimeError(f"masked_fill only supports a 0-dimensional value tensor, but got tensor with "
                                   f"{value.ndim} dimension(s)")
            vt = value
            v = value._array
        else:
            vt, v = None, value
        xp = self._xp()
        try:
            out = xp.where(M, xp.asarray(v).astype(self._array.dtype), self._array)
        except ValueError as exc:
            raise RuntimeError(f"masked_fill: the mask of shape {tuple(M.shape)} does not broadcast to the tensor "
                               f"of shape {tuple(self.shape)}: {exc}") from None
        if out.shape != self._array.shape:
            raise RuntimeError(f"masked_fill: the mask of shape {tuple(M.shape)} broadcasts beyond the tensor of "
                               f"shape {tuple(self.shape)}")
        return _result(out, (self, vt), lambda g: (xp.where(M, 0, g), (xp.where(M, g, 0).sum() if vt is not None
                                                                    else None)), "MaskedFillBackward0")

    def masked_select(self, mask):
        mask = _as_tensor_arg(mask, "masked_select", "mask")
        shape = np.broadcast_shapes(self.shape, mask.shape)
        return self.expand(shape)[mask.expand(shape)]

    def masked_scatter(self, mask, source):
        return self.clone().masked_scatter_(mask, source)

    def take(self, index):
        return self.reshape(-1)[_as_tensor_arg(index, "take", "index")]

    def put(self, index, source):
        out = self.clone()
        flat = out.view(-1)
        flat[_as_tensor_arg(index, "put", "index")] = source
        return out

    def where(self, condition, other):
        return where(condition, self, other)

    # --------------------------------------------------- elementwise math
    def _unary(self, fn, grad, name, saves_input=True, saves_output=False, float_only=True):
        A = _float_array(self._array) if float_only else self._array
        xp = self._xp()
        with np.errstate(all="ignore"):
            out = fn(xp, A)
        return _result(out, (self,), lambda g: (grad(xp, g, A, out),), name,
                       saved=(self,) if saves_input else (), saves_output=saves_output)

    def exp(self):
        return exp(self)

    def exp2(self):
        return self._unary(lambda xp, a: xp.exp2(a), lambda xp, g, a, y: g * y * math.log(2), "Exp2Backward0",
                           saves_input=False, saves_output=True)

    def expm1(self):
        return self._unary(lambda xp, a: xp.expm1(a), lambda xp, g, a, y: g * (y + 1), "Expm1Backward0",
                           saves_input=False, saves_output=True)

    def log(self):
        return log(self)

    def log2(self):
        return self._unary(lambda xp, a: xp.log2(a), lambda xp, g, a, y: g / (a * math.log(2)), "Log2Backward0")

    def log10(self):
        return self._unary(lambda xp, a: xp.log10(a), lambda xp, g, a, y: g / (a * math.log(10)), "Log10Backward0")

    def log1p(self):
        return self._unary(lambda xp, a: xp.log1p(a), lambda xp, g, a, y: g / (1 + a), "Log1pBackward0")

    def sqrt(self):
        return sqrt(self)

    def rsqrt(self):
        return self._unary(lambda xp, a: 1 / xp.sqrt(a), lambda xp, g, a, y: -0.5 * g * y * y * y,
                           "RsqrtBackward0", saves_input=False, saves_output=True)

    def square(self):
        return self * self

    def abs(self):
        return self._unary(lambda xp, a: xp.abs(a), lambda xp, g, a, y: g * xp.sign(a), "AbsBackward0",
                           float_only=False)

    absolute = abs

    def __abs__(self):
        return self.abs()

    def sign(self):
        return self._unary(lambda xp, a: xp.sign(a), lambda xp, g, a, y: g * 0, "SignBackward0",
                           saves_input=False, float_only=False)

    def sgn(self):
        return self.sign()

    def sin(self):
        return self._unary(lambda xp, a: xp.sin(a), lambda xp, g, a, y: g * xp.cos(a), "SinBackward0")

    def cos(self):
        return self._unary(lambda xp, a: xp.cos(a), lambda xp, g, a, y: -g * xp.sin(a), "CosBackward0")

    def tan(self):
        return self._unary(lambda xp, a: xp.tan(a), lambda xp, g, a, y: g * (1 + y * y), "TanBackward0",
                           saves_input=False, saves_output=True)

    def asin(self):
        return self._unary(lambda xp, a: xp.arcsin(a), lambda xp, g, a, y: g / xp.sqrt(1 - a * a), "AsinBackward0")

    def acos(self):
        return self._unary(lambda xp, a: xp.arccos(a), lambda xp, g, a, y: -g / xp.sqrt(1 - a * a),
                           "AcosBackward0")

    def atan(self):
        return self._unary(lambda xp, a: xp.arctan(a), lambda xp, g, a, y: g / (1 + a * a), "AtanBackward0")

    def sinh(self):
        return self._unary(lambda xp, a: xp.sinh(a), lambda xp, g, a, y: g * xp.cosh(a), "SinhBackward0")

    def cosh(self):
        return self._unary(lambda xp, a: xp.cosh(a), lambda xp, g, a, y: g * xp.sinh(a), "CoshBackward0")

    def tanh(self):
        return tanh(self)

    def sigmoid(self):
        return sigmoid(self)

    def relu(self):
        return relu(self)

    def erf(self):
        return self._unary(_erf, lambda xp, g, a, y: g * (2 / math.sqrt(math.pi)) * xp.exp(-a * a), "ErfBackward0")

    def erfinv(self):
        def fn(xp, a):
            # Newton iterations on erf from a rational first guess (Giles' approximation would also do)
            y = xp.clip(a, -1 + 1e-7, 1 - 1e-7)
            w = -xp.log((1 - y) * (1 + y))
            x = xp.sign(y) * xp.sqrt(xp.sqrt((2 / (math.pi * 0.147) + w / 2) ** 2 - w / 0.147) -
                                     (2 / (math.pi * 0.147) + w / 2))
            for _ in range(3):
                x = x - (_erf(xp, x) - y) / ((2 / math.sqrt(math.pi)) * xp.exp(-x * x))
            return xp.where(xp.abs(a) == 1, xp.sign(a) * xp.inf, x).astype(a.dtype)
        return self._unary(fn, lambda xp, g, a, y: g * (math.sqrt(math.pi) / 2) * xp.exp(y * y),
                           "ErfinvBackward0", saves_input=False, saves_output=True)

    def reciprocal(self):
        return self._unary(lambda xp, a: 1 / a, lambda xp, g, a, y: -g * y * y, "ReciprocalBackward0",
                           saves_input=False, saves_output=True)

    def floor(self):
        return self._unary(lambda xp, a: xp.floor(a), lambda xp, g, a, y: g * 0, "FloorBackward0",
                           saves_input=False, float_only=False)

    def ceil(self):
        return self._unary(lambda xp, a: xp.ceil(a), lambda xp, g, a, y: g * 0, "CeilBackward0",
                           saves_input=False, float_only=False)

    def round(self, decimals=0):
        return self._unary(lambda xp, a: xp.round(a, decimals), lambda xp, g, a, y: g * 0, "RoundBackward0",
                           saves_input=False, float_only=False)

    def trunc(self):
        return self._unary(lambda xp, a: xp.trunc(a), lambda xp, g, a, y: g * 0, "TruncBackward0",
                           saves_input=False, float_only=False)

    fix = trunc

    def frac(self):
        return self - self.trunc().detach()

    def nan_to_num(self, nan=0.0, posinf=None, neginf=None):
        xp = self._xp()
        A = self._array
        out = xp.nan_to_num(A, nan=nan, posinf=posinf, neginf=neginf)
        return _result(out, (self,), lambda g: (g * xp.isfinite(A),), "NanToNumBackward0", saved=(self,))

    def clamp(self, min=None, max=None):
        return clamp(self, min, max)

    clip = clamp

    def clamp_min(self, min):
        return clamp(self, min, None)

    def clamp_max(self, max):
        return clamp(self, None, max)

    def lerp(self, end, weight):
        return self + (end - self) * weight

    def addcmul(self, tensor1, tensor2, value=1):
        return self + tensor1 * tensor2 * value

    def addcdiv(self, tensor1, tensor2, value=1):
        return self + tensor1 / tensor2 * value

    def addmm(self, mat1, mat2, beta=1, alpha=1):
        return self * beta + matmul(mat1, mat2) * alpha

    def baddbmm(self, batch1, batch2, beta=1, alpha=1):
        return self * beta + _as_tensor_arg(batch1, "baddbmm", "batch1").bmm(batch2) * alpha

    def addbmm(self, batch1, batch2, beta=1, alpha=1):
        return self * beta + _as_tensor_arg(batch1, "addbmm", "batch1").bmm(batch2).sum(0) * alpha

    def addmv(self, mat, vec, beta=1, alpha=1):
        return self * beta + matmul(mat, vec) * alpha

    def addr(self, vec1, vec2, beta=1, alpha=1):
        return self * beta + _as_tensor_arg(vec1, "addr", "vec1").outer(vec2) * alpha

    def trace(self):
        if self.ndim != 2:
            raise ShapeError(f"trace: expected a matrix, but got tensor with dim {self.ndim}")
        return self.diagonal().sum()

    def diff(self, n=1, dim=-1, prepend=None, append=None):
        """The n-th forward difference along dim (prepend/append tensors joined first), as torch.diff."""
        d = _normalize_dim(dim, self.ndim, "diff")
        x = self
        if prepend is not None or append is not None:
            parts = [p if isinstance(p, Tensor) else _wrap(_storage(p, where="diff")).expand(
                self.shape[:d] + (1,) + self.shape[d + 1:]) for p in (prepend,) if p is not None]
            parts.append(self)
            if append is not None:
                parts.append(append if isinstance(append, Tensor) else _wrap(_storage(append, where="diff")).expand(
                    self.shape[:d] + (1,) + self.shape[d + 1:]))
            x = cat(parts, d)
        for _ in range(n):
            size = x.shape[d]
            if size == 0:
                break
            hi = x.narrow(d, 1, size - 1)
            lo = x.narrow(d, 0, size - 1)
            x = hi - lo if x.dtype != _device.bool_ else hi ^ lo
        return x

    def softmax(self, dim=-1, dtype=None):
        return softmax(self if dtype is None else self.type(dtype), dim)

    def log_softmax(self, dim=-1, dtype=None):
        return log_softmax(self if dtype is None else self.type(dtype), dim)

    def matmul(self, other):
        return matmul(self, other)

    def mm(self, other):
        if self.ndim != 2 or other.ndim != 2:
            raise RuntimeError(f"mm: expected 2-D tensors, got {self.ndim}-D and {other.ndim}-D")
        return matmul(self, other)

    def bmm(self, other):
        if self.ndim != 3 or getattr(other, "ndim", 0) != 3:
            raise RuntimeError(f"bmm: expected 3-D tensors, got {self.ndim}-D and {getattr(other, 'ndim', 0)}-D")
        if self.shape[0] != other.shape[0]:
            raise RuntimeError(f"bmm: batch sizes differ: {self.shape[0]} and {other.shape[0]}")
        return matmul(self, other)

    def mv(self, vec):
        return matmul(self, vec)

    def dot(self, other):
        if self.ndim != 1 or other.ndim != 1:
            raise RuntimeError(f"dot: 1D tensors expected, but got {self.ndim}D and {other.ndim}D tensors")
        return matmul(self, other)

    inner = dot

    def outer(self, other):
        return self.reshape(-1, 1) * _as_tensor_arg(other, "outer").reshape(1, -1)

    ger = outer

    def maximum(self, other):
        return maximum(self, other)

    def minimum(self, other):
        return minimum(self, other)

    def fmax(self, other):
        return maximum(self, other)

    def fmin(self, other):
        return minimum(self, other)

    def dist(self, other, p=2):
        return (self - other).norm(p)

    def cross(self, other, dim=-1):
        a, b = self.movedim(dim, -1), _as_tensor_arg(other, "cross").movedim(dim, -1)
        a0, a1, a2 = a.unbind(-1)
        b0, b1, b2 = b.unbind(-1)
        return stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], -1).movedim(-1, dim)

    def bincount(self, weights=None, minlength=0):
        return _wrap(np.bincount(_device.host(self._array), None if weights is None else
                                 _device.host(_array_of(weights)), minlength))

    def unique(self, sorted=True, return_inverse=False, return_counts=False, dim=None):
        res = np.unique(_device.host(self._array), return_inverse=return_inverse, return_counts=return_counts,
                        axis=dim)
        if isinstance(res, tuple):
            return tuple(_wrap(r if i == 0 else r.astype(np.int64)) for i, r in enumerate(res))
        return _wrap(res)

    def histc(self, bins=100, min=0, max=0):
        a = _device.host(self._array)
        lo, hi = (a.min(), a.max()) if min == max else (min, max)
        return _wrap(np.histogram(a, bins, (lo, hi))[0].astype(a.dtype))

    def apply_(self, fn):
        with no_grad():
            flat = self._array.reshape(-1)
            for i in range(flat.size):
                flat[i] = fn(flat[i].item())
        self._counter[0] += 1
        return self

    def map_(self, other, fn):
        a, b = self._array, np.broadcast_to(_array_of(other), self._array.shape)
        for i in np.ndindex(a.shape):
            a[i] = fn(a[i].item(), b[i].item())
        self._counter[0] += 1
        return self

    # --------------------------------------------------- in-place operators
    def _inplace_binary(self, other, ufunc, outofplace, name, alpha=None):
        if alpha is not None and alpha != 1:
            other = other * alpha
        if isinstance(other, Tensor) and other._array is self._array and ufunc is not None:
            other = other.clone() if _recording(self, other) else other
        if not _recording(self, other):
            _check_inplace_target(self, name)
            o = other._array if isinstance(other, Tensor) else other
            try:
                ufunc(self._array, o, out=self._array, casting="same_kind")
            except TypeError as exc:     # numpy's casting errors are TypeErrors
                raise RuntimeError(f"{name}: result type can't be cast to the desired output type "
                                   f"{self.dtype}: {exc}") from None
            except ValueError as exc:
                raise RuntimeError(f"{name}: output with shape {list(self.shape)} doesn't match the broadcast "
                                   f"shape: {exc}") from None
            self._counter[0] += 1
            return self
        return _inplace_like(self, name, lambda proxy: outofplace(proxy, other), (other,),
                             needs_old=outofplace is Tensor.__mul__ or outofplace is Tensor.__truediv__)

    def __iadd__(self, other):
        return self._inplace_binary(other, self._xp().add, Tensor.__add__, "add_")

    def __isub__(self, other):
        return self._inplace_binary(other, self._xp().subtract, Tensor.__sub__, "sub_")

    def __imul__(self, other):
        return self._inplace_binary(other, self._xp().multiply, Tensor.__mul__, "mul_")

    def __itruediv__(self, other):
        if self._array.dtype.kind in "biu":
            raise RuntimeError(f"div_: result type Float can't be cast to the desired output type {self.dtype}")
        return self._inplace_binary(other, self._xp().true_divide, Tensor.__truediv__, "div_")

    def __ifloordiv__(self, other):
        return self._inplace_binary(other, self._xp().floor_divide, Tensor.__floordiv__, "floor_divide_")

    def __imod__(self, other):
        return self._inplace_binary(other, self._xp().remainder, Tensor.__mod__, "remainder_")

    def __ipow__(self, other):
        return _inplace_like(self, "pow_", lambda proxy: proxy ** other, (other,), needs_old=True)

    def __iand__(self, other):
        return self._inplace_binary(other, self._xp().bitwise_and, Tensor.__and__, "bitwise_and_")

    def __ior__(self, other):
        return self._inplace_binary(other, self._xp().bitwise_or, Tensor.__or__, "bitwise_or_")

    def __ixor__(self, other):
        return self._inplace_binary(other, self._xp().bitwise_xor, Tensor.__xor__, "bitwise_xor_")

    def add_(self, other, alpha=1):
        return self._inplace_binary(other, self._xp().add, Tensor.__add__, "add_", alpha)

    def sub_(self, other, alpha=1):
        return self._inplace_binary(other, self._xp().subtract, Tensor.__sub__, "sub_", alpha)

    def mul_(self, other):
        return self.__imul__(other)

    def div_(self, other, rounding_mode=None):
        if rounding_mode is not None:
            return _inplace_like(self, "div_", lambda proxy: proxy.div(other, rounding_mode), (other,))
        return self.__itruediv__(other)

    def pow_(self, exponent):
        return self.__ipow__(exponent)

    def copy_(self, src, non_blocking=False):
        src_t = src if isinstance(src, Tensor) else None
        S = src._array if src_t is not None else _storage(src, where="copy_")
        if is_cupy(S) != is_cupy(self._array):
            S = _device.to_device(S, _device.device_of(self._array), "copy_")
        try:
            np.broadcast_shapes(tuple(S.shape), tuple(self._array.shape))
        except ValueError:
            raise RuntimeError(f"copy_: the source of shape {tuple(S.shape)} does not broadcast to the tensor of "
                               f"shape {tuple(self.shape)}") from None
        src_shape, src_dtype = tuple(S.shape), S.dtype

        def write():
            self._array[...] = S

        def make_backward():
            return lambda g: (g * 0, _unbroadcast(g, src_shape).astype(src_dtype, copy=False))
        return _inplace(self, "CopyBackwards", write, make_backward, (src_t,) if src_t is not None else ())

    def zero_(self):
        return self.fill_(0)

    def fill_(self, value):
        v = value._array if isinstance(value, Tensor) else value
        vt = value if isinstance(value, Tensor) and value.requires_grad else None

        def write():
            self._array[...] = v

        def make_backward():
            return lambda g: (g * 0,) + ((g.sum(),) if vt is not None else ())
        return _inplace(self, "FillBackward0", write, make_backward, (vt,) if vt is not None else ())

    def normal_(self, mean=0.0, std=1.0, generator=None):
        return self._fill_random(lambda rng, shape: rng.normal(mean, std, shape), "normal_", generator)

    def uniform_(self, a=0.0, b=1.0, generator=None):
        return self._fill_random(lambda rng, shape: rng.uniform(a, b, shape), "uniform_", generator)

    def exponential_(self, lambd=1.0, generator=None):
        return self._fill_random(lambda rng, shape: rng.exponential(1.0 / lambd, shape), "exponential_", generator)

    def bernoulli_(self, p=0.5, generator=None):
        pv = _array_of(p) if isinstance(p, Tensor) else p
        return self._fill_random(lambda rng, shape: rng.random(shape) < _device.host(np.asarray(pv)),
                                 "bernoulli_", generator)

    def random_(self, from_=0, to=None, generator=None):
        if to is None:
            from_, to = 0, from_ if from_ else 2 ** 24
        return self._fill_random(lambda rng, shape: rng.integers(from_, to, shape), "random_", generator)

    def geometric_(self, p, generator=None):
        return self._fill_random(lambda rng, shape: rng.geometric(p, shape), "geometric_", generator)

    def log_normal_(self, mean=1.0, std=2.0, generator=None):
        return self._fill_random(lambda rng, shape: rng.lognormal(mean, std, shape), "log_normal_", generator)

    def cauchy_(self, median=0.0, sigma=1.0, generator=None):
        return self._fill_random(lambda rng, shape: median + sigma * rng.standard_cauchy(shape), "cauchy_",
                                 generator)

    def _fill_random(self, draw, name, generator):
        values = draw(_rng(generator), self._array.shape)
        values = _device.to_device(np.asarray(values).astype(self._array.dtype), _device.device_of(self._array))

        def write():
            self._array[...] = values
        return _inplace(self, name, write, lambda: (lambda g: (g * 0,)), ())

    def clamp_(self, min=None, max=None):
        return _inplace_like(self, "clamp_", lambda proxy: clamp(proxy, min, max), (min, max), needs_old=True)

    clip_ = clamp_

    def clamp_min_(self, min):
        return self.clamp_(min, None)

    def clamp_max_(self, max):
        return self.clamp_(None, max)

    def masked_fill_(self, mask, value):
        mask_t = _as_tensor_arg(mask, "masked_fill_", "mask")
        if mask_t._array.dtype != np.bool_:
            raise RuntimeError(f"masked_fill_: expected a bool mask, got {mask_t.dtype}")
        try:
            fits = np.broadcast_shapes(tuple(mask_t.shape), tuple(self.shape)) == tuple(self.shape)
        except ValueError:
            fits = False
        if not fits:
            raise RuntimeError(f"masked_fill_: the mask of shape {tuple(mask_t.shape)} does not broadcast to the "
                               f"tensor of shape {tuple(self.shape)}") from None
        if not _recording(self, value):
            _check_inplace_target(self, "masked_fill_")
            xp = self._xp()
            xp.copyto(self._array, xp.asarray(_array_of(value)).astype(self._array.dtype), where=xp.broadcast_to(
                mask_t._array, self._array.shape))
            self._counter[0] += 1
            return self
        return _inplace_like(self, "masked_fill_", lambda proxy: proxy.masked_fill(mask_t, value), (value,))

    def masked_scatter_(self, mask, source):
        mask_t = _as_tensor_arg(mask, "masked_scatter_", "mask")
        m = np.broadcast_to(mask_t._array, self._array.shape)
        n = int(m.sum())
        src = _as_tensor_arg(source, "masked_scatter_", "source")
        self[_wrap(m)] = src.reshape(-1)[:n]
        return self

    def index_fill_(self, dim, index, value):
        d = _normalize_dim(dim, self.ndim, "index_fill_")
        idx = (slice(None),) * d + (_as_tensor_arg(index, "index_fill_", "index")._array,)
        self[idx] = value
        return self

    def index_copy_(self, dim, index, source):
        d = _normalize_dim(dim, self.ndim, "index_copy_")
        idx = (slice(None),) * d + (_as_tensor_arg(index, "index_copy_", "index")._array,)
        self[idx] = source
        return self

    def index_add_(self, dim, index, source, alpha=1):
        d = _normalize_dim(dim, self.ndim, "index_add_")
        I = _as_tensor_arg(index, "index_add_", "index")._array.reshape(-1)
        src = _as_tensor_arg(source, "index_add_", "source")
        if alpha != 1:
            src = src * alpha
        n = self.shape[d]
        if I.size and (I.min() < -n or I.max() >= n):
            raise IndexError(f"index_add_: index out of range for dimension {d} of size {n}")
        xp = self._xp()
        S = src._array

        def write():
            xp.add.at(xp.moveaxis(self._array, d, 0), I, xp.moveaxis(S, d, 0).astype(self._array.dtype))

        def make_backward():
            return lambda g: (g, xp.take(g, I, axis=d))
        return _inplace(self, "IndexAddBackward0", write, make_backward, (src,))

    def scatter_add_(self, dim, index, src):
        d = _normalize_dim(dim, self.ndim, "scatter_add_")
        I = _as_tensor_arg(index, "scatter_add_", "index")._array
        src_t = _as_tensor_arg(src, "scatter_add_", "src")
        S = src_t._array
        _check_scatter(self, d, I, S, "scatter_add_")
        xp = self._xp()
        lead = tuple(slice(0, s) for s in I.shape)

        def write():
            _scatter_add_into(self._array, d, I, S[lead].astype(self._array.dtype, copy=False), xp)

        region = tuple(slice(None) if k == d else slice(0, s) for k, s in enumerate(I.shape))

        def make_backward():
            def back(g):
                gs = xp.zeros(S.shape, g.dtype)
                gs[lead] = xp.take_along_axis(g[region], I, axis=d) if g.ndim else g
                return g, gs
            return back
        return _inplace(self, "ScatterAddBackward0", write, make_backward, (src_t,))

    def scatter_(self, dim, index, src=None, value=None, reduce=None):
        d = _normalize_dim(dim, self.ndim, "scatter_")
        I = _as_tensor_arg(index, "scatter_", "index")._array
        if src is None:
            src = value
        xp = self._xp()
        if isinstance(src, Tensor):
            src_t, S = src, src._array
            _check_scatter(self, d, I, S, "scatter_")
            vals = S[tuple(slice(0, s) for s in I.shape)]
        else:
            src_t, vals = None, xp.full(I.shape, src, self._array.dtype)
        if reduce not in (None, "add", "multiply"):
            raise RuntimeError(f"scatter_: reduce must be None, 'add' or 'multiply', got {reduce!r}")

        def write():
            if reduce == "add":
                _scatter_add_into(self._array, d, I, vals.astype(self._array.dtype), xp)
            elif reduce == "multiply":
                xp.multiply.at(self._array, _scatter_index(self._array, d, I, xp), vals.astype(self._array.dtype))
            else:
                xp.put_along_axis(self._array[region], I, vals.astype(self._array.dtype), axis=d)

        region = tuple(slice(None) if k == d else slice(0, s) for k, s in enumerate(I.shape))

        def make_backward():
            def back(g):
                gs = None
                g_self = g.copy()
                xp.put_along_axis(g_self[region], I, 0, axis=d)
                if src_t is not None:
                    gs = xp.zeros(src_t._array.shape, g.dtype)
                    gs[tuple(slice(0, s) for s in I.shape)] = xp.take_along_axis(g[region], I, axis=d)
                return (g_self,) + ((gs,) if src_t is not None else ())
            return back
        return _inplace(self, "ScatterBackward0", write, make_backward, (src_t,) if src_t is not None else ())

    def _inplace_unary(self, name, fn):
        return _inplace_like(self, name, fn, (), needs_old=True)

    def relu_(self):
        return _inplace_like(self, "relu_", relu, ())

    def sigmoid_(self):
        return _inplace_like(self, "sigmoid_", sigmoid, ())

    def tanh_(self):
        return _inplace_like(self, "tanh_", tanh, ())

    def exp_(self):
        return _inplace_like(self, "exp_", exp, ())

    def log_(self):
        return self._inplace_unary("log_", Tensor.log)

    def sqrt_(self):
        return _inplace_like(self, "sqrt_", sqrt, ())

    def rsqrt_(self):
        return _inplace_like(self, "rsqrt_", Tensor.rsqrt, ())

    def abs_(self):
        return self._inplace_unary("abs_", Tensor.abs)

    def neg_(self):
        return _inplace_like(self, "neg_", Tensor.__neg__, ())

    def reciprocal_(self):
        return _inplace_like(self, "reciprocal_", Tensor.reciprocal, ())

    def floor_(self):
        return _inplace_like(self, "floor_", Tensor.floor, ())

    def ceil_(self):
        return _inplace_like(self, "ceil_", Tensor.ceil, ())

    def round_(self, decimals=0):
        return _inplace_like(self, "round_", lambda t: t.round(decimals), ())

    def trunc_(self):
        return _inplace_like(self, "trunc_", Tensor.trunc, ())

    def sin_(self):
        return self._inplace_unary("sin_", Tensor.sin)

    def cos_(self):
        return self._inplace_unary("cos_", Tensor.cos)

    def square_(self):
        return self._inplace_unary("square_", Tensor.square)

    def sign_(self):
        return _inplace_like(self, "sign_", Tensor.sign, ())

    def nan_to_num_(self, nan=0.0, posinf=None, neginf=None):
        return _inplace_like(self, "nan_to_num_", lambda t: t.nan_to_num(nan, posinf, neginf), ())

    def lerp_(self, end, weight):
        return _inplace_like(self, "lerp_", lambda t: t.lerp(end, weight), (end, weight))

    def addcmul_(self, tensor1, tensor2, value=1):
        return _inplace_like(self, "addcmul_", lambda t: t.addcmul(tensor1, tensor2, value), (tensor1, tensor2))

    def addcdiv_(self, tensor1, tensor2, value=1):
        return _inplace_like(self, "addcdiv_", lambda t: t.addcdiv(tensor1, tensor2, value), (tensor1, tensor2))

    def tril_(self, diagonal=0):
        return _inplace_like(self, "tril_", lambda t: t.tril(diagonal), ())

    def triu_(self, diagonal=0):
        return _inplace_like(self, "triu_", lambda t: t.triu(diagonal), ())

    def unsqueeze_(self, dim):
        self._array = self._array.reshape(self.unsqueeze(dim).shape)
        return self

    def squeeze_(self, dim=None):
        self._array = self._array.reshape(self.squeeze(dim).shape)
        return self

    def resize_(self, *sizes):
        shape = _shape_arg(sizes, "resize_")
        n = int(np.prod(shape, dtype=np.int64))
        flat = self._array.reshape(-1)
        self._array = (flat[:n] if n <= flat.size else self._xp().concatenate(
            [flat, self._xp().zeros(n - flat.size, flat.dtype)])).reshape(shape).copy()
        self._counter[0] += 1
        return self

    def set_(self, source):
        self._array = source._array
        self._counter[0] += 1
        return self

    def _refresh_view(self):
        """After its base changed in place: this view's node becomes that of the same view of the new base."""
        with enable_grad():
            fresh = self._view_fn(self._base)
        self._node, self.requires_grad = fresh._node, fresh.requires_grad
        self._view_version = self._counter[0]


class _RemovableHandle:
    """What register_hook returns: .remove() takes the hook off again."""

    def __init__(self, hooks, hook):
        self._hooks, self._hook = hooks, hook

    def remove(self):
        if self._hooks is not None and self._hook in self._hooks:
            self._hooks.remove(self._hook)


def _eq(a, b):
    return a == b


def _ne(a, b):
    return a != b


def _lt(a, b):
    return a < b


def _le(a, b):
    return a <= b


def _gt(a, b):
    return a > b


def _ge(a, b):
    return a >= b


def _array_of(x):
    return x._array if isinstance(x, Tensor) else x


def _erf(xp, a):
    if xp is np:
        return _erf_vec(a)
    return xp.erf(a) if hasattr(xp, "erf") else _erf_vec(a)


def _erf_vec(a):
    """erf to float64 precision (W. J. Cody's rational approximations via math.erf on the unique values would be
    slow): here through the relation erf(x) = 1 - erfc(x) with a Chebyshev-fitted erfc (Numerical Recipes'
    erfc_cheb)."""
    x = np.abs(a.astype(np.float64))
    t = 2.0 / (2.0 + x)
    ty = 4.0 * t - 2.0
    coef = (-1.3026537197817094, 6.4196979235649026e-1, 1.9476473204185836e-2, -9.561514786808631e-3,
            -9.46595344482036e-4, 3.66839497852761e-4, 4.2523324806907e-5, -2.0278578112534e-5,
            -1.624290004647e-6, 1.303655835580e-6, 1.5626441722e-8, -8.5238095915e-8, 6.529054439e-9,
            5.059343495e-9, -9.91364156e-10, -2.27365122e-10, 9.6467911e-11, 2.394038e-12, -6.886027e-12,
            8.94487e-13, 3.13092e-13, -1.12708e-13, 3.81e-16, 7.106e-15, -1.523e-15, -9.4e-17, 1.21e-16, -2.8e-17)
    d, dd = 0.0, 0.0
    for c in reversed(coef[1:]):
        d, dd = ty * d - dd + c, d
    erfc = t * np.exp(-x * x + 0.5 * (coef[0] + ty * d) - dd)
    return (np.sign(a) * (1.0 - erfc)).astype(a.dtype)


def _no_copy_reshape(a, shape):
    """a reshaped without a copy, or None when that needs one (torch's view() refuses then)."""
    try:
        return np.reshape(a, shape, copy=False) if isinstance(a, np.ndarray) else _cupy_view(a, shape)
    except TypeError:       # numpy < 2.1 has no copy= in reshape
        out = a.reshape(shape)
        return out if out.size == 0 or np.shares_memory(out, a) else None
    except ValueError as exc:
        if "copy" in str(exc) or "view" in str(exc):
            return None
        raise


def _cupy_view(a, shape):
    out = a.reshape(shape)
    return out if out.size == 0 or out.data.ptr == a.data.ptr and out.base is not None or out is a else None


def _rng(generator):
    if generator is None:
        return _generator()
    return generator._rng if hasattr(generator, "_rng") else generator


def _recording(t, *others):
    """Whether an in-place op on t must be recorded in the graph."""
    if not _mode.enabled:
        return False
    if t._base is not None:
        _fresh(t)
    if t.requires_grad:
        return True
    for o in others:
        if isinstance(o, Tensor):
            if o._base is not None:
                _fresh(o)
            if o.requires_grad:
                return True
    return False


def _check_inplace_target(t, name):
    if t._array.flags.writeable is False if hasattr(t._array, "flags") else False:
        raise RuntimeError(f"{name}: the tensor's memory is read-only (a broadcast view or a read-only array); "
                           f"clone() it first")


def _inplace(self, name, write, make_backward, others=()):
    """Runs an in-place op on self: write() changes self's storage; when the op must be recorded,
    make_backward() (called before write, so it can keep what it needs of the old values) gives
    backward(g) -> (gradient for self's old value, gradients for others...)."""
    if not _recording(self, *others):
        _check_inplace_target(self, name)
        write()
        self._counter[0] += 1
        return self
    if self._node is None and self.requires_grad:
        raise RuntimeError("a leaf Variable that requires grad is being used in an in-place operation.")
    root = self._base
    if root is not None and root._node is None and root.requires_grad:
        raise RuntimeError("a view of a leaf Variable that requires grad is being used in an in-place operation.")
    _check_inplace_target(self, name)
    old_edge = _edge(self)
    backward = make_backward()
    write()
    self._counter[0] += 1
    node = Node((old_edge,) + tuple(_edge(o) for o in others), backward, name)
    if root is None:
        self._node, self.requires_grad = node, True
        return self
    # a view: the root becomes "the old root with this view's elements replaced", and this view a view of it
    xp = root._xp()
    positions = self._view_fn(_wrap(xp.arange(root._array.size).reshape(root._array.shape)))._array
    if positions.size and xp.unique(positions).size != positions.size:
        raise RuntimeError(f"{name}: unsupported operation: more than one element of the written-to tensor refers "
                           f"to a single memory location; clone() the tensor first")
    root_shape, view_shape = root._array.shape, self._array.shape
    flat_pos = positions.reshape(-1)

    def root_back(g):
        flat = g.reshape(-1)
        g_view = flat[flat_pos].reshape(view_shape)
        g_root = flat.copy()
        g_root[flat_pos] = 0
        return g_root.reshape(root_shape), g_view
    root._node = Node((_edge(root), node), root_back, name)
    root.requires_grad = True
    self._refresh_view()
    return self


def _inplace_like(self, name, outofplace, others, needs_old=False):
    """An in-place op defined by its out-of-place form: outofplace(proxy) -> result Tensor, where proxy stands
    for self's current value (a copy when the backward needs the old values and they are about to be
    overwritten); the result is written into self's storage."""
    if not _recording(self, *others):
        _check_inplace_target(self, name)
        with no_grad():
            r = outofplace(_wrap(self._array))
        _write_result(self, r, name)
        self._counter[0] += 1
        return self
    holder = {}

    def run(copy):
        proxy = _wrap(self._array.copy() if copy else self._array)
        if not copy:
            proxy._counter = self._counter
        proxy._node, proxy.requires_grad = self._node, self.requires_grad
        return proxy, outofplace(proxy)

    def make_backward():
        proxy, r = run(needs_old)
        if not needs_old and r._node is not None and builtins.any(c is self._counter for c, _, _ in r._node.saved):
            proxy, r = run(True)     # the backward reads the old value, which the write is about to replace
        holder["r"] = r
        node = r._node
        if node is None:       # the op does not depend on its input (fill, zero, ...)
            return lambda g: (g * 0,) + (None,) * len(others)
        # the out-of-place node's inputs are (proxy, others...) in some order: route through its own backward
        inner = node

        def back(g):
            check_saved(inner)
            return _route(inner, g, proxy, others)
        return back

    def write():
        _write_result(self, holder["r"], name)
    return _inplace(self, name, write, make_backward, tuple(o for o in others if isinstance(o, Tensor)))


def _route(node, g, proxy, others):
    """Runs an out-of-place node's backward and maps its input gradients to (proxy, tensor others...)."""
    grads = node.backward(g)
    edges = node.next
    proxy_edge = _edge(proxy)
    out_self = None
    out_others = {id(_edge(o)): None for o in others if isinstance(o, Tensor) and o.requires_grad}
    for e, gi in zip(edges, grads):
        if gi is None or e is None:
            continue
        if e is proxy_edge and out_self is None:
            out_self = gi
        elif id(e) in out_others:
            out_others[id(e)] = gi if out_others[id(e)] is None else out_others[id(e)] + gi
    result = [out_self]
    for o in others:
        if isinstance(o, Tensor):
            result.append(out_others.get(id(_edge(o))) if o.requires_grad else None)
    return tuple(result)


def _write_result(self, r, name):
    R = r._array
    if R.dtype != self._array.dtype and not np.can_cast(R.dtype, self._array.dtype, casting="same_kind"):
        raise RuntimeError(f"{name}: result type {dtype_of(R)} can't be cast to the desired output type "
                           f"{self.dtype}")
    if tuple(R.shape) != tuple(self._array.shape):
        try:
            if np.broadcast_shapes(tuple(R.shape), tuple(self._array.shape)) != tuple(self._array.shape):
                raise ValueError
        except ValueError:
            raise RuntimeError(f"{name}: output with shape {list(self.shape)} doesn't match the broadcast shape "
                               f"{list(R.shape)}") from None
    self._array[...] = R


def _check_scatter(t, d, I, S, name):
    if I.dtype.kind not in "iu":
        raise RuntimeError(f"{name}(): Expected dtype int64 for index")
    if I.ndim != t.ndim or S.ndim != t.ndim:
        raise RuntimeError(f"{name}: index and src must have the tensor's number of dimensions ({t.ndim}), got "
                           f"{I.ndim} and {S.ndim}")
    n = t.shape[d] if t.ndim else 1
    if I.size and (I.min() < -n or I.max() >= n):
        raise RuntimeError(f"{name}: index {int(I.max() if I.max() >= n else I.min())} is out of bounds for "
                           f"dimension {d} with size {n}")
    for k in range(t.ndim):
        if I.shape[k] > S.shape[k] or k != d and I.shape[k] > t.shape[k]:
            raise RuntimeError(f"{name}: index size {I.shape[k]} at dimension {k} exceeds the src's "
                               f"({S.shape[k]}) or the tensor's ({t.shape[k]})")


def _scatter_index(target, d, I, xp):
    grids = xp.indices(I.shape, sparse=True)
    return tuple(I if k == d else grids[k] for k in range(I.ndim))


def _scatter_add_into(target, d, I, values, xp):
    """target[..., I[i], ...] += values[i] along dim d; deterministic (numpy's add.at runs in order)."""
    if target.ndim == 0:
        target[...] += values
        return
    if isinstance(target, np.ndarray) and target.dtype in _ACT_DTYPES:
        target[...] = ops.scatter_add(target, d, I.astype(np.int64, copy=False), values.astype(target.dtype,
                                                                                              copy=False))
        return
    xp.add.at(target, _scatter_index(target, d, I, xp), values)


# ------------------------------------------------------- primitives
def exp(x):
    x = _as_tensor_arg(x, "exp")
    with np.errstate(over="ignore"):
        y = x._xp().exp(_float_array(x._array))
    return _result(y, (x,), lambda g: (g * y,), "ExpBackward0", saves_output=True)


def log(x):
    x = _as_tensor_arg(x, "log")
    a = _float_array(x._array)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = x._xp().log(a)
    return _result(out, (x,), lambda g: (g / a,), "LogBackward0", saved=(x,))


def sqrt(x):
    x = _as_tensor_arg(x, "sqrt")
    with np.errstate(invalid="ignore"):
        y = x._xp().sqrt(_float_array(x._array))
    return _result(y, (x,), lambda g: (g / (2 * y),), "SqrtBackward0", saves_output=True)


def _native(a):
    """Whether a native elementwise kernel takes array a (float32/float64 numpy, or CuPy)."""
    return a.dtype in _ACT_DTYPES


def relu(x):
    x = _as_tensor_arg(x, "relu")
    X = x._array
    if _native(X):
        Y = ops.relu(X)
        return _result(Y, (x,), lambda g: (ops.relu_backward(g, Y),), "ReluBackward0", saves_output=True)
    xp = x._xp()
    Y = xp.maximum(X, xp.zeros((), X.dtype))
    return _result(Y, (x,), lambda g: (g * (Y > 0),), "ReluBackward0", saves_output=True)


def gelu(x, approximate="none"):
    x = _as_tensor_arg(x, "gelu")
    X = x._array
    if approximate == "tanh":
        if _native(X):
            return _result(ops.gelu_tanh(X), (x,), lambda g: (ops.gelu_tanh_backward(g, X),), "GeluBackward0",
                           saved=(x,))
        xp = x._xp()
        c = math.sqrt(2.0 / math.pi)
        inner = c * (X + 0.044715 * X ** 3)
        t = xp.tanh(inner)
        Y = 0.5 * X * (1 + t)
        return _result(Y, (x,), lambda g: (g * (0.5 * (1 + t) + 0.5 * X * (1 - t * t) * c *
                                                (1 + 3 * 0.044715 * X * X)),), "GeluBackward0", saved=(x,))
    if approximate != "none":
        raise ValueError(f"gelu: argument 'approximate' must be 'none' or 'tanh', got {approximate!r}")
    if _native(X):
        return _result(ops.gelu(X), (x,), lambda g: (ops.gelu_backward(g, X),), "GeluBackward0", saved=(x,))
    xp = x._xp()
    cdf = 0.5 * (1 + _erf(xp, X / math.sqrt(2)))
    return _result(X * cdf, (x,), lambda g: (g * (cdf + X * xp.exp(-0.5 * X * X) / math.sqrt(2 * math.pi)),),
                   "GeluBackward0", saved=(x,))


def sigmoid(x):
    x = _as_tensor_arg(x, "sigmoid")
    X = _float_array(x._array)
    if _native(X):
        Y = ops.sigmoid(X)
        return _result(Y, (x,), lambda g: (ops.sigmoid_backward(g, Y),), "SigmoidBackward0", saves_output=True)
    xp = x._xp()
    with np.errstate(over="ignore"):
        Y = 1 / (1 + xp.exp(-X))
    return _result(Y, (x,), lambda g: (g * Y * (1 - Y),), "SigmoidBackward0", saves_output=True)


def tanh(x):
    x = _as_tensor_arg(x, "tanh")
    X = _float_array(x._array)
    if _native(X):
        Y = ops.tanh(X)
        return _result(Y, (x,), lambda g: (ops.tanh_backward(g, Y),), "TanhBackward0", saves_output=True)
    Y = x._xp().tanh(X)
    return _result(Y, (x,), lambda g: (g * (1 - Y * Y),), "TanhBackward0", saves_output=True)


def softmax(x, dim=None, dtype=None, _stacklevel=3):
    x = _as_tensor_arg(x, "softmax")
    if dtype is not None:
        x = x.type(dtype)
    if dim is None:
        dim = -1 if x.ndim not in (0, 1, 3) else 0
    X = _float_array(x._array)
    axis = _normalize_dim(dim, X.ndim, "softmax")
    if X.ndim == 0:
        return _result(x._xp().ones_like(X), (x,), lambda g: (g * 0,), "SoftmaxBackward0")
    if _native(X):
        Y = ops.softmax(X, axis)
        return _result(Y, (x,), lambda g: (ops.softmax_backward(g, Y, axis),), "SoftmaxBackward0",
                       saves_output=True)
    xp = x._xp()
    e = xp.exp(X - X.max(axis=axis, keepdims=True))
    Y = e / e.sum(axis=axis, keepdims=True)
    return _result(Y, (x,), lambda g: (Y * (g - (g * Y).sum(axis=axis, keepdims=True)),), "SoftmaxBackward0",
                   saves_output=True)


def log_softmax(x, dim=None, dtype=None, _stacklevel=3):
    x = _as_tensor_arg(x, "log_softmax")
    if dtype is not None:
        x = x.type(dtype)
    if dim is None:
        dim = -1 if x.ndim not in (0, 1, 3) else 0
    X = _float_array(x._array)
    axis = _normalize_dim(dim, X.ndim, "log_softmax")
    if X.ndim == 0:
        return _result(x._xp().zeros_like(X), (x,), lambda g: (g * 0,), "LogSoftmaxBackward0")
    if _native(X):
        Y = ops.log_softmax(X, axis)
        return _result(Y, (x,), lambda g: (ops.log_softmax_backward(g, Y, axis),), "LogSoftmaxBackward0",
                       saves_output=True)
    xp = x._xp()
    m = X.max(axis=axis, keepdims=True)
    Y = X - m - xp.log(xp.exp(X - m).sum(axis=axis, keepdims=True))
    return _result(Y, (x,), lambda g: (g - xp.exp(Y) * g.sum(axis=axis, keepdims=True),), "LogSoftmaxBackward0",
                   saves_output=True)


def clamp(x, min=None, max=None):
    x = _as_tensor_arg(x, "clamp")
    if min is None and max is None:
        raise RuntimeError("clamp: at least one of 'min' or 'max' must not be None")
    a = x._array
    xp = x._xp()
    lo = _array_of(min)
    hi = _array_of(max)
    for bound in (lo, hi):
        s = _scalar_operand(bound)
        if s is not None and isinstance(s, float) and a.dtype.kind in "biu":
            a = a.astype(np.float32)
    y = a
    if lo is not None:
        y = xp.maximum(y, xp.asarray(lo, dtype=a.dtype) if _scalar_operand(lo) is not None else lo)
    if hi is not None:
        y = xp.minimum(y, xp.asarray(hi, dtype=a.dtype) if _scalar_operand(hi) is not None else hi)
    if y is a:
        y = a.copy()

    def back(g):
        keep = xp.ones(a.shape, bool)
        if lo is not None:
            keep &= a >= lo
        if hi is not None:
            keep &= a <= hi
        return (g * keep,) + (None,) * (len(tensors) - 1)
    tensors = tuple(t for t in (x, min, max) if isinstance(t, Tensor))
    return _result(y, tensors, back, "ClampBackward1", saved=(x,))


def maximum(a, b):
    a = _as_tensor_arg(a, "maximum")
    A, B, bt = _binary(a, b, "maximum")
    bt = bt if bt is not None else _wrap(_device.array_module(A).asarray(B, A.dtype))
    xp = a._xp()
    out = xp.maximum(A, B)

    def back(g):
        pick = A > B
        tie = A == B
        return (_unbroadcast(g * (pick + 0.5 * tie), A.shape), _unbroadcast(g * (~pick & ~tie) + 0.5 * g * tie,
                                                                           B.shape))
    return _result(out, (a, bt), back, "MaximumBackward0", saved=(a, bt))


def minimum(a, b):
    a = _as_tensor_arg(a, "minimum")
    A, B, bt = _binary(a, b, "minimum")
    bt = bt if bt is not None else _wrap(_device.array_module(A).asarray(B, A.dtype))
    xp = a._xp()
    out = xp.minimum(A, B)

    def back(g):
        pick = A < B
        tie = A == B
        return (_unbroadcast(g * (pick + 0.5 * tie), A.shape), _unbroadcast(g * (~pick & ~tie) + 0.5 * g * tie,
                                                                           B.shape))
    return _result(out, (a, bt), back, "MinimumBackward0", saved=(a, bt))


def where(condition, input=None, other=None):
    """Elementwise choice, differentiable in input and other; where(condition) alone gives nonzero's tuple."""
    if input is None and other is None:
        return _as_tensor_arg(condition, "where", "condition").nonzero(as_tuple=True)
    cond = condition._array if isinstance(condition, Tensor) else np.asarray(condition)
    if cond.dtype != np.bool_:
        raise RuntimeError(f"where: expected condition to be a boolean tensor, but got a tensor with dtype "
                           f"{cond.dtype}")
    xt = input if isinstance(input, Tensor) else None
    yt = other if isinstance(other, Tensor) else None
    if xt is None and yt is None:
        X, Y = _storage(input, where="where"), _storage(other, where="where")
        dt = result_dtype(X, Y)
        return _wrap(np.where(cond, X.astype(dt), Y.astype(dt)))
    base = xt if xt is not None else yt
    X, Y, _ = _binary(base, other if base is xt else input, "where")
    xp = base._xp()
    if not hasattr(Y, "shape"):       # a Python scalar, already of the result's category
        Y = xp.asarray(Y, dtype=X.dtype)
    if base is yt:
        X, Y = Y, X
    if is_cupy(X) and not is_cupy(cond):
        cond = xp.asarray(cond)
    out = xp.where(cond, X, Y)
    xs, ys = X.shape, Y.shape
    return _result(out, (xt, yt),
                   lambda g: (_unbroadcast(xp.where(cond, g, 0), xs) if xt is not None else None,
                              _unbroadcast(xp.where(cond, 0, g), ys) if yt is not None else None), "WhereBackward0")


# ---------------------------------------------------------------- matmul
def _native_matmul_ok(a, b):
    return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype == b.dtype
            and a.dtype in _ACT_DTYPES and a.ndim >= 2 and b.ndim >= 2) or \
        (is_cupy(a) and is_cupy(b) and a.dtype == b.dtype and a.ndim >= 2 and b.ndim >= 2)


def matmul(a, b):
    """a @ b with torch's rules (1-D operands, broadcast batch dims); 2-D and batched float32/float64 products
    run the native GEMM both ways."""
    a = _as_tensor_arg(a, "matmul")
    b = _as_tensor_arg(b, "matmul", "other")
    A, B = a._array, b._array
    if A.ndim == 0 or B.ndim == 0:
        raise RuntimeError(f"matmul: both arguments need at least 1 dimension, got {A.ndim}D and {B.ndim}D")
    if A.dtype != B.dtype:
        raise DTypeError(f"expected m1 and m2 to have the same dtype, but got: {dtype_of(A)} != {dtype_of(B)}")
    if A.shape[-1] != (B.shape[-2] if B.ndim >= 2 else B.shape[0]):
        raise ShapeError(f"mat1 and mat2 shapes cannot be multiplied ({'x'.join(map(str, A.shape))} and "
                           f"{'x'.join(map(str, B.shape))})")
    if _native_matmul_ok(A, B):
        batch_a, batch_b = A.shape[:-2], B.shape[:-2]
        if batch_a != batch_b and (len(batch_a) == 0 or len(batch_b) == 0) and A.ndim >= 2:
            # (..., M, K) @ (K, N): fold the batch into M, one GEMM
            if B.ndim == 2 and A.flags.c_contiguous:
                A2 = A.reshape(-1, A.shape[-1])
                out = ops.matmul(A2, B).reshape(A.shape[:-1] + (B.shape[-1],))

                def back_fold(g):
                    g2 = g.reshape(-1, g.shape[-1])
                    ga = ops.matmul(g2, B, trans_b=True).reshape(A.shape) if a.requires_grad else None
                    gb = ops.matmul(A2, g2, trans_a=True) if b.requires_grad else None
                    return ga, gb
                return _result(out, (a, b), back_fold, "MmBackward0", saved=(a if b.requires_grad else None,
                                                                             b if a.requires_grad else None))
        if batch_a == batch_b:
            batch = batch_a
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
            return _result(out, (a, b), back, "BmmBackward0" if batch else "MmBackward0",
                           saved=(a if b.requires_grad else None, b if a.requires_grad else None))
    xp = a._xp()
    try:
        out = xp.matmul(A, B)
    except ValueError as exc:
        raise ShapeError(f"matmul: shapes {tuple(A.shape)} and {tuple(B.shape)} cannot be multiplied: {exc}") \
            from None

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
    return _result(out, (a, b), back_general, "MatmulBackward0", saved=(a, b))


def _expand_ellipsis(eq, ndims):
    """The equation with each '...' replaced by letters the equation does not use, one per broadcast dim."""
    if "..." not in eq:
        return eq
    lhs, arrow, rhs = eq.partition("->")
    subs = lhs.split(",")
    spare = [c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz" if c not in eq]
    widest = 0
    named = []
    for s, n in zip(subs, ndims):
        k = n - (len(s) - 3) if "..." in s else 0
        widest = max(widest, k)
        named.append(k)
    fill = spare[:widest]
    out = []
    for s, k in zip(subs, named):
        out.append(s.replace("...", "".join(fill[widest - k:])) if "..." in s else s)
    if arrow:
        rhs = rhs.replace("...", "".join(fill))
    else:
        letters = [c for c in "".join(out) if c.isalpha() and c not in fill]
        rhs = "".join(fill) + "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
        arrow = "->"
    return ",".join(out) + arrow + rhs


def einsum(equation, *operands):
    """torch.einsum: numpy's einsum forward; each operand's gradient is the einsum of the output gradient with
    the other operands (indices only in that operand are broadcast back)."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    ts = [_as_tensor_arg(o, "einsum", f"operand {i}") for i, o in enumerate(operands)]
    eq = _expand_ellipsis(equation.replace(" ", ""), [t.ndim for t in ts])
    if "->" in eq:
        lhs, out_sub = eq.split("->")
    else:
        lhs = eq
        letters = [c for c in lhs.replace(",", "") if c.isalpha()]
        out_sub = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    subs = lhs.split(",")
    if len(subs) != len(ts):
        raise ValueError(f"einsum: the equation names {len(subs)} operands, got {len(ts)}")
    arrays = [t._array for t in ts]
    dt = arrays[0].dtype
    for arr in arrays[1:]:
        if arr.dtype != dt:
            raise RuntimeError(f"einsum(): operands do not have the same dtype: {dt} and {arr.dtype}")
    xp = ts[0]._xp()
    out = xp.einsum(f"{lhs}->{out_sub}", *arrays)
    sizes = {}
    for s, arr in zip(subs, arrays):
        for c, n in zip(s, arr.shape):
            sizes[c] = max(sizes.get(c, 1), n)

    def back(g):
        grads = []
        for i, (s, t) in enumerate(zip(subs, ts)):
            if not t.requires_grad:
                grads.append(None)
                continue
            if len(set(s)) != len(s):
                raise NotImplementedError("einsum: gradients through a repeated index in one operand (a diagonal) "
                                          "are not supported")
            others = [(subs[j], arrays[j]) for j in range(len(ts)) if j != i]
            available = set(out_sub) | {c for sj, _ in others for c in sj}
            kept = "".join(c for c in s if c in available)
            spec = ",".join([out_sub] + [sj for sj, _ in others]) + "->" + kept
            gi = xp.einsum(spec, g, *[arr for _, arr in others])
            if kept != s:     # indices only in this operand: the gradient is the same along them
                gi = gi.reshape([sizes[c] if c in kept else 1 for c in s])
                gi = xp.broadcast_to(gi, t._array.shape)
            else:
                gi = _unbroadcast(gi, t._array.shape) if gi.shape != t._array.shape else gi
            grads.append(gi)
        return tuple(grads)
    return _result(out, tuple(ts), back, "EinsumBackward0", saved=tuple(ts))


def searchsorted(sorted_sequence, values, *, out_int32=False, right=False, side=None, sorter=None):
    """Indices where values would be inserted to keep each (last-dim) row of sorted_sequence sorted."""
    seq = _as_tensor_arg(sorted_sequence, "searchsorted", "sorted_sequence")
    vals = values if isinstance(values, Tensor) else _wrap(_storage(values, where="searchsorted"))
    side = side or ("right" if right else "left")
    S, V = _device.host(seq._array), _device.host(vals._array)
    if sorter is not None:
        S = np.take_along_axis(S, _device.host(_array_of(sorter)), -1)
    if S.ndim == 1:
        out = np.searchsorted(S, V, side=side)
    else:
        if S.shape[:-1] != V.shape[:-1]:
            raise ShapeError(f"searchsorted: boundaries and input value tensors should have the same leading "
                             f"dims, got {S.shape} and {V.shape}")
        rows_s, rows_v = S.reshape(-1, S.shape[-1]), V.reshape(-1, V.shape[-1])
        out = np.stack([np.searchsorted(a, b, side=side) for a, b in zip(rows_s, rows_v)]).reshape(V.shape)
    return _wrap(np.asarray(out, np.int32 if out_int32 else np.int64))


def bucketize(input, boundaries, *, out_int32=False, right=False):
    """Which bucket of the sorted 1-D boundaries each input value falls in (torch.bucketize)."""
    b = _as_tensor_arg(boundaries, "bucketize", "boundaries")
    if b.ndim != 1:
        raise ShapeError(f"bucketize: boundaries tensor must be 1 dimension, but got dim({b.ndim})")
    return searchsorted(b, input, out_int32=out_int32, right=right)


# ------------------------------------------------------------ topk, sort
def topk(input, k, dim=-1, largest=True, sorted=True):
    x = _as_tensor_arg(input, "topk")
    if isinstance(k, Tensor):
        k = k.__index__()
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"topk: argument 'k' must be an int, got {type(k).__name__}")
    axis = _normalize_dim(dim, x.ndim, "topk")
    n = x.shape[axis] if x.ndim else 1
    if not 0 <= k <= n:
        raise RuntimeError(f"topk: selected index k ({k}) out of range for a dimension of size {n}")
    A = x._array
    xp = x._xp()
    if x.ndim == 0:
        return topk_result(x.clone(), _wrap(xp.zeros((), np.int64)))
    if isinstance(A, np.ndarray) and (A.dtype in _ACT_DTYPES or A.dtype == np.int64):
        vals, idx = ops.topk(A, int(k), axis, bool(largest), bool(sorted))
    else:
        moved = xp.moveaxis(A, axis, -1)
        key = xp.where(xp.isnan(moved), xp.inf, moved) if moved.dtype.kind == "f" else moved
        order = xp.argsort(-key if largest and moved.dtype.kind != "b" else key, axis=-1, kind="stable") if \
            moved.dtype.kind != "b" or not largest else xp.argsort(~key, axis=-1, kind="stable")
        idx = xp.moveaxis(order[..., :k], -1, axis).astype(np.int64)
        vals = xp.take_along_axis(A, idx, axis=axis)
    idx_t = _wrap(idx)
    src = A.shape

    def back(g):
        full = xp.zeros(src, g.dtype)
        xp.put_along_axis(full, idx, g, axis=axis)
        return (full,)
    return topk_result(_result(vals, (x,), back, "TopkBackward0"), idx_t)


def sort(input, dim=-1, descending=False, stable=False):
    x = _as_tensor_arg(input, "sort")
    axis = _normalize_dim(dim, x.ndim, "sort")
    A = x._array
    xp = x._xp()
    if x.ndim == 0:
        return sort_result(x.clone(), _wrap(xp.zeros((), np.int64)))
    if isinstance(A, np.ndarray) and (A.dtype in _ACT_DTYPES or A.dtype == np.int64):
        vals, idx = ops.sort(A, axis, bool(descending))
    else:
        if descending:
            key = xp.where(xp.isnan(A), -xp.inf, A) if A.dtype.kind == "f" else A
            if A.dtype.kind == "b":
                idx = xp.argsort(~key, axis=axis, kind="stable")
            elif A.dtype.kind == "u":
                idx = xp.argsort(-(key.astype(np.int64)), axis=axis, kind="stable")
            else:
                idx = xp.argsort(-key, axis=axis, kind="stable")
                if A.dtype.kind == "f":     # NaN first when descending, as torch
                    nan_first = xp.argsort(~xp.isnan(xp.take_along_axis(A, idx, axis=axis)), axis=axis,
                                           kind="stable")
                    idx = xp.take_along_axis(idx, nan_first, axis=axis)
        else:
            idx = xp.argsort(A, axis=axis, kind="stable")
        idx = idx.astype(np.int64)
        vals = xp.take_along_axis(A, idx, axis=axis)
    src = A.shape

    def back(g):
        full = xp.zeros(src, g.dtype)
        xp.put_along_axis(full, idx, g, axis=axis)
        return (full,)
    return sort_result(_result(vals, (x,), back, "SortBackward0"), _wrap(idx))


# -------------------------------------------------------------- factories
def is_tensor(obj):
    return isinstance(obj, Tensor)


def tensor(data, dtype=None, device=None, requires_grad=False, pin_memory=False):
    """A Tensor holding a copy of data, like torch.tensor (Python floats become float32, ints int64; numpy
    arrays keep their dtype)."""
    if isinstance(data, Tensor):
        arr = data._array.copy()
        if dtype is not None:
            arr = arr.astype(_device.as_numpy_dtype(dtype, "tensor"))
    else:
        arr = _storage(data, dtype, "tensor")
        if arr is data or isinstance(data, np.ndarray) or is_cupy(data) or getattr(arr, "base", None) is not None:
            arr = arr.copy()
    t = Tensor(arr, requires_grad=requires_grad, device=device, _trusted=True)
    return t


def as_tensor(data, dtype=None, device=None):
    """Like torch.as_tensor: no copy where the data is already an array of that dtype and device."""
    if isinstance(data, Tensor) and dtype is None and device is None:
        return data
    return Tensor(_storage(data, dtype, "as_tensor"), device=device, _trusted=True)


def asarray(obj, dtype=None, device=None, copy=None, requires_grad=False):
    t = as_tensor(obj, dtype, device)
    if copy:
        t = t.clone()
    return t.requires_grad_(requires_grad) if requires_grad else t


def from_numpy(array):
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy: expected np.ndarray (got {type(array).__name__})")
    if array.dtype.kind in "OSUV" and array.dtype != _device.bfloat16.dtype:
        raise TypeError(f"from_numpy: can't convert np.ndarray of type {array.dtype}")
    return _wrap(array)


def _factory(where, shape, dtype, device, requires_grad, make, default=_device.float32):
    shape = _shape_arg(shape, where)
    for s in shape:
        if s < 0:
            raise RuntimeError(f"{where}: trying to create tensor with negative dimension {s}: {list(shape)}")
    dt = _device.as_numpy_dtype(default if dtype is None else dtype, where)
    target = _device.parse_device(device, where) or "cpu"
    try:
        arr = make(shape, dt)
    except MemoryError:
        raise MemoryError(f"{where}: cannot allocate a tensor of shape {list(shape)} and dtype {dt}") from None
    except ValueError as exc:
        raise RuntimeError(f"{where}: cannot create a tensor of shape {list(shape)}: {exc}") from None
    if target != "cpu":
        arr = _device.to_device(arr, target, where)
    t = _wrap(arr)
    if requires_grad:
        t.requires_grad_(True)
    return t


def _no_out(out, where):
    if out is not None:
        raise NotImplementedError(f"{where}: the out= argument is not supported")


def zeros(*size, out=None, dtype=None, layout=None, device=None, requires_grad=False, pin_memory=False,
          memory_format=None):
    _no_out(out, "zeros")
    return _factory("zeros", size, dtype, device, requires_grad, np.zeros)


def ones(*size, out=None, dtype=None, layout=None, device=None, requires_grad=False, pin_memory=False,
         memory_format=None):
    _no_out(out, "ones")
    return _factory("ones", size, dtype, device, requires_grad, np.ones)


def empty(*size, out=None, dtype=None, layout=None, device=None, requires_grad=False, pin_memory=False,
          memory_format=None):
    _no_out(out, "empty")
    return _factory("empty", size, dtype, device, requires_grad, np.zeros)


def full(size, fill_value, *, out=None, dtype=None, layout=None, device=None, requires_grad=False,
         pin_memory=False):
    _no_out(out, "full")
    if dtype is None:
        s = _scalar_operand(fill_value.item() if isinstance(fill_value, Tensor) else fill_value)
        dtype = _device.bool_ if isinstance(s, bool) else _device.int64 if isinstance(s, int) else _device.float32
    return _factory("full", (size,) if not isinstance(size, (int, np.integer)) else ((size,),), dtype, device,
                    requires_grad, lambda shape, dt: np.full(shape, _array_of(fill_value), dt))


def _like(where, input, dtype, device, requires_grad, fill):
    x = _as_tensor_arg(input, where)
    dt = _device.as_numpy_dtype(dtype if dtype is not None else x.dtype, where)
    target = _device.parse_device(device, where) if device is not None else _device.device_of(x._array)
    arr = np.full(x._array.shape, fill, dt) if fill is not None else np.zeros(x._array.shape, dt)
    if target != "cpu":
        arr = _device.to_device(arr, target, where)
    t = _wrap(arr)
    return t.requires_grad_(True) if requires_grad else t


def zeros_like(input, *, dtype=None, layout=None, device=None, requires_grad=False, memory_format=None):
    return _like("zeros_like", input, dtype, device, requires_grad, 0)


def ones_like(input, *, dtype=None, layout=None, device=None, requires_grad=False, memory_format=None):
    return _like("ones_like", input, dtype, device, requires_grad, 1)


def empty_like(input, *, dtype=None, layout=None, device=None, requires_grad=False, memory_format=None):
    return _like("empty_like", input, dtype, device, requires_grad, None)


def full_like(input, fill_value, *, dtype=None, layout=None, device=None, requires_grad=False,
              memory_format=None):
    return _like("full_like", input, dtype, device, requires_grad, _array_of(fill_value))


def eye(n, m=None, *, out=None, dtype=None, layout=None, device=None, requires_grad=False):
    _no_out(out, "eye")
    return _factory("eye", (n, n if m is None else m), dtype, device, requires_grad,
                    lambda shape, dt: np.eye(shape[0], shape[1], dtype=dt))


def arange(start=0, end=None, step=1, *, out=None, dtype=None, layout=None, device=None, requires_grad=False):
    """torch.arange: int64 when start, end and step are ints, else float32 (the default dtype)."""
    _no_out(out, "arange")
    start, end, step = (_array_of(v).item() if isinstance(v, Tensor) else v for v in (start, end, step))
    if end is None:
        start, end = 0, start
    if step == 0:
        raise RuntimeError("arange: step must be nonzero")
    if (end - start) / step < 0:
        raise RuntimeError(f"arange: upper bound and larger bound inconsistent with step sign "
                           f"(start={start}, end={end}, step={step})")
    ints = builtins.all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in (start, end, step))
    default = _device.int64 if ints else _device.float32
    dt = _device.as_numpy_dtype(default if dtype is None else dtype, "arange")
    if ints or dt.kind in "iu":
        arr = np.arange(start, end, step, dtype=np.int64 if ints else np.float64).astype(dt)
    else:
        n = int(math.ceil((end - start) / step))
        arr = (start + np.arange(n, dtype=np.float64) * step).astype(dt)
    t = _wrap(arr if device is None or _device.parse_device(device, "arange") == "cpu"
              else _device.to_device(arr, "cuda", "arange"))
    return t.requires_grad_(True) if requires_grad else t


def range_(start, end, step=1, dtype=None, device=None, requires_grad=False):
    return arange(start, end + step / 2 if step > 0 else end - abs(step) / 2, step, dtype=dtype or _device.float32,
                  device=device, requires_grad=requires_grad)


def linspace(start, end, steps, *, out=None, dtype=None, layout=None, device=None, requires_grad=False):
    _no_out(out, "linspace")
    if steps < 0:
        raise RuntimeError(f"linspace: number of steps must be non-negative, got {steps}")
    return _factory("linspace", (steps,), dtype, device, requires_grad,
                    lambda shape, dt: np.linspace(float(_array_of(start)), float(_array_of(end)), steps).astype(dt))


def logspace(start, end, steps, base=10.0, *, dtype=None, device=None, requires_grad=False):
    return _factory("logspace", (steps,), dtype, device, requires_grad,
                    lambda shape, dt: np.logspace(start, end, steps, base=base).astype(dt))


def rand(*size, generator=None, out=None, dtype=None, layout=None, device=None, requires_grad=False,
         pin_memory=False):
    _no_out(out, "rand")
    return _factory("rand", size, dtype, device, requires_grad,
                    lambda shape, dt: _rng(generator).random(shape).astype(dt))


def randn(*size, generator=None, out=None, dtype=None, layout=None, device=None, requires_grad=False,
          pin_memory=False):
    _no_out(out, "randn")
    return _factory("randn", size, dtype, device, requires_grad,
                    lambda shape, dt: _rng(generator).standard_normal(shape).astype(dt))


def randint(low=0, high=None, size=None, *, generator=None, out=None, dtype=None, layout=None, device=None,
            requires_grad=False):
    """randint(high, size) or randint(low, high, size): int64 values in [low, high)."""
    _no_out(out, "randint")
    if size is None:
        if isinstance(high, (tuple, list, Size)):
            low, high, size = 0, low, high
        else:
            raise TypeError("randint: argument 'size' (a tuple of ints) is required")
    if high is None:
        low, high = 0, low
    if high <= low:
        raise RuntimeError(f"randint: random_ expects 'from' to be less than 'to', but got from={low} >= to={high}")
    return _factory("randint", (size,) if not isinstance(size, int) else ((size,),), dtype, device, requires_grad,
                    lambda shape, dt: _rng(generator).integers(low, high, shape).astype(dt), default=_device.int64)


def randperm(n, *, generator=None, out=None, dtype=None, layout=None, device=None, requires_grad=False):
    _no_out(out, "randperm")
    return _factory("randperm", (n,), dtype, device, requires_grad,
                    lambda shape, dt: _rng(generator).permutation(n).astype(dt), default=_device.int64)


def rand_like(input, *, dtype=None, layout=None, device=None, requires_grad=False, memory_format=None):
    x = _as_tensor_arg(input, "rand_like")
    return rand(x.shape, dtype=dtype or x.dtype, device=device or x.device, requires_grad=requires_grad)


def randn_like(input, *, dtype=None, layout=None, device=None, requires_grad=False, memory_format=None):
    x = _as_tensor_arg(input, "randn_like")
    return randn(x.shape, dtype=dtype or x.dtype, device=device or x.device, requires_grad=requires_grad)


def randint_like(input, low=0, high=None, *, dtype=None, layout=None, device=None, requires_grad=False,
                 memory_format=None):
    x = _as_tensor_arg(input, "randint_like")
    return randint(low, high, x.shape, dtype=dtype or x.dtype, device=device or x.device)


def multinomial(input, num_samples, replacement=False, *, generator=None, out=None):
    """Draws category indices from rows of non-negative weights (1-D or 2-D), like torch.multinomial."""
    _no_out(out, "multinomial")
    x = _as_tensor_arg(input, "multinomial")
    if x.ndim not in (1, 2):
        raise RuntimeError(f"multinomial: prob_dist must be 1 or 2 dim, got {x.ndim}")
    if isinstance(num_samples, bool) or not isinstance(num_samples, (int, np.integer)) or num_samples <= 0:
        raise RuntimeError(f"multinomial: cannot sample num_samples={num_samples!r} <= 0 samples")
    p = _device.host(x._array).astype(np.float64)
    rows = p.reshape(-1, p.shape[-1])
    if not np.isfinite(rows).all() or (rows < 0).any():
        raise RuntimeError("multinomial: probability tensor contains either `inf`, `nan` or element < 0")
    sums = rows.sum(axis=1)
    if (sums <= 0).any():
        raise RuntimeError("multinomial: invalid multinomial distribution (sum of probabilities <= 0)")
    n = rows.shape[1]
    if not replacement and num_samples > n:
        raise RuntimeError(f"multinomial: cannot sample n_sample > prob_dist.size(-1) samples without "
                           f"replacement ({num_samples} > {n})")
    rng = _rng(generator)
    out_idx = np.empty((rows.shape[0], num_samples), np.int64)
    for r, (w, s) in enumerate(zip(rows, sums)):
        prob = w / s
        if replacement:
            out_idx[r] = rng.choice(n, size=num_samples, replace=True, p=prob)
        else:
            # exponential race (Gumbel-top-k): the same distribution as sequential draws without replacement
            keys = np.where(prob > 0, rng.exponential(size=n) / np.where(prob > 0, prob, 1), np.inf)
            out_idx[r] = np.argsort(keys, kind="stable")[:num_samples]
    out_idx = out_idx.reshape(p.shape[:-1] + (num_samples,))
    return _wrap(_device.to_device(out_idx, _device.device_of(x._array)))


def normal(mean=0.0, std=1.0, size=None, *, generator=None, out=None, dtype=None, device=None,
           requires_grad=False):
    _no_out(out, "normal")
    rng = _rng(generator)
    if size is not None:
        return _factory("normal", (size,) if not isinstance(size, int) else ((size,),), dtype, device,
                        requires_grad, lambda shape, dt: rng.normal(mean, std, shape).astype(dt))
    m, s = _array_of(mean), _array_of(std)
    shape = np.broadcast_shapes(np.shape(m), np.shape(s))
    ref = mean if isinstance(mean, Tensor) else std if isinstance(std, Tensor) else None
    dt = ref._array.dtype if ref is not None else np.float32
    return _wrap((np.asarray(m) + np.asarray(s) * rng.standard_normal(shape)).astype(dt))


def bernoulli(input, p=None, *, generator=None, out=None):
    _no_out(out, "bernoulli")
    x = _as_tensor_arg(input, "bernoulli")
    prob = _device.host(x._array) if p is None else p
    draws = _rng(generator).random(x._array.shape) < prob
    return _wrap(draws.astype(x._array.dtype))


def poisson(input, generator=None):
    x = _as_tensor_arg(input, "poisson")
    return _wrap(_rng(generator).poisson(_device.host(x._array)).astype(x._array.dtype))


def cat(tensors, dim=0, *, out=None):
    """Concatenates along dim; differentiable. 1-D empty tensors are skipped, as torch does."""
    _no_out(out, "cat")
    if isinstance(tensors, Tensor):
        raise TypeError("cat(): argument 'tensors' must be a tuple of Tensors, not Tensor")
    tensors = [_as_tensor_arg(t, "cat", "tensors") for t in tensors]
    if not tensors:
        raise RuntimeError("cat(): expected a non-empty list of Tensors")
    kept = [t for t in tensors if not (t.ndim == 1 and t.shape[0] == 0)] or tensors[:1]
    axis = _normalize_dim(dim, kept[0].ndim, "cat")
    xp = kept[0]._xp()
    dt = kept[0]._array.dtype
    for t in kept[1:]:
        if t._array.dtype != dt:
            dt = result_dtype(np.empty(0, dt), t._array)
    arrays = [t._array if t._array.dtype == dt else t._array.astype(dt) for t in kept]
    sizes = [a.shape[axis] for a in arrays]
    try:
        out_arr = xp.concatenate(arrays, axis=axis)
    except ValueError as exc:
        raise ShapeError(f"cat: sizes of tensors must match except in dimension {axis}: {exc}") from None
    bounds = np.cumsum(sizes)[:-1]
    srcs = [t._array.dtype for t in kept]
    return _result(out_arr, tuple(kept), lambda g: tuple(p.astype(s, copy=False) for p, s in
                                                         zip(xp.split(g, bounds, axis=axis), srcs)), "CatBackward0")


concat = concatenate = cat


def stack(tensors, dim=0, *, out=None):
    """Stacks along a new dim; differentiable."""
    _no_out(out, "stack")
    tensors = [_as_tensor_arg(t, "stack", "tensors") for t in tensors]
    if not tensors:
        raise RuntimeError("stack expects a non-empty TensorList")
    shape = tensors[0].shape
    for i, t in enumerate(tensors[1:], 1):
        if t.shape != shape:
            raise ShapeError(f"stack expects each tensor to be equal size, but got {list(shape)} at entry 0 and "
                               f"{list(t.shape)} at entry {i}")
    d = _normalize_dim(dim, tensors[0].ndim + 1, "stack")
    return cat([t.unsqueeze(d) for t in tensors], d)


def hstack(tensors):
    tensors = [_as_tensor_arg(t, "hstack") for t in tensors]
    return cat(tensors, 0 if tensors[0].ndim == 1 else 1)


def vstack(tensors):
    return cat([t if t.ndim >= 2 else t.reshape(1, -1) for t in (_as_tensor_arg(x, "vstack") for x in tensors)], 0)


def dstack(tensors):
    return cat([t.reshape(1, -1, 1) if t.ndim == 1 else t.unsqueeze(-1) if t.ndim == 2 else t
                for t in (_as_tensor_arg(x, "dstack") for x in tensors)], 2)


def meshgrid(*tensors, indexing="ij"):
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    ts = [_as_tensor_arg(t, "meshgrid") for t in tensors]
    n = len(ts)
    shape = [t.numel() for t in ts]
    if indexing == "xy" and n >= 2:
        shape[0], shape[1] = shape[1], shape[0]
    out = []
    for i, t in enumerate(ts):
        view = [1] * n
        pos = i
        if indexing == "xy" and n >= 2 and i < 2:
            pos = 1 - i
        view[pos] = -1
        out.append(t.reshape(view).expand(shape))
    return tuple(out)


def broadcast_tensors(*tensors):
    ts = [_as_tensor_arg(t, "broadcast_tensors") for t in tensors]
    shape = np.broadcast_shapes(*[t.shape for t in ts])
    return tuple(t.expand(shape) for t in ts)


def broadcast_shapes(*shapes):
    return Size(np.broadcast_shapes(*shapes))


def tril_indices(row, col, offset=0, *, dtype=None, device=None):
    r, c = np.tril_indices(row, offset, col)
    return _wrap(np.stack([r, c]).astype(np.int64))


def triu_indices(row, col, offset=0, *, dtype=None, device=None):
    r, c = np.triu_indices(row, offset, col)
    return _wrap(np.stack([r, c]).astype(np.int64))


def block_diag(*tensors):
    ts = [_as_tensor_arg(t, "block_diag").reshape(t.shape[0] if t.ndim else 1, -1) if t.ndim < 2 else t
          for t in (_as_tensor_arg(x, "block_diag") for x in tensors)]
    rows = builtins.sum(t.shape[0] for t in ts)
    cols = builtins.sum(t.shape[1] for t in ts)
    out = zeros(rows, cols, dtype=ts[0].dtype)
    r = c = 0
    for t in ts:
        out[r:r + t.shape[0], c:c + t.shape[1]] = t
        r, c = r + t.shape[0], c + t.shape[1]
    return out


def cdist(x1, x2, p=2.0):
    a, b = _as_tensor_arg(x1, "cdist"), _as_tensor_arg(x2, "cdist")
    diff = a.unsqueeze(-2) - b.unsqueeze(-3)
    return diff.norm(p, dim=-1)


# ------------------------------------------------- the torch.* function forms
def _method_function(name):
    """torch.<name>(input, ...) for a Tensor method of that name."""
    method = getattr(Tensor, name)

    def function(input, *args, **kwargs):
        if not isinstance(input, Tensor):
            input = _as_tensor_arg(input, name)
        return method(input, *args, **kwargs)
    function.__name__ = name
    function.__qualname__ = name
    function.__doc__ = f"pyfastnn.{name}(input, ...): the function form of Tensor.{name}."
    return function


# names whose function form is just the method of the first argument (torch.sum(x, 1) == x.sum(1))
METHOD_FUNCTIONS = (
    "sum", "mean", "prod", "max", "min", "amax", "amin", "aminmax", "argmax", "argmin", "var", "std", "var_mean",
    "std_mean", "norm", "logsumexp", "any", "all", "cumsum", "cumprod", "cummax", "median", "mode", "kthvalue",
    "nansum", "nanmean", "argsort", "msort", "count_nonzero", "reshape", "flatten", "unflatten", "permute",
    "transpose", "swapaxes", "swapdims", "t", "movedim", "moveaxis", "unsqueeze", "squeeze", "repeat_interleave",
    "tile", "flip", "fliplr", "flipud", "roll", "narrow", "select", "split", "tensor_split", "chunk", "unbind",
    "diagonal", "diag", "tril", "triu", "index_select", "gather", "scatter", "scatter_add", "index_add",
    "index_fill", "index_copy", "masked_fill", "masked_select", "masked_scatter", "take", "take_along_dim",
    "nonzero", "argwhere", "abs", "absolute", "sign", "sgn", "sin", "cos", "tan", "asin", "acos", "atan", "sinh",
    "cosh", "erf", "erfinv", "exp2", "expm1", "log2", "log10", "log1p", "rsqrt", "square", "reciprocal", "floor",
    "ceil", "round", "trunc", "fix", "frac", "nan_to_num", "clip", "clamp_min", "clamp_max", "lerp", "addcmul",
    "addcdiv", "addmm", "mm", "bmm", "mv", "dot", "inner", "outer", "ger", "fmod", "remainder", "floor_divide",
    "true_divide", "div", "divide", "mul", "multiply", "add", "sub", "subtract", "neg", "negative", "pow",
    "logical_not", "logical_and", "logical_or", "logical_xor", "bitwise_not", "bitwise_and", "bitwise_or",
    "bitwise_xor", "isnan", "isinf", "isfinite", "isclose", "allclose", "equal", "eq", "ne", "lt", "le", "gt",
    "ge", "greater", "greater_equal", "less", "less_equal", "not_equal", "dist", "cross", "bincount", "unique",
    "histc", "fmax", "fmin", "numel", "clone", "detach", "conj", "unfold", "ravel", "is_floating_point",
    "is_complex", "is_nonzero", "baddbmm", "addbmm", "addmv", "addr", "trace", "diff",
)
FUNCTIONS = {name: _method_function(name) for name in METHOD_FUNCTIONS}
