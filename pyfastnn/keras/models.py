"""Keras's Sequential model: lazy build, compile/fit/evaluate/predict with
Keras's names and progress lines, summary(), get/set_weights, save/load_model."""
from __future__ import annotations

import numpy as np

from .. import nn
from ..nn import functional as F
from ..serialization import load as _load
from ..serialization import save as _save
from ..tensor import Tensor
from ..training import trainer
from ..training.callbacks import History
from ..training.data import first_array, make_data
from ..training.registry import metric_list, resolve_metric
from ..training.trainer import Spec, host, model_device, to_device
from . import losses as _losses
from . import optimizers as _optimizers
from .layers import Activation, Conv2D, Dense, Dropout, InputLayer, Layer, MaxPooling2D, _auto_name

__all__ = ["Sequential", "Model", "History", "load_model"]


def _to_array(a, name, where):
    if isinstance(a, Tensor):
        a = a.numpy()
    elif not isinstance(a, np.ndarray):
        a = np.from_dlpack(a) if hasattr(a, "__dlpack__") else np.asarray(a)
    if a.ndim == 0:
        raise ValueError(f"{where}: argument '{name}' needs a batch dimension")
    if a.dtype == np.float64:
        a = a.astype(np.float32)
    return a


def _verbose(v):
    return 1 if v == "auto" else int(v)


