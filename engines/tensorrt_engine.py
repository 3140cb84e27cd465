"""TensorRT engine (native Python API, TensorRT 10): ONNX -> serialized engine in the cache -> run on torch's stream.

Build: the cached ONNX export is parsed with ``trt.OnnxParser`` into an explicit-batch network; one
optimization profile covers the render sizes and aspect ratios the pipeline feeds (batch 1..max);
fp16 (or bf16 where the GPU has it) via builder flags, or, on TensorRT versions without those flags
(11+), a strongly typed network from a graph exported in that precision. A timing cache shared by
all builds on this GPU model + TensorRT version makes rebuilds fast. Built engines are keyed by
everything that invalidates them (:func:`~.trt_cache.engine_cache_key`), written atomically, and
built by one process at a time (:class:`~.trt_cache.FileLock`).

Run: ``set_input_shape`` + ``set_tensor_address`` on torch CUDA tensors + ``execute_async_v3`` on
torch's current stream, so no copies and no synchronisation: the result is ordered like any torch op.
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any, Sequence, Union

import torch
from torch import nn

from filmcolor.models import ModelConfig

from .base import Engine, EngineClosed, EngineUnavailable, no_cuda_reason
from .export import ONNX_GUIDANCE, ONNX_INPUT, ONNX_OUTPUT, ensure_onnx
from filmcolor.fs import FileLock, atomic_write_bytes

from .trt_cache import (DEFAULT_ASPECTS, HW, AspectRange, cache_root, engine_cache_key, engine_path, file_sha256,
                        profile_shapes, shape_in_profile, timing_cache_path)

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "fp16", "bf16")
_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


def _install_hint() -> str:
    from .registry import BUILTIN_ENGINES

    return BUILTIN_ENGINES["tensorrt"].install_hint


def _import_trt() -> ModuleType:
    """``tensorrt``, or :class:`EngineUnavailable` with the install hint (missing package or libraries)."""
    try:
        return importlib.import_module("tensorrt")
    except Exception as exc:  # ImportError, or OSError when libnvinfer cannot be loaded
        why = "" if isinstance(exc, ModuleNotFoundError) and exc.name == "tensorrt" else f" ({type(exc).__name__}: {exc})"
        raise EngineUnavailable(f"engine 'tensorrt' needs the tensorrt package{why}: {_install_hint()}") from exc


@functools.lru_cache(maxsize=None)
def _logger(trt: ModuleType) -> Any:
    """One TensorRT logger per process (TensorRT wants a single one), warnings and errors only."""
    return trt.Logger(trt.Logger.WARNING)


def _flag(trt: ModuleType, precision: str) -> Any:
    """The BuilderFlag for ``precision`` or None (fp32, or TensorRT 11+ where weak typing is gone)."""
    return getattr(trt.BuilderFlag, precision.upper(), None) if precision != "fp32" else None


def build_plan(trt: ModuleType, onnx_path: Path, shapes: Sequence[Sequence[int]], *, precision: str = "fp16",
               strongly_typed: bool = False, workspace: int = 4 << 30, timing_cache: Path | None = None,
               inputs: dict[str, int] | None = None) -> bytes:
    """Parse ``onnx_path`` and build a serialized engine for the (min, opt, max) ``shapes`` of input "L".

    ``inputs``: every input's name and channel count (default ``{"L": 1}``); a guided graph's hint a,b (2)
    and mask (1) get L's batch, height and width in the same profile."""
    logger = _logger(trt)
    builder = trt.Builder(logger)
    flags = 0
    if int(trt.__version__.split(".")[0]) < 10:  # explicit batch is the only mode from TensorRT 10 on
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    if strongly_typed:
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT could not parse {onnx_path}: {errors or 'unknown error'}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace))
    if not strongly_typed and (flag := _flag(trt, precision)) is not None:
        config.set_flag(flag)
        if precision == "bf16" and (fp16 := _flag(trt, "fp16")) is not None:
            config.set_flag(fp16)  # let the builder also pick fp16 kernels where bf16 ones are missing
    profile = builder.create_optimization_profile()
    for name, channels in (inputs or {ONNX_INPUT: 1}).items():
        lo, opt, hi = ((int(s[0]), channels, int(s[2]), int(s[3])) for s in shapes)
        profile.set_shape(name, lo, opt, hi)
    config.add_optimization_profile(profile)
    cache = None
    if timing_cache is not None:
        try:
            previous = timing_cache.read_bytes() if timing_cache.exists() else b""
            cache = config.create_timing_cache(previous)
        except Exception as exc:  # unreadable or corrupt: time the layers afresh
            log.warning("ignoring the TensorRT timing cache %s: %s", timing_cache, exc)
            cache = config.create_timing_cache(b"")
        config.set_timing_cache(cache, False)  # ignore_mismatch=False
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise RuntimeError(f"TensorRT failed to build an engine from {onnx_path} (see the TensorRT log above)")
    if cache is not None:
        _save_timing_cache(config, cache, timing_cache)
    return bytes(plan)


