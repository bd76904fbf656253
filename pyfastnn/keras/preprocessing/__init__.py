"""keras.preprocessing: image augmentation and loading (``image``), and image_dataset_from_directory."""
from . import image
from .image_dataset import image_dataset_from_directory

__all__ = ["image", "image_dataset_from_directory"]
