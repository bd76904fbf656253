"""CUDA matmul: the float32 SGEMM, the float16/bfloat16 tensor-core GEMM and
the plain reference kernel, against the CPU kernel (ops.matmul on numpy) and a
float64 numpy reference, on fresh random inputs of awkward sizes.

Tolerances (norm-wise relative error, conftest.rel_error):
- float32: 1e-5 against the CPU kernel and against float64 — both sides
  accumulate in float32 in different orders (~sqrt(K) * 2**-24).
- float16: 2e-3 — the products are exact in the fp32 accumulator; the one
  rounding of the result to float16 costs at most 2**-11 per element.
- bfloat16: 1e-2 — the one rounding to bfloat16 costs at most 2**-8.
Inputs of the half types are drawn in float32 and rounded first; the
references see exactly the rounded values.

Everything here skips without a GPU. PYFASTNN_SANITIZER_RUN=1 (set by
bench/gpu_check.sh under compute-sanitizer) skips the large cases.
"""
import os

import numpy as np
import pytest

import pyfastnn
from pyfastnn import ops
from conftest import activation_ref, cupy_or_skip as _cupy_or_skip, matmul_reference as reference, rel_error

ACTIVATIONS = [None, "relu", "gelu", "sigmoid", "tanh", "gelu_tanh", "silu"]
TOL = {"f32": 1e-5, "f16": 2e-3, "bf16": 1e-2}
SANITIZER = os.environ.get("PYFASTNN_SANITIZER_RUN") == "1"
large = pytest.mark.skipif(SANITIZER, reason="large case: skipped under compute-sanitizer")
# The epilogue reads and writes the same elements whatever the activation:
# under the sanitizer two of them suffice.
SWEPT_ACTIVATIONS = [None, "gelu"] if SANITIZER else ACTIVATIONS

# 0, 1, primes, sizes around the 128x128 block tile and the k tiles (16 for
# float32, 32 for the tensor cores, 4 pipeline stages), skinny shapes.
SHAPES = [
    (1, 1, 1), (0, 3, 4), (3, 0, 4), (3, 4, 0), (2, 3, 5), (7, 13, 11), (127, 257, 131), (128, 128, 128),
    (129, 127, 17), (256, 384, 64), (67, 131, 521), (1, 300, 77), (300, 1, 33), (31, 45, 8), (130, 9, 160),
]



def _gemm_module():
    from pyfastnn.cuda_ops import gemm

    return gemm


def bf16_bits(x):
    """numpy: float32 -> uint16 bfloat16 bits, round to nearest even (finite inputs)."""
    u = np.ascontiguousarray(x, np.float32).view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def bf16_values(bits):
    """numpy: uint16 bfloat16 bits -> float32 (exact)."""
    return (np.asarray(bits).astype(np.uint32) << 16).view(np.float32)


def _operands(rng, shape_a, shape_b, kind):
    """Host operands (values exactly representable in the kind) and their device twins."""
    cp = _cupy_or_skip()
    a = rng.standard_normal(shape_a).astype(np.float32)
    b = rng.standard_normal(shape_b).astype(np.float32)
    if kind == "f32":
        return a, b, cp.asarray(a), cp.asarray(b)
    if kind == "f16":
        a, b = a.astype(np.float16), b.astype(np.float16)
        return a.astype(np.float32), b.astype(np.float32), cp.asarray(a), cp.asarray(b)
    abits, bbits = bf16_bits(a), bf16_bits(b)
    return bf16_values(abits), bf16_values(bbits), cp.asarray(abits), cp.asarray(bbits)


def _run(kind, a, b, bias=None, activation=None, trans_a=False, trans_b=False):
    """The CUDA result as float32 numpy values."""
    cp = _cupy_or_skip()
    if kind == "bf16":
        out = _gemm_module().matmul_bf16(a, b, bias, activation=activation, trans_a=trans_a, trans_b=trans_b)
        assert out.dtype == cp.uint16
        return bf16_values(cp.asnumpy(out))
    out = ops.matmul(a, b, bias, activation=activation, trans_a=trans_a, trans_b=trans_b)
    assert isinstance(out, cp.ndarray)
    assert out.dtype == (cp.float32 if kind == "f32" else cp.float16)
    return cp.asnumpy(out).astype(np.float32)


