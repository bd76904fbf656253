"""Trains a two-layer MLP on scikit-learn's handwritten digits with pyfastnn's
fused GEMM kernels, backpropagation written out by hand.

Every product runs through ``pyfastnn.ops.matmul``: the forward pass fuses the
bias and ReLU into the GEMM, and the gradients use its transpose flags instead
of materialising transposed copies.

    python examples/digits_mlp.py [--epochs 50] [--hidden 256]
"""
import argparse
import time

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import pyfastnn
from pyfastnn import ops


def softmax_cross_entropy(logits, labels):
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -log_probs[np.arange(len(labels)), labels].mean()
    grad = np.exp(log_probs)
    grad[np.arange(len(labels)), labels] -= 1.0
    return loss, grad / len(labels)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.1)
    args = parser.parse_args()

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)          # 8x8 images, 64 features
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)
    mean = x_train.mean(axis=0)
    x_train, x_test = x_train - mean, x_test - mean

    rng = np.random.default_rng(0)
    n_in, n_hidden, n_out = x.shape[1], args.hidden, 10
    # PyTorch's Linear init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)); weights stored (in, out).
    w1 = (rng.uniform(-1, 1, (n_in, n_hidden)) / np.sqrt(n_in)).astype(np.float32)
    b1 = np.zeros(n_hidden, np.float32)
    w2 = (rng.uniform(-1, 1, (n_hidden, n_out)) / np.sqrt(n_hidden)).astype(np.float32)
    b2 = np.zeros(n_out, np.float32)

    print(f"pyfastnn {pyfastnn.__version__}: ISA {pyfastnn.backend_info()['cpu_isa']}, "
          f"{pyfastnn.get_num_threads()} threads")
    print(f"digits: {len(x_train)} train / {len(x_test)} test images, MLP {n_in}-{n_hidden}-{n_out}")
    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        order = rng.permutation(len(x_train))
        total = 0.0
        for i in range(0, len(order), args.batch_size):
            idx = order[i:i + args.batch_size]
            xb, yb = x_train[idx], y_train[idx]
            h = ops.matmul(xb, w1, b1, activation="relu")          # fused bias + ReLU
            logits = ops.matmul(h, w2, b2)
            loss, g_logits = softmax_cross_entropy(logits, yb)
            total += loss * len(idx)
            g_w2 = ops.matmul(h, g_logits, trans_a=True)           # h^T · g
            g_h = ops.matmul(g_logits, w2, trans_b=True) * (h > 0)  # g · W2^T, through ReLU
            g_w1 = ops.matmul(xb, g_h, trans_a=True)
            for p, g in ((w1, g_w1), (b1, g_h.sum(axis=0)), (w2, g_w2), (b2, g_logits.sum(axis=0))):
                p -= args.lr * g
        if epoch == 1 or epoch % 5 == 0 or epoch == args.epochs:
            h = ops.matmul(x_test, w1, b1, activation="relu")
            acc = (ops.matmul(h, w2, b2).argmax(axis=1) == y_test).mean()
            print(f"epoch {epoch:3d}  train loss {total / len(x_train):.4f}  test accuracy {acc:.4f}")
    elapsed = time.perf_counter() - start
    h = ops.matmul(x_test, w1, b1, activation="relu")
    acc = (ops.matmul(h, w2, b2).argmax(axis=1) == y_test).mean()
    print(f"final test accuracy {acc:.4f} (chance 0.10) in {elapsed:.2f} s")


if __name__ == "__main__":
    main()
