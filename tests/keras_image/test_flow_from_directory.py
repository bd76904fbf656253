"""flow_from_directory against tf.keras 2 (listing, labels, pixels, shuffling, subsets) and its errors."""
import os
import shutil
import threading

import numpy as np
import pytest

from pyfastnn.keras.preprocessing import _imaging, image
from keras_image_data import IGNORE_KERAS_SCIPY_WARNING, keras_image, photo_dir, tf_keras  # noqa: F401 (fixtures)

pytestmark = IGNORE_KERAS_SCIPY_WARNING

AUG = dict(rescale=1. / 255, rotation_range=40, width_shift_range=0.2, height_shift_range=0.2, shear_range=0.2,
           zoom_range=0.2, horizontal_flip=True, fill_mode="nearest")


def both(keras_image, gen_kw, root, **kw):
    ours = image.ImageDataGenerator(**gen_kw).flow_from_directory(str(root), **kw)
    theirs = keras_image.ImageDataGenerator(**gen_kw).flow_from_directory(str(root), **kw)
    return ours, theirs


def assert_same_listing(ours, theirs):
    assert ours.filenames == theirs.filenames
    assert ours.filepaths == theirs.filepaths
    assert ours.class_indices == theirs.class_indices
    np.testing.assert_array_equal(ours.classes, theirs.classes)
    assert ours.classes.dtype == theirs.classes.dtype
    assert (ours.samples, ours.n, ours.num_classes, len(ours)) == (theirs.samples, theirs.n, theirs.num_classes,
                                                                   len(theirs))
    assert ours.image_shape == theirs.image_shape


def assert_same_batches(ours, theirs, steps):
    for step in range(steps):
        a, b = ours[step % len(ours)], theirs[step % len(theirs)]
        if isinstance(b, tuple):
            np.testing.assert_array_equal(a[1], b[1])
            assert a[1].dtype == b[1].dtype
            a, b = a[0], b[0]
        assert a.dtype == b.dtype == np.float32 and a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-4)


@pytest.mark.parametrize("class_mode", ["categorical", "binary", "sparse", "input", None])
def test_rescale_only_unshuffled_matches_tf_keras(keras_image, photo_dir, class_mode, capsys):
    ours, theirs = both(keras_image, dict(rescale=1. / 255), photo_dir, target_size=(37, 45), batch_size=5,
                        shuffle=False, class_mode=class_mode)
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == printed[1] == "Found 20 images belonging to 2 classes."
    assert_same_listing(ours, theirs)
    assert ours.class_indices == {"china": 0, "flower": 1}
    assert ours.filenames[:4] == ["china/A3.JPG", "china/a0.png", "china/a1.jpg", "china/a2.jpeg"]
    assert "china/nested/d9.png" in ours.filenames and not any(f.endswith((".gif", ".txt")) for f in ours.filenames)
    assert_same_batches(ours, theirs, len(ours))


@pytest.mark.parametrize("kw", [dict(color_mode="grayscale", interpolation="bilinear"),
                                dict(color_mode="rgba", keep_aspect_ratio=True, interpolation="bicubic"),
                                dict(target_size=(64, 24), interpolation="lanczos", keep_aspect_ratio=True),
                                dict(classes=["flower", "china"], class_mode="sparse")],
                         ids=["grayscale", "rgba-aspect", "lanczos-aspect", "classes"])
def test_color_modes_resampling_and_classes_match_tf_keras(keras_image, photo_dir, kw):
    kw = dict(dict(target_size=(30, 50), batch_size=6, shuffle=False), **kw)
    ours, theirs = both(keras_image, dict(rescale=1. / 255), photo_dir, **kw)
    assert_same_listing(ours, theirs)
    assert_same_batches(ours, theirs, len(ours))


