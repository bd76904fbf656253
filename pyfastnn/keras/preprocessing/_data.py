"""keras.utils.Sequence (Keras 2) and keras.utils.PyDataset (Keras 3): batches by index, which the training
loop (pyfastnn.training.data.StreamData) cycles over epochs, calling on_epoch_end after each pass."""
from __future__ import annotations

import itertools
import warnings

__all__ = ["Sequence", "PyDataset"]


class Sequence:
    """Base class for a dataset of batches: implement ``__getitem__(index)`` (a batch, e.g. ``(x, y)`` numpy
    arrays) and ``__len__`` (batches per epoch); ``on_epoch_end`` runs after each epoch. ``__getitem__`` must be
    safe to call from several threads (the training loop prepares batches in background threads)."""

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__}: __getitem__ is not implemented")

    def __len__(self):
        raise NotImplementedError(f"{type(self).__name__}: __len__ is not implemented")

    def on_epoch_end(self):
        """Called at the end of every epoch (e.g. to reshuffle)."""

    def __iter__(self):
        """One pass over the batches, in order."""
        for i in range(len(self)):
            yield self[i]


class PyDataset:
    """Keras 3's base class for a dataset of batches: ``__getitem__(index)`` and ``__len__`` (or the
    ``num_batches`` property; None for an endless dataset), ``on_epoch_begin`` / ``on_epoch_end``, and the
    loader settings ``workers``, ``use_multiprocessing``, ``max_queue_size`` passed to ``super().__init__``.
    pyfastnn prepares batches in threads; ``use_multiprocessing`` is accepted and has no effect."""

    def __init__(self, workers=1, use_multiprocessing=False, max_queue_size=10):
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"PyDataset: argument 'workers' must be a positive int, got {workers!r}")
        if isinstance(max_queue_size, bool) or not isinstance(max_queue_size, int) or max_queue_size < 1:
            raise ValueError(f"PyDataset: argument 'max_queue_size' must be a positive int, got {max_queue_size!r}")
        self._workers = workers
        self._use_multiprocessing = bool(use_multiprocessing)
        self._max_queue_size = max_queue_size

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # A subclass that gives only num_batches still has a length for the training loop.
        if "num_batches" in cls.__dict__ and not any("__len__" in c.__dict__ for c in cls.__mro__[:-1]):
            cls.__len__ = _len_from_num_batches

    def _warn_if_super_not_called(self):
        missing = [n for n in ("_workers", "_use_multiprocessing", "_max_queue_size") if not hasattr(self, n)]
        if missing:
            self._workers = getattr(self, "_workers", 1)
            self._use_multiprocessing = getattr(self, "_use_multiprocessing", False)
            self._max_queue_size = getattr(self, "_max_queue_size", 10)
            warnings.warn("Your `PyDataset` class should call `super().__init__(**kwargs)` in its constructor. "
                          "`**kwargs` can include `workers`, `use_multiprocessing`, `max_queue_size`. Do not pass "
                          "these arguments to `fit()`, as they will be ignored.", stacklevel=3)

    @property
    def workers(self):
        self._warn_if_super_not_called()
        return self._workers

    @workers.setter
    def workers(self, value):
        self._workers = value

    @property
    def use_multiprocessing(self):
        self._warn_if_super_not_called()
        return self._use_multiprocessing

    @use_multiprocessing.setter
    def use_multiprocessing(self, value):
        self._use_multiprocessing = value

    @property
    def max_queue_size(self):
        self._warn_if_super_not_called()
        return self._max_queue_size

    @max_queue_size.setter
    def max_queue_size(self, value):
        self._max_queue_size = value

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__}: __getitem__ is not implemented")

    @property
    def num_batches(self):
        """Batches per epoch (None: endless); defaults to ``len(self)``."""
        if hasattr(self, "__len__"):
            return len(self)
        raise NotImplementedError("You need to implement the `num_batches` property:\n\n"
                                  "@property\ndef num_batches(self):\n  return ...")

    def on_epoch_begin(self):
        """Called at the beginning of every epoch."""

    def on_epoch_end(self):
        """Called at the end of every epoch."""

    def __iter__(self):
        try:
            n = self.num_batches
        except NotImplementedError:
            n = None
        for index in (range(n) if n is not None else itertools.count()):
            yield self[index]


def _len_from_num_batches(self):
    n = self.num_batches
    if n is None:
        raise TypeError(f"{type(self).__name__} is endless (num_batches is None): pass steps_per_epoch")
    return int(n)
