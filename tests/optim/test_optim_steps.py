"""sgd_step / adam_step / rmsprop_step against torch.optim, step by step, at every ISA level."""
import numpy as np
import pytest

import pyfastnn
from pyfastnn import ops
from conftest import assert_raises_naming, rel_error

torch = pytest.importorskip("torch")


@pytest.fixture(autouse=True, scope="module")
def _torch_one_thread():
    """torch's OpenMP workers spin after each step and would take turns on the
    cores with pyfastnn's; one torch thread keeps the large cases quick."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

STEPS = 10
# Awkward sizes: empty, one element, shorter than a vector, a vector plus a
# tail, and one large enough to be split over threads with a ragged end.
SHAPES = [(0,), (1,), (7,), (17,), (1000003,), (), (3, 5), (16, 33), (0, 4)]
TOL = {np.float32: (1e-6, 1e-5), np.float64: (1e-12, 1e-12)}  # (each step's param, everything after 10)

SGD = {
    "plain": dict(lr=0.1),
    "wd": dict(lr=0.1, weight_decay=0.01),
    "momentum": dict(lr=0.05, momentum=0.9),
    "dampening": dict(lr=0.05, momentum=0.9, dampening=0.3),
    "nesterov": dict(lr=0.05, momentum=0.9, nesterov=True),
    "nesterov+wd": dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.01),
    "momentum+dampening+wd": dict(lr=0.02, momentum=0.5, dampening=0.5, weight_decay=0.005),
}
ADAM = {  # our keyword arguments; "adamw" picks torch.optim.AdamW
    "default": dict(),
    "wd": dict(lr=1e-2, beta1=0.8, beta2=0.99, weight_decay=0.1),
    "amsgrad": dict(lr=1e-2, amsgrad=True),
    "amsgrad+wd": dict(lr=1e-2, amsgrad=True, weight_decay=0.05, eps=1e-6),
    "adamw": dict(lr=1e-2, weight_decay=0.05, decoupled_weight_decay=True),
    "adamw+amsgrad": dict(lr=1e-2, weight_decay=0.1, decoupled_weight_decay=True, amsgrad=True),
    "small-beta1": dict(lr=1e-2, beta1=0.3, beta2=0.9),  # lerp weight 0.7: torch's other lerp formula
}
RMSPROP = {
    "default": dict(),
    "wd": dict(lr=1e-3, weight_decay=0.01),
    "centered": dict(lr=1e-3, centered=True),
    "momentum": dict(lr=1e-3, momentum=0.9),
    "centered+momentum+wd": dict(lr=1e-3, alpha=0.9, centered=True, momentum=0.5, weight_decay=0.02),
    "small-alpha": dict(lr=1e-3, alpha=0.3, centered=True, eps=1e-6),
}


class Sgd:
    state_names = ("momentum_buf",)

    def __init__(self, cfg, p):
        self.cfg = cfg
        self.state = {"momentum_buf": np.zeros_like(p)} if cfg.get("momentum", 0) else {}
        self.step_no = 0

    def torch_opt(self, tp):
        return torch.optim.SGD([tp], **self.cfg)

    def torch_state(self, st):
        return {"momentum_buf": st["momentum_buffer"]} if self.state else {}

    def step(self, p, g):
        self.step_no += 1
        ops.sgd_step(p, g, self.state.get("momentum_buf"), first_step=self.step_no == 1, **self.cfg)


class Adam:
    def __init__(self, cfg, p):
        self.cfg = cfg
        self.state = {"exp_avg": np.zeros_like(p), "exp_avg_sq": np.zeros_like(p)}
        if cfg.get("amsgrad"):
            self.state["max_exp_avg_sq"] = np.zeros_like(p)
        self.step_no = 0

    def torch_opt(self, tp):
        c = dict(self.cfg)
        cls = torch.optim.AdamW if c.pop("decoupled_weight_decay", False) else torch.optim.Adam
        betas = (c.pop("beta1", 0.9), c.pop("beta2", 0.999))
        c.setdefault("weight_decay", 0.0)
        return cls([tp], betas=betas, **c)

    def torch_state(self, st):
        return {k: st[k] for k in self.state}

    def step(self, p, g):
        self.step_no += 1
        ops.adam_step(p, g, self.state["exp_avg"], self.state["exp_avg_sq"], step=self.step_no,
                      max_exp_avg_sq=self.state.get("max_exp_avg_sq"), **self.cfg)


class Rmsprop:
    def __init__(self, cfg, p):
        self.cfg = cfg
        self.state = {"square_avg": np.zeros_like(p)}
        if cfg.get("centered"):
            self.state["grad_avg"] = np.zeros_like(p)
        if cfg.get("momentum", 0) > 0:
            self.state["momentum_buf"] = np.zeros_like(p)

    def torch_opt(self, tp):
        return torch.optim.RMSprop([tp], **self.cfg)

    def torch_state(self, st):
        names = {"square_avg": "square_avg", "grad_avg": "grad_avg", "momentum_buf": "momentum_buffer"}
        return {k: st[names[k]] for k in self.state}

    def step(self, p, g):
        ops.rmsprop_step(p, g, self.state["square_avg"], grad_avg=self.state.get("grad_avg"),
                         momentum_buf=self.state.get("momentum_buf"), **self.cfg)


def run_against_torch(kind, cfg, shape, dtype, seed=0):
    step_tol, final_tol = TOL[dtype]
    rng = np.random.default_rng(seed)
    p = rng.standard_normal(shape, dtype=dtype)
    tp = torch.from_numpy(p.copy()).requires_grad_()
    ours = kind(cfg, p)
    opt = ours.torch_opt(tp)
    for s in range(STEPS):
        g = rng.standard_normal(shape, dtype=dtype)
        tp.grad = torch.from_numpy(g.copy())
        opt.step()
        ours.step(p, g)
        err = rel_error(p, tp.detach().numpy())
        assert err < step_tol, (s, err)
    assert rel_error(p, tp.detach().numpy()) < final_tol
    theirs = ours.torch_state(opt.state[tp])
    assert set(theirs) == set(ours.state)
    for name, arr in ours.state.items():
        assert arr.dtype == dtype and arr.shape == tuple(shape)
        err = rel_error(arr, theirs[name].numpy())
        assert err < final_tol, (name, err)
    assert p.dtype == dtype and p.shape == tuple(shape)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("name", list(SGD))
def test_sgd_matches_torch(isa, name, dtype, shape):
    run_against_torch(Sgd, SGD[name], shape, dtype)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("name", list(ADAM))
def test_adam_matches_torch(isa, name, dtype, shape):
    run_against_torch(Adam, ADAM[name], shape, dtype)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("name", list(RMSPROP))
def test_rmsprop_matches_torch(isa, name, dtype, shape):
    run_against_torch(Rmsprop, RMSPROP[name], shape, dtype)


@pytest.mark.parametrize("kind,cfg", [(Sgd, SGD["nesterov+wd"]), (Adam, ADAM["adamw+amsgrad"]),
                                      (Rmsprop, RMSPROP["centered+momentum+wd"])], ids=["sgd", "adam", "rmsprop"])
def test_threads_give_identical_results(kind, cfg):
    """An elementwise step must not depend on where the range is split."""
    n = 1000003
    results = []
    before = pyfastnn.get_num_threads()
    try:
        for t in (1, 2, 3):
            pyfastnn.set_num_threads(t)
            rng = np.random.default_rng(1)
            p = rng.standard_normal(n, dtype=np.float32)
            ours = kind(cfg, p)
            for _ in range(3):
                ours.step(p, rng.standard_normal(n, dtype=np.float32))
            results.append([p] + list(ours.state.values()))
    finally:
        pyfastnn.set_num_threads(before)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)


def test_updates_torch_tensors_in_place():
    """DLPack inputs are viewed, not copied: the caller's tensors change."""
    tp = torch.randn(5, 3)
    g = torch.randn(5, 3)
    m, v = torch.zeros(5, 3), torch.zeros(5, 3)
    ref = tp.clone().requires_grad_()
    ref.grad = g.clone()
    opt = torch.optim.Adam([ref], lr=0.1)
    opt.step()
    ops.adam_step(tp, g, m, v, step=1, lr=0.1)
    assert rel_error(tp.numpy(), ref.detach().numpy()) < 1e-6
    assert rel_error(m.numpy(), opt.state[ref]["exp_avg"].numpy()) < 1e-6