def test_seeded_augmented_shuffled_batches_match_tf_keras(keras_image, photo_dir):
    ours, theirs = both(keras_image, AUG, photo_dir, target_size=(40, 40), batch_size=6, seed=11,
                        class_mode="binary")
    assert_same_listing(ours, theirs)
    assert_same_batches(ours, theirs, len(ours))
    np.testing.assert_array_equal(ours.index_array, theirs.index_array)
    ours.on_epoch_end()
    theirs.on_epoch_end()
    np.testing.assert_array_equal(ours.index_array, theirs.index_array)
    assert_same_batches(ours, theirs, 2)
    for _ in range(6):                      # next() walks the data endlessly, reshuffling at each pass
        a, b = next(ours), next(theirs)
        np.testing.assert_array_equal(a[1], b[1])
        np.testing.assert_allclose(a[0], b[0], rtol=0, atol=1e-4)


@pytest.mark.parametrize("subset", ["training", "validation"])
def test_validation_split_subsets_match_tf_keras(keras_image, photo_dir, subset):
    ours, theirs = both(keras_image, dict(validation_split=0.3, rescale=1. / 255), photo_dir, target_size=(20, 20),
                        subset=subset, seed=5, batch_size=4)
    assert_same_listing(ours, theirs)
    assert ours.samples == (14 if subset == "training" else 6)
    assert_same_batches(ours, theirs, len(ours))


def test_iterator_state_and_shuffling(photo_dir, capsys):
    it = image.ImageDataGenerator().flow_from_directory(str(photo_dir), target_size=(8, 8), batch_size=6, seed=1)
    assert len(it) == 4 and it.batch_size == 6 and it.index_array is None
    x, y = it[3]
    assert x.shape == (2, 8, 8, 3) and y.shape == (2, 2) and y.dtype == np.float32
    order = it.index_array.copy()
    assert sorted(order) == list(range(20)) and list(order) != list(range(20))
    it.on_epoch_end()
    assert sorted(it.index_array) == list(range(20)) and list(it.index_array) != list(order)
    unshuffled = image.ImageDataGenerator().flow_from_directory(str(photo_dir), target_size=(8, 8), shuffle=False)
    unshuffled[0]
    assert unshuffled.index_array.tolist() == list(range(20))
    it.reset()
    assert it.batch_index == 0 and iter(it) is it


def test_batches_from_several_threads_are_the_right_images(photo_dir):
    it = image.ImageDataGenerator(rescale=1. / 255).flow_from_directory(str(photo_dir), target_size=(16, 16),
                                                                         batch_size=3, shuffle=False)
    want = [it[i] for i in range(len(it))]
    got = [None] * len(it)

    def work(i):
        got[i] = it[i]
    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(it))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for a, b in zip(want, got):
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])


def test_save_to_dir_writes_the_batch(photo_dir, tmp_path):
    it = image.ImageDataGenerator(rotation_range=10).flow_from_directory(
        str(photo_dir), target_size=(12, 12), batch_size=4, save_to_dir=str(tmp_path), save_prefix="aug",
        save_format="png", seed=0)
    it[0]
    saved = sorted(os.listdir(tmp_path))
    assert len(saved) == 4 and all(f.startswith("aug_") and f.endswith(".png") for f in saved)


