"""softmax/log_softmax, layer_norm and cross_entropy, values and gradients,
against PyTorch in float64."""
import numpy as np
import pytest

from pyfastnn import ops
from conftest import assert_raises_naming, rel_error

torch = pytest.importorskip("torch")
F = torch.nn.functional
TOL = {np.float32: (1e-5, 1e-4), np.float64: (1e-11, 1e-10)}
# Some gradients here are mathematically zero (one class, one element): their
# reference holds only rounding noise, so errors are measured against at
# least this norm.
FLOOR = {np.float32: 1e-2, np.float64: 1e-2}


@pytest.mark.parametrize("shape,axis", [((1,), -1), ((5, 1), -1), ((3, 17), -1), ((4, 129), 0),
                                        ((2, 3, 65), 1), ((0, 7), -1), ((6, 1000), -1)])
@pytest.mark.parametrize("log", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax(isa, shape, axis, log, dtype):
    rng = np.random.default_rng()
    x = (4 * rng.standard_normal(shape)).astype(dtype)
    tx = torch.from_numpy(x).double().requires_grad_()
    ty = (torch.log_softmax if log else torch.softmax)(tx, axis)
    y = (ops.log_softmax if log else ops.softmax)(x, axis)
    assert rel_error(y, ty.detach().numpy()) < TOL[dtype][0]
    g = rng.standard_normal(shape).astype(dtype)
    if ty.numel():
        ty.backward(torch.from_numpy(g).double())
    gx = (ops.log_softmax_backward if log else ops.softmax_backward)(g, y, axis)
    if ty.numel():
        assert rel_error(gx, tx.grad.numpy(), FLOOR[dtype]) < TOL[dtype][1]


def test_softmax_extreme_values_stay_finite():
    x = np.array([[1000.0, 0.0, -1000.0], [-1e30, -1e30, -1e30]], np.float32)
    y = ops.softmax(x)
    assert np.isfinite(y).all()
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-6)


@pytest.mark.parametrize("shape,norm", [((4, 7), (7,)), ((2, 3, 33), (33,)), ((3, 4, 5), (4, 5)),
                                        ((1, 1), (1,)), ((5, 1000), (1000,)), ((0, 8), (8,))])