def _device_bias(cp, bias, kind):
    if kind == "f32":
        return cp.asarray(bias)
    if kind == "f16":
        return cp.asarray(bias.astype(np.float16))
    return cp.asarray(bf16_bits(bias))


def _host_bias(bias, kind):
    if kind == "f16":
        return bias.astype(np.float16).astype(np.float32)
    if kind == "bf16":
        return bf16_values(bf16_bits(bias))
    return bias


# ------------------------------------------------------------------- float32
@pytest.mark.parametrize("m,n,k", SHAPES)
def test_sgemm_matches_cpu(m, n, k):
    cp = _cupy_or_skip()
    rng = np.random.default_rng()
    a, b, da, db = _operands(rng, (m, k), (k, n), "f32")
    out = ops.matmul(da, db)
    assert isinstance(out, cp.ndarray) and out.shape == (m, n) and out.dtype == cp.float32
    got = cp.asnumpy(out)
    assert rel_error(got, ops.matmul(a, b)) < TOL["f32"]
    assert rel_error(got, reference(a, b)) < TOL["f32"]


@pytest.mark.parametrize("variant", ["k8x2", "k16x1"])
@pytest.mark.parametrize("trans_a,trans_b", [(False, False), (False, True), (True, False), (True, True)])
@pytest.mark.parametrize("shape", [(1, 1, 1), (129, 257, 131), (256, 128, 40), (3, 130, 70)])
def test_both_sgemm_variants(shape, trans_a, trans_b, variant):
    # Both configurations of the SGEMM (k tile 8 / two blocks per SM, k tile
    # 16 / one block), edge tiles, batches, strided rows, bias and activation.
    cp = _cupy_or_skip()
    g = _gemm_module()
    rng = np.random.default_rng()
    m, n, k = shape
    lead = (2,) if m == 3 else ()  # one batched case, B broadcast
    a, b, da, db = _operands(rng, lead + ((k, m) if trans_a else (m, k)), (n, k) if trans_b else (k, n), "f32")
    bias = rng.standard_normal(n).astype(np.float32)
    out = g.matmul(da, db, cp.asarray(bias), "gelu", trans_a, trans_b, _variant=variant)
    assert rel_error(cp.asnumpy(out), reference(a, b, bias, "gelu", trans_a, trans_b)) < TOL["f32"]
    # rows with a stride that is not a multiple of 4 (scalar loads throughout)
    wide = cp.asarray(rng.standard_normal((k, n + 3)).astype(np.float32))
    host_wide = cp.asnumpy(wide)
    out = g.matmul(da, wide[:, :n], trans_a=trans_a, _variant=variant)
    assert rel_error(cp.asnumpy(out), reference(a, host_wide[:, :n], trans_a=trans_a)) < TOL["f32"]


def test_unknown_sgemm_variant_is_an_error(monkeypatch):
    cp = _cupy_or_skip()
    monkeypatch.setenv("PYFASTNN_SGEMM_VARIANT", "k4x9")
    with pytest.raises(ValueError, match="matmul.*SGEMM variant.*k4x9"):
        ops.matmul(cp.ones((2, 2), cp.float32), cp.ones((2, 2), cp.float32))


@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize("trans_b", [False, True])
@pytest.mark.parametrize("activation", SWEPT_ACTIVATIONS)
@pytest.mark.parametrize("kind", ["f32", "f16", "bf16"])
def test_transposes_bias_activations(kind, activation, trans_a, trans_b):
    cp = _cupy_or_skip()
    rng = np.random.default_rng()
    m, n, k = 133, 261, 95  # edge tiles in m and n, a partial k tile
    a, b, da, db = _operands(rng, (k, m) if trans_a else (m, k), (n, k) if trans_b else (k, n), kind)
    bias = rng.standard_normal(n).astype(np.float32)
    got = _run(kind, da, db, _device_bias(cp, bias, kind), activation, trans_a, trans_b)
    hb = _host_bias(bias, kind)
    assert rel_error(got, reference(a, b, hb, activation, trans_a, trans_b)) < TOL[kind]
    # The CPU kernel on the same (rounded) values.
    cpu = ops.matmul(a, b, hb, activation=activation, trans_a=trans_a, trans_b=trans_b)
    assert rel_error(got, cpu) < TOL[kind]


