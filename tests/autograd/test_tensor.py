"""Tensor + autograd: float64 finite-difference checks of every Tensor op and
every pyfastnn.nn.functional function, engine behaviour, and zero-copy interop."""
import numpy as np
import pytest

import pyfastnn
import pyfastnn.nn.functional as F
from pyfastnn import Tensor
from pyfastnn.autograd import gradcheck

torch = pytest.importorskip("torch")


def T(*shape, seed=0, lo=-1.0, hi=1.0, grad=True):
    """A float64 leaf with uniform values in [lo, hi)."""
    rng = np.random.default_rng(seed)
    return pyfastnn.tensor(rng.uniform(lo, hi, shape), requires_grad=grad)


def away_from_zero(*shape, seed=0, margin=0.2):
    """float64 values with |x| in [margin, 1] (no relu/abs kinks within eps)."""
    rng = np.random.default_rng(seed)
    v = rng.uniform(margin, 1.0, shape) * rng.choice([-1.0, 1.0], shape)
    return pyfastnn.tensor(v, requires_grad=True)


def distinct(*shape, seed=0):
    """float64 values 0.1 apart, shuffled: no ties for max/min/pooling."""
    rng = np.random.default_rng(seed)
    n = int(np.prod(shape))
    return pyfastnn.tensor(rng.permutation(n).reshape(shape) * 0.1 - n * 0.05, requires_grad=True)


# =================================================================== gradcheck itself
def test_gradcheck_detects_a_wrong_gradient():
    x = T(3, 2)

    def fn(a):   # forward a*3 + a, backward only knows about "+ a"
        return Tensor(a.numpy() * 3, _trusted=True) + a
    with pytest.raises(AssertionError, match="gradcheck"):
        gradcheck(fn, [x])


def test_gradcheck_non_contiguous_input():
    x = pyfastnn.as_tensor(np.random.default_rng(0).uniform(-1, 1, (4, 3)).T).requires_grad_()
    assert not x.numpy().flags.c_contiguous
    assert gradcheck(lambda a: a * a * a, [x])


def test_gradcheck_rejects_float32():
    x = pyfastnn.tensor(np.ones((2,), np.float32), requires_grad=True)
    with pytest.raises(TypeError, match="float64"):
        gradcheck(lambda a: a * 2, [x])


def test_grad_function_leaves_other_grads_alone():
    x, w = T(3), T(3, seed=1)
    g, = pyfastnn.autograd.grad((x * w).sum(), [x])
    np.testing.assert_allclose(g, w.numpy())
    assert x.grad is None and w.grad is None


# =================================================================== arithmetic
BINARY_SHAPES = [((2, 3), (2, 3)), ((2, 3), (3,)), ((2, 1), (1, 3)), ((3,), (2, 3)), ((2, 1, 3), (4, 1)), ((), (2, 2))]


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div"])
@pytest.mark.parametrize("shapes", BINARY_SHAPES, ids=str)
def test_binary_broadcast(op, shapes):
    a = T(*shapes[0], seed=1, lo=0.5, hi=1.5)
    b = T(*shapes[1], seed=2, lo=0.5, hi=1.5)
    fns = {"add": lambda x, y: x + y, "sub": lambda x, y: x - y, "mul": lambda x, y: x * y,
           "div": lambda x, y: x / y}
    assert gradcheck(fns[op], [a, b])
    # against torch's values and grads
    ta, tb = (torch.tensor(t.numpy(), requires_grad=True) for t in (a, b))
    out = fns[op](a, b)
    tout = fns[op](ta, tb)
    np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), rtol=1e-12)
    out.sum().backward()
    tout.sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), ta.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(b.grad.numpy(), tb.grad.numpy(), rtol=1e-12)


SCALAR_FNS = {
    "t+s": lambda x: x + 2.5, "s+t": lambda x: 2.5 + x, "t-s": lambda x: x - 1.5, "s-t": lambda x: 1.5 - x,
    "t*s": lambda x: x * -3.0, "s*t": lambda x: -3.0 * x, "t/s": lambda x: x / 4.0, "s/t": lambda x: 4.0 / x,
    "int": lambda x: 2 * x + 1 - x / 2, "npscalar": lambda x: x * np.float64(1.5) + np.float64(0.5),
    "arr+t": lambda x: np.arange(3.0) + x, "arr-t": lambda x: np.arange(3.0) - x,
    "arr*t": lambda x: np.arange(1.0, 4.0) * x, "arr/t": lambda x: np.arange(1.0, 4.0) / x,
    "t/arr": lambda x: x / np.arange(1.0, 4.0), "2d-arr*t": lambda x: np.ones((2, 1)) * x,
    "neg": lambda x: -x,
}


@pytest.mark.parametrize("name", list(SCALAR_FNS))
def test_scalar_and_ndarray_operands(name):
    x = T(2, 3, lo=0.5, hi=2.0)
    fn = SCALAR_FNS[name]
    assert gradcheck(fn, [x])
    out = fn(x)
    assert isinstance(out, Tensor)
    np.testing.assert_allclose(out.numpy(), fn(x.numpy().copy()), rtol=1e-12)


def test_scalar_operand_keeps_float32():
    x = pyfastnn.tensor(np.ones(3, np.float32))
    for y in (x + 1.5, 2.0 * x, x / 3, 1 - x, 2.0 / x, x ** 2, x ** 0.5):
        assert y.dtype == np.float32


def test_numpy_scalar_operand_keeps_float32():
    """np.float64 scalars (np.sqrt(d), np.pi * ...) act as Python scalars, as in torch."""
    x = pyfastnn.tensor(np.ones(3, np.float32), requires_grad=True)
    for y in (x * np.float64(2), x / np.sqrt(4.0), np.float64(2) * x, x - np.float64(1), np.float64(1) - x,
              np.float64(1) / x, x + np.int64(3), x ** np.float32(2), x ** np.int64(3)):
        assert y.dtype == np.float32, y
    assert gradcheck(lambda a: a * np.float64(1.5) - np.float64(2) / a + a ** np.float64(2), [T(4, lo=0.5, hi=2)])


def test_pow_zero_exponent_gradient_is_zero_at_zero():
    x = pyfastnn.tensor(np.array([0.0, 1.0, -2.0]), requires_grad=True)
    (x ** 0).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), 0)
    np.testing.assert_array_equal((x ** 0).numpy(), 1)


@pytest.mark.parametrize("exponent", [2, 0.5, 3, -1.5, 1, 0])
def test_pow_number(exponent):
    x = T(2, 3, lo=0.5, hi=2.0)
    assert gradcheck(lambda a: a ** exponent, [x])


def test_pow_tensor_exponent():
    x = T(2, 3, lo=0.5, hi=2.0)
    e = T(2, 3, seed=1, lo=-1.0, hi=2.0)
    assert gradcheck(lambda a, b: a ** b, [x, e])
    e2 = T(3, seed=2)
    assert gradcheck(lambda a, b: a ** b, [x, e2])   # broadcast exponent


