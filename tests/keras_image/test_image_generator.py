"""ImageDataGenerator against tf.keras 2's: fixed transforms per fill mode, seeded random transforms, featurewise
fit, flow(x, y) batches and validation subsets; and its own checks (statistics, determinism, bad arguments)."""
import warnings

import numpy as np
import pytest

from pyfastnn.keras.preprocessing import image
from keras_image_data import IGNORE_KERAS_SCIPY_WARNING, keras_image, tf_keras  # noqa: F401 (fixtures)

pytestmark = IGNORE_KERAS_SCIPY_WARNING

TUTORIAL = dict(rescale=1. / 255, rotation_range=40, width_shift_range=0.2, height_shift_range=0.2, shear_range=0.2,
                zoom_range=0.2, horizontal_flip=True, fill_mode="nearest")


@pytest.fixture(scope="module")
def photo():
    """A 48x40 crop of scikit-learn's china.jpg, float32 0..255."""
    pytest.importorskip("PIL")                      # scikit-learn decodes its sample JPEGs with Pillow
    datasets = pytest.importorskip("sklearn.datasets")
    return datasets.load_sample_images().images[0][100:148, 200:240].astype(np.float32)


COMPOSITE = {"theta": 23.0, "tx": 4.5, "ty": -7.25, "shear": 11.0, "zx": 0.85, "zy": 1.2, "flip_horizontal": True,
             "flip_vertical": False, "channel_shift_intensity": 15.0, "brightness": None}


@pytest.mark.parametrize("fill_mode", ["constant", "nearest", "reflect", "wrap"])
@pytest.mark.parametrize("params", [{"theta": 33.0}, {"tx": 9.0, "ty": -13.5}, {"shear": 25.0},
                                    {"zx": 0.6, "zy": 1.4}, COMPOSITE], ids=["rotate", "shift", "shear", "zoom",
                                                                             "composite"])
def test_apply_transform_matches_tf_keras(keras_image, photo, fill_mode, params):
    kw = dict(fill_mode=fill_mode, cval=31.0)
    want = keras_image.ImageDataGenerator(**kw).apply_transform(photo, params)
    got = image.ImageDataGenerator(**kw).apply_transform(photo, params)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-4)


def test_apply_transform_channels_first_gray_and_brightness(keras_image, photo):
    for kw, x, params in [
            (dict(data_format="channels_first", fill_mode="reflect"), photo.transpose(2, 0, 1), COMPOSITE),
            (dict(fill_mode="wrap"), photo[..., :1], dict(COMPOSITE, flip_vertical=True)),
            (dict(), photo, dict(COMPOSITE, brightness=1.37)),
            (dict(), photo[..., :1], {"theta": -12.0, "brightness": 0.6}),
            (dict(), photo * 2.0 - 100.0, {"brightness": 1.2, "channel_shift_intensity": -30.0}),
            (dict(interpolation_order=0), photo, COMPOSITE)]:
        want = keras_image.ImageDataGenerator(**kw).apply_transform(x, params)
        got = image.ImageDataGenerator(**kw).apply_transform(x, params)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-4, err_msg=str(kw))


def test_module_functions_match_tf_keras(keras_image, photo):
    chw = photo.transpose(2, 0, 1)
    for kw in [dict(theta=17.0, tx=3, ty=-2.5, shear=8.0, zx=1.1, zy=0.9), dict(tx=5, ty=0), dict()]:
        np.testing.assert_allclose(image.apply_affine_transform(chw, **kw, fill_mode="constant", cval=2.0),
                                   keras_image.apply_affine_transform(chw, **kw, fill_mode="constant", cval=2.0),
                                   atol=1e-4, rtol=0)
    u8 = photo.astype(np.uint8)
    np.testing.assert_array_equal(
        image.apply_affine_transform(u8, theta=30, row_axis=0, col_axis=1, channel_axis=2),
        keras_image.apply_affine_transform(u8, theta=30, row_axis=0, col_axis=1, channel_axis=2))
    np.testing.assert_allclose(image.apply_channel_shift(chw, 20.0), keras_image.apply_channel_shift(chw, 20.0))
    for scale in (True, False):
        np.testing.assert_allclose(image.apply_brightness_shift(photo, 0.7, scale),
                                   keras_image.apply_brightness_shift(photo, 0.7, scale), atol=1e-4)
    np.testing.assert_array_equal(image.flip_axis(photo, 1), keras_image.flip_axis(photo, 1))