@pytest.mark.parametrize("m,n,k", SHAPES)
@pytest.mark.parametrize("kind", ["f16", "bf16"])
def test_half_types_shapes(kind, m, n, k):
    cp = _cupy_or_skip()
    rng = np.random.default_rng()
    a, b, da, db = _operands(rng, (m, k), (k, n), kind)
    bias = rng.standard_normal(n).astype(np.float32)
    got = _run(kind, da, db, cp.asarray(bias), "relu")  # a float32 bias is accepted for both half types
    assert got.shape == (m, n)
    assert rel_error(got, reference(a, b, bias, "relu")) < TOL[kind]


@pytest.mark.parametrize("shape_a,shape_b", [
    ((3, 5, 7), (3, 7, 4)),
    ((3, 5, 7), (7, 4)),
    ((5, 7), (3, 7, 4)),
    ((1, 5, 7), (4, 7, 2)),
    ((6, 1, 3), (6, 3, 1)),
    ((0, 5, 7), (0, 7, 4)),
    ((40, 9, 11), (40, 11, 13)),
    ((3, 130, 70), (1, 70, 129)),
])
@pytest.mark.parametrize("kind", ["f32", "f16", "bf16"])
def test_batched_and_broadcast(kind, shape_a, shape_b):
    cp = _cupy_or_skip()
    rng = np.random.default_rng()
    a, b, da, db = _operands(rng, shape_a, shape_b, kind)
    bias = rng.standard_normal(shape_b[-1]).astype(np.float32)
    got = _run(kind, da, db, _device_bias(cp, bias, kind), "tanh")
    ref = reference(a, b, _host_bias(bias, kind), "tanh")
    assert got.shape == ref.shape
    assert rel_error(got, ref) < TOL[kind]


@pytest.mark.parametrize("kind", ["f32", "f16", "bf16"])
def test_batched_transposed(kind):
    _cupy_or_skip()
    rng = np.random.default_rng()
    a, b, da, db = _operands(rng, (4, 37, 66), (4, 45, 37), kind)  # (B, K, M), (B, N, K)
    got = _run(kind, da, db, trans_a=True, trans_b=True)
    assert rel_error(got, reference(a, b, trans_a=True, trans_b=True)) < TOL[kind]


@pytest.mark.parametrize("kind", ["f32", "f16", "bf16"])
def test_batch_beyond_grid_limit(kind):
    # More than 65535 batches: the batch runs over grid y and z (grid_for), and
    # the spare blocks of the last z slice must write nothing.
    _cupy_or_skip()
    rng = np.random.default_rng()
    a, b, da, db = _operands(rng, (70001, 3, 5), (5, 2), kind)
    assert rel_error(_run(kind, da, db), reference(a, b)) < TOL[kind]


