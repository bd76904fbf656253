"""Shared by the Keras HDF5 tests: the same architectures built with Keras 3, tf_keras or pyfastnn.keras (each
builder takes the Keras-like module), random weights, prediction comparison and an h5 file listing."""
import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")      # TF's oneDNN kernels round differently

from pyfastnn import keras as pk  # noqa: E402


def keras3():
    pytest.importorskip("h5py")
    keras = pytest.importorskip("keras")
    if not keras.__version__.startswith("3"):
        pytest.skip(f"needs Keras 3, found {keras.__version__}")
    return keras


def tf_keras():
    pytest.importorskip("h5py")
    return pytest.importorskip("tf_keras")


# ---------------------------------------------------------------- architectures (K: keras, tf_keras or pk)
def cnn_bn(K):
    L = K.layers
    return K.Sequential([K.Input((8, 8, 3)), L.Conv2D(4, 3, activation="relu"), L.BatchNormalization(),
                         L.MaxPooling2D(2), L.Conv2D(6, 3, padding="same"), L.BatchNormalization(), L.Flatten(),
                         L.Dense(5, activation="relu"), L.Dense(3, activation="softmax")])


def lstm_stack(K):
    L = K.layers
    x_in = K.Input((6, 4))
    x = L.LSTM(5, return_sequences=True)(x_in)
    x = L.LSTM(3)(x)
    return K.Model(x_in, L.Dense(2)(x))


def nested_shared(K, freeze=False):
    """Two inputs through one shared Dense, a nested functional model (BatchNormalization before its Dense, so
    the legacy trainable-first order differs from the layer order) called on both, an Add, and a nested
    Sequential after it. freeze: the nested model's first Dense is frozen (its weights then come after the
    trainable ones in the legacy order)."""
    L = K.layers
    i_in = K.Input((4,))
    first = L.Dense(5, activation="tanh")
    first.trainable = not freeze
    inner = K.Model(i_in, L.Dense(3)(L.BatchNormalization()(first(i_in))))
    tail = K.Sequential([K.Input((3,)), L.Dense(4, activation="relu"), L.Dense(2)])
    a, b = K.Input((4,)), K.Input((4,))
    shared = L.Dense(4)
    h = L.Add()([inner(shared(a)), inner(shared(b))])
    return K.Model([a, b], tail(h))


def nested_frozen(K):
    return nested_shared(K, freeze=True)


def shared_across_nesting(K):
    """One Dense used by the outer model and inside a nested model: Keras saves it once, where its saver
    meets it first, and counts it among the nested model's layers all the same."""
    L = K.layers
    d = L.Dense(4)
    i_in = K.Input((4,))
    inner = K.Model(i_in, L.Dense(4)(d(i_in)))
    a = K.Input((4,))
    y = inner(L.Dense(4)(a))
    return K.Model(a, L.Dense(2)(L.Add()([d(a), y])))


def attention(K):
    L = K.layers
    x_in = K.Input((5, 8))
    y = L.MultiHeadAttention(2, 4)(x_in, x_in)
    y = L.LayerNormalization()(L.Add()([x_in, y]))
    y = L.GlobalAveragePooling1D()(y)
    return K.Model(x_in, L.Dense(3)(y))


def embedding_lstm(K):
    L = K.layers
    return K.Sequential([K.Input((7,)), L.Embedding(20, 6), L.LSTM(4), L.Dense(2, activation="sigmoid")])


def inputs_for(name, rng, n=5):
    if name in ("nested_shared", "nested_frozen"):
        return [rng.standard_normal((n, 4)).astype(np.float32) for _ in range(2)]
    if name == "embedding_lstm":
        return rng.integers(0, 20, (n, 7)).astype(np.float32)
    shape = {"cnn_bn": (8, 8, 3), "lstm_stack": (6, 4), "attention": (5, 8), "shared_across_nesting": (4,)}[name]
    return rng.standard_normal((n,) + shape).astype(np.float32)


ARCHS = {"cnn_bn": cnn_bn, "lstm_stack": lstm_stack, "nested_shared": nested_shared, "nested_frozen": nested_frozen,
         "shared_across_nesting": shared_across_nesting, "attention": attention, "embedding_lstm": embedding_lstm}


# ---------------------------------------------------------------- weights and predictions
def randomize(model, seed):
    """Random weights in the model's get_weights order: 1-D ones (biases, BN gammas and variances) positive."""
    rng = np.random.default_rng(seed)
    ws = []
    for w in model.get_weights():
        w = np.asarray(w)
        ws.append(rng.uniform(0.5, 1.5, w.shape).astype(np.float32) if w.ndim <= 1
                  else (rng.standard_normal(w.shape) * 0.25).astype(np.float32))
    model.set_weights(ws)
    return model


def predict(model, x):
    out = model.predict(x, verbose=0)
    return np.asarray(out.detach().cpu() if hasattr(out, "detach") else out, dtype=np.float64)


def assert_same_predictions(a, b, x, tol=1e-6):
    pa, pb = predict(a, x), predict(b, x)
    assert pa.shape == pb.shape
    err = np.max(np.abs(pa - pb)) / max(1.0, np.max(np.abs(pb)))
    assert err <= tol, err


def weights_of(model):
    return [np.array(w, copy=True) for w in model.get_weights()]


def assert_weights_equal(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def leaf_weights(model):
    """Each weight-holding layer's get_weights(), walking nested models (Keras, tf_keras or pyfastnn) in
    layer order, each layer once."""
    out, seen = [], set()

    def walk(m):
        for layer in m.layers:
            if id(layer) in seen:
                continue
            seen.add(id(layer))
            if hasattr(layer, "layers"):
                walk(layer)
            elif layer.get_weights():
                out.append([np.asarray(w) for w in layer.get_weights()])
    walk(model)
    return out


def assert_same_leaf_weights(a, b):
    """Bit-identical weights, layer by layer (the loader copies; only the arithmetic of two frameworks may
    differ in the predictions)."""
    wa, wb = leaf_weights(a), leaf_weights(b)
    assert [len(w) for w in wa] == [len(w) for w in wb]
    for la, lb in zip(wa, wb):
        assert_weights_equal(la, lb)


def listing(path):
    """{dataset path: shape} of an h5 file."""
    import h5py
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj.shape) if isinstance(obj, h5py.Dataset) else None)
    return out


__all__ = ["pk", "keras3", "tf_keras", "ARCHS", "inputs_for", "randomize", "predict", "assert_same_predictions",
           "weights_of", "assert_weights_equal", "leaf_weights", "assert_same_leaf_weights", "listing"]
