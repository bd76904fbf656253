"""transformers-style model configurations: the config.json fields as attributes (with the aliases a
model declares, e.g. GPT-2's hidden_size for n_embd), read from and written to the config.json files
transformers reads and writes; unknown fields are kept, as transformers keeps them."""
from __future__ import annotations

import copy
import json
import os

from ..hub import read_hf_config
from ..hub._files import atomic_write, fspath

__all__ = ["PretrainedConfig", "ConfigError", "CONFIG_CLASSES"]

CONFIG_CLASSES = {}      # model_type -> config class, filled as the classes are defined

CONFIG_NAME = "config.json"

# fields every transformers config has, with transformers' defaults
_COMMON = {
    "architectures": None, "problem_type": None, "output_hidden_states": False, "output_attentions": False,
    "return_dict": True, "pad_token_id": None, "bos_token_id": None, "eos_token_id": None,
    "tie_word_embeddings": True, "use_cache": True, "is_decoder": False, "add_cross_attention": False,
}
_PROBLEM_TYPES = (None, "regression", "single_label_classification", "multi_label_classification")


class ConfigError(ValueError):
    """A config.json (or config arguments) a model cannot be built from; names the file and the field."""


class PretrainedConfig:
    """Base of BertConfig and GPT2Config. Subclasses set model_type, attribute_map (alias -> field) and
    defaults (field -> default value)."""
    model_type = ""
    attribute_map: dict = {}
    defaults: dict = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.model_type:
            CONFIG_CLASSES[cls.model_type] = cls

    def __init__(self, **kwargs):
        for name, value in {**_COMMON, **self.defaults}.items():
            object.__setattr__(self, name, copy.deepcopy(value))
        id2label = kwargs.pop("id2label", None)
        label2id = kwargs.pop("label2id", None)
        num_labels = kwargs.pop("num_labels", None)
        kwargs.pop("model_type", None)
        for name, value in kwargs.items():
            setattr(self, name, value)
        if id2label is not None:
            self.id2label = {int(k): v for k, v in dict(id2label).items()}
            if num_labels is not None and num_labels != len(self.id2label):
                raise ConfigError(f"{type(self).__name__}: num_labels={num_labels} disagrees with id2label, which has "
                                  f"{len(self.id2label)} labels")
        else:
            self.num_labels = 2 if num_labels is None else num_labels
        if label2id is not None:
            self.label2id = {k: int(v) for k, v in dict(label2id).items()}
        elif "label2id" not in self.__dict__:
            self.label2id = {v: k for k, v in self.id2label.items()}
        if self.problem_type not in _PROBLEM_TYPES:
            raise ConfigError(f"{type(self).__name__}: problem_type must be one of {_PROBLEM_TYPES[1:]}, got "
                              f"{self.problem_type!r}")

    # aliases such as GPT-2's hidden_size -> n_embd
    def __setattr__(self, name, value):
        name = type(self).attribute_map.get(name, name)
        object.__setattr__(self, name, value)

    def __getattr__(self, name):
        target = type(self).attribute_map.get(name)
        if target is not None:
            return getattr(self, target)
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    @property
    def num_labels(self):
        return len(self.id2label)

    @num_labels.setter
    def num_labels(self, n):
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ConfigError(f"{type(self).__name__}: num_labels must be a positive int, got {n!r}")
        if getattr(self, "id2label", None) is None or len(self.id2label) != n:
            object.__setattr__(self, "id2label", {i: f"LABEL_{i}" for i in range(n)})
            object.__setattr__(self, "label2id", {f"LABEL_{i}": i for i in range(n)})

    # ----------------------------------------------------------- checks
    def _check_int(self, name, minimum=1, source=None):
        value = getattr(self, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ConfigError(f"{source or type(self).__name__}: '{name}' must be an int >= {minimum}, got {value!r}")

    def _check_number(self, name, low, high, source=None):
        value = getattr(self, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
            raise ConfigError(f"{source or type(self).__name__}: '{name}' must be a number in [{low}, {high}], got "
                              f"{value!r}")

    def validate(self, source=None):
        """Raises ConfigError naming the field when a value cannot build the model (subclasses add checks)."""

    # -------------------------------------------------------------- I/O
    def to_dict(self):
        out = {k: copy.deepcopy(v) for k, v in sorted(self.__dict__.items()) if not k.startswith("_")}
        out["model_type"] = self.model_type
        out["id2label"] = {str(k): v for k, v in self.id2label.items()}
        return out

    def to_json_string(self):
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def to_json_file(self, path):
        text = self.to_json_string().encode("utf-8")
        atomic_write(fspath(path, "to_json_file"), lambda fh: fh.write(text), "save_pretrained")

    def save_pretrained(self, save_directory):
        save_directory = fspath(save_directory, "save_pretrained")
        os.makedirs(save_directory, exist_ok=True)
        self.to_json_file(os.path.join(save_directory, CONFIG_NAME))

    @classmethod
    def from_dict(cls, config_dict, *, source=None, **kwargs):
        if not isinstance(config_dict, dict):
            raise ConfigError(f"{source or cls.__name__}: a config must be a dict, got {type(config_dict).__name__}")
        model_type = config_dict.get("model_type")
        if cls.model_type and model_type not in (None, cls.model_type):
            known = ", ".join(sorted(CONFIG_CLASSES))
            what = "model_type" if model_type in CONFIG_CLASSES else "an unknown model_type"
            raise ConfigError(f"{source or cls.__name__}: {what} {model_type!r}; {cls.__name__} reads "
                              f"model_type {cls.model_type!r} (pyfastnn.models reads: {known})")
        config_dict = dict(config_dict)
        if "num_labels" in kwargs and "id2label" not in kwargs:     # a new head size replaces the file's labels
            config_dict.pop("id2label", None)
            config_dict.pop("label2id", None)
        config = cls(**{**config_dict, **kwargs})
        config.validate(source)
        return config

    @classmethod
    def from_pretrained(cls, directory, **kwargs):
        """The config.json of a model directory (what save_pretrained writes); kwargs override its fields."""
        directory = fspath(directory, f"{cls.__name__}.from_pretrained")
        return cls.from_dict(read_hf_config(directory), source=os.path.join(directory, CONFIG_NAME), **kwargs)

    def __eq__(self, other):
        return type(self) is type(other) and self.to_dict() == other.to_dict()

    def __repr__(self):
        return f"{type(self).__name__} {self.to_json_string()}"
