"""Whole-model saving: Model.save writes Keras 3's .keras layout (a zip of config.json, metadata.json and the
weights) and load_model rebuilds the model from the JSON config with known classes only, runs nothing from the
file (a Lambda's bytecode only with safe_mode=False), restores the weights and the compile settings, and
refuses damaged or mismatched files with errors naming the file and the layer."""
import json
import os
import zipfile

import numpy as np
import pytest

import pyfastnn
from pyfastnn import keras as pk
from pyfastnn import serialization
from pyfastnn.keras import layers as pl

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
rng = np.random.default_rng(3)


def f32(*shape):
    return rng.standard_normal(shape).astype(np.float32)


def round_trip(model, tmp_path, x, name="m.keras", **load_kwargs):
    path = str(tmp_path / name)
    model.save(path)
    again = pk.load_model(path, **load_kwargs)
    want, got = model.predict(x, verbose=0), again.predict(x, verbose=0)
    for a, b in zip(want if isinstance(want, list) else [want], got if isinstance(got, list) else [got]):
        np.testing.assert_array_equal(a, b)
    assert [layer.name for layer in again.layers] == [layer.name for layer in model.layers]
    for a, b in zip(model.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(a, b)
    return again, path


def test_sequential_round_trip_restores_weights_and_compile(tmp_path):
    model = pk.Sequential([pk.Input((8, 8, 1)), pl.Conv2D(4, 3, activation="relu"), pl.BatchNormalization(),
                           pl.MaxPooling2D(), pl.Flatten(), pl.Dropout(0.3), pl.Dense(3, activation="softmax")])
    model.compile(optimizer=pk.optimizers.Adam(learning_rate=3e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    x, y = f32(16, 8, 8, 1), rng.integers(0, 3, 16)
    model.fit(x, y, epochs=1, verbose=0)            # trained BN statistics travel too
    again, _ = round_trip(model, tmp_path, x)
    opt = again._compiled["optimizer"]
    assert type(opt).__name__ == "Adam" and opt.learning_rate == pytest.approx(3e-3)
    assert [name for name, _ in again._compiled["metrics"]] == ["accuracy"]
    hist = again.fit(x, y, epochs=1, verbose=0)      # compiled: it trains on
    assert "accuracy" in hist.history
    assert pk.load_model(str(tmp_path / "m.keras"), compile=False)._compiled is None


def test_file_is_keras_zip_layout_with_keras_style_graph(tmp_path):
    inp = pk.Input((4,), name="x")
    h = pl.Dense(3, name="h")(inp)
    model = pk.Model(inp, pl.Add(name="sum")([h, pl.Dense(3, name="g")(inp)]))
    path = str(tmp_path / "m.keras")
    model.save(path)
    with zipfile.ZipFile(path) as zf:
        assert sorted(zf.namelist()) == ["config.json", "metadata.json", "model.weights.npz"]
        config = json.loads(zf.read("config.json"))
    assert config["class_name"] == "Functional"
    by_name = {entry["name"]: entry for entry in config["config"]["layers"]}
    args = by_name["sum"]["inbound_nodes"][0]["args"][0]
    assert [a["config"]["keras_history"] for a in args] == [["h", 0, 0], ["g", 0, 0]]
    assert config["config"]["input_layers"] == ["x", 0, 0] and config["config"]["output_layers"] == ["sum", 0, 0]
    assert by_name["h"]["config"]["units"] == 3


def test_functional_graph_with_shared_and_nested_layers(tmp_path):
    """Two inputs, a layer shared by both branches, a nested model, tensor arithmetic, two outputs."""
    inner_in = pk.Input((6,))
    inner = pk.Model(inner_in, pl.Dense(5, activation="tanh")(inner_in), name="inner")
    a, b = pk.Input((6,), name="a"), pk.Input((6,), name="b")
    shared = pl.Dense(6, name="shared")
    ha, hb = shared(a), shared(b)
    merged = pl.Concatenate()([inner(ha), inner(hb), (ha - hb)[:, :2] * 0.5])
    out1 = pl.Dense(2, activation="softmax", name="cls")(merged)
    out2 = pl.Dense(1, name="reg")(-merged)
    model = pk.Model({"a": a, "b": b}, [out1, out2])
    model.compile("sgd", ["sparse_categorical_crossentropy", "mse"], loss_weights=[1.0, 0.5])
    x = {"a": f32(5, 6), "b": f32(5, 6)}
    again, _ = round_trip(model, tmp_path, x)
    assert again._compiled["loss_weights"] == [1.0, 0.5]
    assert again.get_layer("inner").get_layer(index=1).name == inner.layers[1].name


def test_every_layer_round_trips_through_its_config(tmp_path):
    """Each public layer: from_config(get_config()) gives the same config, and a model holding it saves and
    loads with equal outputs."""
    seq_cases = [
        (pl.Dense(4, activation="relu"), (5,)), (pl.Conv2D(3, 3, padding="same", strides=2), (6, 6, 2)),
        (pl.MaxPooling2D(2, padding="same"), (5, 5, 2)), (pl.AveragePooling2D(2), (4, 4, 2)),
        (pl.Flatten(), (2, 3)), (pl.Dropout(0.5), (4,)), (pl.Activation("gelu"), (4,)),
        (pl.LSTM(3, return_sequences=True), (4, 2)), (pl.GRU(3, go_backwards=True), (4, 2)),
        (pl.SimpleRNN(3, activation="relu"), (4, 2)), (pl.Embedding(10, 3), (4,)),
        (pl.LayerNormalization(epsilon=1e-5), (4, 3)), (pl.BatchNormalization(momentum=0.9), (3, 3, 2)),
        (pl.GlobalAveragePooling1D(keepdims=True), (4, 3)), (pl.GlobalAveragePooling2D(), (3, 3, 2)),
        (pl.GlobalMaxPooling1D(), (4, 3)), (pl.GlobalMaxPooling2D(keepdims=True), (3, 3, 2)),
        (pl.Conv1D(3, 2, padding="causal"), (5, 2)), (pl.MaxPooling1D(2), (4, 2)),
        (pl.AveragePooling1D(2, padding="same"), (5, 2)), (pl.DepthwiseConv2D(3, depth_multiplier=2), (5, 5, 2)),
        (pl.SeparableConv2D(3, 3, padding="same"), (5, 5, 2)),
        (pl.Bidirectional(pl.LSTM(3, return_sequences=True), merge_mode="sum"), (4, 2)),
        (pl.TimeDistributed(pl.Dense(2)), (4, 3)), (pl.Reshape((3, -1)), (2, 3)), (pl.Permute((2, 1)), (2, 3)),
        (pl.RepeatVector(3), (4,)), (pl.Rescaling(0.5, offset=1.0), (2, 2)), (pl.ZeroPadding2D(((1, 0), (2, 1))),
                                                                                (3, 3, 1)),
        (pl.Cropping2D(1), (4, 4, 1)), (pl.UpSampling2D(interpolation="bilinear"), (2, 3, 1)),
        (pl.ReLU(max_value=1.0, negative_slope=0.1, threshold=0.2), (4,)), (pl.LeakyReLU(0.2), (4,)),
        (pl.Softmax(axis=1), (3, 4)), (pl.Attention(use_scale=True), (4, 3)),
    ]
    for layer, shape in seq_cases:
        clone = type(layer).from_config(layer.get_config())
        assert clone.get_config() == layer.get_config(), type(layer).__name__
        model = pk.Sequential([pk.Input(shape), layer])
        x = rng.integers(0, 10, (2,) + shape) if isinstance(layer, pl.Embedding) else f32(2, *shape)
        round_trip(model, tmp_path, x, name=f"{type(layer).__name__}.keras")
    # the layers that take several inputs
    a, b = pk.Input((3, 4)), pk.Input((3, 4))
    outs = [cls()([a, b]) for cls in (pl.Add, pl.Subtract, pl.Multiply, pl.Average, pl.Maximum, pl.Minimum)]
    outs += [pl.Concatenate(axis=1)([a, b]), pl.Dot(axes=2)([a, b]), pl.MultiHeadAttention(2, 2)(a, b)]
    model = pk.Model([a, b], outs)
    round_trip(model, tmp_path, [f32(2, 3, 4), f32(2, 3, 4)], name="merge.keras")


def test_recurrent_states_and_wrappers_round_trip(tmp_path):
    """An encoder-decoder: the encoder's states feed the decoder through initial_state (a call kwarg)."""
    enc_in, dec_in = pk.Input((5, 3)), pk.Input((4, 2))
    _, h, c = pl.LSTM(6, return_state=True)(enc_in)
    dec = pl.LSTM(6, return_sequences=True)(dec_in, initial_state=[h, c])
    out = pl.TimeDistributed(pl.Dense(3, activation="softmax"))(pl.Bidirectional(pl.GRU(4, return_sequences=True))(dec))
    model = pk.Model([enc_in, dec_in], out)
    round_trip(model, tmp_path, [f32(2, 5, 3), f32(2, 4, 2)])


def test_frozen_layers_stay_frozen(tmp_path):
    model = pk.Sequential([pk.Input((3,)), pl.Dense(4, name="frozen"), pl.Dense(2)])
    model.layers[0].trainable = False
    again, _ = round_trip(model, tmp_path, f32(2, 3))
    assert not again.get_layer("frozen").trainable and len(again.trainable_weights) == 2


def test_application_round_trip(tmp_path):
    model = pk.applications.MobileNetV2(weights=None, input_shape=(32, 32, 3), alpha=0.35, classes=4)
    round_trip(model, tmp_path, f32(1, 32, 32, 3))


def test_lambda_needs_unsafe_mode_or_custom_objects(tmp_path):
    offset = 0.5
    model = pk.Sequential([pk.Input((3,)), pl.Lambda(lambda t: t * 2.0 + offset), pl.Dense(2)])
    x = f32(4, 3)
    path = str(tmp_path / "lam.keras")
    model.save(path)
    with pytest.raises(ValueError, match=r"deserialization of a `lambda` object.*safe_mode=False"):
        pk.load_model(path)
    again = pk.load_model(path, safe_mode=False)
    np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))

    def double(t):
        return t * 2.0
    model = pk.Sequential([pk.Input((3,)), pl.Lambda(double)])
    model.save(path)
    with pytest.raises(ValueError, match=r"function 'double'.*custom_objects"):
        pk.load_model(path)
    again = pk.load_model(path, custom_objects={"double": double})
    np.testing.assert_array_equal(again.predict(x, verbose=0), x * 2.0)


class Scale(pl.Layer):
    """A user's layer: its config is its constructor's arguments."""

    def __init__(self, factor=2.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, x, training=False):
        return x * self.factor


def test_custom_layers_need_custom_objects(tmp_path):
    model = pk.Sequential([pk.Input((3,)), Scale(3.0, name="scale"), pl.Dense(2)])
    path = str(tmp_path / "custom.keras")
    model.save(path)
    with pytest.raises(ValueError, match=r"unknown layer class 'Scale'.*custom_objects=\{'Scale': Scale\}"):
        pk.load_model(path)
    again = pk.load_model(path, custom_objects={"Scale": Scale})
    x = f32(2, 3)
    np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))
    assert again.get_layer("scale").factor == 3.0


