"""safetensors files through the `safetensors` package: it validates every header (offsets, sizes,
dtypes) and writes the files; pyfastnn decodes the validated byte ranges itself, because numpy has no
bfloat16 and the package's numpy API refuses it."""
from __future__ import annotations

import json
import struct

import numpy as np

from . import dtypes as _dt
from ._files import atomic_path
from ._optional import require
from .errors import CheckpointError
from .pickler import host_array

__all__ = ["read_safetensors", "write_safetensors", "safetensors_metadata"]


def _package(what):
    return require("safetensors", what)


def _validated_header(path, source):
    """The header, after the package has opened (and so validated) the file."""
    st = _package("reading safetensors files")
    try:
        with st.safe_open(path, framework="numpy") as f:
            keys = set(f.keys())
    except Exception as exc:        # SafetensorError and the OSErrors the package re-raises
        raise CheckpointError(f"{source}: not a valid safetensors file (truncated or corrupted: {exc})") from None
    with open(path, "rb") as fh:
        (n,) = struct.unpack("<Q", fh.read(8))
        header = json.loads(fh.read(n))
    metadata = header.pop("__metadata__", None) or {}
    if set(header) != keys:
        raise CheckpointError(f"{source}: corrupted safetensors header (its tensor names disagree with the "
                              f"safetensors package's reading)")
    return 8 + n, header, metadata


def safetensors_metadata(path):
    """The header's free-form '__metadata__' dict (str -> str)."""
    return _validated_header(path, path)[2]


def read_safetensors(path, *, source, policy, mmap):
    start, header, _ = _validated_header(path, source)
    out = {}
    if mmap:
        data = np.memmap(path, dtype=np.uint8, mode="c")
    else:
        fh = open(path, "rb")
    try:
        for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
            d = _dt.by_safetensors(info["dtype"])
            if d is None:
                raise CheckpointError(f"{source}: tensor '{name}' has dtype {info['dtype']}, which pyfastnn does "
                                      f"not read")
            begin, end = info["data_offsets"]
            if mmap:
                raw = data[start + begin:start + end]
            else:
                raw = np.empty(end - begin, np.uint8)
                fh.seek(start + begin)
                if fh.readinto(memoryview(raw)) != raw.nbytes:
                    raise CheckpointError(f"{source}: the file is truncated (tensor '{name}')")
            out[name] = _dt.decode(raw, d, policy=policy).reshape(info["shape"])
    finally:
        if not mmap:
            fh.close()
    return out


def write_safetensors(tensors, path, metadata=None):
    """Writes a flat {name: array} dict (numpy arrays, Tensors; bfloat16 as ml_dtypes arrays)."""
    st_numpy = require("safetensors.numpy", "writing safetensors files")
    if not isinstance(tensors, dict):
        raise TypeError(f"save_safetensors: 'tensors' must be a dict of arrays, got {type(tensors).__name__}")
    if metadata is not None and not (isinstance(metadata, dict) and
                                     all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items())):
        raise TypeError("save_safetensors: 'metadata' must be a dict of str to str")
    arrays = {}
    for name, value in tensors.items():
        if not isinstance(name, str):
            raise TypeError(f"save_safetensors: tensor names must be str, got {name!r}")
        host, _ = host_array(value)
        if host is None:
            raise TypeError(f"save_safetensors: '{name}' is a {type(value).__name__}, not an array")
        d = _dt.of_array(host.dtype) if not host.dtype.hasobject else None
        if d is None or d.safetensors is None:
            raise TypeError(f"save_safetensors: '{name}' has dtype {host.dtype}, which safetensors cannot hold")
        host = np.array(host, order="C", copy=None)
        arrays[name] = host if host.dtype.isnative or host.dtype.byteorder == "|" else host.astype(host.dtype.newbyteorder("="))

    with atomic_path(path, "save_safetensors") as tmp:
        st_numpy.save_file(arrays, tmp, metadata=metadata)
