"""The CUDA kernels of the memory-bound ops (activations, dropout, softmax,
layer_norm, cross_entropy, optimizer steps, pooling, LSTM) against the CPU
kernels on the same random inputs, plus the CUDA kernels against each other
(vectorised vs reference, warp vs block per row). Everything skips without a GPU.

Tolerances are norm-wise relative errors (conftest.rel_error) unless the
kernels are built to match bit for bit (dropout masks, pooling, optimizer
steps, the activation fast path vs its reference).

PYFASTNN_SANITIZER_RUN=1 (set by bench/gpu_check.sh under compute-sanitizer)
skips the large cases.
"""
import math
import os

import numpy as np
import pytest

import pyfastnn
from pyfastnn import ops
from conftest import assert_raises_naming, cupy_or_skip as _cupy_or_skip, rel_error


SANITIZER = os.environ.get("PYFASTNN_SANITIZER_RUN") == "1"
large = pytest.mark.skipif(SANITIZER, reason="large case: skipped under compute-sanitizer")


def _mark_large(cases, shape_of=lambda c: c, unpack=False, limit=200_000):
    """The cases of more than `limit` elements, marked large."""
    out = []
    for c in cases:
        if int(np.prod(shape_of(c))) <= limit:
            out.append(c)
        else:
            out.append(pytest.param(*c, marks=large) if unpack else pytest.param(c, marks=large))
    return out




def _nn():
    from pyfastnn.cuda_ops import nn

    return nn


def _host(a):
    import cupy

    return cupy.asnumpy(a)


def _f32(rng, *shape, scale=1.0):
    return np.asarray(scale * rng.standard_normal(shape), np.float32)  # 0-d stays an array


def _assert_same_specials(got, ref, rtol=1e-5, atol=1e-6):
    """NaN and +-inf exactly where ref has them, the finite values close."""
    got, ref = np.asarray(got, np.float64), np.asarray(ref, np.float64)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref), err_msg="NaN positions differ")
    np.testing.assert_array_equal(np.isposinf(got), np.isposinf(ref), err_msg="+inf positions differ")
    np.testing.assert_array_equal(np.isneginf(got), np.isneginf(ref), err_msg="-inf positions differ")
    np.testing.assert_allclose(got, ref, rtol=rtol, atol=atol, equal_nan=True)


SPECIALS = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 3.5, -3.5, 50.0, -50.0, -200.0], np.float32)

# ---------------------------------------------------------------- activations
ACTS = {"relu": "x", "gelu": "x", "sigmoid": "y", "tanh": "y", "gelu_tanh": "x", "silu": "x"}
# empty, one element, shorter than a pack, a pack plus a tail, a prime, rows
# of a long prime, and one large enough for several grid-stride rounds
ELEMENTWISE_SHAPES = [(0,), (1,), (3,), (17,), (1031,), (3, 257), (2, 10007), (1000003,)]


@pytest.mark.parametrize("name", list(ACTS))
@pytest.mark.parametrize("shape", _mark_large(ELEMENTWISE_SHAPES))
def test_activation_matches_cpu(cp, name, shape):
    rng = np.random.default_rng()
    x = _f32(rng, *shape, scale=3.0)
    g = _f32(rng, *shape)
    y = getattr(ops, name)(cp.asarray(x))
    assert isinstance(y, cp.ndarray) and y.dtype == np.float32 and y.shape == x.shape
    y_cpu = getattr(ops, name)(x)
    assert rel_error(_host(y), y_cpu) < 1e-6
    saved = x if ACTS[name] == "x" else y_cpu
    gx = getattr(ops, name + "_backward")(cp.asarray(g), cp.asarray(saved))
    assert rel_error(_host(gx), getattr(ops, name + "_backward")(g, saved)) < 1e-5


@pytest.mark.parametrize("name", list(ACTS))
def test_activation_fast_path_equals_reference_kernel(cp, name):
    """The pack loop, the scalar tail and unaligned views (offset 1 element)
    compute exactly what the one-thread-per-element reference does."""
    rng = np.random.default_rng()
    nn = _nn()
    base = cp.asarray(np.concatenate([_f32(rng, 100003, scale=3.0), SPECIALS]))
    g = cp.asarray(_f32(rng, base.size))
    for x, gy in ((base, g), (base[1:], g[1:])):
        fwd, bwd = getattr(nn, name), getattr(nn, name + "_backward")
        np.testing.assert_array_equal(_host(fwd(x)), _host(fwd(x, _reference=True)))
        np.testing.assert_array_equal(_host(bwd(gy, x)), _host(bwd(gy, x, _reference=True)))


@pytest.mark.parametrize("name", list(ACTS))
def test_activation_nan_inf_like_cpu(cp, name):
    x = np.resize(SPECIALS, 101)
    got = _host(getattr(ops, name)(cp.asarray(x)))
    _assert_same_specials(got, getattr(ops, name)(x))
    g = np.resize(SPECIALS[::-1], 101)
    saved = x if ACTS[name] == "x" else got
    with np.errstate(all="ignore"):
        ref = getattr(ops, name + "_backward")(g, saved)
    _assert_same_specials(_host(getattr(ops, name + "_backward")(cp.asarray(g), cp.asarray(saved))), ref)


def test_sigmoid_saturates_to_exact_zero(cp):
    x = cp.asarray(np.array([-np.inf, -200.0, -120.0] * 12, np.float32))
    assert (_host(ops.sigmoid(x)) == 0).all()


@pytest.mark.parametrize("name", list(ACTS))
def test_activation_float16(cp, name):
    rng = np.random.default_rng()
    x16 = _f32(rng, 4099, scale=3.0).astype(np.float16)
    y = getattr(ops, name)(cp.asarray(x16))
    assert y.dtype == np.float16
    ref = getattr(ops, name)(x16.astype(np.float32))
    assert rel_error(_host(y), ref) < 2e-3      # one float16 rounding of a float32 result
    g16 = _f32(rng, 4099).astype(np.float16)
    saved = x16 if ACTS[name] == "x" else _host(y)
    gx = getattr(ops, name + "_backward")(cp.asarray(g16), cp.asarray(saved))
    assert gx.dtype == np.float16
    ref = getattr(ops, name + "_backward")(g16.astype(np.float32), saved.astype(np.float32))
    assert rel_error(_host(gx), ref) < 2e-3


def test_activation_strided_input(cp):
    x = cp.asarray(np.random.default_rng().standard_normal((8, 10)).astype(np.float32))[::2, ::3]
    np.testing.assert_allclose(_host(ops.tanh(x)), np.tanh(_host(x)), rtol=1e-6, atol=1e-7)


