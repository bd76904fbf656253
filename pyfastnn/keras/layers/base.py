"""The Keras Layer: built lazily from its first input's shape, called eagerly on data or symbolically on
KerasTensors (recording a graph node), with Keras's weights in Keras's layouts and trainable flag.

Shapes here follow Keras: they leave out the batch dimension, and images are channels_last (H, W, C). Image
layers may also define call_nchw, the same op on NCHW tensors (the kernels' layout): a model runs chains of
them in NCHW and transposes only where a channels_last layer needs the data.
"""
from __future__ import annotations

import base64
import builtins
import contextlib
import contextvars
import inspect
import json
import marshal
import re
import sys
import types

import functools

import numpy as np

from ... import nn
from ...autograd import no_grad
from ...nn import functional as F
from ...nn import init
from ...tensor import Tensor, _wrap
from ..graph import KerasTensor, Node, flatten, is_symbolic, set_op_layer, substitute

__all__ = ["Layer", "InputLayer", "Input", "Lambda", "auto_name", "check_positive", "glorot", "setter",
           "activation_name", "apply_activation", "shape_of", "serialize_layer", "deserialize_layer", "loading_scope",
           "layer_class", "register_layer_class"]

_name_counts: dict = {}
_SPECIAL_NAMES = {"conv2_d": "conv2d", "conv1_d": "conv1d", "max_pooling2_d": "max_pooling2d",
                  "max_pooling1_d": "max_pooling1d", "average_pooling2_d": "average_pooling2d",
                  "average_pooling1_d": "average_pooling1d", "global_average_pooling1_d": "global_average_pooling1d",
                  "global_average_pooling2_d": "global_average_pooling2d",
                  "global_max_pooling1_d": "global_max_pooling1d", "global_max_pooling2_d": "global_max_pooling2d",
                  "depthwise_conv2_d": "depthwise_conv2d", "separable_conv2_d": "separable_conv2d",
                  "zero_padding2_d": "zero_padding2d", "cropping2_d": "cropping2d", "up_sampling2_d": "up_sampling2d",
                  "simple_r_n_n": "simple_rnn", "g_r_u": "gru", "l_s_t_m": "lstm"}


def snake_name(cls_name):
    base = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", cls_name).lower()
    return _SPECIAL_NAMES.get(base, base)


def auto_name(cls_name):
    """Keras's automatic layer names: dense, dense_1, ... per class."""
    base = snake_name(cls_name)
    n = _name_counts.get(base, 0)
    _name_counts[base] = n + 1
    return base if n == 0 else f"{base}_{n}"


_ACTIVATIONS = {None: None, "linear": None, "relu": "relu", "sigmoid": "sigmoid", "tanh": "tanh", "gelu": "gelu",
                "softmax": "softmax", "silu": "silu", "swish": "silu", "elu": "elu", "selu": "selu",
                "softplus": "softplus", "softsign": "softsign", "relu6": "relu6", "leaky_relu": "leaky_relu",
                "hard_sigmoid": "hard_sigmoid", "exponential": "exponential", "log_softmax": "log_softmax",
                "mish": "mish", "hard_swish": "hardswish"}


def activation_name(owner, activation):
    if callable(activation) and not isinstance(activation, str):
        return activation
    if activation not in _ACTIVATIONS:
        raise ValueError(f"{owner}: unknown activation {activation!r}; expected one of "
                         f"{sorted(k for k in _ACTIVATIONS if k)}")
    return _ACTIVATIONS[activation]


def apply_activation(x, act):
    if act is None:
        return x
    if callable(act):
        return act(x)
    if act == "softmax":
        return F.softmax(x, -1)
    if act == "log_softmax":
        return F.log_softmax(x, -1)
    if act == "hard_sigmoid":      # Keras 3: relu6(x + 3) / 6
        return F.hardsigmoid(x)
    if act == "exponential":
        return x.exp()
    if act == "leaky_relu":        # keras.activations.leaky_relu's slope (torch's is 0.01)
        return F.leaky_relu(x, 0.2)
    return getattr(F, act)(x)


