"""SGD with momentum, dampening, nesterov and weight decay (torch.optim.SGD), one fused pass per parameter."""
from __future__ import annotations

import numpy as np

from .. import ops
from .optimizer import Optimizer

__all__ = ["SGD"]


class SGD(Optimizer):
    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: nesterov momentum needs momentum > 0 and dampening = 0")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                                      nesterov=nesterov))

    def _update(self, p, grad, group, state):
        momentum = group["momentum"]
        buf = None
        first = False
        if momentum:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = np.zeros_like(p._array)
                first = True
        ops.sgd_step(p._array, grad, buf, lr=group["lr"], momentum=momentum, dampening=group["dampening"],
                     nesterov=group["nesterov"], weight_decay=group["weight_decay"], first_step=first)
