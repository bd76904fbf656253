"""The layers of issue 19 against Keras 3 (torch backend): the same layer given the same weights (Keras's, copied
with get_weights/set_weights) gives the same outputs (relative error < 1e-5, float32), with Keras's weight
shapes, parameter counts and output shapes, alone and inside models (where image layers run in NCHW)."""
import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")

from pyfastnn import keras as pk  # noqa: E402
from pyfastnn.keras import layers as pl  # noqa: E402

from conftest import rel_error  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
rng = np.random.default_rng(19)


def real_keras():
    return pytest.importorskip("keras")


def knp(keras, y):
    if isinstance(y, (list, tuple)):
        return [knp(keras, v) for v in y]
    return np.asarray(keras.ops.convert_to_numpy(y))


def pnp(y):
    if isinstance(y, (list, tuple)):
        return [pnp(v) for v in y]
    return y.numpy()


def randomize(layer_k):
    """Non-trivial weights (biases and BN statistics included) for the Keras layer."""
    ws = [rng.standard_normal(w.shape).astype(np.float32) * 0.5 for w in layer_k.get_weights()]
    layer_k.set_weights(ws)


def check_layer(make, x, call_kwargs=None, tol=1e-5, pos_weights=False):
    """make(layers) builds the layer; both get x, the Keras layer's (randomized) weights go to ours."""
    keras = real_keras()
    kl, ql = make(keras.layers), make(pl)
    call_kwargs = call_kwargs or {}
    want = kl(x, **call_kwargs)
    ql(x, **call_kwargs)                                   # builds
    randomize(kl)
    if pos_weights:
        kl.set_weights([np.abs(w) + 0.5 for w in kl.get_weights()])
    want = knp(keras, kl(x, **call_kwargs))
    assert [w.shape for w in ql.get_weights()] == [w.shape for w in kl.get_weights()]
    assert ql.count_params() == kl.count_params()
    ql.set_weights(kl.get_weights())
    got = pnp(ql(x, **call_kwargs))
    if isinstance(want, list):
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert g.shape == w.shape and rel_error(g, w) < tol, (g.shape, w.shape)
    else:
        assert got.shape == want.shape, (got.shape, want.shape)
        assert rel_error(got, want) < tol, rel_error(got, want)
    for a, b in zip(ql.get_weights(), kl.get_weights()):
        np.testing.assert_array_equal(a, b)
    return kl, ql


def img(*shape):
    return rng.standard_normal(shape).astype(np.float32)


# ------------------------------------------------------------------ shape layers
@pytest.mark.parametrize("make,shape", [
    (lambda L: L.Reshape((6, 2)), (3, 4, 3)),
    (lambda L: L.Reshape((-1, 4)), (3, 2, 2, 2)),
    (lambda L: L.Permute((2, 1)), (3, 4, 5)),
    (lambda L: L.Permute((3, 1, 2)), (2, 3, 4, 5)),
    (lambda L: L.RepeatVector(3), (4, 5)),
    (lambda L: L.Rescaling(1 / 255.0, offset=-0.5), (2, 4, 4, 3)),
    (lambda L: L.Rescaling([1.0, 2.0, 3.0]), (2, 4, 4, 3)),
    (lambda L: L.ZeroPadding2D(), (2, 5, 4, 3)),
    (lambda L: L.ZeroPadding2D(((1, 2), (0, 3))), (2, 5, 4, 3)),
    (lambda L: L.ZeroPadding2D((2, 1)), (2, 5, 4, 3)),
    (lambda L: L.Cropping2D(1), (2, 6, 5, 3)),
    (lambda L: L.Cropping2D(((1, 2), (0, 1))), (2, 6, 5, 3)),
    (lambda L: L.UpSampling2D(), (2, 3, 4, 2)),
    (lambda L: L.UpSampling2D((2, 3), interpolation="bilinear"), (2, 3, 4, 2)),
    (lambda L: L.UpSampling2D(3, interpolation="bilinear"), (1, 5, 2, 3)),
    (lambda L: L.GlobalMaxPooling2D(), (2, 5, 4, 3)),
    (lambda L: L.GlobalMaxPooling2D(keepdims=True), (2, 5, 4, 3)),
    (lambda L: L.GlobalAveragePooling2D(keepdims=True), (2, 5, 4, 3)),
    (lambda L: L.GlobalMaxPooling1D(), (2, 7, 3)),
    (lambda L: L.GlobalMaxPooling1D(keepdims=True), (2, 7, 3)),
    (lambda L: L.GlobalAveragePooling1D(keepdims=True), (2, 7, 3)),
])
def test_shape_layers_match_keras(make, shape):
    check_layer(make, img(*shape))


