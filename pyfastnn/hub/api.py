"""pyfastnn.save / pyfastnn.load: one entry for every checkpoint format, told apart by content."""
from __future__ import annotations

import contextlib
import errno
import struct
import warnings
import zipfile

import numpy as np

from . import dtypes as _dt
from . import torch_format as _torch
from ._files import atomic_write, check_file, fspath
from .errors import CheckpointError, UnsafeCheckpointError
from .pickler import NotWeightsOnly, dump_object_pickle, dump_weights_pickle, plan_storages
from .safetensors_format import read_safetensors

__all__ = ["load", "save", "detect_format"]

_NPY_MAGIC = b"\x93NUMPY"
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def detect_format(path):
    """'torch-zip', 'torch-pickle' (legacy torch or a plain pickle), 'safetensors', 'npz' or 'npy',
    from the file's first bytes (and a zip's record names); CheckpointError for anything else."""
    path = fspath(path, "detect_format")
    size = check_file(path, "load", _DIR_HINT)
    with open(path, "rb") as fh:
        head = fh.read(16)
    return _detect(path, head, size)


_DIR_HINT = " (for a Hugging Face model directory use pyfastnn.hub.load_hf_weights(directory))"


@contextlib.contextmanager
def _zip_errors(path):
    """zipfile's many ways of failing on a damaged archive, as one clear CheckpointError."""
    try:
        yield
    except (CheckpointError, UnsafeCheckpointError, MemoryError):
        raise
    except zipfile.BadZipFile as exc:
        raise CheckpointError(f"{path}: truncated or corrupted zip archive ({exc})") from None
    except (zipfile.LargeZipFile, NotImplementedError, UnicodeDecodeError, EOFError, ValueError, RuntimeError,
            struct.error, OSError) as exc:
        if isinstance(exc, OSError) and not isinstance(exc, (EOFError,)) and exc.errno not in (None, errno.EINVAL):
            raise       # a real I/O failure (permissions, disk), not damage
        raise CheckpointError(f"{path}: corrupted zip archive ({type(exc).__name__}: {exc})") from None


def _detect(path, head, size):
    if size == 0:
        raise CheckpointError(f"{path}: the file is empty")
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        try:
            with _zip_errors(path), zipfile.ZipFile(path) as zf:
                names = zf.namelist()
        except CheckpointError:
            raise CheckpointError(f"{path}: truncated or corrupted zip archive (its directory at the end of the "
                                  f"file is missing or damaged)") from None
        if _torch.zip_prefix(names) is not None:
            prefix = _torch.zip_prefix(names)
            if prefix + "constants.pkl" in names or any(n.startswith(prefix + "code/") for n in names):
                raise CheckpointError(f"{path}: a TorchScript archive (torch.jit.save); pyfastnn reads "
                                      f"checkpoints saved with torch.save, e.g. torch.save(model.state_dict(), path)")
            return "torch-zip"
        if names and all(n.endswith(".npy") for n in names):
            return "npz"
        shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
        raise CheckpointError(f"{path}: a zip archive that is neither a PyTorch checkpoint (no archive/data.pkl) "
                              f"nor an npz file (it holds: {shown or 'nothing'})")
    if head.startswith(_NPY_MAGIC):
        return "npy"
    if head.startswith(_HDF5_MAGIC):
        raise CheckpointError(f"{path}: an HDF5 file (Keras weights?): pyfastnn.load reads PyTorch, safetensors "
                              f"and numpy files; Keras weights load through the Keras front-end")
    # safetensors: a little-endian header length, then the JSON header (whose length may well start
    # with the byte 0x80 a pickle starts with)
    header_len = struct.unpack("<Q", head[:8])[0] if len(head) >= 9 and head[8:9] == b"{" else None
    if header_len is not None and header_len <= size - 8:
        return "safetensors"
    if head[:1] == b"\x80" and len(head) > 1 and head[1] <= 5:
        return "torch-pickle"
    if header_len is not None:
        raise CheckpointError(f"{path}: a truncated safetensors file (its header says {header_len} bytes, the file "
                              f"has {size - 8} after the length)")
    if size > 262 and _is_tar(path):
        raise CheckpointError(f"{path}: PyTorch's tar format from before version 0.4, which pyfastnn does not read")
    raise CheckpointError(f"{path}: not a checkpoint pyfastnn reads (it starts with {head[:8]!r}); expected a "
                          f"PyTorch checkpoint (torch.save), safetensors, npz or npy file")


def _is_tar(path):
    with open(path, "rb") as fh:
        fh.seek(257)
        return fh.read(5) == b"ustar"


def _check_map_location(map_location):
    if map_location is None or map_location == "cpu":
        return
    if isinstance(map_location, dict) and all(v == "cpu" for v in map_location.values()):
        return
    raise ValueError(f"load: map_location={map_location!r}: pyfastnn.load returns numpy arrays, which live on "
                     f"the CPU (use None or 'cpu'; move arrays to a GPU afterwards, e.g. pyfastnn.tensor(a).to('cuda'))")


def _policy(keep_dtype):
    if keep_dtype in (True, False):
        return "keep" if keep_dtype else "float32"
    if keep_dtype in _dt.POLICIES:
        return keep_dtype
    raise ValueError(f"load: keep_dtype must be True or False, got {keep_dtype!r}")


