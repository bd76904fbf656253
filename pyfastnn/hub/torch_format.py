"""PyTorch checkpoints without torch: the zip format of torch.save (archive/data.pkl plus one record per
storage) and the legacy format before it (magic number, protocol, sys_info, the object pickle, the
storage keys, raw storages), read into numpy arrays through the restricted unpickler.

Tensors come back as strided numpy views of their storage's bytes (dtype, shape, stride and offset
from the pickle, bounds checked), so tensors that shared a storage in torch share memory here too.
"""
from __future__ import annotations

import collections
import io
import pickle
import re
import struct
import zipfile

import numpy as np
from numpy.lib.stride_tricks import as_strided

from . import dtypes as _dt
from .errors import CheckpointError, UnsafeCheckpointError
from .unpickler import BASE_GLOBALS, Global, Marker, RestrictedUnpickler, refusal

__all__ = ["MAGIC_NUMBER", "PROTOCOL_VERSION", "zip_prefix", "read_zip", "read_pickle_stream"]

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001
_STORAGE_KEY = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")

# Globals torch checkpoints may hold that pyfastnn does not rebuild: a clear error, not "unsafe".
_UNSUPPORTED = {
    "torch._utils._rebuild_qtensor": "a quantized tensor",
    "torch._utils._rebuild_sparse_tensor": "a sparse tensor",
    "torch._utils._rebuild_sparse_csr_tensor": "a sparse tensor",
    "torch.serialization._get_layout": "a sparse tensor",
    "torch._utils._rebuild_nested_tensor": "a nested tensor",
    "torch._utils._rebuild_meta_tensor_no_storage": "a meta tensor (no data)",
    "torch._utils._rebuild_wrapper_subclass": "a tensor subclass",
    "torch._utils._rebuild_device_tensor_from_numpy": "a tensor of a non-CPU device type",
    "torch._utils._rebuild_device_tensor_from_cpu_tensor": "a tensor of a non-CPU device type",
}


class _Storage:
    """One storage's bytes (a 1-D uint8 array) and the dtype it was declared with (None: untyped)."""
    __slots__ = ("key", "nbytes", "raw", "dtype")

    def __init__(self, key, nbytes, raw, dtype):
        self.key, self.nbytes, self.raw, self.dtype = key, nbytes, raw, dtype

    def __repr__(self):
        return f"<storage {self.key}: {self.nbytes} bytes>"


_UNTYPED = "untyped"
TENSOR = Marker("torch.Tensor")
PARAMETER = Marker("torch.nn.parameter.Parameter")


def _static_torch_globals():
    table = {"torch.Tensor": TENSOR, "torch.nn.parameter.Parameter": PARAMETER}
    for d in (d for d in map(_dt.by_name, _dtype_names()) if d is not None):
        if d.storage:
            for mod in ("torch", "torch.cuda"):
                table[f"{mod}.{d.storage}"] = Marker(f"{mod}.{d.storage}", d)
        # torch.float32 & co. load as numpy dtypes where numpy has them, else as their names
        table[f"torch.{d.name}"] = np.dtype(d.numpy) if d.numpy else d.name
    for name in ("complex32", "qint8", "quint8", "qint32", "quint4x2", "quint2x4", "float8_e5m2fnuz",
                 "float8_e4m3fnuz", "float8_e8m0fnu", "float4_e2m1fn_x2", "bits8", "bits16"):
        table[f"torch.{name}"] = name
    for qual in ("torch.storage.UntypedStorage", "torch.UntypedStorage", "torch.cuda.UntypedStorage"):
        table[qual] = Marker(qual, _UNTYPED)
    return table


def _dtype_names():
    return ("float64", "float32", "float16", "bfloat16", "int64", "int32", "int16", "int8", "uint8", "bool",
            "complex64", "complex128", "uint16", "uint32", "uint64", "float8_e4m3fn", "float8_e5m2")


_STATIC_TORCH = _static_torch_globals()


