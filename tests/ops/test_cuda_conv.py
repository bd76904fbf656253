"""CUDA conv2d and its three gradients against the CPU kernels (ops.conv2d /
ops.conv2d_backward on numpy) on fresh random inputs, the fast kernels against
the one-thread-per-output reference kernels for every algorithm and tile,
the split-K gradient of w for several split counts, need_grad flags, and bad
inputs on CuPy arrays. Everything skips without a GPU.

Tolerances: norm-wise relative error (conftest.rel_error) of 2e-5 between
float32 results: each side is a float32 sum in its own order (GEMM k tiles,
split-K slices, CPU blocking), ~sqrt(terms) * 2**-24 each for sums of up to a
few thousand terms here. Results that must not depend on timing (every
kernel: no atomics) are compared bit for bit across repeated runs.

PYFASTNN_SANITIZER_RUN=1 (set by bench/gpu_check.sh under compute-sanitizer)
skips the large cases.
"""
import os

import numpy as np
import pytest

import pyfastnn
from pyfastnn import ops
from conftest import assert_raises_naming, cupy_or_skip as _cupy_or_skip, rel_error

TOL = 2e-5
SANITIZER = os.environ.get("PYFASTNN_SANITIZER_RUN") == "1"
large = pytest.mark.skipif(SANITIZER, reason="large case: skipped under compute-sanitizer")




def _conv():
    from pyfastnn.cuda_ops import conv

    return conv


# (N, C, H, W, O, (kh, kw), stride, padding, dilation, groups)
CONFIGS = [
    (2, 3, 7, 9, 5, (3, 3), 1, 0, 1, 1),
    (1, 1, 1, 1, 1, (1, 1), 1, 0, 1, 1),
    (0, 3, 5, 5, 4, (3, 3), 1, 1, 1, 1),        # empty batch
    (1, 4, 6, 5, 3, (3, 3), 1, 1, 1, 1),        # batch 1
    (3, 4, 11, 10, 6, (3, 3), 2, 1, 1, 2),      # stride, padding, groups
    (2, 6, 13, 13, 6, (3, 3), 1, 2, 2, 6),      # depthwise, dilated
    (2, 6, 13, 13, 12, (3, 3), 1, 1, 1, 6),     # depthwise, multiplier 2
    (2, 5, 9, 8, 5, (3, 3), 2, 1, 1, 5),        # depthwise, strided
    (1, 5, 8, 8, 7, (1, 1), 1, 0, 1, 1),        # 1x1
    (2, 40, 7, 7, 36, (1, 1), 1, 0, 1, 1),      # 1x1, tap-major over 5 channel tiles
    (2, 3, 5, 5, 4, (5, 5), 1, 0, 1, 1),        # kernel equal to the input
    (2, 4, 9, 7, 8, (2, 2), 3, 1, 1, 1),        # stride > kernel
    (2, 16, 9, 7, 8, (2, 2), 3, 0, 1, 1),       # stride > kernel, tap-major
    (2, 3, 10, 12, 5, (3, 2), (2, 1), (1, 0), (1, 2), 1),  # per-axis everything
    (2, 2, 6, 6, 3, (3, 3), 1, 2, 1, 1),        # padding > (k-1)*d / 2
    (1, 2, 5, 5, 3, (3, 3), 1, 3, 1, 1),        # padding larger than the kernel reach
    (4, 1, 28, 28, 8, (3, 3), 1, 0, 1, 1),      # first layer, C = 1
    (2, 17, 13, 11, 19, (3, 3), 1, 1, 1, 1),    # primes
    (2, 8, 15, 15, 16, (3, 3), 2, 1, 1, 4),     # groups of 2 channels
    (2, 16, 9, 9, 48, (3, 3), 1, 1, 1, 2),      # groups, tap-major, Kg = 24
    (3, 64, 9, 9, 50, (3, 3), 1, 1, 1, 1),      # several k tiles per tap
    (2, 16, 15, 15, 32, (3, 3), 2, 1, 1, 1),    # strided grad x, tap-major
    (2, 8, 17, 17, 16, (3, 3), 2, 2, 2, 1),     # stride, dilation and padding together
    (2, 32, 20, 20, 130, (3, 3), 1, 1, 1, 1),   # two 128-channel tiles
    (1, 16, 64, 64, 4, (3, 3), 1, 1, 1, 1),     # many pixel tiles
    (3, 12, 11, 13, 20, (5, 3), (1, 2), (2, 1), (2, 1), 1),
]
LARGE = {(2, 32, 20, 20, 130, (3, 3), 1, 1, 1, 1), (1, 16, 64, 64, 4, (3, 3), 1, 1, 1, 1)}


