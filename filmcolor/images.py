"""Stills: colorize one image file (PNG/TIFF/JPEG/...), keeping its format and bit depth."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import torch

from .color import grey_to_lab_l, lab_to_rgb, rgb_to_lab
from .colorizer import Colorizer
from .render import render_shape, resize
from .video.chroma import fast_guided_upsample
from .video.formats import FormatError


def colorize_array(colorizer: Colorizer, image: np.ndarray) -> np.ndarray:
    """Colorize a grey or colour image ``[H,W]`` / ``[H,W,3]`` (RGB order; uint8 or uint16) -> RGB, same dtype.

    The result keeps the input's Lab L exactly (up to rounding); a,b come from the model at render size,
    upsampled with a guided filter on L.
    """
    scale = 65535.0 if image.dtype == np.uint16 else 255.0
    v = torch.from_numpy(image.astype(np.float32) / scale)
    if v.ndim == 2:
        L = grey_to_lab_l(v)[None, None]
    else:
        L = rgb_to_lab(v.permute(2, 0, 1)[None])[:, :1]
    h, w = L.shape[-2:]
    L_lo = resize(L, render_shape(h, w, colorizer.render_size, colorizer.engine.size_multiple))
    with torch.inference_mode():
        ab_lo = colorizer.infer_L(L_lo).cpu()
        ab = fast_guided_upsample(ab_lo, L_lo / 100, L / 100)
        rgb = lab_to_rgb(torch.cat((L, ab), 1))[0].permute(1, 2, 0).numpy()
    return np.round(rgb * scale).astype(image.dtype)


def colorize_image_file(colorizer: Colorizer, src: str | Path, dst: str | Path, *, overwrite: bool = False) -> dict:
    """Read ``src``, colorize, write ``dst`` (format from its extension) atomically."""
    src, dst = Path(src), Path(dst)
    if not src.exists():
        raise FormatError(f"input {str(src)!r} does not exist")
    if dst.exists() and not overwrite:
        raise FormatError(f"output {str(dst)!r} exists; pass --overwrite to replace it")
    if dst.exists() and dst.resolve() == src.resolve():
        raise FormatError("output is the same file as the input; choose another output path")
    if not dst.parent.exists():
        raise FormatError(f"output folder {str(dst.parent)!r} does not exist")
    try:
        raw = cv2.imread(str(src), cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:  # e.g. a header claiming more pixels than CV_IO_MAX_IMAGE_PIXELS (a decompression bomb)
        raise FormatError(f"{str(src)!r} cannot be decoded by OpenCV (a header over its pixel limit?): "
                          f"{str(exc).strip().splitlines()[-1]}") from None
    if raw is None:
        raise FormatError(f"{str(src)!r} is not an image OpenCV can read")
    if raw.ndim == 3:
        raw = cv2.cvtColor(raw[..., :3], cv2.COLOR_BGR2RGB)
    out = colorize_array(colorizer, raw)
    tmp = dst.with_name(f".{dst.stem}.filmcolor-partial-{os.getpid()}{dst.suffix}")
    try:
        ok, data = cv2.imencode(dst.suffix.lower(), cv2.cvtColor(out, cv2.COLOR_RGB2BGR))
        if not ok:
            raise FormatError(f"cannot write {dst.suffix!r} images")
        with open(tmp, "wb") as f:  # OSError (disk full, permission) reaches the CLI as itself: exit 1
            f.write(data.tobytes())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)
    return {"input": str(src), "output": str(dst), "frames": 1, "width": raw.shape[1], "height": raw.shape[0]}
