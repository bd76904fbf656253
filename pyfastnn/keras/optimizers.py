"""Keras optimizers: Keras's argument names, defaults and update rules, pyfastnn's steps underneath.

Where Keras's rule differs from torch's, the Keras one runs: Adam adds epsilon to the bias-uncorrected
sqrt(v) (torch: to the corrected one), which is torch's fused step with epsilon / sqrt(1 - beta_2^t);
RMSprop takes sqrt(v + epsilon) (torch: sqrt(v) + epsilon), which matters wherever gradients are small.
"""
from __future__ import annotations

import math
import numbers
import re
import warnings

from .. import _device, optim
from ..autograd import no_grad
from ..nn.utils import clip_grad_norm_, clip_grad_value_
from ..training.registry import KERAS_OPTIMIZERS

__all__ = ["Optimizer", "Adam", "AdamW", "SGD", "RMSprop", "get"]


class Optimizer:
    """Keras's optimizer arguments over a pyfastnn optimizer: learning_rate (or the tf.keras 2 name lr, with a
    warning), clipnorm / clipvalue / global_clipnorm, Keras 3's decoupled weight_decay and tf.keras 2's
    inverse-time decay, applied before each step of the fused update."""
    _UNSUPPORTED = ("use_ema", "ema_momentum", "ema_overwrite_frequency", "loss_scale_factor",
                    "gradient_accumulation_steps")

    def __init__(self, learning_rate=0.001, *, name=None, clipnorm=None, clipvalue=None, global_clipnorm=None,
                 weight_decay=None, decay=0.0, lr=None, **unknown):
        cls = type(self).__name__
        for key in self._UNSUPPORTED:
            if unknown.pop(key, None) not in (None, False):
                raise NotImplementedError(f"{cls}: argument '{key}' is not supported")
        if unknown:
            raise TypeError(f"{cls}: unexpected keyword argument(s) {sorted(unknown)}")
        if lr is not None:
            warnings.warn(f"{cls}: the `lr` argument is deprecated, use `learning_rate` instead.",
                          DeprecationWarning, stacklevel=3)
            learning_rate = lr
        if isinstance(learning_rate, bool) or not isinstance(learning_rate, numbers.Real):
            raise TypeError(f"{cls}: learning_rate must be a number, got {type(learning_rate).__name__} "
                            f"{learning_rate!r}")
        if not learning_rate > 0:
            raise ValueError(f"{cls}: learning_rate must be positive, got {learning_rate}")
        if sum(v is not None for v in (clipnorm, clipvalue, global_clipnorm)) > 1:
            raise ValueError(f"{cls}: only one of clipnorm, clipvalue and global_clipnorm can be set")
        for key, v in (("clipnorm", clipnorm), ("clipvalue", clipvalue), ("global_clipnorm", global_clipnorm),
                       ("weight_decay", weight_decay), ("decay", decay)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, numbers.Real) or v < 0):
                raise ValueError(f"{cls}: argument '{key}' must be a non-negative number, got {v!r}")
        self.learning_rate = float(learning_rate)
        self.name = name or _snake(cls)
        self.clipnorm, self.clipvalue, self.global_clipnorm = clipnorm, clipvalue, global_clipnorm
        self.weight_decay, self.decay = weight_decay, float(decay or 0.0)

    def build(self, params):
        """The pyfastnn optimizer that runs the update, with this optimizer's clipping and decay attached."""
        optimizer = self._build(params)
        if self.clipnorm or self.clipvalue is not None or self.global_clipnorm or self.weight_decay or self.decay:
            optimizer.register_step_pre_hook(self._before_step)
        return optimizer

    def _build(self, params):
        raise NotImplementedError

    def _before_step(self, optimizer, args, kwargs):
        params = [p for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
        if self.clipnorm:                               # Keras: each gradient's own norm
            for p in params:
                clip_grad_norm_([p], self.clipnorm)
        elif self.global_clipnorm:
            clip_grad_norm_(params, self.global_clipnorm)
        elif self.clipvalue is not None:
            clip_grad_value_(params, self.clipvalue)
        if self.decay:                                  # tf.keras 2: lr / (1 + decay * iterations)
            iterations = getattr(self, "iterations", 0)
            for g in optimizer.param_groups:
                g["lr"] = self.learning_rate / (1.0 + self.decay * iterations)
            self.iterations = iterations + 1
        if self.weight_decay:                           # Keras 3: decoupled, p -= lr * wd * p
            with no_grad():
                for g in optimizer.param_groups:
                    for p in g["params"]:
                        if p.grad is not None:
                            p.mul_(1.0 - g["lr"] * self.weight_decay)
        return None


def _snake(name):
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class _KerasEpsilon:
    """Keras's Adam epsilon on torch's fused Adam step: eps / sqrt(1 - beta_2^t) at step t."""

    def _update(self, p, grad, group, state):
        t = int(state["step"]._array) + 1 if "step" in state else 1
        keras_group = dict(group, eps=group["eps"] / math.sqrt(1.0 - group["betas"][1] ** t))
        super()._update(p, grad, keras_group, state)


class _TorchAdam(_KerasEpsilon, optim.Adam):
    pass


class _TorchAdamW(_KerasEpsilon, optim.AdamW):
    pass


class _KerasRMSpropStep(optim.RMSprop):
    """Keras's RMSprop rule: increment = lr * g / sqrt(v + epsilon) (centered: v - mean(g)^2 + epsilon)."""

    def _update(self, p, grad, group, state):
        xp = _device.array_module(grad)
        self._init_state(p, group, state)
        self._step_count(state)
        rho, v = group["alpha"], state["square_avg"]._array
        v *= rho
        v += (1 - rho) * grad * grad
        denominator = v + group["eps"]
        if group["centered"]:
            mean = state["grad_avg"]._array
            mean *= rho
            mean += (1 - rho) * grad
            denominator -= mean * mean
        increment = group["lr"] * grad / xp.sqrt(denominator)
        if group["momentum"] > 0:
            buf = state["momentum_buffer"]._array
            buf *= group["momentum"]
            buf += increment
            increment = buf
        p._array -= increment.astype(p._array.dtype, copy=False)


class Adam(Optimizer):
    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.beta_1, self.beta_2, self.epsilon, self.amsgrad = beta_1, beta_2, epsilon, amsgrad

    def _build(self, params):
        return _TorchAdam(params, lr=self.learning_rate, betas=(self.beta_1, self.beta_2), eps=self.epsilon,
                          amsgrad=self.amsgrad)


class AdamW(Adam):
    """Adam with decoupled weight decay (default 0.004, Keras's); the decay runs in the fused AdamW step."""

    def __init__(self, learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 amsgrad=False, **kwargs):
        super().__init__(learning_rate, beta_1, beta_2, epsilon, amsgrad, **kwargs)
        self.adamw_decay = weight_decay

    def _build(self, params):
        return _TorchAdamW(params, lr=self.learning_rate, betas=(self.beta_1, self.beta_2), eps=self.epsilon,
                           weight_decay=self.adamw_decay, amsgrad=self.amsgrad)


class SGD(Optimizer):
    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.momentum, self.nesterov = momentum, nesterov

    def _build(self, params):
        return optim.SGD(params, lr=self.learning_rate, momentum=self.momentum, nesterov=self.nesterov)


class RMSprop(Optimizer):
    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.rho, self.momentum, self.epsilon, self.centered = rho, momentum, epsilon, centered

    def _build(self, params):
        return _KerasRMSpropStep(params, lr=self.learning_rate, alpha=self.rho, eps=self.epsilon,
                                 momentum=self.momentum, centered=self.centered)


for _name, _cls in (("adam", Adam), ("adamw", AdamW), ("sgd", SGD), ("rmsprop", RMSprop)):
    KERAS_OPTIMIZERS.register(_name)(_cls)


def get(identifier):
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str):
        return KERAS_OPTIMIZERS.get(identifier)()
    raise TypeError(f"compile: optimizer must be a name or a keras.optimizers object, got "
                    f"{type(identifier).__name__}")