def test_rpow():
    x = T(2, 3)
    assert gradcheck(lambda a: 2.0 ** a, [x])
    np.testing.assert_allclose((2.0 ** x).numpy(), 2.0 ** x.numpy())


# =================================================================== matmul
MATMUL_SHAPES = [((3, 4), (4, 2)), ((2, 3, 4), (2, 4, 5)), ((2, 2, 3, 4), (2, 2, 4, 3)), ((4,), (4, 3)),
                 ((3, 4), (4,)), ((4,), (4,)), ((2, 3, 4), (4, 2)), ((3, 4), (2, 4, 2)), ((2, 1, 3, 4), (3, 4, 2)),
                 ((5,), (2, 5, 3)), ((2, 3, 5), (5,))]


@pytest.mark.parametrize("shapes", MATMUL_SHAPES, ids=str)
def test_matmul(shapes):
    a = T(*shapes[0], seed=1)
    b = T(*shapes[1], seed=2)
    assert gradcheck(lambda x, y: x @ y, [a, b])
    np.testing.assert_allclose((a @ b).numpy(), np.matmul(a.numpy(), b.numpy()), rtol=1e-12, atol=1e-14)
    assert gradcheck(lambda x, y: x.matmul(y), [a, b])


def test_matmul_one_side_constant_and_ndarray_left():
    a = T(3, 4, seed=1)
    b = np.random.default_rng(2).uniform(-1, 1, (4, 2))
    assert gradcheck(lambda x: x @ b, [a])
    c = np.random.default_rng(3).uniform(-1, 1, (2, 3))
    assert gradcheck(lambda x: c @ x, [a])
    bt = T(4, 2, seed=2)
    assert gradcheck(lambda y: a.detach() @ y, [bt])


def test_matmul_non_contiguous_operands():
    a = T(4, 3, seed=1)
    b = T(2, 4, seed=2)
    assert gradcheck(lambda x, y: x.T @ y.T, [a, b])
    assert gradcheck(lambda x, y: x[::2] @ y.transpose(0, 1)[1:], [a, b])


# =================================================================== reductions
RED_ARGS = [dict(), dict(dim=0), dict(dim=1), dict(dim=-1, keepdim=True), dict(dim=(0, 2)),
            dict(dim=(0, 2), keepdim=True), dict(dim=(-1, 0)), dict(dim=-2, keepdim=True)]


@pytest.mark.parametrize("kw", RED_ARGS, ids=str)
@pytest.mark.parametrize("name", ["sum", "mean", "var", "std"])
def test_sum_mean_var_std(name, kw):
    x = T(2, 3, 4)
    fn = lambda a: getattr(a, name)(**kw)  # noqa: E731
    assert gradcheck(fn, [x])
    tx = torch.tensor(x.numpy())
    ref = getattr(tx, name)(**kw) if kw else getattr(tx, name)()
    np.testing.assert_allclose(fn(x).numpy(), ref.numpy(), rtol=1e-12)


@pytest.mark.parametrize("unbiased", [True, False])
def test_var_unbiased(unbiased):
    x = T(3, 4)
    assert gradcheck(lambda a: a.var(dim=1, unbiased=unbiased), [x])
    ref = torch.tensor(x.numpy()).var(dim=1, unbiased=unbiased)
    np.testing.assert_allclose(x.var(dim=1, unbiased=unbiased).numpy(), ref.numpy(), rtol=1e-12)


@pytest.mark.parametrize("kw", [dict(), dict(dim=0), dict(dim=1), dict(dim=-1, keepdim=True), dict(dim=2)], ids=str)
@pytest.mark.parametrize("name", ["max", "min"])
def test_max_min(name, kw):
    x = distinct(2, 3, 4)
    # with a dim: (values, indices), a named tuple, as torch
    fn = lambda a: getattr(a, name)(**kw).values if kw else getattr(a, name)()  # noqa: E731
    assert gradcheck(fn, [x])
    tx = torch.tensor(x.numpy())
    ref = getattr(tx, name)(**kw)
    ref = ref[0] if isinstance(ref, tuple) else ref
    np.testing.assert_allclose(fn(x).numpy(), ref.numpy())
    assert fn(x).shape == tuple(ref.shape)


def test_max_ties_share_gradient():
    x = pyfastnn.tensor(np.array([1.0, 3.0, 3.0, 2.0]), requires_grad=True)
    x.max().backward()
    np.testing.assert_allclose(x.grad.numpy(), [0, 0.5, 0.5, 0])


def test_argmax_argmin():
    x = distinct(3, 4)
    np.testing.assert_array_equal(x.argmax(dim=1).numpy(), x.numpy().argmax(1))
    np.testing.assert_array_equal(x.argmin(dim=0).numpy(), x.numpy().argmin(0))
    assert not x.argmax().requires_grad


# =================================================================== shapes
SHAPE_FNS = {
    "reshape": lambda a: a.reshape(4, 6), "reshape-tuple": lambda a: a.reshape((3, -1)),
    "view": lambda a: a.view(-1), "flatten": lambda a: a.flatten(), "flatten1": lambda a: a.flatten(1),
    "flatten0-1": lambda a: a.flatten(0, 1), "permute": lambda a: a.permute(2, 0, 1),
    "permute-tuple": lambda a: a.permute((1, 2, 0)), "transpose": lambda a: a.transpose(0, 2),
    "transpose-neg": lambda a: a.transpose(-1, -2), "T": lambda a: a.T,
    "unsqueeze0": lambda a: a.unsqueeze(0), "unsqueeze-1": lambda a: a.unsqueeze(-1),
    "unsqueeze1": lambda a: a.unsqueeze(1), "squeeze": lambda a: a.unsqueeze(0).unsqueeze(2).squeeze(),
    "squeeze-dim": lambda a: a.unsqueeze(1).squeeze(1), "squeeze-noop": lambda a: a.squeeze(0),
    "squeeze-dims": lambda a: a.unsqueeze(0).unsqueeze(2).squeeze((0, 2, 3)),
    "expand": lambda a: a[:, :1, :].expand(2, 3, 4), "expand-new": lambda a: a.expand(5, 2, 3, 4),
    "expand-minus1": lambda a: a[:1].expand(3, -1, -1),
    "contiguous": lambda a: a.transpose(0, 1).contiguous(), "clone": lambda a: a.clone(),
    "to-float64": lambda a: a.to(np.float64), "double": lambda a: a.double(),
}


@pytest.mark.parametrize("name", list(SHAPE_FNS))
def test_shape_ops(name):
    x = T(2, 3, 4)
    fn = SHAPE_FNS[name]
    assert gradcheck(fn, [x])
    tfns = {"view": lambda a: a.reshape(-1), "T": lambda a: a.permute(2, 1, 0),
            "to-float64": lambda a: a.to(torch.float64)}
    tfn = tfns.get(name, fn)
    np.testing.assert_array_equal(fn(x).numpy(), tfn(torch.tensor(x.numpy())).numpy())