@pytest.mark.parametrize("kind", ["f32", "f16", "bf16"])
def test_strided_and_offset_views(kind):
    # Views the kernels read in place (row strides, column-major, zero strides,
    # offsets that break 16-byte alignment) and ones that must be copied
    # (non-unit strides in both dims, negative strides).
    cp = _cupy_or_skip()
    rng = np.random.default_rng()
    big_a, _, dbig_a, _ = _operands(rng, (90, 121), (1, 1), kind)
    big_b, _, dbig_b, _ = _operands(rng, (80, 133), (1, 1), kind)
    cases = [
        (lambda x: x[:31, :40], lambda y: y[:40, :17]),            # row strides 121 / 133: not multiples of 4 or 8
        (lambda x: x[1:32, 1:41], lambda y: y[3:43, 5:22]),        # first elements off 16-byte alignment
        (lambda x: x[::2, 1::3], lambda y: y[:40, ::2][:, :50]),   # strided columns: copied
        (lambda x: x[::-1, :40], lambda y: y[:40, ::-1]),          # negative strides: copied
    ]
    for i, (view_a, view_b) in enumerate(cases):
        got = _run(kind, view_a(dbig_a), view_b(dbig_b))
        assert rel_error(got, reference(view_a(big_a), view_b(big_b))) < TOL[kind], i
    # Column-major operands: read as the transposed row-major matrix.
    fa = cp.asfortranarray(dbig_a[:37, :53])
    fb = cp.asfortranarray(dbig_b[:53, :29])
    got = _run(kind, fa, fb)
    assert rel_error(got, reference(big_a[:37, :53], big_b[:53, :29])) < TOL[kind]
    got = _run(kind, fa.T, fb, trans_a=True)
    assert rel_error(got, reference(big_a[:37, :53], big_b[:53, :29])) < TOL[kind]
    # A zero row stride (one row repeated) and a zero batch stride.
    row = dbig_a[0, :53]
    got = _run(kind, cp.broadcast_to(row, (7, 53)), dbig_b[:53, :29])
    assert rel_error(got, reference(np.broadcast_to(big_a[0, :53], (7, 53)), big_b[:53, :29])) < TOL[kind]
    got = _run(kind, cp.broadcast_to(dbig_a[:7, :53], (3, 7, 53)), dbig_b[:53, :29])
    ref = reference(np.broadcast_to(big_a[:7, :53], (3, 7, 53)), big_b[:53, :29])
    assert rel_error(got, ref) < TOL[kind]


@pytest.mark.parametrize("kind", ["f32", "f16", "bf16"])
@pytest.mark.parametrize("activation", SWEPT_ACTIVATIONS)
def test_k_zero_is_activation_of_bias(kind, activation):
    cp = _cupy_or_skip()
    rng = np.random.default_rng()
    _, _, da, db = _operands(rng, (5, 0), (0, 9), kind)
    bias = rng.standard_normal(9).astype(np.float32)
    got = _run(kind, da, db, _device_bias(cp, bias, kind), activation)
    ref = np.broadcast_to(activation_ref(_host_bias(bias, kind), activation), (5, 9))
    assert rel_error(got, ref) < TOL[kind]
    got = _run(kind, da, db)
    assert (got == 0).all()


@pytest.mark.parametrize("kind", ["f32", "f16"])
def test_nan_and_inf_propagate(kind):
    cp = _cupy_or_skip()
    dtype = np.float32 if kind == "f32" else np.float16
    a = np.array([[np.nan, 1.0], [np.inf, 1.0], [1.0, 1.0]], dtype)
    b = np.ones((2, 3), dtype)
    out = cp.asnumpy(ops.matmul(cp.asarray(a), cp.asarray(b)))
    assert np.isnan(out[0]).all() and np.isinf(out[1]).all() and (out[2] == 2).all()
    out = cp.asnumpy(ops.matmul(cp.asarray(a), cp.asarray(b), activation="relu"))
    assert np.isnan(out[0]).all()


@pytest.mark.parametrize("kind", ["f32", "f16", "bf16"])
def test_every_output_element_is_written(kind):
    # The output's memory is poisoned with NaN first: an element the kernel
    # skips shows up as NaN.
    cp = _cupy_or_skip()
    rng = np.random.default_rng()
    m, n, k = 257, 392, 72  # strides that need no aligned copy: the output is the only allocation
    a, b, da, db = _operands(rng, (m, k), (k, n), kind)
    pool = cp.cuda.MemoryPool()
    with cp.cuda.using_allocator(pool.malloc):
        poison = cp.full((m, n), np.nan, cp.float32 if kind == "f32" else cp.float16)
        if kind == "bf16":
            poison = poison.view(cp.uint16)
        del poison
        got = _run(kind, da, db)
    assert not np.isnan(got).any()
    assert rel_error(got, reference(a, b)) < TOL[kind]


@large
@pytest.mark.parametrize("kind", ["f32", "f16", "bf16"])
def test_large_matches_reference(kind):
    _cupy_or_skip()
    rng = np.random.default_rng()
    m, n, k = 777, 1025, 1300
    a, b, da, db = _operands(rng, (m, k), (k, n), kind)
    assert rel_error(_run(kind, da, db, activation="gelu"), reference(a, b, activation="gelu")) < TOL[kind]


