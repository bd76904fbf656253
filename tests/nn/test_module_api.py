"""nn.Module's API, nn.utils and nn.init against PyTorch: hooks, traversal, buffers, apply, repr,
clip_grad_*, parameters_to_vector, and the init functions' distributions."""
import math

import numpy as np
import pytest

import pyfastnn
from pyfastnn import nn
from module_check import copy_weights, pair, rnd

torch = pytest.importorskip("torch")


def _net(m):
    class Block(m.Module):
        def __init__(self):
            super().__init__()
            self.conv = m.Conv2d(3, 4, 3, padding=1)
            self.bn = m.BatchNorm2d(4)
            self.register_buffer("scale", torch.ones(1) if m is torch.nn else np.ones(1, np.float32))
            self.register_buffer("cache", torch.zeros(2) if m is torch.nn else np.zeros(2, np.float32),
                                 persistent=False)

        def forward(self, x):
            return self.bn(self.conv(x)).relu() * self.scale

    class Net(m.Module):
        def __init__(self):
            super().__init__()
            self.features = m.Sequential(Block(), m.MaxPool2d(2))
            self.head = m.ModuleDict({"fc": m.Linear(4 * 3 * 3, 5), "out": m.Linear(5, 2)})

        def forward(self, x):
            x = self.features(x).flatten(1)
            return self.head["out"](self.head["fc"](x).relu())
    return Net()


def test_traversal_names_match_torch():
    t, o = pair(_net)
    assert [n for n, _ in o.named_modules()] == [n for n, _ in t.named_modules()]
    assert [n for n, _ in o.named_children()] == [n for n, _ in t.named_children()]
    assert [type(c).__name__ for c in o.children()] == [type(c).__name__ for c in t.children()]
    assert [n for n, _ in o.named_parameters()] == [n for n, _ in t.named_parameters()]
    assert [n for n, _ in o.named_buffers()] == [n for n, _ in t.named_buffers()]
    assert list(o.state_dict()) == list(t.state_dict())         # the non-persistent buffer is left out
    assert "features.0.cache" not in o.state_dict()
    assert o.get_submodule("features.0.conv").out_channels == 4
    assert tuple(o.get_parameter("head.fc.weight").shape) == (5, 36)
    assert o.get_buffer("features.0.scale").shape == (1,)


def test_apply_train_eval_requires_grad():
    t, o = pair(_net)
    seen = []
    assert o.apply(lambda mod: seen.append(type(mod).__name__)) is o
    want = []
    t.apply(lambda mod: want.append(type(mod).__name__))
    assert seen == want                                          # children first, then the module
    o.eval()
    assert all(not mod.training for mod in o.modules())
    o.train()
    assert all(mod.training for mod in o.modules())
    o.features.requires_grad_(False)
    assert [p.requires_grad for p in o.parameters()] == [False] * 4 + [True] * 4


def test_forward_hooks_match_torch():
    t, o = pair(_net)
    copy_weights(t, o)
    x = rnd(2, 3, 6, 6)
    log = {"t": [], "o": []}

    def hooks(model, key, lib):
        def pre(mod, args):
            log[key].append("pre")
            return (args[0] * 2,)

        def first(mod, args, out):
            log[key].append("first")

        def post(mod, args, out):
            log[key].append("post")
            return out + 1

        def kw_pre(mod, args, kwargs):
            log[key].append("kwpre")
            return args, kwargs
        h1 = model.head["fc"].register_forward_pre_hook(pre)
        h2 = model.head["fc"].register_forward_hook(post)
        h3 = model.head["fc"].register_forward_hook(first, prepend=True)
        h4 = model.register_forward_pre_hook(kw_pre, with_kwargs=True)
        return [h1, h2, h3, h4]
    th, oh = hooks(t, "t", torch), hooks(o, "o", pyfastnn)
    want = t(torch.from_numpy(x)).detach().numpy()
    got = o(x).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert log["o"] == log["t"] == ["kwpre", "pre", "first", "post"]
    for h in th + oh:
        h.remove()
    np.testing.assert_allclose(o(x).numpy(), t(torch.from_numpy(x)).detach().numpy(), rtol=1e-5, atol=1e-6)
    assert len(log["o"]) == 4


