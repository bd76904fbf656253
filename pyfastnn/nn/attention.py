"""MultiheadAttention on the flash-attention kernel (PyTorch's parameter names)."""
from __future__ import annotations

import math

import numpy as np

from .. import _device
from ..tensor import Tensor
from . import functional as F
from .init import _linear_default, constant_, xavier_uniform_
from .linear import NonDynamicallyQuantizableLinear
from .module import Module, Parameter

__all__ = ["MultiheadAttention"]


def _mask_array(m):
    return None if m is None else (m._array if isinstance(m, Tensor) else np.asarray(m))


class MultiheadAttention(Module):
    """torch.nn.MultiheadAttention: in_proj_weight (3E, E), in_proj_bias, out_proj.

    forward(query, key, value, key_padding_mask=None, need_weights=True,
    attn_mask=None, average_attn_weights=True, is_causal=False) -> (out, weights).
    Masks follow torch's MHA convention: a bool True means "do not attend";
    a float mask is added to the scores. With need_weights=False (and no
    attention dropout) the flash kernel runs and no (L, S) matrix is formed;
    with need_weights=True the weights are computed explicitly, as torch does.
    """

    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True, add_bias_kv=False, add_zero_attn=False,
                 kdim=None, vdim=None, batch_first=False, device=None, dtype=None):
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0 or embed_dim % num_heads:
            raise ValueError(f"MultiheadAttention: embed_dim ({embed_dim}) must be a positive multiple of "
                             f"num_heads ({num_heads})")
        if add_bias_kv or add_zero_attn:
            raise ValueError("MultiheadAttention: add_bias_kv and add_zero_attn are not supported")
        self.embed_dim, self.num_heads, self.head_dim = embed_dim, num_heads, embed_dim // num_heads
        self.dropout, self.batch_first = float(dropout), batch_first
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        E = embed_dim
        dtype = _device.param_dtype(dtype, "MultiheadAttention")
        if self._qkv_same_embed_dim:
            self.in_proj_weight = Parameter(np.empty((3 * E, E), dtype))
            self.register_parameter("q_proj_weight", None)
            self.register_parameter("k_proj_weight", None)
            self.register_parameter("v_proj_weight", None)
        else:
            self.register_parameter("in_proj_weight", None)
            self.q_proj_weight = Parameter(np.empty((E, E), dtype))
            self.k_proj_weight = Parameter(np.empty((E, self.kdim), dtype))
            self.v_proj_weight = Parameter(np.empty((E, self.vdim), dtype))
        if bias:
            self.in_proj_bias = Parameter(np.zeros(3 * E, dtype))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = NonDynamicallyQuantizableLinear(E, E, bias=bias, dtype=dtype)
        self.reset_parameters()

    def reset_parameters(self):
        if self._qkv_same_embed_dim:
            xavier_uniform_(self.in_proj_weight)
        else:
            for w in (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight):
                xavier_uniform_(w)
        _linear_default(self.out_proj.weight, None, self.embed_dim)
        if self.in_proj_bias is not None:
            constant_(self.in_proj_bias, 0.0)
            constant_(self.out_proj.bias, 0.0)

    def _project(self, query, key, value):
        E = self.embed_dim
        b = self.in_proj_bias
        bq, bk, bv = (None, None, None) if b is None else (b[:E], b[E:2 * E], b[2 * E:])
        if self._qkv_same_embed_dim:
            w = self.in_proj_weight
            if query is key and key is value:       # self-attention: one GEMM for q, k and v
                qkv = F.linear(query, w, b)
                return qkv[..., :E], qkv[..., E:2 * E], qkv[..., 2 * E:]
            wq, wk, wv = w[:E], w[E:2 * E], w[2 * E:]
        else:
            wq, wk, wv = self.q_proj_weight, self.k_proj_weight, self.v_proj_weight
        return F.linear(query, wq, bq), F.linear(key, wk, bk), F.linear(value, wv, bv)

    def _combined_mask(self, attn_mask, key_padding_mask, N, L, S, dtype):
        """One mask for the kernel, broadcastable to (N, H, L, S): bool True = attend, or additive float."""
        am, kpm = _mask_array(attn_mask), _mask_array(key_padding_mask)
        if am is not None:
            if am.shape == (L, S):
                am = am.reshape(1, 1, L, S)
            elif am.shape == (N * self.num_heads, L, S):
                am = am.reshape(N, self.num_heads, L, S)
            else:
                raise ValueError(f"MultiheadAttention: attn_mask must be ({L}, {S}) or "
                                 f"({N * self.num_heads}, {L}, {S}), got {am.shape}")
        if kpm is not None:
            if kpm.shape != (N, S):
                raise ValueError(f"MultiheadAttention: key_padding_mask must be ({N}, {S}), got {kpm.shape}")
            kpm = kpm.reshape(N, 1, 1, S)
        masks = [m for m in (am, kpm) if m is not None]
        if not masks:
            return None
        if all(m.dtype == np.bool_ for m in masks):
            keep = ~masks[0]
            for m in masks[1:]:
                keep = keep & ~m
            return keep
        total = 0
        for m in masks:
            total = total + (np.where(m, -np.inf, 0).astype(dtype) if m.dtype == np.bool_ else m.astype(dtype))
        return total

    def forward(self, query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
                average_attn_weights=True, is_causal=False):
        where = "MultiheadAttention"
        query, key, value = F._req(query, where, "query"), F._req(key, where, "key"), F._req(value, where, "value")
        E, Hh, hd = self.embed_dim, self.num_heads, self.head_dim
        unbatched = query.ndim == 2
        if query.ndim not in (2, 3) or query.shape[-1] != E:
            raise ValueError(f"MultiheadAttention(embed_dim={E}): query must be (L, N, {E}) "
                             f"{'[batch_first: (N, L, E)] ' if self.batch_first else ''}or (L, {E}), "
                             f"got shape {query.shape}")
        if key.ndim != query.ndim or value.ndim != query.ndim or key.shape[-1] != self.kdim \
                or value.shape[-1] != self.vdim or key.shape[:-1] != value.shape[:-1]:
            raise ValueError(f"MultiheadAttention: key {key.shape} and value {value.shape} do not fit query "
                             f"{query.shape} (kdim={self.kdim}, vdim={self.vdim})")
        same = query is key and key is value
        if unbatched:
            query, key, value = query.unsqueeze(0), key.unsqueeze(0), value.unsqueeze(0)
            if key_padding_mask is not None:
                key_padding_mask = _mask_array(key_padding_mask).reshape(1, -1)
        elif not self.batch_first:
            query, key, value = query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1)
        if same:
            key = value = query
        N, L, S = query.shape[0], query.shape[1], key.shape[1]
        q, k, v = self._project(query, key, value)
        q = q.reshape(N, L, Hh, hd).permute(0, 2, 1, 3).contiguous()
        k = k.reshape(N, S, Hh, hd).permute(0, 2, 1, 3).contiguous()
        v = v.reshape(N, S, Hh, hd).permute(0, 2, 1, 3).contiguous()
        mask = self._combined_mask(attn_mask, key_padding_mask, N, L, S, q.dtype)
        if is_causal and attn_mask is None:
            causal = np.tril(np.ones((L, S), bool)).reshape(1, 1, L, S)
            mask = causal if mask is None else (mask & causal if mask.dtype == np.bool_
                                                else mask + np.where(causal, 0, -np.inf).astype(q.dtype))
        dropout = self.dropout if self.training else 0.0
        weights = None
        if need_weights or dropout:
            scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hd))
            if mask is not None:
                additive = np.where(mask, 0, -np.inf).astype(q.dtype) if mask.dtype == np.bool_ else mask
                scores = scores + Tensor(np.ascontiguousarray(np.broadcast_to(additive, scores.shape)),
                                         _trusted=True)
            probs = F.softmax(scores, -1)
            weights = probs
            if dropout:
                probs = F.dropout(probs, dropout, True)
            ctx = probs @ v
        else:
            ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        out = self.out_proj(ctx.permute(0, 2, 1, 3).reshape(N, L, E))
        if unbatched:
            out = out.squeeze(0)
        elif not self.batch_first:
            out = out.transpose(0, 1)
        if weights is not None and need_weights:
            if average_attn_weights:
                weights = weights.mean(dim=1)
            if unbatched:
                weights = weights.squeeze(0)
            return out, weights
        return out, None
