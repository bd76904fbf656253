"""conv2d and its three gradients against PyTorch in float64, on awkward
configurations, at every ISA level."""
import numpy as np
import pytest

from pyfastnn import ops
from conftest import assert_raises_naming, rel_error

torch = pytest.importorskip("torch")
F = torch.nn.functional

# (N, C, H, W, O, (kh, kw), stride, padding, dilation, groups)
CONFIGS = [
    (2, 3, 7, 9, 5, (3, 3), 1, 0, 1, 1),
    (1, 1, 1, 1, 1, (1, 1), 1, 0, 1, 1),
    (3, 4, 11, 10, 6, (3, 3), 2, 1, 1, 2),      # stride, padding, groups
    (2, 6, 13, 13, 6, (3, 3), 1, 2, 2, 6),      # depthwise, dilated
    (2, 6, 13, 13, 12, (3, 3), 1, 1, 1, 6),     # depthwise multiplier 2
    (1, 5, 8, 8, 7, (1, 1), 1, 0, 1, 1),        # 1x1
    (2, 3, 5, 5, 4, (5, 5), 1, 0, 1, 1),        # kernel equal to the input
    (2, 4, 9, 7, 8, (2, 2), 3, 1, 1, 1),        # stride > kernel
    (2, 3, 10, 12, 5, (3, 2), (2, 1), (1, 0), (1, 2), 1),  # per-axis everything
    (2, 2, 6, 6, 3, (3, 3), 1, 2, 1, 1),        # padding > (k-1)*d / 2 on a stride-1 conv
    (1, 2, 5, 5, 3, (3, 3), 1, 3, 1, 1),        # padding larger than the kernel reach
    (4, 1, 28, 28, 8, (3, 3), 1, 0, 1, 1),      # first layer, C = 1
    # small K, output rows >= 16 wide: the flat-run kernel (vectors cross row ends)
    (2, 1, 19, 17, 13, (3, 3), 1, 1, 1, 1),     # 8 + 5 channels, 17-wide rows
    (3, 1, 40, 18, 8, (3, 3), 1, 0, 1, 1),      # rows exactly one vector wide
    (2, 2, 20, 33, 11, (2, 3), 1, (0, 1), (2, 1), 1),  # K = 12, dilated
    (2, 4, 21, 23, 4, (3, 3), 1, 1, 1, 4),      # depthwise, one channel per group
    # the flat run's last vectors: moved back to end the plane (tails of 0..3
    # vectors), or a plane smaller than them (lane counts); unpadded x read in
    # place for all of a thread's images at once, groups included
    (2, 1, 3, 22, 5, (3, 3), 1, 0, 1, 1),       # one 20-wide row: P < the tail
    (2, 1, 6, 19, 9, (3, 3), 1, 0, 1, 1),       # P = 68: a span and a tail of 2
    (2, 1, 6, 24, 8, (3, 3), 1, 0, 1, 1),       # P = 88: a tail of 3
    (3, 1, 8, 18, 8, (3, 3), 1, 0, 1, 1),       # P = 96: no tail
    (3, 3, 12, 20, 10, (3, 3), 1, 0, 1, 1),     # K = 27
    (3, 4, 10, 18, 6, (3, 3), 1, 0, 1, 2),      # K = 18 per group
    (0, 3, 5, 5, 4, (3, 3), 1, 1, 1, 1),        # empty batch
    (2, 17, 13, 11, 19, (3, 3), 1, 1, 1, 1),    # primes
    (2, 8, 15, 15, 16, (3, 3), 2, 1, 1, 4),
    (3, 64, 9, 9, 50, (3, 3), 1, 1, 1, 1),      # k rows across k blocks
    # K > 32 at stride 1: several small images per GEMM, in place (no padding) and padded
    (3, 8, 9, 10, 12, (3, 3), 1, 0, 1, 1),
    (4, 16, 7, 7, 8, (3, 3), 1, 0, 1, 2),
    (5, 9, 6, 6, 7, (2, 3), 1, (1, 0), 1, 1),
    # Large enough (Cg * OH * OW >= 65536) for grad_x as a flipped convolution:
    (1, 16, 64, 64, 4, (3, 3), 1, 1, 1, 1),
    (1, 32, 64, 64, 8, (3, 3), 1, 2, 2, 2),
]


