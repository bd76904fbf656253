"""Text generation for the causal language models: a key/value cache that preallocates one buffer per
layer for the final length (the decode step writes one position and attends over the filled part; the
prefix is never recomputed), and generate() with transformers' greedy and sampling semantics
(temperature, top-k, top-p; eos/pad handling; left-padded batches with positions from the attention
mask). Sampling draws from pyfastnn's generator, so pyfastnn.manual_seed makes it repeatable."""
from __future__ import annotations

import numpy as np

from .. import _device
from ..autograd import no_grad
from ..tensor import Tensor, as_tensor, multinomial, tensor

__all__ = ["KVCache", "GenerationMixin", "as_index_array"]


def as_index_array(value, where, name, *, ndim=2):
    """An integer array (batch, seq) from numpy, a list, a pyfastnn Tensor or a torch tensor; 1-D becomes a
    batch of one. Returns None for None."""
    if value is None:
        return None
    if isinstance(value, Tensor):
        value = value.numpy()
    elif hasattr(value, "detach") and hasattr(value, "cpu"):      # a torch tensor, without importing torch
        value = value.detach().cpu().numpy()
    try:
        arr = np.asarray(value)
    except Exception:
        raise TypeError(f"{where}: '{name}' must be an array of token ids, got {type(value).__name__}") from None
    if arr.dtype == np.bool_:
        arr = arr.astype(np.int64)
    if arr.dtype.kind not in "iu":
        if arr.dtype.kind == "f" and arr.size and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        elif arr.size:
            raise TypeError(f"{where}: '{name}' must hold integers, got dtype {arr.dtype}")
        else:
            arr = arr.astype(np.int64)
    if arr.ndim == ndim - 1:
        arr = arr[None]
    if arr.ndim != ndim:
        raise ValueError(f"{where}: '{name}' must be {ndim}-D (batch, sequence), got shape {arr.shape}")
    return arr.astype(np.int64, copy=False)


class KVCache:
    """past_key_values: per layer a key and a value buffer (batch, heads, capacity, head_dim), filled up to
    get_seq_length(). generate() sizes it for prompt + max_new_tokens, so it is allocated once; used
    without a max_length it grows by doubling. Reads as transformers' legacy tuple too: cache[i] is the
    (keys, values) of layer i over the filled positions. The cache holds values, not autograd history."""

    def __init__(self, num_layers=None, max_length=None):
        if num_layers is not None and (isinstance(num_layers, bool) or not isinstance(num_layers, int)
                                       or num_layers < 1):
            raise ValueError(f"KVCache: num_layers must be a positive int, got {num_layers!r}")
        if max_length is not None and (isinstance(max_length, bool) or not isinstance(max_length, int)
                                       or max_length < 1):
            raise ValueError(f"KVCache: max_length must be a positive int, got {max_length!r}")
        self.max_length = max_length
        self._keys, self._values, self._lengths = [], [], []
        self.num_layers = num_layers

    def _ensure_layer(self, layer_idx):
        while len(self._keys) <= layer_idx:
            self._keys.append(None)
            self._values.append(None)
            self._lengths.append(0)

    def get_seq_length(self, layer_idx=0):
        return self._lengths[layer_idx] if layer_idx < len(self._lengths) else 0

    def get_max_length(self):
        return self.max_length

    def update(self, key, value, layer_idx):
        """Appends key/value (batch, heads, n, head_dim) at the filled length of layer layer_idx; returns the
        keys and values of every position so far (the given tensors themselves when the cache was empty)."""
        self._ensure_layer(layer_idx)
        k_new, v_new = key.detach()._array, value.detach()._array
        past = self._lengths[layer_idx]
        end = past + k_new.shape[2]
        buf_k, buf_v = self._keys[layer_idx], self._values[layer_idx]
        if buf_k is not None and (buf_k.shape[:2] != k_new.shape[:2] or buf_k.shape[3] != k_new.shape[3]):
            raise ValueError(f"KVCache.update: layer {layer_idx} holds keys of shape (batch, heads, _, head_dim) = "
                             f"{buf_k.shape[:2] + buf_k.shape[3:]}, the new keys have "
                             f"{k_new.shape[:2] + k_new.shape[3:]}")
        if buf_k is None or end > buf_k.shape[2]:
            capacity = max(end, self.max_length or 0)
            if buf_k is not None:
                capacity = max(capacity, 2 * buf_k.shape[2])
            xp = _device.array_module(k_new)
            shape = k_new.shape[:2] + (capacity,) + k_new.shape[3:]
            grown_k, grown_v = xp.empty(shape, k_new.dtype), xp.empty(shape, v_new.dtype)
            if past:
                grown_k[:, :, :past] = buf_k[:, :, :past]
                grown_v[:, :, :past] = buf_v[:, :, :past]
            self._keys[layer_idx], self._values[layer_idx] = buf_k, buf_v = grown_k, grown_v
        buf_k[:, :, past:end] = k_new
        buf_v[:, :, past:end] = v_new
        self._lengths[layer_idx] = end
        if past == 0:
            return key, value
        return as_tensor(buf_k[:, :, :end]), as_tensor(buf_v[:, :, :end])

    def __len__(self):
        return len(self._keys)

    def __getitem__(self, layer_idx):
        n = self._lengths[layer_idx]
        return (as_tensor(self._keys[layer_idx][:, :, :n]), as_tensor(self._values[layer_idx][:, :, :n]))

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def to_legacy_cache(self):
        return tuple(self[i] for i in range(len(self)))

    @classmethod
    def from_legacy_cache(cls, past_key_values, max_length=None):
        """A cache holding transformers' legacy ((keys, values), ...) tuples (arrays or tensors)."""
        cache = cls(max_length=max_length)
        for i, pair in enumerate(past_key_values):
            if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
                raise TypeError(f"KVCache.from_legacy_cache: layer {i} must be a (keys, values) pair, got "
                                f"{type(pair).__name__}")
            k, v = (p if isinstance(p, Tensor) else tensor(np.asarray(p)) for p in pair)
            if k.ndim != 4 or tuple(k.shape) != tuple(v.shape):
                raise ValueError(f"KVCache.from_legacy_cache: layer {i} needs keys and values of one shape (batch, "
                                 f"heads, seq, head_dim), got {tuple(k.shape)} and {tuple(v.shape)}")
            cache.update(k, v, i)
        return cache

    def __repr__(self):
        return f"KVCache(layers={len(self)}, seq_length={self.get_seq_length()}, max_length={self.max_length})"


