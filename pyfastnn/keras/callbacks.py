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

    def _save_model(self, path):
        self.model.save(path)
