"""Keras's Model: the functional API (Model(inputs=..., outputs=...): several inputs and outputs, shared
layers, models used as layers) and subclassed models, with Keras's training API (compile, fit, evaluate,
predict and their generator forms, train_on_batch, summary, weights).

Running the graph: image tensors travel in NCHW (the kernels' layout) through chains of image layers and are
transposed only where a channels_last layer needs them (Dense, Flatten, a Lambda, the model's outputs); a
relu Conv2D whose only consumer is a MaxPooling2D applies its relu after the pool (max and relu commute, and
the relu then touches a quarter of the data); a final softmax/sigmoid Dense hands its logits to the loss, as
Keras does, for a stable cross entropy.
"""
from __future__ import annotations

import inspect
import os
import warnings

import numpy as np

from ...nn import functional as F
from ...tensor import Tensor, _wrap
from ...training import trainer
from ...training.callbacks import History
from ...training.data import first_array, make_data
from ...training.registry import metric_list, resolve_metric
from ...training.trainer import Spec, host, model_device, to_device
from .. import losses as _losses
from .. import optimizers as _optimizers
from ..graph import KerasTensor, flatten, layers_in_keras_order, nodes_between
from ..layers.base import (Input, InputLayer, Layer, auto_name, deserialize_layer, from_config_value,
                           register_layer_class, serialize_layer, shape_of, to_config_value)
from ..layers.core import Activation, Conv2D, Dense, MaxPooling2D
from ..saving import is_h5_path, load_weights_h5, save_weights_h5
from .archive import write_archive

__all__ = ["Model", "Functional", "verbose_level"]


def verbose_level(v):
    return 1 if v == "auto" else int(v)


def _to_nchw(x):
    return x.permute(0, 3, 1, 2).contiguous()


def _to_logical(value):
    x, layout = value[0], value[1]
    return x.permute(0, 2, 3, 1) if layout == "nchw" else x


class _Value:
    """A tensor flowing through the graph, its layout ('nchw' or 'logical') and a relu still to apply."""
    __slots__ = ("x", "layout", "pending_relu")

    def __init__(self, x, layout="logical", pending_relu=False):
        self.x, self.layout, self.pending_relu = x, layout, pending_relu

    def logical(self):
        x = F.relu(self.x) if self.pending_relu else self.x
        return x.permute(0, 2, 3, 1) if self.layout == "nchw" else x

    def nchw(self):
        x = F.relu(self.x) if self.pending_relu else self.x
        return x if self.layout == "nchw" else _to_nchw(x)


