"""``pyfastnn.amp``: torch.amp's GradScaler (dynamic loss scaling, for real) and autocast."""
from __future__ import annotations

import math
import warnings

import numpy as np

from . import _device
from .autograd import no_grad

__all__ = ["GradScaler", "autocast"]


class autocast:
    """``with pyfastnn.autocast(device_type, dtype=...)``: pyfastnn's kernels compute in float32 (or the dtype
    of their inputs), so a mixed-precision region runs in full precision — the same values as float32, only
    not the speed of half precision. It warns once when asked for a 16-bit dtype."""
    _warned = False

    def __init__(self, device_type="cuda", dtype=None, enabled=True, cache_enabled=None):
        _device.parse_device(device_type, "autocast")
        if dtype is not None:
            _device.as_dtype(dtype, "autocast")
        self.device_type, self.dtype, self.enabled = device_type, dtype, bool(enabled)
        if self.enabled and dtype is not None and _device.as_dtype(dtype) in (_device.float16, _device.bfloat16) \
                and not autocast._warned:
            autocast._warned = True
            warnings.warn("autocast: pyfastnn runs the region in float32 (no 16-bit autocasting); results are "
                          "the full-precision ones", RuntimeWarning, stacklevel=2)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def __call__(self, fn):
        def wrapper(*args, **kwargs):
            with self:
                return fn(*args, **kwargs)
        return wrapper


class GradScaler:
    """Dynamic loss scaling (torch.amp.GradScaler): scale(loss) multiplies by the scale; unscale_(optimizer)
    divides the gradients back and looks for inf/NaN; step(optimizer) skips the step when it found any;
    update() halves the scale after an overflow and doubles it after growth_interval clean steps.
    enabled=False makes every call a pass-through, as in torch."""

    def __init__(self, device="cuda", init_scale=2.0 ** 16, growth_factor=2.0, backoff_factor=0.5,
                 growth_interval=2000, enabled=True):
        if isinstance(device, (int, float)) and not isinstance(device, bool):
            raise TypeError("GradScaler: the first argument is the device ('cuda' or 'cpu'); pass init_scale= "
                            "by name")
        self.enabled = bool(enabled)
        self._scale = float(init_scale)
        self._growth_factor, self._backoff_factor = float(growth_factor), float(backoff_factor)
        self._growth_interval = int(growth_interval)
        self._growth_tracker = 0
        self._found_inf = {}          # id(optimizer) -> bool, for the step in progress
        self._unscaled = set()

    def is_enabled(self):
        return self.enabled

    def get_scale(self):
        return self._scale if self.enabled else 1.0

    def scale(self, outputs):
        if not self.enabled:
            return outputs
        if isinstance(outputs, (list, tuple)):
            return type(outputs)(self.scale(o) for o in outputs)
        return outputs * self._scale

    def unscale_(self, optimizer):
        if not self.enabled:
            return
        if id(optimizer) in self._unscaled:
            raise RuntimeError("unscale_() has already been called on this optimizer since the last update().")
        inv = 1.0 / self._scale
        found = False
        with no_grad():
            for group in optimizer.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    g = p.grad._array
                    g *= inv
                    if not np.isfinite(_device.host(g)).all():
                        found = True
        self._found_inf[id(optimizer)] = found
        self._unscaled.add(id(optimizer))

    def step(self, optimizer, *args, **kwargs):
        if not self.enabled:
            return optimizer.step(*args, **kwargs)
        if id(optimizer) not in self._unscaled:
            self.unscale_(optimizer)
        if self._found_inf.get(id(optimizer)):
            return None
        return optimizer.step(*args, **kwargs)

    def update(self, new_scale=None):
        if not self.enabled:
            return
        if new_scale is not None:
            self._scale = float(new_scale.item() if hasattr(new_scale, "item") else new_scale)
        elif any(self._found_inf.values()):
            self._scale *= self._backoff_factor
            self._growth_tracker = 0
        else:
            self._growth_tracker += 1
            if self._growth_tracker == self._growth_interval:
                grown = self._scale * self._growth_factor
                if math.isfinite(grown):
                    self._scale = grown
                self._growth_tracker = 0
        self._found_inf.clear()
        self._unscaled.clear()

    def state_dict(self):
        if not self.enabled:
            return {}
        return {"scale": self._scale, "growth_factor": self._growth_factor, "backoff_factor": self._backoff_factor,
                "growth_interval": self._growth_interval, "_growth_tracker": self._growth_tracker}

    def load_state_dict(self, state):
        if not self.enabled:
            return
        self._scale = float(state["scale"])
        self._growth_factor = float(state["growth_factor"])
        self._backoff_factor = float(state["backoff_factor"])
        self._growth_interval = int(state["growth_interval"])
        self._growth_tracker = int(state["_growth_tracker"])
