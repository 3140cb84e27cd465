"""Plugin registry, like the engines one: built-ins named lazily as "module:attr" with an install hint;
third parties register through the ``filmcolor.plugins`` entry-point group (value "module:attr").

Nothing is imported until asked for: :func:`plugin_target` imports one plugin, :func:`probe` says
whether it can run here (its module's ``probe()`` when it has one), :func:`list_plugins` lists them all.
"""

from __future__ import annotations

import importlib
from typing import Any

from filmcolor.registry import LazyRegistry, Spec

ENTRY_POINT_GROUP = "filmcolor.plugins"
PluginSpec = Spec


class PluginUnavailable(RuntimeError):
    """The plugin cannot run here (missing package or program); the message says why and how to fix it."""


BUILTIN_PLUGINS: dict[str, Spec] = LazyRegistry.table((
    Spec("opencv", "filmcolor.plugins.opencv:ColorizeFilter", "pip install opencv-contrib-python-headless",
         "stateful frame filter for cv2.VideoCapture loops"),
    Spec("ffmpeg-pipe", "filmcolor.plugins.ffmpeg_pipe:pipe",
         "install the ffmpeg program (apt install ffmpeg) to make the raw streams",
         "`filmcolor pipe`: raw frames stdin -> stdout between ffmpeg processes"),
    Spec("ffmpeg-graph", "filmcolor.plugins.ffmpeg_graph:colorize_graph",
         "pip install ffmpeg-python, and the ffmpeg program (apt install ffmpeg)",
         "ffmpeg-python decode -> colorize -> encode with filters around it"),
    Spec("vapoursynth", "filmcolor.plugins.vapoursynth:colorize",
         "pip install 'filmcolor[vapoursynth]' (VapourSynth R74+ wheels need Python >= 3.12)",
         "colorize(clip) -> VideoNode for VapourSynth scripts"),
))
PLUGINS = LazyRegistry("plugin", ENTRY_POINT_GROUP, BUILTIN_PLUGINS, PluginUnavailable)


def plugin_specs() -> dict[str, Spec]:
    """Built-in plugins plus those registered through the entry-point group."""
    return PLUGINS.specs()


def plugin_target(name: str) -> Any:
    """Import and return plugin ``name``'s entry; :class:`PluginUnavailable` with the hint if it cannot load."""
    return PLUGINS.load(name)


def probe(name: str) -> str | None:
    """None when plugin ``name`` can run here, else the reason (with what to install)."""
    try:
        spec = PLUGINS.spec(name)
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
