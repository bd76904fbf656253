"""The two Keras transfer-learning tutorials, run as written but for the imports, on a real image folder.

The folder is written here from the two photographs scikit-learn ships (a Chinese temple and a flower):
crops of each photo, at random positions and scales, saved as JPEG files in class folders
data/train/{china,flower} and data/test/{china,flower}. The task is telling which photo a crop comes from.

1. A CNN fed by ImageDataGenerator.flow_from_directory with the tutorial's augmentation (rotation, shifts,
   shear, zoom, flips), fit with steps_per_epoch / validation_steps, then evaluate.
2. VGG16 as a frozen feature extractor in the functional API, a small dense head, fit_generator.
   VGG16's ImageNet weights are read from Keras's cache (~/.keras/models/
   vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5, Keras's own file) when that file is there;
   nothing is downloaded, so without it the frozen VGG16 keeps random weights (random convolutional
   features still separate these two photos, more slowly).

Full run (python examples/keras_transfer.py, 2 cores): script 1 reaches about 90% test accuracy in a
minute; script 2 (random VGG16 features) about 80% in two. --quick runs a few steps of each.
"""
import argparse
import os
import tempfile
import warnings

import numpy as np

import pyfastnn as tf                                   # was: import tensorflow as tf
from pyfastnn.keras import layers                       # was: from tensorflow.keras import layers
from pyfastnn.keras.applications import VGG16           # was: from tensorflow.keras.applications import VGG16
from pyfastnn.keras.layers import Dense, Flatten, Input
from pyfastnn.keras.models import Model
from pyfastnn.keras.optimizers import Adam
from pyfastnn.keras.preprocessing.image import ImageDataGenerator


def write_image_folder(root, train_per_class, test_per_class, seed=0):
    """Random crops of scikit-learn's two sample photos, as JPEG files in one folder per class."""
    from PIL import Image
    from sklearn.datasets import load_sample_images

    rng = np.random.default_rng(seed)
    photos = dict(zip(("china", "flower"), load_sample_images().images))
    for split, n in (("train", train_per_class), ("test", test_per_class)):
        for name, photo in photos.items():
            folder = os.path.join(root, split, name)
            os.makedirs(folder, exist_ok=True)
            h, w = photo.shape[:2]
            for i in range(n):
                side = int(rng.integers(120, min(h, w)))
                top, left = int(rng.integers(0, h - side)), int(rng.integers(0, w - side))
                crop = Image.fromarray(photo[top:top + side, left:left + side])
                crop.save(os.path.join(folder, f"{name}_{i:03d}.jpg"), quality=90)
    return os.path.join(root, "train"), os.path.join(root, "test")


def script_1(train_dir, test_dir, steps_per_epoch, epochs, validation_steps):
    """The augmented-CNN tutorial, as written (its step counts are arguments here)."""
    train_datagen = ImageDataGenerator(rescale=1. / 255, rotation_range=40, width_shift_range=0.2,
                                       height_shift_range=0.2, shear_range=0.2, zoom_range=0.2,
                                       horizontal_flip=True, fill_mode='nearest')
    train_data = train_datagen.flow_from_directory(train_dir, target_size=(150, 150), batch_size=32,
                                                   class_mode='binary')
    test_data = ImageDataGenerator(rescale=1. / 255).flow_from_directory(test_dir, target_size=(150, 150),
                                                                         batch_size=32, class_mode='binary')
    model = tf.keras.Sequential([
        layers.Conv2D(32, (3, 3), activation='relu', input_shape=(150, 150, 3)), layers.MaxPooling2D((2, 2)),
        layers.Conv2D(64, (3, 3), activation='relu'), layers.MaxPooling2D((2, 2)),
        layers.Conv2D(128, (3, 3), activation='relu'), layers.MaxPooling2D((2, 2)),
        layers.Conv2D(128, (3, 3), activation='relu'), layers.MaxPooling2D((2, 2)),
        layers.Flatten(), layers.Dense(512, activation='relu'), layers.Dense(1, activation='sigmoid')])
    model.compile(optimizer='adam', loss='binary_crossentropy', metrics=['accuracy'])
    print(f"script 1: {model.count_params():,} parameters (Keras: 3,453,121)")
    model.fit(train_data, steps_per_epoch=steps_per_epoch, epochs=epochs, validation_data=test_data,
              validation_steps=validation_steps)
    test_loss, test_acc = model.evaluate(test_data, steps=validation_steps)
    print(f"script 1: test loss {test_loss:.4f}, test accuracy {test_acc:.3f}")
    return test_acc


def script_2(train_dir, test_dir, steps_per_epoch, epochs, eval_steps):
    """VGG16 as a frozen feature extractor, the functional API, fit_generator (tf.keras 2's names)."""
    train_generator = ImageDataGenerator(rescale=1. / 255).flow_from_directory(
        train_dir, target_size=(224, 224), batch_size=32, class_mode='binary')
    input_layer = Input(shape=(224, 224, 3))
    try:
        vgg16 = VGG16(weights='imagenet', include_top=False, input_shape=(224, 224, 3))
        print("script 2: VGG16 with ImageNet weights from Keras's cache")
    except FileNotFoundError as exc:
        print(f"script 2: {str(exc).splitlines()[0]} -- using random VGG16 weights")
        vgg16 = VGG16(weights=None, include_top=False, input_shape=(224, 224, 3))
    vgg16.trainable = False
    x = vgg16(input_layer)
    x = Flatten()(x)
    x = Dense(256, activation='relu')(x)
    output_layer = Dense(1, activation='sigmoid')(x)
    model = Model(inputs=input_layer, outputs=output_layer)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)          # lr= and fit_generator: tf.keras 2 names
        model.compile(optimizer=Adam(lr=0.0001), loss='binary_crossentropy', metrics=['accuracy'])
        model.fit_generator(train_generator, steps_per_epoch=steps_per_epoch, epochs=epochs)
    test_data = ImageDataGenerator(rescale=1. / 255).flow_from_directory(
        test_dir, target_size=(224, 224), batch_size=32, class_mode='binary', shuffle=False)
    test_loss, test_acc = model.evaluate(test_data, steps=eval_steps)
    print(f"script 2: test loss {test_loss:.4f}, test accuracy {test_acc:.3f}")
    return test_acc


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a few steps of each script (a smoke test)")
    p.add_argument("--data", help="where to write the image folder (default: a temporary directory)")
    args = p.parse_args()
    tf.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        root = args.data or tmp
        per_class = (16, 8) if args.quick else (160, 48)
        train_dir, test_dir = write_image_folder(root, *per_class)
        if args.quick:
            script_1(train_dir, test_dir, steps_per_epoch=1, epochs=2, validation_steps=1)
            script_2(train_dir, test_dir, steps_per_epoch=1, epochs=1, eval_steps=1)
        else:
            script_1(train_dir, test_dir, steps_per_epoch=10, epochs=12, validation_steps=3)
            script_2(train_dir, test_dir, steps_per_epoch=10, epochs=4, eval_steps=3)


if __name__ == "__main__":
    main()
