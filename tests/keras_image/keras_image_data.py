"""Fixtures of the keras image tests (imported by each test module; a conftest.py here would shadow
tests/conftest.py, which other tests import by name): image folders built offline from crops of
scikit-learn's two sample photographs (china.jpg, flower.jpg) and its handwritten digits, written as
PNG/JPEG/BMP/... files into class folders, and the tf.keras 2 reference."""
import os

import numpy as np
import pytest

def _pil():
    return pytest.importorskip("PIL.Image")


def _sample_photos():
    _pil()                                           # scikit-learn decodes its sample JPEGs with Pillow
    datasets = pytest.importorskip("sklearn.datasets")
    return datasets.load_sample_images().images     # two (427, 640, 3) uint8 photographs


def _crops(photo, count, rng):
    """Crops of varied sizes and aspect ratios, as uint8 (H, W, 3) arrays."""
    out = []
    for _ in range(count):
        h, w = int(rng.integers(40, 160)), int(rng.integers(40, 160))
        top, left = int(rng.integers(0, photo.shape[0] - h)), int(rng.integers(0, photo.shape[1] - w))
        out.append(photo[top:top + h, left:left + w])
    return out


@pytest.fixture(scope="session")
def photo_dir(tmp_path_factory):
    """root/{china,flower}/...: 11 images per class in png, jpg, jpeg, JPG, bmp, ppm, tif, gif (not in
    flow_from_directory's list), grayscale and RGBA pngs, one in a nested folder, plus a text file."""
    root = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    china, flower = _sample_photos()
    for name, photo in (("china", china), ("flower", flower)):
        d = root / name
        (d / "nested").mkdir(parents=True)
        crops = _crops(photo, 11, rng)
        Image = _pil()
        Image.fromarray(crops[0]).save(d / "a0.png")
        Image.fromarray(crops[1]).save(d / "a1.jpg", quality=90)
        Image.fromarray(crops[2]).save(d / "a2.jpeg", quality=75)
        Image.fromarray(crops[3]).save(d / "A3.JPG", quality=95)
        Image.fromarray(crops[4]).save(d / "b4.bmp")
        Image.fromarray(crops[5]).save(d / "b5.ppm")
        Image.fromarray(crops[6]).save(d / "b6.tif")
        Image.fromarray(crops[7]).convert("L").save(d / "c7_gray.png")
        rgba = np.dstack([crops[8], rng.integers(0, 256, crops[8].shape[:2], dtype=np.uint8)])
        Image.fromarray(rgba, "RGBA").save(d / "c8_rgba.png")
        Image.fromarray(crops[9]).save(d / "nested" / "d9.png")
        Image.fromarray(crops[10]).save(d / "e10.gif")
        (d / "notes.txt").write_text("not an image")
    return root


@pytest.fixture(scope="session")
def digits_dir(tmp_path_factory):
    """root/{zero,one}/: scikit-learn digits 0 and 1 (8x8, 0..16) as 8-bit grayscale PNGs, 20 per class."""
    datasets = pytest.importorskip("sklearn.datasets")
    digits = datasets.load_digits()
    root = tmp_path_factory.mktemp("digits")
    for label, name in ((0, "zero"), (1, "one")):
        (root / name).mkdir()
        imgs = digits.images[digits.target == label][:20]
        for i, img in enumerate(imgs):
            _pil().fromarray((img * 15).astype(np.uint8), "L").save(root / name / f"{i:03d}.png")
    return root


@pytest.fixture(scope="session")
def tf_keras():
    """tf.keras 2, the reference (skips without it)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return pytest.importorskip("tf_keras")


@pytest.fixture(scope="session")
def keras_image(tf_keras):
    from tf_keras.src.preprocessing import image
    return image

# tf.keras 2 calls scipy through a namespace scipy deprecates; not ours to fix.
IGNORE_KERAS_SCIPY_WARNING = pytest.mark.filterwarnings("ignore:Please import `affine_transform`:DeprecationWarning")
