"""BERT and GPT-2 tokenizers on the `tokenizers` package (its WordPiece and byte-level BPE models, not
hand-written ones), read from the files transformers' save_pretrained writes, with transformers'
call signature and results; arrays come back as numpy (return_tensors="np").

from_pretrained(directory) reads tokenizer.json when present, else the vocabulary files (vocab.txt
for BERT; vocab.json + merges.txt for GPT-2), and tokenizer_config.json / special_tokens_map.json
for special tokens, lower-casing, model_max_length and padding side. Nothing is downloaded.
"""
from __future__ import annotations

import json
import os
import threading

import numpy as np

from ..hub._files import read_json
from ..hub._optional import require

__all__ = ["BatchEncoding", "PreTrainedTokenizer", "BertTokenizer", "GPT2Tokenizer", "AutoTokenizer"]

VERY_LARGE_INTEGER = int(1e30)      # transformers' "no limit" model_max_length
_LARGE_INTEGER = int(1e20)
_SPECIAL_NAMES = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")
_TRUNCATIONS = {True: "longest_first", "longest_first": "longest_first", "only_first": "only_first",
                "only_second": "only_second"}


def _tk():
    return require("tokenizers", "pyfastnn.models tokenizers")


class BatchEncoding(dict):
    """What a tokenizer call returns: a dict of input_ids, attention_mask (and token_type_ids for
    BERT), readable as attributes too; `encodings` holds the tokenizers.Encoding of each sequence."""

    def __init__(self, data=None, encodings=None):
        super().__init__(data or {})
        self.encodings = encodings

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"BatchEncoding has no '{name}' (keys: {list(self)})") from None

    def tokens(self, batch_index=0):
        """The token strings of one sequence."""
        return self.encodings[batch_index].tokens

    def word_ids(self, batch_index=0):
        """For each token, the index of the word it came from (None for special tokens)."""
        return self.encodings[batch_index].word_ids


def _token_text(value):
    """A special token as written in the config files: a string or {"content": ...}."""
    if isinstance(value, dict):
        return value.get("content")
    return value


