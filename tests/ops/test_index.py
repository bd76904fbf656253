"""embedding (+ backward), index_select, gather and scatter_add against PyTorch
and exact numpy references, at every ISA level and thread count."""
import numpy as np
import pytest

import pyfastnn
from pyfastnn import ops
from conftest import assert_raises_naming

torch = pytest.importorskip("torch")
F = torch.nn.functional
DTYPES = [np.float32, np.float64]


def with_threads(n, fn):
    before = pyfastnn.get_num_threads()
    pyfastnn.set_num_threads(n)
    try:
        return fn()
    finally:
        pyfastnn.set_num_threads(before)


def add_at_reference(num, idx, g, skip=None):
    """Row v = the rows of g whose index is v, added in the order they appear
    (np.add.at is unbuffered and goes in order): the kernel's exact sum."""
    idx = np.asarray(idx).reshape(-1)
    g = np.asarray(g).reshape(idx.size, np.shape(g)[-1])
    out = np.zeros((num, g.shape[1]), g.dtype)
    keep = idx != skip if skip is not None else np.ones(idx.size, bool)
    np.add.at(out, idx[keep], g[keep])
    return out


# ----------------------------------------------------------------- embedding
@pytest.mark.parametrize("V,D,ishape", [(1, 1, (1,)), (7, 3, (0,)), (50, 7, (3, 5)), (13, 17, (2, 3, 4)),
                                        (97, 129, (31,)), (1000, 300, (4, 64))])
@pytest.mark.parametrize("dtype", DTYPES)
def test_embedding_forward_and_backward(isa, V, D, ishape, dtype):
    rng = np.random.default_rng(1)
    w = rng.standard_normal((V, D)).astype(dtype)
    idx = rng.integers(0, V, ishape)
    y = ops.embedding(w, idx)
    assert y.dtype == dtype and y.shape == ishape + (D,)
    np.testing.assert_array_equal(y, w[idx])
    np.testing.assert_array_equal(y, F.embedding(torch.from_numpy(idx), torch.from_numpy(w)).numpy())
    g = rng.standard_normal(ishape + (D,)).astype(dtype)
    pad = int(idx.flat[0]) if idx.size else None
    for padding_idx in (None, pad, None if pad is None else pad - V):
        gw = ops.embedding_backward(g, idx, V, padding_idx=padding_idx)
        assert gw.dtype == dtype and gw.shape == (V, D)
        skip = None if padding_idx is None else padding_idx % V
        np.testing.assert_array_equal(gw, add_at_reference(V, idx, g, skip))
        tw = torch.from_numpy(w).double().requires_grad_()
        F.embedding(torch.from_numpy(idx), tw, padding_idx=padding_idx).backward(torch.from_numpy(g).double())
        np.testing.assert_allclose(gw, tw.grad.numpy(), rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-5)


@pytest.mark.parametrize("D", [5, 768])  # rows split by segment / by column slice
def test_embedding_backward_threads_bit_identical(isa, D):
    rng = np.random.default_rng(2)
    V = 301
    idx = rng.integers(0, 20, (8, 97))          # many repeats per row
    idx[0, :50] = 7                              # one row takes most of a batch
    g = rng.standard_normal((8, 97, D)).astype(np.float32)
    outs = [with_threads(n, lambda: ops.embedding_backward(g, idx, V)) for n in (1, 2, 3, 4)]
    for o in outs[1:]:
        np.testing.assert_array_equal(o, outs[0])
    np.testing.assert_array_equal(outs[0], add_at_reference(V, idx, g))


def test_embedding_inputs_in_any_layout(isa):
    rng = np.random.default_rng(3)
    base = rng.standard_normal((40, 18)).astype(np.float32)
    idx = rng.integers(0, 20, (6, 4))
    for w in (base[::2], base[:20, ::2], base[::-2, 3:11], np.asfortranarray(base[:20])):
        np.testing.assert_array_equal(ops.embedding(w, idx), w[idx])
    np.testing.assert_array_equal(ops.embedding(base, idx.astype(np.int32)), base[idx])
    np.testing.assert_array_equal(ops.embedding(base, idx.T), base[idx.T])        # non-contiguous indices
    g = rng.standard_normal((4, 6, 18)).astype(np.float32)
    np.testing.assert_array_equal(ops.embedding_backward(g.transpose(1, 0, 2)[:, :, :], idx, 40),
                                  add_at_reference(40, idx, g.transpose(1, 0, 2)))
    np.testing.assert_array_equal(ops.embedding(torch.from_numpy(base), torch.from_numpy(idx)), base[idx])  # DLPack


