"""Everyday tensor idioms, each run on real torch and on ``import pyfastnn as
torch`` with the same data and compared: results (values, shapes, dtypes,
named tuples), in-place semantics (storage written, version counters), autograd
through indexing/gather/scatter, dtype promotion (no silent float64), module
level functions, devices. Shapes are awkward on purpose (0, 1, primes); float32
and float64. Where torch raises, pyfastnn must raise too.
"""
import math

import numpy as np
import pytest

torch_ = pytest.importorskip("torch")
import pyfastnn  # noqa: E402
import pyfastnn.nn.functional  # noqa: E402,F401

from compat_helpers import as_np  # noqa: E402
from compat_helpers import torch_single_thread  # noqa: E402,F401  (autouse fixture)

pytestmark = [pytest.mark.filterwarnings("ignore::UserWarning"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning")]

LIBS = [torch_, pyfastnn]
SHAPES = [(0,), (1,), (7,), (1, 1), (3, 5), (2, 0, 3), (2, 3, 7), (5, 1, 11)]
DTYPES = ["float32", "float64"]


# ----------------------------------------------------------------- comparison machinery
def dname(dt):
    """'float32' for torch.float32, pyfastnn.float32, np.float32 alike."""
    return str(dt).split(".")[-1].replace("'>", "").replace("<class 'numpy", "").strip("'")


def is_tensor(v):
    return isinstance(v, (torch_.Tensor, pyfastnn.Tensor))


def assert_same(got, ref, rtol, where="result"):
    """pyfastnn's result `got` equals torch's `ref`: same structure, shapes, dtypes, values."""
    if is_tensor(ref):
        assert is_tensor(got), f"{where}: torch gives a Tensor, pyfastnn gives {type(got).__name__}"
        assert isinstance(got, pyfastnn.Tensor), f"{where}: not a pyfastnn.Tensor: {type(got)}"
        assert tuple(got.shape) == tuple(ref.shape), f"{where}: shape {tuple(got.shape)} != torch's {tuple(ref.shape)}"
        assert dname(got.dtype) == dname(ref.dtype), f"{where}: dtype {got.dtype} != torch's {ref.dtype}"
        g, r = as_np(got), ref.detach().numpy()
        if r.dtype.kind == "f":
            finite = np.abs(r[np.isfinite(r)]).astype(np.float64)
            np.testing.assert_allclose(g.astype(np.float64), r.astype(np.float64), rtol=rtol,
                                       atol=rtol * (finite.max() if finite.size else 0.0) + 1e-30,
                                       equal_nan=True, err_msg=where)
        else:
            np.testing.assert_array_equal(g, r, err_msg=where)
        return
    if isinstance(ref, torch_.Size):
        assert tuple(got) == tuple(ref), f"{where}: {got} != {ref}"
        return
    if isinstance(ref, (tuple, list)):
        assert isinstance(got, (tuple, list)), f"{where}: torch gives {type(ref).__name__}, pyfastnn {type(got)}"
        assert len(got) == len(ref), f"{where}: {len(got)} items != torch's {len(ref)}"
        for field in ("values", "indices"):   # torch.return_types named tuples
            if hasattr(ref, field):
                assert hasattr(got, field), f"{where}: no .{field} (torch returns a named tuple)"
                assert_same(getattr(got, field), getattr(ref, field), rtol, f"{where}.{field}")
        for i, (a, b) in enumerate(zip(got, ref)):
            assert_same(a, b, rtol, f"{where}[{i}]")
        return
    if isinstance(ref, torch_.dtype):
        assert dname(got) == dname(ref), f"{where}: {got} != {ref}"
        return
    if isinstance(ref, bool):
        assert got == ref and isinstance(got, bool), f"{where}: {got!r} != torch's {ref!r}"
        return
    if isinstance(ref, float):
        assert isinstance(got, float) and (got == pytest.approx(ref, rel=rtol, nan_ok=True)), \
            f"{where}: {got!r} != torch's {ref!r}"
        return
    assert got == ref, f"{where}: {got!r} != torch's {ref!r}"


def outcome(fn, lib, *args):
    try:
        return "ok", fn(lib, *args)
    except Exception as e:  # noqa: BLE001
        return "raised", e


def check(fn, *arrays, rtol=None, where="result"):
    """fn(lib, *tensors) on both libraries (tensors from the same numpy arrays); same results,
    or both raise."""
    dts = [a.dtype for a in arrays if isinstance(a, np.ndarray)]
    if rtol is None:
        rtol = 1e-12 if dts and all(d == np.float64 for d in dts) else 2e-6
    t_args = [torch_.from_numpy(a.copy()) if isinstance(a, np.ndarray) else a for a in arrays]
    f_args = [pyfastnn.from_numpy(a.copy()) if isinstance(a, np.ndarray) else a for a in arrays]
    kt, rt = outcome(fn, torch_, *t_args)
    kf, rf = outcome(fn, pyfastnn, *f_args)
    if kt == "raised":
        assert kf == "raised", f"{where}: torch raises {type(rt).__name__}: {rt}; pyfastnn returned {rf!r}"
        return
    if kf == "raised":
        raise AssertionError(f"{where}: pyfastnn raised {type(rf).__name__}: {rf}") from rf
    assert_same(rf, rt, rtol, where)


def distinct(shape, dtype, seed=0):
    """Distinct values (no ties: sort/topk/max indices are well defined), both signs."""
    n = int(np.prod(shape))
    rng = np.random.default_rng(seed)
    v = (rng.permutation(n) - n / 2.0) * 0.37 + 0.05
    return v.reshape(shape).astype(dtype)


def run_table(table, name, dtype, make=distinct, shapes=SHAPES, rtol=None):
    fn = table[name]
    failures = []
    for shape in shapes:
        x = make(shape, dtype)
        try:
            check(fn, x, rtol=rtol, where=f"{name} on {shape} {dtype}")
        except AssertionError as e:
            failures.append(" ".join(ln.strip() for ln in str(e).splitlines() if ln.strip())[:400])
    assert not failures, "\n".join(failures)


# ----------------------------------------------------------------- reductions and named tuples
def _k(x):
    return min(2, x.shape[-1])


REDUCTIONS = {
    "max(dim)": lambda L, x: x.max(dim=-1),
    "max(dim,keepdim)": lambda L, x: x.max(-1, keepdim=True),
    "min(dim)": lambda L, x: x.min(dim=-1),
    "max()": lambda L, x: x.max(),
    "min()": lambda L, x: x.min(),
    "values,indices=max": lambda L, x: (lambda r: (r[0], r[1], r.values, r.indices, len(r)))(x.max(dim=-1)),
    "topk": lambda L, x: x.topk(_k(x), dim=-1),
    "topk(largest=False)": lambda L, x: x.topk(_k(x), dim=-1, largest=False),
    "torch.topk": lambda L, x: L.topk(x, _k(x)),
    "sort": lambda L, x: x.sort(dim=-1),
    "sort(descending)": lambda L, x: x.sort(dim=-1, descending=True),
    "torch.sort": lambda L, x: L.sort(x, 0),
    "argsort": lambda L, x: x.argsort(dim=-1),
    "argsort(descending)": lambda L, x: x.argsort(dim=-1, descending=True),
    "median(dim)": lambda L, x: x.median(dim=-1),
    "median()": lambda L, x: x.median(),
    "mode(dim)": lambda L, x: x.mode(dim=-1),
    "kthvalue": lambda L, x: x.kthvalue(1, dim=-1),
    "argmax": lambda L, x: x.argmax(dim=-1),
    "argmax()": lambda L, x: x.argmax(),
    "argmin(keepdim)": lambda L, x: x.argmin(dim=-1, keepdim=True),
    "sum": lambda L, x: x.sum(),
    "sum(dim)": lambda L, x: x.sum(dim=-1),
    "sum(dims,keepdim)": lambda L, x: x.sum(dim=(0, -1), keepdim=True),
    "mean(dim)": lambda L, x: x.mean(dim=-1),
    "mean()": lambda L, x: x.mean(),
    "prod(dim)": lambda L, x: (x * 0.5).prod(dim=-1),
    "prod()": lambda L, x: (x * 0.1).prod(),
    "cumsum": lambda L, x: x.cumsum(dim=-1),
    "cumsum(0)": lambda L, x: x.cumsum(0),
    "cumprod": lambda L, x: (x * 0.3).cumprod(dim=-1),
    "norm()": lambda L, x: x.norm(),
    "norm(dim)": lambda L, x: x.norm(dim=-1),
    "norm(p=1,dim)": lambda L, x: x.norm(p=1, dim=-1),
    "var()": lambda L, x: x.var(),
    "var(dim)": lambda L, x: x.var(dim=-1),
    "var(unbiased=False)": lambda L, x: x.var(dim=-1, unbiased=False),
    "var(correction=0)": lambda L, x: x.var(dim=-1, correction=0),
    "var(correction=2)": lambda L, x: x.var(dim=-1, correction=2),
    "std()": lambda L, x: x.std(),
    "std(dim,keepdim)": lambda L, x: x.std(dim=-1, keepdim=True),
    "std(unbiased=False)": lambda L, x: x.std(-1, unbiased=False),
    "std(correction=0)": lambda L, x: x.std(dim=-1, correction=0),
    "torch.var_mean": lambda L, x: L.var_mean(x, dim=-1),
    "logsumexp": lambda L, x: x.logsumexp(dim=-1),
    "any": lambda L, x: (x > 0).any(),
    "any(dim)": lambda L, x: (x > 0).any(dim=-1),
    "all": lambda L, x: (x > 0).all(),
    "all(dim)": lambda L, x: (x > 0).all(dim=-1),
    "amax": lambda L, x: x.amax(dim=-1),
    "amin": lambda L, x: x.amin(dim=-1),
    "count_nonzero": lambda L, x: (x > 0).count_nonzero(),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(REDUCTIONS))
def test_reductions_and_named_tuples(name, dtype):
    run_table(REDUCTIONS, name, dtype)


def test_named_tuple_idioms():
    for L in LIBS:
        x = L.tensor([[1.0, 5.0, 3.0], [4.0, 2.0, 6.0]])
        values, indices = x.max(dim=-1)
        assert values.tolist() == [5.0, 6.0] and indices.tolist() == [1, 2]
        r = x.min(1)
        assert r.values.tolist() == [1.0, 2.0] and r.indices.tolist() == [0, 1]
        assert r[0].tolist() == [1.0, 2.0] and len(r) == 2
        v, i = L.topk(x, 2)
        assert v.tolist() == [[5.0, 3.0], [6.0, 4.0]] and i.dtype == L.int64
        s = x.sort(descending=True)
        assert s.indices.tolist() == [[1, 2, 0], [2, 0, 1]]
        m = L.max(x, dim=0)
        assert m.values.tolist() == [4.0, 5.0, 6.0]
        assert isinstance(x.max(0), tuple)
        assert L.tensor([2.0, 2.0, 1.0, 1.0, 1.0]).mode().values.item() == 1.0


# ----------------------------------------------------------------- elementwise, shape and method forms
ELEMENTWISE = {
    "rsqrt": lambda L, x: (x.abs() + 0.1).rsqrt(),
    "sin": lambda L, x: x.sin(),
    "cos": lambda L, x: x.cos(),
    "exp": lambda L, x: (x * 0.1).exp(),
    "log": lambda L, x: (x.abs() + 1).log(),
    "sqrt": lambda L, x: x.abs().sqrt(),
    "tanh": lambda L, x: x.tanh(),
    "sigmoid": lambda L, x: x.sigmoid(),
    "abs": lambda L, x: x.abs(),
    "neg": lambda L, x: x.neg(),
    "-x": lambda L, x: -x,
    "sign": lambda L, x: x.sign(),
    "floor/ceil/round": lambda L, x: (x.floor(), x.ceil(), x.round(), x.trunc()),
    "reciprocal": lambda L, x: (x.abs() + 1).reciprocal(),
    "clamp_min": lambda L, x: x.clamp_min(0.0),
    "clamp_max": lambda L, x: x.clamp_max(0.5),
    "clamp": lambda L, x: x.clamp(-0.5, 0.5),
    "clamp(min=)": lambda L, x: x.clamp(min=0),
    "clip": lambda L, x: x.clip(max=1.0),
    "pow(2)": lambda L, x: x.pow(2),
    "pow(0.5)": lambda L, x: x.abs().pow(0.5),
    "x**2": lambda L, x: x ** 2,
    "2**x": lambda L, x: 2 ** (x * 0.1),
    "pow(tensor)": lambda L, x: x.abs().pow(x * 0.1),
    "add": lambda L, x: x.add(1.5),
    "add(alpha)": lambda L, x: x.add(x, alpha=2),
    "sub": lambda L, x: x.sub(x * 3),
    "sub(alpha)": lambda L, x: x.sub(1, alpha=0.5),
    "mul": lambda L, x: x.mul(x),
    "div": lambda L, x: x.div(3),
    "div(tensor)": lambda L, x: x.div(x.abs() + 1),
    "div(floor)": lambda L, x: x.div(0.7, rounding_mode="floor"),
    "div(trunc)": lambda L, x: x.div(0.7, rounding_mode="trunc"),
    "x//y": lambda L, x: x // 0.7,
    "x%y": lambda L, x: x % 0.7,
    "1/x": lambda L, x: 1 / (x.abs() + 1),
    "1-x": lambda L, x: 1.0 - x,
    "masked_fill": lambda L, x: x.masked_fill(x > 0, 0.0),
    "masked_fill(-inf)": lambda L, x: x.masked_fill(x < 0, float("-inf")),
    "masked_fill(bcast)": lambda L, x: x.masked_fill((x > 0)[..., :1], -1.0),
    "where(scalar)": lambda L, x: L.where(x > 0, x, 0.0),
    "where(tensor)": lambda L, x: L.where(x > 0, x, L.zeros_like(x)),
    "x.where": lambda L, x: x.where(x > 0, -x),
    "where(cond)": lambda L, x: L.where(x > 0),
    "nonzero": lambda L, x: (x > 0).nonzero(),
    "x[x>0]": lambda L, x: x[x > 0],
    "tril": lambda L, x: x.tril(),
    "tril(-1)": lambda L, x: x.tril(diagonal=-1),
    "triu": lambda L, x: x.triu(),
    "triu(1)": lambda L, x: x.triu(1),
    "split(2)": lambda L, x: x.split(2, dim=-1),
    "split(sizes)": lambda L, x: x.split([x.shape[-1] // 2, x.shape[-1] - x.shape[-1] // 2], dim=-1),
    "chunk(3)": lambda L, x: x.chunk(3, dim=-1),
    "chunk(2,0)": lambda L, x: x.chunk(2),
    "unbind": lambda L, x: x.unbind(-1),
    "unbind(0)": lambda L, x: x.unbind(0),
    "repeat": lambda L, x: x.repeat(*([2] + [1] * (x.dim() - 1))),
    "repeat(more dims)": lambda L, x: x.repeat(2, *([1] * x.dim())),
    "expand": lambda L, x: x.unsqueeze(0).expand(3, *x.shape),
    "expand(-1)": lambda L, x: x[..., :1].expand(*x.shape[:-1], 4),
    "expand_as": lambda L, x: x[..., :1].expand_as(x),
    "flatten": lambda L, x: x.flatten(),
    "flatten(1)": lambda L, x: x.flatten(1),
    "view(-1)": lambda L, x: x.view(-1),
    "reshape": lambda L, x: x.reshape(-1, 1),
    "transpose": lambda L, x: x.transpose(0, -1),
    "t()/T": lambda L, x: x.T if x.dim() <= 2 else x.mT,
    "permute": lambda L, x: x.permute(*reversed(range(x.dim()))),
    "unsqueeze/squeeze": lambda L, x: (x.unsqueeze(0), x.unsqueeze(-1).squeeze(-1), x.squeeze(), x.squeeze(0)),
    "contiguous": lambda L, x: x.transpose(0, -1).contiguous(),
    "is_contiguous": lambda L, x: (x.is_contiguous(), x.transpose(0, -1).is_contiguous(),
                                   x.transpose(0, -1).contiguous().is_contiguous()),
    "numel/dim/size": lambda L, x: (x.numel(), x.dim(), x.size(), x.size(-1), x.size(0), x.shape, x.ndim,
                                    len(x), x.nelement()),
    "new_zeros/new_ones": lambda L, x: (x.new_zeros((2, 3)), x.new_ones(4), x.new_full((2,), 7.0),
                                        x.new_zeros(x.shape), x.new_tensor([1.0, 2.0]), x.new_empty(3).shape),
    "int/long/bool": lambda L, x: (x.int(), x.long(), x.bool(), (x * 0).bool()),
    "half/float/double": lambda L, x: (x.half(), x.float(), x.double(), x.half().float()),
    "to(dtype)": lambda L, x: (x.to(L.float64), x.to(dtype=L.int64), x.to(L.float16), x.to("cpu", L.float32)),
    "type_as": lambda L, x: (x.type_as(L.zeros(1, dtype=L.int64)), L.arange(3).type_as(x)),
    "type(dtype)": lambda L, x: x.type(L.int32),
    "cat": lambda L, x: L.cat([x, x * 2], dim=-1),
    "cat(empty)": lambda L, x: L.cat([x, x[..., :0]], dim=-1),
    "stack": lambda L, x: L.stack([x, -x], dim=1 if x.dim() > 1 else 0),
    "flip": lambda L, x: x.flip(-1),
    "roll": lambda L, x: x.roll(1, dims=-1),
    "narrow": lambda L, x: x.narrow(-1, 0, x.shape[-1] // 2),
    "diff": lambda L, x: x.diff(dim=-1),
    "clone/detach": lambda L, x: (x.clone(), x.detach()),
    "tolist": lambda L, x: x.tolist(),
    "eq/ne/lt/ge": lambda L, x: (x.eq(0.05), x.ne(x), x.lt(0), x.ge(0.3),
                                 x == x, x != 0.05, x > 0, x <= 0.05),
    "isnan/isinf/isfinite": lambda L, x: (x.log().isnan(), (x / 0).isinf(), x.isfinite()),
    "nan_to_num": lambda L, x: x.log().nan_to_num(0.0),
    "softmax(dim)": lambda L, x: x.softmax(dim=-1),
    "log_softmax(dim)": lambda L, x: x.log_softmax(-1),
    "matmul/@": lambda L, x: x @ x.transpose(-1, -2) if x.dim() >= 2 else x @ x,
    "lerp": lambda L, x: x.lerp(L.zeros_like(x), 0.3),
    "addcmul": lambda L, x: x.addcmul(x, x, value=0.5),
    "item()": lambda L, x: x.sum().item(),
    "float()/int()": lambda L, x: (float(x.sum()), int(x.numel() > 0 and x.abs().max() > 0)),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(ELEMENTWISE))
def test_elementwise_shape_and_method_forms(name, dtype):
    run_table(ELEMENTWISE, name, dtype)


def _flatten(out):
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _flatten(o)]
    return [out]


def _grad_of(fn):
    """x.grad after backpropagating a fixed weighting of every differentiable output of fn(x)."""
    def run(L, x):
        x = x.detach().requires_grad_(True)
        outs = [o for o in _flatten(fn(L, x)) if is_tensor(o) and o.requires_grad]
        if not outs:
            return None
        loss = sum((o * L.arange(o.numel(), dtype=o.dtype).cos().reshape(o.shape)).sum() for o in outs)
        loss.backward()
        return x.grad
    return run


_NOT_DIFFERENTIABLE = {"half/float/double", "to(dtype)", "tolist", "item()", "float()/int()", "int/long/bool",
                       "is_contiguous", "numel/dim/size", "new_zeros/new_ones", "type_as", "type(dtype)",
                       "eq/ne/lt/ge", "isnan/isinf/isfinite", "where(cond)", "nonzero", "argsort",
                       "argsort(descending)", "argmax", "argmax()", "argmin(keepdim)", "any", "any(dim)", "all",
                       "all(dim)", "count_nonzero", "x//y"}   # torch: floor_divide has no derivative
GRADS = {name: _grad_of(fn) for name, fn in list(REDUCTIONS.items()) + list(ELEMENTWISE.items())
         if name not in _NOT_DIFFERENTIABLE}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(GRADS))
def test_gradients_of_methods(name, dtype):
    """d/dx of each differentiable method above, on the same awkward shapes."""
    run_table(GRADS, name, dtype, rtol=1e-10 if dtype == "float64" else 1e-5)


def test_bool_tensor_operators():
    a = np.array([True, False, True, False, True, True, False])
    b = np.array([True, True, False, False, True, False, True])
    for name, fn in {
        "~": lambda L, p, q: ~p,
        "&": lambda L, p, q: p & q,
        "|": lambda L, p, q: p | q,
        "^": lambda L, p, q: p ^ q,
        "logical_not/and/or": lambda L, p, q: (p.logical_not(), p.logical_and(q), L.logical_or(p, q)),
        "sum/any/all": lambda L, p, q: (p.sum(), p.any(), p.all(), (p | q).all(), p.sum(dim=0)),
        "float/long/int": lambda L, p, q: (p.float(), p.long(), p.int(), p.to(L.float32)),
        "bool+1": lambda L, p, q: p + 1,
        "bool*float": lambda L, p, q: p * 0.5,
        "&=": lambda L, p, q: (lambda r: r)(p.clone().__iand__(q)),
        "x[mask]": lambda L, p, q: L.arange(7)[p],
        "mask.nonzero": lambda L, p, q: (p.nonzero(), p.nonzero(as_tuple=True)),
        "~(x>0)": lambda L, p, q: ~(L.arange(7) > 3),
    }.items():
        check(fn, a, b, where=name)


# ----------------------------------------------------------------- dtype promotion: no silent float64
PROMOTION = {
    "f32 * 2.5": lambda L, x, i, b, d: x * 2.5,
    "f32 + 1": lambda L, x, i, b, d: x + 1,
    "f32 / 3": lambda L, x, i, b, d: x / 3,
    "2.0 - f32": lambda L, x, i, b, d: 2.0 - x,
    "f32 * np.float64": lambda L, x, i, b, d: x * np.float64(2.5),
    "np.float64 * f32": lambda L, x, i, b, d: np.float64(2.5) * x,
    "f32 + np.float32": lambda L, x, i, b, d: x + np.float32(1.0),
    "f32 * np.int64": lambda L, x, i, b, d: x * np.int64(3),
    "f32 + math.pi": lambda L, x, i, b, d: x + math.pi,
    "f32 ** 0.5": lambda L, x, i, b, d: x.abs() ** 0.5,
    "f32 + i64": lambda L, x, i, b, d: x + i,
    "i64 * 2.5": lambda L, x, i, b, d: i * 2.5,
    "i64 / 2": lambda L, x, i, b, d: i / 2,
    "i64 // 2": lambda L, x, i, b, d: i // 2,
    "i64 + 1": lambda L, x, i, b, d: i + 1,
    "i64 * np.float64": lambda L, x, i, b, d: i * np.float64(0.5),
    "i64.sum": lambda L, x, i, b, d: i.sum(),
    "i64.float().mean()": lambda L, x, i, b, d: i.float().mean(),
    "i64.mean() raises": lambda L, x, i, b, d: i.mean(),
    "i64.sqrt/exp": lambda L, x, i, b, d: (i.sqrt(), L.exp(i), i.sigmoid()),
    "bool + 1": lambda L, x, i, b, d: b + 1,
    "bool.sum": lambda L, x, i, b, d: b.sum(),
    "bool * f32": lambda L, x, i, b, d: b * x,
    "f32 + f64": lambda L, x, i, b, d: x + d,
    "f32 * 0-d f64": lambda L, x, i, b, d: x * L.tensor(2.0, dtype=L.float64),
    "i64 + 0-d f32": lambda L, x, i, b, d: i + L.tensor(2.5),
    "i64 + 0-d f64": lambda L, x, i, b, d: i + L.tensor(2.5, dtype=L.float64),
    "f32 reductions": lambda L, x, i, b, d: (x.sum(), x.mean(), x.std(), x.norm(), x.prod(), x.max()),
    "f32 softmax/@": lambda L, x, i, b, d: (x.softmax(0), x @ x, L.outer(x, x)),
    "where(c, f32, 0.0)": lambda L, x, i, b, d: L.where(x > 0, x, 0.0),
    "where(c, f32, 0)": lambda L, x, i, b, d: L.where(x > 0, x, 0),
    "where(c, 1.0, 0.0)": lambda L, x, i, b, d: L.where(x > 0, 1.0, 0.0),
    "masked_fill(-inf)": lambda L, x, i, b, d: x.masked_fill(x > 0, float("-inf")),
    "clamp(0, 1)": lambda L, x, i, b, d: (x.clamp(0, 1), i.clamp(0, 1), i.clamp(0.5)),
    "f32 += 1.5 (in place)": lambda L, x, i, b, d: x.__iadd__(1.5),
    "f32 += f64 (in place)": lambda L, x, i, b, d: x.__iadd__(d),
    "i64 += 1.5 raises": lambda L, x, i, b, d: i.__iadd__(1.5),
    "i64 *= 2": lambda L, x, i, b, d: i.__imul__(2),
    "maximum(f32, i64)": lambda L, x, i, b, d: L.maximum(x, i),
}


@pytest.mark.parametrize("name", list(PROMOTION))
def test_dtype_promotion(name):
    x = np.array([0.5, -1.25, 2.0, 3.5], np.float32)
    i = np.array([1, -2, 3, 4], np.int64)
    b = np.array([True, False, True, True])
    d = np.array([0.1, 0.2, 0.3, 0.4], np.float64)
    check(PROMOTION[name], x, i, b, d, where=name)


CREATION_DTYPES = {
    "arange(0, 4, 1.0)": lambda L: L.arange(0, 4, 1.0),
    "arange(5)": lambda L: L.arange(5),
    "arange(0., 1., .25)": lambda L: L.arange(0.0, 1.0, 0.25),
    "arange(0, 1, 0.1)": lambda L: L.arange(0, 1, 0.1),
    "arange(dtype=, device=)": lambda L: L.arange(0, 7, dtype=L.long, device="cpu"),
    "arange(float32 dtype)": lambda L: L.arange(5, dtype=L.float32, device=L.device("cpu")),
    "arange(1, 10, 3)": lambda L: L.arange(1, 10, 3),
    "arange(10, 0, -3)": lambda L: L.arange(10, 0, -3),
    "arange(0)": lambda L: L.arange(0),
    "tensor([1, 2])": lambda L: L.tensor([1, 2]),
    "tensor([1.0])": lambda L: L.tensor([1.0]),
    "tensor([1, 2.5])": lambda L: L.tensor([1, 2.5]),
    "tensor(3)": lambda L: L.tensor(3),
    "tensor(3.0)": lambda L: L.tensor(3.0),
    "tensor(True)": lambda L: L.tensor([True, False]),
    "tensor(np f64)": lambda L: L.tensor(np.array([1.0, 2.0])),
    "tensor(np f32)": lambda L: L.tensor(np.array([1.0], np.float32)),
    "tensor(np.float64 scalar)": lambda L: L.tensor(np.float64(1.5)),
    "tensor([np.float64, ...])": lambda L: L.tensor([np.float64(1.5), np.float64(2.5)]),
    "tensor(dtype=)": lambda L: L.tensor([1, 2], dtype=L.float32),
    "tensor([])": lambda L: L.tensor([]),
    "tensor([[]])": lambda L: L.tensor([[], []]),
    "tensor(list of 0-d tensors)": lambda L: L.tensor([L.tensor(1.5).item(), 2.0]),
    "from_numpy(f64)": lambda L: L.from_numpy(np.zeros(2)),
    "from_numpy(i32)": lambda L: L.from_numpy(np.arange(3, dtype=np.int32)),
    "from_numpy(uint8)": lambda L: L.from_numpy(np.arange(3, dtype=np.uint8)),
    "as_tensor([1.5])": lambda L: L.as_tensor([1.5]),
    "full((2,), 1.5)": lambda L: L.full((2,), 1.5),
    "full((2,), 2)": lambda L: L.full((2,), 2),
    "full((2,), True)": lambda L: L.full((2,), True),
    "full(dtype=)": lambda L: L.full((2, 3), -1, dtype=L.float64),
    "zeros/ones/empty": lambda L: (L.zeros(2), L.ones(2, 3), L.empty(0, 3).shape, L.zeros((2, 0)),
                                  L.ones(3, dtype=L.long), L.zeros([]), L.empty(2, 3).dtype),
    "zeros(size tuple)": lambda L: L.zeros(L.zeros(2, 3).shape),
    "eye": lambda L: (L.eye(3), L.eye(2, 4), L.eye(3, dtype=L.int64)),
    "linspace": lambda L: (L.linspace(0, 1, 5), L.linspace(-1, 1, steps=1), L.linspace(0, 1, 0),
                           L.linspace(0, 10, 4, dtype=L.float64)),
    "logspace": lambda L: L.logspace(0, 2, 3),
    "zeros_like/ones_like/full_like": lambda L: (
        L.zeros_like(L.ones(2, 3)), L.ones_like(L.arange(3)), L.full_like(L.ones(2), 7),
        L.full_like(L.arange(2), 2.7), L.zeros_like(L.ones(2), dtype=L.float64), L.ones_like(L.ones(2), device="cpu"),
        L.empty_like(L.ones(2, dtype=L.float64)).dtype),
    "get_default_dtype": lambda L: L.get_default_dtype(),
    "dtype objects": lambda L: (L.float32, L.float, L.float64, L.double, L.int64, L.long, L.int32, L.int,
                                L.bool, L.float16, L.half, L.bfloat16, L.uint8),
    "dtype attrs": lambda L: (L.float32.is_floating_point, L.int64.is_floating_point, L.float16.itemsize,
                              L.ones(2).dtype.is_floating_point, L.ones(2).is_floating_point(),
                              L.ones(2, dtype=L.long).is_floating_point(), L.ones(3).element_size()),
}


@pytest.mark.parametrize("name", list(CREATION_DTYPES))
def test_creation_dtypes_and_values(name):
    check(lambda L: CREATION_DTYPES[name](L), where=name)


def test_dtype_equality_idioms():
    torch = pyfastnn
    x = torch.zeros(3)
    assert x.dtype == torch.float32 and x.dtype == torch.float and x.dtype is torch.float32
    assert x.dtype != torch.float64
    assert x.double().dtype == torch.float64 == torch.double
    assert torch.arange(3).dtype == torch.long == torch.int64
    assert (x > 0).dtype == torch.bool
    assert x.half().dtype == torch.float16
    assert str(x.dtype) == "torch.float32" or str(x.dtype) == "pyfastnn.float32"
    assert {torch.float32: "f"}[x.dtype] == "f"
    ptdtype = {'float32': torch.float32, 'bfloat16': torch.bfloat16, 'float16': torch.float16}['float32']
    assert ptdtype == x.dtype
    assert x.to(torch.float64).dtype == torch.float64
    assert isinstance(x.dtype, torch.dtype)
    assert torch.is_floating_point(x) and not torch.is_floating_point(torch.arange(2))
    assert torch.is_tensor(x) and not torch.is_tensor(np.zeros(2))


# ----------------------------------------------------------------- module-level functions
def _a(*shape, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


MODULE_FUNCS = {
    "einsum bij,bjk": (lambda L, a, b: L.einsum("bij,bjk->bik", a, b), (_a(2, 3, 5), _a(2, 5, 4, seed=1))),
    "einsum ij->ji": (lambda L, a: L.einsum("ij->ji", a), (_a(3, 5),)),
    "einsum i,i->": (lambda L, a: L.einsum("i,i->", a, a), (_a(7),)),
    "einsum bhqd,bhkd": (lambda L, a, b: L.einsum("bhqd,bhkd->bhqk", a, b), (_a(2, 2, 3, 4), _a(2, 2, 5, 4))),
    "einsum ...": (lambda L, a: L.einsum("...ij->...j", a), (_a(2, 3, 5),)),
    "bmm": (lambda L, a, b: L.bmm(a, b), (_a(3, 2, 5), _a(3, 5, 1))),
    "matmul 1d@2d": (lambda L, a, b: L.matmul(a, b), (_a(5), _a(5, 3))),
    "matmul bcast": (lambda L, a, b: L.matmul(a, b), (_a(2, 1, 3, 4), _a(5, 4, 2))),
    "matmul 0-size": (lambda L, a, b: L.matmul(a, b), (_a(0, 4), _a(4, 3))),
    "mm/mv/dot": (lambda L, a, b: (L.mm(a, b), L.mv(a, b[:, 0]), L.dot(b[:, 0], b[:, 0])), (_a(3, 4), _a(4, 2))),
    "flatten": (lambda L, a: (L.flatten(a, 1), L.flatten(a), L.flatten(a, 0, 1)), (_a(2, 3, 5),)),
    "tril/triu": (lambda L, a: (L.tril(a), L.triu(a, diagonal=1), L.tril(a, -1)), (_a(4, 6),)),
    "split/chunk": (lambda L, a: (L.split(a, 2), L.split(a, [1, 4], dim=1), L.chunk(a, 2, dim=1)), (_a(5, 5),)),
    "max/min(dim)": (lambda L, a: (L.max(a, 1), L.min(a, dim=0), L.max(a), L.min(a, 1, keepdim=True)),
                     (_a(3, 5),)),
    "max/min(a, b)": (lambda L, a, b: (L.max(a, b), L.min(a, b)), (_a(3, 5), _a(3, 5, seed=1))),
    "argmax/argmin": (lambda L, a: (L.argmax(a), L.argmax(a, dim=1), L.argmin(a, dim=0, keepdim=True)),
                      (_a(3, 5),)),
    "maximum/minimum": (lambda L, a, b: (L.maximum(a, b), L.minimum(a, b[:1])), (_a(3, 5), _a(3, 5, seed=1))),
    "topk/sort": (lambda L, a: (L.topk(a, 3), L.topk(a, 1, dim=0, largest=False), L.sort(a),
                                L.sort(a, dim=0, descending=True), L.argsort(a, dim=1)), (_a(4, 7),)),
    "cumsum": (lambda L, a: (L.cumsum(a, dim=0), L.cumsum(a, 1)), (_a(3, 5),)),
    "exp/log/sqrt": (lambda L, a: (L.exp(a), L.log(a.abs()), L.sqrt(a.abs()), L.rsqrt(a.abs() + 1)), (_a(3, 5),)),
    "tanh/sigmoid": (lambda L, a: (L.tanh(a), L.sigmoid(a), L.relu(a)), (_a(3, 5),)),
    "softmax": (lambda L, a: (L.softmax(a, dim=-1), L.softmax(a, 0), L.log_softmax(a, dim=1)), (_a(3, 5),)),
    "sum/mean": (lambda L, a: (L.sum(a), L.sum(a, dim=1), L.sum(a, (0, 1)), L.mean(a, 1, keepdim=True),
                               L.mean(a), L.sum(a, dim=-1, keepdim=True)), (_a(3, 5),)),
    "sum(dtype=)": (lambda L, a: L.sum(a, dtype=L.float64), (_a(3, 5),)),
    "abs/clamp/where": (lambda L, a: (L.abs(a), L.clamp(a, min=0), L.clamp(a, -0.1, 0.1), L.where(a > 0, a, -a)),
                        (_a(3, 5),)),
    "cat/stack": (lambda L, a: (L.cat((a, a), 0), L.cat([a, a], dim=-1), L.stack((a, a)), L.stack([a, a], -1)),
                  (_a(2, 3),)),
    "std/var": (lambda L, a: (L.std(a), L.var(a, 1), L.std(a, dim=0, unbiased=False), L.var(a, 1, correction=0)),
                (_a(3, 5),)),
    "norm": (lambda L, a: (L.norm(a), L.norm(a, dim=1), L.linalg.norm(a, dim=-1), L.linalg.vector_norm(a)),
             (_a(3, 5),)),
    "gather/index_select": (lambda L, a, i: (L.gather(a, 1, i), L.index_select(a, 0, i[:, 0])),
                            (_a(3, 5), np.array([[0, 4], [1, 1], [2, 0]]))),
    "masked_fill/unsqueeze": (lambda L, a: (L.masked_fill(a, a > 0, 0.0), L.unsqueeze(a, 1), L.squeeze(a[:1])),
                              (_a(3, 5),)),
    "transpose/permute/reshape": (lambda L, a: (L.transpose(a, 0, 1), L.permute(a, (2, 0, 1)), L.reshape(a, (-1,))),
                                  (_a(2, 3, 4),)),
    "outer/allclose/equal": (lambda L, a: (L.outer(a, a), L.allclose(a, a), L.equal(a, a), L.isclose(a, a)),
                             (_a(4),)),
    "numel/is_tensor": (lambda L, a: (L.numel(a), L.is_tensor(a)), (_a(3, 5),)),
    "bucketize/searchsorted": (lambda L, a: L.searchsorted(L.tensor([-1.0, 0.0, 1.0]), a), (_a(6),)),
    "unique": (lambda L, a: (L.unique(a), L.unique(a, return_counts=True)), (np.array([3, 1, 3, 2, 1]),)),
    "diag/trace": (lambda L, a: (L.diag(a), L.trace(a), L.diagonal(a)), (_a(3, 3),)),
    "repeat_interleave": (lambda L, a: L.repeat_interleave(a, 2, dim=0), (_a(2, 3),)),
    "clone/numel/zeros_like": (lambda L, a: (L.clone(a), L.zeros_like(a), L.ones_like(a), L.full_like(a, 2.0)),
                               (_a(0, 3),)),
    "addmm/baddbmm": (lambda L, a: (L.addmm(a[0], a, a.t()), L.baddbmm(a[None, 0], a[None], a.t()[None])),
                      (_a(3, 3),)),
    "finfo/iinfo": (lambda L: (L.finfo(L.float32).eps, L.finfo(L.float32).max, L.finfo(L.float32).min,
                               L.finfo(L.float32).tiny, L.finfo(L.float64).eps, L.finfo(L.float16).max,
                               L.finfo().eps, L.iinfo(L.int64).max, L.iinfo(L.int32).min, L.iinfo(L.uint8).max,
                               L.finfo(L.ones(1).dtype).bits), ()),
}


@pytest.mark.parametrize("name", list(MODULE_FUNCS))
def test_module_level_functions(name):
    fn, arrays = MODULE_FUNCS[name]
    check(fn, *arrays, where=name)


def test_random_creation_functions():
    torch = pyfastnn
    torch.manual_seed(0)
    x = torch.zeros(2000, 3)
    r = torch.randint(5, (4000,))
    assert r.dtype == torch.int64 and tuple(r.shape) == (4000,)
    assert int(r.min()) == 0 and int(r.max()) == 4
    r2 = torch.randint(-3, 3, (2, 5), dtype=torch.int32)
    assert r2.dtype == torch.int32 and -3 <= int(r2.min()) and int(r2.max()) < 3
    rn = torch.randn_like(x)
    assert rn.dtype == torch.float32 and tuple(rn.shape) == (2000, 3)
    assert abs(float(rn.mean())) < 0.05 and abs(float(rn.std()) - 1) < 0.05
    ru = torch.rand_like(x)
    assert 0 <= float(ru.min()) and float(ru.max()) < 1 and abs(float(ru.mean()) - 0.5) < 0.02
    assert torch.randn(3, 4, dtype=torch.float64).dtype == torch.float64
    assert torch.rand(2, 3).dtype == torch.float32
    assert tuple(torch.randn((2, 3)).shape) == (2, 3)
    assert tuple(torch.empty(3, 0).shape) == (3, 0) and torch.empty(2).dtype == torch.float32
    p = torch.tensor([[0.1, 0.0, 0.9], [0.0, 1.0, 0.0]])
    m = torch.multinomial(p, num_samples=1)
    assert tuple(m.shape) == (2, 1) and m.dtype == torch.int64 and int(m[1, 0]) == 1 and int(m[0, 0]) != 1
    counts = np.bincount(as_np(torch.multinomial(torch.tensor([0.2, 0.3, 0.5]), 6000, replacement=True)),
                         minlength=3) / 6000
    assert np.allclose(counts, [0.2, 0.3, 0.5], atol=0.03), counts
    wr = torch.multinomial(torch.ones(5), 5)
    assert sorted(wr.tolist()) == [0, 1, 2, 3, 4]
    perm = torch.randperm(6)
    assert sorted(perm.tolist()) == list(range(6)) and perm.dtype == torch.int64
    torch.manual_seed(42)
    a = torch.randn(5)
    torch.manual_seed(42)
    assert torch.equal(a, torch.randn(5))
    g = torch.Generator().manual_seed(3)
    b1 = torch.randn(4, generator=g)
    g = torch.Generator().manual_seed(3)
    np.testing.assert_array_equal(as_np(torch.randn(4, generator=g)), as_np(b1))


# ----------------------------------------------------------------- in-place operations
def test_inplace_operators_write_storage():
    for torch in LIBS:
        x = torch.arange(6.0).reshape(2, 3)
        view = x[1]
        arr_id = id(x)
        x += 1
        assert id(x) == arr_id
        x *= 2
        x -= 1
        x /= 2
        assert view.tolist() == [3.5, 4.5, 5.5], (torch.__name__, view.tolist())
        y = x.add_(1)
        assert y is x
        x.mul_(2).sub_(1)
        x.div_(2)
        assert x.tolist() == [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], torch.__name__
        view.zero_()
        assert x.tolist()[1] == [0.0, 0.0, 0.0]
        x.fill_(2.5)
        assert x.tolist() == [[2.5] * 3] * 2
        x.copy_(torch.tensor([[1.0, -2.0, 3.0], [-4.0, 5.0, -6.0]]))
        x.clamp_(-3, 3)
        assert x.tolist() == [[1.0, -2.0, 3.0], [-3.0, 3.0, -3.0]]
        x.clamp_(min=0)
        x.masked_fill_(x > 2, -1.0)
        assert x.tolist() == [[1.0, 0.0, -1.0], [0.0, -1.0, 0.0]]
        x[0].copy_(torch.ones(3))                 # copy_ into a view writes the base
        x[:, 2] = 7                               # slice assignment
        x[1] += 10                                # += on an indexed view
        assert x.tolist() == [[1.0, 1.0, 7.0], [10.0, 9.0, 17.0]], torch.__name__
        n = x.numpy()                             # numpy() shares storage
        x.add_(1)
        assert n.flat[0] == x.flatten()[0].item()
        c = torch.zeros(3, dtype=torch.float64)
        c.copy_(torch.tensor([1, 2, 3]))          # copy_ casts
        assert c.dtype == torch.float64 and c.tolist() == [1.0, 2.0, 3.0]
        i = torch.tensor([1, 2, 3])
        i += 1
        i *= 2
        assert i.dtype == torch.int64 and i.tolist() == [4, 6, 8]
        e = torch.zeros(2).exp_().sqrt_().neg_().abs_()
        assert e.tolist() == [1.0, 1.0]
        z = torch.zeros(0)
        z += 1
        z.zero_().fill_(3)
        assert tuple(z.shape) == (0,)


def test_random_inplace_statistics():
    for torch in LIBS:
        torch.manual_seed(0)
        x = torch.empty(40000)
        assert x.normal_(mean=1.0, std=2.0) is x
        a = as_np(x)
        assert abs(a.mean() - 1.0) < 0.05 and abs(a.std() - 2.0) < 0.05, (torch.__name__, a.mean(), a.std())
        x.uniform_(-1, 3)
        a = as_np(x)
        assert a.min() >= -1 and a.max() < 3 and abs(a.mean() - 1.0) < 0.05, torch.__name__
        w = torch.empty(3, 1000)
        torch.nn.init.normal_(w, std=0.02)
        assert abs(as_np(w).std() - 0.02) < 0.002
        torch.nn.init.uniform_(w, -0.1, 0.1)
        assert as_np(w).min() >= -0.1 and as_np(w).max() <= 0.1
        w.bernoulli_(0.25)
        assert set(np.unique(as_np(w))) <= {0.0, 1.0} and abs(as_np(w).mean() - 0.25) < 0.03
        x64 = torch.empty(1000, dtype=torch.float64).normal_()
        assert x64.dtype == torch.float64
        v = torch.zeros(4, 5)
        v[1:3].normal_()                          # in-place random on a view writes the base
        assert as_np(v)[0].tolist() == [0.0] * 5 and np.all(as_np(v)[1:3] != 0)


def test_no_grad_manual_sgd_updates_parameters():
    """with torch.no_grad(): for p in model.parameters(): p -= lr * p.grad, three idioms, against torch."""

    def run(torch, init, idiom):
        nn = torch.nn
        model = nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 3))
        if init is not None:
            model.load_state_dict(init)
        x = torch.from_numpy(_a(11, 5, seed=3))
        y = torch.from_numpy(_a(11, 3, seed=4))
        lr = 0.1
        losses = []
        for step in range(3):
            loss = ((model(x) - y) ** 2).mean()
            loss.backward()
            with torch.no_grad():
                for p in model.parameters():
                    if idiom == "-=":
                        p -= lr * p.grad
                    elif idiom == "add_":
                        p.add_(p.grad, alpha=-lr)
                    elif idiom == ".data":
                        p.data -= lr * p.grad.data
                    elif idiom == "copy_":
                        p.copy_(p - lr * p.grad)
            for p in model.parameters():
                assert isinstance(p, nn.Parameter) and p.requires_grad and p.is_leaf
                if idiom == "-=":
                    p.grad.zero_()
                else:
                    p.grad = None
            losses.append(loss.item())
        return model, losses

    torch_.manual_seed(0)
    for idiom in ["-=", "add_", ".data", "copy_"]:
        torch_.manual_seed(0)
        tm, tl = run(torch_, None, idiom)
        torch_.manual_seed(0)
        init = {k: v.detach().numpy() for k, v in torch_.nn.Sequential(
            torch_.nn.Linear(5, 7), torch_.nn.Tanh(), torch_.nn.Linear(7, 3)).state_dict().items()}
        fm, fl = run(pyfastnn, init, idiom)
        np.testing.assert_allclose(fl, tl, rtol=1e-5, err_msg=idiom)
        assert fl[0] > fl[-1], f"{idiom}: parameters did not change (loss {fl})"
        for (n, p), (_, q) in zip(tm.named_parameters(), fm.named_parameters()):
            np.testing.assert_allclose(as_np(q), p.detach().numpy(), rtol=1e-5, atol=1e-7, err_msg=f"{idiom} {n}")


def test_data_and_grad_are_tensors_sharing_storage():
    for torch in LIBS:
        lin = torch.nn.Linear(3, 2)
        d = lin.weight.data
        assert isinstance(d, torch.Tensor) and not isinstance(d, torch.nn.Parameter), torch.__name__
        assert not d.requires_grad
        lin.weight.data[0, 0] = 5.0
        assert lin.weight[0, 0].item() == 5.0, torch.__name__
        d.mul_(0).add_(2)
        assert as_np(lin.weight).tolist() == [[2.0] * 3] * 2, torch.__name__
        lin.weight.data.fill_(1.0)
        assert lin.weight.sum().item() == 6.0
        lin.bias.data.zero_()
        lin.weight.data = torch.full((2, 3), 0.5)
        assert isinstance(lin.weight, torch.nn.Parameter) and lin.weight.requires_grad
        assert lin.weight.sum().item() == 3.0
        arr = lin.weight.detach().numpy()
        lin.weight.data.add_(1.0)
        assert arr[0, 0] == 1.5, (torch.__name__, "detach().numpy() does not share storage")
        out = lin(torch.ones(4, 3)).sum()
        out.backward()
        g = lin.weight.grad
        assert isinstance(g, torch.Tensor) and not g.requires_grad and tuple(g.shape) == (2, 3)
        assert g.tolist() == [[4.0] * 3] * 2
        g.mul_(0.5)
        assert lin.weight.grad.tolist() == [[2.0] * 3] * 2, torch.__name__
        lin(torch.ones(4, 3)).sum().backward()    # accumulates into the same tensor
        assert lin.weight.grad is g and g.tolist() == [[6.0] * 3] * 2, torch.__name__
        lin.weight.grad.data.zero_()
        assert g.sum().item() == 0.0
        lin.weight.grad = None
        assert lin.weight.grad is None
        lin.weight.grad = torch.ones(2, 3)
        assert lin.weight.grad.sum().item() == 6.0
        p = lin.weight
        assert p.data.data_ptr() == p.data_ptr() if hasattr(p, "data_ptr") else True
        assert p.detach().requires_grad is False and p.is_leaf and not (p * 2).is_leaf


# ----------------------------------------------------------------- version counters
MODIFIED = "modified by an inplace operation"
LEAF = "leaf Variable that requires grad"

def _exp_add_(L, x, w):
    y = x.exp()                 # exp saves its output
    y.add_(1)
    y.sum().backward()


def _sigmoid_mul_(L, x, w):
    y = x.sigmoid()
    y.mul_(2)
    y.sum().backward()


def _tanh_view_zero_(L, x, w):
    y = x.tanh()
    y[0].zero_()                # through a view: the base's counter moves
    y.sum().backward()


def _weight_edited_under_no_grad(L, x, w):
    b = x * w                   # mul saves both operands
    with L.no_grad():
        w.mul_(2)
    b.sum().backward()


def _operand_iadd(L, x, w):
    w2 = w * 1
    b = x * w2
    w2 += 1
    b.sum().backward()


def _pow_input_edited(L, x, w):
    h = x * 1
    b = h ** 2
    h.add_(1)
    b.sum().backward()


def _matmul_operand_edited(L, x, w):
    h = x.reshape(1, 3) * 1
    b = h @ w.reshape(3, 1)
    h.mul_(3)
    b.sum().backward()


def _leaf_add_(L, x, w):
    x.add_(1)


def _leaf_iadd(L, x, w):
    x += 1


VERSION_CASES = {
    "exp then add_": (_exp_add_, MODIFIED),
    "sigmoid then mul_": (_sigmoid_mul_, MODIFIED),
    "tanh then view zero_": (_tanh_view_zero_, MODIFIED),
    "b = x * w; w edited under no_grad": (_weight_edited_under_no_grad, MODIFIED),
    "b = x * w2; w2 += 1": (_operand_iadd, MODIFIED),
    "saved input of pow edited": (_pow_input_edited, MODIFIED),
    "matmul operand edited": (_matmul_operand_edited, MODIFIED),
    "leaf add_": (_leaf_add_, LEAF),
    "leaf +=": (_leaf_iadd, LEAF),
}


def _version_setup(L):
    x = L.tensor([0.5, -1.0, 2.0], requires_grad=True)
    w = L.tensor([1.5, 2.0, -0.5], requires_grad=True)
    return x, w


@pytest.mark.parametrize("name", list(VERSION_CASES))
def test_inplace_on_saved_tensor_raises_like_torch(name):
    fn, phrase = VERSION_CASES[name]
    for L in LIBS:
        x, w = _version_setup(L)
        try:
            with pytest.raises(RuntimeError) as info:
                fn(L, x, w)
        finally:
            L.set_grad_enabled(True)
        assert phrase in str(info.value), f"{L.__name__}: {info.value}"


ALLOWED_INPLACE = {
    # .data edits are invisible to autograd: no error, backward uses the edited storage
    "b = x * w; w.data.mul_(2)": lambda L, x, w: (lambda b: (w.data.mul_(2), b.sum().backward(), x.grad))(x * w),
    # add saves nothing: editing an operand after is fine
    "b = x + w; w edited under no_grad": lambda L, x, w: (
        lambda b: (_nograd(L, lambda: w.mul_(2)), b.sum().backward(), x.grad, w.grad))(x + w),
    "y = x * 2; y.add_(1)": lambda L, x, w: (lambda y: (y.add_(1), (y * y).sum().backward(), x.grad))(x * 2),
    "relu_ after linear op": lambda L, x, w: (lambda y: (y.relu_(), y.sum().backward(), x.grad))(x * w + 0.1),
    "view mul_ then backward": lambda L, x, w: (
        lambda y: (y[:2].mul_(3), (y * w).sum().backward(), x.grad, w.grad))(x * 1),
    "x[idx] = v then backward": lambda L, x, w: _setitem_backward(x, w),
    "clone then edit": lambda L, x, w: (lambda y: (lambda z: (z.add_(1), (y * z).sum().backward(), x.grad))(
        y.clone()))(x.exp()),
    "detach().zero_ shares storage": lambda L, x, w: (lambda y: (y.detach().zero_(), y))(x * 1),
    "out += residual": lambda L, x, w: (lambda o: (o.__iadd__(x), o.relu_(), o.sum().backward(), x.grad,
                                                   w.grad))(x * w),
}


def _setitem_backward(x, w):
    y = x * 1
    y[1] = w[0] * 4
    (y * y).sum().backward()
    return y, x.grad, w.grad


def _nograd(L, f):
    with L.no_grad():
        return f()


@pytest.mark.parametrize("name", list(ALLOWED_INPLACE))
def test_allowed_inplace_matches_torch(name):
    fn = ALLOWED_INPLACE[name]

    def run(L):
        x, w = _version_setup(L)
        res = fn(L, x, w)
        return tuple(r for r in res if r is not None and not isinstance(r, tuple))

    check(lambda L: run(L), where=name)


def test_version_counter_attribute():
    for L in LIBS:
        x = L.zeros(3)
        v0 = x._version
        x.add_(1)
        x[0] = 2
        assert x._version == v0 + 2, (L.__name__, x._version)
        view = x[1:]
        view.mul_(2)
        assert x._version == view._version == v0 + 3, L.__name__


# ----------------------------------------------------------------- indexing with gradients
def _mask_then_index_assign(L, a, v, w):
    x = a * 1
    mask = a.detach() > 0
    x[mask] = 0
    x[L.tensor([0, 3])] = v[:, :4]
    return (x,)


def _column_assign(L, a, v, w):
    x = a * 1
    x[:, 1] = v[0, :5]
    return (x,)


def _scalar_assign(L, a, v, w):
    x = a * 1
    x[1, 2] = 3.0
    return (x,)


def _ellipsis_iadd(L, a, v, w):
    x = a * 1
    x[..., 0] += v[1, :5]
    return (x,)


def _mask_assign_tensor(L, a, v, w):
    x = a * 1
    m = a.detach() < 0
    x[m] = v.flatten()[:int(m.sum())]
    return (x,)


INDEX_GRAD = {
    "x[mask] = 0; x[idx] = v": _mask_then_index_assign,
    "x[:, 1] = v col": _column_assign,
    "x[1, 2] = 3.0": _scalar_assign,
    "x[..., 0] += v": _ellipsis_iadd,
    "x[mask] = tensor": _mask_assign_tensor,
    "x[x>0] (read)": lambda L, a, v, w: (a[a > 0],),
    "x[idx tensor] (read)": lambda L, a, v, w: (a[L.tensor([4, 0, 0, 2])],),
    "x[[0, 2]] (read)": lambda L, a, v, w: (a[[0, 2]],),
    "x[rows, cols] (read)": lambda L, a, v, w: (a[L.tensor([0, 1, 4]), L.tensor([3, 0, 3])],),
    "x[None], x[:, None], x[..., -1]": lambda L, a, v, w: (a[None], a[:, None], a[..., -1], a[1:-1:2, ::3]),
    "x[-1], x[:, [-1]]": lambda L, a, v, w: (a[-1], a[:, [-1]], a[[-1]]),
    "gather": lambda L, a, v, w: (a.gather(1, L.tensor([[0, 3], [1, 1], [2, 0], [3, 3], [0, 0]])),),
    "scatter_add": lambda L, a, v, w: (
        L.zeros(5, 4).scatter_add(1, L.tensor([[0, 3, 3, 1]] * 2), v[:, :4]), ),
    "scatter_add_ in place": lambda L, a, v, w: (
        (lambda z: (z.scatter_add_(0, L.tensor([[0, 1, 4, 4]] * 2), v[:, :4] * 2), z)[1])(a * 1), ),
    "scatter": lambda L, a, v, w: (a.scatter(1, L.tensor([[0], [1], [2], [3], [0]]), 0.0),),
    "index_select": lambda L, a, v, w: (a.index_select(0, L.tensor([4, 1, 1])), a.index_select(1, L.tensor([2]))),
    "index_add": lambda L, a, v, w: (a.index_add(0, L.tensor([0, 4]), v[:, :4]),),
    "masked_select": lambda L, a, v, w: (a.masked_select(a > 0.1),),
    "embedding-style w[ids]": lambda L, a, v, w: (a[L.tensor([[0, 1], [4, 4]])],),
}


@pytest.mark.parametrize("name", list(INDEX_GRAD))
def test_indexing_with_gradients(name):
    def run(L):
        a = L.tensor(_a(5, 4, seed=8), requires_grad=True)
        v = L.tensor(_a(2, 8, seed=9), requires_grad=True)
        w = L.tensor(_a(5, 4, seed=10))
        outs = INDEX_GRAD[name](L, a, v, w)
        outs = tuple(o for o in outs if o is not None)
        total = sum(((o * L.arange(o.numel()).reshape(o.shape).float()).sum() * 0.1 + (o * o).sum())
                    for o in outs)
        total.backward()
        return outs + (a.grad if a.grad is not None else L.zeros(0),
                       v.grad if v.grad is not None else L.zeros(0))

    check(lambda L: run(L), where=name)


# ----------------------------------------------------------------- modes, devices, numpy interop
def test_no_grad_inference_mode_and_decorators():
    for torch in LIBS:
        lin = torch.nn.Linear(3, 2)
        x = torch.ones(1, 3)
        with torch.no_grad():
            y = lin(x)
        assert not y.requires_grad and y.grad_fn is None
        with torch.inference_mode():
            z = lin(x)
        assert not z.requires_grad

        @torch.inference_mode()
        def f(a):
            return lin(a)

        @torch.no_grad()
        def g(a):
            return lin(a)

        assert not f(x).requires_grad and not g(x).requires_grad
        assert lin(x).requires_grad and torch.is_grad_enabled()
        with torch.set_grad_enabled(False):
            assert not lin(x).requires_grad
        with torch.enable_grad():
            assert lin(x).requires_grad
        torch.set_grad_enabled(True)
        h = lin(x)
        assert h.grad_fn is not None and h.requires_grad and not h.is_leaf


def test_devices():
    for torch in LIBS:
        name = torch.__name__
        x = torch.zeros(2, 3, device='cpu')
        assert x.device == torch.device('cpu'), name
        assert x.device.type == 'cpu' and str(x.device) == 'cpu', name
        assert torch.device('cpu') == torch.device('cpu') and torch.device('cpu').type == 'cpu'
        assert not x.is_cuda
        assert x.to('cpu') is x and x.cpu() is x, name
        assert x.to(torch.device('cpu')).device == x.device
        assert x.to('cpu', non_blocking=True).device.type == 'cpu'
        device = 'cuda' if torch.cuda.is_available() and name == "torch" else 'cpu'
        device_type = 'cuda' if 'cuda' in device else 'cpu'
        assert device_type == 'cpu'
        for t in (torch.ones(2, device=device), torch.tensor([1, 2], device='cpu'), torch.arange(3, device=device),
                  torch.randn(2, device=torch.device('cpu')), torch.empty(1, device='cpu'),
                  torch.full((2,), 1.0, device='cpu'), torch.eye(2, device='cpu'),
                  torch.linspace(0, 1, 3, device='cpu'), torch.zeros_like(x, device='cpu'),
                  x.new_zeros(2, device='cpu'), torch.randint(3, (2,), device='cpu')):
            assert t.device == torch.device('cpu'), name
        lin = torch.nn.Linear(2, 2).to(device)
        assert lin.weight.device.type == 'cpu'
        assert lin.to(torch.device('cpu')) is lin and lin.cpu() is lin
        assert next(lin.parameters()).device == torch.device(device)
        assert torch.device(x.device) == x.device
        assert x.to(device=device, dtype=torch.float64).dtype == torch.float64


def test_from_numpy_shares_and_tensor_copies():
    for torch in LIBS:
        a = np.arange(4.0, dtype=np.float32)
        t = torch.from_numpy(a)
        a[0] = 10
        assert t[0].item() == 10.0, torch.__name__
        t[1] = 20
        assert a[1] == 20
        c = torch.tensor(a)
        a[2] = 30
        assert c[2].item() == 2.0, torch.__name__
        s = torch.as_tensor(a)
        a[3] = 40
        assert s[3].item() == 40.0
        n = t.numpy()
        n[0] = -1
        assert t[0].item() == -1.0
        assert torch.from_numpy(np.zeros((2, 3), np.float32)[:, 1]).tolist() == [0.0, 0.0]
        h = torch.ones(2, requires_grad=True)
        assert h.detach().numpy().tolist() == [1.0, 1.0]
        assert np.asarray(torch.ones(2)).dtype == np.float32
        assert torch.ones(2).numpy().dtype == np.float32
        assert torch.tensor(5).item() == 5 and isinstance(torch.tensor(5).item(), int)
        assert isinstance(torch.tensor(2.5).item(), float)
        assert isinstance(torch.tensor(True).item(), bool)


def test_python_protocols():
    for torch in LIBS:
        x = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
        assert [r.tolist() for r in x] == [[1.0, 2.0], [3.0, 4.0]]
        assert len(x) == 2 and x.shape[0] == 2 and x.size(1) == 2
        assert x.shape == (2, 2) and x.size() == (2, 2) and list(x.shape) == [2, 2]
        assert isinstance(x.shape, torch.Size) and x.shape.numel() == 4
        assert x.size()[:-1] + (3,) == (2, 3)
        assert bool(torch.tensor([1.0])) and not bool(torch.tensor(0.0))
        assert float(torch.tensor(2.5)) == 2.5 and int(torch.tensor(3.7)) == 3
        assert [1, 2, 3][torch.tensor(1)] == 2                     # __index__
        assert range(10)[torch.tensor(4):torch.tensor(6)] == range(4, 6)
        assert f"{torch.tensor(0.123456):.3f}" == "0.123"
        assert round(torch.tensor(2.56).item(), 1) == 2.6
        assert (x == x).all() and torch.tensor(3) == 3
        assert max(torch.tensor(1.0), torch.tensor(2.0)).item() == 2.0
        assert sum(torch.ones(3)).item() == 3.0
        assert hash(x) == hash(x) and x in {x: 1}
        assert "tensor(" in repr(torch.tensor([1.0]))
        with pytest.raises((RuntimeError, ValueError)):
            bool(torch.ones(2))


# ----------------------------------------------------------------- nn.Module idioms
def _small_net(torch):
    nn = torch.nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8))
            self.bn = nn.BatchNorm1d(8)
            self.head = nn.Linear(8, 3)
            self.register_buffer("scale", torch.ones(3))
            self.register_buffer("cache", torch.zeros(2), persistent=False)

        def forward(self, x):
            return self.head(self.bn(self.features(x)).relu()) * self.scale

    return Net()


