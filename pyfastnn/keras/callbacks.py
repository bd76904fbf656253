"""Keras callbacks: EarlyStopping and ModelCheckpoint with Keras's defaults."""
from __future__ import annotations

from .. import callbacks as _cb
from ..callbacks import Callback, EarlyStopping

__all__ = ["Callback", "EarlyStopping", "ModelCheckpoint"]


class ModelCheckpoint(_cb.ModelCheckpoint):
    """Saves the whole model (Keras's default) or, with save_weights_only, the weights."""

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False, save_weights_only=False,
                 mode="auto", **kwargs):
        super().__init__(filepath, monitor, verbose, save_best_only, save_weights_only, mode)

    def on_epoch_end(self, epoch, logs=None):
        if self.save_weights_only:
            return super().on_epoch_end(epoch, logs)
        logs = logs or {}
        if _cb._nonzero_rank():
            return
        path = self.filepath.format(epoch=epoch + 1, **logs)
        if self.save_best_only:
            if self.monitor not in logs:
                raise KeyError(f"ModelCheckpoint: monitored value '{self.monitor}' is not among the logged values "
                               f"{sorted(logs)}")
            if not self._better(logs[self.monitor], self.best, 0.0):
                return
            self.best = logs[self.monitor]
        self.model.save(path)