class PreTrainedTokenizer:
    """The shared surface: __call__, encode, decode, special tokens, save_pretrained. Subclasses say
    how to build the backend from vocabulary files and which inputs the model takes."""

    model_input_names = ("input_ids", "token_type_ids", "attention_mask")
    tokenizer_class = "PreTrainedTokenizerFast"
    _DEFAULT_SPECIALS = {}
    _DEFAULT_OPTIONS = {}
    _COMMON_OPTIONS = {"model_max_length": VERY_LARGE_INTEGER, "padding_side": "right", "truncation_side": "right",
                       "clean_up_tokenization_spaces": False, "additional_special_tokens": ()}

    # ------------------------------------------------------------------ construction
    @classmethod
    def _options(cls):
        return {**cls._COMMON_OPTIONS, **cls._DEFAULT_OPTIONS, **cls._DEFAULT_SPECIALS}

    @classmethod
    def _check_options(cls, options, where):
        known = cls._options()
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise TypeError(f"{where}: unexpected keyword argument(s) {unknown}; known: {sorted(known)}")

    def _setup(self, backend, settings, added_tokens=()):
        tk = _tk()
        self._tok = backend
        self._lock = threading.Lock()
        options = self._options()
        options.update({k: v for k, v in settings.items() if k in options})
        self.model_max_length = int(options["model_max_length"])
        self.padding_side = options["padding_side"]
        self.truncation_side = options["truncation_side"]
        self.clean_up_tokenization_spaces = bool(options["clean_up_tokenization_spaces"])
        for name in self._DEFAULT_OPTIONS:
            setattr(self, name, options[name])
        self._special = {name: _token_text(options.get(name)) for name in _SPECIAL_NAMES}
        self.additional_special_tokens = [_token_text(t) for t in options["additional_special_tokens"] or ()]
        extra = [tk.AddedToken(**t) if isinstance(t, dict) else t for t in added_tokens]
        specials = [t for t in list(self._special.values()) + self.additional_special_tokens if t]
        if extra:
            self._tok.add_tokens(extra)
        self._tok.add_special_tokens([tk.AddedToken(t, special=True, normalized=False) for t in specials])
        self._after_setup()

    def _after_setup(self):
        """Post-processing that depends on the special tokens' ids (subclasses)."""

    @classmethod
    def from_pretrained(cls, directory, **options):
        """Reads a tokenizer saved by transformers' save_pretrained (or pyfastnn's). Keyword options
        override the saved settings (e.g. padding_side='left', do_lower_case=False, pad_token=...)."""
        cls._check_options(options, f"{cls.__name__}.from_pretrained")
        directory = _directory(directory)
        settings, added = _saved_settings(directory)
        settings.update(options)
        tokenizer_json = os.path.join(directory, "tokenizer.json")
        if os.path.isfile(tokenizer_json):
            backend = _tk().Tokenizer.from_file(tokenizer_json)
            cls._adapt_backend(backend, cls._settings_with_defaults(settings))
            added = ()      # tokenizer.json lists its added tokens itself
        else:
            backend = cls._backend_from_files(directory, cls._settings_with_defaults(settings))
        self = cls.__new__(cls)
        self._setup(backend, settings, added)
        return self

    @classmethod
    def _settings_with_defaults(cls, settings):
        merged = cls._options()
        merged.update(settings)
        return merged

    @classmethod
    def _backend_from_files(cls, directory, settings):
        raise FileNotFoundError(f"{cls.__name__}.from_pretrained: '{directory}' has no tokenizer.json")

    @classmethod
    def _adapt_backend(cls, tok, settings):
        """Applies saved settings (lower-casing, prefix space) to a backend read from tokenizer.json."""

    # ------------------------------------------------------------------ special tokens
    def _special_id(self, name):
        token = self._special.get(name)
        return None if token is None else self._tok.token_to_id(token)

    @property
    def all_special_tokens(self):
        seen = [t for t in list(self._special.values()) + self.additional_special_tokens if t]
        return list(dict.fromkeys(seen))

    @property
    def all_special_ids(self):
        return [i for i in (self._tok.token_to_id(t) for t in self.all_special_tokens) if i is not None]

    @property
    def special_tokens_map(self):
        out = {k: v for k, v in self._special.items() if v is not None}
        if self.additional_special_tokens:
            out["additional_special_tokens"] = list(self.additional_special_tokens)
        return out

    def add_special_tokens(self, special_tokens_dict):
        """Sets special tokens ({'pad_token': '[PAD]'}), adding those the vocabulary lacks; returns how
        many were added."""
        tk = _tk()
        before = self._tok.get_vocab_size(with_added_tokens=True)
        for name, value in special_tokens_dict.items():
            if name == "additional_special_tokens":
                values = [_token_text(v) for v in value]
                self.additional_special_tokens = list(dict.fromkeys(self.additional_special_tokens + values))
            elif name in _SPECIAL_NAMES:
                values = [_token_text(value)]
                self._special[name] = values[0]
            else:
                raise ValueError(f"add_special_tokens: unknown special token name '{name}'")
            self._tok.add_special_tokens([tk.AddedToken(v, special=True, normalized=False) for v in values])
        self._after_setup()
        return self._tok.get_vocab_size(with_added_tokens=True) - before

    def add_tokens(self, new_tokens, special_tokens=False):
        """Adds tokens to the vocabulary; returns how many were new."""
        tk = _tk()
        tokens = [new_tokens] if isinstance(new_tokens, str) else list(new_tokens)
        tokens = [tk.AddedToken(t, special=special_tokens, normalized=not special_tokens) if isinstance(t, str) else t
                  for t in tokens]
        return (self._tok.add_special_tokens if special_tokens else self._tok.add_tokens)(tokens)

    # ------------------------------------------------------------------ vocabulary
    @property
    def vocab_size(self):
        """The base vocabulary's size (without added tokens), as transformers counts it."""
        return self._tok.get_vocab_size(with_added_tokens=False)

    def __len__(self):
        return self._tok.get_vocab_size(with_added_tokens=True)

    def get_vocab(self):
        return self._tok.get_vocab(with_added_tokens=True)

    @property
    def backend_tokenizer(self):
        """The tokenizers.Tokenizer underneath."""
        return self._tok

    def convert_tokens_to_ids(self, tokens):
        unk = self.unk_token_id
        if isinstance(tokens, str):
            i = self._tok.token_to_id(tokens)
            return unk if i is None else i
        return [self.convert_tokens_to_ids(t) for t in tokens]

    def convert_ids_to_tokens(self, ids, skip_special_tokens=False):
        if isinstance(ids, (int, np.integer)):
            return self._tok.id_to_token(int(ids))
        skip = set(self.all_special_ids) if skip_special_tokens else ()
        return [self._tok.id_to_token(int(i)) for i in _flat_ids(ids, "convert_ids_to_tokens") if int(i) not in skip]

    def tokenize(self, text, pair=None, add_special_tokens=False):
        return self._tok.encode(text, pair, add_special_tokens=add_special_tokens).tokens

    # ------------------------------------------------------------------ encoding
    def _strategies(self, padding, truncation, max_length, pad_to_multiple_of):
        # transformers' rules (PreTrainedTokenizerBase._get_padding_truncation_strategies)
        if max_length is not None and (isinstance(max_length, bool) or not isinstance(max_length, int)
                                       or max_length < 0):
            raise ValueError(f"max_length must be a non-negative int or None, got {max_length!r}")
        if max_length is not None and padding is False and truncation is None:
            truncation = "longest_first"
        if padding is True or padding == "longest":
            pad = "longest"
        elif padding is False or padding is None or padding == "do_not_pad":
            pad = None
        elif padding == "max_length":
            pad = "max_length"
        else:
            raise ValueError(f"padding must be False, True, 'longest', 'max_length' or 'do_not_pad', got {padding!r}")
        if truncation is None or truncation is False or truncation == "do_not_truncate":
            trunc = None
        elif truncation in _TRUNCATIONS:
            trunc = _TRUNCATIONS[truncation]
        else:
            raise ValueError(f"truncation must be a bool, 'longest_first', 'only_first', 'only_second' or "
                             f"'do_not_truncate', got {truncation!r}")
        if max_length is None:
            if pad == "max_length":
                if self.model_max_length > _LARGE_INTEGER:
                    pad = None
                else:
                    max_length = self.model_max_length
            if trunc is not None:
                if self.model_max_length > _LARGE_INTEGER:
                    trunc = None
                else:
                    max_length = self.model_max_length
        if pad is not None and (self.pad_token is None or self.pad_token_id is None):
            raise ValueError(f"{type(self).__name__}: asked to pad, but the tokenizer has no pad token; set one "
                             f"first, e.g. tokenizer.pad_token = tokenizer.eos_token")
        if trunc and pad and pad_to_multiple_of and max_length is not None and max_length % pad_to_multiple_of:
            raise ValueError(f"truncation length ({max_length}) is not a multiple of pad_to_multiple_of "
                             f"({pad_to_multiple_of})")
        return pad, trunc, max_length

    def __call__(self, text, text_pair=None, *, add_special_tokens=True, padding=False, truncation=None,
                 max_length=None, pad_to_multiple_of=None, padding_side=None, return_tensors=None,
                 return_token_type_ids=None, return_attention_mask=None, return_special_tokens_mask=False,
                 return_length=False, is_split_into_words=False):
        """Tokenizes one text, a batch (list), or pairs (text_pair), as transformers does: returns a
        BatchEncoding with input_ids, attention_mask and (BERT) token_type_ids, as lists or, with
        return_tensors='np', int64 numpy arrays."""
        if return_tensors not in (None, "np"):
            raise ValueError(f"return_tensors={return_tensors!r}: pyfastnn tokenizers return numpy arrays; use "
                             f"return_tensors='np' (or None for lists); pyfastnn.tensor(...) wraps them")
        if padding_side not in (None, "left", "right"):
            raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}")
        batched, pairs = _batch_inputs(text, text_pair, is_split_into_words)
        pad, trunc, max_length = self._strategies(padding, truncation, max_length, pad_to_multiple_of)
        with self._lock:        # padding and truncation are settings of the shared backend
            if trunc is None:
                self._tok.no_truncation()
            else:
                self._tok.enable_truncation(max_length, stride=0, strategy=trunc, direction=self.truncation_side)
            if pad is None:
                self._tok.no_padding()
            else:
                self._tok.enable_padding(direction=padding_side or self.padding_side, pad_id=self.pad_token_id,
                                         pad_type_id=0, pad_token=self.pad_token,
                                         length=max_length if pad == "max_length" else None,
                                         pad_to_multiple_of=pad_to_multiple_of)
            try:
                encodings = self._tok.encode_batch(pairs, add_special_tokens=add_special_tokens,
                                                   is_pretokenized=is_split_into_words) if pairs else []
            finally:
                self._tok.no_padding()
                self._tok.no_truncation()
        want_types = ("token_type_ids" in self.model_input_names if return_token_type_ids is None
                      else return_token_type_ids)
        want_mask = "attention_mask" in self.model_input_names if return_attention_mask is None else return_attention_mask
        data = {"input_ids": [e.ids for e in encodings]}
        if want_types:
            data["token_type_ids"] = [e.type_ids for e in encodings]
        if want_mask:
            data["attention_mask"] = [e.attention_mask for e in encodings]
        if return_special_tokens_mask:
            data["special_tokens_mask"] = [e.special_tokens_mask for e in encodings]
        if return_length:
            data["length"] = [len(e.ids) for e in encodings]
        if return_tensors == "np":
            for k, v in data.items():
                if k != "length" and len({len(row) for row in v}) > 1:
                    raise ValueError(f"return_tensors='np': the sequences have different lengths "
                                     f"({sorted({len(row) for row in v})}); pass padding=True (and truncation=True "
                                     f"for a maximum)")
                data[k] = np.asarray(v, dtype=np.int64).reshape(len(v), -1) if k != "length" else \
                    np.asarray(v, dtype=np.int64)
        elif not batched:       # (transformers unwraps the per-token lists only: length stays [n])
            data = {k: v[0] if v and isinstance(v[0], list) else v for k, v in data.items()}
        return BatchEncoding(data, encodings)

    def encode(self, text, text_pair=None, add_special_tokens=True, padding=False, truncation=None, max_length=None,
               return_tensors=None):
        """The ids of one text (or pair): a list, or a (1, n) array with return_tensors='np'."""
        if not isinstance(text, str):
            raise TypeError(f"encode: text must be a str, got {type(text).__name__} (call the tokenizer for batches)")
        out = self(text, text_pair, add_special_tokens=add_special_tokens, padding=padding, truncation=truncation,
                   max_length=max_length, return_tensors=return_tensors)
        return out["input_ids"]

    # ------------------------------------------------------------------ decoding
    def decode(self, token_ids, skip_special_tokens=False, clean_up_tokenization_spaces=None):
        """Text for a sequence of ids (a list, a 1-D array, or an int)."""
        if isinstance(token_ids, (int, np.integer)):
            ids = [int(token_ids)]
        else:
            ids = [int(i) for i in _flat_ids(token_ids, "decode")]
        text = self._tok.decode(ids, skip_special_tokens=skip_special_tokens)
        clean = self.clean_up_tokenization_spaces if clean_up_tokenization_spaces is None else clean_up_tokenization_spaces
        # the clean-up was made for WordPiece; on byte-level BPE it would delete real spaces (transformers skips it too)
        if clean and type(self._tok.model).__name__ != "BPE":
            text = _clean_up_tokenization(text)
        return text

    def batch_decode(self, sequences, skip_special_tokens=False, clean_up_tokenization_spaces=None):
        if isinstance(sequences, np.ndarray) and sequences.ndim != 2:
            raise ValueError(f"batch_decode: expected a batch (2-D) of ids, got shape {sequences.shape}")
        return [self.decode(seq, skip_special_tokens=skip_special_tokens,
                            clean_up_tokenization_spaces=clean_up_tokenization_spaces) for seq in sequences]

    def convert_tokens_to_string(self, tokens):
        decoder = self._tok.decoder
        return decoder.decode(tokens) if decoder is not None else " ".join(tokens)

    # ------------------------------------------------------------------ saving
    def save_pretrained(self, directory):
        """Writes tokenizer.json, tokenizer_config.json, special_tokens_map.json and the vocabulary files
        (vocab.txt, or vocab.json + merges.txt), which transformers' fast and slow classes both read.
        Returns the paths written."""
        directory = os.fspath(directory)
        os.makedirs(directory, exist_ok=True)
        paths = []

        def write_json(name, obj):
            path = os.path.join(directory, name)
            with open(path, "w", encoding="utf-8") as fh:
                json.dump(obj, fh, indent=2, ensure_ascii=False, sort_keys=True)
                fh.write("\n")
            paths.append(path)

        with self._lock:
            self._tok.no_padding()
            self._tok.no_truncation()
            path = os.path.join(directory, "tokenizer.json")
            self._tok.save(path)
            paths.append(path)
        config = {"tokenizer_class": self.tokenizer_class, "model_max_length": self.model_max_length,
                  "padding_side": self.padding_side, "truncation_side": self.truncation_side,
                  "clean_up_tokenization_spaces": self.clean_up_tokenization_spaces,
                  **{k: getattr(self, k) for k in self._DEFAULT_OPTIONS}, **self.special_tokens_map}
        added = self._tok.get_added_tokens_decoder()
        config["added_tokens_decoder"] = {
            str(i): {"content": t.content, "lstrip": t.lstrip, "rstrip": t.rstrip, "normalized": t.normalized,
                     "single_word": t.single_word, "special": t.special} for i, t in sorted(added.items())}
        write_json("tokenizer_config.json", config)
        write_json("special_tokens_map.json", self.special_tokens_map)
        paths.extend(self._save_vocabulary(directory))
        return tuple(paths)

    def _save_vocabulary(self, directory):
        return []

    def __getstate__(self):         # (a lock does not pickle; worker processes get their own)
        state = dict(self.__dict__)
        del state["_lock"]
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __repr__(self):
        return (f"{type(self).__name__}(vocab_size={self.vocab_size}, model_max_length={self.model_max_length}, "
                f"padding_side='{self.padding_side}', special_tokens={self.special_tokens_map})")


