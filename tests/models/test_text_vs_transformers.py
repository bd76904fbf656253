"""BERT and GPT-2 against transformers on tiny random models: directories transformers' save_pretrained
writes load with from_pretrained and give transformers' logits, losses and gradients on padded batches;
transformers loads what our save_pretrained writes; greedy generation is token-for-token transformers'."""
import os
import warnings

import numpy as np
import pytest

import pyfastnn
from pyfastnn import models

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("safetensors")

VOCAB = 99
EOS = 98


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    transformers.logging.set_verbosity_error()
    yield
    torch.set_num_threads(before)


def rel_err(ours, ref):
    ours = ours.detach().numpy() if hasattr(ours, "detach") else np.asarray(ours)
    ref = ref.detach().numpy() if hasattr(ref, "detach") else np.asarray(ref)
    return float(np.abs(ours - ref).max() / max(np.abs(ref).max(), 1e-30))


def bert_config(**kw):
    return transformers.BertConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                   intermediate_size=37, max_position_embeddings=40, **kw)


def gpt2_config(**kw):
    return transformers.GPT2Config(vocab_size=VOCAB, n_embd=32, n_layer=2, n_head=4, n_positions=48,
                                   bos_token_id=EOS, eos_token_id=EOS, **kw)


@pytest.fixture(scope="module")
def hf_dirs(tmp_path_factory):
    """Tiny random transformers models, saved by transformers (weights random but fixed by the seed)."""
    root = tmp_path_factory.mktemp("hf")
    torch.manual_seed(0)
    out = {}
    for name, model in (("bert_cls", transformers.BertForSequenceClassification(bert_config(num_labels=3))),
                        ("bert_mlm", transformers.BertForMaskedLM(bert_config())),
                        ("gpt2", transformers.GPT2LMHeadModel(gpt2_config()))):
        with torch.no_grad():     # non-zero biases / LayerNorm affine everywhere, so every parameter is checked
            for n, p in model.named_parameters():
                if n.endswith("bias") or "LayerNorm" in n or ".ln_" in n:
                    p.add_(torch.randn_like(p) * 0.1)
        path = os.path.join(root, name)
        model.save_pretrained(path)
        out[name] = path
    return out


def _padded_batch(seed, left):
    """Token ids with a padded row (on the right, or the left as for generation) and a full row."""
    rng = np.random.RandomState(seed)
    ids = rng.randint(1, VOCAB - 1, (3, 9))
    mask = np.ones_like(ids)
    if left:
        mask[1, :3] = 0
        mask[2, :1] = 0
    else:
        mask[1, 6:] = 0
        mask[2, 8:] = 0
    ids[mask == 0] = 0
    return ids, mask


def _grad_errors(ours, ref, transpose=()):
    """Relative gradient error per parameter; transformers' Conv1D weights are compared transposed."""
    ref_params = dict(ref.named_parameters())
    scale = max(float(np.abs(p.grad.numpy()).max()) for p in ref.parameters())
    errors = {}
    for name, p in ours.named_parameters():
        g_ref = ref_params[name].grad.numpy()
        if any(name.endswith(t) for t in transpose):
            g_ref = g_ref.T
        g = p.grad.numpy()
        # a key bias has a zero gradient in exact arithmetic (softmax ignores a per-query constant): compare it
        # on the scale of the other gradients instead of its own rounding noise
        denom = np.abs(g_ref).max() if not name.endswith("key.bias") else scale
        errors[name] = float(np.abs(g - g_ref).max() / denom)
    return errors


@pytest.mark.parametrize("left", [False, True])
def test_bert_classifier_matches_transformers(hf_dirs, left):
    ref = transformers.BertForSequenceClassification.from_pretrained(hf_dirs["bert_cls"]).eval()
    ours = models.BertForSequenceClassification.from_pretrained(hf_dirs["bert_cls"])
    assert not ours.training and ours.config.num_labels == 3
    ids, mask = _padded_batch(1, left)
    types = np.zeros_like(ids)
    types[:, 4:] = 1
    labels = np.array([0, 2, 1])
    r = ref(torch.tensor(ids), attention_mask=torch.tensor(mask), token_type_ids=torch.tensor(types),
            labels=torch.tensor(labels))
    o = ours(ids, attention_mask=mask, token_type_ids=types, labels=labels)
    assert rel_err(o.logits, r.logits) < 1e-4
    assert abs(o.loss.item() - r.loss.item()) / abs(r.loss.item()) < 1e-4
    r.loss.backward()
    o.loss.backward()
    errors = _grad_errors(ours, ref)
    assert max(errors.values()) < 1e-3, sorted(errors.items(), key=lambda kv: -kv[1])[:3]


