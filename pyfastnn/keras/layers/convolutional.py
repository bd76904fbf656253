"""Keras's other convolution and pooling layers: Conv1D (valid/same/causal), DepthwiseConv2D, SeparableConv2D,
MaxPooling1D, AveragePooling1D. The kernels are nn.Conv1d/nn.Conv2d (groups for the depthwise part) and the
2-D pools; 'same' padding is Keras's (the odd extra element after)."""
from __future__ import annotations

from ... import nn
from ...nn import functional as F
from ...nn import init
from .base import Layer
from .base import activation_name as _activation_name
from .base import apply_activation as _apply_activation
from .base import check_positive as _check_positive
from .base import glorot as _glorot
from .base import setter as _setter
from .core import _pair, conv_keras_padding, out_length, padding_mode, pool_same, same_pads

__all__ = ["Conv1D", "DepthwiseConv2D", "SeparableConv2D", "MaxPooling1D", "AveragePooling1D"]


def _single(owner, name, v):
    if isinstance(v, (tuple, list)):
        if len(v) != 1:
            raise ValueError(f"{owner}: argument '{name}' must be an int or a tuple of 1 int, got {v!r}")
        v = v[0]
    _check_positive(owner, **{name: v})
    return int(v)


def _channels_last(owner, data_format):
    if data_format not in (None, "channels_last"):
        raise ValueError(f"{owner}: only data_format='channels_last' is supported, got {data_format!r}")


