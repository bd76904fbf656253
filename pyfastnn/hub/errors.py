"""The errors hub raises for files it will not read; every message names the file and what was wrong."""
from __future__ import annotations

import pickle

__all__ = ["CheckpointError", "UnsafeCheckpointError"]


class CheckpointError(ValueError):
    """A file that is not a checkpoint format pyfastnn reads, or one that is truncated or corrupted."""


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A pickle that names a global outside what a checkpoint needs (a function, a class from an
    unknown module): it was refused before anything from the file ran."""
