"""Model registry: generator builders registered by name, in the manner of timm.

``create_model(name, **kw)`` builds an architecture; third parties add theirs with
``@register_model("name")`` or through the ``filmcolor.models`` entry-point group.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Callable

from torch import nn

Builder = Callable[..., nn.Module]
_BUILDERS: dict[str, Builder] = {}
_BUILTIN_MODULES = ("filmcolor.models.sagan_unet", "filmcolor.models.baselines")
_loaded_builtins = False


def register_model(name: str) -> Callable[[Builder], Builder]:
    """Decorator: register ``fn`` as the builder of architecture ``name``."""

    def deco(fn: Builder) -> Builder:
        _BUILDERS[name] = fn
        return fn

    return deco


def _load_builtins() -> None:
    """Import the built-in architecture modules and the entry points once; marked done only when that
    succeeded, so a failed import is raised again next time instead of leaving a half-filled registry."""
    global _loaded_builtins
    if _loaded_builtins:
        return
    import importlib

    for mod in _BUILTIN_MODULES:
        importlib.import_module(mod)
    for ep in entry_points(group="filmcolor.models"):
        if ep.name not in _BUILDERS:
            _BUILDERS[ep.name] = ep.load()
    _loaded_builtins = True


def list_models() -> list[str]:
    """Names of every registered architecture."""
    _load_builtins()
    return sorted(_BUILDERS)


def create_model(name: str, **kwargs) -> nn.Module:
    """Build architecture ``name``; it maps Lab L ``[N,1,H,W]`` (0..100) to a,b ``[N,2,H,W]``."""
    _load_builtins()
    try:
        builder = _BUILDERS[name]
    except KeyError:
        raise ValueError(f"unknown architecture {name!r}; known: {', '.join(sorted(_BUILDERS))}") from None
    return builder(**kwargs)