def _as_int(value, what, source):
    if type(value) is not int or value < 0:
        raise CheckpointError(f"{source}: corrupted checkpoint ({what} {value!r} is not a non-negative int)")
    return value


def _int_tuple(value, what, source):
    if not isinstance(value, (tuple, list)):
        raise CheckpointError(f"{source}: corrupted checkpoint (tensor {what} {value!r} is not a tuple)")
    return tuple(_as_int(v, f"tensor {what} entry", source) for v in value)


class TorchReader:
    """The state of one load: storages by key, their decoded arrays, and the globals table whose
    rebuild functions turn (storage, offset, size, stride) into numpy views."""

    def __init__(self, source, policy, byteorder="little"):
        self.source, self.policy, self.byteorder = source, policy, byteorder
        self.storages = {}
        self._decoded = {}
        self.rebuilders = {}
        add = self._add_global
        add("torch._utils._rebuild_tensor", self._rebuild_tensor)
        add("torch._utils._rebuild_tensor_v2", self._rebuild_tensor_v2)
        add("torch._utils._rebuild_tensor_v3", self._rebuild_tensor_v3)
        add("torch._utils._rebuild_parameter", self._rebuild_parameter)
        add("torch._utils._rebuild_parameter_with_state", self._rebuild_parameter)
        add("torch._tensor._rebuild_from_type_v2", self._rebuild_from_type_v2)
        add("torch.Size", self._size)
        add("torch.device", self._device)
        self.globals = {**BASE_GLOBALS, **_STATIC_TORCH, **self.rebuilders}
        self.globals["torch.nn.parameter.Parameter"] = Global("torch.nn.parameter.Parameter", None,
                                                              self._rebuild_parameter)

    def _add_global(self, qualname, fn):
        self.rebuilders[qualname] = Global(qualname, fn)

    # -------------------------------------------------------------- tensors
    def tensor(self, storage, dtype, offset, size, stride):
        src = self.source
        if type(storage) is not _Storage:
            raise CheckpointError(f"{src}: corrupted checkpoint (a tensor's storage is a {type(storage).__name__})")
        if dtype is None:
            raise CheckpointError(f"{src}: corrupted checkpoint (a tensor on an untyped storage has no dtype)")
        offset = _as_int(offset, "storage offset", src)
        size, stride = _int_tuple(size, "size", src), _int_tuple(stride, "stride", src)
        if len(size) != len(stride):
            raise CheckpointError(f"{src}: corrupted checkpoint (tensor size {size} and stride {stride} differ "
                                  f"in length)")
        base = self._decode(storage, dtype)
        if 0 in size:
            return base[:0].reshape(size).copy()
        last = offset + sum((n - 1) * s for n, s in zip(size, stride))
        if last >= base.shape[0]:
            raise CheckpointError(f"{src}: corrupted checkpoint (a tensor of size {size}, stride {stride}, "
                                  f"offset {offset} reaches element {last} of storage '{storage.key}', which "
                                  f"holds {base.shape[0]} {dtype.name} elements)")
        return as_strided(base[offset:], shape=size, strides=tuple(s * base.itemsize for s in stride))

    def _decode(self, storage, dtype):
        key = (storage.key, dtype.name)
        if key not in self._decoded:
            raw = storage.raw
            raw = raw[: raw.shape[0] - raw.shape[0] % dtype.itemsize]
            self._decoded[key] = _dt.decode(raw, dtype, byteorder=self.byteorder, policy=self.policy)
        return self._decoded[key]

    def _rebuild_tensor(self, storage, storage_offset, size, stride):
        return self.tensor(storage, storage.dtype if type(storage) is _Storage else None, storage_offset, size,
                           stride)

    def _rebuild_tensor_v2(self, storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                           metadata=None):
        return _apply_metadata(self._rebuild_tensor(storage, storage_offset, size, stride), metadata)

    def _rebuild_tensor_v3(self, storage, storage_offset, size, stride, requires_grad, backward_hooks, dtype,
                           metadata=None):
        name = dtype.name if isinstance(dtype, np.dtype) else dtype
        entry = _dt.by_name(name) if isinstance(name, str) else None
        if entry is None:
            raise CheckpointError(f"{self.source}: holds a tensor of dtype {name!r}, which pyfastnn does not read")
        return _apply_metadata(self.tensor(storage, entry, storage_offset, size, stride), metadata)

    def _rebuild_parameter(self, data, requires_grad=True, backward_hooks=None, state=None):
        if not isinstance(data, np.ndarray):
            raise CheckpointError(f"{self.source}: corrupted checkpoint (a Parameter of a {type(data).__name__})")
        return data

    def _rebuild_from_type_v2(self, func, new_type, args, state):
        fn = func.fn if type(func) is Global else func
        if fn not in {g.fn for g in self.rebuilders.values()} or \
                getattr(new_type, "qualname", None) not in (TENSOR.qualname, PARAMETER.qualname):
            raise UnsafeCheckpointError(f"{self.source}: refused torch._tensor._rebuild_from_type_v2 of "
                                        f"{func!r} as {new_type!r}; nothing from the file was run")
        if type(args) is not tuple:
            raise CheckpointError(f"{self.source}: corrupted checkpoint (rebuild arguments are not a tuple)")
        return fn(*args)

    def _size(self, dims=()):
        return _int_tuple(dims, "torch.Size", self.source)

    def _device(self, kind, index=None):
        if not isinstance(kind, str) or not (index is None or type(index) is int):
            raise CheckpointError(f"{self.source}: corrupted checkpoint (torch.device({kind!r}, {index!r}))")
        return kind if index is None else f"{kind}:{index}"

    # -------------------------------------------------------------- storages
    def storage_type(self, marker):
        if type(marker) is not Marker or not (isinstance(marker.payload, _dt.DType) or marker.payload == _UNTYPED):
            raise CheckpointError(f"{self.source}: corrupted checkpoint (storage type {marker!r})")
        return None if marker.payload == _UNTYPED else marker.payload

    def storage_key(self, key):
        key = key.decode("ascii") if isinstance(key, bytes) else key
        if not isinstance(key, str) or not _STORAGE_KEY.match(key):
            raise CheckpointError(f"{self.source}: corrupted checkpoint (storage key {key!r})")
        return key


