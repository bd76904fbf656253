"""BERT with transformers' class names, config.json fields, module tree and state_dict keys: BertModel,
BertForSequenceClassification, BertForMaskedLM. Self-attention runs on F.scaled_dot_product_attention
with the padding mask broadcast over heads."""
from __future__ import annotations

import numpy as np

from .. import nn
from ..nn import functional as F
from ..tensor import Tensor, tensor
from ._text import (activation, attention, check_ids, class_labels, flag, key_padding_mask, label_array,
                    linear_activation, merge_heads, on_device_of, split_heads)
from .configuration import ConfigError, PretrainedConfig
from .outputs import BaseModelOutputWithPoolingAndCrossAttentions, MaskedLMOutput, SequenceClassifierOutput
from .pretrained import PreTrainedModel

__all__ = ["BertConfig", "BertModel", "BertPreTrainedModel", "BertForSequenceClassification", "BertForMaskedLM"]


class BertConfig(PretrainedConfig):
    """transformers' BertConfig fields and defaults (bert-base-uncased's sizes)."""
    model_type = "bert"
    defaults = {
        "vocab_size": 30522, "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
        "intermediate_size": 3072, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1, "max_position_embeddings": 512, "type_vocab_size": 2,
        "initializer_range": 0.02, "layer_norm_eps": 1e-12, "pad_token_id": 0, "classifier_dropout": None,
    }

    def validate(self, source=None):
        where = source or "BertConfig"
        for name in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                     "max_position_embeddings", "type_vocab_size"):
            self._check_int(name, 1, where)
        if self.hidden_size % self.num_attention_heads:
            raise ConfigError(f"{where}: hidden_size ({self.hidden_size}) must be a multiple of num_attention_heads "
                              f"({self.num_attention_heads})")
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            self._check_number(name, 0.0, 1.0, where)
        if self.classifier_dropout is not None:
            self._check_number("classifier_dropout", 0.0, 1.0, where)
        self._check_number("layer_norm_eps", 0.0, float("inf"), where)
        activation(self.hidden_act, where)
        if self.pad_token_id is not None and not (isinstance(self.pad_token_id, int)
                                                  and 0 <= self.pad_token_id < self.vocab_size):
            raise ConfigError(f"{where}: 'pad_token_id' must be a token id in [0, {self.vocab_size}) or null, got "
                              f"{self.pad_token_id!r}")
        if getattr(self, "position_embedding_type", "absolute") != "absolute":
            raise ConfigError(f"{where}: position_embedding_type {self.position_embedding_type!r} is not supported "
                              f"(only 'absolute')")
        if self.is_decoder or self.add_cross_attention:
            raise ConfigError(f"{where}: BERT as a decoder (is_decoder / add_cross_attention) is not supported; "
                              f"pyfastnn's BERT is the bidirectional encoder")


