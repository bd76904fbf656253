"""Shared pieces of the tests/compat ports: each port is written once as a
function of the library module (``build(torch, nn, F)``), built once with real
PyTorch and once with ``import pyfastnn as torch``, given the same weights
(torch's state_dict copied through ``load_state_dict``) and the same data, and
compared. Nothing in a ported source may be changed for pyfastnn."""
import numpy as np
import pytest


def as_np(t):
    """A torch or pyfastnn tensor (or array, number) as a numpy array; the user idiom
    ``t.detach().cpu().numpy()`` for tensors."""
    if isinstance(t, np.ndarray):
        return t
    if hasattr(t, "detach"):
        return np.asarray(t.detach().cpu().numpy())
    return np.asarray(t)


def rel_err(got, ref, floor=0.0):
    """Norm-wise relative error; the denominator is at least `floor` (absolute where the
    reference is all zeros)."""
    got = np.asarray(as_np(got), np.float64)
    ref = np.asarray(as_np(ref), np.float64)
    assert got.shape == ref.shape, f"shape {got.shape} != torch's {ref.shape}"
    if ref.size == 0:
        return 0.0
    d = max(np.linalg.norm(ref), floor)
    return float(np.linalg.norm(got - ref) / (d if d > 0 else 1.0))


def assert_rel(got, ref, tol, what=""):
    err = rel_err(got, ref)
    assert err <= tol, f"{what}: relative error {err:.3g} > {tol:g}"


def copy_weights(torch_model, fast_model):
    """torch's state_dict into pyfastnn's model, exactly the call SPEC promises."""
    fast_model.load_state_dict({k: v.detach().numpy() for k, v in torch_model.state_dict().items()})


def to_lib(lib, t):
    """A copy of a torch tensor (or numpy array) as a tensor of `lib`, same dtype."""
    return lib.tensor(np.array(as_np(t)))


def compare_grads(torch_model, fast_model, tol, skip=()):
    """Every named parameter's .grad of the two models within `tol` (norm-wise relative).
    Gradients that are mathematically zero (a key bias under softmax: rounding noise of
    1e-12 in both libraries) are measured against 1e-6 of the model's largest gradient."""
    tp = dict(torch_model.named_parameters())
    fp = dict(fast_model.named_parameters())
    assert sorted(tp) == sorted(fp), (sorted(set(tp) ^ set(fp)))
    floor = 1e-6 * max([float(np.linalg.norm(as_np(p.grad))) for p in tp.values() if p.grad is not None] + [0.0])
    bad = []
    for name, p in tp.items():
        if name in skip:
            continue
        q = fp[name]
        if p.grad is None:
            assert q.grad is None, f"{name}: torch has no grad, pyfastnn has one"
            continue
        assert q.grad is not None, f"{name}: pyfastnn's .grad is None"
        err = rel_err(q.grad, p.grad, floor)
        if not err <= tol:
            bad.append(f"{name}: {err:.3g}")
    assert not bad, "gradients differ: " + ", ".join(bad)


def compare_params(torch_model, fast_model, tol):
    tp = dict(torch_model.named_parameters())
    fp = dict(fast_model.named_parameters())
    bad = [f"{n}: {rel_err(fp[n], p):.3g}" for n, p in tp.items() if not rel_err(fp[n], p) <= tol]
    assert not bad, "parameters differ: " + ", ".join(bad)


@pytest.fixture(autouse=True, scope="module")
def torch_single_thread():
    """Real torch on one thread while a compat module runs (imported into each module, so autouse applies
    there). torch's OpenMP workers spin while they wait: on a busy 2-core machine a 2-layer nanoGPT step took
    seconds instead of milliseconds. Results are compared at tolerances that do not depend on this."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
