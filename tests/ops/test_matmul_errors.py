"""Bad input to matmul: a clear exception naming the op and the argument."""
import numpy as np
import pytest

from pyfastnn import ops

f32 = np.float32
A = np.ones((3, 4), f32)
B = np.ones((4, 5), f32)

CASES = [
    # (a, b, kwargs, exception, words the message must contain)
    (np.ones((3, 4), np.int64), B, {}, TypeError, ["matmul", "'a'", "int64"]),
    (A, np.ones((4, 5), np.int32), {}, TypeError, ["matmul", "'b'", "int32"]),
    (A, np.ones((4, 5), np.float64), {}, TypeError, ["matmul", "'a'", "'b'", "same dtype"]),
    (A.astype(np.float16), B.astype(np.float16), {}, TypeError, ["matmul", "'a'", "float16"]),
    (A.astype(np.complex64), B, {}, TypeError, ["matmul", "'a'", "complex64"]),
    (A.astype(">f4"), B, {}, TypeError, ["matmul", "'a'"]),
    (np.ones(4, f32), B, {}, ValueError, ["matmul", "'a'", "2-D to 3-D", "(4,)"]),
    (A, np.ones((2, 2, 4, 5), f32), {}, ValueError, ["matmul", "'b'", "(2, 2, 4, 5)"]),
    (np.float32(3.0), B, {}, TypeError, ["matmul", "'a'"]),
    (A, np.ones((5, 5), f32), {}, ValueError, ["matmul", "inner dimensions", "'a'", "'b'", "K=4", "K=5"]),
    (A, B, {"trans_b": True}, ValueError, ["matmul", "inner dimensions", "transposed"]),
    (np.ones((2, 3, 4), f32), np.ones((3, 4, 5), f32), {}, ValueError, ["matmul", "batch sizes"]),
    (A, B, {"bias": np.ones(4, f32)}, ValueError, ["matmul", "'bias'", "(5,)", "(4,)"]),
    (A, B, {"bias": np.ones((1, 5), f32)}, ValueError, ["matmul", "'bias'", "(1, 5)"]),
    (A, B, {"bias": np.ones(5, np.float64)}, TypeError, ["matmul", "'bias'", "float64"]),
    (A, B, {"bias": [1, 2, 3, 4, 5]}, TypeError, ["matmul", "'bias'", "list"]),
    (A, B, {"activation": "swish"}, ValueError, ["matmul", "'activation'", "swish"]),
    (A, B, {"activation": "none"}, ValueError, ["matmul", "'activation'"]),
    (A, B, {"activation": 3}, TypeError, ["matmul", "'activation'", "int"]),
    ([[1.0, 2.0]], B, {}, TypeError, ["matmul", "'a'", "list"]),
    ("abc", B, {}, TypeError, ["matmul", "'a'", "str"]),
]


@pytest.mark.parametrize("a,b,kwargs,exc,words", CASES)
def test_bad_input(a, b, kwargs, exc, words):
    with pytest.raises(exc) as info:
        ops.matmul(a, b, **kwargs)
    message = str(info.value)
    for word in words:
        assert word in message, (word, message)


def test_output_size_overflow_is_memory_error():
    # Zero-stride views cost nothing, but their product would need 2**80 elements.
    a = np.broadcast_to(np.ones((1, 1), f32), (2**40, 1))
    b = np.broadcast_to(np.ones((1, 1), f32), (1, 2**40))
    with pytest.raises(MemoryError) as info:
        ops.matmul(a, b)
    assert "matmul" in str(info.value) and "output" in str(info.value)


def test_output_too_large_for_address_space():
    a = np.broadcast_to(np.ones((1, 1), f32), (2**31, 1))
    b = np.broadcast_to(np.ones((1, 1), f32), (1, 2**31))
    with pytest.raises(MemoryError):
        ops.matmul(a, b)


def test_cupy_array_without_cuda_is_clear():
    cupy = pytest.importorskip("cupy")
    try:
        x = cupy.ones((2, 2), cupy.float32)
    except Exception:
        pytest.skip("CuPy present but no usable GPU")
    with pytest.raises(ValueError, match="matmul.*one device"):
        ops.matmul(x, np.ones((2, 2), f32))