def test_T_on_2d_and_transpose_default():
    x = T(2, 3)
    assert x.T.shape == (3, 2)
    assert x.transpose(0, 1).shape == (3, 2)
    assert gradcheck(lambda a: a.T * np.arange(6.0).reshape(3, 2), [x])


def test_contiguous_makes_contiguous():
    x = T(3, 4)
    y = x.T.contiguous()
    assert y.numpy().flags.c_contiguous
    assert x.contiguous() is x


def test_to_dtype_grads():
    x = T(2, 3)
    y = x.to(np.float32)
    assert y.dtype == np.float32 and y.requires_grad
    w = np.arange(6, dtype=np.float32).reshape(2, 3)
    (y * w).sum().backward()
    assert x.grad.dtype == np.float64
    np.testing.assert_allclose(x.grad.numpy(), w)
    x32 = pyfastnn.tensor(np.ones((2, 2), np.float32), requires_grad=True)
    assert gradcheck(lambda a: a * 2, [x32.to(dtype=np.float64).detach().requires_grad_()])
    z = x32.to(dtype="float64")
    z.sum().backward()
    assert x32.grad.dtype == np.float32
    assert x32.to(np.int64).dtype == np.int64 and not x32.to(np.int64).requires_grad
    assert x32.float() is x32


# =================================================================== indexing
INDEX_CASES = {
    "int": 1, "neg-int": -1, "slice": slice(1, None), "neg-step": (slice(None), slice(None, None, -1)),
    "step2-neg": (slice(None, None, -2), slice(None), slice(3, 0, -2)), "int-slice": (0, slice(1, 3)),
    "none": (None, 1), "ellipsis": (Ellipsis, 2), "ellipsis-none": (0, Ellipsis, None),
    "int-array-repeats": np.array([0, 1, 1, 0, 1]), "list-repeats": [1, 1, 0],
    "tuple-int-arrays": (np.array([0, 1, 1]), np.array([2, 2, 0])),
    "array-on-dim1": (slice(None), np.array([2, 0, 2, 2])), "array+slice+int": (np.array([1, 1]), 0, slice(1, 3)),
    "neg-array": np.array([-1, -1, 0]),
    "bool-mask-full": "mask3", "bool-mask-rows": "mask1", "bool-mask-tensor": "maskT",
}


@pytest.mark.parametrize("name", list(INDEX_CASES))
def test_indexing(name):
    x = T(2, 3, 4)
    idx = INDEX_CASES[name]
    rng = np.random.default_rng(5)
    if isinstance(idx, str) and idx == "mask3":
        idx = rng.random((2, 3, 4)) > 0.5
    elif isinstance(idx, str) and idx == "mask1":
        idx = np.array([True, False])
    elif isinstance(idx, str) and idx == "maskT":
        idx = pyfastnn.tensor(rng.random((2, 3)) > 0.4)
    assert gradcheck(lambda a: a[idx], [x])
    tidx = idx
    if isinstance(idx, Tensor):
        tidx = torch.tensor(idx.numpy())
    elif isinstance(idx, np.ndarray):
        tidx = torch.tensor(idx)
    elif isinstance(idx, tuple):
        tidx = tuple(torch.tensor(i) if isinstance(i, np.ndarray) else i for i in idx)
    if not any(isinstance(s, slice) and s.step is not None and s.step < 0
               for s in (idx if isinstance(idx, tuple) else (idx,))):
        tx = torch.tensor(x.numpy(), requires_grad=True)
        np.testing.assert_array_equal(x[idx].numpy(), tx[tidx].detach().numpy())
        w = rng.standard_normal(x[idx].shape)
        (x[idx] * w).sum().backward()
        (tx[tidx] * torch.tensor(w)).sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12)


def test_index_with_int_tensor():
    x = T(4, 3)
    i = pyfastnn.tensor(np.array([3, 0, 3]))
    assert gradcheck(lambda a: a[i], [x])
    assert gradcheck(lambda a: a[i, 1:], [x])


def test_setitem():
    x = pyfastnn.tensor(np.zeros((2, 3)))
    x[0, 1] = 5.0
    x[1] = pyfastnn.tensor(np.ones(3))
    np.testing.assert_array_equal(x.numpy(), [[0, 5, 0], [1, 1, 1]])
    y = T(3)
    with pytest.raises(RuntimeError):
        y[0] = 1.0
    with pyfastnn.no_grad():
        y[0] = 1.0
    assert y.numpy()[0] == 1.0


# =================================================================== cat / stack / where / elementwise
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_cat(dim):
    a, b, c = T(2, 3, seed=1), T(2, 3, seed=2), T(2, 3, seed=3)
    assert gradcheck(lambda x, y, z: pyfastnn.cat([x, y, z], dim=dim), [a, b, c])


def test_cat_different_sizes_and_constants():
    a, b = T(2, 3, seed=1), T(4, 3, seed=2)
    const = np.ones((1, 3))
    assert gradcheck(lambda x, y: pyfastnn.cat([x, const, y]), [a, b])
    assert pyfastnn.cat([a, const, b]).shape == (7, 3)


@pytest.mark.parametrize("dim", [0, 1, 2, -1])
def test_stack(dim):
    a, b = T(2, 3, seed=1), T(2, 3, seed=2)
    assert gradcheck(lambda x, y: pyfastnn.stack([x, y], dim=dim), [a, b])
    ref = torch.stack([torch.tensor(a.numpy()), torch.tensor(b.numpy())], dim=dim)
    np.testing.assert_array_equal(pyfastnn.stack([a, b], dim=dim).numpy(), ref.numpy())


def test_where():
    a, b = T(2, 3, seed=1), T(2, 3, seed=2)
    cond = np.random.default_rng(0).random((2, 3)) > 0.5
    assert gradcheck(lambda x, y: pyfastnn.where(cond, x, y), [a, b])
    assert gradcheck(lambda x, y: pyfastnn.where(pyfastnn.tensor(cond), x, y), [a, b])
    bb = T(3, seed=3)   # broadcast
    assert gradcheck(lambda x, y: pyfastnn.where(cond, x, y), [a, bb])
    assert gradcheck(lambda x: pyfastnn.where(x > 0, x, 0.0), [a])
    assert pyfastnn.where(cond, a, 0.0).dtype == np.float64


def test_where_scalar_keeps_float32():
    x = pyfastnn.tensor(np.ones(3, np.float32))
    assert pyfastnn.where(x > 0, x, 0.0).dtype == np.float32


ELEMENTWISE = {
    "exp": (lambda a: a.exp(), "any"), "log": (lambda a: a.log(), "pos"), "sqrt": (lambda a: a.sqrt(), "pos"),
    "abs": (lambda a: a.abs(), "nz"), "builtin-abs": (lambda a: abs(a), "nz"),
    "clamp-both": (lambda a: a.clamp(-0.5, 0.5), "nz"), "clamp-min": (lambda a: a.clamp(min=0.1), "nz"),
    "clamp-max": (lambda a: a.clamp(max=-0.1), "nz"), "relu": (lambda a: a.relu(), "nz"),
    "sigmoid": (lambda a: a.sigmoid(), "any"), "tanh": (lambda a: a.tanh(), "any"),
    "softmax": (lambda a: a.softmax(0), "any"), "log_softmax": (lambda a: a.log_softmax(), "any"),
}


