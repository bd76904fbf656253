"""Adadelta, Adagrad, Adamax, NAdam and RAdam with torch.optim's update rules, written as array code (the hot
optimizers, SGD/Adam/AdamW/RMSprop, are the fused native kernels)."""
from __future__ import annotations

import math

import numpy as np

from .optimizer import Optimizer

__all__ = ["Adadelta", "Adagrad", "Adamax", "NAdam", "RAdam"]


def _with_decay(p, grad, wd):
    return grad + wd * p._array if wd else grad


class Adadelta(Optimizer):
    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0, foreach=None, *, capturable=False,
                 maximize=False, differentiable=False):
        if not 0.0 <= rho <= 1.0:
            raise ValueError(f"Adadelta: Invalid rho value: {rho}")
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize,
                                      capturable=capturable, foreach=foreach, differentiable=differentiable))

    def _update(self, p, grad, group, state):
        if "square_avg" not in state:
            state["square_avg"], state["acc_delta"] = self._zeros_like(p), self._zeros_like(p)
        self._step_count(state)
        rho, eps = group["rho"], group["eps"]
        g = _with_decay(p, grad, group["weight_decay"])
        sq, acc = state["square_avg"]._array, state["acc_delta"]._array
        sq *= rho
        sq += (1 - rho) * g * g
        delta = np.sqrt(acc + eps) / np.sqrt(sq + eps) * g
        acc *= rho
        acc += (1 - rho) * delta * delta
        p._array -= group["lr"] * delta


class Adagrad(Optimizer):
    def __init__(self, params, lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10,
                 foreach=None, *, maximize=False, differentiable=False, fused=None):
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value, foreach=foreach,
                                      maximize=maximize, differentiable=differentiable, fused=fused))

    def _update(self, p, grad, group, state):
        if "sum" not in state:
            state["sum"] = self._zeros_like(p)
            state["sum"]._array += group["initial_accumulator_value"]
        step = self._step_count(state)
        g = _with_decay(p, grad, group["weight_decay"])
        clr = group["lr"] / (1 + (step - 1) * group["lr_decay"])
        acc = state["sum"]._array
        acc += g * g
        p._array -= clr * g / (np.sqrt(acc) + group["eps"])


class Adamax(Optimizer):
    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, foreach=None, *,
                 maximize=False, differentiable=False, capturable=False):
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, foreach=foreach,
                                      maximize=maximize, differentiable=differentiable, capturable=capturable))

    def _update(self, p, grad, group, state):
        if "exp_avg" not in state:
            state["exp_avg"], state["exp_inf"] = self._zeros_like(p), self._zeros_like(p)
        step = self._step_count(state)
        b1, b2 = group["betas"]
        g = _with_decay(p, grad, group["weight_decay"])
        m, u = state["exp_avg"]._array, state["exp_inf"]._array
        m *= b1
        m += (1 - b1) * g
        np.maximum(u * b2, np.abs(g) + group["eps"], out=u)
        p._array -= group["lr"] / (1 - b1 ** step) * m / u


class NAdam(Optimizer):
    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, momentum_decay=4e-3,
                 decoupled_weight_decay=False, *, foreach=None, maximize=False, capturable=False, differentiable=False):
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      momentum_decay=momentum_decay, decoupled_weight_decay=decoupled_weight_decay,
                                      maximize=maximize, foreach=foreach, capturable=capturable,
                                      differentiable=differentiable))

    def _update(self, p, grad, group, state):
        if "exp_avg" not in state:
            state["mu_product"] = 1.0
            state["exp_avg"], state["exp_avg_sq"] = self._zeros_like(p), self._zeros_like(p)
        step = self._step_count(state)
        b1, b2 = group["betas"]
        lr, wd, psi = group["lr"], group["weight_decay"], group["momentum_decay"]
        if wd and group["decoupled_weight_decay"]:
            p._array *= 1 - lr * wd
            g = grad
        else:
            g = _with_decay(p, grad, wd)
        mu = b1 * (1.0 - 0.5 * 0.96 ** (step * psi))
        mu_next = b1 * (1.0 - 0.5 * 0.96 ** ((step + 1) * psi))
        mu_product = float(state["mu_product"]) * mu
        state["mu_product"] = mu_product
        m, v = state["exp_avg"]._array, state["exp_avg_sq"]._array
        m += (g - m) * (1 - b1)
        v *= b2
        v += (1 - b2) * g * g
        denom = np.sqrt(v / (1 - b2 ** step)) + group["eps"]
        p._array -= lr * (1 - mu) / (1 - mu_product) * g / denom
        p._array -= lr * mu_next / (1 - mu_product * mu_next) * m / denom


class RAdam(Optimizer):
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, decoupled_weight_decay=False,
                 *, foreach=None, maximize=False, capturable=False, differentiable=False):
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      decoupled_weight_decay=decoupled_weight_decay, maximize=maximize,
                                      foreach=foreach, capturable=capturable, differentiable=differentiable))

    def _update(self, p, grad, group, state):
        if "exp_avg" not in state:
            state["exp_avg"], state["exp_avg_sq"] = self._zeros_like(p), self._zeros_like(p)
        step = self._step_count(state)
        b1, b2 = group["betas"]
        lr, wd = group["lr"], group["weight_decay"]
        if wd and group["decoupled_weight_decay"]:
            p._array *= 1 - lr * wd
            g = grad
        else:
            g = _with_decay(p, grad, wd)
        m, v = state["exp_avg"]._array, state["exp_avg_sq"]._array
        m += (g - m) * (1 - b1)
        v *= b2
        v += (1 - b2) * g * g
        corrected = m / (1 - b1 ** step)
        rho_inf = 2 / (1 - b2) - 1
        rho_t = rho_inf - 2 * step * b2 ** step / (1 - b2 ** step)
        if rho_t > 5.0:
            rect = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
            adaptive = math.sqrt(1 - b2 ** step) / (np.sqrt(v) + group["eps"])
            p._array -= lr * corrected * rect * adaptive
        else:
            p._array -= lr * corrected
