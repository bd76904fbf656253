"""CUDA attention (csrc/cuda/attention/) against the CPU op in float64 and the
GPU reference kernels. Every test skips without a GPU.

Tolerances (norm-wise relative error, conftest.rel_error), against float64 on
the same (rounded) inputs:
  float32: forward 1e-5, backward 1e-4 (the CPU float32 test's bounds);
  float16: forward 2e-3, backward 5e-3 (P and dS are rounded to 16 bits
           before the tensor-core products, the output once more);
  bfloat16: forward 1.2e-2, backward 3e-2 (8-bit mantissa: 8x float16's).
lse is float32 for every dtype and is compared at 1e-5 (fp32 accumulation of
the exact 16-bit products), absolutely where its norm is below 1.
"""
import numpy as np
import pytest

from pyfastnn import ops
from conftest import assert_raises_naming, cupy_or_skip as _cupy_or_skip, rel_error

FWD_TOL = {"float32": 1e-5, "float16": 2e-3, "bfloat16": 1.2e-2}
BWD_TOL = {"float32": 1e-4, "float16": 5e-3, "bfloat16": 3e-2}



def _cuda_attention():
    from pyfastnn.cuda_ops import attention as cuda_attention

    return cuda_attention


def _rounded(x, dtype):
    """x rounded to `dtype` ('float32', 'float16', 'bfloat16'), as float64 numpy."""
    if dtype == "bfloat16":
        ca = _cuda_attention()
        return ca.from_bf16_bits(ca.to_bf16_bits(x.astype(np.float32))).astype(np.float64)
    return x.astype(dtype).astype(np.float64)


def _to_device(cupy, x64, dtype):
    """float64 numpy -> CuPy array of `dtype` (bfloat16 as uint16 bits)."""
    if dtype == "bfloat16":
        return cupy.asarray(_cuda_attention().to_bf16_bits(x64.astype(np.float32)))
    return cupy.asarray(x64.astype(dtype))


def _to_host(cupy, x, dtype):
    x = cupy.asnumpy(x)
    if dtype == "bfloat16" and x.dtype == np.uint16:
        x = _cuda_attention().from_bf16_bits(x)
    return x.astype(np.float64)


def _gpu_forward(cupy, q, k, v, dtype, impl="auto", **kw):
    ca = _cuda_attention()
    args = [_to_device(cupy, x, dtype) for x in (q, k, v)]
    if dtype == "bfloat16":
        return args, ca.attention_bf16(*args, impl=impl, **kw)
    if impl == "auto":  # through the public dispatch point
        return args, ops.attention(*args, **kw)
    return args, ca.attention(*args, impl=impl, **kw)


def _gpu_backward(cupy, g, dev_args, out, lse, dtype, impl="auto", **kw):
    ca = _cuda_attention()
    gd = _to_device(cupy, g, dtype)
    if dtype == "bfloat16":
        return ca.attention_backward_bf16(gd, *dev_args, out, lse, impl=impl, **kw)
    if impl == "auto":
        return ops.attention_backward(gd, *dev_args, out, lse, **kw)
    return ca.attention_backward(gd, *dev_args, out, lse, impl=impl, **kw)


def _inputs(rng, B, H, Nq, Nk, D, dtype):
    return [_rounded(rng.standard_normal((B, H, n, D)), dtype) for n in (Nq, Nk, Nk)]


def _check_against_cpu(cupy, case, dtype, impl, mask=None, scale=None):
    B, H, Nq, Nk, D, causal = case
    rng = np.random.default_rng()
    q, k, v = _inputs(rng, B, H, Nq, Nk, D, dtype)
    kw = dict(causal=causal, scale=scale)
    ref_out, ref_lse = ops.attention(q, k, v, mask=mask, **kw)
    dev_mask = None if mask is None else cupy.asarray(mask.astype(np.float32) if mask.dtype != np.bool_ else mask)
    dev_args, (out, lse) = _gpu_forward(cupy, q, k, v, dtype, impl, mask=dev_mask, **kw)
    assert out.shape == (B, H, Nq, D) and lse.shape == (B, H, Nq) and lse.dtype == np.float32
    assert rel_error(_to_host(cupy, out, dtype), ref_out) < FWD_TOL[dtype]
    lse_h = cupy.asnumpy(lse).astype(np.float64)
    finite = np.isfinite(ref_lse)
    assert (np.isneginf(lse_h) == ~finite).all()
    assert rel_error(lse_h[finite], ref_lse[finite], 1.0) < 1e-5

    g = _rounded(rng.standard_normal(ref_out.shape), dtype)
    ref_grads = ops.attention_backward(g, q, k, v, ref_out, ref_lse, mask=mask, **kw)
    grads = _gpu_backward(cupy, g, dev_args, out, lse, dtype, impl, mask=dev_mask, **kw)
    for name, got, ref in zip(("grad_q", "grad_k", "grad_v"), grads, ref_grads):
        assert got.shape == ref.shape, name
        # With one key grad_q is mathematically zero (rounding only): floor 1.
        err = rel_error(_to_host(cupy, got, dtype), ref, 1.0)
        assert err < BWD_TOL[dtype], (name, err)