def check_positive(owner, **values):
    """Each value a positive int (or a tuple/list of them, for sizes and strides); else a ValueError naming it."""
    for name, v in values.items():
        items = tuple(v) if isinstance(v, (tuple, list)) else (v,)
        if not items or any(isinstance(e, bool) or not isinstance(e, (int, np.integer)) or e <= 0 for e in items):
            raise ValueError(f"{owner}: argument '{name}' must be a positive int (or a tuple of them), got {v!r}")


def glorot(w, fan_in, fan_out):
    bound = np.sqrt(6.0 / (fan_in + fan_out))
    init.uniform_(w, -bound, bound)


def setter(param, transform=lambda w: w):
    def put(w):
        param._array[...] = transform(np.asarray(w)).astype(param._array.dtype)
        param._counter[0] += 1
    return put


def shape_of(x):
    """The shape without the batch dim of a tensor, or a list of them for a list of tensors."""
    if isinstance(x, (list, tuple)):
        return [shape_of(v) for v in x]
    if isinstance(x, dict):
        return {k: shape_of(v) for k, v in x.items()}
    return tuple(x.shape[1:])


def _as_input(x, owner):
    """Data for a layer call: Tensors pass; arrays (uint8 images included: Keras casts them) become float32
    Tensors unless they hold integer tokens for a layer that wants them."""
    if isinstance(x, Tensor) or x is None:
        return x
    if isinstance(x, (list, tuple)):
        return type(x)(_as_input(v, owner) for v in x)
    if isinstance(x, dict):
        return {k: _as_input(v, owner) for k, v in x.items()}
    arr = np.asarray(x)
    if arr.dtype.kind in "fbu" or arr.dtype == np.float64:
        arr = arr.astype(np.float32)
    return _wrap(arr)


# ------------------------------------------------------------------ configs
# A layer's config is its constructor's arguments (Keras's get_config), recorded by Layer.__new__ from the
# call that makes it; from_config calls the class with them. Configs hold JSON values only: nested layers become
# {"class_name", "config"} dicts and Python functions their marshalled bytecode, which a safe load refuses.

_LAYER_CLASSES: dict = {}          # names that are not a class's own (Functional, Operation)
_NOT_CONFIG = ("input_shape", "batch_input_shape", "input_dim")     # Layer's own: the model keeps the shape
_LOADING = contextvars.ContextVar("pyfastnn_keras_loading", default=({}, True))


def register_layer_class(cls, name=None):
    """Makes cls known to deserialize_layer under name (its class name by default)."""
    _LAYER_CLASSES[name or cls.__name__] = cls
    return cls


@contextlib.contextmanager
def loading_scope(custom_objects=None, safe_mode=True):
    """While a model is rebuilt from a config: the user's classes and functions by name, and whether code
    from the file (marshalled bytecode) may be loaded."""
    if custom_objects is not None and not isinstance(custom_objects, dict):
        raise TypeError(f"load_model: argument 'custom_objects' must be a dict of names to classes/functions, got "
                        f"{type(custom_objects).__name__}")
    token = _LOADING.set((dict(custom_objects or {}), bool(safe_mode)))
    try:
        yield
    finally:
        _LOADING.reset(token)


def _own_layer_class(name):
    """pyfastnn.keras's layer class of that name (public classes of its modules only)."""
    if name in _LAYER_CLASSES:
        return _LAYER_CLASSES[name]
    stack = [Layer]
    while stack:
        cls = stack.pop()
        if cls.__name__ == name and cls.__module__.startswith("pyfastnn.keras.") and not name.startswith("_"):
            return cls
        stack.extend(cls.__subclasses__())
    return None


def layer_class(name, where):
    """The layer class a config names: the user's custom_objects first, then pyfastnn.keras's own."""
    custom, _ = _LOADING.get()
    cls = custom[name] if name in custom else _own_layer_class(name)
    if cls is None:
        raise ValueError(f"{where}: unknown layer class '{name}'. If it is your own layer, pass it to load_model "
                         f"in custom_objects={{'{name}': {name}}}")
    return cls


