"""The Python API for scripts and studios: a file, a stream of frames, or one image in a few lines."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from .colorizer import Colorizer, ColorizerOptions
from .errors import UsageError
from .guidance import StillGuidance
from .images import colorize_array, colorize_image_file
from .video.formats import STILL_SUFFIXES, choose_matrix
from .pipeline import colorize_video
from .video.sink import EncodeOptions
from .video.rgb import layout_444, rgb_to_luma, ycbcr_planes_to_rgb


def colorize(src: str | Path, dst: str | Path, *, colorizer: Colorizer | None = None, overwrite: bool = False,
             encode: EncodeOptions | None = None, start: float | None = None, end: float | None = None,
             progress=None, guidance: StillGuidance | None = None, **options) -> dict:
    """Colorize a video or still ``src`` into ``dst``; ``options`` are :class:`ColorizerOptions` fields.

    ``guidance`` (stills): hint points and/or a colour reference, e.g. ``StillGuidance.from_files("hints.json")``.
    """
    c = colorizer or Colorizer(ColorizerOptions(**options))
    if Path(src).suffix.lower() in STILL_SUFFIXES and Path(dst).suffix.lower() in STILL_SUFFIXES:
        return colorize_image_file(c, src, dst, overwrite=overwrite, guidance=guidance)
    if guidance is not None:
        raise UsageError("hints without times and a plain reference image apply to stills; for video give TIME=IMAGE")
    return colorize_video(src, dst, c, encode=encode, start=start, end=end, overwrite=overwrite, progress=progress)


def colorize_image(image: np.ndarray, *, colorizer: Colorizer | None = None, hints: str | Path | None = None,
                   reference: str | Path | np.ndarray | None = None, **options) -> np.ndarray:
    """Colorize one RGB or grey image array (uint8/uint16) -> RGB array of the same dtype.

    ``hints``: a hints JSON file (schema in :mod:`filmcolor.guidance`); ``reference``: a colour version of
    the picture (path or RGB uint8 array) whose colours guide the model.
    """
    if isinstance(reference, np.ndarray):
        guidance = StillGuidance.from_files(hints) or StillGuidance()
        guidance.reference = reference
    else:
        guidance = StillGuidance.from_files(hints, reference)
    return colorize_array(colorizer or Colorizer(ColorizerOptions(**{"smoothing": "off", **options})), image, guidance)


def colorize_frames(frames: Iterable[np.ndarray], *, colorizer: Colorizer | None = None, causal: bool = True,
                    **options) -> Iterator[np.ndarray]:
    """Colorize a stream of grey (``[H,W]``) or BGR-free RGB (``[H,W,3]``) uint8 frames -> RGB uint8 frames.

    Temporal smoothing runs across the stream (causal by default, so a frame is returned as soon as the
    next one arrives); frames must all have the same size.
    """
    c = colorizer or Colorizer(ColorizerOptions(**options))
    layout = layout_444(8, full_range=True)
    stream = None
    for frame in frames:
        if stream is None:
            h, w = frame.shape[:2]
            matrix = choose_matrix(None, h)
            stream = c.stream(w, h, layout, matrix, causal=causal)
        y = frame if frame.ndim == 2 else rgb_to_luma(frame, matrix)
        for yy, cb, cr in stream.push(y, y):
            yield ycbcr_planes_to_rgb(yy, cb, cr, layout, matrix)
    if stream is not None:
        for yy, cb, cr in stream.flush():
            yield ycbcr_planes_to_rgb(yy, cb, cr, layout, matrix)
