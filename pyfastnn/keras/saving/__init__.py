"""Keras's HDF5 weight files for pyfastnn.keras models: Keras 3's `.weights.h5` and Keras 2's legacy `.h5`
(tf.keras save_weights, whole-model .h5 files, keras.applications' downloads), read and written; h5py is the
optional dependency (pip install "pyfastnn[keras]")."""
from .api import is_h5_path, load_weights_h5, save_weights_h5

__all__ = ["load_weights_h5", "save_weights_h5", "is_h5_path"]
