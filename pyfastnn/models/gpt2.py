"""GPT-2 with transformers' class names, config.json fields and state_dict keys: GPT2Model and
GPT2LMHeadModel (lm_head.weight is transformer.wte.weight). The projections are nn.Linear, (out, in):
transformers' Conv1D weights, stored (in, out), are transposed when a checkpoint is loaded and back
when one is saved — this file is where that conversion lives. Attention runs on
F.scaled_dot_product_attention (is_causal, or a causal + padding mask broadcast over heads) and, with
use_cache, over a preallocated key/value cache."""
from __future__ import annotations

import re

import numpy as np

from .. import nn
from ..nn import functional as F
from ..tensor import Tensor, tensor
from ._text import (activation, attention, causal_padding_mask, check_ids, class_labels, flag, linear_activation,
                    merge_heads, on_device_of, split_heads)
from .configuration import ConfigError, PretrainedConfig
from .generation import GenerationMixin, KVCache
from .outputs import BaseModelOutputWithPastAndCrossAttentions, CausalLMOutputWithCrossAttentions
from .pretrained import PreTrainedModel

__all__ = ["GPT2Config", "GPT2Model", "GPT2PreTrainedModel", "GPT2LMHeadModel"]

# the projections transformers stores as Conv1D (in, out)
_CONV1D = re.compile(r"(^|\.)h\.\d+\.(attn\.c_attn|attn\.c_proj|mlp\.c_fc|mlp\.c_proj)\.weight$")


class GPT2Config(PretrainedConfig):
    """transformers' GPT2Config fields and defaults (the 124M model's sizes); hidden_size,
    max_position_embeddings, num_attention_heads and num_hidden_layers are aliases of n_embd, n_positions,
    n_head and n_layer."""
    model_type = "gpt2"
    attribute_map = {"hidden_size": "n_embd", "max_position_embeddings": "n_positions",
                     "num_attention_heads": "n_head", "num_hidden_layers": "n_layer"}
    defaults = {
        "vocab_size": 50257, "n_positions": 1024, "n_embd": 768, "n_layer": 12, "n_head": 12, "n_inner": None,
        "activation_function": "gelu_new", "resid_pdrop": 0.1, "embd_pdrop": 0.1, "attn_pdrop": 0.1,
        "layer_norm_epsilon": 1e-5, "initializer_range": 0.02, "summary_type": "cls_index",
        "summary_use_proj": True, "summary_activation": None, "summary_proj_to_labels": True,
        "summary_first_dropout": 0.1, "scale_attn_weights": True, "bos_token_id": 50256, "eos_token_id": 50256,
        "scale_attn_by_inverse_layer_idx": False, "reorder_and_upcast_attn": False,
    }

    def validate(self, source=None):
        where = source or "GPT2Config"
        for name in ("vocab_size", "n_positions", "n_embd", "n_layer", "n_head"):
            self._check_int(name, 1, where)
        if self.n_inner is not None:
            self._check_int("n_inner", 1, where)
        if self.n_embd % self.n_head:
            raise ConfigError(f"{where}: n_embd ({self.n_embd}) must be a multiple of n_head ({self.n_head})")
        for name in ("resid_pdrop", "embd_pdrop", "attn_pdrop"):
            self._check_number(name, 0.0, 1.0, where)
        self._check_number("layer_norm_epsilon", 0.0, float("inf"), where)
        activation(self.activation_function, where)
        if self.add_cross_attention:
            raise ConfigError(f"{where}: add_cross_attention (GPT-2 as an encoder-decoder's decoder) is not supported")


class GPT2Attention(nn.Module):
    def __init__(self, config, layer_idx=0):
        super().__init__()
        self.embed_dim = config.n_embd
        self.num_heads = config.n_head
        self.head_dim = self.embed_dim // self.num_heads
        self.layer_idx = layer_idx
        self.scaling = self.head_dim ** -0.5 if config.scale_attn_weights else 1.0
        if config.scale_attn_by_inverse_layer_idx:
            self.scaling /= float(layer_idx + 1)
        self.c_attn = nn.Linear(self.embed_dim, 3 * self.embed_dim)
        self.c_proj = nn.Linear(self.embed_dim, self.embed_dim)
        self.attn_dropout = nn.Dropout(config.attn_pdrop)
        self.resid_dropout = nn.Dropout(config.resid_pdrop)

    def forward(self, hidden_states, mask=None, is_causal=False, cache=None, output_attentions=False):
        q, k, v = self.c_attn(hidden_states).split(self.embed_dim, dim=2)
        q, k, v = (split_heads(t, self.num_heads) for t in (q, k, v))
        if cache is not None:
            k, v = cache.update(k, v, self.layer_idx)
        p = self.attn_dropout.p if self.training else 0.0
        out, weights = attention(q, k, v, mask, is_causal, p, self.scaling, output_attentions)
        return self.resid_dropout(self.c_proj(merge_heads(out))), weights


