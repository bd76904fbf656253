"""Module and Parameter: the PyTorch-shaped containers for weights and layers.

Keras-style training (compile/fit/evaluate/predict) is provided by ``pyfastnn.training``, which registers
itself through ``set_trainer``; this module does not import it (the trainer knows Modules, not the reverse).
"""
from __future__ import annotations

import collections
import itertools
from collections import OrderedDict

import numpy as np

from .. import _device
from ..autograd import no_grad
from ..tensor import Tensor, _storage, _wrap, to_arguments
from ..utils.hooks import RemovableHandle

__all__ = ["Module", "Parameter", "Buffer", "set_trainer", "register_module_forward_hook",
           "register_module_forward_pre_hook"]


class Parameter(Tensor):
    """A Tensor a Module registers as a learnable weight (requires_grad by default). It shares the storage of
    the tensor it is made from, as torch.nn.Parameter does."""

    def __init__(self, data=None, requires_grad=True):
        if data is None:
            data = np.zeros((0,), np.float32)
        array = data._array if isinstance(data, Tensor) else _storage(data, where="Parameter")
        super().__init__(array, _trusted=True)
        if isinstance(data, Tensor):
            self._counter = data._counter
        if requires_grad:
            self.requires_grad_(True)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


class Buffer(Tensor):
    """torch.nn.Buffer: a tensor a Module keeps in its state (not learned); persistent=False leaves it out
    of state_dict."""

    def __init__(self, data=None, *, persistent=True):
        array = data._array if isinstance(data, Tensor) else _storage(data if data is not None else [],
                                                                       where="Buffer")
        super().__init__(array, _trusted=True)
        self.persistent = persistent


def _as_tensor_value(key, value, where="load_state_dict"):
    """A state_dict entry as a Tensor: numpy, CuPy, Tensors and DLPack producers (torch) alike."""
    if isinstance(value, Tensor):
        return value
    if isinstance(value, np.ndarray) or _device.is_cupy(value):
        array = value
        if array.dtype.kind not in "biufcV":
            raise TypeError(f"{where}: entry '{key}' must hold numbers, got an array of dtype {array.dtype}")
    elif hasattr(value, "detach") and hasattr(value, "cpu"):     # a torch tensor, without importing torch
        array = value.detach().cpu()
        if str(getattr(array, "dtype", "")) == "torch.bfloat16":
            array = array.float()
        array = array.numpy()
    else:
        try:
            array = np.asarray(value)
        except Exception:
            raise TypeError(f"{where}: entry '{key}' must be a tensor or an array, got "
                            f"{type(value).__name__}") from None
        if array.dtype.kind not in "biufc":
            raise TypeError(f"{where}: entry '{key}' must hold numbers, got {type(value).__name__} of dtype "
                            f"{array.dtype}")
    return _wrap(array)


class _IncompatibleKeys(collections.namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])):
    """What load_state_dict returns, as torch's: missing and unexpected keys (empty with strict)."""

    def __repr__(self):
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return super().__repr__()


_trainer = None
_global_forward_hooks = OrderedDict()
_global_forward_pre_hooks = OrderedDict()


def set_trainer(trainer):
    """Called by pyfastnn.training at import: the object whose compile/fit/evaluate/predict Module.fit & co.
    delegate to."""
    global _trainer
    _trainer = trainer


def register_module_forward_hook(hook):
    handle = RemovableHandle(_global_forward_hooks)
    _global_forward_hooks[handle.id] = hook
    return handle


def register_module_forward_pre_hook(hook):
    handle = RemovableHandle(_global_forward_pre_hooks)
    _global_forward_pre_hooks[handle.id] = hook
    return handle


