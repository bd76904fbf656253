"""The one training loop, used by Module.fit and by the Keras front-end alike: epochs over a data source
(arrays or a stream), the optimizer step, progress, callbacks, validation, metrics over whole epochs, the
model's device, and the distributed strategy (a multi-rank job shards each global batch and averages
gradients through DistributedDataParallel)."""
from __future__ import annotations

import numpy as np

from .. import _device
from ..autograd import no_grad
from ..distributed import comm as _comm
from ..distributed.ddp import DistributedDataParallel
from ..tensor import Tensor, _wrap
from .data import ArrayData, take
from .progress import Progress

__all__ = ["Spec", "fit", "evaluate", "predict", "model_device", "to_device", "host"]


class Spec:
    """What a model brings to the loop.

    forward(x, training) -> (outputs, extra): runs the model on a batch of inputs (host arrays);
    loss(outputs, extra, y, sample_weight) -> a scalar Tensor;
    collect(outputs) -> a host value kept for the epoch's metrics (or None when there are none);
    metric_logs(collected, targets) -> {name: value} over the whole epoch;
    prediction(outputs) -> host arrays for predict()."""

    def __init__(self, model, optimizer, forward, loss, collect, metric_logs, prediction, has_metrics):
        self.model, self.optimizer = model, optimizer
        self.forward, self.loss, self.collect = forward, loss, collect
        self.metric_logs, self.prediction, self.has_metrics = metric_logs, prediction, has_metrics


def model_device(model):
    """'cuda' when the model's parameters live on the GPU (batches then go there), else 'cpu'."""
    for p in model.parameters():
        return _device.device_of(p._array)
    return "cpu"


def to_device(device, struct):
    """A host batch (an array, or a list/tuple/dict of them) as Tensors on the model's device."""
    if isinstance(struct, dict):
        return {k: to_device(device, v) for k, v in struct.items()}
    if isinstance(struct, (list, tuple)):
        return type(struct)(to_device(device, v) for v in struct)
    if isinstance(struct, Tensor):
        return struct if struct.device == device else struct.to(device)
    if struct is None:
        return None
    arr = np.asarray(struct) if not (isinstance(struct, np.ndarray) or _device.is_cupy(struct)) else struct
    if arr.dtype == np.float64:
        arr = arr.astype(np.float32)
    return _wrap(_device.to_device(arr, device, "fit"))


def host(value):
    """Host (numpy) arrays for Tensors and device arrays, through lists and tuples."""
    if isinstance(value, (list, tuple)):
        return type(value)(host(v) for v in value)
    if isinstance(value, Tensor):
        return _device.host(value._array)
    return _device.host(value) if value is not None else None


def _distributed():
    """The process group when a multi-rank job is initialized, else None."""
    if not _comm.is_initialized() or _comm.world_size() < 2:
        return None
    return _comm


def _ddp_of(model):
    """One DistributedDataParallel per model, made on first use (it broadcasts rank 0's weights)."""
    if isinstance(model, DistributedDataParallel):
        return model
    ddp = model.__dict__.get("_ddp")
    if ddp is None:
        ddp = DistributedDataParallel(model)
        object.__setattr__(model, "_ddp", ddp)
    return ddp


def _callbacks(callbacks, where):
    """fit's callbacks argument as a list of objects with set_model (Callback instances)."""
    if callbacks is None:
        return []
    if not isinstance(callbacks, (list, tuple)):
        raise TypeError(f"{where}: argument 'callbacks' must be a list of callbacks, got {type(callbacks).__name__}")
    for cb in callbacks:
        if not callable(getattr(cb, "set_model", None)):
            raise TypeError(f"{where}: argument 'callbacks' must hold Callback objects, got {type(cb).__name__}")
    return list(callbacks)


def _call(callbacks, hook, *args):
    for cb in callbacks:
        fn = getattr(cb, hook, None)
        if fn is not None:
            fn(*args)


