"""Devices and dtypes in one place: is-this-CuPy, host copies, device strings, torch-style dtype objects and
the dtype policy (float32 stays float32; torch's promotion rules instead of numpy's)."""
from __future__ import annotations

import importlib

import numpy as np

from . import _backend

__all__ = ["dtype", "device", "is_cupy", "array_module", "cupy_module", "host", "to_device", "device_of",
           "parse_device", "as_numpy_dtype", "as_dtype", "result_dtype", "scalar_result_dtype", "finfo", "iinfo",
           "DEFAULT_FLOAT", "float32", "float64", "float16", "bfloat16", "int64", "int32", "int16", "int8", "uint8",
           "bool_", "complex64", "complex128"]


def is_cupy(array) -> bool:
    """Whether array is a CuPy (GPU) array, without importing CuPy."""
    return type(array).__module__.startswith("cupy")


def cupy_module(where: str = "pyfastnn"):
    """CuPy itself (how pyfastnn holds GPU memory), or an ImportError naming what needed it."""
    try:
        return importlib.import_module("cupy")
    except ImportError:
        raise ImportError(f"{where}: GPU arrays need CuPy (pip install \"pyfastnn[cuda]\")") from None


def array_module(array):
    """numpy or cupy, whichever holds array."""
    return cupy_module() if is_cupy(array) else np


def host(array):
    """A numpy array with array's values: itself on the CPU, a copy from the GPU."""
    if is_cupy(array):
        return array.get()
    return array if isinstance(array, np.ndarray) else np.asarray(array)


# ---------------------------------------------------------------- dtypes
class dtype:
    """A torch-style dtype object (pyfastnn.float32, ...). It compares equal to the numpy dtype it stands for,
    so code written against numpy (x.dtype == np.float32) keeps working, and numpy accepts it wherever it
    takes a dtype (through its .dtype attribute)."""
    __slots__ = ("name", "dtype", "is_floating_point", "is_complex", "is_signed")

    def __init__(self, name, np_dtype):
        self.name = name
        self.dtype = np.dtype(np_dtype)
        kind = self.dtype.kind
        self.is_floating_point = kind == "f" or name == "bfloat16"
        self.is_complex = kind == "c"
        self.is_signed = kind in "ifc" or name == "bfloat16"

    @property
    def itemsize(self):
        return self.dtype.itemsize

    @property
    def kind(self):
        return "f" if self.name == "bfloat16" else self.dtype.kind

    def to_real(self):
        return {"complex64": float32, "complex128": float64}.get(self.name, self)

    def __repr__(self):
        return f"pyfastnn.{self.name}"

    def __eq__(self, other):
        if isinstance(other, dtype):
            return self.dtype == other.dtype
        if other is None or isinstance(other, (str, bytes)) and other not in _BY_NAME and other != self.dtype.name:
            return False
        try:
            return self.dtype == np.dtype(other)
        except (TypeError, ValueError):
            return False

    def __hash__(self):
        return hash(self.dtype)

    def __reduce__(self):
        return (as_dtype, (self.name,))


def _bfloat16_numpy_dtype():
    """numpy has no bfloat16; ml_dtypes (a small numpy extension that Keras and JAX bring) provides one."""
    try:
        return np.dtype(importlib.import_module("ml_dtypes").bfloat16)
    except ImportError:
        return None


float32 = dtype("float32", np.float32)
float64 = dtype("float64", np.float64)
float16 = dtype("float16", np.float16)
_bf16 = _bfloat16_numpy_dtype()
bfloat16 = dtype("bfloat16", _bf16 if _bf16 is not None else np.uint16)   # bits only, until ml_dtypes is there
int64 = dtype("int64", np.int64)
int32 = dtype("int32", np.int32)
int16 = dtype("int16", np.int16)
int8 = dtype("int8", np.int8)
uint8 = dtype("uint8", np.uint8)
bool_ = dtype("bool", np.bool_)
complex64 = dtype("complex64", np.complex64)
complex128 = dtype("complex128", np.complex128)
DEFAULT_FLOAT = float32