def serialize_layer(layer):
    """{"module", "class_name", "config", "name"} of a layer, as Keras writes it; a TypeError naming the layer when
    its config is not plain JSON values."""
    cls = type(layer)
    name = "Functional" if cls.__name__ in ("Model", "Functional") and getattr(layer, "_graph", None) is not None \
        else cls.__dict__.get("registered_name", cls.__name__)
    config = layer.get_config()
    try:
        json.dumps(config, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"save: layer '{layer.name}' ({cls.__name__}) has a config that cannot be saved as JSON "
                        f"({exc}); give the layer a get_config() that returns plain values") from None
    return {"module": cls.__module__, "class_name": name, "config": config, "name": layer.name}


def deserialize_layer(data, where="load_model"):
    if not isinstance(data, dict) or not isinstance(data.get("class_name"), str) or \
            not isinstance(data.get("config"), dict):
        raise ValueError(f"{where}: a layer entry must be a dict with 'class_name' and 'config', got {data!r:.200}")
    cls = layer_class(data["class_name"], where)
    try:
        return cls.from_config(data["config"])
    except (TypeError, ValueError, KeyError) as exc:
        layer = data["config"].get("name", "?")
        raise (TypeError if isinstance(exc, TypeError) else ValueError)(
            f"{where}: cannot rebuild layer '{layer}' ({data['class_name']}) from its config: {exc}") from None


def _serialize_function(fn):
    """A Python function as JSON: its name and module, and its marshalled bytecode (Keras's func_dump): only
    an unsafe load runs the bytecode; a safe one finds the function by name in custom_objects."""
    def plain(v):
        return v if v is None or isinstance(v, (bool, int, float, str)) else repr(v)
    code = base64.b64encode(marshal.dumps(fn.__code__)).decode("ascii")
    closure = [to_config_value(c.cell_contents) for c in (fn.__closure__ or ())]
    defaults = [to_config_value(d) for d in (fn.__defaults__ or ())]
    kind = "__lambda__" if fn.__name__ == "<lambda>" else "__function__"
    return {"class_name": kind, "config": {"name": fn.__name__, "module": plain(getattr(fn, "__module__", None)),
                                           "code": code, "defaults": defaults, "closure": closure,
                                           "python": list(sys.version_info[:2])}}


def _deserialize_function(cfg):
    custom, safe = _LOADING.get()
    name = cfg.get("name")
    if name in custom:
        return custom[name]
    if safe:
        what = "a `lambda` object" if name == "<lambda>" else f"the Python function '{name}' (module " \
            f"{cfg.get('module')!r})"
        raise ValueError(f"Requested the deserialization of {what}, saved as bytecode. This carries a potential risk "
                         f"of arbitrary code execution and thus it is disallowed by default. If you trust the source "
                         f"of the saved model, you can pass `safe_mode=False` to the loading function in order to "
                         f"allow `lambda` loading" + ("" if name == "<lambda>" else
                                                      f", or pass it in custom_objects={{'{name}': {name}}}"))
    if list(cfg.get("python", [])) != list(sys.version_info[:2]):
        raise ValueError(f"load_model: function '{name}' was saved as Python {cfg.get('python')} bytecode, which "
                         f"this Python {sys.version_info[0]}.{sys.version_info[1]} cannot run; pass it in "
                         f"custom_objects instead")
    code = marshal.loads(base64.b64decode(cfg["code"]))
    module = sys.modules.get(cfg.get("module") or "")
    scope = dict(vars(module)) if module is not None else {"__builtins__": builtins}
    closure = tuple(types.CellType(from_config_value(v)) for v in cfg.get("closure", [])) or None
    defaults = tuple(from_config_value(v) for v in cfg.get("defaults", [])) or None
    return types.FunctionType(code, scope, code.co_name, defaults, closure)


