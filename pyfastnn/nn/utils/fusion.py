"""Folding an eval-mode BatchNorm into the convolution before it: torch.nn.utils.fusion's
fuse_conv_bn_weights / fuse_conv_bn_eval, and conv_bn, which the model zoo calls for every conv + BN pair so
that inference runs one convolution with a bias where it ran a convolution and four passes of normalisation.

In eval mode BN is an affine map per channel, y = (z - mean) * g / sqrt(var + eps) + b, so
conv(x, W) followed by it equals conv(x, W * s) + (bias - mean) * s + b with s = g / sqrt(var + eps). conv_bn
folds once and keeps the folded weights while the originals are unchanged: it re-folds when a tensor's
version counter moves (optimizer steps, load_state_dict, in-place tensor ops), its storage is replaced, a
BN statistic or affine value differs, or a sample of the convolution weight differs (edits through .data or
a raw numpy view, which move no counter, rewrite the sampled values too unless they touch only a few
elements)."""
from __future__ import annotations

import copy
import weakref

import numpy as np

from ... import _device
from ...autograd import is_grad_enabled
from .. import functional as F
from ..conv import Conv2d
from ..module import Parameter, _global_forward_hooks, _global_forward_pre_hooks
from ..normalization import BatchNorm2d

__all__ = ["fuse_conv_bn_weights", "fuse_conv_bn_eval", "conv_bn"]

_WEIGHT_SAMPLE = 1024        # conv weight elements compared at each call to see edits that moved no counter


def _array(t):
    return None if t is None else (t._array if hasattr(t, "_array") else np.asarray(t))


def _folded(conv_w, conv_b, bn_rm, bn_rv, bn_eps, bn_w, bn_b):
    W, rm, rv = _array(conv_w), _array(bn_rm), _array(bn_rv)
    xp = _device.array_module(W)
    scale = (1.0 / xp.sqrt(rv.astype(np.float64) + bn_eps))
    if bn_w is not None:
        scale = scale * _array(bn_w)
    shift = -rm.astype(np.float64) * scale
    if conv_b is not None:
        shift = shift + _array(conv_b) * scale
    if bn_b is not None:
        shift = shift + _array(bn_b)
    weight = W * scale.astype(W.dtype).reshape((-1,) + (1,) * (W.ndim - 1))
    return weight, shift.astype(W.dtype)


def fuse_conv_bn_weights(conv_w, conv_b, bn_rm, bn_rv, bn_eps, bn_w, bn_b):
    """(weight, bias) Parameters of the convolution that computes bn(conv(x)) with BN's running statistics."""
    weight, bias = _folded(conv_w, conv_b, bn_rm, bn_rv, bn_eps, bn_w, bn_b)
    return Parameter(weight), Parameter(bias)


def fuse_conv_bn_eval(conv, bn):
    """A copy of conv computing bn(conv(x)) for an eval-mode BN (torch's fuse_conv_bn_eval)."""
    if conv.training or bn.training:
        raise ValueError("fuse_conv_bn_eval: fusion only for eval mode (call .eval() on both modules)")
    fused = copy.deepcopy(conv)
    fused.weight, fused.bias = fuse_conv_bn_weights(conv.weight, conv.bias, bn.running_mean, bn.running_var, bn.eps,
                                                    bn.weight, bn.bias)
    return fused


def _hooked(module):
    return bool(module._forward_hooks or module._forward_pre_hooks)


def foldable(conv, bn):
    """Whether conv_bn may fold this pair now: BN in eval mode with running statistics, a plain Conv2d, no
    hooks that would miss their call, and no gradient wanted for the folded parameters."""
    if bn.training or not bn.track_running_stats or bn.running_mean is None or bn.running_var is None:
        return False
    if type(conv) is not Conv2d or type(bn) is not BatchNorm2d or conv.padding_mode != "zeros":
        return False
    if _hooked(conv) or _hooked(bn) or _global_forward_hooks or _global_forward_pre_hooks:
        return False
    if is_grad_enabled() and any(t is not None and t.requires_grad for t in (conv.weight, conv.bias, bn.weight,
                                                                              bn.bias)):
        return False
    return True


class _Fold:
    """One pair's folded weights and what they were made from."""
    __slots__ = ("key", "fingerprint", "weight", "bias")


_FOLDS = weakref.WeakKeyDictionary()       # bn module -> _Fold (dies with the module, never pickled with it)


def _fingerprint(tensors):
    """The values a fold depends on, as one vector: every BN statistic and affine value, the conv bias, and an
    evenly spaced sample of the conv weight (one comparison per call; about 1k elements per layer)."""
    W = tensors[0]._array
    flat = W.reshape(-1)
    parts = [flat[::max(1, flat.size // _WEIGHT_SAMPLE)]]
    parts += [t._array.reshape(-1) for t in tensors[1:] if t is not None]
    return _device.array_module(W).concatenate(parts)


def _fold_for(conv, bn):
    tensors = (conv.weight, conv.bias, bn.running_mean, bn.running_var, bn.weight, bn.bias)
    key = (id(conv), bn.eps) + tuple((None, None) if t is None else (id(t._array), t._counter[0]) for t in tensors)
    fingerprint = _fingerprint(tensors)
    fold = _FOLDS.get(bn)
    if fold is not None and fold.key == key and bool((fold.fingerprint == fingerprint).all()):
        return fold
    fold = _Fold()
    fold.key, fold.fingerprint = key, fingerprint
    fold.weight, fold.bias = _folded(*(tensors[:4] + (bn.eps,) + tensors[4:]))
    _FOLDS[bn] = fold
    return fold


def conv_bn(conv, bn, x):
    """bn(conv(x)); when foldable(conv, bn), one convolution with the folded weight and bias."""
    if not foldable(conv, bn):
        return bn(conv(x))
    fold = _fold_for(conv, bn)
    return F.conv2d(x, fold.weight, fold.bias, conv.stride, conv.padding, conv.dilation, conv.groups)
