"""Model-only timing of an inference engine: milliseconds per frame at a few render sizes.

Times ``engine.infer`` alone (no decode, resize, smoothing or encode) on random L at the shape the
pipeline feeds for a 16:9 frame at each render size. Warm-up calls (first-call allocation, kernel
selection, lazy engine builds) are excluded; the median per-call time is reported, which is robust to
the odd slow call on a shared machine. On CUDA each timed call ends with a synchronize, so
asynchronous engines are charged for their GPU time.
"""

from __future__ import annotations

import math
import statistics
import time
from typing import Any, NamedTuple

import torch

from .render import render_shape


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class _Setup(NamedTuple):
    name: str
    engine: Any
    device: torch.device
    batch: int
    calls: int


def bench_engine(engine: Any, render_sizes: tuple[int, ...] = (192, 256, 320), frames: int = 20,
                 batch: int | None = None, *, warmup: int = 2, aspect: tuple[int, int] = (16, 9),
                 seed: int = 0) -> list[dict]:
    """One row per render size: ``ms_per_frame`` (median call time / batch), ``fps`` and the details.

    ``engine``: a :class:`filmcolor.engines.Engine`. ``frames``: frames timed per size (rounded up to
    whole batches). ``batch``: frames per call (default: the engine's preferred batch).
    """
    name = getattr(engine, "name", type(engine).__name__)
    return bench_engines({name: engine}, render_sizes, frames, batch, warmup=warmup, aspect=aspect, seed=seed)


def bench_engines(engines: dict[str, Any], render_sizes: tuple[int, ...] = (192, 256, 320), frames: int = 20,
                  batch: int | None = None, *, warmup: int = 2, aspect: tuple[int, int] = (16, 9),
                  seed: int = 0) -> list[dict]:
    """``bench_engine`` for several engines at once (by name), their calls interleaved round by round.

    On a shared or throttling machine the speed drifts by tens of percent within a minute; timing the
    engines in turn, call by call, lets each see the same conditions, so their ratios hold.
    """
    setups = []
    for name, engine in engines.items():
        caps = engine.capabilities
        b = max(1, int(batch or caps.preferred_batch or 1))
        setups.append(_Setup(name, engine, torch.device(caps.device), b, max(1, math.ceil(frames / b))))
    rows = []
    for size in render_sizes:
        g = torch.Generator().manual_seed(seed)
        inputs, times = [], []
        for _, engine, device, b, _ in setups:
            h, w = render_shape(aspect[1], aspect[0], int(size), int(getattr(engine, "size_multiple", 32)))
            inputs.append((torch.rand(b, 1, h, w, generator=g) * 100.0).to(device))
            for _ in range(max(0, warmup)):
                engine.infer(inputs[-1])
            _sync(device)
            times.append([])
        for i in range(max(s.calls for s in setups)):
            for (_, engine, device, _, calls), L, t in zip(setups, inputs, times):
                if i < calls:
                    t0 = time.perf_counter()
                    engine.infer(L)
                    _sync(device)
                    t.append((time.perf_counter() - t0) * 1000.0)
        for (name, engine, device, b, calls), L, t in zip(setups, inputs, times):
            per_call = statistics.median(t)
            rows.append({
                "engine": name,
                "describe": engine.describe() if hasattr(engine, "describe") else str(engine),
                "device": str(device),
                "render_size": int(size),
                "height": int(L.shape[-2]),
                "width": int(L.shape[-1]),
                "batch": b,
                "frames": calls * b,
                "ms_per_call": round(per_call, 3),
                "ms_per_frame": round(per_call / b, 3),
                "ms_per_frame_min": round(min(t) / b, 3),
                "fps": round(1000.0 * b / per_call, 2) if per_call > 0 else float("inf"),
            })
    return rows
