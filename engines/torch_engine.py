"""PyTorch engine: eager inference on CPU (channels-last, inference mode) or CUDA (fp16 autocast)."""

from __future__ import annotations

import torch
from torch import nn

from filmcolor.cpu import torch_threads
from filmcolor.models import ModelConfig

from .base import Engine, EngineClosed, no_cuda_reason


class TorchEngine(Engine):
    """Eager PyTorch. On the CPU the model runs on ``threads`` torch threads, set around each ``infer``
    (torch's pool is process-wide, and the colorizer's stream does its own small ops on one thread)."""

    name = "torch"

    def __init__(self, model: nn.Module, config: ModelConfig, **options) -> None:
        super().__init__(model, config, **options)
        self.model = model.to(self.device).eval().to(memory_format=torch.channels_last)

    @classmethod
    def probe(cls, device: str) -> str | None:
        if device.startswith("cuda") and not torch.cuda.is_available():
            return no_cuda_reason()
        if not device.startswith(("cuda", "cpu")):
            return f"unsupported device {device!r} (cpu or cuda)"
        return None

    def infer(self, L: torch.Tensor, guidance: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        if self.model is None:
            raise EngineClosed(self.name)
        self._check_guidance(guidance)
        cl = torch.channels_last
        x = L.to(self.device, non_blocking=True).contiguous(memory_format=cl)
        extra = () if guidance is None else tuple(t.to(self.device, torch.float32).contiguous(memory_format=cl) for t in guidance)
        with (torch_threads(self.threads if self.device.type == "cpu" else None), torch.inference_mode(),
              torch.autocast(self.device.type, dtype=torch.float16, enabled=self.fp16)):
            return self.model(x, *extra).float().contiguous()

    def close(self) -> None:
        self.model = None  # type: ignore[assignment]
