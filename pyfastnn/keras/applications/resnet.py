"""ResNet50/101/152 (v1, Keras's "caffe" ResNets) as Keras builds them: conv1_pad/conv1_conv/conv1_bn/conv1_relu,
pool1_pad/pool1_pool, blocks conv{stage}_block{i}_{0..3}_{conv,bn}, _add, _out; avg_pool and predictions."""
from __future__ import annotations

from .. import layers
from ..models import Model
from . import imagenet_utils

__all__ = ["ResNet50", "ResNet101", "ResNet152", "preprocess_input", "decode_predictions"]

_BASE = "https://storage.googleapis.com/tensorflow/keras-applications/resnet/"
_EPS = 1.001e-5


def _block(x, filters, stride=1, conv_shortcut=True, name=None):
    """Keras's residual_block_v1: 1x1 (strided), 3x3, 1x1 x4 convolutions with batch norms; a projected or
    identity shortcut; relu after the sum."""
    if conv_shortcut:
        shortcut = layers.Conv2D(4 * filters, 1, strides=stride, name=f"{name}_0_conv")(x)
        shortcut = layers.BatchNormalization(axis=3, epsilon=_EPS, name=f"{name}_0_bn")(shortcut)
    else:
        shortcut = x
    x = layers.Conv2D(filters, 1, strides=stride, name=f"{name}_1_conv")(x)
    x = layers.BatchNormalization(axis=3, epsilon=_EPS, name=f"{name}_1_bn")(x)
    x = layers.Activation("relu", name=f"{name}_1_relu")(x)
    x = layers.Conv2D(filters, 3, padding="SAME", name=f"{name}_2_conv")(x)
    x = layers.BatchNormalization(axis=3, epsilon=_EPS, name=f"{name}_2_bn")(x)
    x = layers.Activation("relu", name=f"{name}_2_relu")(x)
    x = layers.Conv2D(4 * filters, 1, name=f"{name}_3_conv")(x)
    x = layers.BatchNormalization(axis=3, epsilon=_EPS, name=f"{name}_3_bn")(x)
    x = layers.Add(name=f"{name}_add")([shortcut, x])
    return layers.Activation("relu", name=f"{name}_out")(x)


def _stack(x, filters, blocks, stride1=2, name=None):
    x = _block(x, filters, stride=stride1, name=f"{name}_block1")
    for i in range(2, blocks + 1):
        x = _block(x, filters, conv_shortcut=False, name=f"{name}_block{i}")
    return x


def _resnet(blocks, weights_name, name, include_top, weights, input_tensor, input_shape, pooling, classes,
            classifier_activation, owner):
    img_input, inputs, _ = imagenet_utils.prepare(owner, weights, include_top, classes, pooling,
                                                  classifier_activation, input_tensor, input_shape)
    x = layers.ZeroPadding2D(padding=((3, 3), (3, 3)), name="conv1_pad")(img_input)
    x = layers.Conv2D(64, 7, strides=2, use_bias=True, name="conv1_conv")(x)
    x = layers.BatchNormalization(axis=3, epsilon=_EPS, name="conv1_bn")(x)
    x = layers.Activation("relu", name="conv1_relu")(x)
    x = layers.ZeroPadding2D(padding=((1, 1), (1, 1)), name="pool1_pad")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)
    for stage, (filters, n) in enumerate(zip((64, 128, 256, 512), blocks), start=2):
        x = _stack(x, filters, n, stride1=1 if stage == 2 else 2, name=f"conv{stage}")
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    else:
        x = imagenet_utils.pool_features(x, pooling, "avg_pool", "max_pool")
    model = Model(inputs, x, name=name)
    stem = f"{weights_name}_weights_tf_dim_ordering_tf_kernels" + ("" if include_top else "_notop") + ".h5"
    imagenet_utils.load_app_weights(model, weights, stem, _BASE + stem, owner)
    return model


def ResNet50(include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None, classes=1000,
             classifier_activation="softmax", name="resnet50"):
    """Keras's ResNet50 (25,636,712 parameters with the top; 23,587,712 without). weights: None, 'imagenet'
    (resnet50_weights_tf_dim_ordering_tf_kernels[_notop].h5 from Keras's cache directory) or a file path."""
    return _resnet((3, 4, 6, 3), "resnet50", name, include_top, weights, input_tensor, input_shape, pooling, classes,
                   classifier_activation, "ResNet50")


def ResNet101(include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None,
              classes=1000, classifier_activation="softmax", name="resnet101"):
    """Keras's ResNet101 (44,707,176 parameters with the top; 42,658,176 without)."""
    return _resnet((3, 4, 23, 3), "resnet101", name, include_top, weights, input_tensor, input_shape, pooling,
                   classes, classifier_activation, "ResNet101")


def ResNet152(include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None,
              classes=1000, classifier_activation="softmax", name="resnet152"):
    """Keras's ResNet152 (60,419,944 parameters with the top; 58,370,944 without)."""
    return _resnet((3, 8, 36, 3), "resnet152", name, include_top, weights, input_tensor, input_shape, pooling,
                   classes, classifier_activation, "ResNet152")


def preprocess_input(x, data_format=None):
    """Caffe mode: RGB -> BGR, minus ImageNet's BGR mean, no scaling."""
    return imagenet_utils.preprocess_input(x, data_format=data_format, mode="caffe")


def decode_predictions(preds, top=5):
    return imagenet_utils.decode_predictions(preds, top=top)
