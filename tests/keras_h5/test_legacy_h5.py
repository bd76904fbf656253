"""Keras 2's legacy HDF5 weights: files tf_keras writes (save_weights('x.h5'), whole-model save('x.h5')) load
into pyfastnn.keras in order or by name; files pyfastnn writes under a '.h5' name load in tf_keras and Keras 3;
keras.applications-style files (old weight names, chunked layer_names) load by name."""
import numpy as np
import pytest

from h5_helpers import (ARCHS, assert_same_leaf_weights, assert_same_predictions, assert_weights_equal,
                        inputs_for, keras3, pk, randomize, tf_keras, weights_of)
from pyfastnn.keras.saving import load_weights_h5, save_weights_h5

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

# tf_keras' own classes: the CNN with BN, the LSTM and the functional model with a nested model of the task,
# and the attention/embedding models besides
LEGACY_ARCHS = ["cnn_bn", "lstm_stack", "nested_shared", "nested_frozen", "shared_across_nesting", "attention",
                "embedding_lstm"]


@pytest.mark.parametrize("arch", LEGACY_ARCHS)
def test_tf_keras_file_loads_in_pyfastnn(tmp_path, arch):
    tfk = tf_keras()
    km = randomize(ARCHS[arch](tfk), seed=11)
    path = str(tmp_path / "tfk.h5")
    km.save_weights(path)
    pm = ARCHS[arch](pk)
    pm.load_weights(path)
    assert_same_leaf_weights(pm, km)
    assert_same_predictions(pm, km, inputs_for(arch, np.random.default_rng(0)))


@pytest.mark.parametrize("arch", LEGACY_ARCHS)
def test_pyfastnn_legacy_file_loads_in_tf_keras(tmp_path, arch):
    tfk = tf_keras()
    pm = randomize(ARCHS[arch](pk), seed=12)
    path = str(tmp_path / "p.h5")
    pm.save_weights(path)
    km = ARCHS[arch](tfk)
    km.load_weights(path)
    assert_same_leaf_weights(km, pm)
    assert_same_predictions(km, pm, inputs_for(arch, np.random.default_rng(0)))


@pytest.mark.parametrize("arch", ["cnn_bn", "nested_frozen", "shared_across_nesting"])
def test_pyfastnn_legacy_file_loads_in_keras3(tmp_path, arch):
    keras = keras3()
    pm = randomize(ARCHS[arch](pk), seed=13)
    path = str(tmp_path / "p.h5")
    save_weights_h5(pm, path)
    km = ARCHS[arch](keras)
    km.load_weights(path)
    assert_same_leaf_weights(km, pm)
    assert_same_predictions(km, pm, inputs_for(arch, np.random.default_rng(0)))


def test_nested_model_weights_follow_the_legacy_trainable_first_order(tmp_path):
    tfk = tf_keras()
    import h5py
    km = ARCHS["nested_shared"](tfk)
    path = str(tmp_path / "tfk.h5")
    km.save_weights(path)
    pm = ARCHS["nested_shared"](pk)
    ours = str(tmp_path / "p.h5")
    pm.save_weights(ours)
    inner_k = next(layer for layer in km.layers if isinstance(layer, tfk.Model) and len(layer.layers) == 4)
    inner_p = next(layer for layer in pm.layers if isinstance(layer, pk.Model) and len(layer.layers) == 4)
    with h5py.File(path, "r") as f, h5py.File(ours, "r") as g:
        theirs = [n.decode() if isinstance(n, bytes) else n for n in f[inner_k.name].attrs["weight_names"]]
        mine = [n.decode() if isinstance(n, bytes) else n for n in g[inner_p.name].attrs["weight_names"]]
    suffixes = ["kernel:0", "bias:0", "gamma:0", "beta:0", "kernel:0", "bias:0", "moving_mean:0",
                "moving_variance:0"]
    assert [n.split("/")[-1] for n in theirs] == suffixes
    assert [n.split("/")[-1] for n in mine] == suffixes


def test_whole_model_h5_reads_model_weights_group(tmp_path):
    tfk = tf_keras()
    km = randomize(ARCHS["cnn_bn"](tfk), seed=14)
    path = str(tmp_path / "whole.h5")
    km.save(path)
    pm = ARCHS["cnn_bn"](pk)
    load_weights_h5(pm, path)
    assert_same_leaf_weights(pm, km)
    assert_same_predictions(pm, km, inputs_for("cnn_bn", np.random.default_rng(0)))


def _named_tfk_model(tfk, widths, names):
    L = tfk.layers
    x_in = tfk.Input((4,))
    x = x_in
    for w, n in zip(widths, names):
        x = L.Dense(w, name=n)(x)
    return tfk.Model(x_in, x)


def _named_pk_model(widths, names):
    L = pk.layers
    x_in = pk.Input((4,))
    x = x_in
    for w, n in zip(widths, names):
        x = L.Dense(w, name=n)(x)
    return pk.Model(x_in, x)