def _save_timing_cache(config: Any, cache: Any, path: Path) -> None:
    """Merge what this build timed into the shared timing cache file (others may have added to it)."""
    try:
        with FileLock(path.with_name(path.name + ".lock"), timeout=60):
            if path.exists():
                cache.combine(config.create_timing_cache(path.read_bytes()), False)
            atomic_write_bytes(path, bytes(cache.serialize()))
    except Exception as exc:  # a timing cache only saves build time: never fail a build over it
        log.warning("could not save the TensorRT timing cache %s: %s", path, exc)


def check_io(trt: ModuleType, engine: Any, names: Sequence[str]) -> None:
    """The engine's tensors are exactly ``names``, all float32 (the buffers are float32 torch tensors;
    casts to the build precision live inside the engine)."""
    have = {engine.get_tensor_name(i) for i in range(engine.num_io_tensors)}
    if have != set(names):
        raise RuntimeError(f"engine has tensors {sorted(have)}, expected {sorted(names)}")
    for name in names:
        if engine.get_tensor_dtype(name) != trt.float32:
            raise RuntimeError(f"engine tensor {name!r} is {engine.get_tensor_dtype(name)}, expected float32")


class TensorRTEngine(Engine):
    """Native TensorRT inference on CUDA (see the module docstring)."""

    name = "tensorrt"

    def __init__(self, model: nn.Module, config: ModelConfig, *, precision: str | None = None,
                 aspects: Union[AspectRange, tuple[HW, HW, HW]] = DEFAULT_ASPECTS, max_batch: int | None = None,
                 workspace_gb: float = 4.0, cache_dir: str | os.PathLike | None = None, guidance: bool = True,
                 **options: Any) -> None:
        """Common options: see :class:`~.base.Engine` (``device`` defaults to CUDA, the only one it runs on;
        ``threads`` has nothing to do on a GPU). ``precision``: fp32, fp16 or bf16 (default fp16 unless
        ``fp16=False``). ``render_sizes``/``aspects``/``max_batch``: what the optimization profile covers
        (default: the model's render size, portrait 9:16 to 2.4:1, ``batch`` frames); :meth:`prepare` widens
        it (a cached rebuild) for a shape outside it."""
        self._trt = _import_trt()
        fp16 = options.get("fp16")
        super().__init__(model, config, **{"device": "cuda", **{k: v for k, v in options.items() if v is not None}})
        # a model with guidance inputs gets a second engine for its guided graph (L, hint a,b, mask), built
        # beside the automatic one; guidance=False skips it (hints are then pasted, not fed to the model)
        self.accepts_guidance = self.accepts_guidance and guidance
        self.precision = self._resolve_precision(precision, fp16)
        self.fp16 = self.precision != "fp32"
        self.max_batch = max(int(max_batch or self.batch), self.batch)
        self.aspects = aspects
        self.workspace = int(workspace_gb * (1 << 30))
        self.cache_dir = cache_root(cache_dir)
        self._model, self._config = model, config
        self.runtime = self.engine = self.context = self._guided = None
        self.engine_file: Path | None = None
        self._load()

    def _resolve_precision(self, precision: str | None, fp16: bool | None) -> str:
        p = precision or ("fp32" if fp16 is False else "fp16")
        if p not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {p!r}")
        if p == "bf16" and torch.cuda.get_device_capability(self.device) < (8, 0):
            warnings.warn("bf16 needs compute capability 8.0+; building fp16 instead", stacklevel=3)
            p = "fp16"
        return p

    @classmethod
    def probe(cls, device: str) -> str | None:
        if not device.startswith("cuda"):
            return "TensorRT runs on NVIDIA GPUs only: use device cuda (on CPU use the onnxruntime or torch engine)"
        try:
            _import_trt()
        except EngineUnavailable as exc:
            return str(exc)
        if not torch.cuda.is_available():
            return no_cuda_reason()
        return None

    # -- build / load ------------------------------------------------------------------------------------------
    def _load(self) -> None:
        """Build or load the automatic graph's engine, and the guided graph's when the model has guidance
        inputs, for the current profile; both happen here (construction, :meth:`prepare`), never in infer."""
        shapes = profile_shapes(self.render_sizes, self.aspects, self.max_batch, self.size_multiple,
                                opt_batch=self.batch)
        auto = self._build(shapes, guided=False)   # the old engines stay usable if a build fails
        guided = self._build(shapes, guided=True) if self.accepts_guidance else None
        if self.context is not None:
            torch.cuda.current_stream(self.device).synchronize()  # old contexts may still run queued work
        self.context = self._guided = None  # release old contexts before their engines
        self.runtime, self.engine, self.context, self.engine_file = auto
        self._guided, self.profile = guided, shapes

    def _build(self, shapes: tuple, guided: bool) -> tuple[Any, Any, Any, Path]:
        """(runtime, engine, context, engine file) of one graph, from the cache or built (one process at a time)."""
        trt = self._trt
        inputs = {ONNX_INPUT: 1, **({ONNX_GUIDANCE[0]: 2, ONNX_GUIDANCE[1]: 1} if guided else {})}
        strongly_typed = self.precision != "fp32" and _flag(trt, self.precision) is None
        dtype = _DTYPES[self.precision] if strongly_typed else torch.float32
        onnx_path = ensure_onnx(self._model, self._config, dtype=dtype, cache_dir=self.cache_dir, guided=guided)
        gpu = torch.cuda.get_device_name(self.device)
        cc = torch.cuda.get_device_capability(self.device)
        key = engine_cache_key(file_sha256(onnx_path), shapes, self.precision + ("/typed" if strongly_typed else ""),
                               trt.__version__, gpu, cc, extra={"workspace": self.workspace, "inputs": inputs})
        path = engine_path(self.cache_dir, f"{self._config.name}-{self._config.architecture}", key)
        with torch.cuda.device(self.device):
            runtime = trt.Runtime(_logger(trt))
            engine = self._deserialize(runtime, path)
            if engine is None:
                with FileLock(path.with_name(path.name + ".lock")):
                    engine = self._deserialize(runtime, path)  # built by another process meanwhile?
                    if engine is None:
                        free, _ = torch.cuda.mem_get_info(self.device)
                        log.warning("building a TensorRT engine for %s (%s%s, profile %s); this takes a while once",
                                    self._config.name, self.precision, ", guided" if guided else "", shapes)
                        plan = build_plan(trt, onnx_path, shapes, precision=self.precision, inputs=inputs,
                                          strongly_typed=strongly_typed, workspace=min(self.workspace, free // 2),
                                          timing_cache=timing_cache_path(self.cache_dir, trt.__version__, gpu, cc))
                        atomic_write_bytes(path, plan)
                        engine = runtime.deserialize_cuda_engine(plan)
            if engine is None:
                raise RuntimeError(f"TensorRT could not load the engine it built ({path})")
            check_io(trt, engine, [*inputs, ONNX_OUTPUT])
            context = engine.create_execution_context()
            if context is None:
                raise RuntimeError("TensorRT could not create an execution context (out of GPU memory?)")
        return runtime, engine, context, path

    @staticmethod
    def _deserialize(runtime: Any, path: Path) -> Any:
        if not path.exists():
            return None
        engine = runtime.deserialize_cuda_engine(path.read_bytes())
        if engine is None:
            log.warning("cached TensorRT engine %s does not load here; rebuilding", path)
        return engine

    def prepare(self, height: int, width: int) -> None:
        """Widen the profile (a rebuild, or a load from the cache) if ``height`` x ``width`` is outside it."""
        if self.context is None:
            raise EngineClosed(self.name)
        if not shape_in_profile((min(self.batch, self.max_batch), 1, height, width), self.profile):
            self._widen(height, width)

    def _widen(self, h: int, w: int) -> None:
        """Rebuild (or load from the cache) an engine whose profile also covers an ``h`` x ``w`` input."""
        if len(self.aspects) == 3:  # explicit (min, opt, max) sides: stretch the box
            (h0, w0), opt, (h2, w2) = self.aspects  # type: ignore[misc]
            self.aspects = ((min(h0, h), min(w0, w)), opt, (max(h2, h), max(w2, w)))
        else:
            lo, hi = sorted(self.aspects)  # type: ignore[arg-type]
            self.aspects = (min(lo, w / h), max(hi, w / h))
            self.render_sizes = tuple(sorted({*self.render_sizes, min(h, w)}))
        log.warning("input %dx%d is outside the TensorRT profile %s: widening it", h, w, self.profile)
        self._load()

    # -- run ---------------------------------------------------------------------------------------------------
    def describe(self) -> str:
        return f"{self.name} ({self.device}, {self.precision})"

    def infer(self, L: torch.Tensor, guidance: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        self._check_guidance(guidance)
        if self.context is None:
            raise EngineClosed(self.name)
        if L.dim() != 4 or L.shape[1] != 1:
            raise ValueError(f"L must be [N,1,H,W], got {tuple(L.shape)}")
        x = L.detach().to(self.device, torch.float32).contiguous()
        n, _, h, w = x.shape
        if h % self.size_multiple or w % self.size_multiple:
            raise ValueError(f"H and W must be multiples of {self.size_multiple}, got {h}x{w}")
        if not shape_in_profile((min(n, self.max_batch), 1, h, w), self.profile):
            raise ValueError(f"input {h}x{w} is outside the TensorRT profile {self.profile}: call prepare({h}, {w}) "
                             "first (it builds outside the stream)")
        feeds = {ONNX_INPUT: x}
        ctx = self.context
        if guidance is not None:
            feeds.update((name, t.detach().to(self.device, torch.float32).contiguous())
                         for name, t in zip(ONNX_GUIDANCE, guidance))
            ctx = self._guided[2]
        parts = [self._run(ctx, {k: v[i:i + self.max_batch] for k, v in feeds.items()})
                 for i in range(0, n, self.max_batch)]
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def _run(self, ctx: Any, feeds: dict[str, torch.Tensor]) -> torch.Tensor:
        n, _, h, w = feeds[ONNX_INPUT].shape
        out = torch.empty((n, 2, h, w), device=self.device, dtype=torch.float32)
        with torch.cuda.device(self.device):
            for name, t in feeds.items():
                if not ctx.set_input_shape(name, tuple(t.shape)):
                    raise RuntimeError(f"TensorRT rejected {name} shape {tuple(t.shape)} (profile {self.profile})")
            got = tuple(ctx.get_tensor_shape(ONNX_OUTPUT))
            if got != tuple(out.shape):
                raise RuntimeError(f"TensorRT output shape {got} != expected {tuple(out.shape)}")
            for name, t in feeds.items():
                ctx.set_tensor_address(name, t.data_ptr())
            ctx.set_tensor_address(ONNX_OUTPUT, out.data_ptr())
            # Same stream as torch: x is ready before TensorRT reads it and out is safe to use after, with no sync.
            if not ctx.execute_async_v3(torch.cuda.current_stream(self.device).cuda_stream):
                raise RuntimeError("TensorRT execution failed (see the TensorRT log)")
        return out

    def close(self) -> None:
        self.context = self._guided = None  # contexts before engines before runtimes
        self.engine = None
        self.runtime = None
