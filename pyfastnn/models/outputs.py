"""transformers' output objects: read by attribute (out.logits), by name (out["logits"]) or by position
(out[0], counting only the fields that are set, as transformers does)."""
from __future__ import annotations

from collections import OrderedDict

__all__ = ["ModelOutput", "BaseModelOutputWithPoolingAndCrossAttentions", "BaseModelOutputWithPastAndCrossAttentions",
           "SequenceClassifierOutput", "MaskedLMOutput", "CausalLMOutputWithCrossAttentions"]


class ModelOutput(OrderedDict):
    """An ordered dict of the fields that are not None; every field is also an attribute (None when unset).
    `cache` reads past_key_values (transformers 5's name for it)."""
    _fields: tuple = ()

    def __init__(self, *args, **kwargs):
        super().__init__()
        if len(args) > len(self._fields):
            raise TypeError(f"{type(self).__name__} takes at most {len(self._fields)} positional fields, got "
                            f"{len(args)}")
        if "cache" in kwargs and "past_key_values" in self._fields:
            kwargs.setdefault("past_key_values", kwargs.pop("cache"))
        values = dict(zip(self._fields, args))
        for name, value in kwargs.items():
            if name not in self._fields:
                raise TypeError(f"{type(self).__name__} has no field '{name}' (fields: {', '.join(self._fields)})")
            if name in values:
                raise TypeError(f"{type(self).__name__}: field '{name}' given twice")
            values[name] = value
        for name in self._fields:
            self.__setattr__(name, values.get(name))

    def __setattr__(self, name, value):
        if name in self._fields:
            if value is None:
                super().pop(name, None)
            else:
                super().__setitem__(name, value)
        object.__setattr__(self, name, value)

    def __setitem__(self, key, value):
        if key not in self._fields:
            raise KeyError(f"{type(self).__name__} has no field '{key}'")
        self.__setattr__(key, value)

    def __getitem__(self, key):
        if isinstance(key, str):
            return super().__getitem__(key)
        return self.to_tuple()[key]

    def __delitem__(self, key):
        raise TypeError(f"You cannot use ``__delitem__`` on a {type(self).__name__} instance.")

    @property
    def cache(self):
        return getattr(self, "past_key_values", None)

    def to_tuple(self):
        return tuple(self[k] for k in self.keys())

    def __reduce__(self):
        return type(self), (), {k: getattr(self, k) for k in self._fields}

    def __setstate__(self, state):
        for name, value in state.items():
            self.__setattr__(name, value)

    def __repr__(self):
        inner = ", ".join(f"{k}={_short(v)}" for k, v in self.items())
        return f"{type(self).__name__}({inner})"


def _short(value):
    shape = getattr(value, "shape", None)
    if shape is not None:
        return f"<{type(value).__name__} shape={tuple(shape)}>"
    if isinstance(value, tuple):
        return f"<tuple of {len(value)}>"
    return repr(value) if not hasattr(value, "get_seq_length") else f"<{type(value).__name__}>"


def _output(name, fields, doc):
    return type(name, (ModelOutput,), {"_fields": tuple(fields.split()), "__doc__": doc, "__module__": __name__})


BaseModelOutputWithPoolingAndCrossAttentions = _output(
    "BaseModelOutputWithPoolingAndCrossAttentions",
    "last_hidden_state pooler_output hidden_states past_key_values attentions cross_attentions",
    "BertModel's output: the last layer's hidden states and the pooled first token.")
BaseModelOutputWithPastAndCrossAttentions = _output(
    "BaseModelOutputWithPastAndCrossAttentions",
    "last_hidden_state past_key_values hidden_states attentions cross_attentions",
    "GPT2Model's output: the last hidden states and, with use_cache, the key/value cache.")
SequenceClassifierOutput = _output(
    "SequenceClassifierOutput", "loss logits hidden_states attentions",
    "A sequence classifier's output: logits (batch, num_labels) and the loss when labels were given.")
MaskedLMOutput = _output(
    "MaskedLMOutput", "loss logits hidden_states attentions",
    "A masked language model's output: logits (batch, seq, vocab) and the loss over labels != -100.")
CausalLMOutputWithCrossAttentions = _output(
    "CausalLMOutputWithCrossAttentions", "loss logits past_key_values hidden_states attentions cross_attentions",
    "A causal language model's output: logits, the shifted next-token loss with labels, the key/value cache.")
