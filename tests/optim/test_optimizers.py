"""pyfastnn.optim (SGD, Adam, AdamW, RMSprop, StepLR, CosineAnnealingLR) against
torch.optim: same parameters, same sequence of gradients, step by step."""
import copy
import math
import warnings

import numpy as np
import pytest

import pyfastnn
from pyfastnn import optim
from conftest import assert_raises_naming, rel_error

torch = pytest.importorskip("torch")

STEPS = 10
TOL = 1e-5
SHAPES = [(5, 3), (7,), (), (2, 2, 3)]


@pytest.fixture(autouse=True, scope="module")
def _torch_one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def make_params(shapes=SHAPES, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(s).astype(dtype) for s in shapes]
    ours = [pyfastnn.tensor(a.copy(), requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a.copy(), requires_grad=True) for a in arrays]
    return ours, theirs


def grad_sequence(shapes=SHAPES, steps=STEPS, seed=1, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return [[rng.standard_normal(s).astype(dtype) for s in shapes] for _ in range(steps)]


def set_grads(ours, theirs, grads):
    for p, tp, g in zip(ours, theirs, grads):
        p.grad = pyfastnn.Tensor(g.copy())
        tp.grad = torch.tensor(g.copy())


def assert_close(ours, theirs, step=None):
    for i, (p, tp) in enumerate(zip(ours, theirs)):
        err = rel_error(p.numpy(), tp.detach().numpy())
        assert err < TOL, f"param {i} after step {step}: rel error {err:.3g}"


def run_against_torch(ours_cls, torch_cls, kwargs, torch_kwargs=None, steps=STEPS, shapes=SHAPES):
    ours, theirs = make_params(shapes)
    opt = ours_cls(ours, **kwargs)
    topt = torch_cls(theirs, **(kwargs if torch_kwargs is None else torch_kwargs))
    for step, grads in enumerate(grad_sequence(shapes, steps)):
        set_grads(ours, theirs, grads)
        opt.step()
        topt.step()
        assert_close(ours, theirs, step)
    return opt, topt, ours, theirs


SGD_CASES = {
    "plain": dict(lr=0.1),
    "momentum": dict(lr=0.05, momentum=0.9),
    "dampening": dict(lr=0.05, momentum=0.9, dampening=0.3),
    "nesterov": dict(lr=0.05, momentum=0.9, nesterov=True),
    "weight_decay": dict(lr=0.1, weight_decay=0.01),
    "momentum+wd": dict(lr=0.05, momentum=0.8, weight_decay=0.05),
    "nesterov+wd": dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.01),
    "all-but-nesterov": dict(lr=0.02, momentum=0.5, dampening=0.5, weight_decay=0.005),
}
ADAM_CASES = {
    "default": dict(),
    "lr+betas": dict(lr=1e-2, betas=(0.8, 0.99)),
    "weight_decay": dict(lr=1e-2, weight_decay=0.1),
    "amsgrad": dict(lr=1e-2, amsgrad=True),
    "amsgrad+wd+eps": dict(lr=1e-2, amsgrad=True, weight_decay=0.05, eps=1e-6),
    "small-beta1": dict(lr=1e-2, betas=(0.3, 0.9)),
}
ADAMW_CASES = {
    "default": dict(),
    "weight_decay": dict(lr=1e-2, weight_decay=0.1),
    "amsgrad": dict(lr=1e-2, weight_decay=0.05, amsgrad=True),
    "no-decay": dict(lr=1e-2, weight_decay=0.0, betas=(0.5, 0.9)),
}
RMSPROP_CASES = {
    "default": dict(),
    "lr+alpha": dict(lr=1e-3, alpha=0.9),
    "momentum": dict(lr=1e-3, momentum=0.9),
    "centered": dict(lr=1e-3, centered=True),
    "weight_decay": dict(lr=1e-3, weight_decay=0.01),
    "centered+momentum+wd": dict(lr=1e-3, alpha=0.9, centered=True, momentum=0.5, weight_decay=0.02),
    "small-alpha+eps": dict(lr=1e-3, alpha=0.3, centered=True, eps=1e-6),
}


