"""Names → losses, optimizers and metrics, in one place: the tables compile() reads for Module.fit
('adam', 'sparse_categorical_crossentropy', 'accuracy', ...) and the Keras front-end's (its classes register
their Keras names here at import, so there is one lookup and one error message for both)."""
from __future__ import annotations

import numpy as np

from .. import metrics as _metrics
from .. import optim
from ..nn import functional as F
from ..nn.module import Module
from ..tensor import _wrap

__all__ = ["Registry", "OPTIMIZERS", "LOSSES", "METRICS", "KERAS_OPTIMIZERS", "KERAS_LOSSES", "resolve_optimizer",
           "resolve_loss", "resolve_metric", "metric_list", "LossSpec"]


class Registry:
    """A name table: lookups are case-insensitive; an unknown name is a ValueError listing the known ones."""

    def __init__(self, what):
        self.what, self.table = what, {}

    def register(self, *names):
        def add(obj):
            for n in names:
                self.table[n.lower()] = obj
            return obj
        return add

    def get(self, name, where="compile"):
        key = name.lower()
        if key not in self.table:
            raise ValueError(f"{where}: unknown {self.what} {name!r}; expected one of {sorted(self.table)}")
        return self.table[key]

    def __contains__(self, name):
        return isinstance(name, str) and name.lower() in self.table


OPTIMIZERS = Registry("optimizer")
LOSSES = Registry("loss")
METRICS = Registry("metric")
KERAS_OPTIMIZERS = Registry("optimizer")
KERAS_LOSSES = Registry("loss")

OPTIMIZERS.register("adam")(optim.Adam)
OPTIMIZERS.register("adamw")(optim.AdamW)
OPTIMIZERS.register("sgd")(lambda params: optim.SGD(params, lr=0.01))
OPTIMIZERS.register("rmsprop")(optim.RMSprop)


def resolve_optimizer(optimizer, params):
    """An Optimizer over params for a name, an Optimizer class, or an Optimizer instance (returned as is)."""
    if isinstance(optimizer, optim.Optimizer):
        return optimizer
    if isinstance(optimizer, str):
        return OPTIMIZERS.get(optimizer)(params)
    if isinstance(optimizer, type) and issubclass(optimizer, optim.Optimizer):
        return optimizer(params)
    raise TypeError(f"compile: optimizer must be a name or an Optimizer, got {type(optimizer).__name__}")


class LossSpec:
    """A loss callable for Module.fit, with how targets are shaped and outputs become probabilities (models
    built from torch-style layers output logits, so the cross-entropy names mean cross entropy on logits;
    metrics see softmax/sigmoid of them)."""

    def __init__(self, fn, name, target="float", probs=None):
        self.fn, self.name, self.target, self.probs = fn, name, target, probs

    def prepare_target(self, y, out_shape):
        y = np.asarray(y)
        if self.target == "int":
            return y.astype(np.int64, copy=False)
        y = y.astype(np.float32, copy=False)
        if y.shape != tuple(out_shape) and y.size == int(np.prod(out_shape)):
            y = y.reshape(out_shape)
        return y

    def __call__(self, out, y):
        return self.fn(out, _wrap(self.prepare_target(y, out.shape)))


def _softmax_probs(a):
    e = np.exp(a - a.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _sigmoid_probs(a):
    return 1.0 / (1.0 + np.exp(-a))


for _name in ("sparse_categorical_crossentropy", "cross_entropy"):
    LOSSES.register(_name)(lambda n=_name: LossSpec(F.cross_entropy, n, "int", _softmax_probs))
LOSSES.register("categorical_crossentropy")(
    lambda: LossSpec(F.cross_entropy, "categorical_crossentropy", "float", _softmax_probs))
LOSSES.register("mse", "mean_squared_error")(lambda: LossSpec(F.mse_loss, "mse"))
LOSSES.register("mae", "mean_absolute_error")(lambda: LossSpec(F.l1_loss, "mae"))
LOSSES.register("binary_crossentropy")(
    lambda: LossSpec(F.binary_cross_entropy, "binary_crossentropy", "float", lambda a: a))
LOSSES.register("bce_with_logits")(
    lambda: LossSpec(F.binary_cross_entropy_with_logits, "bce_with_logits", "float", _sigmoid_probs))
LOSSES.register("huber")(lambda: LossSpec(F.huber_loss, "huber"))


def resolve_loss(loss):
    """A LossSpec for a name, a loss Module (CrossEntropyLoss, ...) or any callable(out, target)."""
    if isinstance(loss, LossSpec):
        return loss
    if isinstance(loss, str):
        return LOSSES.get(loss)()
    if isinstance(loss, Module) or callable(loss):
        cls = type(loss).__name__
        if cls in ("CrossEntropyLoss", "NLLLoss"):
            return LossSpec(loss, cls, "int", _softmax_probs if cls == "CrossEntropyLoss" else np.exp)
        if cls == "BCEWithLogitsLoss":
            return LossSpec(loss, cls, "float", _sigmoid_probs)
        return LossSpec(loss, getattr(loss, "__name__", cls))
    raise TypeError(f"compile: loss must be a name, a loss Module or a callable, got {type(loss).__name__}")


def _is_binary(y):
    u = np.unique(np.asarray(y))
    return u.size <= 2 and np.isin(u, (0, 1)).all()


def _averaged(fn):
    return lambda t, p: fn(t, p, average="binary" if _is_binary(t) else "macro")


def keras_accuracy(y_true, y_prob):
    """Keras's accuracy: argmax of class scores, or a 0.5 threshold for one probability per sample."""
    y_prob = np.asarray(y_prob)
    y_true = np.asarray(y_true)
    if y_prob.ndim >= 2 and y_prob.shape[-1] > 1:
        if y_true.shape == y_prob.shape:            # one-hot targets
            y_true = y_true.argmax(-1)
        return float((y_prob.argmax(-1) == y_true.reshape(y_prob.shape[:-1])).mean())
    return _metrics.accuracy(y_true.reshape(-1).astype(np.int64), (y_prob.reshape(-1) > 0.5).astype(np.int64))


METRICS.register("accuracy", "acc")(_metrics.accuracy)
METRICS.register("precision")(_averaged(_metrics.precision))
METRICS.register("recall")(_averaged(_metrics.recall))
METRICS.register("f1", "f1_score")(_averaged(_metrics.f1_score))
METRICS.register("auc", "roc_auc")(_metrics.roc_auc)
METRICS.register("sparse_categorical_accuracy", "categorical_accuracy", "binary_accuracy")(keras_accuracy)


def resolve_metric(metric, keras=False):
    """(name, fn(y_true, y_prob)) for a metric name or callable; keras=True uses Keras's accuracy rule."""
    if isinstance(metric, str):
        key = metric.lower()
        fn = METRICS.get(metric)
        name = "accuracy" if key == "acc" else key
        if keras and name == "accuracy":
            fn = keras_accuracy
        return name, fn
    if callable(metric):
        return getattr(metric, "__name__", type(metric).__name__), metric
    raise TypeError(f"compile: a metric must be a name or a callable, got {type(metric).__name__}")


def metric_list(metrics):
    """compile's metrics argument as a list; a bare name would otherwise be read letter by letter."""
    if metrics is None:
        return []
    if isinstance(metrics, (str, bytes)) or not isinstance(metrics, (list, tuple)):
        raise TypeError(f"compile: argument 'metrics' must be a list of names or callables (e.g. ['accuracy']), "
                        f"got {type(metrics).__name__} {metrics!r}")
    return list(metrics)
