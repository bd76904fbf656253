"""parameters_to_vector / vector_to_parameters (torch.nn.utils)."""
from __future__ import annotations

from ...autograd import no_grad
from ...tensor import Tensor, cat

__all__ = ["parameters_to_vector", "vector_to_parameters"]


def parameters_to_vector(parameters):
    """All parameters flattened into one 1-D tensor (differentiable)."""
    return cat([p.reshape(-1) for p in parameters])


def vector_to_parameters(vec, parameters):
    """Copies slices of a 1-D vector into the parameters, in order."""
    if not isinstance(vec, Tensor):
        raise TypeError(f"expected torch.Tensor, but got: {type(vec).__name__}")
    offset = 0
    with no_grad():
        for p in parameters:
            n = p.numel()
            p._array[...] = vec._array[offset:offset + n].reshape(p._array.shape)
            p._counter[0] += 1
            offset += n
