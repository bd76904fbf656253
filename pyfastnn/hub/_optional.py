"""The one place hub, models and keras import their optional packages (safetensors, ml_dtypes, tokenizers, h5py)."""
from __future__ import annotations

import importlib

# package -> the pyfastnn extra that installs it
_EXTRAS = {"safetensors": "hub", "ml_dtypes": "hub", "tokenizers": "text", "h5py": "keras"}


def optional(name):
    """The module, or None when it is not installed."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def require(name, what):
    """The module, or an ImportError that says what needs it and how to install it."""
    module = optional(name)
    if module is None:
        package = name.split(".")[0]
        extra = _EXTRAS.get(package)
        hint = f'pip install "pyfastnn[{extra}]" (or pip install {package})' if extra else f"pip install {package}"
        raise ImportError(f"{what} needs the '{package}' package, which is not installed: {hint}")
    return module
