"""Arguments too large for 64-bit sizes (issue 18, items 1 and 9).

Every size an op derives from its arguments goes through checked arithmetic
(csrc/common/size_math.h): an argument whose derived size would wrap is a
ValueError naming the op and the argument, never a wrapped size that passes
the checks (before: conv2d with kernel 9 and dilation=2**61 read far out of
bounds and crashed; kernel 5 with dilation=2**62 silently returned
x * w.sum(); padding='same' leaked a C++ length error). Python ints that do not
fit in 64 bits, and shapes too large to allocate, are errors naming the op and
the argument too (before: pybind11's "Unable to cast Python instance", numpy's
MemoryError without the op).

The crash cases run in a child interpreter, so a regression fails the test
instead of killing pytest.
"""
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import pyfastnn
from pyfastnn import nn, ops
from conftest import PACKAGE_PARENT, child_env, assert_raises_naming



def f32(*shape):
    return np.ones(shape, np.float32)


def _in_child(code):
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120,
                         env=child_env(), cwd=PACKAGE_PARENT)
    assert out.returncode == 0, f"child died ({out.returncode}):\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}"
    return out.stdout


# ------------------------------------------------------------------ item 1
_OVERFLOW_CALLS = {
    "conv2d-k9-dilation-2**61": "ops.conv2d(x, w9, dilation=2**61)",
    "conv2d_backward-k9-dilation-2**61": "ops.conv2d_backward(np.ones((1, 1, 1, 1), np.float32), x, w9, dilation=2**61)",
    "conv2d-k5-dilation-2**62": "ops.conv2d(x, w5, dilation=2**62)",
    "conv2d-same-dilation-2**62": "ops.conv2d(x, w5, dilation=2**62, padding='same')",
    "conv2d-same-dilation-2**61": "ops.conv2d(x, w5, dilation=2**61, padding='same')",
    "conv2d-padding-2**62": "ops.conv2d(x, w5, padding=2**62)",
    "conv2d-dilation-pair": "ops.conv2d(x, w9, dilation=(1, 2**61))",
    "Conv2d-module": "nn.Conv2d(1, 1, 9, dilation=2**61)(x)",
    "max_pool2d-padding": "ops.max_pool2d(x, 2**63 - 1, padding=2**62)",
    "avg_pool2d-padding": "ops.avg_pool2d(x, 2**63 - 1, padding=2**62 - 1)",
    "avg_pool2d_backward-x_shape": "ops.avg_pool2d_backward(np.ones((1, 1, 1, 1), np.float32), (2**62, 2**62, 1, 1), 1)",
    "max_pool2d_backward-x_shape": ("ops.max_pool2d_backward(np.ones((1, 1, 1, 1), np.float32), "
                                    "np.zeros((1, 1, 1, 1), np.int64), (2**40, 2**40, 1, 1))"),
}
_OVERFLOW_EXPECT = {
    "conv2d-k9-dilation-2**61": (ValueError, ["conv2d", "'dilation'"]),
    "conv2d_backward-k9-dilation-2**61": (ValueError, ["conv2d_backward", "'dilation'"]),
    "conv2d-k5-dilation-2**62": (ValueError, ["conv2d", "'dilation'"]),
    "conv2d-same-dilation-2**62": (ValueError, ["conv2d", "'dilation'"]),
    "conv2d-same-dilation-2**61": (ValueError, ["conv2d", "'dilation'"]),
    "conv2d-padding-2**62": (ValueError, ["conv2d", "'padding'"]),
    "conv2d-dilation-pair": (ValueError, ["conv2d", "'dilation'"]),
    "Conv2d-module": (ValueError, ["Conv2d", "'dilation'"]),  # refused when the module is built
    "max_pool2d-padding": (ValueError, ["max_pool2d", "'padding'"]),
    "avg_pool2d-padding": (ValueError, ["avg_pool2d", "'padding'"]),
    "avg_pool2d_backward-x_shape": (ValueError, ["avg_pool2d_backward", "'x_shape'"]),
    "max_pool2d_backward-x_shape": (ValueError, ["max_pool2d_backward", "'x_shape'"]),
}