def to_config_value(v):
    """A config value as JSON: tuples as lists, numpy scalars and arrays as Python values, layers as their
    serialized config, functions as _serialize_function does."""
    if isinstance(v, Layer):
        return serialize_layer(v)
    if isinstance(v, (list, tuple)):
        return [to_config_value(e) for e in v]
    if isinstance(v, dict):
        return {str(k): to_config_value(e) for k, e in v.items()}
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return {"class_name": "__numpy__", "config": {"value": v.tolist(), "dtype": str(v.dtype)}}
    if isinstance(v, types.FunctionType):
        return _serialize_function(v)
    return v


def from_config_value(v):
    if isinstance(v, list):
        return [from_config_value(e) for e in v]
    if isinstance(v, dict):
        kind = v.get("class_name")
        if kind in ("__lambda__", "__function__") and isinstance(v.get("config"), dict):
            return _deserialize_function(v["config"])
        if kind == "__numpy__" and isinstance(v.get("config"), dict):
            dtype = np.dtype(str(v["config"].get("dtype")))
            if dtype.kind not in "biuf":
                raise ValueError(f"load_model: an array in a config must hold numbers, got dtype {dtype}")
            return np.asarray(v["config"]["value"], dtype=dtype)
        if isinstance(kind, str) and isinstance(v.get("config"), dict) and "module" in v:
            return deserialize_layer(v)
        return {k: from_config_value(e) for k, e in v.items()}
    return v


_SIGNATURES: dict = {}


def constructor_args(cls, args, kwargs):
    """The arguments of a cls(...) call by the names of cls.__init__'s parameters, defaults included (the
    base's input_shape & co. left out): the layer's config."""
    sig = _SIGNATURES.get(cls)
    if sig is None:
        sig = _SIGNATURES[cls] = inspect.signature(cls.__init__)
    try:
        bound = sig.bind(None, *args, **kwargs)
    except TypeError:
        return {}                        # the constructor raises its own, clearer, TypeError
    bound.apply_defaults()
    cfg = {}
    for name, value in list(bound.arguments.items())[1:]:
        kind = sig.parameters[name].kind
        if kind is inspect.Parameter.VAR_KEYWORD:
            cfg.update((k, v) for k, v in value.items() if k not in _NOT_CONFIG)
        elif kind is not inspect.Parameter.VAR_POSITIONAL:
            cfg[name] = value
    return cfg


