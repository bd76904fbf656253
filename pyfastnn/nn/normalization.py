"""Normalization layers: LayerNorm, RMSNorm, GroupNorm, BatchNorm1d/2d/3d, InstanceNorm1d/2d/3d."""
from __future__ import annotations

import numpy as np

from .. import _device
from .._errors import ShapeError
from . import functional as F
from .module import Module, Parameter

__all__ = ["LayerNorm", "RMSNorm", "GroupNorm", "BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "InstanceNorm1d",
           "InstanceNorm2d", "InstanceNorm3d", "LocalResponseNorm"]


def _shape(owner, normalized_shape):
    shape = (normalized_shape,) if isinstance(normalized_shape, (int, np.integer)) else tuple(normalized_shape)
    if any(isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 0 for d in shape):
        raise ValueError(f"{owner}: argument 'normalized_shape' must be an int or a tuple of non-negative ints, got "
                         f"{normalized_shape!r}")
    return tuple(int(d) for d in shape)


class LayerNorm(Module):
    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True, device=None, dtype=None):
        super().__init__()
        self.normalized_shape = _shape("LayerNorm", normalized_shape)
        self.eps, self.elementwise_affine = eps, elementwise_affine
        dt = _device.param_dtype(dtype, type(self).__name__)
        if elementwise_affine:
            self.weight = Parameter(np.ones(self.normalized_shape, dt))
            if bias:
                self.bias = Parameter(np.zeros(self.normalized_shape, dt))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, input):
        shape = getattr(input, "shape", None)
        n = len(self.normalized_shape)
        if shape is not None and tuple(shape[len(shape) - n:]) != self.normalized_shape:
            raise ShapeError(f"LayerNorm({self.normalized_shape}): input shape {tuple(shape)} does not end in "
                             f"{self.normalized_shape}")
        return F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}, "
                f"bias={self.bias is not None}")


class RMSNorm(Module):
    def __init__(self, normalized_shape, eps=None, elementwise_affine=True, device=None, dtype=None):
        super().__init__()
        self.normalized_shape = _shape("RMSNorm", normalized_shape)
        self.eps, self.elementwise_affine = eps, elementwise_affine
        if elementwise_affine:
            self.weight = Parameter(np.ones(self.normalized_shape, _device.param_dtype(dtype, "RMSNorm")))
        else:
            self.register_parameter("weight", None)

    def forward(self, input):
        return F.rms_norm(input, self.normalized_shape, self.weight, self.eps)

    def extra_repr(self):
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


def _affine_parameters(norm, affine, bias, n, dtype):
    """weight (ones) and, unless bias=False, bias (zeros) of n entries; both None without affine (torch's)."""
    norm.register_parameter("weight", Parameter(np.ones(n, dtype)) if affine else None)
    norm.register_parameter("bias", Parameter(np.zeros(n, dtype)) if affine and bias else None)


class GroupNorm(Module):
    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True, device=None, dtype=None, *, bias=True):
        super().__init__()
        if num_groups <= 0 or num_channels % num_groups:
            raise ValueError(f"GroupNorm: num_channels ({num_channels}) must be divisible by num_groups "
                             f"({num_groups})")
        self.num_groups, self.num_channels, self.eps, self.affine = num_groups, num_channels, eps, affine
        dt = _device.param_dtype(dtype, type(self).__name__)
        _affine_parameters(self, affine, bias, num_channels, dt)

    def forward(self, input):
        return F.group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
                f"bias={self.bias is not None}")


class _NormBase(Module):
    _expected_ndim = ()

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True, device=None,
                 dtype=None, *, bias=True):
        super().__init__()
        if isinstance(num_features, bool) or not isinstance(num_features, (int, np.integer)) or num_features < 0:
            raise ValueError(f"{type(self).__name__}: argument 'num_features' must be a non-negative int, "
                             f"got {num_features!r}")
        self.num_features, self.eps, self.momentum = int(num_features), eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        dt = _device.param_dtype(dtype, type(self).__name__)
        _affine_parameters(self, affine, bias, num_features, dt)
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(num_features, dt))
            self.register_buffer("running_var", np.ones(num_features, dt))
            self.register_buffer("num_batches_tracked", np.zeros((), np.int64))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self):
        if self.track_running_stats:
            self.running_mean.zero_()
            self.running_var.fill_(1)
            self.num_batches_tracked.zero_()

    def _check_input(self, shape):
        name = type(self).__name__
        if shape is not None and (len(shape) not in self._expected_ndim or shape[1] != self.num_features):
            raise ValueError(f"{name}({self.num_features}): expected input with {' or '.join(map(str, self._expected_ndim))} "
                             f"dims and {self.num_features} channels in dim 1, got shape {tuple(shape)}")

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}")


class _BatchNorm(_NormBase):
    def forward(self, input):
        self._check_input(getattr(input, "shape", None))
        use_batch = self.training or not self.track_running_stats
        momentum = self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked._array += 1
            if momentum is None:    # cumulative moving average
                momentum = 1.0 / float(self.num_batches_tracked.item())
        return F.batch_norm(input, self.running_mean if self.track_running_stats else None,
                            self.running_var if self.track_running_stats else None, self.weight, self.bias,
                            use_batch, momentum if momentum is not None else 0.0, self.eps)


class BatchNorm1d(_BatchNorm):
    _expected_ndim = (2, 3)


class BatchNorm2d(_BatchNorm):
    _expected_ndim = (4,)


class BatchNorm3d(_BatchNorm):
    _expected_ndim = (5,)


class _InstanceNorm(_NormBase):
    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=False, track_running_stats=False, device=None,
                 dtype=None, *, bias=True):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype, bias=bias)

    def forward(self, input):
        x = F._req(input, type(self).__name__)
        unbatched = x.ndim == self._expected_ndim[0] - 1
        if unbatched:
            x = x.unsqueeze(0)
        y = F.instance_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            self.training or not self.track_running_stats, self.momentum, self.eps)
        return y.squeeze(0) if unbatched else y


class InstanceNorm1d(_InstanceNorm):
    _expected_ndim = (3,)


class InstanceNorm2d(_InstanceNorm):
    _expected_ndim = (4,)


class InstanceNorm3d(_InstanceNorm):
    _expected_ndim = (5,)


class LocalResponseNorm(Module):
    """Normalizes over size neighbouring channels: b_c = a_c (k + alpha/n sum a^2)^-beta."""

    def __init__(self, size, alpha=1e-4, beta=0.75, k=1.0):
        super().__init__()
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def forward(self, input):
        x = F._req(input, "LocalResponseNorm")
        sq = (x * x).unsqueeze(1)
        pad = (0, 0) * (x.ndim - 2) + (self.size // 2, (self.size - 1) // 2)
        sq = F.pad(sq, pad)
        div = F.avg_pool2d(sq.reshape(sq.shape[0], 1, sq.shape[2], -1), (self.size, 1), 1).reshape(x.shape)
        return x / (div * self.alpha + self.k) ** self.beta

    def extra_repr(self):
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"