def test_read_only_grad_is_accepted():
    p = np.ones(10, np.float32)
    g = np.full(10, 2.0, np.float32)
    g.setflags(write=False)
    ops.sgd_step(p, g, lr=0.5)
    np.testing.assert_array_equal(p, np.zeros(10, np.float32))


# ------------------------------------------------------------- bad input
f32 = np.float32
P = np.ones((3, 4), f32)


def z(shape=(3, 4), dtype=f32):
    return np.zeros(shape, dtype)


def read_only(a):
    a = a.copy()
    a.setflags(write=False)
    return a


def adam(p=None, g=None, m=None, v=None, **kw):
    kw.setdefault("step", 1)
    return lambda: ops.adam_step(z() + 1 if p is None else p, z() if g is None else g,
                                 z() if m is None else m, z() if v is None else v, **kw)


def sgd(p=None, g=None, buf=None, **kw):
    kw.setdefault("lr", 0.1)
    return lambda: ops.sgd_step(z() + 1 if p is None else p, z() if g is None else g, buf, **kw)


def rms(p=None, g=None, sq=None, **kw):
    return lambda: ops.rmsprop_step(z() + 1 if p is None else p, z() if g is None else g,
                                    z() if sq is None else sq, **kw)


shared = z()
BAD = [
    # (call, exception, words the message must contain)
    (adam(m=z((3,))), ValueError, ["adam_step", "'exp_avg'", "(3, 4)", "(3,)"]),
    (adam(v=z((4, 3))), ValueError, ["adam_step", "'exp_avg_sq'", "(3, 4)", "(4, 3)"]),
    (sgd(g=z((12,))), ValueError, ["sgd_step", "'grad'", "(3, 4)", "(12,)"]),
    (rms(sq=z((3, 4, 1))), ValueError, ["rmsprop_step", "'square_avg'", "(3, 4, 1)"]),
    (adam(g=z(dtype=np.float64)), TypeError, ["adam_step", "'grad'", "float64", "float32"]),
    (sgd(buf=z(dtype=np.float64), momentum=0.9), TypeError, ["sgd_step", "'momentum_buf'", "float64"]),
    (rms(sq=z(dtype=np.float64)), TypeError, ["rmsprop_step", "'square_avg'", "float64"]),
    (adam(p=np.ones((3, 4), np.int32), g=z(dtype=np.int32)), TypeError, ["adam_step", "'param'", "int32"]),
    (sgd(p=np.ones((3, 4), np.int64)), TypeError, ["sgd_step", "'param'", "int64"]),
    (sgd(g=np.ones((3, 4), np.int64)), TypeError, ["sgd_step", "'grad'", "int64"]),
    (rms(p=np.ones((3, 4), np.float16), g=z(dtype=np.float16)), TypeError, ["rmsprop_step", "'param'", "float16"]),
    (adam(p=P.astype(">f4")), TypeError, ["adam_step", "'param'"]),
    (sgd(momentum=0.9), ValueError, ["sgd_step", "'momentum_buf'", "momentum"]),
    (rms(momentum=0.5), ValueError, ["rmsprop_step", "'momentum_buf'", "momentum"]),
    (adam(amsgrad=True), ValueError, ["adam_step", "'max_exp_avg_sq'", "amsgrad"]),
    (rms(centered=True), ValueError, ["rmsprop_step", "'grad_avg'", "centered"]),
    (adam(p=np.ones((3, 8), f32)[:, ::2]), ValueError, ["adam_step", "'param'", "contiguous"]),
    (adam(p=np.ones((4, 3), f32).T), ValueError, ["adam_step", "'param'", "contiguous"]),
    (adam(m=z((3, 8))[:, ::2]), ValueError, ["adam_step", "'exp_avg'", "contiguous"]),
    (sgd(g=z((3, 8))[:, 1::2]), ValueError, ["sgd_step", "'grad'", "contiguous"]),
    (sgd(p=read_only(P)), ValueError, ["sgd_step", "'param'", "read-only"]),
    (adam(v=read_only(z())), ValueError, ["adam_step", "'exp_avg_sq'", "read-only"]),
    (rms(sq=read_only(z())), ValueError, ["rmsprop_step", "'square_avg'", "read-only"]),
    (sgd(lr=-0.1), ValueError, ["sgd_step", "'lr'", "-0.1"]),
    (adam(lr=-1e-3), ValueError, ["adam_step", "'lr'", "-0.001"]),
    (rms(lr=-1.0), ValueError, ["rmsprop_step", "'lr'"]),
    (sgd(lr=float("nan")), ValueError, ["sgd_step", "'lr'", "nan"]),
    (sgd(momentum=-0.5, buf=z()), ValueError, ["sgd_step", "'momentum'"]),
    (sgd(weight_decay=-1.0), ValueError, ["sgd_step", "'weight_decay'"]),
    (sgd(nesterov=True), ValueError, ["sgd_step", "nesterov", "momentum"]),
    (sgd(nesterov=True, momentum=0.9, dampening=0.1, buf=z()), ValueError, ["sgd_step", "nesterov", "dampening"]),
    (adam(beta1=1.0), ValueError, ["adam_step", "'beta1'", "[0, 1)"]),
    (adam(beta2=-0.1), ValueError, ["adam_step", "'beta2'"]),
    (adam(eps=-1e-8), ValueError, ["adam_step", "'eps'"]),
    (adam(step=0), ValueError, ["adam_step", "'step'", ">= 1"]),
    (adam(weight_decay=-0.1), ValueError, ["adam_step", "'weight_decay'"]),
    (rms(alpha=-0.5), ValueError, ["rmsprop_step", "'alpha'"]),
    (rms(momentum=-0.5), ValueError, ["rmsprop_step", "'momentum'"]),
    (sgd(lr="0.1"), TypeError, ["sgd_step", "'lr'", "str"]),
    (adam(step=None), TypeError, ["adam_step", "'step'", "NoneType"]),
    (adam(beta1=True), TypeError, ["adam_step", "'beta1'", "bool"]),
    (adam(lr=np.ones(2)), TypeError, ["adam_step", "'lr'", "real number"]),
    (sgd(g=[[0.0] * 4] * 3), TypeError, ["sgd_step", "'grad'", "list"]),
    (lambda: ops.adam_step(P.copy(), z(), None, z(), step=1), TypeError, ["adam_step", "'exp_avg'", "None"]),
    (adam(m=shared, v=shared), ValueError, ["adam_step", "'exp_avg'", "'exp_avg_sq'", "share memory"]),
    (adam(g=shared, v=shared), ValueError, ["adam_step", "'grad'", "'exp_avg_sq'", "share memory"]),
    (lambda: ops.sgd_step(P, P, lr=0.1), ValueError, ["sgd_step", "'param'", "'grad'", "share memory"]),
]


@pytest.mark.parametrize("call,exc,words", BAD, ids=[" ".join(w[:2]) + f" #{i}" for i, (_, _, w) in enumerate(BAD)])
def test_bad_input(call, exc, words):
    assert_raises_naming(call, exc, words)


def test_failed_check_leaves_arrays_alone():
    """Every check runs before the first store."""
    p, g, m, v = P.copy(), z() + 1, z() + 2, z((3,))
    with pytest.raises(ValueError):
        ops.adam_step(p, g, m, v, step=1)
    np.testing.assert_array_equal(p, P)
    np.testing.assert_array_equal(m, z() + 2)


def test_unused_state_is_ignored():
    """A buffer an option does not use is neither checked nor touched, as in torch."""
    p, g = P.copy(), z() + 1
    junk = np.full(3, 7.0)
    ops.sgd_step(p, g, junk, lr=0.5)
    ops.adam_step(p, g, z(), z(), step=1, max_exp_avg_sq=junk)
    ops.rmsprop_step(p, g, z(), momentum_buf=junk, grad_avg=junk)
    np.testing.assert_array_equal(junk, np.full(3, 7.0))