def test_embedding_gpt2_size_touches_only_the_indexed_rows():
    # 50257 x 768: the gradient equals the reference and rows nobody indexes are zero.
    rng = np.random.default_rng(4)
    idx = rng.integers(0, 50257, (4, 256))
    g = rng.standard_normal((4, 256, 768)).astype(np.float32)
    gw = ops.embedding_backward(g, idx, 50257)
    used = np.unique(idx)
    np.testing.assert_array_equal(gw[used], add_at_reference(50257, idx, g)[used])
    mask = np.ones(50257, bool)
    mask[used] = False
    assert not gw[mask].any()


# -------------------------------------------------------------- index_select
@pytest.mark.parametrize("shape,dim", [((5,), 0), ((4, 7), 0), ((4, 7), 1), ((3, 5, 17), 1), ((3, 5, 17), -1),
                                       ((2, 0, 3), 2), ((6, 3), -2)])
@pytest.mark.parametrize("dtype", DTYPES + [np.int64])
def test_index_select(isa, shape, dim, dtype):
    rng = np.random.default_rng(5)
    x = (rng.standard_normal(shape) * 10).astype(dtype)
    size = shape[dim]
    for n in (0, 1, 11):
        idx = rng.integers(0, size, n) if size else np.zeros(0, np.int64)
        out = ops.index_select(x, dim, idx)
        np.testing.assert_array_equal(out, torch.index_select(torch.from_numpy(x), dim, torch.from_numpy(idx)).numpy())
        assert out.dtype == dtype
    np.testing.assert_array_equal(ops.index_select(x.T, 0, np.zeros(2, np.int64) if x.T.shape[0] else np.zeros(0, np.int64)),
                                  np.take(x.T, np.zeros(2 if x.T.shape[0] else 0, np.int64), axis=0))


def test_index_select_zero_d():
    out = ops.index_select(np.array(3.5, np.float32), 0, np.array([0]))
    assert out.shape == () and out == 3.5
    np.testing.assert_array_equal(ops.index_select(np.arange(5.0), 0, np.array(3)), np.array([3.0]))


# ------------------------------------------------------- gather, scatter_add
GATHER_CASES = [  # x shape, index shape, dim
    ((5,), (9,), 0), ((4, 6), (4, 6), 1), ((4, 6), (2, 3), 0), ((4, 6), (3, 9), 1), ((3, 4, 5), (2, 7, 5), 1),
    ((3, 4, 5), (3, 4, 1), 2), ((3, 4, 5), (1, 1, 8), 2), ((2, 3, 4, 5), (2, 3, 4, 6), 3), ((3, 4), (0, 4), 0),
    ((17, 131), (17, 70), 1), ((131, 17), (200, 17), 0),
]


@pytest.mark.parametrize("xs,ixs,dim", GATHER_CASES)
@pytest.mark.parametrize("dtype", DTYPES + [np.int64])
def test_gather_and_scatter_add(isa, xs, ixs, dim, dtype):
    rng = np.random.default_rng(6)
    x = (rng.standard_normal(xs) * 10).astype(dtype)
    index = rng.integers(0, xs[dim], ixs)
    out = ops.gather(x, dim, index)
    ref = torch.gather(torch.from_numpy(x), dim, torch.from_numpy(index)).numpy()
    np.testing.assert_array_equal(out, ref)
    assert out.dtype == dtype and out.shape == ixs
    src = (rng.standard_normal(ixs) * 10).astype(dtype)
    got = ops.scatter_add(x, dim, index, src)
    tref = torch.scatter_add(torch.from_numpy(x).double(), dim, torch.from_numpy(index), torch.from_numpy(src).double())
    np.testing.assert_allclose(got, tref.numpy(), rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-4)
    assert got.dtype == dtype and got.shape == xs
    zeros_based = ops.scatter_add(xs, dim, index, src)         # the gradient of gather
    tz = torch.zeros(xs, dtype=torch.float64).scatter_add(dim, torch.from_numpy(index), torch.from_numpy(src).double())
    np.testing.assert_allclose(zeros_based, tz.numpy(), rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-4)
    assert zeros_based.dtype == dtype
    if dtype == np.int64:
        np.testing.assert_array_equal(got, tref.numpy().astype(np.int64))