@pytest.mark.parametrize("name", list(ELEMENTWISE))
def test_elementwise(name):
    fn, domain = ELEMENTWISE[name]
    if domain == "pos":
        x = T(3, 4, lo=0.3, hi=2.0)
    elif domain == "nz":   # away from 0 and from the clamp bounds
        x = pyfastnn.tensor(np.array([[-0.9, -0.62, -0.31, -0.03], [0.04, 0.27, 0.55, 0.81], [1.3, -1.2, 0.2, -0.2]]),
                            requires_grad=True)
    else:
        x = T(3, 4)
    assert gradcheck(fn, [x])


def test_composite_expression():
    a, b = T(3, 4, seed=1), T(4, seed=2, lo=0.5, hi=1.0)
    fn = lambda x, y: ((x * y - x.mean(0)) ** 2 / (y + 1)).sum(1).sqrt() + x.max(1).values  # noqa: E731
    assert gradcheck(fn, [a, b])


# =================================================================== nn.functional
ACTS = [None, "relu", "sigmoid", "tanh"]


@pytest.mark.parametrize("activation", ACTS)
@pytest.mark.parametrize("xshape", [(3, 4), (2, 2, 4), (4,)], ids=str)
def test_linear(activation, xshape):
    x = away_from_zero(*xshape, seed=1)
    w = away_from_zero(3, 4, seed=2)
    b = away_from_zero(3, seed=3)
    # pre-activations away from 0 so relu's kink is never within eps of a sample
    assert np.abs(x.numpy() @ w.numpy().T + b.numpy()).min() > 1e-3
    assert np.abs(x.numpy() @ w.numpy().T).min() > 1e-3
    assert gradcheck(lambda x_, w_, b_: F.linear(x_, w_, b_, activation=activation), [x, w, b])
    assert gradcheck(lambda x_, w_: F.linear(x_, w_, activation=activation), [x, w])
    ref = torch.nn.functional.linear(torch.tensor(x.numpy()), torch.tensor(w.numpy()), torch.tensor(b.numpy()))
    if activation:
        ref = getattr(torch, activation)(ref)
    np.testing.assert_allclose(F.linear(x, w, b, activation=activation).numpy(), ref.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kw", [dict(), dict(stride=2), dict(padding=1), dict(dilation=2), dict(groups=2),
                                dict(stride=(2, 1), padding=(1, 2), dilation=(1, 2))], ids=str)
def test_conv2d(kw):
    x = T(2, 4, 5, 5, seed=1)
    w = T(4, 4 // kw.get("groups", 1), 3, 3, seed=2)
    b = T(4, seed=3)
    assert gradcheck(lambda x_, w_, b_: F.conv2d(x_, w_, b_, **kw), [x, w, b])
    ref = torch.nn.functional.conv2d(torch.tensor(x.numpy()), torch.tensor(w.numpy()), torch.tensor(b.numpy()), **kw)
    np.testing.assert_allclose(F.conv2d(x, w, b, **kw).numpy(), ref.numpy(), rtol=1e-10, atol=1e-12)


def test_conv2d_unbatched_no_bias():
    x = T(2, 4, 4, seed=1)
    w = T(3, 2, 2, 2, seed=2)
    assert gradcheck(lambda x_, w_: F.conv2d(x_, w_, padding=1), [x, w])


@pytest.mark.parametrize("kw", [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1),
                                dict(kernel_size=(2, 3), stride=1)], ids=str)
def test_max_pool2d(kw):
    x = distinct(2, 2, 5, 5)
    assert gradcheck(lambda a: F.max_pool2d(a, **kw), [x])
    ref = torch.nn.functional.max_pool2d(torch.tensor(x.numpy()), **kw)
    np.testing.assert_array_equal(F.max_pool2d(x, **kw).numpy(), ref.numpy())


@pytest.mark.parametrize("kw", [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1),
                                dict(kernel_size=(2, 3), stride=1)], ids=str)
def test_avg_pool2d(kw):
    x = T(2, 2, 5, 5)
    assert gradcheck(lambda a: F.avg_pool2d(a, **kw), [x])
    ref = torch.nn.functional.avg_pool2d(torch.tensor(x.numpy()), **kw)
    np.testing.assert_allclose(F.avg_pool2d(x, **kw).numpy(), ref.numpy(), rtol=1e-12)


