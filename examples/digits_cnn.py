"""Trains the tutorial CNN (Conv 32 3x3 -> max-pool 2 -> Conv 64 3x3 -> max-pool 2
-> Dense 128 -> Dense 10, ReLU between) on scikit-learn's handwritten digits,
upscaled to 28x28, with pyfastnn's nn modules and Keras-style fit.

    python examples/digits_cnn.py [--epochs 15] [--batch-size 64]
    mpiexec -n 2 python examples/digits_cnn.py --distributed     # data parallel on MPI
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pyfastnn  # noqa: E402
from pyfastnn import nn  # noqa: E402
from _digits import load_digits_28  # noqa: E402


def tutorial_cnn():
    return nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64 * 5 * 5, 128), nn.ReLU(),
        nn.Linear(128, 10),
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--distributed", action="store_true",
                        help="data parallel over the ranks of mpiexec (batch-size is the global batch)")
    args = parser.parse_args()

    rank, world = 0, 1
    if args.distributed:
        import pyfastnn.distributed as dist
        rank, world = dist.init()
        if args.batch_size % world:
            raise SystemExit(f"--batch-size {args.batch_size} must be a multiple of the {world} ranks")
    say = print if rank == 0 else (lambda *a, **k: None)
    pyfastnn.manual_seed(args.seed)       # the same seed on every rank: same init and shuffles
    x_train, x_test, y_train, y_test = load_digits_28()
    mean, std = x_train.mean(), x_train.std()          # MNIST-style normalization, from the training split
    x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
    info = pyfastnn.backend_info()
    say(f"pyfastnn {pyfastnn.__version__}: ISA {info['cpu_isa']}, {info['num_threads']} threads"
        + (f" per rank, {world} ranks" if args.distributed else ""))
    say(f"digits 28x28: {len(x_train)} train / {len(x_test)} test images")

    model = tutorial_cnn()
    model.compile(optimizer=pyfastnn.optim.Adam(model.parameters(), lr=args.lr),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    start = time.perf_counter()
    history = model.fit(x_train, y_train, epochs=args.epochs, batch_size=args.batch_size // world,
                        validation_data=(x_test, y_test), verbose=2)
    elapsed = time.perf_counter() - start
    result = model.evaluate(x_test, y_test)
    say(f"test accuracy {result['accuracy']:.4f} (chance 0.10), loss {result['loss']:.4f}; "
          f"{len(history['loss'])} epochs in {elapsed:.1f} s ({elapsed / len(history['loss']):.2f} s/epoch)")


if __name__ == "__main__":
    main()