class Model(Layer):
    """Model(inputs=..., outputs=...) over a graph of layer calls, or a subclass defining call()."""

    def __init__(self, *args, **kwargs):
        inputs = kwargs.pop("inputs", args[0] if len(args) > 0 else None)
        outputs = kwargs.pop("outputs", args[1] if len(args) > 1 else None)
        name = kwargs.pop("name", None)
        trainable = kwargs.pop("trainable", True)
        if len(args) > 2:
            raise TypeError(f"Model: takes inputs and outputs (and keyword arguments), got {len(args)} positional "
                            f"arguments")
        super().__init__(name=name or auto_name("Functional" if inputs is not None else type(self).__name__),
                         trainable=trainable, **kwargs)
        object.__setattr__(self, "_compiled", None)
        object.__setattr__(self, "_graph", None)
        self.stop_training = False
        self.history = None
        if inputs is not None or outputs is not None:
            if inputs is None or outputs is None:
                raise ValueError("Model: give both inputs=... and outputs=... (or subclass Model and define call)")
            self._init_graph(inputs, outputs)

    # ---------------------------------------------------------------- graph
    def _init_graph(self, inputs, outputs):
        self._inputs_struct, self._outputs_struct = inputs, outputs
        ins, outs = flatten(inputs), flatten(outputs)
        for name, group in (("inputs", (inputs, ins)), ("outputs", (outputs, outs))):
            if not group[1] or len(group[1]) != len(_leaves(group[0])):
                raise TypeError(f"Model: argument '{name}' must be a KerasTensor, or a list/dict of them (from "
                                f"keras.Input and layer calls), got {type(group[0]).__name__}")
        for t in ins:
            if getattr(t, "input_layer", None) is None and t.node is not None:
                raise ValueError(f"Model: inputs must come from keras.Input(), got {t} (an output of layer "
                                 f"'{t.node.layer.name}')")
        if len({id(t) for t in ins}) != len(ins):
            raise ValueError("Model: the same input is given twice in inputs")
        nodes = nodes_between(ins, outs)
        layers = layers_in_keras_order(ins, outs, nodes)
        names = [layer.name for layer in layers]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"Model: all layer names should be unique; {dup} appear more than once")
        consumers = {}
        for node in nodes:
            for t in node.inputs:
                consumers.setdefault(id(t), []).append(node)
        out_ids = {id(t) for t in outs}
        fuse = set()
        for node in nodes:
            layer = node.layer
            if isinstance(layer, Conv2D) and layer.activation == "relu" and len(node.outputs) == 1:
                users = consumers.get(id(node.outputs[0]), [])
                if len(users) == 1 and isinstance(users[0].layer, MaxPooling2D) and id(node.outputs[0]) not in out_ids:
                    fuse.add(node.id)
        for layer in layers:
            self.add_module(layer.name, layer)
        object.__setattr__(self, "_graph", {"inputs": ins, "outputs": outs, "nodes": nodes, "layers": layers,
                                            "fuse_relu": fuse, "out_ids": out_ids})
        self.built = True
        self._input_shape = tuple(ins[0].shape[1:]) if len(ins) == 1 else [tuple(t.shape[1:]) for t in ins]
        self.output_shape = tuple(outs[0].shape[1:]) if len(outs) == 1 else [tuple(t.shape[1:]) for t in outs]

    @property
    def layers(self):
        if self._graph is None:
            return [m for m in self._modules.values() if isinstance(m, Layer)]
        return list(self._graph["layers"])

    @property
    def inputs(self):
        return list(self._graph["inputs"]) if self._graph else None

    @property
    def outputs(self):
        return list(self._graph["outputs"]) if self._graph else None

    @property
    def input_names(self):
        return [t.input_layer.name for t in self._graph["inputs"]] if self._graph else []

    @property
    def output_names(self):
        return [t.node.layer.name for t in self._graph["outputs"]] if self._graph else []

    def get_layer(self, name=None, index=None):
        if index is not None:
            layers = self.layers
            if not -len(layers) <= index < len(layers):
                raise ValueError(f"get_layer: was asked to retrieve layer at index {index} but model only has "
                                 f"{len(layers)} layers")
            return layers[index]
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(f"No such layer: {name}. Existing layers are: {[layer.name for layer in self.layers]}.")

    def _ensure_graph(self, data):
        """A model with a graph runs it; a subclassed one runs its call() (nothing to do here)."""
        return self._graph is not None

    def compute_output_shape(self, input_shape):
        if self._graph is None:
            raise NotImplementedError
        return self.output_shape

    # ------------------------------------------------------------------ run
    def _bind_inputs(self, inputs):
        ins = self._graph["inputs"]
        if isinstance(inputs, dict):
            by_name = {t.input_layer.name: t for t in ins}
            missing = [n for n in by_name if n not in inputs]
            if missing:
                raise ValueError(f"Model '{self.name}': missing input(s) {missing}; the model takes {list(by_name)}")
            return [inputs[t.input_layer.name] for t in ins]
        if len(ins) == 1:
            if isinstance(inputs, (list, tuple)) and len(inputs) == 1:
                inputs = inputs[0]
            if isinstance(inputs, (list, tuple)):
                raise ValueError(f"Model '{self.name}' expects 1 input, but it received {len(inputs)} input tensors")
            return [inputs]
        if not isinstance(inputs, (list, tuple)) or len(inputs) != len(ins):
            got = len(inputs) if isinstance(inputs, (list, tuple)) else 1
            raise ValueError(f"Model '{self.name}' expects {len(ins)} input(s) "
                             f"({[t.input_layer.name for t in ins]}), but it received {got} input tensor(s)")
        return list(inputs)

    def _run_graph(self, inputs, training, want_logits=False):
        """(outputs, logits, finals) for real inputs: outputs as the model's structure (channels_last);
        logits/finals per output for the loss (None where the output is not a softmax/sigmoid's)."""
        g = self._graph
        data = [_as_tensor(x, self.name) for x in self._bind_inputs(inputs)]
        values = {}
        for t, x in zip(g["inputs"], data):
            want = t.shape[1:]
            have = tuple(x.shape[1:])
            if len(want) != len(have) or any(w is not None and w != h for w, h in zip(want, have)):
                users = [n.layer.name for n in g["nodes"] if any(i is t for i in n.inputs)]
                feeding = f" (feeding '{users[0]}')" if users else ""
                raise ValueError(f"Model '{self.name}': input '{t.input_layer.name}'{feeding} expects shape "
                                 f"{(None,) + tuple(want)}, got {tuple(x.shape)}")
            values[id(t)] = _Value(x)
        logits = {}
        for node in g["nodes"]:
            self._run_node(node, values, training, g, logits if want_logits else None)
        outs = [values[id(t)].logical() for t in g["outputs"]]
        out_logits = [logits.get(id(t)) for t in g["outputs"]]
        return outs, out_logits

    def _run_node(self, node, values, training, g, logits):
        layer = node.layer
        ins = [values[id(t)] for t in node.inputs]
        image = hasattr(layer, "call_nchw") and ins and all(v.x.ndim == 4 for v in ins) and not node.kwargs
        if image and (len(ins) == 1 or getattr(layer, "takes_list", False)):
            args = [v.nchw() for v in ins]
            if isinstance(layer, MaxPooling2D) and len(ins) == 1 and ins[0].pending_relu:
                args = [ins[0].x if ins[0].layout == "nchw" else _to_nchw(ins[0].x)]
                y = F.relu(layer.call_nchw(args[0], training))
            else:
                x0 = args[0]
                layer._ensure_built([(a.shape[2], a.shape[3], a.shape[1]) for a in args] if len(args) > 1
                                    else (x0.shape[2], x0.shape[3], x0.shape[1]))
                if node.id in g["fuse_relu"]:
                    y = layer.call_nchw(x0, training, skip_activation=True)
                    values[id(node.outputs[0])] = _Value(y, "nchw", pending_relu=True)
                    return
                y = layer.call_nchw(args if len(args) > 1 else x0, training)
            out = y if isinstance(y, (list, tuple)) else [y]
            for t, yt in zip(node.outputs, out):
                values[id(t)] = _Value(yt, "nchw" if yt.ndim == 4 else "logical")
            return
        layouts = {v.layout for v in ins}
        if getattr(layer, "layout_agnostic", False) and len(layouts) == 1 and not any(v.pending_relu for v in ins) \
                and not node.kwargs and all(v.x.ndim == ins[0].x.ndim for v in ins):
            layout = layouts.pop()
            args = substitute_values(node.args, values, raw=True)
            y = layer(*args, training=training)
            for t, yt in zip(node.outputs, y if isinstance(y, (list, tuple)) else [y]):
                values[id(t)] = _Value(yt, layout if yt.ndim == 4 else "logical")
            return
        args = substitute_values(node.args, values)
        kwargs = substitute_values(node.kwargs, values)
        if logits is not None and len(node.outputs) == 1 and id(node.outputs[0]) in g["out_ids"]:
            act = getattr(layer, "activation", None)
            if isinstance(layer, Dense) and act in ("softmax", "sigmoid"):
                x = args[0]
                layer._ensure_built(shape_of(x))
                z = layer.logits(x)
                logits[id(node.outputs[0])] = (z, act)
                values[id(node.outputs[0])] = _Value(F.softmax(z, -1) if act == "softmax" else F.sigmoid(z))
                return
            if isinstance(layer, Activation) and act in ("softmax", "sigmoid"):
                z = args[0]
                logits[id(node.outputs[0])] = (z, act)
                values[id(node.outputs[0])] = _Value(layer(z, training=training))
                return
        if "training" not in kwargs and _accepts_training(layer):
            kwargs["training"] = training
        y = layer(*args, **kwargs)
        outs = flatten_values(y)
        if len(outs) != len(node.outputs):
            raise ValueError(f"Layer '{layer.name}' returned {len(outs)} outputs, its graph node expects "
                             f"{len(node.outputs)}")
        for t, yt in zip(node.outputs, outs):
            values[id(t)] = _Value(yt)

    def call(self, inputs, training=False, mask=None):
        if self._graph is None:
            raise NotImplementedError(f"Model '{self.name}': define call() in your subclass, or build the model "
                                      f"with Model(inputs=..., outputs=...)")
        outs, _ = self._run_graph(inputs, training)
        return _restructure(self._outputs_struct, outs)

    def forward(self, inputs, training=None, mask=None, **kwargs):
        training = self.training if training is None else training
        if self._graph is None:
            x = _as_tensor(inputs, self.name) if not isinstance(inputs, (list, tuple, dict)) else inputs
            if "_build_shape" not in self.__dict__ and not isinstance(x, dict):    # for save: get_build_config
                shapes = [[None] + list(shape_of(v)) for v in (x if isinstance(x, (list, tuple)) else [x])]
                object.__setattr__(self, "_build_shape", shapes if isinstance(x, (list, tuple)) else shapes[0])
            out = self.call(x, training=training, **kwargs) if _accepts_training(self, "call") else \
                self.call(x, **kwargs)
            self.built = True
            return out
        return self.call(inputs, training=training)

    def _run(self, x, training):
        """(outputs, logits, final activation) for the training loop (one output), or lists of them."""
        if self._graph is None:
            out = self.forward(x, training=training)
            return out, None, None
        outs, logits = self._run_graph(x, training, want_logits=True)
        if len(outs) == 1:
            lg = logits[0]
            return outs[0], (lg[0] if lg else None), (lg[1] if lg else None)
        return outs, [lg[0] if lg else None for lg in logits], [lg[1] if lg else None for lg in logits]

    # -------------------------------------------------------------- weights
    def _keras_weights(self):
        return [pair for layer in self.layers for pair in layer._keras_weights()]

    @property
    def trainable_weights(self):
        return [w for layer in self.layers for w in layer.trainable_weights] if self._trainable else []

    @property
    def non_trainable_weights(self):
        return [w for layer in self.layers for w in layer.non_trainable_weights]

    def count_params(self):
        return int(sum(layer.count_params() for layer in self.layers if layer.built))

    def summary(self, line_length=None, positions=None, print_fn=None, expand_nested=False, show_trainable=False,
                layer_range=None):
        """Keras's summary: each layer's name (type), output shape and parameter count, then the total,
        trainable and non-trainable counts (frozen layers and BatchNormalization's moving statistics are
        non-trainable)."""
        print_fn = print_fn or print
        if not self.built or any(not layer.built for layer in self.layers):
            raise ValueError(f"Model '{self.name}': this model has not yet been built. Build the model first by "
                             f"calling `build()` or by calling the model on a batch of data (or give the first "
                             f"layer input_shape=..., or add an Input)")
        rows = []
        multi = self._graph is not None and any(len(n.inputs) > 1 for n in self._graph["nodes"])
        for layer in self.layers:
            shape = _shape_text(layer)
            connected = ""
            if multi:
                connected = ", ".join(_connection(t) for node in layer._inbound_nodes[:1] for t in node.inputs)
            rows.append((f"{layer.name} ({_type_name(layer)})", shape, layer.count_params(), connected))
        w0 = max([len("Layer (type)")] + [len(r[0]) for r in rows]) + 2
        w1 = max([len("Output Shape")] + [len(r[1]) for r in rows]) + 2
        w3 = max([len("Connected to")] + [len(r[3]) for r in rows]) + 2 if multi else 0
        width = w0 + w1 + 12 + w3
        total = sum(r[2] for r in rows)
        non_trainable = sum(int(np.prod(np.shape(w))) for w in self.non_trainable_weights)
        head = f"{'Layer (type)':<{w0}}{'Output Shape':<{w1}}{'Param #':>12}" + (
            f"  {'Connected to':<{w3}}" if multi else "")
        lines = [f'Model: "{self.name}"', "_" * width, head, "=" * width]
        for name, shape, count, conn in rows:
            lines.append(f"{name:<{w0}}{shape:<{w1}}{count:>12,}" + (f"  {conn:<{w3}}" if multi else ""))
        lines += ["=" * width, f"Total params: {total:,}", f"Trainable params: {total - non_trainable:,}",
                  f"Non-trainable params: {non_trainable:,}", "_" * width]
        for line in lines:
            print_fn(line)

    # -------------------------------------------------------------- training
    def compile(self, optimizer="rmsprop", loss=None, metrics=None, loss_weights=None, weighted_metrics=None,
                run_eagerly=None, steps_per_execution=1, jit_compile=None, auto_scale_loss=True, **kwargs):
        if kwargs:
            raise TypeError(f"compile: unexpected keyword argument(s) {sorted(kwargs)}")
        if loss is None:
            raise ValueError("compile: argument 'loss' is required (e.g. 'sparse_categorical_crossentropy')")
        n_out = len(self._graph["outputs"]) if self._graph else 1
        losses = _per_output(loss, n_out, self.output_names, "loss", _losses.get)
        weights = [1.0] * n_out if loss_weights is None else [float(w) for w in _per_output(
            loss_weights, n_out, self.output_names, "loss_weights", lambda w: w)]
        object.__setattr__(self, "_compiled", {
            "optimizer": _optimizers.get(optimizer), "losses": losses, "loss_weights": weights,
            "metrics": [resolve_metric(m, keras=True) for m in metric_list(metrics)], "pf_optimizer": None})
        return self

    def _require_compiled(self, where):
        if self._compiled is None:
            raise RuntimeError(f"{where}: You must call `compile()` before using the model (model "
                               f"'{self.name}')")
        return self._compiled

    def _optimizer(self):
        c = self._compiled
        if c["pf_optimizer"] is None:
            params = [p for p in self.parameters() if p.requires_grad]
            if not params:
                raise RuntimeError(f"fit: model '{self.name}' has no trainable weights (is every layer frozen?)")
            c["pf_optimizer"] = c["optimizer"].build(params)
        return c["pf_optimizer"]

    def _spec(self, where, optimizer=None):
        c = self._compiled
        device = model_device(self)
        multi = self._graph is not None and len(self._graph["outputs"]) > 1

        def forward(x, training, net):
            out, logits, final = self._run(to_device(device, x), training)
            return out, (logits, final)

        def loss(out, extra, y, sample_weight):
            logits, final = extra
            if not multi:
                return c["losses"][0](out, host(y), logits, final)
            ys = _targets_per_output(y, len(out), self.output_names)
            total = None
            for fn, w, o, yt, lg, fi in zip(c["losses"], c["loss_weights"], out, ys, logits, final):
                term = fn(o, host(yt), lg, fi) * w
                total = term if total is None else total + term
            return total

        def metric_logs(collected, targets):
            if not multi:
                outputs = np.concatenate(collected)
                yv = np.concatenate([np.asarray(t) for t in targets])
                probs = c["losses"][0].probabilities(outputs)
                return {name: float(fn(yv, probs)) for name, fn in c["metrics"]}
            logs = {}
            for i, oname in enumerate(self.output_names):
                outputs = np.concatenate([col[i] for col in collected])
                yv = np.concatenate([np.asarray(_targets_per_output(t, len(collected[0]), self.output_names)[i])
                                     for t in targets])
                probs = c["losses"][i].probabilities(outputs)
                logs.update({f"{oname}_{name}": float(fn(yv, probs)) for name, fn in c["metrics"]})
            return logs
        return Spec(self, optimizer, forward, loss, lambda out: host(out), metric_logs, lambda out: host(out),
                    bool(c and c["metrics"]))

    def _build_on(self, source):
        """A lazily built model (a Sequential without input shape) builds from the first samples."""
        if self.built:
            return
        x = getattr(source, "x", None)
        if x is not None:
            self.forward(_head(x), training=False)

    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None, validation_split=0.0,
            validation_data=None, shuffle=True, class_weight=None, sample_weight=None, initial_epoch=0,
            steps_per_epoch=None, validation_steps=None, validation_batch_size=None, validation_freq=1,
            max_queue_size=10, workers=1, use_multiprocessing=False):
        self._require_compiled("fit")
        if class_weight is not None:
            raise NotImplementedError("fit: class_weight is not supported; weight the loss or resample instead")
        if validation_data is None and validation_split:
            if not 0 < validation_split < 1:
                raise ValueError(f"fit: validation_split must be in (0, 1), got {validation_split}")
            if not isinstance(x, (np.ndarray, Tensor)):
                raise ValueError("fit: validation_split is only supported for arrays (Keras's rule too); pass "
                                 "validation_data for a generator or Sequence")
            xa = x._array if isinstance(x, Tensor) else x
            ya = y._array if isinstance(y, Tensor) else np.asarray(y)
            cut = int(len(xa) * (1 - validation_split))     # Keras keeps the last samples for validation
            x, y, validation_data = xa[:cut], ya[:cut], (xa[cut:], ya[cut:])
        train = make_data(x, y, batch_size=batch_size, shuffle=shuffle, steps=steps_per_epoch, workers=workers,
                          max_queue_size=max_queue_size, where="fit", sample_weight=sample_weight)
        self._build_on(train)
        val = None
        if validation_data is not None:
            if isinstance(validation_data, (tuple, list)):
                if len(validation_data) not in (2, 3):
                    raise ValueError("fit: validation_data must be (x_val, y_val) or a generator/Sequence")
                val = make_data(validation_data[0], validation_data[1],
                                batch_size=validation_batch_size or batch_size or 32, shuffle=False,
                                steps=validation_steps, workers=1, max_queue_size=10, where="fit (validation_data)")
            else:
                val = make_data(validation_data, None, batch_size=None, shuffle=False, steps=validation_steps,
                                workers=workers, max_queue_size=max_queue_size, where="fit (validation_data)")
        if not self.built and hasattr(train, "source"):
            self._build_from_stream(train)
        spec = self._spec("fit", self._optimizer())
        logs = trainer.fit(spec, train, epochs=epochs, initial_epoch=initial_epoch, validation=val,
                           callbacks=callbacks, verbose=verbose_level(verbose), style="keras", owner=self)
        history = History()
        history.history = logs
        history.epoch = list(range(initial_epoch, initial_epoch + len(next(iter(logs.values()), []))))
        # pyfastnn's own figure: seconds the loop spent waiting for the next batch (data starving the model)
        history.data_wait_seconds = train.wait_seconds
        history.set_model(self)
        self.history = history
        return history

    def _build_from_stream(self, stream):
        """Builds a lazily built model from one batch of a generator/Sequence, without consuming it."""
        src = stream.source
        if hasattr(src, "__getitem__") and hasattr(src, "__len__"):
            xb = src[0][0] if isinstance(src[0], (tuple, list)) else src[0]
            self.forward(_head(xb), training=False)

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None, steps=None,
                 callbacks=None, max_queue_size=10, workers=1, use_multiprocessing=False, return_dict=False):
        self._require_compiled("evaluate")
        source = make_data(x, y, batch_size=batch_size, shuffle=False, steps=steps, workers=workers,
                           max_queue_size=max_queue_size, where="evaluate", sample_weight=sample_weight)
        self._build_on(source)
        if not self.built and hasattr(source, "source"):
            self._build_from_stream(source)
        logs = trainer.evaluate(self._spec("evaluate"), source, verbose=verbose_level(verbose), style="keras")
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None, max_queue_size=10, workers=1,
                use_multiprocessing=False):
        source = make_data(x, None, batch_size=batch_size, shuffle=False, steps=steps, workers=workers,
                           max_queue_size=max_queue_size, where="predict")
        self._build_on(source)
        if not self.built and hasattr(source, "source"):
            self._build_from_stream(source)
        device = model_device(self)
        spec = Spec(self, None, lambda xb, training, net: (self._run(to_device(device, xb), False)[0], None), None,
                    None, None, lambda out: host(out), False)
        out = trainer.predict(spec, source, verbose=0)
        if out is None:
            shape = self.output_shape if isinstance(self.output_shape, tuple) else ()
            return np.zeros((0,) + tuple(s or 0 for s in shape), np.float32)
        return out

    # tf.keras 2's generator names, as the tutorials call them
    def fit_generator(self, generator, steps_per_epoch=None, epochs=1, verbose=1, callbacks=None,
                      validation_data=None, validation_steps=None, validation_freq=1, class_weight=None,
                      max_queue_size=10, workers=1, use_multiprocessing=False, shuffle=True, initial_epoch=0):
        warnings.warn("`Model.fit_generator` is deprecated and will be removed in a future version. Please use "
                      "`Model.fit`, which supports generators.", DeprecationWarning, stacklevel=2)
        return self.fit(generator, steps_per_epoch=steps_per_epoch, epochs=epochs, verbose=verbose,
                        callbacks=callbacks, validation_data=validation_data, validation_steps=validation_steps,
                        class_weight=class_weight, max_queue_size=max_queue_size, workers=workers,
                        shuffle=shuffle, initial_epoch=initial_epoch)

    def evaluate_generator(self, generator, steps=None, callbacks=None, max_queue_size=10, workers=1,
                           use_multiprocessing=False, verbose=0):
        warnings.warn("`Model.evaluate_generator` is deprecated and will be removed in a future version. Please "
                      "use `Model.evaluate`, which supports generators.", DeprecationWarning, stacklevel=2)
        return self.evaluate(generator, steps=steps, callbacks=callbacks, max_queue_size=max_queue_size,
                             workers=workers, verbose=verbose)

    def predict_generator(self, generator, steps=None, callbacks=None, max_queue_size=10, workers=1,
                          use_multiprocessing=False, verbose=0):
        warnings.warn("`Model.predict_generator` is deprecated and will be removed in a future version. Please "
                      "use `Model.predict`, which supports generators.", DeprecationWarning, stacklevel=2)
        return self.predict(generator, steps=steps, callbacks=callbacks, max_queue_size=max_queue_size,
                            workers=workers, verbose=verbose)

    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None, reset_metrics=True,
                       return_dict=False):
        c = self._require_compiled("train_on_batch")
        data = make_data(x, y, batch_size=len(first_array(x)), shuffle=False, steps=None, workers=1,
                         max_queue_size=0, where="train_on_batch")
        self._build_on(data)
        spec = self._spec("train_on_batch", self._optimizer())
        self.train()
        xb, yb, wb, _ = next(data.epoch())
        out, extra = spec.forward(xb, True, self)
        loss = spec.loss(out, extra, yb, wb)
        spec.optimizer.zero_grad()
        loss.backward()
        spec.optimizer.step()
        logs = {"loss": float(loss.item())}
        if c["metrics"]:
            logs.update(spec.metric_logs([host(out)], [host(yb)]))
        return logs if return_dict else (logs["loss"] if len(logs) == 1 else list(logs.values()))

    def test_on_batch(self, x, y=None, sample_weight=None, reset_metrics=True, return_dict=False):
        return self.evaluate(x, y, batch_size=len(first_array(x)), verbose=0, return_dict=return_dict)

    def predict_on_batch(self, x):
        return self.predict(x, batch_size=len(first_array(x)), verbose=0)

    # --------------------------------------------------------------- saving
    def save(self, filepath, overwrite=True, zipped=None, **kwargs):
        """The whole model in one file, Keras 3's .keras layout: config.json (each layer's class and config,
        the graph, the compile settings), metadata.json and the weights (model.weights.npz). Written in that
        format whatever the extension (a tf.keras 2 script's 'model.h5' too); load_model reads it back without
        running anything from the file."""
        if kwargs:
            raise TypeError(f"save: unexpected keyword argument(s) {sorted(kwargs)}")
        if zipped is False:
            raise NotImplementedError("save: zipped=False (an unzipped model folder) is not supported; the model is "
                                      "saved as one zip file")
        path = os.fspath(filepath)
        if not overwrite and os.path.exists(path):
            raise FileExistsError(f"save: '{path}' exists and overwrite=False")
        write_archive(path, self.saved_config(), self.state_dict())

    def saved_config(self):
        """What config.json holds: Keras's {"module", "class_name", "config", ...} of this model, with its
        build and compile settings."""
        out = serialize_layer(self)
        out["build_config"] = self.get_build_config()
        out["compile_config"] = self.get_compile_config()
        return out

    def save_weights(self, filepath, overwrite=True, **kwargs):
        """Writes the weights: Keras 3's layout for a '.weights.h5' name, Keras 2's legacy HDF5 layout for
        another '.h5' / '.hdf5' name (both load in Keras), else safetensors/npz of the state_dict."""
        if kwargs:
            raise TypeError(f"save_weights: unexpected keyword argument(s) {sorted(kwargs)}")
        path = os.fspath(filepath)
        if not overwrite and os.path.exists(path):
            raise FileExistsError(f"save_weights: '{path}' exists and overwrite=False")
        if is_h5_path(path):
            save_weights_h5(self, path)
        else:
            Layer.save_weights(self, path)

    def load_weights(self, filepath, skip_mismatch=False, by_name=False, **kwargs):
        """Reads weights saved by save_weights or by Keras: a Keras 3 '.weights.h5' or Keras 2 '.h5' file
        (by_name / skip_mismatch as Keras's), else the state_dict formats (strict=... as nn.Module's)."""
        path = os.fspath(filepath) if isinstance(filepath, (str, os.PathLike)) else filepath
        if isinstance(path, str) and is_h5_path(path):
            if kwargs:
                raise TypeError(f"load_weights: unexpected keyword argument(s) {sorted(kwargs)}")
            load_weights_h5(self, path, skip_mismatch=skip_mismatch, by_name=by_name)
            return self
        if skip_mismatch or by_name:
            raise ValueError(f"load_weights: skip_mismatch and by_name apply to Keras .h5 files, not '{path}'")
        return Layer.load_weights(self, path, **kwargs)

    def get_config(self):
        """A functional model's config as Keras writes it: its layers (each with its class, config and the
        inbound nodes that feed it: the arguments of each call, KerasTensors as [layer name, node index,
        tensor index]) and its input and output tensors; a subclassed model's: its constructor's arguments."""
        if self._graph is None:
            return Layer.get_config(self)
        g = self._graph
        in_model = {node.id for node in g["nodes"]}
        entries = []
        for layer in g["layers"]:
            entry = serialize_layer(layer)
            nodes = [] if isinstance(layer, InputLayer) else [n for n in layer._inbound_nodes if n.id in in_model]
            entry["inbound_nodes"] = [{"args": _encode_call(list(n.args), in_model, layer),
                                       "kwargs": _encode_call(n.kwargs, in_model, layer)} for n in nodes]
            entries.append(entry)
        return {"name": self.name, "trainable": self._trainable, "layers": entries,
                "input_layers": _tensor_refs(self._inputs_struct, in_model),
                "output_layers": _tensor_refs(self._outputs_struct, in_model)}

    @classmethod
    def from_config(cls, config):
        if "layers" not in config or "input_layers" not in config:
            return super().from_config(config)           # a subclassed model: its constructor's arguments
        return _functional_from_config(cls, config)

    def get_build_config(self):
        if self._graph is not None:
            shape = self._input_shape
            return {"input_shape": [None] + list(shape) if isinstance(shape, tuple) else
                    [[None] + list(s) for s in shape]}
        shape = self.__dict__.get("_build_shape")
        return None if shape is None else {"input_shape": shape}

    def build_from_config(self, config):
        """Builds a subclassed model from its saved input shape by calling it once on zeros."""
        if not config or self._graph is not None or config.get("input_shape") is None:
            return
        shape = config["input_shape"]
        multi = isinstance(shape[0], list)
        zeros = [np.zeros([1] + [1 if d is None else d for d in s[1:]], np.float32) for s in
                 (shape if multi else [shape])]
        self.forward(zeros if multi else zeros[0], training=False)

    def get_compile_config(self):
        """The compile settings as names and plain values (the optimizer's state is not saved)."""
        c = self._compiled
        if c is None:
            return None
        return {"optimizer": _plain_object(c["optimizer"]), "loss": [_plain_object(fn) for fn in c["losses"]],
                "loss_weights": list(c["loss_weights"]), "metrics": [name for name, _ in c["metrics"]]}

    def compile_from_config(self, config, custom_objects=None):
        custom = dict(custom_objects or {})
        optimizer = _plain_from_config(config["optimizer"], _optimizers, _optimizers.Optimizer, custom, "optimizer")
        losses = [_plain_from_config(c, _losses, _losses.Loss, custom, "loss") for c in config["loss"]]
        metrics = []
        for name in config.get("metrics") or []:
            if name in custom:
                metrics.append(custom[name])
                continue
            try:
                resolve_metric(name, keras=True)
            except (ValueError, TypeError):
                warnings.warn(f"load_model: metric '{name}' is not a known name; pass it in custom_objects to "
                              f"restore it (compiled without it)", stacklevel=3)
                continue
            metrics.append(name)
        n_out = len(self._graph["outputs"]) if self._graph else 1
        self.compile(optimizer=optimizer, loss=losses if n_out > 1 else losses[0],
                     loss_weights=config.get("loss_weights") if n_out > 1 else None, metrics=metrics)


