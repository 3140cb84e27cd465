"""Pack a training folder small enough to travel: every colour image resized and re-encoded as WebP in a tar.

A GPU machine gets only tens of MiB with the code (9,745 photos at short side 176, WebP quality 60: about
42 MB, mean a,b error 1.5 Lab units against the full-quality resize). Grey and unreadable files are left out,
as :class:`.data.LabImages` would skip them; the folder layout is kept. Load on the other side with
``tar xf pack.tar -C dir`` and ``LabImages(dir, short_side=None)``.

    python -m filmcolor.train.pack ../shared/data/train pack.tar --short-side 176 --quality 60
"""

from __future__ import annotations

import argparse
import io
import tarfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from ..fs import atomic_write, find_images
from .data import is_grey


def encode(path: Path, short_side: int, quality: int) -> bytes | None:
    """One image -> WebP bytes at ``short_side`` (never enlarged); None if grey or unreadable."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None or is_grey(bgr):
        return None
    h, w = bgr.shape[:2]
    s = short_side / min(h, w)
    if s < 1:
        bgr = cv2.resize(bgr, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".webp", bgr, [cv2.IMWRITE_WEBP_QUALITY, int(quality)])
    return np.asarray(buf).tobytes() if ok else None


def pack(src: str | Path, dst: str | Path, *, short_side: int = 176, quality: int = 60, workers: int = 4) -> dict:
    """Write the tar ``dst`` (atomically) from the images under ``src``; returns counts and bytes."""
    root = Path(src)
    paths = find_images(root)
    kept = 0

    def write(tmp: Path) -> None:
        nonlocal kept
        with tarfile.open(tmp, "w") as tar, ThreadPoolExecutor(workers) as pool:
            for path, data in zip(paths, pool.map(lambda p: encode(p, short_side, quality), paths)):
                if data is None:
                    continue
                info = tarfile.TarInfo(path.relative_to(root).with_suffix(".webp").as_posix())
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
                kept += 1

    atomic_write(dst, write)
    return {"images": kept, "skipped": len(paths) - kept, "bytes": Path(dst).stat().st_size}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--short-side", type=int, default=176)
    ap.add_argument("--quality", type=int, default=60)
    ap.add_argument("--workers", type=int, default=4)
    a = ap.parse_args(argv)
    print(pack(a.src, a.dst, short_side=a.short_side, quality=a.quality, workers=a.workers))


if __name__ == "__main__":
    main()