def run_case(cfg, dtype, rng):
    n, c, h, w_, o, k, s, p, d, g = cfg
    x = rng.standard_normal((n, c, h, w_)).astype(dtype)
    w = rng.standard_normal((o, c // g) + k).astype(dtype)
    b = rng.standard_normal(o).astype(dtype)
    y = ops.conv2d(x, w, b, stride=s, padding=p, dilation=d, groups=g)
    tx, tw, tb = (torch.from_numpy(a).double().requires_grad_() for a in (x, w, b))
    ty = F.conv2d(tx, tw, tb, stride=s, padding=p, dilation=d, groups=g)
    gy = rng.standard_normal(tuple(ty.shape)).astype(dtype)
    if ty.numel():
        ty.backward(torch.from_numpy(gy).double())
    gx, gw, gb = ops.conv2d_backward(gy, x, w, stride=s, padding=p, dilation=d, groups=g)
    ref_grads = [t.grad.numpy() if t.grad is not None else np.zeros(t.shape) for t in (tx, tw, tb)]
    return (y, gx, gw, gb), (ty.detach().numpy(), *ref_grads)


@pytest.mark.parametrize("cfg", CONFIGS, ids=[str(c) for c in CONFIGS])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matches_torch(isa, cfg, dtype):
    rng = np.random.default_rng()
    got, ref = run_case(cfg, dtype, rng)
    tol = 1e-5 if dtype == np.float32 else 1e-11
    for name, a, r in zip(("y", "grad_x", "grad_w", "grad_b"), got, ref):
        assert a.shape == r.shape, name
        assert a.dtype == dtype, name
        assert rel_error(a, r) < tol, (name, rel_error(a, r))


@pytest.mark.parametrize("threads", [1, 2, 3], indirect=True)
def test_thread_counts_agree_with_reference(threads):
    rng = np.random.default_rng()
    for cfg in [(5, 3, 12, 12, 8, (3, 3), 1, 1, 1, 1), (1, 16, 20, 20, 16, (3, 3), 2, 1, 1, 1)]:
        got, ref = run_case(cfg, np.float32, rng)
        for a, r in zip(got, ref):
            assert rel_error(a, r) < 1e-5


def test_non_contiguous_inputs():
    rng = np.random.default_rng()
    x = rng.standard_normal((2, 3, 10, 12)).astype(np.float32)[:, :, ::2, 1:]
    w = np.asfortranarray(rng.standard_normal((4, 3, 3, 3)).astype(np.float32))
    y = ops.conv2d(x, w, padding=1)
    ref = F.conv2d(torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(np.ascontiguousarray(w)), padding=1)
    assert rel_error(y, ref.numpy()) < 1e-5


def test_padding_strings():
    rng = np.random.default_rng()
    x = rng.standard_normal((1, 2, 7, 7)).astype(np.float32)
    w = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    for mode in ("same", "valid"):
        ref = F.conv2d(torch.from_numpy(x), torch.from_numpy(w), padding=mode)
        assert rel_error(ops.conv2d(x, w, padding=mode), ref.numpy()) < 1e-5


def test_results_identical_across_runs():
    rng = np.random.default_rng()
    x = rng.standard_normal((6, 8, 14, 14)).astype(np.float32)
    w = rng.standard_normal((16, 8, 3, 3)).astype(np.float32)
    gy = rng.standard_normal((6, 16, 14, 14)).astype(np.float32)
    first = ops.conv2d_backward(gy, x, w, padding=1)
    for _ in range(3):
        for a, b in zip(ops.conv2d_backward(gy, x, w, padding=1), first):
            np.testing.assert_array_equal(a, b)


X = np.ones((2, 4, 8, 8), np.float32)
W = np.ones((6, 4, 3, 3), np.float32)
BAD = [
    (lambda: ops.conv2d(X, np.ones((6, 3, 3, 3), np.float32)), ValueError, ["conv2d", "'w'", "(6, 3, 3, 3)"]),
    (lambda: ops.conv2d(X, W, groups=3), ValueError, ["conv2d", "groups=3"]),
    (lambda: ops.conv2d(X, np.ones((5, 2, 3, 3), np.float32), groups=2), ValueError, ["conv2d", "output channels"]),
    (lambda: ops.conv2d(X, np.ones((6, 4, 9, 9), np.float32)), ValueError, ["conv2d", "larger than the padded input"]),
    (lambda: ops.conv2d(X, W, stride=0), ValueError, ["conv2d", "'stride'"]),
    (lambda: ops.conv2d(X, W, padding=-1), ValueError, ["conv2d", "'padding'"]),
    (lambda: ops.conv2d(X, W, dilation=(1, 0)), ValueError, ["conv2d", "'dilation'"]),
    (lambda: ops.conv2d(X, W, stride=1.5), TypeError, ["conv2d", "'stride'"]),
    (lambda: ops.conv2d(X, W, groups=0), ValueError, ["conv2d", "'groups'"]),
    (lambda: ops.conv2d(X[0], W), ValueError, ["conv2d", "'x'", "4-D"]),
    (lambda: ops.conv2d(X, W[0]), ValueError, ["conv2d", "'w'", "4-D"]),
    (lambda: ops.conv2d(X.astype(np.int64), W), TypeError, ["conv2d", "'x'", "int64"]),
    (lambda: ops.conv2d(X, W.astype(np.float64)), TypeError, ["conv2d", "same dtype"]),
    (lambda: ops.conv2d(X, W, bias=np.ones(5, np.float32)), ValueError, ["conv2d", "'bias'", "(6,)"]),
    (lambda: ops.conv2d(X, W, padding="full"), ValueError, ["conv2d", "'padding'", "full"]),
    (lambda: ops.conv2d(X, W, padding="same", stride=2), ValueError, ["conv2d", "same"]),
    (lambda: ops.conv2d_backward(np.ones((2, 6, 5, 5), np.float32), X, W), ValueError,
     ["conv2d_backward", "'grad_y'", "(2, 6, 6, 6)"]),
    (lambda: ops.conv2d_backward(np.ones((2, 6, 6, 6), np.float64), X, W), TypeError, ["conv2d_backward", "'grad_y'"]),
]


@pytest.mark.parametrize("call,exc,words", BAD)
def test_bad_input(call, exc, words):
    assert_raises_naming(call, exc, words)


@pytest.mark.parametrize("need_x,need_w", [(False, True), (True, False), (False, False)])
def test_backward_skips_gradients_not_needed(need_x, need_w):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 4, 9, 8)).astype(np.float32)
    w = rng.standard_normal((6, 2, 3, 3)).astype(np.float32)
    gy = rng.standard_normal((3, 6, 5, 6)).astype(np.float32)
    full = ops.conv2d_backward(gy, x, w, stride=(2, 1), padding=(1, 0), groups=2)
    part = ops.conv2d_backward(gy, x, w, stride=(2, 1), padding=(1, 0), groups=2, need_grad_x=need_x,
                               need_grad_w=need_w)
    for got, want, needed in zip(part, full, (need_x, need_w, True)):
        if needed:
            np.testing.assert_array_equal(got, want)
        else:
            assert got is None


@pytest.mark.parametrize("shape", [(3, 1, 28, 28, 32), (2, 1, 9, 9, 5), (2, 8, 9, 9, 6)],
                         ids=["flat-run", "row-tiles", "gemm"])
def test_without_bias(isa, shape):
    n, c, h, w_, o = shape
    rng = np.random.default_rng()
    x = rng.standard_normal((n, c, h, w_)).astype(np.float32)
    w = rng.standard_normal((o, c, 3, 3)).astype(np.float32)
    ref = F.conv2d(torch.from_numpy(x).double(), torch.from_numpy(w).double()).numpy()
    assert rel_error(ops.conv2d(x, w), ref) < 1e-5
