"""Training data: colour images held in memory as 8-bit Lab, batches made by a prefetch thread.

Each batch ``k`` is drawn from its own RNG seeded by ``(seed, k)``, so a resumed run sees exactly the
batches an uninterrupted one would.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import torch

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


def find_images(folder: str | Path) -> list[Path]:
    """Every image file under ``folder`` (recursive), sorted for reproducibility."""
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder {str(root)!r} does not exist")
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


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
            raise ValueError(f"no colour images found in {str(folder)!r}")

    def __len__(self) -> int:
        return len(self.images)


def random_crop(lab: np.ndarray, size: int, rng: np.random.Generator, min_scale: float = 0.45) -> np.ndarray:
    """Random-resized square crop (area fraction ``min_scale``..1 of the short side squared) and flip."""
    h, w = lab.shape[:2]
    side = int(min(h, w) * np.sqrt(rng.uniform(min_scale, 1.0)))
    y, x = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
    crop = cv2.resize(lab[y:y + side, x:x + side], (size, size), interpolation=cv2.INTER_AREA)
    return crop[:, ::-1] if rng.random() < 0.5 else crop


class BatchStream:
    """Iterates batches ``(L, ab)`` starting at batch index ``start``; a thread prepares them ahead."""

    def __init__(self, data: LabImages, batch_size: int, size: int, seed: int, start: int = 0, prefetch: int = 4):
        self.data, self.batch_size, self.size, self.seed = data, batch_size, size, seed
        self.next_index = start
        self._queue: queue.Queue = queue.Queue(maxsize=prefetch)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(start,), daemon=True)
        self._thread.start()

    def make_batch(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, k])
        idx = rng.integers(0, len(self.data), self.batch_size)
        lab = np.stack([random_crop(self.data.images[i], self.size, rng) for i in idx])
        return lab8_to_tensors(lab)

    def _run(self, k: int) -> None:
        while not self._stop.is_set():
            batch = self.make_batch(k)
            while not self._stop.is_set():
                try:
                    self._queue.put(batch, timeout=0.2)
                    break
                except queue.Full:
                    continue
            k += 1

    def __next__(self) -> tuple[torch.Tensor, torch.Tensor]:
        while True:  # never wait forever on a producer thread that has died
            try:
                batch = self._queue.get(timeout=0.5)
                break
            except queue.Empty:
                if not self._thread.is_alive():
                    raise RuntimeError("the batch-making thread has stopped (its error is printed above)") from None
        self.next_index += 1
        return batch

    def __iter__(self) -> "BatchStream":
        return self

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def center_crop_multiple(lab: np.ndarray, multiple: int = 32) -> np.ndarray:
    """Crop an image to dimensions divisible by ``multiple`` (validation at native size)."""
    h, w = lab.shape[:2]
    hh, ww = h - h % multiple, w - w % multiple
    y, x = (h - hh) // 2, (w - ww) // 2
    return lab[y:y + hh, x:x + ww]