class Sequential(Layer):
    """A stack of Keras layers. Images come in channels_last and are turned to
    NCHW once, before the first image layer; they go back to channels_last at
    Flatten, at a Dense on images, or at the model's output."""

    def __init__(self, layers=None, name=None, trainable=True):
        super().__init__(name=name or _auto_name("Sequential"), trainable=trainable)
        self._layers_list = []
        self._compiled = None
        self.stop_training = False
        for layer in layers or []:
            self.add(layer)

    @property
    def layers(self):
        return [layer for layer in self._layers_list if not isinstance(layer, InputLayer)]

    def add(self, layer):
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add: expected a Keras layer, got {type(layer).__name__}")
        names = {lay.name for lay in self._layers_list}
        if layer.name in names:
            raise ValueError(f"Sequential.add: a layer named '{layer.name}' is already in the model")
        self._layers_list.append(layer)
        self.add_module(layer.name, layer)
        first = self._layers_list[0]
        if first._input_shape is not None:
            self._build_from_shape(first._input_shape)

    def pop(self):
        layer = self._layers_list.pop()
        del self._modules[layer.name]
        return layer

    # ----------------------------------------------------------- building
    def _build_from_shape(self, shape):
        """Builds every layer by running the shapes through (no data)."""
        shape = tuple(shape)
        self._input_shape = shape
        for layer in self._layers_list:
            if isinstance(layer, InputLayer):
                continue
            shape = layer._ensure_built(shape)
        self.built = True
        self.output_shape = shape

    def build(self, input_shape=None):
        if input_shape is not None:
            self._build_from_shape(tuple(input_shape)[1:] if len(input_shape) and input_shape[0] is None
                                   else input_shape)

    def _run(self, x, training):
        """Forward pass; returns (output, logits of a final softmax/sigmoid or None, that activation)."""
        nchw = False
        layers = self.layers
        shape = tuple(x.shape[1:])
        logits, final = None, None
        pending_relu = None
        for i, layer in enumerate(layers):
            last = i == len(layers) - 1
            if pending_relu is not None:      # a relu Conv2D's activation, moved after its MaxPooling2D
                x, pending_relu = F.relu(layer.call_nchw(x, training)), None
                shape = layer._ensure_built(shape)
                continue
            if hasattr(layer, "call_nchw") and x.ndim == 4:
                if not nchw:
                    x, nchw = x.permute(0, 3, 1, 2).contiguous(), True
                shape = layer._ensure_built(shape)
                nxt = layers[i + 1] if not last else None
                if isinstance(layer, Conv2D) and layer.activation == "relu" and type(nxt) is MaxPooling2D:
                    # max and relu commute: pool first, and relu touches a quarter of the data
                    x, pending_relu = layer.call_nchw(x, training, skip_activation=True), layer
                else:
                    x = layer.call_nchw(x, training)
                if x.ndim != 4:
                    nchw = False
                continue
            if nchw and isinstance(layer, (Dropout, Activation)):
                layer._ensure_built(shape)
                x = layer.call(x, training)
                continue
            if nchw:
                x, nchw = x.permute(0, 2, 3, 1), False
            if last and isinstance(layer, Dense) and layer.activation in ("softmax", "sigmoid"):
                layer._ensure_built(shape)
                logits, final = layer.logits(x), layer.activation
                x = F.softmax(logits, -1) if final == "softmax" else F.sigmoid(logits)
            elif last and isinstance(layer, Activation) and layer.activation in ("softmax", "sigmoid"):
                logits, final = x, layer.activation
                x = layer(x, training)
            else:
                x = layer(x, training)
            shape = layer.output_shape
        if nchw:
            x = x.permute(0, 2, 3, 1)
        self.output_shape = shape
        return x, logits, final

    def call(self, x, training=False):
        return self._run(x, training)[0]

    def forward(self, x, training=None):
        x = x if isinstance(x, Tensor) else Tensor(_to_array(x, "x", self.name))
        if not self.built:
            self._input_shape = tuple(x.shape[1:])
            self.built = True
        return self._run(x, self.training if training is None else training)[0]

    # ------------------------------------------------------------ weights
    def _keras_weights(self):
        return [pair for layer in self.layers for pair in layer._keras_weights()]

    def summary(self, print_fn=print):
        if not self.built or any(not layer.built for layer in self.layers):
            raise ValueError(f"Sequential '{self.name}': the model has not been built yet; give the first layer "
                             f"input_shape=..., add an Input, or call the model on data first")
        rows = [(f"{layer.name} ({type(layer).__name__})", str((None,) + tuple(layer.output_shape)),
                 layer.count_params()) for layer in self.layers]
        w0 = max([len("Layer (type)")] + [len(r[0]) for r in rows]) + 2
        w1 = max([len("Output Shape")] + [len(r[1]) for r in rows]) + 2
        total = sum(r[2] for r in rows)
        trainable = sum(int(np.prod(p.shape)) for p in self.parameters() if p.requires_grad)
        sep = "=" * (w0 + w1 + 12)
        lines = [f'Model: "{self.name}"', "_" * (w0 + w1 + 12),
                 f"{'Layer (type)':<{w0}}{'Output Shape':<{w1}}{'Param #':>12}", sep]
        for name, shape, count in rows:
            lines.append(f"{name:<{w0}}{shape:<{w1}}{count:>12,}")
        lines += [sep, f"Total params: {total:,}", f"Trainable params: {trainable:,}",
                  f"Non-trainable params: {total - trainable:,}", "_" * (w0 + w1 + 12)]
        for line in lines:
            print_fn(line)

    # ------------------------------------------------------------ training
    def compile(self, optimizer="rmsprop", loss=None, metrics=None, loss_weights=None, **kwargs):
        if loss is None:
            raise ValueError("compile: argument 'loss' is required (e.g. 'sparse_categorical_crossentropy')")
        self._compiled = {
            "optimizer": _optimizers.get(optimizer),
            "loss": _losses.get(loss),
            "metrics": [resolve_metric(m, keras=True) for m in metric_list(metrics)],
            "pf_optimizer": None,
        }
        return self

    def _require_compiled(self, where):
        if self._compiled is None:
            raise RuntimeError(f"{where}: call model.compile(optimizer, loss, metrics) first")
        return self._compiled

    def _optimizer(self):
        c = self._compiled
        if c["pf_optimizer"] is None:
            params = [p for p in self.parameters() if p.requires_grad]
            if not params:
                raise RuntimeError(f"fit: model '{self.name}' has no trainable weights")
            c["pf_optimizer"] = c["optimizer"].build(params)
        return c["pf_optimizer"]

    def _spec(self, where, training_needed=True):
        c = self._require_compiled(where) if training_needed else self._compiled
        device = model_device(self)

        def forward(x, training, net):
            out, logits, final = self._run(to_device(device, x), training)
            return out, (logits, final)

        def loss(out, extra, y, sample_weight):
            return c["loss"](out, host(y), extra[0], extra[1])

        def metric_logs(collected, targets):
            outputs = np.concatenate(collected)
            y = np.concatenate([np.asarray(t) for t in targets])
            probs = c["loss"].probabilities(outputs)
            return {name: float(fn(y, probs)) for name, fn in c["metrics"]}
        optimizer = self._optimizer() if training_needed and where == "fit" else None
        return Spec(self, optimizer, forward, loss, lambda out: host(out), metric_logs, lambda out: host(out),
                    bool(c and c["metrics"]))

    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None, validation_split=0.0,
            validation_data=None, shuffle=True, initial_epoch=0, steps_per_epoch=None, validation_steps=None,
            validation_batch_size=None, validation_freq=1, class_weight=None, sample_weight=None, workers=1,
            max_queue_size=10, use_multiprocessing=False):
        self._require_compiled("fit")
        if validation_data is None and validation_split:
            if not 0 < validation_split < 1:
                raise ValueError(f"fit: validation_split must be in (0, 1), got {validation_split}")
            xa, ya = _to_array(x, "x", "fit"), _to_array(y, "y", "fit")
            cut = int(len(xa) * (1 - validation_split))     # Keras keeps the last samples for validation
            x, y, validation_data = xa[:cut], ya[:cut], (xa[cut:], ya[cut:])
        train = make_data(x, y, batch_size=batch_size, shuffle=shuffle, steps=steps_per_epoch, workers=workers,
                          max_queue_size=max_queue_size, where="fit")
        if not self.built:
            first = train.x if hasattr(train, "x") else None
            if first is not None:
                self.forward(first_array(first)[:1], training=False)
        val = None
        if validation_data is not None:
            if isinstance(validation_data, (tuple, list)):
                val = make_data(validation_data[0], validation_data[1],
                                batch_size=validation_batch_size or batch_size or 32, shuffle=False,
                                steps=validation_steps, workers=1, max_queue_size=10, where="fit (validation_data)")
            else:
                val = make_data(validation_data, None, batch_size=None, shuffle=False, steps=validation_steps,
                                workers=workers, max_queue_size=max_queue_size, where="fit (validation_data)")
        spec = self._spec("fit")
        logs = trainer.fit(spec, train, epochs=epochs, initial_epoch=initial_epoch, validation=val,
                           callbacks=callbacks, verbose=_verbose(verbose), style="keras", owner=self)
        history = History()
        history.history = logs
        history.epoch = list(range(initial_epoch, initial_epoch + len(next(iter(logs.values()), []))))
        self.history = history
        return history

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None, steps=None,
                 callbacks=None, return_dict=False, workers=1, max_queue_size=10, use_multiprocessing=False):
        self._require_compiled("evaluate")
        source = make_data(x, y, batch_size=batch_size, shuffle=False, steps=steps, workers=workers,
                           max_queue_size=max_queue_size, where="evaluate")
        logs = trainer.evaluate(self._spec("evaluate"), source, verbose=_verbose(verbose), style="keras")
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None, workers=1,
                max_queue_size=10, use_multiprocessing=False):
        if not isinstance(x, (np.ndarray, Tensor)) and not hasattr(x, "__iter__") and not hasattr(x, "__len__"):
            x = _to_array(x, "x", "predict")
        source = make_data(x, None, batch_size=batch_size, shuffle=False, steps=steps, workers=workers,
                           max_queue_size=max_queue_size, where="predict")
        if not self.built and hasattr(source, "x"):
            self.forward(first_array(source.x)[:1], training=False)
        device = model_device(self)
        spec = Spec(self, None, lambda xb, training, net: (self._run(to_device(device, xb), False)[0], None), None,
                    None, None, lambda out: host(out), False)
        out = trainer.predict(spec, source, verbose=0)
        if out is None:
            return np.zeros((0,) + tuple(self.output_shape or ()), np.float32)
        return out

    def __call__(self, x, training=None):
        return self.forward(x, training)

    # ------------------------------------------------------------ saving
    def save(self, filepath, overwrite=True):
        """The whole model (architecture, weights, compile settings) in one file."""
        _save(self, filepath)

    def save_weights(self, filepath, overwrite=True):
        nn.Module.save_weights(self, filepath)


Model = Sequential


def load_model(filepath, compile=True, **kwargs):
    """Loads what Sequential.save wrote."""
    model = _load(filepath)
    if not isinstance(model, Layer):
        raise ValueError(f"load_model: '{filepath}' does not hold a pyfastnn.keras model")
    return model
