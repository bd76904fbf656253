"""cumsum (and the reversed sum its gradient is) against PyTorch at every ISA
level; bit-identical for any thread count."""
import numpy as np
import pytest

import pyfastnn
from pyfastnn import ops
from conftest import assert_raises_naming, rel_error

torch = pytest.importorskip("torch")

SHAPES = [((0,), 0), ((1,), 0), ((7,), -1), ((3, 17), 1), ((3, 17), 0), ((2, 5, 257), 1), ((2, 5, 257), 2),
          ((4, 0, 3), 1), ((5, 3, 300), 0), ((8, 1031), -1), ((2, 3, 4, 5), 2)]


@pytest.mark.parametrize("shape,dim", SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_cumsum(isa, shape, dim, dtype):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(shape) * 100).astype(dtype)
    y = ops.cumsum(x, dim)
    assert y.dtype == dtype and y.shape == shape
    ref = torch.cumsum(torch.from_numpy(x).double() if dtype != np.int64 else torch.from_numpy(x), dim).numpy()
    if dtype == np.int64:
        np.testing.assert_array_equal(y, ref)
    else:
        # float32 accumulates in double like torch: within rounding of the exact sum
        assert rel_error(y, ref) < (1e-7 if dtype == np.float32 else 1e-13)
    r = ops.cumsum(x, dim, reverse=True)
    rref = np.flip(np.cumsum(np.flip(x.astype(np.float64) if dtype != np.int64 else x, dim), dim), dim)
    if dtype == np.int64:
        np.testing.assert_array_equal(r, rref)
    else:
        assert rel_error(r, rref) < (1e-7 if dtype == np.float32 else 1e-13)


def test_cumsum_float32_matches_torch_bits(isa):
    # Torch also accumulates float32 in double, sequentially; the blocked scan
    # rounds the same double sums to the same floats.
    x = np.random.default_rng(1).standard_normal((8, 50257)).astype(np.float32)
    for dim in (0, 1):
        np.testing.assert_array_equal(ops.cumsum(x, dim), torch.cumsum(torch.from_numpy(x), dim).numpy())


def test_cumsum_gradient_is_the_reversed_sum(isa):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 33, 5))
    g = rng.standard_normal(x.shape)
    tx = torch.from_numpy(x).requires_grad_()
    torch.cumsum(tx, 1).backward(torch.from_numpy(g))
    np.testing.assert_allclose(ops.cumsum(g, 1, reverse=True), tx.grad.numpy(), rtol=1e-13, atol=1e-13)


def test_cumsum_dtypes_views_and_edges():
    x = np.arange(12, dtype=np.int32).reshape(3, 4)
    y = ops.cumsum(x, 1)
    assert y.dtype == np.int64
    np.testing.assert_array_equal(y, torch.cumsum(torch.from_numpy(x), 1).numpy())
    b = np.array([True, False, True])
    np.testing.assert_array_equal(ops.cumsum(b, 0), [1, 1, 2])
    big = np.array([2**62, 2**62, 2**62], np.int64)                   # wraps like torch, no UB
    np.testing.assert_array_equal(ops.cumsum(big, 0), torch.cumsum(torch.from_numpy(big), 0).numpy())
    v = np.random.default_rng(3).standard_normal((6, 10))[::2, ::-3]  # non-contiguous
    np.testing.assert_array_equal(ops.cumsum(v, 1), ops.cumsum(np.ascontiguousarray(v), 1))
    z = ops.cumsum(np.array(2.5, np.float32), 0)
    assert z.shape == () and z == 2.5
    assert ops.cumsum(np.array(2.5), -1) == 2.5
    nan = ops.cumsum(np.array([1.0, np.nan, 1.0, np.inf], np.float32), 0)
    assert nan[0] == 1 and np.isnan(nan[1:]).all()


@pytest.mark.parametrize("shape,dim", [((64, 3001), 1), ((3001, 64), 0), ((1, 100003), 1)])
def test_cumsum_threads_bit_identical(isa, shape, dim):
    x = np.random.default_rng(4).standard_normal(shape).astype(np.float32)
    before = pyfastnn.get_num_threads()
    try:
        outs = []
        for n in (1, 2, 3, 4):
            pyfastnn.set_num_threads(n)
            outs.append((ops.cumsum(x, dim), ops.cumsum(x, dim, reverse=True)))
    finally:
        pyfastnn.set_num_threads(before)
    for o in outs[1:]:
        np.testing.assert_array_equal(o[0], outs[0][0])
        np.testing.assert_array_equal(o[1], outs[0][1])


BAD = [
    (lambda: ops.cumsum(np.ones(3, np.float16), 0), TypeError, ["cumsum", "'x'", "float16"]),
    (lambda: ops.cumsum(np.ones(3, np.complex64), 0), TypeError, ["cumsum", "'x'", "complex64"]),
    (lambda: ops.cumsum(np.ones((2, 3)), 2), ValueError, ["cumsum", "'dim'", "2"]),
    (lambda: ops.cumsum(np.ones((2, 3)), -3), ValueError, ["cumsum", "'dim'"]),
    (lambda: ops.cumsum(np.ones((2, 3)), 1.0), TypeError, ["cumsum", "'dim'"]),
    (lambda: ops.cumsum(np.ones((2, 3)), None), TypeError, ["cumsum", "'dim'"]),
    (lambda: ops.cumsum([1.0, 2.0], 0), TypeError, ["cumsum", "'x'", "list"]),
]


@pytest.mark.parametrize("call,exc,words", BAD)
def test_bad_input(call, exc, words):
    assert_raises_naming(call, exc, words)