Functional = Model
register_layer_class(Model, "Functional")


def _plain_object(obj):
    """An optimizer or loss as its class name and the plain values of its attributes (its constructor's
    arguments by Keras's names)."""
    values = {k: v for k, v in vars(obj).items() if not k.startswith("_") and
              (v is None or isinstance(v, (bool, int, float, str)))}
    return {"class_name": type(obj).__name__, "config": values}


def _plain_from_config(cfg, module, base, custom, what):
    name = cfg.get("class_name") if isinstance(cfg, dict) else None
    cls = custom.get(name, getattr(module, str(name), None))
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise ValueError(f"load_model: unknown {what} class {name!r}; pass it in custom_objects")
    return cls(**cfg.get("config", {}))


class _Missing(Exception):
    """A tensor a node needs has not been rebuilt yet."""


def _node_index(node, in_model):
    return [n for n in node.layer._inbound_nodes if n.id in in_model].index(node)


def _tensor_ref(t, in_model):
    if t.node is None:
        return [t.input_layer.name, 0, 0]
    return [t.node.layer.name, _node_index(t.node, in_model), t.index]


def _tensor_refs(struct, in_model):
    if isinstance(struct, KerasTensor):
        return _tensor_ref(struct, in_model)
    if isinstance(struct, dict):
        return {k: _tensor_refs(v, in_model) for k, v in struct.items()}
    return [_tensor_refs(v, in_model) for v in struct]