def _params(configs):
    return [pytest.param(c, marks=large, id=str(c)) if c in LARGE else pytest.param(c, id=str(c)) for c in configs]


def _case(cfg, rng):
    n, c, h, w_, o, k, s, p, d, g = cfg
    x = rng.standard_normal((n, c, h, w_)).astype(np.float32)
    w = rng.standard_normal((o, c // g) + k).astype(np.float32)
    b = rng.standard_normal(o).astype(np.float32)
    y = ops.conv2d(x, w, b, stride=s, padding=p, dilation=d, groups=g)
    gy = rng.standard_normal(y.shape).astype(np.float32)
    return x, w, b, gy, dict(stride=s, padding=p, dilation=d, groups=g), y


def _check(name, got, want, cp):
    assert isinstance(got, cp.ndarray), name
    assert got.dtype == np.float32, name
    assert got.shape == want.shape, (name, got.shape, want.shape)
    err = rel_error(cp.asnumpy(got), want)
    assert err < TOL, (name, err)


@pytest.mark.parametrize("cfg", _params(CONFIGS))
def test_matches_cpu(cp, cfg):
    rng = np.random.default_rng()
    x, w, b, gy, kw, y_cpu = _case(cfg, rng)
    _check("y", ops.conv2d(cp.asarray(x), cp.asarray(w), cp.asarray(b), **kw), y_cpu, cp)
    _check("y (no bias)", ops.conv2d(cp.asarray(x), cp.asarray(w), **kw), ops.conv2d(x, w, **kw), cp)
    got = ops.conv2d_backward(cp.asarray(gy), cp.asarray(x), cp.asarray(w), **kw)
    want = ops.conv2d_backward(gy, x, w, **kw)
    for name, a, r in zip(("grad_x", "grad_w", "grad_b"), got, want):
        _check(name, a, r, cp)


# Small problems that still cover several pixel tiles, channel tiles, taps and
# k tiles, each run through every algorithm and tile against the reference.
FAST_VS_REFERENCE = [
    (2, 17, 13, 11, 19, (3, 3), 1, 1, 1, 1),
    (3, 4, 11, 10, 6, (3, 3), 2, 1, 1, 2),
    (2, 16, 15, 15, 40, (3, 3), 2, 1, 1, 1),
    (2, 8, 17, 17, 16, (3, 3), 2, 2, 2, 1),
    (2, 24, 9, 9, 70, (1, 1), 1, 0, 1, 1),
    (2, 3, 10, 12, 5, (3, 2), (2, 1), (1, 0), (1, 2), 1),
    (2, 16, 9, 9, 48, (3, 3), 1, 1, 1, 2),
]


def _all_paths(cp, x, w, gy, kw, algo, tile, splits=0):
    conv = _conv()
    y = conv.conv2d(x, w, None, **kw, _algo=algo, _tile=tile)
    grads = conv.conv2d_backward(gy, x, w, **kw, _algo=algo, _tile=tile, _splits=splits)
    return (y,) + tuple(grads)


# Every tile reads and writes through the same loaders and epilogue: under the
# sanitizer one 8x8 and one 8x4 per-thread shape suffice.
TILES = ["128x128", "64x32"] if SANITIZER else ["auto", "128x128", "128x64", "128x32", "64x128", "64x64", "64x32"]


@pytest.mark.parametrize("tile", TILES)
@pytest.mark.parametrize("algo", ["tap", "generic"])
@pytest.mark.parametrize("cfg", _params(FAST_VS_REFERENCE))
def test_fast_kernels_match_reference(cp, cfg, algo, tile):
    rng = np.random.default_rng()
    x, w, _, gy, kw, _ = _case(cfg, rng)
    x, w, gy = cp.asarray(x), cp.asarray(w), cp.asarray(gy)
    ref = _all_paths(cp, x, w, gy, kw, "reference", "auto")
    got = _all_paths(cp, x, w, gy, kw, algo, tile)
    for name, a, r in zip(("y", "grad_x", "grad_w", "grad_b"), got, ref):
        _check(f"{name} {algo} {tile}", a, cp.asnumpy(r), cp)


@pytest.mark.parametrize("cfg", [(2, 6, 13, 13, 6, (3, 3), 1, 2, 2, 6), (2, 6, 13, 13, 12, (3, 3), 1, 1, 1, 6),
                                 (2, 5, 9, 8, 10, (3, 3), 2, 1, 1, 5), (1, 3, 4, 4, 3, (4, 4), 1, 0, 1, 3)],
                         ids=str)
@pytest.mark.parametrize("algo", ["direct", "tap", "generic"])
def test_depthwise_paths_match_reference(cp, cfg, algo):
    rng = np.random.default_rng()
    x, w, b, gy, kw, _ = _case(cfg, rng)
    x, w, b, gy = cp.asarray(x), cp.asarray(w), cp.asarray(b), cp.asarray(gy)
    conv = _conv()
    _check("y", conv.conv2d(x, w, b, **kw, _algo=algo), cp.asnumpy(conv.conv2d(x, w, b, **kw, _algo="reference")),
           cp)
    got = conv.conv2d_backward(gy, x, w, **kw, _algo=algo)
    ref = conv.conv2d_backward(gy, x, w, **kw, _algo="reference")
    for name, a, r in zip(("grad_x", "grad_w", "grad_b"), got, ref):
        _check(f"{name} {algo}", a, cp.asnumpy(r), cp)


@pytest.mark.parametrize("splits", [1, 2, 3, 7, 1000])
def test_grad_w_split_counts(cp, splits):
    """Any number of pixel slices (clamped to the k tiles) gives the same
    gradient up to rounding, and the same bits on every run."""
    rng = np.random.default_rng()
    cfg = (3, 12, 14, 10, 20, (3, 3), 1, 1, 1, 1)
    x, w, _, gy, kw, _ = _case(cfg, rng)
    x, w, gy = cp.asarray(x), cp.asarray(w), cp.asarray(gy)
    conv = _conv()
    ref = conv.conv2d_backward(gy, x, w, **kw, need_grad_x=False, _algo="reference")[1]
    first = conv.conv2d_backward(gy, x, w, **kw, need_grad_x=False, _splits=splits)[1]
    _check(f"grad_w splits={splits}", first, cp.asnumpy(ref), cp)
    again = conv.conv2d_backward(gy, x, w, **kw, need_grad_x=False, _splits=splits)[1]
    np.testing.assert_array_equal(cp.asnumpy(again), cp.asnumpy(first))


@large
def test_results_identical_across_runs(cp):
    rng = np.random.default_rng()
    x = cp.asarray(rng.standard_normal((6, 8, 14, 14)).astype(np.float32))
    w = cp.asarray(rng.standard_normal((16, 8, 3, 3)).astype(np.float32))
    gy = cp.asarray(rng.standard_normal((6, 16, 14, 14)).astype(np.float32))
    first = [cp.asnumpy(a) for a in ops.conv2d_backward(gy, x, w, padding=1)]
    y_first = cp.asnumpy(ops.conv2d(x, w, padding=1))
    for _ in range(3):
        for a, b in zip(ops.conv2d_backward(gy, x, w, padding=1), first):
            np.testing.assert_array_equal(cp.asnumpy(a), b)
        np.testing.assert_array_equal(cp.asnumpy(ops.conv2d(x, w, padding=1)), y_first)


@pytest.mark.parametrize("need_x,need_w", [(False, True), (True, False), (False, False)])
def test_backward_skips_gradients_not_needed(cp, need_x, need_w):
    rng = np.random.default_rng(5)
    x = cp.asarray(rng.standard_normal((3, 4, 9, 8)).astype(np.float32))
    w = cp.asarray(rng.standard_normal((6, 2, 3, 3)).astype(np.float32))
    gy = cp.asarray(rng.standard_normal((3, 6, 5, 6)).astype(np.float32))
    kw = dict(stride=(2, 1), padding=(1, 0), groups=2)
    full = ops.conv2d_backward(gy, x, w, **kw)
    part = ops.conv2d_backward(gy, x, w, **kw, need_grad_x=need_x, need_grad_w=need_w)
    for got, want, needed in zip(part, full, (need_x, need_w, True)):
        if needed:
            np.testing.assert_array_equal(cp.asnumpy(got), cp.asnumpy(want))
        else:
            assert got is None


def test_non_contiguous_inputs(cp):
    rng = np.random.default_rng()
    x0 = rng.standard_normal((2, 3, 10, 12)).astype(np.float32)
    g0 = rng.standard_normal((2, 4, 5, 11)).astype(np.float32)
    w = np.asfortranarray(rng.standard_normal((4, 3, 3, 3)).astype(np.float32))
    x, gy = x0[:, :, ::2, 1:], g0[..., ::-1]
    xd, gyd, wd = cp.asarray(x0)[:, :, ::2, 1:], cp.asarray(g0)[..., ::-1], cp.asfortranarray(cp.asarray(w))
    assert not (xd.flags.c_contiguous or wd.flags.c_contiguous or gyd.flags.c_contiguous)
    _check("y", ops.conv2d(xd, wd, padding=1), ops.conv2d(x, w, padding=1), cp)
    for name, a, r in zip(("grad_x", "grad_w", "grad_b"), ops.conv2d_backward(gyd, xd, wd, padding=1),
                          ops.conv2d_backward(gy, x, w, padding=1)):
        _check(name, a, r, cp)


def test_padding_strings(cp):
    rng = np.random.default_rng()
    x = rng.standard_normal((1, 2, 7, 7)).astype(np.float32)
    w = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    for mode in ("same", "valid"):
        _check(mode, ops.conv2d(cp.asarray(x), cp.asarray(w), padding=mode), ops.conv2d(x, w, padding=mode), cp)


def test_zero_channels_and_empty_outputs(cp):
    """Empty tensors: shapes as on the CPU, gradients of nothing are zeros."""
    x = cp.ones((2, 4, 6, 6), cp.float32)
    w = cp.ones((0, 4, 3, 3), cp.float32)
    assert ops.conv2d(x, w).shape == (2, 0, 4, 4)
    gx, gw, gb = ops.conv2d_backward(cp.ones((2, 0, 4, 4), cp.float32), x, w)
    assert gx.shape == (2, 4, 6, 6) and not cp.asnumpy(gx).any()
    assert gw.shape == (0, 4, 3, 3) and gb.shape == (0,)
    x0 = cp.ones((0, 4, 6, 6), cp.float32)
    w1 = cp.ones((5, 4, 3, 3), cp.float32)
    gx, gw, gb = ops.conv2d_backward(cp.ones((0, 5, 4, 4), cp.float32), x0, w1)
    assert gx.shape == (0, 4, 6, 6)
    assert gw.shape == (5, 4, 3, 3) and not cp.asnumpy(gw).any()
    assert not cp.asnumpy(gb).any()


def test_stride_past_the_input_and_dilation_of_one_tap(cp):
    """A stride beyond the padded input leaves one output row/column and a
    dilation of a 1-tap axis changes nothing: any such value, however large
    (past 32 bits), gives the result of the smallest equivalent one."""
    rng = np.random.default_rng()
    x = rng.standard_normal((2, 3, 7, 6)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 1)).astype(np.float32)
    gy = rng.standard_normal((2, 4, 1, 3)).astype(np.float32)
    small = dict(stride=(7, 3), padding=1, dilation=(1, 1))
    huge = dict(stride=(2**40, 3), padding=1, dilation=(1, 2**40))
    want_y = ops.conv2d(x, w, **small)
    assert want_y.shape == (2, 4, 1, 3)
    want = ops.conv2d_backward(gy, x, w, **small)
    xd, wd, gyd = cp.asarray(x), cp.asarray(w), cp.asarray(gy)
    for kw in (small, huge):
        _check(f"y {kw}", ops.conv2d(xd, wd, **kw), want_y, cp)
        for name, a, r in zip(("grad_x", "grad_w", "grad_b"), ops.conv2d_backward(gyd, xd, wd, **kw), want):
            _check(f"{name} {kw}", a, r, cp)


@pytest.mark.parametrize("cfg", [(2, 4, 1, 1, 6, (1, 1), 1, 0, 1, 1), (3, 2, 4, 4, 5, (2, 2), 2, 0, 1, 1),
                                 (1, 6, 2, 3, 6, (1, 1), 1, 0, 1, 3)], ids=str)
def test_output_planes_not_a_multiple_of_4(cp, cfg):
    """Planes of 1 and of 4 pixels (the float4 epilogue) and groups, every tile."""
    rng = np.random.default_rng()
    x, w, b, gy, kw, y_cpu = _case(cfg, rng)
    conv = _conv()
    for tile in TILES:
        _check(f"y {tile}", conv.conv2d(cp.asarray(x), cp.asarray(w), cp.asarray(b), **kw, _tile=tile), y_cpu, cp)
        got = conv.conv2d_backward(cp.asarray(gy), cp.asarray(x), cp.asarray(w), **kw, _tile=tile)
        for name, a, r in zip(("grad_x", "grad_w", "grad_b"), got, ops.conv2d_backward(gy, x, w, **kw)):
            _check(f"{name} {tile}", a, r, cp)


@large
def test_large_reduction_against_cpu(cp):
    """grad_w over many pixels (many split-K slices) and a wide GEMM K."""
    rng = np.random.default_rng()
    cfg = (8, 64, 28, 28, 64, (3, 3), 1, 1, 1, 1)
    x, w, b, gy, kw, y_cpu = _case(cfg, rng)
    _check("y", ops.conv2d(cp.asarray(x), cp.asarray(w), cp.asarray(b), **kw), y_cpu, cp)
    got = ops.conv2d_backward(cp.asarray(gy), cp.asarray(x), cp.asarray(w), **kw)
    for name, a, r in zip(("grad_x", "grad_w", "grad_b"), got, ops.conv2d_backward(gy, x, w, **kw)):
        _check(name, a, r, cp)


def _bad_cases(cp):
    X = cp.ones((2, 4, 8, 8), cp.float32)
    W = cp.ones((6, 4, 3, 3), cp.float32)
    GY = cp.ones((2, 6, 6, 6), cp.float32)
    conv = _conv()
    return [
        (lambda: ops.conv2d(X, cp.ones((6, 3, 3, 3), cp.float32)), ValueError, ["conv2d", "'w'", "(6, 3, 3, 3)"]),
        (lambda: ops.conv2d(X, W, groups=3), ValueError, ["conv2d", "groups=3"]),
        (lambda: ops.conv2d(X, cp.ones((5, 2, 3, 3), cp.float32), groups=2), ValueError,
         ["conv2d", "output channels"]),
        (lambda: ops.conv2d(X, cp.ones((6, 4, 9, 9), cp.float32)), ValueError,
         ["conv2d", "larger than the padded input"]),
        (lambda: ops.conv2d(X, W, stride=0), ValueError, ["conv2d", "'stride'"]),
        (lambda: ops.conv2d(X, W, padding=-1), ValueError, ["conv2d", "'padding'"]),
        (lambda: ops.conv2d(X, W, dilation=(1, 0)), ValueError, ["conv2d", "'dilation'"]),
        (lambda: ops.conv2d(X, W, stride=1.5), TypeError, ["conv2d", "'stride'"]),
        (lambda: ops.conv2d(X, W, stride=(1, 2, 3)), ValueError, ["conv2d", "'stride'"]),
        (lambda: ops.conv2d(X, W, groups=0), ValueError, ["conv2d", "'groups'"]),
        (lambda: ops.conv2d(X, W, groups=True), TypeError, ["conv2d", "'groups'"]),
        (lambda: ops.conv2d(X[0], W), ValueError, ["conv2d", "'x'", "4-D"]),
        (lambda: ops.conv2d(X, W[0]), ValueError, ["conv2d", "'w'", "4-D"]),
        (lambda: ops.conv2d(X.astype(cp.int64), W), TypeError, ["conv2d", "'x'", "int64"]),
        (lambda: ops.conv2d(X, W.astype(cp.float64)), TypeError, ["conv2d", "same dtype"]),
        (lambda: ops.conv2d(X.astype(cp.float64), W.astype(cp.float64)), TypeError, ["conv2d", "'x'", "float64"]),
        (lambda: ops.conv2d(X.astype(cp.float16), W.astype(cp.float16)), TypeError, ["conv2d", "'x'", "float16"]),
        (lambda: ops.conv2d(X, W, bias=cp.ones(5, cp.float32)), ValueError, ["conv2d", "'bias'", "(6,)"]),
        (lambda: ops.conv2d(X, W, bias=cp.ones(6, cp.float64)), TypeError, ["conv2d", "'bias'", "float64"]),
        (lambda: ops.conv2d(X, W, padding="full"), ValueError, ["conv2d", "'padding'", "full"]),
        (lambda: ops.conv2d(X, W, padding="same", stride=2), ValueError, ["conv2d", "same"]),
        (lambda: ops.conv2d(X, np.ones((6, 4, 3, 3), np.float32)), ValueError, ["conv2d", "one device"]),
        (lambda: ops.conv2d_backward(cp.ones((2, 6, 5, 5), cp.float32), X, W), ValueError,
         ["conv2d_backward", "'grad_y'", "(2, 6, 6, 6)"]),
        (lambda: ops.conv2d_backward(GY.astype(cp.float64), X, W), TypeError, ["conv2d_backward", "'grad_y'"]),
        (lambda: ops.conv2d_backward(np.ones((2, 6, 6, 6), np.float32), X, W), ValueError,
         ["conv2d_backward", "one device"]),
        (lambda: conv.conv2d(X, W, _algo="direct"), ValueError, ["conv2d", "direct", "depthwise"]),
        (lambda: conv.conv2d(X, W, _tile="96x96"), ValueError, ["conv2d", "tile"]),
    ]


def test_bad_input(cp):
    for call, exc, words in _bad_cases(cp):
        assert_raises_naming(call, exc, words)


def test_cuda_without_gpu_raises_clearly():
    if pyfastnn.backend_info()["cuda_available"]:
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match="conv2d_backward: CUDA is not available"):
        pyfastnn._backend.require_cuda("conv2d_backward")