@pytest.mark.parametrize("name", ["relu", "gelu", "sigmoid", "tanh"])
def test_activations(name):
    x = away_from_zero(3, 5, seed=4)
    x.numpy()[...] *= 3
    fn = getattr(F, name)
    assert gradcheck(fn, [x])
    np.testing.assert_allclose(fn(x).numpy(), getattr(torch.nn.functional, name)(torch.tensor(x.numpy())).numpy(),
                               rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("dim", [0, -1, 1])
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax(name, dim):
    x = T(3, 4, 2)
    x.numpy()[...] *= 3
    fn = getattr(F, name)
    assert gradcheck(lambda a: fn(a, dim), [x])
    ref = getattr(torch.nn.functional, name)(torch.tensor(x.numpy()), dim=dim)
    np.testing.assert_allclose(fn(x, dim).numpy(), ref.numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("nshape", [(4,), (3, 4)], ids=str)
def test_layer_norm(affine, nshape):
    x = T(2, 3, 4)
    w, b = (T(*nshape, seed=1), T(*nshape, seed=2)) if affine else (None, None)
    if affine:
        assert gradcheck(lambda x_, w_, b_: F.layer_norm(x_, nshape, w_, b_), [x, w, b])
    else:
        assert gradcheck(lambda x_: F.layer_norm(x_, nshape), [x])
    ref = torch.nn.functional.layer_norm(torch.tensor(x.numpy()), nshape, None if w is None else torch.tensor(w.numpy()),
                                         None if b is None else torch.tensor(b.numpy()))
    np.testing.assert_allclose(F.layer_norm(x, nshape, w, b).numpy(), ref.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("xshape", [(4, 3), (3, 2, 2, 2)], ids=str)
def test_batch_norm(training, xshape):
    C = xshape[1]
    x = T(*xshape)
    w, b = T(C, seed=1), T(C, seed=2)
    rng = np.random.default_rng(3)
    rm, rv = rng.uniform(-0.5, 0.5, C), rng.uniform(0.5, 1.5, C)

    def fn(x_, w_, b_):
        return F.batch_norm(x_, rm.copy(), rv.copy(), w_, b_, training=training)
    assert gradcheck(fn, [x, w, b])
    assert gradcheck(lambda x_: F.batch_norm(x_, rm.copy(), rv.copy(), training=training), [x])
    # values and running-buffer updates against torch
    ours_m, ours_v = rm.copy(), rv.copy()
    th_m, th_v = torch.tensor(rm), torch.tensor(rv)
    y = F.batch_norm(x, ours_m, ours_v, w, b, training=training, momentum=0.2)
    ref = torch.nn.functional.batch_norm(torch.tensor(x.numpy()), th_m, th_v, torch.tensor(w.numpy()),
                                         torch.tensor(b.numpy()), training=training, momentum=0.2)
    np.testing.assert_allclose(y.numpy(), ref.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours_m, th_m.numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours_v, th_v.numpy(), rtol=1e-12)


@pytest.mark.parametrize("p", [0.3, 0.5])
def test_dropout(p):
    x = T(4, 5)

    def fn(a):
        pyfastnn.manual_seed(123)
        return F.dropout(a, p, training=True)
    y1, y2 = fn(x), fn(x)
    np.testing.assert_array_equal(y1.numpy(), y2.numpy())           # the seed fixes the mask
    kept = y1.numpy() != 0
    np.testing.assert_allclose(y1.numpy()[kept], x.numpy()[kept] / (1 - p), rtol=1e-12)
    assert 0 < kept.sum() < kept.size
    assert gradcheck(fn, [x])
    pyfastnn.manual_seed(124)
    assert not np.array_equal(F.dropout(x, p).numpy(), y1.numpy())  # a different seed, a different mask
    assert F.dropout(x, p, training=False) is x
    assert gradcheck(lambda a: F.dropout(a, 1.0), [x])
    np.testing.assert_array_equal(F.dropout(x, 1.0).numpy(), 0)


def test_embedding():
    w = T(5, 3)
    idx = np.array([[0, 2, 2], [4, 0, 1]])
    assert gradcheck(lambda w_: F.embedding(idx, w_), [w])
    assert gradcheck(lambda w_: F.embedding(pyfastnn.tensor(idx), w_), [w])
    w.grad = None
    F.embedding(idx, w, padding_idx=2).sum().backward()
    np.testing.assert_array_equal(w.grad.numpy()[2], 0)
    np.testing.assert_array_equal(w.grad.numpy()[0], 2)
    tw = torch.tensor(w.numpy())
    np.testing.assert_array_equal(F.embedding(idx, w).numpy(), torch.nn.functional.embedding(torch.tensor(idx), tw))


@pytest.mark.parametrize("bias", [True, False])
def test_lstm(bias):
    Tn, B, I, H = 3, 2, 3, 2
    x, h0, c0 = T(Tn, B, I, seed=1), T(B, H, seed=2), T(B, H, seed=3)
    w_ih, w_hh = T(4 * H, I, seed=4), T(4 * H, H, seed=5)
    b_ih, b_hh = (T(4 * H, seed=6), T(4 * H, seed=7)) if bias else (None, None)
    args = [x, h0, c0, w_ih, w_hh] + ([b_ih, b_hh] if bias else [])

    def fn(*a):
        return F.lstm(*a)
    assert gradcheck(fn, args)                                 # all three outputs
    assert gradcheck(lambda *a: F.lstm(*a)[0], args)           # y only (h_T, c_T get no gradient)
    assert gradcheck(lambda *a: F.lstm(*a)[2], args)           # c_T only
    assert gradcheck(lambda *a: F.lstm(*a)[1] * F.lstm(*a)[0][-1], args)
    # against torch
    lstm = torch.nn.LSTM(I, H, bias=bias).double()
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(torch.tensor(w_ih.numpy()))
        lstm.weight_hh_l0.copy_(torch.tensor(w_hh.numpy()))
        if bias:
            lstm.bias_ih_l0.copy_(torch.tensor(b_ih.numpy()))
            lstm.bias_hh_l0.copy_(torch.tensor(b_hh.numpy()))
        ry, (rh, rc) = lstm(torch.tensor(x.numpy()), (torch.tensor(h0.numpy())[None], torch.tensor(c0.numpy())[None]))
    y, h, c = F.lstm(*args)
    np.testing.assert_allclose(y.numpy(), ry.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(h.numpy(), rh[0].numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(c.numpy(), rc[0].numpy(), rtol=1e-10, atol=1e-12)


SDPA_CASES = ["plain", "causal", "bool-mask", "float-mask", "scale", "3d", "cross", "bool-mask-bcast"]


@pytest.mark.parametrize("case", SDPA_CASES)
def test_scaled_dot_product_attention(case):
    B, H, Nq, Nk, D = 1, 2, 3, 3, 2
    if case == "cross":
        Nk = 4
    rng = np.random.default_rng(9)
    shape_q, shape_k = (B, H, Nq, D), (B, H, Nk, D)
    if case == "3d":
        shape_q, shape_k = (H, Nq, D), (H, Nk, D)
    q, k, v = T(*shape_q, seed=1), T(*shape_k, seed=2), T(*shape_k, seed=3)
    kw = {}
    if case == "causal":
        kw["is_causal"] = True
    elif case == "bool-mask":
        m = rng.random((Nq, Nk)) > 0.4
        m[:, 0] = True
        kw["attn_mask"] = m
    elif case == "bool-mask-bcast":
        m = rng.random((B, 1, Nq, Nk)) > 0.4
        m[..., 0] = True
        kw["attn_mask"] = pyfastnn.tensor(m)
    elif case == "float-mask":
        kw["attn_mask"] = rng.uniform(-2, 1, (B, H, Nq, Nk))
    elif case == "scale":
        kw["scale"] = 0.3
    fn = lambda q_, k_, v_: F.scaled_dot_product_attention(q_, k_, v_, **kw)  # noqa: E731
    assert gradcheck(fn, [q, k, v])
    tkw = {key: (torch.tensor(val.numpy() if isinstance(val, Tensor) else val) if key == "attn_mask" else val)
           for key, val in kw.items()}
    ref = torch.nn.functional.scaled_dot_product_attention(torch.tensor(q.numpy()), torch.tensor(k.numpy()),
                                                           torch.tensor(v.numpy()), **tkw)
    np.testing.assert_allclose(fn(q, k, v).numpy(), ref.numpy(), rtol=1e-10, atol=1e-12)


CE_CASES = {
    "mean": dict(), "sum": dict(reduction="sum"), "none": dict(reduction="none"),
    "weight": dict(weight="w"), "weight-sum": dict(weight="w", reduction="sum"),
    "weight-none": dict(weight="w", reduction="none"), "ignore": dict(ignore_index=1),
    "ignore-none": dict(ignore_index=1, reduction="none"), "ignore-weight": dict(ignore_index=1, weight="w"),
    "smooth": dict(label_smoothing=0.2), "smooth-weight": dict(label_smoothing=0.1, weight="w"),
    "smooth-ignore-sum": dict(label_smoothing=0.3, ignore_index=0, reduction="sum"),
    "smooth-weight-ignore": dict(label_smoothing=0.3, ignore_index=0, weight="w"),
    "smooth-weight-none": dict(label_smoothing=0.25, weight="w", reduction="none"),
    "probs": dict(target="probs"), "probs-sum": dict(target="probs", reduction="sum"),
    "probs-none": dict(target="probs", reduction="none"), "probs-weight": dict(target="probs", weight="w"),
    "probs-smooth": dict(target="probs", label_smoothing=0.2),
    "probs-smooth-weight": dict(target="probs", label_smoothing=0.2, weight="w"),
    "spatial": dict(spatial=True), "spatial-weight-ignore": dict(spatial=True, weight="w", ignore_index=2),
    "spatial-none": dict(spatial=True, reduction="none"), "spatial-probs": dict(spatial=True, target="probs"),
    "unbatched": dict(unbatched=True), "unbatched-probs": dict(unbatched=True, target="probs"),
}


@pytest.mark.parametrize("case", list(CE_CASES))
def test_cross_entropy(case):
    kw = dict(CE_CASES[case])
    spatial, unbatched, probs = kw.pop("spatial", False), kw.pop("unbatched", False), kw.pop("target", None)
    N, C = 5, 4
    rng = np.random.default_rng(7)
    shape = (N, C, 2, 1) if spatial else (C,) if unbatched else (N, C)
    x = T(*shape, lo=-2, hi=2)
    if probs:
        p = rng.random(shape)
        target = p / p.sum(axis=0 if unbatched else 1, keepdims=True)
    else:
        tshape = (N, 2, 1) if spatial else () if unbatched else (N,)
        target = rng.integers(0, C, tshape)
        if not unbatched:
            target.reshape(-1)[:3] = [0, 1, 2]   # some rows hit ignore_index whichever it is
    if kw.get("weight") == "w":
        kw["weight"] = np.array([0.5, 1.0, 2.0, 1.5])
    assert gradcheck(lambda a: F.cross_entropy(a, target, **kw), [x])
    tkw = {key: torch.tensor(val) if isinstance(val, np.ndarray) else val for key, val in kw.items()}
    ref = torch.nn.functional.cross_entropy(torch.tensor(x.numpy()), torch.tensor(target), **tkw)
    np.testing.assert_allclose(F.cross_entropy(x, target, **kw).numpy(), ref.numpy(), rtol=1e-10, atol=1e-12)
    # float32 matches too (the fused kernel path)
    x32 = x.numpy().astype(np.float32)
    ref32 = torch.nn.functional.cross_entropy(torch.tensor(x32), torch.tensor(target.astype(np.float32) if probs
                                                                               else target),
                                              **{k_: (v_.float() if torch.is_tensor(v_) else v_)
                                                 for k_, v_ in tkw.items()})
    t32 = target.astype(np.float32) if probs else target
    np.testing.assert_allclose(F.cross_entropy(x32, t32, **{k_: (v_.astype(np.float32) if isinstance(v_, np.ndarray)
                                                                  else v_) for k_, v_ in kw.items()}).numpy(),
                               ref32.numpy(), rtol=2e-5, atol=1e-6)


def test_cross_entropy_target_tensor():
    x = T(3, 4)
    t = pyfastnn.tensor(np.array([0, 3, 1]))
    assert gradcheck(lambda a: F.cross_entropy(a, t), [x])


@pytest.mark.parametrize("kw", [dict(), dict(reduction="sum"), dict(reduction="none"), dict(ignore_index=2),
                                dict(weight=np.array([1.0, 0.5, 2.0])), dict(weight=np.array([1.0, 0.5, 2.0]),
                                                                             ignore_index=0)], ids=str)
def test_nll_loss(kw):
    x = T(4, 3)
    target = np.array([0, 2, 1, 2])
    assert gradcheck(lambda a: F.nll_loss(F.log_softmax(a, 1), target, **kw), [x])
    assert gradcheck(lambda a: F.nll_loss(a, target, **kw), [x])
    tkw = {key: torch.tensor(val) if isinstance(val, np.ndarray) else val for key, val in kw.items()}
    ref = torch.nn.functional.nll_loss(torch.tensor(x.numpy()), torch.tensor(target), **tkw)
    np.testing.assert_allclose(F.nll_loss(x, target, **kw).numpy(), ref.numpy(), rtol=1e-12)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("name", ["mse_loss", "l1_loss"])
def test_regression_losses(name, reduction):
    x = T(3, 4, seed=1)
    y = T(3, 4, seed=2)
    x.numpy()[np.abs(x.numpy() - y.numpy()) < 0.05] += 0.2      # l1's kink
    fn = getattr(F, name)
    assert gradcheck(lambda a, b: fn(a, b, reduction=reduction), [x, y])
    ref = getattr(torch.nn.functional, name)(torch.tensor(x.numpy()), torch.tensor(y.numpy()), reduction=reduction)
    np.testing.assert_allclose(fn(x, y, reduction=reduction).numpy(), ref.numpy(), rtol=1e-12)


@pytest.mark.parametrize("kw", [dict(), dict(reduction="sum"), dict(reduction="none"),
                                dict(weight="w"), dict(weight="w", reduction="none")], ids=str)
def test_binary_cross_entropy(kw):
    p = T(3, 4, lo=0.05, hi=0.95)
    rng = np.random.default_rng(3)
    y = rng.random((3, 4))
    y[0] = np.round(y[0])
    kw = dict(kw)
    if kw.get("weight") == "w":
        kw["weight"] = rng.uniform(0.5, 2, (3, 4))
    assert gradcheck(lambda a: F.binary_cross_entropy(a, y, **kw), [p])
    tkw = {key: torch.tensor(val) if isinstance(val, np.ndarray) else val for key, val in kw.items()}
    ref = torch.nn.functional.binary_cross_entropy(torch.tensor(p.numpy()), torch.tensor(y), **tkw)
    np.testing.assert_allclose(F.binary_cross_entropy(p, y, **kw).numpy(), ref.numpy(), rtol=1e-12)


@pytest.mark.parametrize("kw", [dict(), dict(reduction="sum"), dict(reduction="none"), dict(weight="w"),
                                dict(pos_weight="pw"), dict(pos_weight="pw", weight="w", reduction="sum")], ids=str)
def test_binary_cross_entropy_with_logits(kw):
    x = T(3, 4, lo=-3, hi=3)
    rng = np.random.default_rng(4)
    y = rng.random((3, 4))
    y[0] = np.round(y[0])
    kw = dict(kw)
    if kw.get("weight") == "w":
        kw["weight"] = rng.uniform(0.5, 2, (4,))
    if kw.get("pos_weight") == "pw":
        kw["pos_weight"] = rng.uniform(0.5, 3, (4,))
    assert gradcheck(lambda a: F.binary_cross_entropy_with_logits(a, y, **kw), [x])
    tkw = {key: torch.tensor(val) if isinstance(val, np.ndarray) else val for key, val in kw.items()}
    ref = torch.nn.functional.binary_cross_entropy_with_logits(torch.tensor(x.numpy()), torch.tensor(y), **tkw)
    np.testing.assert_allclose(F.binary_cross_entropy_with_logits(x, y, **kw).numpy(), ref.numpy(), rtol=1e-12)


@pytest.mark.parametrize("name", ["binary_cross_entropy", "binary_cross_entropy_with_logits"])
def test_bce_target_gradient(name):
    """torch differentiates these losses in the target too."""
    lo, hi = (0.05, 0.95) if name == "binary_cross_entropy" else (-3, 3)
    x = T(2, 3, lo=lo, hi=hi, seed=1)
    y = T(2, 3, lo=0.0, hi=1.0, seed=2)
    kw = {"pos_weight": np.array([0.5, 1.0, 2.0])} if name.endswith("logits") else {}
    assert gradcheck(lambda a, b: getattr(F, name)(a, b, **kw), [x, y])


def test_functional_flatten_and_one_hot():
    x = T(2, 3, 2)
    assert gradcheck(lambda a: F.flatten(a, 1), [x])
    oh = F.one_hot(np.array([0, 2, 1]), 4)
    np.testing.assert_array_equal(oh.numpy(), np.eye(4, dtype=np.int64)[[0, 2, 1]])


# =================================================================== engine
def test_grad_accumulates_across_backward_calls():
    x = T(3)
    (x * 2).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 + 2 * x.numpy())


def test_diamond_graph():
    x = T(2, 3)
    y = x * 3
    z = y.exp() + y * y + y.sum(0)     # y reaches z along three paths
    z.sum().backward()
    ref = torch.tensor(x.numpy(), requires_grad=True)
    ry = ref * 3
    (ry.exp() + ry * ry + ry.sum(0)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), ref.grad.numpy(), rtol=1e-12)


def test_same_tensor_twice_in_one_op():
    x = T(3)
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * x.numpy())
    x.grad = None
    (x + x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2)
    x.grad = None
    (x @ x).backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * x.numpy())


def test_retain_graph():
    x = T(3)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 4 * x.numpy())
    with pytest.raises(RuntimeError, match="retain_graph"):
        y.backward()


