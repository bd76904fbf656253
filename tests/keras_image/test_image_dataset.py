"""image_dataset_from_directory against tf.keras 2's (file order, splits, labels, pixels) and its errors."""
import numpy as np
import pytest

from pyfastnn.keras import utils
from keras_image_data import digits_dir, photo_dir, tf_keras  # noqa: F401 (fixtures)


def both(tf_keras, root, **kw):
    theirs = tf_keras.utils.image_dataset_from_directory(str(root), **kw)
    ours = utils.image_dataset_from_directory(str(root), **kw)
    return ours, theirs


def gather(ds, tensors):
    xs, ys = [], []
    for batch in ds:
        if not isinstance(batch, tuple):
            batch = (batch,)
        xs.append(batch[0].numpy() if tensors else batch[0])
        if len(batch) > 1:
            ys.append(batch[1].numpy() if tensors else batch[1])
    return np.concatenate(xs), (np.concatenate(ys) if ys else None)


@pytest.mark.parametrize("kw", [dict(), dict(label_mode="categorical", interpolation="nearest"),
                                dict(label_mode="binary", interpolation="area", color_mode="rgb"),
                                dict(interpolation="bicubic", crop_to_aspect_ratio=True),
                                dict(label_mode=None, image_size=(9, 7))],
                         ids=["int-bilinear", "categorical-nearest", "binary-area", "bicubic-crop", "no-labels"])
def test_unshuffled_pixels_and_labels_match_tf_keras(tf_keras, digits_dir, kw):
    kw = dict(dict(image_size=(20, 12), batch_size=7, shuffle=False), **kw)
    ours, theirs = both(tf_keras, digits_dir, **kw)
    assert ours.file_paths == theirs.file_paths and ours.class_names == theirs.class_names
    # without labels tf.keras walks the whole tree as one nameless class
    assert ours.class_names == ([""] if kw.get("label_mode", "int") is None else ["one", "zero"])
    assert len(ours) == 6
    ox, oy = gather(ours, False)
    tx, ty = gather(theirs, True)
    assert ox.dtype == np.float32 and ox.shape == tx.shape
    np.testing.assert_allclose(ox, tx, rtol=0, atol=2e-3)
    if ty is None:
        assert oy is None
    else:
        assert oy.dtype == ty.dtype and oy.shape == ty.shape
        np.testing.assert_array_equal(oy, ty)


def test_jpeg_pixels_within_decoder_differences(tf_keras, photo_dir):
    """TensorFlow decodes JPEG with libjpeg's fast integer IDCT, Pillow with the accurate one: a few levels
    apart on JPEG files, equal on the others."""
    ours, theirs = both(tf_keras, photo_dir, image_size=(30, 40), batch_size=4, shuffle=False)
    assert ours.file_paths == theirs.file_paths
    ox, oy = gather(ours, False)
    tx, ty = gather(theirs, True)
    np.testing.assert_array_equal(oy, ty)
    jpeg = np.array([p.lower().endswith((".jpg", ".jpeg")) for p in ours.file_paths])
    assert jpeg.any() and (~jpeg).any()
    np.testing.assert_allclose(ox[~jpeg], tx[~jpeg], rtol=0, atol=2e-3)
    assert np.abs(ox[jpeg] - tx[jpeg]).max() <= 12 and np.abs(ox[jpeg] - tx[jpeg]).mean() < 1.5


@pytest.mark.parametrize("subset", ["training", "validation", "both", None])
def test_shuffled_file_order_and_splits_match_tf_keras(tf_keras, photo_dir, subset, capsys):
    kw = dict(image_size=(8, 8), batch_size=5, seed=42)
    if subset:
        kw.update(validation_split=0.3, subset=subset)
    ours, theirs = both(tf_keras, photo_dir, **kw)
    out = capsys.readouterr().out
    if subset == "both":
        assert [o.file_paths for o in ours] == [t.file_paths for t in theirs]
        assert len(ours[0].file_paths) == 13 and len(ours[1].file_paths) == 5
    else:
        assert ours.file_paths == theirs.file_paths
        assert "Found 18 files belonging to 2 classes." in out
    if subset in ("training", "validation"):
        assert f"Using {13 if subset == 'training' else 5} files for {subset}." in out


