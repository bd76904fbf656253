"""Keras-style training for any Module: compile, fit, evaluate, predict.

Names resolve as Keras users write them ('adam', 'sparse_categorical_crossentropy',
'accuracy'). Models built from torch-style layers output logits, so the
cross-entropy names mean "cross entropy on logits" here; metrics see
probabilities (softmax or sigmoid of the logits).
"""
from __future__ import annotations

import sys
import time

import numpy as np

from . import metrics as _metrics
from ._random import generator
from .autograd import no_grad
from .tensor import Tensor

__all__ = ["compile_module", "fit", "evaluate", "predict", "resolve_optimizer", "resolve_loss", "resolve_metric"]


# ------------------------------------------------------------------ names
def resolve_optimizer(optimizer, params):
    from . import optim
    names = {"adam": optim.Adam, "adamw": optim.AdamW, "sgd": optim.SGD, "rmsprop": optim.RMSprop}
    if isinstance(optimizer, optim.Optimizer):
        return optimizer
    if isinstance(optimizer, str):
        key = optimizer.lower()
        if key not in names:
            raise ValueError(f"compile: unknown optimizer {optimizer!r}; expected one of {sorted(names)} or an "
                             f"Optimizer instance")
        kwargs = {"lr": 0.01} if key == "sgd" else {}
        return names[key](params, **kwargs)
    if isinstance(optimizer, type) and issubclass(optimizer, optim.Optimizer):
        return optimizer(params)
    raise TypeError(f"compile: optimizer must be a name or an Optimizer, got {type(optimizer).__name__}")


class _Loss:
    """A loss callable plus how targets are shaped and outputs become probabilities."""

    def __init__(self, fn, name, target="float", probs=None):
        self.fn, self.name, self.target, self.probs = fn, name, target, probs

    def prepare_target(self, y, out_shape):
        if self.target == "int":
            return y.astype(np.int64, copy=False)
        y = y.astype(np.float32, copy=False)
        if y.shape != tuple(out_shape) and y.size == int(np.prod(out_shape)):
            y = y.reshape(out_shape)
        return y

    def __call__(self, out, y):
        return self.fn(out, Tensor(self.prepare_target(y, out.shape), _trusted=True)
                       if self.target != "int" else self.prepare_target(y, out.shape))