# ------------------------------------------------------------------ convolutions and pools
@pytest.mark.parametrize("make,shape", [
    (lambda L: L.Conv1D(4, 3), (2, 9, 3)),
    (lambda L: L.Conv1D(4, 4, padding="same", activation="relu"), (2, 9, 3)),
    (lambda L: L.Conv1D(4, 3, strides=2, padding="same"), (2, 10, 3)),
    (lambda L: L.Conv1D(5, 3, padding="causal", dilation_rate=2), (2, 9, 3)),
    (lambda L: L.Conv1D(4, 2, groups=2, use_bias=False), (2, 6, 4)),
    (lambda L: L.MaxPooling1D(), (2, 9, 3)),
    (lambda L: L.MaxPooling1D(3, strides=2, padding="same"), (2, 10, 3)),
    (lambda L: L.AveragePooling1D(2), (2, 9, 3)),
    (lambda L: L.AveragePooling1D(3, strides=1, padding="same"), (2, 9, 3)),
    (lambda L: L.MaxPooling2D(3, strides=2, padding="same"), (2, 8, 7, 3)),
    (lambda L: L.AveragePooling2D(3, strides=1, padding="same"), (2, 6, 5, 3)),
    (lambda L: L.MaxPooling2D(2, padding="SAME"), (2, 5, 5, 2)),
    (lambda L: L.Conv2D(4, 3, strides=2, padding="same"), (2, 8, 8, 3)),
    (lambda L: L.Conv2D(4, 2, padding="same"), (2, 7, 6, 3)),
    (lambda L: L.Conv2D(4, (1, 4), strides=(1, 3), padding="same", dilation_rate=1), (2, 7, 10, 3)),
    (lambda L: L.DepthwiseConv2D(3), (2, 7, 6, 3)),
    (lambda L: L.DepthwiseConv2D(3, strides=2, padding="same", depth_multiplier=2), (2, 8, 8, 3)),
    (lambda L: L.DepthwiseConv2D(3, depth_multiplier=3, use_bias=False, activation="relu"), (2, 6, 6, 2)),
    (lambda L: L.SeparableConv2D(5, 3), (2, 7, 6, 3)),
    (lambda L: L.SeparableConv2D(5, 3, strides=2, padding="same", depth_multiplier=2, activation="tanh"),
     (2, 8, 9, 3)),
    (lambda L: L.SeparableConv2D(4, 2, use_bias=False), (2, 5, 5, 2)),
])
def test_conv_and_pool_layers_match_keras(make, shape):
    check_layer(make, img(*shape))


@pytest.mark.parametrize("make,shape", [
    (lambda L: L.AveragePooling1D(3, strides=2, padding="same"), (2, 10, 3)),
    (lambda L: L.AveragePooling2D(3, strides=2, padding="same"), (2, 8, 7, 3)),
    (lambda L: L.AveragePooling2D(2, padding="same"), (2, 5, 5, 2)),
])
def test_uneven_same_average_pooling_matches_tensorflow(make, shape):
    """Keras's 'same' average pooling averages only the real elements of a window (TensorFlow's op). With an
    uneven padding Keras 3's torch backend pads by replicating the edge instead, and its results differ from
    its TensorFlow backend's; tf.keras is the reference here."""
    tf_keras = pytest.importorskip("tf_keras")
    x = img(*shape)
    assert rel_error(make(pl)(x).numpy(), make(tf_keras.layers)(x).numpy()) < 1e-5


# ------------------------------------------------------------------ activations
@pytest.mark.parametrize("make", [
    lambda L: L.ReLU(),
    lambda L: L.ReLU(6.0),
    lambda L: L.ReLU(max_value=1.5),
    lambda L: L.ReLU(negative_slope=0.1),
    lambda L: L.ReLU(max_value=1.0, negative_slope=0.2, threshold=0.3),
    lambda L: L.ReLU(threshold=0.5),
    lambda L: L.LeakyReLU(),
    lambda L: L.LeakyReLU(negative_slope=0.05),
    lambda L: L.Softmax(),
    lambda L: L.Softmax(axis=1),
    *[lambda L, a=a: L.Activation(a) for a in ("relu6", "leaky_relu", "swish", "silu", "gelu", "elu", "selu",
                                                "softplus", "softsign", "hard_sigmoid", "hard_swish", "mish",
                                                "exponential", "log_softmax", "linear")],
])
def test_activation_layers_match_keras(make):
    check_layer(make, img(3, 4, 5))


def test_softmax_mask_matches_keras():
    keras = real_keras()
    x = img(2, 3, 4)
    mask = rng.random((2, 3, 4)) > 0.4
    mask[0, 0] = False                                   # a wholly masked row: zeros
    want = knp(keras, keras.layers.Softmax()(x, mask=mask))
    got = pl.Softmax()(x, mask=mask).numpy()
    assert rel_error(got, want) < 1e-5