def _encode_call(value, in_model, layer):
    """A node's call arguments as JSON: KerasTensors as Keras's __keras_tensor__ entries."""
    if isinstance(value, KerasTensor):
        return {"class_name": "__keras_tensor__", "config": {"shape": list(value.shape), "dtype": value.dtype,
                                                             "keras_history": _tensor_ref(value, in_model)}}
    if isinstance(value, dict):
        return {str(k): _encode_call(v, in_model, layer) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode_call(v, in_model, layer) for v in value]
    out = to_config_value(value)
    if not (out is None or isinstance(out, (bool, int, float, str, dict, list))):
        raise TypeError(f"save: layer '{layer.name}' was called with an argument that cannot be saved: {value!r}")
    return out


def _decode_call(value, created):
    if isinstance(value, dict):
        if value.get("class_name") == "__keras_tensor__":
            ref = value.get("config", {}).get("keras_history")
            return _resolve_ref(ref, created)
        return {k: _decode_call(v, created) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode_call(v, created) for v in value]
    return from_config_value(value)


def _resolve_ref(ref, created):
    if not (isinstance(ref, list) and len(ref) == 3 and isinstance(ref[0], str)):
        raise ValueError(f"load_model: bad tensor reference {ref!r} (expected [layer name, node index, tensor "
                         f"index])")
    outs = created.get((ref[0], ref[1]))
    if outs is None:
        raise _Missing(ref)
    if not isinstance(ref[2], int) or not 0 <= ref[2] < len(outs):
        raise ValueError(f"load_model: layer '{ref[0]}' has no output {ref[2]!r}")
    return outs[ref[2]]