def test_by_name_and_skip_mismatch(tmp_path):
    tfk = tf_keras()
    km = randomize(_named_tfk_model(tfk, [3, 5, 2], ["stem", "mid", "head"]), seed=15)
    path = str(tmp_path / "tfk.h5")
    km.save_weights(path)
    by_name = {layer.name: layer.get_weights() for layer in km.layers}
    # by name: 'stem' and 'head' load, 'other' is not in the file and is left alone
    pm = _named_pk_model([3, 5, 2], ["stem", "other", "head"])
    other = pm.get_layer("other").get_weights()
    pm.load_weights(path, by_name=True)
    assert_weights_equal(pm.get_layer("stem").get_weights(), by_name["stem"])
    assert_weights_equal(pm.get_layer("head").get_weights(), by_name["head"])
    assert_weights_equal(pm.get_layer("other").get_weights(), other)
    # a shape mismatch by name is an error naming the layer (nothing loaded) or, with skip_mismatch, a warning
    pm = _named_pk_model([3, 6, 2], ["stem", "mid", "head"])
    before = weights_of(pm)
    with pytest.raises(ValueError, match=r"tfk\.h5.*'mid'.*\(5, 6\)|tfk\.h5.*'mid'"):
        pm.load_weights(path, by_name=True)
    assert_weights_equal(weights_of(pm), before)
    with pytest.warns(UserWarning, match="'mid'"):
        pm.load_weights(path, by_name=True, skip_mismatch=True)
    assert_weights_equal(pm.get_layer("stem").get_weights(), by_name["stem"])
    assert_weights_equal(pm.get_layer("mid").get_weights(), before[2:4])


def _applications_style_file(path, layers, chunks=1):
    """A Keras 2.0-era application weight file: weight names like 'block1_conv1_W_1:0', layer_names split in
    `chunks` attributes (as Keras splits lists too long for one HDF5 object header)."""
    import h5py
    with h5py.File(path, "w") as f:
        names = np.array([n.encode() for n, _ in layers])
        if chunks == 1:
            f.attrs["layer_names"] = names
        else:
            for k, part in enumerate(np.array_split(names, chunks)):
                f.attrs[f"layer_names{k}"] = part
        f.attrs["keras_version"] = b"2.0.8"
        f.attrs["backend"] = b"tensorflow"
        for name, weights in layers:
            g = f.create_group(name)
            wnames = [f"{name}_{'W' if a.ndim > 1 else 'b'}_1:0".encode() for a in weights]
            g.attrs["weight_names"] = np.array(wnames) if wnames else np.array([], np.float64)
            for wn, a in zip(wnames, weights):
                g.create_dataset(wn.decode(), data=a)


def test_applications_style_file_by_name_with_chunked_layer_names(tmp_path):
    pytest.importorskip("h5py")
    L = pk.layers
    x_in = pk.Input((6, 6, 3))
    x = L.Conv2D(4, 3, name="block1_conv1", activation="relu")(x_in)
    x = L.MaxPooling2D(2, name="block1_pool")(x)
    x = L.Flatten(name="flatten")(x)
    out = L.Dense(2, name="predictions")(x)
    pm = pk.Model(x_in, out)
    rng = np.random.default_rng(0)
    conv = [rng.standard_normal((3, 3, 3, 4)).astype(np.float32), rng.standard_normal(4).astype(np.float32)]
    dense = [rng.standard_normal((16, 2)).astype(np.float32), rng.standard_normal(2).astype(np.float32)]
    path = str(tmp_path / "vgg_like_weights_tf_dim_ordering_tf_kernels.h5")
    _applications_style_file(path, [("input_1", []), ("block1_conv1", conv), ("block1_pool", []),
                                    ("flatten", []), ("predictions", dense)], chunks=3)
    pm.load_weights(path, by_name=True)
    assert_weights_equal(pm.get_layer("block1_conv1").get_weights(), conv)
    assert_weights_equal(pm.get_layer("predictions").get_weights(), dense)
    pm2 = pk.Model(pm.inputs, pm.outputs)          # in order, the same file loads as well
    load_weights_h5(pm2, path)
    assert_weights_equal(pm2.get_layer("predictions").get_weights(), dense)


def test_legacy_round_trip_is_exact(tmp_path):
    pytest.importorskip("h5py")
    for arch in LEGACY_ARCHS:
        pm = randomize(ARCHS[arch](pk), seed=16)
        path = tmp_path / f"{arch}.h5"
        save_weights_h5(pm, path)
        other = ARCHS[arch](pk)
        load_weights_h5(other, path)
        assert_weights_equal(weights_of(other), weights_of(pm))


def test_same_layer_names_in_two_nested_models(tmp_path):
    """Layer names are unique within one model only: two nested models may each hold a 'proj'."""
    pytest.importorskip("h5py")
    L = pk.layers

    def block(name):
        x_in = pk.Input((4,))
        return pk.Model(x_in, L.Dense(4, name="proj")(x_in), name=name)

    def model():
        wrapper_in = pk.Input((4,))
        wrapper = pk.Model(wrapper_in, block("b2")(block("b1")(wrapper_in)), name="wrapper")
        x_in = pk.Input((4,))
        return pk.Model(x_in, wrapper(x_in))
    pm = randomize(model(), seed=17)
    for suffix in (".h5", ".weights.h5"):
        path = tmp_path / f"w{suffix}"
        pm.save_weights(path)
        other = randomize(model(), seed=18)
        load_weights_h5(other, path)
        assert_weights_equal(weights_of(other), weights_of(pm))