@pytest.mark.parametrize("case", list(SGD_CASES))
def test_sgd(case):
    run_against_torch(optim.SGD, torch.optim.SGD, SGD_CASES[case])


@pytest.mark.parametrize("case", list(ADAM_CASES))
def test_adam(case):
    run_against_torch(optim.Adam, torch.optim.Adam, ADAM_CASES[case])


@pytest.mark.parametrize("case", list(ADAMW_CASES))
def test_adamw(case):
    run_against_torch(optim.AdamW, torch.optim.AdamW, ADAMW_CASES[case])


@pytest.mark.parametrize("case", list(RMSPROP_CASES))
def test_rmsprop(case):
    run_against_torch(optim.RMSprop, torch.optim.RMSprop, RMSPROP_CASES[case])


def test_adamw_default_weight_decay_is_torchs():
    ours, _ = make_params()
    assert optim.AdamW(ours).param_groups[0]["weight_decay"] == 0.01
    assert optim.Adam(ours).param_groups[0]["weight_decay"] == 0.0
    assert optim.Adam(ours).param_groups[0]["lr"] == 1e-3
    assert optim.RMSprop(ours).param_groups[0]["lr"] == 1e-2
    assert optim.RMSprop(ours).param_groups[0]["alpha"] == 0.99


def test_float64_params():
    ours, theirs = make_params(dtype=np.float64)
    opt = optim.Adam(ours, lr=1e-2, amsgrad=True)
    topt = torch.optim.Adam(theirs, lr=1e-2, amsgrad=True)
    for grads in grad_sequence(dtype=np.float64):
        set_grads(ours, theirs, grads)
        opt.step()
        topt.step()
    for p, tp in zip(ours, theirs):
        assert p.dtype == np.float64
        assert rel_error(p.numpy(), tp.detach().numpy()) < 1e-12


def test_nn_parameters_and_module():
    lin = pyfastnn.nn.Linear(4, 3)
    tlin = torch.nn.Linear(4, 3)
    with torch.no_grad():
        tlin.weight.copy_(torch.tensor(lin.weight.numpy()))
        tlin.bias.copy_(torch.tensor(lin.bias.numpy()))
    opt = optim.SGD(lin.parameters(), lr=0.1, momentum=0.9)
    topt = torch.optim.SGD(tlin.parameters(), lr=0.1, momentum=0.9)
    rng = np.random.default_rng(0)
    for _ in range(5):
        x = rng.standard_normal((6, 4)).astype(np.float32)
        opt.zero_grad()
        topt.zero_grad()
        (lin(pyfastnn.tensor(x)) ** 2).mean().backward()
        (tlin(torch.tensor(x)) ** 2).mean().backward()
        opt.step()
        topt.step()
    assert rel_error(lin.weight.numpy(), tlin.weight.detach().numpy()) < TOL
    assert rel_error(lin.bias.numpy(), tlin.bias.detach().numpy()) < TOL


def test_grad_of_other_dtype_and_non_contiguous():
    ours, theirs = make_params([(3, 4)])
    opt = optim.SGD(ours, lr=0.1, momentum=0.9)
    topt = torch.optim.SGD(theirs, lr=0.1, momentum=0.9)
    for g in grad_sequence([(4, 3)], steps=3, dtype=np.float64):
        ours[0].grad = pyfastnn.Tensor(g[0].T)      # float64, transposed view
        theirs[0].grad = torch.tensor(g[0].T.astype(np.float32))
        opt.step()
        topt.step()
    assert_close(ours, theirs)


def test_non_contiguous_param_is_updated_in_place():
    base = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    p = pyfastnn.as_tensor(base.T).requires_grad_()      # a view, not C-contiguous
    tp = torch.tensor(base.T.copy(), requires_grad=True)
    opt = optim.Adam([p], lr=0.1)
    topt = torch.optim.Adam([tp], lr=0.1)
    for g in grad_sequence([(3, 4)], steps=3):
        set_grads([p], [tp], g)
        opt.step()
        topt.step()
    assert rel_error(p.numpy(), tp.detach().numpy()) < TOL
    assert np.shares_memory(p.numpy(), base)                 # updated where it lies
    assert rel_error(base.T, tp.detach().numpy()) < TOL


