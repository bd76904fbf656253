"""LSTM forward and backward against torch.nn.LSTM with copied weights."""
import numpy as np
import pytest

from pyfastnn import ops
from conftest import assert_raises_naming, rel_error

torch = pytest.importorskip("torch")

# The last two make the prepacked recurrent weight span several k blocks
# (4H > 384 in backward, H > 384 in forward).
SHAPES = [(1, 1, 1, 1), (5, 3, 4, 6), (7, 1, 3, 17), (2, 9, 33, 5), (13, 4, 16, 24), (3, 2, 5, 130), (2, 2, 3, 400),
          (3, 21, 7, 128)]  # the last splits the batch rows over threads


def run(shape, dtype, bias=True, seed=0):
    T, B, I, H = shape
    torch.manual_seed(seed)
    m = torch.nn.LSTM(I, H, bias=bias).double()
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((T, B, I)).astype(dtype)
    h0 = rng.standard_normal((B, H)).astype(dtype)
    c0 = rng.standard_normal((B, H)).astype(dtype)
    tx, th0, tc0 = (torch.from_numpy(a).double().requires_grad_() for a in (x, h0, c0))
    y, (hT, cT) = m(tx, (th0[None], tc0[None]))
    p = {k: v.detach().numpy().astype(dtype) for k, v in m.state_dict().items()}
    out = ops.lstm(x, h0, c0, p["weight_ih_l0"], p["weight_hh_l0"], p.get("bias_ih_l0"), p.get("bias_hh_l0"))
    gy, ghT, gcT = (rng.standard_normal(s).astype(dtype) for s in ((T, B, H), (B, H), (B, H)))
    torch.autograd.backward([y, hT[0], cT[0]], [torch.from_numpy(g).double() for g in (gy, ghT, gcT)])
    grads = ops.lstm_backward(gy, ghT, gcT, out[3])
    refs = [tx.grad, th0.grad, tc0.grad, m.weight_ih_l0.grad, m.weight_hh_l0.grad]
    if bias:
        refs += [m.bias_ih_l0.grad, m.bias_hh_l0.grad]
    return out, (y, hT[0], cT[0]), grads, refs


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matches_torch(isa, shape, dtype):
    out, ref, grads, refs = run(shape, dtype)
    fwd_tol, bwd_tol = (1e-5, 1e-4) if dtype == np.float32 else (1e-12, 1e-11)
    for a, r in zip(out[:3], ref):
        assert a.dtype == dtype
        assert rel_error(a, r.detach().numpy()) < fwd_tol
    for a, r in zip(grads, refs):
        assert rel_error(a, r.numpy()) < bwd_tol


def test_without_bias_and_optional_grads():
    out, ref, grads, refs = run((4, 2, 3, 5), np.float64, bias=False)
    assert grads[5] is None and grads[6] is None
    for a, r in zip(grads[:5], refs):
        assert rel_error(a, r.numpy()) < 1e-11
    # No upstream gradient anywhere: everything is zero.
    zero = ops.lstm_backward(None, None, None, out[3])
    assert all(not np.any(g) for g in zero[:5])


def test_lstm_cell_is_one_step():
    rng = np.random.default_rng()
    B, I, H = 3, 4, 5
    x, h, c = rng.standard_normal((B, I)), rng.standard_normal((B, H)), rng.standard_normal((B, H))
    w_ih, w_hh, b = rng.standard_normal((4 * H, I)), rng.standard_normal((4 * H, H)), rng.standard_normal(4 * H)
    cell = torch.nn.LSTMCell(I, H).double()
    with torch.no_grad():
        cell.weight_ih.copy_(torch.from_numpy(w_ih))
        cell.weight_hh.copy_(torch.from_numpy(w_hh))
        cell.bias_ih.copy_(torch.from_numpy(b))
        cell.bias_hh.zero_()
    th, tc = cell(torch.from_numpy(x), (torch.from_numpy(h), torch.from_numpy(c)))
    h1, c1 = ops.lstm_cell(x, h, c, w_ih, w_hh, b)
    assert rel_error(h1, th.detach().numpy()) < 1e-12 and rel_error(c1, tc.detach().numpy()) < 1e-12


X = np.ones((2, 3, 4), np.float32)
H0 = np.zeros((3, 5), np.float32)
WIH, WHH = np.ones((20, 4), np.float32), np.ones((20, 5), np.float32)
BAD = [
    (lambda: ops.lstm(X[0], H0, H0, WIH, WHH), ValueError, ["lstm", "'x'", "3-D"]),
    (lambda: ops.lstm(X, H0, H0, np.ones((19, 4), np.float32), WHH), ValueError, ["lstm", "'w_ih'"]),
    (lambda: ops.lstm(X, H0, H0, np.ones((20, 3), np.float32), WHH), ValueError, ["lstm", "'w_ih'", "(20, 4)"]),
    (lambda: ops.lstm(X, H0, H0, WIH, np.ones((20, 4), np.float32)), ValueError, ["lstm", "'w_hh'", "(20, 5)"]),
    (lambda: ops.lstm(X, np.zeros((2, 5), np.float32), H0, WIH, WHH), ValueError, ["lstm", "'h0'", "(3, 5)"]),
    (lambda: ops.lstm(X, H0, H0, WIH, WHH, np.ones(19, np.float32)), ValueError, ["lstm", "'b_ih'"]),
    (lambda: ops.lstm(X, H0, H0, WIH.astype(np.float64), WHH), TypeError, ["lstm", "'w_ih'", "float32"]),
    (lambda: ops.lstm(X.astype(np.int32), H0, H0, WIH, WHH), TypeError, ["lstm", "'x'", "int32"]),
    (lambda: ops.lstm_backward(None, None, None, "cache"), TypeError, ["lstm_backward", "'cache'"]),
]


@pytest.mark.parametrize("call,exc,words", BAD)
def test_bad_input(call, exc, words):
    assert_raises_naming(call, exc, words)


def test_bad_grad_shape():
    out = ops.lstm(X, H0, H0, WIH, WHH)
    assert_raises_naming(lambda: ops.lstm_backward(np.ones((2, 3, 4), np.float32), None, None, out[3]), ValueError,
                         ["lstm_backward", "'grad_y'", "(2, 3, 5)"])


def test_identical_for_any_thread_count():
    import pyfastnn

    rng = np.random.default_rng()
    T, B, I, H = 6, 27, 8, 128  # enough rows per thread for the batch split
    args = [rng.standard_normal(s).astype(np.float32) for s in ((T, B, I), (B, H), (B, H), (4 * H, I), (4 * H, H))]
    gy = rng.standard_normal((T, B, H)).astype(np.float32)
    before = pyfastnn.get_num_threads()
    results = []
    try:
        for n in (1, 2, 3):
            pyfastnn.set_num_threads(n)
            y, hT, cT, cache = ops.lstm(*args)
            results.append((y, cT) + ops.lstm_backward(gy, None, None, cache)[:5])
    finally:
        pyfastnn.set_num_threads(before)
    for other in results[1:]:
        for a, b in zip(other, results[0]):
            np.testing.assert_array_equal(a, b)
