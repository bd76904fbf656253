"""Hugging Face model directories (what transformers' save_pretrained writes): config.json, and the
weights — model.safetensors, a sharded model.safetensors.index.json, pytorch_model.bin or its sharded
index — read into one flat {name: numpy array} dict through the same safe loaders as pyfastnn.load."""
from __future__ import annotations

import os

import numpy as np

from ._files import fspath, read_json
from .api import load
from .errors import CheckpointError

__all__ = ["WEIGHT_FILES", "read_hf_config", "hf_weight_files", "load_hf_weights"]

# in transformers' order of preference
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
_OTHER_FRAMEWORKS = {"tf_model.h5": "TensorFlow", "flax_model.msgpack": "Flax", "model.ckpt.index": "TensorFlow 1"}


def _directory(directory, what):
    directory = fspath(directory, what)
    if not os.path.exists(directory):
        raise FileNotFoundError(f"{what}: no such directory '{directory}'")
    if not os.path.isdir(directory):
        raise NotADirectoryError(f"{what}: '{directory}' is a file, not a model directory (pyfastnn.load reads "
                                 f"single checkpoint files)")
    return directory


def read_hf_config(directory):
    """config.json of a model directory, as a dict."""
    directory = _directory(directory, "read_hf_config")
    path = os.path.join(directory, "config.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"read_hf_config: '{directory}' has no config.json")
    config = read_json(path)
    if not isinstance(config, dict):
        raise CheckpointError(f"{path}: config.json must hold a JSON object, it holds a {type(config).__name__}")
    return config


def _shards(index_path):
    index = read_json(index_path)
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                   for k, v in weight_map.items()):
        raise CheckpointError(f"{index_path}: a shard index needs a 'weight_map' of tensor names to file names")
    for shard in set(weight_map.values()):
        if shard in ("", ".", "..") or os.path.basename(shard) != shard or "/" in shard or "\\" in shard:
            raise CheckpointError(f"{index_path}: refuses shard '{shard}': shards must be files inside the model "
                                  f"directory")
    return weight_map


def hf_weight_files(directory):
    """The weight files load_hf_weights reads, in order (the index first, for a sharded checkpoint)."""
    directory = _directory(directory, "hf_weight_files")
    for name in WEIGHT_FILES:
        path = os.path.join(directory, name)
        if os.path.isfile(path):
            if not name.endswith(".index.json"):
                return [path]
            weight_map = _shards(path)
            return [path] + [os.path.join(directory, s) for s in dict.fromkeys(sorted(set(weight_map.values())))]
    others = [f"{n} ({fw})" for n, fw in _OTHER_FRAMEWORKS.items() if os.path.exists(os.path.join(directory, n))]
    raise FileNotFoundError(f"load_hf_weights: '{directory}' holds none of {', '.join(WEIGHT_FILES)}"
                            + (f"; it has {', '.join(others)} weights, which pyfastnn does not read" if others else ""))


def _flat_state(obj, path):
    if not isinstance(obj, dict) or not all(isinstance(k, str) and isinstance(v, np.ndarray) for k, v in obj.items()):
        raise CheckpointError(f"{path}: expected a flat state dict (tensor names to tensors), found a "
                              f"{type(obj).__name__} with other entries")
    return obj


def load_hf_weights(directory, *, keep_dtype=False, mmap=None):
    """All tensors of a model directory as one flat {name: numpy array} dict (float32 for half types
    unless keep_dtype). pytorch_model.bin files load weights-only: a pickle that would run code is refused."""
    files = hf_weight_files(directory)
    if not files[0].endswith(".index.json"):
        return _flat_state(load(files[0], weights_only=True, mmap=mmap, keep_dtype=keep_dtype), files[0])
    index_path, weight_map = files[0], _shards(files[0])
    out, origin = {}, {}
    for shard_path in files[1:]:
        if not os.path.isfile(shard_path):
            raise FileNotFoundError(f"load_hf_weights: shard '{os.path.basename(shard_path)}' listed in "
                                    f"'{index_path}' is missing")
        shard = _flat_state(load(shard_path, weights_only=True, mmap=mmap, keep_dtype=keep_dtype), shard_path)
        for name, value in shard.items():
            if name in out:
                raise CheckpointError(f"{shard_path}: tensor '{name}' is also in '{origin[name]}'")
            out[name], origin[name] = value, shard_path
    for name, shard in weight_map.items():
        if origin.get(name) != os.path.join(os.path.dirname(index_path), shard):
            raise CheckpointError(f"{index_path}: lists tensor '{name}' in '{shard}', which does not hold it")
    return out