def test_params_without_grad_are_skipped():
    ours, theirs = make_params()
    opt = optim.Adam(ours, lr=0.1)
    topt = torch.optim.Adam(theirs, lr=0.1)
    before = ours[1].numpy().copy()
    for step, grads in enumerate(grad_sequence()):
        set_grads(ours, theirs, grads)
        if step < 4:          # param 1 gets no gradient in the first steps
            ours[1].grad = None
            theirs[1].grad = None
        opt.step()
        topt.step()
        if step < 4:
            np.testing.assert_array_equal(ours[1].numpy(), before)
    assert_close(ours, theirs)


# ----------------------------------------------------------------- param groups
@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop"])
def test_param_groups_with_different_lr(name):
    ours, theirs = make_params()
    extra = {"SGD": dict(momentum=0.9), "Adam": dict(), "AdamW": dict(), "RMSprop": dict(momentum=0.5)}[name]
    opt = getattr(optim, name)([{"params": ours[:2]}, {"params": ours[2:], "lr": 0.05, **extra}], lr=0.01)
    topt = getattr(torch.optim, name)([{"params": theirs[:2]}, {"params": theirs[2:], "lr": 0.05, **extra}],
                                      lr=0.01)
    assert [g["lr"] for g in opt.param_groups] == [0.01, 0.05]
    for step, grads in enumerate(grad_sequence()):
        set_grads(ours, theirs, grads)
        opt.step()
        topt.step()
        assert_close(ours, theirs, step)


def test_add_param_group():
    ours, theirs = make_params()
    opt = optim.SGD(ours[:2], lr=0.1)
    topt = torch.optim.SGD(theirs[:2], lr=0.1)
    opt.add_param_group({"params": ours[2:], "lr": 0.3, "momentum": 0.5})
    topt.add_param_group({"params": theirs[2:], "lr": 0.3, "momentum": 0.5})
    assert opt.param_groups[1]["weight_decay"] == 0.0      # defaults fill in
    for grads in grad_sequence(steps=4):
        set_grads(ours, theirs, grads)
        opt.step()
        topt.step()
    assert_close(ours, theirs)
    with pytest.raises(ValueError, match="SGD"):
        opt.add_param_group({"params": [ours[0]]})        # already in a group


def test_changing_lr_between_steps():
    ours, theirs = make_params()
    opt = optim.Adam(ours, lr=0.1)
    topt = torch.optim.Adam(theirs, lr=0.1)
    for step, grads in enumerate(grad_sequence()):
        for g, tg in zip(opt.param_groups, topt.param_groups):
            g["lr"] = tg["lr"] = 0.1 / (step + 1)
        set_grads(ours, theirs, grads)
        opt.step()
        topt.step()
    assert_close(ours, theirs)


# ------------------------------------------------------------------- zero_grad
def test_zero_grad():
    ours, _ = make_params()
    opt = optim.SGD(ours, lr=0.1)
    for p in ours:
        p.grad = pyfastnn.Tensor(np.ones(p.shape, np.float32))
    opt.zero_grad(set_to_none=False)
    for p in ours:
        assert p.grad is not None
        np.testing.assert_array_equal(p.grad.numpy(), 0)
    opt.zero_grad()
    assert all(p.grad is None for p in ours)
    before = [p.numpy().copy() for p in ours]
    opt.step()                                  # no gradients: nothing moves
    for p, b in zip(ours, before):
        np.testing.assert_array_equal(p.numpy(), b)


def test_zero_grad_after_backward_then_accumulate():
    w = pyfastnn.tensor(np.ones(3, np.float32), requires_grad=True)
    opt = optim.SGD([w], lr=0.5)
    (w * 2).sum().backward()
    opt.zero_grad(set_to_none=False)
    (w * 3).sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), 3)
    opt.step()
    np.testing.assert_allclose(w.numpy(), 1 - 1.5)


def test_step_closure():
    w = pyfastnn.tensor(np.array([1.0, -2.0], np.float32), requires_grad=True)
    opt = optim.SGD([w], lr=0.1)

    def closure():
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss
    with pyfastnn.no_grad():
        loss = opt.step(closure)
    assert float(loss.item()) == pytest.approx(5.0)
    np.testing.assert_allclose(w.numpy(), [0.8, -1.6], rtol=1e-6)


