"""Keras's Sequential model: lazy build, compile/fit/evaluate/predict with
Keras's names and progress lines, summary(), get/set_weights, save/load_model."""
from __future__ import annotations

import sys
import time

import numpy as np

from .. import nn
from .._random import generator
from ..autograd import no_grad
from ..nn import functional as F
from ..serialization import load as _load
from ..serialization import save as _save
from ..tensor import Tensor
from ..training import _batches, map_batches
from ..training import _callback_list, _metric_list
from . import losses as _losses
from . import optimizers as _optimizers
from .layers import Activation, Conv2D, Dense, Dropout, InputLayer, Layer, MaxPooling2D, _auto_name

__all__ = ["Sequential", "Model", "History", "load_model"]


class History:
    """What fit returns: .history maps each logged name to its per-epoch values."""

    def __init__(self):
        self.history, self.epoch = {}, []

    def __repr__(self):
        return f"History(epochs={len(self.epoch)}, keys={list(self.history)})"


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


class _Bar:
    """Keras's progress line: `N/N [=====] - 1s 11ms/step - loss: ...`; live only in a terminal."""

    def __init__(self, steps, verbose):
        self.steps, self.verbose = steps, verbose
        self.live = verbose == 1 and getattr(sys.stdout, "isatty", lambda: False)()
        self.start = time.perf_counter()

    def _line(self, step, logs):
        elapsed = time.perf_counter() - self.start
        width = 30
        done = int(width * step / max(self.steps, 1))
        bar = "=" * done + (">" if done < width else "") + "." * max(width - done - 1, 0)
        per = 1000 * elapsed / max(step, 1)
        text = "".join(f" - {k}: {v:.4f}" for k, v in logs.items())
        return f"{step}/{self.steps} [{bar}] - {elapsed:.0f}s {per:.0f}ms/step{text}"

    def update(self, step, logs):
        if self.live:
            sys.stdout.write("\r" + self._line(step, logs))
            sys.stdout.flush()

    def done(self, logs):
        if self.verbose == 0:
            return
        if self.verbose == 2:
            elapsed = time.perf_counter() - self.start
            text = "".join(f" - {k}: {v:.4f}" for k, v in logs.items())
            sys.stdout.write(f"{self.steps}/{self.steps} - {elapsed:.0f}s - "
                             f"{1000 * elapsed / max(self.steps, 1):.0f}ms/step{text}\n")
        else:
            sys.stdout.write(("\r" if self.live else "") + self._line(self.steps, logs) + "\n")
        sys.stdout.flush()


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
            "metrics": [self._metric(m) for m in _metric_list(metrics)],
            "pf_optimizer": None,
        }
        return self

    @staticmethod
    def _metric(m):
        from ..training import resolve_metric
        if isinstance(m, str) and m.lower() in ("accuracy", "acc", "sparse_categorical_accuracy",
                                                "categorical_accuracy", "binary_accuracy"):
            return ("accuracy" if m.lower() == "acc" else m.lower()), _keras_accuracy
        return resolve_metric(m)

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

    def _metric_logs(self, y, outputs, prefix=""):
        c = self._compiled
        probs = c["loss"].probabilities(outputs)
        return {prefix + name: float(fn(y, probs)) for name, fn in c["metrics"]}

    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None, validation_split=0.0,
            validation_data=None, shuffle=True, initial_epoch=0, steps_per_epoch=None, **kwargs):
        c = self._require_compiled("fit")
        x, y = _to_array(x, "x", "fit"), _to_array(y, "y", "fit")
        if len(x) != len(y):
            raise ValueError(f"fit: 'x' has {len(x)} samples but 'y' has {len(y)}")
        batch_size = 32 if batch_size is None else batch_size
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
            raise ValueError(f"fit: batch_size must be a positive int, got {batch_size!r}")
        if validation_data is None and validation_split:
            if not 0 < validation_split < 1:
                raise ValueError(f"fit: validation_split must be in (0, 1), got {validation_split}")
            cut = int(len(x) * (1 - validation_split))     # Keras keeps the last samples for validation
            x, y, validation_data = x[:cut], y[:cut], (x[cut:], y[cut:])
        if validation_data is not None:
            vx, vy = validation_data[0], validation_data[1]
        verbose = _verbose(verbose)
        if not self.built:
            self.forward(x[:1], training=False)
        opt = self._optimizer()
        callbacks = _callback_list(callbacks, "fit")
        for cb in callbacks:
            cb.set_model(self)
        history = History()
        self.stop_training = False
        n = len(x)
        steps = (n + batch_size - 1) // batch_size
        for cb in callbacks:
            cb.on_train_begin()
        for epoch in range(initial_epoch, epochs):
            for cb in callbacks:
                cb.on_epoch_begin(epoch)
            if verbose:
                print(f"Epoch {epoch + 1}/{epochs}")
            self.train()
            order = generator().permutation(n) if shuffle else None
            bar = _Bar(steps, verbose)
            total, outs, targets, seen = 0.0, [], [], 0
            for step, idx in enumerate(_batches(n, batch_size, order), 1):
                xb, yb = x[idx], y[idx]
                out, logits, final = self._run(Tensor(xb, _trusted=True), True)
                loss = c["loss"](out, yb, logits, final)
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss._array) * len(xb)
                seen += len(xb)
                if c["metrics"]:
                    outs.append(out._array)
                    targets.append(yb)
                bar.update(step, {"loss": total / seen})
            logs = {"loss": total / max(n, 1)}
            if outs:
                logs.update(self._metric_logs(np.concatenate(targets), np.concatenate(outs)))
            if validation_data is not None:
                val = self._evaluate_logs(vx, vy, max(batch_size, 32))
                logs.update({f"val_{k}": v for k, v in val.items()})
            bar.done(logs)
            history.epoch.append(epoch)
            for k, v in logs.items():
                history.history.setdefault(k, []).append(v)
            for cb in callbacks:
                cb.on_epoch_end(epoch, logs)
            if self.stop_training:
                break
        for cb in callbacks:
            cb.on_train_end()
        self.history = history
        return history

    def _outputs(self, x, batch_size):
        return map_batches(self, x, batch_size, lambda t: self._run(t, False))

    def _evaluate_logs(self, x, y, batch_size):
        c = self._compiled
        x, y = _to_array(x, "x", "evaluate"), _to_array(y, "y", "evaluate")
        if len(x) != len(y):
            raise ValueError(f"evaluate: 'x' has {len(x)} samples but 'y' has {len(y)}")
        total, outs = 0.0, []
        for (out, logits, final), idx in zip(self._outputs(x, batch_size), _batches(len(x), batch_size)):
            with no_grad():
                total += float(c["loss"](out, y[idx], logits, final)._array) * len(out._array)
            outs.append(out._array)
        logs = {"loss": total / max(len(x), 1)}
        if c["metrics"] and outs:
            logs.update(self._metric_logs(y, np.concatenate(outs)))
        return logs

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", return_dict=False, **kwargs):
        self._require_compiled("evaluate")
        batch_size = batch_size or 32
        start = time.perf_counter()
        logs = self._evaluate_logs(x, y, batch_size)
        verbose = _verbose(verbose)
        if verbose:
            steps = (len(x) + batch_size - 1) // batch_size
            bar = _Bar(steps, verbose)
            bar.start = start
            bar.done(logs)
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    def predict(self, x, batch_size=None, verbose="auto", **kwargs):
        x = _to_array(x, "x", "predict")
        if not self.built:
            self.forward(x[:1], training=False)
        outs = [o.numpy() for o, _, _ in self._outputs(x, batch_size or 32)]
        return np.concatenate(outs) if outs else np.zeros((0,) + tuple(self.output_shape or ()), np.float32)

    def __call__(self, x, training=None):
        return self.forward(x, training)

    # ------------------------------------------------------------ saving
    def save(self, filepath, overwrite=True):
        """The whole model (architecture, weights, compile settings) in one file."""
        _save(self, filepath)

    def save_weights(self, filepath, overwrite=True):
        nn.Module.save_weights(self, filepath)


Model = Sequential


def _keras_accuracy(y_true, y_prob):
    """Keras's accuracy: argmax of class scores, or a 0.5 threshold for one probability per sample."""
    from ..metrics import accuracy
    y_prob = np.asarray(y_prob)
    y_true = np.asarray(y_true)
    if y_prob.ndim >= 2 and y_prob.shape[-1] > 1:
        if y_true.shape == y_prob.shape:            # one-hot targets
            y_true = y_true.argmax(-1)
        return float((y_prob.argmax(-1) == y_true.reshape(y_prob.shape[:-1])).mean())
    return accuracy(y_true.reshape(-1).astype(np.int64), (y_prob.reshape(-1) > 0.5).astype(np.int64))


def load_model(filepath, compile=True, **kwargs):
    """Loads what Sequential.save wrote."""
    model = _load(filepath)
    if not isinstance(model, Layer):
        raise ValueError(f"load_model: '{filepath}' does not hold a pyfastnn.keras model")
    return model
