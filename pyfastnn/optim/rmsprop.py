"""RMSprop (torch.optim.RMSprop: alpha, eps, momentum, centered, weight decay), one fused pass per parameter."""
from __future__ import annotations

import numpy as np

from .. import ops
from .optimizer import Optimizer

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False):
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                                      centered=centered))

    def _update(self, p, grad, group, state):
        if not state:
            state["step"] = 0
            state["square_avg"] = np.zeros_like(p._array)
            if group["momentum"] > 0:
                state["momentum_buffer"] = np.zeros_like(p._array)
            if group["centered"]:
                state["grad_avg"] = np.zeros_like(p._array)
        state["step"] += 1
        ops.rmsprop_step(p._array, grad, state["square_avg"], lr=group["lr"], alpha=group["alpha"], eps=group["eps"],
                         weight_decay=group["weight_decay"], momentum=group["momentum"],
                         momentum_buf=state.get("momentum_buffer"), centered=group["centered"],
                         grad_avg=state.get("grad_avg"))