CASES = [  # (B, H, Nq, Nk, D, causal)
    (1, 1, 1, 1, 64, False), (2, 3, 67, 131, 64, False), (1, 2, 129, 129, 64, True), (1, 2, 65, 200, 64, True),
    (2, 1, 200, 65, 64, True), (1, 2, 300, 300, 64, False), (2, 2, 77, 77, 128, True), (1, 1, 130, 190, 128, False),
    (1, 3, 33, 47, 17, False), (1, 1, 40, 50, 1, True), (2, 1, 70, 70, 40, True), (1, 1, 9, 100, 400, True),
    (3, 1, 17, 1, 5, False),
    # causal with Nq != Nk at the tensor-core head size 128, and one query
    # against a prime number of keys (a single row in a 64/128-row block)
    (1, 2, 131, 67, 128, True), (1, 1, 67, 131, 128, True), (2, 1, 1, 131, 128, True), (1, 2, 1, 131, 64, False),
]
IDS = [str(c) for c in CASES]


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("impl", ["auto", "reference"])
def test_float32_matches_cpu(case, impl):
    cupy = _cupy_or_skip()
    _check_against_cpu(cupy, case, "float32", impl)


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_types_auto_match_cpu(case, dtype):
    cupy = _cupy_or_skip()
    _check_against_cpu(cupy, case, dtype, "auto")


MMA_CASES = [c for c in CASES if c[4] in (64, 128)]
SIMT_CASES = [c for c in CASES if 1 <= c[4] <= 128]


@pytest.mark.parametrize("case", MMA_CASES, ids=[str(c) for c in MMA_CASES])
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("impl", ["simt", "reference"])
def test_half_types_other_impls_match_cpu(case, dtype, impl):
    # 'auto' takes the tensor cores for these; the FMA tiles and the reference
    # kernel must agree too (they are what the GPU session compares against).
    cupy = _cupy_or_skip()
    _check_against_cpu(cupy, case, dtype, impl)


@pytest.mark.parametrize("case", SIMT_CASES, ids=[str(c) for c in SIMT_CASES])
def test_float32_simt_matches_cpu(case):
    cupy = _cupy_or_skip()
    _check_against_cpu(cupy, case, "float32", "simt")


MASK_SHAPES = [(1, 1, 70, 90), (2, 1, 1, 90), (70, 90), (2, 3, 70, 90), (90,)]


@pytest.mark.parametrize("kind", ["bool", "additive"])
@pytest.mark.parametrize("mask_shape", MASK_SHAPES)
@pytest.mark.parametrize("dtype,D,impl", [("float32", 12, "auto"), ("float32", 64, "reference"),
                                          ("float16", 64, "auto"), ("bfloat16", 128, "auto"),
                                          ("float16", 64, "simt")])
@pytest.mark.parametrize("causal", [False, True])
def test_masks(kind, mask_shape, dtype, D, impl, causal):
    cupy = _cupy_or_skip()
    rng = np.random.default_rng()
    B, H, Nq, Nk = 2, 3, 70, 90
    if kind == "bool":
        mask = rng.random(mask_shape) > 0.3
        full = np.broadcast_to(mask, (B, H, Nq, Nk))
        if causal:
            full = full & np.tril(np.ones((Nq, Nk), bool))
        if not full.any(axis=-1).all():  # keep every row alive here; empty rows are tested below
            mask = mask | (np.arange(Nk) == 0)
    else:
        mask = rng.standard_normal(mask_shape)
    _check_against_cpu(cupy, (B, H, Nq, Nk, D, causal), dtype, impl, mask=mask, scale=0.3)


