"""The one random generator behind dropout masks, parameter initialisation and the random factories, so
``pyfastnn.manual_seed(n)`` makes a whole training run repeatable; ``Generator`` objects for code that
carries its own (torch.Generator)."""
from __future__ import annotations

import numpy as np

__all__ = ["manual_seed", "seed", "initial_seed", "generator", "Generator", "get_rng_state", "set_rng_state"]


def _check_seed(value, where):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{where}: argument 'seed' must be an int, got {type(value).__name__}")
    return int(value) & (2**64 - 1)


class Generator:
    """A random number generator object, like torch.Generator: manual_seed(n) returns it, seed() reseeds from
    the OS, initial_seed() tells the seed; get_state/set_state save and restore it."""

    def __init__(self, device="cpu"):
        self._seed = int(np.random.SeedSequence().entropy) & (2**64 - 1)
        self._rng = np.random.default_rng(self._seed)
        self.device = device

    def manual_seed(self, seed):
        self._seed = _check_seed(seed, "Generator.manual_seed")
        self._rng = np.random.default_rng(self._seed)
        return self

    def seed(self):
        self._seed = int(np.random.SeedSequence().entropy) & (2**64 - 1)
        self._rng = np.random.default_rng(self._seed)
        return self._seed

    def initial_seed(self):
        return self._seed

    def get_state(self):
        return dict(self._rng.bit_generator.state)

    def set_state(self, state):
        self._rng.bit_generator.state = state
        return self


_default = Generator()


def manual_seed(seed) -> Generator:
    """Seeds the generator behind dropout masks, parameter initialisation and the random factories."""
    return _default.manual_seed(_check_seed(seed, "manual_seed"))


def seed() -> int:
    return _default.seed()


def initial_seed() -> int:
    return _default.initial_seed()


def get_rng_state():
    return _default.get_state()


def set_rng_state(state):
    _default.set_state(state)


def generator() -> np.random.Generator:
    """The default generator's numpy Generator (replaced by each manual_seed call)."""
    return _default._rng
