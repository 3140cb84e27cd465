"""BatchStream: a producer thread that dies ends iteration with an error instead of a hang."""

from __future__ import annotations

import threading

import pytest

from filmcolor.train.data import BatchStream


class Broken:
    def __len__(self) -> int:
        raise OSError("images folder vanished")


def test_next_raises_when_the_producer_thread_died():
    stream = BatchStream(Broken(), batch_size=2, size=32, seed=0)  # type: ignore[arg-type]
    outcome: list = []

    def take() -> None:
        with pytest.raises(RuntimeError, match="batch producer failed") as info:
            next(stream)
        assert isinstance(info.value.__cause__, OSError)  # the producer's own error, chained
        outcome.append("raised")

    t = threading.Thread(target=take, daemon=True)
    t.start()
    t.join(10)
    assert outcome == ["raised"]


def test_guidance_shares_decide_which_samples_carry_hints():
    import numpy as np

    from filmcolor.train.hints import guidance_modes

    class Flat:
        images = [np.full((48, 48, 3), (120, 150, 100), np.uint8)]

        def __len__(self) -> int:
            return 1

    def kinds(modes: dict[str, float]) -> set[str]:
        stream = BatchStream(Flat(), batch_size=8, size=32, seed=0, guidance=True, modes=modes)  # type: ignore[arg-type]
        try:
            found = set()
            for k in range(6):
                _, _, _, mask = stream.make_batch(k)
                for m in mask[:, 0]:
                    share = float((m > 0).float().mean())
                    found.add("none" if share == 0 else "points" if share < 0.2 else "dense")
            return found
        finally:
            stream.close()

    assert guidance_modes(0.0) == {"none": 0.8, "points": 0.0, "dense": 0.2}
    assert kinds(guidance_modes(0.0)) == {"none", "dense"}                # no point hints at all
    assert kinds(guidance_modes(0.35)) == {"none", "points", "dense"}
    with pytest.raises(ValueError, match="sum to at most 1"):
        guidance_modes(0.9)


def test_worker_processes_yield_the_threads_batches_in_order():
    """workers > 0 (DataLoader processes, for a GPU) changes who makes the batches, not which: a run is
    reproducible and resumable whichever way it was fed."""
    import numpy as np
    import torch

    class Noise:
        images = [np.random.default_rng(i).integers(0, 255, (40, 56, 3), dtype=np.uint8) for i in range(5)]

        def __len__(self) -> int:
            return 5

    def first(workers: int, start: int) -> list:
        stream = BatchStream(Noise(), batch_size=3, size=32, seed=7, start=start, degrade=0.5, guidance=True,
                             workers=workers)  # type: ignore[arg-type]
        try:
            return [next(stream) for _ in range(3)]
        finally:
            stream.close()

    for start in (0, 4):
        thread, procs = first(0, start), first(2, start)
        for a, b in zip(thread, procs):
            for x, y in zip(a, b):
                assert torch.equal(x, y)
    assert not torch.equal(first(0, 0)[0][0], first(0, 4)[0][0])


def test_worker_processes_start_after_opencv_threads_ran_in_the_parent():
    """Regression: forked workers hung when the parent's OpenCV thread pool had run before (CI, 2 cores,
    after the pipeline tests) and each worker set OpenCV to one thread. Run in a fresh process, bounded."""
    import subprocess
    import sys

    script = """
import cv2, numpy as np
a = np.random.rand(1500, 1500).astype(np.float32)
for _ in range(3):
    cv2.GaussianBlur(a, (31, 31), 5); cv2.resize(a, (2000, 2000))   # the parent's pool runs
from filmcolor.train.data import BatchStream
class Noise:
    images = [np.random.default_rng(i).integers(0, 255, (40, 56, 3), dtype=np.uint8) for i in range(5)]
    def __len__(self): return 5
s = BatchStream(Noise(), batch_size=3, size=32, seed=7, degrade=0.5, guidance=True, workers=2)
print([tuple(next(s)[0].shape) for _ in range(3)][-1])
s.close()
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "(3, 1, 32, 32)"
