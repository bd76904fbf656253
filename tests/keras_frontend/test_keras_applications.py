"""pyfastnn.keras.applications against Keras 3's (built with weights=None): the same layers in the same order under
the same names, the same parameter counts, and the same outputs once Keras's weights are copied over layer by
layer (small inputs keep the tests fast). preprocess_input equals Keras's; weights='imagenet' and
decode_predictions read only files in Keras's cache directory."""
import json
import os
import re

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")

from pyfastnn.keras import applications as apps  # noqa: E402
from pyfastnn.keras import Input, Model, layers as pl  # noqa: E402

from conftest import rel_error  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
rng = np.random.default_rng(7)


def real_keras():
    return pytest.importorskip("keras")


def _base(name):
    """Keras numbers the names it makes up (global_average_pooling2d_3): compare what is left."""
    return re.sub(r"_\d+$", "", name)


def assert_same_architecture(km, pm):
    assert len(km.layers) == len(pm.layers)
    for kl, ql in zip(km.layers, pm.layers):
        assert type(kl).__name__ == type(ql).__name__, (kl.name, type(kl).__name__, type(ql).__name__)
        if type(kl).__name__ in ("InputLayer", "GlobalAveragePooling2D", "GlobalMaxPooling2D") and \
                _base(kl.name) in ("input_layer", "global_average_pooling2d", "global_max_pooling2d"):
            assert _base(kl.name) == _base(ql.name)
        else:
            assert kl.name == ql.name
        assert kl.count_params() == ql.count_params(), kl.name
    assert km.count_params() == pm.count_params()
    assert tuple(km.output_shape[1:]) == tuple(pm.output_shape)


def copy_weights(km, pm):
    """Keras's weights, with non-trivial batch-norm statistics, copied to pyfastnn layer by layer."""
    for kl, ql in zip(km.layers, pm.layers):
        ws = kl.get_weights()
        if type(kl).__name__ == "BatchNormalization":
            c = ws[0].shape
            ws = [rng.uniform(0.5, 1.5, c), rng.normal(0, 0.1, c), rng.normal(0, 0.1, c), rng.uniform(0.5, 1.5, c)]
            ws = [w.astype(np.float32) for w in ws]
            kl.set_weights(ws)
        ql.set_weights(ws)


def compare_outputs(km, pm, x, tol=1e-5):
    want = np.asarray(km.predict(x, verbose=0))
    got = pm.predict(x, verbose=0)
    assert got.shape == want.shape
    assert rel_error(got, want) < tol, rel_error(got, want)


# ------------------------------------------------------------------ counts and names
@pytest.mark.parametrize("name,kwargs,count", [
    ("VGG16", dict(include_top=False), 14_714_688),
    ("VGG19", dict(include_top=False, pooling="max"), 20_024_384),
    ("ResNet50", dict(include_top=False), 23_587_712),
    ("ResNet50", dict(), 25_636_712),
    ("MobileNetV2", dict(include_top=False, input_shape=(224, 224, 3)), 2_257_984),
    ("MobileNetV2", dict(), 3_538_984),
    ("MobileNetV2", dict(include_top=False, alpha=0.35, input_shape=(96, 96, 3), pooling="avg"), 410_208),
])
def test_architecture_matches_keras(name, kwargs, count):
    keras = real_keras()
    km = getattr(keras.applications, name)(weights=None, **kwargs)
    pm = getattr(apps, name)(weights=None, **kwargs)
    assert pm.count_params() == count
    assert_same_architecture(km, pm)
    assert pm.name == km.name


@pytest.mark.parametrize("name,count", [("ResNet101", 42_658_176), ("ResNet152", 58_370_944)])
def test_deep_resnets_match_keras(name, count):
    keras = real_keras()
    km = getattr(keras.applications, name)(weights=None, include_top=False, input_shape=(32, 32, 3))
    pm = getattr(apps, name)(weights=None, include_top=False, input_shape=(32, 32, 3))
    assert pm.count_params() == count
    assert_same_architecture(km, pm)


