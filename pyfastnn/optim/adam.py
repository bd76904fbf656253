"""Adam and AdamW (torch.optim.Adam / AdamW, with bias correction and amsgrad), one fused pass per parameter."""
from __future__ import annotations

import numpy as np

from .. import ops
from .optimizer import Optimizer

__all__ = ["Adam", "AdamW"]


class Adam(Optimizer):
    _decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False):
        if not (0.0 <= betas[0] < 1.0 and 0.0 <= betas[1] < 1.0):
            raise ValueError(f"{type(self).__name__}: betas must be in [0, 1), got {betas}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      amsgrad=amsgrad))

    def _update(self, p, grad, group, state):
        if not state:
            state["step"] = 0
            state["exp_avg"] = np.zeros_like(p._array)
            state["exp_avg_sq"] = np.zeros_like(p._array)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = np.zeros_like(p._array)
        state["step"] += 1
        b1, b2 = group["betas"]
        ops.adam_step(p._array, grad, state["exp_avg"], state["exp_avg_sq"], step=state["step"], lr=group["lr"],
                      beta1=b1, beta2=b2, eps=group["eps"], weight_decay=group["weight_decay"],
                      decoupled_weight_decay=self._decoupled, amsgrad=group["amsgrad"],
                      max_exp_avg_sq=state.get("max_exp_avg_sq"))


class AdamW(Adam):
    _decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad)