def _special_property(name):
    def get(self):
        return self._special.get(name)

    def set_(self, value):
        value = _token_text(value)
        if value is not None and not isinstance(value, str):
            raise TypeError(f"{name} must be a str or None, got {type(value).__name__}")
        self._special[name] = value
        if value is not None and self._tok.token_to_id(value) is not None:
            self._tok.add_special_tokens([_tk().AddedToken(value, special=True, normalized=False)])
        self._after_setup()

    def get_id(self):
        return self._special_id(name)

    def set_id(self, value):
        setattr(self, name, None if value is None else self._tok.id_to_token(int(value)))

    setattr(PreTrainedTokenizer, name, property(get, set_, doc=f"The {name.replace('_', ' ')} (a str or None)."))
    setattr(PreTrainedTokenizer, f"{name}_id", property(get_id, set_id, doc=f"The id of {name}, or None."))


for _name in _SPECIAL_NAMES:
    _special_property(_name)
PreTrainedTokenizer.pad_token_type_id = 0


def _clean_up_tokenization(text):
    for a, b in ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"), (" 'm", "'m"),
                 (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")):
        text = text.replace(a, b)
    return text


def _flat_ids(ids, where):
    if hasattr(ids, "numpy") and not isinstance(ids, np.ndarray):
        ids = ids.numpy()
    arr = np.asarray(ids)
    if arr.ndim > 1 and arr.shape[0] == 1 and where == "decode":
        arr = arr[0]
    if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
        raise TypeError(f"{where}: expected a sequence of int ids, got {type(ids).__name__} of shape {arr.shape}")
    return arr.tolist()


def _batch_inputs(text, text_pair, split_words):
    """(batched?, [text or (text, pair)]) for encode_batch, validating the inputs like transformers."""
    def one(t):
        return isinstance(t, str) or (split_words and isinstance(t, (list, tuple)) and all(isinstance(w, str) for w in t))

    if one(text) and not (split_words and text and isinstance(text[0], (list, tuple))):
        if text_pair is not None and not one(text_pair):
            raise TypeError("text_pair must be a str when text is a single str")
        return False, [(text, text_pair) if text_pair else text]       # (an empty pair is no pair, as in transformers)
    if not isinstance(text, (list, tuple)) or not all(one(t) for t in text):
        raise TypeError(f"text must be a str or a list of str, got {type(text).__name__}"
                        + (" holding other things" if isinstance(text, (list, tuple)) else ""))
    if text_pair is None:
        return True, list(text)
    if isinstance(text_pair, str) or not isinstance(text_pair, (list, tuple)) or not all(one(t) for t in text_pair):
        raise TypeError("when text is a batch, text_pair must be a list of str of the same length")
    if len(text_pair) != len(text):
        raise ValueError(f"batch length of text ({len(text)}) does not match text_pair ({len(text_pair)})")
    return True, list(zip(text, text_pair))


def _directory(directory):
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        raise (NotADirectoryError if os.path.exists(directory) else FileNotFoundError)(
            f"from_pretrained: '{directory}' is not a directory (pyfastnn reads tokenizers from local "
            f"directories only; nothing is downloaded)")
    return directory


def _saved_settings(directory):
    """tokenizer_config.json overlaid by special_tokens_map.json (as transformers reads them), and the
    added tokens they list (for builds from vocabulary files)."""
    settings = {}
    config_path = os.path.join(directory, "tokenizer_config.json")
    if os.path.isfile(config_path):
        settings.update(read_json(config_path))
    map_path = os.path.join(directory, "special_tokens_map.json")
    if os.path.isfile(map_path):
        settings.update({k: v for k, v in read_json(map_path).items() if v is not None})
    for name in _SPECIAL_NAMES:
        if name in settings:
            settings[name] = _token_text(settings[name])
    extra = settings.get("additional_special_tokens") or settings.get("extra_special_tokens") or ()
    settings["additional_special_tokens"] = [_token_text(t) for t in extra] if isinstance(extra, (list, tuple)) else []
    added = []
    for i, tok in sorted(((int(i), t) for i, t in (settings.get("added_tokens_decoder") or {}).items())):
        added.append({k: tok[k] for k in ("content", "single_word", "lstrip", "rstrip", "normalized", "special")
                      if k in tok})
    legacy_added = os.path.join(directory, "added_tokens.json")
    if os.path.isfile(legacy_added):
        for token, _ in sorted(read_json(legacy_added).items(), key=lambda kv: kv[1]):
            added.append({"content": token})
    return settings, added


def _load_vocab_txt(path):
    # transformers' load_vocab: one token a line, only the newline stripped
    with open(path, encoding="utf-8") as fh:
        return {line.rstrip("\n"): i for i, line in enumerate(fh.readlines())}


class BertTokenizer(PreTrainedTokenizer):
    """BERT's WordPiece tokenizer (tokenizers' BertNormalizer, BertPreTokenizer, WordPiece model and
    decoder, [CLS] A [SEP] B [SEP] template). BertTokenizer(vocab_file, do_lower_case=True, ...)."""

    model_input_names = ("input_ids", "token_type_ids", "attention_mask")
    tokenizer_class = "BertTokenizer"
    _DEFAULT_SPECIALS = {"unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]",
                         "mask_token": "[MASK]"}
    _DEFAULT_OPTIONS = {"do_lower_case": True, "strip_accents": None, "tokenize_chinese_chars": True}

    def __init__(self, vocab_file, **options):
        self._check_options(options, "BertTokenizer")
        settings = self._settings_with_defaults(options)
        self._setup(self._backend(_load_vocab_txt(os.fspath(vocab_file)), settings), settings)

    @classmethod
    def _backend_from_files(cls, directory, settings):
        path = os.path.join(directory, "vocab.txt")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"BertTokenizer.from_pretrained: '{directory}' has neither tokenizer.json nor "
                                    f"vocab.txt")
        return cls._backend(_load_vocab_txt(path), settings)

    @classmethod
    def _backend(cls, vocab, settings):
        tk = _tk()
        tok = tk.Tokenizer(tk.models.WordPiece(vocab, unk_token=str(settings["unk_token"]),
                                               max_input_chars_per_word=100))
        tok.normalizer = tk.normalizers.BertNormalizer(clean_text=True,
                                                       handle_chinese_chars=settings["tokenize_chinese_chars"],
                                                       strip_accents=settings["strip_accents"],
                                                       lowercase=settings["do_lower_case"])
        tok.pre_tokenizer = tk.pre_tokenizers.BertPreTokenizer()
        tok.decoder = tk.decoders.WordPiece(prefix="##")
        return tok

    def _after_setup(self):
        # a tokenizer.json brings its own post-processor; one built from vocab.txt gets BERT's template
        if getattr(self, "_built_here", None) is None:
            self._built_here = self._tok.post_processor is None
        if not self._built_here or None in (self.cls_token_id, self.sep_token_id):
            return
        cls_tok, sep_tok = self.cls_token, self.sep_token
        self._tok.post_processor = _tk().processors.TemplateProcessing(
            single=f"{cls_tok}:0 $A:0 {sep_tok}:0", pair=f"{cls_tok}:0 $A:0 {sep_tok}:0 $B:1 {sep_tok}:1",
            special_tokens=[(cls_tok, self.cls_token_id), (sep_tok, self.sep_token_id)])

    @classmethod
    def _adapt_backend(cls, tok, settings):
        # the saved settings win over tokenizer.json's normalizer, as in transformers
        tk = _tk()
        if isinstance(tok.normalizer, tk.normalizers.BertNormalizer):
            tok.normalizer = tk.normalizers.BertNormalizer(
                clean_text=True, handle_chinese_chars=settings["tokenize_chinese_chars"],
                strip_accents=settings["strip_accents"], lowercase=settings["do_lower_case"])

    def _save_vocabulary(self, directory):
        vocab = self._tok.get_vocab(with_added_tokens=False)
        path = os.path.join(directory, "vocab.txt")
        with open(path, "w", encoding="utf-8") as fh:
            for token, _ in sorted(vocab.items(), key=lambda kv: kv[1]):
                fh.write(token + "\n")
        return [path]