def _resolve_refs(struct, created):
    if isinstance(struct, list) and struct and isinstance(struct[0], str):
        return _resolve_ref(struct, created)
    if isinstance(struct, dict):
        return {k: _resolve_refs(v, created) for k, v in struct.items()}
    if isinstance(struct, list):
        return [_resolve_refs(v, created) for v in struct]
    raise ValueError(f"load_model: bad model inputs/outputs entry {struct!r}")


def _functional_from_config(cls, config):
    """Rebuilds a functional model: each layer from its class and config, then each recorded call replayed
    once the tensors it needs exist (shared layers and any saved order work)."""
    created, pending = {}, []
    for entry in config["layers"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("config"), dict):
            raise ValueError(f"load_model: a layer entry must be a dict with a config, got {entry!r:.200}")
        if entry.get("class_name") == "InputLayer":
            c = entry["config"]
            shape = c.get("batch_shape")
            if not isinstance(shape, list) or not shape:
                raise ValueError(f"load_model: input layer '{c.get('name')}' needs a batch_shape, got {shape!r}")
            t = Input(batch_shape=shape, dtype=c.get("dtype"), name=c.get("name"))
            created[(t.input_layer.name, 0)] = [t]
            continue
        layer = deserialize_layer(entry)
        nodes = entry.get("inbound_nodes", [])
        if not isinstance(nodes, list):
            raise ValueError(f"load_model: layer '{layer.name}': inbound_nodes must be a list")
        pending += [(layer, i, node) for i, node in enumerate(nodes)]
    while pending:
        waiting = []
        for layer, i, node in pending:
            try:
                if not isinstance(node, dict):
                    raise ValueError(f"load_model: layer '{layer.name}': an inbound node must be a dict with 'args' "
                                     f"and 'kwargs'")
                args = _decode_call(node.get("args", []), created)
                kwargs = _decode_call(node.get("kwargs", {}), created)
            except _Missing:
                waiting.append((layer, i, node))
                continue
            out = layer(*args, **kwargs)
            created[(layer.name, i)] = flatten(out)
        if len(waiting) == len(pending):
            layer, i, node = waiting[0]
            raise ValueError(f"load_model: the graph cannot be rebuilt: layer '{layer.name}' (call {i}) needs tensors "
                             f"that no layer of the config makes")
        pending = waiting
    try:
        inputs = _resolve_refs(config["input_layers"], created)
        outputs = _resolve_refs(config["output_layers"], created)
    except _Missing as exc:
        raise ValueError(f"load_model: the model's inputs/outputs name a tensor no layer makes: {exc}") from None
    return cls(inputs=inputs, outputs=outputs, name=config.get("name"), trainable=config.get("trainable", True))


