"""Engine registry, fsspec-style: built-ins named lazily as "module:Class" with an install hint;
third parties register through the ``filmcolor.engines`` entry-point group (value "module:Class")."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from importlib.metadata import entry_points

from torch import nn

from filmcolor.models import ModelConfig

from .base import Engine, EngineUnavailable

ENTRY_POINT_GROUP = "filmcolor.engines"


@dataclass(frozen=True)
class EngineSpec:
    name: str
    target: str          # "module:Class"
    install_hint: str    # what to install when the module is missing


BUILTIN_ENGINES: dict[str, EngineSpec] = {
    spec.name: spec
    for spec in (
        EngineSpec("torch", "filmcolor.engines.torch_engine:TorchEngine", "pip install torch"),
        EngineSpec("onnxruntime", "filmcolor.engines.onnxruntime_engine:OnnxRuntimeEngine",
                   "pip install 'filmcolor[onnx]' (or 'filmcolor[onnx-gpu]' for CUDA)"),
        EngineSpec("onnxruntime-int8", "filmcolor.engines.onnxruntime_engine:OnnxRuntimeInt8Engine",
                   "pip install 'filmcolor[onnx]'"),
        EngineSpec("tensorrt", "filmcolor.engines.tensorrt_engine:TensorRTEngine",
                   "pip install 'filmcolor[tensorrt]' (needs an NVIDIA GPU and driver)"),
    )
}

# Automatic choice, fastest first: (engine, device).
AUTO_ORDER: tuple[tuple[str, str], ...] = (
    ("tensorrt", "cuda"), ("onnxruntime", "cuda"), ("torch", "cuda"), ("onnxruntime", "cpu"), ("torch", "cpu"),
)


def engine_specs() -> dict[str, EngineSpec]:
    """Built-in engines plus those registered through the entry-point group."""
    specs = dict(BUILTIN_ENGINES)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        specs.setdefault(ep.name, EngineSpec(ep.name, ep.value, f"install the package that provides {ep.value}"))
    return specs


def engine_class(name: str) -> type[Engine]:
    """Import and return the engine class named ``name``; :class:`EngineUnavailable` with the hint if missing."""
    specs = engine_specs()
    if name not in specs:
        raise EngineUnavailable(f"unknown engine {name!r}; known: {', '.join(sorted(specs))}")
    spec = specs[name]
    module, _, attr = spec.target.partition(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except ImportError as exc:
        raise EngineUnavailable(f"engine {name!r} needs {exc.name or 'a missing package'}: {spec.install_hint}") from exc


def probe(name: str, device: str) -> str | None:
    """None when engine ``name`` can run on ``device`` here, else the reason."""
    try:
        return engine_class(name).probe(device)
    except EngineUnavailable as exc:
        return str(exc)


def create_engine(name: str, model: nn.Module, config: ModelConfig, *, device: str | None = None,
                  **options) -> Engine:
    """Build engine ``name`` (or the fastest usable one for ``name="auto"``) around ``model``."""
    if name != "auto":
        cls = engine_class(name)
        if device is not None and (reason := cls.probe(device)):
            raise EngineUnavailable(f"engine {name!r} on {device}: {reason}")
        return cls(model, config, device=device, **options)
    reasons = []
    for engine, dev in AUTO_ORDER:
        if device is not None and not dev.startswith(device.split(":")[0]):
            continue
        reason = probe(engine, dev)
        if reason is None:
            try:
                return engine_class(engine)(model, config, device=device or dev, **options)
            except EngineUnavailable as exc:
                reason = str(exc)
        reasons.append(f"{engine}/{dev}: {reason}")
    raise EngineUnavailable("no usable engine: " + "; ".join(reasons))
