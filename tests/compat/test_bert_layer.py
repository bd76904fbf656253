"""A BERT encoder written the transformers way (modeling_bert.py's classes,
additive mask from ``(1.0 - mask[:, None, None, :]) * torch.finfo(dtype).min``),
and torch's own ``nn.TransformerEncoderLayer`` / ``nn.TransformerEncoder``, run
unchanged with ``import pyfastnn as torch``.

The port is checked against transformers' real BertModel first (same
state_dict keys, same outputs under torch), so what pyfastnn is compared
with is the real thing.
"""
import math
from types import SimpleNamespace

import numpy as np
import pytest

torch_ = pytest.importorskip("torch")
import pyfastnn  # noqa: E402
import pyfastnn.nn.functional  # noqa: E402,F401

from compat_helpers import as_np, assert_rel, compare_grads, copy_weights, rel_err  # noqa: E402
from compat_helpers import torch_single_thread  # noqa: E402,F401  (autouse fixture)

FWD_TOL = 2e-4
GRAD_TOL = 1e-3

CONFIG = dict(vocab_size=97, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
              hidden_act="gelu", hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1,
              max_position_embeddings=64, type_vocab_size=2, layer_norm_eps=1e-12, pad_token_id=0)


def build(torch, nn, F):
    """modeling_bert.py's encoder classes, written as transformers writes them (eager attention)."""
    ACT2FN = {"gelu": nn.functional.gelu, "relu": nn.functional.relu, "tanh": torch.tanh}

    class BertEmbeddings(nn.Module):
        """Construct the embeddings from word, position and token_type embeddings."""

        def __init__(self, config):
            super().__init__()
            self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size,
                                                padding_idx=config.pad_token_id)
            self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
            self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)

            self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
            self.dropout = nn.Dropout(config.hidden_dropout_prob)
            # position_ids (1, len position emb) is contiguous in memory and exported when serialized
            self.register_buffer(
                "position_ids", torch.arange(config.max_position_embeddings).expand((1, -1)), persistent=False
            )
            self.register_buffer(
                "token_type_ids", torch.zeros(self.position_ids.size(), dtype=torch.long), persistent=False
            )

        def forward(self, input_ids=None, token_type_ids=None, position_ids=None, past_key_values_length=0):
            input_shape = input_ids.size()
            seq_length = input_shape[1]

            if position_ids is None:
                position_ids = self.position_ids[:, past_key_values_length: seq_length + past_key_values_length]

            # Setting the token_type_ids to the registered buffer in constructor where it is all zeros, which
            # usually occurs when its auto-generated, registered buffer helps users when tracing the model without
            # passing token_type_ids, solves issue #5664
            if token_type_ids is None:
                if hasattr(self, "token_type_ids"):
                    buffered_token_type_ids = self.token_type_ids[:, :seq_length]
                    buffered_token_type_ids_expanded = buffered_token_type_ids.expand(input_shape[0], seq_length)
                    token_type_ids = buffered_token_type_ids_expanded
                else:
                    token_type_ids = torch.zeros(input_shape, dtype=torch.long, device=self.position_ids.device)

            inputs_embeds = self.word_embeddings(input_ids)
            token_type_embeddings = self.token_type_embeddings(token_type_ids)

            embeddings = inputs_embeds + token_type_embeddings
            position_embeddings = self.position_embeddings(position_ids)
            embeddings += position_embeddings
            embeddings = self.LayerNorm(embeddings)
            embeddings = self.dropout(embeddings)
            return embeddings

    class BertSelfAttention(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.num_attention_heads = config.num_attention_heads
            self.attention_head_size = int(config.hidden_size / config.num_attention_heads)
            self.all_head_size = self.num_attention_heads * self.attention_head_size

            self.query = nn.Linear(config.hidden_size, self.all_head_size)
            self.key = nn.Linear(config.hidden_size, self.all_head_size)
            self.value = nn.Linear(config.hidden_size, self.all_head_size)

            self.dropout = nn.Dropout(config.attention_probs_dropout_prob)

        def transpose_for_scores(self, x):
            new_x_shape = x.size()[:-1] + (self.num_attention_heads, self.attention_head_size)
            x = x.view(new_x_shape)
            return x.permute(0, 2, 1, 3)

        def forward(self, hidden_states, attention_mask=None, head_mask=None, output_attentions=False):
            mixed_query_layer = self.query(hidden_states)

            key_layer = self.transpose_for_scores(self.key(hidden_states))
            value_layer = self.transpose_for_scores(self.value(hidden_states))
            query_layer = self.transpose_for_scores(mixed_query_layer)

            # Take the dot product between "query" and "key" to get the raw attention scores.
            attention_scores = torch.matmul(query_layer, key_layer.transpose(-1, -2))

            attention_scores = attention_scores / math.sqrt(self.attention_head_size)
            if attention_mask is not None:
                # Apply the attention mask is (precomputed for all layers in BertModel forward() function)
                attention_scores = attention_scores + attention_mask

            # Normalize the attention scores to probabilities.
            attention_probs = nn.functional.softmax(attention_scores, dim=-1)

            # This is actually dropping out entire tokens to attend to, which might
            # seem a bit unusual, but is taken from the original Transformer paper.
            attention_probs = self.dropout(attention_probs)

            # Mask heads if we want to
            if head_mask is not None:
                attention_probs = attention_probs * head_mask

            context_layer = torch.matmul(attention_probs, value_layer)

            context_layer = context_layer.permute(0, 2, 1, 3).contiguous()
            new_context_layer_shape = context_layer.size()[:-2] + (self.all_head_size,)
            context_layer = context_layer.view(new_context_layer_shape)

            outputs = (context_layer, attention_probs) if output_attentions else (context_layer,)
            return outputs

    class BertSelfOutput(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.dense = nn.Linear(config.hidden_size, config.hidden_size)
            self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
            self.dropout = nn.Dropout(config.hidden_dropout_prob)

        def forward(self, hidden_states, input_tensor):
            hidden_states = self.dense(hidden_states)
            hidden_states = self.dropout(hidden_states)
            hidden_states = self.LayerNorm(hidden_states + input_tensor)
            return hidden_states

    class BertAttention(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.self = BertSelfAttention(config)
            self.output = BertSelfOutput(config)

        def forward(self, hidden_states, attention_mask=None, head_mask=None, output_attentions=False):
            self_outputs = self.self(hidden_states, attention_mask, head_mask, output_attentions)
            attention_output = self.output(self_outputs[0], hidden_states)
            outputs = (attention_output,) + self_outputs[1:]  # add attentions if we output them
            return outputs

    class BertIntermediate(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
            if isinstance(config.hidden_act, str):
                self.intermediate_act_fn = ACT2FN[config.hidden_act]
            else:
                self.intermediate_act_fn = config.hidden_act

        def forward(self, hidden_states):
            hidden_states = self.dense(hidden_states)
            hidden_states = self.intermediate_act_fn(hidden_states)
            return hidden_states

    class BertOutput(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.dense = nn.Linear(config.intermediate_size, config.hidden_size)
            self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
            self.dropout = nn.Dropout(config.hidden_dropout_prob)

        def forward(self, hidden_states, input_tensor):
            hidden_states = self.dense(hidden_states)
            hidden_states = self.dropout(hidden_states)
            hidden_states = self.LayerNorm(hidden_states + input_tensor)
            return hidden_states

    class BertLayer(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.seq_len_dim = 1
            self.attention = BertAttention(config)
            self.intermediate = BertIntermediate(config)
            self.output = BertOutput(config)

        def forward(self, hidden_states, attention_mask=None, head_mask=None, output_attentions=False):
            self_attention_outputs = self.attention(hidden_states, attention_mask, head_mask,
                                                    output_attentions=output_attentions)
            attention_output = self_attention_outputs[0]
            outputs = self_attention_outputs[1:]  # add self attentions if we output attention weights
            layer_output = self.feed_forward_chunk(attention_output)
            outputs = (layer_output,) + outputs
            return outputs

        def feed_forward_chunk(self, attention_output):
            intermediate_output = self.intermediate(attention_output)
            layer_output = self.output(intermediate_output, attention_output)
            return layer_output

    class BertEncoder(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.config = config
            self.layer = nn.ModuleList([BertLayer(config) for _ in range(config.num_hidden_layers)])

        def forward(self, hidden_states, attention_mask=None, head_mask=None, output_attentions=False,
                    output_hidden_states=False):
            all_hidden_states = () if output_hidden_states else None
            all_self_attentions = () if output_attentions else None
            for i, layer_module in enumerate(self.layer):
                if output_hidden_states:
                    all_hidden_states = all_hidden_states + (hidden_states,)
                layer_head_mask = head_mask[i] if head_mask is not None else None
                layer_outputs = layer_module(hidden_states, attention_mask, layer_head_mask, output_attentions)
                hidden_states = layer_outputs[0]
                if output_attentions:
                    all_self_attentions = all_self_attentions + (layer_outputs[1],)
            if output_hidden_states:
                all_hidden_states = all_hidden_states + (hidden_states,)
            return hidden_states, all_hidden_states, all_self_attentions

    class BertPooler(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.dense = nn.Linear(config.hidden_size, config.hidden_size)
            self.activation = nn.Tanh()

        def forward(self, hidden_states):
            # We "pool" the model by simply taking the hidden state corresponding
            # to the first token.
            first_token_tensor = hidden_states[:, 0]
            pooled_output = self.dense(first_token_tensor)
            pooled_output = self.activation(pooled_output)
            return pooled_output

    class BertModel(nn.Module):
        def __init__(self, config, add_pooling_layer=True):
            super().__init__()
            self.config = config
            self.embeddings = BertEmbeddings(config)
            self.encoder = BertEncoder(config)
            self.pooler = BertPooler(config) if add_pooling_layer else None
            self.apply(self._init_weights)

        def _init_weights(self, module):
            """Initialize the weights"""
            if isinstance(module, nn.Linear):
                module.weight.data.normal_(mean=0.0, std=0.02)
                if module.bias is not None:
                    module.bias.data.zero_()
            elif isinstance(module, nn.Embedding):
                module.weight.data.normal_(mean=0.0, std=0.02)
                if module.padding_idx is not None:
                    module.weight.data[module.padding_idx].zero_()
            elif isinstance(module, nn.LayerNorm):
                module.bias.data.zero_()
                module.weight.data.fill_(1.0)

        def get_extended_attention_mask(self, attention_mask, input_shape, dtype=None):
            if dtype is None:
                dtype = torch.float32
            if attention_mask.dim() == 3:
                extended_attention_mask = attention_mask[:, None, :, :]
            elif attention_mask.dim() == 2:
                extended_attention_mask = attention_mask[:, None, None, :]
            else:
                raise ValueError(
                    f"Wrong shape for input_ids (shape {input_shape}) or attention_mask (shape {attention_mask.shape})"
                )
            extended_attention_mask = extended_attention_mask.to(dtype=dtype)  # fp16 compatibility
            extended_attention_mask = (1.0 - extended_attention_mask) * torch.finfo(dtype).min
            return extended_attention_mask

        def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                    output_attentions=False, output_hidden_states=False):
            input_shape = input_ids.size()
            batch_size, seq_length = input_shape
            device = input_ids.device
            if attention_mask is None:
                attention_mask = torch.ones(((batch_size, seq_length)), device=device)
            embedding_output = self.embeddings(input_ids=input_ids, position_ids=position_ids,
                                               token_type_ids=token_type_ids)
            extended_attention_mask = self.get_extended_attention_mask(attention_mask, input_shape,
                                                                       embedding_output.dtype)
            sequence_output, hidden_states, attentions = self.encoder(
                embedding_output, attention_mask=extended_attention_mask, output_attentions=output_attentions,
                output_hidden_states=output_hidden_states)
            pooled_output = self.pooler(sequence_output) if self.pooler is not None else None
            return SimpleNamespace(last_hidden_state=sequence_output, pooler_output=pooled_output,
                                   hidden_states=hidden_states, attentions=attentions)

    class BertForSequenceClassification(nn.Module):
        def __init__(self, config, num_labels=3):
            super().__init__()
            self.num_labels = num_labels
            self.bert = BertModel(config)
            self.dropout = nn.Dropout(config.hidden_dropout_prob)
            self.classifier = nn.Linear(config.hidden_size, num_labels)

        def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, labels=None):
            outputs = self.bert(input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            pooled_output = outputs.pooler_output
            pooled_output = self.dropout(pooled_output)
            logits = self.classifier(pooled_output)
            loss = None
            if labels is not None:
                loss_fct = nn.CrossEntropyLoss()
                loss = loss_fct(logits.view(-1, self.num_labels), labels.view(-1))
            return loss, logits

    return SimpleNamespace(BertEmbeddings=BertEmbeddings, BertSelfAttention=BertSelfAttention, BertLayer=BertLayer,
                           BertModel=BertModel, BertForSequenceClassification=BertForSequenceClassification)


TORCH = (torch_, torch_.nn, torch_.nn.functional)
FAST = (pyfastnn, pyfastnn.nn, pyfastnn.nn.functional)


def cfg(**kw):
    return SimpleNamespace(**dict(CONFIG, **kw))


def inputs(seed=0, b=3, t=11):
    """input ids, a padding mask with rows of different lengths (one unpadded), token types."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, CONFIG["vocab_size"], (b, t)).astype(np.int64)
    mask = np.ones((b, t), np.int64)
    for r, n in enumerate([t, 7, 3][:b]):
        mask[r, n:] = 0
        ids[r, n:] = 0
    types = np.zeros((b, t), np.int64)
    types[:, t // 2:] = 1
    return ids, mask, types


def pair(cls="BertModel", **kw):
    torch_.manual_seed(0)
    tm = getattr(build(*TORCH), cls)(cfg(**kw))
    fm = getattr(build(*FAST), cls)(cfg(**kw))
    copy_weights(tm, fm)
    tm.eval()
    fm.eval()
    return tm, fm


def test_port_matches_transformers_bert():
    """Sanity of the port itself: transformers' BertModel weights load strictly and give the same outputs."""
    transformers = pytest.importorskip("transformers")
    hf_cfg = transformers.BertConfig(**CONFIG, attn_implementation="eager")
    torch_.manual_seed(0)
    hf = transformers.BertModel(hf_cfg).eval()
    port = build(*TORCH).BertModel(cfg()).eval()
    port.load_state_dict(hf.state_dict(), strict=True)
    ids, mask, types = inputs()
    with torch_.no_grad():
        ref = hf(input_ids=torch_.from_numpy(ids), attention_mask=torch_.from_numpy(mask),
                 token_type_ids=torch_.from_numpy(types))
        got = port(torch_.from_numpy(ids), torch_.from_numpy(mask), torch_.from_numpy(types))
    assert rel_err(got.last_hidden_state, ref.last_hidden_state) < 1e-5
    assert rel_err(got.pooler_output, ref.pooler_output) < 1e-5
    # and pyfastnn's port takes transformers' state_dict as is
    fm = build(*FAST).BertModel(cfg()).eval()
    fm.load_state_dict({k: v.detach().numpy() for k, v in hf.state_dict().items()})
    out = fm(pyfastnn.from_numpy(ids), pyfastnn.from_numpy(mask), pyfastnn.from_numpy(types))
    assert_rel(out.last_hidden_state, ref.last_hidden_state, FWD_TOL, "vs transformers.BertModel")


def test_extended_attention_mask():
    tm, fm = pair()
    _, mask, _ = inputs()
    et = tm.get_extended_attention_mask(torch_.from_numpy(mask), mask.shape)
    ef = fm.get_extended_attention_mask(pyfastnn.from_numpy(mask), mask.shape)
    assert tuple(ef.shape) == (3, 1, 1, 11)
    assert ef.dtype == pyfastnn.float32
    np.testing.assert_array_equal(as_np(ef), as_np(et))
    assert pyfastnn.finfo(pyfastnn.float32).min == torch_.finfo(torch_.float32).min
    # a 3-D mask takes the [:, None, :, :] branch
    m3 = np.tril(np.ones((2, 5, 5), np.float32))
    np.testing.assert_array_equal(as_np(fm.get_extended_attention_mask(pyfastnn.from_numpy(m3), (2, 5))),
                                  as_np(tm.get_extended_attention_mask(torch_.from_numpy(m3), (2, 5))))


def test_bert_layer_forward_with_padding_mask_and_attentions():
    tm, fm = pair()
    ids, mask, types = inputs(1)
    with torch_.no_grad():
        ot = tm(torch_.from_numpy(ids), torch_.from_numpy(mask), torch_.from_numpy(types),
                output_attentions=True, output_hidden_states=True)
    with pyfastnn.no_grad():
        of = fm(pyfastnn.from_numpy(ids), pyfastnn.from_numpy(mask), pyfastnn.from_numpy(types),
                output_attentions=True, output_hidden_states=True)
    assert_rel(of.last_hidden_state, ot.last_hidden_state, FWD_TOL, "last_hidden_state")
    assert_rel(of.pooler_output, ot.pooler_output, FWD_TOL, "pooler_output")
    assert len(of.hidden_states) == 3 and len(of.attentions) == 2
    for i, (a, b) in enumerate(zip(of.attentions, ot.attentions)):
        assert_rel(a, b, FWD_TOL, f"attention probs {i}")
        # padded keys get exactly zero probability
        assert np.all(as_np(a)[2, :, :, 3:] == 0)
    # no token_type_ids: the registered non-persistent buffer is used
    with torch_.no_grad():
        ot2 = tm(torch_.from_numpy(ids), torch_.from_numpy(mask))
    with pyfastnn.no_grad():
        of2 = fm(pyfastnn.from_numpy(ids), pyfastnn.from_numpy(mask))
    assert_rel(of2.last_hidden_state, ot2.last_hidden_state, FWD_TOL, "default token types")
    assert "embeddings.position_ids" not in fm.state_dict()


def test_bert_classifier_gradients_and_finetune_steps():
    tm, fm = pair("BertForSequenceClassification", hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    ids, mask, types = inputs(2)
    labels = np.array([0, 2, 1], np.int64)

    def finetune(torch, model, steps=3):
        model.train()
        no_decay = ["bias", "LayerNorm.weight"]
        optimizer_grouped_parameters = [
            {"params": [p for n, p in model.named_parameters() if not any(nd in n for nd in no_decay)],
             "weight_decay": 0.01},
            {"params": [p for n, p in model.named_parameters() if any(nd in n for nd in no_decay)],
             "weight_decay": 0.0},
        ]
        optimizer = torch.optim.AdamW(optimizer_grouped_parameters, lr=1e-3, eps=1e-8)
        batch = tuple(torch.from_numpy(a.copy()) for a in (ids, mask, types, labels))
        losses, grads = [], None
        for step in range(steps):
            b_input_ids, b_input_mask, b_types, b_labels = batch
            model.zero_grad()
            loss, logits = model(b_input_ids, attention_mask=b_input_mask, token_type_ids=b_types, labels=b_labels)
            loss.backward()
            if step == 0:
                grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            losses.append(loss.item())
        return losses, grads, logits

    tl, tg, tlog = finetune(torch_, tm)
    fl, fg, flog = finetune(pyfastnn, fm)
    assert sorted(fg) == sorted(tg)
    # key biases get mathematically zero gradients (softmax is shift invariant): 1e-12 noise in both
    floor = 1e-6 * max(float(np.linalg.norm(as_np(g))) for g in tg.values())
    bad = [n for n in tg if not rel_err(fg[n], tg[n], floor) <= GRAD_TOL]
    assert not bad, "gradients differ: " + ", ".join(f"{n}: {rel_err(fg[n], tg[n], floor):.3g}" for n in bad)
    np.testing.assert_allclose(fl, tl, rtol=FWD_TOL)
    assert_rel(flog, tlog, 1e-3, "logits after 3 AdamW steps")


def test_dropout_active_in_train_mode_only():
    _, fm = pair()
    ids, mask, types = inputs(3)
    args = [pyfastnn.from_numpy(a) for a in (ids, mask, types)]
    with pyfastnn.no_grad():
        e1 = fm(*args).last_hidden_state
        e2 = fm(*args).last_hidden_state
        fm.train()
        t1 = fm(*args).last_hidden_state
        t2 = fm(*args).last_hidden_state
    np.testing.assert_array_equal(as_np(e1), as_np(e2))
    assert rel_err(t1, e1) > 1e-3 and rel_err(t1, t2) > 1e-3


# ----------------------------------------------------------------- nn.TransformerEncoder
def encoder_program(torch, nn, F, norm_first, num_layers=2, d_model=32, nhead=4, dim_feedforward=64):
    """The usual text classifier around torch's TransformerEncoder."""

    class TextClassifier(nn.Module):
        def __init__(self, ntoken=50, nclass=3):
            super().__init__()
            self.embedding = nn.Embedding(ntoken, d_model, padding_idx=0)
            self.pos = nn.Parameter(torch.zeros(1, 16, d_model))
            encoder_layer = nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout=0.0,
                                                       activation="gelu", batch_first=True, norm_first=norm_first)
            self.encoder = nn.TransformerEncoder(encoder_layer, num_layers=num_layers,
                                                 norm=nn.LayerNorm(d_model) if norm_first else None)
            self.head = nn.Linear(d_model, nclass)

        def forward(self, src, src_key_padding_mask):
            x = self.embedding(src) * math.sqrt(d_model) + self.pos[:, :src.size(1)]
            x = self.encoder(x, src_key_padding_mask=src_key_padding_mask)
            keep = (~src_key_padding_mask).unsqueeze(-1).type_as(x)
            pooled = (x * keep).sum(dim=1) / keep.sum(dim=1).clamp(min=1.0)
            return x, self.head(pooled)

    return TextClassifier


@pytest.mark.filterwarnings("ignore:enable_nested_tensor is True:UserWarning")
@pytest.mark.parametrize("norm_first", [False, True], ids=["post_norm", "pre_norm"])
def test_transformer_encoder_with_key_padding_mask(norm_first):
    torch_.manual_seed(0)
    tm = encoder_program(*TORCH, norm_first)()
    with torch_.no_grad():
        tm.pos.normal_(std=0.1)
    fm = encoder_program(*FAST, norm_first)()
    copy_weights(tm, fm)
    assert list(fm.state_dict()) == list(tm.state_dict())
    ids, mask, _ = inputs(4, t=9)
    ids = ids % 50
    pad_t = torch_.from_numpy(mask == 0)
    pad_f = pyfastnn.from_numpy(mask == 0)
    assert pad_f.dtype == pyfastnn.bool
    # training mode (the generic path in torch), forward and backward
    xt, yt = tm(torch_.from_numpy(ids), pad_t)
    xf, yf = fm(pyfastnn.from_numpy(ids), pad_f)
    keep = mask.astype(bool)
    assert_rel(as_np(xf)[keep], as_np(xt)[keep], FWD_TOL, "encoder output at real tokens")
    assert_rel(yf, yt, FWD_TOL, "classifier logits")
    tgt = np.array([0, 1, 2])
    F_t, F_f = torch_.nn.functional, pyfastnn.nn.functional
    F_t.cross_entropy(yt, torch_.from_numpy(tgt)).backward()
    F_f.cross_entropy(yf, pyfastnn.from_numpy(tgt)).backward()
    compare_grads(tm, fm, GRAD_TOL)
    # eval + no_grad (torch's fast path: outputs at padded positions are unspecified, compare real tokens)
    tm.eval()
    fm.eval()
    with torch_.no_grad():
        xt, yt = tm(torch_.from_numpy(ids), pad_t)
    with pyfastnn.no_grad():
        xf, yf = fm(pyfastnn.from_numpy(ids), pad_f)
    assert_rel(as_np(xf)[keep], as_np(xt)[keep], FWD_TOL, "eval encoder output at real tokens")
    assert_rel(yf, yt, FWD_TOL, "eval classifier logits")


def test_transformer_encoder_layer_state_dict_keys_and_causal_mask():
    torch_.manual_seed(0)
    lt = torch_.nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, activation="gelu", batch_first=True)
    lf = pyfastnn.nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, activation="gelu", batch_first=True)
    assert list(lf.state_dict()) == list(lt.state_dict())
    copy_weights(lt, lf)
    x = np.random.default_rng(0).standard_normal((2, 6, 16)).astype(np.float32)
    mt = torch_.nn.Transformer.generate_square_subsequent_mask(6)
    mf = pyfastnn.nn.Transformer.generate_square_subsequent_mask(6)
    np.testing.assert_array_equal(as_np(mf), as_np(mt))
    yt = lt(torch_.from_numpy(x), src_mask=mt, is_causal=True)
    yf = lf(pyfastnn.from_numpy(x), src_mask=mf, is_causal=True)
    assert_rel(yf, yt, FWD_TOL, "causal encoder layer")


def _sdpa_case(torch, kind, q, k, v):
    F = torch.nn.functional
    B, H, L, D = q.shape
    S = k.shape[2]
    if kind == "additive (B,1,1,S)":
        keep = torch.ones(B, S)
        keep[1, 3:] = 0
        mask = (1.0 - keep[:, None, None, :]) * torch.finfo(q.dtype).min
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    if kind == "bool (B,1,L,S)":
        mask = torch.ones(B, 1, L, S, dtype=torch.bool).tril(diagonal=1)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    if kind == "is_causal":
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    if kind == "scale=":
        return F.scaled_dot_product_attention(q, k, v, scale=0.3)
    if kind == "float (L,S) bias":
        bias = torch.arange(L * S, dtype=q.dtype).reshape(L, S).sin()
        return F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
    if kind == "3-D inputs":
        return F.scaled_dot_product_attention(q[0], k[0], v[0])
    raise ValueError(kind)


@pytest.mark.parametrize("kind", ["additive (B,1,1,S)", "bool (B,1,L,S)", "is_causal", "scale=", "float (L,S) bias",
                                  "3-D inputs"])
def test_scaled_dot_product_attention_masks_and_grads(kind):
    rng = np.random.default_rng(3)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in [(2, 3, 5, 8), (2, 3, 7, 8), (2, 3, 7, 8)]]
    if kind in ("is_causal", "bool (B,1,L,S)"):
        arrays = [a[:, :, :5] for a in arrays]
    outs = []
    for L in (torch_, pyfastnn):
        q, k, v = (L.tensor(a, requires_grad=True) for a in arrays)
        y = _sdpa_case(L, kind, q, k, v)
        (y * y).sum().backward()
        outs.append((y, q.grad, k.grad, v.grad))
    for name, f, t in zip(["out", "dq", "dk", "dv"], outs[1], outs[0]):
        assert tuple(f.shape) == tuple(t.shape), name
        assert_rel(f, t, FWD_TOL if name == "out" else GRAD_TOL, f"{kind}: {name}")