# -------------------------------------------------------------------- dropout
@pytest.mark.parametrize("shape", _mark_large([(0,), (1,), (13,), (1000, 1000), (300007,)]))
@pytest.mark.parametrize("p", [0.3, 0.5, 0.9])
def test_dropout_mask_is_the_cpu_mask(cp, shape, p):
    """Same seed, same (seed, index) hash: bit-identical masks and outputs."""
    rng = np.random.default_rng()
    x = _f32(rng, *shape)
    y, mask = ops.dropout(cp.asarray(x), p, seed=1234)
    y_cpu, mask_cpu = ops.dropout(x, p, seed=1234)
    assert mask.dtype == np.uint8 and mask.shape == x.shape
    np.testing.assert_array_equal(_host(mask), mask_cpu)
    np.testing.assert_array_equal(_host(y), y_cpu)
    g = _f32(rng, *shape)
    gx = ops.dropout_backward(cp.asarray(g), mask, p)
    np.testing.assert_array_equal(_host(gx), ops.dropout_backward(g, mask_cpu, p))
    if x.size >= 10**6:
        assert abs(_host(mask).mean() - (1 - p)) < 0.005


def test_dropout_unaligned_bool_mask_and_float16(cp):
    rng = np.random.default_rng()
    x = _f32(rng, 100001)
    xd = cp.asarray(x)[1:]                      # 4-byte offset: the scalar path
    y, mask = ops.dropout(xd, 0.4, seed=99)
    y_cpu, mask_cpu = ops.dropout(x[1:], 0.4, seed=99)
    np.testing.assert_array_equal(_host(mask), mask_cpu)
    np.testing.assert_array_equal(_host(y), y_cpu)
    g = cp.asarray(_f32(rng, 100000))
    np.testing.assert_array_equal(_host(ops.dropout_backward(g, mask.astype(bool), 0.4)),
                                  _host(ops.dropout_backward(g, mask, 0.4)))
    y16, mask16 = ops.dropout(cp.asarray(x.astype(np.float16)), 0.4, seed=99)
    assert y16.dtype == np.float16
    np.testing.assert_array_equal(_host(mask16), ops.dropout(x, 0.4, seed=99)[1])
    np.testing.assert_allclose(_host(y16).astype(np.float32), ops.dropout(x, 0.4, seed=99)[0], rtol=1e-3, atol=1e-3)


@large
def test_dropout_edges_and_seeding(cp):
    x = cp.arange(10, dtype=cp.float32)
    assert (_host(ops.dropout(x, 1.0, seed=1)[0]) == 0).all()
    y, mask = ops.dropout(x, 0.0)
    assert y is x and (_host(mask) == 1).all()
    assert ops.dropout(x, 0.9, training=False)[0] is x
    big = cp.ones(300007, cp.float32)
    pyfastnn.manual_seed(5)
    a = _host(ops.dropout(big, 0.5)[1])
    pyfastnn.manual_seed(5)
    np.testing.assert_array_equal(_host(ops.dropout(big, 0.5)[1]), a)
    assert not np.array_equal(_host(ops.dropout(big, 0.5, seed=8)[1]), _host(ops.dropout(big, 0.5, seed=7)[1]))


# -------------------------------------------------------------------- softmax
# (shape, axis): the warp path at every lane count (1..32 elements per lane),
# the block path with the row cached in shared memory (n <= 12288; 6144 for
# the backward pass) and without (20011).
SOFTMAX_CASES = [((1,), -1), ((5, 1), -1), ((3, 17), -1), ((4, 129), 0), ((2, 3, 65), 1), ((0, 7), -1),
                 ((6, 1000), -1), ((7, 1024), -1), ((3, 1025), -1), ((5, 4096), -1), ((3, 7001), -1),
                 ((3, 10007), -1), ((2, 20011), -1), ((1000, 33), -1)]
IMPLS = [0, 1, 2, 3]   # automatic, warp per row, block per row, one thread per row


@pytest.mark.parametrize("shape,axis", _mark_large(SOFTMAX_CASES, lambda c: c[0], True))
@pytest.mark.parametrize("log", [False, True])
@pytest.mark.parametrize("impl", IMPLS)
def test_softmax_matches_cpu(cp, shape, axis, log, impl):
    rng = np.random.default_rng()
    nn = _nn()
    x = _f32(rng, *shape, scale=4.0)
    fwd = nn.log_softmax if log else nn.softmax
    bwd = nn.log_softmax_backward if log else nn.softmax_backward
    y = fwd(cp.asarray(x), axis, _impl=impl)
    y_cpu = (ops.log_softmax if log else ops.softmax)(x, axis)
    assert y.shape == x.shape and y.dtype == np.float32
    assert rel_error(_host(y), y_cpu) < 1e-5
    g = _f32(rng, *shape)
    gx = bwd(cp.asarray(g), cp.asarray(y_cpu), axis, _impl=impl)
    ref = (ops.log_softmax_backward if log else ops.softmax_backward)(g, y_cpu, axis)
    assert rel_error(_host(gx), ref, 1e-2) < 1e-4


def _special_rows(cols):
    rows = np.random.default_rng(3).standard_normal((7, cols)).astype(np.float32)
    rows[0, cols // 3] = np.nan              # NaN anywhere: the whole row is NaN
    rows[1, cols - 1] = np.inf               # +inf: NaN row
    rows[2, 1] = -np.inf                     # -inf: probability 0 (log: -inf)
    rows[3, :] = -np.inf                     # all -inf: NaN row
    rows[4, ::2] = np.inf
    rows[5, 0] = np.nan
    rows[5, 2] = -np.inf
    return rows


@pytest.mark.parametrize("cols", [5, 40, 1000, 3000])
@pytest.mark.parametrize("log", [False, True])
@pytest.mark.parametrize("impl", IMPLS)
def test_softmax_nan_inf_like_cpu(cp, cols, log, impl):
    rows = _special_rows(cols)
    nn = _nn()
    got = _host((nn.log_softmax if log else nn.softmax)(cp.asarray(rows), _impl=impl))
    ref = (ops.log_softmax if log else ops.softmax)(rows)
    _assert_same_specials(got, ref)
    assert np.isnan(got[[0, 1, 3, 4, 5]]).all()
    if not log:
        assert got[2, 1] == 0.0


def test_softmax_float16(cp):
    rng = np.random.default_rng()
    for shape in ((9, 300), (4, 5000)):
        x16 = _f32(rng, *shape, scale=3.0).astype(np.float16)
        for log in (False, True):
            y = (ops.log_softmax if log else ops.softmax)(cp.asarray(x16))
            assert y.dtype == np.float16
            y_cpu = (ops.log_softmax if log else ops.softmax)(x16.astype(np.float32))
            assert rel_error(_host(y), y_cpu) < 2e-3
            g16 = _f32(rng, *shape).astype(np.float16)
            y16 = y_cpu.astype(np.float16)
            gx = (ops.log_softmax_backward if log else ops.softmax_backward)(cp.asarray(g16), cp.asarray(y16))
            ref = (ops.log_softmax_backward if log else ops.softmax_backward)(g16.astype(np.float32),
                                                                                y16.astype(np.float32))
            assert rel_error(_host(gx), ref, 1e-2) < 5e-3


def test_softmax_extreme_values_stay_finite(cp):
    x = cp.asarray(np.array([[1000.0, 0.0, -1000.0], [-1e30, -1e30, -1e30]], np.float32))
    y = _host(ops.softmax(x))
    assert np.isfinite(y).all()
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-6)