def test_second_backward_without_retain_raises():
    x = T(3)
    y = (x.exp() * 2).sum()
    y.backward()
    with pytest.raises(RuntimeError):
        y.backward()


def test_backward_non_scalar():
    x = T(2, 3)
    y = x * 2
    with pytest.raises(RuntimeError, match="scalar"):
        y.backward()
    g = np.arange(6.0).reshape(2, 3)
    y.backward(g)
    np.testing.assert_allclose(x.grad.numpy(), 2 * g)
    with pytest.raises(RuntimeError, match="gradient"):      # torch: "Mismatch in shape"
        (x * 2).backward(np.ones(3))
    x.grad = None
    (x * 2).backward(pyfastnn.tensor(g))
    np.testing.assert_allclose(x.grad.numpy(), 2 * g)


def test_backward_on_tensor_without_grad_raises():
    with pytest.raises(RuntimeError):
        pyfastnn.tensor(np.ones(2)).sum().backward()


def test_backward_on_leaf():
    x = T()
    assert x.dtype == np.float64 and x.shape == ()
    x.backward()
    assert x.grad.numpy() == 1.0


def test_no_grad_context_and_decorator():
    x = T(3)
    with pyfastnn.no_grad():
        y = x * 2
        assert not pyfastnn.is_grad_enabled()
    assert pyfastnn.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None

    @pyfastnn.no_grad()
    def f(a):
        return a * 2

    @pyfastnn.no_grad
    def g(a):
        return a * 2
    assert not f(x).requires_grad and not g(x).requires_grad
    assert f.__name__ == "f"
    assert pyfastnn.is_grad_enabled()
    assert (x * 2).requires_grad


