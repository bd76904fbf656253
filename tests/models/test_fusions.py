"""Each fusion the models use against the unfused path it replaces, on fresh random inputs of awkward sizes:
outputs within 1e-5 relative, gradients within 1e-4."""
import numpy as np
import pytest

import pyfastnn
from pyfastnn import nn
from pyfastnn.models._text import ACTIVATIONS, EPILOGUES, linear_activation


def rel(got, want):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    return np.abs(got - want).max() / max(np.abs(want).max(), 1e-30)


@pytest.mark.parametrize("name", sorted(EPILOGUES))
def test_linear_activation_matches_linear_then_activation(name):
    rng = np.random.default_rng()
    layer = nn.Linear(37, 53)
    x = rng.standard_normal((3, 5, 37)).astype(np.float32)
    with pyfastnn.no_grad():                          # inference: the activation runs in the GEMM's epilogue
        fused = linear_activation(layer, x, name).numpy()
        plain = ACTIVATIONS[name](layer(x)).numpy()
    assert rel(fused, plain) < 1e-5
    g = rng.standard_normal(fused.shape).astype(np.float32)
    grads = []
    for fn in (lambda t: linear_activation(layer, t, name), lambda t: ACTIVATIONS[name](layer(t))):
        xt = pyfastnn.tensor(x, requires_grad=True)
        layer.zero_grad()
        out = fn(xt)
        assert rel(out.detach().numpy(), plain) < 1e-5
        out.backward(pyfastnn.tensor(g))
        grads.append((xt.grad.numpy(), layer.weight.grad.numpy(), layer.bias.grad.numpy()))
    for a, b in zip(*grads):
        assert rel(a, b) < 1e-4
