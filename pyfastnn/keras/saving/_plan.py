"""Loading is planned whole before anything is written: each unit of the file (a Keras 3 layer group, a legacy
layer group) becomes an Item naming the layer weights it fills; every Item is checked against the model (count,
shapes, numeric data) from the file's metadata, then every array is read, and only then are layers written,
each through its own all-or-nothing set_weights."""
from __future__ import annotations

import warnings

import numpy as np

from ._files import CheckpointError

__all__ = ["Item", "check_items", "read_items", "apply_items", "describe"]


def describe(layer):
    return f"layer '{layer.name}' ({type(layer).__name__})"


class Item:
    """One unit of the file: `sources` (h5py datasets, None where the file lacks the group) for `targets`
    ((leaf layer, index into its _keras_weights()) in the same order). `label` names the model's side, `where`
    the file's side."""
    __slots__ = ("label", "where", "targets", "sources", "problem")

    def __init__(self, label, where, targets, sources, problem=None):
        self.label, self.where, self.targets, self.sources, self.problem = label, where, targets, sources, problem


def _shape(ds):
    return tuple(int(s) for s in ds.shape)


def _numeric(ds):
    kind = ds.dtype.kind
    return kind in "biuf" or (kind == "V" and ds.dtype.itemsize == 2 and _attr(ds, "dtype") == "bfloat16")


def _attr(ds, name):
    v = ds.attrs.get(name)
    return v.decode("utf8") if isinstance(v, bytes) else v


def _mismatch(item):
    """Why the item does not fit its layers, or None."""
    if item.problem:
        return item.problem
    want = [tuple(leaf._keras_weights()[i][0]().shape) for leaf, i in item.targets]
    if len(item.sources) != len(want):
        got = [_shape(ds) for ds in item.sources]
        return (f"{item.label} expects {len(want)} weight(s) with shapes {want}, but {item.where} holds "
                f"{len(got)} with shapes {got}")
    for k, (ds, shape) in enumerate(zip(item.sources, want)):
        if _shape(ds) != shape:
            return (f"{item.label}: weight {k} must have shape {shape}, but {item.where} holds shape {_shape(ds)} "
                    f"('{ds.name}')")
        if not _numeric(ds):
            return f"{item.label}: weight {k} in {item.where} ('{ds.name}') holds non-numeric data ({ds.dtype})"
    return None


def check_items(items, path, where, skip_mismatch):
    """The items that fit; a mismatch raises a ValueError naming the file and the layer (or, with
    skip_mismatch, warns and drops that item)."""
    ok = []
    for item in items:
        why = _mismatch(item)
        if why is None:
            ok.append(item)
        elif skip_mismatch:
            warnings.warn(f"{where}: skipping {item.label} while loading '{path}': {why}", stacklevel=4)
        else:
            raise ValueError(f"{where}: '{path}' does not fit this model: {why}. Nothing was loaded "
                             f"(skip_mismatch=True loads the layers that fit)")
    return ok


def _read(ds):
    a = np.asarray(ds[()])
    if a.dtype.kind == "V":                 # bfloat16 as Keras stores it: the high half of a float32
        a = (a.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
    return a


def read_items(items, path, where):
    """Every array of every item, in memory: reading errors surface here, naming the file, the layer and the
    dataset, before any layer is written."""
    out = []
    for item in items:
        arrays = []
        for ds in item.sources:
            try:
                arrays.append(_read(ds))
            except (OSError, RuntimeError, ValueError, TypeError) as exc:
                raise CheckpointError(f"{where}: cannot read '{path}': dataset '{ds.name}' of {item.label} is "
                                      f"truncated or corrupted ({exc})") from None
        out.append(arrays)
    return out


def apply_items(items, arrays):
    """Writes the arrays layer by layer: each layer gets its whole weight list through set_weights."""
    per_leaf, order = {}, []
    for item, values in zip(items, arrays):
        for (leaf, i), a in zip(item.targets, values):
            if id(leaf) not in per_leaf:
                per_leaf[id(leaf)] = (leaf, {})
                order.append(id(leaf))
            per_leaf[id(leaf)][1][i] = a
    updates = []
    for key in order:
        leaf, values = per_leaf[key]
        current = leaf._keras_weights()
        if len(values) != len(current):      # a unit that fills part of a layer: keep the rest as it is
            values = {**{i: np.asarray(get()) for i, (get, _) in enumerate(current)}, **values}
        updates.append((leaf, [values[i] for i in range(len(current))]))
    for leaf, weights in updates:
        leaf.set_weights(weights)
    return len(updates)
