"""fit_generator / evaluate_generator / predict_generator (tf.keras 2's names, as the tutorials call them)
train a functional model on a flow_from_directory iterator exactly as tf.keras 2 does: same batches across
epochs with steps_per_epoch shorter than the directory, same per-epoch losses and accuracies, same final
weights, from the same starting weights. (fit shuffles the order of a Sequence's batches by default, as
Keras does, with its own random stream; shuffle=False makes the two runs comparable batch for batch.)"""
import warnings

import numpy as np
import pytest

from pyfastnn import keras as pk
from pyfastnn.keras.preprocessing import image
from keras_image_data import IGNORE_KERAS_SCIPY_WARNING, digits_dir, tf_keras  # noqa: F401 (fixtures)

pytestmark = IGNORE_KERAS_SCIPY_WARNING


def _model(k):
    inp = k.layers.Input(shape=(8, 8, 1))
    x = k.layers.Conv2D(3, (3, 3), activation="relu")(inp)
    x = k.layers.Flatten()(x)
    x = k.layers.Dense(4, activation="relu")(x)
    out = k.layers.Dense(1, activation="sigmoid")(x)
    return k.models.Model(inputs=inp, outputs=out)


def _flow(module, root):
    return module.ImageDataGenerator(rescale=1. / 255).flow_from_directory(
        str(root), target_size=(8, 8), color_mode="grayscale", batch_size=8, class_mode="binary", shuffle=False)


def test_fit_generator_matches_tf_keras_2(tf_keras, digits_dir):
    from tf_keras.src.preprocessing import image as tf_image
    tf_keras.utils.set_random_seed(0)
    theirs = _model(tf_keras)
    theirs.compile(optimizer=tf_keras.optimizers.SGD(learning_rate=0.5), loss="binary_crossentropy",
                   metrics=["accuracy"])
    ours = _model(pk)
    ours.compile(optimizer=pk.optimizers.SGD(learning_rate=0.5), loss="binary_crossentropy", metrics=["accuracy"])
    ours.set_weights(theirs.get_weights())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        h_theirs = theirs.fit_generator(_flow(tf_image, digits_dir), steps_per_epoch=3, epochs=4, verbose=0,
                                       shuffle=False)
    with pytest.warns(DeprecationWarning, match="fit_generator"):
        h_ours = ours.fit_generator(_flow(image, digits_dir), steps_per_epoch=3, epochs=4, verbose=0, shuffle=False)
    for key in ("loss", "accuracy"):
        np.testing.assert_allclose(h_ours.history[key], h_theirs.history[key], rtol=1e-4, atol=1e-6, err_msg=key)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want_eval = theirs.evaluate_generator(_flow(tf_image, digits_dir), steps=5, verbose=0)
        want_pred = theirs.predict_generator(_flow(tf_image, digits_dir), steps=5, verbose=0)
        got_eval = ours.evaluate_generator(_flow(image, digits_dir), steps=5, verbose=0)
        got_pred = ours.predict_generator(_flow(image, digits_dir), steps=5, verbose=0)
    np.testing.assert_allclose(got_eval, want_eval, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(got_pred, want_pred, rtol=1e-4, atol=1e-6)


class _Numbered(pk.utils.Sequence):
    """Batch i holds the value i, so the order fit visits batches in is visible."""

    def __init__(self):
        self.seen = []

    def __len__(self):
        return 6

    def __getitem__(self, i):
        self.seen.append(i)
        return np.full((2, 1), i, np.float32), np.zeros((2, 1), np.float32)


@pytest.mark.parametrize("shuffle", [True, False])
def test_fit_shuffles_a_sequence_batch_order_like_keras(shuffle):
    model = pk.Sequential([pk.layers.Input((1,)), pk.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    seq = _Numbered()
    model.fit(seq, epochs=3, verbose=0, shuffle=shuffle, max_queue_size=0)
    passes = [seq.seen[i:i + 6] for i in range(0, 18, 6)]
    assert all(sorted(p) == list(range(6)) for p in passes)        # every batch once per pass
    in_order = [p == list(range(6)) for p in passes]
    assert all(in_order) if not shuffle else not all(in_order)
