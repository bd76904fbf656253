"""``pyfastnn.callbacks``: the training loop's callbacks (defined in pyfastnn.training.callbacks)."""
from .training.callbacks import Callback, EarlyStopping, History, LambdaCallback, ModelCheckpoint

__all__ = ["Callback", "History", "EarlyStopping", "ModelCheckpoint", "LambdaCallback"]
