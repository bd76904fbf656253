"""bias_activation on the CPU against numpy, and on CUDA against the CPU."""
import numpy as np
import pytest

import pyfastnn
from pyfastnn import ops
from conftest import activation_ref, cupy_or_skip as _cupy_or_skip, rel_error

ACTIVATIONS = [None, "relu", "gelu", "sigmoid", "tanh", "gelu_tanh", "silu"]


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("shape", [(0, 3), (1, 1), (7, 13), (33, 129)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cpu_matches_reference(isa, activation, shape, dtype):
    rng = np.random.default_rng()
    x = (3 * rng.standard_normal(shape)).astype(dtype)
    bias = rng.standard_normal(shape[1]).astype(dtype)
    out = ops.bias_activation(x, bias, activation=activation)
    assert out.dtype == dtype and out.shape == shape
    tol = 1e-5 if dtype == np.float32 else 1e-12
    # The sum is rounded to the working dtype before the activation, as in any
    # float32 implementation; the reference does the same.
    assert rel_error(out, activation_ref(x + bias, activation)) < tol
    assert rel_error(ops.bias_activation(x[:, ::-1]), x[:, ::-1]) == 0


def test_bad_inputs():
    x = np.ones((2, 3), np.float32)
    with pytest.raises(ValueError, match="bias_activation.*'x'"):
        ops.bias_activation(np.ones(3, np.float32))
    with pytest.raises(TypeError, match="bias_activation.*'x'.*int"):
        ops.bias_activation(np.ones((2, 3), np.int32))
    with pytest.raises(ValueError, match="bias_activation.*'bias'"):
        ops.bias_activation(x, np.ones(2, np.float32))
    with pytest.raises(ValueError, match="bias_activation.*'activation'"):
        ops.bias_activation(x, activation="elu")



@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("shape", [(1, 1), (7, 13), (257, 1031)])
def test_cuda_matches_cpu(activation, shape):
    cupy = _cupy_or_skip()
    rng = np.random.default_rng()
    x = (3 * rng.standard_normal(shape)).astype(np.float32)
    bias = rng.standard_normal(shape[1]).astype(np.float32)
    out = ops.bias_activation(cupy.asarray(x), cupy.asarray(bias), activation=activation)
    assert isinstance(out, cupy.ndarray)
    assert rel_error(cupy.asnumpy(out), ops.bias_activation(x, bias, activation=activation)) < 1e-6


def test_cuda_without_gpu_raises_clearly():
    if pyfastnn.backend_info()["cuda_available"]:
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        pyfastnn._backend.require_cuda("bias_activation")
