"""OpenCV plugin: a stateful frame filter for ``cv2.VideoCapture`` loops, and a capture -> writer helper.

    from filmcolor.plugins.opencv import ColorizeFilter
    colorize = ColorizeFilter(model="default")
    while (ok := cap.read()[0]) ...:
        out = colorize(frame)          # BGR or grey uint8 in, colorized BGR uint8 out, same size
    colorize.close()

The filter wraps the streaming pipeline (a :class:`~filmcolor.colorizer.ChromaStream` with
``causal=True``): temporal smoothing carries across calls and only looks backwards, so with the engine
batch at 1 (what the filter asks for) the output for frame *i* comes back from the call for frame *i*.
The frame's own luma is kept (up to 8-bit rounding for BGR input); only colour is made.
"""

from __future__ import annotations

import os
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from ._common import layout_444, make_colorizer, matrix_named, rgb_to_luma, ycbcr_planes_to_rgb

if TYPE_CHECKING:  # pragma: no cover - typing only
    from filmcolor.colorizer import ChromaStream, Colorizer


def probe() -> str | None:
    """None when OpenCV can read and write video here, else why not (for the plugin registry)."""
    try:
        import cv2
    except ImportError:
        return "the OpenCV plugin needs cv2: pip install opencv-contrib-python-headless"
    if not hasattr(cv2, "VideoWriter"):
        return "this OpenCV build has no video I/O: pip install opencv-contrib-python-headless"
    return None


class ColorizeFilter:
    """Colorize a sequence of OpenCV frames one call at a time, with causal temporal smoothing.

    ``ColorizeFilter(colorizer=None, *, matrix=None, **options)``: ``options`` are
    :class:`~filmcolor.colorizer.ColorizerOptions` fields (model, engine, device, render_size, saturation,
    smoothing, smoothing_strength); a given ``colorizer`` is shared and not closed by :meth:`close`.
    ``matrix`` (bt601/bt709/bt2020nc) is the Y'CbCr matrix used between luma and BGR: by default BT.709
    for frames of 720 lines or more, else BT.601, as the file pipeline does.

    ``references``: {frame index (0 = the first call's frame): BGR uint8 array or image path}, colour
    versions of those frames, carried forward and backward through their shots.

    If the colorizer in use holds frames back (an engine batch above 1, a look-ahead smoother, or frames
    near a reference waiting for its shot), a call returns None until its frame is ready; later calls
    return the held frames in order, one per call, and :meth:`flush` returns what is left. With the
    defaults and no references this never happens (:attr:`latency` is 0).
    """

    def __init__(self, colorizer: "Colorizer | None" = None, *, matrix: str | None = None,
                 references: dict | None = None, **options: Any) -> None:
        self.colorizer, self._owned = make_colorizer(colorizer, options, batch=1)
        self._references = {i: (np.ascontiguousarray(r[..., ::-1]) if isinstance(r, np.ndarray) else r)  # BGR -> RGB
                            for i, r in (references or {}).items()}
        self._matrix_name = matrix
        self._stream: "ChromaStream | None" = None
        self._size: tuple[int, int] | None = None
        self._ready: deque[np.ndarray] = deque()
        self.frames_in = 0
        self.frames_out = 0

    @property
    def latency(self) -> int:
        """Frames between a call and the return of that call's frame (0 with the defaults)."""
        return self._stream.latency if self._stream is not None else 0

    def __call__(self, frame: np.ndarray) -> np.ndarray | None:
        """Colorize one BGR (``[H,W,3]``), BGRA or grey (``[H,W]``/``[H,W,1]``) uint8 frame -> BGR uint8."""
        y = self._luma(frame)
        h, w = y.shape
        if self._size != (w, h):
            self._start(w, h)
        assert self._stream is not None
        self.frames_in += 1
        self._collect(self._stream.push(y, y))
        return self._pop()

    def _luma(self, frame: np.ndarray) -> np.ndarray:
        if not isinstance(frame, np.ndarray):
            raise TypeError(f"expected a numpy frame as cv2 gives, got {type(frame).__name__}")
        if frame.dtype != np.uint8:
            raise TypeError(f"expected uint8 frames (as cv2.VideoCapture gives), got {frame.dtype}")
        if frame.ndim == 3 and frame.shape[2] == 1:
            frame = frame[..., 0]
        if frame.ndim == 2:
            return np.ascontiguousarray(frame)
        if frame.ndim != 3 or frame.shape[2] not in (3, 4):
            raise ValueError(f"expected a grey [H,W] or BGR [H,W,3] frame, got shape {frame.shape}")
        matrix = matrix_named(self._matrix_name, frame.shape[0])
        return rgb_to_luma(frame[..., :3], matrix, 8, True, order="bgr")

    def _start(self, w: int, h: int) -> None:
        """First frame, or a new frame size: a fresh stream (held frames of the old one are kept)."""
        if self._stream is not None:
            self._collect(self._stream.flush())
        self._size = (w, h)
        self._layout = layout_444(8, True)
        self._matrix = matrix_named(self._matrix_name, h)
        from filmcolor.temporal.frame_references import ReferencedStream

        refs, self._references = self._references, None  # frame indices count from the first frame's stream
        self._stream = ReferencedStream(self.colorizer.stream(w, h, self._layout, self._matrix, causal=True),
                                        refs, (h, w))

    def _collect(self, ready: list) -> None:
        for y, cb, cr in ready:
            rgb = ycbcr_planes_to_rgb(y, cb, cr, self._layout, self._matrix)
            self._ready.append(np.ascontiguousarray(rgb[..., ::-1]))  # RGB -> BGR for OpenCV

    def _pop(self) -> np.ndarray | None:
        if not self._ready:
            return None
        self.frames_out += 1
        return self._ready.popleft()

    def reset(self) -> None:
        """A scene change the caller knows of: forget the temporal state (nothing is dropped)."""
        if self._stream is not None:
            self._stream.reset()

    def flush(self) -> list[np.ndarray]:
        """End of the sequence: every frame still held back, in order (empty with the defaults)."""
        if self._stream is not None:
            self._collect(self._stream.flush())
        out = list(self._ready)
        self._ready.clear()
        self.frames_out += len(out)
        return out

    def close(self) -> None:
        """Release the engine if this filter made it. Safe to call twice."""
        self._stream = None
        self._size = None
        if self._owned:
            self.colorizer.close()
            self._owned = False

    def __enter__(self) -> "ColorizeFilter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _filter_frames(cap: Any, frame: Any, filt: "ColorizeFilter", writer: Any, name: str,
                   progress: Callable[[int], None] | None) -> int:
    """``frame`` and the rest of ``cap`` through ``filt`` into ``writer``; returns the frames written."""
    from filmcolor.errors import FormatError

    h, w = frame.shape[:2]
    frames, ok = 0, True
    while ok:
        if frame.shape[:2] != (h, w):
            raise FormatError(f"{name!r}: frame size changed from {w}x{h} to {frame.shape[1]}x{frame.shape[0]}")
        out = filt(frame)
        if out is not None:
            writer.write(out)
            frames += 1
            if progress:
                progress(frames)
        ok, frame = cap.read()
    for out in filt.flush():
        writer.write(out)
        frames += 1
    return frames