class Module:
    """Base class of every layer: holds parameters, buffers and sub-modules by attribute name, and gives
    PyTorch's state_dict keys, hooks and modes (and Keras-style training through pyfastnn.training)."""
    training = True
    dump_patches = False
    _version = 1

    def __init__(self, *args, **kwargs):
        if args or kwargs:
            raise TypeError(f"{type(self).__name__}.__init__() got unexpected arguments: Module.__init__ takes "
                            f"none (call super().__init__())")
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent_buffers_set", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())
        object.__setattr__(self, "_forward_hooks_with_kwargs", set())
        object.__setattr__(self, "_forward_pre_hooks", OrderedDict())
        object.__setattr__(self, "_forward_pre_hooks_with_kwargs", set())
        object.__setattr__(self, "_backward_hooks", OrderedDict())
        object.__setattr__(self, "training", True)

    # ------------------------------------------------------ registration
    def __setattr__(self, name, value):
        d = self.__dict__
        if "_parameters" not in d:
            raise AttributeError(f"cannot assign '{name}' before Module.__init__() call (call super().__init__() "
                                 f"first in {type(self).__name__}.__init__)")
        params, buffers, modules = d["_parameters"], d["_buffers"], d["_modules"]
        if isinstance(value, Parameter):
            modules.pop(name, None)
            buffers.pop(name, None)
            d.pop(name, None)
            params[name] = value
        elif isinstance(value, Module):
            params.pop(name, None)
            buffers.pop(name, None)
            d.pop(name, None)
            modules[name] = value
        elif isinstance(value, Buffer):
            params.pop(name, None)
            modules.pop(name, None)
            d.pop(name, None)
            self.register_buffer(name, value, persistent=value.persistent)
        elif name in params or name in modules:
            if value is not None:
                kind = "parameter" if name in params else "child module"
                expected = "torch.nn.Parameter" if name in params else "Module"
                raise TypeError(f"{type(self).__name__}: cannot assign '{type(value).__name__}' as {kind} '{name}' "
                                f"({expected} or None expected)")
            (params if name in params else modules)[name] = None
        elif name in buffers:
            if value is not None and not isinstance(value, Tensor):
                value = _as_tensor_value(name, value, f"{type(self).__name__}.{name}")
            buffers[name] = value
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
                self._non_persistent_buffers_set.discard(name)
                return
        object.__delattr__(self, name)

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers) | set(self._modules))

    def register_parameter(self, name, param):
        if not isinstance(name, str) or not name or "." in name:
            raise KeyError(f"{type(self).__name__}.register_parameter: parameter name must be a non-empty string "
                           f"without '.', got {name!r}")
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"cannot assign '{type(param).__name__}' object to parameter '{name}' "
                            f"(torch.nn.Parameter or None required)")
        if name in self.__dict__ and name not in self._parameters:
            raise KeyError(f"attribute '{name}' already exists")
        self._parameters[name] = param

    def register_buffer(self, name, tensor, persistent=True):
        """A non-learnable tensor saved in state_dict (running statistics, masks); persistent=False keeps it
        out of state_dict."""
        if not isinstance(name, str) or not name or "." in name:
            raise KeyError(f"{type(self).__name__}.register_buffer: buffer name must be a non-empty string "
                           f"without '.', got {name!r}")
        if name in self.__dict__ and name not in self._buffers:
            raise KeyError(f"attribute '{name}' already exists")
        if tensor is not None and not isinstance(tensor, Tensor):
            tensor = _as_tensor_value(name, tensor, f"{type(self).__name__}.register_buffer")
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers_set.discard(name)
        else:
            self._non_persistent_buffers_set.add(name)

    def add_module(self, name, module):
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(self).__name__}.add_module: '{name}' must be a Module, got {type(module).__name__} "
                            f"({type(module).__name__} is not a Module subclass)")
        if not isinstance(name, str) or "." in name or not name:
            raise KeyError(f"module name must be a non-empty string without '.', got {name!r}")
        self._modules[name] = module

    register_module = add_module

    def get_submodule(self, target):
        if target == "":
            return self
        mod = self
        for item in target.split("."):
            if item not in mod._modules:
                raise AttributeError(f"{type(mod).__name__} has no attribute `{item}`")
            mod = mod._modules[item]
        return mod

    def get_parameter(self, target):
        module_path, _, name = target.rpartition(".")
        mod = self.get_submodule(module_path)
        if name not in mod._parameters:
            raise AttributeError(f"{type(mod).__name__} has no parameter `{name}`")
        return mod._parameters[name]

    def get_buffer(self, target):
        module_path, _, name = target.rpartition(".")
        mod = self.get_submodule(module_path)
        if name not in mod._buffers:
            raise AttributeError(f"{type(mod).__name__} has no buffer `{name}`")
        return mod._buffers[name]

    # --------------------------------------------------------- traversal
    def named_modules(self, memo=None, prefix="", remove_duplicate=True):
        if memo is None:
            memo = set()
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, m in self._modules.items():
            if m is not None:
                yield from m.named_modules(memo, f"{prefix}.{name}" if prefix else name, remove_duplicate)

    def modules(self):
        for _, m in self.named_modules():
            yield m

    def named_children(self):
        seen = set()
        for name, m in self._modules.items():
            if m is not None and id(m) not in seen:
                seen.add(id(m))
                yield name, m

    def children(self):
        for _, m in self.named_children():
            yield m

    def named_parameters(self, prefix="", recurse=True, remove_duplicate=True):
        seen = set()
        mods = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse else [(prefix, self)]
        for mp, m in mods:
            for name, p in m._parameters.items():
                if p is None or (remove_duplicate and id(p) in seen):
                    continue
                seen.add(id(p))
                yield (f"{mp}.{name}" if mp else name), p

    def parameters(self, recurse=True):
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix="", recurse=True, remove_duplicate=True):
        seen = set()
        mods = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse else [(prefix, self)]
        for mp, m in mods:
            for name, b in m._buffers.items():
                if b is None or (remove_duplicate and id(b) in seen):
                    continue
                seen.add(id(b))
                yield (f"{mp}.{name}" if mp else name), b

    def buffers(self, recurse=True):
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    # ------------------------------------------------------------- state
    def state_dict(self, *args, destination=None, prefix="", keep_vars=False):
        """Parameters and persistent buffers under PyTorch's keys, as tensors sharing the module's storage
        (detached unless keep_vars), in an OrderedDict like torch's."""
        if args:      # torch's deprecated positional form: state_dict(destination, prefix, keep_vars)
            destination = args[0]
            if len(args) > 1:
                prefix = args[1]
            if len(args) > 2:
                keep_vars = args[2]
        out = OrderedDict() if destination is None else destination
        for mp, m in self.named_modules(prefix=prefix.rstrip("."), remove_duplicate=False):
            skip = m._non_persistent_buffers_set
            for name, p in m._parameters.items():
                if p is not None:
                    out[f"{mp}.{name}" if mp else name] = p if keep_vars else p.detach()
            for name, b in m._buffers.items():
                if b is not None and name not in skip:
                    out[f"{mp}.{name}" if mp else name] = b if keep_vars else b.detach()
        return out

    def _state_targets(self):
        """key -> the live tensor state_dict() reads (parameters and persistent buffers)."""
        return self.state_dict(keep_vars=True)

    def load_state_dict(self, state_dict, strict=True, assign=False):
        """Copies tensors or arrays (numpy, Tensors, torch tensors) into the parameters and buffers in place, so
        optimizers holding them keep working. Every entry is checked first — key, shape, dtype kind — and
        nothing is written unless all of them pass: missing or unexpected keys (with strict), a shape
        mismatch (say a transposed square weight from another layout has the same shape, so conversions belong
        in the model zoo, not here) or a non-numeric entry raise, naming the keys. Returns (missing_keys,
        unexpected_keys)."""
        if not isinstance(state_dict, collections.abc.Mapping):
            raise TypeError(f"Expected state_dict to be dict-like, got {type(state_dict).__name__}.")
        name = type(self).__name__
        own = self._state_targets()
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        errors = []
        if strict:
            if unexpected:
                errors.append("Unexpected key(s) in state_dict: " + ", ".join(f'"{k}"' for k in unexpected) + ". ")
            if missing:
                errors.append("Missing key(s) in state_dict: " + ", ".join(f'"{k}"' for k in missing) + ". ")
        values = {}
        for k, v in state_dict.items():
            if k not in own:
                continue
            try:
                t = _as_tensor_value(k, v, f"{name}.load_state_dict")
            except TypeError as exc:
                errors.append(str(exc))
                continue
            dst = own[k]
            if tuple(t.shape) != tuple(dst.shape):
                errors.append(f'size mismatch for {k}: copying a param with shape {list(t.shape)} from checkpoint, '
                              f'the shape in current model is {list(dst.shape)}.')
                continue
            if t._array.dtype.kind not in "biufcV" or (dst._array.dtype.kind in "fc" and t._array.dtype.kind == "b"):
                errors.append(f"dtype mismatch for {k}: {t.dtype} cannot be copied into {dst.dtype}")
                continue
            values[k] = t
        if errors:     # torch's wording; nothing has been written
            raise RuntimeError(f"Error(s) in loading state_dict for {name}:\n\t" + "\n\t".join(errors))
        with no_grad():
            for k, t in values.items():
                dst = own[k]
                if assign:
                    dst._array = t._array.astype(dst._array.dtype, copy=False)
                    dst._counter[0] += 1
                else:
                    src = t._array
                    if _device.is_cupy(dst._array) != _device.is_cupy(src):
                        src = _device.to_device(src, _device.device_of(dst._array), f"{name}.load_state_dict")
                    dst._array[...] = src.astype(dst._array.dtype, copy=False)
                    dst._counter[0] += 1
        return _IncompatibleKeys(missing, unexpected)

    # ------------------------------------------------------------- modes
    def train(self, mode=True):
        if not isinstance(mode, (bool, np.bool_)):
            raise ValueError("training mode is expected to be boolean")
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
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                p.grad = p.grad.detach()
                p.grad.zero_()

    def apply(self, fn):
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    def _apply(self, fn):
        """Replaces every parameter's and buffer's storage by fn(array) (dtype/device moves), keeping the
        Parameter objects (optimizers hold them) and their sharing."""
        done = {}
        for m in self.modules():
            for store in (m._parameters, m._buffers):
                for name, t in store.items():
                    if t is None or id(t) in done:
                        continue
                    done[id(t)] = t
                    t._array = fn(t._array)
                    t._counter[0] += 1
                    if t.grad is not None:
                        t.grad = _wrap(fn(t.grad._array))
        return self

    def to(self, *args, **kwargs):
        """Module.to(device), to(dtype), to(device, dtype), to(tensor) — in place, returning self."""
        if "copy" in kwargs:
            raise TypeError(f"{type(self).__name__}.to: unexpected keyword argument(s) ['copy']")
        device, dtype, _ = to_arguments(f"{type(self).__name__}.to", args, kwargs)
        if dtype is not None:
            d = _device.as_dtype(dtype, f"{type(self).__name__}.to")
            if not d.is_floating_point and not d.is_complex:
                raise TypeError(f"{type(self).__name__}.to: nn.Module.to only accepts floating point or complex "
                                f"dtypes, but got desired dtype={d}")
            target = _device.as_numpy_dtype(d, f"{type(self).__name__}.to")
            self._apply(lambda a: a.astype(target) if a.dtype.kind in "fV" else a)
        if device is not None:
            where = _device.parse_device(device, f"{type(self).__name__}.to")
            self._apply(lambda a: _device.to_device(a, where, f"{type(self).__name__}.to"))
        return self

    def float(self):
        return self.to(dtype=_device.float32)

    def double(self):
        return self.to(dtype=_device.float64)

    def half(self):
        return self.to(dtype=_device.float16)

    def bfloat16(self):
        return self.to(dtype=_device.bfloat16)

    def type(self, dst_type):
        return self.to(dtype=dst_type)

    def cpu(self):
        return self.to("cpu")

    def cuda(self, device=None):
        return self.to("cuda")

    def share_memory(self):
        return self

    # ------------------------------------------------------------- hooks
    @staticmethod
    def _add_hook(store, hook, prepend, kwargs_ids=None):
        handle = RemovableHandle(store)
        store[handle.id] = hook
        if prepend:
            store.move_to_end(handle.id, last=False)
        if kwargs_ids is not None:
            kwargs_ids.add(handle.id)
        return handle

    def register_forward_pre_hook(self, hook, *, prepend=False, with_kwargs=False):
        """hook(module, args) -> None or new args runs before forward."""
        return self._add_hook(self._forward_pre_hooks, hook, prepend,
                              self._forward_pre_hooks_with_kwargs if with_kwargs else None)

    def register_forward_hook(self, hook, *, prepend=False, with_kwargs=False, always_call=False):
        """hook(module, args, output) -> None or a replacement output runs after forward."""
        return self._add_hook(self._forward_hooks, hook, prepend,
                              self._forward_hooks_with_kwargs if with_kwargs else None)

    def register_full_backward_hook(self, hook, prepend=False):
        """hook(module, grad_input, grad_output) runs when the gradients with respect to the module's outputs
        are computed (grad_input here is the gradient of its first tensor input when that input is part of
        the graph)."""
        return self._add_hook(self._backward_hooks, hook, prepend)

    register_backward_hook = register_full_backward_hook

    def register_full_backward_pre_hook(self, hook, prepend=False):
        raise NotImplementedError("register_full_backward_pre_hook is not supported; use register_full_backward_hook")

    # ----------------------------------------------------------- calling
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f'Module [{type(self).__name__}] is missing the required "forward" function')

    def __call__(self, *args, **kwargs):
        d = self.__dict__
        if not (d.get("_forward_hooks") or d.get("_forward_pre_hooks") or d.get("_backward_hooks")
                or _global_forward_hooks or _global_forward_pre_hooks):
            return self.forward(*args, **kwargs)
        return self._call_with_hooks(args, kwargs)

    def _call_with_hooks(self, args, kwargs):
        for hid, hook in itertools.chain(_global_forward_pre_hooks.items(), self._forward_pre_hooks.items()):
            if hid in self._forward_pre_hooks_with_kwargs:
                res = hook(self, args, kwargs)
                if res is not None:
                    args, kwargs = res
            else:
                res = hook(self, args)
                if res is not None:
                    args = res if isinstance(res, tuple) else (res,)
        out = self.forward(*args, **kwargs)
        for hid, hook in itertools.chain(_global_forward_hooks.items(), self._forward_hooks.items()):
            res = hook(self, args, kwargs, out) if hid in self._forward_hooks_with_kwargs else hook(self, args, out)
            if res is not None:
                out = res
        if self._backward_hooks and isinstance(out, Tensor) and out.requires_grad:
            first = next((a for a in args if isinstance(a, Tensor)), None)
            captured = {}
            if first is not None and first.requires_grad:
                first.register_hook(lambda g: captured.__setitem__("in", g))
            hooks = list(self._backward_hooks.values())

            def on_output_grad(g):
                for hook in hooks:
                    hook(self, (captured.get("in"),), (g,))
            out.register_hook(on_output_grad)
        return out

    def extra_repr(self):
        return ""

    def _get_name(self):
        return type(self).__name__

    def __repr__(self):
        """torch's layout: one-line extra_repr inline; otherwise extra lines and children one per line."""
        extra = self.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        child_lines = [f"({name}): " + repr(m).replace("\n", "\n  ") for name, m in self._modules.items()]
        if len(extra_lines) == 1 and not child_lines:
            return f"{self._get_name()}({extra_lines[0]})"
        lines = extra_lines + child_lines
        if not lines:
            return f"{self._get_name()}()"
        return f"{self._get_name()}(\n  " + "\n  ".join(lines) + "\n)"

    def __getstate__(self):
        return self.__dict__.copy()

    def __setstate__(self, state):
        self.__dict__.update(state)

    # ------------------------------------------- Keras-style training API
    def _trainer(self, what):
        if _trainer is None:
            raise RuntimeError(f"{type(self).__name__}.{what}: the training package is not loaded "
                               f"(import pyfastnn loads it)")
        return _trainer

    def compile(self, optimizer="adam", loss=None, metrics=None, **kwargs):
        """Chooses the optimizer, loss and metrics for fit/evaluate (names or objects)."""
        self._trainer("compile").compile(self, optimizer, loss, metrics, **kwargs)
        return self

    def fit(self, x=None, y=None, epochs=1, batch_size=32, validation_data=None, shuffle=True, verbose=1,
            callbacks=None, initial_epoch=0, steps_per_epoch=None, validation_steps=None, **kwargs):
        """Trains for `epochs` over (x, y) — arrays, or a generator / DataLoader of batches — in mini-batches;
        returns the history dict."""
        return self._trainer("fit").fit(self, x, y, epochs=epochs, batch_size=batch_size,
                                        validation_data=validation_data, shuffle=shuffle, verbose=verbose,
                                        callbacks=callbacks, initial_epoch=initial_epoch,
                                        steps_per_epoch=steps_per_epoch, validation_steps=validation_steps,
                                        **kwargs)

    def evaluate(self, x=None, y=None, batch_size=256, verbose=0, steps=None, **kwargs):
        """Loss and metrics over (x, y), without gradients, as a dict."""
        return self._trainer("evaluate").evaluate(self, x, y, batch_size=batch_size, verbose=verbose, steps=steps,
                                                  **kwargs)

    def predict(self, x, batch_size=256, steps=None, **kwargs):
        """Outputs for x as a numpy array, in eval mode and without gradients."""
        return self._trainer("predict").predict(self, x, batch_size=batch_size, steps=steps, **kwargs)

    def save_weights(self, path):
        """Writes state_dict to path: safetensors for a '.safetensors' name (or when the package is installed),
        npz otherwise; Keras's '.weights.h5' for Keras models."""
        self._trainer("save_weights").save_weights(self, path)

    def load_weights(self, path, strict=True):
        self._trainer("load_weights").load_weights(self, path, strict=strict)
        return self
