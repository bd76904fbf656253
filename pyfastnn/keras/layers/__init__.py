"""Keras layers (pyfastnn.keras.layers): Keras's names, arguments, initializers and weight layouts on
pyfastnn.nn's modules and kernels."""
from .activations import LeakyReLU, ReLU, Softmax
from .base import Input, InputLayer, Lambda, Layer
from .convolutional import AveragePooling1D, Conv1D, DepthwiseConv2D, MaxPooling1D, SeparableConv2D
from .core import (Activation, Attention, AveragePooling2D, BatchNormalization, Conv2D, Dense, Dropout, Embedding,
                   Flatten, GlobalAveragePooling1D, GlobalAveragePooling2D, GlobalMaxPooling1D, GlobalMaxPooling2D,
                   LayerNormalization, MaxPooling2D, MultiHeadAttention)
from .merge import (Add, Average, Concatenate, Dot, Maximum, Minimum, Multiply, Subtract, add, average, concatenate,
                    dot, maximum, minimum, multiply, subtract)
from .recurrent import GRU, LSTM, SimpleRNN
from .reshaping import Cropping2D, Permute, RepeatVector, Rescaling, Reshape, UpSampling2D, ZeroPadding2D
from .wrappers import Bidirectional, TimeDistributed

# Keras's aliases (left out of __all__: each is the class above)
Convolution1D, Convolution2D, MaxPool1D, MaxPool2D, AvgPool1D, AvgPool2D = (
    Conv1D, Conv2D, MaxPooling1D, MaxPooling2D, AveragePooling1D, AveragePooling2D)
GlobalAvgPool1D, GlobalAvgPool2D, GlobalMaxPool1D, GlobalMaxPool2D = (
    GlobalAveragePooling1D, GlobalAveragePooling2D, GlobalMaxPooling1D, GlobalMaxPooling2D)

__all__ = ["Layer", "InputLayer", "Input", "Lambda", "Dense", "Conv2D", "MaxPooling2D", "AveragePooling2D",
           "Flatten", "Dropout", "Activation", "LSTM", "Embedding", "Attention", "MultiHeadAttention",
           "LayerNormalization", "BatchNormalization", "GlobalAveragePooling1D", "GlobalAveragePooling2D", "Add",
           "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate", "Dot", "add", "subtract",
           "multiply", "average", "maximum", "minimum", "concatenate", "dot",
           "GlobalMaxPooling1D", "GlobalMaxPooling2D", "Conv1D", "MaxPooling1D", "AveragePooling1D",
           "DepthwiseConv2D", "SeparableConv2D", "GRU", "SimpleRNN", "Bidirectional", "TimeDistributed", "Reshape",
           "Permute", "RepeatVector", "Rescaling", "ZeroPadding2D", "Cropping2D", "UpSampling2D", "ReLU", "Softmax",
           "LeakyReLU"]
