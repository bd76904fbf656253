"""Paths in and out: clear errors for missing files and directories, and writes that never leave a
half-written file behind (a temporary file beside the target, renamed over it when complete)."""
from __future__ import annotations

import contextlib
import json
import os
import tempfile

from .errors import CheckpointError

__all__ = ["fspath", "check_file", "atomic_path", "atomic_write", "read_json"]


def fspath(path, what):
    if isinstance(path, (str, bytes, os.PathLike)):
        path = os.fspath(path)
        return os.fsdecode(path)
    raise TypeError(f"{what}: 'path' must be a str or os.PathLike, got {type(path).__name__}")


def check_file(path, what, hint=""):
    """Raises FileNotFoundError / IsADirectoryError naming the path; returns its size."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"{what}: no such file '{path}'")
    if os.path.isdir(path):
        raise IsADirectoryError(f"{what}: '{path}' is a directory, not a file{hint}")
    return os.path.getsize(path)


@contextlib.contextmanager
def atomic_path(path, what):
    """A temporary path in path's directory to write to; renamed over path when the block completes."""
    if os.path.isdir(path):
        raise IsADirectoryError(f"{what}: '{path}' is a directory")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{what}: the directory of '{path}' does not exist")
    fd, tmp = tempfile.mkstemp(prefix=".pyfastnn-", suffix=".tmp", dir=folder)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write(path, write, what):
    """Calls write(file_object) on a temporary file beside path, then renames it to path."""
    with atomic_path(path, what) as tmp, open(tmp, "wb") as fh:
        write(fh)


def _umask():
    # read, not set-and-restore: os.umask would change it for every thread for a moment
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o022


def read_json(path):
    """A JSON file's content; CheckpointError naming the file when it is not valid UTF-8 JSON."""
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: not valid JSON ({exc})") from None
    except UnicodeDecodeError:
        raise CheckpointError(f"{path}: not a UTF-8 JSON file") from None
