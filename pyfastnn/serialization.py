"""Saving weights (safetensors or npz) and whole models (pickle)."""
from __future__ import annotations

import os
import pickle
import zipfile

import numpy as np

__all__ = ["save_state", "load_state", "save", "load"]


def _have_safetensors():
    try:
        import safetensors.numpy  # noqa: F401
        return True
    except ImportError:
        return False


def _host(a):
    return a.get() if type(a).__module__.startswith("cupy") else np.asarray(a)


def save_state(state, path):
    """Writes a dict of arrays: safetensors for a '.safetensors' name, or any
    name but '.npz' when the safetensors package is installed; npz otherwise.
    Round trips are exact (same dtypes, shapes and bits)."""
    path = os.fspath(path)
    arrays = {k: np.array(_host(v), order="C", copy=None) for k, v in state.items()}  # keeps 0-d shapes
    if path.endswith(".safetensors") or (not path.endswith(".npz") and _have_safetensors()):
        if not _have_safetensors():
            raise RuntimeError(f"save_weights: '{path}' asks for safetensors, but the package is not installed "
                               f"(pip install safetensors), or use a '.npz' name")
        from safetensors.numpy import save_file
        save_file(arrays, path)
    else:
        with open(path, "wb") as f:        # a file object keeps numpy from appending '.npz'
            np.savez(f, **arrays)


def load_state(path):
    """Reads what save_state wrote (the format is told by the file's contents)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"load_weights: no such file '{path}'")
    if zipfile.is_zipfile(path):
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    if not _have_safetensors():
        raise RuntimeError(f"load_weights: '{path}' is not an npz file and safetensors is not installed "
                           f"(pip install safetensors)")
    from safetensors.numpy import load_file
    return load_file(path)


def save(obj, path):
    """Pickles a Module (architecture and weights) or any object holding Tensors."""
    with open(os.fspath(path), "wb") as f:
        pickle.dump(obj, f, protocol=pickle.HIGHEST_PROTOCOL)


def load(path):
    """Loads what ``save`` wrote. Unpickling runs code from the file: load only files you trust."""
    with open(os.fspath(path), "rb") as f:
        return pickle.load(f)