def test_bert_masked_lm_matches_transformers_and_ties_the_decoder(hf_dirs):
    ref = transformers.BertForMaskedLM.from_pretrained(hf_dirs["bert_mlm"]).eval()
    ours = models.BertForMaskedLM.from_pretrained(hf_dirs["bert_mlm"])
    assert ours.cls.predictions.decoder.weight is ours.bert.embeddings.word_embeddings.weight
    assert ours.cls.predictions.decoder.bias is ours.cls.predictions.bias
    ids, mask = _padded_batch(2, left=False)
    labels = np.full_like(ids, -100)
    labels[:, 2] = ids[:, 2]
    labels[0, 5] = 7
    r = ref(torch.tensor(ids), attention_mask=torch.tensor(mask), labels=torch.tensor(labels))
    o = ours(ids, attention_mask=mask, labels=labels)
    assert rel_err(o.logits, r.logits) < 1e-4
    assert abs(o.loss.item() - r.loss.item()) / r.loss.item() < 1e-4
    r.loss.backward()
    o.loss.backward()
    errors = _grad_errors(ours, ref)
    assert max(errors.values()) < 1e-3, sorted(errors.items(), key=lambda kv: -kv[1])[:3]


def test_bert_model_outputs_hidden_states_and_attentions(hf_dirs):
    ref = transformers.BertModel.from_pretrained(hf_dirs["bert_cls"], attn_implementation="eager").eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = models.BertModel.from_pretrained(hf_dirs["bert_cls"])        # the head's weights are unused
    ids, mask = _padded_batch(3, left=False)
    r = ref(torch.tensor(ids), attention_mask=torch.tensor(mask), output_hidden_states=True,
            output_attentions=True)
    o = ours(ids, attention_mask=mask, output_hidden_states=True, output_attentions=True)
    assert rel_err(o.last_hidden_state, r.last_hidden_state) < 1e-4
    assert rel_err(o.pooler_output, r.pooler_output) < 1e-4
    assert rel_err(o[1], r[1]) < 1e-4 and o["pooler_output"] is o.pooler_output
    assert len(o.hidden_states) == len(r.hidden_states) == 3
    assert max(rel_err(a, b) for a, b in zip(o.hidden_states, r.hidden_states)) < 1e-4
    assert len(o.attentions) == 2 and max(rel_err(a, b) for a, b in zip(o.attentions, r.attentions)) < 1e-4
    last, pooled = ours(ids, attention_mask=mask, return_dict=False)
    assert rel_err(last, r.last_hidden_state) < 1e-4


@pytest.mark.parametrize("left", [False, True])
def test_gpt2_lm_matches_transformers(hf_dirs, left):
    ref = transformers.GPT2LMHeadModel.from_pretrained(hf_dirs["gpt2"]).eval()
    ours = models.GPT2LMHeadModel.from_pretrained(hf_dirs["gpt2"])
    assert ours.lm_head.weight is ours.transformer.wte.weight
    ids, mask = _padded_batch(4, left)
    positions = np.maximum(np.cumsum(mask, 1) - 1, 0) * mask if left else None
    labels = np.where(mask == 1, ids, -100)
    kw = {} if positions is None else {"position_ids": torch.tensor(positions)}
    r = ref(torch.tensor(ids), attention_mask=torch.tensor(mask), labels=torch.tensor(labels), **kw)
    o = ours(ids, attention_mask=mask, labels=labels, position_ids=positions)
    real = mask.astype(bool)
    assert rel_err(o.logits.numpy()[real], r.logits.detach().numpy()[real]) < 1e-4
    assert rel_err(o.logits, r.logits) < 1e-4            # padded rows too (both give zero attention there)
    assert abs(o.loss.item() - r.loss.item()) / r.loss.item() < 1e-4
    r.loss.backward()
    o.loss.backward()
    errors = _grad_errors(ours, ref, transpose=("c_attn.weight", "c_proj.weight", "c_fc.weight"))
    assert max(errors.values()) < 1e-3, sorted(errors.items(), key=lambda kv: -kv[1])[:3]