def test_module_idioms_match_torch():
    import copy
    torch_.manual_seed(0)
    tnet = _small_net(torch_)
    fnet = _small_net(pyfastnn)
    sd = {k: v.detach().numpy() for k, v in tnet.state_dict().items()}
    fnet.load_state_dict(sd)
    for t, f in ((tnet, fnet),):
        assert list(f.state_dict()) == list(t.state_dict())
        assert [n for n, _ in f.named_modules()] == [n for n, _ in t.named_modules()]
        assert [n for n, _ in f.named_buffers()] == [n for n, _ in t.named_buffers()]
        assert [n for n, _ in f.named_children()] == [n for n, _ in t.named_children()]
        assert [type(m).__name__ for m in f.modules()] == [type(m).__name__ for m in t.modules()]
        assert f.apply(lambda m: None) is f and f.train(False) is f and not f.training and not f.bn.training
        f.train()
        assert f.requires_grad_(False) is f and not any(p.requires_grad for p in f.parameters())
        f.requires_grad_(True)
    x = _a(6, 4, seed=5)
    torch = pyfastnn
    # optimizer.zero_grad() / model.zero_grad() set grads to None (torch >= 2.0 default)
    opt = torch.optim.SGD(fnet.parameters(), lr=0.1)
    fnet(torch.from_numpy(x)).sum().backward()
    assert all(p.grad is not None for p in fnet.parameters())
    opt.zero_grad()
    assert all(p.grad is None for p in fnet.parameters())
    fnet(torch.from_numpy(x)).sum().backward()
    fnet.zero_grad()
    assert all(p.grad is None for p in fnet.parameters())
    opt.zero_grad(set_to_none=False)
    # state_dict values are detached tensors sharing storage with the parameters
    sd = fnet.state_dict()
    assert isinstance(sd["head.weight"], torch.Tensor) and not sd["head.weight"].requires_grad
    with torch.no_grad():
        fnet.head.weight.add_(1.0)
    np.testing.assert_array_equal(as_np(sd["head.weight"]), as_np(fnet.head.weight))
    # the usual "keep the best weights" idioms: deepcopy of a state_dict / of the model are independent
    best = copy.deepcopy(fnet.state_dict())
    twin = copy.deepcopy(fnet)
    with torch.no_grad():
        fnet.head.weight.mul_(0)
    assert np.all(as_np(twin.head.weight) != 0) and np.all(as_np(best["head.weight"]) != 0)
    fnet.load_state_dict(best)
    np.testing.assert_array_equal(as_np(fnet.head.weight), as_np(twin.head.weight))
    assert isinstance(twin.head.weight, torch.nn.Parameter) and twin.head.weight is not fnet.head.weight
    # strict=False reports missing/unexpected keys like torch; strict=True raises RuntimeError naming them
    partial = {k: v for k, v in best.items() if not k.startswith("head.")}
    partial["extra.weight"] = best["head.weight"]
    r = fnet.load_state_dict(partial, strict=False)
    rt = tnet.load_state_dict({k: torch_.from_numpy(as_np(v).copy()) for k, v in partial.items()}, strict=False)
    assert sorted(r.missing_keys) == sorted(rt.missing_keys) and r.unexpected_keys == rt.unexpected_keys
    with pytest.raises(RuntimeError, match="Missing key"):
        fnet.load_state_dict(partial)
    # outputs after all that still agree with torch given the same weights (train-mode BatchNorm1d)
    fnet.load_state_dict({k: v.detach().numpy() for k, v in tnet.state_dict().items()})
    yt = tnet(torch_.from_numpy(x))
    yf = fnet(torch.from_numpy(x))
    np.testing.assert_allclose(as_np(yf), yt.detach().numpy(), rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------- autograd API
def _autograd_program(torch):
    out = {}
    x = torch.tensor([0.5, -1.0, 2.0], requires_grad=True)
    w = torch.tensor([1.5, 2.0, -0.5], requires_grad=True)
    # torch.autograd.grad
    y = (x * w).sin().sum()
    gx, gw = torch.autograd.grad(y, (x, w))
    out["autograd.grad"] = (gx, gw)
    assert x.grad is None
    gx_only, = torch.autograd.grad((x ** 3).sum(), [x])
    out["autograd.grad list"] = gx_only
    # retain_grad on a non-leaf, register_hook
    h = x * w
    h.retain_grad()
    seen = []
    h.register_hook(lambda g: seen.append(g.clone()))
    z = h.exp()
    z.register_hook(lambda g: g * 2)
    z.sum().backward()
    out["retain_grad"] = h.grad
    out["hook saw"] = seen[0]
    out["hooked x.grad"] = x.grad
    # retain_graph: a second backward accumulates
    x.grad = None
    loss = (x * x * w).sum()
    loss.backward(retain_graph=True)
    loss.backward()
    out["twice"] = (x.grad, w.grad)

    # enable_grad inside no_grad, set_grad_enabled as a function, detach_ / requires_grad_
    with torch.no_grad():
        with torch.enable_grad():
            e = x * 2
    out["enable_grad in no_grad"] = e.requires_grad
    b = torch.ones(2)
    b.requires_grad_()
    (b * 3).sum().backward()
    out["requires_grad_"] = b.grad
    return out


def test_autograd_api():
    rt = _autograd_program(torch_)
    rf = _autograd_program(pyfastnn)
    assert list(rf) == list(rt)
    for k in rt:
        assert_same(rf[k], rt[k], 1e-6, k)


def _custom_function_program(torch):
    class Square(torch.autograd.Function):
        @staticmethod
        def forward(ctx, inp):
            ctx.save_for_backward(inp)
            return inp * inp

        @staticmethod
        def backward(ctx, grad_output):
            inp, = ctx.saved_tensors
            return 2 * inp * grad_output

    a = torch.tensor([1.0, -3.0], requires_grad=True)
    s = Square.apply(a)
    (s * torch.tensor([1.0, 10.0])).sum().backward()
    return s, a.grad


def test_custom_autograd_function():
    assert_same(_custom_function_program(pyfastnn), _custom_function_program(torch_), 1e-6, "autograd.Function")
