"""Optimizer base: parameter groups, per-parameter state, zero_grad, state_dict."""
from __future__ import annotations

import copy

import numpy as np

from ..nn.module import Parameter
from ..tensor import Tensor

__all__ = ["Optimizer"]


class Optimizer:
    """Holds param_groups (dicts with 'params' and hyper-parameters) and state per parameter."""

    def __init__(self, params, defaults):
        self.defaults = dict(defaults)
        self.state = {}
        self.param_groups = []
        if isinstance(params, Tensor):
            raise TypeError(f"{type(self).__name__}: params must be an iterable of Tensors or of dicts, got a "
                            f"single Tensor (pass [tensor] or model.parameters())")
        groups = list(params)
        if not groups:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for g in groups:
            self.add_param_group(g)

    def add_param_group(self, group):
        name = type(self).__name__
        group = dict(group)
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"{name}: parameters must be Tensors, got {type(p).__name__}")
            if p._node is not None:
                raise ValueError(f"{name}: can't optimize a non-leaf Tensor (one computed by an op); pass the "
                                 f"leaf, or its .detach().requires_grad_()")
            if not p.requires_grad and not isinstance(p, Parameter):
                raise ValueError(f"{name}: a parameter does not require grad; it would never be updated")
        if len({id(p) for p in params}) != len(params):
            raise ValueError(f"{name}: a parameter group holds the same parameter more than once")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in params):
            raise ValueError(f"{name}: some parameters appear in more than one parameter group")
        for k, v in self.defaults.items():
            group.setdefault(k, v)
        group["params"] = params
        self._check_group(group)
        self.param_groups.append(group)

    def _check_group(self, group):
        name = type(self).__name__
        for key in ("lr", "eps", "weight_decay", "momentum", "alpha"):
            if key in group and (not isinstance(group[key], (int, float, np.floating)) or group[key] < 0):
                raise ValueError(f"{name}: '{key}' must be a non-negative number, got {group[key]!r}")

    def zero_grad(self, set_to_none=True):
        for g in self.param_groups:
            for p in g["params"]:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    p.grad._array[...] = 0

    def _params_with_grad(self, group):
        for p in group["params"]:
            if p.grad is None:
                continue
            grad = p.grad._array
            if grad.shape != p._array.shape:
                raise ValueError(f"{type(self).__name__}.step: a gradient has shape {grad.shape}, its parameter "
                                 f"{p._array.shape}")
            if grad.dtype != p._array.dtype or not grad.flags.c_contiguous:
                grad = np.ascontiguousarray(grad, dtype=p._array.dtype)
            yield p, grad

    def step(self, closure=None):
        loss = None
        if closure is not None:
            from ..autograd import enable_grad
            with enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p, grad in self._params_with_grad(group):
                state = self.state.setdefault(id(p), {})
                data = p._array
                if isinstance(data, np.ndarray) and not data.flags.c_contiguous:
                    # the fused kernels update C-contiguous memory in place: step a contiguous copy
                    # and write it back, so a strided view is updated where it lies
                    proxy = Tensor(np.ascontiguousarray(data), _trusted=True)
                    self._update(proxy, grad, group, state)
                    data[...] = proxy._array
                else:
                    self._update(p, grad, group, state)
        return loss

    def _update(self, p, grad, group, state):
        raise NotImplementedError

    def state_dict(self):
        """torch's layout: state keyed by parameter position, groups with 'params' as positions."""
        index, groups = {}, []
        for g in self.param_groups:
            ids = []
            for p in g["params"]:
                index.setdefault(id(p), len(index))
                ids.append(index[id(p)])
            groups.append({**{k: v for k, v in g.items() if k != "params"}, "params": ids})
        state = {index[k]: copy.deepcopy(v) for k, v in self.state.items() if k in index}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups) or any(
                len(a["params"]) != len(b["params"]) for a, b in zip(groups, self.param_groups)):
            raise ValueError(f"{type(self).__name__}.load_state_dict: the saved parameter groups do not match "
                             f"this optimizer's (different group count or sizes)")
        params = [p for g in self.param_groups for p in g["params"]]
        by_pos = {}
        for saved, g in zip(groups, self.param_groups):
            for pos, p in zip(saved["params"], g["params"]):
                by_pos[pos] = p
            g.update({k: v for k, v in saved.items() if k != "params"})
        self.state = {}
        for pos, st in state_dict["state"].items():
            p = by_pos[int(pos)]
            self.state[id(p)] = {k: (np.array(v, dtype=p._array.dtype) if isinstance(v, np.ndarray) and v.ndim
                                     else copy.deepcopy(v)) for k, v in st.items()}
        del params

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, g in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {v}" for k, v in sorted(g.items()) if k != "params"]
        return "\n".join(lines) + "\n)"