# ----------------------------------------------------------------- layer norm
# (shape, normalized_shape): warp path sizes, block path cached (n <= 12288,
# backward <= 6144) and uncached (13001), a leading dim of 1, empty rows.
LN_CASES = [((4, 7), (7,)), ((2, 3, 33), (33,)), ((3, 4, 5), (4, 5)), ((1, 1), (1,)), ((5, 1000), (1000,)),
            ((0, 8), (8,)), ((3, 1024), (1024,)), ((2, 1025), (1025,)), ((8192, 64), (64,)), ((3, 10007), (10007,)),
            ((2, 13001), (13001,)), ((2, 1, 6), (1, 6)), ((1000, 3), (3,))]


@pytest.mark.parametrize("shape,norm", _mark_large(LN_CASES, lambda c: c[0], True))
@pytest.mark.parametrize("affine", [False, True])
@pytest.mark.parametrize("impl", IMPLS)
def test_layer_norm_matches_cpu(cp, shape, norm, affine, impl):
    rng = np.random.default_rng()
    nn = _nn()
    x = (2 + 3 * rng.standard_normal(shape)).astype(np.float32)
    w = _f32(rng, *norm) if affine else None
    b = _f32(rng, *norm) if affine else None
    dev = (lambda a: None if a is None else cp.asarray(a))
    y, mean, rstd = nn.layer_norm(dev(x), norm, dev(w), dev(b), 1e-5, _impl=impl)
    y_cpu, mean_cpu, rstd_cpu = ops.layer_norm(x, norm, w, b, 1e-5)
    assert y.shape == x.shape and mean.shape == mean_cpu.shape and rstd.shape == rstd_cpu.shape
    assert rel_error(_host(y), y_cpu) < 1e-5
    assert rel_error(_host(mean), mean_cpu) < 1e-5 and rel_error(_host(rstd), rstd_cpu) < 1e-5
    g = _f32(rng, *shape)
    gx, gw, gb = nn.layer_norm_backward(dev(g), dev(x), dev(mean_cpu), dev(rstd_cpu), norm, dev(w), _impl=impl)
    gx_cpu, gw_cpu, gb_cpu = ops.layer_norm_backward(g, x, mean_cpu, rstd_cpu, norm, w)
    assert gw.shape == gw_cpu.shape and gb.shape == gb_cpu.shape
    assert rel_error(_host(gx), gx_cpu, 1e-2) < 1e-4
    assert rel_error(_host(gw), gw_cpu, 1e-2) < 1e-4
    assert rel_error(_host(gb), gb_cpu, 1e-2) < 1e-4


@large
def test_layer_norm_parameter_gradients_are_deterministic(cp):
    rng = np.random.default_rng()
    x, g = cp.asarray(_f32(rng, 5000, 300)), cp.asarray(_f32(rng, 5000, 300))
    w = cp.asarray(_f32(rng, 300))
    _, mean, rstd = ops.layer_norm(x, 300, w)
    first = [_host(a) for a in ops.layer_norm_backward(g, x, mean, rstd, 300, w)]
    for _ in range(3):
        again = [_host(a) for a in ops.layer_norm_backward(g, x, mean, rstd, 300, w)]
        for a, b in zip(first, again):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("cols", [5, 40, 3000])
def test_layer_norm_nan_inf_like_cpu(cp, cols):
    rows = _special_rows(cols)
    rows[6, 0] = 1e15
    y, mean, _ = ops.layer_norm(cp.asarray(rows), cols)
    y_cpu, mean_cpu, _ = ops.layer_norm(rows, cols)
    _assert_same_specials(_host(y), y_cpu, rtol=1e-4, atol=1e-4)
    assert np.isnan(_host(y)[:6]).all() and np.isfinite(_host(y)[6]).all()
    np.testing.assert_array_equal(np.isfinite(_host(mean)), np.isfinite(mean_cpu))


# -------------------------------------------------------------- cross entropy
CE_CASES = [(1, 1), (1, 5), (7, 3), (33, 10), (64, 1000), (5, 1025), (3, 10007), (0, 4), (4099, 17)]


@pytest.mark.parametrize("n,c", _mark_large(CE_CASES, unpack=True))
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("impl", IMPLS)
def test_cross_entropy_matches_cpu(cp, n, c, smoothing, impl):
    rng = np.random.default_rng()
    nn = _nn()
    logits = _f32(rng, n, c, scale=3.0)
    target = rng.integers(0, c, n)
    if n > 3:
        target[::3] = -100                                   # ignored rows
    lt, tt = cp.asarray(logits), cp.asarray(target)
    loss = nn.cross_entropy(lt, tt, label_smoothing=smoothing, _impl=impl)
    loss_cpu = ops.cross_entropy(logits, target, label_smoothing=smoothing)
    assert isinstance(loss, float)
    if math.isnan(loss_cpu):
        assert math.isnan(loss)
    else:
        assert abs(loss - loss_cpu) <= 1e-5 * max(1.0, abs(loss_cpu))
    grad = nn.cross_entropy_backward(lt, tt, 0.7, label_smoothing=smoothing, _impl=impl)
    grad_cpu = ops.cross_entropy_backward(logits, target, 0.7, label_smoothing=smoothing)
    assert grad.shape == grad_cpu.shape and grad.dtype == np.float32
    assert rel_error(_host(grad), grad_cpu, 1e-2) < 1e-4


