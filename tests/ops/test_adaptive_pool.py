"""adaptive_avg_pool2d / adaptive_max_pool2d and their gradients against PyTorch,
at every ISA level; the global (1, 1) case; thread counts bit-identical."""
import numpy as np
import pytest

import pyfastnn
from pyfastnn import ops
from conftest import assert_raises_naming, rel_error

torch = pytest.importorskip("torch")
F = torch.nn.functional

CASES = [  # input shape, output_size
    ((2, 3, 7, 7), 1), ((2, 3, 7, 7), (1, 1)), ((1, 2, 10, 9), (3, 4)), ((2, 2, 5, 13), (5, 13)),
    ((1, 1, 4, 6), (7, 11)), ((3, 11, 13), (5, 3)), ((2, 3, 17, 1), (4, 1)), ((1, 1, 1, 1), 3),
    ((2, 3, 8, 8), (None, 3)), ((0, 3, 4, 4), 2), ((2, 0, 4, 4), 2), ((2, 3, 6, 6), (0, 2)), ((1, 4, 31, 29), (7, 5)),
]


@pytest.mark.parametrize("shape,out", CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adaptive_avg(isa, shape, out, dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(dtype)
    tx = torch.from_numpy(x).double().requires_grad_()
    ty = F.adaptive_avg_pool2d(tx, out)
    y = ops.adaptive_avg_pool2d(x, out)
    assert y.dtype == dtype and y.shape == tuple(ty.shape)
    tol = 1e-6 if dtype == np.float32 else 1e-14
    assert rel_error(y, ty.detach().numpy()) < tol
    g = rng.standard_normal(y.shape).astype(dtype)
    if ty.numel():
        ty.backward(torch.from_numpy(g).double())
    gx = ops.adaptive_avg_pool2d_backward(g, shape)
    assert gx.dtype == dtype and gx.shape == shape
    if ty.numel():
        assert rel_error(gx, tx.grad.numpy()) < tol
    else:
        assert not gx.any()


@pytest.mark.parametrize("shape,out", CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adaptive_max(isa, shape, out, dtype):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape).astype(dtype)
    y, idx = ops.adaptive_max_pool2d(x, out)
    if 0 in shape[-3:]:  # torch refuses empty channels; the result is simply empty here
        assert y.size == 0 and idx.shape == y.shape
        return
    tx = torch.from_numpy(x).requires_grad_()
    ty, tidx = F.adaptive_max_pool2d(tx, out, return_indices=True)
    assert y.dtype == dtype and idx.dtype == np.int64 and y.shape == tuple(ty.shape)
    np.testing.assert_array_equal(y, ty.detach().numpy())
    np.testing.assert_array_equal(idx, tidx.numpy())
    g = rng.standard_normal(y.shape).astype(dtype)
    if ty.numel():
        ty.backward(torch.from_numpy(g))
    gx = ops.adaptive_max_pool2d_backward(g, idx, shape)
    np.testing.assert_array_equal(gx, tx.grad.numpy() if ty.numel() else np.zeros(shape, dtype))


def test_adaptive_max_nan_inf_and_ties_like_torch(isa):
    x = np.array([[[[1.0, np.nan, 3.0, np.nan, 3.0], [-np.inf, -np.inf, -np.inf, -np.inf, 2.0],
                    [5.0, 5.0, 1.0, 1.0, 5.0]]]], np.float32)
    for out in [(1, 1), (3, 2), (3, 3), (2, 4)]:
        y, idx = ops.adaptive_max_pool2d(x, out)
        ty, tidx = F.adaptive_max_pool2d(torch.from_numpy(x), out, return_indices=True)
        np.testing.assert_array_equal(y, ty.numpy())
        np.testing.assert_array_equal(idx, tidx.numpy())


def test_global_avg_resnet_head_and_views(isa):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((16, 64, 7, 7)).astype(np.float32)
    y = ops.adaptive_avg_pool2d(x, 1)
    np.testing.assert_allclose(y, x.mean(axis=(2, 3), keepdims=True, dtype=np.float64), rtol=1e-6, atol=1e-7)
    v = x.transpose(0, 1, 3, 2)[:, ::2]                                  # non-contiguous
    np.testing.assert_array_equal(ops.adaptive_avg_pool2d(v, (3, 2)), ops.adaptive_avg_pool2d(np.ascontiguousarray(v), (3, 2)))
    g = rng.standard_normal((16, 64, 1, 1)).astype(np.float32)
    np.testing.assert_array_equal(ops.adaptive_avg_pool2d_backward(g, x.shape), np.broadcast_to(g / 49, x.shape))


@pytest.mark.parametrize("out", [1, (3, 5)])
def test_threads_bit_identical(isa, out):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((8, 64, 15, 17)).astype(np.float32)
    before = pyfastnn.get_num_threads()
    try:
        res = []
        for n in (1, 2, 3, 4):
            pyfastnn.set_num_threads(n)
            y = ops.adaptive_avg_pool2d(x, out)
            m, i = ops.adaptive_max_pool2d(x, out)
            res.append((y, m, i, ops.adaptive_avg_pool2d_backward(y, x.shape), ops.adaptive_max_pool2d_backward(m, i, x.shape)))
    finally:
        pyfastnn.set_num_threads(before)
    for r in res[1:]:
        for a, b in zip(r, res[0]):
            np.testing.assert_array_equal(a, b)


X = np.ones((1, 2, 4, 4), np.float32)
BAD = [
    (lambda: ops.adaptive_avg_pool2d(X.astype(np.int32), 2), TypeError, ["adaptive_avg_pool2d", "'x'", "int32"]),
    (lambda: ops.adaptive_avg_pool2d(np.ones((4, 4), np.float32), 2), ValueError, ["adaptive_avg_pool2d", "'x'", "3-D"]),
    (lambda: ops.adaptive_avg_pool2d(X, -1), ValueError, ["adaptive_avg_pool2d", "'output_size'"]),
    (lambda: ops.adaptive_avg_pool2d(X, (1, 2, 3)), ValueError, ["adaptive_avg_pool2d", "'output_size'"]),
    (lambda: ops.adaptive_avg_pool2d(X, 1.5), TypeError, ["adaptive_avg_pool2d", "'output_size'"]),
    (lambda: ops.adaptive_avg_pool2d(X, None), TypeError, ["adaptive_avg_pool2d", "'output_size'"]),
    (lambda: ops.adaptive_max_pool2d(X, (2**40, 2**40)), MemoryError, ["adaptive_max_pool2d", "output"]),
    (lambda: ops.adaptive_max_pool2d(np.ones((1, 1, 0, 3), np.float32), 2), ValueError,
     ["adaptive_max_pool2d", "'x'", "non-empty"]),
    (lambda: ops.adaptive_avg_pool2d_backward(np.ones((1, 3, 2, 2), np.float32), (1, 2, 4, 4)), ValueError,
     ["adaptive_avg_pool2d_backward", "'grad_y'"]),
    (lambda: ops.adaptive_max_pool2d_backward(np.ones((1, 2, 2, 2), np.float32), np.full((1, 2, 2, 2), 16), (1, 2, 4, 4)),
     ValueError, ["adaptive_max_pool2d_backward", "'indices'"]),
    (lambda: ops.adaptive_max_pool2d_backward(np.ones((1, 2, 2, 2), np.float32), np.ones((1, 2, 2, 2), np.int32),
                                              (1, 2, 4, 4)), TypeError, ["adaptive_max_pool2d_backward", "'indices'"]),
]


@pytest.mark.parametrize("call,exc,words", BAD)
def test_bad_input(call, exc, words):
    assert_raises_naming(call, exc, words)