def test_no_grad_restores_on_exception():
    with pytest.raises(ZeroDivisionError):
        with pyfastnn.no_grad():
            1 / 0
    assert pyfastnn.is_grad_enabled()


def test_enable_grad_and_set_grad_enabled():
    x = T(3)
    with pyfastnn.no_grad():
        with pyfastnn.enable_grad():
            assert (x * 2).requires_grad
        assert not (x * 2).requires_grad

        @pyfastnn.enable_grad()
        def h(a):
            return a * 2
        assert h(x).requires_grad
        assert not pyfastnn.is_grad_enabled()
    with pyfastnn.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert pyfastnn.is_grad_enabled()
    pyfastnn.set_grad_enabled(False)
    try:
        assert not pyfastnn.is_grad_enabled()
        assert not (x * 2).requires_grad
    finally:
        pyfastnn.set_grad_enabled(True)
    assert pyfastnn.is_grad_enabled()

    @pyfastnn.set_grad_enabled(False)
    def k(a):
        return a * 2
    assert pyfastnn.is_grad_enabled()          # decorating does not switch the mode
    assert not k(x).requires_grad
    assert pyfastnn.is_grad_enabled()


def test_requires_grad_propagation():
    a = T(3)
    b = pyfastnn.tensor(np.ones(3))
    assert not b.requires_grad
    c = a * b
    assert c.requires_grad and not c.is_leaf and c.grad_fn is not None
    d = b * 2 + b
    assert not d.requires_grad and d.is_leaf
    e = b.requires_grad_()
    assert e is b and (b * 1).requires_grad
    assert a.is_leaf and a.requires_grad


def test_detach():
    a = T(3)
    d = a.detach()
    assert not d.requires_grad and d.is_leaf
    assert np.shares_memory(d.numpy(), a.numpy())
    y = (a * d).sum()
    y.backward()
    np.testing.assert_allclose(a.grad.numpy(), a.numpy())    # d is a constant
    assert d.grad is None


def test_retain_grad():
    a = T(3)
    b = a * 2
    b.retain_grad()
    c = b * b
    d = (c * 3).sum()
    d.backward()
    np.testing.assert_allclose(b.grad.numpy(), 6 * b.numpy())
    assert c.grad is None            # not retained
    np.testing.assert_allclose(a.grad.numpy(), 12 * b.numpy())


def test_int_tensor_cannot_require_grad():
    # torch: RuntimeError "only Tensors of floating point and complex dtype can require gradients"
    with pytest.raises(RuntimeError, match="floating point"):
        pyfastnn.tensor(np.arange(3), requires_grad=True)
    with pytest.raises(RuntimeError, match="floating point"):
        pyfastnn.tensor([1, 2, 3]).requires_grad_()
    with pytest.raises(RuntimeError, match="floating point"):
        pyfastnn.tensor(np.array([True]), requires_grad=True)


def test_non_leaf_requires_grad_false_raises():
    a = T(3)
    with pytest.raises(RuntimeError):
        (a * 2).requires_grad_(False)


def test_grad_of_unused_input_is_none():
    a, b = T(3), T(3, seed=1)
    (a * 2).sum().backward()
    assert b.grad is None