@large
def test_cross_entropy_is_deterministic_and_takes_other_int_dtypes(cp):
    rng = np.random.default_rng()
    logits = cp.asarray(_f32(rng, 20000, 37, scale=3.0))
    target = rng.integers(0, 37, 20000)
    losses = {ops.cross_entropy(logits, cp.asarray(target)) for _ in range(4)}
    assert len(losses) == 1
    assert ops.cross_entropy(logits, cp.asarray(target.astype(np.int32))) == losses.pop()


def test_cross_entropy_nan_and_ignored_rows(cp):
    rng = np.random.default_rng(8)
    logits = _f32(rng, 6, 10)
    target = np.arange(6) % 10
    bad = logits.copy()
    bad[3, 4] = np.nan
    assert math.isnan(ops.cross_entropy(cp.asarray(bad), cp.asarray(target)))
    g = _host(ops.cross_entropy_backward(cp.asarray(bad), cp.asarray(target)))
    assert np.isnan(g[3]).all() and np.isfinite(np.delete(g, 3, axis=0)).all()
    ignored = target.copy()
    ignored[3] = -100                                        # a NaN row that is ignored does not count
    assert math.isclose(ops.cross_entropy(cp.asarray(bad), cp.asarray(ignored)),
                        ops.cross_entropy(bad, ignored), rel_tol=1e-5)
    everything_ignored = np.full(6, -100)
    assert math.isnan(ops.cross_entropy(cp.asarray(logits), cp.asarray(everything_ignored)))
    assert (_host(ops.cross_entropy_backward(cp.asarray(logits), cp.asarray(everything_ignored))) == 0).all()


def test_cross_entropy_ignore_index_inside_the_classes_and_small_int_targets(cp):
    """An ignore_index that is also a class skips exactly those rows; uint8
    targets are widened like the CPU's int64 copy."""
    rng = np.random.default_rng(11)
    logits = _f32(rng, 50, 7, scale=2.0)
    target = rng.integers(0, 7, 50).astype(np.uint8)
    for smoothing in (0.0, 0.2):
        loss = ops.cross_entropy(cp.asarray(logits), cp.asarray(target), ignore_index=2, label_smoothing=smoothing)
        ref = ops.cross_entropy(logits, target, ignore_index=2, label_smoothing=smoothing)
        assert abs(loss - ref) <= 1e-5 * max(1.0, abs(ref))
        grad = _host(ops.cross_entropy_backward(cp.asarray(logits), cp.asarray(target), 1.5, ignore_index=2,
                                                label_smoothing=smoothing))
        assert (grad[target == 2] == 0).all()
        ref = ops.cross_entropy_backward(logits, target, 1.5, ignore_index=2, label_smoothing=smoothing)
        assert rel_error(grad, ref, 1e-2) < 1e-4


@large
def test_rowwise_ops_with_more_rows_than_one_grid_covers(cp):
    """70001 short rows: the warp-per-row grid (capped at a few SM-fills) loops
    over rows several times, the block path takes one block per row, and the
    column sums use 127 row chunks of 552 rows."""
    rng = np.random.default_rng(12)
    nn = _nn()
    rows, n = 70001, 5
    x = _f32(rng, rows, n, scale=3.0)
    g = _f32(rng, rows, n)
    target = rng.integers(0, n, rows)
    target[::5] = -100
    xd, gd, td = cp.asarray(x), cp.asarray(g), cp.asarray(target)
    for impl in (0, 2):
        for log in (False, True):
            y = (nn.log_softmax if log else nn.softmax)(xd, _impl=impl)
            y_cpu = (ops.log_softmax if log else ops.softmax)(x)
            assert rel_error(_host(y), y_cpu) < 1e-5
            gx = (nn.log_softmax_backward if log else nn.softmax_backward)(gd, cp.asarray(y_cpu), _impl=impl)
            ref = (ops.log_softmax_backward if log else ops.softmax_backward)(g, y_cpu)
            assert rel_error(_host(gx), ref, 1e-2) < 1e-4
        y, mean, rstd = nn.layer_norm(xd, n, _impl=impl)
        y_cpu, mean_cpu, rstd_cpu = ops.layer_norm(x, n)
        assert rel_error(_host(y), y_cpu) < 1e-5 and rel_error(_host(rstd), rstd_cpu) < 1e-5
        grads = nn.layer_norm_backward(gd, xd, mean, rstd, n, _impl=impl)
        for a, r in zip(grads, ops.layer_norm_backward(g, x, mean_cpu, rstd_cpu, n)):
            assert rel_error(_host(a), r, 1e-2) < 1e-4
        loss = nn.cross_entropy(xd, td, _impl=impl)
        loss_cpu = ops.cross_entropy(x, target)
        assert abs(loss - loss_cpu) <= 1e-5 * max(1.0, abs(loss_cpu))
        grad = nn.cross_entropy_backward(xd, td, _impl=impl)
        assert rel_error(_host(grad), ops.cross_entropy_backward(x, target), 1e-2) < 1e-4


@large
def test_elementwise_kernels_over_several_grid_stride_rounds(cp):
    """4.5M elements: more 16-byte packs than one capped grid has threads, so
    the pack loop of every elementwise kernel runs several rounds; the masks,
    outputs and optimizer states must still be the CPU's bit for bit."""
    rng = np.random.default_rng(13)
    nn = _nn()
    size = 4_500_007
    x = _f32(rng, size, scale=3.0)
    xd = cp.asarray(x)
    for name in ACTS:
        np.testing.assert_array_equal(_host(getattr(nn, name)(xd)), _host(getattr(nn, name)(xd, _reference=True)))
    y, mask = ops.dropout(xd, 0.25, seed=2**64 - 3)
    y_cpu, mask_cpu = ops.dropout(x, 0.25, seed=2**64 - 3)
    np.testing.assert_array_equal(_host(mask), mask_cpu)
    np.testing.assert_array_equal(_host(y), y_cpu)
    p, g = _f32(rng, size), _f32(rng, size)
    m, v = np.zeros(size, np.float32), np.zeros(size, np.float32)
    pd, gd, md, vd = (cp.asarray(a) for a in (p, g, m, v))
    for step in (1, 2):
        ops.adam_step(p, g, m, v, step=step, lr=1e-2, weight_decay=0.01, decoupled_weight_decay=True)
        ops.adam_step(pd, gd, md, vd, step=step, lr=1e-2, weight_decay=0.01, decoupled_weight_decay=True)
    for a, r in ((pd, p), (md, m), (vd, v)):
        np.testing.assert_array_equal(_host(a), r)


