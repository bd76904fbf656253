"""Writes the pickle of a torch zip checkpoint (data.pkl) the way torch.save does — protocol 2, tensors
as torch._utils._rebuild_tensor_v2 over persistent storage ids — for plain containers of arrays,
naming torch's globals as text so torch is never imported; torch.load(weights_only=True) reads it.

Objects outside that set (a Module, a custom class) are pickled by Python's own pickler only on
request (pickle=True), with arrays still written as raw storage records.
"""
from __future__ import annotations

import collections
import io
import pickle
import struct
import sys

import numpy as np

from . import dtypes as _dt
from ..tensor import Tensor
from .torch_format import c_strides

__all__ = ["NotWeightsOnly", "plan_storages", "dump_weights_pickle", "dump_object_pickle", "host_array"]


class NotWeightsOnly(TypeError):
    """An object a weights-only file cannot hold; `where` is its place in the saved structure."""

    def __init__(self, where, obj):
        self.where, self.obj = where, obj
        super().__init__(f"{where} is a {type(obj).__module__}.{type(obj).__qualname__}")


def host_array(x):
    """A numpy array for an array-like a checkpoint may hold (numpy, pyfastnn Tensor, CuPy), else None,
    with whether it requires grad."""
    if isinstance(x, Tensor):
        return np.asarray(x.numpy()), bool(x.requires_grad)
    if isinstance(x, np.ndarray):
        return x, False
    if type(x).__module__.startswith("cupy") and hasattr(x, "get"):
        return x.get(), False
    return None, False


def _little_endian(a):
    return a.dtype.byteorder == "<" or a.dtype.byteorder == "|" or (a.dtype.byteorder == "=" and
                                                                    sys.byteorder == "little")


class _Spec:
    """Where one saved array lives: storage key, dtype, element offset, shape and element strides."""
    __slots__ = ("key", "dtype", "offset", "shape", "strides", "requires_grad")

    def __init__(self, key, dtype, offset, shape, strides, requires_grad):
        self.key, self.dtype, self.offset = key, dtype, offset
        self.shape, self.strides, self.requires_grad = shape, strides, requires_grad


