"""Callbacks of the training loop (Keras's behaviour): Callback, History, EarlyStopping, ModelCheckpoint."""
from __future__ import annotations

import copy
import os

import numpy as np

from .. import serialization
from ..distributed import comm as _comm

__all__ = ["Callback", "History", "EarlyStopping", "ModelCheckpoint", "LambdaCallback"]


def _nonzero_rank():
    return _comm.is_initialized() and _comm.rank() != 0


class Callback:
    """Base class: the loop calls these hooks (all optional) with a logs dict."""
    model = None
    params = None

    def set_model(self, model):
        self.model = model

    def set_params(self, params):
        self.params = params

    def on_train_begin(self, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass

    def on_epoch_begin(self, epoch, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        pass

    def on_train_batch_begin(self, batch, logs=None):
        pass

    def on_train_batch_end(self, batch, logs=None):
        pass


class History(Callback):
    """What Keras's fit returns: .history maps each logged name to its per-epoch values, .epoch the epochs."""

    def __init__(self):
        self.history, self.epoch = {}, []

    def on_train_begin(self, logs=None):
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)

    def __repr__(self):
        return f"History(epochs={len(self.epoch)}, keys={list(self.history)})"


class LambdaCallback(Callback):
    """Callback from plain functions: on_epoch_end=lambda epoch, logs: ..., and the like."""

    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_train_begin=None, on_train_end=None,
                 on_train_batch_begin=None, on_train_batch_end=None, **kwargs):
        for name, fn in dict(on_epoch_begin=on_epoch_begin, on_epoch_end=on_epoch_end, on_train_begin=on_train_begin,
                             on_train_end=on_train_end, on_train_batch_begin=on_train_batch_begin,
                             on_train_batch_end=on_train_batch_end, **kwargs).items():
            if fn is not None:
                setattr(self, name, fn)


def _improves(mode, monitor):
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"callback: mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode == "auto":
        mode = "max" if any(w in monitor for w in ("acc", "auc", "precision", "recall", "f1")) else "min"
    return (lambda new, best, delta: new > best + delta) if mode == "max" else \
        (lambda new, best, delta: new < best - delta), mode


class EarlyStopping(Callback):
    """Stops training when `monitor` has not improved by min_delta for `patience` epochs."""

    def __init__(self, monitor="val_loss", min_delta=0.0, patience=0, verbose=0, mode="auto", baseline=None,
                 restore_best_weights=False, start_from_epoch=0):
        self.monitor, self.min_delta, self.patience = monitor, abs(min_delta), patience
        self.verbose, self.baseline, self.restore_best_weights = verbose, baseline, restore_best_weights
        self.start_from_epoch = start_from_epoch
        self._better, self.mode = _improves(mode, monitor)
        self.stopped_epoch = 0

    def on_train_begin(self, logs=None):
        self.wait = 0
        self.best = np.inf if self.mode == "min" else -np.inf
        if self.baseline is not None:
            self.best = self.baseline
        self.best_weights = None
        self.stopped_epoch = 0

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.monitor not in logs:
            raise KeyError(f"EarlyStopping: monitored value '{self.monitor}' is not among the logged values "
                           f"{sorted(logs)}")
        if epoch < self.start_from_epoch:
            return
        value = logs[self.monitor]
        if self._better(value, self.best, self.min_delta):
            self.best, self.wait = value, 0
            if self.restore_best_weights:
                self.best_weights = copy.deepcopy(self.model.state_dict())
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True
            if self.restore_best_weights and self.best_weights is not None:
                self.model.load_state_dict(self.best_weights)
            if self.verbose:
                print(f"Epoch {epoch + 1}: early stopping")


class ModelCheckpoint(Callback):
    """Saves the weights (or the whole model) after each epoch, or only when
    `monitor` improves. filepath may hold fields like '{epoch:02d}-{val_loss:.2f}'."""

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False, save_weights_only=True,
                 mode="auto"):
        self.filepath, self.monitor, self.verbose = os.fspath(filepath), monitor, verbose
        self.save_best_only, self.save_weights_only = save_best_only, save_weights_only
        self._better, self.mode = _improves(mode, monitor)
        self.best = np.inf if self.mode == "min" else -np.inf

    def _save_model(self, path):
        serialization.save(self.model, path)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if _nonzero_rank():        # in a multi-rank job rank 0 writes the checkpoints
            return
        path = self.filepath.format(epoch=epoch + 1, **logs)
        if self.save_best_only:
            if self.monitor not in logs:
                raise KeyError(f"ModelCheckpoint: monitored value '{self.monitor}' is not among the logged values "
                               f"{sorted(logs)}")
            if not self._better(logs[self.monitor], self.best, 0.0):
                return
            self.best = logs[self.monitor]
        if self.save_weights_only:
            self.model.save_weights(path)
        else:
            self._save_model(path)
        if self.verbose:
            print(f"Epoch {epoch + 1}: saved to {path}")