def test_labels_follow_shuffled_files_and_reshuffle_per_pass(photo_dir):
    ds = utils.image_dataset_from_directory(str(photo_dir), image_size=(6, 6), batch_size=4, seed=3)
    names = [p.split("/")[-2] if "nested" not in p else p.split("/")[-3] for p in ds.file_paths]
    first = [b[1] for b in ds]
    second = [b[1] for b in ds]
    assert sorted(np.concatenate(first)) == sorted(np.concatenate(second))
    assert any(not np.array_equal(a, b) for a, b in zip(first, second))
    order = ds._order
    np.testing.assert_array_equal(np.concatenate([b[1] for b in ds]), [ds.class_names.index(names[i]) for i in order])


def test_explicit_labels_no_batching_and_tf_data_conveniences(digits_dir):
    n = 40
    ds = utils.image_dataset_from_directory(str(digits_dir), labels=list(range(n)), batch_size=None,
                                            image_size=(8, 8), shuffle=False, color_mode="grayscale")
    assert ds.class_names == list(range(n)) and len(ds) == n
    x, y = ds[0]
    assert x.shape == (8, 8, 1) and y == 0 and ds[39][1] == 39
    batched = utils.image_dataset_from_directory(str(digits_dir), image_size=(8, 8), batch_size=16, shuffle=False)
    two = batched.take(2)
    assert len(two) == 2 and len(list(two)) == 2
    mapped = batched.map(lambda im, lab: (im / 255.0, lab + 10)).prefetch(4).cache()
    im, lab = mapped[0]
    assert im.max() <= 1.0 and set(lab) <= {10, 11}
    assert batched.cache() is batched and len(batched.cache()) == 3
    padded = utils.image_dataset_from_directory(str(digits_dir), image_size=(8, 16), batch_size=4, shuffle=False,
                                                pad_to_aspect_ratio=True, label_mode=None)
    x = padded[0]
    assert x.shape == (4, 8, 16, 3) and np.all(x[:, :, :4] == 0) and np.all(x[:, :, -4:] == 0)
    first = utils.image_dataset_from_directory(str(digits_dir), image_size=(8, 8), batch_size=4, shuffle=False,
                                               data_format="channels_first")
    assert first[0][0].shape == (4, 3, 8, 8)


def test_bad_arguments_and_directories(tmp_path, digits_dir, photo_dir):
    f = utils.image_dataset_from_directory
    with pytest.raises(FileNotFoundError, match="nowhere"):
        f(str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="No images found in directory .*empty"):
        f(str(tmp_path / "empty"))
    for kw, err, msg in [(dict(label_mode="onehot"), ValueError, "label_mode"),
                         (dict(color_mode="cmyk"), ValueError, "color_mode"),
                         (dict(image_size=(8,)), ValueError, "image_size"),
                         (dict(image_size="big"), ValueError, "image_size"),
                         (dict(interpolation="lanczos7"), ValueError, "interpolation"),
                         (dict(validation_split=0.2), ValueError, "subset"),
                         (dict(validation_split=0.2, subset="training"), ValueError, "seed"),
                         (dict(validation_split=1.2, subset="training", seed=1), ValueError, "validation_split"),
                         (dict(labels="folders"), ValueError, "labels"),
                         (dict(labels=[0, 1]), ValueError, "lengths of `labels`"),
                         (dict(class_names=["a", "b"]), ValueError, "class_names"),
                         (dict(batch_size=0), ValueError, "batch_size"),
                         (dict(crop_to_aspect_ratio=True, pad_to_aspect_ratio=True), ValueError, "Only one"),
                         (dict(zoom=2), TypeError, "zoom")]:
        with pytest.raises(err, match=msg):
            f(str(digits_dir), **kw)
    three = tmp_path / "three"
    for c in "abc":
        (three / c).mkdir(parents=True)
        (three / c / "x.png").write_bytes((digits_dir / "one" / "000.png").read_bytes())
    with pytest.raises(ValueError, match="exactly 2"):
        f(str(three), label_mode="binary")


def test_corrupt_file_fails_its_batch_naming_it(tmp_path, digits_dir):
    PIL = pytest.importorskip("PIL.Image")
    root = tmp_path / "data"
    (root / "a").mkdir(parents=True)
    (root / "a" / "good.png").write_bytes((digits_dir / "one" / "000.png").read_bytes())
    (root / "a" / "bad.png").write_text("garbage")
    ds = utils.image_dataset_from_directory(str(root), image_size=(4, 4), batch_size=1, shuffle=False)
    with pytest.raises(PIL.UnidentifiedImageError, match="bad.png"):
        ds[0]
    assert ds[1][0].shape == (1, 4, 4, 3)