class Layer(nn.Module):
    """A Keras layer: built lazily from the first input shape (batch dim left out); calling it on KerasTensors
    records a graph node, on data runs it."""
    _expects_int_inputs = False

    def __new__(cls, *args, **kwargs):
        layer = super().__new__(cls)
        object.__setattr__(layer, "_init_args", constructor_args(cls, args, kwargs))     # for get_config
        return layer

    def __init__(self, name=None, input_shape=None, trainable=True, dtype=None, batch_input_shape=None, **kwargs):
        super().__init__()
        input_dim = kwargs.pop("input_dim", None)
        kwargs.pop("autocast", None)
        if input_shape is None and input_dim is not None:
            input_shape = (input_dim,)
        if input_shape is None and batch_input_shape is not None:
            input_shape = tuple(batch_input_shape)[1:]
        if kwargs:
            raise TypeError(f"{type(self).__name__}: unexpected keyword argument(s) {sorted(kwargs)}")
        if name is not None and not isinstance(name, str):
            raise TypeError(f"{type(self).__name__}: argument 'name' must be a string, got {type(name).__name__}")
        self.name = name or auto_name(type(self).__name__)
        self.built = False
        self._trainable = bool(trainable)
        self._input_shape = tuple(input_shape) if input_shape is not None else None
        self.output_shape = None
        self._inbound_nodes = []

    # ------------------------------------------------------------ trainable
    @property
    def trainable(self):
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        """Freezing stops updates of this layer (and every layer inside it) and puts BatchNormalization in
        inference mode, like Keras; compile() again for fit to see the change."""
        value = bool(value)
        for m in self.modules():
            if isinstance(m, Layer):
                object.__setattr__(m, "_trainable", value)
        for p in self.parameters():
            p.requires_grad_(value)

    # ---------------------------------------------------------------- build
    def __init_subclass__(cls, **kwargs):
        """A build() a subclass defines marks the layer built when it returns, however it is called (Keras
        wraps build the same way, so `layer.build((None, 3))` then `layer.get_weights()` works)."""
        super().__init_subclass__(**kwargs)
        build = cls.__dict__.get("build")
        if build is None or getattr(build, "_marks_built", False):
            return

        @functools.wraps(build)
        def build_and_mark(self, input_shape):
            build(self, input_shape)
            self.built = True
            if not self._trainable:
                for p in self.parameters():
                    p.requires_grad_(False)
        build_and_mark._marks_built = True
        cls.build = build_and_mark

    def build(self, input_shape):
        self.built = True

    def compute_output_shape(self, input_shape):
        return input_shape

    def _ensure_built(self, input_shape):
        if not self.built:
            self.build(input_shape if isinstance(input_shape, list) else tuple(input_shape))
            self.built = True
            if not self._trainable:
                for p in self.parameters():
                    p.requires_grad_(False)
        try:
            self.output_shape = self.compute_output_shape(input_shape if isinstance(input_shape, list)
                                                          else tuple(input_shape))
        except NotImplementedError:        # a Lambda without output_shape: a symbolic call finds it by a dry run
            self.output_shape = None
        return self.output_shape

    # ----------------------------------------------------------------- call
    def call(self, x, training=False):
        if hasattr(self, "call_nchw"):      # an image layer called on its own: (N, H, W, C) in and out
            if x.ndim != 4:
                raise ValueError(f"{type(self).__name__} '{self.name}': expected input (batch, H, W, C), got shape "
                                 f"{tuple(x.shape)}")
            y = self.call_nchw(x.permute(0, 3, 1, 2).contiguous(), training)
            return y.permute(0, 2, 3, 1) if y.ndim == 4 else y
        raise NotImplementedError(f"{type(self).__name__}: call() is not implemented")

    def forward(self, inputs, training=None, **kwargs):
        x = _as_input(inputs, self.name) if not self._expects_int_inputs else inputs
        if x is None:
            raise TypeError(f"{type(self).__name__} '{self.name}': argument 'input' must be a tensor, got None")
        self._ensure_built(shape_of(x))
        return self.call(x, training=self.training if training is None else training, **kwargs)

    def __call__(self, *args, **kwargs):
        if is_symbolic((args, kwargs)):
            return self._symbolic_call(args, kwargs)
        return super().__call__(*args, **kwargs)

    def _symbolic_call(self, args, kwargs):
        """Records a node: builds the layer from the inputs' shapes and makes KerasTensors for its outputs."""
        if not args:
            raise TypeError(f"{type(self).__name__} '{self.name}': call it with its input(s) first")
        first = args[0]
        shapes = _symbolic_shapes(first)
        self._ensure_built(shapes)
        out_shapes = self._symbolic_output_shapes(args, kwargs, shapes)
        node = Node(self, args, kwargs, None)
        counter = [0]

        def make(shape_struct):
            if isinstance(shape_struct, list):
                return [make(s) for s in shape_struct]
            t = KerasTensor((None,) + tuple(shape_struct), self._output_dtype(), f"{self.name}/out{counter[0]}",
                            node, counter[0])
            counter[0] += 1
            return t
        outputs = make(out_shapes)
        node.outputs_struct = outputs
        node.outputs = flatten(outputs)
        self._inbound_nodes.append(node)
        return outputs

    def _output_dtype(self):
        return "float32"

    def _symbolic_output_shapes(self, args, kwargs, shapes):
        """Output shape(s) without the batch dim: compute_output_shape when the class defines one, else a dry
        run on zeros (twice, with different sizes, so the dims that follow the batch or an unknown size come
        out as None)."""
        if type(self).compute_output_shape is not Layer.compute_output_shape or not _has_unknown(shapes):
            try:
                return self.compute_output_shape(shapes)
            except NotImplementedError:
                pass
        return _dry_run_shapes(self, args, kwargs)

    # ------------------------------------------------------------ weights
    def _keras_weights(self):
        """(getter, setter) pairs, one per Keras weight, in Keras's order (trainable ones first)."""
        return []

    @property
    def weights(self):
        return [get() for get, _ in self._keras_weights()] if self.built else []

    _keras_non_trainable = 0      # how many of the last Keras weights are never trained (BN's moving stats)

    @property
    def trainable_weights(self):
        ws = self.weights
        return ws[:len(ws) - self._keras_non_trainable] if self._trainable else []

    @property
    def non_trainable_weights(self):
        ws = self.weights
        return ws[len(ws) - self._keras_non_trainable:] if self._trainable else ws

    def get_weights(self):
        return [np.array(w, copy=True) for w in self.weights]

    def set_weights(self, weights):
        pairs = self._keras_weights() if self.built else []
        weights = list(weights)
        if len(weights) != len(pairs):
            unbuilt = "" if self.built else " (the layer is not built yet: call it on data or give input_shape)"
            raise ValueError(f"{type(self).__name__} '{self.name}': set_weights expects {len(pairs)} arrays "
                             f"(shapes {[tuple(g().shape) for g, _ in pairs]}), got {len(weights)}{unbuilt}")
        checked = []
        for i, ((get, put), w) in enumerate(zip(pairs, weights)):
            w = np.asarray(w)
            want = tuple(get().shape)
            if tuple(w.shape) != want:
                raise ValueError(f"{type(self).__name__} '{self.name}': set_weights: weight {i} must have shape {want}, "
                                 f"got {tuple(w.shape)}")
            if w.dtype.kind not in "biuf":
                raise TypeError(f"{type(self).__name__} '{self.name}': set_weights: weight {i} must hold numbers, got dtype "
                                f"{w.dtype}")
            checked.append((put, w))
        with no_grad():
            for put, w in checked:       # every weight checked before any is written
                put(w)

    def count_params(self):
        if not self.built:
            raise ValueError(f"You tried to call `count_params` on layer '{self.name}', but the layer isn't built. "
                             f"You can build it manually via: `layer.build(batch_input_shape)`.")
        return int(sum(np.prod(w.shape) for w in self.weights))

    @property
    def input(self):
        if not self._inbound_nodes:
            raise AttributeError(f"Layer '{self.name}' has never been called and thus has no defined input.")
        node = self._inbound_nodes[0]
        return node.inputs[0] if len(node.inputs) == 1 else node.inputs

    @property
    def output(self):
        if not self._inbound_nodes:
            raise AttributeError(f"Layer '{self.name}' has never been called and thus has no defined output.")
        outs = self._inbound_nodes[0].outputs
        return outs[0] if len(outs) == 1 else outs

    def get_config(self):
        """The constructor's arguments (Keras's config), as JSON values."""
        cfg = dict(self.__dict__.get("_init_args", {}))
        if cfg.get("dtype", 0) is None:
            del cfg["dtype"]
        cfg.update(name=self.name, trainable=self._trainable)
        return to_config_value(cfg)

    @classmethod
    def from_config(cls, config):
        if not isinstance(config, dict):
            raise TypeError(f"{cls.__name__}.from_config: expected a dict, got {type(config).__name__}")
        return cls(**{k: from_config_value(v) for k, v in config.items()})

    def extra_repr(self):
        return f"name={self.name!r}"