def test_grad_dtype_and_shape_follow_leaf():
    a = pyfastnn.tensor(np.ones((2, 3), np.float32), requires_grad=True)
    (a * np.float64(2.0)).sum().backward()
    assert a.grad.dtype == np.float32 and a.grad.shape == (2, 3)
    b = T(1, 3)
    (b.expand(4, 3) * 1.0).sum().backward()
    assert b.grad.shape == (1, 3)
    np.testing.assert_allclose(b.grad.numpy(), 4)
    b.grad.numpy()[...] = 0   # the gradient is writable (not a broadcast view)


def test_grads_never_alias_each_other_or_the_callers_gradient():
    x, y = T(3, seed=1), T(1, 3, seed=2)
    g = np.ones(3)
    (x + y.reshape(3)).backward(g)
    assert not np.shares_memory(x.grad.numpy(), g)
    assert not np.shares_memory(x.grad.numpy(), y.grad.numpy())
    a, b = T(3, seed=3), T(3, seed=4)
    (a + b).backward(g)
    assert not np.shares_memory(a.grad.numpy(), b.grad.numpy())
    a.grad.numpy()[...] = 0          # zero_grad(set_to_none=False) on one leaf ...
    np.testing.assert_array_equal(b.grad.numpy(), 1)   # ... leaves the other alone
    np.testing.assert_array_equal(g, 1)


def test_deep_chain_does_not_recurse():
    x = T(2)
    y = x
    for _ in range(5000):
        y = y * 1.0001
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 1.0001 ** 5000, rtol=1e-9)


# =================================================================== interop
def test_tensor_from_numpy_shares_memory():
    # as torch: as_tensor/from_numpy share the array's memory, tensor() copies it
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    t = pyfastnn.as_tensor(a)
    assert np.shares_memory(t.numpy(), a)
    a[0, 0] = 42
    assert t.numpy()[0, 0] == 42
    t2 = pyfastnn.as_tensor(a, dtype=np.float32)
    assert np.shares_memory(t2.numpy(), a)
    assert pyfastnn.tensor(np.ones(2)).dtype == np.float64   # arrays keep their dtype
    assert np.shares_memory(pyfastnn.from_numpy(a).numpy(), a)
    copied = pyfastnn.tensor(a)
    assert not np.shares_memory(copied.numpy(), a)
    copied += 1
    assert a[0, 0] == 42


def test_asarray_shares_memory():
    t = pyfastnn.tensor(np.zeros((2, 3), np.float32))
    arr = np.asarray(t)
    assert np.shares_memory(arr, t.numpy())
    arr[1, 2] = 7
    assert t.numpy()[1, 2] == 7
    assert np.array(t, copy=True) is not t.numpy()
    assert np.asarray(t, dtype=np.float64).dtype == np.float64


def test_torch_tensor_in_shares_memory():
    tt = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    t = pyfastnn.as_tensor(tt)
    assert t.dtype == np.float32 and t.shape == (2, 3)
    tt[0, 1] = 99.0
    assert t.numpy()[0, 1] == 99.0
    t.numpy()[1, 0] = -5.0
    assert tt[1, 0].item() == -5.0
    r = pyfastnn.tensor(tt, requires_grad=True)
    (r * 2).sum().backward()
    np.testing.assert_array_equal(r.grad.numpy(), 2)


def test_torch_non_contiguous_tensor_in():
    base = torch.arange(12, dtype=torch.float64).reshape(3, 4)
    tt = base.t()[1:]
    t = pyfastnn.as_tensor(tt)
    np.testing.assert_array_equal(t.numpy(), tt.numpy())
    base[1, 2] = 100.0
    assert t.numpy()[1, 1] == 100.0
    assert gradcheck(lambda a: a * a, [pyfastnn.tensor(tt, requires_grad=True)])


def test_torch_from_dlpack_shares_memory():
    t = pyfastnn.tensor(np.arange(4, dtype=np.float32))
    tt = torch.from_dlpack(t)
    tt[2] = 50.0
    assert t.numpy()[2] == 50.0
    t.numpy()[0] = -1.0
    assert tt[0].item() == -1.0
    assert torch.as_tensor(np.asarray(t)).data_ptr() == t.numpy().ctypes.data


def test_python_lists_and_numbers():
    assert pyfastnn.tensor([1.0, 2.5]).dtype == np.float32
    assert pyfastnn.tensor([[1.0, 2.0], [3.0, 4.0]]).dtype == np.float32
    assert pyfastnn.tensor(3.5).dtype == np.float32
    assert pyfastnn.tensor([1, 2]).dtype == np.int64
    assert pyfastnn.tensor([1.0, 2.0], dtype=np.float64).dtype == np.float64
    assert pyfastnn.tensor([True, False]).dtype == np.bool_
    with pytest.raises(TypeError):
        pyfastnn.tensor([[1.0], [2.0, 3.0]])
    with pytest.raises(TypeError):
        pyfastnn.tensor(object())


def test_zero_dim_results_hold_arrays():
    """A full reduction or a scalar index gives a 0-d array (numpy would give a scalar), so
    .numpy(), DLPack and in-place writes work as on any tensor."""
    x = T(2, 3)
    for t in (x.sum(), x.mean(), x.var(), x[0, 1], x[0] @ x[1], x.argmax(), F.mse_loss(x, x * 2),
              pyfastnn.tensor(np.float64(2.0))):
        assert isinstance(t.numpy(), np.ndarray) and t.shape == ()
        assert torch.from_dlpack(t.detach()).shape == ()
    s = x.sum().detach()
    s.zero_()
    assert s.item() == 0.0
    assert pyfastnn.tensor(np.float64(2.0)).dtype == np.float64     # a numpy scalar keeps its dtype


def test_item_and_conversions():
    t = pyfastnn.tensor(np.array([2.5]))
    assert t.item() == 2.5 and float(t) == 2.5
    with pytest.raises(RuntimeError, match="2 elements"):
        pyfastnn.tensor(np.ones(2)).item()
    assert pyfastnn.tensor(np.array([[1, 2]])).tolist() == [[1, 2]]


def test_post_accumulate_hook_sees_the_complete_gradient_once():
    w = pyfastnn.tensor(np.ones(3), requires_grad=True)
    seen = []
    w.register_post_accumulate_grad_hook(lambda t: seen.append(t.grad.numpy().copy()))
    order = []
    pyfastnn.autograd.queue_callback(lambda: order.append("never: queued outside backward runs at the next one"))
    order.clear()
    y = (w * 2).sum() + (w * 3).sum() + w.sum()            # three uses of one leaf
    y.backward()
    assert len(seen) == 1
    np.testing.assert_array_equal(seen[0], [6.0, 6.0, 6.0])
    done = []
    w.register_post_accumulate_grad_hook(lambda t: pyfastnn.autograd.queue_callback(lambda: done.append(True)))
    (w * w).sum().backward()
    assert done == [True] and len(seen) == 2
    with pytest.raises(RuntimeError, match="leaf"):
        (w * 2).register_post_accumulate_grad_hook(lambda t: None)
