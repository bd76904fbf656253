"""Keras models: the functional Model, Sequential, and saving/loading whole models."""
from .model import Functional, Model
from .saving import load_model
from .sequential import Sequential

__all__ = ["Model", "Functional", "Sequential", "load_model"]
