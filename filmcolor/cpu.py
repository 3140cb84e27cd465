"""CPU counts and torch's thread settings, scoped to a block (engines, the colorizer's stream, the smoother)."""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Callable, Iterator


def cpu_count() -> int:
    """CPUs this process may run on (the affinity mask, which honours container limits; else ``os.cpu_count()``)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """torch's intra-op threads set to ``n`` for the block (None: unchanged), then restored.

    The stream's tensor work (L lookup, flow warps, smoothing, chroma finish) is many small ops; split over
    both cores they wait for a core that the decoder, x264 or the engine's own pool holds, and OpenMP's
    spin-waiting burns it. One thread made a 720p colorize run 3.8x faster on 2 busy cores (whole process,
    paired runs); ONNX Runtime keeps its own pool, and the torch engine sets its own threads around each ``infer``.
    """
    import torch  # here, so that cpu_count stays torch-free for the CLI

    with _scoped(torch.get_num_threads, torch.set_num_threads, n):
        yield


@contextmanager
def opencv_threads(n: int | None) -> Iterator[None]:
    """OpenCV's thread count set to ``n`` for the block (None: unchanged), then restored (process-wide).

    The streaming runners use 1 on a CPU: their resizes, warps, flow and chroma finish are small
    OpenCV calls from two threads of our own beside x264's and the engine's, and splitting each over both
    cores costs more in hand-offs than it gains (the chroma finish: 4.5 ms of CPU a 720p frame on one
    thread, 5.6 on two, for no less wall time; a whole 720p colorize run 2% faster, paired runs)."""
    import cv2  # here, so that importing this module stays cheap

    with _scoped(cv2.getNumThreads, cv2.setNumThreads, n):
        yield


@contextmanager
def _scoped(get: Callable[[], int], set_: Callable[[int], None], n: int | None) -> Iterator[None]:
    """A library's thread count ``set_(n)`` for the block (None, or already ``n``: untouched), then restored."""
    if n is None or get() == n:
        yield
        return
    old = get()
    set_(n)
    try:
        yield
    finally:
        set_(old)
