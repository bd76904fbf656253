"""Bit-identical results whatever the thread count (README, SPEC "Determinism";
issue 18, item 5).

Every op that sums across the work it splits over threads (conv2d's weight
and bias gradients, layer_norm_backward's weight and bias gradients,
cross_entropy's mean, softmax's row sums, the LSTM's weight gradients,
attention's key/value gradients, the pools' scatter-adds, matmul, the fused
optimizer steps) runs at 1, 2, 3 and 4 threads on inputs large enough that
every count splits the work; all outputs must equal the 1-thread ones bit for
bit. Before the fix, conv2d grad_w (1.5e-5), layer_norm_backward grad_w/grad_b
(0.28 on values near 3e3) and cross_entropy (2e-14) changed with the count:
their per-thread partial sums were cut by thread. Now reductions cut their
input into chunks fixed by the shape and add the partials in chunk order
(csrc/runtime/parallel.h: fixed_chunks).
"""
import numpy as np
import pytest

import pyfastnn
from pyfastnn import ops

THREAD_COUNTS = (1, 2, 3, 4)


def f(rng, *shape, dtype=np.float32, scale=1.0, shift=0.0):
    return (rng.standard_normal(shape) * scale + shift).astype(dtype)


def _conv_case(n, c, h, o, k, dtype=np.float32, **kw):
    def run(rng):
        x, w = f(rng, n, c, h, h, dtype=dtype), f(rng, o, c // kw.get("groups", 1), k, k, dtype=dtype)
        y = ops.conv2d(x, w, **kw)
        return (y, *ops.conv2d_backward(f(rng, *y.shape, dtype=dtype), x, w, **kw))
    return run


def _layer_norm(rows, n, shift):
    def run(rng):
        x, w = f(rng, rows, n, scale=10.0, shift=shift), f(rng, n)
        y, mean, rstd = ops.layer_norm(x, n, w, f(rng, n))
        return (y, mean, rstd, *ops.layer_norm_backward(f(rng, rows, n), x, mean, rstd, n, w))
    return run


def _cross_entropy(rows, classes, dtype=np.float32):
    def run(rng):
        logits = f(rng, rows, classes, dtype=dtype, scale=3.0)
        target = rng.integers(0, classes, rows)
        target[::7] = -100
        return (np.float64(ops.cross_entropy(logits, target)),
                np.float64(ops.cross_entropy(logits, target, label_smoothing=0.2)),
                ops.cross_entropy_backward(logits, target, 0.5, label_smoothing=0.1))
    return run


def _softmax(rng):
    x, g = f(rng, 3000, 50), f(rng, 3000, 50)
    y, ly = ops.softmax(x), ops.log_softmax(x)
    return (y, ly, ops.softmax_backward(g, y), ops.log_softmax_backward(g, ly), ops.softmax(x[:, :40], axis=0))


def _lstm(rng):
    T, B, I, H = 4, 96, 24, 40
    x, h0, c0 = f(rng, T, B, I), f(rng, B, H), f(rng, B, H)
    w_ih, w_hh, b = f(rng, 4 * H, I, scale=0.3), f(rng, 4 * H, H, scale=0.3), f(rng, 4 * H)
    y, hT, cT, cache = ops.lstm(x, h0, c0, w_ih, w_hh, b, b)
    return (y, hT, cT, *ops.lstm_backward(f(rng, T, B, H), f(rng, B, H), f(rng, B, H), cache)[:6])


def _attention(rng):
    q, k, v, go = f(rng, 2, 3, 150, 24), f(rng, 2, 3, 130, 24), f(rng, 2, 3, 130, 24), f(rng, 2, 3, 150, 24)
    mask = rng.random((2, 1, 150, 130)) < 0.9
    out, lse = ops.attention(q, k, v, mask=mask)
    outc, lsec = ops.attention(q, q, q, causal=True)
    return (out, lse, *ops.attention_backward(go, q, k, v, out, lse, mask=mask),
            outc, lsec, *ops.attention_backward(go, q, q, q, outc, lsec, causal=True))


def _pools(rng):
    x = f(rng, 6, 8, 40, 40)
    y, idx = ops.max_pool2d(x, 3, 2, 1)
    a = ops.avg_pool2d(x, 3, 2, 1)
    return (y, idx, a, ops.max_pool2d_backward(f(rng, *y.shape), idx, x.shape),
            ops.avg_pool2d_backward(f(rng, *a.shape), x.shape, 3, 2, 1),
            ops.avg_pool2d_backward(f(rng, 6, 8, 20, 20), x.shape, 2))


def _matmul(rng):
    a, b = f(rng, 300, 700), f(rng, 700, 260)
    ab, bb = f(rng, 3, 90, 200), f(rng, 3, 120, 200)
    return (ops.matmul(a, b, f(rng, 260), activation="gelu"),
            ops.matmul(np.ascontiguousarray(a.T), b, trans_a=True),
            ops.matmul(a, np.ascontiguousarray(b.T), trans_b=True),
            ops.matmul(a[::2, ::3], b[::3]),
            ops.matmul(ab, bb, trans_b=True),
            ops.matmul(a.astype(np.float64), b.astype(np.float64)))


def _optimizers(rng):
    p0, g = f(rng, 200003), f(rng, 200003)
    sgd, buf = p0.copy(), np.zeros_like(p0)
    adam = [p0.copy(), np.zeros_like(p0), np.zeros_like(p0), np.zeros_like(p0)]
    rms = [p0.copy(), np.zeros_like(p0), np.zeros_like(p0), np.zeros_like(p0)]
    for step in (1, 2):
        ops.sgd_step(sgd, g, buf, lr=0.1, momentum=0.9, weight_decay=1e-2, first_step=step == 1)
        ops.adam_step(adam[0], g, adam[1], adam[2], step=step, weight_decay=1e-2, amsgrad=True,
                      max_exp_avg_sq=adam[3])
        ops.rmsprop_step(rms[0], g, rms[1], momentum=0.9, momentum_buf=rms[2], centered=True, grad_avg=rms[3])
    return (sgd, buf, *adam, *rms)


def _elementwise(rng):
    x, g = f(rng, 400, 301), f(rng, 400, 301)
    y, mask = ops.dropout(x, 0.3, seed=5)
    return (ops.gelu(x), ops.gelu_backward(g, x), ops.bias_activation(x, f(rng, 301), activation="tanh"), y, mask,
            ops.dropout_backward(g, mask, 0.3))


def _group_norm(rng):
    x, w = f(rng, 6, 24, 17, 19, scale=5.0, shift=40.0), f(rng, 24)
    y, mean, rstd = ops.group_norm(x, 4, w, f(rng, 24))
    return (y, mean, rstd, *ops.group_norm_backward(f(rng, *x.shape), x, mean, rstd, 4, w))


def _adaptive_pools(rng):
    x = f(rng, 5, 12, 23, 29)
    y, idx = ops.adaptive_max_pool2d(x, (5, 7))
    return (ops.adaptive_avg_pool2d(x, (5, 7)), ops.adaptive_avg_pool2d_backward(f(rng, 5, 12, 5, 7), x.shape),
            y, idx, ops.adaptive_max_pool2d_backward(f(rng, *y.shape), idx, x.shape))


def _index_ops(rng):
    table, x = f(rng, 50, 33), f(rng, 40, 60)
    tokens = rng.integers(0, 50, (64, 97))
    index = rng.integers(0, 40, (200, 60))
    return (ops.embedding_backward(f(rng, 64, 97, 33), tokens, 50, padding_idx=3),
            ops.scatter_add((40, 60), 0, index, f(rng, 200, 60)),
            ops.gather(x, 0, index), ops.index_select(x, 1, rng.integers(0, 60, 77)))


def _scans_and_orderings(rng):
    x = np.round(f(rng, 300, 211), 1)   # many ties: a stable order must keep them in place
    return (ops.cumsum(x, 1), ops.cumsum(x, 0, reverse=True), *ops.topk(x, 9, dim=1), *ops.sort(x, dim=0),
            *ops.sort(x, dim=1, descending=True))


def _gemv(rng):
    w, b = f(rng, 1203, 317), f(rng, 1203)
    return tuple(ops.matmul(f(rng, m, 317), w, b, trans_b=True, activation="gelu_tanh") for m in (1, 2, 3, 4))


def _affine_warp(rng):
    images = f(rng, 6, 37, 41, 3)
    m = np.tile(np.array([[0.9, 0.2, 1.5], [-0.1, 1.1, -2.0]]), (6, 1, 1))
    return (ops.affine_warp(images, m, fill_mode="reflect"), ops.affine_warp(images, m, order=0, fill_mode="wrap"))


CASES = {
    # conv2d: every driver path; the weight gradient is the reduction across images
    "conv2d-gemm": _conv_case(8, 16, 20, 32, 3, padding=1),
    "conv2d-stride2": _conv_case(7, 8, 21, 24, 3, stride=2, padding=1),
    "conv2d-small-k": _conv_case(9, 1, 30, 16, 3, padding=1),
    "conv2d-few-large-images": _conv_case(3, 32, 32, 32, 3, padding=1),   # 2 threads split the batch, 4 do not
    "conv2d-one-image": _conv_case(1, 32, 40, 32, 3, padding=1),
    "conv2d-groups-dilation": _conv_case(6, 16, 18, 16, 3, padding=2, dilation=2, groups=4),
    "conv2d-depthwise": _conv_case(5, 12, 24, 12, 5, padding=2, groups=12),
    "conv2d-no-padding-1x1": _conv_case(10, 24, 12, 40, 1),
    "conv2d-float64": _conv_case(5, 8, 16, 12, 3, dtype=np.float64, padding=1),
    # layer norm: the weight/bias gradients sum over rows
    "layer_norm-many-rows": _layer_norm(4096, 64, 3e3),
    "layer_norm-wide-rows": _layer_norm(40, 5000, 0.0),
    "layer_norm-odd": _layer_norm(999, 37, 1.0),
    # cross-entropy: the mean over rows
    "cross_entropy": _cross_entropy(5000, 40),
    "cross_entropy-many-classes": _cross_entropy(300, 3000),
    "cross_entropy-float64": _cross_entropy(4000, 20, np.float64),
    "softmax": _softmax,
    "lstm": _lstm,
    "attention": _attention,
    "pools": _pools,
    "matmul": _matmul,
    "optimizers": _optimizers,
    "elementwise": _elementwise,
    # the ops merged in the PyTorch-surface and Keras rounds
    "group_norm": _group_norm,
    "adaptive_pools": _adaptive_pools,
    "index_ops": _index_ops,
    "cumsum_topk_sort": _scans_and_orderings,
    "gemv": _gemv,
    "affine_warp": _affine_warp,
}


def _run_at(threads, case):
    before = pyfastnn.get_num_threads()
    pyfastnn.set_num_threads(threads)
    try:
        return CASES[case](np.random.default_rng(1234))
    finally:
        pyfastnn.set_num_threads(before)


@pytest.mark.parametrize("case", list(CASES))
def test_bit_identical_across_thread_counts(case):
    ref = _run_at(1, case)
    for threads in THREAD_COUNTS[1:]:
        got = _run_at(threads, case)
        assert len(got) == len(ref)
        for i, (g, r) in enumerate(zip(got, ref)):
            g, r = np.asarray(g), np.asarray(r)
            assert g.shape == r.shape and g.dtype == r.dtype, (case, i)
            if g.tobytes() != r.tobytes():
                diff = np.max(np.abs(g.astype(np.float64) - r.astype(np.float64)))
                pytest.fail(f"{case}: output {i} at {threads} threads differs from 1 thread (max |diff| {diff:.3g})")


def test_seeded_training_is_bit_identical_across_thread_counts():
    """A few steps of a small CNN + LayerNorm model with Adam: the parameters
    after training are the same bits at 1 and 3 threads."""
    from pyfastnn import nn

    def train(threads):
        before = pyfastnn.get_num_threads()
        pyfastnn.set_num_threads(threads)
        try:
            pyfastnn.manual_seed(3)
            model = nn.Sequential(nn.Conv2d(2, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3), nn.Flatten(),
                                  nn.LayerNorm(8 * 10 * 10), nn.Linear(8 * 10 * 10, 5))
            opt = pyfastnn.optim.Adam(model.parameters(), lr=1e-2)
            rng = np.random.default_rng(3)
            x = rng.standard_normal((32, 2, 12, 12)).astype(np.float32)
            y = rng.integers(0, 5, 32)
            for _ in range(3):
                loss = nn.CrossEntropyLoss()(model(x), y)
                opt.zero_grad()
                loss.backward()
                opt.step()
            return {k: np.array(v.numpy(), copy=True) for k, v in model.named_parameters()}
        finally:
            pyfastnn.set_num_threads(before)

    a, b = train(1), train(3)
    for k in a:
        assert a[k].tobytes() == b[k].tobytes(), k