# ------------------------------------------------------------------ outputs given Keras's weights
def test_vgg16_with_top_matches_keras():
    keras = real_keras()
    kw = dict(weights=None, input_shape=(32, 32, 3), classes=10)
    km, pm = keras.applications.VGG16(**kw), apps.VGG16(**kw)
    assert_same_architecture(km, pm)
    copy_weights(km, pm)
    x = apps.vgg16.preprocess_input(rng.uniform(0, 255, (2, 32, 32, 3)).astype(np.float32))
    compare_outputs(km, pm, x)


def test_resnet50_matches_keras():
    keras = real_keras()
    kw = dict(weights=None, include_top=False, input_shape=(64, 64, 3), pooling="avg")
    km, pm = keras.applications.ResNet50(**kw), apps.ResNet50(**kw)
    copy_weights(km, pm)
    x = apps.resnet50.preprocess_input(rng.uniform(0, 255, (2, 64, 64, 3)).astype(np.float32))
    compare_outputs(km, pm, x)


def test_mobilenet_v2_matches_keras():
    keras = real_keras()
    kw = dict(weights=None, input_shape=(64, 64, 3), classes=7, classifier_activation=None)
    km, pm = keras.applications.MobileNetV2(**kw), apps.MobileNetV2(**kw)
    assert_same_architecture(km, pm)
    copy_weights(km, pm)
    x = apps.mobilenet_v2.preprocess_input(rng.uniform(0, 255, (2, 64, 64, 3)).astype(np.float32))
    compare_outputs(km, pm, x)


def test_input_tensor_and_unknown_size():
    """input_tensor: the network grows from a given tensor and the model takes its source Input; without a top
    the default input is (None, None, 3) and any size runs."""
    inp = Input((48, 48, 3))
    scaled = pl.Rescaling(1.0)(inp)
    m = apps.MobileNetV2(weights=None, include_top=False, input_tensor=scaled, pooling="max")
    assert m.inputs[0] is inp and m.output_shape == (1280,)
    r = apps.ResNet50(weights=None, include_top=False)
    assert r.inputs[0].shape == (None, None, None, 3)
    assert r.predict(np.zeros((1, 40, 36, 3), np.float32), verbose=0).shape == (1, 2, 2, 2048)


# ------------------------------------------------------------------ preprocessing and decoding
@pytest.mark.parametrize("module,mode", [("vgg16", "caffe"), ("vgg19", "caffe"), ("resnet50", "caffe"),
                                         ("resnet", "caffe"), ("mobilenet_v2", "tf")])
def test_preprocess_input_matches_keras(module, mode):
    keras = real_keras()
    x = rng.uniform(0, 255, (2, 5, 4, 3)).astype(np.float32)
    want = getattr(keras.applications, module).preprocess_input(x.copy())
    got = getattr(apps, module).preprocess_input(x.copy())
    np.testing.assert_allclose(got, np.asarray(want), rtol=1e-6)
    for data_format in ("channels_first", "channels_last"):
        for m in ("caffe", "tf", "torch"):
            xi = rng.uniform(0, 255, (3, 4, 5)).astype(np.float32)
            want = keras.applications.imagenet_utils.preprocess_input(xi.copy(), data_format=data_format, mode=m)
            got = apps.imagenet_utils.preprocess_input(xi.copy(), data_format=data_format, mode=m)
            np.testing.assert_allclose(got, np.asarray(want), rtol=1e-6)
    u8 = rng.integers(0, 256, (1, 3, 3, 3)).astype(np.uint8)
    np.testing.assert_allclose(apps.resnet.preprocess_input(u8), keras.applications.resnet.preprocess_input(u8),
                               rtol=1e-6)


def test_preprocess_input_inside_a_model():
    """On a KerasTensor it records operations of the graph (as Keras's does)."""
    inp = Input((4, 4, 3))
    m = Model(inp, apps.resnet50.preprocess_input(inp))
    x = rng.uniform(0, 255, (2, 4, 4, 3)).astype(np.float32)
    np.testing.assert_allclose(m.predict(x, verbose=0), apps.resnet50.preprocess_input(x.copy()), rtol=1e-6)