def _accepts_training(obj, method="forward"):
    fn = getattr(obj, method, None)
    try:
        return "training" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def _leaves(struct):
    if isinstance(struct, dict):
        return [v for v in struct.values()]
    if isinstance(struct, (list, tuple)):
        return list(struct)
    return [struct]


def _restructure(struct, outs):
    if isinstance(struct, KerasTensor):
        return outs[0]
    if isinstance(struct, dict):
        return {k: o for k, o in zip(struct, outs)}
    return list(outs)


def substitute_values(struct, values, raw=False):
    if isinstance(struct, KerasTensor):
        v = values[id(struct)]
        return v.x if raw else v.logical()
    if isinstance(struct, dict):
        return {k: substitute_values(v, values, raw) for k, v in struct.items()}
    if isinstance(struct, list):
        return [substitute_values(v, values, raw) for v in struct]
    if isinstance(struct, tuple):
        return tuple(substitute_values(v, values, raw) for v in struct)
    return struct


def flatten_values(y):
    if isinstance(y, Tensor):
        return [y]
    if isinstance(y, dict):
        return [t for v in y.values() for t in flatten_values(v)]
    if isinstance(y, (list, tuple)):
        return [t for v in y for t in flatten_values(v)]
    return [y]


def _as_tensor(x, owner):
    if isinstance(x, Tensor):
        return x
    if isinstance(x, KerasTensor):
        raise TypeError(f"Model '{owner}': symbolic and real inputs mixed")
    arr = np.asarray(x)
    if arr.dtype == np.float64 or arr.dtype.kind in "bu":      # Keras casts uint8 images (and bools) to float32
        arr = arr.astype(np.float32)
    return _wrap(arr)


