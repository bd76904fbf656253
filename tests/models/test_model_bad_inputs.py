"""Bad model directories, checkpoints and arguments: clear errors naming the file, the key or the argument,
and nothing half-loaded. Runs without transformers (directories are written by pyfastnn)."""
import json
import os

import numpy as np
import pytest

import pyfastnn
from pyfastnn import models

pytest.importorskip("safetensors")


def tiny_gpt2():
    pyfastnn.manual_seed(0)
    return models.GPT2LMHeadModel(models.GPT2Config(vocab_size=50, n_embd=16, n_layer=2, n_head=2, n_positions=32))


def tiny_bert(**kw):
    pyfastnn.manual_seed(0)
    return models.BertForSequenceClassification(models.BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2,
                                                                  num_attention_heads=2, intermediate_size=24,
                                                                  max_position_embeddings=32, **kw))


@pytest.fixture
def gpt2_dir(tmp_path):
    path = os.path.join(tmp_path, "gpt2")
    tiny_gpt2().save_pretrained(path)
    return path


def _edit_config(path, **changes):
    with open(os.path.join(path, "config.json")) as fh:
        config = json.load(fh)
    config.update(changes)
    with open(os.path.join(path, "config.json"), "w") as fh:
        json.dump(config, fh)


def test_unknown_model_type_names_the_file_and_the_type(gpt2_dir):
    _edit_config(gpt2_dir, model_type="llama")
    for load in (models.GPT2LMHeadModel.from_pretrained, models.AutoModelForCausalLM.from_pretrained,
                 models.AutoConfig.from_pretrained):
        with pytest.raises(models.ConfigError) as info:
            load(gpt2_dir)
        assert "config.json" in str(info.value) and "'llama'" in str(info.value) and "unknown" in str(info.value)


def test_a_config_for_another_architecture_is_refused(gpt2_dir):
    with pytest.raises(models.ConfigError, match=r"config.json: model_type 'gpt2'; BertConfig reads model_type 'bert'"):
        models.BertForSequenceClassification.from_pretrained(gpt2_dir)


def test_weights_of_another_architecture_under_a_fitting_config(tmp_path, gpt2_dir):
    bert_dir = os.path.join(tmp_path, "bert")
    tiny_bert().save_pretrained(bert_dir)
    os.replace(os.path.join(gpt2_dir, "model.safetensors"), os.path.join(bert_dir, "model.safetensors"))
    with pytest.raises(models.WeightsError) as info:
        models.BertForSequenceClassification.from_pretrained(bert_dir)
    msg = str(info.value)
    assert "model.safetensors" in msg and "bert.embeddings.word_embeddings.weight" in msg
    assert "another architecture" in msg and "Nothing was loaded" in msg


def test_missing_and_reshaped_base_weights_are_named(tmp_path, gpt2_dir):
    state = pyfastnn.hub.load_hf_weights(gpt2_dir)
    del state["transformer.h.1.mlp.c_fc.bias"]
    pyfastnn.hub.save_safetensors(state, os.path.join(gpt2_dir, "model.safetensors"), {"format": "pt"})
    with pytest.raises(models.WeightsError, match=r"missing 1 key\(s\) 'transformer.h.1.mlp.c_fc.bias'"):
        models.GPT2LMHeadModel.from_pretrained(gpt2_dir)
    _edit_config(gpt2_dir, n_layer=3)
    with pytest.raises(models.WeightsError, match="transformer.h.2.ln_1.weight"):
        models.GPT2LMHeadModel.from_pretrained(gpt2_dir)
    _edit_config(gpt2_dir, n_layer=2, vocab_size=51)
    with pytest.raises(models.WeightsError, match=r"'transformer.wte.weight' \(50, 16\) \(the model's is \(51, 16\)\)"):
        models.GPT2LMHeadModel.from_pretrained(gpt2_dir)


def test_extra_base_layers_are_an_error_not_a_silent_truncation(tmp_path):
    deep = os.path.join(tmp_path, "deep")
    models.GPT2Model(models.GPT2Config(vocab_size=50, n_embd=16, n_layer=3, n_head=2, n_positions=32)).save_pretrained(
        deep)
    _edit_config(deep, n_layer=2)
    with pytest.raises(models.WeightsError, match="unexpected key.*h.2."):
        models.GPT2Model.from_pretrained(deep)


def test_directories_without_weights_or_config(tmp_path, gpt2_dir):
    os.unlink(os.path.join(gpt2_dir, "model.safetensors"))
    with pytest.raises(FileNotFoundError, match="holds none of model.safetensors"):
        models.GPT2LMHeadModel.from_pretrained(gpt2_dir)
    empty = os.path.join(tmp_path, "empty")
    os.makedirs(empty)
    with pytest.raises(FileNotFoundError, match="has no config.json"):
        models.GPT2LMHeadModel.from_pretrained(empty)
    with pytest.raises(FileNotFoundError, match="downloads nothing"):
        models.GPT2LMHeadModel.from_pretrained("openai-community/gpt2")
    with open(os.path.join(empty, "config.json"), "w") as fh:
        fh.write("{not json")
    with pytest.raises(pyfastnn.hub.CheckpointError, match="config.json: not valid JSON"):
        models.BertModel.from_pretrained(empty)