def test_gpt2_hidden_states_attentions_and_unpadded_loss(hf_dirs):
    ref = transformers.GPT2LMHeadModel.from_pretrained(hf_dirs["gpt2"], attn_implementation="eager").eval()
    ours = models.GPT2LMHeadModel.from_pretrained(hf_dirs["gpt2"])
    ids = np.random.RandomState(5).randint(0, VOCAB, (2, 11))
    r = ref(torch.tensor(ids), labels=torch.tensor(ids), output_hidden_states=True, output_attentions=True)
    o = ours(ids, labels=ids, output_hidden_states=True, output_attentions=True)
    assert abs(o.loss.item() - r.loss.item()) / r.loss.item() < 1e-4
    assert len(o.hidden_states) == len(r.hidden_states) == 3
    assert max(rel_err(a, b) for a, b in zip(o.hidden_states, r.hidden_states)) < 1e-4
    assert max(rel_err(a, b) for a, b in zip(o.attentions, r.attentions)) < 1e-4


def test_gpt2_cache_step_equals_the_full_forward(hf_dirs):
    ours = models.GPT2LMHeadModel.from_pretrained(hf_dirs["gpt2"])
    ids, mask = _padded_batch(6, left=True)
    pos = np.maximum(np.cumsum(mask, 1) - 1, 0) * mask
    full = ours(ids, attention_mask=mask, position_ids=pos).logits.numpy()
    first = ours(ids[:, :5], attention_mask=mask[:, :5], position_ids=pos[:, :5], use_cache=True)
    cache = first.past_key_values
    assert isinstance(cache, models.KVCache) and cache.get_seq_length() == 5 and first.cache is cache
    steps = [first.logits.numpy()]
    for t in range(5, 9):
        out = ours(ids[:, t:t + 1], attention_mask=mask[:, :t + 1], position_ids=pos[:, t:t + 1],
                   past_key_values=cache)
        steps.append(out.logits.numpy())
    assert rel_err(np.concatenate(steps, axis=1), full) < 1e-5
    keys, values = cache[0]
    assert tuple(keys.shape) == (3, 4, 9, 8) and len(cache.to_legacy_cache()) == 2
    # transformers' legacy tuple cache is accepted too
    legacy = ours(ids[:, :5], attention_mask=mask[:, :5], position_ids=pos[:, :5], use_cache=True)
    legacy = tuple((k.numpy(), v.numpy()) for k, v in legacy.past_key_values)
    out = ours(ids[:, 5:], attention_mask=mask, position_ids=pos[:, 5:], past_key_values=legacy)
    assert rel_err(out.logits, full[:, 5:]) < 1e-5


def _eos_from(greedy_row, prompt_len):
    """A token greedy decoding produces mid-way, to use as eos so that row finishes early."""
    return int(greedy_row[prompt_len + 3])


@pytest.mark.parametrize("use_cache", [True, False])
def test_greedy_generation_is_transformers_token_for_token(hf_dirs, use_cache):
    ref = transformers.GPT2LMHeadModel.from_pretrained(hf_dirs["gpt2"]).eval()
    ours = models.GPT2LMHeadModel.from_pretrained(hf_dirs["gpt2"])
    rng = np.random.RandomState(7)
    prompt = rng.randint(0, EOS, (3, 6))
    mask = np.ones_like(prompt)
    mask[1, :2] = 0                      # left padding, as batched generation needs
    mask[2, :4] = 0
    prompt[mask == 0] = EOS
    kw = dict(attention_mask=mask, max_new_tokens=15, pad_token_id=EOS)
    expected = ref.generate(torch.tensor(prompt), do_sample=False, **{**kw, "attention_mask": torch.tensor(mask)})
    got = ours.generate(prompt, use_cache=use_cache, **kw)
    assert isinstance(got, pyfastnn.Tensor) and got.dtype == pyfastnn.int64
    np.testing.assert_array_equal(got.numpy(), expected.numpy())
    # an eos that one row reaches early: that row continues with pad, as transformers pads it
    eos = _eos_from(expected.numpy()[0], 6)
    expected = ref.generate(torch.tensor(prompt), do_sample=False, eos_token_id=eos,
                            **{**kw, "attention_mask": torch.tensor(mask)})
    got = ours.generate(prompt, use_cache=use_cache, eos_token_id=eos, **kw)
    np.testing.assert_array_equal(got.numpy(), expected.numpy())
    single = ours.generate(prompt[:1], max_new_tokens=4, use_cache=use_cache)
    np.testing.assert_array_equal(single.numpy(), ref.generate(torch.tensor(prompt[:1]), max_new_tokens=4,
                                                                do_sample=False).numpy())