@pytest.mark.parametrize("dtype,D,impl", [("float32", 8, "auto"), ("float32", 8, "reference"),
                                          ("float16", 64, "auto"), ("float16", 64, "simt"),
                                          ("bfloat16", 128, "auto")])
def test_fully_masked_rows_give_zeros(dtype, D, impl):
    cupy = _cupy_or_skip()
    rng = np.random.default_rng()
    Nq, Nk = 70, 75
    q, k, v = _inputs(rng, 1, 2, Nq, Nk, D, dtype)
    mask = rng.random((Nq, Nk)) > 0.5
    mask[[2, 33, 69]] = False
    dev_mask = cupy.asarray(mask)
    dev_args, (out, lse) = _gpu_forward(cupy, q, k, v, dtype, impl, mask=dev_mask)
    out_h, lse_h = _to_host(cupy, out, dtype), cupy.asnumpy(lse)
    assert (out_h[:, :, [2, 33, 69]] == 0).all() and np.isneginf(lse_h[:, :, [2, 33, 69]]).all()
    assert np.isfinite(np.delete(lse_h, [2, 33, 69], axis=2)).all()
    ref_out, ref_lse = ops.attention(q, k, v, mask=mask)
    assert rel_error(out_h, ref_out) < FWD_TOL[dtype]
    g = np.ones((1, 2, Nq, D))
    grads = _gpu_backward(cupy, g, dev_args, out, lse, dtype, impl, mask=dev_mask)
    grads = [_to_host(cupy, x, dtype) for x in grads]
    assert all(np.isfinite(x).all() for x in grads)
    assert (grads[0][:, :, [2, 33, 69]] == 0).all()
    ref = ops.attention_backward(g, q, k, v, ref_out, ref_lse, mask=mask)
    for got, want in zip(grads, ref):
        assert rel_error(got, want, 1.0) < BWD_TOL[dtype]


@pytest.mark.parametrize("dtype,impl", [("float16", "mma"), ("bfloat16", "mma"), ("float32", "simt")])
@pytest.mark.parametrize("causal", [False, True])
def test_long_sequence_fast_vs_reference_kernel(dtype, impl, causal):
    # Many tiles (and for causal, the tile skipping) against the GPU reference
    # kernel on the same device inputs.
    cupy = _cupy_or_skip()
    rng = np.random.default_rng()
    q, k, v = _inputs(rng, 1, 2, 1500, 1500, 64, dtype)
    _fast_vs_reference_kernel(cupy, rng, q, k, v, dtype, impl, causal)


def _fast_vs_reference_kernel(cupy, rng, q, k, v, dtype, impl, causal):
    """Forward and backward of `impl` against the GPU reference kernel on the
    same device inputs; returns both kernels' gradients on the host."""
    dev_args, (out, lse) = _gpu_forward(cupy, q, k, v, dtype, impl, causal=causal)
    _, (ref_out, ref_lse) = _gpu_forward(cupy, q, k, v, dtype, "reference", causal=causal)
    assert rel_error(_to_host(cupy, out, dtype), _to_host(cupy, ref_out, dtype)) < FWD_TOL[dtype]
    assert rel_error(cupy.asnumpy(lse), cupy.asnumpy(ref_lse), 1.0) < 1e-5
    g = _rounded(rng.standard_normal(q.shape), dtype)
    grads = _gpu_backward(cupy, g, dev_args, out, lse, dtype, impl, causal=causal)
    ref_grads = _gpu_backward(cupy, g, dev_args, out, lse, dtype, "reference", causal=causal)
    grads = [_to_host(cupy, x, dtype) for x in grads]
    for name, got, want in zip(("grad_q", "grad_k", "grad_v"), grads, ref_grads):
        assert np.isfinite(got).all(), name
        assert rel_error(got, _to_host(cupy, want, dtype)) < BWD_TOL[dtype], name
    return grads


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_backward_is_deterministic(dtype):
    cupy = _cupy_or_skip()
    rng = np.random.default_rng()
    q, k, v = (cupy.asarray(x.astype(dtype)) for x in _inputs(rng, 2, 2, 300, 260, 64, dtype))
    out, lse = ops.attention(q, k, v, causal=True)
    g = cupy.asarray(rng.standard_normal(out.shape).astype(dtype))
    first = ops.attention_backward(g, q, k, v, out, lse, causal=True)
    second = ops.attention_backward(g, q, k, v, out, lse, causal=True)
    for a, b in zip(first, second):
        assert cupy.array_equal(a, b)