class Conv1D(Layer):
    """Convolution over the steps of (steps, channels) inputs; kernel (k, in/groups, filters) glorot_uniform.
    padding 'causal' pads (k - 1) * dilation steps in front, so step t sees only steps <= t."""

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None, dilation_rate=1, groups=1,
                 activation=None, use_bias=True, **kwargs):
        super().__init__(**kwargs)
        _channels_last("Conv1D", data_format)
        self.padding = padding_mode("Conv1D", padding, ("valid", "same", "causal"))
        _check_positive("Conv1D", filters=filters, groups=groups)
        self.filters, self.groups, self.use_bias = int(filters), int(groups), bool(use_bias)
        self.kernel_size = _single("Conv1D", "kernel_size", kernel_size)
        self.strides = _single("Conv1D", "strides", strides)
        self.dilation_rate = _single("Conv1D", "dilation_rate", dilation_rate)
        if self.padding == "causal" and self.strides != 1:
            raise ValueError("Conv1D: causal padding is only supported with strides=1 (Keras's rule too)")
        self.activation = _activation_name("Conv1D", activation)

    def build(self, input_shape):
        if len(input_shape) != 2 or input_shape[-1] is None:
            raise ValueError(f"Conv1D '{self.name}': expected input (steps, channels) per sample, got "
                             f"{tuple(input_shape)}")
        c, k = int(input_shape[-1]), self.kernel_size
        if c % self.groups or self.filters % self.groups:
            raise ValueError(f"Conv1D '{self.name}': the input channels ({c}) and filters ({self.filters}) must be "
                             f"divisible by groups={self.groups}")
        self.conv = nn.Conv1d(c, self.filters, k, self.strides, 0, self.dilation_rate, self.groups, bias=self.use_bias)
        _glorot(self.conv.weight, c // self.groups * k, self.filters * k)
        if self.use_bias:
            init.zeros_(self.conv.bias)

    def compute_output_shape(self, input_shape):
        return (out_length(self, input_shape[0], self.kernel_size, self.strides, self.dilation_rate, self.padding),
                self.filters)

    def call(self, x, training=False):
        if x.ndim != 3 or x.shape[-1] != self.conv.in_channels:
            raise ValueError(f"Conv1D '{self.name}': expected input (batch, steps, {self.conv.in_channels}), got "
                             f"shape {tuple(x.shape)}")
        xt = x.permute(0, 2, 1)
        if self.padding == "causal":
            lo, hi = (self.kernel_size - 1) * self.dilation_rate, 0
        elif self.padding == "same":
            lo, hi = same_pads(x.shape[1], self.kernel_size, self.strides, self.dilation_rate)
        else:
            lo = hi = 0
        if lo or hi:
            xt = F.pad(xt, (lo, hi))
        y = self.conv(xt.contiguous()).permute(0, 2, 1)
        return _apply_activation(y, self.activation)

    def _keras_weights(self):
        w = self.conv.weight
        out = [(lambda: w._array.transpose(2, 1, 0), _setter(w, lambda a: a.transpose(2, 1, 0)))]
        if self.use_bias:
            b = self.conv.bias
            out.append((lambda: b._array, _setter(b)))
        return out


def _depthwise_weights(conv, channels, multiplier):
    """Keras's depthwise kernel (kh, kw, in, multiplier) <-> the grouped conv's (in * multiplier, 1, kh, kw):
    output channel c * multiplier + m in both."""
    w = conv.weight
    kh, kw = conv.kernel_size

    def get():
        return w._array.reshape(channels, multiplier, kh, kw).transpose(2, 3, 0, 1)
    return get, _setter(w, lambda a: a.transpose(2, 3, 0, 1).reshape(channels * multiplier, 1, kh, kw))


class DepthwiseConv2D(Layer):
    """Each input channel convolved with its own depth_multiplier filters (a grouped nn.Conv2d, groups = in);
    depthwise_kernel (kh, kw, in, depth_multiplier) glorot_uniform."""

    def __init__(self, kernel_size, strides=(1, 1), padding="valid", depth_multiplier=1, data_format=None,
                 dilation_rate=(1, 1), activation=None, use_bias=True, **kwargs):
        super().__init__(**kwargs)
        _channels_last("DepthwiseConv2D", data_format)
        self.padding = padding_mode("DepthwiseConv2D", padding)
        _check_positive("DepthwiseConv2D", kernel_size=kernel_size, strides=strides, dilation_rate=dilation_rate,
                        depth_multiplier=depth_multiplier)
        self.kernel_size, self.strides = _pair(kernel_size), _pair(strides)
        self.dilation_rate, self.depth_multiplier = _pair(dilation_rate), int(depth_multiplier)
        self.use_bias = bool(use_bias)
        self.activation = _activation_name("DepthwiseConv2D", activation)

    def build(self, input_shape):
        if len(input_shape) != 3 or input_shape[-1] is None:
            raise ValueError(f"DepthwiseConv2D '{self.name}': expected input (H, W, C) per sample, got "
                             f"{tuple(input_shape)}")
        c, dm = int(input_shape[-1]), self.depth_multiplier
        kh, kw = self.kernel_size
        self.conv = nn.Conv2d(c, c * dm, self.kernel_size, self.strides, 0, self.dilation_rate, groups=c,
                              bias=self.use_bias)
        _glorot(self.conv.weight, kh * kw * c, kh * kw * dm)
        if self.use_bias:
            init.zeros_(self.conv.bias)

    def compute_output_shape(self, input_shape):
        h, w, c = input_shape
        return tuple(out_length(self, n, k, s, d, self.padding) for n, k, s, d in
                     zip((h, w), self.kernel_size, self.strides, self.dilation_rate)) + \
            (None if c is None else c * self.depth_multiplier,)

    def call_nchw(self, x, training=False):
        if x.shape[1] != self.conv.in_channels:
            raise ValueError(f"DepthwiseConv2D '{self.name}': expected {self.conv.in_channels} input channels, got "
                             f"{x.shape[1]}")
        return _apply_activation(conv_keras_padding(self.conv, x, self.padding), self.activation)

    def _keras_weights(self):
        out = [_depthwise_weights(self.conv, self.conv.in_channels, self.depth_multiplier)]
        if self.use_bias:
            b = self.conv.bias
            out.append((lambda: b._array, _setter(b)))
        return out


class SeparableConv2D(Layer):
    """A depthwise convolution then a 1x1 pointwise one: depthwise_kernel (kh, kw, in, depth_multiplier),
    pointwise_kernel (1, 1, in * depth_multiplier, filters), bias (filters,)."""

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", data_format=None, dilation_rate=(1, 1),
                 depth_multiplier=1, activation=None, use_bias=True, **kwargs):
        super().__init__(**kwargs)
        _channels_last("SeparableConv2D", data_format)
        self.padding = padding_mode("SeparableConv2D", padding)
        _check_positive("SeparableConv2D", filters=filters, kernel_size=kernel_size, strides=strides,
                        dilation_rate=dilation_rate, depth_multiplier=depth_multiplier)
        self.filters, self.kernel_size, self.strides = int(filters), _pair(kernel_size), _pair(strides)
        self.dilation_rate, self.depth_multiplier = _pair(dilation_rate), int(depth_multiplier)
        self.use_bias = bool(use_bias)
        self.activation = _activation_name("SeparableConv2D", activation)

    def build(self, input_shape):
        if len(input_shape) != 3 or input_shape[-1] is None:
            raise ValueError(f"SeparableConv2D '{self.name}': expected input (H, W, C) per sample, got "
                             f"{tuple(input_shape)}")
        c, dm = int(input_shape[-1]), self.depth_multiplier
        kh, kw = self.kernel_size
        self.depthwise = nn.Conv2d(c, c * dm, self.kernel_size, self.strides, 0, self.dilation_rate, groups=c,
                                   bias=False)
        self.pointwise = nn.Conv2d(c * dm, self.filters, 1, bias=self.use_bias)
        _glorot(self.depthwise.weight, kh * kw * c, kh * kw * dm)
        _glorot(self.pointwise.weight, c * dm, self.filters)
        if self.use_bias:
            init.zeros_(self.pointwise.bias)

    def compute_output_shape(self, input_shape):
        h, w, _ = input_shape
        return tuple(out_length(self, n, k, s, d, self.padding) for n, k, s, d in
                     zip((h, w), self.kernel_size, self.strides, self.dilation_rate)) + (self.filters,)

    def call_nchw(self, x, training=False):
        if x.shape[1] != self.depthwise.in_channels:
            raise ValueError(f"SeparableConv2D '{self.name}': expected {self.depthwise.in_channels} input channels, "
                             f"got {x.shape[1]}")
        y = self.pointwise(conv_keras_padding(self.depthwise, x, self.padding))
        return _apply_activation(y, self.activation)

    def _keras_weights(self):
        pw = self.pointwise.weight
        out = [_depthwise_weights(self.depthwise, self.depthwise.in_channels, self.depth_multiplier),
               (lambda: pw._array.transpose(2, 3, 1, 0), _setter(pw, lambda a: a.transpose(3, 2, 0, 1)))]
        if self.use_bias:
            b = self.pointwise.bias
            out.append((lambda: b._array, _setter(b)))
        return out


