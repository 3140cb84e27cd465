"""The Python API for scripts and studios: a file, a stream of frames, or one image in a few lines."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator

import numpy as np

from .colorizer import Colorizer, ColorizerOptions
from .errors import UsageError
from .guidance import StillGuidance
from .images import colorize_array, colorize_image_file
from .video.formats import STILL_SUFFIXES, choose_matrix
from .pipeline import colorize_video
from .video.sink import EncodeOptions
from .video.rgb import layout_444, rgb_to_luma, ycbcr_planes_to_rgb

if TYPE_CHECKING:
    from .temporal.references import ClipGuidance


def colorize(src: str | Path, dst: str | Path, *, colorizer: Colorizer | None = None, overwrite: bool = False,
             encode: EncodeOptions | None = None, start: float | None = None, end: float | None = None,
             progress=None, references: dict | None = None, hints: str | Path | None = None,
             guidance: "StillGuidance | ClipGuidance | None" = None, **options) -> dict:
    """Colorize a video or still ``src`` into ``dst``; ``options`` are :class:`ColorizerOptions` fields.

    Video guidance: ``references={12.0: "key.png", "00:01:02.50": "k2.png", "f300": "k3.png"}`` (times as
    :func:`filmcolor.guidance.parse_time` reads them) and ``hints`` (a hints JSON file whose points may
    carry a ``time``); each is carried through its shot (:mod:`filmcolor.temporal.references`). Stills
    take one reference (any key) and/or hints. ``guidance``: an already-made
    :class:`~filmcolor.guidance.StillGuidance` or :class:`~filmcolor.temporal.references.ClipGuidance`.
    """
    still = Path(src).suffix.lower() in STILL_SUFFIXES and Path(dst).suffix.lower() in STILL_SUFFIXES
    if guidance is None and (references or hints):
        guidance = _guidance(still, references, hints)
    c = colorizer or Colorizer(ColorizerOptions(**options))
    if still:
        return colorize_image_file(c, src, dst, overwrite=overwrite, guidance=guidance)
    return colorize_video(src, dst, c, encode=encode, start=start, end=end, overwrite=overwrite, progress=progress,
                          guidance=guidance)


def _guidance(still: bool, references: dict | None, hints: str | Path | None):
    """The API's ``references``/``hints`` as a still's or a clip's guidance (read and checked now)."""
    from .guidance import load_hints

    if still:
        refs = list((references or {}).values())
        if len(refs) > 1:
            raise UsageError("a still takes one reference image")
        return StillGuidance.from_files(hints, refs[0] if refs else None)
    from .temporal.references import ClipGuidance, references_from_mapping

    points, relative = load_hints(hints) if hints is not None else ([], False)
    return ClipGuidance(references_from_mapping(references), tuple(points), relative)


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
                    references: dict | None = None, horizon: int = 30, **options) -> Iterator[np.ndarray]:
    """Colorize a stream of grey (``[H,W]``) or BGR-free RGB (``[H,W,3]``) uint8 frames -> RGB uint8 frames.

    Temporal smoothing runs across the stream (causal by default, so a frame is returned as soon as the
    next one arrives); frames must all have the same size. ``references={frame index: RGB array or
    image path}`` colours those frames and carries them forward and backward through their shots (at
    most ``horizon`` frames each way; frames before a reference are held back until it has arrived,
    see :class:`~filmcolor.temporal.frame_references.FrameReferences`).
    """
    c = colorizer or Colorizer(ColorizerOptions(**options))
    layout = layout_444(8, full_range=True)
    from .temporal.frame_references import ReferencedStream

    stream = None

    def out(ready):
        for yy, cb, cr in ready:
            yield ycbcr_planes_to_rgb(yy, cb, cr, layout, matrix)

    for frame in frames:
        if stream is None:
            h, w = frame.shape[:2]
            matrix = choose_matrix(None, h)
            stream = ReferencedStream(c.stream(w, h, layout, matrix, causal=causal), references, (h, w), horizon)
        y = frame if frame.ndim == 2 else rgb_to_luma(frame, matrix)
        yield from out(stream.push(y, y))
    if stream is not None:
        yield from out(stream.flush())
