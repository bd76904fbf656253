"""Shared by the module-vs-PyTorch tests: run a torch module and ours on the
same weights and inputs and compare outputs, parameter gradients and input
gradients."""
import numpy as np
import pytest

import pyfastnn
from pyfastnn import nn
from conftest import rel_error

torch = pytest.importorskip("torch")

FWD_TOL = 1e-5
GRAD_TOL = 1e-4
F64_TOL = 1e-10


# ----------------------------------------------------------------- helpers
class Const:
    """Marks an input array that must not require grad (targets, masks)."""

    def __init__(self, array):
        self.array = array


def _np(x):
    if x is None:
        return None
    if isinstance(x, torch.Tensor):
        return x.detach().numpy()
    if isinstance(x, pyfastnn.Tensor):
        return x.numpy()
    return np.asarray(x)


def _flat(out):
    if out is None:
        return []
    if isinstance(out, (tuple, list)):
        return [y for o in out for y in _flat(o)]
    return [out]


def copy_weights(tmod, omod):
    """The SPEC's promised call, unchanged."""
    omod.load_state_dict({k: v.detach().numpy() for k, v in tmod.state_dict().items()})


def randomize(tmod, seed=0):
    """Non-default values for every float parameter and buffer of a torch module
    (so that ones/zeros defaults of norms do not hide layout mistakes)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in tmod.named_parameters():
            p.copy_(torch.rand(p.shape, generator=g, dtype=p.dtype) + 0.5 if "weight" in name
                    else torch.randn(p.shape, generator=g, dtype=p.dtype))
    return tmod


def _convert(inputs, memo):
    """Each input as a (torch, ours) pair; the same numpy object maps to the same pair."""
    t_in, o_in, leaves = [], [], []
    for x in inputs:
        if id(x) in memo:
            t, o = memo[id(x)]
        elif isinstance(x, Const):
            t, o = torch.from_numpy(np.array(x.array)), np.array(x.array)
            memo[id(x)] = (t, o)
        elif isinstance(x, np.ndarray) and x.dtype.kind == "f":
            t = torch.tensor(x, requires_grad=True)
            o = pyfastnn.tensor(x, requires_grad=True)      # wraps x itself: strides kept
            memo[id(x)] = (t, o)
            leaves.append((t, o))
        elif isinstance(x, np.ndarray):
            t, o = torch.from_numpy(x.copy()), x
            memo[id(x)] = (t, o)
        elif isinstance(x, tuple):
            t, o, lv = _convert(x, memo)
            t, o = tuple(t), tuple(o)
            leaves += lv
        else:
            t = o = x
        t_in.append(t)
        o_in.append(o)
    return t_in, o_in, leaves


def check(tmod, omod, inputs, kwargs=None, *, copy=True, fwd_tol=FWD_TOL, grad_tol=GRAD_TOL, seed=0,
          backward=True):
    """Runs tmod(*inputs, **kwargs) and omod(...) on the same values and compares
    outputs, parameter gradients and input gradients. Returns (torch outs, our outs)."""
    if copy:
        copy_weights(tmod, omod)
    memo = {}
    t_in, o_in, leaves = _convert(list(inputs), memo)
    kw_keys = list((kwargs or {}).keys())
    t_kw_vals, o_kw_vals, kw_leaves = _convert([kwargs[k] for k in kw_keys], memo)
    leaves += kw_leaves
    t_out = _flat(tmod(*t_in, **dict(zip(kw_keys, t_kw_vals))))
    o_out = _flat(omod(*o_in, **dict(zip(kw_keys, o_kw_vals))))
    assert len(t_out) == len(o_out), (len(t_out), len(o_out))
    for i, (t, o) in enumerate(zip(t_out, o_out)):
        assert isinstance(o, pyfastnn.Tensor), type(o)
        assert tuple(o.shape) == tuple(t.shape), (i, o.shape, tuple(t.shape))
        assert o.dtype == _np(t).dtype, (i, o.dtype, t.dtype)
        err = rel_error(o.numpy(), _np(t))
        assert err < fwd_tol, f"output {i}: relative error {err:.3g}"
    if not backward:
        return t_out, o_out
    rng = np.random.default_rng(seed + 1000)
    t_loss, o_loss = 0, 0
    for t, o in zip(t_out, o_out):
        if not t.requires_grad:
            continue
        w = rng.standard_normal(tuple(t.shape)).astype(o.dtype)
        t_loss = t_loss + (t * torch.from_numpy(w)).sum()
        o_loss = o_loss + (o * w).sum()
    if isinstance(t_loss, int):
        return t_out, o_out
    t_loss.backward()
    o_loss.backward()
    o_params = dict(omod.named_parameters())
    t_params = dict(tmod.named_parameters())
    assert sorted(o_params) == sorted(t_params)
    for name, tp in t_params.items():
        op = o_params[name]
        if tp.grad is None:
            assert op.grad is None or not np.any(_np(op.grad)), name
            continue
        assert op.grad is not None, f"no gradient for parameter {name}"
        assert op.grad.shape == tuple(tp.grad.shape), name
        err = rel_error(_np(op.grad), _np(tp.grad))
        assert err < grad_tol, f"grad of {name}: relative error {err:.3g}"
    for i, (t, o) in enumerate(leaves):
        np.testing.assert_array_equal(o.numpy(), t.detach().numpy(), err_msg=f"input {i} was modified")
        if t.grad is None:
            assert o.grad is None or not np.any(_np(o.grad)), f"input {i}"
            continue
        assert o.grad is not None, f"no gradient for input {i}"
        err = rel_error(_np(o.grad), _np(t.grad))
        assert err < grad_tol, f"grad of input {i}: relative error {err:.3g}"
    return t_out, o_out


def pair(build, seed=0):
    """build(namespace) with torch.nn and with pyfastnn.nn."""
    torch.manual_seed(seed)
    return build(torch.nn), build(nn)


def rnd(*shape, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)