def test_decode_predictions_reads_keras_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(apps.imagenet_utils, "CLASS_INDEX", None)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    preds = np.zeros((2, 1000), np.float32)
    preds[0, [3, 7]] = [0.9, 0.1]
    preds[1, 999] = 1.0
    with pytest.raises(FileNotFoundError, match=r"imagenet_class_index\.json.*Put it in .*models"):
        apps.resnet50.decode_predictions(preds)
    (tmp_path / "models").mkdir()
    index = {str(i): [f"n{i:08d}", f"class_{i}"] for i in range(1000)}
    (tmp_path / "models" / "imagenet_class_index.json").write_text(json.dumps(index))
    out = apps.resnet50.decode_predictions(preds, top=2)
    assert [r[:2] for r in out[0]] == [("n00000003", "class_3"), ("n00000007", "class_7")]
    assert out[1][0][1] == "class_999" and len(out[1]) == 2
    with pytest.raises(ValueError, match=r"expects a batch of predictions .*\(samples, 1000\)"):
        apps.resnet50.decode_predictions(np.zeros((2, 10)))


def test_imagenet_weights_file_is_looked_up_not_downloaded(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    with pytest.raises(FileNotFoundError, match=r"'vgg16_weights_tf_dim_ordering_tf_kernels_notop\.h5'.*"
                                                r"nothing is downloaded.*Put it in " + re.escape(str(tmp_path))):
        apps.VGG16(include_top=False)
    with pytest.raises(FileNotFoundError, match=r"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1\.0_224\.h5"):
        apps.MobileNetV2()
    with pytest.raises(FileNotFoundError, match=r"resnet101_weights_tf_dim_ordering_tf_kernels_notop\.h5"):
        apps.ResNet101(include_top=False)


def test_weights_file_round_trip(tmp_path):
    """weights=path loads a file the model's own save_weights wrote (Keras's .h5 files need
    pyfastnn.keras.saving)."""
    m = apps.MobileNetV2(weights=None, include_top=False, input_shape=(32, 32, 3), alpha=0.35)
    path = str(tmp_path / "w.npz")
    m.save_weights(path)
    again = apps.MobileNetV2(weights=path, include_top=False, input_shape=(32, 32, 3), alpha=0.35)
    for a, b in zip(m.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_keras_h5_weights_load(tmp_path):
    """A Keras-written weight file for the same application loads by layer name."""
    keras = real_keras()
    pytest.importorskip("h5py")
    kw = dict(include_top=False, input_shape=(32, 32, 3), alpha=0.35)
    km = keras.applications.MobileNetV2(weights=None, **kw)
    path = str(tmp_path / "mobilenet.weights.h5")
    km.save_weights(path)
    pm = apps.MobileNetV2(weights=path, **kw)
    for a, b in zip(km.get_weights(), pm.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_application_arguments_are_checked():
    with pytest.raises(ValueError, match="VGG16: The `weights` argument should be either"):
        apps.VGG16(weights="imagenet21k")
    with pytest.raises(ValueError, match="ResNet50: If using `weights='imagenet'` with `include_top=True`, `classes`"):
        apps.ResNet50(classes=10)
    with pytest.raises(ValueError, match="Input size must be at least 32x32"):
        apps.ResNet50(weights=None, include_top=False, input_shape=(16, 16, 3))
    with pytest.raises(ValueError, match="you should specify a static `input_shape`"):
        apps.VGG16(weights=None, input_shape=(None, None, 3))
    with pytest.raises(ValueError, match="MobileNetV2: If imagenet weights are being loaded, alpha must be one of"):
        apps.MobileNetV2(alpha=0.6)
    with pytest.raises(ValueError, match="pooling"):
        apps.VGG19(weights=None, include_top=False, pooling="sum")
    with pytest.raises(TypeError, match="input_tensor"):
        apps.ResNet50(weights=None, include_top=False, input_tensor=np.zeros((1, 32, 32, 3)))
    with pytest.raises(TypeError):
        apps.ResNet50(weights=None, include_tops=False)
    with pytest.raises(ValueError, match="Only `None` and `softmax` activations are allowed"):
        apps.VGG16(weights=__file__, classifier_activation="sigmoid")