# ------------------------------------------------------------ optimizer steps
OPTIM_SHAPES = [(0,), (1,), (7,), (17,), (1000003,), (), (3, 5), (16, 33), (0, 4)]
OPTIM_CONFIGS = [
    ("sgd", dict(lr=0.1)), ("sgd", dict(lr=0.1, weight_decay=0.01)), ("sgd", dict(lr=0.05, momentum=0.9)),
    ("sgd", dict(lr=0.05, momentum=0.9, dampening=0.3)), ("sgd", dict(lr=0.05, momentum=0.9, nesterov=True)),
    ("sgd", dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.01)),
    ("adam", dict()), ("adam", dict(lr=1e-2, beta1=0.8, beta2=0.99, weight_decay=0.1)),
    ("adam", dict(lr=1e-2, amsgrad=True)), ("adam", dict(lr=1e-2, amsgrad=True, weight_decay=0.05, eps=1e-6)),
    ("adam", dict(lr=1e-2, weight_decay=0.05, decoupled_weight_decay=True)),
    ("adam", dict(lr=1e-2, weight_decay=0.1, decoupled_weight_decay=True, amsgrad=True)),
    ("adam", dict(lr=1e-2, beta1=0.3, beta2=0.9)),
    ("rmsprop", dict()), ("rmsprop", dict(lr=1e-3, weight_decay=0.01)), ("rmsprop", dict(lr=1e-3, centered=True)),
    ("rmsprop", dict(lr=1e-3, momentum=0.9)),
    ("rmsprop", dict(lr=1e-3, alpha=0.9, centered=True, momentum=0.5, weight_decay=0.02)),
    ("rmsprop", dict(lr=1e-3, alpha=0.3, centered=True, eps=1e-6)),
]


def _state_names(kind, cfg):
    if kind == "sgd":
        return ["momentum_buf"] if cfg.get("momentum", 0) else []
    if kind == "adam":
        return ["exp_avg", "exp_avg_sq"] + (["max_exp_avg_sq"] if cfg.get("amsgrad") else [])
    return (["square_avg"] + (["grad_avg"] if cfg.get("centered") else [])
            + (["momentum_buf"] if cfg.get("momentum", 0) else []))


def _step(kind, cfg, p, g, st, step_no):
    if kind == "sgd":
        ops.sgd_step(p, g, st.get("momentum_buf"), first_step=step_no == 1, **cfg)
    elif kind == "adam":
        ops.adam_step(p, g, st["exp_avg"], st["exp_avg_sq"], step=step_no, max_exp_avg_sq=st.get("max_exp_avg_sq"),
                      **cfg)
    else:
        ops.rmsprop_step(p, g, st["square_avg"], momentum_buf=st.get("momentum_buf"), grad_avg=st.get("grad_avg"),
                         **cfg)


def _run_both(cp, kind, cfg, shape, offset=0, steps=10):
    """`steps` steps on the CPU and the GPU from the same start; yields after each step."""
    rng = np.random.default_rng()
    names = _state_names(kind, cfg)
    size = int(np.prod(shape))

    def device_array(a):
        # `offset` > 0: a view 4 bytes into a larger buffer (the kernels' scalar path)
        buf = cp.empty(size + offset, cp.float32)
        view = buf[offset:].reshape(shape)
        view[...] = cp.asarray(a)
        return view

    p = _f32(rng, *shape)
    st = {n: np.zeros(shape, np.float32) for n in names}
    pd = device_array(p)
    std = {n: device_array(st[n]) for n in names}
    for step_no in range(1, steps + 1):
        g = _f32(rng, *shape)
        _step(kind, cfg, p, g, st, step_no)
        _step(kind, cfg, pd, device_array(g), std, step_no)
        yield p, st, pd, std


@pytest.mark.parametrize("kind,cfg", OPTIM_CONFIGS, ids=[f"{k}-{c}" for k, c in OPTIM_CONFIGS])
@pytest.mark.parametrize("shape", _mark_large(OPTIM_SHAPES))
def test_optimizer_steps_match_cpu(cp, kind, cfg, shape):
    for p, st, pd, std in _run_both(cp, kind, cfg, shape):
        assert rel_error(_host(pd), p) < 1e-6
    for n in st:
        assert rel_error(_host(std[n]), st[n]) < 1e-5


@pytest.mark.parametrize("kind,cfg", OPTIM_CONFIGS, ids=[f"{k}-{c}" for k, c in OPTIM_CONFIGS])
@pytest.mark.parametrize("offset", [0, 1])
def test_optimizer_steps_bit_identical_to_cpu(cp, kind, cfg, offset):
    """The CUDA steps repeat the CPU SIMD kernels' operations with the _rn
    intrinsics (no contraction): every array equal bit for bit after 10 steps,
    on aligned (float4) and unaligned (scalar) arrays."""
    for p, st, pd, std in _run_both(cp, kind, cfg, (100003,), offset=offset):
        pass
    np.testing.assert_array_equal(_host(pd), p)
    for n in st:
        np.testing.assert_array_equal(_host(std[n]), st[n])


def test_optimizer_step_refuses_views_and_shared_memory(cp):
    p = cp.zeros((4, 4), cp.float32)
    assert_raises_naming(lambda: ops.sgd_step(p[:, ::2], cp.zeros((4, 2), cp.float32), lr=0.1), ValueError,
                         ["sgd_step", "'param'", "C-contiguous"])
    assert_raises_naming(lambda: ops.adam_step(p, p, p.copy(), p.copy(), step=1), ValueError,
                         ["adam_step", "'param'", "'grad'", "share memory"])
    assert_raises_naming(lambda: ops.sgd_step(p.astype(cp.float64), p.astype(cp.float64), lr=0.1), TypeError,
                         ["sgd_step", "'param'", "float64"])
    assert_raises_naming(lambda: ops.adam_step(p, p.copy(), p.copy(), p.copy(), step=0), ValueError,
                         ["adam_step", "'step'"])
    assert_raises_naming(lambda: ops.rmsprop_step(p, p.copy(), p.copy(), centered=True), ValueError,
                         ["rmsprop_step", "'grad_avg'"])


# -------------------------------------------------------------------- pooling
POOL_CONFIGS = [
    ((2, 3, 8, 8), 2, None, 0), ((2, 3, 7, 9), 2, 2, 0), ((1, 2, 33, 35), 2, 2, 0), ((3, 5, 9, 7), 3, 2, 1),
    ((2, 2, 12, 12), 3, 1, 1), ((2, 2, 10, 11), (3, 2), (2, 1), (1, 0)), ((1, 1, 1, 1), 1, 1, 0),
    ((2, 3, 5, 5), 5, 1, 2), ((2, 3, 6, 6), 2, 3, 1), ((4, 6, 6), 2, 2, 0), ((0, 3, 6, 6), 2, 2, 0),
    ((2, 4, 40, 40), 4, 4, 2), ((1, 2, 20, 37), (2, 3), 2, (0, 1)), ((8, 16, 56, 56), 2, 2, 0),
]


