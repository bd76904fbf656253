"""Keras 3's `.weights.h5` layout: `<path>/vars/<i>` per saved object (see layout.py for the paths); the
model's own group is the root `vars`. Optimizer state and other non-layer objects Keras may add are ignored."""
from __future__ import annotations

import numpy as np

from . import layout
from ._plan import Item, describe

__all__ = ["is_keras3", "save", "items"]

# top-level groups Keras writes for objects that are not layers
_NOT_LAYERS = ("optimizer",)


def is_keras3(f):
    return "layers" in f or "vars" in f or "_layer_checkpoint_dependencies" in f


def _join(*parts):
    return "/".join(p for p in parts if p)


def _weighted(obj):
    return not layout.aggregates_children(obj) and obj.built and obj._keras_weights()


def save(model, f):
    for obj, path in layout.keras3_entries(model):
        g = f.require_group(_join(path, "vars"))
        g.attrs["name"] = obj.name
        if not _weighted(obj):
            continue
        pairs = obj._keras_weights()
        for sub, name, indices in layout.groups(obj):
            g = f.require_group(_join(path, sub, "vars"))
            g.attrs["name"] = name
            for k, i in enumerate(indices):
                g.create_dataset(str(k), data=np.ascontiguousarray(pairs[i][0]()))


def _path_in(f):
    """How the model's paths read in this file: Keras 2.13-2.15's `.weights.h5` files name each `layers` list
    `_layer_checkpoint_dependencies` (Keras 3 reads them so too)."""
    if "layers" not in f and "_layer_checkpoint_dependencies" in f:
        return lambda p: "/".join("_layer_checkpoint_dependencies" if part == "layers" else part
                                  for part in p.split("/"))
    return lambda p: p


def _datasets(f, group_path):
    """The datasets "0", "1", ... of a vars group, in order; None when the group is absent; a ValueError-free
    problem string when it holds anything else."""
    if group_path not in f:
        return None, None
    g = f[group_path]
    keys = list(g.keys())
    if sorted(keys, key=lambda k: (len(k), k)) != [str(i) for i in range(len(keys))]:
        return None, f"group '{group_path}' holds {sorted(keys)}, not datasets '0', '1', ..."
    return [g[str(i)] for i in range(len(keys))], None


def _item(f, obj, path, in_file=lambda p: p):
    pairs = obj._keras_weights()
    sources, where = [], []
    for sub, _, indices in layout.groups(obj):
        gp = in_file(_join(path, sub, "vars"))
        found, problem = _datasets(f, gp)
        if problem:
            return Item(describe(obj), f"'{gp}'", [], [], problem=f"{describe(obj)}: {problem}")
        if found is None:
            if not indices:
                continue
            return Item(describe(obj), f"'{gp}'", [], [],
                        problem=f"{describe(obj)} has {len(pairs)} weight(s) but the file has no group '{gp}' "
                                f"(a file saved from another architecture?)")
        if len(found) != len(indices):
            return Item(describe(obj), f"'{gp}'", [(obj, i) for i in range(len(pairs))], found)
        sources += found
        where.append(gp)
    return Item(describe(obj), " + ".join(f"'{w}'" for w in where) or "the file",
                [(obj, i) for i in range(len(pairs))], sources)


def _names_index(f):
    """layer name -> its path, from the `name` attribute Keras 3 writes on each `vars` group (None for a name
    met twice)."""
    index = {}

    def visit(name, obj):
        if name.endswith("/vars") or name == "vars":
            n = obj.attrs.get("name")
            if n is not None:
                n = n.decode("utf8") if isinstance(n, bytes) else str(n)
                base = name[:-len("/vars")] if name != "vars" else ""
                index[n] = None if n in index and index[n] != base else base
    f.visititems(lambda name, obj: visit(name, obj) if not hasattr(obj, "shape") else None)
    return index


def items(model, f, by_name, path, where):
    """(items, unexpected): the plan for the model, and the file's weight groups nothing in the model reads."""
    out, used = [], set()
    if by_name:
        index = _names_index(f)
        if not index:
            raise ValueError(f"{where}: by_name=True needs the layer names Keras 3 records in the file, and "
                             f"'{path}' has none; load it without by_name")
        for obj, _ in layout.keras3_entries(model):
            if _weighted(obj) and index.get(obj.name) is not None:
                out.append(_item(f, obj, index[obj.name]))
        return out, []
    in_file = _path_in(f)
    for obj, obj_path in layout.keras3_entries(model):
        if _weighted(obj):
            out.append(_item(f, obj, obj_path, in_file))
            used.update(in_file(_join(obj_path, sub, "vars")) for sub, _, _ in layout.groups(obj))
    tops = {p.split("/")[0] for p in used} | {in_file("layers")}
    unexpected = []

    def visit(name, obj):
        if hasattr(obj, "shape"):
            group = name.rsplit("/", 1)[0] if "/" in name else ""
            top = group.split("/")[0]
            if group not in used and top in tops and top not in _NOT_LAYERS and group not in unexpected:
                unexpected.append(group)
    f.visititems(visit)
    return out, unexpected