class StoragePlan:
    """The arrays of an object, each mapped to a storage record; arrays that view one buffer and
    together cover it share one storage (tied weights, a.T beside a), as torch.save writes them."""

    def __init__(self):
        self.specs = {}         # id(saved object) -> _Spec
        self.records = []       # (key, 1-D uint8 array)
        self.nbytes = {}        # key -> bytes
        self._alive = []        # the objects whose ids key `specs`

    def _record(self, data):
        key = str(len(self.records))
        raw = data.reshape(-1, order="A").view(np.uint8)
        self.records.append((key, raw))
        self.nbytes[key] = raw.nbytes
        return key

    def _add(self, obj, spec):
        self.specs[id(obj)] = spec
        self._alive.append(obj)

    def build(self, arrays):
        """arrays: [(saved object, host array, DType, requires_grad)] in the order they appear."""
        groups = collections.OrderedDict()
        for obj, host, d, rg in arrays:
            root = _root(host)
            if _views(host, root):
                groups.setdefault(id(root), (root, []))[1].append((obj, host, d, rg))
            else:
                groups[("own", id(obj))] = (None, [(obj, host, d, rg)])
        for root, members in groups.values():
            distinct = {id(h): h for _, h, _, _ in members}
            if root is not None and sum(h.nbytes for h in distinct.values()) >= root.nbytes:
                key = self._record(root)
                for obj, host, d, rg in members:
                    self._add(obj, _Spec(key, d, (host.ctypes.data - root.ctypes.data) // host.itemsize, host.shape,
                                         tuple(s // host.itemsize for s in host.strides), rg))
            else:       # a small view of a large buffer is written alone, not with the whole buffer
                for obj, host, d, rg in members:
                    self._add(obj, _Spec(self._record(_own_copy(host)), d, 0, host.shape, c_strides(host.shape), rg))
        return self


def _root(a):
    while isinstance(a.base, np.ndarray):
        a = a.base
    return a


def _views(host, root):
    """Whether host can be written as a strided view into root's memory."""
    return (host.size > 0 and root.dtype == host.dtype and _little_endian(host)
            and (root.flags.c_contiguous or root.flags.f_contiguous)
            and all(s >= 0 and s % host.itemsize == 0 for s in host.strides)
            and (host.ctypes.data - root.ctypes.data) % host.itemsize == 0
            and host.ctypes.data >= root.ctypes.data)


def _own_copy(a):
    c = a if a.flags.c_contiguous else np.array(a, order="C", copy=True)
    return c if _little_endian(c) else c.astype(c.dtype.newbyteorder("<"))


_SCALARS = (str, bytes, bytearray, int, float, complex, bool, type(None))


def _key_ok(k):
    return isinstance(k, (str, int, float, bool, type(None))) or (isinstance(k, tuple) and all(map(_key_ok, k)))


def plan_storages(obj):
    """Checks that obj holds only what a weights-only file may (raising NotWeightsOnly naming the first
    thing that is not) and plans its arrays' storages."""
    arrays, seen = [], set()

    def walk(x, where):
        if isinstance(x, _SCALARS) or isinstance(x, np.generic) and x.dtype.kind in "biufcSU":
            return
        if isinstance(x, np.dtype):
            if _dt.of_array(x) is None:
                raise NotWeightsOnly(where, x)
            return
        if id(x) in seen:
            return
        host, rg = host_array(x)
        if host is not None:
            d = _dt.of_array(host.dtype) if not host.dtype.hasobject else None
            if d is None:
                raise NotWeightsOnly(f"{where} (an array of dtype {host.dtype})", x)
            seen.add(id(x))
            arrays.append((x, host, d, rg and host.dtype.kind in "fc"))
            return
        if isinstance(x, dict):
            seen.add(id(x))
            for k, v in x.items():
                if not _key_ok(k):
                    raise NotWeightsOnly(f"{where} key {k!r}", k)
                walk(v, f"{where}[{k!r}]")
            return
        if isinstance(x, (list, tuple)):
            seen.add(id(x))
            for i, v in enumerate(x):
                walk(v, f"{where}[{i}]")
            return
        if type(x) is set:
            for v in x:
                if not isinstance(v, _SCALARS):
                    raise NotWeightsOnly(f"{where} item", v)
            return
        raise NotWeightsOnly(where, x)

    walk(obj, "the object")
    return StoragePlan().build(arrays)


# ---------------------------------------------------------------------- protocol-2 emission
_BINPUT, _LONG_BINPUT, _BINGET, _LONG_BINGET = b"q", b"r", b"h", b"j"


class _WeightsPickler:
    def __init__(self, plan):
        self.plan, self.out, self.memo, self.in_progress = plan, io.BytesIO(), {}, set()
        self.write = self.out.write

    def dump(self, obj):
        self.write(b"\x80\x02")
        self.save(obj)
        self.write(b".")
        return self.out.getvalue()

    def _put(self, key):
        i = self.memo[key] = len(self.memo)
        self.write(_BINPUT + bytes([i]) if i < 256 else _LONG_BINPUT + struct.pack("<I", i))

    def _get(self, key):
        i = self.memo[key]
        self.write(_BINGET + bytes([i]) if i < 256 else _LONG_BINGET + struct.pack("<I", i))

    def _global(self, module, name):
        key = ("global", module, name)
        if key in self.memo:
            return self._get(key)
        self.write(b"c" + f"{module}\n{name}\n".encode("ascii"))
        self._put(key)

    def _int(self, x):
        if 0 <= x < 256:
            self.write(b"K" + bytes([x]))
        elif 0 <= x < 65536:
            self.write(b"M" + struct.pack("<H", x))
        elif -(1 << 31) <= x < (1 << 31):
            self.write(b"J" + struct.pack("<i", x))
        else:
            data = pickle.encode_long(x)
            self.write((b"\x8a" + bytes([len(data)]) if len(data) < 256 else b"\x8b" + struct.pack("<i", len(data)))
                       + data)

    def _str(self, s):
        data = s.encode("utf-8", "surrogatepass")
        self.write(b"X" + struct.pack("<I", len(data)) + data)

    def _tuple(self, items):
        if not items:
            return self.write(b")")
        if len(items) > 3:
            self.write(b"(")
        for v in items:
            self.save(v)
        self.write(b"t" if len(items) > 3 else b"\x85\x86\x87"[len(items) - 1:len(items)])

    def save(self, x):
        if x is None:
            return self.write(b"N")
        if x is True or x is False:
            return self.write(b"\x88" if x else b"\x89")
        if isinstance(x, np.generic):
            return self.save(x.item())
        if isinstance(x, int):
            return self._int(int(x))
        if isinstance(x, float):
            return self.write(b"G" + struct.pack(">d", x))
        if isinstance(x, str):
            return self._str(str(x))
        if isinstance(x, complex):
            self._global("builtins", "complex")
            self._tuple((x.real, x.imag))
            return self.write(b"R")
        if isinstance(x, (bytes, bytearray)):
            if isinstance(x, bytearray):
                self._global("builtins", "bytearray")
            self._global("_codecs", "encode")           # protocol 2 spells bytes this way
            self._tuple((bytes(x).decode("latin1"), "latin1"))
            self.write(b"R")
            if isinstance(x, bytearray):
                self.write(b"\x85R")
            return None
        if isinstance(x, np.dtype):
            return self._global("torch", _dt.of_array(x).name)
        key = id(x)
        if key in self.memo:
            return self._get(key)
        spec = self.plan.specs.get(key)
        if spec is not None:
            return self._tensor(key, spec)
        if isinstance(x, dict):
            if isinstance(x, collections.OrderedDict):
                self._global("collections", "OrderedDict")
                self.write(b")R")
            else:
                self.write(b"}")
            self._put(key)
            if x:
                self.write(b"(")
                for k, v in x.items():
                    self.save(k)
                    self.save(v)
                self.write(b"u")
            return None
        if isinstance(x, list):
            self.write(b"]")
            self._put(key)
            if x:
                self.write(b"(")
                for v in x:
                    self.save(v)
                self.write(b"e")
            return None
        if isinstance(x, tuple):
            if key in self.in_progress:
                raise ValueError("save: a tuple that contains itself cannot be saved")
            self.in_progress.add(key)
            self._tuple(tuple(x))
            self.in_progress.discard(key)
            return self._put(key)
        if type(x) is set:
            self._global("builtins", "set")
            self.write(b"](")
            for v in x:
                self.save(v)
            self.write(b"e\x85R")
            return None
        raise AssertionError(type(x))       # plan_storages vetted the object

    def _tensor(self, key, spec):
        d = spec.dtype
        typed = d.storage is not None
        self._global("torch._utils", "_rebuild_tensor_v2" if typed else "_rebuild_tensor_v3")
        self.write(b"((")
        self._str("storage")
        if typed:
            self._global("torch", d.storage)
        else:
            self._global("torch.storage", "UntypedStorage")
        self._str(spec.key)
        self._str("cpu")
        nbytes = self.plan.nbytes[spec.key]
        self._int(nbytes // d.itemsize if typed else nbytes)
        self.write(b"tQ")
        self._int(spec.offset)
        self._tuple(tuple(spec.shape))
        self._tuple(tuple(spec.strides))
        self.write(b"\x88" if spec.requires_grad else b"\x89")
        self._global("collections", "OrderedDict")
        self.write(b")R")
        if not typed:
            self._global("torch", d.name)
        self.write(b"tR")
        self._put(key)


def dump_weights_pickle(obj, plan):
    """data.pkl for an object plan_storages accepted."""
    return _WeightsPickler(plan).dump(obj)


class _ObjectPickler(pickle.Pickler):
    def __init__(self, fh, records):
        super().__init__(fh, protocol=4)
        self.records, self.keys, self.alive = records, {}, []

    def persistent_id(self, obj):
        if not isinstance(obj, np.ndarray) or obj.dtype.hasobject:
            return None
        d = _dt.of_array(obj.dtype)
        if d is None:
            return None
        if id(obj) not in self.keys:
            own = _own_copy(obj)
            key = self.keys[id(obj)] = str(len(self.records))
            self.records.append((key, own.reshape(-1).view(np.uint8)))
            self.alive.append(obj)
        return ("pyfastnn.array", self.keys[id(obj)], d.name, tuple(obj.shape))


def dump_object_pickle(obj):
    """data.pkl by Python's pickler (any object; arrays as storage records) and the records."""
    records, buf = [], io.BytesIO()
    _ObjectPickler(buf, records).dump(obj)
    return buf.getvalue(), records