@pytest.mark.parametrize("cfg", _mark_large(POOL_CONFIGS, lambda c: c[0]), ids=[str(c) for c in POOL_CONFIGS])
def test_max_pool_matches_cpu(cp, cfg):
    shape, k, s, p = cfg
    rng = np.random.default_rng()
    x = _f32(rng, *shape)
    y, idx = ops.max_pool2d(cp.asarray(x), k, s, p)
    y_cpu, idx_cpu = ops.max_pool2d(x, k, s, p)
    assert idx.dtype == np.int64 and y.dtype == np.float32
    np.testing.assert_array_equal(_host(y), y_cpu)
    np.testing.assert_array_equal(_host(idx), idx_cpu)
    gy = _f32(rng, *y_cpu.shape)
    gx_cpu = ops.max_pool2d_backward(gy, idx_cpu, x.shape)
    gx = ops.max_pool2d_backward(cp.asarray(gy), idx, x.shape)      # atomics
    assert gx.shape == x.shape and rel_error(_host(gx), gx_cpu) < 1e-6
    before = pyfastnn.is_deterministic()
    pyfastnn.use_deterministic(True)
    try:
        gx = ops.max_pool2d_backward(cp.asarray(gy), idx, list(x.shape))
    finally:
        pyfastnn.use_deterministic(before)
    np.testing.assert_array_equal(_host(gx), gx_cpu)               # the CPU's order of additions


@pytest.mark.parametrize("cfg", _mark_large(POOL_CONFIGS, lambda c: c[0]), ids=[str(c) for c in POOL_CONFIGS])
def test_avg_pool_matches_cpu(cp, cfg):
    shape, k, s, p = cfg
    rng = np.random.default_rng()
    x = _f32(rng, *shape)
    y = ops.avg_pool2d(cp.asarray(x), k, s, p)
    y_cpu = ops.avg_pool2d(x, k, s, p)
    np.testing.assert_array_equal(_host(y), y_cpu)                  # same additions in the same order
    gy = _f32(rng, *y_cpu.shape)
    gx = ops.avg_pool2d_backward(cp.asarray(gy), x.shape, k, s, p)
    gx_cpu = ops.avg_pool2d_backward(gy, x.shape, k, s, p)
    assert gx.shape == x.shape
    np.testing.assert_array_equal(_host(gx), gx_cpu)


@pytest.mark.parametrize("k,s,p", [(2, 2, 0), (3, 2, 1), (3, 1, 1), (4, 4, 0)])
def test_pooling_nan_inf_like_cpu(cp, k, s, p):
    rng = np.random.default_rng(6)
    x = _f32(rng, 2, 3, 12, 12)
    x[rng.random(x.shape) < 0.04] = np.nan
    x[rng.random(x.shape) < 0.04] = np.inf
    x[rng.random(x.shape) < 0.04] = -np.inf
    x[1, 2, :4, :4] = -np.inf
    x[0, 0, 8:, 8:] = np.nan
    y, idx = ops.max_pool2d(cp.asarray(x), k, s, p)
    y_cpu, idx_cpu = ops.max_pool2d(x, k, s, p)
    np.testing.assert_array_equal(_host(y), y_cpu)
    np.testing.assert_array_equal(_host(idx), idx_cpu)
    with np.errstate(all="ignore"):
        _assert_same_specials(_host(ops.avg_pool2d(cp.asarray(x), k, s, p)), ops.avg_pool2d(x, k, s, p))


def test_pooling_stride_past_32_bits(cp):
    """A stride of 2**31 or more (one output row) takes the 64-bit index path;
    it must give the results of the smallest equivalent stride."""
    rng = np.random.default_rng()
    x = _f32(rng, 2, 3, 9, 10)
    k, p = (3, 4), (1, 2)
    small = (9 + 2 - 3 + 1, 2)  # one output row, several columns
    huge = (2**31 + 7, 2)
    y_cpu, idx_cpu = ops.max_pool2d(x, k, small, p)
    gy = _f32(rng, *y_cpu.shape)
    for s in (small, huge):
        y, idx = ops.max_pool2d(cp.asarray(x), k, s, p)
        np.testing.assert_array_equal(_host(y), y_cpu)
        np.testing.assert_array_equal(_host(idx), idx_cpu)
        np.testing.assert_array_equal(_host(ops.avg_pool2d(cp.asarray(x), k, s, p)), ops.avg_pool2d(x, k, small, p))
        np.testing.assert_array_equal(_host(ops.avg_pool2d_backward(cp.asarray(gy), x.shape, k, s, p)),
                                      ops.avg_pool2d_backward(gy, x.shape, k, small, p))


def test_max_pool_backward_refuses_bad_indices(cp):
    gy = cp.ones((1, 1, 2, 2), cp.float32)
    for bad in (99, -1):
        assert_raises_naming(lambda: ops.max_pool2d_backward(gy, cp.full((1, 1, 2, 2), bad, cp.int64), (1, 1, 4, 4)),
                             ValueError, ["max_pool2d_backward", "'indices'", "4x4"])


# ----------------------------------------------------------------------- LSTM
# (T, B, I, H): T = 1 and B = 1 edges, primes, H past a warp, empty sequence / batch.
LSTM_SHAPES = [(1, 1, 1, 1), (1, 3, 4, 5), (5, 1, 4, 6), (5, 3, 4, 6), (7, 2, 3, 17), (2, 9, 33, 5), (3, 2, 5, 130),
               (4, 21, 7, 128), (0, 2, 3, 4), (2, 0, 3, 4)]


def _lstm_inputs(shape, bias=True, seed=0):
    T, B, I, H = shape
    rng = np.random.default_rng(seed)
    x, h0, c0 = _f32(rng, T, B, I), _f32(rng, B, H), _f32(rng, B, H)
    w_ih, w_hh = _f32(rng, 4 * H, I, scale=0.5), _f32(rng, 4 * H, H, scale=0.5)
    b_ih, b_hh = (_f32(rng, 4 * H), _f32(rng, 4 * H)) if bias else (None, None)
    grads = _f32(rng, T, B, H), _f32(rng, B, H), _f32(rng, B, H)
    return (x, h0, c0, w_ih, w_hh, b_ih, b_hh), grads


