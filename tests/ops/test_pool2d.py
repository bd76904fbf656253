"""Max/avg pooling and their gradients against PyTorch, at every ISA level."""
import numpy as np
import pytest

from pyfastnn import ops
from conftest import assert_raises_naming, rel_error

torch = pytest.importorskip("torch")
F = torch.nn.functional

# (shape, kernel, stride, padding)
CONFIGS = [
    ((2, 3, 8, 8), 2, None, 0),
    ((2, 3, 7, 9), 2, 2, 0),            # odd sizes: the last column/row is dropped
    ((1, 2, 33, 35), 2, 2, 0),          # more than 16 outputs per row, plus a tail
    ((3, 5, 26, 26), 2, 2, 0),          # 13-wide rows: tails spill whole vectors into the next row
    ((2, 3, 27, 21), 2, 2, 0),          # 10-wide rows, odd input width and height
    ((2, 2, 18, 40), 2, 2, 0),          # 20-wide rows: one full vector, a spilling tail
    ((3, 5, 9, 7), 3, 2, 1),            # ResNet stem-style
    ((2, 2, 12, 12), 3, 1, 1),          # overlapping windows
    ((2, 2, 10, 11), (3, 2), (2, 1), (1, 0)),
    ((1, 1, 1, 1), 1, 1, 0),
    ((2, 3, 5, 5), 5, 1, 2),            # kernel equal to the input, padding half of it
    ((2, 3, 6, 6), 2, 3, 1),            # stride > kernel
    ((4, 6, 6), 2, 2, 0),               # 3-D input (C, H, W)
    ((0, 3, 6, 6), 2, 2, 0),            # empty batch
    ((2, 4, 40, 40), 4, 4, 2),
    ((2, 3, 40, 75), 3, 2, 1),          # width-3 stride-2 path: full 16-output blocks and a tail
    ((1, 2, 20, 37), (2, 3), 2, (0, 1)),
    ((1, 2, 9, 40), (3, 3), (1, 2), 0),
]


@pytest.mark.parametrize("cfg", CONFIGS, ids=[str(c) for c in CONFIGS])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_pool_matches_torch(isa, cfg, dtype):
    shape, k, s, p = cfg
    rng = np.random.default_rng()
    x = rng.standard_normal(shape).astype(dtype)
    y, idx = ops.max_pool2d(x, k, s, p)
    ty, tidx = F.max_pool2d(torch.from_numpy(x), k, s, p, return_indices=True)
    np.testing.assert_array_equal(y, ty.numpy())
    np.testing.assert_array_equal(idx, tidx.numpy())
    assert idx.dtype == np.int64 and y.dtype == dtype
    gy = rng.standard_normal(y.shape).astype(dtype)
    gx = ops.max_pool2d_backward(gy, idx, x.shape)
    tx = torch.from_numpy(x).requires_grad_()
    if ty.numel():
        F.max_pool2d(tx, k, s, p).backward(torch.from_numpy(gy))
        assert rel_error(gx, tx.grad.numpy()) < 1e-6
    assert gx.shape == x.shape


@pytest.mark.parametrize("cfg", CONFIGS, ids=[str(c) for c in CONFIGS])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_avg_pool_matches_torch(isa, cfg, dtype):
    shape, k, s, p = cfg
    rng = np.random.default_rng()
    x = rng.standard_normal(shape).astype(dtype)
    y = ops.avg_pool2d(x, k, s, p)
    tx = torch.from_numpy(x).requires_grad_()
    ty = F.avg_pool2d(tx, k, s, p)
    assert y.shape == tuple(ty.shape) and y.dtype == dtype
    assert rel_error(y, ty.detach().numpy()) < 1e-6
    gy = rng.standard_normal(y.shape).astype(dtype)
    gx = ops.avg_pool2d_backward(gy, x.shape, k, s, p)
    if ty.numel():
        ty.backward(torch.from_numpy(gy))
        assert rel_error(gx, tx.grad.numpy()) < 1e-6