# ------------------------------------------------------------------ recurrent layers
@pytest.mark.parametrize("make", [
    lambda L: L.GRU(5),
    lambda L: L.GRU(5, return_sequences=True),
    lambda L: L.GRU(4, return_sequences=True, return_state=True),
    lambda L: L.GRU(4, go_backwards=True, return_sequences=True),
    lambda L: L.GRU(3, use_bias=False),
    lambda L: L.SimpleRNN(5),
    lambda L: L.SimpleRNN(5, return_sequences=True, activation="relu"),
    lambda L: L.SimpleRNN(4, return_state=True, go_backwards=True),
    lambda L: L.LSTM(4, return_sequences=True, go_backwards=True),
    lambda L: L.LSTM(4, return_state=True),
    *[lambda L, m=m, cell=cell: L.Bidirectional(getattr(L, cell)(4, return_sequences=True), merge_mode=m)
      for m in ("concat", "sum", "mul", "ave", None) for cell in ("LSTM", "GRU")],
    lambda L: L.Bidirectional(L.SimpleRNN(3)),
    lambda L: L.Bidirectional(L.LSTM(3, return_state=True)),
    lambda L: L.Bidirectional(L.GRU(3, return_sequences=True, return_state=True), merge_mode=None),
])
def test_recurrent_layers_match_keras(make):
    check_layer(make, img(3, 6, 4))


@pytest.mark.parametrize("cell,n_states", [("LSTM", 2), ("GRU", 1), ("SimpleRNN", 1)])
def test_recurrent_initial_state_matches_keras(cell, n_states):
    states = [img(3, 4) for _ in range(n_states)]
    check_layer(lambda L: getattr(L, cell)(4, return_sequences=True), img(3, 5, 2),
                call_kwargs={"initial_state": states})


def test_gru_weights_are_keras_layout():
    keras = real_keras()
    kl = keras.layers.GRU(6)
    kl(img(2, 3, 4))
    ql = pl.GRU(6)
    ql(img(2, 3, 4))
    assert [w.shape for w in ql.get_weights()] == [(4, 18), (6, 18), (2, 18)] == \
        [w.shape for w in kl.get_weights()]
    # Keras's initializers: zero biases, orthogonal recurrent kernel (rows orthonormal)
    k, r, b = ql.get_weights()
    assert not b.any()
    np.testing.assert_allclose(r @ r.T, np.eye(6), atol=1e-5)
    assert np.abs(k).max() <= np.sqrt(6 / (4 + 18)) + 1e-6


def test_time_distributed_matches_keras():
    check_layer(lambda L: L.TimeDistributed(L.Dense(3, activation="tanh")), img(2, 5, 4))
    check_layer(lambda L: L.TimeDistributed(L.Conv2D(3, 3, padding="same")), img(2, 4, 6, 5, 2))


def test_recurrent_model_matches_keras():
    """Embedding -> Bidirectional(LSTM) -> GRU -> TimeDistributed(Dense) -> Conv1D -> pools, in a Sequential."""
    keras = real_keras()

    def stack(L):
        return [L.Embedding(30, 8), L.Bidirectional(L.LSTM(6, return_sequences=True)),
                L.GRU(5, return_sequences=True), L.TimeDistributed(L.Dense(4)), L.Conv1D(6, 3, padding="causal"),
                L.MaxPooling1D(2), L.SimpleRNN(4, return_sequences=True), L.GlobalMaxPooling1D(),
                L.RepeatVector(2), L.Reshape((8,)), L.Dense(2, activation="softmax")]
    km = keras.Sequential([keras.Input((10,))] + stack(keras.layers))
    pm = pk.Sequential([pk.Input((10,))] + stack(pl))
    for kl, ql in zip(km.layers, pm.layers):
        randomize(kl)
        assert kl.count_params() == ql.count_params(), kl.name
        ql.set_weights(kl.get_weights())
    tokens = rng.integers(0, 30, (4, 10))
    want = np.asarray(km.predict(tokens, verbose=0))
    assert rel_error(pm.predict(tokens, verbose=0), want) < 1e-5


