"""Keras optimizers: Keras's argument names and defaults, pyfastnn's fused steps underneath.

Keras adds epsilon to the bias-uncorrected sqrt(v) where PyTorch adds it to
the corrected one; with epsilon = 1e-7 the two differ far below float32
training noise, and the torch form is what the fused kernels run.
"""
from __future__ import annotations

import numbers

from .. import optim
from ..training.registry import KERAS_OPTIMIZERS

__all__ = ["Optimizer", "Adam", "AdamW", "SGD", "RMSprop", "get"]


class Optimizer:
    def __init__(self, learning_rate):
        if isinstance(learning_rate, bool) or not isinstance(learning_rate, numbers.Real):
            raise TypeError(f"{type(self).__name__}: learning_rate must be a number, got "
                            f"{type(learning_rate).__name__} {learning_rate!r}")
        if not learning_rate > 0:
            raise ValueError(f"{type(self).__name__}: learning_rate must be positive, got {learning_rate}")
        self.learning_rate = float(learning_rate)

    def build(self, params):
        raise NotImplementedError


class Adam(Optimizer):
    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False, **kwargs):
        super().__init__(learning_rate)
        self.beta_1, self.beta_2, self.epsilon, self.amsgrad = beta_1, beta_2, epsilon, amsgrad

    def build(self, params):
        return optim.Adam(params, lr=self.learning_rate, betas=(self.beta_1, self.beta_2), eps=self.epsilon,
                          amsgrad=self.amsgrad)


class AdamW(Adam):
    def __init__(self, learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 amsgrad=False, **kwargs):
        super().__init__(learning_rate, beta_1, beta_2, epsilon, amsgrad)
        self.weight_decay = weight_decay

    def build(self, params):
        return optim.AdamW(params, lr=self.learning_rate, betas=(self.beta_1, self.beta_2), eps=self.epsilon,
                           weight_decay=self.weight_decay, amsgrad=self.amsgrad)


class SGD(Optimizer):
    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, **kwargs):
        super().__init__(learning_rate)
        self.momentum, self.nesterov = momentum, nesterov

    def build(self, params):
        return optim.SGD(params, lr=self.learning_rate, momentum=self.momentum, nesterov=self.nesterov)


class RMSprop(Optimizer):
    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False, **kwargs):
        super().__init__(learning_rate)
        self.rho, self.momentum, self.epsilon, self.centered = rho, momentum, epsilon, centered

    def build(self, params):
        return optim.RMSprop(params, lr=self.learning_rate, alpha=self.rho, eps=self.epsilon,
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
