"""pyfastnn's BERT and GPT-2 tokenizers give transformers' ids, masks, padding, truncation and decoding.

Vocabularies are trained offline with `tokenizers` on the text of Python's own pydoc_data.topics,
then saved with transformers' classes; transformers (the reference) and pyfastnn read the same files.
"""
import json
import os

import numpy as np
import pytest

transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

from pyfastnn.models import AutoTokenizer, BatchEncoding, BertTokenizer, GPT2Tokenizer  # noqa: E402

TEXTS = [
    "Hello, World! The quick brown fox.",
    "",
    "  whitespace   runs\t\tand\nnew lines  ",
    "Café, déjà vu, naïve façade — ÜNÏCÖDÉ accents",
    "東京 and 北京 😀 emoji ü",
    "def f(x):\n    return x ** 2  # comment",
    "don't we're it's [MASK] token inside",
    "a",
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "<|endoftext|> special in text",
]
PAIRS = ["second sequence here", "b", "", "Ünïcode pair ß", "x " * 20, "y", "z", "", "w", "v"]


@pytest.fixture(scope="module")
def vocab_dirs(tmp_path_factory):
    import pydoc_data.topics
    text = list(pydoc_data.topics.topics.values())
    root = tmp_path_factory.mktemp("tok")
    bert_vocab, gpt2_vocab = root / "bert_vocab", root / "gpt2_vocab"
    bert_vocab.mkdir()
    gpt2_vocab.mkdir()
    wp = tokenizers.BertWordPieceTokenizer(lowercase=True)
    wp.train_from_iterator(text, vocab_size=900, min_frequency=2,
                           special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    wp.save_model(str(bert_vocab))
    bpe = tokenizers.ByteLevelBPETokenizer()
    bpe.train_from_iterator(text, vocab_size=700, min_frequency=2, special_tokens=["<|endoftext|>"])
    bpe.save_model(str(gpt2_vocab))
    return {"bert_vocab": bert_vocab, "gpt2_vocab": gpt2_vocab, "root": root}


@pytest.fixture(scope="module")
def pairs_of_tokenizers(vocab_dirs):
    """{name: (pyfastnn tokenizer, transformers tokenizer)} over several ways of saving."""
    root = vocab_dirs["root"]
    out = {}
    ref = transformers.BertTokenizer(str(vocab_dirs["bert_vocab"] / "vocab.txt"))
    ref.save_pretrained(root / "bert_hf")
    out["bert"] = (AutoTokenizer.from_pretrained(root / "bert_hf"), ref)
    ref = transformers.GPT2Tokenizer(str(vocab_dirs["gpt2_vocab"] / "vocab.json"),
                                     str(vocab_dirs["gpt2_vocab"] / "merges.txt"))
    ref.save_pretrained(root / "gpt2_hf")
    mine = AutoTokenizer.from_pretrained(root / "gpt2_hf")
    out["gpt2"] = (mine, ref)
    # vocabulary files only (what older transformers wrote), read by both
    ref = transformers.BertTokenizer(str(vocab_dirs["bert_vocab"] / "vocab.txt"), do_lower_case=False)
    out["bert_cased_vocab_txt"] = (BertTokenizer(vocab_dirs["bert_vocab"] / "vocab.txt", do_lower_case=False), ref)
    ref = transformers.GPT2Tokenizer(str(vocab_dirs["gpt2_vocab"] / "vocab.json"),
                                     str(vocab_dirs["gpt2_vocab"] / "merges.txt"), add_prefix_space=True)
    out["gpt2_prefix_space_files"] = (GPT2Tokenizer(vocab_dirs["gpt2_vocab"] / "vocab.json",
                                                    vocab_dirs["gpt2_vocab"] / "merges.txt", add_prefix_space=True), ref)
    return out


def assert_same_encoding(got, want, where):
    assert isinstance(got, BatchEncoding)
    assert list(got) == list(want), (where, list(got), list(want))
    for k in want:
        a, b = got[k], want[k]
        if isinstance(b, np.ndarray):
            assert isinstance(a, np.ndarray) and a.dtype == b.dtype, (where, k, type(a))
            np.testing.assert_array_equal(a, b, err_msg=f"{where} {k}")
        else:
            assert a == b, (where, k, a, b)


NAMES = ["bert", "gpt2", "bert_cased_vocab_txt", "gpt2_prefix_space_files"]


@pytest.mark.parametrize("name", NAMES)
def test_single_texts_and_decode(pairs_of_tokenizers, name):
    mine, ref = pairs_of_tokenizers[name]
    for text in TEXTS:
        assert_same_encoding(mine(text), ref(text), (name, text))
        assert mine.encode(text) == ref.encode(text)
        assert mine.tokenize(text) == ref.tokenize(text)
        ids = ref(text)["input_ids"]
        for skip in (False, True):
            assert mine.decode(ids, skip_special_tokens=skip) == ref.decode(ids, skip_special_tokens=skip), (text, skip)
        assert mine.decode(np.array(ids)) == ref.decode(ids)
        assert mine.convert_ids_to_tokens(ids) == ref.convert_ids_to_tokens(ids)
        assert mine.convert_ids_to_tokens(ids, skip_special_tokens=True) == \
            ref.convert_ids_to_tokens(ids, skip_special_tokens=True)
        assert mine(text, add_special_tokens=False)["input_ids"] == ref(text, add_special_tokens=False)["input_ids"]


CALLS = [dict(), dict(padding=True), dict(padding="longest", return_tensors="np"),
         dict(padding="max_length", max_length=24, truncation=True),
         dict(padding="max_length", max_length=40, return_tensors="np"), dict(truncation=True, max_length=6),
         dict(max_length=5), dict(truncation="only_first", max_length=30), dict(truncation="longest_first", max_length=9),
         dict(padding=True, pad_to_multiple_of=8), dict(padding=True, return_attention_mask=False),
         dict(padding=True, return_token_type_ids=True), dict(padding=True, return_token_type_ids=False),
         dict(padding=True, padding_side="left", return_tensors="np"), dict(return_special_tokens_mask=True),
         dict(return_length=True)]


def with_pad_token(pair):
    mine, ref = pair
    if ref.pad_token is None:         # GPT-2 has none: the usual fix
        ref.pad_token = ref.eos_token
        mine.pad_token = mine.eos_token
    return mine, ref


def compare(mine, ref, args, kwargs, where):
    """Same result, or the same kind of error where transformers refuses (ragged arrays, say)."""
    try:
        want = ref(*args, **kwargs)
    except Exception as exc:      # noqa: BLE001 - whatever transformers raises, pyfastnn raises in kind
        kind = ValueError if isinstance(exc, ValueError) else type(exc)
        with pytest.raises(kind):
            mine(*args, **kwargs)
        return
    if any(isinstance(v, np.ndarray) and v.dtype == object for v in want.values()):
        with pytest.raises(ValueError, match="different lengths"):     # transformers makes object arrays
            mine(*args, **kwargs)
        return
    assert_same_encoding(mine(*args, **kwargs), want, where)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("kwargs", CALLS, ids=[str(c) for c in CALLS])
def test_batches_and_pairs(pairs_of_tokenizers, name, kwargs):
    mine, ref = with_pad_token(pairs_of_tokenizers[name])
    compare(mine, ref, (TEXTS,), kwargs, (name, "batch"))
    compare(mine, ref, (TEXTS, PAIRS), kwargs, (name, "pairs"))
    compare(mine, ref, (TEXTS[0], PAIRS[0]), kwargs, (name, "one pair"))
    compare(mine, ref, (TEXTS[3],), kwargs, (name, "one"))


@pytest.mark.parametrize("name", NAMES)
def test_padding_side_attribute(pairs_of_tokenizers, name):
    mine, ref = with_pad_token(pairs_of_tokenizers[name])
    for side in ("left", "right"):
        mine.padding_side = ref.padding_side = side
        try:
            assert_same_encoding(mine(TEXTS, padding=True, return_tensors="np"),
                                 ref(TEXTS, padding=True, return_tensors="np"), (name, side))
        finally:
            mine.padding_side = ref.padding_side = "right"
    out = mine(["a b c d", "a"], padding=True, return_tensors="np")
    assert out["attention_mask"][1].tolist()[-1] == 0        # right padding: zeros at the end


@pytest.mark.parametrize("name", NAMES)
def test_batch_decode_and_vocabulary(pairs_of_tokenizers, name):
    mine, ref = with_pad_token(pairs_of_tokenizers[name])
    batch = ref(TEXTS, padding=True, return_tensors="np")["input_ids"]
    for skip in (False, True):
        assert mine.batch_decode(batch, skip_special_tokens=skip) == ref.batch_decode(batch, skip_special_tokens=skip)
    assert mine.vocab_size == ref.vocab_size and len(mine) == len(ref)
    assert mine.get_vocab() == ref.get_vocab()
    for attr in ("cls_token", "sep_token", "pad_token", "mask_token", "unk_token", "bos_token", "eos_token"):
        assert getattr(mine, attr) == getattr(ref, attr), attr
        assert getattr(mine, attr + "_id") == getattr(ref, attr + "_id"), attr
    assert sorted(mine.all_special_ids) == sorted(ref.all_special_ids)
    assert mine.convert_tokens_to_ids(["hello", "qqqqqqq"]) == ref.convert_tokens_to_ids(["hello", "qqqqqqq"])
    assert mine.model_max_length == ref.model_max_length


def test_return_tensors_np_shapes_and_refusals(pairs_of_tokenizers, vocab_dirs):
    mine, _ = pairs_of_tokenizers["bert"]
    out = mine("one text", return_tensors="np")
    assert out["input_ids"].shape == (1, len(mine("one text")["input_ids"])) and out["input_ids"].dtype == np.int64
    assert out.input_ids is out["input_ids"] and out.tokens()[0] == "[CLS]"
    for framework in ("pt", "tf", "jax"):
        with pytest.raises(ValueError, match="numpy"):
            mine("text", return_tensors=framework)
    with pytest.raises(ValueError, match="padding=True"):
        mine(["a", "a b c"], return_tensors="np")
    with pytest.raises(TypeError):
        mine("text", returns_tensors="np")          # a typo is an error, not ignored
    with pytest.raises(ValueError, match="padding"):
        mine("text", padding="sideways")
    with pytest.raises(TypeError, match="text must be"):
        mine(42)
    gpt2 = AutoTokenizer.from_pretrained(vocab_dirs["root"] / "gpt2_hf")
    assert gpt2.pad_token is None
    with pytest.raises(ValueError, match="no pad token"):
        gpt2(["a", "b c"], padding=True)


def test_model_max_length_from_config(vocab_dirs, tmp_path):
    ref = transformers.BertTokenizer(str(vocab_dirs["bert_vocab"] / "vocab.txt"), model_max_length=8)
    ref.save_pretrained(tmp_path)
    mine = AutoTokenizer.from_pretrained(tmp_path)
    assert mine.model_max_length == 8
    long = "word " * 30
    assert_same_encoding(mine(long, truncation=True), ref(long, truncation=True), "truncate to model_max_length")
    assert_same_encoding(mine([long, "x"], padding="max_length", truncation=True),
                         ref([long, "x"], padding="max_length", truncation=True), "pad to model_max_length")
    left = AutoTokenizer.from_pretrained(tmp_path, padding_side="left")
    assert left.padding_side == "left"
    with pytest.raises(TypeError, match="padding_sid"):
        AutoTokenizer.from_pretrained(tmp_path, padding_sid="left")


@pytest.mark.parametrize("name", ["bert", "gpt2", "bert_cased_vocab_txt", "gpt2_prefix_space_files"])
def test_save_pretrained_is_read_by_transformers(pairs_of_tokenizers, tmp_path, name):
    mine, ref = pairs_of_tokenizers[name]
    written = mine.save_pretrained(tmp_path / "saved")
    names = sorted(os.path.basename(p) for p in written)
    vocab_files = ["vocab.txt"] if isinstance(mine, BertTokenizer) else ["merges.txt", "vocab.json"]
    assert names == sorted(["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"] + vocab_files)
    back = transformers.AutoTokenizer.from_pretrained(str(tmp_path / "saved"))
    again = AutoTokenizer.from_pretrained(tmp_path / "saved")
    assert type(again) is type(mine)
    for text in TEXTS:
        assert back(text)["input_ids"] == ref(text)["input_ids"], text
        assert again(text)["input_ids"] == ref(text)["input_ids"], text
    # the vocabulary files alone rebuild the same tokenizer, in transformers and here
    only_vocab = tmp_path / "only_vocab"
    only_vocab.mkdir()
    for f in vocab_files + ["tokenizer_config.json"]:
        (only_vocab / f).write_bytes((tmp_path / "saved" / f).read_bytes())
    rebuilt = AutoTokenizer.from_pretrained(only_vocab)
    for text in TEXTS:
        assert rebuilt(text)["input_ids"] == ref(text)["input_ids"], text


def test_special_tokens_map_and_added_tokens(vocab_dirs, tmp_path):
    # a transformers-4-style directory: vocab.txt, tokenizer_config.json with added_tokens_decoder,
    # special_tokens_map.json naming a different mask token
    d = tmp_path / "v4"
    d.mkdir()
    (d / "vocab.txt").write_bytes((vocab_dirs["bert_vocab"] / "vocab.txt").read_bytes())
    (d / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "BertTokenizerFast", "do_lower_case": True, "model_max_length": 512,
        "clean_up_tokenization_spaces": True,
        "added_tokens_decoder": {"0": {"content": "[PAD]", "special": True, "lstrip": False, "rstrip": False,
                                       "normalized": False, "single_word": False}}}))
    (d / "special_tokens_map.json").write_text(json.dumps({
        "cls_token": "[CLS]", "sep_token": "[SEP]", "pad_token": "[PAD]", "unk_token": "[UNK]",
        "mask_token": {"content": "[MASK]", "lstrip": False, "normalized": False, "rstrip": False,
                       "single_word": False}}))
    mine = AutoTokenizer.from_pretrained(d)
    ref = transformers.AutoTokenizer.from_pretrained(str(d))
    assert mine.mask_token == "[MASK]" and mine.model_max_length == 512 and mine.clean_up_tokenization_spaces
    for text in TEXTS:
        assert mine(text)["input_ids"] == ref(text)["input_ids"], text
        ids = ref(text)["input_ids"]
        assert mine.decode(ids) == ref.decode(ids), text
    added = mine.add_special_tokens({"additional_special_tokens": ["<ent>"]})
    assert added == 1 and mine.convert_tokens_to_ids("<ent>") == len(mine) - 1
    assert mine.tokenize("a <ent> b") == ["a", "<ent>", "b"]


