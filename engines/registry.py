"""Engine registry, fsspec-style: built-ins named lazily as "module:Class" with an install hint;
third parties register through the ``filmcolor.engines`` entry-point group (value "module:Class")."""

from __future__ import annotations

from collections.abc import Iterator

from torch import nn

from filmcolor.models import ModelConfig
from filmcolor.registry import LazyRegistry, Spec

from .base import Engine, EngineUnavailable

ENTRY_POINT_GROUP = "filmcolor.engines"
EngineSpec = Spec

BUILTIN_ENGINES: dict[str, Spec] = LazyRegistry.table((
    Spec("torch", "filmcolor.engines.torch_engine:TorchEngine", "pip install torch"),
    Spec("onnxruntime", "filmcolor.engines.onnxruntime_engine:OnnxRuntimeEngine",
         "pip install 'filmcolor[onnx]' (or 'filmcolor[onnx-gpu]' for CUDA)"),
    Spec("onnxruntime-int8", "filmcolor.engines.onnxruntime_engine:OnnxRuntimeInt8Engine", "pip install 'filmcolor[onnx]'"),
    Spec("tensorrt", "filmcolor.engines.tensorrt_engine:TensorRTEngine",
         "pip install 'filmcolor[tensorrt]' (needs an NVIDIA GPU and driver)"),
))
ENGINES = LazyRegistry("engine", ENTRY_POINT_GROUP, BUILTIN_ENGINES, EngineUnavailable)

# Automatic choice, fastest first: (engine, device). On the CPU int8 comes first: 1.3-1.6x float32's
# speed there, and its colours held on val (300 images: CIEDE2000 0.9222x the grey input's against
# 0.9218x in float32) and on the five sample clips (mean CIEDE2000 12.99 against 13.06).
AUTO_ORDER: tuple[tuple[str, str], ...] = (
    ("tensorrt", "cuda"), ("onnxruntime", "cuda"), ("torch", "cuda"), ("onnxruntime-int8", "cpu"),
    ("onnxruntime", "cpu"), ("torch", "cpu"),
)


def engine_specs() -> dict[str, Spec]:
    """Built-in engines plus those registered through the entry-point group."""
    return ENGINES.specs()


def engine_class(name: str) -> type[Engine]:
    """Import and return the engine class named ``name``; :class:`EngineUnavailable` with the hint if missing."""
    return ENGINES.load(name)


def probe(name: str, device: str) -> str | None:
    """None when engine ``name`` can run on ``device`` here, else the reason."""
    try:
        return engine_class(name).probe(device)
    except EngineUnavailable as exc:
        return str(exc)


def auto_choices(device: str | None = None) -> Iterator[tuple[str, str, str | None]]:
    """(engine, device, why not or None) for each entry of :data:`AUTO_ORDER` on ``device``'s kind
    (every kind for None), fastest first: what "auto" tries, in order."""
    for engine, dev in AUTO_ORDER:
        if device is None or dev.startswith(device.split(":")[0]):
            yield engine, dev, probe(engine, dev)


def resolve_engine(name: str, device: str | None = None) -> str:
    """The engine ``name`` stands for here: itself, or for "auto" the first usable one of :data:`AUTO_ORDER`
    (what :func:`create_engine` would build). Resume keys use it: "auto" means different pixels on a
    machine with TensorRT than on a CPU-only one."""
    if name != "auto":
        return name
    return next((engine for engine, _, reason in auto_choices(device) if reason is None), name)


def create_engine(name: str, model: nn.Module, config: ModelConfig, *, device: str | None = None,
                  **options) -> Engine:
    """Build engine ``name`` (or the fastest usable one for ``name="auto"``) around ``model``."""
    if name != "auto":
        cls = engine_class(name)
        if device is not None and (reason := cls.probe(device)):
            raise EngineUnavailable(f"engine {name!r} on {device}: {reason}")
        return cls(model, config, device=device, **options)
    reasons = []
    for engine, dev, reason in auto_choices(device):
        if reason is None:
            try:
                return engine_class(engine)(model, config, device=device or dev, **options)
            except EngineUnavailable as exc:
                reason = str(exc)
        reasons.append(f"{engine}/{dev}: {reason}")
    raise EngineUnavailable("no usable engine: " + "; ".join(reasons))