def test_transformers_reads_what_save_pretrained_writes(hf_dirs, tmp_path):
    ids, mask = _padded_batch(8, left=False)
    for name, ours_cls, ref_cls in (("bert_cls", models.BertForSequenceClassification,
                                     transformers.BertForSequenceClassification),
                                    ("bert_mlm", models.BertForMaskedLM, transformers.BertForMaskedLM),
                                    ("gpt2", models.GPT2LMHeadModel, transformers.GPT2LMHeadModel)):
        ours = ours_cls.from_pretrained(hf_dirs[name])
        with pyfastnn.no_grad():       # move every weight, so the file is ours, not a copy of transformers'
            for p in ours.parameters():
                p.add_(0.01)
        out_dir = os.path.join(tmp_path, name)
        ours.save_pretrained(out_dir)
        assert sorted(os.listdir(out_dir)) == ["config.json", "model.safetensors"]
        ref = ref_cls.from_pretrained(out_dir).eval()
        assert ref.config.architectures == [ours_cls.__name__]
        r = ref(torch.tensor(ids), attention_mask=torch.tensor(mask))
        o = ours(ids, attention_mask=mask)
        assert rel_err(o.logits, r.logits) < 1e-4, name
        again = ours_cls.from_pretrained(out_dir)
        assert rel_err(again(ids, attention_mask=mask).logits, o.logits) < 1e-6


def test_sharded_and_pytorch_bin_directories_load(hf_dirs, tmp_path):
    ref = transformers.GPT2LMHeadModel.from_pretrained(hf_dirs["gpt2"]).eval()
    sharded = os.path.join(tmp_path, "sharded")
    ref.save_pretrained(sharded, max_shard_size="40KB")
    assert "model.safetensors.index.json" in os.listdir(sharded)
    binary = os.path.join(tmp_path, "bin")
    os.makedirs(binary)
    ref.config.save_pretrained(binary)
    torch.save(ref.state_dict(), os.path.join(binary, "pytorch_model.bin"))     # with lm_head.weight, tied
    ids = np.random.RandomState(9).randint(0, VOCAB, (2, 7))
    expected = ref(torch.tensor(ids)).logits
    for path in (sharded, binary):
        assert rel_err(models.GPT2LMHeadModel.from_pretrained(path)(ids).logits, expected) < 1e-4
    ours = models.GPT2LMHeadModel.from_pretrained(binary)
    ours.save_pretrained(binary, safe_serialization=False)      # pytorch_model.bin, which torch reads
    state = torch.load(os.path.join(binary, "pytorch_model.bin"), weights_only=True)
    assert tuple(state["transformer.h.0.attn.c_attn.weight"].shape) == (32, 96)      # Conv1D's (in, out)
    assert "lm_head.weight" not in state