def _symbolic_shapes(struct):
    if isinstance(struct, KerasTensor):
        return tuple(struct.shape[1:])
    if isinstance(struct, (list, tuple)):
        return [_symbolic_shapes(v) for v in struct]
    if isinstance(struct, dict):
        return [_symbolic_shapes(v) for v in struct.values()]
    return None


def _has_unknown(shapes):
    if isinstance(shapes, list):
        return any(_has_unknown(s) for s in shapes)
    return shapes is not None and any(s is None for s in shapes)


def _dry_run_shapes(layer, args, kwargs):
    def run(batch, unknown):
        values = {}
        for t in flatten((args, kwargs)):
            shape = tuple(batch if i == 0 else (unknown if s is None else s) for i, s in enumerate(t.shape))
            dt = np.int64 if t.dtype.startswith("int") else np.float32
            values[id(t)] = _wrap(np.zeros(shape, dt) if dt == np.int64 else np.full(shape, 0.5, dt))
        with no_grad():
            was = layer.training
            layer.train(False)
            try:
                out = layer.forward(*substitute(args, values), **substitute(kwargs, values))
            finally:
                layer.train(was)
        return out

    a, b = run(2, 3), run(3, 5)

    def compare(x, y):
        if isinstance(x, (list, tuple)):
            return [compare(p, q) for p, q in zip(x, y)]
        return tuple(None if p != q else p for p, q in zip(x.shape[1:], y.shape[1:]))
    return compare(a, b)


