"""PyTorch engine: eager inference on CPU (channels-last, inference mode) or CUDA (fp16 autocast)."""

from __future__ import annotations

import torch
from torch import nn

from filmcolor.models import ModelConfig

from .base import Capabilities, Engine, EngineClosed, EngineUnavailable, no_cuda_reason


class TorchEngine(Engine):
    name = "torch"

    def __init__(self, model: nn.Module, config: ModelConfig, *, device: str | None = None, fp16: bool | None = None,
                 batch: int | None = None, threads: int | None = None) -> None:
        """``threads``: torch intra-op threads on the CPU (process-wide; None leaves torch's setting)."""
        super().__init__(model, config)
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        reason = self.probe(device)
        if reason:
            raise EngineUnavailable(reason)
        self.device = torch.device(device)
        if threads and self.device.type == "cpu":
            torch.set_num_threads(int(threads))
        self.fp16 = self.device.type == "cuda" if fp16 is None else bool(fp16 and self.device.type == "cuda")
        self.batch = batch or (8 if self.device.type == "cuda" else 1)
        self.model = model.to(self.device).eval().to(memory_format=torch.channels_last)

    @classmethod
    def probe(cls, device: str) -> str | None:
        if device.startswith("cuda") and not torch.cuda.is_available():
            return no_cuda_reason()
        return None

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(str(self.device), self.fp16, True, self.batch)

    def infer(self, L: torch.Tensor, guidance: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        if self.model is None:
            raise EngineClosed(self.name)
        self._check_guidance(guidance)
        cl = torch.channels_last
        x = L.to(self.device, non_blocking=True).contiguous(memory_format=cl)
        extra = () if guidance is None else tuple(t.to(self.device, torch.float32).contiguous(memory_format=cl) for t in guidance)
        with torch.inference_mode(), torch.autocast(self.device.type, dtype=torch.float16, enabled=self.fp16):
            return self.model(x, *extra).float().contiguous()

    def close(self) -> None:
        self.model = None  # type: ignore[assignment]