def fit(spec, data, *, epochs=1, initial_epoch=0, validation=None, callbacks=None, verbose=1, style="keras",
        owner=None):
    """Trains spec.model for epochs over data; returns the history dict {name: [per-epoch values]}.
    owner: the object callbacks see as .model (the Keras model wrapping spec.model, say)."""
    if spec.optimizer is None:
        raise RuntimeError("fit: the model has no trainable parameters")
    if not isinstance(epochs, (int, np.integer)) or isinstance(epochs, bool) or epochs < 0:
        raise ValueError(f"fit: epochs must be a non-negative int, got {epochs!r}")
    model = spec.model
    owner = model if owner is None else owner
    cbs = _callbacks(callbacks, "fit")
    for cb in cbs:
        cb.set_model(owner)
        if hasattr(cb, "set_params"):
            cb.set_params({"epochs": epochs, "steps": data.steps, "verbose": verbose})
    owner.stop_training = False
    dist = _distributed()
    net, world, rank = model, 1, 0
    if dist is not None:
        net, world, rank = _ddp_of(model), dist.world_size(), dist.rank()
        if rank != 0:
            verbose = 0
        if isinstance(data, ArrayData):
            data.shard(world, rank)
    history = {}
    _call(cbs, "on_train_begin", {})
    try:
        for epoch in range(initial_epoch, epochs):
            _call(cbs, "on_epoch_begin", epoch, {})
            model.train()
            bar = Progress(data.steps, verbose, style, epoch + 1, epochs)
            total, seen, collected, targets, steps_done = 0.0, 0, [], [], 0
            for step, (xb, yb, wb, global_n) in enumerate(data.epoch(), 1):
                _call(cbs, "on_train_batch_begin", step - 1, {})
                n = len(_first(xb)) if xb is not None else 0
                if dist is not None and isinstance(data, ArrayData):
                    net.grad_scale = world * n / max(global_n, 1)
                    if n == 0:                          # a last global batch smaller than the world
                        spec.optimizer.zero_grad()
                        net.sync_without_backward()
                        spec.optimizer.step()
                        steps_done = step
                        continue
                if yb is None:
                    raise ValueError("fit: argument 'y' (the targets) is required: pass y, or yield (inputs, targets) "
                                     "batches")
                out, extra = spec.forward(xb, True, net)
                loss = spec.loss(out, extra, yb, wb)
                spec.optimizer.zero_grad()
                loss.backward()
                spec.optimizer.step()
                total += float(loss.item()) * n
                seen += n
                steps_done = step
                if spec.has_metrics:
                    collected.append(spec.collect(out))
                    targets.append(host(yb))
                running = {"loss": total / max(seen, 1)}
                bar.update(step, running)
                _call(cbs, "on_train_batch_end", step - 1, running)
            if dist is not None:
                sums = dist.all_reduce(np.array([total, seen], np.float64), check=False)
                total, seen = float(sums[0]), int(sums[1])
                if spec.has_metrics:
                    gathered = dist.all_gather_object((collected, targets))
                    collected = [o for part, _ in gathered for o in part]
                    targets = [t for _, part in gathered for t in part]
            if seen == 0:
                if getattr(data, "exhausted", False) and epoch > initial_epoch:
                    break
                raise ValueError("fit: the data gave no samples to train on (0 samples, or 0 steps per epoch); "
                                 "Keras raises here too rather than report a loss of 0")
            logs = {"loss": total / seen}
            if spec.has_metrics and collected:
                logs.update(spec.metric_logs(collected, targets))
            if validation is not None:
                val = evaluate(spec, validation, verbose=0, style=style)
                logs.update({f"val_{k}": v for k, v in val.items()})
            bar.done(steps_done, logs)
            for k, v in logs.items():
                history.setdefault(k, []).append(v)
            _call(cbs, "on_epoch_end", epoch, logs)
            if owner.stop_training or getattr(data, "exhausted", False):
                break
    finally:
        data.close()
        if validation is not None:
            validation.close()
    _call(cbs, "on_train_end", {})
    return history


def _first(struct):
    if isinstance(struct, dict):
        return next(iter(struct.values()))
    if isinstance(struct, (list, tuple)):
        return struct[0]
    return struct


def _shard_for_evaluation(data, dist):
    """In a multi-rank job each rank evaluates a contiguous share of the samples."""
    share = np.array_split(np.arange(data.n), dist.world_size())[dist.rank()]
    sub = ArrayData(take(data.x, share), None if data.y is None else take(data.y, share), data.batch_size, False,
                    None if data.sample_weight is None else data.sample_weight[share], None, "evaluate")
    return sub


def evaluate(spec, data, *, verbose=0, style="keras"):
    """Loss and metrics over data in eval mode without gradients, restoring the model's mode; in a multi-rank
    job the ranks split the samples and every rank returns the same numbers."""
    model = spec.model
    dist = _distributed()
    if dist is not None and isinstance(data, ArrayData):
        data = _shard_for_evaluation(data, dist)
    was_training = model.training
    model.eval()
    bar = Progress(data.steps, verbose, style)
    total, seen, collected, targets, steps_done = 0.0, 0, [], [], 0
    try:
        with no_grad():
            for step, (xb, yb, wb, _) in enumerate(data.epoch(), 1):
                if yb is None:
                    raise ValueError("evaluate: the data gives no targets: pass y, or yield (inputs, targets) "
                                     "batches")
                out, extra = spec.forward(xb, False, model)
                n = len(_first(xb))
                total += float(spec.loss(out, extra, yb, wb).item()) * n
                seen += n
                steps_done = step
                if spec.has_metrics:
                    collected.append(spec.collect(out))
                    targets.append(host(yb))
                bar.update(step, {"loss": total / max(seen, 1)})
    finally:
        model.train(was_training)
        data.close()
    if dist is not None:
        total = float(dist.all_reduce(np.array([total], np.float64), check=False)[0])
        seen = int(dist.all_reduce(np.array([seen], np.float64), check=False)[0])
        if spec.has_metrics:
            gathered = dist.all_gather_object((collected, targets))
            collected = [o for part, _ in gathered for o in part]
            targets = [t for _, part in gathered for t in part]
    if seen == 0:
        raise ValueError("evaluate: the data gave no samples (0 samples, or 0 steps)")
    logs = {"loss": total / seen}
    if spec.has_metrics and collected:
        logs.update(spec.metric_logs(collected, targets))
    bar.done(steps_done, logs)
    return logs


def predict(spec, data, *, verbose=0, style="keras"):
    """The model's outputs for every batch of data, concatenated (a tuple of arrays for several outputs)."""
    model = spec.model
    was_training = model.training
    model.eval()
    bar = Progress(data.steps, verbose, style)
    outs, steps_done = [], 0
    try:
        with no_grad():
            for step, (xb, _, _, _) in enumerate(data.epoch(), 1):
                out, _ = spec.forward(xb, False, model)
                outs.append(spec.prediction(out))
                steps_done = step
                bar.update(step, {})
    finally:
        model.train(was_training)
        data.close()
    bar.done(steps_done, {})
    if not outs:
        return None
    if isinstance(outs[0], (list, tuple)):
        return [np.concatenate(parts) for parts in zip(*outs)]
    return np.concatenate(outs)
