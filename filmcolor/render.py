"""Render size: where the model runs. The short side becomes ``render_size`` (a multiple of 32),
the aspect ratio is kept; a,b come back at the caller's resolution."""

from __future__ import annotations

import torch
import torch.nn.functional as F

DEFAULT_RENDER_SIZE = 256


def render_shape(height: int, width: int, render_size: int, multiple: int = 32) -> tuple[int, int]:
    """(h, w) at render size: short side ``render_size``, both sides rounded to ``multiple`` (>= multiple)."""
    if render_size < multiple:
        raise ValueError(f"render size must be at least {multiple}, got {render_size}")
    scale = render_size / min(height, width)

    def snap(v: float) -> int:
        return max(multiple, int(round(v / multiple)) * multiple)

    return snap(height * scale), snap(width * scale)


def resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Area-averaging when shrinking, bilinear when enlarging; ``x`` is ``[N,C,H,W]`` float."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    if size[0] <= x.shape[-2] and size[1] <= x.shape[-1]:
        return F.interpolate(x, size=size, mode="area")
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)