@large
def test_sgemm_large_square_against_cpu():
    cp = _cupy_or_skip()
    rng = np.random.default_rng()
    a, b, da, db = _operands(rng, (1024, 1024), (1024, 1024), "f32")
    assert rel_error(cp.asnumpy(ops.matmul(da, db)), ops.matmul(a, b)) < TOL["f32"]


@pytest.mark.parametrize("kind", ["f32", "f16", "bf16"])
@pytest.mark.parametrize("trans_a,trans_b", [(False, False), (False, True), (True, False), (True, True)])
def test_tiled_kernels_match_reference_kernel(kind, trans_a, trans_b):
    # The optimized kernels against the one-thread-per-output kernel on the
    # same device and inputs.
    cp = _cupy_or_skip()
    g = _gemm_module()
    rng = np.random.default_rng()
    m, n, k = 161, 203, 150
    _, _, da, db = _operands(rng, (k, m) if trans_a else (m, k), (n, k) if trans_b else (k, n), kind)
    bias = cp.asarray(rng.standard_normal(n).astype(np.float32))
    kw = dict(activation="sigmoid", trans_a=trans_a, trans_b=trans_b)
    if kind == "bf16":
        fast = bf16_values(cp.asnumpy(g.matmul_bf16(da, db, bias, **kw)))
        slow = bf16_values(cp.asnumpy(g.matmul_reference_bf16(da, db, bias, **kw)))
    else:
        if kind == "f16":
            bias = bias.astype(cp.float16)
        fast = cp.asnumpy(g.matmul(da, db, bias, **kw)).astype(np.float32)
        slow = cp.asnumpy(g.matmul_reference(da, db, bias, **kw)).astype(np.float32)
    assert rel_error(fast, slow) < TOL[kind]


TRANSPOSES = [(False, False), (False, True), (True, False), (True, True)]
# K of 1, 3, 7 (less than one 16-byte chunk of halves), odd K (the tensor-core
# path copies such rows into a padded buffer), K one past a k tile (33), K
# longer than the 4-stage ring (200, 257), M or N of 1, primes.
EDGE_SHAPES = [(1, 1, 1), (1, 9, 3), (17, 1, 7), (5, 3, 8), (131, 67, 33), (37, 139, 200), (128, 136, 257)]


@pytest.mark.parametrize("m,n,k", EDGE_SHAPES)
@pytest.mark.parametrize("trans_a,trans_b", TRANSPOSES)
@pytest.mark.parametrize("kind", ["f32", "f16", "bf16"])
def test_every_transpose_on_edge_shapes(kind, trans_a, trans_b, m, n, k):
    cp = _cupy_or_skip()
    rng = np.random.default_rng()
    a, b, da, db = _operands(rng, (k, m) if trans_a else (m, k), (n, k) if trans_b else (k, n), kind)
    bias = rng.standard_normal(n).astype(np.float32)
    got = _run(kind, da, db, _device_bias(cp, bias, kind), None, trans_a, trans_b)
    assert got.shape == (m, n)
    assert rel_error(got, reference(a, b, _host_bias(bias, kind), None, trans_a, trans_b)) < TOL[kind]


def _nan_bits(kind):
    return {"f32": np.float32(np.nan), "f16": np.float16(np.nan), "bf16": np.uint16(0x7FC0)}[kind]


