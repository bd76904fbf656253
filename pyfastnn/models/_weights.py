"""Putting a checkpoint into a model: weights given as a file or a state dict, unwrapped from the usual
training-checkpoint containers, validated whole against the model (keys, shapes) with a message that
names the file and the keys at fault, and only then written — nothing is ever half-loaded."""
from __future__ import annotations

import collections.abc
import os

import numpy as np

from ..hub import load as _load_file
from ..hub._files import fspath

__all__ = ["WeightsError", "resolve_state_dict", "check_state_dict", "load_checked", "vision_weights", "documented"]

# keys training scripts commonly wrap a model's state dict in
_WRAPPERS = ("state_dict", "model_state_dict", "model", "module", "net", "network")


class WeightsError(ValueError):
    """A checkpoint that does not fit the model: missing or unexpected keys, other shapes, another
    architecture. The message names the file (or 'the state dict') and the keys."""


def _is_tensor_like(v):
    return isinstance(v, np.ndarray) or (hasattr(v, "shape") and hasattr(v, "dtype"))


def _is_state_dict(obj):
    return (isinstance(obj, collections.abc.Mapping) and len(obj) > 0
            and all(isinstance(k, str) for k in obj) and any(_is_tensor_like(v) for v in obj.values()))


def resolve_state_dict(weights, where):
    """(state dict, source name) for weights= given as a path (read safely by pyfastnn.load) or a mapping;
    unwraps {'state_dict': ...}-style checkpoints and DataParallel's 'module.' prefix."""
    if isinstance(weights, (str, bytes, os.PathLike)):
        path = fspath(weights, where)
        if not os.path.exists(path):
            raise FileNotFoundError(f"{where}: weights file '{path}' does not exist (pyfastnn downloads nothing: "
                                    f"pass the path of a checkpoint you have, e.g. torchvision's .pth file)")
        obj, source = _load_file(path), f"'{path}'"
    elif isinstance(weights, collections.abc.Mapping):
        obj, source = weights, "the state dict"
    else:
        raise TypeError(f"{where}: weights must be a checkpoint path or a state dict, got {type(weights).__name__} "
                        f"(torchvision's weight enums are not supported: nothing is downloaded)")
    if not _is_state_dict(obj) and isinstance(obj, collections.abc.Mapping):
        for key in _WRAPPERS:
            if _is_state_dict(obj.get(key)):
                obj = obj[key]
                break
    if not _is_state_dict(obj):
        kind = type(obj).__name__
        keys = f" with keys {sorted(map(str, obj))[:8]}" if isinstance(obj, collections.abc.Mapping) else ""
        raise WeightsError(f"{where}: {source} holds a {kind}{keys}, not a state dict of tensors")
    obj = dict(obj)
    if all(k.startswith("module.") for k in obj):         # saved from DataParallel / DDP
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return obj, source


def _few(keys, n=6):
    keys = list(keys)
    shown = ", ".join(f"'{k}'" for k in keys[:n])
    return shown + (f" and {len(keys) - n} more" if len(keys) > n else "")


def check_state_dict(expected, given, *, where, source, arch, allow_missing=(), allow_unexpected=()):
    """Raises WeightsError unless given has every key of expected (a {key: shape} dict) with that shape.
    allow_missing / allow_unexpected: keys that may be absent / extra. Returns the keys that are missing but
    allowed."""
    missing = [k for k in expected if k not in given and k not in allow_missing]
    unexpected = [k for k in given if k not in expected and k not in allow_unexpected]
    shapes = [f"'{k}' {tuple(np.shape(given[k]))} (the model's is {tuple(expected[k])})"
              for k in expected if k in given and tuple(np.shape(given[k])) != tuple(expected[k])]
    if not (missing or unexpected or shapes):
        return [k for k in expected if k not in given]
    problems = []
    if missing:
        problems.append(f"missing {len(missing)} key(s) {_few(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected key(s) {_few(unexpected)}")
    if shapes:
        problems.append(f"other shapes for {len(shapes)} key(s): " + "; ".join(shapes[:4])
                        + (f" and {len(shapes) - 4} more" if len(shapes) > 4 else ""))
    matched = sum(1 for k in expected if k in given)
    hint = ""
    if matched < len(expected) / 2:
        hint = (f" — only {matched} of the model's {len(expected)} keys are in it: a checkpoint for another "
                f"architecture than {arch}?")
    elif shapes and not missing and not unexpected:
        hint = f" — the same layout with other sizes: a checkpoint for another configuration of {arch}?"
    raise WeightsError(f"{where}: {source} does not fit {arch}: " + "; ".join(problems) + hint
                       + ". Nothing was loaded.")


def load_checked(model, state_dict, *, where, source, arch):
    """Validates state_dict whole against model (all keys, shapes), then writes it (load_state_dict)."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    check_state_dict(expected, state_dict, where=where, source=source, arch=arch)
    model.load_state_dict(state_dict, strict=True)
    return model


def vision_weights(weights, pretrained, where, kwargs, head_key):
    """torchvision's weights=/pretrained= arguments: the state dict to load (or None), with num_classes taken
    from the checkpoint's classifier when the caller did not give it (as torchvision does from the weights'
    categories)."""
    if pretrained not in (None, False):
        raise ValueError(f"{where}: pretrained=True would download weights, and pyfastnn downloads nothing: pass "
                         f"the checkpoint file you have, e.g. {where}(weights='path/to/{where}.pth') (torchvision "
                         f"keeps its downloads in ~/.cache/torch/hub/checkpoints), or a state dict")
    n = kwargs.get("num_classes", 1)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:      # before seconds of building layers
        raise ValueError(f"{where}: 'num_classes' must be a positive int, got {n!r}")
    if weights is None:
        return None, None
    state, source = resolve_state_dict(weights, where)
    head = state.get(head_key)
    if "num_classes" not in kwargs and head is not None and np.ndim(head) == 2:
        kwargs["num_classes"] = int(np.shape(head)[0])
    return state, source


def documented(what):
    """The docstring every torchvision-style constructor shares."""
    def wrap(fn):
        fn.__doc__ = (f"{what} with torchvision's layout and state_dict keys. weights: a checkpoint path (read "
                      f"safely by pyfastnn.load) or a state dict; num_classes then defaults to the checkpoint's. "
                      f"pretrained=True raises: nothing is downloaded.")
        return fn
    return wrap
