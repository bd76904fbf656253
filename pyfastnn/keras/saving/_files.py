"""Opening Keras weight files: argument checks, the HDF5 signature, h5py (optional) and its errors turned into
ones that name the file; writes go to a temporary file that replaces the target only once complete."""
from __future__ import annotations

import contextlib
import os

from ...hub._optional import require
from ...hub.errors import CheckpointError

__all__ = ["CheckpointError", "h5py", "check_path", "check_h5_file", "reading", "writing", "decode_strings"]

_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def h5py(where):
    return require("h5py", where)


def check_path(path, where):
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{where}: argument 'filepath' must be a str or os.PathLike, got {type(path).__name__}")
    return os.fspath(path)


def check_h5_file(path, where):
    """The file exists and starts like an HDF5 file (the superblock may follow a user block of 512 * 2^k
    bytes); else an error naming it, before h5py is asked."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"{where}: no such file: '{path}'")
    if os.path.isdir(path):
        raise IsADirectoryError(f"{where}: '{path}' is a directory, not an HDF5 weights file")
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(8)
        offset = 512
        found = head == _SIGNATURE
        while not found and offset + 8 <= size:
            f.seek(offset)
            found = f.read(8) == _SIGNATURE
            offset *= 2
    if not found:
        hint = ""
        if head.startswith(b"PK"):
            hint = " (it is a zip archive: a .keras model file or a PyTorch checkpoint?)"
        elif size == 0:
            hint = " (it is empty)"
        raise CheckpointError(f"{where}: '{path}' is not an HDF5 file{hint}")


@contextlib.contextmanager
def reading(path, where):
    """h5py.File(path, 'r'); h5py's errors while opening or reading it become CheckpointErrors naming the file."""
    h5 = h5py(where)
    try:
        f = h5.File(path, "r")
    except (OSError, RuntimeError, ValueError) as exc:
        raise CheckpointError(f"{where}: cannot read '{path}': the HDF5 file is truncated or corrupted ({exc})") \
            from None
    try:
        with f:
            yield f
    except (OSError, RuntimeError, KeyError) as exc:
        raise CheckpointError(f"{where}: cannot read '{path}': the HDF5 file is truncated or corrupted ({exc})") \
            from None


@contextlib.contextmanager
def writing(path, where):
    """An h5py.File to write; the target is replaced only when the block completes (no half-written file)."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{where}: the folder of '{path}' does not exist")
    h5 = h5py(where)
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    try:
        with h5.File(tmp, "w") as f:
            yield f
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def decode_strings(values):
    """An h5 string attribute (bytes, str, or an array of them) as a list of str."""
    if values is None:
        return []
    if isinstance(values, (bytes, str)):
        values = [values]
    return [v.decode("utf8") if isinstance(v, bytes) else str(v) for v in list(values)]
