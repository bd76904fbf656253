"""Pieces the transformer models share: transformers' activation names, attention masks built for
F.scaled_dot_product_attention (bool, True = attend, broadcast over heads — never one mask per head), and
the argument checks of a forward call."""
from __future__ import annotations

import numpy as np

from .. import _device
from ..nn import functional as F
from ..tensor import Tensor, tensor
from .generation import as_index_array

__all__ = ["activation", "ACTIVATIONS", "EPILOGUES", "linear_activation", "key_padding_mask", "causal_padding_mask", "check_ids", "merge_heads",
           "split_heads", "attention", "label_array", "class_labels", "flag", "on_device_of"]


def _quick_gelu(x):
    return x * F.sigmoid(x * 1.702)


# transformers' ACT2FN names -> functions on Tensors
ACTIVATIONS = {
    "gelu": F.gelu, "gelu_python": F.gelu,
    "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_fast": lambda x: F.gelu(x, approximate="tanh"),
    "quick_gelu": _quick_gelu,
    "relu": F.relu, "silu": F.silu, "swish": F.silu, "tanh": F.tanh, "sigmoid": F.sigmoid,
}


# the activations ops.matmul applies in its epilogue, by transformers' name: a Linear followed by one of
# these runs as one GEMM (F.linear splits it again where autograd needs the pre-activation)
EPILOGUES = {"gelu": "gelu", "gelu_python": "gelu", "gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh",
             "gelu_fast": "gelu_tanh", "relu": "relu", "silu": "silu", "swish": "silu", "tanh": "tanh",
             "sigmoid": "sigmoid"}


def linear_activation(linear, x, name):
    """ACTIVATIONS[name](linear(x)), the activation fused into the Linear's GEMM where it can be."""
    fused = EPILOGUES.get(name)
    return linear(x, activation=fused) if fused is not None else ACTIVATIONS[name](linear(x))


def flag(value, default):
    """A forward's output_* / return_dict argument, the config's value when None."""
    return bool(default) if value is None else bool(value)


def activation(name, where):
    if name not in ACTIVATIONS:
        raise ValueError(f"{where}: activation {name!r} is not supported (supported: {', '.join(sorted(ACTIVATIONS))})")
    return ACTIVATIONS[name]


def check_ids(input_ids, where, vocab_size, name="input_ids"):
    """(batch, seq) int64 token ids, checked against the vocabulary."""
    ids = as_index_array(input_ids, where, name)
    if ids.size and (ids.min() < 0 or ids.max() >= vocab_size):
        raise ValueError(f"{where}: '{name}' must be in [0, {vocab_size}), got values in [{ids.min()}, {ids.max()}]")
    return ids


def label_array(labels, where):
    """labels as a host numpy array (from numpy, lists, Tensors or torch tensors)."""
    if isinstance(labels, Tensor):
        return labels.numpy()
    if hasattr(labels, "detach") and hasattr(labels, "cpu"):
        return labels.detach().cpu().numpy()
    arr = np.asarray(labels)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{where}: 'labels' must hold numbers, got dtype {arr.dtype}")
    return arr


def class_labels(labels, where, shape, num_classes, ignore_index=-100):
    """int64 class labels of the given shape, each in [0, num_classes) or ignore_index."""
    arr = label_array(labels, where)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{where}: 'labels' must be integer class ids, got dtype {arr.dtype}")
    if arr.shape != tuple(shape):
        raise ValueError(f"{where}: 'labels' must have shape {tuple(shape)}, got {arr.shape}")
    bad = (arr != ignore_index) & ((arr < 0) | (arr >= num_classes))
    if bad.any():
        raise ValueError(f"{where}: 'labels' must be in [0, {num_classes}) or {ignore_index} (ignored), got "
                         f"{arr[bad][0]}")
    return arr.astype(np.int64, copy=False)


def _mask_array(attention_mask, where, batch, length):
    mask = as_index_array(attention_mask, where, "attention_mask")
    if mask.shape != (batch, length):
        raise ValueError(f"{where}: 'attention_mask' must have shape (batch, {'past + ' if length else ''}sequence) = "
                         f"{(batch, length)}, got {mask.shape}")
    return mask.astype(bool)


def key_padding_mask(attention_mask, where, batch, length):
    """(batch, 1, 1, keys) bool for a padding mask (1 = token, 0 = padding), or None when nothing is padded."""
    if attention_mask is None:
        return None
    mask = _mask_array(attention_mask, where, batch, length)
    return None if mask.all() else mask[:, None, None, :]


def causal_padding_mask(attention_mask, where, batch, q_len, past):
    """(mask, is_causal) for causal self-attention of q_len new positions after past cached ones: is_causal
    alone when nothing is padded and there is no past; otherwise a bool mask (batch or 1, 1, q_len, keys)
    where query i sees keys j <= past + i that are not padding."""
    keys = past + q_len
    pad = None
    if attention_mask is not None:
        pad = _mask_array(attention_mask, where, batch, keys)
        if pad.all():
            pad = None
    if pad is None and past == 0:
        return None, q_len > 1
    if pad is None and q_len == 1:
        return None, False
    causal = np.arange(keys)[None, :] <= past + np.arange(q_len)[:, None]
    if pad is None:
        return causal[None, None], False
    return causal[None, None] & pad[:, None, None, :], False


def on_device_of(mask, hidden):
    """The (host-built) mask on the device of the hidden states, so a model moved to 'cuda' takes the same
    inputs."""
    if mask is None:
        return None
    return _device.to_device(mask, _device.device_of(hidden.detach()._array), "attention mask")


def split_heads(x, heads):
    """(batch, seq, heads * dim) -> (batch, heads, seq, dim)."""
    b, n, e = x.shape
    return x.reshape(b, n, heads, e // heads).transpose(1, 2)


def merge_heads(x):
    """(batch, heads, seq, dim) -> (batch, seq, heads * dim)."""
    b, h, n, d = x.shape
    return x.transpose(1, 2).reshape(b, n, h * d)


def attention(q, k, v, mask, is_causal, dropout_p, scale, output_attentions):
    """SDPA on the flash kernel; with output_attentions the weights are formed explicitly (they are asked for)."""
    if not output_attentions:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p, is_causal=is_causal,
                                              scale=scale), None
    scores = (q @ k.transpose(-2, -1)) * scale
    if is_causal:
        mask = np.tril(np.ones((q.shape[-2], k.shape[-2]), bool))[None, None]
    if mask is not None:
        scores = scores.masked_fill(tensor(np.broadcast_to(~mask, tuple(scores.shape))), float("-inf"))
    weights = F.softmax(scores, dim=-1)
    weights = weights.masked_fill(weights.isnan(), 0.0)
    shown = weights
    if dropout_p:
        weights = F.dropout(weights, dropout_p, True)
    return weights @ v, shown
