"""Exception types shared by the Python layer: torch raises RuntimeError where pyfastnn's contract names
ValueError or TypeError, so these are both, and code catching either works."""
from __future__ import annotations

__all__ = ["ArgumentError", "ShapeError", "DTypeError"]


class ArgumentError(RuntimeError, ValueError):
    """A value an op refuses (out of range, inconsistent with the others)."""


class ShapeError(ArgumentError):
    """A shape that does not fit (a reshape to the wrong size, operands a product cannot take, an input a layer
    does not accept)."""


class DTypeError(RuntimeError, TypeError):
    """A dtype an op cannot take, or operands whose dtypes do not match."""
