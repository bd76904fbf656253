"""One table of the tensor dtypes checkpoints hold: torch's names and storage classes, safetensors'
codes, numpy's dtypes, and the decoding of raw little- or big-endian bytes into numpy arrays."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._optional import optional, require

__all__ = ["DType", "POLICIES", "by_name", "by_storage", "by_safetensors", "of_array", "decode"]


@dataclass(frozen=True)
class DType:
    name: str                   # torch's name: 'float32', 'bfloat16'
    numpy: str | None           # numpy's little-endian code, None where numpy has no such type
    itemsize: int
    storage: str | None         # the legacy torch.<X>Storage class, None for dtypes saved untyped
    safetensors: str | None     # the safetensors header code
    half: bool = False          # widened to float32 unless the caller keeps dtypes

    def __repr__(self):
        return f"DType({self.name})"


_TABLE = (
    DType("float64", "<f8", 8, "DoubleStorage", "F64"),
    DType("float32", "<f4", 4, "FloatStorage", "F32"),
    DType("float16", "<f2", 2, "HalfStorage", "F16", half=True),
    DType("bfloat16", None, 2, "BFloat16Storage", "BF16", half=True),
    DType("int64", "<i8", 8, "LongStorage", "I64"),
    DType("int32", "<i4", 4, "IntStorage", "I32"),
    DType("int16", "<i2", 2, "ShortStorage", "I16"),
    DType("int8", "|i1", 1, "CharStorage", "I8"),
    DType("uint8", "|u1", 1, "ByteStorage", "U8"),
    DType("bool", "|b1", 1, "BoolStorage", "BOOL"),
    DType("complex64", "<c8", 8, "ComplexFloatStorage", "C64"),
    DType("complex128", "<c16", 16, "ComplexDoubleStorage", None),
    DType("uint16", "<u2", 2, None, "U16"),
    DType("uint32", "<u4", 4, None, "U32"),
    DType("uint64", "<u8", 8, None, "U64"),
    DType("float8_e4m3fn", None, 1, None, "F8_E4M3", half=True),
    DType("float8_e5m2", None, 1, None, "F8_E5M2", half=True),
)
_BY_NAME = {d.name: d for d in _TABLE}
_BY_STORAGE = {d.storage: d for d in _TABLE if d.storage}
_BY_SAFETENSORS = {d.safetensors: d for d in _TABLE if d.safetensors}

# What to do with float16, bfloat16 and float8 data: widen it to float32 (the default: what pyfastnn
# computes in), keep it (bfloat16/float8 as ml_dtypes types), or keep what numpy (or an installed
# ml_dtypes) can hold and widen the rest.
POLICIES = ("float32", "keep", "auto")


def by_name(name):
    return _BY_NAME.get(name)


def by_storage(storage_class_name):
    return _BY_STORAGE.get(storage_class_name)


def by_safetensors(code):
    return _BY_SAFETENSORS.get(code)


def of_array(dtype):
    """The entry for a numpy dtype (ml_dtypes' bfloat16/float8 included), or None."""
    return _BY_NAME.get(np.dtype(dtype).name)


def _ml_dtype(d):
    return np.dtype(getattr(require("ml_dtypes", f"keeping {d.name} data in its own dtype"), d.name))


def _bits(raw, d, byteorder):
    """raw bytes viewed as d's values (numpy types) or as unsigned ints holding their bits."""
    code = d.numpy if d.numpy is not None else f"<u{d.itemsize}"
    dt = np.dtype(code)
    if dt.itemsize > 1:     # (numpy spells the native order '=', so set the order explicitly)
        dt = dt.newbyteorder(">" if byteorder == "big" else "<")
    return raw.view(dt)


def _native(a):
    return a if a.dtype.isnative else a.astype(a.dtype.newbyteorder("="))


def _e4m3fn_table():
    b = np.arange(256)
    sign = np.where(b >> 7, -1.0, 1.0)
    exp, man = (b >> 3) & 0xF, b & 7
    val = np.where(exp == 0, man * 2.0 ** -9, (1 + man / 8) * 2.0 ** (exp - 7))
    val = np.where((exp == 15) & (man == 7), np.nan, val)
    return (sign * val).astype(np.float32)


_E4M3FN = _e4m3fn_table()


def _widen(bits, d):
    if d.name == "float16":
        return bits.astype(np.float32)
    if d.name == "bfloat16":         # bfloat16 is the top half of a float32
        return (bits.astype(np.uint32) << 16).view(np.float32)
    if d.name == "float8_e5m2":      # and float8_e5m2 the top byte of a float16
        return (bits.astype(np.uint16) << 8).view(np.float16).astype(np.float32)
    if d.name == "float8_e4m3fn":
        return _E4M3FN[bits]
    raise AssertionError(d.name)


def decode(raw, d, *, byteorder="little", policy="float32"):
    """A 1-D uint8 array of raw storage bytes as a 1-D native-order array of d's values (a view where
    no conversion is needed, so views of one storage keep sharing memory)."""
    bits = _bits(raw, d, byteorder)
    if not d.half:
        return _native(bits)
    keep = policy == "keep" or (policy == "auto" and (d.numpy is not None or optional("ml_dtypes") is not None))
    if not keep:
        return _widen(_native(bits), d)
    if d.numpy is not None:
        return _native(bits)
    return _native(bits).view(_ml_dtype(d))
