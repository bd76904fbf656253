"""The Keras tutorial models, run as written with only the import changed
(`tensorflow.keras` -> `pyfastnn.keras`), on data that ships offline:
scikit-learn's digits upscaled to 28x28 for the image models, generated
sequence and token tasks (where the label depends on the order) for the
recurrent ones.

    python examples/keras_tutorial.py [--epochs-scale 1.0]
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pyfastnn  # noqa: E402
import pyfastnn as tf  # noqa: E402  (the tutorials' `tf.keras...` lines run unchanged)
from pyfastnn.keras import Sequential  # noqa: E402
from pyfastnn.keras.layers import (LSTM, Attention, Conv2D, Dense, Dropout, Embedding, Flatten,  # noqa: E402
                                   MaxPooling2D)
from _digits import load_digits_28  # noqa: E402


def images():
    x_train, x_test, y_train, y_test = load_digits_28()
    mean, std = x_train.mean(), x_train.std()
    to_nhwc = lambda a: ((a - mean) / std).transpose(0, 2, 3, 1)   # noqa: E731  Keras images are channels_last
    return to_nhwc(x_train), to_nhwc(x_test), y_train, y_test


def previous_token_task(n, rng):
    """(n, 100, 64) one-hot-ish frames; the label at step t is the token shown at step t-1."""
    tokens = rng.integers(0, 10, (n, 100))
    x = 0.1 * rng.standard_normal((n, 100, 64)).astype(np.float32)
    x[np.arange(n)[:, None], np.arange(100), tokens] += 1.0
    y = np.concatenate([np.zeros((n, 1), np.int64), tokens[:, :-1]], axis=1)
    return x, y


def first_marker_task(n, rng, length=20):
    """Filler tokens 10..9999 with two class tokens (0..9) at random places; the label is the
    class token that comes first. A bag of tokens can't tell which one that is."""
    x = rng.integers(10, 10000, (n, length))
    pos = np.argsort(rng.random((n, length)), axis=1)[:, :2]
    a, b = rng.integers(0, 10, n), rng.integers(0, 10, n)
    rows = np.arange(n)
    x[rows, pos[:, 0]], x[rows, pos[:, 1]] = a, b
    return x, np.where(pos[:, 0] < pos[:, 1], a, b)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs-scale", type=float, default=1.0, help="multiplies every model's epochs")
    args = parser.parse_args()
    ep = lambda e: max(1, int(round(e * args.epochs_scale)))   # noqa: E731
    pyfastnn.manual_seed(0)
    rng = np.random.default_rng(0)
    x_train, x_test, y_train, y_test = images()

    print("== 1. the tutorial CNN on digits 28x28x1")
    model = Sequential()
    model.add(Conv2D(32, (3, 3), activation='relu', input_shape=(28, 28, 1)))
    model.add(MaxPooling2D((2, 2)))
    model.add(Conv2D(64, (3, 3), activation='relu'))
    model.add(MaxPooling2D((2, 2)))
    model.add(Flatten())
    model.add(Dense(128, activation='relu'))
    model.add(Dense(10, activation='softmax'))
    model.compile(optimizer='adam', loss='sparse_categorical_crossentropy', metrics=['accuracy'])
    model.summary()
    start = time.perf_counter()
    model.fit(x_train, y_train, epochs=ep(15), batch_size=64, validation_data=(x_test, y_test), verbose=2)
    _, acc = model.evaluate(x_test, y_test, verbose=0)
    print(f"CNN test accuracy {acc:.4f} (chance 0.10) in {time.perf_counter() - start:.1f} s\n")

    print("== 2. stacked LSTMs, per-step labels: the token of the previous step")
    xs, ys = previous_token_task(1200, rng)
    model = Sequential()
    model.add(LSTM(64, input_shape=(100, 64), return_sequences=True))
    model.add(LSTM(64, return_sequences=True))
    model.add(Dense(64, activation='relu'))
    model.add(Dense(10, activation='softmax'))
    model.compile(optimizer='adam', loss='sparse_categorical_crossentropy', metrics=['accuracy'])
    model.summary()
    model.fit(xs[:1000], ys[:1000], epochs=ep(6), batch_size=32, verbose=2)
    _, acc = model.evaluate(xs[1000:], ys[1000:], verbose=0)
    print(f"LSTM per-step test accuracy {acc:.4f} (chance 0.10)\n")

    print("== 3. Embedding -> LSTM -> Attention -> LSTM: which class token comes first")
    xt, yt = first_marker_task(6000, rng)
    model = Sequential()
    model.add(Embedding(10000, 64))
    model.add(LSTM(64, return_sequences=True))
    model.add(Attention())          # one input: self-attention over the LSTM outputs
    model.add(LSTM(64))
    model.add(Dense(10, activation='softmax'))
    model.compile(optimizer='adam', loss='sparse_categorical_crossentropy', metrics=['accuracy'])
    model.fit(xt[:5000], yt[:5000], epochs=ep(8), batch_size=64, validation_split=0.1, verbose=2)
    model.summary()
    _, acc = model.evaluate(xt[5000:], yt[5000:], verbose=0)
    print(f"attention model test accuracy {acc:.4f} (chance 0.10; knowing both tokens but not their order: 0.55)\n")

    print("== 4. Flatten -> Dense -> Dropout -> Dense(10) logits, from_logits loss")
    x2_train, x2_test = x_train[..., 0], x_test[..., 0]
    model = tf.keras.Sequential([Flatten(input_shape=(28, 28)), Dense(128, activation='relu'), Dropout(0.2),
                                 Dense(10)])
    model.compile(optimizer='adam', loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=['accuracy'])
    model.fit(x2_train, y_train, epochs=ep(5))
    _, acc = model.evaluate(x2_test, y_test, verbose=2)
    probs = model.predict(x2_test)
    print(f"MLP test accuracy {acc:.4f} (chance 0.10); predict -> {probs.shape}\n")

    print("== 5. binary classifier: is the digit even?")
    model = Sequential([Flatten(input_shape=(28, 28)), Dense(64, activation='relu'), Dense(1, activation='sigmoid')])
    model.compile(optimizer='adam', loss='binary_crossentropy', metrics=['accuracy'])
    model.fit(x2_train, y_train % 2 == 0, epochs=ep(8), batch_size=32,
              validation_data=(x2_test, y_test % 2 == 0), verbose=2)
    _, acc = model.evaluate(x2_test, y_test % 2 == 0, verbose=0)
    print(f"binary test accuracy {acc:.4f} (chance 0.50)")


if __name__ == "__main__":
    main()