def load(path, map_location=None, *, weights_only=True, mmap=None, keep_dtype=False):
    """Reads a checkpoint into numpy arrays, in the structure it was saved with.

    Formats, told from the content: PyTorch's zip (torch.save) and legacy (pre-1.6) checkpoints,
    safetensors, npz, npy, and pyfastnn's own files (what pyfastnn.save writes, which is torch's zip
    format). float16/bfloat16/float8 data comes back as float32 unless keep_dtype=True (float16 stays;
    bfloat16/float8 come back as ml_dtypes arrays, which needs that package) or keep_dtype='auto'
    (keeps what numpy, or an installed ml_dtypes, can hold).

    weights_only=True (the default) builds only tensors, numpy arrays, numbers, strings and plain
    containers and refuses any other global in a pickle, before anything from the file runs.
    weights_only=False unpickles fully, running code from the file: only for files you trust.
    mmap=True maps storages from the file instead of reading them (zip checkpoints, safetensors, npy).
    map_location is accepted for torch compatibility: arrays are always on the CPU.
    """
    path = fspath(path, "load")
    if not isinstance(weights_only, bool):
        raise TypeError(f"load: weights_only must be a bool, got {type(weights_only).__name__}")
    if mmap not in (None, True, False):
        raise TypeError(f"load: mmap must be a bool or None, got {mmap!r}")
    _check_map_location(map_location)
    policy = _policy(keep_dtype)
    size = check_file(path, "load", _DIR_HINT)
    with open(path, "rb") as fh:
        head = fh.read(16)
    kind = _detect(path, head, size)
    if mmap and kind not in ("torch-zip", "safetensors", "npy"):
        raise ValueError(f"load: mmap=True maps PyTorch zip checkpoints, safetensors and npy files; '{path}' is "
                         f"{'an npz file' if kind == 'npz' else 'a legacy PyTorch checkpoint or a plain pickle'}")
    if kind == "torch-zip":
        with _zip_errors(path), zipfile.ZipFile(path) as zf:
            return _torch.read_zip(path, zf, _torch.zip_prefix(zf.namelist()), source=path, policy=policy,
                                   weights_only=weights_only, mmap=bool(mmap))
    if kind == "torch-pickle":
        with open(path, "rb") as fh:
            return _torch.read_pickle_stream(fh, source=path, policy=policy,
                                             weights_only=weights_only, size=size)
    if kind == "safetensors":
        return read_safetensors(path, source=path, policy=policy, mmap=bool(mmap))
    return _read_numpy(path, kind, policy, bool(mmap))


def _read_numpy(path, kind, policy, mmap):
    try:
        if kind == "npy":
            arr = np.load(path, allow_pickle=False, mmap_mode="c" if mmap else None)
            return _numpy_policy(arr, policy)
        with _zip_errors(path), np.load(path, allow_pickle=False) as z:
            return {k: _numpy_policy(z[k], policy) for k in z.files}
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise CheckpointError(f"{path}: holds numpy object arrays (pickled Python objects), which a safe load "
                                  f"refuses") from None
        raise CheckpointError(f"{path}: corrupted numpy file ({exc})") from None
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise CheckpointError(f"{path}: truncated or corrupted numpy file ({exc})") from None


def _numpy_policy(arr, policy):
    d = _dt.of_array(arr.dtype) if not arr.dtype.hasobject else None
    if d is None or not d.half or policy == "keep" or (policy == "auto" and d.numpy is not None):
        return arr
    return arr.astype(np.float32)


def save(obj, path, *, pickle=False):
    """Writes obj in PyTorch's zip checkpoint format (torch.load(path, weights_only=True) reads it back
    as tensors; pyfastnn.load as numpy arrays), without torch.

    obj: a state dict or any nesting of dicts, lists and tuples of arrays (numpy, Tensors, CuPy),
    numbers, strings, bytes and None. Anything else (a whole Module, a custom class) is refused unless
    pickle=True, which pickles it with Python's pickler; loading such a file runs code from it
    (pyfastnn.load(path, weights_only=False)), so it warns.
    """
    _save(obj, path, pickle=pickle, warn=True)


def _save(obj, path, *, pickle, warn):
    path = fspath(path, "save")
    if not isinstance(pickle, bool):
        raise TypeError(f"save: pickle must be a bool, got {type(pickle).__name__}")
    try:
        plan = plan_storages(obj)
    except NotWeightsOnly as exc:
        if not pickle:
            raise TypeError(f"save: {exc}, which a weights-only checkpoint cannot hold. Save its state_dict() "
                            f"(arrays, numbers, strings and containers), or pass pickle=True to pickle the "
                            f"object — loading that file runs code from it") from None
        if warn:
            warnings.warn(f"save: pickling {exc.where} ({type(exc.obj).__name__}); loading '{path}' will need "
                          f"pyfastnn.load(path, weights_only=False), which runs code from the file",
                          UserWarning, stacklevel=3)
        data_pkl, storages = dump_object_pickle(obj)
    else:
        data_pkl, storages = dump_weights_pickle(obj, plan), plan.records
    records = _torch.zip_records(data_pkl, storages)
    atomic_write(path, lambda fh: _torch.write_zip(fh, records), "save")
