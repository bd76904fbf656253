"""keras.utils: to_categorical, Sequence / PyDataset, and the Pillow helpers against tf.keras 2's."""
import io
import warnings

import numpy as np
import pytest

from pyfastnn.keras import utils
from pyfastnn.keras.preprocessing import image
from keras_image_data import photo_dir, tf_keras  # noqa: F401 (fixtures)


def test_to_categorical_matches_tf_keras(tf_keras):
    for y, n in [([0, 2, 1, 2], None), ([[1], [0], [3]], None), (np.arange(6).reshape(2, 3), 7), ([1.0, 0.0], 3),
                 (np.array([], dtype=int), 2)]:
        want = tf_keras.utils.to_categorical(y, n)
        got = utils.to_categorical(y, n)
        assert got.shape == want.shape and got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
    assert utils.to_categorical([1, 0], dtype="int32").dtype == np.int32


def test_to_categorical_bad_labels():
    with pytest.raises(ValueError, match=">= 0"):
        utils.to_categorical([0, -1])
    with pytest.raises(ValueError, match="out of range"):
        utils.to_categorical([0, 3], num_classes=3)
    with pytest.raises(ValueError, match="integers"):
        utils.to_categorical([0.5, 1])
    with pytest.raises(TypeError, match="integers"):
        utils.to_categorical(["cat", "dog"])
    with pytest.raises(ValueError, match="num_classes"):
        utils.to_categorical([0], num_classes=0)


class Squares(utils.Sequence):
    def __init__(self):
        self.epochs = 0

    def __len__(self):
        return 3

    def __getitem__(self, i):
        x = np.full((2, 1), i, np.float32)
        return x, x ** 2

    def on_epoch_end(self):
        self.epochs += 1


class Counted(utils.PyDataset):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)

    @property
    def num_batches(self):
        return 4

    def __getitem__(self, i):
        return np.full((1, 2), i, np.float32), np.zeros((1,), np.float32)


class NoSuper(utils.PyDataset):
    def __init__(self):
        self.size = 1

    def __len__(self):
        return 1

    def __getitem__(self, i):
        return np.zeros((1, 1)), np.zeros((1,))


def test_sequence_and_pydataset():
    seq = Squares()
    assert [b[1][0, 0] for b in seq] == [0, 1, 4]
    ds = Counted(workers=3, use_multiprocessing=False, max_queue_size=5)
    assert (ds.workers, ds.use_multiprocessing, ds.max_queue_size) == (3, False, 5)
    assert len(ds) == ds.num_batches == 4 and len(list(ds)) == 4
    ds.on_epoch_begin()
    ds.on_epoch_end()
    with pytest.warns(UserWarning, match="super"):
        assert NoSuper().workers == 1
    with pytest.raises(ValueError, match="workers"):
        Counted(workers=0)


def test_sequences_train_a_model():
    """A Sequence, a PyDataset and flow(...) iterators go straight into fit/evaluate/predict."""
    keras = pytest.importorskip("pyfastnn.keras")
    from pyfastnn.keras import Sequential, layers
    rng = np.random.default_rng(0)
    x = (rng.random((24, 8, 8, 1)) * 255).astype(np.float32)
    y = (x.mean((1, 2, 3)) > 127).astype(np.float32)
    model = Sequential([layers.Conv2D(2, 3, activation="relu", input_shape=(8, 8, 1)), layers.Flatten(),
                        layers.Dense(1, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy", metrics=["accuracy"])
    it = image.ImageDataGenerator(rescale=1. / 255, rotation_range=10, horizontal_flip=True).flow(x, y, batch_size=6,
                                                                                                   seed=0)
    hist = model.fit(it, epochs=2, validation_data=it, validation_steps=2, verbose=0)
    assert len(hist.history["loss"]) == 2 and np.isfinite(hist.history["val_loss"]).all()
    assert model.predict(it, steps=1, verbose=0).shape == (6, 1)
    assert keras is not None


def test_load_img_and_arrays_match_tf_keras(tf_keras, photo_dir):
    from tf_keras.src.utils import image_utils as ku
    for name in ("china/a0.png", "china/a1.jpg", "flower/c7_gray.png", "flower/c8_rgba.png", "flower/b5.ppm"):
        path = str(photo_dir / name)
        for kw in [dict(), dict(color_mode="grayscale"), dict(color_mode="rgba", target_size=(20, 30)),
                   dict(target_size=(33, 17), interpolation="bilinear", keep_aspect_ratio=True),
                   dict(target_size=(40, 40), interpolation="hamming")]:
            a, b = image.load_img(path, **kw), ku.load_img(path, **kw)
            assert a.mode == b.mode and a.size == b.size
            xa, xb = image.img_to_array(a), ku.img_to_array(b)
            assert xa.dtype == xb.dtype == np.float32
            np.testing.assert_array_equal(xa, xb)
            np.testing.assert_array_equal(image.img_to_array(a, data_format="channels_first"),
                                          ku.img_to_array(b, data_format="channels_first"))
    with open(photo_dir / "china" / "a0.png", "rb") as f:
        buf = io.BytesIO(f.read())
    assert image.load_img(buf).size == ku.load_img(str(photo_dir / "china" / "a0.png")).size
    rng = np.random.default_rng(0)
    for shape in [(5, 6, 3), (5, 6, 4), (5, 6, 1)]:
        x = rng.random(shape).astype(np.float32) * 300 - 20
        for scale in (True, False):
            a, b = image.array_to_img(x, scale=scale), ku.array_to_img(x, scale=scale)
            assert a.mode == b.mode
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_save_img_round_trip_and_errors(tmp_path, photo_dir):
    x = np.random.default_rng(1).random((6, 7, 3)).astype(np.float32) * 255
    utils.save_img(str(tmp_path / "x.png"), x, scale=False)
    back = utils.img_to_array(utils.load_img(str(tmp_path / "x.png")))
    np.testing.assert_array_equal(back, x.astype(np.uint8))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        utils.save_img(str(tmp_path / "x.jpg"), np.dstack([x, x[..., :1]]), file_format="jpeg")
    assert any("RGBA" in str(w.message) for w in caught)
    with pytest.raises(TypeError, match="path"):
        utils.load_img(3)
    with pytest.raises(FileNotFoundError):
        utils.load_img(str(tmp_path / "missing.png"))
    with pytest.raises(ValueError, match="color_mode"):
        utils.load_img(str(photo_dir / "china" / "a0.png"), color_mode="cmyk")
    with pytest.raises(TypeError, match="target_size"):
        utils.load_img(str(photo_dir / "china" / "a0.png"), target_size=64)
    with pytest.raises(ValueError, match="rank 3"):
        utils.array_to_img(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="channel"):
        utils.array_to_img(np.zeros((2, 3, 2)))
    (tmp_path / "fake.png").write_text("no")
    PIL = pytest.importorskip("PIL.Image")
    with pytest.raises(PIL.UnidentifiedImageError, match="fake.png"):
        utils.load_img(str(tmp_path / "fake.png"))


def test_smart_resize_matches_tf_keras(tf_keras):
    from tf_keras.src.utils import image_utils as ku
    x = np.random.default_rng(2).random((2, 23, 31, 3)).astype(np.float32) * 255
    for size in [(10, 10), (40, 12)]:
        np.testing.assert_allclose(image.smart_resize(x, size), ku.smart_resize(x, size), atol=2e-3, rtol=0)
        np.testing.assert_allclose(image.smart_resize(x[0], size, interpolation="nearest"),
                                   ku.smart_resize(x[0], size, interpolation="nearest"), atol=0)