def test_non_contiguous_inputs():
    cupy = _cupy_or_skip()
    rng = np.random.default_rng()
    base = cupy.asarray(rng.standard_normal((2, 50, 3, 64)).astype(np.float16))  # (B, N, H, D)
    q = base.transpose(0, 2, 1, 3)  # (B, H, N, D) view
    out, lse = ops.attention(q, q, q)
    ref_out, ref_lse = ops.attention(cupy.ascontiguousarray(q), cupy.ascontiguousarray(q), cupy.ascontiguousarray(q))
    assert cupy.array_equal(out, ref_out) and cupy.array_equal(lse, ref_lse)
    mask = cupy.asarray(rng.random((50, 50)) > 0.2)[:, ::-1]  # negative stride
    mask[:, 0] = True
    got = ops.attention(q, q, q, mask=mask)[0]
    want = ops.attention(q, q, q, mask=cupy.ascontiguousarray(mask))[0]
    assert cupy.array_equal(got, want)


@pytest.mark.parametrize("shape_q,shape_k", [((0, 2, 5, 8), (0, 2, 7, 8)), ((1, 2, 0, 8), (1, 2, 7, 8)),
                                             ((1, 2, 5, 8), (1, 2, 0, 8)), ((1, 2, 5, 0), (1, 2, 7, 0))])
def test_empty_inputs(shape_q, shape_k):
    cupy = _cupy_or_skip()
    q = cupy.ones(shape_q, cupy.float32)
    k = cupy.ones(shape_k, cupy.float32)
    out, lse = ops.attention(q, k, k)
    ref_out, ref_lse = ops.attention(cupy.asnumpy(q), cupy.asnumpy(k), cupy.asnumpy(k))
    assert out.shape == ref_out.shape and lse.shape == ref_lse.shape
    np.testing.assert_allclose(cupy.asnumpy(out), ref_out, rtol=1e-6)
    np.testing.assert_allclose(cupy.asnumpy(lse), ref_lse, rtol=1e-6)
    grads = ops.attention_backward(cupy.ones_like(out), q, k, k, out, lse)
    for got, want in zip(grads, (q, k, k)):
        assert got.shape == want.shape and not cupy.asnumpy(got).any()


def test_bf16_bit_conversion_round_trips():
    cupy = _cupy_or_skip()
    ca = _cuda_attention()
    x = np.array([0.0, -0.0, 1.0, 1.00390625, 1.005859375, -3.5, 65504.0, np.inf, -np.inf, 1e-40], np.float32)
    bits = ca.to_bf16_bits(cupy.asarray(x))
    assert bits.dtype == cupy.uint16
    back = cupy.asnumpy(ca.from_bf16_bits(bits))
    assert back[2] == 1.0 and back[3] == 1.0 and back[4] == 1.0078125  # ties to even, then round up
    np.testing.assert_array_equal(back[[0, 1, 5, 7, 8]], x[[0, 1, 5, 7, 8]])
    assert np.isnan(cupy.asnumpy(ca.from_bf16_bits(ca.to_bf16_bits(cupy.asarray([np.nan], np.float32))))).all()