class GPT2Tokenizer(PreTrainedTokenizer):
    """GPT-2's byte-level BPE (tokenizers' BPE model with ByteLevel pre-tokenizer and decoder).
    GPT2Tokenizer(vocab_file, merges_file, add_prefix_space=False, ...). It has no pad token: set one
    (tokenizer.pad_token = tokenizer.eos_token) before padding."""

    model_input_names = ("input_ids", "attention_mask")
    tokenizer_class = "GPT2Tokenizer"
    _DEFAULT_SPECIALS = {"unk_token": "<|endoftext|>", "bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>",
                         "pad_token": None}
    _DEFAULT_OPTIONS = {"add_prefix_space": False, "add_bos_token": False, "add_eos_token": False}

    def __init__(self, vocab_file, merges_file, **options):
        self._check_options(options, "GPT2Tokenizer")
        settings = self._settings_with_defaults(options)
        self._setup(self._backend(os.fspath(vocab_file), os.fspath(merges_file), settings), settings)

    @classmethod
    def _backend_from_files(cls, directory, settings):
        vocab, merges = os.path.join(directory, "vocab.json"), os.path.join(directory, "merges.txt")
        if not (os.path.isfile(vocab) and os.path.isfile(merges)):
            raise FileNotFoundError(f"GPT2Tokenizer.from_pretrained: '{directory}' has neither tokenizer.json nor "
                                    f"vocab.json + merges.txt")
        return cls._backend(vocab, merges, settings)

    @classmethod
    def _backend(cls, vocab_file, merges_file, settings):
        tk = _tk()
        vocab = read_json(vocab_file)
        with open(merges_file, encoding="utf-8") as fh:
            lines = fh.read().split("\n")
        merges = [tuple(line.split(" ")) for line in lines
                  if line and not line.startswith("#version") and len(line.split(" ")) == 2]
        tok = tk.Tokenizer(tk.models.BPE(vocab, merges, dropout=None, continuing_subword_prefix="",
                                         end_of_word_suffix="", fuse_unk=False))
        tok.pre_tokenizer = tk.pre_tokenizers.ByteLevel(add_prefix_space=bool(settings["add_prefix_space"]))
        tok.decoder = tk.decoders.ByteLevel()
        return tok

    def _after_setup(self):
        # transformers' update_post_processor: bos/eos around each sequence when asked for
        if getattr(self, "_built_here", None) is None:
            self._built_here = self._tok.post_processor is None
        if not self._built_here and not (self.add_bos_token or self.add_eos_token):
            return
        bos, eos = self.bos_token, self.eos_token
        add_bos = bool(self.add_bos_token and bos is not None and self.bos_token_id is not None)
        add_eos = bool(self.add_eos_token and eos is not None and self.eos_token_id is not None)
        single = f"{bos + ':0 ' if add_bos else ''}$A:0{' ' + eos + ':0' if add_eos else ''}"
        pair = f"{single}{' ' + bos + ':1' if add_bos else ''} $B:1{' ' + eos + ':1' if add_eos else ''}"
        specials = ([(bos, self.bos_token_id)] if add_bos else []) + ([(eos, self.eos_token_id)] if add_eos else [])
        self._tok.post_processor = _tk().processors.TemplateProcessing(single=single, pair=pair,
                                                                       special_tokens=specials)

    @classmethod
    def _adapt_backend(cls, tok, settings):
        tk = _tk()
        pre = tok.pre_tokenizer
        if isinstance(pre, tk.pre_tokenizers.ByteLevel) and pre.add_prefix_space != bool(settings["add_prefix_space"]):
            tok.pre_tokenizer = tk.pre_tokenizers.ByteLevel(add_prefix_space=bool(settings["add_prefix_space"]),
                                                            trim_offsets=pre.trim_offsets, use_regex=pre.use_regex)

    def _save_vocabulary(self, directory):
        model = json.loads(self._tok.to_str())["model"]
        vocab_path, merges_path = os.path.join(directory, "vocab.json"), os.path.join(directory, "merges.txt")
        with open(vocab_path, "w", encoding="utf-8") as fh:
            json.dump(model["vocab"], fh, ensure_ascii=False)
        with open(merges_path, "w", encoding="utf-8") as fh:
            fh.write("#version: 0.2\n")
            for merge in model["merges"]:
                fh.write((merge if isinstance(merge, str) else " ".join(merge)) + "\n")
        return [vocab_path, merges_path]


