"""10 000 calls of each op leave process memory flat (no reference or
scratch-buffer leak in the bindings)."""
import numpy as np
import pytest

from pyfastnn import ops


def rss_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    pytest.skip("no /proc/self/status")


rng = np.random.default_rng(0)
A = rng.standard_normal((33, 17)).astype(np.float32)
B = rng.standard_normal((17, 29)).astype(np.float32)
X = rng.standard_normal((2, 3, 9, 9)).astype(np.float32)
W = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
GY = rng.standard_normal((2, 4, 9, 9)).astype(np.float32)
Q = rng.standard_normal((1, 2, 20, 8)).astype(np.float32)
S = rng.standard_normal((4, 2, 5)).astype(np.float32)
H0 = np.zeros((2, 6), np.float32)
WIH, WHH = rng.standard_normal((24, 5)).astype(np.float32), rng.standard_normal((24, 6)).astype(np.float32)
P = rng.standard_normal(1000).astype(np.float32)


def _lstm_round():
    y, h, c, cache = ops.lstm(S, H0, H0, WIH, WHH)
    return ops.lstm_backward(y, None, None, cache)


def _attention_round():
    out, lse = ops.attention(Q, Q, Q, causal=True)
    return ops.attention_backward(out, Q, Q, Q, out, lse, causal=True)


def _optim_round():
    p, m, v = P.copy(), np.zeros_like(P), np.zeros_like(P)
    ops.adam_step(p, P, m, v, step=1)


CALLS = {
    "matmul": lambda: ops.matmul(A, B, np.ones(29, np.float32), activation="gelu"),
    "conv2d": lambda: (ops.conv2d(X, W, padding=1), ops.conv2d_backward(GY, X, W, padding=1)),
    "pool": lambda: ops.max_pool2d_backward(X[:, :, ::2, ::2][..., :4, :4], ops.max_pool2d(X, 2)[1], X.shape),
    "softmax": lambda: ops.softmax_backward(A, ops.softmax(A)),
    "layer_norm": lambda: ops.layer_norm(A, 17),
    "cross_entropy": lambda: ops.cross_entropy_backward(A, np.arange(33) % 17),
    "dropout": lambda: ops.dropout(A, 0.5, seed=1),
    "lstm": _lstm_round,
    "attention": _attention_round,
    "adam_step": _optim_round,
}


@pytest.mark.parametrize("name", list(CALLS))
def test_memory_stays_flat(name):
    call = CALLS[name]
    for _ in range(200):   # warm up: pool threads, scratch buffers, allocator caches
        call()
    before = rss_mib()
    for _ in range(10_000):
        call()
    grown = rss_mib() - before
    assert grown < 4.0, f"{name}: RSS grew {grown:.1f} MiB over 10 000 calls"