def _apply_metadata(arr, metadata):
    # torch stores conjugated/negated views lazily as bits on the tensor; numpy has none
    if metadata:
        if not isinstance(metadata, dict):
            raise CheckpointError("corrupted tensor metadata")
        if metadata.get("conj"):
            arr = np.conj(arr)
        if metadata.get("neg"):
            arr = np.negative(arr)
    return arr


def _pid_name(pid):
    name = pid[0] if isinstance(pid, tuple) and pid else None
    return name.decode("ascii") if isinstance(name, bytes) else name


class _FullUnpickler(pickle.Unpickler):
    """weights_only=False: Python's own unpickler (it runs what the file names, as the caller asked),
    with torch's names mapped to pyfastnn's rebuild functions so torch itself is never imported."""

    def __init__(self, fp, reader, persistent_load):
        super().__init__(fp, encoding="utf-8")
        self._reader, self._persistent = reader, persistent_load

    def find_class(self, module, name):
        qualname = f"{module}.{name}"
        if module == "torch" or module.startswith("torch."):
            table = _checked(self._reader.globals, self._reader.source)
            if qualname not in table:       # (raises itself for sparse, quantized, ... tensors)
                raise UnsafeCheckpointError(
                    f"{self._reader.source}: holds '{qualname}', a PyTorch object pyfastnn cannot build without "
                    f"torch (save a state dict, e.g. torch.save(model.state_dict(), path))")
            entry = table[qualname]
            if type(entry) is Global:
                return PARAMETER if entry.fn is None else entry.fn
            return entry
        return super().find_class(module, name)

    def persistent_load(self, pid):
        return self._persistent(pid)