@pytest.mark.parametrize("case", list(_OVERFLOW_CALLS))
def test_geometry_overflow_is_a_value_error(case):
    """Issue 18 item 1 reproducers (kernel 9 / dilation 2**61 crashed with
    SIGSEGV; kernel 5 / dilation 2**62 returned x * w.sum(); padding='same' gave
    a C++ length error), and their kin for the pools' padding and shapes."""
    exc, words = _OVERFLOW_EXPECT[case]
    out = _in_child(f"""
import numpy as np
from pyfastnn import nn, ops
x = np.random.default_rng(0).random((1, 1, 8, 8)).astype(np.float32)
w9, w5 = np.ones((1, 1, 9, 9), np.float32), np.ones((1, 1, 5, 5), np.float32)
try:
    got = {_OVERFLOW_CALLS[case]}
    print("RETURNED", type(got).__name__)
except Exception as e:
    print(type(e).__name__)
    print(e)
""")
    kind, _, message = out.partition("\n")
    assert kind == exc.__name__, out
    for word in words:
        assert word in message, (word, message)


def test_large_but_fitting_geometry_still_computes():
    """Checked arithmetic refuses only sizes that do not fit: a dilation whose
    effective kernel still fits the padded input gives PyTorch's answer."""
    rng = np.random.default_rng(1)
    x, w = rng.random((1, 2, 9, 9)).astype(np.float32), rng.random((3, 2, 3, 3)).astype(np.float32)
    # dilation 4 with padding 4: every output pixel sees the centre tap and the taps 4 away
    got = ops.conv2d(x, w, padding=4, dilation=4)
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (4, 4), (4, 4)))
    ref = np.zeros((1, 3, 9, 9))
    for ky in range(3):
        for kx in range(3):
            ref += np.einsum("nchw,oc->nohw", xp[:, :, 4 * ky:4 * ky + 9, 4 * kx:4 * kx + 9], w[:, :, ky, kx])
    np.testing.assert_allclose(got, ref, rtol=1e-5)
    # a huge stride is fine: one output pixel
    assert ops.conv2d(x, w, stride=2**62).shape == (1, 3, 1, 1)
    assert ops.max_pool2d(x, 3, stride=2**63 - 1)[0].shape == (1, 2, 1, 1)


# ------------------------------------------------------------------ item 9
HUGE_INTS = [2**63, 2**64, 2**100]


@pytest.mark.parametrize("value", HUGE_INTS + [-2**64])
@pytest.mark.parametrize("call,words", [
    (lambda v: ops.conv2d(f32(1, 1, 4, 4), f32(1, 1, 3, 3), stride=v), ["conv2d", "'stride'"]),
    (lambda v: ops.conv2d(f32(1, 1, 4, 4), f32(1, 1, 3, 3), stride=(1, v)), ["conv2d", "'stride'"]),
    (lambda v: ops.conv2d(f32(1, 1, 4, 4), f32(1, 1, 3, 3), padding=v), ["conv2d", "'padding'"]),
    (lambda v: ops.conv2d(f32(1, 1, 4, 4), f32(1, 1, 3, 3), dilation=v), ["conv2d", "'dilation'"]),
    (lambda v: ops.conv2d(f32(1, 2, 4, 4), f32(2, 1, 3, 3), groups=v), ["conv2d", "'groups'"]),
    (lambda v: ops.conv2d_backward(f32(1, 1, 2, 2), f32(1, 1, 4, 4), f32(1, 1, 3, 3), stride=v),
     ["conv2d_backward", "'stride'"]),
    (lambda v: ops.max_pool2d(f32(1, 1, 4, 4), v), ["max_pool2d", "'kernel_size'"]),
    (lambda v: ops.max_pool2d(f32(1, 1, 4, 4), 2, stride=v), ["max_pool2d", "'stride'"]),
    (lambda v: ops.avg_pool2d(f32(1, 1, 4, 4), (2, v)), ["avg_pool2d", "'kernel_size'"]),
    (lambda v: ops.avg_pool2d(f32(1, 1, 4, 4), 2, padding=v), ["avg_pool2d", "'padding'"]),
    (lambda v: ops.avg_pool2d_backward(f32(1, 1, 2, 2), (1, 1, 4, 4), v), ["avg_pool2d_backward", "'kernel_size'"]),
    (lambda v: ops.avg_pool2d_backward(f32(1, 1, 2, 2), (1, 1, v, 4), 2), ["avg_pool2d_backward", "'x_shape'"]),
    (lambda v: ops.max_pool2d_backward(f32(1, 1, 2, 2), np.zeros((1, 1, 2, 2), np.int64), (1, v, 4, 4)),
     ["max_pool2d_backward", "'x_shape'"]),
    (lambda v: ops.cross_entropy(f32(3, 4), np.array([0, 1, 2]), ignore_index=v), ["cross_entropy", "'ignore_index'"]),
    (lambda v: ops.cross_entropy_backward(f32(3, 4), np.array([0, 1, 2]), ignore_index=v),
     ["cross_entropy_backward", "'ignore_index'"]),
], ids=["conv2d-stride", "conv2d-stride-pair", "conv2d-padding", "conv2d-dilation", "conv2d-groups",
        "conv2d_backward-stride", "max_pool2d-kernel_size", "max_pool2d-stride", "avg_pool2d-kernel_size",
        "avg_pool2d-padding", "avg_pool2d_backward-kernel_size", "avg_pool2d_backward-x_shape",
        "max_pool2d_backward-x_shape", "cross_entropy-ignore_index", "cross_entropy_backward-ignore_index"])