def test_scatter_add_src_larger_than_index_and_views(isa):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((6, 8))
    big = rng.standard_normal((12, 20))
    src = big[::2, ::2]                                # non-contiguous, larger than the index
    index = rng.integers(0, 8, (5, 4))
    got = ops.scatter_add(x[:, ::-1], 1, index, src)
    ref = torch.scatter_add(torch.from_numpy(x[:, ::-1].copy()), 1, torch.from_numpy(index), torch.from_numpy(src.copy()))
    np.testing.assert_array_equal(got, ref.numpy())
    xv = rng.standard_normal((8, 12))[::2, 1::2]       # gather reads a strided view in place
    idx = rng.integers(0, 4, (4, 6))
    np.testing.assert_array_equal(ops.gather(xv, 0, idx), np.take_along_axis(xv, idx, 0))


@pytest.mark.parametrize("dim", [0, 1])
def test_scatter_add_threads_bit_identical_and_in_index_order(isa, dim):
    rng = np.random.default_rng(8)
    shape = (300, 257) if dim == 0 else (257, 300)
    index = rng.integers(0, 5, shape)                  # many collisions along dim
    src = rng.standard_normal(shape).astype(np.float32)
    out_shape = (5, 257) if dim == 0 else (257, 5)
    outs = [with_threads(n, lambda: ops.scatter_add(out_shape, dim, index, src)) for n in (1, 2, 3, 4)]
    for o in outs[1:]:
        np.testing.assert_array_equal(o, outs[0])
    ref = np.zeros(out_shape, np.float32)              # the sequential sum, in index order
    other = np.arange(257)
    for l in range(300):
        if dim == 0:
            ref[index[l], other] += src[l]
        else:
            ref[other, index[:, l]] += src[:, l]
    np.testing.assert_array_equal(outs[0], ref)


def test_gather_scatter_zero_d_and_empty():
    x = np.array(2.5)
    assert ops.gather(x, 0, np.array(0)).shape == ()
    assert ops.gather(x, -1, np.array(0)) == 2.5
    assert ops.scatter_add(x, 0, np.array(0), np.array(1.0)) == 3.5
    assert ops.gather(x, 0, np.array(0, np.int32)).shape == ()
    assert ops.embedding(np.ones((3, 2)), np.array(1, np.int32)).shape == (2,)
    e = ops.gather(np.ones((3, 0)), 0, np.zeros((2, 0), np.int64))
    assert e.shape == (2, 0)
    np.testing.assert_array_equal(ops.scatter_add(np.ones((3, 2)), 1, np.zeros((3, 0), np.int64), np.ones((3, 0))),
                                  np.ones((3, 2)))


