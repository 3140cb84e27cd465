"""Stills: colorize one image file (PNG/TIFF/JPEG/...), keeping its format and bit depth."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from .colorizer import ChromaStream, Colorizer
from .fs import atomic_write, check_output
from .inference import Predictor
from .video.formats import FormatError, choose_matrix
from .video.rgb import layout_444, rgb_to_luma, ycbcr_planes_to_rgb


def colorize_array(colorizer: Colorizer | Predictor, image: np.ndarray) -> np.ndarray:
    """Colorize a grey or colour image ``[H,W]`` / ``[H,W,3]`` (RGB order; uint8 or uint16) -> RGB, same dtype.

    The same path as a video frame: the picture's Y' (its grey values, or luma from RGB with the matrix
    the file pipeline would pick for its height) is kept; Cb, Cr come from the inference path at full
    resolution (a 4:4:4 full-range layout of the image's depth), then R'G'B' from (Y', Cb, Cr).
    """
    if image.dtype not in (np.uint8, np.uint16):
        raise FormatError(f"images must be 8- or 16-bit, got {image.dtype}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
        raise FormatError(f"expected a grey [H,W] or RGB [H,W,3] image, got shape {image.shape}")
    predictor = colorizer if isinstance(colorizer, Predictor) else colorizer.predictor
    bits = 8 if image.dtype == np.uint8 else 16
    h, w = image.shape[:2]
    matrix = choose_matrix(None, h)
    layout = layout_444(bits, full_range=True)
    y = np.ascontiguousarray(image) if image.ndim == 2 else rgb_to_luma(image, matrix, bits, True)
    stream = ChromaStream(predictor, w, h, layout, matrix)
    ((_, cb, cr),) = stream.push(y) + stream.flush()
    return ycbcr_planes_to_rgb(y, cb, cr, layout, matrix, dtype=image.dtype)


def read_image(path: str | Path) -> np.ndarray:
    """An image file as ``colorize`` reads it: grey ``[H,W]`` or RGB ``[H,W,3]``, its own depth (alpha dropped)."""
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None:
        raise FormatError(f"{str(path)!r} is not an image OpenCV can read")
    if raw.ndim == 3 and raw.shape[2] == 1:
        raw = raw[..., 0]
    if raw.ndim == 3:
        raw = cv2.cvtColor(raw[..., :3], cv2.COLOR_BGR2RGB)
    return raw


def encode_image(image: np.ndarray, suffix: str) -> bytes:
    """RGB (or grey) array -> the bytes ``colorize`` writes for a file ending in ``suffix``."""
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if image.ndim == 3 else image
    try:
        ok, buf = cv2.imencode(suffix, bgr)
    except cv2.error:
        ok = False
    if not ok:
        raise FormatError(f"cannot write {suffix!r} images")
    return buf.tobytes()


def colorize_image_file(colorizer: Colorizer, src: str | Path, dst: str | Path, *, overwrite: bool = False) -> dict:
    """Read ``src``, colorize, write ``dst`` (format from its extension) atomically."""
    src, dst = Path(src), Path(dst)
    if not src.exists():
        raise FormatError(f"input {str(src)!r} does not exist")
    check_output(dst, overwrite, src)
    raw = read_image(src)
    data = encode_image(colorize_array(colorizer, raw), dst.suffix)
    atomic_write(dst, lambda tmp: tmp.write_bytes(data))
    return {"input": str(src), "output": str(dst), "frames": 1, "width": raw.shape[1], "height": raw.shape[0]}