class BertEmbeddings(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.max_positions, self.type_vocab_size = config.max_position_embeddings, config.type_vocab_size

    def forward(self, input_ids=None, token_type_ids=None, position_ids=None, inputs_embeds=None, where="BertModel"):
        embeds = self.word_embeddings(input_ids) if inputs_embeds is None else inputs_embeds
        batch, seq = embeds.shape[:2]
        if seq > self.max_positions:
            raise ValueError(f"{where}: sequence length {seq} exceeds max_position_embeddings ({self.max_positions})")
        if position_ids is None:
            position_ids = np.arange(seq, dtype=np.int64)[None]
        else:
            position_ids = check_ids(position_ids, where, self.max_positions, "position_ids")
        if token_type_ids is None:
            token_type_ids = np.zeros((1, seq), np.int64)
        else:
            token_type_ids = check_ids(token_type_ids, where, self.type_vocab_size, "token_type_ids")
        for name, ids in (("position_ids", position_ids), ("token_type_ids", token_type_ids)):
            if ids.shape[1] != seq or ids.shape[0] not in (1, batch):
                raise ValueError(f"{where}: '{name}' must have shape ({batch}, {seq}), got {ids.shape}")
        x = embeds + self.token_type_embeddings(token_type_ids) + self.position_embeddings(position_ids)
        return self.dropout(self.LayerNorm(x))


class BertSelfAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.num_attention_heads = config.num_attention_heads
        self.attention_head_size = config.hidden_size // config.num_attention_heads
        self.all_head_size = config.hidden_size
        self.scaling = self.attention_head_size ** -0.5
        self.query = nn.Linear(config.hidden_size, self.all_head_size)
        self.key = nn.Linear(config.hidden_size, self.all_head_size)
        self.value = nn.Linear(config.hidden_size, self.all_head_size)
        self.dropout = nn.Dropout(config.attention_probs_dropout_prob)

    def forward(self, hidden_states, mask=None, output_attentions=False):
        h = self.num_attention_heads
        q = split_heads(self.query(hidden_states), h)
        k = split_heads(self.key(hidden_states), h)
        v = split_heads(self.value(hidden_states), h)
        p = self.dropout.p if self.training else 0.0
        out, weights = attention(q, k, v, mask, False, p, self.scaling, output_attentions)
        return merge_heads(out), weights


class BertSelfOutput(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden_states, input_tensor):
        return self.LayerNorm(self.dropout(self.dense(hidden_states)) + input_tensor)


class BertAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.self = BertSelfAttention(config)
        self.output = BertSelfOutput(config)

    def forward(self, hidden_states, mask=None, output_attentions=False):
        out, weights = self.self(hidden_states, mask, output_attentions)
        return self.output(out, hidden_states), weights


class BertIntermediate(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.intermediate_act_fn = activation(config.hidden_act, "BertConfig")
        self.hidden_act = config.hidden_act

    def forward(self, hidden_states):
        return linear_activation(self.dense, hidden_states, self.hidden_act)


class BertOutput(BertSelfOutput):
    def __init__(self, config):
        nn.Module.__init__(self)
        self.dense = nn.Linear(config.intermediate_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)


class BertLayer(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.attention = BertAttention(config)
        self.intermediate = BertIntermediate(config)
        self.output = BertOutput(config)

    def forward(self, hidden_states, mask=None, output_attentions=False):
        attended, weights = self.attention(hidden_states, mask, output_attentions)
        return self.output(self.intermediate(attended), attended), weights


class BertEncoder(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.layer = nn.ModuleList([BertLayer(config) for _ in range(config.num_hidden_layers)])


class BertPooler(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.activation = nn.Tanh()

    def forward(self, hidden_states):
        return self.activation(self.dense(hidden_states[:, 0]))


class BertPreTrainedModel(PreTrainedModel):
    config_class = BertConfig
    base_model_prefix = "bert"
    _keys_to_ignore_on_load_unexpected = (r"embeddings\.position_ids$", r"embeddings\.token_type_ids$")

    def _init_weights(self):
        """transformers' initialisation: normal(0, initializer_range) for Linear and Embedding weights, zero
        biases and padding row, LayerNorm ones/zeros."""
        std = self.config.initializer_range
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, std)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Embedding):
                nn.init.normal_(m.weight, 0.0, std)
                if m.padding_idx is not None:
                    m.weight.data[m.padding_idx] = 0.0
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def post_init(self):
        self._init_weights()
        super().post_init()


class BertModel(BertPreTrainedModel):
    """The BERT encoder: embeddings, encoder.layer[i], and (add_pooling_layer) the tanh pooler on the first
    token. forward returns last_hidden_state and pooler_output (and hidden_states / attentions on request)."""
    _keys_to_init_if_missing = (r"^pooler\.",)

    def __init__(self, config, add_pooling_layer=True):
        super().__init__(config)
        self.embeddings = BertEmbeddings(config)
        self.encoder = BertEncoder(config)
        self.pooler = BertPooler(config) if add_pooling_layer else None
        self.post_init()

    def get_input_embeddings(self):
        return self.embeddings.word_embeddings

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                inputs_embeds=None, output_attentions=None, output_hidden_states=None, return_dict=None):
        where = type(self).__name__
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError(f"{where}: You must specify exactly one of input_ids or inputs_embeds")
        if head_mask is not None:
            raise NotImplementedError(f"{where}: head_mask is not supported")
        if input_ids is not None:
            input_ids = check_ids(input_ids, where, self.config.vocab_size)
            batch, seq = input_ids.shape
        else:
            if not isinstance(inputs_embeds, Tensor):
                inputs_embeds = tensor(np.asarray(inputs_embeds, np.float32))
            if inputs_embeds.ndim != 3 or inputs_embeds.shape[-1] != self.config.hidden_size:
                raise ValueError(f"{where}: 'inputs_embeds' must have shape (batch, seq, {self.config.hidden_size}), "
                                 f"got {tuple(inputs_embeds.shape)}")
            batch, seq = inputs_embeds.shape[:2]
        output_attentions = flag(output_attentions, self.config.output_attentions)
        output_hidden_states = flag(output_hidden_states, self.config.output_hidden_states)
        mask = key_padding_mask(attention_mask, where, batch, seq)
        hidden = self.embeddings(input_ids, token_type_ids, position_ids, inputs_embeds, where)
        mask = on_device_of(mask, hidden)
        all_hidden, all_attentions = [hidden] if output_hidden_states else None, [] if output_attentions else None
        for layer in self.encoder.layer:
            hidden, weights = layer(hidden, mask, output_attentions)
            if output_hidden_states:
                all_hidden.append(hidden)
            if output_attentions:
                all_attentions.append(weights)
        pooled = self.pooler(hidden) if self.pooler is not None else None
        out = BaseModelOutputWithPoolingAndCrossAttentions(
            last_hidden_state=hidden, pooler_output=pooled,
            hidden_states=tuple(all_hidden) if output_hidden_states else None,
            attentions=tuple(all_attentions) if output_attentions else None)
        return out if flag(return_dict, self.config.return_dict) else out.to_tuple()


class BertForSequenceClassification(BertPreTrainedModel):
    """BertModel + dropout + a Linear classifier on the pooled output. With labels: cross-entropy (integer
    labels, num_labels > 1), MSE (num_labels == 1) or BCE-with-logits (float multi-hot labels), chosen as
    transformers does through config.problem_type."""

    def __init__(self, config):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.bert = BertModel(config)
        p = config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
        self.dropout = nn.Dropout(p)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def get_input_embeddings(self):
        return self.bert.embeddings.word_embeddings

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                inputs_embeds=None, labels=None, output_attentions=None, output_hidden_states=None,
                return_dict=None):
        where = type(self).__name__
        base = self.bert(input_ids, attention_mask, token_type_ids, position_ids, head_mask, inputs_embeds,
                         output_attentions, output_hidden_states, return_dict=True)
        logits = self.classifier(self.dropout(base.pooler_output))
        loss = None
        if labels is not None:
            loss = self._loss(logits, labels, where)
        out = SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=base.hidden_states,
                                       attentions=base.attentions)
        return out if flag(return_dict, self.config.return_dict) else out.to_tuple()

    def _loss(self, logits, labels, where):
        arr = label_array(labels, where)
        if self.config.problem_type is None:
            if self.num_labels == 1:
                self.config.problem_type = "regression"
            elif arr.dtype.kind in "iu":
                self.config.problem_type = "single_label_classification"
            else:
                self.config.problem_type = "multi_label_classification"
        kind, batch = self.config.problem_type, logits.shape[0]
        if kind == "single_label_classification":
            y = class_labels(arr.reshape(-1) if arr.size == batch else arr, where, (batch,), self.num_labels)
            return F.cross_entropy(logits.reshape(-1, self.num_labels), y)
        y = tensor(arr.astype(np.float32))
        if kind == "regression":
            return F.mse_loss(logits.squeeze(), y.squeeze()) if self.num_labels == 1 else F.mse_loss(logits, y)
        if tuple(arr.shape) != tuple(logits.shape):
            raise ValueError(f"{where}: multi-label 'labels' must have shape {tuple(logits.shape)}, got {arr.shape}")
        return F.binary_cross_entropy_with_logits(logits, y)


