"""The engine interface: ``infer(L[N,1,H,W]) -> ab[N,2,H,W]``, Lab units, torch tensors on ``device``.

Smoothing and colour conversion stay outside engines; the model runs on the whole render-size frame. Engines take a loaded generator
(``torch.nn.Module`` + :class:`~filmcolor.models.ModelConfig`) and run it however they run it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from filmcolor.cpu import cpu_count
from filmcolor.errors import EnvironmentFailure
from filmcolor.models import ModelConfig


@dataclass(frozen=True)
class Capabilities:
    """What the pipeline needs to know to feed an engine well."""

    device: str               # "cpu" or "cuda[:i]": where infer() wants its input and returns output
    fp16: bool                # runs in half precision
    dynamic_shapes: bool      # accepts any H, W (multiples of the model's size multiple)
    preferred_batch: int      # frames per infer() call that pay off


class EngineUnavailable(EnvironmentFailure, RuntimeError):
    """The engine cannot run here (missing package, no GPU, ...); the message says why and how to fix it.

    The CLI prints it as one line and exits 1 (the machine, not the arguments)."""


class EngineClosed(RuntimeError):
    """``infer`` was called after ``close()``: the same error from every engine."""

    def __init__(self, name: str) -> None:
        super().__init__(f"the {name} engine is closed; create a new one")


class Engine(ABC):
    """Base class of inference engines. Subclasses set ``name`` and implement ``infer`` (and ``probe``).

    The options every engine takes are resolved here, once: ``device`` (None: CUDA when this engine can
    use it, else the CPU; probed, so an unusable device raises :class:`EngineUnavailable` with the reason),
    ``fp16`` (half precision on CUDA; never on the CPU), ``batch`` (frames per ``infer`` call that pay
    off: 8 on CUDA, 1 on the CPU), ``threads`` (CPU threads of the engine's own work: default every CPU
    this process may use) and ``render_sizes`` (the render sizes it will be fed, for engines that build
    per shape). Engine-specific options are keyword arguments of the subclass.
    """

    name: str = "?"

    def __init__(self, model: nn.Module, config: ModelConfig, *, device: str | None = None, fp16: bool | None = None,
                 batch: int | None = None, threads: int | None = None,
                 render_sizes: Sequence[int] | None = None) -> None:
        self.config = config
        self.size_multiple = int(getattr(model, "size_multiple", 32))
        self.accepts_guidance = getattr(model, "guide", None) is not None  # hint a,b + mask inputs
        self.device = self._resolve_device(device)
        on_cuda = self.device.type == "cuda"
        self.fp16 = on_cuda and (bool(fp16) if fp16 is not None else self._fp16_by_default())
        self.batch = int(batch) if batch else (8 if on_cuda else 1)
        self.threads = int(threads) if threads else cpu_count()
        self.render_sizes = tuple(sorted({int(r) for r in (render_sizes or (config.render_size or 256,))}))

    def _resolve_device(self, device: str | None) -> torch.device:
        if device is None:
            device = "cuda" if self.probe("cuda") is None else "cpu"
        if reason := self.probe(device):
            raise EngineUnavailable(reason)
        dev = torch.device(device)
        if dev.type == "cuda" and dev.index is None:
            dev = torch.device("cuda", torch.cuda.current_device())
        return dev

    def _fp16_by_default(self) -> bool:
        """On CUDA, half precision unless ``fp16=False`` (subclasses may decide otherwise)."""
        return True

    def prepare(self, height: int, width: int) -> None:
        """Get ready for inputs of ``height`` x ``width`` (render size) before frames flow.

        Engines that build per shape (TensorRT) build or load here, never inside :meth:`infer`, so a
        clip never stalls mid-stream; the others need nothing. The colorizer calls it once per clip."""

    @classmethod
    def probe(cls, device: str) -> str | None:
        """None when this engine can run on ``device`` ("cpu" or "cuda") here, else the reason it cannot."""
        return None

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(str(self.device), self.fp16, True, self.batch)

    @abstractmethod
    def infer(self, L: torch.Tensor, guidance: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """L ``[N,1,H,W]`` float32 (0..100) on ``capabilities.device`` -> a,b ``[N,2,H,W]`` float32, same device.

        ``guidance``: ``(hint_ab [N,2,H,W] Lab units, mask [N,1,H,W] 0..1)``, only for engines whose
        ``accepts_guidance`` is true (the model has a guidance branch); None runs the automatic model.
        """

    def _check_guidance(self, guidance) -> None:
        if guidance is not None and not self.accepts_guidance:
            raise ValueError(f"model {self.config.name!r} takes no guidance (it has no guidance inputs)")

    def close(self) -> None:
        """Release sessions, engines, GPU memory. Safe to call twice."""

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def describe(self) -> str:
        caps = self.capabilities
        return f"{self.name} ({caps.device}{', fp16' if caps.fp16 else ''})"


def cuda_available() -> bool:
    return torch.cuda.is_available()


def no_cuda_reason() -> str | None:
    """None when PyTorch sees a CUDA device; else why not, true to this build of torch (CPU or CUDA)."""
    if torch.cuda.is_available():
        return None
    if torch.version.cuda is None:
        return f"this PyTorch ({torch.__version__}) is a CPU build: install a CUDA build of torch to use an NVIDIA GPU"
    return (f"this PyTorch is a CUDA {torch.version.cuda} build, but it sees no NVIDIA GPU here "
            f"(no device, or no driver)")
