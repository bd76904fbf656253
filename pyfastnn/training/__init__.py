"""Training: the one loop (trainer.py) with its data sources, progress, name registry and callbacks, used by
Module.fit & co. (registered with nn.Module here) and by the Keras front-end.

Models built from torch-style layers output logits, so the cross-entropy names mean cross entropy on logits;
metrics see probabilities (softmax or sigmoid of the logits)."""
from __future__ import annotations

import numpy as np

from .. import serialization
from ..nn import module as _module
from . import callbacks, data, progress, registry, trainer
from .callbacks import Callback, EarlyStopping, History, ModelCheckpoint
from .data import make_data
from .registry import metric_list, resolve_loss, resolve_metric, resolve_optimizer
from .trainer import Spec, host, model_device, to_device

__all__ = ["Spec", "fit", "evaluate", "predict", "compile", "Callback", "EarlyStopping", "ModelCheckpoint",
           "History", "callbacks", "data", "progress", "registry", "trainer"]


class _Compiled:
    def __init__(self, optimizer, loss, metrics):
        self.optimizer, self.loss, self.metrics = optimizer, loss, metrics


def compile(model, optimizer="adam", loss=None, metrics=None, **kwargs):
    """Chooses the optimizer, loss and metrics Module.fit uses (names or objects)."""
    if kwargs:
        raise TypeError(f"compile: unexpected keyword argument(s) {sorted(kwargs)}")
    if loss is None:
        raise ValueError("compile: a loss is required (a name such as 'sparse_categorical_crossentropy', a loss "
                         "Module or a callable)")
    params = [p for p in model.parameters() if p.requires_grad]
    opt = resolve_optimizer(optimizer, params) if params else None
    model._compiled = _Compiled(opt, resolve_loss(loss), [resolve_metric(m) for m in metric_list(metrics)])


def _compiled(model, where):
    c = model.__dict__.get("_compiled")
    if c is None:
        raise RuntimeError(f"{where}: call model.compile(optimizer, loss, metrics) first")
    return c


def _metric_logs(c, collected, targets):
    outputs = np.concatenate(collected)
    y_true = np.concatenate([np.asarray(t) for t in targets])
    if c.loss.target == "int" and outputs.ndim > 2:
        # (N, C, d...) scores with (N, d...) labels, torch's layout: one sample per position
        outputs = np.moveaxis(outputs, 1, -1).reshape(-1, outputs.shape[1])
        y_true = y_true.reshape(-1)
    probs = c.loss.probs(outputs) if c.loss.probs is not None else outputs
    return {name: float(fn(y_true, probs)) for name, fn in c.metrics}


def _spec(model, where):
    c = _compiled(model, where)
    device = model_device(model)

    def forward(x, training, net):
        return net(to_device(device, x)), None

    def loss(out, extra, y, sample_weight):
        return c.loss(out, _to_host_target(y, device))
    return Spec(model, c.optimizer, forward, loss, lambda out: host(out),
                lambda collected, targets: _metric_logs(c, collected, targets), lambda out: host(out),
                bool(c.metrics))


def _to_host_target(y, device):
    y = host(y)
    return y if device == "cpu" else to_device(device, y)._array


def _validation(validation_data, batch_size, steps):
    if validation_data is None:
        return None
    if isinstance(validation_data, (tuple, list)):
        if len(validation_data) not in (2, 3):
            raise ValueError("fit: validation_data must be a tuple (x_val, y_val) or a data stream")
    elif not data.is_stream(validation_data):
        raise ValueError(f"fit: validation_data must be a tuple (x_val, y_val) or a data stream (a generator, "
                         f"Sequence or DataLoader), got {type(validation_data).__name__}")
    if isinstance(validation_data, (tuple, list)):
        vx, vy = validation_data[0], validation_data[1]
        return make_data(vx, vy, batch_size=max(batch_size, 256), shuffle=False, steps=steps, workers=1,
                         max_queue_size=10, where="fit (validation_data)")
    return make_data(validation_data, None, batch_size=None, shuffle=False, steps=steps, workers=1,
                     max_queue_size=10, where="fit (validation_data)")


def fit(model, x=None, y=None, epochs=1, batch_size=32, validation_data=None, shuffle=True, verbose=1,
        callbacks=None, initial_epoch=0, steps_per_epoch=None, validation_steps=None, workers=1, max_queue_size=10,
        **kwargs):
    """Module.fit: trains for epochs over (x, y) arrays or a stream of (x, y) batches; returns the history
    dict."""
    if kwargs:
        raise TypeError(f"fit: unexpected keyword argument(s) {sorted(kwargs)}")
    spec = _spec(model, "fit")
    train = make_data(x, y, batch_size=batch_size, shuffle=shuffle, steps=steps_per_epoch, workers=workers,
                      max_queue_size=max_queue_size, where="fit")
    val = _validation(validation_data, batch_size or 32, validation_steps)
    return trainer.fit(spec, train, epochs=epochs, initial_epoch=initial_epoch, validation=val,
                       callbacks=callbacks, verbose=verbose, style="compact")


def evaluate(model, x=None, y=None, batch_size=256, verbose=0, steps=None, **kwargs):
    """Loss and metrics over (x, y) (or a stream), without gradients, as a dict."""
    if kwargs:
        raise TypeError(f"evaluate: unexpected keyword argument(s) {sorted(kwargs)}")
    spec = _spec(model, "evaluate")
    source = make_data(x, y, batch_size=batch_size, shuffle=False, steps=steps, workers=1, max_queue_size=10,
                       where="evaluate")
    return trainer.evaluate(spec, source, verbose=verbose, style="compact")


def predict(model, x, batch_size=256, steps=None, **kwargs):
    """The model's outputs for x (arrays or a stream) as a numpy array, in eval mode without gradients."""
    if kwargs:
        raise TypeError(f"predict: unexpected keyword argument(s) {sorted(kwargs)}")
    device = model_device(model)
    spec = Spec(model, None, lambda xb, training, net: (net(to_device(device, xb)), None), None, None, None,
                lambda out: host(out), False)
    source = make_data(x, None, batch_size=batch_size, shuffle=False, steps=steps, workers=1, max_queue_size=10,
                       where="predict")
    out = trainer.predict(spec, source)
    return np.zeros((0,), np.float32) if out is None else out


def save_weights(model, path):
    serialization.save_state(model.state_dict(), path)


def load_weights(model, path, strict=True):
    model.load_state_dict(serialization.load_state(path), strict=strict)


class _ModuleTrainer:
    """What nn.Module's compile/fit/evaluate/predict/save_weights/load_weights delegate to."""
    compile = staticmethod(compile)
    fit = staticmethod(fit)
    evaluate = staticmethod(evaluate)
    predict = staticmethod(predict)
    save_weights = staticmethod(save_weights)
    load_weights = staticmethod(load_weights)


_module.set_trainer(_ModuleTrainer())
