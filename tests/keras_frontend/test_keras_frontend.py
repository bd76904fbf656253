"""pyfastnn.keras against real Keras 3 (on the torch backend): the same model,
Keras's weights copied over with get_weights/set_weights, gives the same
predictions; summary parameter counts match; tutorial scripts train."""
import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")

import pyfastnn  # noqa: E402
from pyfastnn import keras as pk  # noqa: E402
from pyfastnn.keras import layers as pl  # noqa: E402

from conftest import rel_error  # noqa: E402


def real_keras():
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "torch" and "tensorflow" not in keras.backend.backend():
        pytest.skip("keras backend unavailable")
    return keras


def build_pair(keras, make_layers, input_shape):
    """The same layer stack in Keras and in pyfastnn.keras, weights copied Keras -> pyfastnn."""
    km = keras.Sequential([keras.Input(shape=input_shape)] + make_layers(keras.layers))
    pm = pk.Sequential([pk.Input(shape=input_shape)] + make_layers(pl))
    assert len(km.layers) == len(pm.layers)
    for kl, pl_ in zip(km.layers, pm.layers):
        assert kl.count_params() == pl_.count_params(), (kl.name, kl.count_params(), pl_.count_params())
        pl_.set_weights(kl.get_weights())
    return km, pm


def compare(km, pm, x, tol=1e-5):
    want = np.asarray(km.predict(x, verbose=0))
    got = pm.predict(x, verbose=0)
    assert got.shape == want.shape
    assert rel_error(got, want) < tol, rel_error(got, want)


rng = np.random.default_rng(0)
# Keras's variables call __array__(copy=False) on numpy inputs: its own deprecation noise, not ours.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_tutorial_cnn_matches_keras():
    keras = real_keras()
    km, pm = build_pair(keras, lambda L: [L.Conv2D(32, (3, 3), activation="relu"), L.MaxPooling2D((2, 2)),
                                          L.Conv2D(64, (3, 3), activation="relu"), L.MaxPooling2D((2, 2)),
                                          L.Flatten(), L.Dense(128, activation="relu"),
                                          L.Dense(10, activation="softmax")], (28, 28, 1))
    assert km.count_params() == pm.count_params() == 225034
    compare(km, pm, rng.random((5, 28, 28, 1)).astype(np.float32))


def test_conv_variants_and_pools_match_keras():
    keras = real_keras()
    km, pm = build_pair(keras, lambda L: [L.Conv2D(6, 3, padding="same", activation="tanh"),
                                          L.AveragePooling2D(2), L.Conv2D(5, (3, 3), strides=2, use_bias=False),
                                          L.BatchNormalization(), L.GlobalAveragePooling2D(), L.Dense(3)],
                        (13, 11, 3))
    bn_k, bn_p = km.layers[3], pm.layers[3]
    stats = [rng.random(5).astype(np.float32) + 0.5 for _ in range(4)]     # non-trivial BN weights
    bn_k.set_weights(stats)
    bn_p.set_weights(stats)
    compare(km, pm, rng.standard_normal((4, 13, 11, 3)).astype(np.float32))


def test_image_output_stays_channels_last():
    keras = real_keras()
    km, pm = build_pair(keras, lambda L: [L.Conv2D(4, 3), L.MaxPooling2D(2)], (9, 9, 2))
    compare(km, pm, rng.standard_normal((3, 9, 9, 2)).astype(np.float32))


def test_stacked_lstms_match_keras():
    keras = real_keras()
    km, pm = build_pair(keras, lambda L: [L.LSTM(16, return_sequences=True), L.LSTM(8, return_sequences=True),
                                          L.Dense(8, activation="relu"), L.Dense(5, activation="softmax")], (7, 6))
    compare(km, pm, rng.standard_normal((3, 7, 6)).astype(np.float32))


