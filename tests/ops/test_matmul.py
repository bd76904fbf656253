"""ops.matmul against a float64 numpy reference: every ISA level, 1 and 2
threads, awkward sizes, transposes, strided views, bias, activations, batches."""
import os

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import pyfastnn
from pyfastnn import ops
from conftest import activation_ref, matmul_reference as reference, rel_error

# 0, 1, primes, and sizes just around the register tiles (4x4, 6x16, 8x48) and
# the k block.
SHAPES = [
    (1, 1, 1), (0, 3, 4), (3, 0, 4), (3, 4, 0), (2, 3, 5), (7, 13, 11), (17, 47, 31),
    (8, 48, 64), (9, 49, 65), (13, 97, 257), (31, 1, 7), (1, 53, 29), (67, 131, 521),
]
ACTIVATIONS = [None, "relu", "gelu", "sigmoid", "tanh", "gelu_tanh", "silu"]
TOL = {np.float32: 1e-5, np.float64: 1e-12}


def operands(rng, m, n, k, dtype, trans_a=False, trans_b=False):
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
    return a, b


@pytest.mark.parametrize("m,n,k", SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_plain_shapes(isa, threads, m, n, k, dtype):
    rng = np.random.default_rng(hash((m, n, k)) % 2**32)
    a, b = operands(rng, m, n, k, dtype)
    out = ops.matmul(a, b)
    assert out.shape == (m, n) and out.dtype == dtype
    assert rel_error(out, reference(a, b)) < TOL[dtype]


@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize("trans_b", [False, True])
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_transpose_bias_activation(isa, threads, trans_a, trans_b, activation, dtype):
    rng = np.random.default_rng()
    m, n, k = 23, 61, 37
    a, b = operands(rng, m, n, k, dtype, trans_a, trans_b)
    bias = rng.standard_normal(n).astype(dtype)
    out = ops.matmul(a, b, bias, activation=activation, trans_a=trans_a, trans_b=trans_b)
    ref = reference(a, b, bias, activation, trans_a, trans_b)
    assert rel_error(out, ref) < TOL[dtype]


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_activation_tails_float32(isa, activation):
    # Inputs far into both tails, around 0 and at the switch points of the
    # vectorised formulas; a (1,1) identity makes the output the activation.
    x = np.concatenate([np.linspace(-30, 30, 601), np.linspace(-0.5, 0.5, 101), [0.0, -0.0, 0.3, -0.3]])
    x = x.astype(np.float32)[:, None]
    one = np.ones((1, x.shape[0]), np.float32)
    out = ops.matmul(one, np.diagflat(x[:, 0]), activation=activation)[0]
    ref = activation_ref(x[:, 0], activation)
    # Elementwise relative error, with an absolute floor for results near 0.
    # gelu's left tail is exp(-x^2/2)-small; rounding x^2 in float32 costs a
    # relative error that grows like x^2 * 2^-24 there (still far below
    # PyTorch's float32 gelu, which returns 0 once 1 + erf cancels).
    # gelu_tanh's and silu's left tails are exp(-|z|) with z = 2u or x: rounding z
    # costs a relative error of about |z| * 2^-24 there, in the same way.
    err = np.abs(out - ref) / np.maximum(np.abs(ref), 1e-30)
    x64 = x[:, 0].astype(np.float64)
    tol = {"gelu": 2e-6 * np.maximum(1.0, x64 ** 2 / 8),
           "gelu_tanh": 2e-6 * np.maximum(1.0, np.abs(1.6 * (x64 + 0.044715 * x64 ** 3)) / 4),
           "silu": 2e-6 * np.maximum(1.0, np.abs(x64) / 4)}.get(activation, 2e-6)
    ok = (err < tol) | (np.abs(out - ref) < 1e-37)
    assert ok.all(), (x[~ok, 0], out[~ok], ref[~ok])


def test_nan_and_inf_propagate(isa):
    a = np.array([[np.nan, 1.0], [np.inf, 1.0], [1.0, 1.0]], np.float32)
    b = np.ones((2, 3), np.float32)
    out = ops.matmul(a, b)
    assert np.isnan(out[0]).all() and np.isinf(out[1]).all() and (out[2] == 2).all()
    out = ops.matmul(a, b, activation="relu")
    assert np.isnan(out[0]).all()


def test_strided_views(isa, threads):
    rng = np.random.default_rng()
    big_a = rng.standard_normal((90, 120)).astype(np.float32)
    big_b = rng.standard_normal((80, 130)).astype(np.float32)
    cases = [
        (big_a[::2, 1::3], big_b[:40, ::2][:, :50]),            # sliced rows and columns
        (np.asfortranarray(big_a[:31, :40]), big_b[:40, :17]),  # column-major a
        (big_a[::-1, :40], big_b[:40, ::-1]),                   # negative strides
        (big_a[:31, :40].T.copy().T, np.asfortranarray(big_b[:40, :33])),
    ]
    for a, b in cases:
        out = ops.matmul(a, b)
        assert rel_error(out, reference(a, b)) < 1e-5


def test_broadcast_operand_with_zero_strides():
    row = np.arange(5, dtype=np.float32)
    a = np.broadcast_to(row, (7, 5))            # row stride 0
    b = np.ones((5, 3), np.float32)
    assert rel_error(ops.matmul(a, b), reference(a, b)) < 1e-6


@pytest.mark.parametrize("shape_a,shape_b", [
    ((0, 3, 4), (4, 5)), ((3, 4), (0, 4, 5)), ((1, 3, 4), (0, 4, 5)), ((0, 3, 4), (1, 4, 5)), ((0, 3, 4), (0, 4, 5)),
])
def test_empty_batch_broadcasts_like_numpy(shape_a, shape_b):
    a, b = np.ones(shape_a, np.float32), np.ones(shape_b, np.float32)
    out = ops.matmul(a, b)
    assert out.shape == np.matmul(a, b).shape == (0, 3, 5)


def test_field_view_with_odd_byte_strides():
    rec = np.zeros((6, 4), dtype=[("x", np.float32), ("pad", np.int8)])
    rec["x"] = np.arange(24, dtype=np.float32).reshape(6, 4)
    a = rec["x"]                                # strides of 5 bytes: not whole elements
    b = np.eye(4, dtype=np.float32)
    np.testing.assert_array_equal(ops.matmul(a, b), rec["x"])


@pytest.mark.parametrize("shape_a,shape_b", [
    ((3, 5, 7), (3, 7, 4)),
    ((3, 5, 7), (7, 4)),
    ((5, 7), (3, 7, 4)),
    ((1, 5, 7), (4, 7, 2)),
    ((6, 1, 3), (6, 3, 1)),
    ((0, 5, 7), (0, 7, 4)),
    ((40, 9, 11), (40, 11, 13)),
])
def test_batched(isa, threads, shape_a, shape_b):
    rng = np.random.default_rng()
    a = rng.standard_normal(shape_a).astype(np.float32)
    b = rng.standard_normal(shape_b).astype(np.float32)
    bias = rng.standard_normal(shape_b[-1]).astype(np.float32)
    out = ops.matmul(a, b, bias, activation="tanh")
    ref = reference(a, b, bias, "tanh")
    assert out.shape == ref.shape
    assert rel_error(out, ref) < 1e-5


def test_batched_transposed(isa):
    rng = np.random.default_rng()
    a = rng.standard_normal((4, 9, 6)).astype(np.float32)    # (B, K, M)
    b = rng.standard_normal((4, 5, 9)).astype(np.float32)    # (B, N, K)
    out = ops.matmul(a, b, trans_a=True, trans_b=True)
    assert rel_error(out, reference(a, b, trans_a=True, trans_b=True)) < 1e-5


@pytest.mark.parametrize("blocking", [
    {"PYFASTNN_GEMM_KC": "16", "PYFASTNN_GEMM_NB": "48", "PYFASTNN_GEMM_MB": "24"},
    {"PYFASTNN_GEMM_KC": "7", "PYFASTNN_GEMM_NB": "1", "PYFASTNN_GEMM_MB": "1"},
])
def test_every_block_edge(isa, threads, blocking, monkeypatch):
    # Tiny cache blocks force every loop of the nest through many partial blocks.
    for key, value in blocking.items():
        monkeypatch.setenv(key, value)
    rng = np.random.default_rng()
    a = rng.standard_normal((53, 71)).astype(np.float32)
    b = rng.standard_normal((71, 101)).astype(np.float32)
    bias = rng.standard_normal(101).astype(np.float32)
    out = ops.matmul(a, b, bias, activation="relu")
    assert rel_error(out, reference(a, b, bias, "relu")) < 1e-5


def test_large_matches_reference(isa):
    rng = np.random.default_rng()
    a = rng.standard_normal((300, 700)).astype(np.float32)
    b = rng.standard_normal((700, 530)).astype(np.float32)
    assert rel_error(ops.matmul(a, b), reference(a, b)) < 1e-5


def test_bit_identical_across_thread_counts():
    rng = np.random.default_rng()
    a = rng.standard_normal((257, 300)).astype(np.float32)
    b = rng.standard_normal((300, 199)).astype(np.float32)
    before = pyfastnn.get_num_threads()
    try:
        results = []
        for n in (1, 2, 3):
            pyfastnn.set_num_threads(n)
            results.append(ops.matmul(a, b, activation="gelu"))
            results.append(ops.matmul(a, b, activation="gelu"))
    finally:
        pyfastnn.set_num_threads(before)
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])


def test_dlpack_input_from_torch():
    torch = pytest.importorskip("torch")
    a = torch.randn(19, 23)
    b = torch.randn(23, 7)
    out = ops.matmul(a, b)
    assert isinstance(out, np.ndarray)
    assert rel_error(out, (a.double() @ b.double()).numpy()) < 1e-5


@settings(max_examples=60, deadline=None)
@given(
    m=st.integers(0, 70), n=st.integers(0, 70), k=st.integers(0, 70),
    trans_a=st.booleans(), trans_b=st.booleans(), use_bias=st.booleans(),
    activation=st.sampled_from(ACTIVATIONS), dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**32 - 1),
)
def test_property_random_shapes(m, n, k, trans_a, trans_b, use_bias, activation, dtype, seed):
    rng = np.random.default_rng(seed)
    a, b = operands(rng, m, n, k, dtype, trans_a, trans_b)
    bias = rng.standard_normal(n).astype(dtype) if use_bias else None
    out = ops.matmul(a, b, bias, activation=activation, trans_a=trans_a, trans_b=trans_b)
    ref = reference(a, b, bias, activation, trans_a, trans_b)
    assert out.shape == ref.shape
    assert rel_error(out, ref) < TOL[dtype]