# ------------------------------------------------------------------ state_dict
STATE_CASES = [
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.2)),
    ("Adam", dict(lr=1e-2, amsgrad=True, weight_decay=0.01)),
    ("AdamW", dict(lr=1e-2, weight_decay=0.1)),
    ("RMSprop", dict(lr=1e-3, centered=True, momentum=0.9, weight_decay=0.01)),
]


@pytest.mark.parametrize("name,kwargs", STATE_CASES, ids=[c[0] + str(i) for i, c in enumerate(STATE_CASES)])
def test_state_dict_round_trip(name, kwargs):
    cls = getattr(optim, name)
    grads = grad_sequence()
    # uninterrupted
    ref, _ = make_params()
    opt = cls(ref, **kwargs)
    for g in grads:
        for p, gi in zip(ref, g):
            p.grad = pyfastnn.Tensor(gi.copy())
        opt.step()
    # 3 steps, save, a fresh optimizer (built with other hyper-parameters) loads it, 7 more steps
    ours, _ = make_params()
    first = cls(ours, **kwargs)
    for g in grads[:3]:
        for p, gi in zip(ours, g):
            p.grad = pyfastnn.Tensor(gi.copy())
        first.step()
    saved = copy.deepcopy(first.state_dict())
    sd = first.state_dict()
    assert set(sd) == {"state", "param_groups"}
    assert sorted(sd["state"]) == list(range(len(ours)))
    assert sd["param_groups"][0]["params"] == list(range(len(ours)))
    resumed_params = [pyfastnn.tensor(p.numpy().copy(), requires_grad=True) for p in ours]
    del first, ours
    other = dict(kwargs, lr=kwargs["lr"] * 7)
    second = cls(resumed_params, **other)
    second.load_state_dict(saved)
    assert second.param_groups[0]["lr"] == kwargs["lr"]
    for g in grads[3:]:
        for p, gi in zip(resumed_params, g):
            p.grad = pyfastnn.Tensor(gi.copy())
        second.step()
    for a, b in zip(resumed_params, ref):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_state_dict_shares_state_like_torch():
    """As torch's: the state tensors are the live state (deepcopy for a snapshot), param_groups are copies."""
    ours, _ = make_params()
    opt = optim.Adam(ours, lr=0.1)
    grads = grad_sequence()
    for p, g in zip(ours, grads[0]):
        p.grad = pyfastnn.Tensor(g)
    opt.step()
    sd = opt.state_dict()
    snapshot = copy.deepcopy(sd)
    for p, g in zip(ours, grads[1]):
        p.grad = pyfastnn.Tensor(g)
    opt.step()                                   # the live state moved on, the deep copy did not
    for k, st in sd["state"].items():
        assert float(st["step"]) == 2.0 and float(snapshot["state"][k]["step"]) == 1.0
        assert not np.array_equal(np.asarray(st["exp_avg"]), np.asarray(snapshot["state"][k]["exp_avg"]))
    sd["param_groups"][0]["lr"] = 123.0          # nor does editing the dict change the optimizer
    assert opt.param_groups[0]["lr"] == 0.1


def test_state_dict_with_param_groups_round_trip():
    ours, _ = make_params()
    opt = optim.SGD([{"params": ours[:1], "lr": 0.1}, {"params": ours[1:], "momentum": 0.9}], lr=0.01)
    for g in grad_sequence(steps=2):
        for p, gi in zip(ours, g):
            p.grad = pyfastnn.Tensor(gi)
        opt.step()
    sd = opt.state_dict()
    assert [grp["params"] for grp in sd["param_groups"]] == [[0], [1, 2, 3]]
    fresh = optim.SGD([{"params": ours[:1]}, {"params": ours[1:]}], lr=0.5)
    fresh.load_state_dict(sd)
    assert [g["lr"] for g in fresh.param_groups] == [0.1, 0.01]
    assert [g["momentum"] for g in fresh.param_groups] == [0.0, 0.9]
    bad = optim.SGD(ours, lr=0.5)
    with pytest.raises(ValueError, match="SGD"):
        bad.load_state_dict(sd)