def test_gpt2_bos_token_option(vocab_dirs):
    files = (str(vocab_dirs["gpt2_vocab"] / "vocab.json"), str(vocab_dirs["gpt2_vocab"] / "merges.txt"))
    mine = GPT2Tokenizer(*files, add_bos_token=True)
    ref = transformers.GPT2Tokenizer(*files, add_bos_token=True)
    for text in TEXTS:
        assert mine(text)["input_ids"] == ref(text)["input_ids"], text
    assert mine("x")["input_ids"][0] == mine.bos_token_id


def test_missing_package_and_bad_directories(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="nothing is downloaded"):
        AutoTokenizer.from_pretrained(tmp_path / "bert-base-uncased")
    with pytest.raises(ValueError, match="cannot tell the tokenizer"):
        AutoTokenizer.from_pretrained(tmp_path)
    with pytest.raises(FileNotFoundError, match="vocab.txt"):
        BertTokenizer.from_pretrained(tmp_path)
    from pyfastnn.hub import _optional
    monkeypatch.setattr(_optional, "optional", lambda name: None)
    (tmp_path / "vocab.txt").write_text("[UNK]\n")
    with pytest.raises(ImportError, match=r'pyfastnn\[text\]'):
        BertTokenizer(tmp_path / "vocab.txt")


def test_tokenizers_pickle_for_worker_processes(pairs_of_tokenizers):
    import pickle
    mine, ref = pairs_of_tokenizers["bert"]
    again = pickle.loads(pickle.dumps(mine))
    for text in TEXTS:
        assert again(text)["input_ids"] == ref(text)["input_ids"]
