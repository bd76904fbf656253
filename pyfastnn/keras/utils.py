"""keras.utils: Sequence and PyDataset (datasets of batches), to_categorical, image_dataset_from_directory and
the image-file helpers (load_img, img_to_array, array_to_img, save_img)."""
from __future__ import annotations

import numpy as np

from .preprocessing._data import PyDataset, Sequence
from .preprocessing._imaging import array_to_img, img_to_array, load_img, save_img
from .preprocessing.image_dataset import image_dataset_from_directory

__all__ = ["Sequence", "PyDataset", "to_categorical", "image_dataset_from_directory", "load_img", "img_to_array",
           "array_to_img", "save_img"]


def to_categorical(y, num_classes=None, dtype="float32"):
    """One-hot rows for integer class labels y (any shape; a trailing axis of 1 is dropped): shape
    y.shape + (num_classes,), num_classes defaulting to max(y) + 1."""
    where = "to_categorical"
    y = np.asarray(y)
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
            raise ValueError(f"{where}: labels must be integers, got non-integral values such as "
                             f"{y[~(np.isfinite(y) & (y == np.round(y)))].ravel()[0]!r}")
    elif y.dtype.kind not in "iub":
        raise TypeError(f"{where}: labels must be integers, got dtype {y.dtype}")
    y = y.astype("int64")
    input_shape = y.shape
    if input_shape and input_shape[-1] == 1 and len(input_shape) > 1:
        input_shape = tuple(input_shape[:-1])
    y = y.reshape(-1)
    if y.size and y.min() < 0:
        raise ValueError(f"{where}: labels must be >= 0, got {int(y.min())}")
    if num_classes is None:
        num_classes = int(y.max()) + 1 if y.size else 0
    elif isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
        raise ValueError(f"{where}: argument 'num_classes' must be a positive int, got {num_classes!r}")
    elif y.size and y.max() >= num_classes:
        raise ValueError(f"{where}: label {int(y.max())} is out of range for num_classes={num_classes}")
    n = y.shape[0]
    categorical = np.zeros((n, int(num_classes)), dtype=dtype)
    categorical[np.arange(n), y] = 1
    return categorical.reshape(tuple(input_shape) + (int(num_classes),))