def test_state_dict_loads_into_torch_shapes():
    """The saved state holds arrays of the parameters' shapes, like torch's."""
    ours, theirs = make_params()
    opt = optim.Adam(ours, lr=0.1)
    topt = torch.optim.Adam(theirs, lr=0.1)
    set_grads(ours, theirs, grad_sequence(steps=1)[0])
    opt.step()
    topt.step()
    sd, tsd = opt.state_dict(), topt.state_dict()
    for i in range(len(ours)):
        assert set(sd["state"][i]) >= {"step", "exp_avg", "exp_avg_sq"}
        assert int(sd["state"][i]["step"]) == int(tsd["state"][i]["step"])
        np.testing.assert_allclose(sd["state"][i]["exp_avg"], tsd["state"][i]["exp_avg"].numpy(), rtol=1e-6)
        np.testing.assert_allclose(sd["state"][i]["exp_avg_sq"], tsd["state"][i]["exp_avg_sq"].numpy(),
                                   rtol=1e-6)


# ------------------------------------------------------------------ schedulers
def _lr_sequences(make_sched, make_tsched, epochs=25, groups=((0.1, None), (0.02, None))):
    ours, theirs = make_params()
    opt = optim.SGD([{"params": ours[:2], "lr": groups[0][0]}, {"params": ours[2:], "lr": groups[1][0]}], lr=1.0)
    topt = torch.optim.SGD([{"params": theirs[:2], "lr": groups[0][0]}, {"params": theirs[2:], "lr": groups[1][0]}],
                           lr=1.0)
    sched, tsched = make_sched(opt), make_tsched(topt)
    got, want = [], []
    grads = grad_sequence(steps=1)[0]
    for _ in range(epochs):
        got.append([g["lr"] for g in opt.param_groups])
        want.append([g["lr"] for g in topt.param_groups])
        assert sched.get_last_lr() == pytest.approx(tsched.get_last_lr(), rel=1e-12, abs=1e-15)
        set_grads(ours, theirs, grads)
        opt.step()
        topt.step()
        sched.step()
        tsched.step()
    return np.array(got), np.array(want), opt, topt, ours, theirs


@pytest.mark.parametrize("kw", [dict(step_size=3), dict(step_size=3, gamma=0.5), dict(step_size=1, gamma=0.9)],
                         ids=str)
def test_step_lr(kw):
    got, want, *_ = _lr_sequences(lambda o: optim.lr_scheduler.StepLR(o, **kw),
                                  lambda o: torch.optim.lr_scheduler.StepLR(o, **kw))
    np.testing.assert_allclose(got, want, rtol=1e-12)


@pytest.mark.parametrize("kw", [dict(T_max=5), dict(T_max=5, eta_min=0.01), dict(T_max=10, eta_min=1e-3)], ids=str)
def test_cosine_annealing_lr(kw):
    got, want, opt, topt, ours, theirs = _lr_sequences(
        lambda o: optim.lr_scheduler.CosineAnnealingLR(o, **kw),
        lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, **kw), epochs=2 * kw["T_max"] + 3)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    assert_close(ours, theirs)     # the parameters followed the same schedule


def test_cosine_closed_form():
    w = pyfastnn.tensor(np.zeros(1, np.float32), requires_grad=True)
    opt = optim.SGD([w], lr=0.4)
    sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=4, eta_min=0.1)
    seen = []
    for _ in range(5):
        seen.append(opt.param_groups[0]["lr"])
        sched.step()
    expected = [0.1 + 0.3 * (1 + math.cos(math.pi * e / 4)) / 2 for e in range(5)]
    np.testing.assert_allclose(seen, expected, rtol=1e-12)
    assert seen[-1] == pytest.approx(0.1)