class _Pool1D(Layer):
    """1-D pooling over the steps of (steps, channels) inputs, run as a 2-D pool of height 1."""
    _fn, _average = None, False

    def __init__(self, pool_size=2, strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(**kwargs)
        owner = type(self).__name__
        _channels_last(owner, data_format)
        self.padding = padding_mode(owner, padding)
        self.pool_size = _single(owner, "pool_size", pool_size)
        self.strides = self.pool_size if strides is None else _single(owner, "strides", strides)

    def compute_output_shape(self, input_shape):
        return (out_length(self, input_shape[0], self.pool_size, self.strides, 1, self.padding), input_shape[-1])

    def call(self, x, training=False):
        if x.ndim != 3:
            raise ValueError(f"{type(self).__name__} '{self.name}': expected input (batch, steps, channels), got "
                             f"shape {tuple(x.shape)}")
        x4 = x.permute(0, 2, 1).unsqueeze(2)
        kernel, strides = (1, self.pool_size), (1, self.strides)
        if self.padding == "same":
            y = pool_same(x4, type(self)._fn, kernel, strides, self._average)
        else:
            y = type(self)._fn(x4, kernel, strides)
        return y.squeeze(2).permute(0, 2, 1)


class MaxPooling1D(_Pool1D):
    _fn = staticmethod(F.max_pool2d)


class AveragePooling1D(_Pool1D):
    _fn = staticmethod(F.avg_pool2d)
    _average = True

    def __init__(self, pool_size, strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(pool_size, strides, padding, data_format, **kwargs)