_ALL = (float32, float64, float16, bfloat16, int64, int32, int16, int8, uint8, bool_, complex64, complex128)
_BY_NUMPY = {d.dtype: d for d in _ALL if not (d is bfloat16 and _bf16 is None)}
_BY_NAME = {d.name: d for d in _ALL}
_BY_NAME.update({"float": float32, "double": float64, "half": float16, "long": int64, "int": int32,
                 "short": int16, "bool_": bool_, "cfloat": complex64, "cdouble": complex128})
for _extra in ("uint16", "uint32", "uint64"):     # numpy-only dtypes a tensor may still hold
    _BY_NUMPY[np.dtype(_extra)] = _BY_NAME[_extra] = dtype(_extra, _extra)


def as_dtype(value, where="pyfastnn"):
    """The pyfastnn dtype for a dtype-like value (pyfastnn/numpy dtype, numpy type, name), or a TypeError
    naming where it was given."""
    if isinstance(value, dtype):
        return value
    if isinstance(value, str):
        found = _BY_NAME.get(value.replace("torch.", "").replace("pyfastnn.", ""))
        if found is not None:
            return found
    elif value is not float and value is not int and value is not bool:
        try:
            found = _BY_NUMPY.get(np.dtype(value))
        except (TypeError, ValueError):
            found = None
        if found is not None:
            return found
    else:   # Python types, as torch takes them: float -> float32 (the default), int -> int64, bool -> bool
        return {float: float32, int: int64, bool: bool_}[value]
    raise TypeError(f"{where}: unknown dtype {value!r}")


def as_numpy_dtype(value, where="pyfastnn"):
    """The numpy dtype a tensor of dtype `value` stores; bfloat16 needs ml_dtypes."""
    d = as_dtype(value, where)
    if d is bfloat16 and _bf16 is None:
        raise NotImplementedError(f"{where}: bfloat16 tensors need the ml_dtypes package (pip install ml_dtypes)")
    return d.dtype


def dtype_of(array) -> dtype:
    """The pyfastnn dtype of an array."""
    found = _BY_NUMPY.get(array.dtype)
    return found if found is not None else dtype(array.dtype.name, array.dtype)


_CATEGORY = {"b": 0, "u": 1, "i": 1, "f": 2, "V": 2, "c": 3}   # V: ml_dtypes' bfloat16 reports kind 'V'


def _category(np_dtype):
    if _bf16 is not None and np_dtype == _bf16:
        return 2
    return _CATEGORY[np_dtype.kind]


def result_dtype(a, b):
    """The dtype torch gives a binary op on arrays a and b: a higher category (bool < int < float < complex)
    wins with its own dtype; within one category the wider dtype wins, but a 0-d operand only decides when
    the other is 0-d too (so float32 * a float64 scalar tensor stays float32)."""
    da, db = a.dtype, b.dtype
    if da == db:
        return da
    ca, cb = _category(da), _category(db)
    if ca != cb:
        return da if ca > cb else db
    if a.ndim == 0 and b.ndim != 0:
        return db
    if b.ndim == 0 and a.ndim != 0:
        return da
    return np.promote_types(da, db)


def scalar_result_dtype(array_dtype, scalar):
    """The dtype torch gives an op between an array of array_dtype and a Python scalar: the array's dtype
    unless the scalar is of a higher category (an int tensor times 2.5 is float32, the default float)."""
    kind = array_dtype.kind
    if isinstance(scalar, bool):
        return array_dtype
    if isinstance(scalar, int):
        return np.dtype(np.int64) if kind == "b" else array_dtype
    if isinstance(scalar, float):
        return np.dtype(np.float32) if kind in "biu" else array_dtype
    if isinstance(scalar, complex):
        return array_dtype if kind == "c" else np.dtype(np.complex64)
    return array_dtype


class finfo:
    """Machine limits of a floating dtype as Python numbers (bits, eps, max, min, tiny, smallest_normal,
    resolution, dtype), as torch.finfo."""

    def __init__(self, type=None):
        d = as_dtype(DEFAULT_FLOAT if type is None else type, "finfo")
        if not d.is_floating_point and not d.is_complex:
            raise TypeError(f"finfo: expected a floating point dtype, got {d}")
        d = d.to_real()
        info = importlib.import_module("ml_dtypes").finfo(as_numpy_dtype(d, "finfo")) if d is bfloat16 else \
            np.finfo(d.dtype)
        self.bits = int(info.bits)
        self.eps, self.max, self.min = float(info.eps), float(info.max), float(info.min)
        self.tiny = self.smallest_normal = float(info.tiny)
        self.resolution = float(info.resolution)
        self.dtype = d.name

    def __repr__(self):
        return (f"finfo(resolution={self.resolution}, min={self.min}, max={self.max}, eps={self.eps}, "
                f"smallest_normal={self.smallest_normal}, tiny={self.tiny}, dtype={self.dtype})")