@pytest.mark.parametrize("trans_a,trans_b", TRANSPOSES)
@pytest.mark.parametrize("kind", ["f32", "f16", "bf16"])
def test_views_read_in_place_never_past_row_ends(kind, trans_a, trans_b):
    # Column slices of wider arrays: row strides are multiples of 8 elements,
    # so every kernel reads them in place (asserted below), but the rows end
    # mid-chunk — the tensor-core loads there are partial cp.async (src-size
    # < 16, zero fill) along K, M or N depending on the transposes; the SGEMM's
    # are its guarded scalar loads. The columns past each row end hold NaN:
    # reading any of them poisons the result.
    cp = _cupy_or_skip()
    g = _gemm_module()
    rng = np.random.default_rng()
    m, n, k = 131, 77, 45
    shape_a = (k, m) if trans_a else (m, k)
    shape_b = (n, k) if trans_b else (k, n)

    def wide(shape):
        return (shape[0], -(-shape[1] // 8) * 8 + 8)

    ha, hb, dwa, dwb = _operands(rng, wide(shape_a), wide(shape_b), kind)
    dwa[:, shape_a[1]:] = _nan_bits(kind)
    dwb[:, shape_b[1]:] = _nan_bits(kind)
    va, vb = dwa[:, :shape_a[1]], dwb[:, :shape_b[1]]
    align = 1 if kind == "f32" else 8
    assert g._stored(va, trans_a, align)[0] is va and g._stored(vb, trans_b, align)[0] is vb
    got = _run(kind, va, vb, trans_a=trans_a, trans_b=trans_b)
    ref = reference(ha[:, :shape_a[1]], hb[:, :shape_b[1]], trans_a=trans_a, trans_b=trans_b)
    assert not np.isnan(got).any()
    assert rel_error(got, ref) < TOL[kind]


@pytest.mark.parametrize("kind", ["f32", "f16", "bf16"])
def test_more_tile_rows_than_one_group(kind):
    # Blocks walk the tiles in groups of 8 tile rows (grouped_tile): 9 tile rows
    # by 3 tile columns leave a last group of a single row.
    cp = _cupy_or_skip()
    rng = np.random.default_rng()
    m, n, k = 1100, 300, 24
    a, b, da, db = _operands(rng, (m, k), (k, n), kind)
    bias = rng.standard_normal(n).astype(np.float32)
    got = _run(kind, da, db, _device_bias(cp, bias, kind))
    assert rel_error(got, reference(a, b, _host_bias(bias, kind))) < TOL[kind]


def test_runs_on_the_current_stream():
    cp = _cupy_or_skip()
    rng = np.random.default_rng()
    a, b, da, db = _operands(rng, (300, 200), (200, 100), "f32")
    # The uploads above ran on the default stream, which a non-blocking stream
    # does not wait for.
    cp.cuda.get_current_stream().synchronize()
    stream = cp.cuda.Stream(non_blocking=True)
    with stream:
        out = ops.matmul(da, db)
        ha, hb, dha, dhb = _operands(rng, (64, 72), (72, 40), "f16")
        out16 = ops.matmul(dha, dhb)
    stream.synchronize()
    assert rel_error(cp.asnumpy(out), reference(a, b)) < TOL["f32"]
    assert rel_error(cp.asnumpy(out16).astype(np.float32), reference(ha, hb)) < TOL["f16"]


def test_bf16_conversions_match_numpy():
    cp = _cupy_or_skip()
    g = _gemm_module()
    rng = np.random.default_rng()
    x = (rng.standard_normal(1001) * 10.0 ** rng.integers(-20, 20, 1001)).astype(np.float32)
    x[:4] = [0.0, -0.0, np.inf, -np.inf]
    bits = g.bf16_from_float32(cp.asarray(x))
    assert bits.dtype == cp.uint16
    np.testing.assert_array_equal(cp.asnumpy(bits), bf16_bits(x))
    np.testing.assert_array_equal(cp.asnumpy(g.bf16_to_float32(bits)), bf16_values(bf16_bits(x)))
    assert np.isnan(cp.asnumpy(g.bf16_to_float32(g.bf16_from_float32(cp.asarray([np.nan], cp.float32))))).all()


# ------------------------------------------------------------------ bad input
def _bad_cases(cp):
    f32, f16 = cp.float32, cp.float16
    A = cp.ones((3, 4), f32)
    B = cp.ones((4, 5), f32)
    return [
        (A.astype(cp.float64), B.astype(cp.float64), {}, TypeError, ["matmul", "'a'", "float64", "CPU"]),
        (A, B.astype(cp.float64), {}, TypeError, ["matmul", "'b'", "float64"]),
        (cp.ones((3, 4), cp.int32), B, {}, TypeError, ["matmul", "'a'", "int32"]),
        (A, B.astype(f16), {}, TypeError, ["matmul", "'a'", "'b'", "same dtype"]),
        (cp.ones(4, f32), B, {}, ValueError, ["matmul", "'a'", "2-D to 3-D", "(4,)"]),
        (A, cp.ones((2, 2, 4, 5), f32), {}, ValueError, ["matmul", "'b'", "(2, 2, 4, 5)"]),
        (A, cp.ones((5, 5), f32), {}, ValueError, ["matmul", "inner dimensions", "K=4", "K=5"]),
        (A, B, {"trans_b": True}, ValueError, ["matmul", "inner dimensions", "transposed"]),
        (cp.ones((2, 3, 4), f32), cp.ones((3, 4, 5), f32), {}, ValueError, ["matmul", "batch sizes"]),
        (A, B, {"bias": cp.ones(4, f32)}, ValueError, ["matmul", "'bias'", "(5,)", "(4,)"]),
        (A, B, {"bias": cp.ones((1, 5), f32)}, ValueError, ["matmul", "'bias'", "(1, 5)"]),
        (A, B, {"bias": cp.ones(5, cp.float64)}, TypeError, ["matmul", "'bias'", "float64"]),
        (A.astype(f16), B.astype(f16), {"bias": cp.ones(5, cp.float64)}, TypeError, ["matmul", "'bias'"]),
        (A, B, {"activation": "swish"}, ValueError, ["matmul", "'activation'", "swish"]),
        (A, B, {"activation": "none"}, ValueError, ["matmul", "'activation'"]),
        (A, B, {"activation": 3}, TypeError, ["matmul", "'activation'", "int"]),
        (A, np.ones((4, 5), np.float32), {}, ValueError, ["matmul", "one device"]),
        (A, B, {"bias": np.ones(5, np.float32)}, ValueError, ["matmul", "one device"]),
    ]


def test_bad_input_names_op_and_argument():
    cp = _cupy_or_skip()
    for a, b, kwargs, exc, words in _bad_cases(cp):
        with pytest.raises(exc) as info:
            ops.matmul(a, b, **kwargs)
        for word in words:
            assert word in str(info.value), (word, str(info.value))


def test_bf16_bad_input():
    cp = _cupy_or_skip()
    g = _gemm_module()
    u = cp.ones((3, 4), cp.uint16)
    with pytest.raises(TypeError, match="matmul_bf16.*'a'.*float32.*uint16"):
        g.matmul_bf16(cp.ones((3, 4), cp.float32), cp.ones((4, 5), cp.float32))
    with pytest.raises(TypeError, match="matmul_bf16.*'b'.*CuPy"):
        g.matmul_bf16(u, np.ones((4, 5), np.uint16))
    with pytest.raises(TypeError, match="matmul_bf16.*'bias'"):
        g.matmul_bf16(u, cp.ones((4, 5), cp.uint16), cp.ones(5, cp.float16))
    with pytest.raises(ValueError, match="matmul_bf16.*inner dimensions"):
        g.matmul_bf16(u, cp.ones((5, 5), cp.uint16))


def test_binding_rejects_misaligned_tensor_core_operands():
    # Direct callers of the binding get an error, not a misaligned cp.async.
    cp = _cupy_or_skip()
    mod = pyfastnn._backend.require_cuda("matmul")
    a = cp.ones((16, 20), cp.float16)
    b = cp.ones((20, 16), cp.float16)
    c = cp.empty((16, 16), cp.float16)
    with pytest.raises(RuntimeError, match="matmul.*CUDA error"):
        mod.gemm_f16(a.data.ptr, b.data.ptr, c.data.ptr, 0, 16, 16, 20, 1, 20, 16, 16, 0, 0, 0,
                     False, False, 0, cp.cuda.get_current_stream().ptr)
    with pytest.raises(RuntimeError, match="matmul.*CUDA error"):
        mod.gemm_f32(a.data.ptr, b.data.ptr, c.data.ptr, 0, 16, 16, 20, 1, 20, 16, 16, 0, 0, 0,
                     False, False, 7, cp.cuda.get_current_stream().ptr)