class InputLayer(Layer):
    """The layer behind Input(): it passes data through; its shape fixes the model's input shape."""

    def __init__(self, shape=None, batch_size=None, dtype=None, name=None, input_shape=None, sparse=None,
                 batch_shape=None, input_tensor=None, optional=False, ragged=None):
        super().__init__(name=name or auto_name("InputLayer"))
        if batch_shape is not None:
            shape = tuple(batch_shape)[1:]
        shape = shape if shape is not None else input_shape
        if shape is None:
            raise ValueError("Input: argument 'shape' is required, e.g. Input(shape=(28, 28, 1))")
        if isinstance(shape, (int, np.integer)) and not isinstance(shape, bool):
            shape = (int(shape),)
        shape = tuple(shape)
        for s in shape:
            if s is not None and (isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 0):
                raise ValueError(f"Input: argument 'shape' must hold non-negative ints or None, got {shape!r}")
        self._input_shape = shape
        self.batch_size = batch_size
        self.input_dtype = "float32" if dtype is None else str(np.dtype(getattr(dtype, "dtype", dtype)))
        self.built = True
        self.output_shape = shape

    def call(self, x, training=False):
        return x

    def get_config(self):
        return {"name": self.name, "batch_shape": (self.batch_size,) + tuple(self._input_shape),
                "dtype": self.input_dtype}


def Input(shape=None, batch_size=None, dtype=None, name=None, sparse=None, batch_shape=None, tensor=None,
          optional=False, ragged=None):
    """A symbolic input (a KerasTensor of the given shape, batch dim left out) for the functional API; inside a
    Sequential it fixes the input shape."""
    layer = InputLayer(shape=shape, batch_size=batch_size, dtype=dtype, name=name, batch_shape=batch_shape)
    t = KerasTensor((batch_size,) + tuple(layer._input_shape), layer.input_dtype, layer.name)
    t.input_layer = layer
    layer._tensor = t
    return t


class Lambda(Layer):
    """Wraps a function of tensors as a layer. It lives in memory: a model holding one saves its code only as
    marshalled bytecode, which loading refuses unless the caller passes safe_mode=False (as Keras)."""

    def __init__(self, function, output_shape=None, mask=None, arguments=None, **kwargs):
        super().__init__(**kwargs)
        if not callable(function):
            raise TypeError(f"Lambda: argument 'function' must be callable, got {type(function).__name__}")
        self.function, self.arguments = function, dict(arguments or {})
        self._lambda_output_shape = output_shape

    def compute_output_shape(self, input_shape):
        if self._lambda_output_shape is None:
            raise NotImplementedError
        if callable(self._lambda_output_shape):
            return tuple(self._lambda_output_shape(input_shape))
        return tuple(self._lambda_output_shape)

    def _symbolic_output_shapes(self, args, kwargs, shapes):
        if self._lambda_output_shape is not None:
            return self.compute_output_shape(shapes)
        return _dry_run_shapes(self, args, kwargs)

    def forward(self, inputs, training=None, **kwargs):
        x = _as_input(inputs, self.name)
        self.built = True
        return self.function(x, **self.arguments)