class iinfo:
    """Machine limits of an integer dtype as Python ints (bits, max, min, dtype), as torch.iinfo."""

    def __init__(self, type):
        d = as_dtype(type, "iinfo")
        if d.kind not in "iub":
            raise TypeError(f"iinfo: expected an integer dtype, got {d}")
        info = np.iinfo(np.uint8 if d.kind == "b" else d.dtype)
        self.bits, self.max, self.min, self.dtype = int(info.bits), int(info.max), int(info.min), d.name

    def __repr__(self):
        return f"iinfo(min={self.min}, max={self.max}, dtype={self.dtype})"


# ---------------------------------------------------------------- devices
class device:
    """A torch-style device: pyfastnn.device('cpu'), device('cuda'), device('cuda:1'), device('cuda', 0).
    It compares equal to its string ('cpu' == device('cpu'))."""
    __slots__ = ("type", "index")

    def __init__(self, type, index=None):
        if isinstance(type, device):
            type, index = type.type, type.index if index is None else index
        if not isinstance(type, str):
            raise TypeError(f"device: expected a string such as 'cpu' or 'cuda:0', got {type.__class__.__name__}")
        if ":" in type:
            if index is not None:
                raise ValueError(f"device: {type!r} already has an index")
            type, _, idx = type.partition(":")
            if not idx.isdigit():
                raise ValueError(f"device: invalid device string {type}:{idx!r}")
            index = int(idx)
        if type not in ("cpu", "cuda", "mps", "meta", "xla", "xpu"):
            raise ValueError(f"device: expected one of 'cpu', 'cuda' (optionally 'cuda:<index>'), got {type!r}")
        if type not in ("cpu", "cuda"):
            raise NotImplementedError(f"device: pyfastnn runs on 'cpu' and 'cuda', not {type!r}")
        if index is not None and (isinstance(index, bool) or not isinstance(index, int) or index < 0):
            raise ValueError(f"device: the index must be a non-negative int, got {index!r}")
        self.type, self.index = type, index

    def __repr__(self):
        return f"device(type='{self.type}'" + (f", index={self.index})" if self.index is not None else ")")

    def __str__(self):
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __eq__(self, other):
        if isinstance(other, str):
            try:
                other = device(other)
            except (ValueError, NotImplementedError):
                return False
        if not isinstance(other, device):
            return NotImplemented
        return self.type == other.type and (self.index == other.index or None in (self.index, other.index)
                                            and self.type == "cpu")

    def __hash__(self):
        return hash((self.type, self.index))

    def __reduce__(self):
        return (device, (self.type, self.index))


CPU = device("cpu")


def parse_device(value, where="pyfastnn"):
    """'cpu' or 'cuda' for a device-like value (string, device, or a GPU index as torch takes it)."""
    if value is None:
        return None
    if isinstance(value, device):
        return value.type
    if isinstance(value, int) and not isinstance(value, bool):
        return "cuda"
    if isinstance(value, str):
        try:
            return device(value).type
        except (ValueError, NotImplementedError) as exc:
            raise type(exc)(f"{where}: {exc}") from None
    raise TypeError(f"{where}: argument 'device' must be a string such as 'cpu' or 'cuda', or a device, "
                    f"got {type(value).__name__}")


def device_of(array) -> str:
    return "cuda" if is_cupy(array) else "cpu"


def to_device(array, target: str, where="pyfastnn"):
    """array on 'cpu' or 'cuda' (itself when already there)."""
    if target == device_of(array):
        return array
    if target == "cpu":
        return array.get()
    _backend.require_cuda(where)
    return cupy_module(where).asarray(array)


def param_dtype(value, where="pyfastnn"):
    """The numpy dtype a layer's parameters take for its dtype= argument (float32 when None)."""
    return as_numpy_dtype(DEFAULT_FLOAT if value is None else value, where)
