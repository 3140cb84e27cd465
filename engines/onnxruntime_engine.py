"""ONNX Runtime engine: the generator exported once to the cache, run on CPU or (onnxruntime-gpu) CUDA/TensorRT.

CPU: thread settings for a pipeline whose decode/encode threads share the cores (one intra-op pool,
no inter-op pool, sequential execution, no spin-waiting by default); the input is handed over as a
numpy view of the torch tensor and the output comes back as a torch view of ORT's array: no copies.
CUDA: inputs and outputs are bound with io_binding to torch CUDA tensors' memory: no host round trip.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from pathlib import Path
from types import ModuleType
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from filmcolor.models import ModelConfig

from .base import Engine, EngineClosed, EngineUnavailable, no_cuda_reason
from .export import DEFAULT_OPSET, ONNX_GUIDANCE, ONNX_INPUT, ONNX_OUTPUT, ensure_onnx
from .trt_cache import DEFAULT_ASPECTS, cache_root, profile_shapes

CPU_EP, CUDA_EP, TRT_EP = "CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider"


def _install_hint() -> str:
    from .registry import BUILTIN_ENGINES

    return BUILTIN_ENGINES["onnxruntime"].install_hint


def _import_ort() -> ModuleType:
    """``onnxruntime``, or :class:`EngineUnavailable` with the install hint."""
    try:
        return importlib.import_module("onnxruntime")
    except ImportError as exc:
        raise EngineUnavailable(f"engine 'onnxruntime' needs the onnxruntime package: {_install_hint()}") from exc


def _shape_str(shape: tuple[int, ...]) -> str:
    return f"{ONNX_INPUT}:" + "x".join(str(int(d)) for d in shape)


class OnnxRuntimeEngine(Engine):
    """ONNX Runtime inference of an exported generator (see the module docstring)."""

    name = "onnxruntime"

    def __init__(self, model: nn.Module, config: ModelConfig, *, spin: bool = False, tensorrt: bool | None = None,
                 cache_dir: str | os.PathLike | None = None, onnx_path: str | os.PathLike | None = None,
                 opset: int = DEFAULT_OPSET, **options: Any) -> None:
        """Common options (device, fp16, batch, threads, render_sizes): see :class:`~.base.Engine`;
        ``threads`` are ORT's intra-op threads, ``render_sizes`` the TensorRT EP's profile (without them it
        builds for the shapes it meets, caching each engine). ``spin``: let idle ORT threads spin-wait
        (~5-20% faster alone, but steals CPU from decode/encode threads in a pipeline). ``tensorrt``: on
        CUDA, put ORT's TensorRT execution provider first (default: when available). ``onnx_path``: use
        this file, not the cache."""
        self._tensorrt = tensorrt
        super().__init__(model, config, **options)
        on_cuda = self.device.type == "cuda"
        dtype = torch.float16 if (self.fp16 and not self._use_trt) else torch.float32
        self.onnx_path = Path(onnx_path) if onnx_path else ensure_onnx(model, config, opset=opset, dtype=dtype,
                                                                      cache_dir=cache_dir)
        self._model, self._export_args = model, dict(opset=opset, dtype=dtype, cache_dir=cache_dir)
        self._guided_session = None  # made on the first guided call: the guided graph is a file of its own
        self._session_args = (self.render_sizes if options.get("render_sizes") else None, cache_dir, spin)
        self.session = self._new_session(self.onnx_path)
        active = self.session.get_providers()
        if on_cuda and CUDA_EP not in active and TRT_EP not in active:
            raise EngineUnavailable(f"onnxruntime could not start CUDA (providers in use: {active})")
        self.providers = active

    @property
    def _use_trt(self) -> bool:
        """ORT's TensorRT EP goes first: on CUDA, when this onnxruntime has it and (by default) tensorrt is installed."""
        if self.device.type != "cuda" or TRT_EP not in _import_ort().get_available_providers():
            return False
        return self._tensorrt if self._tensorrt is not None else importlib.util.find_spec("tensorrt") is not None

    def _fp16_by_default(self) -> bool:
        # the TensorRT EP picks fp16 kernels where they pay off; with the CUDA EP alone, fp16 means a graph
        # that computes in half precision (explicit opt-in, fp32 by default)
        return self._use_trt

    def _new_session(self, path: Path, guided: bool = False):
        """An ONNX Runtime session for ``path`` with this engine's threads, providers and CPU settings.

        The explicit TensorRT profile names only ``L``; a guided graph lets the EP build per shape."""
        ort = _import_ort()
        render_sizes, cache_dir, spin = self._session_args
        render_sizes = None if guided else render_sizes
        on_cuda, use_trt = self.device.type == "cuda", self._use_trt
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
        # Flush denormals to zero: a trained model's attention softmax is full of them (exp of large
        # negative scores), and x86 handles them in microcode: the attention matmul of the default model
        # took 12 ms instead of 0.3 ms at 256x448. Values below 1.2e-38 cannot change a colour.
        opts.add_session_config_entry("session.set_denormal_as_zero", "1")
        opts.log_severity_level = 3  # errors only
        providers: list[Any] = [CPU_EP]
        if on_cuda:
            idx = self.device.index
            providers = [(CUDA_EP, {"device_id": idx}), CPU_EP]
            if use_trt:
                providers.insert(0, (TRT_EP, self._trt_options(render_sizes, cache_dir)))
        return ort.InferenceSession(str(path), sess_options=opts, providers=providers)

    def _trt_options(self, render_sizes: Sequence[int] | None, cache_dir: str | os.PathLike | None) -> dict[str, Any]:
        """TensorRT EP options: fp16, engine + timing caches in our cache folder, an explicit profile on request."""
        folder = cache_root(cache_dir) / "ort-tensorrt"
        folder.mkdir(parents=True, exist_ok=True)
        options: dict[str, Any] = {
            "device_id": self.device.index,
            "trt_fp16_enable": bool(self.fp16),
            "trt_engine_cache_enable": True,
            "trt_engine_cache_path": str(folder),
            "trt_timing_cache_enable": True,
            "trt_timing_cache_path": str(folder),
        }
        if render_sizes:
            lo, opt, hi = profile_shapes(list(render_sizes), DEFAULT_ASPECTS, max_batch=self.batch,
                                         multiple=self.size_multiple)
            options.update(trt_profile_min_shapes=_shape_str(lo), trt_profile_opt_shapes=_shape_str(opt),
                           trt_profile_max_shapes=_shape_str(hi))
        return options

    @classmethod
    def probe(cls, device: str) -> str | None:
        try:
            ort = _import_ort()
        except EngineUnavailable as exc:
            return str(exc)
        if device.startswith("cuda"):
            if CUDA_EP not in ort.get_available_providers():
                return ("this onnxruntime has no CUDAExecutionProvider (CPU build): "
                        "pip install 'filmcolor[onnx-gpu]' (onnxruntime-gpu) for CUDA")
            if not torch.cuda.is_available():
                return no_cuda_reason()
        elif device != "cpu":
            return f"unsupported device {device!r} (cpu or cuda)"
        return None

    def describe(self) -> str:
        ep = self.providers[0].replace("ExecutionProvider", "") if getattr(self, "providers", None) else "?"
        extra = f", {self.threads} threads" if self.device.type == "cpu" else ""
        return f"{self.name}/{ep} ({self.device}{', fp16' if self.fp16 else ''}{extra})"

    def _session_for(self, guidance):
        if self.session is None:
            raise EngineClosed(self.name)
        if guidance is None:
            return self.session
        self._check_guidance(guidance)
        if self._guided_session is None:
            self._guided_session = self._new_session(self._guided_graph(), guided=True)
        return self._guided_session

    def _guided_graph(self) -> Path:
        """The graph with guidance inputs (L, hint a,b, mask): a file of its own, exported on first use."""
        return ensure_onnx(self._model, self.config, guided=True, **self._export_args)

    def infer(self, L: torch.Tensor, guidance: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        session = self._session_for(guidance)
        if L.dim() != 4 or L.shape[1] != 1:
            raise ValueError(f"L must be [N,1,H,W], got {tuple(L.shape)}")
        inputs = (L,) if guidance is None else (L, *guidance)
        if self.device.type == "cuda":
            return self._infer_cuda(session, inputs)
        # .contiguous() is a no-op (same memory) for contiguous CPU float32 tensors
        feed = {name: x.detach().to("cpu", torch.float32).contiguous().numpy()
                for name, x in zip((ONNX_INPUT, *ONNX_GUIDANCE), inputs)}
        out = session.run([ONNX_OUTPUT], feed)[0]
        return torch.from_numpy(out)  # shares ORT's output array

    def _infer_cuda(self, session, inputs: tuple[torch.Tensor, ...]) -> torch.Tensor:
        xs = [t.detach().to(self.device, torch.float32).contiguous() for t in inputs]
        n, _, h, w = xs[0].shape
        out = torch.empty((n, 2, h, w), device=self.device, dtype=torch.float32)
        binding = session.io_binding()
        idx = self.device.index
        for name, x in zip((ONNX_INPUT, *ONNX_GUIDANCE), xs):
            binding.bind_input(name, "cuda", idx, np.float32, tuple(x.shape), x.data_ptr())
        binding.bind_output(ONNX_OUTPUT, "cuda", idx, np.float32, tuple(out.shape), out.data_ptr())
        # ORT runs on its own CUDA stream: torch's pending work on x must be done before it reads.
        torch.cuda.current_stream(self.device).synchronize()
        session.run_with_iobinding(binding)
        binding.synchronize_outputs()
        return out

    def close(self) -> None:
        self.session = self._guided_session = None  # type: ignore[assignment]


class OnnxRuntimeInt8Engine(OnnxRuntimeEngine):
    """ONNX Runtime on the CPU with the int8 (QDQ) graph of the model: ~1.4x faster than float32 there.

    Calibrated on the packaged frames, or on ``calibration`` (a clip of the footage to be coloured);
    guided frames run the float32 guided graph unless ``quantize_guidance``.
    Its a,b differ from float32 by about one Lab unit (see ``engines/quantize.py``), which did not cost
    colour on val or the sample clips, so the automatic choice takes it first on the CPU (see
    ``registry.AUTO_ORDER``). The first use quantises (seconds; cached).
    """

    name = "onnxruntime-int8"

    def __init__(self, model: nn.Module, config: ModelConfig, *, device: str | None = None,
                 calibration: str | os.PathLike | None = None, cache_dir: str | os.PathLike | None = None,
                 opset: int = DEFAULT_OPSET, quantize_guidance: bool = False, **options: Any) -> None:
        """``quantize_guidance``: run guided frames on an int8 guided graph too. Off by default: it cost
        hints half their effect (val, 50 images, 2 points: +0.13 dB against +0.26 in float32), so guided
        frames (hints, references) run the float32 guided graph and the rest int8."""
        from .quantize import Calibration, ensure_int8

        self._quantize_guidance = quantize_guidance

        reason = self.probe(device or "cpu")
        if reason:  # before exporting and quantising: the probe also checks onnxruntime is installed
            raise EngineUnavailable(reason)
        fp32 = ensure_onnx(model, config, opset=opset, cache_dir=cache_dir)
        self._calibration = Calibration(calibration)   # decoded only if the int8 graph must be built
        int8 = ensure_int8(fp32, self._calibration)
        super().__init__(model, config, device="cpu", cache_dir=cache_dir, onnx_path=int8, opset=opset, **options)

    def _guided_graph(self) -> Path:
        """The float32 guided graph, or with ``quantize_guidance`` its int8 version, calibrated on the same
        frames with and without synthetic hints."""
        if not self._quantize_guidance:
            return super()._guided_graph()
        from .quantize import ensure_int8

        return ensure_int8(super()._guided_graph(), self._calibration, guided=True)

    @classmethod
    def probe(cls, device: str) -> str | None:
        if device != "cpu":
            return "int8 is for CPUs; on a GPU use the tensorrt engine (fp16) or onnxruntime"
        return super().probe(device)