def _bad_cases(cupy):
    ca = _cuda_attention()
    Q = cupy.ones((1, 2, 3, 4), cupy.float32)
    H16 = cupy.ones((1, 2, 3, 17), cupy.float16)
    return [
        (lambda: ops.attention(Q, cupy.ones((1, 2, 5, 3), cupy.float32), cupy.ones((1, 2, 5, 3), cupy.float32)),
         ValueError, ["attention", "'k'"]),
        (lambda: ops.attention(Q, Q, cupy.ones((1, 2, 4, 4), cupy.float32)), ValueError, ["attention", "'v'"]),
        (lambda: ops.attention(Q[0], Q, Q), ValueError, ["attention", "'q'"]),
        (lambda: ops.attention(Q, Q.astype(cupy.float16), Q), TypeError, ["attention", "'k'", "float32"]),
        (lambda: ops.attention(Q.astype(cupy.int32), Q, Q), TypeError, ["attention", "'q'", "int32"]),
        (lambda: ops.attention(Q.astype(cupy.float64), Q, Q), TypeError, ["attention", "'q'", "float64"]),
        (lambda: ops.attention(Q, Q, Q, mask=cupy.ones((2, 4), bool)), ValueError, ["attention", "'mask'"]),
        (lambda: ops.attention(Q, Q, Q, mask=cupy.ones((3, 3), cupy.int64)), TypeError, ["attention", "'mask'"]),
        (lambda: ops.attention(Q, Q, Q, mask=np.ones((3, 3), bool)), ValueError, ["attention", "device"]),
        (lambda: ops.attention(Q, Q, Q, scale=float("nan")), ValueError, ["attention", "'scale'"]),
        (lambda: ops.attention(Q, Q, Q, scale=-1.0), ValueError, ["attention", "'scale'"]),
        (lambda: ops.attention(Q, Q, Q, scale="big"), TypeError, ["attention", "'scale'"]),
        (lambda: ops.attention_backward(Q, Q, Q, Q, Q, cupy.zeros((1, 2, 4), cupy.float32)), ValueError,
         ["attention_backward", "'lse'"]),
        (lambda: ops.attention_backward(Q, Q, Q, Q, Q, cupy.zeros((1, 2, 3), cupy.float16)), TypeError,
         ["attention_backward", "'lse'", "float16"]),
        (lambda: ops.attention_backward(Q[..., :3], Q, Q, Q, Q, cupy.zeros((1, 2, 3), cupy.float32)), ValueError,
         ["attention_backward", "'grad_out'"]),
        (lambda: ca.attention(H16, H16, H16, impl="mma"), ValueError, ["attention", "'mma'", "D=17"]),
        (lambda: ca.attention(Q, Q, Q, impl="mma"), ValueError, ["attention", "'mma'", "float32"]),
        (lambda: ca.attention(Q, Q, Q, impl="fastest"), ValueError, ["attention", "'impl'"]),
        (lambda: ca.attention(*(cupy.ones((1, 1, 2, 200), cupy.float32),) * 3, impl="simt"), ValueError,
         ["attention", "'simt'", "D=200"]),
        (lambda: ca.attention_bf16(Q, Q, Q), TypeError, ["attention_bf16", "'q'", "uint16"]),
        (lambda: ca.attention_bf16(*(cupy.ones((1, 1, 2, 64), cupy.uint16),) * 3,
                                   mask=cupy.ones((2, 2), cupy.float16)), TypeError, ["attention_bf16", "'mask'"]),
    ]


def test_bad_input():
    cupy = _cupy_or_skip()
    for call, exc, words in _bad_cases(cupy):
        assert_raises_naming(call, exc, words)


@pytest.mark.parametrize("dtype,D,impl", [("float16", 64, "mma"), ("bfloat16", 128, "mma"), ("float16", 128, "mma"),
                                          ("bfloat16", 64, "mma"), ("float32", 64, "simt"), ("float32", 128, "simt")])
@pytest.mark.parametrize("Nq,Nk", [(700, 1500), (1500, 700), (257, 1031), (1031, 257)])
def test_causal_unequal_lengths_fast_vs_reference_kernel(dtype, D, impl, Nq, Nk):
    # Top-left causal alignment with Nq != Nk over many tiles: the tile ranges
    # (key_end, the dK/dV kernel's first query tile, warps skipping tiles)
    # against the plain GPU kernel on the same device inputs.
    cupy = _cupy_or_skip()
    rng = np.random.default_rng()
    q = _rounded(rng.standard_normal((1, 2, Nq, D)), dtype)
    k, v = (_rounded(rng.standard_normal((1, 2, Nk, D)), dtype) for _ in range(2))
    grads = _fast_vs_reference_kernel(cupy, rng, q, k, v, dtype, impl, True)
    if Nk > Nq:  # keys after the last query are seen by nobody
        assert not grads[1][:, :, Nq:].any()
        assert not grads[2][:, :, Nq:].any()


