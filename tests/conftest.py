import math
import os

import numpy as np
import pytest

import pyfastnn
from pyfastnn._backend import _core

_LEVELS = ["scalar", "avx2", "avx512"]

# The folder that holds the pyfastnn these tests import: the checkout in development, site-packages when CI
# runs the suite against an installed wheel (the checkout then has no built extension and must not shadow it).
PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(pyfastnn.__file__)))


def child_env(extra=None):
    """os.environ plus `extra`, with PYTHONPATH leading to the pyfastnn under test, for tests that run a child
    Python. Run such a child with cwd=PACKAGE_PARENT (or any folder without a pyfastnn/ in it): `python -c`
    puts its working folder first on sys.path."""
    env = dict(os.environ, **(extra or {}))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (PACKAGE_PARENT, env.get("PYTHONPATH")) if p)
    return env


def available_isas():
    """Every level the CPU supports, or only the one PYFASTNN_CPU_ISA forced at import."""
    if os.environ.get("PYFASTNN_CPU_ISA") in _LEVELS:
        return [_core.cpu_isa()]
    best = _core.best_cpu_isa()
    return _LEVELS[: _LEVELS.index(best) + 1]


@pytest.fixture(params=available_isas())
def isa(request):
    """Runs the test once per ISA level this CPU supports, then restores the level."""
    before = _core.cpu_isa()
    _core._set_cpu_isa(request.param)
    yield request.param
    _core._set_cpu_isa(before)


@pytest.fixture(params=[1, 2])
def threads(request):
    """Runs the test with this many CPU threads, then restores the setting."""
    before = pyfastnn.get_num_threads()
    pyfastnn.set_num_threads(request.param)
    yield request.param
    pyfastnn.set_num_threads(before)


_erfc = np.vectorize(math.erfc, otypes=[np.float64])


def activation_ref(x, activation):
    """float64 reference activations (PyTorch's definitions; gelu is the exact erf form, gelu_tanh
    torch's GELU(approximate='tanh'))."""
    x = np.asarray(x, dtype=np.float64)
    if activation is None:
        return x
    if activation == "relu":
        return np.maximum(x, 0.0)
    if activation == "gelu":
        # erfc keeps the left tail exact, where 1 + erf(x) would cancel to 0.
        return 0.5 * x * _erfc(-x / math.sqrt(2.0))
    if activation == "sigmoid":
        return 1.0 / (1.0 + np.exp(-x))
    if activation == "tanh":
        return np.tanh(x)
    if activation == "gelu_tanh":
        # 0.5 (1 + tanh u) = sigmoid(2u): no cancellation in the left tail.
        u2 = 2.0 * math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)
        with np.errstate(over="ignore"):
            return x / (1.0 + np.exp(-u2))
    if activation == "silu":
        with np.errstate(over="ignore"):
            return x / (1.0 + np.exp(-x))
    raise ValueError(activation)


def rel_error(got, ref, floor=1e-12):
    """Norm-wise relative error, the usual measure for GEMM results. A reference
    whose norm is below `floor` (a mathematically zero result holding only
    rounding noise) is compared in absolute terms instead."""
    got = np.asarray(got, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if ref.size == 0:
        return 0.0
    denom = np.linalg.norm(ref)
    return float(np.linalg.norm(got - ref) / max(denom, floor, 1e-300))


def assert_raises_naming(call, exc, words):
    """call() raises exc and its message contains every word (op, argument, ...)."""
    with pytest.raises(exc) as info:
        call()
    for word in words:
        assert word in str(info.value), (word, str(info.value))


def cupy_or_skip():
    """CuPy, or a skip saying why there is no GPU (CUDA tests run only where one is)."""
    import pyfastnn

    info = pyfastnn.backend_info()
    if not info["cuda_available"]:
        pytest.skip("no CUDA device: " + str(info["cuda_error"]))
    return pytest.importorskip("cupy")


@pytest.fixture
def cp():
    return cupy_or_skip()


def matmul_reference(a, b, bias=None, activation=None, trans_a=False, trans_b=False):
    """float64 act(op(a) @ op(b) + bias) on the host."""
    a64 = np.asarray(a, np.float64)
    b64 = np.asarray(b, np.float64)
    if trans_a:
        a64 = np.swapaxes(a64, -1, -2)
    if trans_b:
        b64 = np.swapaxes(b64, -1, -2)
    out = a64 @ b64
    if bias is not None:
        out = out + np.asarray(bias, np.float64)
    return activation_ref(out, activation)
