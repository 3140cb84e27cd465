"""The Python API for scripts and studios: a file, a stream of frames, or one image in a few lines."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from .colorizer import Colorizer, ColorizerOptions
from .images import colorize_array, colorize_image_file
from .video.formats import STILL_SUFFIXES, parse_planar, choose_matrix
from .video.pipeline import EncodeOptions, colorize_video


def colorize(src: str | Path, dst: str | Path, *, colorizer: Colorizer | None = None, overwrite: bool = False,
             encode: EncodeOptions | None = None, start: float | None = None, end: float | None = None,
             progress=None, **options) -> dict:
    """Colorize a video or still ``src`` into ``dst``; ``options`` are :class:`ColorizerOptions` fields."""
    c = colorizer or Colorizer(ColorizerOptions(**options))
    if Path(src).suffix.lower() in STILL_SUFFIXES and Path(dst).suffix.lower() in STILL_SUFFIXES:
        return colorize_image_file(c, src, dst, overwrite=overwrite)
    return colorize_video(src, dst, c, encode=encode, start=start, end=end, overwrite=overwrite, progress=progress)


def colorize_image(image: np.ndarray, *, colorizer: Colorizer | None = None, **options) -> np.ndarray:
    """Colorize one RGB or grey image array (uint8/uint16) -> RGB array of the same dtype."""
    return colorize_array(colorizer or Colorizer(ColorizerOptions(**{"smoothing": "off", **options})), image)


def colorize_frames(frames: Iterable[np.ndarray], *, colorizer: Colorizer | None = None, causal: bool = True,
                    **options) -> Iterator[np.ndarray]:
    """Colorize a stream of grey (``[H,W]``) or BGR-free RGB (``[H,W,3]``) uint8 frames -> RGB uint8 frames.

    Temporal smoothing runs across the stream (causal by default, so a frame is returned as soon as the
    next one arrives); frames must all have the same size.
    """
    import cv2

    c = colorizer or Colorizer(ColorizerOptions(**options))
    layout = parse_planar("yuv444p")
    layout = type(layout)(layout.name, 8, 0, 0, True)
    stream = None
    for frame in frames:
        y = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        if stream is None:
            h, w = y.shape
            matrix = choose_matrix(None, h)
            stream = c.stream(w, h, layout, matrix, causal=causal)
        for yy, cb, cr in stream.push(y, y):
            yield _to_rgb(yy, cb, cr, matrix)
    if stream is not None:
        for yy, cb, cr in stream.flush():
            yield _to_rgb(yy, cb, cr, matrix)


def _to_rgb(y: np.ndarray, cb: np.ndarray, cr: np.ndarray, matrix) -> np.ndarray:
    import torch

    from .color import ycbcr_to_rgb

    yt = torch.from_numpy(y).float()[None] / 255
    c = (torch.from_numpy(np.stack((cb, cr))).float() - 128) / 255
    rgb = ycbcr_to_rgb(yt, c, matrix)
    return (rgb * 255).round().byte().permute(1, 2, 0).numpy()