# ----------------------------------------------------------------- bad input
W = np.ones((10, 4), np.float32)
I = np.array([1, 2])
BAD = [
    (lambda: ops.embedding(W, np.array([1, 10])), IndexError, ["embedding", "index 10", "[0, 10)", "'indices'"]),
    (lambda: ops.embedding(W, np.array([[0, -1]])), IndexError, ["embedding", "index -1", "'indices'"]),
    (lambda: ops.embedding(W, np.array([1.0])), TypeError, ["embedding", "'indices'", "float64"]),
    (lambda: ops.embedding(W, np.array([True])), TypeError, ["embedding", "'indices'", "bool"]),
    (lambda: ops.embedding(W.astype(np.int32), I), TypeError, ["embedding", "'weight'", "int32"]),
    (lambda: ops.embedding(np.ones(4, np.float32), I), ValueError, ["embedding", "'weight'", "2-D"]),
    (lambda: ops.embedding(W, I, padding_idx=10), ValueError, ["embedding", "'padding_idx'"]),
    (lambda: ops.embedding(W, I, padding_idx=1.5), TypeError, ["embedding", "'padding_idx'"]),
    (lambda: ops.embedding(W, [1, 2]), TypeError, ["embedding", "'indices'", "list"]),
    (lambda: ops.embedding_backward(np.ones((2, 4), np.float32), np.array([1, 11]), 10), IndexError,
     ["embedding_backward", "index 11", "'indices'"]),
    (lambda: ops.embedding_backward(np.ones((3, 4), np.float32), I, 10), ValueError,
     ["embedding_backward", "'grad_y'", "(2, 4)"]),
    (lambda: ops.embedding_backward(np.ones((2, 4), np.float32), I, -1), ValueError,
     ["embedding_backward", "'num_weights'"]),
    (lambda: ops.embedding_backward(np.ones((2, 4), np.float32), I, 10, padding_idx=-11), ValueError,
     ["embedding_backward", "'padding_idx'"]),
    (lambda: ops.embedding_backward(np.ones((2, 4), np.float32), I, 2**62), MemoryError,
     ["embedding_backward", "grad_weight"]),
    (lambda: ops.embedding_backward(np.ones((2, 4), np.float32), I, 2**50), MemoryError,
     ["embedding_backward", "grad_weight"]),
    (lambda: ops.index_select(W, 2, I), ValueError, ["index_select", "'dim'", "2"]),
    (lambda: ops.index_select(W, 0.0, I), TypeError, ["index_select", "'dim'"]),
    (lambda: ops.index_select(W, 1, np.array([4])), IndexError, ["index_select", "index 4", "dimension 1"]),
    (lambda: ops.index_select(W, 0, np.ones((2, 2), np.int64)), ValueError, ["index_select", "'index'", "1-D"]),
    (lambda: ops.index_select(W.astype(np.int8), 0, I), TypeError, ["index_select", "'x'", "int8"]),
    (lambda: ops.gather(W, 1, np.array([[4]])), IndexError, ["gather", "index 4", "dimension 1"]),
    (lambda: ops.gather(W, 1, np.array([-1])), ValueError, ["gather", "'index'", "dimensions"]),
    (lambda: ops.gather(W, 1, np.zeros((11, 1), np.int64)), ValueError, ["gather", "'index'", "no larger"]),
    (lambda: ops.gather(W, -3, np.zeros((1, 1), np.int64)), ValueError, ["gather", "'dim'"]),
    (lambda: ops.gather(W, 0, np.zeros((1, 1), np.float32)), TypeError, ["gather", "'index'", "float32"]),
    (lambda: ops.scatter_add(W, 0, np.zeros((1, 1), np.int64), np.ones((1, 1))), TypeError,
     ["scatter_add", "'src'", "float32"]),
    (lambda: ops.scatter_add(W, 0, np.zeros((2, 2), np.int64), np.ones((1, 2), np.float32)), ValueError,
     ["scatter_add", "'index'", "'src'"]),
    (lambda: ops.scatter_add(W, 0, np.full((1, 1), 10), np.ones((1, 1), np.float32)), IndexError,
     ["scatter_add", "index 10", "dimension 0"]),
    (lambda: ops.scatter_add((10, -4), 0, np.zeros((1, 1), np.int64), np.ones((1, 1), np.float32)), ValueError,
     ["scatter_add", "'x'", "non-negative"]),
    (lambda: ops.scatter_add("x", 0, np.zeros((1, 1), np.int64), np.ones((1, 1), np.float32)), TypeError,
     ["scatter_add", "'x'"]),
    (lambda: ops.scatter_add(W, 0, np.zeros((1, 1), np.int64), np.ones(1, np.float32)), ValueError,
     ["scatter_add", "'src'", "dimensions"]),
]


@pytest.mark.parametrize("call,exc,words", BAD)
def test_bad_input(call, exc, words):
    assert_raises_naming(call, exc, words)