def test_backward_hook_sees_output_gradient():
    t, o = pair(lambda m: m.Linear(4, 3))
    copy_weights(t, o)
    got = {}
    want = {}
    def keep(store):
        def hook(mod, grad_input, grad_output):
            store["gout"] = grad_output[0].numpy().copy()
        return hook
    o.register_full_backward_hook(keep(got))
    t.register_full_backward_hook(keep(want))
    x = rnd(2, 4)
    w = rnd(2, 3, seed=1)
    (o(pyfastnn.tensor(x, requires_grad=True)) * w).sum().backward()
    (t(torch.tensor(x, requires_grad=True)) * torch.from_numpy(w)).sum().backward()
    np.testing.assert_allclose(got["gout"], want["gout"], rtol=1e-6)


def test_repr_matches_torch_for_common_modules():
    for build in (lambda m: m.Linear(3, 4), lambda m: m.Conv2d(3, 8, 3, stride=2, padding=1, bias=False),
                  lambda m: m.BatchNorm2d(4), lambda m: m.BatchNorm1d(4, bias=False), lambda m: m.LayerNorm(5), lambda m: m.RMSNorm(5), lambda m: m.LayerNorm(5, elementwise_affine=False),
                  lambda m: m.GroupNorm(2, 4), lambda m: m.InstanceNorm2d(3), lambda m: m.InstanceNorm1d(3, affine=True), lambda m: m.Dropout(0.1),
                  lambda m: m.Embedding(10, 3), lambda m: m.MaxPool2d(2),
                  lambda m: m.Sequential(m.Linear(3, 4), m.ReLU(), m.Linear(4, 1))):
        t, o = pair(build)
        assert repr(o) == repr(t)


@pytest.mark.parametrize("norm_type", [2.0, 1.0, float("inf"), 3.0])
def test_clip_grad_norm_matches_torch(norm_type):
    t, o = pair(_net)
    copy_weights(t, o)
    x, w = rnd(2, 3, 6, 6), rnd(2, 2, seed=3) * 100
    (t(torch.from_numpy(x)) * torch.from_numpy(w)).sum().backward()
    (o(x) * w).sum().backward()
    tn = torch.nn.utils.clip_grad_norm_(t.parameters(), 0.5, norm_type=norm_type)
    on = nn.utils.clip_grad_norm_(o.parameters(), 0.5, norm_type=norm_type)
    assert isinstance(on, pyfastnn.Tensor) and on.shape == ()
    assert math.isclose(float(on), float(tn), rel_tol=1e-5)
    for (n, tp), (_, op) in zip(t.named_parameters(), o.named_parameters()):
        np.testing.assert_allclose(op.grad.numpy(), tp.grad.numpy(), rtol=1e-4, atol=1e-7, err_msg=n)


def test_clip_grad_value_and_parameter_vectors_match_torch():
    t, o = pair(_net)
    copy_weights(t, o)
    x, w = rnd(2, 3, 6, 6), rnd(2, 2, seed=3)
    (t(torch.from_numpy(x)) * torch.from_numpy(w)).sum().backward()
    (o(x) * w).sum().backward()
    torch.nn.utils.clip_grad_value_(t.parameters(), 0.05)
    nn.utils.clip_grad_value_(o.parameters(), 0.05)
    for tp, op in zip(t.parameters(), o.parameters()):
        np.testing.assert_allclose(op.grad.numpy(), tp.grad.numpy(), rtol=1e-4, atol=1e-7)
    tv = torch.nn.utils.parameters_to_vector(t.parameters())
    ov = nn.utils.parameters_to_vector(o.parameters())
    np.testing.assert_array_equal(ov.numpy(), tv.detach().numpy())
    nn.utils.vector_to_parameters(ov * 2, o.parameters())
    for tp, op in zip(t.parameters(), o.parameters()):
        np.testing.assert_array_equal(op.detach().numpy(), 2 * tp.detach().numpy())


