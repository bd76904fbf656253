"""topk and sort against PyTorch and an exact reference order (ties: lower index
first; NaN above every number; -0 equal to +0), at every ISA level and thread count."""
import numpy as np
import pytest

import pyfastnn
from pyfastnn import ops
from conftest import assert_raises_naming

torch = pytest.importorskip("torch")


def reference_order(x, largest, axis):
    """Indices along `axis` in the wanted order, ties by index (np.lexsort is stable)."""
    x = np.moveaxis(np.asarray(x), axis, -1)
    out = np.empty(x.shape, np.int64)
    for pos in np.ndindex(x.shape[:-1]):
        line = x[pos]
        idx = np.arange(line.size)
        if line.dtype.kind == "f":
            nan = np.isnan(line)
            v = np.where(nan, 0, line).astype(np.float64) + 0.0      # -0 -> +0
            keys = (idx, -v, ~nan) if largest else (idx, v, nan)
        else:
            rank = np.unique(line, return_inverse=True)[1]
            keys = (idx, -rank) if largest else (idx, rank)
        out[pos] = np.lexsort(keys)
    return np.moveaxis(out, -1, axis)


def make(rng, shape, dtype, specials):
    if dtype == np.int64:
        return rng.integers(-5, 6, shape)                           # many ties
    x = np.round(rng.standard_normal(shape) * 4) / 4                # ties too
    if specials and x.size >= 8:
        flat = x.reshape(-1)
        pick = rng.choice(flat.size, size=max(4, flat.size // 20), replace=False)
        flat[pick] = rng.choice([np.nan, np.inf, -np.inf, -0.0, 0.0], size=pick.size)
    return x.astype(dtype)


SHAPES = [((0,), -1), ((1,), 0), ((7,), 0), ((3, 17), 1), ((3, 17), 0), ((2, 40, 5), 1), ((4, 300), -1),
          ((300, 3), 0), ((2, 1031), 1), ((2, 0, 3), 1)]


@pytest.mark.parametrize("shape,dim", SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
@pytest.mark.parametrize("largest", [True, False])
def test_topk_and_sort_order(isa, shape, dim, dtype, largest):
    rng = np.random.default_rng(0)
    x = make(rng, shape, dtype, specials=True)
    order = reference_order(x, largest, dim)
    L = shape[dim]
    for k in sorted({0, min(1, L), min(3, L), min(5, L), L // 2, L}):
        v, i = ops.topk(x, k, dim=dim, largest=largest)
        assert v.dtype == x.dtype and i.dtype == np.int64
        want = np.take(order, np.arange(k), axis=dim)
        np.testing.assert_array_equal(i, want)
        np.testing.assert_array_equal(v, np.take_along_axis(x, want, dim))
        if x.size and k:
            tv, _ = torch.topk(torch.from_numpy(x), k, dim=dim, largest=largest)
            np.testing.assert_array_equal(v, tv.numpy())           # torch's values (its tie order differs)
    v, i = ops.sort(x, dim=dim, descending=largest)
    np.testing.assert_array_equal(i, order)
    np.testing.assert_array_equal(v, np.take_along_axis(x, order, dim))
    tv, ti = torch.sort(torch.from_numpy(x), dim=dim, descending=largest, stable=True)
    np.testing.assert_array_equal(v, tv.numpy())
    np.testing.assert_array_equal(i, ti.numpy())                    # stable sort: the same answer as torch


def test_vocabulary_rows(isa):
    # GPT-2 sampling: k from 1 to 50 over 50257 logits (the heap path), and the
    # large-k path, against torch's values and the reference order (random
    # float32 rows this long hold a few ties, which torch orders either way).
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 50257)).astype(np.float32)
    tx = torch.from_numpy(x)
    order = reference_order(x, True, 1)
    for k in (1, 2, 10, 50, 256, 257, 5000, 50257):
        v, i = ops.topk(x, k)
        tv, ti = torch.topk(tx, k)
        np.testing.assert_array_equal(v, tv.numpy())
        np.testing.assert_array_equal(i, order[:, :k])
    asc = np.sort(x, axis=1)                                        # worst case for the heap: every key enters
    np.testing.assert_array_equal(ops.topk(asc, 50).indices, np.tile(np.arange(50256, 50206, -1), (3, 1)))
    np.testing.assert_array_equal(ops.topk(asc, 50, largest=False).indices, np.tile(np.arange(50), (3, 1)))


def test_all_equal_and_all_nan_lines(isa):
    for x in (np.zeros(1000, np.float32), np.full(1000, np.nan), np.full(100, -0.0)):
        v, i = ops.topk(x, 7)
        np.testing.assert_array_equal(i, np.arange(7))
        v, i = ops.topk(x, 7, largest=False)
        np.testing.assert_array_equal(i, np.arange(7))
        np.testing.assert_array_equal(ops.sort(x)[1], np.arange(x.size))
        np.testing.assert_array_equal(ops.sort(x, descending=True)[1], np.arange(x.size))


def test_named_tuples_views_and_zero_d():
    x = np.random.default_rng(2).standard_normal((6, 40))
    r = ops.topk(x[::2, ::-3], 4)
    assert isinstance(r, ops.TopK) and r.values.shape == (3, 4)
    np.testing.assert_array_equal(r.indices, ops.topk(np.ascontiguousarray(x[::2, ::-3]), 4).indices)
    s = ops.sort(x.T, dim=0)
    assert isinstance(s, ops.Sort)
    np.testing.assert_array_equal(s.values, np.sort(x.T, axis=0))
    z = ops.topk(np.array(1.5), 1)
    assert z.values.shape == () and z.values == 1.5 and z.indices == 0
    assert ops.topk(np.array(1.5), 0, dim=-1).values.shape == ()   # torch keeps a 0-d shape
    assert ops.sort(np.array(2.0)).indices == 0


@pytest.mark.parametrize("dim", [0, 1])
def test_threads_bit_identical(isa, dim):
    rng = np.random.default_rng(3)
    x = make(rng, (64, 2001) if dim == 1 else (2001, 64), np.float32, specials=True)
    before = pyfastnn.get_num_threads()
    try:
        outs = []
        for n in (1, 2, 3, 4):
            pyfastnn.set_num_threads(n)
            outs.append(ops.topk(x, 50, dim=dim) + ops.sort(x, dim=dim))
    finally:
        pyfastnn.set_num_threads(before)
    for o in outs[1:]:
        for a, b in zip(o, outs[0]):
            np.testing.assert_array_equal(a, b)


X = np.ones((3, 5), np.float32)
BAD = [
    (lambda: ops.topk(X, -1), ValueError, ["topk", "'k'", "-1"]),
    (lambda: ops.topk(X, 6), ValueError, ["topk", "'k'", "[0, 5]"]),
    (lambda: ops.topk(X, 4, dim=0), ValueError, ["topk", "'k'", "[0, 3]"]),
    (lambda: ops.topk(X, 2.0), TypeError, ["topk", "'k'"]),
    (lambda: ops.topk(X, 2, dim=2), ValueError, ["topk", "'dim'"]),
    (lambda: ops.topk(X.astype(np.int32), 2), TypeError, ["topk", "'x'", "int32"]),
    (lambda: ops.topk(X.astype(bool), 2), TypeError, ["topk", "'x'", "bool"]),
    (lambda: ops.topk([1.0, 2.0], 1), TypeError, ["topk", "'x'", "list"]),
    (lambda: ops.topk(X, 2**70), ValueError, ["topk", "'k'"]),
    (lambda: ops.sort(X, dim=-3), ValueError, ["sort", "'dim'"]),
    (lambda: ops.sort(X.astype(np.float16)), TypeError, ["sort", "'x'", "float16"]),
]


@pytest.mark.parametrize("call,exc,words", BAD)
def test_bad_input(call, exc, words):
    assert_raises_naming(call, exc, words)