def _softmax_probs(a):
    e = np.exp(a - a.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _sigmoid_probs(a):
    return 1.0 / (1.0 + np.exp(-a))


def resolve_loss(loss):
    from .nn import functional as F
    from .nn.module import Module
    if isinstance(loss, _Loss):
        return loss
    if isinstance(loss, str):
        key = loss.lower()
        table = {
            "sparse_categorical_crossentropy": lambda: _Loss(F.cross_entropy, key, "int", _softmax_probs),
            "cross_entropy": lambda: _Loss(F.cross_entropy, key, "int", _softmax_probs),
            "categorical_crossentropy": lambda: _Loss(F.cross_entropy, key, "float", _softmax_probs),
            "mse": lambda: _Loss(F.mse_loss, key), "mean_squared_error": lambda: _Loss(F.mse_loss, key),
            "mae": lambda: _Loss(F.l1_loss, key), "mean_absolute_error": lambda: _Loss(F.l1_loss, key),
            "binary_crossentropy": lambda: _Loss(F.binary_cross_entropy, key, "float", lambda a: a),
            "bce_with_logits": lambda: _Loss(F.binary_cross_entropy_with_logits, key, "float", _sigmoid_probs),
        }
        if key not in table:
            raise ValueError(f"compile: unknown loss {loss!r}; expected one of {sorted(table)}, a loss Module or "
                             f"a callable")
        return table[key]()
    if isinstance(loss, Module) or callable(loss):
        cls = type(loss).__name__
        if cls in ("CrossEntropyLoss", "NLLLoss"):
            return _Loss(loss, cls, "int", _softmax_probs if cls == "CrossEntropyLoss" else np.exp)
        if cls == "BCEWithLogitsLoss":
            return _Loss(loss, cls, "float", _sigmoid_probs)
        return _Loss(loss, getattr(loss, "__name__", cls))
    raise TypeError(f"compile: loss must be a name, a loss Module or a callable, got {type(loss).__name__}")


_METRICS = {"accuracy": _metrics.accuracy, "acc": _metrics.accuracy, "precision": _metrics.precision,
            "recall": _metrics.recall, "f1": _metrics.f1_score, "f1_score": _metrics.f1_score,
            "auc": _metrics.roc_auc, "roc_auc": _metrics.roc_auc}


def resolve_metric(metric):
    if isinstance(metric, str):
        if metric.lower() not in _METRICS:
            raise ValueError(f"compile: unknown metric {metric!r}; expected one of {sorted(_METRICS)} or a callable "
                             f"f(y_true, y_pred)")
        name = "accuracy" if metric.lower() == "acc" else metric.lower()
        fn = _METRICS[metric.lower()]
        if name in ("precision", "recall", "f1", "f1_score"):
            base = fn
            fn = lambda t, p, _b=base: _b(t, p, average="binary" if _is_binary(t) else "macro")  # noqa: E731
        return name, fn
    if callable(metric):
        return getattr(metric, "__name__", type(metric).__name__), metric
    raise TypeError(f"compile: a metric must be a name or a callable, got {type(metric).__name__}")


def _metric_list(metrics):
    """compile's metrics argument as a list; a bare name would otherwise be read letter by letter."""
    if metrics is None:
        return []
    if isinstance(metrics, (str, bytes)) or not isinstance(metrics, (list, tuple)):
        raise TypeError(f"compile: argument 'metrics' must be a list of names or callables (e.g. ['accuracy']), "
                        f"got {type(metrics).__name__} {metrics!r}")
    return list(metrics)


def _callback_list(callbacks, where):
    """fit's callbacks argument as a list of objects with set_model (Callback instances)."""
    if callbacks is None:
        return []
    if not isinstance(callbacks, (list, tuple)):
        raise TypeError(f"{where}: argument 'callbacks' must be a list of callbacks, got {type(callbacks).__name__}")
    for cb in callbacks:
        if not callable(getattr(cb, "set_model", None)):
            raise TypeError(f"{where}: argument 'callbacks' must hold Callback objects, got {type(cb).__name__}")
    return list(callbacks)


def _is_binary(y):
    u = np.unique(np.asarray(y))
    return u.size <= 2 and np.isin(u, (0, 1)).all()


class _Compiled:
    def __init__(self, optimizer, loss, metrics):
        self.optimizer, self.loss, self.metrics = optimizer, loss, metrics


def compile_module(model, optimizer, loss, metrics):
    if loss is None:
        raise ValueError("compile: a loss is required (a name such as 'sparse_categorical_crossentropy', a loss "
                         "Module or a callable)")
    params = [p for p in model.parameters() if p.requires_grad]
    opt = resolve_optimizer(optimizer, params) if params else None
    model._compiled = _Compiled(opt, resolve_loss(loss), [resolve_metric(m) for m in _metric_list(metrics)])


def _compiled(model, where):
    c = model.__dict__.get("_compiled")
    if c is None:
        raise RuntimeError(f"{where}: call model.compile(optimizer, loss, metrics) first")
    return c


# ------------------------------------------------------------------- data
def _as_data(a, name, where):
    if isinstance(a, Tensor):
        a = a.numpy()
    elif not isinstance(a, np.ndarray):
        if hasattr(a, "__dlpack__"):
            a = np.from_dlpack(a)
        else:
            a = np.asarray(a)
    if a.ndim == 0:
        raise ValueError(f"{where}: argument '{name}' must have a batch dimension, got a scalar")
    if a.dtype == np.float64:
        a = a.astype(np.float32)
    return a


def _check_pair(x, y, where):
    x = _as_data(x, "x", where)
    if y is None:
        raise ValueError(f"{where}: argument 'y' (the targets) is required")
    y = _as_data(y, "y", where)
    if len(x) != len(y):
        raise ValueError(f"{where}: 'x' has {len(x)} samples but 'y' has {len(y)}")
    return x, y


def _model_device(model):
    """'cuda' when the model's parameters live on the GPU (fit then moves each batch there), else 'cpu'."""
    for p in model.parameters():
        return p.device
    return "cpu"


def _on(device, a):
    """A host batch on the model's device: itself on the CPU, a CuPy copy for a GPU model."""
    if device == "cpu":
        return a
    import cupy
    return cupy.asarray(a)


def _host(a):
    return a.get() if type(a).__module__.startswith("cupy") else a


def _batches(n, batch_size, order=None):
    for start in range(0, n, batch_size):
        yield order[start:start + batch_size] if order is not None else slice(start, start + batch_size)


# --------------------------------------------------------------- progress
class _Progress:
    """A live bar in a terminal (tqdm when installed), one line per epoch otherwise."""

    def __init__(self, verbose, steps, epoch, epochs, stream=None):
        self.stream = stream or sys.stdout
        self.verbose, self.steps, self.epoch, self.epochs = verbose, steps, epoch, epochs
        self.live = verbose == 1 and getattr(self.stream, "isatty", lambda: False)()
        self.bar = None
        self.start = time.perf_counter()
        if self.live:
            try:
                from tqdm.auto import tqdm
                self.bar = tqdm(total=steps, desc=f"Epoch {epoch}/{epochs}", leave=True, file=self.stream,
                                unit="step")
            except ImportError:
                self.bar = None

    def update(self, step, loss):
        if not self.live:
            return
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
            return
        width = 30
        done = int(width * step / max(self.steps, 1))
        self.stream.write(f"\rEpoch {self.epoch}/{self.epochs} {step}/{self.steps} "
                          f"[{'=' * done}{'>' if done < width else ''}{'.' * (width - done - 1)}] - loss: {loss:.4f}")
        self.stream.flush()

    def close(self, logs):
        if self.verbose == 0:
            return
        elapsed = time.perf_counter() - self.start
        text = " - ".join(f"{k}: {v:.4f}" for k, v in logs.items())
        if self.bar is not None:
            self.bar.close()
        elif self.live:
            self.stream.write("\r")
        self.stream.write(f"Epoch {self.epoch}/{self.epochs} - {self.steps}/{self.steps} - {elapsed:.2f}s "
                          f"{1000 * elapsed / max(self.steps, 1):.0f}ms/step - {text}\n")
        self.stream.flush()


# -------------------------------------------------------------- the loops
def _metric_logs(compiled, y_true, outputs, prefix=""):
    logs = {}
    if not compiled.metrics:
        return logs
    if compiled.loss.target == "int" and outputs.ndim > 2:
        # (N, C, d...) scores with (N, d...) labels, torch's layout: one sample per position
        outputs = np.moveaxis(outputs, 1, -1).reshape(-1, outputs.shape[1])
        y_true = np.asarray(y_true).reshape(-1)
    probs = compiled.loss.probs(outputs) if compiled.loss.probs is not None else outputs
    for name, fn in compiled.metrics:
        logs[prefix + name] = float(fn(y_true, probs))
    return logs


def fit(model, x, y=None, epochs=1, batch_size=32, validation_data=None, shuffle=True, verbose=1, callbacks=None,
        initial_epoch=0):
    c = _compiled(model, "fit")
    if c.optimizer is None:
        raise RuntimeError("fit: the model has no trainable parameters")
    x, y = _check_pair(x, y, "fit")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
        raise ValueError(f"fit: batch_size must be a positive int, got {batch_size!r}")
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise ValueError("fit: validation_data must be a tuple (x_val, y_val)")
        vx, vy = _check_pair(*validation_data, "fit (validation_data)")
    callbacks = _callback_list(callbacks, "fit")
    for cb in callbacks:
        cb.set_model(model)
    model.stop_training = False
    history = {}
    n = len(x)
    dist = _distributed()
    net, world, rank = model, 1, 0
    if dist is not None:
        # batch_size is per rank (per replica, as in Keras and torch DDP); a global
        # batch of batch_size * world samples is split across the ranks.
        net, world, rank = _ddp_of(model), dist.world_size(), dist.rank()
        if rank != 0:
            verbose = 0
    global_batch = batch_size * world
    steps = (n + global_batch - 1) // global_batch
    device = _model_device(model)
    for cb in callbacks:
        cb.on_train_begin()
    for epoch in range(initial_epoch, epochs):
        for cb in callbacks:
            cb.on_epoch_begin(epoch)
        model.train()
        order = generator().permutation(n) if shuffle else None   # the same on every rank (same seed)
        bar = _Progress(verbose, steps, epoch + 1, epochs)
        total, seen, outs, targets = 0.0, 0, [], []
        for step, gidx in enumerate(_batches(n, global_batch, order), 1):
            if dist is not None:
                gidx = np.arange(n)[gidx] if isinstance(gidx, slice) else gidx
                idx = np.array_split(gidx, world)[rank]           # sizes differ by at most one
                net.grad_scale = world * len(idx) / len(gidx)
                if len(idx) == 0:                                 # a last batch smaller than the world
                    c.optimizer.zero_grad()
                    net.sync_without_backward()
                    c.optimizer.step()
                    continue
            else:
                idx = gidx
            xb, yb = x[idx], y[idx]
            out = net(Tensor(_on(device, xb), _trusted=True))
            loss = c.loss(out, _on(device, yb))
            c.optimizer.zero_grad()
            loss.backward()
            c.optimizer.step()
            total += float(loss._array) * len(xb)
            seen += len(xb)
            if c.metrics:
                outs.append(_host(out._array))
                targets.append(yb)
            bar.update(step, total / max(seen, 1))
        if dist is not None:
            sums = dist.all_reduce(np.array([total, seen], np.float64), check=False)
            total = float(sums[0])
            if c.metrics:
                gathered = dist.all_gather_object((outs, targets))
                outs = [o for part, _ in gathered for o in part]
                targets = [t for _, part in gathered for t in part]
        logs = {"loss": total / max(n, 1)}
        if c.metrics and outs:
            logs.update(_metric_logs(c, np.concatenate(targets), np.concatenate(outs)))
        if validation_data is not None:
            logs.update({f"val_{k}": v for k, v in evaluate(model, vx, vy, batch_size=max(batch_size, 256)).items()})
        bar.close(logs)
        for k, v in logs.items():
            history.setdefault(k, []).append(v)
        for cb in callbacks:
            cb.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    for cb in callbacks:
        cb.on_train_end()
    return history


def _distributed():
    """The process group's module when a multi-rank job is initialized, else None."""
    import sys
    comm = sys.modules.get("pyfastnn.distributed.comm")
    if comm is None or not comm.is_initialized() or comm.world_size() < 2:
        return None
    return comm


def _ddp_of(model):
    """One DistributedDataParallel per model, made on first use (it broadcasts rank 0's weights)."""
    from .distributed import DistributedDataParallel
    if isinstance(model, DistributedDataParallel):
        return model
    ddp = model.__dict__.get("_ddp")
    if ddp is None:
        ddp = DistributedDataParallel(model)
        object.__setattr__(model, "_ddp", ddp)
    return ddp


def map_batches(model, x, batch_size, fn):
    """[fn(batch) for each batch of x as a Tensor], in eval mode and without
    gradients, restoring the model's mode afterwards (evaluate and predict)."""
    was_training = model.training
    device = _model_device(model)
    model.eval()
    try:
        with no_grad():
            return [fn(Tensor(_on(device, x[idx]), _trusted=True)) for idx in _batches(len(x), batch_size)]
    finally:
        model.train(was_training)


def _forward_all(model, x, batch_size):
    return map_batches(model, x, batch_size, lambda t: model(t).numpy())


def evaluate(model, x, y=None, batch_size=256, verbose=0):
    """Loss and metrics over (x, y); in a multi-rank job each rank takes a
    contiguous share of the samples and the results are reduced, so every
    rank returns the same numbers."""
    c = _compiled(model, "evaluate")
    x, y = _check_pair(x, y, "evaluate")
    n = len(x)
    dist = _distributed()
    if dist is not None:
        share = np.array_split(np.arange(n), dist.world_size())[dist.rank()]
        x, y = x[share], y[share]
    total, outs = 0.0, []
    for out, idx in zip(_forward_all(model, x, batch_size), _batches(len(x), batch_size)):
        with no_grad():
            total += float(c.loss(Tensor(out, _trusted=True), y[idx])._array) * len(out)
        outs.append(out)
    if dist is not None:
        total = float(dist.all_reduce(np.array([total], np.float64), check=False)[0])
        gathered = dist.all_gather_object((outs, y))
        outs = [o for part, _ in gathered for o in part]
        y = np.concatenate([part for _, part in gathered])
    logs = {"loss": total / max(n, 1)}
    if outs:
        logs.update(_metric_logs(c, y, np.concatenate(outs)))
    if verbose:
        print(" - ".join(f"{k}: {v:.4f}" for k, v in logs.items()))
    return logs


def predict(model, x, batch_size=256):
    x = _as_data(x, "x", "predict")
    outs = _forward_all(model, x, batch_size)
    return np.concatenate(outs) if outs else np.zeros((0,), np.float32)
