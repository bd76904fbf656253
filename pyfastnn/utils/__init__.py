"""``pyfastnn.utils``: torch.utils' data loading (``pyfastnn.utils.data``)."""
from . import data

__all__ = ["data"]