def test_scheduler_state_dict():
    ours, _ = make_params()
    opt = optim.SGD(ours, lr=0.1)
    sched = optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    for _ in range(3):
        sched.step()
    sd = sched.state_dict()
    assert "optimizer" not in sd
    opt2 = optim.SGD(ours, lr=0.1)
    sched2 = optim.lr_scheduler.StepLR(opt2, step_size=5, gamma=0.1)
    sched2.load_state_dict(sd)
    sched.step()
    sched2.step()
    assert opt2.param_groups[0]["lr"] == pytest.approx(opt.param_groups[0]["lr"])
    assert sched2.get_last_lr() == sched.get_last_lr()


def test_scheduler_errors():
    ours, _ = make_params()
    opt = optim.SGD(ours, lr=0.1)
    with pytest.raises(TypeError):
        optim.lr_scheduler.StepLR(object(), step_size=2)
    with pytest.raises(ValueError, match="StepLR"):
        optim.lr_scheduler.StepLR(opt, step_size=0)
    with pytest.raises(ValueError, match="CosineAnnealingLR"):
        optim.lr_scheduler.CosineAnnealingLR(opt, T_max=0)


# ---------------------------------------------------------------------- errors
@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop"])
def test_empty_params(name):
    assert_raises_naming(lambda: getattr(optim, name)([], lr=0.1), ValueError, [name, "empty"])
    assert_raises_naming(lambda: getattr(optim, name)(iter([]), lr=0.1), ValueError, [name])


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop"])
def test_negative_lr(name):
    ours, _ = make_params()
    assert_raises_naming(lambda: getattr(optim, name)(ours, lr=-0.1), ValueError, [name, "lr", "-0.1"])
    assert_raises_naming(lambda: getattr(optim, name)([{"params": ours[:1], "lr": -1.0}, {"params": ours[1:]}],
                                                      lr=0.1), ValueError, [name, "lr"])


@pytest.mark.parametrize("name,kwargs,word", [
    ("SGD", dict(lr=0.1, momentum=-0.5), "momentum"),
    ("SGD", dict(lr=0.1, weight_decay=-1e-3), "weight_decay"),
    ("SGD", dict(lr=0.1, nesterov=True), "nesterov"),
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), "nesterov"),
    ("Adam", dict(lr=0.1, betas=(1.0, 0.999)), "betas"),
    ("Adam", dict(lr=0.1, betas=(0.9, -0.1)), "betas"),
    ("Adam", dict(lr=0.1, eps=-1e-8), "eps"),
    ("AdamW", dict(lr=0.1, weight_decay=-0.1), "weight_decay"),
    ("RMSprop", dict(lr=0.1, alpha=-0.5), "alpha"),
    ("RMSprop", dict(lr=0.1, momentum=-0.5), "momentum"),
    ("RMSprop", dict(lr=0.1, eps=-1.0), "eps"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_bad_hyper_parameters(name, kwargs, word):
    ours, _ = make_params()
    assert_raises_naming(lambda: getattr(optim, name)(ours, **kwargs), ValueError, [name, word])


def test_bad_params_argument():
    ours, _ = make_params()
    with pytest.raises(TypeError, match="SGD"):
        optim.SGD(ours[0], lr=0.1)                  # a single tensor, not an iterable
    with pytest.raises(TypeError, match="Adam"):
        optim.Adam([np.zeros(3)], lr=0.1)           # not Tensors
    with pytest.raises(ValueError, match="SGD"):
        optim.SGD([ours[0], ours[0]], lr=0.1)       # a duplicate
    with pytest.raises(ValueError, match="SGD"):
        optim.SGD([ours[0] * 2], lr=0.1)            # a non-leaf tensor, like torch


def test_step_grad_shape_mismatch():
    ours, _ = make_params([(3,)])
    opt = optim.SGD(ours, lr=0.1)
    ours[0].grad = pyfastnn.Tensor(np.ones(4, np.float32))
    with pytest.raises(ValueError, match="SGD"):
        opt.step()


def test_repr_names_the_optimizer():
    ours, _ = make_params()
    text = repr(optim.Adam(ours, lr=0.5))
    assert "Adam" in text and "lr: 0.5" in text


def test_no_warnings_from_steps():
    ours, _ = make_params()
    opt = optim.RMSprop(ours, lr=0.01, centered=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for g in grad_sequence(steps=2):
            for p, gi in zip(ours, g):
                p.grad = pyfastnn.Tensor(gi)
            opt.step()
