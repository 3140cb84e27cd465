"""Plugin registry, like the engines one: built-ins named lazily as "module:attr" with an install hint;
third parties register through the ``filmcolor.plugins`` entry-point group (value "module:attr").

Nothing is imported until asked for: :func:`plugin_target` imports one plugin, :func:`probe` says
whether it can run here (its module's ``probe()`` when it has one), :func:`list_plugins` lists them all.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

ENTRY_POINT_GROUP = "filmcolor.plugins"


class PluginUnavailable(RuntimeError):
    """The plugin cannot run here (missing package or program); the message says why and how to fix it."""


@dataclass(frozen=True)
class PluginSpec:
    name: str
    target: str          # "module:attr": the plugin's entry (a class or function)
    install_hint: str    # what to install when the module or a program it needs is missing
    description: str = ""


BUILTIN_PLUGINS: dict[str, PluginSpec] = {
    spec.name: spec
    for spec in (
        PluginSpec("opencv", "filmcolor.plugins.opencv:ColorizeFilter", "pip install opencv-contrib-python-headless",
                   "stateful frame filter for cv2.VideoCapture loops"),
        PluginSpec("ffmpeg-pipe", "filmcolor.plugins.ffmpeg_pipe:pipe",
                   "install the ffmpeg program (apt install ffmpeg) to make the raw streams",
                   "`filmcolor pipe`: raw frames stdin -> stdout between ffmpeg processes"),
        PluginSpec("ffmpeg-graph", "filmcolor.plugins.ffmpeg_graph:colorize_graph",
                   "pip install ffmpeg-python, and the ffmpeg program (apt install ffmpeg)",
                   "ffmpeg-python decode -> colorize -> encode with filters around it"),
        PluginSpec("vapoursynth", "filmcolor.plugins.vapoursynth:colorize",
                   "pip install 'filmcolor[vapoursynth]' (VapourSynth R74+ wheels need Python >= 3.12)",
                   "colorize(clip) -> VideoNode for VapourSynth scripts"),
    )
}


def plugin_specs() -> dict[str, PluginSpec]:
    """Built-in plugins plus those registered through the entry-point group."""
    specs = dict(BUILTIN_PLUGINS)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        specs.setdefault(ep.name, PluginSpec(ep.name, ep.value, f"install the package that provides {ep.value}"))
    return specs


def _spec(name: str) -> PluginSpec:
    specs = plugin_specs()
    if name not in specs:
        raise PluginUnavailable(f"unknown plugin {name!r}; known: {', '.join(sorted(specs))}")
    return specs[name]


def plugin_target(name: str) -> Any:
    """Import and return plugin ``name``'s entry; :class:`PluginUnavailable` with the hint if it cannot load."""
    spec = _spec(name)
    module, _, attr = spec.target.partition(":")
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        raise PluginUnavailable(f"plugin {name!r} needs {exc.name or 'a missing package'}: {spec.install_hint}") from exc
    try:
        return getattr(mod, attr) if attr else mod
    except AttributeError:
        raise PluginUnavailable(f"plugin {name!r}: {module} has no {attr!r}") from None


def probe(name: str) -> str | None:
    """None when plugin ``name`` can run here, else the reason (with what to install)."""
    try:
        spec = _spec(name)
        target = plugin_target(name)
    except PluginUnavailable as exc:
        return str(exc)
    module = importlib.import_module(spec.target.partition(":")[0])
    check = getattr(target, "probe", None) or getattr(module, "probe", None)
    if not callable(check):
        return None
    try:
        return check()
    except Exception as exc:  # a probe must not take the listing down
        return f"plugin {name!r} probe failed: {exc}; {spec.install_hint}"


def list_plugins() -> list[dict[str, Any]]:
    """Every known plugin: ``{"name", "usable", "reason", "description"}`` (reason None when usable)."""
    rows = []
    for name, spec in plugin_specs().items():
        reason = probe(name)
        rows.append({"name": name, "usable": reason is None, "reason": reason, "description": spec.description})
    return rows
