"""Optimizer step hooks as torch's: pre-hooks before the update (they see the gradients and may change
them), post-hooks after, handles remove them, and a state_dict round trip leaves them alone."""
import numpy as np
import pytest

import pyfastnn
from pyfastnn import nn, optim


def test_step_hooks_run_in_order_and_can_edit_gradients():
    p = nn.Parameter(np.ones(3, np.float32))
    opt = optim.SGD([p], lr=0.5)
    log = []

    def halve(o, args, kwargs):
        assert o is opt and args == (None,) and kwargs == {}
        log.append(("pre", p.numpy().copy()))
        for g in o.param_groups:
            for q in g["params"]:
                q.grad.mul_(0.5)

    def after(o, args, kwargs):
        log.append(("post", p.numpy().copy()))
    h_pre = opt.register_step_pre_hook(halve)
    h_post = opt.register_step_post_hook(after)
    p.grad = pyfastnn.tensor(np.full(3, 2.0, np.float32))
    opt.step()
    np.testing.assert_array_equal(p.numpy(), np.full(3, 0.5))      # 1 - 0.5 * (2 * 0.5)
    assert [k for k, _ in log] == ["pre", "post"]
    np.testing.assert_array_equal(log[0][1], np.ones(3))
    h_pre.remove()
    h_post.remove()
    opt.step()
    np.testing.assert_array_equal(p.numpy(), np.zeros(3))          # no more halving: 0.5 - 0.5 * 1
    assert len(log) == 2
    opt.load_state_dict(opt.state_dict())
    with opt.register_step_post_hook(after):
        opt.step()
    assert len(log) == 3


def test_pre_hook_returning_something_else_is_an_error():
    p = nn.Parameter(np.ones(2, np.float32))
    p.grad = pyfastnn.tensor(np.ones(2, np.float32))
    opt = optim.Adam([p])
    opt.register_step_pre_hook(lambda o, a, k: 3)
    with pytest.raises(RuntimeError, match="pre-hook"):
        opt.step()


def test_hooks_match_torch_call_signature():
    torch = pytest.importorskip("torch")
    seen = {}
    tp = torch.nn.Parameter(torch.ones(2))
    tp.grad = torch.ones(2)
    topt = torch.optim.SGD([tp], lr=0.1)
    def record(key):
        def hook(o, args, kwargs):
            seen[key] = (len(args), dict(kwargs))
        return hook
    topt.register_step_pre_hook(record("torch"))
    topt.step()
    p = nn.Parameter(np.ones(2, np.float32))
    p.grad = pyfastnn.tensor(np.ones(2, np.float32))
    opt = optim.SGD([p], lr=0.1)
    opt.register_step_pre_hook(record("ours"))
    opt.step()
    assert seen["ours"][1] == seen["torch"][1] == {}