def test_nan_wins_like_torch(isa):
    x = np.arange(2 * 36, dtype=np.float32).reshape(1, 2, 6, 6)
    x[0, 0, 1, 1] = np.nan
    x[0, 1, 4, 2] = np.nan
    for k, s, p in [(2, 2, 0), (3, 2, 1)]:
        y, idx = ops.max_pool2d(x, k, s, p)
        ty, tidx = F.max_pool2d(torch.from_numpy(x), k, s, p, return_indices=True)
        np.testing.assert_array_equal(y, ty.numpy())
        np.testing.assert_array_equal(idx, tidx.numpy())


def test_levels_agree_bitwise():
    from pyfastnn._backend import _core
    from conftest import available_isas

    x = np.random.default_rng().standard_normal((3, 4, 31, 29)).astype(np.float32)
    before = _core.cpu_isa()
    outs = []
    try:
        for level in available_isas():
            _core._set_cpu_isa(level)
            outs.append((ops.max_pool2d(x, 2, 2), ops.avg_pool2d(x, 2, 2)))
    finally:
        _core._set_cpu_isa(before)
    for (m, a) in outs[1:]:
        np.testing.assert_array_equal(m[0], outs[0][0][0])
        np.testing.assert_array_equal(m[1], outs[0][0][1])
        np.testing.assert_array_equal(a, outs[0][1])


BAD = [
    (lambda: ops.max_pool2d(np.ones((2, 2), np.float32), 2), ValueError, ["max_pool2d", "'x'"]),
    (lambda: ops.max_pool2d(np.ones((1, 1, 4, 4), np.int32), 2), TypeError, ["max_pool2d", "'x'", "int32"]),
    (lambda: ops.max_pool2d(np.ones((1, 1, 4, 4), np.float32), 0), ValueError, ["max_pool2d", "'kernel_size'"]),
    (lambda: ops.max_pool2d(np.ones((1, 1, 4, 4), np.float32), 2, 0), ValueError, ["max_pool2d", "'stride'"]),
    (lambda: ops.max_pool2d(np.ones((1, 1, 4, 4), np.float32), 2, 2, -1), ValueError, ["max_pool2d", "'padding'"]),
    (lambda: ops.max_pool2d(np.ones((1, 1, 4, 4), np.float32), 2, 2, 2), ValueError, ["max_pool2d", "'padding'", "half"]),
    (lambda: ops.max_pool2d(np.ones((1, 1, 4, 4), np.float32), 5), ValueError, ["max_pool2d", "'kernel_size'", "larger"]),
    (lambda: ops.max_pool2d(np.ones((1, 1, 4, 4), np.float32), 2.5), TypeError, ["max_pool2d", "'kernel_size'"]),
    (lambda: ops.avg_pool2d(np.ones((1, 1, 4, 4), np.float32), (2, 2, 2)), ValueError, ["avg_pool2d", "'kernel_size'"]),
    (lambda: ops.max_pool2d_backward(np.ones((1, 1, 2, 2), np.float32), np.zeros((1, 1, 2, 2), np.int32), (1, 1, 4, 4)),
     TypeError, ["max_pool2d_backward", "'indices'", "int64"]),
    (lambda: ops.max_pool2d_backward(np.ones((1, 1, 2, 2), np.float32), np.full((1, 1, 2, 2), 99), (1, 1, 4, 4)),
     ValueError, ["max_pool2d_backward", "'indices'", "outside"]),
    (lambda: ops.max_pool2d_backward(np.ones((1, 1, 2, 2), np.float32), np.full((1, 1, 2, 2), -1), (1, 1, 4, 4)),
     ValueError, ["max_pool2d_backward", "'indices'"]),
    (lambda: ops.max_pool2d_backward(np.ones((1, 1, 2, 2), np.float32), np.zeros((1, 1, 2, 3), np.int64), (1, 1, 4, 4)),
     ValueError, ["max_pool2d_backward", "'indices'"]),
    (lambda: ops.avg_pool2d_backward(np.ones((1, 1, 3, 2), np.float32), (1, 1, 4, 4), 2), ValueError,
     ["avg_pool2d_backward", "'grad_y'"]),
    (lambda: ops.avg_pool2d_backward(np.ones((1, 1, 2, 2), np.float32), "shape", 2), TypeError,
     ["avg_pool2d_backward", "'x_shape'"]),
]


@pytest.mark.parametrize("call,exc,words", BAD)
def test_bad_input(call, exc, words):
    assert_raises_naming(call, exc, words)
