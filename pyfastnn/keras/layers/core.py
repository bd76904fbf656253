"""Keras's core layers over pyfastnn.nn: Keras's names, arguments, initializers and weight layouts; the kernels
are pyfastnn's (no op implemented twice)."""
from __future__ import annotations

import numpy as np

from ... import nn
from ...nn import functional as F
from ...nn import init
from ...tensor import Tensor
from .base import Layer
from .base import activation_name as _activation_name
from .base import apply_activation as _apply_activation
from .base import check_positive as _check_positive
from .base import glorot as _glorot
from .base import setter as _setter

__all__ = ["Dense", "Conv2D", "MaxPooling2D", "AveragePooling2D", "Flatten", "Dropout", "Activation",
           "Embedding", "Attention", "MultiHeadAttention", "LayerNormalization", "BatchNormalization",
           "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalMaxPooling1D", "GlobalMaxPooling2D",
           "padding_mode", "same_pads", "out_length", "pad_same_2d", "pool_same", "conv_keras_padding"]


class Dense(Layer):
    """units outputs on the last axis; kernel (in, units) glorot_uniform, bias zeros."""

    def __init__(self, units, activation=None, use_bias=True, **kwargs):
        super().__init__(**kwargs)
        if isinstance(units, bool) or not isinstance(units, (int, np.integer)) or units <= 0:
            raise ValueError(f"Dense: 'units' must be a positive int, got {units!r}")
        self.units, self.use_bias = int(units), use_bias
        self.activation = _activation_name("Dense", activation)

    def build(self, input_shape):
        fan_in = input_shape[-1]
        self.linear = nn.Linear(fan_in, self.units, bias=self.use_bias)
        _glorot(self.linear.weight, fan_in, self.units)
        if self.use_bias:
            init.zeros_(self.linear.bias)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def call(self, x, training=False):
        if x.shape[-1] != self.linear.in_features:
            raise ValueError(f"Dense '{self.name}': expected {self.linear.in_features} input features on the last "
                             f"axis, got shape {x.shape[1:]} (batch dim left out)")
        fused = self.activation if self.activation in ("relu", "sigmoid", "tanh") else None
        y = self.linear(x, activation=fused)
        return y if fused else _apply_activation(y, self.activation)

    def logits(self, x):
        """The pre-activation output (losses on softmax/sigmoid outputs use it, as Keras does)."""
        return self.linear(x)

    def _keras_weights(self):
        w = self.linear.weight
        out = [(lambda: w._array.T, _setter(w, lambda a: a.T))]
        if self.use_bias:
            b = self.linear.bias
            out.append((lambda: b._array, _setter(b)))
        return out


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def padding_mode(owner, padding, allowed=("valid", "same")):
    """Keras's padding argument, case-insensitive ('SAME' as Keras's applications write it)."""
    mode = padding.lower() if isinstance(padding, str) else padding
    if mode not in allowed:
        raise ValueError(f"{owner}: padding must be one of {list(allowed)}, got {padding!r}")
    return mode