@pytest.mark.parametrize("affine", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_layer_norm(isa, shape, norm, affine, dtype):
    rng = np.random.default_rng()
    x = (2 + 3 * rng.standard_normal(shape)).astype(dtype)
    w = rng.standard_normal(norm).astype(dtype) if affine else None
    b = rng.standard_normal(norm).astype(dtype) if affine else None
    tx = torch.from_numpy(x).double().requires_grad_()
    tw = torch.from_numpy(w).double().requires_grad_() if affine else None
    tb = torch.from_numpy(b).double().requires_grad_() if affine else None
    ty = F.layer_norm(tx, norm, tw, tb, eps=1e-5)
    y, mean, rstd = ops.layer_norm(x, norm, w, b, eps=1e-5)
    assert rel_error(y, ty.detach().numpy()) < TOL[dtype][0]
    g = rng.standard_normal(shape).astype(dtype)
    if ty.numel():
        ty.backward(torch.from_numpy(g).double())
    gx, gw, gb = ops.layer_norm_backward(g, x, mean, rstd, norm, w)
    if ty.numel():
        assert rel_error(gx, tx.grad.numpy(), FLOOR[dtype]) < TOL[dtype][1]
        if affine:
            assert gw.shape == tuple(norm) and gb.shape == tuple(norm)
            assert rel_error(gw, tw.grad.numpy(), FLOOR[dtype]) < TOL[dtype][1]
            assert rel_error(gb, tb.grad.numpy(), FLOOR[dtype]) < TOL[dtype][1]


@pytest.mark.parametrize("n,c", [(1, 1), (1, 5), (7, 3), (33, 10), (64, 1000), (0, 4)])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy(isa, n, c, smoothing, dtype):
    rng = np.random.default_rng()
    logits = (3 * rng.standard_normal((n, c))).astype(dtype)
    target = rng.integers(0, c, n)
    if n > 3:
        target[::3] = -100                                  # ignored rows
    tl = torch.from_numpy(logits).double().requires_grad_()
    tloss = F.cross_entropy(tl, torch.from_numpy(target), ignore_index=-100, label_smoothing=smoothing)
    loss = ops.cross_entropy(logits, target, label_smoothing=smoothing)
    if np.isnan(tloss.item()):
        assert np.isnan(loss)
        return
    assert abs(loss - tloss.item()) <= TOL[dtype][0] * max(1.0, abs(tloss.item()))
    tloss.backward(torch.tensor(0.7, dtype=torch.float64))
    grad = ops.cross_entropy_backward(logits, target, 0.7, label_smoothing=smoothing)
    assert grad.dtype == dtype
    assert rel_error(grad, tl.grad.numpy(), FLOOR[dtype]) < TOL[dtype][1]


BAD = [
    (lambda: ops.softmax(np.ones(3, np.int64)), TypeError, ["softmax", "'x'", "int64"]),
    (lambda: ops.softmax(np.ones((2, 3), np.float32), axis=2), ValueError, ["softmax", "'axis'"]),
    (lambda: ops.softmax_backward(np.ones((2, 3), np.float32), np.ones((3, 2), np.float32)), ValueError,
     ["softmax_backward", "'y'"]),
    (lambda: ops.layer_norm(np.ones((2, 3), np.float32), (4,)), ValueError, ["layer_norm", "'normalized_shape'"]),
    (lambda: ops.layer_norm(np.ones((2, 3), np.float32), 3, np.ones(4, np.float32)), ValueError,
     ["layer_norm", "'weight'"]),
    (lambda: ops.layer_norm(np.ones((2, 3), np.float32), 3, None, np.ones(3, np.float64)), TypeError,
     ["layer_norm", "'bias'"]),
    (lambda: ops.layer_norm_backward(np.ones((2, 3), np.float32), np.ones((2, 3), np.float32),
                                     np.ones(3, np.float32), np.ones(2, np.float32), 3), ValueError,
     ["layer_norm_backward", "'mean'"]),
    (lambda: ops.cross_entropy(np.ones((2, 3), np.float32), np.array([0, 3])), ValueError,
     ["cross_entropy", "'target'", "class 3"]),
    (lambda: ops.cross_entropy(np.ones((2, 3), np.float32), np.array([0.0, 1.0])), TypeError,
     ["cross_entropy", "'target'", "integer"]),
    (lambda: ops.cross_entropy(np.ones((2, 3), np.float32), np.array([0, 1, 2])), ValueError,
     ["cross_entropy", "'target'", "(2,)"]),
    (lambda: ops.cross_entropy(np.ones(3, np.float32), np.array([0])), ValueError, ["cross_entropy", "'logits'"]),
    (lambda: ops.cross_entropy(np.ones((2, 3), np.float32), np.array([0, 1]), label_smoothing=2.0), ValueError,
     ["cross_entropy", "'label_smoothing'"]),
]


@pytest.mark.parametrize("call,exc,words", BAD)
def test_bad_input(call, exc, words):
    assert_raises_naming(call, exc, words)


@pytest.mark.parametrize("shape", [(4096, 257), (3, 50), (70000, 3)])
def test_layer_norm_backward_threads_bit_identical(isa, shape):
    # grad_weight / grad_bias are sums over rows: chunked by the shape, not by the thread count
    import pyfastnn

    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    g = rng.standard_normal(shape).astype(np.float32)
    w = rng.standard_normal(shape[-1]).astype(np.float32)
    before = pyfastnn.get_num_threads()
    try:
        outs = []
        for n in (1, 2, 3, 4):
            pyfastnn.set_num_threads(n)
            y, mean, rstd = ops.layer_norm(x, shape[-1], w, w)
            outs.append(ops.layer_norm_backward(g, x, mean, rstd, shape[-1], w))
    finally:
        pyfastnn.set_num_threads(before)
    for o in outs[1:]:
        for a, b in zip(o, outs[0]):
            np.testing.assert_array_equal(a, b)


def test_cross_entropy_loss_threads_bit_identical(isa):
    import pyfastnn

    rng = np.random.default_rng(1)
    logits = (3 * rng.standard_normal((4099, 37))).astype(np.float32)
    target = rng.integers(0, 37, 4099)
    before = pyfastnn.get_num_threads()
    try:
        losses = []
        for n in (1, 2, 3, 4):
            pyfastnn.set_num_threads(n)
            losses.append(ops.cross_entropy(logits, target, label_smoothing=0.1))
    finally:
        pyfastnn.set_num_threads(before)
    assert len(set(losses)) == 1, losses
