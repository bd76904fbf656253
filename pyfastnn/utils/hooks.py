"""``pyfastnn.utils.hooks``: the handle that module and optimizer hook registrations return (torch.utils.hooks)."""
from __future__ import annotations

import itertools

__all__ = ["RemovableHandle"]


class RemovableHandle:
    """Removes the hook it was returned for: ``handle.remove()``, or leaving a ``with handle:`` block."""
    _ids = itertools.count()

    def __init__(self, store):
        self.store, self.id = store, next(RemovableHandle._ids)

    def remove(self):
        self.store.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()
