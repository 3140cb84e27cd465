"""Lazy named registries, fsspec-style: built-ins named as "module:attr" with an install hint, third
parties through an entry-point group. Nothing is imported until an entry is asked for.

Engines (``filmcolor.engines``) and plugins (``filmcolor.plugins``) are both one of these.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any


@dataclass(frozen=True)
class Spec:
    name: str
    target: str          # "module:attr"
    install_hint: str    # what to install when the module (or a program it needs) is missing
    description: str = ""


class LazyRegistry:
    """``kind`` entries ("engine", "plugin"): ``builtins`` plus the entry points of ``group``.

    ``unavailable`` is the error class raised (with the install hint) for unknown or unloadable entries.
    ``builtins`` is kept by reference, so tests may add to it.
    """

    def __init__(self, kind: str, group: str, builtins: dict[str, Spec], unavailable: type[Exception]) -> None:
        self.kind, self.group, self.builtins, self.unavailable = kind, group, builtins, unavailable

    @staticmethod
    def table(specs: Iterable[Spec]) -> dict[str, Spec]:
        return {spec.name: spec for spec in specs}

    def specs(self) -> dict[str, Spec]:
        """Built-ins plus those registered through the entry-point group (a built-in name wins)."""
        specs = dict(self.builtins)
        for ep in entry_points(group=self.group):
            specs.setdefault(ep.name, Spec(ep.name, ep.value, f"install the package that provides {ep.value}"))
        return specs

    def spec(self, name: str) -> Spec:
        specs = self.specs()
        if name not in specs:
            raise self.unavailable(f"unknown {self.kind} {name!r}; known: {', '.join(sorted(specs))}")
        return specs[name]

    def load(self, name: str) -> Any:
        """Import and return entry ``name`` (its module when the target has no ":attr")."""
        spec = self.spec(name)
        module, _, attr = spec.target.partition(":")
        try:
            mod = importlib.import_module(module)
        except ImportError as exc:
            raise self.unavailable(f"{self.kind} {name!r} needs {exc.name or 'a missing package'}: "
                                   f"{spec.install_hint}") from exc
        try:
            return getattr(mod, attr) if attr else mod
        except AttributeError:
            raise self.unavailable(f"{self.kind} {name!r}: {module} has no {attr!r}") from None
