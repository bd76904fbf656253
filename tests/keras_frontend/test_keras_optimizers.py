"""Keras optimizer arguments against Keras 3 itself: one step on a Dense layer with the same weights and
gradients, for clipnorm / clipvalue / global_clipnorm / weight_decay, and tf.keras 2's `lr=` spelling."""
import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")

from pyfastnn import keras as pk  # noqa: E402


def _steps(make_ours, make_theirs, steps=3):
    keras = pytest.importorskip("keras")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 5)).astype(np.float32)
    y = (rng.standard_normal((16, 3)) * 10).astype(np.float32)        # large errors: clipping bites
    theirs = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3)])
    theirs.compile(optimizer=make_theirs(keras), loss="mse")
    ours = pk.Sequential([pk.Input((5,)), pk.layers.Dense(3)])
    ours.compile(optimizer=make_ours(pk), loss="mse")
    ours.set_weights(theirs.get_weights())
    for _ in range(steps):
        theirs.train_on_batch(x, y)
        ours.train_on_batch(x, y)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-6)


@pytest.mark.parametrize("kw", [dict(clipnorm=0.5), dict(clipvalue=0.05), dict(global_clipnorm=0.3),
                                dict(weight_decay=0.1), dict(momentum=0.9, clipnorm=1.0)])
def test_sgd_arguments_match_keras(kw):
    _steps(lambda m: m.optimizers.SGD(learning_rate=0.05, **kw), lambda m: m.optimizers.SGD(learning_rate=0.05, **kw))


@pytest.mark.parametrize("kw", [dict(global_clipnorm=0.3), dict(weight_decay=0.05)])
def test_rmsprop_arguments_match_keras(kw):
    _steps(lambda m: m.optimizers.RMSprop(learning_rate=0.01, **kw),
           lambda m: m.optimizers.RMSprop(learning_rate=0.01, **kw))


def test_adamw_matches_keras():
    _steps(lambda m: m.optimizers.AdamW(learning_rate=0.01, weight_decay=0.1),
           lambda m: m.optimizers.AdamW(learning_rate=0.01, weight_decay=0.1))


def test_lr_spelling_of_tf_keras_2_is_honoured_with_a_warning():
    with pytest.warns(DeprecationWarning, match="lr"):
        opt = pk.optimizers.Adam(lr=1e-4)
    assert opt.learning_rate == 1e-4


def test_unknown_and_unsupported_arguments_raise():
    with pytest.raises(TypeError, match="learnig_rate"):
        pk.optimizers.Adam(learnig_rate=0.1)
    with pytest.raises(NotImplementedError, match="use_ema"):
        pk.optimizers.SGD(use_ema=True)
    with pytest.raises(ValueError, match="only one of"):
        pk.optimizers.SGD(clipnorm=1.0, clipvalue=1.0)


@pytest.mark.parametrize("kw", [dict(), dict(momentum=0.9), dict(centered=True), dict(amsgrad=True)])
def test_update_rules_match_keras_on_small_gradients(kw):
    """Small gradients are where Keras's epsilon placement (Adam: on the uncorrected sqrt(v); RMSprop: inside
    the sqrt) differs from torch's, so the Keras front-end must follow Keras's."""
    name = "Adam" if "amsgrad" in kw or not kw else "RMSprop"
    for opt in ("Adam", "RMSprop") if not kw else (name,):
        _steps(lambda m: getattr(m.optimizers, opt)(learning_rate=0.01, epsilon=1e-3, **kw),
               lambda m: getattr(m.optimizers, opt)(learning_rate=0.01, epsilon=1e-3, **kw), steps=5)
