"""A Keras front-end on pyfastnn: tutorial scripts run with only the import changed.

    from pyfastnn.keras import Sequential, layers          # was: from tensorflow.keras import ...
    from pyfastnn.keras.layers import Conv2D, Dense, ...
"""
from . import applications, callbacks, layers, losses, models, optimizers, preprocessing, utils
from .layers import Input
from .models import Model, Sequential, load_model

__all__ = ["Sequential", "Model", "Input", "layers", "models", "optimizers", "losses", "callbacks", "load_model",
           "applications", "preprocessing", "utils"]