@pytest.mark.parametrize("shape", LSTM_SHAPES)
@pytest.mark.parametrize("bias", [True, False])
def test_lstm_matches_cpu(cp, shape, bias):
    args, (gy, ghT, gcT) = _lstm_inputs(shape, bias)
    dev = [None if a is None else cp.asarray(a) for a in args]
    y, hT, cT, cache = ops.lstm(*dev)
    y_cpu, hT_cpu, cT_cpu, cache_cpu = ops.lstm(*args)
    for a, r in ((y, y_cpu), (hT, hT_cpu), (cT, cT_cpu), (cache.gates, cache_cpu.gates)):
        assert isinstance(a, cp.ndarray) and a.shape == r.shape
        assert rel_error(_host(a), r) < 1e-5
    grads = ops.lstm_backward(cp.asarray(gy), cp.asarray(ghT), cp.asarray(gcT), cache)
    grads_cpu = ops.lstm_backward(gy, ghT, gcT, cache_cpu)
    for a, r in zip(grads, grads_cpu):
        if r is None:
            assert a is None
        else:
            assert a.shape == r.shape
            assert rel_error(_host(a), r, 1e-2) < 1e-4


def test_lstm_backward_optional_gradients(cp):
    args, (gy, _, _) = _lstm_inputs((4, 2, 3, 5))
    dev = [cp.asarray(a) for a in args]
    cache = ops.lstm(*dev)[3]
    zero = ops.lstm_backward(None, None, None, cache)
    assert all(not _host(g).any() for g in zero[:5])
    only_y = ops.lstm_backward(cp.asarray(gy), None, None, cache)
    ref = ops.lstm_backward(gy, None, None, ops.lstm(*args)[3])
    for a, r in zip(only_y, ref):
        assert rel_error(_host(a), r, 1e-2) < 1e-4


@pytest.mark.parametrize("B,I,H", [(1, 1, 1), (3, 4, 5), (16, 33, 64)])
def test_lstm_cell_matches_cpu(cp, B, I, H):
    (x, h0, c0, w_ih, w_hh, b_ih, b_hh), _ = _lstm_inputs((1, B, I, H))
    h1, c1 = ops.lstm_cell(*(cp.asarray(a) for a in (x[0], h0, c0, w_ih, w_hh, b_ih, b_hh)))
    h1_cpu, c1_cpu = ops.lstm_cell(x[0], h0, c0, w_ih, w_hh, b_ih, b_hh)
    assert rel_error(_host(h1), h1_cpu) < 1e-5 and rel_error(_host(c1), c1_cpu) < 1e-5


# ------------------------------------------------------------------ bad input
def f32(cp, *shape):
    return cp.ones(shape, cp.float32)


