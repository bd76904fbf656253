"""SGD with momentum, dampening, nesterov and weight decay (torch.optim.SGD), one fused pass per parameter."""
from __future__ import annotations

from .. import ops
from .optimizer import Optimizer

__all__ = ["SGD"]


class SGD(Optimizer):
    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, *,
                 maximize=False, foreach=None, differentiable=False, fused=None):
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: Nesterov momentum requires a momentum and zero dampening (argument 'nesterov')")
        if differentiable:
            raise NotImplementedError("SGD: differentiable=True is not supported")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                                      nesterov=nesterov, maximize=maximize, foreach=foreach,
                                      differentiable=differentiable, fused=fused))

    def _update(self, p, grad, group, state):
        momentum = group["momentum"]
        buf = None
        first = False
        if momentum:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = self._zeros_like(p)
                first = True
        ops.sgd_step(p._array, grad, None if buf is None else buf._array, lr=group["lr"], momentum=momentum,
                     dampening=group["dampening"], nesterov=group["nesterov"], weight_decay=group["weight_decay"],
                     first_step=first)