def _head(x):
    if isinstance(x, dict):
        return {k: _head(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_head(v) for v in x]
    return x[:1]


def _per_output(value, n, names, what, resolve):
    if isinstance(value, dict):
        missing = [k for k in value if k not in names]
        if missing:
            raise ValueError(f"compile: {what} names outputs {missing} the model does not have (outputs: {names})")
        return [resolve(value[name]) for name in names]
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ValueError(f"compile: {what} has {len(value)} entries for a model with {n} outputs")
        return [resolve(v) for v in value]
    return [resolve(value) for _ in range(n)]


def _targets_per_output(y, n, names):
    if isinstance(y, dict):
        return [y[name] for name in names]
    if isinstance(y, (list, tuple)) and len(y) == n:
        return list(y)
    raise ValueError(f"fit: a model with {n} outputs needs a list (or dict by output name) of {n} targets")


def _type_name(layer):
    if isinstance(layer, Model) and type(layer).__name__ in ("Model", "Functional"):
        return "Functional"
    return type(layer).__name__


def _connection(t):
    """Keras's "Connected to" entry: layer[node index][tensor index]."""
    if t.node is None:
        return f"{t.input_layer.name}[0][0]"
    layer = t.node.layer
    return f"{layer.name}[{layer._inbound_nodes.index(t.node)}][{t.index}]"


def _shape_text(layer):
    shape = layer.output_shape
    if layer._inbound_nodes:       # the symbolic (channels_last) shapes of the graph
        outs = layer._inbound_nodes[0].outputs
        shape = tuple(outs[0].shape[1:]) if len(outs) == 1 else [tuple(t.shape[1:]) for t in outs]
    if isinstance(layer, InputLayer):
        shape = layer._input_shape
    if isinstance(shape, list):
        return str([(None,) + tuple(s) for s in shape])
    return str((None,) + tuple(shape)) if shape is not None else "?"
