"""Generators: a registry of architectures and loading of trained weights."""

from .registry import create_model, list_models, register_model
from .weights import ModelConfig, load_model, list_weights, save_model, resolve_weights

__all__ = [
    "create_model", "list_models", "register_model",
    "ModelConfig", "load_model", "list_weights", "save_model", "resolve_weights",
]
