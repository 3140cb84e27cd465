"""Inference engines behind one interface (``filmcolor.engines``)."""

from .base import Capabilities, Engine, EngineUnavailable
from .registry import AUTO_ORDER, BUILTIN_ENGINES, create_engine, engine_class, engine_specs, probe

__all__ = ["Capabilities", "Engine", "EngineUnavailable", "AUTO_ORDER", "BUILTIN_ENGINES",
           "create_engine", "engine_class", "engine_specs", "probe"]