def corrupt_dir(root):
    """root/a: a good png, a text file named .jpg; root/b: a png cut in half, notes.txt (not listed)."""
    PIL = pytest.importorskip("PIL.Image")
    (root / "a").mkdir()
    (root / "b").mkdir()
    PIL.fromarray(np.full((20, 20, 3), 200, np.uint8)).save(root / "a" / "ok.png")
    (root / "a" / "fake.jpg").write_text("not an image at all")
    PIL.fromarray((np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)).save(root / "b" / "t.png")
    data = (root / "b" / "t.png").read_bytes()
    (root / "b" / "t.png").write_bytes(data[:len(data) // 2])
    (root / "b" / "notes.txt").write_text("hello")
    return root


def test_corrupt_files_fail_their_batch_naming_the_file(tmp_path):
    """As in tf.keras 2: files are listed by extension, and a file Pillow cannot read fails the batch that loads
    it (tf.keras says 'cannot identify image file <_io.BytesIO ...>'; here the error names the file)."""
    PIL = pytest.importorskip("PIL.Image")
    root = corrupt_dir(tmp_path)
    it = image.ImageDataGenerator().flow_from_directory(str(root), target_size=(10, 10), batch_size=1,
                                                        shuffle=False)
    assert it.filenames == ["a/fake.jpg", "a/ok.png", "b/t.png"]
    with pytest.raises(PIL.UnidentifiedImageError, match="fake.jpg"):
        it[0]
    assert it[1][0].shape == (1, 10, 10, 3)
    with pytest.raises(OSError, match=r"t\.png.*truncated"):
        it[2]


def test_corrupt_listing_matches_tf_keras(keras_image, tmp_path):
    root = corrupt_dir(tmp_path)
    ours, theirs = both(keras_image, {}, root, target_size=(10, 10), batch_size=1, shuffle=False)
    assert_same_listing(ours, theirs)


def test_bad_directories_name_the_directory(tmp_path, photo_dir):
    gen = image.ImageDataGenerator()
    with pytest.raises(FileNotFoundError, match="nowhere"):
        gen.flow_from_directory(str(tmp_path / "nowhere"))
    (tmp_path / "file.png").write_bytes(b"x")
    with pytest.raises(NotADirectoryError, match="file.png"):
        gen.flow_from_directory(str(tmp_path / "file.png"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="found no images in .*empty"):
        gen.flow_from_directory(str(empty))
    flat = tmp_path / "flat"
    flat.mkdir()
    shutil.copy(photo_dir / "china" / "a0.png", flat / "a0.png")
    with pytest.raises(ValueError, match="one subfolder per class"):
        gen.flow_from_directory(str(flat))
    with pytest.raises(ValueError, match="not found"):
        gen.flow_from_directory(str(photo_dir), classes=["china", "tiger"])
    with pytest.raises(TypeError, match="directory"):
        gen.flow_from_directory(None)


@pytest.mark.parametrize("target_size", [150, (150,), (150, 150, 3), (150.0, 150.0), "150x150", None, (True, 4)])
def test_target_size_of_wrong_type(photo_dir, target_size):
    with pytest.raises(TypeError, match="target_size"):
        image.ImageDataGenerator().flow_from_directory(str(photo_dir), target_size=target_size)


def test_other_bad_arguments(photo_dir):
    gen = image.ImageDataGenerator()
    for kw, err, msg in [(dict(target_size=(0, 5)), ValueError, "target_size"),
                         (dict(color_mode="cmyk"), ValueError, "color mode"),
                         (dict(class_mode="multi"), ValueError, "class_mode"),
                         (dict(interpolation="cubic"), ValueError, "interpolation"),
                         (dict(batch_size=0), ValueError, "batch_size"),
                         (dict(seed=-1), ValueError, "seed"),
                         (dict(subset="validation"), ValueError, "validation_split"),
                         (dict(subset="test"), ValueError, "subset")]:
        with pytest.raises(err, match=msg):
            gen.flow_from_directory(str(photo_dir), **kw)


def test_missing_pillow_is_a_clear_import_error(photo_dir, monkeypatch):
    def no_pillow(name, *args, **kwargs):
        raise ImportError(f"No module named {name!r}")
    monkeypatch.setattr(_imaging, "_PIL", None)
    monkeypatch.setattr(_imaging.importlib, "import_module", no_pillow)
    with pytest.raises(ImportError, match=r"pyfastnn\[image\]"):
        image.ImageDataGenerator().flow_from_directory(str(photo_dir))
    with pytest.raises(ImportError, match="Pillow"):
        image.load_img(str(photo_dir / "china" / "a0.png"))