def test_embedding_lstm_attention_model_matches_keras():
    keras = real_keras()
    # Keras's Attention wants [query, value]; in pyfastnn a single input means self-attention. Compare the
    # pieces: the stack without attention via Sequential, attention itself on the same sequence.
    km, pm = build_pair(keras, lambda L: [L.Embedding(50, 8), L.LSTM(12, return_sequences=True)], (9,))
    tokens = rng.integers(0, 50, (4, 9))
    compare(km, pm, tokens)
    seq = np.asarray(km.predict(tokens, verbose=0))
    want = keras.ops.convert_to_numpy(keras.layers.Attention()([seq, seq]))
    got = pl.Attention()(seq).numpy()
    assert rel_error(got, want) < 1e-5


def test_mlp_with_dropout_layernorm_and_sigmoid_match_keras():
    keras = real_keras()
    km, pm = build_pair(keras, lambda L: [L.Flatten(), L.Dense(32, activation="relu"), L.Dropout(0.2),
                                          L.LayerNormalization(), L.Dense(1, activation="sigmoid")], (4, 5))
    compare(km, pm, rng.standard_normal((6, 4, 5)).astype(np.float32))


def test_global_average_pooling_1d_matches_keras():
    keras = real_keras()
    km, pm = build_pair(keras, lambda L: [L.Dense(4), L.GlobalAveragePooling1D(), L.Activation("tanh")], (5, 3))
    compare(km, pm, rng.standard_normal((2, 5, 3)).astype(np.float32))


def test_multi_head_attention_matches_keras():
    keras = real_keras()
    k_layer = keras.layers.MultiHeadAttention(num_heads=2, key_dim=4)
    x = rng.standard_normal((3, 6, 8)).astype(np.float32)
    want = keras.ops.convert_to_numpy(k_layer(x, x))
    p_layer = pl.MultiHeadAttention(num_heads=2, key_dim=4)
    p_layer(x)                                   # build
    assert p_layer.count_params() == k_layer.count_params()
    p_layer.set_weights(k_layer.get_weights())
    assert rel_error(p_layer(x).numpy(), want) < 1e-5


def test_summary_counts_match_keras(capsys):
    keras = real_keras()
    km, pm = build_pair(keras, lambda L: [L.LSTM(64, return_sequences=True), L.LSTM(64, return_sequences=True),
                                          L.Dense(64, activation="relu"), L.Dense(10, activation="softmax")],
                        (100, 64))
    pm.summary()
    out = capsys.readouterr().out
    assert f"Total params: {km.count_params():,}" in out
    assert "(None, 100, 64)" in out and "(None, 100, 10)" in out


def test_tutorial_scripts_train():
    """The issue's scripts, as written but for the import, learn on small data."""
    pyfastnn.manual_seed(0)
    from pyfastnn.keras import Sequential
    from pyfastnn.keras.layers import LSTM, Attention, Dense, Dropout, Embedding, Flatten
    import pyfastnn as tf

    # Flatten/Dense/Dropout with from_logits loss, fit / evaluate / predict
    y = rng.integers(0, 10, 256)
    x = (0.3 * rng.random((256, 28, 28))).astype(np.float32)
    x[np.arange(256), 2 * y] += 1.0                      # the class is the row that lights up
    model = tf.keras.Sequential([Flatten(input_shape=(28, 28)), Dense(128, activation='relu'), Dropout(0.2),
                                 Dense(10)])
    model.compile(optimizer='adam', loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=['accuracy'])
    hist = model.fit(x, y, epochs=5, verbose=0)
    assert hist.history["accuracy"][-1] > 0.85
    loss, acc = model.evaluate(x, y, verbose=0)
    assert acc > 0.85 and model.predict(x, verbose=0).shape == (256, 10)

    # Embedding -> LSTM -> Attention (one input) -> LSTM -> Dense softmax
    tokens = rng.integers(1, 20, (256, 12))
    labels = (tokens[:, 0] < 10).astype(np.int64)      # only the first token's value counts
    model = Sequential()
    model.add(Embedding(20, 16))
    model.add(LSTM(32, return_sequences=True))
    model.add(Attention())
    model.add(LSTM(32))
    model.add(Dense(2, activation='softmax'))
    model.compile(optimizer='adam', loss='sparse_categorical_crossentropy', metrics=['accuracy'])
    hist = model.fit(tokens, labels, epochs=15, batch_size=32, validation_split=0.25, verbose=0)
    assert hist.history["accuracy"][-1] > 0.8 and "val_accuracy" in hist.history

    # binary classifier with sigmoid + binary_crossentropy and validation_data
    xb = rng.standard_normal((200, 4)).astype(np.float32)
    yb = (xb.sum(1) > 0).astype(np.float32)
    model = Sequential([Dense(8, activation='relu', input_shape=(4,)), Dense(1, activation='sigmoid')])
    model.compile(optimizer='adam', loss='binary_crossentropy', metrics=['accuracy'])
    hist = model.fit(xb, yb, epochs=40, batch_size=16, validation_data=(xb, yb), verbose=0)
    assert hist.history["val_accuracy"][-1] > 0.9