class BertPredictionHeadTransform(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.transform_act_fn = activation(config.hidden_act, "BertConfig")
        self.hidden_act = config.hidden_act
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, hidden_states):
        return self.LayerNorm(linear_activation(self.dense, hidden_states, self.hidden_act))


class BertLMPredictionHead(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.transform = BertPredictionHeadTransform(config)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size, bias=True)
        self.bias = nn.Parameter(np.zeros(config.vocab_size, np.float32))

    def forward(self, hidden_states):
        return self.decoder(self.transform(hidden_states))


class BertOnlyMLMHead(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.predictions = BertLMPredictionHead(config)

    def forward(self, sequence_output):
        return self.predictions(sequence_output)


class BertForMaskedLM(BertPreTrainedModel):
    """BertModel (no pooler) + the masked-LM head, whose decoder weight is the word embedding matrix (tied)
    and whose decoder bias is cls.predictions.bias. With labels: cross-entropy over positions != -100."""
    _tied_weights_keys = {"cls.predictions.decoder.weight": "bert.embeddings.word_embeddings.weight",
                          "cls.predictions.decoder.bias": "cls.predictions.bias"}
    _tied_if_config = ("cls.predictions.decoder.weight",)
    _keys_to_ignore_on_load_unexpected = BertPreTrainedModel._keys_to_ignore_on_load_unexpected + (r"^pooler\.",
                                                                                                  r"^bert\.pooler\.")

    def __init__(self, config):
        super().__init__(config)
        self.bert = BertModel(config, add_pooling_layer=False)
        self.cls = BertOnlyMLMHead(config)
        self.post_init()

    def get_input_embeddings(self):
        return self.bert.embeddings.word_embeddings

    def get_output_embeddings(self):
        return self.cls.predictions.decoder

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                inputs_embeds=None, labels=None, output_attentions=None, output_hidden_states=None,
                return_dict=None):
        where = type(self).__name__
        base = self.bert(input_ids, attention_mask, token_type_ids, position_ids, head_mask, inputs_embeds,
                         output_attentions, output_hidden_states, return_dict=True)
        logits = self.cls(base.last_hidden_state)
        loss = None
        if labels is not None:
            y = class_labels(labels, where, tuple(logits.shape[:2]), self.config.vocab_size)
            loss = F.cross_entropy(logits.reshape(-1, self.config.vocab_size), y.reshape(-1), ignore_index=-100)
        out = MaskedLMOutput(loss=loss, logits=logits, hidden_states=base.hidden_states, attentions=base.attentions)
        return out if flag(return_dict, self.config.return_dict) else out.to_tuple()