def _unpickle(fp, reader, persistent_load, weights_only, **kw):
    if weights_only:
        return RestrictedUnpickler(fp, source=reader.source, globals=_checked(reader.globals, reader.source),
                                   persistent_load=persistent_load, **kw).load()
    try:
        return _FullUnpickler(fp, reader, persistent_load).load()
    except (CheckpointError, UnsafeCheckpointError):
        raise
    except (EOFError, pickle.UnpicklingError) as exc:
        raise CheckpointError(f"{reader.source}: corrupted or truncated pickle ({exc})") from None


class _CheckedGlobals(dict):
    """The globals table, with torch's known-but-unsupported tensor kinds reported as such."""

    def __init__(self, table, source):
        super().__init__(table)
        self.source = source

    def __contains__(self, qualname):
        if qualname in _UNSUPPORTED:
            raise CheckpointError(f"{self.source}: holds {_UNSUPPORTED[qualname]} ({qualname}); pyfastnn reads "
                                  f"dense tensors only")
        if qualname == "torch.storage._load_from_bytes":
            raise refusal(self.source, qualname)
        return super().__contains__(qualname)


def _checked(table, source):
    return _CheckedGlobals(table, source)


# ------------------------------------------------------------------ zip format
def zip_prefix(names):
    """The record prefix ('archive/') of a torch zip, or None when the zip is not one."""
    hits = [n[: -len("data.pkl")] for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
    return hits[0] if len(hits) == 1 else None


def _data_offset(fh, info, size, source):
    fh.seek(info.header_offset)
    header = fh.read(30)
    if len(header) != 30 or header[:4] != b"PK\x03\x04":
        raise CheckpointError(f"{source}: corrupted zip archive (bad local header for '{info.filename}')")
    n, e = struct.unpack("<HH", header[26:30])
    start = info.header_offset + 30 + n + e
    if start + info.file_size > size:
        raise CheckpointError(f"{source}: the file is truncated (record '{info.filename}' runs past its end)")
    return start


def read_zip(path, zf, prefix, *, source, policy, weights_only, mmap):
    """The object a torch zip checkpoint holds (zf: an open ZipFile on path)."""
    names = set(zf.namelist())
    byteorder = "little"
    if prefix + "byteorder" in names:
        byteorder = zf.read(prefix + "byteorder").decode("ascii", "replace").strip()
        if byteorder not in ("little", "big"):
            raise CheckpointError(f"{source}: corrupted checkpoint (byteorder record {byteorder!r})")
    reader = TorchReader(source, policy, byteorder)
    keep = TorchReader(source, "keep", byteorder)       # pyfastnn's own pickled objects keep their dtypes
    mapped = np.memmap(path, dtype=np.uint8, mode="c") if mmap else None

    def fetch(key, nbytes):
        name = f"{prefix}data/{key}"
        if name not in names:
            raise CheckpointError(f"{source}: storage record '{name}' is missing from the archive (the file is "
                                  f"truncated or was rebuilt without it)")
        info = zf.getinfo(name)
        if info.file_size != nbytes:
            raise CheckpointError(f"{source}: storage record '{name}' holds {info.file_size} bytes, the "
                                  f"checkpoint's tensors need {nbytes}")
        if mapped is not None and info.compress_type == zipfile.ZIP_STORED:
            with open(path, "rb") as fh:
                start = _data_offset(fh, info, mapped.shape[0], source)
            return mapped[start:start + nbytes]
        raw = np.empty(nbytes, np.uint8)
        view, pos = memoryview(raw), 0
        with zf.open(info) as r:
            while pos < nbytes:
                chunk = r.read(min(1 << 24, nbytes - pos))
                if not chunk:
                    raise CheckpointError(f"{source}: the file is truncated (record '{name}')")
                view[pos:pos + len(chunk)] = chunk
                pos += len(chunk)
            r.read(1)       # reach the end, where zipfile checks the CRC
        return raw

    def persistent_load(pid):
        kind = _pid_name(pid)
        if kind == "storage" and len(pid) == 5:
            _, stype, key, _location, numel = pid
            dtype = reader.storage_type(stype)
            key = reader.storage_key(key)
            numel = _as_int(numel, "storage size", source)
            storage = reader.storages.get(key)
            if storage is None:
                nbytes = numel * (dtype.itemsize if dtype else 1)
                storage = reader.storages[key] = _Storage(key, nbytes, fetch(key, nbytes), dtype)
            return storage
        if kind == "pyfastnn.array" and len(pid) == 4:      # what save(..., pickle=True) writes
            _, key, dtype_name, shape = pid
            key, dtype = reader.storage_key(key), _dt.by_name(dtype_name)
            shape = _int_tuple(shape, "shape", source)
            if dtype is None:
                raise CheckpointError(f"{source}: corrupted checkpoint (array dtype {dtype_name!r})")
            numel = int(np.prod(shape, dtype=np.int64))
            storage = reader.storages.get(key)
            if storage is None:
                nbytes = numel * dtype.itemsize
                storage = reader.storages[key] = _Storage(key, nbytes, fetch(key, nbytes), dtype)
            return keep.tensor(storage, dtype, 0, shape, c_strides(shape))
        raise CheckpointError(f"{source}: unsupported persistent id {pid!r} in data.pkl")

    try:
        data = zf.read(prefix + "data.pkl")
        return _unpickle(io.BytesIO(data), reader, persistent_load, weights_only)
    except zipfile.BadZipFile as exc:
        raise CheckpointError(f"{source}: corrupted zip archive ({exc})") from None


def c_strides(shape):
    """Element strides of a C-contiguous array of this shape."""
    strides, step = [], 1
    for n in reversed(shape):
        strides.append(step)
        step *= max(n, 1)
    return tuple(reversed(strides))


# ------------------------------------------------------------------ legacy format and raw pickles
def read_pickle_stream(fp, *, source, policy, weights_only, size):
    """A file that starts with a pickle: torch's legacy format when the first pickle is its magic
    number, otherwise a plain pickle (pyfastnn's files before the zip format, numpy objects)."""
    reader = TorchReader(source, policy)

    def no_persistent(pid):
        raise CheckpointError(f"{source}: unexpected persistent id {pid!r} in a plain pickle")

    first = _unpickle(fp, reader, no_persistent, weights_only, size=size)
    if type(first) is int and first == MAGIC_NUMBER:
        return _read_legacy(fp, reader, weights_only, size)
    return first


def _read_legacy(fp, reader, weights_only, size):
    source = reader.source

    def small():
        return RestrictedUnpickler(fp, source=source, size=size).load()

    if small() != PROTOCOL_VERSION:
        raise CheckpointError(f"{source}: unsupported legacy PyTorch protocol version")
    if not isinstance(small(), dict):
        raise CheckpointError(f"{source}: corrupted legacy PyTorch checkpoint (sys_info is not a dict)")
    start = fp.tell()

    declared = {}                       # root key -> (dtype, numel)

    def declare(pid):
        if _pid_name(pid) != "storage" or len(pid) != 6:
            if _pid_name(pid) == "module":
                return None             # a whole nn.Module: its class is refused in the real pass
            raise CheckpointError(f"{source}: unsupported persistent id {pid!r}")
        _, stype, key, _location, numel, _view = pid
        dtype, key = reader.storage_type(stype), reader.storage_key(key)
        numel = _as_int(numel, "storage size", source)
        if declared.setdefault(key, (dtype, numel)) != (dtype, numel):
            raise CheckpointError(f"{source}: corrupted checkpoint (storage '{key}' declared twice differently)")
        return None

    # Pass 1 evaluates nothing: it only learns which storages follow the pickle, and their dtypes.
    RestrictedUnpickler(fp, source=source, globals=_checked(reader.globals, source), persistent_load=declare,
                        size=size, dry_run=True, allow_unknown=not weights_only).load()
    keys = small()
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise CheckpointError(f"{source}: corrupted legacy PyTorch checkpoint (storage key list)")
    for key in keys:
        if key not in declared:
            raise CheckpointError(f"{source}: corrupted checkpoint (storage '{key}' is not used by the pickle)")
        dtype, numel = declared[key]
        itemsize = dtype.itemsize if dtype else 1
        header = fp.read(8)
        if len(header) != 8:
            raise CheckpointError(f"{source}: the file is truncated (storage '{key}' is missing)")
        (count,) = struct.unpack("<q", header)
        if count != numel:
            raise CheckpointError(f"{source}: corrupted checkpoint (storage '{key}' holds {count} elements, "
                                  f"the pickle says {numel})")
        nbytes = numel * itemsize
        if nbytes > size - fp.tell():
            raise CheckpointError(f"{source}: the file is truncated (storage '{key}' needs {nbytes} bytes, "
                                  f"{size - fp.tell()} are left)")
        raw = np.empty(nbytes, np.uint8)
        if fp.readinto(memoryview(raw)) != nbytes:
            raise CheckpointError(f"{source}: the file is truncated (storage '{key}')")
        reader.storages[key] = _Storage(key, nbytes, raw, dtype)
    missing = sorted(set(declared) - set(keys))
    if missing:
        raise CheckpointError(f"{source}: corrupted checkpoint (storages {missing} are missing)")

    def storage_of(pid):
        if _pid_name(pid) != "storage" or len(pid) != 6:
            raise CheckpointError(f"{source}: unsupported persistent id {pid!r}")
        _, stype, key, _location, _numel, view = pid
        root = reader.storages[reader.storage_key(key)]
        if view is None:
            return root
        if not isinstance(view, tuple) or len(view) != 3:
            raise CheckpointError(f"{source}: corrupted checkpoint (storage view {view!r})")
        view_key = "view:" + reader.storage_key(view[0])
        if view_key not in reader.storages:
            itemsize = root.dtype.itemsize if root.dtype else 1
            begin = _as_int(view[1], "view offset", source) * itemsize
            end = begin + _as_int(view[2], "view size", source) * itemsize
            if end > root.nbytes:
                raise CheckpointError(f"{source}: corrupted checkpoint (a storage view runs past storage '{key}')")
            reader.storages[view_key] = _Storage(view_key, end - begin, root.raw[begin:end], root.dtype)
        return reader.storages[view_key]

    fp.seek(start)
    return _unpickle(fp, reader, storage_of, weights_only, size=size)


# ------------------------------------------------------------------ writing the zip format
_ALIGN = 64


def zip_records(data_pkl, storages):
    """The records of a torch zip checkpoint, in torch.save's order."""
    return ([("data.pkl", data_pkl), (".format_version", b"1"), (".storage_alignment", str(_ALIGN).encode()),
             ("byteorder", b"little")]
            + [(f"data/{key}", raw) for key, raw in storages]
            + [("version", b"3\n")])


def write_zip(fh, records, prefix="archive"):
    """Writes records [(name, bytes or 1-D uint8 array)] uncompressed, each one's data starting at a
    multiple of 64 bytes (padding in an 'FB' extra field, as torch does), so storages can be mapped."""
    with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, data in records:
            info = zipfile.ZipInfo(f"{prefix}/{name}", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED
            nbytes = len(data) if isinstance(data, bytes) else data.nbytes
            info.file_size = nbytes
            zip64 = nbytes * 1.05 > zipfile.ZIP64_LIMIT      # zipfile's own rule for a zip64 local header
            header = 30 + len(info.filename.encode("utf-8")) + 4 + (20 if zip64 else 0)
            pad = -(fh.tell() + header) % _ALIGN
            info.extra = struct.pack("<HH", 0x4246, pad) + b"Z" * pad
            with zf.open(info, "w", force_zip64=zip64) as w:
                view = memoryview(data).cast("B") if not isinstance(data, bytes) else memoryview(data)
                for pos in range(0, nbytes, 1 << 26):
                    w.write(view[pos:pos + (1 << 26)])