def colorize_capture(src: str | int | Path, dst: str | Path, fourcc: str = "mp4v", *, overwrite: bool = False,
                     colorizer: "Colorizer | None" = None, fps: float | None = None,
                     progress: Callable[[int], None] | None = None, **options: Any) -> dict:
    """Read ``src`` with ``cv2.VideoCapture`` (a file, URL or camera index), write colorized frames to ``dst``.

    A plain OpenCV loop for people who already have one: no audio, the frame rate the capture reports
    (or ``fps``). The output is written under a hidden name and renamed when complete; an existing
    ``dst`` is replaced only with ``overwrite``. Returns a summary dict. ``options``: ColorizerOptions fields.
    """
    import cv2

    from filmcolor.errors import FormatError
    from filmcolor.fs import check_output, temp_path

    dst = Path(dst)
    check_output(dst, overwrite, Path(src) if isinstance(src, (str, Path)) else None, hint="overwrite=True")
    if len(fourcc) != 4:
        raise FormatError(f"fourcc must be 4 characters (mp4v, MJPG, FFV1...), got {fourcc!r}")
    cap = cv2.VideoCapture(src if isinstance(src, int) else str(src))
    if not cap.isOpened():
        raise FormatError(f"OpenCV cannot open {str(src)!r}")
    t0 = time.monotonic()
    tmp = temp_path(dst)
    writer = None
    filt = None
    try:
        ok, frame = cap.read()
        if not ok:
            raise FormatError(f"{str(src)!r}: no frame could be read")
        h, w = frame.shape[:2]
        rate = fps or cap.get(cv2.CAP_PROP_FPS) or 25.0
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*fourcc), float(rate), (w, h), True)
        if not writer.isOpened():
            raise FormatError(f"OpenCV cannot write {dst.suffix or 'this'} files with fourcc {fourcc!r}")
        filt = ColorizeFilter(colorizer, **options)
        frames = _filter_frames(cap, frame, filt, writer, str(src), progress)
        writer.release()
        writer = None
        os.replace(tmp, dst)
    except BaseException:
        if writer is not None:
            writer.release()
        tmp.unlink(missing_ok=True)
        raise
    finally:
        cap.release()
        if filt is not None:
            engine = filt.colorizer.describe()
            filt.close()
    elapsed = time.monotonic() - t0
    return {"input": str(src), "output": str(dst), "frames": frames, "width": w, "height": h, "fps_in": float(rate),
            "fourcc": fourcc, "seconds": round(elapsed, 3), "fps": round(frames / max(elapsed, 1e-9), 2),
            "engine": engine}
