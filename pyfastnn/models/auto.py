"""AutoConfig / AutoModel*: the class for a directory's config.json, chosen by its model_type (and, for
AutoModel*, the task), as transformers' Auto classes choose."""
from __future__ import annotations

import os

from ..hub import read_hf_config
from ..hub._files import fspath
from .bert import BertForMaskedLM, BertForSequenceClassification, BertModel
from .configuration import CONFIG_CLASSES, CONFIG_NAME, ConfigError, PretrainedConfig
from .gpt2 import GPT2LMHeadModel, GPT2Model

__all__ = ["AutoConfig", "AutoModel", "AutoModelForCausalLM", "AutoModelForMaskedLM",
           "AutoModelForSequenceClassification"]


def _config_class(directory, where):
    directory = fspath(directory, where)
    raw = read_hf_config(directory)
    model_type = raw.get("model_type")
    source = os.path.join(directory, CONFIG_NAME)
    if model_type is None:
        raise ConfigError(f"{where}: {source} has no 'model_type'; use the model class directly (e.g. "
                          f"BertModel.from_pretrained)")
    if model_type not in CONFIG_CLASSES:
        raise ConfigError(f"{where}: {source} has an unknown model_type {model_type!r} (pyfastnn.models reads: "
                          f"{', '.join(sorted(CONFIG_CLASSES))})")
    return CONFIG_CLASSES[model_type], raw, source


class AutoConfig:
    """AutoConfig.from_pretrained(directory): the config class its model_type names."""

    @classmethod
    def from_pretrained(cls, directory, **kwargs):
        config_class, raw, source = _config_class(directory, "AutoConfig.from_pretrained")
        return config_class.from_dict(raw, source=source, **kwargs)

    @classmethod
    def for_model(cls, model_type, **kwargs):
        if model_type not in CONFIG_CLASSES:
            raise ConfigError(f"AutoConfig.for_model: unknown model_type {model_type!r} (known: "
                              f"{', '.join(sorted(CONFIG_CLASSES))})")
        return CONFIG_CLASSES[model_type](**kwargs)


class _AutoModel:
    _mapping: dict = {}

    def __init__(self, *args, **kwargs):
        raise EnvironmentError(f"{type(self).__name__} is built with from_pretrained(directory) or from_config(config)")

    @classmethod
    def _model_class(cls, model_type, where):
        if model_type not in cls._mapping:
            raise ConfigError(f"{where}: no {cls.__name__} class for model_type {model_type!r} (this task has: "
                              f"{', '.join(sorted(cls._mapping)) or 'none'})")
        return cls._mapping[model_type]

    @classmethod
    def from_pretrained(cls, directory, **kwargs):
        where = f"{cls.__name__}.from_pretrained"
        config_class, raw, source = _config_class(directory, where)
        return cls._model_class(config_class.model_type, where).from_pretrained(directory, **kwargs)

    @classmethod
    def from_config(cls, config):
        if not isinstance(config, PretrainedConfig):
            raise TypeError(f"{cls.__name__}.from_config: config must be a PretrainedConfig, got "
                            f"{type(config).__name__}")
        return cls._model_class(config.model_type, f"{cls.__name__}.from_config")(config)


class AutoModel(_AutoModel):
    _mapping = {"bert": BertModel, "gpt2": GPT2Model}


class AutoModelForCausalLM(_AutoModel):
    _mapping = {"gpt2": GPT2LMHeadModel}


class AutoModelForMaskedLM(_AutoModel):
    _mapping = {"bert": BertForMaskedLM}


class AutoModelForSequenceClassification(_AutoModel):
    _mapping = {"bert": BertForSequenceClassification}