def test_get_random_transform_draws_as_tf_keras(keras_image):
    kw = dict(TUTORIAL, channel_shift_range=10.0, brightness_range=(0.5, 1.5), vertical_flip=True)
    for seed in (0, 1, 12345):
        want = keras_image.ImageDataGenerator(**kw).get_random_transform((60, 50, 3), seed=seed)
        got = image.ImageDataGenerator(**kw).get_random_transform((60, 50, 3), seed=seed)
        assert want.keys() == got.keys()
        for key in want:
            assert got[key] == pytest.approx(want[key]), key
    for shifts in ([2, 5, 9], 4, 3.0):       # a list picks a value, an int picks 0..n-1 pixels, a float >= 1 pixels
        want = keras_image.ImageDataGenerator(width_shift_range=shifts).get_random_transform((10, 10, 1), seed=3)
        got = image.ImageDataGenerator(width_shift_range=shifts).get_random_transform((10, 10, 1), seed=3)
        assert got["ty"] == want["ty"]


def test_random_transform_statistics_and_seeds(photo):
    gen = image.ImageDataGenerator(rotation_range=30, width_shift_range=0.1, zoom_range=(0.5, 0.9),
                                   horizontal_flip=True)
    np.random.seed(0)
    draws = [gen.get_random_transform(photo.shape) for _ in range(2000)]
    theta = np.array([d["theta"] for d in draws])
    ty = np.array([d["ty"] for d in draws])
    zoom = np.array([[d["zx"], d["zy"]] for d in draws])
    flips = np.array([bool(d["flip_horizontal"]) for d in draws])
    assert np.abs(theta).max() <= 30 and abs(theta.mean()) < 1.5 and theta.std() == pytest.approx(30 / 3 ** .5, rel=.1)
    assert np.abs(ty).max() <= 0.1 * photo.shape[1]
    assert zoom.min() >= 0.5 and zoom.max() <= 0.9
    assert 0.45 < flips.mean() < 0.55
    assert all(not d["flip_vertical"] and d["shear"] == 0 and d["tx"] == 0 for d in draws)
    a, b = gen.random_transform(photo, seed=7), gen.random_transform(photo, seed=7)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, gen.random_transform(photo, seed=8))
    plain = image.ImageDataGenerator()
    np.testing.assert_array_equal(plain.random_transform(photo, seed=1), photo)


@pytest.mark.parametrize("kw", [dict(featurewise_center=True), dict(featurewise_center=True,
                                                                     featurewise_std_normalization=True),
                                dict(zca_whitening=True, rescale=1 / 255.)], ids=["center", "std", "zca"])