def test_bad_config_values_name_the_field(gpt2_dir):
    _edit_config(gpt2_dir, n_head=3)
    with pytest.raises(models.ConfigError, match=r"config.json: n_embd \(16\) must be a multiple of n_head \(3\)"):
        models.GPT2LMHeadModel.from_pretrained(gpt2_dir)
    _edit_config(gpt2_dir, n_head=2, activation_function="gelu_magic")
    with pytest.raises(ValueError, match="activation 'gelu_magic' is not supported"):
        models.GPT2LMHeadModel.from_pretrained(gpt2_dir)
    with pytest.raises(models.ConfigError, match="'num_hidden_layers' must be an int >= 1"):
        models.BertModel(models.BertConfig(num_hidden_layers=0))
    with pytest.raises(models.ConfigError, match="num_labels must be a positive int"):
        models.BertConfig(num_labels=0)
    with pytest.raises(TypeError, match="config must be a GPT2Config"):
        models.GPT2Model(models.BertConfig())


def test_a_failed_load_writes_nothing(gpt2_dir):
    model = tiny_gpt2()
    before = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    state = pyfastnn.hub.load_hf_weights(gpt2_dir)
    state = {k: v + 1 for k, v in state.items()}
    state["transformer.ln_f.bias"] = np.zeros(3, np.float32)         # one bad entry, last
    with pytest.raises(models.WeightsError, match="transformer.ln_f.bias"):
        model.load_hf_state_dict(state)
    assert all(np.array_equal(before[k], v.numpy()) for k, v in model.state_dict().items())


def test_forward_and_generate_arguments_are_checked():
    lm, cls = tiny_gpt2(), tiny_bert()
    ids = np.array([[1, 2, 3]])
    with pytest.raises(ValueError, match=r"GPT2Model: 'input_ids' must be in \[0, 50\)"):
        lm(np.array([[1, 50]]))
    with pytest.raises(TypeError, match="'input_ids' must hold integers"):
        lm(np.array([[1.5, 2.0]]))
    with pytest.raises(ValueError, match="'attention_mask' must have shape"):
        cls(ids, attention_mask=np.ones((1, 4)))
    with pytest.raises(ValueError, match="exceed n_positions"):
        lm(np.zeros((1, 33), np.int64))
    with pytest.raises(ValueError, match="exactly one of input_ids or inputs_embeds"):
        cls()
    with pytest.raises(ValueError, match=r"'labels' must be in \[0, 2\)"):
        cls(ids, labels=np.array([5]))
    with pytest.raises(ValueError, match=r"'labels' must have shape \(1, 3\)"):
        lm(ids, labels=np.array([[1, 2]]))
    with pytest.raises(ValueError, match="exceeds the model's 32 positions"):
        lm.generate(ids, max_new_tokens=30)
    with pytest.raises(ValueError, match="'temperature' must be a strictly positive float"):
        lm.generate(ids, do_sample=True, temperature=0.0)
    with pytest.raises(ValueError, match="'top_p' must be a float in"):
        lm.generate(ids, do_sample=True, top_p=1.5)
    with pytest.raises(ValueError, match="'top_k' must be a positive int"):
        lm.generate(ids, do_sample=True, top_k=0)
    with pytest.raises(ValueError, match="at least one token"):
        lm.generate(np.zeros((1, 0), np.int64))
    with pytest.raises(ValueError, match="every sequence needs at least one token"):
        lm.generate(ids, attention_mask=np.array([[0, 0, 0]]))
    with pytest.raises(NotImplementedError, match="num_beams"):
        lm.generate(ids, num_beams=4)
    with pytest.raises(TypeError, match=r"unexpected keyword argument\(s\) \['repetition_penalty'\]"):
        lm.generate(ids, repetition_penalty=1.2)


def test_save_pretrained_refuses_a_file_and_cleans_stale_weights(tmp_path, gpt2_dir):
    target = os.path.join(tmp_path, "file")
    open(target, "w").close()
    with pytest.raises(NotADirectoryError, match="is a file"):
        tiny_gpt2().save_pretrained(target)
    tiny_gpt2().save_pretrained(gpt2_dir, safe_serialization=False)
    assert sorted(os.listdir(gpt2_dir)) == ["config.json", "pytorch_model.bin"]
    assert isinstance(models.GPT2LMHeadModel.from_pretrained(gpt2_dir), models.GPT2LMHeadModel)


def test_model_output_reads_like_transformers():
    out = models.SequenceClassifierOutput(logits=1, loss=None)
    assert out[0] == 1 and out.loss is None and list(out.keys()) == ["logits"] and out.to_tuple() == (1,)
    with pytest.raises(KeyError):
        out["loss"]
    with pytest.raises(TypeError, match="has no field 'logit'"):
        models.SequenceClassifierOutput(logit=1)
