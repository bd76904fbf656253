"""Loading whole Keras models (Model.save writes them as a pickle): loading one runs code from the file, so
load_model refuses it unless the caller trusts the file and says so (safe_mode=False), as Keras 3 refuses
unsafe content in safe mode."""
from __future__ import annotations

import os

from ... import hub, serialization
from ...hub.errors import UnsafeCheckpointError
from .model import Model

__all__ = ["load_model"]


def load_model(filepath, custom_objects=None, compile=True, safe_mode=True):
    """Loads what Model.save wrote. Safe by default: the file is a pickle, and unpickling runs code from it,
    so it is refused unless safe_mode=False (pass that only for files you trust)."""
    path = os.fspath(filepath)
    if safe_mode:
        try:
            hub.load(path, weights_only=True)
        except UnsafeCheckpointError as exc:
            raise ValueError(f"load_model: '{path}' holds a pickled model; loading it would run code from the file. "
                             f"Pass safe_mode=False only if you trust its source ({exc})") from None
        raise ValueError(f"load_model: '{path}' holds weights, not a model: build the model and call "
                         f"model.load_weights('{path}')")
    model = serialization.load(path)
    if not isinstance(model, Model):
        raise ValueError(f"load_model: '{path}' does not hold a pyfastnn.keras model (got {type(model).__name__})")
    return model