def test_image_model_in_nchw_matches_keras():
    """A functional model whose image layers run in NCHW between transposes (padding, crops, depthwise,
    separable, upsampling, 'same' pools) equals Keras's."""
    keras = real_keras()

    def build(K):
        L = K.layers
        inp = K.Input((12, 11, 3))
        x = L.Rescaling(1 / 127.5, offset=-1)(inp)
        x = L.ZeroPadding2D(((0, 1), (1, 0)))(x)
        x = L.Conv2D(6, 3, strides=2, padding="same", use_bias=False)(x)
        x = L.BatchNormalization(axis=3, epsilon=1.001e-5)(x)
        x = L.ReLU(6.0)(x)
        y = L.DepthwiseConv2D(3, padding="same")(x)
        y = L.BatchNormalization(momentum=0.999)(y)
        y = L.LeakyReLU(0.1)(y)
        x = L.Add()([x, y])
        x = L.SeparableConv2D(8, 3, padding="same", activation="relu")(x)
        x = L.MaxPooling2D(3, strides=2, padding="same")(x)
        x = L.UpSampling2D(interpolation="bilinear")(x)
        x = L.Cropping2D(1)(x)
        x = L.AveragePooling2D(3, strides=1, padding="same")(x)     # symmetric: see the test above
        a = L.GlobalMaxPooling2D()(x)
        b = L.GlobalAveragePooling2D()(x)
        x = L.Concatenate()([a, b])
        return K.Model(inp, L.Softmax()(L.Dense(5)(x)))
    km, pm = build(keras), build(pk)
    assert len(km.layers) == len(pm.layers)
    for kl, ql in zip(km.layers, pm.layers):
        randomize(kl)
        if "batch_normalization" in kl.name:
            w = kl.get_weights()
            kl.set_weights(w[:3] + [np.abs(w[3]) + 0.5])
        assert kl.count_params() == ql.count_params(), kl.name
        ql.set_weights(kl.get_weights())
    assert km.count_params() == pm.count_params()
    x = rng.uniform(0, 255, (3, 12, 11, 3)).astype(np.float32)
    assert rel_error(pm.predict(x, verbose=0), np.asarray(km.predict(x, verbose=0))) < 1e-5


def test_unknown_spatial_dims_build_and_run():
    """Images of unknown size (None, None, 3): shapes come from compute_output_shape, the model runs on any
    size."""
    inp = pk.Input((None, None, 3))
    x = pl.ZeroPadding2D(1)(inp)
    x = pl.Conv2D(4, 3, strides=2, padding="same")(x)
    x = pl.DepthwiseConv2D(3, padding="same")(x)
    x = pl.MaxPooling2D(2, padding="same")(x)
    x = pl.UpSampling2D()(x)
    assert tuple(x.shape) == (None, None, None, 4)
    m = pk.Model(inp, pl.GlobalAveragePooling2D()(x))
    assert m.predict(img(2, 9, 7, 3), verbose=0).shape == (2, 4)
    assert m.predict(img(1, 16, 16, 3), verbose=0).shape == (1, 4)


def test_layer_errors_name_layer_and_argument():
    with pytest.raises(ValueError, match="Reshape 'r': The total size of the tensor must be unchanged"):
        pl.Reshape((5,), name="r")(img(2, 3, 2))
    with pytest.raises(ValueError, match="Permute: Invalid permutation argument `dims`"):
        pl.Permute((0, 1))
    with pytest.raises(ValueError, match="Cropping2D 'c': Values in `cropping` argument should be smaller"):
        pl.Cropping2D(3, name="c")(img(1, 5, 5, 1))
    with pytest.raises(ValueError, match="ZeroPadding2D: `padding` should be either an int"):
        pl.ZeroPadding2D((1, 2, 3))
    with pytest.raises(ValueError, match="ReLU: max_value of a ReLU layer cannot be a negative value"):
        pl.ReLU(max_value=-1)
    with pytest.raises(NotImplementedError, match="GRU: reset_after=False"):
        pl.GRU(3, reset_after=False)
    with pytest.raises(ValueError, match="Bidirectional: Invalid merge mode"):
        pl.Bidirectional(pl.LSTM(3), merge_mode="max")
    with pytest.raises(ValueError, match="Bidirectional: Please initialize"):
        pl.Bidirectional(pl.Dense(3))
    with pytest.raises(ValueError, match="BatchNormalization 'bn': axis=1 is not the channels"):
        pl.BatchNormalization(axis=1, name="bn")(img(2, 3, 4, 5))
    with pytest.raises(ValueError, match="LSTM 'l': initial_state must hold 2"):
        pl.LSTM(3, name="l")(img(2, 4, 3), initial_state=[img(2, 3)])
    with pytest.raises(NotImplementedError, match="recurrent_dropout"):
        pl.GRU(3, recurrent_dropout=0.2)(img(2, 4, 3), training=True)
    with pytest.raises(ValueError, match="Conv1D: causal padding is only supported with strides=1"):
        pl.Conv1D(3, 2, strides=2, padding="causal")
    with pytest.raises(TypeError, match="unexpected keyword"):
        pl.UpSampling2D(scale=2)
    with pytest.raises(ValueError, match="Conv2D 'small': Computed output size would be negative"):
        pl.Conv2D(2, 5, name="small")(pk.Input((3, 8, 1)))
    with pytest.raises(ValueError, match="MaxPooling1D 'p': Computed output size would be negative"):
        pl.MaxPooling1D(4, name="p")(img(2, 3, 2))
