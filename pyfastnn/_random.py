"""The one random generator behind dropout masks and parameter initialisation,
so ``pyfastnn.manual_seed(n)`` makes a whole training run repeatable."""
from __future__ import annotations

import numpy as np

_generator = np.random.default_rng()


def manual_seed(seed: int) -> None:
    """Seeds the generator behind dropout masks and parameter initialisation."""
    global _generator
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"manual_seed: argument 'seed' must be an int, got {type(seed).__name__}")
    _generator = np.random.default_rng(int(seed) & (2**64 - 1))


def generator() -> np.random.Generator:
    """The current generator (replaced by each manual_seed call)."""
    return _generator
