"""Optimizer base: parameter groups, per-parameter state, zero_grad and state_dict in torch.optim's layout
(state keyed by parameter; state_dict with integer positions, tensors for the state and a 0-d float 'step')."""
from __future__ import annotations

import copy
from collections import defaultdict

import numpy as np

from .. import _device
from .._errors import ShapeError
from ..autograd import enable_grad
from ..nn.module import Parameter
from ..tensor import Tensor, _storage, _wrap
from ..utils.hooks import RemovableHandle

__all__ = ["Optimizer", "required"]


class _Required:
    def __repr__(self):
        return "<required parameter>"


required = _Required()


class Optimizer:
    """Holds param_groups (dicts with 'params' and hyper-parameters) and state per parameter, like
    torch.optim.Optimizer. Subclasses implement _update(p, grad_array, group, state)."""

    def __init__(self, params, defaults):
        self.defaults = dict(defaults)
        self.state = defaultdict(dict)
        self.param_groups = []
        self._step_pre_hooks, self._step_post_hooks = {}, {}
        if isinstance(params, Tensor):
            raise TypeError(f"{type(self).__name__}: params argument given to the optimizer should be an iterable "
                            f"of Tensors or dicts, but got a Tensor (pass [tensor] or model.parameters())")
        groups = list(params)
        if not groups:
            raise ValueError(f"{type(self).__name__}: optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for g in groups:
            self.add_param_group(g)

    def add_param_group(self, param_group):
        name = type(self).__name__
        if not isinstance(param_group, dict):
            raise TypeError(f"{name}.add_param_group: param_group must be a dict, got {type(param_group).__name__}")
        group = dict(param_group)
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        names = None
        if params and isinstance(params[0], tuple):          # named parameters: [(name, tensor), ...]
            names = [n for n, _ in params]
            params = [p for _, p in params]
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"{name}: optimizer can only optimize Tensors, but one of the params is "
                                f"{type(p).__name__}")
            if p._node is not None:
                raise ValueError(f"{name}: can't optimize a non-leaf Tensor (one computed by an op); pass the leaf, "
                                 f"or its .detach().requires_grad_()")
            if not p.requires_grad and not isinstance(p, Parameter):
                raise ValueError(f"{name}: a parameter does not require grad; it would never be updated")
        if len({id(p) for p in params}) != len(params):
            raise ValueError(f"{name}: a parameter group holds the same parameter more than once")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in params):
            raise ValueError(f"{name}: some parameters appear in more than one parameter group")
        for k, v in self.defaults.items():
            if v is required and k not in group:
                raise ValueError(f"{name}: parameter group didn't specify a value of required optimization "
                                 f"parameter {k}")
            group.setdefault(k, v)
        group["params"] = params
        if names is not None:
            group["param_names"] = names
        self._check_group(group)
        self.param_groups.append(group)

    def _check_group(self, group):
        name = type(self).__name__
        for key in ("lr", "eps", "weight_decay", "momentum", "alpha"):
            if key in group:
                v = group[key]
                if isinstance(v, Tensor) and v.numel() == 1:
                    v = group[key] = float(v.item())
                if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or v < 0:
                    raise ValueError(f"{name}: Invalid {key} value: argument '{key}' is {v!r} (a non-negative number is "
                                     f"required)")

    def zero_grad(self, set_to_none=True):
        for g in self.param_groups:
            for p in g["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad = p.grad.detach()
                    p.grad.zero_()

    def _grad_array(self, p, group):
        grad = p.grad._array
        if grad.shape != p._array.shape:
            raise ShapeError(f"{type(self).__name__}.step: a gradient has shape {tuple(grad.shape)}, its "
                             f"parameter {tuple(p._array.shape)}")
        if grad.dtype != p._array.dtype or not grad.flags.c_contiguous or group.get("maximize"):
            grad = np.ascontiguousarray(grad, dtype=p._array.dtype) if isinstance(grad, np.ndarray) else \
                grad.astype(p._array.dtype).copy()
            if group.get("maximize"):
                grad = -grad
        return grad

    def step(self, closure=None):
        pre, post = self.__dict__.get("_step_pre_hooks"), self.__dict__.get("_step_post_hooks")
        if pre:
            for hook in list(pre.values()):
                out = hook(self, (closure,), {})
                if out is not None:
                    if not (isinstance(out, tuple) and len(out) == 2):
                        raise RuntimeError(f"{type(self).__name__}.step: a step pre-hook must return None or a "
                                           f"tuple (new_args, new_kwargs), got {out!r}")
                    args, kwargs = out
                    closure = kwargs.get("closure", args[0] if args else None)
        loss = self._step(closure)
        if post:
            for hook in list(post.values()):
                hook(self, (closure,), {})
        return loss

    def _step(self, closure):
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = self._grad_array(p, group)
                state = self.state[p]
                data = p._array
                if isinstance(data, np.ndarray) and not data.flags.c_contiguous:
                    # the fused kernels update C-contiguous memory in place: step a contiguous copy and write it
                    # back, so a strided view is updated where it lies
                    proxy = _wrap(np.ascontiguousarray(data))
                    self._update(proxy, grad, group, state)
                    data[...] = proxy._array
                else:
                    self._update(p, grad, group, state)
                p._counter[0] += 1
        return loss

    def _update(self, p, grad, group, state):
        raise NotImplementedError

    @staticmethod
    def _step_count(state):
        """Increments state['step'] (a 0-d float32 tensor, as torch keeps it) and returns the new count."""
        step = state.get("step")
        if step is None:
            step = state["step"] = _wrap(np.zeros((), np.float32))
        step._array += 1
        return int(step._array)

    @staticmethod
    def _zeros_like(p):
        return _wrap(_device.array_module(p._array).zeros_like(p._array))

    # ------------------------------------------------------------ state
    def state_dict(self):
        """torch's layout: {'state': {position: {name: tensor}}, 'param_groups': [{..., 'params': [positions]}]}."""
        index, groups = {}, []
        for g in self.param_groups:
            positions = []
            for p in g["params"]:
                index.setdefault(id(p), len(index))
                positions.append(index[id(p)])
            groups.append({**{k: v for k, v in g.items() if k != "params"}, "params": positions})
        state = {}
        for g in self.param_groups:
            for p in g["params"]:
                if p in self.state and self.state[p]:
                    state[index[id(p)]] = dict(self.state[p])
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Loads what state_dict() (ours or torch's) gave: groups must match in number and sizes; state tensors
        are copied, floating ones cast to their parameter's dtype ('step' kept as float32)."""
        name = type(self).__name__
        if not isinstance(state_dict, dict) or "param_groups" not in state_dict or "state" not in state_dict:
            raise ValueError(f"{name}.load_state_dict: expected a dict with 'state' and 'param_groups' (what "
                             f"state_dict() returns), got {type(state_dict).__name__}")
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups):
            raise ValueError(f"{name}.load_state_dict: loaded state dict has a different number of parameter groups "
                             f"({len(groups)} vs {len(self.param_groups)})")
        if any(len(a["params"]) != len(b["params"]) for a, b in zip(groups, self.param_groups)):
            raise ValueError(f"{name}.load_state_dict: loaded state dict contains a parameter group that doesn't "
                             f"match the size of optimizer's group")
        by_pos = {}
        for saved, g in zip(groups, self.param_groups):
            for pos, p in zip(saved["params"], g["params"]):
                by_pos[int(pos)] = p
        new_state = defaultdict(dict)
        for pos, st in state_dict["state"].items():
            try:
                p = by_pos[int(pos)]
            except (KeyError, TypeError, ValueError):
                raise ValueError(f"{name}.load_state_dict: state entry {pos!r} names no parameter of the saved "
                                 f"param_groups (positions {sorted(by_pos)})") from None
            if not isinstance(st, dict):
                raise ValueError(f"{name}.load_state_dict: the state of parameter {pos} must be a dict, got "
                                 f"{type(st).__name__}")
            new_state[p] = {k: self._state_value(name, pos, k, v, p) for k, v in st.items()}
        for saved, g in zip(groups, self.param_groups):
            g.update({k: copy.deepcopy(v) for k, v in saved.items() if k != "params"})
        self.state = new_state

    @staticmethod
    def _state_value(name, pos, key, value, p):
        if isinstance(value, (int, float)) and not isinstance(value, bool) and key == "step":
            return _wrap(np.asarray(value, np.float32))
        if isinstance(value, Tensor) or isinstance(value, np.ndarray) or hasattr(value, "__dlpack__") or \
                hasattr(value, "detach"):
            arr = value._array if isinstance(value, Tensor) else (
                value.detach().cpu().numpy() if hasattr(value, "detach") else _storage(value, where=name))
            if key == "step":
                return _wrap(np.array(arr, np.float32).reshape(()))
            if arr.shape != p._array.shape:
                raise ValueError(f"{name}.load_state_dict: state '{key}' of parameter {pos} has shape "
                                 f"{tuple(arr.shape)}, the parameter {tuple(p._array.shape)}")
            arr = np.array(arr, dtype=p._array.dtype if np.asarray(arr).dtype.kind == "f" else None)
            return _wrap(_device.to_device(arr, _device.device_of(p._array), name))
        return copy.deepcopy(value)

    def register_step_pre_hook(self, hook):
        """hook(optimizer, args, kwargs) -> None or (new_args, new_kwargs) runs before every step()."""
        handle = RemovableHandle(self._step_pre_hooks)
        self._step_pre_hooks[handle.id] = hook
        return handle

    def register_step_post_hook(self, hook):
        """hook(optimizer, args, kwargs) runs after every step()."""
        handle = RemovableHandle(self._step_post_hooks)
        self._step_post_hooks[handle.id] = hook
        return handle

    def __getstate__(self):
        return {"defaults": self.defaults, "state": self.state, "param_groups": self.param_groups}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.__dict__.setdefault("_step_pre_hooks", {})
        self.__dict__.setdefault("_step_post_hooks", {})

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, g in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {v}" for k, v in sorted(g.items()) if k not in ("params", "param_names")]
        return "\n".join(lines) + "\n)"
