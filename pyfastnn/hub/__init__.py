"""Checkpoint files in and out, read safely into numpy arrays without torch: PyTorch's zip and legacy
formats (through a restricted unpickler), safetensors, npz/npy, Hugging Face model directories.
Nothing here executes content from a file unless the caller passes weights_only=False."""
from __future__ import annotations

from ._files import fspath
from .api import detect_format, load, save
from .errors import CheckpointError, UnsafeCheckpointError
from .hf import hf_weight_files, load_hf_weights, read_hf_config
from .safetensors_format import safetensors_metadata, write_safetensors


def load_safetensors(path, *, keep_dtype=False, mmap=None):
    """A safetensors file as {name: numpy array} (float32 for half types unless keep_dtype)."""
    if detect_format(path) != "safetensors":
        raise CheckpointError(f"{path}: not a safetensors file")
    return load(path, keep_dtype=keep_dtype, mmap=mmap)


def save_safetensors(tensors, path, metadata=None):
    """Writes {name: array} as safetensors (needs the safetensors package); metadata: str -> str."""
    write_safetensors(tensors, fspath(path, "save_safetensors"), metadata)


__all__ = ["load", "save", "detect_format", "load_safetensors", "save_safetensors", "safetensors_metadata",
           "read_hf_config", "hf_weight_files", "load_hf_weights", "CheckpointError", "UnsafeCheckpointError"]