@pytest.mark.parametrize("dtype,D,impl", [("float16", 64, "mma"), ("bfloat16", 128, "mma"), ("float16", 128, "mma"),
                                          ("float32", 64, "simt"), ("float32", 40, "reference")])
@pytest.mark.parametrize("causal", [False, True])
def test_masked_blocks_and_tiles(dtype, D, impl, causal):
    # Additive -inf masks that empty whole query blocks (the first 140 rows:
    # more than one 128-row tensor-core block, so every warp of a block sees
    # only -inf), single rows, and a whole key tile (keys 64..127) for every
    # row, so the running max meets tiles that are entirely -inf after and
    # before finite ones. Results must be finite and match the CPU op.
    cupy = _cupy_or_skip()
    rng = np.random.default_rng()
    B, H, Nq, Nk = 1, 2, 333, 301
    q, k, v = _inputs(rng, B, H, Nq, Nk, D, dtype)
    mask = np.where(rng.random((Nq, Nk)) > 0.2, 0.0, -np.inf)
    mask[:, 64:128] = -np.inf
    mask[:, [0, 200]] = 0.0  # key 0 keeps the other rows alive also under causal; 200 follows the empty tile
    empty = np.r_[0:140, [200, 257, 332]]
    mask[empty] = -np.inf
    kw = dict(causal=causal, scale=0.5)
    ref_out, ref_lse = ops.attention(q, k, v, mask=mask, **kw)
    dev_mask = cupy.asarray(mask.astype(np.float32))
    dev_args, (out, lse) = _gpu_forward(cupy, q, k, v, dtype, impl, mask=dev_mask, **kw)
    out_h, lse_h = _to_host(cupy, out, dtype), cupy.asnumpy(lse)
    assert (out_h[:, :, empty] == 0).all() and np.isneginf(lse_h[:, :, empty]).all()
    assert np.isfinite(np.delete(lse_h, empty, axis=2)).all() and np.isfinite(out_h).all()
    assert rel_error(out_h, ref_out) < FWD_TOL[dtype]
    g = _rounded(rng.standard_normal(ref_out.shape), dtype)
    grads = [_to_host(cupy, x, dtype) for x in _gpu_backward(cupy, g, dev_args, out, lse, dtype, impl,
                                                              mask=dev_mask, **kw)]
    ref = ops.attention_backward(g, q, k, v, ref_out, ref_lse, mask=mask, **kw)
    for name, got, want in zip(("grad_q", "grad_k", "grad_v"), grads, ref):
        assert np.isfinite(got).all(), name
        assert rel_error(got, want, 1.0) < BWD_TOL[dtype], name
    assert not grads[0][:, :, empty].any()
    assert not grads[1][:, :, 64:128].any() and not grads[2][:, :, 64:128].any()


@pytest.mark.parametrize("scale", [1e-3, 2.5])
@pytest.mark.parametrize("dtype,D", [("float32", 64), ("float16", 64), ("bfloat16", 128)])
def test_explicit_scale_matches_cpu(scale, dtype, D):
    cupy = _cupy_or_skip()
    _check_against_cpu(cupy, (1, 2, 70, 90, D, True), dtype, "auto", scale=scale)


@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_misaligned_contiguous_views(dtype):
    # A contiguous view starting 2 or 4 bytes into an allocation: the 16-byte
    # cp.async loads of the tensor-core kernels must never see it.
    cupy = _cupy_or_skip()
    rng = np.random.default_rng()
    shape = (1, 2, 97, 64)
    n = int(np.prod(shape))
    views = [cupy.asarray(rng.standard_normal(n + 1).astype(dtype))[1:].reshape(shape) for _ in range(4)]
    assert all(x.data.ptr % 16 for x in views)
    q, k, v, g = views
    aligned = [cupy.array(x, copy=True) for x in views]
    out, lse = ops.attention(q, k, v, causal=True)
    ref_out, ref_lse = ops.attention(*aligned[:3], causal=True)
    assert cupy.array_equal(out, ref_out) and cupy.array_equal(lse, ref_lse)
    grads = ops.attention_backward(g, q, k, v, out, lse, causal=True)
    ref_grads = ops.attention_backward(aligned[3], *aligned[:3], ref_out, ref_lse, causal=True)
    for got, want in zip(grads, ref_grads):
        assert cupy.array_equal(got, want)
