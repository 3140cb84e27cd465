"""Training data: colour images held in memory as 8-bit Lab, batches made by a prefetch thread or worker processes.

Each batch ``k`` is drawn from its own RNG seeded by ``(seed, k)``, so a resumed run sees exactly the
batches an uninterrupted one would, and worker processes (``workers`` > 0) yield the same batches as the
thread, in the same order.
"""

from __future__ import annotations

import itertools
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
import torch

from ..errors import FormatError
from ..fs import find_images


def is_grey(bgr: np.ndarray, tolerance: int = 3) -> bool:
    """True when the channels differ nowhere by more than ``tolerance`` codes (a grey photo)."""
    small = cv2.resize(bgr, (64, 64), interpolation=cv2.INTER_AREA).astype(np.int16)
    return int(np.abs(small - small[..., :1]).max()) <= tolerance


def load_lab(path: Path, short_side: int | None = None) -> np.ndarray | None:
    """Image -> 8-bit Lab ``[H,W,3]`` (OpenCV scaling: L*255/100, a+128, b+128); None if grey/unreadable."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None or is_grey(bgr):
        return None
    if short_side is not None:
        h, w = bgr.shape[:2]
        s = short_side / min(h, w)
        if s < 1:
            bgr = cv2.resize(bgr, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2LAB)


def lab8_to_tensors(lab: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """8-bit Lab ``[N,H,W,3]`` -> L ``[N,1,H,W]`` (0..100) and a,b ``[N,2,H,W]`` (Lab units), float32."""
    t = torch.from_numpy(lab).permute(0, 3, 1, 2).float()
    return t[:, :1] * (100.0 / 255.0), t[:, 1:] - 128.0


class LabImages:
    """A folder of colour images decoded once into memory (grey images skipped)."""

    def __init__(self, folder: str | Path, *, short_side: int | None = 256, workers: int = 4) -> None:
        paths = find_images(folder)
        with ThreadPoolExecutor(workers) as pool:
            loaded = list(pool.map(lambda p: load_lab(p, short_side), paths))
        self.paths = [p for p, im in zip(paths, loaded) if im is not None]
        self.images = [im for im in loaded if im is not None]
        self.skipped = len(paths) - len(self.images)
        if not self.images:
            raise FormatError(f"no colour images in {str(folder)!r} (grey or unreadable files only)")

    def __len__(self) -> int:
        return len(self.images)


def random_crop(lab: np.ndarray, size: int, rng: np.random.Generator, min_scale: float = 0.45) -> np.ndarray:
    """Random-resized square crop (area fraction ``min_scale``..1 of the short side squared) and flip."""
    h, w = lab.shape[:2]
    side = int(min(h, w) * np.sqrt(rng.uniform(min_scale, 1.0)))
    y, x = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
    crop = cv2.resize(lab[y:y + side, x:x + side], (size, size), interpolation=cv2.INTER_AREA)
    return crop[:, ::-1] if rng.random() < 0.5 else crop


WORKER_TIMEOUT_S = 300.0  # a worker silent this long raises instead of stalling a run for hours


class BatchStream:
    """Iterates batches ``(L, ab, hint_ab, mask)`` from batch index ``start``, prepared ahead.

    ``degrade``: share of samples whose input L gets archival degradations (:mod:`.degrade`; the target
    a,b stays clean). ``guidance``: simulate user hints and references (:mod:`.hints`) with the shares
    ``modes`` (default :data:`.hints.MODES`); otherwise ``hint_ab`` and ``mask`` are None.
    ``workers``: 0 prepares batches in one thread (enough for 2 CPU cores: about 365 images/s at size 160
    with degradations and guidance); N > 0 in N forked processes through :class:`torch.utils.data.DataLoader`
    (shared-memory tensors, pinned for a GPU), which a GPU needs to be kept fed.
    """

    def __init__(self, data: LabImages, batch_size: int, size: int, seed: int, start: int = 0, prefetch: int = 4,
                 *, degrade: float = 0.0, guidance: bool = False, modes: dict[str, float] | None = None,
                 workers: int = 0, pin_memory: bool = False):
        from .hints import MODES

        self.data, self.batch_size, self.size, self.seed = data, batch_size, size, seed
        self.degrade, self.guidance, self.modes = degrade, guidance, dict(modes or MODES)
        self.next_index = start
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._loader: Iterator | None = None
        if workers > 0:
            self._loader = iter(torch.utils.data.DataLoader(
                _Batches(self), batch_size=None, sampler=itertools.count(start), num_workers=workers,
                prefetch_factor=prefetch, pin_memory=pin_memory, worker_init_fn=_one_thread,
                multiprocessing_context="fork", timeout=WORKER_TIMEOUT_S))
            return
        self._queue: queue.Queue = queue.Queue(maxsize=prefetch)
        self._thread = threading.Thread(target=self._run, args=(start,), daemon=True)
        self._thread.start()

    def make_batch(self, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        from .degrade import degrade
        from .hints import sample_guidance

        rng = np.random.default_rng([self.seed, k])
        idx = rng.integers(0, len(self.data), self.batch_size)
        lab = np.stack([random_crop(self.data.images[i], self.size, rng) for i in idx])
        L, ab = lab8_to_tensors(lab)
        if self.degrade > 0:
            for n in range(len(idx)):
                if rng.random() < self.degrade:
                    L[n, 0] = torch.from_numpy(degrade(L[n, 0].numpy(), rng))
        if not self.guidance:
            return L, ab, None, None
        pairs = [sample_guidance(ab[n].permute(1, 2, 0).numpy(), rng, self.modes) for n in range(len(idx))]
        hint = torch.from_numpy(np.stack([h for h, _ in pairs])).permute(0, 3, 1, 2).contiguous()
        mask = torch.from_numpy(np.stack([m for _, m in pairs]))[:, None]
        return L, ab, hint, mask

    def _run(self, k: int) -> None:
        try:
            self._produce(k)
        except BaseException as exc:  # hand the failure to the consumer instead of leaving it waiting
            self._error = exc
            self._stop.set()

    def _produce(self, k: int) -> None:
        while not self._stop.is_set():
            batch = self.make_batch(k)
            while not self._stop.is_set():
                try:
                    self._queue.put(batch, timeout=0.2)
                    break
                except queue.Full:
                    continue
            k += 1

    def __next__(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        if self._loader is not None:
            batch = next(self._loader)
            self.next_index += 1  # counted once the batch is in hand, as the thread's path does
            return batch
        while True:
            try:
                batch = self._queue.get(timeout=0.5)
                break
            except queue.Empty:
                if self._error is not None:
                    raise RuntimeError("the training batch producer failed") from self._error
                if not self._thread.is_alive():
                    raise RuntimeError("the training batch producer stopped")
        self.next_index += 1
        return batch

    def __iter__(self) -> "BatchStream":
        return self

    def close(self) -> None:
        self._stop.set()
        if self._loader is not None:
            self._loader = None  # the DataLoader iterator's finaliser stops its worker processes
            return
        self._thread.join(timeout=5)


class _Batches(torch.utils.data.Dataset):
    """Batch ``k`` of a :class:`BatchStream` as a dataset item (for the DataLoader's worker processes)."""

    def __init__(self, stream: BatchStream) -> None:
        self.stream = stream

    def __getitem__(self, k: int):
        return self.stream.make_batch(k)


def _one_thread(_worker: int) -> None:
    """Worker processes split the cores between them: one thread each for torch and OpenCV.

    OpenCV gets 0 (run sequentially, no pool), not 1: in a child forked from a parent whose OpenCV pool
    had run, ``setNumThreads(1)`` rebuilds the pool and hangs (seen on 2 cores after other tests ran)."""
    torch.set_num_threads(1)
    cv2.setNumThreads(0)


def center_crop_multiple(lab: np.ndarray, multiple: int = 32) -> np.ndarray:
    """Crop an image to dimensions divisible by ``multiple`` (validation at native size)."""
    h, w = lab.shape[:2]
    hh, ww = h - h % multiple, w - w % multiple
    y, x = (h - hh) // 2, (w - ww) // 2
    return lab[y:y + hh, x:x + ww]
