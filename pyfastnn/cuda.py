"""``pyfastnn.cuda``: what torch.cuda answers about GPUs, from the CUDA extension's own status."""
from __future__ import annotations

from . import _backend, _device
from . import amp as _amp
from ._random import manual_seed as _manual_seed

__all__ = ["is_available", "device_count", "current_device", "get_device_name", "is_bf16_supported",
           "manual_seed", "manual_seed_all", "synchronize", "empty_cache", "amp"]


def is_available() -> bool:
    """Whether the CUDA extension loaded and sees a GPU (pyfastnn.backend_info()['cuda_error'] says why not)."""
    return _backend._cuda is not None


def device_count() -> int:
    return int(_backend._cuda.device_info()["device_count"]) if is_available() else 0


def current_device() -> int:
    _backend.require_cuda("cuda.current_device")
    return 0


def get_device_name(device=None) -> str:
    return _backend.require_cuda("cuda.get_device_name").device_info().get("name", "")


def get_device_capability(device=None):
    return tuple(_backend.require_cuda("cuda.get_device_capability").device_info().get("compute_capability", (0, 0)))


def is_bf16_supported(including_emulation=True) -> bool:
    return is_available() and get_device_capability()[0] >= 8


def manual_seed(seed) -> None:
    """Seeds the one generator pyfastnn draws from (GPU dropout masks come from it too)."""
    _manual_seed(seed)


manual_seed_all = manual_seed


def synchronize(device=None) -> None:
    if is_available():
        _device.cupy_module("cuda.synchronize").cuda.get_current_stream().synchronize()


def empty_cache() -> None:
    if is_available():
        _device.cupy_module("cuda.empty_cache").get_default_memory_pool().free_all_blocks()


class amp:
    """torch.cuda.amp's names: GradScaler and autocast (device 'cuda')."""
    GradScaler = _amp.GradScaler

    @staticmethod
    def autocast(enabled=True, dtype=None, cache_enabled=None):
        return _amp.autocast("cuda", dtype=dtype, enabled=enabled)