def _softmax(x):
    x = x - x.max(axis=-1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=-1, keepdims=True)


def _warp(scores, temperature, top_k, top_p):
    """transformers' TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper, in that order."""
    scores = scores.astype(np.float32, copy=True)
    if temperature != 1.0:
        scores /= np.float32(temperature)
    if top_k is not None and top_k < scores.shape[-1]:
        kth = np.partition(scores, -top_k, axis=-1)[:, -top_k][:, None]
        scores[scores < kth] = -np.inf
    if top_p is not None and top_p < 1.0:
        order = np.argsort(scores, axis=-1, kind="stable")             # ascending, as transformers sorts
        sorted_scores = np.take_along_axis(scores, order, axis=-1)
        cumulative = np.cumsum(_softmax(sorted_scores.astype(np.float64)), axis=-1)
        remove_sorted = cumulative <= (1.0 - top_p)
        remove_sorted[:, -1] = False                                    # keep at least the most likely token
        remove = np.zeros_like(remove_sorted)
        np.put_along_axis(remove, order, remove_sorted, axis=-1)
        scores[remove] = -np.inf
    return scores


class GenerationMixin:
    """generate() for models whose forward takes (input_ids, attention_mask, position_ids, past_key_values,
    use_cache, logits_to_keep) and returns .logits and .past_key_values."""

    def _check_generate_args(self, where, max_new_tokens, max_length, do_sample, temperature, top_k, top_p):
        for name, value in (("max_new_tokens", max_new_tokens), ("max_length", max_length)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer))
                                      or value < 0):
                raise ValueError(f"{where}: '{name}' must be a non-negative int, got {value!r}")
        if not isinstance(do_sample, (bool, np.bool_)):
            raise TypeError(f"{where}: 'do_sample' must be a bool, got {do_sample!r}")
        if do_sample:
            if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature > 0 \
                    or not np.isfinite(temperature):
                raise ValueError(f"{where}: 'temperature' must be a strictly positive float, got {temperature!r}")
            if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer))
                                      or top_k < 1):
                raise ValueError(f"{where}: 'top_k' must be a positive int or None, got {top_k!r}")
            if top_p is not None and (isinstance(top_p, bool) or not isinstance(top_p, (int, float))
                                      or not 0.0 < top_p <= 1.0):
                raise ValueError(f"{where}: 'top_p' must be a float in (0, 1] or None, got {top_p!r}")

    def generate(self, input_ids=None, max_new_tokens=None, do_sample=False, temperature=1.0, top_k=None,
                 top_p=None, eos_token_id=None, pad_token_id=None, attention_mask=None, use_cache=True,
                 max_length=None, **kwargs):
        """Continues input_ids (batch, seq) by max_new_tokens tokens and returns (batch, seq + new) int64 ids,
        as transformers' generate does: greedy (argmax) unless do_sample, which samples from the softmax after
        temperature, top-k and top-p filtering (top_k=None / top_p=None turn those off). A sequence that
        produces eos_token_id (an int or a list; default config.eos_token_id) is continued with pad_token_id
        (default: eos); generation stops early when all have. attention_mask marks real tokens (1) and
        padding (0) — pad prompts on the left; positions then count real tokens only. use_cache=False
        recomputes the whole sequence at every step (the same tokens, slower)."""
        where = f"{type(self).__name__}.generate"
        if kwargs.pop("inputs", None) is not None and input_ids is None:
            raise TypeError(f"{where}: pass the prompt as input_ids")
        for name in ("num_beams", "num_return_sequences"):
            if kwargs.get(name, 1) != 1:
                raise NotImplementedError(f"{where}: {name} > 1 (beam search / several samples per prompt) is not "
                                          f"supported")
            kwargs.pop(name, None)
        if kwargs:
            raise TypeError(f"{where}: unexpected keyword argument(s) {sorted(kwargs)}")
        ids = as_index_array(input_ids, where, "input_ids")
        if ids is None or ids.shape[1] == 0:
            raise ValueError(f"{where}: 'input_ids' must hold at least one token per sequence (a prompt)")
        self._check_generate_args(where, max_new_tokens, max_length, do_sample, temperature, top_k, top_p)
        batch, prompt_len = ids.shape
        vocab = self.config.vocab_size
        if ids.min() < 0 or ids.max() >= vocab:
            raise ValueError(f"{where}: 'input_ids' must be token ids in [0, {vocab}), got values in "
                             f"[{ids.min()}, {ids.max()}]")
        if max_new_tokens is None:
            max_new_tokens = max(0, (20 if max_length is None else max_length) - prompt_len)   # transformers' default
        total = prompt_len + int(max_new_tokens)
        limit = self.config.max_position_embeddings
        if total > limit:
            raise ValueError(f"{where}: prompt ({prompt_len}) + max_new_tokens ({max_new_tokens}) = {total} tokens "
                             f"exceeds the model's {limit} positions (max_position_embeddings)")
        if eos_token_id is None:
            eos_token_id = self.config.eos_token_id
        eos = [] if eos_token_id is None else list(np.atleast_1d(eos_token_id).astype(np.int64))
        if pad_token_id is None:
            pad_token_id = self.config.pad_token_id if self.config.pad_token_id is not None else (eos[0] if eos
                                                                                                  else None)
        mask = as_index_array(attention_mask, where, "attention_mask")
        if mask is None:
            if pad_token_id is not None and (ids == pad_token_id).any() and pad_token_id not in eos:
                mask = (ids != pad_token_id).astype(np.int64)
            else:
                mask = np.ones_like(ids)
        if mask.shape != ids.shape:
            raise ValueError(f"{where}: 'attention_mask' must have the shape of input_ids {ids.shape}, got "
                             f"{mask.shape}")
        if not np.isin(mask, (0, 1)).all():
            raise ValueError(f"{where}: 'attention_mask' must hold 0 (padding) and 1 (tokens)")
        if not mask.any(axis=1).all():
            raise ValueError(f"{where}: every sequence needs at least one token with attention_mask 1")

        unfinished = np.ones(batch, bool)
        out = np.empty((batch, total), np.int64)
        out[:, :prompt_len] = ids
        mask_all = np.ones((batch, total), np.int64)
        mask_all[:, :prompt_len] = mask
        positions = np.maximum(np.cumsum(mask, axis=1) - 1, 0) * mask      # transformers' generate positions
        next_pos = positions[:, -1:] + 1
        cache = self._new_cache(total) if use_cache else None
        length = prompt_len
        with no_grad():
            step_ids, step_pos = ids, positions
            while length < total:
                result = self(input_ids=step_ids, attention_mask=mask_all[:, :length], position_ids=step_pos,
                              past_key_values=cache, use_cache=use_cache, logits_to_keep=1)
                scores = result.logits.cpu().numpy()[:, -1, :]
                if do_sample:
                    probs = _softmax(_warp(scores, float(temperature), top_k, top_p).astype(np.float64))
                    tokens = multinomial(tensor(probs), 1).numpy()[:, 0]
                else:
                    tokens = scores.argmax(axis=-1)
                if eos:
                    if pad_token_id is None:
                        raise ValueError(f"{where}: eos_token_id is set, so pad_token_id is needed for the sequences "
                                         f"that finish first")
                    tokens = np.where(unfinished, tokens, pad_token_id)
                out[:, length] = tokens
                length += 1
                if eos:
                    unfinished &= ~np.isin(tokens, eos)
                    if not unfinished.any():
                        break
                if use_cache:
                    step_ids, step_pos = out[:, length - 1:length], next_pos
                else:
                    step_ids = out[:, :length]
                    step_pos = np.concatenate([positions, positions[:, -1:] + np.arange(1, length - prompt_len + 1)],
                                              axis=1)
                next_pos = next_pos + 1
        return tensor(out[:, :length])
