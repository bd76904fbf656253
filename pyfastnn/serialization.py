"""Weight files for Module.save_weights/load_weights, and whole-object pickles for the callers that
save whole models (Keras-style model.save, ModelCheckpoint): a thin layer over pyfastnn.hub."""
from __future__ import annotations

import os

import numpy as np

from . import hub
from .hub import api as _api
from .hub._files import atomic_write, check_file, fspath
from .hub._optional import optional
from .hub.errors import CheckpointError
from .hub.pickler import host_array

__all__ = ["save_state", "load_state", "save", "load"]

_TORCH_SUFFIXES = (".pt", ".pth", ".bin")


def _have_safetensors():
    return optional("safetensors.numpy") is not None


def save_state(state, path):
    """Writes a dict of arrays: PyTorch's zip format for a '.pt'/'.pth'/'.bin' name, npz for '.npz',
    safetensors for '.safetensors' or any other name when the safetensors package is installed (npz
    when it is not). Round trips are exact (same dtypes, shapes and bits)."""
    path = fspath(path, "save_weights")
    if not isinstance(state, dict):
        raise TypeError(f"save_weights: expected a dict of arrays, got {type(state).__name__}")
    arrays = {}
    for k, v in state.items():
        host, _ = host_array(v)
        if not isinstance(k, str) or host is None:
            raise TypeError(f"save_weights: entry {k!r} must map a str to an array, got {type(v).__name__}")
        arrays[k] = host
    lower = path.lower()
    if lower.endswith(_TORCH_SUFFIXES):
        hub.save(arrays, path)
    elif lower.endswith(".safetensors") or (not lower.endswith(".npz") and _have_safetensors()):
        if not _have_safetensors():
            raise ImportError(f"save_weights: '{path}' asks for safetensors, but the package is not installed "
                              f'(pip install "pyfastnn[hub]"), or use a \'.npz\' name')
        hub.save_safetensors(arrays, path)
    else:
        # a file object keeps numpy from appending '.npz'; np.array keeps 0-d shapes
        atomic_write(path, lambda fh: np.savez(fh, **{k: np.array(v, order="C", copy=None)
                                                       for k, v in arrays.items()}), "save_weights")


def load_state(path):
    """Reads a flat dict of arrays, safely (nothing in the file is run): what save_state wrote, any
    safetensors, npz or PyTorch state-dict file, or a Hugging Face model directory. float16 stays
    float16; bfloat16 comes back as ml_dtypes.bfloat16 when that package is installed, else float32."""
    path = fspath(path, "load_weights")
    if os.path.isdir(path):
        state = hub.load_hf_weights(path, keep_dtype="auto")
    else:
        check_file(path, "load_weights")
        state = hub.load(path, weights_only=True, keep_dtype="auto")
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, np.ndarray)
                                              for k, v in state.items()):
        nested = [k for k, v in state.items() if isinstance(v, dict)] if isinstance(state, dict) else []
        hint = f"; its entry '{nested[0]}' is a dict: pass pyfastnn.load(path)['{nested[0]}']" if nested else ""
        raise CheckpointError(f"{path}: holds a {type(state).__name__} that is not a flat dict of arrays, so "
                              f"load_weights cannot use it{hint}")
    return dict(state)


def save(obj, path):
    """Pickles a whole object (a Module: architecture and weights) into PyTorch's zip container, its
    arrays as raw storage records. Reading it back (load) runs code from the file."""
    _api._save(obj, path, pickle=True, warn=False)


def load(path):
    """Loads what ``save`` wrote (and any file pyfastnn.load reads), unpickling fully: this runs code
    from the file, so load only files you trust. pyfastnn.load is the safe reader."""
    return hub.load(path, weights_only=False, keep_dtype="auto")