class GPT2MLP(nn.Module):
    def __init__(self, intermediate_size, config):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, intermediate_size)
        self.c_proj = nn.Linear(intermediate_size, config.n_embd)
        self.act = activation(config.activation_function, "GPT2Config")
        self.activation_function = config.activation_function
        self.dropout = nn.Dropout(config.resid_pdrop)

    def forward(self, hidden_states):
        hidden = linear_activation(self.c_fc, hidden_states, self.activation_function)
        return self.dropout(self.c_proj(hidden))


class GPT2Block(nn.Module):
    def __init__(self, config, layer_idx=0):
        super().__init__()
        inner = config.n_inner if config.n_inner is not None else 4 * config.n_embd
        self.ln_1 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.attn = GPT2Attention(config, layer_idx)
        self.ln_2 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.mlp = GPT2MLP(inner, config)

    def forward(self, hidden_states, mask=None, is_causal=False, cache=None, output_attentions=False):
        attended, weights = self.attn(self.ln_1(hidden_states), mask, is_causal, cache, output_attentions)
        hidden_states = hidden_states + attended
        return hidden_states + self.mlp(self.ln_2(hidden_states)), weights


class GPT2PreTrainedModel(PreTrainedModel):
    config_class = GPT2Config
    base_model_prefix = "transformer"
    # the causal-mask buffers of older checkpoints
    _keys_to_ignore_on_load_unexpected = (r"(^|\.)attn\.bias$", r"(^|\.)attn\.masked_bias$")

    def _hf_to_own(self, state):
        return {k: (np.swapaxes(v, 0, 1) if _CONV1D.search(k) and np.ndim(v) == 2 else v) for k, v in state.items()}

    def _own_to_hf(self, state):
        return self._hf_to_own(state)          # a transpose is its own inverse

    def _init_weights(self):
        """transformers' initialisation, with GPT-2's residual projections scaled by 1/sqrt(2 n_layer)."""
        std = self.config.initializer_range
        for name, m in self.named_modules():
            if isinstance(m, nn.Linear):
                scaled = name.endswith("c_proj")
                nn.init.normal_(m.weight, 0.0, std / np.sqrt(2 * self.config.n_layer) if scaled else std)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Embedding):
                nn.init.normal_(m.weight, 0.0, std)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def post_init(self):
        self._init_weights()
        super().post_init()

    def _new_cache(self, max_length):
        return KVCache(self.config.n_layer, max_length=max_length)


