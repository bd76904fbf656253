"""PreTrainedModel: from_pretrained / save_pretrained on the directories transformers reads and writes
(config.json + model.safetensors, sharded safetensors or pytorch_model.bin), mapping transformers'
checkpoint layouts onto the modules here: base-model prefixes added or dropped, legacy names renamed,
tied weights kept tied, each model's own conversions (GPT-2's Conv1D transposes) applied both ways.
A checkpoint is validated whole before anything is written."""
from __future__ import annotations

import os
import re
import warnings

import numpy as np

from .. import nn
from ..hub import hf_weight_files, load_hf_weights, save, save_safetensors
from ..hub._files import fspath
from ..hub._optional import optional
from ..hub.hf import WEIGHT_FILES
from ._weights import check_state_dict
from .configuration import CONFIG_NAME, PretrainedConfig

__all__ = ["PreTrainedModel"]

# names older checkpoints (TF-converted BERT) use for LayerNorm parameters, as transformers renames them
_LEGACY_RENAMES = ((re.compile(r"(^|\.)gamma$"), r"\1weight"), (re.compile(r"(^|\.)beta$"), r"\1bias"))


class PreTrainedModel(nn.Module):
    """Base of the transformers-style models. Subclasses set config_class, base_model_prefix (the attribute
    holding the base model in head models: 'bert', 'transformer'), and may set

    _tied_weights_keys: {target: source} parameter names that are one Parameter (target is not saved);
    _tied_if_config: targets tied only when config.tie_word_embeddings;
    _keys_to_ignore_on_load_unexpected: regexes of checkpoint keys to drop silently (old buffers);
    _keys_to_init_if_missing: regexes of base-model keys a checkpoint may lack (they keep their
        initialisation, with a warning), e.g. BERT's pooler in a masked-LM checkpoint.
    """
    config_class = PretrainedConfig
    base_model_prefix = ""
    _tied_weights_keys: dict = {}
    _tied_if_config: tuple = ()
    _keys_to_ignore_on_load_unexpected: tuple = ()
    _keys_to_init_if_missing: tuple = ()

    def __init__(self, config):
        super().__init__()
        if not isinstance(config, self.config_class):
            raise TypeError(f"{type(self).__name__}: config must be a {self.config_class.__name__}, got "
                            f"{type(config).__name__}")
        config.validate()
        self.config = config

    # ------------------------------------------------------------ tying
    def _active_ties(self):
        tie_embeddings = bool(getattr(self.config, "tie_word_embeddings", True))
        return {t: s for t, s in self._tied_weights_keys.items() if tie_embeddings or t not in self._tied_if_config}

    def tie_weights(self):
        """Makes every tied target the same Parameter as its source (lm_head.weight is wte.weight)."""
        for target, source in self._active_ties().items():
            module_path, _, name = target.rpartition(".")
            setattr(self.get_submodule(module_path), name, self.get_parameter(source))

    def post_init(self):
        self.tie_weights()

    def num_parameters(self, only_trainable=False):
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not only_trainable)

    # ------------------------------------------------- layout conversions
    def _hf_to_own(self, state):
        """Checkpoint tensors (transformers' layout, our keys) into this model's layout; subclasses override."""
        return state

    def _own_to_hf(self, state):
        """The inverse of _hf_to_own, for save_pretrained."""
        return state

    def _has_base_prefix(self):
        return bool(self.base_model_prefix) and self.base_model_prefix in self._modules

    def _normalise_keys(self, state):
        """Legacy names renamed, ignored keys dropped, the base-model prefix added (a base-model checkpoint into a
        head model) or removed (a head-model checkpoint into the base model). Returns (state, foreign): foreign
        are a head checkpoint's head keys when loading into the base model."""
        out = {}
        for key, value in state.items():
            for pattern, repl in _LEGACY_RENAMES:
                key = pattern.sub(repl, key)
            if any(re.search(p, key) for p in self._keys_to_ignore_on_load_unexpected):
                continue
            out[key] = value
        prefix = self.base_model_prefix + "."
        foreign = set()
        if self.base_model_prefix:
            has_prefix = any(k.startswith(prefix) for k in out)
            if self._has_base_prefix() and not has_prefix:
                out = {prefix + k: v for k, v in out.items()}
            elif not self._has_base_prefix() and has_prefix:
                foreign = {k for k in out if not k.startswith(prefix)}
                out = {(k[len(prefix):] if k.startswith(prefix) else k): v for k, v in out.items()}
        return out, foreign

    def load_hf_state_dict(self, state, *, source="the state dict", where=None):
        """Loads a state dict in transformers' layout (what its model.state_dict() or save_pretrained holds):
        keys mapped, layouts converted, tied weights kept tied. Base-model weights must all be there; head
        weights the checkpoint lacks keep their initialisation (with a warning, as transformers does). Checked
        whole before anything is written; WeightsError names the source and keys."""
        where = where or f"{type(self).__name__}.from_pretrained"
        state = {k: (v.numpy() if hasattr(v, "numpy") and not isinstance(v, np.ndarray) else v)
                 for k, v in state.items()}
        state, foreign = self._normalise_keys(state)
        state = self._hf_to_own(state)
        ties = self._active_ties()
        own = {k: tuple(v.shape) for k, v in self.state_dict().items() if k not in ties}
        base = self.base_model_prefix + "." if self._has_base_prefix() else ""
        optional_keys = [k for k in own if not k.startswith(base)
                         or any(re.search(p, k) for p in self._keys_to_init_if_missing)]
        others = [k for k in state if k not in own and (k in ties or k in foreign or not k.startswith(base))]
        newly = check_state_dict(own, state, where=where, source=source, arch=type(self).__name__,
                                 allow_missing=optional_keys, allow_unexpected=others)
        self.load_state_dict({k: v for k, v in state.items() if k in own}, strict=False)
        self.tie_weights()
        unused = [k for k in others if k not in ties]
        if newly:
            warnings.warn(f"{where}: {source} has no weights for {', '.join(newly[:8])}"
                          f"{' ...' if len(newly) > 8 else ''}: they keep their random initialisation (train the "
                          f"model before using it for predictions)", UserWarning, stacklevel=3)
        if unused:
            warnings.warn(f"{where}: {source} holds weights {type(self).__name__} does not use: {', '.join(unused[:8])}"
                          f"{' ...' if len(unused) > 8 else ''} (expected when its head differs)", UserWarning,
                          stacklevel=3)
        return self

    def hf_state_dict(self):
        """The state dict in transformers' layout and keys, as save_pretrained writes it (tied copies left out)."""
        ties = self._active_ties()
        state = {k: v.numpy() for k, v in self.state_dict().items() if k not in ties}
        return {k: np.ascontiguousarray(v) for k, v in self._own_to_hf(state).items()}

    # --------------------------------------------------------------- I/O
    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, config=None, **kwargs):
        """A model from a directory transformers' save_pretrained wrote (config.json + model.safetensors, a
        sharded index, or pytorch_model.bin; read safely: nothing from the files runs), in eval mode as
        transformers returns it. kwargs override config fields (e.g. num_labels=3). Nothing is downloaded."""
        where = f"{cls.__name__}.from_pretrained"
        if model_args:
            raise TypeError(f"{where}: takes the directory and keyword arguments only")
        directory = fspath(pretrained_model_name_or_path, where)
        if not os.path.isdir(directory):
            hint = ("" if os.path.exists(directory) else
                    " (pyfastnn downloads nothing: pass the directory transformers' save_pretrained wrote, or the "
                    "Hugging Face cache's snapshot folder)")
            raise FileNotFoundError(f"{where}: '{directory}' is not a model directory{hint}")
        for name in ("torch_dtype", "dtype", "device_map", "low_cpu_mem_usage", "trust_remote_code", "revision",
                     "local_files_only", "attn_implementation", "cache_dir"):
            kwargs.pop(name, None)        # transformers' loading options that mean nothing here
        if config is None:
            config = cls.config_class.from_pretrained(directory, **kwargs)
        elif kwargs:
            raise TypeError(f"{where}: pass config fields either in config or as keyword arguments, not both "
                            f"(got {sorted(kwargs)})")
        elif not isinstance(config, cls.config_class):
            raise TypeError(f"{where}: config must be a {cls.config_class.__name__}, got {type(config).__name__}")
        files = hf_weight_files(directory)
        state = load_hf_weights(directory)
        model = cls(config)
        model.load_hf_state_dict(state, source=f"'{files[0]}'", where=where)
        return model.eval()

    def save_pretrained(self, save_directory, *, safe_serialization=True, state_dict=None, **kwargs):
        """Writes config.json and model.safetensors (pytorch_model.bin with safe_serialization=False), the files
        transformers' from_pretrained reads; tied copies are left out and layouts converted to transformers'."""
        where = f"{type(self).__name__}.save_pretrained"
        save_directory = fspath(save_directory, where)
        if os.path.isfile(save_directory):
            raise NotADirectoryError(f"{where}: '{save_directory}' is a file, not a directory")
        if safe_serialization and optional("safetensors") is None:
            raise ImportError(f"{where}: writing model.safetensors needs the 'safetensors' package "
                              f"(pip install \"pyfastnn[hub]\"), or pass safe_serialization=False to write "
                              f"pytorch_model.bin")
        os.makedirs(save_directory, exist_ok=True)
        tensors = self.hf_state_dict() if state_dict is None else {k: np.ascontiguousarray(np.asarray(v))
                                                                   for k, v in state_dict.items()}
        self.config.architectures = [type(self).__name__]
        self.config.save_pretrained(save_directory)
        name = "model.safetensors" if safe_serialization else "pytorch_model.bin"
        path = os.path.join(save_directory, name)
        if safe_serialization:
            save_safetensors(tensors, path, metadata={"format": "pt"})
        else:
            save(tensors, path)
        for stale in WEIGHT_FILES:      # an older file of the other format would be read first
            if stale != name and os.path.isfile(os.path.join(save_directory, stale)):
                os.unlink(os.path.join(save_directory, stale))
        return [os.path.join(save_directory, CONFIG_NAME), path]
