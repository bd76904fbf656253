"""Keras's ImageNet applications on pyfastnn.keras: VGG16, VGG19, ResNet50, ResNet101, ResNet152, MobileNetV2,
built with the functional API under Keras's layer names (so Keras's weight files map by name), with their
preprocess_input and decode_predictions. weights='imagenet' reads the file of Keras's name from Keras's cache
directory ($KERAS_HOME/models or ~/.keras/models); nothing is downloaded."""
from . import imagenet_utils, mobilenet_v2, resnet, resnet50, vgg16, vgg19
from .mobilenet_v2 import MobileNetV2
from .resnet import ResNet50, ResNet101, ResNet152
from .vgg import VGG16, VGG19

__all__ = ["VGG16", "VGG19", "ResNet50", "ResNet101", "ResNet152", "MobileNetV2", "imagenet_utils", "vgg16",
           "vgg19", "resnet", "resnet50", "mobilenet_v2"]