_CLASSES = {"BertTokenizer": BertTokenizer, "GPT2Tokenizer": GPT2Tokenizer}
_MODEL_TYPES = {"bert": BertTokenizer, "gpt2": GPT2Tokenizer}


class AutoTokenizer:
    """Picks the tokenizer class a directory was saved with: tokenizer_config.json's tokenizer_class,
    else config.json's model_type, else the vocabulary files present. A class pyfastnn does not know
    loads generically from tokenizer.json."""

    def __init__(self):
        raise TypeError("AutoTokenizer is not instantiated: use AutoTokenizer.from_pretrained(directory)")

    @classmethod
    def from_pretrained(cls, directory, **options):
        directory = _directory(directory)
        config_path = os.path.join(directory, "tokenizer_config.json")
        name = read_json(config_path).get("tokenizer_class") if os.path.isfile(config_path) else None
        if isinstance(name, str) and name.endswith("Fast"):
            name = name[: -len("Fast")]
        target = _CLASSES.get(name)
        if target is None and name is None:
            model_config = os.path.join(directory, "config.json")
            if os.path.isfile(model_config):
                target = _MODEL_TYPES.get(read_json(model_config).get("model_type"))
        if target is None and name is None:
            if os.path.isfile(os.path.join(directory, "vocab.txt")):
                target = BertTokenizer
            elif os.path.isfile(os.path.join(directory, "vocab.json")) and \
                    os.path.isfile(os.path.join(directory, "merges.txt")):
                target = GPT2Tokenizer
        if target is None:
            if not os.path.isfile(os.path.join(directory, "tokenizer.json")):
                raise ValueError(f"AutoTokenizer.from_pretrained: cannot tell the tokenizer of '{directory}' "
                                 f"(tokenizer_class {name!r}, no tokenizer.json, vocab.txt or vocab.json + merges.txt)")
            target = PreTrainedTokenizer
        return target.from_pretrained(directory, **options)
