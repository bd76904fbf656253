"""VGG16 and VGG19 as Keras builds them (layer names block{b}_conv{i}, block{b}_pool, flatten, fc1, fc2,
predictions), so Keras's weight files map by name."""
from __future__ import annotations

from .. import layers
from ..models import Model
from . import imagenet_utils

__all__ = ["VGG16", "VGG19", "build_vgg"]

_BASE = "https://storage.googleapis.com/tensorflow/keras-applications/"


def build_vgg(depths, weights_name, name, include_top, weights, input_tensor, input_shape, pooling, classes,
              classifier_activation, owner):
    x, inputs, _ = imagenet_utils.prepare(owner, weights, include_top, classes, pooling, classifier_activation,
                                          input_tensor, input_shape)
    for block, (filters, convs) in enumerate(zip((64, 128, 256, 512, 512), depths), start=1):
        for i in range(1, convs + 1):
            x = layers.Conv2D(filters, (3, 3), activation="relu", padding="same", name=f"block{block}_conv{i}")(x)
        x = layers.MaxPooling2D((2, 2), strides=(2, 2), name=f"block{block}_pool")(x)
    if include_top:
        x = layers.Flatten(name="flatten")(x)
        x = layers.Dense(4096, activation="relu", name="fc1")(x)
        x = layers.Dense(4096, activation="relu", name="fc2")(x)
        x = layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    else:
        x = imagenet_utils.pool_features(x, pooling)
    model = Model(inputs, x, name=name)
    stem = f"{weights_name}_weights_tf_dim_ordering_tf_kernels" + ("" if include_top else "_notop") + ".h5"
    imagenet_utils.load_app_weights(model, weights, stem, f"{_BASE}{weights_name}/{stem}", owner)
    return model


def VGG16(include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None, classes=1000,
          classifier_activation="softmax", name="vgg16"):
    """Keras's VGG16 (138,357,544 parameters with the top; 14,714,688 without). weights: None, 'imagenet'
    (vgg16_weights_tf_dim_ordering_tf_kernels[_notop].h5 from Keras's cache directory) or a file path."""
    return build_vgg((2, 2, 3, 3, 3), "vgg16", name, include_top, weights, input_tensor, input_shape, pooling,
                     classes, classifier_activation, "VGG16")


def VGG19(include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None, classes=1000,
          classifier_activation="softmax", name="vgg19"):
    """Keras's VGG19 (143,667,240 parameters with the top; 20,024,384 without)."""
    return build_vgg((2, 2, 4, 4, 4), "vgg19", name, include_top, weights, input_tensor, input_shape, pooling,
                     classes, classifier_activation, "VGG19")
