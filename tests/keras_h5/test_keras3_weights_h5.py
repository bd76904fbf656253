"""Keras 3's `.weights.h5` both ways: files Keras 3 writes load into the same pyfastnn.keras model and predict
the same; files pyfastnn writes have Keras's exact layout (same dataset paths and shapes) and load in Keras."""
import numpy as np
import pytest

from h5_helpers import (ARCHS, assert_same_leaf_weights, assert_same_predictions, assert_weights_equal,
                        inputs_for, keras3, listing, pk, randomize, tf_keras, weights_of)
from pyfastnn.keras.saving import load_weights_h5, save_weights_h5

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")     # Keras on numpy 2


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_keras_file_loads_in_pyfastnn(tmp_path, arch):
    keras = keras3()
    km = randomize(ARCHS[arch](keras), seed=1)
    path = str(tmp_path / "k.weights.h5")
    km.save_weights(path)
    pm = ARCHS[arch](pk)
    pm.load_weights(path)
    assert_same_leaf_weights(pm, km)
    assert_same_predictions(pm, km, inputs_for(arch, np.random.default_rng(0)))


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_pyfastnn_file_has_keras_layout_and_loads_in_keras(tmp_path, arch):
    keras = keras3()
    pm = randomize(ARCHS[arch](pk), seed=2)
    ours, theirs = str(tmp_path / "p.weights.h5"), str(tmp_path / "k.weights.h5")
    pm.save_weights(ours)
    km = ARCHS[arch](keras)
    km.save_weights(theirs)
    assert listing(ours) == listing(theirs)         # same paths (layers/<snake class>_<k>/.../vars/<i>), shapes
    km.load_weights(ours)
    assert_same_leaf_weights(km, pm)
    assert_same_predictions(km, pm, inputs_for(arch, np.random.default_rng(0)))


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_round_trip_is_exact(tmp_path, arch):
    pytest.importorskip("h5py")
    pm = randomize(ARCHS[arch](pk), seed=3)
    path = tmp_path / "p.weights.h5"
    save_weights_h5(pm, path)
    other = ARCHS[arch](pk)
    assert load_weights_h5(other, path) > 0
    assert_weights_equal(weights_of(other), weights_of(pm))


def test_paths_are_class_names_not_layer_names(tmp_path):
    pytest.importorskip("h5py")
    L = pk.layers
    inner = pk.Sequential([pk.Input((3,)), L.Dense(3, name="first"), L.Dense(2, name="second")], name="head")
    x_in = pk.Input((4,), name="features")
    x = L.Dense(3, name="body")(x_in)
    model = pk.Model(x_in, inner(L.BatchNormalization(name="norm")(x)), name="net")
    path = tmp_path / "m.weights.h5"
    model.save_weights(path)
    assert listing(path) == {
        "layers/dense/vars/0": (4, 3), "layers/dense/vars/1": (3,),
        **{f"layers/batch_normalization/vars/{i}": (3,) for i in range(4)},
        "layers/sequential/layers/dense/vars/0": (3, 3), "layers/sequential/layers/dense/vars/1": (3,),
        "layers/sequential/layers/dense_1/vars/0": (3, 2), "layers/sequential/layers/dense_1/vars/1": (2,)}
    import h5py
    with h5py.File(path, "r") as f:       # Keras records each object's own name beside its variables
        assert f["vars"].attrs["name"] == "net"
        assert f["layers/sequential/vars"].attrs["name"] == "head"
        assert f["layers/sequential/layers/dense_1/vars"].attrs["name"] == "second"
        assert f["layers/input_layer/vars"].attrs["name"] == "features"


def test_lstm_and_attention_sub_objects(tmp_path):
    pytest.importorskip("h5py")
    names = set(listing(_saved(tmp_path, ARCHS["lstm_stack"](pk))))
    assert {"layers/lstm/cell/vars/0", "layers/lstm/cell/vars/2", "layers/lstm_1/cell/vars/1"} <= names
    names = set(listing(_saved(tmp_path, ARCHS["attention"](pk))))
    for part in ("query_dense", "key_dense", "value_dense", "output_dense"):
        assert f"layers/multi_head_attention/{part}/vars/0" in names


def _saved(tmp_path, model):
    path = tmp_path / "m.weights.h5"
    model.save_weights(path)
    return path


def test_file_from_trained_compiled_keras_model_ignores_optimizer_state(tmp_path):
    keras = keras3()
    km = ARCHS["cnn_bn"](keras)
    km.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 8, 8, 3)).astype(np.float32)
    km.fit(x, rng.integers(0, 3, 16), epochs=2, verbose=0)     # moving statistics move too
    path = str(tmp_path / "trained.weights.h5")
    km.save_weights(path)
    assert any(name.startswith("optimizer/") for name in listing(path))
    pm = ARCHS["cnn_bn"](pk)
    pm.load_weights(path)
    assert_same_leaf_weights(pm, km)
    assert_same_predictions(pm, km, x)


def test_shared_nested_model_is_saved_once(tmp_path):
    pytest.importorskip("h5py")
    names = listing(_saved(tmp_path, ARCHS["nested_shared"](pk)))
    assert sum(1 for n in names if n.startswith("layers/functional/")) == 2 + 4 + 2
    assert not any(n.startswith("layers/functional_1") for n in names)