# (call(cupy), exception, words its message must hold)
BAD = [
    (lambda cp: ops.relu(cp.ones(3, cp.int32)), TypeError, ["relu", "'x'", "int32"]),
    (lambda cp: ops.gelu(cp.ones(3, cp.float64)), TypeError, ["gelu", "'x'", "float64"]),
    (lambda cp: ops.tanh_backward(f32(cp, 3), f32(cp, 4)), ValueError, ["tanh_backward", "'y'", "(3,)"]),
    (lambda cp: ops.sigmoid_backward(f32(cp, 3), cp.ones(3, cp.float16)), TypeError, ["sigmoid_backward", "'y'"]),
    (lambda cp: ops.relu_backward(f32(cp, 3), np.ones(3, np.float32)), ValueError, ["relu_backward", "device"]),
    (lambda cp: ops.dropout(f32(cp, 3), 1.5, seed=1), ValueError, ["dropout", "'p'"]),
    (lambda cp: ops.dropout_backward(f32(cp, 3), f32(cp, 3)), TypeError, ["dropout_backward", "'mask'"]),
    (lambda cp: ops.dropout_backward(f32(cp, 3), cp.ones(2, cp.uint8)), ValueError,
     ["dropout_backward", "'mask'", "(3,)"]),
    (lambda cp: ops.softmax(cp.ones(3, cp.int64)), TypeError, ["softmax", "'x'", "int64"]),
    (lambda cp: ops.softmax(f32(cp, 2, 3), axis=2), ValueError, ["softmax", "'axis'"]),
    (lambda cp: ops.softmax_backward(f32(cp, 2, 3), f32(cp, 3, 2)), ValueError, ["softmax_backward", "'y'"]),
    (lambda cp: ops.layer_norm(f32(cp, 2, 3), (4,)), ValueError, ["layer_norm", "'normalized_shape'"]),
    (lambda cp: ops.layer_norm(f32(cp, 2, 3), 3, f32(cp, 4)), ValueError, ["layer_norm", "'weight'"]),
    (lambda cp: ops.layer_norm(f32(cp, 2, 3), 3, None, cp.ones(3, cp.float64)), TypeError, ["layer_norm", "'bias'"]),
    (lambda cp: ops.layer_norm(f32(cp, 2, 3), 3, eps=-1.0), ValueError, ["layer_norm", "'eps'"]),
    (lambda cp: ops.layer_norm_backward(f32(cp, 2, 3), f32(cp, 2, 3), f32(cp, 3), f32(cp, 2), 3), ValueError,
     ["layer_norm_backward", "'mean'"]),
    (lambda cp: ops.cross_entropy(f32(cp, 2, 3), cp.asarray([0, 3])), ValueError,
     ["cross_entropy", "'target'", "class 3", "position 1"]),
    (lambda cp: ops.cross_entropy_backward(f32(cp, 2, 3), cp.asarray([-5, 0])), ValueError,
     ["cross_entropy_backward", "'target'", "class -5"]),
    (lambda cp: ops.cross_entropy(f32(cp, 2, 3), cp.asarray([0.0, 1.0])), TypeError, ["cross_entropy", "'target'"]),
    (lambda cp: ops.cross_entropy(f32(cp, 2, 3), cp.asarray([0, 1, 2])), ValueError, ["cross_entropy", "'target'"]),
    (lambda cp: ops.cross_entropy(f32(cp, 3), cp.asarray([0])), ValueError, ["cross_entropy", "'logits'"]),
    (lambda cp: ops.cross_entropy(f32(cp, 2, 3), cp.asarray([0, 1]), label_smoothing=2.0), ValueError,
     ["cross_entropy", "'label_smoothing'"]),
    (lambda cp: ops.cross_entropy(f32(cp, 2, 0), cp.asarray([-100, -100])), ValueError,
     ["cross_entropy", "'logits'", "no classes"]),
    (lambda cp: ops.max_pool2d(f32(cp, 2, 2), 2), ValueError, ["max_pool2d", "'x'"]),
    (lambda cp: ops.max_pool2d(cp.ones((1, 1, 4, 4), cp.int32), 2), TypeError, ["max_pool2d", "'x'", "int32"]),
    (lambda cp: ops.max_pool2d(f32(cp, 1, 1, 4, 4), 0), ValueError, ["max_pool2d", "'kernel_size'"]),
    (lambda cp: ops.max_pool2d(f32(cp, 1, 1, 4, 4), 2, 2, 2), ValueError, ["max_pool2d", "'padding'", "half"]),
    (lambda cp: ops.max_pool2d(f32(cp, 1, 1, 4, 4), 5), ValueError, ["max_pool2d", "'kernel_size'", "larger"]),
    (lambda cp: ops.max_pool2d(f32(cp, 1, 1, 4, 4), 2.5), TypeError, ["max_pool2d", "'kernel_size'"]),
    (lambda cp: ops.avg_pool2d(f32(cp, 1, 1, 4, 4), (2, 2, 2)), ValueError, ["avg_pool2d", "'kernel_size'"]),
    (lambda cp: ops.max_pool2d_backward(f32(cp, 1, 1, 2, 2), cp.zeros((1, 1, 2, 2), cp.int32), (1, 1, 4, 4)),
     TypeError, ["max_pool2d_backward", "'indices'", "int64"]),
    (lambda cp: ops.max_pool2d_backward(f32(cp, 1, 1, 2, 2), cp.zeros((1, 1, 2, 3), cp.int64), (1, 1, 4, 4)),
     ValueError, ["max_pool2d_backward", "'indices'"]),
    (lambda cp: ops.avg_pool2d_backward(f32(cp, 1, 1, 3, 2), (1, 1, 4, 4), 2), ValueError,
     ["avg_pool2d_backward", "'grad_y'"]),
    (lambda cp: ops.avg_pool2d_backward(f32(cp, 1, 1, 2, 2), "shape", 2), TypeError,
     ["avg_pool2d_backward", "'x_shape'"]),
    (lambda cp: ops.lstm(f32(cp, 3, 4), f32(cp, 3, 5), f32(cp, 3, 5), f32(cp, 20, 4), f32(cp, 20, 5)), ValueError,
     ["lstm", "'x'", "3-D"]),
    (lambda cp: ops.lstm(f32(cp, 2, 3, 4), f32(cp, 3, 5), f32(cp, 3, 5), f32(cp, 20, 3), f32(cp, 20, 5)), ValueError,
     ["lstm", "'w_ih'", "(20, 4)"]),
    (lambda cp: ops.lstm(f32(cp, 2, 3, 4), f32(cp, 2, 5), f32(cp, 3, 5), f32(cp, 20, 4), f32(cp, 20, 5)), ValueError,
     ["lstm", "'h0'", "(3, 5)"]),
    (lambda cp: ops.lstm(f32(cp, 2, 3, 4), f32(cp, 3, 5), f32(cp, 3, 5), f32(cp, 20, 4), f32(cp, 20, 5), f32(cp, 19)),
     ValueError,
     ["lstm", "'b_ih'"]),
    (lambda cp: ops.lstm(f32(cp, 2, 3, 4), f32(cp, 3, 5), f32(cp, 3, 5), cp.ones((20, 4), cp.float64), f32(cp, 20, 5)),
     TypeError,
     ["lstm", "'w_ih'", "float32"]),
    (lambda cp: ops.lstm_cell(f32(cp, 3, 4), f32(cp, 2, 5), f32(cp, 3, 5), f32(cp, 20, 4), f32(cp, 20, 5)), ValueError,
     ["lstm_cell", "'h'", "(3, 5)"]),
    (lambda cp: ops.sgd_step(f32(cp, 3), f32(cp, 3), lr=-1.0), ValueError, ["sgd_step", "'lr'"]),
    (lambda cp: ops.sgd_step(f32(cp, 3), f32(cp, 3), lr=0.1, momentum=0.9), ValueError, ["sgd_step", "'momentum_buf'"]),
    (lambda cp: ops.adam_step(f32(cp, 3), f32(cp, 4), f32(cp, 3), f32(cp, 3), step=1), ValueError,
     ["adam_step", "'grad'", "(3,)"]),
    (lambda cp: ops.lstm_cell(f32(cp, 3, 4), np.zeros((3, 5), np.float32), f32(cp, 3, 5), f32(cp, 20, 4),
                              f32(cp, 20, 5)), ValueError, ["lstm_cell", "device"]),
]


@pytest.mark.parametrize("case", range(len(BAD)))
def test_bad_input(cp, case):
    call, exc, words = BAD[case]
    assert_raises_naming(lambda: call(cp), exc, words)


def test_lstm_backward_refuses_a_cache_on_the_other_device(cp):
    args, (gy, _, _) = _lstm_inputs((2, 2, 3, 4))
    cache_cpu = ops.lstm(*args)[3]
    assert_raises_naming(lambda: ops.lstm_backward(cp.asarray(gy), None, None, cache_cpu), ValueError,
                         ["lstm_backward", "device"])


def test_zero_size_inputs_keep_their_shapes(cp):
    empty = cp.ones((0, 5), cp.float32)
    assert ops.relu(empty).shape == (0, 5)
    assert ops.softmax(empty).shape == (0, 5)
    y, mean, rstd = ops.layer_norm(empty, 5)
    assert y.shape == (0, 5) and mean.shape == (0,) and rstd.shape == (0,)
    gx, gw, gb = ops.layer_norm_backward(empty, empty, mean, rstd, 5)
    assert gx.shape == (0, 5) and (_host(gw) == 0).all() and (_host(gb) == 0).all()
    assert math.isnan(ops.cross_entropy(empty, cp.zeros(0, cp.int64)))
    assert ops.cross_entropy_backward(empty, cp.zeros(0, cp.int64)).shape == (0, 5)
    assert ops.dropout(empty, 0.5, seed=1)[1].shape == (0, 5)
    y, idx = ops.max_pool2d(cp.ones((0, 2, 4, 4), cp.float32), 2)
    assert y.shape == (0, 2, 2, 2) and idx.shape == (0, 2, 2, 2)


def test_cuda_nn_without_gpu_raises_clearly():
    if pyfastnn.backend_info()["cuda_available"]:
        pytest.skip("a GPU is present")
    from pyfastnn.cuda_ops import nn

    with pytest.raises(RuntimeError, match="softmax: CUDA is not available"):
        nn.softmax(object())