def test_fit_featurewise_matches_tf_keras(keras_image, kw):
    rng = np.random.default_rng(0)
    x = (rng.random((12, 6, 5, 3)) * 255).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours, theirs = image.ImageDataGenerator(**kw), keras_image.ImageDataGenerator(**kw)
    ours.fit(x)
    theirs.fit(x)
    for attr in ("mean", "std", "zca_whitening_matrix"):
        a, b = getattr(ours, attr), getattr(theirs, attr)
        assert (a is None) == (b is None), attr
        if a is not None:
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5, err_msg=attr)
    np.testing.assert_allclose(ours.standardize(x[0].copy()), theirs.standardize(x[0].copy()), rtol=1e-4,
                               atol=1e-4)
    aug = dict(kw, rotation_range=20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours, theirs = image.ImageDataGenerator(**aug), keras_image.ImageDataGenerator(**aug)
    ours.fit(x, augment=True, rounds=2, seed=4)
    theirs.fit(x, augment=True, rounds=2, seed=4)
    np.testing.assert_allclose(ours.mean, theirs.mean, rtol=1e-4, atol=1e-4)


def test_standardize_warns_before_fit_and_samplewise(photo):
    gen = image.ImageDataGenerator(featurewise_center=True)
    with pytest.warns(UserWarning, match="hasn't been fit"):
        gen.standardize(photo.copy())
    with pytest.warns(UserWarning, match="overrides"):
        gen = image.ImageDataGenerator(samplewise_std_normalization=True)
    out = gen.standardize(photo.copy())
    assert abs(out.mean()) < 1e-4 and out.std() == pytest.approx(1.0, rel=1e-3)


FLOW_CASES = [TUTORIAL,
              dict(rotation_range=30, channel_shift_range=20, vertical_flip=True, fill_mode="reflect"),
              dict(width_shift_range=5, height_shift_range=[1, 3], fill_mode="wrap", zoom_range=[0.5, 1.2]),
              dict(rotation_range=10, brightness_range=[0.5, 1.5], fill_mode="constant", cval=3.0),
              dict(rotation_range=40, data_format="channels_first"),
              dict(rescale=2.0, preprocessing_function=lambda im: im[::-1].copy())]


@pytest.mark.parametrize("kw", FLOW_CASES, ids=["tutorial", "reflect", "wrap", "brightness", "channels_first",
                                                "preprocessing_function"])
def test_flow_batches_match_tf_keras(keras_image, kw):
    rng = np.random.default_rng(1)
    x = (rng.random((11, 20, 17, 3)) * 255).astype(np.float32)
    if kw.get("data_format") == "channels_first":
        x = x.transpose(0, 3, 1, 2)
    y = np.arange(11)
    w = rng.random(11)
    ours = image.ImageDataGenerator(**kw).flow(x, y, batch_size=4, seed=3, sample_weight=w)
    theirs = keras_image.ImageDataGenerator(**kw).flow(x, y, batch_size=4, seed=3, sample_weight=w)
    assert len(ours) == len(theirs) == 3
    for step in range(7):
        if step == 3:
            ours.on_epoch_end()
            theirs.on_epoch_end()
        a, b = ours[step % 3], theirs[step % 3]
        assert len(a) == len(b) == 3
        np.testing.assert_array_equal(a[1], b[1])
        np.testing.assert_array_equal(a[2], b[2])
        assert a[0].dtype == np.float32 and a[0].shape == b[0].shape
        np.testing.assert_allclose(a[0], b[0], rtol=0, atol=1e-4)
    for _ in range(5):                      # the endless iterator interface
        a, b = next(ours), next(theirs)
        np.testing.assert_array_equal(a[1], b[1])
        np.testing.assert_allclose(a[0], b[0], rtol=0, atol=1e-4)


def test_flow_extra_inputs_no_labels_and_order(keras_image):
    x = np.random.default_rng(2).random((7, 5, 5, 1)).astype(np.float32)
    misc = np.arange(7) * 10
    batch = image.ImageDataGenerator().flow((x, misc), np.arange(7), batch_size=3, shuffle=False)[1]
    np.testing.assert_array_equal(batch[0][1], [30, 40, 50])
    np.testing.assert_array_equal(batch[0][0], x[3:6])
    only_x = image.ImageDataGenerator().flow(x, batch_size=5, shuffle=False)
    assert isinstance(only_x[1], np.ndarray) and only_x[1].shape == (2, 5, 5, 1)
    assert only_x.index_array.tolist() == list(range(7))
    with pytest.raises(ValueError, match="length 2"):
        only_x[2]
    np.testing.assert_array_equal(only_x[-1], only_x[1])


def test_flow_validation_split_matches_tf_keras(keras_image):
    x = np.random.default_rng(3).random((20, 4, 4, 3)).astype(np.float32)
    y = np.tile([0, 1], 10)
    for subset in ("training", "validation"):
        ours = image.ImageDataGenerator(validation_split=0.25).flow(x, y, batch_size=32, shuffle=False,
                                                                    subset=subset)
        theirs = keras_image.ImageDataGenerator(validation_split=0.25).flow(x, y, batch_size=32, shuffle=False,
                                                                            subset=subset)
        assert ours.n == theirs.n == (15 if subset == "training" else 5)
        np.testing.assert_array_equal(ours[0][0], theirs[0][0])
        np.testing.assert_array_equal(ours[0][1], theirs[0][1])
    with pytest.raises(ValueError, match="different number of classes"):
        image.ImageDataGenerator(validation_split=0.5).flow(x, np.repeat([0, 1], 10), subset="training")
    with pytest.raises(ValueError, match="validation_split"):
        image.ImageDataGenerator().flow(x, y, subset="validation")


def test_bad_arguments():
    with pytest.raises(ValueError, match="fill_mode"):
        image.ImageDataGenerator(fill_mode="mirror")
    with pytest.raises(ValueError, match="interpolation order"):
        image.ImageDataGenerator(interpolation_order=3)
    with pytest.raises(ValueError, match="zoom_range"):
        image.ImageDataGenerator(zoom_range=(0.5, 1.0, 2.0))
    with pytest.raises(ValueError, match="brightness_range"):
        image.ImageDataGenerator(brightness_range=0.5)
    with pytest.raises(ValueError, match="validation_split"):
        image.ImageDataGenerator(validation_split=1.5)
    with pytest.raises(ValueError, match="data_format"):
        image.ImageDataGenerator(data_format="NHWC")
    with pytest.raises(ValueError, match="rotation_range"):
        image.ImageDataGenerator(rotation_range=-5)
    with pytest.raises(TypeError, match="width_shift_range"):
        image.ImageDataGenerator(width_shift_range="wide")
    with pytest.raises(TypeError, match="preprocessing_function"):
        image.ImageDataGenerator(preprocessing_function=3)
    gen = image.ImageDataGenerator()
    with pytest.raises(ValueError, match="rank 4"):
        gen.flow(np.zeros((3, 4, 4)), batch_size=2)
    with pytest.raises(ValueError, match="batch_size"):
        gen.flow(np.zeros((3, 4, 4, 1)), batch_size=0)
    with pytest.raises(ValueError, match="same length"):
        gen.flow(np.zeros((3, 4, 4, 1)), np.zeros(4))
    with pytest.raises(ValueError, match="rank 4"):
        gen.fit(np.zeros((3, 4, 4)))
    with pytest.raises(ValueError, match="one 3-D image"):
        gen.apply_transform(np.zeros((2, 4, 4, 1)), {})
