"""load_model: a model back from the file Model.save writes (Keras 3's .keras layout, see archive.py), rebuilt
from its config with the layer classes pyfastnn.keras knows (and the caller's custom_objects) and given its
weights. Nothing in the file is run: the config is JSON, the weights are arrays; only a Lambda's (or another
function's) marshalled bytecode is code, and a safe load refuses it, as Keras 3 does.

Files of the earlier format (a pickled model in PyTorch's zip container) still load with safe_mode=False."""
from __future__ import annotations

import os
import warnings

from ... import hub, serialization
from ...hub.errors import UnsafeCheckpointError
from ..layers.base import deserialize_layer, loading_scope
from .archive import FORMAT, is_archive, read_archive
from .model import Model

__all__ = ["load_model"]


def load_model(filepath, custom_objects=None, compile=True, safe_mode=True):
    """The model Model.save wrote to filepath, compiled as it was when compile=True. custom_objects maps the
    names of your own layer classes and functions to them. safe_mode=False lets a Lambda's saved bytecode run
    (only for files you trust)."""
    if not isinstance(filepath, (str, bytes, os.PathLike)):
        raise TypeError(f"load_model: argument 'filepath' must be a path, got {type(filepath).__name__}")
    path = os.fsdecode(os.fspath(filepath))
    if not os.path.exists(path):
        raise ValueError(f"load_model: File not found: filepath={path}. Please ensure the file is an accessible "
                         f"'.keras' zip file.")
    if custom_objects is not None and not isinstance(custom_objects, dict):
        raise TypeError(f"load_model: argument 'custom_objects' must be a dict of names to classes/functions, got "
                        f"{type(custom_objects).__name__}")
    if is_archive(path):
        return _load_archive(path, custom_objects, compile, safe_mode)
    return _load_pickled(path, safe_mode)


def _load_archive(path, custom_objects, compile, safe_mode):
    config, metadata, state = read_archive(path)
    if metadata.get("format", FORMAT) != FORMAT:
        raise ValueError(f"load_model: '{path}' is in format {metadata.get('format')!r}; this pyfastnn reads "
                         f"{FORMAT!r}")
    with loading_scope(custom_objects, safe_mode):
        try:
            model = deserialize_layer(config, where=f"load_model('{path}')")
        except RecursionError:
            raise ValueError(f"load_model: '{path}': the config nests too deeply") from None
        if not isinstance(model, Model):
            raise ValueError(f"load_model: '{path}' holds a {config['class_name']}, not a model")
        model.build_from_config(config.get("build_config"))
    try:
        model.load_state_dict(state, strict=True)          # validated whole before any weight is written
    except (KeyError, ValueError, RuntimeError, TypeError) as exc:
        raise ValueError(f"load_model: the weights in '{path}' do not fit the model its config describes "
                         f"('{model.name}'): {exc}") from None
    if compile and config.get("compile_config"):
        try:
            model.compile_from_config(config["compile_config"], custom_objects)
        except (TypeError, ValueError, KeyError) as exc:
            warnings.warn(f"load_model: '{path}': the model's compile settings could not be restored ({exc}); "
                          f"it is returned uncompiled: call compile() before fit/evaluate", stacklevel=2)
    return model


def _load_pickled(path, safe_mode):
    """The earlier whole-model format: a pickle, which runs code from the file when read."""
    if safe_mode:
        try:
            hub.load(path, weights_only=True)
        except UnsafeCheckpointError as exc:
            raise ValueError(f"load_model: '{path}' holds a pickled model (pyfastnn's earlier format); loading it "
                             f"would run code from the file. Pass safe_mode=False only if you trust its source "
                             f"({exc})") from None
        except (ValueError, OSError) as exc:
            raise ValueError(f"load_model: '{path}' is not a saved model ({exc})") from None
        raise ValueError(f"load_model: '{path}' holds weights, not a model: build the model and call "
                         f"model.load_weights('{path}')")
    model = serialization.load(path)
    if not isinstance(model, Model):
        raise ValueError(f"load_model: '{path}' does not hold a pyfastnn.keras model (got {type(model).__name__})")
    return model
