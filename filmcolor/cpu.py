"""CPU thread settings of torch, scoped to a block (shared by the colorizer's stream and the smoother)."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """torch's intra-op threads set to ``n`` for the block (None: unchanged), then restored.

    The stream's tensor work (L lookup, flow warps, smoothing, chroma finish) is many small ops; split over
    both cores they wait for a core that the decoder, x264 or the engine's own pool holds, and OpenMP's
    spin-waiting burns it. One thread made a 720p colorize run 3.8x faster on 2 busy cores (whole process,
    paired runs); ONNX Runtime keeps its own pool, and the torch engine gets its threads back in ``_infer``.
    """
    if n is None or torch.get_num_threads() == n:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)