def test_save_and_load_model_round_trip(tmp_path):
    model = pk.Sequential([pl.Dense(4, activation="relu", input_shape=(3,)), pl.Dense(2)])
    model.compile("adam", "mse")
    x = rng.standard_normal((5, 3)).astype(np.float32)
    path = str(tmp_path / "m.keras")
    model.save(path)
    again = pk.load_model(path)          # safe: a JSON config and arrays, nothing from the file runs
    np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))
    for a, b in zip(model.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_fit_prints_keras_progress(capsys):
    model = pk.Sequential([pl.Dense(3, input_shape=(2,))])
    model.compile("sgd", "mse")
    model.fit(np.zeros((10, 2), np.float32), np.zeros((10, 3), np.float32), epochs=2, batch_size=4)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Epoch 1/2"
    assert out[1].startswith("3/3 [==============================] - ") and "ms/step - loss: " in out[1]


def test_errors_name_layer_and_expectation():
    with pytest.raises(ValueError, match="unknown activation 'relu7'"):
        pl.Dense(3, activation="relu7")
    model = pk.Sequential([pl.Dense(3, input_shape=(2,), name="head")])
    with pytest.raises(ValueError, match="unknown optimizer 'adamax'"):
        model.compile("adamax", "mse")
    with pytest.raises(ValueError, match="unknown loss 'hinge'"):
        model.compile("adam", "hinge")
    with pytest.raises(ValueError, match=r"Dense 'head': set_weights: weight 0 must have shape \(2, 3\)"):
        model.layers[0].set_weights([np.zeros((3, 2)), np.zeros(3)])
    with pytest.raises(ValueError, match=r"Dense 'head': set_weights expects 2 arrays"):
        model.layers[0].set_weights([np.zeros((2, 3))])
    with pytest.raises(ValueError, match=r"input 'input_layer\w*' \(feeding 'head'\) expects shape \(None, 2\), got "
                                         r"\(4, 5\)"):
        model.predict(np.zeros((4, 5), np.float32))
    with pytest.raises(ValueError, match="Conv2D 'c': expected input \\(H, W, C\\)"):
        pk.Sequential([pl.Conv2D(2, 3, input_shape=(5, 5), name="c")])


def test_model_checkpoint_saves_whole_models_by_default(tmp_path):
    model = pk.Sequential([pl.Dense(2, input_shape=(3,))])
    model.compile("sgd", "mse")
    x, y = np.ones((8, 3), np.float32), np.zeros((8, 2), np.float32)
    model.fit(x, y, epochs=2, verbose=0,
              callbacks=[pk.callbacks.ModelCheckpoint(str(tmp_path / "m{epoch}.keras"), monitor="loss")])
    assert sorted(os.listdir(tmp_path)) == ["m1.keras", "m2.keras"]
    np.testing.assert_array_equal(pk.load_model(str(tmp_path / "m2.keras"), safe_mode=False).predict(x, verbose=0),
                                  model.predict(x, verbose=0))
