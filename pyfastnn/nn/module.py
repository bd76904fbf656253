"""Module and Parameter: the PyTorch-shaped containers for weights and layers."""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from ..tensor import Tensor, _storage

__all__ = ["Module", "Parameter"]


class Parameter(Tensor):
    """A Tensor a Module registers as a learnable weight (requires_grad by default)."""
    __slots__ = ()

    def __init__(self, data, requires_grad=True):
        super().__init__(data._array if isinstance(data, Tensor) else _storage(data, where="Parameter"),
                         _trusted=True)
        if requires_grad:
            self.requires_grad_(True)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


def _state_value(key, value):
    """A state_dict entry as an ndarray: numpy, CuPy, Tensors and DLPack producers (torch) alike."""
    if isinstance(value, Tensor):
        return value._array
    if isinstance(value, np.ndarray) or type(value).__module__.startswith("cupy"):
        return value
    if hasattr(value, "detach") and hasattr(value, "cpu"):     # a torch tensor, without importing torch
        value = value.detach().cpu()
        if hasattr(value, "numpy"):
            return value.numpy()
    try:
        return np.asarray(value)
    except Exception as exc:
        raise TypeError(f"load_state_dict: entry '{key}' must be an array, got {type(value).__name__}") from exc


class Module:
    """Base class of every layer: holds parameters, buffers and sub-modules by
    attribute name, and gives PyTorch's state_dict keys and Keras-style training."""

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    # ------------------------------------------------------ registration
    def __setattr__(self, name, value):
        d = self.__dict__
        if "_parameters" not in d:
            raise AttributeError(f"{type(self).__name__}: call super().__init__() before assigning attributes")
        params, buffers, modules = d["_parameters"], d["_buffers"], d["_modules"]
        if isinstance(value, Parameter):
            modules.pop(name, None)
            d.pop(name, None)
            params[name] = value
        elif isinstance(value, Module):
            params.pop(name, None)
            d.pop(name, None)
            modules[name] = value
        elif name in params or name in modules:
            if value is not None:
                kind = "parameter" if name in params else "sub-module"
                raise TypeError(f"{type(self).__name__}: cannot assign {type(value).__name__} to {kind} "
                                f"'{name}' (use a Parameter/Module or None)")
            (params if name in params else modules)[name] = None
        elif name in buffers:
            buffers[name] = None if value is None else _state_value(name, value)
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name):
        d = self.__dict__
        for store in ("_parameters", "_buffers", "_modules"):
            if store in d and name in d[store]:
                return d[store][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        for store in (self._parameters, self._buffers, self._modules):
            if name in store:
                del store[name]
                return
        object.__delattr__(self, name)

    def register_parameter(self, name, param):
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"{type(self).__name__}.register_parameter: '{name}' must be a Parameter or None")
        self._parameters[name] = param

    def register_buffer(self, name, array, persistent=True):
        """A non-learnable array saved in state_dict (running statistics, counters)."""
        self._buffers[name] = None if array is None else _state_value(name, array)
        if not persistent:
            self.__dict__.setdefault("_non_persistent", set()).add(name)

    def add_module(self, name, module):
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(self).__name__}.add_module: '{name}' must be a Module, got "
                            f"{type(module).__name__}")
        self._modules[name] = module

    # --------------------------------------------------------- traversal
    def named_modules(self, prefix="", memo=None):
        memo = set() if memo is None else memo
        if id(self) in memo:
            return
        memo.add(id(self))
        yield prefix, self
        for name, m in self._modules.items():
            if m is not None:
                yield from m.named_modules(f"{prefix}.{name}" if prefix else name, memo)

    def modules(self):
        for _, m in self.named_modules():
            yield m

    def named_children(self):
        for name, m in self._modules.items():
            if m is not None:
                yield name, m

    def children(self):
        for _, m in self.named_children():
            yield m

    def named_parameters(self, prefix="", recurse=True):
        seen = set()
        mods = self.named_modules(prefix) if recurse else [(prefix, self)]
        for mp, m in mods:
            for name, p in m._parameters.items():
                if p is None or id(p) in seen:
                    continue
                seen.add(id(p))
                yield (f"{mp}.{name}" if mp else name), p

    def parameters(self, recurse=True):
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix="", recurse=True):
        mods = self.named_modules(prefix) if recurse else [(prefix, self)]
        for mp, m in mods:
            for name, b in m._buffers.items():
                if b is not None:
                    yield (f"{mp}.{name}" if mp else name), b

    def buffers(self, recurse=True):
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    # ------------------------------------------------------------- state
    def state_dict(self, prefix=""):
        """Parameters and persistent buffers as arrays under PyTorch's keys
        (the arrays themselves, not copies, as torch's tensors share storage)."""
        out = OrderedDict()
        for mp, m in self.named_modules(prefix.rstrip(".")):
            skip = m.__dict__.get("_non_persistent", ())
            for name, p in m._parameters.items():
                if p is not None:
                    out[f"{mp}.{name}" if mp else name] = p._array
            for name, b in m._buffers.items():
                if b is not None and name not in skip:
                    out[f"{mp}.{name}" if mp else name] = b
        return out

    def load_state_dict(self, state_dict, strict=True):
        """Copies arrays (numpy, Tensors, torch tensors) into the parameters and
        buffers in place, so optimizers holding them keep working. Missing or
        unexpected keys (with strict) and shape mismatches raise, naming the keys."""
        own = self.state_dict()
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        if strict and (missing or unexpected):
            parts = []
            if missing:
                parts.append(f"missing keys {missing}")
            if unexpected:
                parts.append(f"unexpected keys {unexpected}")
            raise KeyError(f"{type(self).__name__}.load_state_dict: " + "; ".join(parts))
        values = {}
        for k, v in state_dict.items():
            if k not in own:
                continue
            arr = _state_value(k, v)
            if tuple(arr.shape) != tuple(own[k].shape):
                raise ValueError(f"{type(self).__name__}.load_state_dict: '{k}' has shape {tuple(arr.shape)}, "
                                 f"the module expects {tuple(own[k].shape)}")
            values[k] = arr
        for k, arr in values.items():
            dst = own[k]
            if type(dst).__module__.startswith("cupy") and isinstance(arr, np.ndarray):
                import cupy
                arr = cupy.asarray(arr)
            dst[...] = arr.astype(dst.dtype, copy=False)
        return missing, unexpected

    # ------------------------------------------------------------- modes
    def train(self, mode=True):
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self):
        return self.train(False)

    def requires_grad_(self, requires_grad=True):
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none=True):
        for p in self.parameters():
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad._array[...] = 0

    def apply(self, fn):
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    def _convert(self, fn):
        for m in self.modules():
            for name, p in m._parameters.items():
                if p is not None:
                    p._array = fn(p._array, True)
                    p.grad = None
            for name, b in m._buffers.items():
                if b is not None:
                    m._buffers[name] = fn(b, False)
        return self

    def to(self, device=None, dtype=None):
        """Module.to('cpu'|'cuda') and/or a float dtype, in place (returns self)."""
        if device is not None and not isinstance(device, str) and dtype is None:
            device, dtype = None, device
        if dtype is not None:
            dt = np.dtype(dtype)
            if dt.kind != "f":
                raise TypeError(f"{type(self).__name__}.to: dtype must be floating point, got {dt}")
            self._convert(lambda a, is_param: a.astype(dt) if a.dtype.kind == "f" else a)
        if device is not None:
            if str(device).startswith("cuda"):
                from .. import _backend
                _backend.require_cuda(f"{type(self).__name__}.to")
                import cupy
                self._convert(lambda a, is_param: cupy.asarray(a))
            elif device == "cpu":
                self._convert(lambda a, is_param: a.get() if type(a).__module__.startswith("cupy") else a)
            else:
                raise ValueError(f"{type(self).__name__}.to: device must be 'cpu' or 'cuda', got {device!r}")
        return self

    def float(self):
        return self.to(dtype=np.float32)

    def double(self):
        return self.to(dtype=np.float64)

    def cpu(self):
        return self.to("cpu")

    def cuda(self):
        return self.to("cuda")

    # ----------------------------------------------------------- calling
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__}: forward() is not implemented")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def extra_repr(self):
        return ""

    def __repr__(self):
        lines = [f"({name}): " + repr(m).replace("\n", "\n  ") for name, m in self._modules.items()]
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not lines:
            return head + ")"
        return head + "\n  " + "\n  ".join(lines) + "\n)"

    # ------------------------------------------- Keras-style training API
    def compile(self, optimizer="adam", loss=None, metrics=None):
        """Chooses the optimizer, loss and metrics for fit/evaluate (names or objects)."""
        from ..training import compile_module
        compile_module(self, optimizer, loss, metrics)
        return self

    def fit(self, x, y=None, epochs=1, batch_size=32, validation_data=None, shuffle=True, verbose=1,
            callbacks=None, initial_epoch=0):
        """Trains for `epochs` over (x, y) in mini-batches; returns the history dict."""
        from ..training import fit
        return fit(self, x, y, epochs=epochs, batch_size=batch_size, validation_data=validation_data,
                   shuffle=shuffle, verbose=verbose, callbacks=callbacks, initial_epoch=initial_epoch)

    def evaluate(self, x, y=None, batch_size=256, verbose=0):
        """Loss and metrics over (x, y), without gradients, as a dict."""
        from ..training import evaluate
        return evaluate(self, x, y, batch_size=batch_size, verbose=verbose)

    def predict(self, x, batch_size=256):
        """Outputs for x as a numpy array, in eval mode and without gradients."""
        from ..training import predict
        return predict(self, x, batch_size=batch_size)

    def save_weights(self, path):
        """Writes state_dict to path: safetensors when the package is installed
        (or the name ends in .safetensors), npz otherwise."""
        from ..serialization import save_state
        save_state(self.state_dict(), path)

    def load_weights(self, path, strict=True):
        from ..serialization import load_state
        self.load_state_dict(load_state(path), strict=strict)
        return self
