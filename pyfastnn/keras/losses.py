"""Keras losses. On a model whose last layer ends in softmax (or sigmoid), the
cross entropies take that layer's logits instead of log(probabilities): the
same value, fused and stable, as Keras itself does."""
from __future__ import annotations

import numpy as np

from ..nn import functional as F
from ..tensor import Tensor, clamp, log
from ..training.registry import KERAS_LOSSES

__all__ = ["Loss", "SparseCategoricalCrossentropy", "CategoricalCrossentropy", "BinaryCrossentropy",
           "MeanSquaredError", "MeanAbsoluteError", "get"]

_EPS = 1e-7     # Keras's backend epsilon for probabilities


class Loss:
    name = "loss"

    def __call__(self, y_pred, y_true, logits=None, final=None):
        raise NotImplementedError

    def probabilities(self, outputs):
        return outputs


def _float_target(y, shape):
    y = np.asarray(y, np.float32)
    if y.shape != tuple(shape) and y.size == int(np.prod(shape)):
        y = y.reshape(shape)
    return Tensor(y, _trusted=True)


class SparseCategoricalCrossentropy(Loss):
    name = "sparse_categorical_crossentropy"

    def __init__(self, from_logits=False, ignore_class=None, reduction="sum_over_batch_size", name=None):
        self.from_logits, self.ignore_class = from_logits, ignore_class

    def _labels(self, y, out_shape):
        y = np.asarray(y)
        if y.dtype.kind == "f":
            y = y.astype(np.int64)
        if y.ndim == len(out_shape) and y.shape[-1] == 1:
            y = y[..., 0]
        return y.astype(np.int64, copy=False)

    def __call__(self, y_pred, y_true, logits=None, final=None):
        y = self._labels(y_true, y_pred.shape)
        ignore = -100 if self.ignore_class is None else self.ignore_class
        if self.from_logits or final == "softmax":
            z = y_pred if self.from_logits else logits
            if z.ndim > 2:   # (N, T, C): classes last in Keras
                z = z.reshape(-1, z.shape[-1])
                y = y.reshape(-1)
            return F.cross_entropy(z, y, ignore_index=ignore)
        p = y_pred.reshape(-1, y_pred.shape[-1]) if y_pred.ndim > 2 else y_pred
        return F.nll_loss(log(clamp(p, _EPS, 1 - _EPS)), y.reshape(-1), ignore_index=ignore)

    def probabilities(self, outputs):
        if self.from_logits:
            e = np.exp(outputs - outputs.max(-1, keepdims=True))
            return e / e.sum(-1, keepdims=True)
        return outputs


class CategoricalCrossentropy(SparseCategoricalCrossentropy):
    """One-hot (or soft) targets of the output's shape."""
    name = "categorical_crossentropy"

    def __init__(self, from_logits=False, label_smoothing=0.0, reduction="sum_over_batch_size", name=None):
        self.from_logits, self.label_smoothing = from_logits, label_smoothing

    def __call__(self, y_pred, y_true, logits=None, final=None):
        t = np.asarray(y_true, np.float32)
        if t.shape != tuple(y_pred.shape):
            raise ValueError(f"categorical_crossentropy: targets must be one-hot with the output's shape "
                             f"{y_pred.shape}, got {t.shape} (use sparse_categorical_crossentropy for labels)")
        if self.label_smoothing:
            t = t * (1 - self.label_smoothing) + self.label_smoothing / t.shape[-1]
        z = y_pred if self.from_logits else logits if final == "softmax" else None
        if z is not None:
            logp = F.log_softmax(z, -1)
        else:
            p = y_pred / y_pred.sum(dim=-1, keepdim=True)
            logp = log(clamp(p, _EPS, 1 - _EPS))
        return -(logp * Tensor(t, _trusted=True)).sum(dim=-1).mean()


class BinaryCrossentropy(Loss):
    name = "binary_crossentropy"

    def __init__(self, from_logits=False, label_smoothing=0.0, reduction="sum_over_batch_size", name=None):
        self.from_logits, self.label_smoothing = from_logits, label_smoothing

    def __call__(self, y_pred, y_true, logits=None, final=None):
        t = _float_target(y_true, y_pred.shape)
        if self.label_smoothing:
            t = t * (1 - self.label_smoothing) + 0.5 * self.label_smoothing
        if self.from_logits or final == "sigmoid":
            return F.binary_cross_entropy_with_logits(y_pred if self.from_logits else logits, t)
        return F.binary_cross_entropy(clamp(y_pred, _EPS, 1 - _EPS), t)

    def probabilities(self, outputs):
        return 1.0 / (1.0 + np.exp(-outputs)) if self.from_logits else outputs


class MeanSquaredError(Loss):
    name = "mean_squared_error"

    def __init__(self, reduction="sum_over_batch_size", name=None):
        pass

    def __call__(self, y_pred, y_true, logits=None, final=None):
        return F.mse_loss(y_pred, _float_target(y_true, y_pred.shape))


class MeanAbsoluteError(MeanSquaredError):
    name = "mean_absolute_error"

    def __call__(self, y_pred, y_true, logits=None, final=None):
        return F.l1_loss(y_pred, _float_target(y_true, y_pred.shape))


KERAS_LOSSES.register("sparse_categorical_crossentropy")(SparseCategoricalCrossentropy)
KERAS_LOSSES.register("categorical_crossentropy")(CategoricalCrossentropy)
KERAS_LOSSES.register("binary_crossentropy")(BinaryCrossentropy)
KERAS_LOSSES.register("mse", "mean_squared_error")(MeanSquaredError)
KERAS_LOSSES.register("mae", "mean_absolute_error")(MeanAbsoluteError)


def get(identifier):
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Loss):
        return identifier()
    if isinstance(identifier, str):
        return KERAS_LOSSES.get(identifier)()
    raise TypeError(f"compile: loss must be a name or a keras.losses object, got {type(identifier).__name__}")
