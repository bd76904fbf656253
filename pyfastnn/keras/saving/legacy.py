"""Keras 2's HDF5 weights (tf.keras `save_weights('x.h5')`, the `model_weights` group of a whole-model .h5, and
the `*_weights_tf_dim_ordering_tf_kernels*.h5` files keras.applications downloads): the root lists
`layer_names`; each layer's group lists `weight_names`, the paths of its datasets (`dense/kernel:0`). Loaded in
order (the layers that have weights, one after the other) or by layer name."""
from __future__ import annotations

import numpy as np

from . import layout
from ._files import CheckpointError, decode_strings
from ._plan import Item, describe

__all__ = ["weights_group", "save", "items"]

# an HDF5 object header holds at most 64 KiB of attributes: longer name lists are split as Keras splits them
_HEADER_LIMIT = 64512
_FORMAT_VERSION = "2.15.0"      # the Keras 2 weight-file format these files follow


def _load_attr(group, name):
    if name in group.attrs:
        return decode_strings(group.attrs[name])
    out, k = [], 0
    while f"{name}{k}" in group.attrs:
        out += decode_strings(group.attrs[f"{name}{k}"])
        k += 1
    return out


def _has_attr(group, name):
    return name in group.attrs or f"{name}0" in group.attrs


def weights_group(f):
    """The group holding layer_names: the root of a weights file, `model_weights` in a whole-model file; None
    when the file is not in this format."""
    if _has_attr(f, "layer_names"):
        return f
    if "model_weights" in f and _has_attr(f["model_weights"], "layer_names"):
        return f["model_weights"]
    return None


def _save_attr(group, name, values):
    data = np.array([v.encode("utf8") for v in values]) if values else np.array([], np.float64)
    chunks = 1
    while data.nbytes // chunks > _HEADER_LIMIT and chunks < len(values):
        chunks += 1
    if chunks == 1:
        group.attrs[name] = data
    else:
        for k, part in enumerate(np.array_split(data, chunks)):
            group.attrs[f"{name}{k}"] = part


def save(model, f):
    top = layout.legacy_layers(model)
    _save_attr(f, "layer_names", [layer.name for layer in top])
    f.attrs["backend"] = b"tensorflow"
    f.attrs["keras_version"] = _FORMAT_VERSION.encode("utf8")
    for layer in sorted(top, key=lambda x: x.name):
        g = f.create_group(layer.name)
        names = layout.weight_names(layer)
        _save_attr(g, "weight_names", names)
        for name, (leaf, i) in zip(names, layout.legacy_pairs(layer)):
            g.create_dataset(name, data=np.ascontiguousarray(leaf._keras_weights()[i][0]()))
    _save_attr(f.create_group("top_level_model_weights"), "weight_names", [])


def _file_layers(g, path, where):
    """[(layer name, its group, its weight datasets)] in the file's order, layers without weights included."""
    out = []
    for name in _load_attr(g, "layer_names"):
        if name not in g:
            raise CheckpointError(f"{where}: '{path}' lists layer '{name}' in layer_names but has no group for it "
                                  f"(a damaged file)")
        group = g[name]
        datasets = []
        for wname in _load_attr(group, "weight_names"):
            if wname not in group:
                raise CheckpointError(f"{where}: '{path}' lists weight '{wname}' of layer '{name}' but has no such "
                                      f"dataset (a damaged file)")
            datasets.append(group[wname])
        out.append((name, group, datasets))
    return out


def _few(names):
    return str(names[:5])[:-1] + ", ...]" if len(names) > 5 else str(names)


def _item(layer, name, datasets):
    targets = layout.legacy_pairs(layer)
    return Item(describe(layer), f"the file's layer '{name}'", targets, datasets)


def items(model, f, by_name, path, where):
    """(items, unexpected) for the model from the file's layers."""
    g = weights_group(f)
    file_layers = [(n, ds) for n, _, ds in _file_layers(g, path, where)]
    top = [layer for layer in layout.legacy_layers(model) if layout.legacy_pairs(layer)]
    if by_name:
        index = {n: ds for n, ds in file_layers}
        return [_item(layer, layer.name, index[layer.name]) for layer in top if layer.name in index], []
    saved = [(n, ds) for n, ds in file_layers if ds]
    if len(saved) != len(top):
        mine = [layer.name for layer in top]
        theirs = [n for n, _ in saved]
        k = min(len(mine), len(theirs))
        if len(mine) > len(theirs):
            hint = f"; in order, the file has nothing for the model's {_few(mine[k:])}"
        else:
            hint = f"; in order, the model has no layer for the file's {_few(theirs[k:])}"
        raise ValueError(f"{where}: '{path}' does not fit this model: layer count mismatch: the model has "
                         f"{len(mine)} layers with weights {_few(mine)}, the file has {len(theirs)} "
                         f"{_few(theirs)}{hint}. Nothing was loaded (by_name=True matches layers by name)")
    return [_item(layer, n, ds) for layer, (n, ds) in zip(top, saved)], []