class GPT2Model(GPT2PreTrainedModel):
    """The GPT-2 decoder stack: wte + wpe, blocks h[i], ln_f. forward returns last_hidden_state and, with
    use_cache, past_key_values (a KVCache to pass back for the next tokens)."""

    def __init__(self, config):
        super().__init__(config)
        self.embed_dim = config.n_embd
        self.wte = nn.Embedding(config.vocab_size, self.embed_dim)
        self.wpe = nn.Embedding(config.n_positions, self.embed_dim)
        self.drop = nn.Dropout(config.embd_pdrop)
        self.h = nn.ModuleList([GPT2Block(config, layer_idx=i) for i in range(config.n_layer)])
        self.ln_f = nn.LayerNorm(self.embed_dim, eps=config.layer_norm_epsilon)
        self.post_init()

    def get_input_embeddings(self):
        return self.wte

    def forward(self, input_ids=None, past_key_values=None, attention_mask=None, token_type_ids=None,
                position_ids=None, head_mask=None, inputs_embeds=None, use_cache=None, output_attentions=None,
                output_hidden_states=None, return_dict=None, cache=None):
        where = type(self).__name__
        if cache is not None:
            if past_key_values is not None:
                raise ValueError(f"{where}: pass the cache as past_key_values or as cache, not both")
            past_key_values = cache
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError(f"{where}: You must specify exactly one of input_ids or inputs_embeds")
        if head_mask is not None:
            raise NotImplementedError(f"{where}: head_mask is not supported")
        use_cache = flag(use_cache, self.config.use_cache) if past_key_values is None else True
        if past_key_values is not None and not isinstance(past_key_values, KVCache):
            if not isinstance(past_key_values, (tuple, list)):
                raise TypeError(f"{where}: 'past_key_values' must be a KVCache (the past_key_values of an earlier "
                                f"call) or transformers' legacy tuple of (keys, values), got "
                                f"{type(past_key_values).__name__}")
            past_key_values = KVCache.from_legacy_cache(past_key_values)
        if use_cache and past_key_values is None:
            past_key_values = self._new_cache(None)
        past = past_key_values.get_seq_length() if past_key_values is not None else 0

        if input_ids is not None:
            input_ids = check_ids(input_ids, where, self.config.vocab_size)
            embeds = self.wte(input_ids)
        else:
            embeds = inputs_embeds if isinstance(inputs_embeds, Tensor) else tensor(np.asarray(inputs_embeds,
                                                                                               np.float32))
            if embeds.ndim != 3 or embeds.shape[-1] != self.embed_dim:
                raise ValueError(f"{where}: 'inputs_embeds' must have shape (batch, seq, {self.embed_dim}), got "
                                 f"{tuple(embeds.shape)}")
        batch, seq = embeds.shape[:2]
        if past + seq > self.config.n_positions:
            raise ValueError(f"{where}: {past + seq} positions (past {past} + {seq} new) exceed n_positions "
                             f"({self.config.n_positions})")
        if position_ids is None:
            position_ids = np.arange(past, past + seq, dtype=np.int64)[None]
        else:
            position_ids = check_ids(position_ids, where, self.config.n_positions, "position_ids")
            if position_ids.shape[1] != seq or position_ids.shape[0] not in (1, batch):
                raise ValueError(f"{where}: 'position_ids' must have shape ({batch}, {seq}), got {position_ids.shape}")
        hidden = embeds + self.wpe(position_ids)
        if token_type_ids is not None:
            token_type_ids = check_ids(token_type_ids, where, self.config.vocab_size, "token_type_ids")
            if token_type_ids.shape[1] != seq or token_type_ids.shape[0] not in (1, batch):
                raise ValueError(f"{where}: 'token_type_ids' must have shape ({batch}, {seq}), got "
                                 f"{token_type_ids.shape}")
            hidden = hidden + self.wte(token_type_ids)
        hidden = self.drop(hidden)
        mask, is_causal = causal_padding_mask(attention_mask, where, batch, seq, past)
        mask = on_device_of(mask, hidden)

        output_attentions = flag(output_attentions, self.config.output_attentions)
        output_hidden_states = flag(output_hidden_states, self.config.output_hidden_states)
        all_hidden, all_attentions = [], []
        for block in self.h:
            if output_hidden_states:
                all_hidden.append(hidden)
            hidden, weights = block(hidden, mask, is_causal, past_key_values, output_attentions)
            if output_attentions:
                all_attentions.append(weights)
        hidden = self.ln_f(hidden)
        if output_hidden_states:
            all_hidden.append(hidden)
        out = BaseModelOutputWithPastAndCrossAttentions(
            last_hidden_state=hidden, past_key_values=past_key_values if use_cache else None,
            hidden_states=tuple(all_hidden) if output_hidden_states else None,
            attentions=tuple(all_attentions) if output_attentions else None)
        return out if flag(return_dict, self.config.return_dict) else out.to_tuple()


class GPT2LMHeadModel(GPT2PreTrainedModel, GenerationMixin):
    """GPT2Model + lm_head (no bias), tied to the token embeddings. With labels: the next-token
    cross-entropy (labels shifted inside, -100 ignored). generate() continues prompts (see
    GenerationMixin.generate)."""
    _tied_weights_keys = {"lm_head.weight": "transformer.wte.weight"}
    _tied_if_config = ("lm_head.weight",)

    def __init__(self, config):
        super().__init__(config)
        self.transformer = GPT2Model(config)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.post_init()

    def get_input_embeddings(self):
        return self.transformer.wte

    def get_output_embeddings(self):
        return self.lm_head

    def forward(self, input_ids=None, past_key_values=None, attention_mask=None, token_type_ids=None,
                position_ids=None, head_mask=None, inputs_embeds=None, labels=None, use_cache=None,
                output_attentions=None, output_hidden_states=None, return_dict=None, logits_to_keep=0, cache=None):
        where = type(self).__name__
        base = self.transformer(input_ids, past_key_values, attention_mask, token_type_ids, position_ids, head_mask,
                                inputs_embeds, use_cache, output_attentions, output_hidden_states, return_dict=True,
                                cache=cache)
        hidden = base.last_hidden_state
        if isinstance(logits_to_keep, bool) or not isinstance(logits_to_keep, (int, np.integer)) or logits_to_keep < 0:
            raise ValueError(f"{where}: 'logits_to_keep' must be a non-negative int, got {logits_to_keep!r}")
        if logits_to_keep:
            hidden = hidden[:, -int(logits_to_keep):]
        logits = self.lm_head(hidden)
        loss = None
        if labels is not None:
            y = class_labels(labels, where, tuple(logits.shape[:2]), self.config.vocab_size)
            shifted = np.full_like(y, -100)
            shifted[:, :-1] = y[:, 1:]                # position t predicts token t + 1
            loss = F.cross_entropy(logits.reshape(-1, self.config.vocab_size), shifted.reshape(-1), ignore_index=-100)
        out = CausalLMOutputWithCrossAttentions(loss=loss, logits=logits, past_key_values=base.past_key_values,
                                                hidden_states=base.hidden_states, attentions=base.attentions)
        return out if flag(return_dict, self.config.return_dict) else out.to_tuple()
