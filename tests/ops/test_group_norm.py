"""group_norm and its gradients against PyTorch (float64 references), at every
ISA level; statistics and gradients bit-identical for any thread count."""
import numpy as np
import pytest

import pyfastnn
from pyfastnn import ops
from conftest import assert_raises_naming, rel_error

torch = pytest.importorskip("torch")
F = torch.nn.functional
TOL = {np.float32: (2e-6, 2e-5), np.float64: (1e-13, 1e-11)}

CASES = [  # shape, groups
    ((2, 4), 2), ((3, 6, 5), 3), ((2, 8, 7, 9), 4), ((1, 3, 5, 5), 1), ((2, 6, 3, 4), 6), ((4, 32, 13, 11), 8),
    ((1, 2, 3, 4, 5), 2), ((0, 4, 3, 3), 2), ((1, 4, 67, 67), 2), ((2, 2, 1, 1), 1), ((1, 1, 4099), 1),
]


@pytest.mark.parametrize("shape,groups", CASES)
@pytest.mark.parametrize("affine", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_group_norm(isa, shape, groups, affine, dtype):
    rng = np.random.default_rng(0)
    C = shape[1]
    x = (1.5 + 2 * rng.standard_normal(shape)).astype(dtype)
    w = rng.standard_normal(C).astype(dtype) if affine else None
    b = rng.standard_normal(C).astype(dtype) if affine else None
    tx = torch.from_numpy(x).double().requires_grad_()
    tw = torch.from_numpy(w).double().requires_grad_() if affine else None
    tb = torch.from_numpy(b).double().requires_grad_() if affine else None
    ty, tm, tr = torch.native_group_norm(tx, tw, tb, shape[0], C, int(np.prod(shape[2:])), groups, 1e-5)
    y, mean, rstd = ops.group_norm(x, groups, w, b, eps=1e-5)
    assert y.dtype == dtype and y.shape == shape and mean.shape == (shape[0], groups) and rstd.shape == mean.shape
    assert rel_error(y, ty.detach().numpy()) < TOL[dtype][0]
    assert rel_error(mean, tm.detach().numpy()) < TOL[dtype][0]
    assert rel_error(rstd, tr.detach().numpy()) < TOL[dtype][0]
    g = rng.standard_normal(shape).astype(dtype)
    gx, gw, gb = ops.group_norm_backward(g, x, mean, rstd, groups, w)
    assert gx.shape == shape and gw.shape == (C,) and gb.shape == (C,)
    if not ty.numel():
        return
    ty.backward(torch.from_numpy(g).double())
    # Small groups make grad_x a cancellation (2 elements: nearly 0): measured
    # against the floor, and allowed up to twice PyTorch's own error in the dtype.
    tx32 = torch.from_numpy(x).requires_grad_()
    F.group_norm(tx32, groups, None if w is None else torch.from_numpy(w),
                 None if b is None else torch.from_numpy(b)).backward(torch.from_numpy(g))
    torch_err = rel_error(tx32.grad.numpy(), tx.grad.numpy(), 1e-2)
    assert rel_error(gx, tx.grad.numpy(), 1e-2) < max(TOL[dtype][1], 2 * torch_err)
    if affine:
        assert rel_error(gw, tw.grad.numpy(), 1e-2) < TOL[dtype][1]
        assert rel_error(gb, tb.grad.numpy(), 1e-2) < TOL[dtype][1]
    else:  # what a weight of ones and a bias would get
        xd = torch.from_numpy(x).double()
        w1 = torch.ones(C, dtype=torch.float64, requires_grad=True)
        b0 = torch.zeros(C, dtype=torch.float64, requires_grad=True)
        F.group_norm(xd, groups, w1, b0).backward(torch.from_numpy(g).double())
        assert rel_error(gw, w1.grad.numpy(), 1e-2) < TOL[dtype][1]
        assert rel_error(gb, b0.grad.numpy(), 1e-2) < TOL[dtype][1]


@pytest.mark.parametrize("shape,groups", [((16, 64, 20, 20), 32), ((1, 4, 150, 150), 2), ((3, 2, 9000), 1)])
def test_threads_bit_identical(isa, shape, groups):
    # The first shape has many groups (a whole group per task), the others a few
    # large ones (chunks of groups per task, depending on the thread count).
    rng = np.random.default_rng(1)
    x = (3 + rng.standard_normal(shape)).astype(np.float32)
    w = rng.standard_normal(shape[1]).astype(np.float32)
    b = rng.standard_normal(shape[1]).astype(np.float32)
    g = rng.standard_normal(shape).astype(np.float32)
    before = pyfastnn.get_num_threads()
    try:
        outs = []
        for n in (1, 2, 3, 4):
            pyfastnn.set_num_threads(n)
            y, m, r = ops.group_norm(x, groups, w, b)
            outs.append((y, m, r) + ops.group_norm_backward(g, x, m, r, groups, w))
    finally:
        pyfastnn.set_num_threads(before)
    for o in outs[1:]:
        for a, ref in zip(o, outs[0]):
            np.testing.assert_array_equal(a, ref)


def test_views_and_large_mean(isa):
    rng = np.random.default_rng(2)
    base = (1000 + rng.standard_normal((4, 12, 10, 10))).astype(np.float32)   # mean far from 0: two-pass variance
    x = base[:, ::2, :, ::-1]
    y, m, r = ops.group_norm(x, 3)
    yc, mc, rc = ops.group_norm(np.ascontiguousarray(x), 3)
    np.testing.assert_array_equal(y, yc)
    ty = F.group_norm(torch.from_numpy(np.ascontiguousarray(x)).double(), 3)
    assert rel_error(y, ty.numpy()) < 1e-4


X = np.ones((2, 4, 3), np.float32)
BAD = [
    (lambda: ops.group_norm(X.astype(np.int32), 2), TypeError, ["group_norm", "'x'", "int32"]),
    (lambda: ops.group_norm(np.ones(4, np.float32), 2), ValueError, ["group_norm", "'x'", "2-D"]),
    (lambda: ops.group_norm(X, 3), ValueError, ["group_norm", "'num_groups'", "divide"]),
    (lambda: ops.group_norm(X, 0), ValueError, ["group_norm", "'num_groups'"]),
    (lambda: ops.group_norm(X, 2.0), TypeError, ["group_norm", "'num_groups'"]),
    (lambda: ops.group_norm(X, 2, np.ones(3, np.float32)), ValueError, ["group_norm", "'weight'", "(4,)"]),
    (lambda: ops.group_norm(X, 2, None, np.ones(4)), TypeError, ["group_norm", "'bias'", "float32"]),
    (lambda: ops.group_norm(X, 2, eps=-1.0), ValueError, ["group_norm", "'eps'"]),
    (lambda: ops.group_norm(X, 2, eps="a"), TypeError, ["group_norm", "'eps'"]),
    (lambda: ops.group_norm_backward(X, X, np.ones((2, 2), np.float32), np.ones((2, 3), np.float32), 2), ValueError,
     ["group_norm_backward", "'rstd'"]),
    (lambda: ops.group_norm_backward(X, X[:1], np.ones((2, 2), np.float32), np.ones((2, 2), np.float32), 2),
     ValueError, ["group_norm_backward", "'x'"]),
    (lambda: ops.group_norm_backward(X, X, np.ones((2, 2)), np.ones((2, 2), np.float32), 2), TypeError,
     ["group_norm_backward", "'mean'", "float32"]),
]


@pytest.mark.parametrize("call,exc,words", BAD)
def test_bad_input(call, exc, words):
    assert_raises_naming(call, exc, words)
