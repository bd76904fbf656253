"""nn.utils.fusion: an eval-mode BatchNorm folded into the convolution before it gives the unfused outputs
(1e-5 relative) and input gradients (1e-4), on awkward shapes; the fold follows every change to the weights
and statistics, and steps aside for training, hooks and parameter gradients."""
import numpy as np
import pytest

import pyfastnn
from pyfastnn import models, nn
from pyfastnn.nn.utils.fusion import conv_bn, foldable, fuse_conv_bn_eval


def rel(got, want):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    return np.abs(got - want).max() / max(np.abs(want).max(), 1e-30)


def pair(rng, cin, cout, k, stride=1, padding=0, dilation=1, groups=1, bias=False):
    conv = nn.Conv2d(cin, cout, k, stride=stride, padding=padding, dilation=dilation, groups=groups, bias=bias)
    bn = nn.BatchNorm2d(cout)
    bn.running_mean.data = rng.standard_normal(cout).astype(np.float32)
    bn.running_var.data = (0.5 + rng.random(cout)).astype(np.float32)
    bn.weight.data = rng.standard_normal(cout).astype(np.float32)
    bn.bias.data = rng.standard_normal(cout).astype(np.float32)
    return conv.eval(), bn.eval()


def unfused(conv, bn, x):
    return bn(conv(x))


GEOMETRIES = [dict(cin=3, cout=5, k=7, stride=2, padding=3), dict(cin=6, cout=9, k=3, padding=1, groups=3, bias=True),
              dict(cin=5, cout=7, k=1, stride=2), dict(cin=4, cout=4, k=3, dilation=2, padding="same")]


@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_outputs_match_unfused(geometry):
    rng = np.random.default_rng()
    conv, bn = pair(rng, **geometry)
    x = rng.standard_normal((2, geometry["cin"], 13, 11)).astype(np.float32)
    with pyfastnn.no_grad():
        assert foldable(conv, bn)
        got = conv_bn(conv, bn, x).numpy()
    want = unfused(conv, bn, x).detach().numpy()          # gradients wanted: the unfused path
    assert rel(got, want) < 1e-5


def test_input_gradient_through_frozen_fold():
    rng = np.random.default_rng()
    conv, bn = pair(rng, 4, 6, 3, padding=1, bias=True)
    for p in list(conv.parameters()) + list(bn.parameters()):
        p.requires_grad_(False)
    x = rng.standard_normal((3, 4, 9, 10)).astype(np.float32)
    g = rng.standard_normal((3, 6, 9, 10)).astype(np.float32)
    grads = []
    for fn in (conv_bn, unfused):
        xt = pyfastnn.tensor(x, requires_grad=True)
        fn(conv, bn, xt).backward(pyfastnn.tensor(g))
        grads.append(xt.grad.numpy())
    assert foldable(conv, bn)
    assert rel(grads[0], grads[1]) < 1e-4


def test_fold_follows_every_change():
    rng = np.random.default_rng()
    conv, bn = pair(rng, 3, 4, 3)
    x = rng.standard_normal((1, 3, 8, 8)).astype(np.float32)

    def check():
        with pyfastnn.no_grad():
            got = conv_bn(conv, bn, x).numpy()
            want = bn(conv(x)).numpy()
        assert rel(got, want) < 1e-5
    check()
    with pyfastnn.no_grad():
        conv.weight.mul_(2.0)                                     # an in-place op (version counter)
    check()
    conv.weight.data.copy_(pyfastnn.tensor(rng.standard_normal(conv.weight.shape).astype(np.float32)))  # .data
    check()
    conv.weight.numpy()[...] = rng.standard_normal(conv.weight.shape)                      # a raw numpy view
    check()
    bn.running_var.numpy()[1] = 7.0                                                        # one statistic
    check()
    state = {k: v.numpy() * 0.5 for k, v in conv.state_dict().items()}
    conv.load_state_dict(state)
    check()
    bn.eps = 0.1
    check()


def test_steps_aside_for_training_hooks_and_gradients():
    rng = np.random.default_rng()
    conv, bn = pair(rng, 3, 4, 3)
    assert not foldable(conv, bn)                       # grad enabled, parameters require grad
    with pyfastnn.no_grad():
        assert foldable(conv, bn)
        bn.train()
        assert not foldable(conv, bn)
        bn.eval()
        calls = []
        handle = bn.register_forward_hook(lambda m, i, o: calls.append(1))
        assert not foldable(conv, bn)
        conv_bn(conv, bn, np.zeros((1, 3, 5, 5), np.float32))
        assert calls == [1]
        handle.remove()
        assert foldable(conv, bn)


def test_fuse_conv_bn_eval_module():
    rng = np.random.default_rng()
    conv, bn = pair(rng, 3, 5, 3, stride=2, bias=True)
    x = rng.standard_normal((2, 3, 10, 9)).astype(np.float32)
    with pyfastnn.no_grad():
        assert rel(fuse_conv_bn_eval(conv, bn)(x).numpy(), bn(conv(x)).numpy()) < 1e-5
    with pytest.raises(ValueError, match="eval mode"):
        fuse_conv_bn_eval(conv.train(), bn)


def test_resnet_eval_folded_equals_unfolded():
    rng = np.random.default_rng()
    model = models.ResNet(models.resnet.Bottleneck, [1, 1, 1, 1], num_classes=5)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.data = (0.1 * rng.standard_normal(m.num_features)).astype(np.float32)
            m.running_var.data = (0.5 + rng.random(m.num_features)).astype(np.float32)
    model.eval()
    x = rng.standard_normal((2, 3, 33, 37)).astype(np.float32)
    with pyfastnn.no_grad():
        folded = model(x).numpy()
    assert rel(folded, model(x).detach().numpy()) < 1e-5