class _Blocks(pk.Model):
    def __init__(self, K=pk):
        super().__init__()
        L = K.layers
        self.zz = L.Dense(3)
        self.b = L.Dense(2)
        self._p = L.Dense(2)

    def call(self, x):
        return self._p(self.b(self.zz(x)))


def test_subclassed_model_paths_follow_keras(tmp_path):
    keras = keras3()

    class KBlocks(keras.Model):
        def __init__(self):
            super().__init__()
            L = keras.layers
            self.zz, self.b, self._p = L.Dense(3), L.Dense(2), L.Dense(2)

        def call(self, x):
            return self._p(self.b(self.zz(x)))
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    km = KBlocks()
    km(x)
    randomize(km, 5)
    theirs = str(tmp_path / "k.weights.h5")
    km.save_weights(theirs)
    pm = _Blocks()
    pm(x)
    pm.load_weights(theirs)
    assert_same_leaf_weights(pm, km)
    assert_same_predictions(pm, km, x)
    ours = str(tmp_path / "p.weights.h5")
    pm.save_weights(ours)
    assert listing(ours) == listing(theirs)


def test_by_name_uses_recorded_layer_names(tmp_path):
    pytest.importorskip("h5py")
    L = pk.layers
    src = pk.Sequential([pk.Input((4,)), L.Dense(3, name="a"), L.Dense(5, name="b"), L.Dense(2, name="c")])
    randomize(src, 7)
    path = tmp_path / "src.weights.h5"
    src.save_weights(path)
    dst = pk.Sequential([pk.Input((4,)), L.Dense(3, name="a"), L.Dense(4, name="x"), L.Dense(2, name="z")])
    before = dst.get_layer("x").get_weights()
    dst.load_weights(path, by_name=True)
    assert_weights_equal(dst.get_layer("a").get_weights(), src.get_layer("a").get_weights())
    assert_weights_equal(dst.get_layer("x").get_weights(), before)


def test_skip_mismatch_loads_the_layers_that_fit(tmp_path):
    pytest.importorskip("h5py")
    L = pk.layers
    src = randomize(pk.Sequential([pk.Input((4,)), L.Dense(3), L.Dense(5), L.Dense(2)]), 8)
    path = tmp_path / "src.weights.h5"
    src.save_weights(path)
    dst = pk.Sequential([pk.Input((4,)), L.Dense(3), L.Dense(6), L.Dense(2)])
    kept = dst.layers[1].get_weights()
    with pytest.warns(UserWarning, match="dense_1"):
        dst.load_weights(path, skip_mismatch=True)
    assert_weights_equal(dst.layers[0].get_weights(), src.layers[0].get_weights())
    assert_weights_equal(dst.layers[1].get_weights(), kept)


def test_bfloat16_file_loads_widened(tmp_path):
    keras = keras3()
    km = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, dtype="bfloat16")])
    path = str(tmp_path / "bf.weights.h5")
    km.save_weights(path)
    pm = pk.Sequential([pk.Input((3,)), pk.layers.Dense(2)])
    pm.load_weights(path)
    want = [np.asarray(w.numpy().astype(np.float32)) for w in km.weights]
    assert_weights_equal(pm.get_weights(), want)


def test_other_names_keep_the_state_dict_formats(tmp_path):
    pm = randomize(ARCHS["cnn_bn"](pk), seed=4)
    path = str(tmp_path / "w.npz")
    pm.save_weights(path)
    saved = weights_of(pm)
    randomize(pm, seed=5)
    assert pm.load_weights(path) is pm
    assert_weights_equal(weights_of(pm), saved)
    with pytest.raises(ValueError, match="Keras .h5 files"):
        pm.load_weights(path, by_name=True)


@pytest.mark.parametrize("arch", ["cnn_bn", "nested_shared", "lstm_stack"])
def test_tf_keras_weights_h5_files_load(tmp_path, arch):
    """tf_keras 2.13+ writes the same `.weights.h5` layout (without the name attributes)."""
    tfk = tf_keras()
    km = randomize(ARCHS[arch](tfk), seed=9)
    path = str(tmp_path / "tfk.weights.h5")
    km.save_weights(path)
    pm = ARCHS[arch](pk)
    pm.load_weights(path)
    assert_same_leaf_weights(pm, km)
    assert_same_predictions(pm, km, inputs_for(arch, np.random.default_rng(0)))


def test_layer_checkpoint_dependencies_spelling(tmp_path):
    """Keras 2.13-2.15 named the layer lists `_layer_checkpoint_dependencies`; Keras 3 reads those files too."""
    h5py = pytest.importorskip("h5py")
    pm = randomize(ARCHS["nested_shared"](pk), seed=10)
    path = tmp_path / "old.weights.h5"
    pm.save_weights(path)
    with h5py.File(path, "a") as f:
        for group in ("layers/functional", "layers/sequential"):
            f.move(f"{group}/layers", f"{group}/_layer_checkpoint_dependencies")
        f.move("layers", "_layer_checkpoint_dependencies")
    other = ARCHS["nested_shared"](pk)
    other.load_weights(path)
    assert_weights_equal(weights_of(other), weights_of(pm))