class _Probe:
    """Stands for an operand while _OpLayer reads which operator its function applies, and in what order."""

    def __init__(self, tag):
        self.tag = tag


def _probe_op(sym):
    def op(self, *others):
        return (sym, self.tag) + tuple(o.tag if isinstance(o, _Probe) else None for o in others)
    return op


for _sym in ("add", "sub", "mul", "truediv", "pow", "matmul", "neg"):
    setattr(_Probe, f"__{_sym}__", _probe_op(_sym))
_Probe.__getitem__ = lambda self, idx: ("getitem", self.tag, idx)
_OPERATORS = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
              "truediv": lambda a, b: a / b, "pow": lambda a, b: a ** b, "matmul": lambda a, b: a @ b}


def _index_to_json(idx):
    if isinstance(idx, tuple):
        return {"tuple": [_index_to_json(i) for i in idx]}
    if isinstance(idx, slice):
        return {"slice": [idx.start, idx.stop, idx.step]}
    if idx is Ellipsis:
        return {"ellipsis": True}
    if idx is None or isinstance(idx, (bool, int, np.integer)):
        return None if idx is None else int(idx)
    raise TypeError(f"save: a KerasTensor index {idx!r} cannot be saved (ints, slices, ... and None can)")


def _index_from_json(v):
    if isinstance(v, dict) and "tuple" in v:
        return tuple(_index_from_json(i) for i in v["tuple"])
    if isinstance(v, dict) and "slice" in v:
        return slice(*v["slice"])
    if isinstance(v, dict) and "ellipsis" in v:
        return Ellipsis
    if v is None or (isinstance(v, int) and not isinstance(v, bool)):
        return v
    raise ValueError(f"load_model: bad tensor index {v!r} in an operation's config")


class _OpLayer(Layer):
    """The node that arithmetic on KerasTensors records (x + y, x[..., :2], -x, ...). Its config names the
    operator and the operands' order (read by running the function on probes), so a load needs no code."""
    registered_name = "Operation"

    def __init__(self, fn, op_name, name=None):
        super().__init__(name=name or auto_name(op_name))
        self.fn, self.op_name = fn, op_name
        self.built = True

    def get_config(self):
        try:
            probe = self.fn(_Probe(0), _Probe(1)) if self.fn.__code__.co_argcount == 2 else self.fn(_Probe(0))
        except Exception:          # noqa: BLE001 - any surprise means: not a plain operator
            probe = None
        if not isinstance(probe, tuple):
            raise TypeError(f"save: operation '{self.name}' is not a plain operator on KerasTensors and cannot be "
                            f"saved; use a Lambda layer")
        cfg = {"name": self.name, "op_name": self.op_name, "operator": probe[0]}
        if probe[0] == "getitem":
            cfg["index"] = _index_to_json(probe[2])
        elif probe[0] != "neg":
            cfg["reversed"] = probe[1] == 1
        return cfg

    @classmethod
    def from_config(cls, config):
        op = config.get("operator")
        if op == "neg":
            fn = lambda a: -a                      # noqa: E731
        elif op == "getitem":
            idx = _index_from_json(config.get("index"))
            fn = lambda a: a[idx]                  # noqa: E731
        elif op in _OPERATORS:
            base = _OPERATORS[op]
            fn = (lambda a, b: base(b, a)) if config.get("reversed") else base
        else:
            raise ValueError(f"load_model: unknown operation {op!r} in layer '{config.get('name')}'")
        return cls(fn, config.get("op_name", op), name=config.get("name"))

    def _symbolic_output_shapes(self, args, kwargs, shapes):
        return _dry_run_shapes(self, args, kwargs)

    def forward(self, *inputs, training=None):
        return self.fn(*(_as_input(v, self.name) if isinstance(v, (Tensor, np.ndarray)) else v for v in inputs))

    def _symbolic_call(self, args, kwargs):
        self.built = True
        return super()._symbolic_call(args, kwargs)


register_layer_class(_OpLayer, "Operation")
set_op_layer(lambda fn, name: _OpLayer(fn, name))
