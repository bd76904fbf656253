"""keras.applications.vgg19: VGG19 and its preprocessing (caffe mode: RGB -> BGR, minus ImageNet's mean)."""
from . import imagenet_utils
from .vgg import VGG19

__all__ = ["VGG19", "preprocess_input", "decode_predictions"]


def preprocess_input(x, data_format=None):
    return imagenet_utils.preprocess_input(x, data_format=data_format, mode="caffe")


def decode_predictions(preds, top=5):
    return imagenet_utils.decode_predictions(preds, top=top)