def _rewrite(path, out, config=None, weights_from=None, drop=()):
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w") as dst:
        for name in src.namelist():
            if name in drop:
                continue
            data = src.read(name)
            if name == "config.json" and config is not None:
                data = json.dumps(config(json.loads(data))).encode()
            if name == "model.weights.npz" and weights_from is not None:
                with zipfile.ZipFile(weights_from) as other:
                    data = other.read(name)
            dst.writestr(name, data)
    return out


def test_bad_files_are_refused_clearly(tmp_path):
    model = pk.Sequential([pk.Input((3,)), pl.Dense(4, name="d1"), pl.Dense(2, name="d2")])
    good = str(tmp_path / "good.keras")
    model.save(good)
    # truncated
    data = open(good, "rb").read()
    cut = str(tmp_path / "cut.keras")
    open(cut, "wb").write(data[: len(data) // 2])
    with pytest.raises(ValueError, match="cut.keras"):
        pk.load_model(cut)
    # a config naming a class nobody registered (a module path is never imported)
    def evil(cfg):
        cfg["config"]["layers"][1].update(module="os", class_name="system")
        return cfg
    bad = _rewrite(good, str(tmp_path / "evil.keras"), config=evil)
    with pytest.raises(ValueError, match=r"unknown layer class 'system'"):
        pk.load_model(bad)
    # the weights of another architecture
    other = pk.Sequential([pk.Input((3,)), pl.Dense(5, name="d1"), pl.Dense(2, name="d2")])
    other_path = str(tmp_path / "other.keras")
    other.save(other_path)
    mixed = _rewrite(good, str(tmp_path / "mixed.keras"), weights_from=other_path)
    with pytest.raises(ValueError, match=r"(?s)weights in '.*mixed.keras' do not fit .*d1"):
        pk.load_model(mixed)
    # a missing weights member, junk, a missing file
    with pytest.raises(ValueError, match="model.weights.npz is missing"):
        pk.load_model(_rewrite(good, str(tmp_path / "noweights.keras"), drop=("model.weights.npz",)))
    junk = str(tmp_path / "junk.keras")
    open(junk, "wb").write(b"not a model at all")
    with pytest.raises(ValueError, match="junk.keras"):
        pk.load_model(junk)
    with pytest.raises(ValueError, match="File not found"):
        pk.load_model(str(tmp_path / "absent.keras"))
    # a functional config whose graph names a tensor no layer makes
    inp = pk.Input((3,))
    graph = str(tmp_path / "graph.keras")
    pk.Model(inp, pl.Dense(2, name="d2")(pl.Dense(4, name="d1")(inp))).save(graph)

    def dangling(cfg):
        cfg["config"]["layers"] = [e for e in cfg["config"]["layers"] if e["name"] != "d1"]
        return cfg
    with pytest.raises(ValueError, match="graph cannot be rebuilt: layer 'd2'"):
        pk.load_model(_rewrite(graph, str(tmp_path / "dangling.keras"), config=dangling))
    # unknown keyword arguments
    with pytest.raises(TypeError, match="save_format"):
        model.save(good, save_format="tf")
    with pytest.raises(TypeError):
        pk.load_model(good, custom_objects=[Scale])


def test_unsaveable_config_names_the_layer(tmp_path):
    table = pyfastnn.tensor(np.ones(3, np.float32))
    model = pk.Sequential([pk.Input((3,)), pl.Lambda(lambda t: t * table, name="uses_tensor")])
    with pytest.raises(TypeError, match="layer 'uses_tensor' .*cannot be saved as JSON"):
        model.save(str(tmp_path / "x.keras"))
    assert not os.path.exists(tmp_path / "x.keras")


def test_nothing_is_half_loaded(tmp_path):
    """load_weights of another architecture's file leaves every weight as it was."""
    model = pk.Sequential([pk.Input((3,)), pl.Dense(4, name="d1"), pl.Dense(2, name="d2")])
    other = pk.Sequential([pk.Input((3,)), pl.Dense(4, name="d1"), pl.Dense(3, name="d2")])
    path = str(tmp_path / "other.npz")
    other.save_weights(path)
    before = model.get_weights()
    with pytest.raises((ValueError, RuntimeError), match="d2"):
        model.load_weights(path)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_wrong_number_of_inputs_names_the_model():
    a, b = pk.Input((2,), name="a"), pk.Input((2,), name="b")
    model = pk.Model([a, b], pl.Add()([a, b]), name="two_in")
    with pytest.raises(ValueError, match=r"Model 'two_in' expects 2 input\(s\) \(\['a', 'b'\]\), but it received 1"):
        model.predict(f32(3, 2), verbose=0)


def test_old_pickled_models_load_only_when_trusted(tmp_path):
    model = pk.Sequential([pk.Input((3,)), pl.Dense(2)])
    path = str(tmp_path / "old.keras")
    serialization.save(model, path)                  # the earlier format: a pickle
    with pytest.raises(ValueError, match="safe_mode=False"):
        pk.load_model(path)
    x = f32(2, 3)
    np.testing.assert_array_equal(pk.load_model(path, safe_mode=False).predict(x, verbose=0),
                                  model.predict(x, verbose=0))


def test_lazily_built_sequential_and_h5_name(tmp_path):
    """A Sequential built by its first batch saves its input; a tf.keras 2 script's 'model.h5' name is written
    in the same format and loads back."""
    pyfastnn.manual_seed(0)
    model = pk.Sequential([pl.Dense(4, activation="relu"), pl.Dense(1)])
    model.compile("adam", "mse")
    x = f32(8, 5)
    model.fit(x, np.zeros((8, 1), np.float32), epochs=1, verbose=0)
    again, path = round_trip(model, tmp_path, x, name="model.h5")
    assert zipfile.is_zipfile(path)


def test_subclassed_model_round_trip(tmp_path):
    class Tiny(pk.Model):
        def __init__(self, units=3, **kwargs):
            super().__init__(**kwargs)
            self.units = units
            self.dense = pl.Dense(units)

        def call(self, x, training=False):
            return self.dense(x) * 2.0

    model = Tiny(units=4)
    x = f32(2, 5)
    model.predict(x, verbose=0)
    path = str(tmp_path / "tiny.keras")
    model.save(path)
    with pytest.raises(ValueError, match="unknown layer class 'Tiny'"):
        pk.load_model(path)
    again = pk.load_model(path, custom_objects={"Tiny": Tiny})
    assert again.units == 4
    np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))


def test_model_checkpoint_files_load_safely(tmp_path):
    model = pk.Sequential([pk.Input((3,)), pl.Dense(2)])
    model.compile("sgd", "mse")
    model.fit(np.ones((8, 3), np.float32), np.zeros((8, 2), np.float32), epochs=1, verbose=0,
              callbacks=[pk.callbacks.ModelCheckpoint(str(tmp_path / "best.keras"), monitor="loss")])
    assert os.path.exists(tmp_path / "best.keras")
    again = pk.load_model(str(tmp_path / "best.keras"))          # safe mode: no pickle involved
    np.testing.assert_array_equal(again.get_weights()[0], model.get_weights()[0])
