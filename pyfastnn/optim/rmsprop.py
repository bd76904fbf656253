"""RMSprop (torch.optim.RMSprop: alpha, eps, momentum, centered, weight decay), one fused pass per parameter."""
from __future__ import annotations

from .. import ops
from .optimizer import Optimizer

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False,
                 capturable=False, foreach=None, maximize=False, differentiable=False):
        if differentiable:
            raise NotImplementedError("RMSprop: differentiable=True is not supported")
        super().__init__(params, dict(lr=lr, momentum=momentum, alpha=alpha, eps=eps, centered=centered,
                                      weight_decay=weight_decay, capturable=capturable, foreach=foreach,
                                      maximize=maximize, differentiable=differentiable))

    def _init_state(self, p, group, state):
        """square_avg, and momentum_buffer / grad_avg when momentum / centered ask for them (torch's names)."""
        if "square_avg" not in state:
            state["square_avg"] = self._zeros_like(p)
            if group["momentum"] > 0:
                state["momentum_buffer"] = self._zeros_like(p)
            if group["centered"]:
                state["grad_avg"] = self._zeros_like(p)

    def _update(self, p, grad, group, state):
        self._init_state(p, group, state)
        self._step_count(state)
        mb, ga = state.get("momentum_buffer"), state.get("grad_avg")
        ops.rmsprop_step(p._array, grad, state["square_avg"]._array, lr=group["lr"], alpha=group["alpha"],
                         eps=group["eps"], weight_decay=group["weight_decay"], momentum=group["momentum"],
                         momentum_buf=None if mb is None else mb._array, centered=group["centered"],
                         grad_avg=None if ga is None else ga._array)