def same_pads(size, k, s, d=1):
    """Keras's (TensorFlow's) 'same' padding along one axis, (before, after): the output is ceil(size / s) long
    and an odd total puts the extra row/column after."""
    eff = (k - 1) * d + 1
    total = max((-(-size // s) - 1) * s + eff - size, 0)
    return total // 2, total - total // 2


def out_length(layer, size, k, s, d, padding):
    """Output length along one axis for Keras's 'valid', 'same' and 'causal' paddings (None stays None); a
    window larger than a 'valid' input is Keras's "Computed output size would be negative" error."""
    if size is None:
        return None
    if padding in ("same", "causal"):
        return -(-size // s)
    if size < (k - 1) * d + 1:
        raise ValueError(f"{type(layer).__name__} '{layer.name}': Computed output size would be negative: an input "
                         f"of size {size} is smaller than the window ({(k - 1) * d + 1}) with padding='valid'")
    return (size - (k - 1) * d - 1) // s + 1


def pad_same_2d(x, kernel, strides, dilation=(1, 1), value=0.0):
    """NCHW x padded explicitly for Keras's 'same' (for uneven padding, which the kernels' symmetric padding
    argument cannot express)."""
    (t, b), (l, r) = (same_pads(n, k, s, d) for n, k, s, d in zip(x.shape[2:], kernel, strides, dilation))
    return F.pad(x, (l, r, t, b), value=value) if t or b or l or r else x


def conv_keras_padding(conv, x, padding):
    """An nn.Conv2d (built with padding 0) applied to NCHW x with Keras's 'valid' or 'same' padding: symmetric
    padding goes to the kernel, an uneven one is padded explicitly."""
    conv.padding = (0, 0)
    if padding == "same":
        (t, b), (l, r) = (same_pads(n, k, s, d) for n, k, s, d in
                          zip(x.shape[2:], conv.kernel_size, conv.stride, conv.dilation))
        if (t, l) == (b, r):
            conv.padding = (t, l)
        else:
            x = F.pad(x, (l, r, t, b))
    return conv(x)


class Conv2D(Layer):
    """channels_last 2-D convolution; kernel (kh, kw, in, filters) glorot_uniform. padding='same' follows Keras
    (the odd extra row/column at the bottom/right)."""

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", data_format=None, dilation_rate=(1, 1),
                 groups=1, activation=None, use_bias=True, **kwargs):
        super().__init__(**kwargs)
        if data_format not in (None, "channels_last"):
            raise ValueError("Conv2D: only data_format='channels_last' is supported")
        padding = padding_mode("Conv2D", padding)
        _check_positive("Conv2D", filters=filters, kernel_size=kernel_size, strides=strides,
                        dilation_rate=dilation_rate, groups=groups)
        self.filters, self.kernel_size, self.strides = filters, _pair(kernel_size), _pair(strides)
        self.padding, self.use_bias, self.dilation_rate, self.groups = padding, use_bias, _pair(dilation_rate), groups
        self.activation = _activation_name("Conv2D", activation)

    def build(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"Conv2D '{self.name}': expected input (H, W, C) per sample, got {input_shape}")
        c = input_shape[-1]
        if c % self.groups or self.filters % self.groups:
            raise ValueError(f"Conv2D '{self.name}': the input channels ({c}) and filters ({self.filters}) must be "
                             f"divisible by groups={self.groups}")
        kh, kw = self.kernel_size
        self.conv = nn.Conv2d(c, self.filters, self.kernel_size, self.strides, 0, self.dilation_rate, self.groups,
                              bias=self.use_bias)
        _glorot(self.conv.weight, c // self.groups * kh * kw, self.filters * kh * kw)
        if self.use_bias:
            init.zeros_(self.conv.bias)

    def compute_output_shape(self, input_shape):
        h, w, _ = input_shape
        return tuple(out_length(self, n, k, s, d, self.padding) for n, k, s, d in
                     zip((h, w), self.kernel_size, self.strides, self.dilation_rate)) + (self.filters,)

    def call_nchw(self, x, training=False, skip_activation=False):
        if x.shape[1] != self.conv.in_channels:
            raise ValueError(f"Conv2D '{self.name}': expected {self.conv.in_channels} input channels, got "
                             f"{x.shape[1]}")
        y = conv_keras_padding(self.conv, x, self.padding)
        return y if skip_activation else _apply_activation(y, self.activation)

    def _keras_weights(self):
        w = self.conv.weight
        out = [(lambda: w._array.transpose(2, 3, 1, 0), _setter(w, lambda a: a.transpose(3, 2, 0, 1)))]
        if self.use_bias:
            b = self.conv.bias
            out.append((lambda: b._array, _setter(b)))
        return out


def pool_same(x, fn, kernel, strides, average):
    """Keras's 'same' pooling on NCHW x: the asymmetric pad, -inf for max; the average counts only real
    elements (TensorFlow's rule)."""
    if not average:
        return fn(pad_same_2d(x, kernel, strides, value=-np.inf), kernel, strides)
    xp = pad_same_2d(x, kernel, strides)
    y = fn(xp, kernel, strides)
    if xp is not x:
        ones = pad_same_2d(Tensor(np.ones((1, 1) + tuple(x.shape[2:]), x._array.dtype)), kernel, strides)
        y = y / fn(ones, kernel, strides)
    return y


class _Pool2D(Layer):
    _fn = None
    _average = False

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(**kwargs)
        if data_format not in (None, "channels_last"):
            raise ValueError(f"{type(self).__name__}: only data_format='channels_last' is supported")
        self.padding = padding_mode(type(self).__name__, padding)
        _check_positive(type(self).__name__, pool_size=pool_size, **({} if strides is None else {"strides": strides}))
        self.pool_size = _pair(pool_size)
        self.strides = _pair(strides) if strides is not None else self.pool_size

    def compute_output_shape(self, input_shape):
        h, w, c = input_shape
        return tuple(out_length(self, n, k, s, 1, self.padding) for n, k, s in
                     zip((h, w), self.pool_size, self.strides)) + (c,)

    def call_nchw(self, x, training=False):
        if self.padding == "same":
            return pool_same(x, type(self)._fn, self.pool_size, self.strides, self._average)
        return type(self)._fn(x, self.pool_size, self.strides)


class MaxPooling2D(_Pool2D):
    _fn = staticmethod(F.max_pool2d)


class AveragePooling2D(_Pool2D):
    _fn = staticmethod(F.avg_pool2d)
    _average = True


class _GlobalPool(Layer):
    """Global pooling over the spatial axes (2-D: H, W; 1-D: the steps), keepdims as Keras."""
    _rank = 2

    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(**kwargs)
        if data_format not in (None, "channels_last"):
            raise ValueError(f"{type(self).__name__}: only data_format='channels_last' is supported")
        self.keepdims = bool(keepdims)

    def compute_output_shape(self, input_shape):
        return (1,) * self._rank + (input_shape[-1],) if self.keepdims else (input_shape[-1],)

    def _reduce(self, x, dims):
        return x.mean(dim=dims, keepdim=self.keepdims) if self._average else x.amax(dim=dims, keepdim=self.keepdims)

    def call(self, x, training=False):
        if x.ndim != self._rank + 2:
            want = "(batch, H, W, C)" if self._rank == 2 else "(batch, steps, features)"
            raise ValueError(f"{type(self).__name__} '{self.name}': expected input {want}, got shape "
                             f"{tuple(x.shape)}")
        return self._reduce(x, tuple(range(1, self._rank + 1)))


class _GlobalPool2D(_GlobalPool):
    def call_nchw(self, x, training=False):
        return self._reduce(x, (2, 3))


class GlobalAveragePooling2D(_GlobalPool2D):
    _average = True


class GlobalMaxPooling2D(_GlobalPool2D):
    _average = False


class GlobalAveragePooling1D(_GlobalPool):
    _rank, _average = 1, True


class GlobalMaxPooling1D(_GlobalPool):
    _rank, _average = 1, False


class Flatten(Layer):
    """Flattens per sample in Keras's (H, W, C) order, so Dense kernels copied from Keras fit."""

    def compute_output_shape(self, input_shape):
        return (int(np.prod(input_shape)),)

    def call(self, x, training=False):
        return x.reshape(x.shape[0], -1)


class Dropout(Layer):
    layout_agnostic = True      # elementwise: NCHW or channels_last alike

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"Dropout: 'rate' must be in [0, 1), got {rate}")
        self.rate = float(rate)

    def call(self, x, training=False):
        return F.dropout(x, self.rate, bool(training))


class Activation(Layer):
    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = _activation_name("Activation", activation)
        # elementwise on either layout, except softmax-like activations (over the last, channels_last, axis)
        self.layout_agnostic = self.activation not in ("softmax", "log_softmax") and not callable(self.activation)

    def call(self, x, training=False):
        return _apply_activation(x, self.activation)


class Embedding(Layer):
    """Integer tokens (T,) per sample -> (T, output_dim); embeddings U(-0.05, 0.05) like Keras."""

    def __init__(self, input_dim, output_dim, mask_zero=False, input_length=None, **kwargs):
        super().__init__(**kwargs)
        _check_positive("Embedding", input_dim=input_dim, output_dim=output_dim)
        self.input_dim, self.output_dim = input_dim, output_dim

    def build(self, input_shape):
        self.embedding = nn.Embedding(self.input_dim, self.output_dim)
        init.uniform_(self.embedding.weight, -0.05, 0.05)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.output_dim,)

    def forward(self, x, training=None):
        idx = x._array if isinstance(x, Tensor) else np.asarray(x)
        if idx.dtype.kind == "f":
            idx = idx.astype(np.int64)
        self._ensure_built(idx.shape[1:])
        return self.embedding(idx)

    def _keras_weights(self):
        w = self.embedding.weight
        return [(lambda: w._array, _setter(w))]


class Attention(Layer):
    """Keras's dot-product attention, softmax(q k^T) v (no scaling unless use_scale).

    Given [query, value] or [query, value, key] it attends across them; given
    a single tensor (as inside a Sequential) it is self-attention."""

    def __init__(self, use_scale=False, score_mode="dot", dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        if score_mode != "dot":
            raise ValueError("Attention: only score_mode='dot' is supported")
        self.use_scale, self.dropout = use_scale, dropout
        if use_scale:
            self.scale = nn.Parameter(np.ones((), np.float32))

    def compute_output_shape(self, input_shape):
        return input_shape

    def forward(self, inputs, training=None, use_causal_mask=False):
        if isinstance(inputs, (list, tuple)):
            if len(inputs) not in (2, 3):
                raise ValueError(f"Attention '{self.name}': inputs must be [query, value] or [query, value, key] "
                                 f"(or one tensor, for self-attention), got a list of {len(inputs)}")
            q, v = F._req(inputs[0], "Attention", "query"), F._req(inputs[1], "Attention", "value")
            k = F._req(inputs[2], "Attention", "key") if len(inputs) > 2 else v
        else:
            q = k = v = F._req(inputs, "Attention", "inputs")
        self._ensure_built(q.shape[1:])
        if self.use_scale:
            q = q * self.scale
        return F.scaled_dot_product_attention(q, k, v, is_causal=use_causal_mask, scale=1.0)

    def _keras_weights(self):
        if not self.use_scale:
            return []
        return [(lambda: self.scale._array, _setter(self.scale))]


class MultiHeadAttention(Layer):
    """Keras's MultiHeadAttention(num_heads, key_dim): query/key/value/output
    projections with kernels (E, heads, key_dim) and (heads, key_dim, E)."""

    def __init__(self, num_heads, key_dim, value_dim=None, dropout=0.0, use_bias=True, output_shape=None,
                 **kwargs):
        super().__init__(**kwargs)
        if output_shape is not None:
            raise ValueError("MultiHeadAttention: output_shape is not supported")
        _check_positive("MultiHeadAttention", num_heads=num_heads, key_dim=key_dim,
                        **({} if value_dim is None else {"value_dim": value_dim}))
        self.num_heads, self.key_dim = num_heads, key_dim
        self.value_dim = value_dim or key_dim
        self.dropout, self.use_bias = dropout, use_bias

    def build(self, input_shape):
        e = input_shape[-1]
        h, kd, vd = self.num_heads, self.key_dim, self.value_dim
        self.query_dense = nn.Linear(e, h * kd, bias=self.use_bias)
        self.key_dense = nn.Linear(e, h * kd, bias=self.use_bias)
        self.value_dense = nn.Linear(e, h * vd, bias=self.use_bias)
        self.output_dense = nn.Linear(h * vd, e, bias=self.use_bias)
        for lin, fi, fo in ((self.query_dense, e, h * kd), (self.key_dense, e, h * kd),
                            (self.value_dense, e, h * vd), (self.output_dense, h * vd, e)):
            _glorot(lin.weight, fi, fo)     # Keras's EinsumDense fans for these kernels
            if self.use_bias:
                init.zeros_(lin.bias)

    def compute_output_shape(self, input_shape):
        return input_shape

    def forward(self, query, value=None, key=None, attention_mask=None, training=None, use_causal_mask=False,
                return_attention_scores=False):
        q_in = F._req(query, "MultiHeadAttention", "query")
        v_in = q_in if value is None else F._req(value, "MultiHeadAttention", "value")
        k_in = v_in if key is None else F._req(key, "MultiHeadAttention", "key")
        self._ensure_built(q_in.shape[1:])
        h, kd, vd = self.num_heads, self.key_dim, self.value_dim
        B, L, S = q_in.shape[0], q_in.shape[1], k_in.shape[1]
        q = self.query_dense(q_in).reshape(B, L, h, kd).permute(0, 2, 1, 3).contiguous()
        k = self.key_dense(k_in).reshape(B, S, h, kd).permute(0, 2, 1, 3).contiguous()
        v = self.value_dense(v_in).reshape(B, S, h, vd).permute(0, 2, 1, 3).contiguous()
        mask = None
        if attention_mask is not None:
            mask = np.asarray(attention_mask._array if isinstance(attention_mask, Tensor) else attention_mask)
            mask = mask.astype(bool).reshape(B, 1, L, S) if mask.ndim == 3 else mask.astype(bool)
        if vd != kd:
            raise ValueError("MultiHeadAttention: value_dim must equal key_dim for the flash kernel")
        ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=use_causal_mask,
                                             scale=1.0 / np.sqrt(kd))
        return self.output_dense(ctx.permute(0, 2, 1, 3).reshape(B, L, h * vd))

    def _keras_weights(self):
        e = self.query_dense.in_features
        h, kd, vd = self.num_heads, self.key_dim, self.value_dim
        out = []
        for lin, dim in ((self.query_dense, kd), (self.key_dense, kd), (self.value_dense, vd)):
            out.append((lambda lin=lin, dim=dim: lin.weight._array.T.reshape(e, h, dim),
                        _setter(lin.weight, lambda a, dim=dim: a.reshape(e, h * dim).T)))
            if self.use_bias:
                out.append((lambda lin=lin, dim=dim: lin.bias._array.reshape(h, dim),
                            _setter(lin.bias, lambda a: a.reshape(-1))))
        od = self.output_dense
        out.append((lambda: od.weight._array.T.reshape(h, vd, e), _setter(od.weight, lambda a: a.reshape(h * vd, e).T)))
        if self.use_bias:
            out.append((lambda: od.bias._array, _setter(od.bias)))
        return out


class LayerNormalization(Layer):
    def __init__(self, axis=-1, epsilon=1e-3, center=True, scale=True, **kwargs):
        super().__init__(**kwargs)
        if axis not in (-1,):
            raise ValueError("LayerNormalization: only axis=-1 is supported")
        self.epsilon, self.center, self.scale = epsilon, center, scale

    def build(self, input_shape):
        self.norm = nn.LayerNorm(input_shape[-1], eps=self.epsilon)
        if not self.scale:
            self.norm.weight = None
        if not self.center:
            self.norm.bias = None

    def call(self, x, training=False):
        return self.norm(x)

    def _keras_weights(self):
        out = []
        for p in (self.norm.weight, self.norm.bias):
            if p is not None:
                out.append((lambda p=p: p._array, _setter(p)))
        return out


class BatchNormalization(Layer):
    """Normalizes the last axis (channels_last); momentum as Keras counts it (0.99). A frozen layer
    (trainable=False) runs in inference mode, on its moving statistics, as Keras's does."""
    _keras_non_trainable = 2

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True, **kwargs):
        super().__init__(**kwargs)
        if isinstance(axis, (list, tuple)) and len(axis) == 1:
            axis = axis[0]
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)) or axis == 0:
            raise ValueError(f"BatchNormalization: only the channels (last) axis is supported, e.g. axis=-1 or "
                             f"axis=3 for images, got axis={axis!r}")
        self.axis = int(axis)
        self.momentum, self.epsilon, self.center, self.scale = momentum, epsilon, center, scale

    def build(self, input_shape):
        rank = len(input_shape) + 1
        if self.axis not in (-1, rank - 1):
            raise ValueError(f"BatchNormalization '{self.name}': axis={self.axis} is not the channels (last) axis "
                             f"of inputs of rank {rank}; only channels_last normalization is supported")
        self.bn = nn.BatchNorm1d(input_shape[-1], eps=self.epsilon, momentum=1.0 - self.momentum)

    def _bn(self, x4, training):
        bn = self.bn
        return F.batch_norm(x4, bn.running_mean, bn.running_var, bn.weight if self.scale else None,
                            bn.bias if self.center else None, bool(training) and self._trainable, bn.momentum,
                            bn.eps)

    def call_nchw(self, x, training=False):
        return self._bn(x, training)

    def call(self, x, training=False):
        if x.ndim == 2:
            return self._bn(x, training)
        moved = x.permute((0, x.ndim - 1) + tuple(range(1, x.ndim - 1)))    # channels to dim 1
        out = self._bn(moved, training)
        return out.permute((0,) + tuple(range(2, x.ndim)) + (1,))

    def _keras_weights(self):
        bn = self.bn
        out = []
        if self.scale:
            out.append((lambda: bn.weight._array, _setter(bn.weight)))
        if self.center:
            out.append((lambda: bn.bias._array, _setter(bn.bias)))
        out.append((lambda: bn.running_mean._array, _setter(bn.running_mean)))
        out.append((lambda: bn.running_var._array, _setter(bn.running_var)))
        return out
