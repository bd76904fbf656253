"""Keras layers (pyfastnn.keras.layers): Keras's names, arguments, initializers and weight layouts on
pyfastnn.nn's modules and kernels."""
from .base import Input, InputLayer, Lambda, Layer
from .core import (LSTM, Activation, Attention, AveragePooling2D, BatchNormalization, Conv2D, Dense, Dropout,
                   Embedding, Flatten, GlobalAveragePooling1D, GlobalAveragePooling2D, LayerNormalization,
                   MaxPooling2D, MultiHeadAttention)
from .merge import (Add, Average, Concatenate, Dot, Maximum, Minimum, Multiply, Subtract, add, average, concatenate,
                    dot, maximum, minimum, multiply, subtract)

__all__ = ["Layer", "InputLayer", "Input", "Lambda", "Dense", "Conv2D", "MaxPooling2D", "AveragePooling2D",
           "Flatten", "Dropout", "Activation", "LSTM", "Embedding", "Attention", "MultiHeadAttention",
           "LayerNormalization", "BatchNormalization", "GlobalAveragePooling1D", "GlobalAveragePooling2D", "Add",
           "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate", "Dot", "add", "subtract",
           "multiply", "average", "maximum", "minimum", "concatenate", "dot"]