def test_ints_beyond_64_bits_name_op_and_argument(call, words, value):
    """Issue 18 item 9 reproducer: a Python int of 2**64 for stride/kernel_size
    gave pybind11's RuntimeError "Unable to cast Python instance"."""
    with pytest.raises((ValueError, TypeError)) as info:
        call(value)
    message = str(info.value)
    assert "Unable to cast" not in message and "incompatible function arguments" not in message, message
    for word in words:
        assert word in message, (word, message)


def _view(shape, dtype=np.float32):
    """A zero-stride view of one element: any shape (below 2**63 bytes) for free."""
    return np.broadcast_to(np.ones((1,) * len(shape), dtype), shape)


@pytest.mark.parametrize("call,exc,words", [
    # outputs, scratch and contiguous copies too large to allocate; the inputs are zero-stride views
    (lambda: ops.conv2d(_view((2**40, 1, 1, 1)), _view((2**22, 1, 1, 1))), MemoryError, ["conv2d", "output"]),
    (lambda: ops.conv2d(_view((2**20, 1, 1, 1)), _view((2**20, 1, 1, 1))), MemoryError, ["conv2d"]),
    (lambda: ops.matmul(_view((2**40, 1)), _view((1, 2**40))), MemoryError, ["matmul", "output"]),
    (lambda: ops.avg_pool2d_backward(_view((2**30, 2**29, 1, 1)), (2**30, 2**29, 2, 2), 2), MemoryError,
     ["avg_pool2d_backward"]),
    (lambda: ops.max_pool2d_backward(_view((2**30, 2**29, 1, 1)), _view((2**30, 2**29, 1, 1), np.int64),
                                     (2**30, 2**29, 2, 2)), MemoryError, ["max_pool2d_backward"]),
    (lambda: ops.max_pool2d(_view((2**29, 2**29, 2, 2)), 2), MemoryError, ["max_pool2d"]),
    (lambda: ops.relu(_view((2**59,))), MemoryError, ["relu"]),
    (lambda: ops.softmax(_view((2**30, 2**29))), MemoryError, ["softmax"]),
    (lambda: ops.layer_norm(_view((2**30, 2**29)), 2**29), MemoryError, ["layer_norm"]),
    (lambda: ops.attention(*[_view((2**20, 2**20, 2**10, 4))] * 3), MemoryError, ["attention"]),
    (lambda: ops.lstm(_view((2**40, 1, 1)), f32(1, 1), f32(1, 1), f32(4, 1), f32(4, 1)), MemoryError, ["lstm"]),
    (lambda: ops.lstm(_view((2**60, 1, 1)), f32(1, 1), f32(1, 1), f32(4, 1), f32(4, 1)), MemoryError,
     ["lstm", "gates"]),
], ids=["conv2d-output", "conv2d-scratch", "matmul-output", "avg_pool2d_backward", "max_pool2d_backward",
        "max_pool2d-output", "relu-copy", "softmax-copy", "layer_norm-copy", "attention-copy", "lstm-copy",
        "lstm-gates"])
def test_huge_shapes_name_the_op(call, exc, words):
    """Shapes too large to allocate: a MemoryError (or ValueError) that names
    the op, not numpy's bare MemoryError/ValueError."""
    assert_raises_naming(call, exc, words)


def test_process_is_healthy_after_the_size_errors():
    x = np.random.default_rng(2).random((2, 3, 9, 9)).astype(np.float32)
    w = np.ones((4, 3, 3, 3), np.float32)
    for bad in (2**61, 2**62, 2**64):
        with pytest.raises((ValueError, TypeError)):
            ops.conv2d(x, w, dilation=bad)
    y = ops.conv2d(x, w, padding=1)
    assert y.shape == (2, 4, 9, 9) and np.isfinite(y).all()
    assert pyfastnn.get_num_threads() >= 1
