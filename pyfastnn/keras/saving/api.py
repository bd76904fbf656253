"""load_weights_h5 / save_weights_h5: Keras's HDF5 weight files for pyfastnn.keras models."""
from __future__ import annotations

import warnings

from ..layers.base import Layer
from . import keras3, legacy
from ._files import CheckpointError, check_h5_file, check_path, reading, writing
from ._plan import apply_items, check_items, read_items

__all__ = ["load_weights_h5", "save_weights_h5", "is_h5_path"]

def is_h5_path(path):
    """Whether a weights file name means HDF5 (Keras 3's `.weights.h5`, Keras 2's `.h5` / `.hdf5`)."""
    return str(path).lower().endswith((".h5", ".hdf5"))


def _check_model(model, where, verb):
    if not isinstance(model, Layer) or not hasattr(model, "layers"):
        raise TypeError(f"{where}: argument 'model' must be a pyfastnn.keras Model (Model, Sequential), got "
                        f"{type(model).__name__}")
    if not model.built or any(not layer.built for layer in model.layers):
        raise ValueError(f"{where}: You are {verb} a model that has not yet been built (model '{model.name}'). "
                         f"Build it first by calling it on a batch of data, by `build(input_shape)`, or by giving "
                         f"it an Input / input_shape")


def _check_flag(value, name, where):
    if not isinstance(value, bool):
        raise TypeError(f"{where}: argument '{name}' must be a bool, got {type(value).__name__}")


def save_weights_h5(model, path):
    """Writes the model's weights to path in the layout Keras reads back: Keras 3's layout for a name ending in
    `.weights.h5` (keras `model.load_weights`), Keras 2's legacy HDF5 layout for any other `.h5` / `.hdf5` name
    (tf.keras and Keras 3 load both). The file is replaced only once fully written."""
    where = "save_weights_h5"
    path = check_path(path, where)
    _check_model(model, where, "saving")
    if not is_h5_path(path):
        raise ValueError(f"{where}: the file name must end in '.weights.h5' (Keras 3) or '.h5' (Keras 2 legacy "
                         f"format), got '{path}'")
    fmt = keras3 if path.lower().endswith(".weights.h5") else legacy
    with writing(path, where) as f:
        fmt.save(model, f)


def load_weights_h5(model, path, skip_mismatch=False, by_name=False):
    """Loads a Keras HDF5 weights file into the model; the layout is read from the file itself: Keras 3's
    `.weights.h5` (layers matched by their place in the model, or by name with by_name=True) or Keras 2's
    legacy `.h5` (a whole-model .h5 too; layers with weights matched in order, or by name with by_name=True,
    as keras.applications loads its weight files).

    Nothing is half-loaded: the whole file is checked against the model (layer count, weight counts and
    shapes) and read before any layer is written. A mismatch raises a ValueError naming the file and the
    layer; skip_mismatch=True warns and skips the layers that do not fit instead. Returns the number of layers
    written."""
    where = "load_weights_h5"
    path = check_path(path, where)
    _check_model(model, where, "loading weights into")
    _check_flag(skip_mismatch, "skip_mismatch", where)
    _check_flag(by_name, "by_name", where)
    check_h5_file(path, where)
    with reading(path, where) as f:
        if legacy.weights_group(f) is not None:
            items, unexpected = legacy.items(model, f, by_name, path, where)
        elif keras3.is_keras3(f):
            items, unexpected = keras3.items(model, f, by_name, path, where)
        else:
            raise CheckpointError(f"{where}: '{path}' is an HDF5 file but not Keras weights: it has neither Keras "
                                  f"3's 'layers'/'vars' groups nor Keras 2's 'layer_names' (top-level entries: "
                                  f"{sorted(f.keys())[:10]})")
        items = check_items(items, path, where, skip_mismatch)
        if unexpected:
            why = (f"the file holds weights for {len(unexpected)} layer(s) the model does not have: "
                   f"{unexpected[:5]}{' ...' if len(unexpected) > 5 else ''}")
            if not skip_mismatch:
                raise ValueError(f"{where}: '{path}' does not fit this model: {why}. Nothing was loaded "
                                 f"(skip_mismatch=True ignores them)")
            warnings.warn(f"{where}: '{path}': {why}; ignored", stacklevel=2)
        arrays = read_items(items, path, where)
    return apply_items(items, arrays)