def test_base_and_head_checkpoints_cross_load(hf_dirs, tmp_path):
    # a head model's checkpoint into the base model: the head's weights are reported unused
    with pytest.warns(UserWarning, match="does not use: classifier"):
        base = models.BertModel.from_pretrained(hf_dirs["bert_cls"])
    ref = transformers.BertModel.from_pretrained(hf_dirs["bert_cls"]).eval()
    ids = np.random.RandomState(10).randint(0, VOCAB, (2, 5))
    assert rel_err(base(ids).last_hidden_state, ref(torch.tensor(ids)).last_hidden_state) < 1e-4
    # the base model's checkpoint (no 'bert.' prefix) into a head model: the new head keeps its init, with a warning
    base_dir = os.path.join(tmp_path, "bert_base")
    ref.save_pretrained(base_dir)
    with pytest.warns(UserWarning, match="classifier.weight.*random initialisation"):
        cls = models.BertForSequenceClassification.from_pretrained(base_dir, num_labels=4)
    assert cls.classifier.out_features == 4
    assert rel_err(cls.bert(ids).last_hidden_state, ref(torch.tensor(ids)).last_hidden_state) < 1e-4
    # a masked-LM checkpoint has no pooler: BertModel keeps its initialised pooler, with a warning
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        models.BertModel.from_pretrained(hf_dirs["bert_mlm"])
    messages = [str(w.message) for w in caught]
    assert any("no weights for pooler.dense.weight" in m for m in messages), messages
    assert any("does not use: cls.predictions" in m for m in messages), messages
    gpt_base = models.GPT2Model.from_pretrained(hf_dirs["gpt2"])
    assert rel_err(gpt_base(ids).last_hidden_state,
                   transformers.GPT2Model.from_pretrained(hf_dirs["gpt2"])(torch.tensor(ids)).last_hidden_state) < 1e-4


def test_old_checkpoint_layouts_load(hf_dirs, tmp_path):
    """TF-converted BERT names (LayerNorm gamma/beta) and the original GPT-2 files (no 'transformer.' prefix,
    attn.bias / attn.masked_bias buffers)."""
    ref = transformers.GPT2LMHeadModel.from_pretrained(hf_dirs["gpt2"]).eval()
    old = {k[len("transformer."):]: v for k, v in ref.state_dict().items() if k.startswith("transformer.")}
    for i in range(2):
        old[f"h.{i}.attn.bias"] = torch.tril(torch.ones(48, 48)).view(1, 1, 48, 48)
        old[f"h.{i}.attn.masked_bias"] = torch.tensor(-1e4)
    gdir = os.path.join(tmp_path, "gpt2_old")
    os.makedirs(gdir)
    ref.config.save_pretrained(gdir)
    torch.save(old, os.path.join(gdir, "pytorch_model.bin"))
    ids = np.random.RandomState(11).randint(0, VOCAB, (1, 6))
    assert rel_err(models.GPT2LMHeadModel.from_pretrained(gdir)(ids).logits, ref(torch.tensor(ids)).logits) < 1e-4
    bref = transformers.BertForMaskedLM.from_pretrained(hf_dirs["bert_mlm"]).eval()
    sd = {k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta"): v
          for k, v in bref.state_dict().items()}
    bdir = os.path.join(tmp_path, "bert_old")
    os.makedirs(bdir)
    bref.config.save_pretrained(bdir)
    torch.save(sd, os.path.join(bdir, "pytorch_model.bin"))
    assert rel_err(models.BertForMaskedLM.from_pretrained(bdir)(ids).logits, bref(torch.tensor(ids)).logits) < 1e-4


def test_auto_classes_pick_the_model(hf_dirs):
    assert isinstance(models.AutoModelForCausalLM.from_pretrained(hf_dirs["gpt2"]), models.GPT2LMHeadModel)
    assert isinstance(models.AutoModelForSequenceClassification.from_pretrained(hf_dirs["bert_cls"]),
                      models.BertForSequenceClassification)
    assert isinstance(models.AutoModelForMaskedLM.from_pretrained(hf_dirs["bert_mlm"]), models.BertForMaskedLM)
    assert isinstance(models.AutoConfig.from_pretrained(hf_dirs["gpt2"]), models.GPT2Config)
    config = models.GPT2Config.from_pretrained(hf_dirs["gpt2"])
    assert config.hidden_size == config.n_embd == 32 and config.num_hidden_layers == 2


def test_config_json_round_trips_through_transformers(tmp_path):
    ours = models.BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                             intermediate_size=20, num_labels=5, problem_type="multi_label_classification")
    ours.save_pretrained(tmp_path)
    theirs = transformers.BertConfig.from_pretrained(tmp_path)
    assert (theirs.num_labels, theirs.hidden_size, theirs.problem_type) == (5, 16, "multi_label_classification")
    assert theirs.id2label[4] == "LABEL_4"
    theirs.save_pretrained(tmp_path)
    back = models.BertConfig.from_pretrained(tmp_path)
    assert back.num_labels == 5 and back.id2label[4] == "LABEL_4" and back.intermediate_size == 20
