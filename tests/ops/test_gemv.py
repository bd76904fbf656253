"""The GEMV path of ops.matmul (one to four rows times a Linear weight given with trans_b: a decode step)
against the float64 reference: every ISA level, 1 and 2 threads, k and n around the vector width, bias and
each fused activation; the rows it hands back to the GEMM (more rows, strided rows) stay right too."""
import numpy as np
import pytest

import pyfastnn
from pyfastnn import ops
from conftest import matmul_reference as reference, rel_error

ACTIVATIONS = [None, "relu", "gelu", "sigmoid", "tanh", "gelu_tanh", "silu"]
TOL = {np.float32: 1e-5, np.float64: 1e-12}


@pytest.mark.parametrize("m", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("n,k", [(16, 16), (17, 31), (33, 47), (203, 768), (5, 16), (16, 15)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rows_times_weight(isa, threads, m, n, k, dtype):
    rng = np.random.default_rng(m * 1000 + n * 7 + k)
    x = rng.standard_normal((m, k)).astype(dtype)
    w = rng.standard_normal((n, k)).astype(dtype)
    out = ops.matmul(x, w, trans_b=True)
    assert out.shape == (m, n) and out.dtype == dtype
    assert rel_error(out, reference(x, w, trans_b=True)) < TOL[dtype]


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bias_and_activation(isa, activation, dtype):
    rng = np.random.default_rng()
    x = rng.standard_normal((2, 77)).astype(dtype)
    w = rng.standard_normal((131, 77)).astype(dtype)
    b = rng.standard_normal(131).astype(dtype)
    out = ops.matmul(x, w, b, activation=activation, trans_b=True)
    assert rel_error(out, reference(x, w, b, activation, trans_b=True)) < TOL[dtype]


def test_views_of_rows_and_weights():
    rng = np.random.default_rng()
    big = rng.standard_normal((6, 300)).astype(np.float32)
    w = rng.standard_normal((90, 400)).astype(np.float32)[:, 50:350]          # rows of w strided by 400
    for x in (big[1:2, :], big[::2, :], big[:3, ::-1], big[:, ::2][:2, :150]):
        ww = w if x.shape[1] == 300 else w[:, :150]
        assert rel_error(ops.matmul(x, ww, trans_b=True), reference(x, ww, trans_b=True)) < 1e-5


def test_same_bits_for_any_thread_count():
    rng = np.random.default_rng()
    x = rng.standard_normal((3, 500)).astype(np.float32)
    w = rng.standard_normal((4099, 500)).astype(np.float32)
    before = pyfastnn.get_num_threads()
    try:
        results = []
        for n in (1, 2, 3):
            pyfastnn.set_num_threads(n)
            results.append(ops.matmul(x, w, activation="gelu_tanh", trans_b=True))
    finally:
        pyfastnn.set_num_threads(before)
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])