def test_clip_grad_norm_of_nothing_and_nonfinite():
    p = nn.Parameter(np.ones(3, np.float32))
    assert float(nn.utils.clip_grad_norm_([p], 1.0)) == 0.0        # no gradients yet
    p.grad = pyfastnn.tensor(np.array([np.inf, 1, 1], np.float32))
    with pytest.raises(RuntimeError, match="non-finite"):
        nn.utils.clip_grad_norm_([p], 1.0, error_if_nonfinite=True)


# ------------------------------------------------------------------- nn.init
def _stats(w):
    w = np.asarray(w, np.float64).ravel()
    return w.mean(), w.std()


@pytest.mark.parametrize("mode,nonlinearity", [("fan_in", "relu"), ("fan_out", "relu"), ("fan_in", "leaky_relu"),
                                               ("fan_out", "tanh")])
def test_kaiming_matches_torch_std(mode, nonlinearity):
    shape = (128, 64, 3, 3)
    t = torch.empty(shape)
    o = nn.Parameter(np.empty(shape, np.float32))
    torch.nn.init.kaiming_normal_(t, mode=mode, nonlinearity=nonlinearity)
    nn.init.kaiming_normal_(o, mode=mode, nonlinearity=nonlinearity)
    (tm, ts), (om, os_) = _stats(t.numpy()), _stats(o.numpy())
    assert abs(om) < 0.01 and abs(os_ / ts - 1) < 0.02
    torch.nn.init.kaiming_uniform_(t, a=math.sqrt(5), mode=mode)
    nn.init.kaiming_uniform_(o, a=math.sqrt(5), mode=mode)
    assert abs(np.abs(o.numpy()).max() / np.abs(t.numpy()).max() - 1) < 0.01


def test_xavier_trunc_normal_orthogonal_constant():
    o = nn.Parameter(np.empty((300, 200), np.float32))
    nn.init.xavier_uniform_(o, gain=nn.init.calculate_gain("tanh"))
    bound = 5 / 3 * math.sqrt(6 / 500)
    assert np.abs(o.numpy()).max() <= bound and np.abs(o.numpy()).max() > 0.99 * bound
    nn.init.xavier_normal_(o)
    assert abs(o.numpy().std() - math.sqrt(2 / 500)) < 0.002
    nn.init.trunc_normal_(o, mean=0.5, std=1.0, a=-1.0, b=1.0)
    assert o.numpy().min() >= -1.0 and o.numpy().max() <= 1.0 and o.numpy().mean() > 0.05
    q = nn.Parameter(np.empty((40, 60), np.float32))
    nn.init.orthogonal_(q, gain=2.0)
    np.testing.assert_allclose(q.numpy() @ q.numpy().T, 4 * np.eye(40), atol=1e-4)
    nn.init.constant_(q, 0.25)
    assert np.all(q.numpy() == 0.25)
    for name in ("linear", "conv2d", "sigmoid", "tanh", "relu", "selu"):
        assert math.isclose(nn.init.calculate_gain(name), torch.nn.init.calculate_gain(name))
    assert math.isclose(nn.init.calculate_gain("leaky_relu", 0.2), torch.nn.init.calculate_gain("leaky_relu", 0.2))


def test_init_functions_record_no_gradient_and_keep_identity():
    lin = nn.Linear(4, 3)
    w = lin.weight
    before = w._version
    nn.init.zeros_(lin.weight)
    assert lin.weight is w and w.grad_fn is None and w._version > before
    assert not np.any(w.numpy())
