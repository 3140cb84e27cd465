"""References by frame index, for streams with no file to look ahead in: the frame API
(:func:`filmcolor.api.colorize_frames`), ``filmcolor pipe --reference fN=IMAGE`` and the OpenCV filter.

The carrying is :class:`~.references.ReferenceGuide`'s; here frames near a reference are held back
until the reference has arrived (:class:`FrameReferences`), and :class:`ReferencedStream` puts that in
front of a chroma stream.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import UsageError
from ..guidance import parse_time, read_reference, reference_to_guidance
from .references import DEFAULT_HORIZON, ReferenceGuide, _Clip, _Key, _u8, parse_reference_args


class FrameReferences:
    """References by frame index for a stream of frames (:func:`filmcolor.api.colorize_frames`).

    There is no file to look ahead in, so frames are held back: a frame up to ``horizon`` frames before a
    reference is released once the reference has arrived (its backward carry needs it), or the stream
    ends; frames after it get it forward, inside the stream. Memory: at most ``horizon+1`` held frames
    (the caller's arrays) plus their uint8 L.
    ``push(i, L, item)`` returns ``[(item, guidance), ...]`` ready in order; ``flush()`` the rest.
    """

    def __init__(self, keys: list[_Key], render: tuple[int, int], horizon: int) -> None:
        clip = _Clip("", Fraction(1), 0, 1.0, None)
        self.horizon = int(horizon)
        self.key_idx = sorted(k.pts for k in keys)
        self._held: list[tuple[int, np.ndarray, object]] = []
        self._last = -1
        self.guide = ReferenceGuide(clip, keys, render, lambda f: f, horizon, window=self._window_frames)

    def _window_frames(self, lo: int, hi: int) -> list[tuple[int, np.ndarray]]:
        return [(i, u8) for i, u8, _ in self._held if lo <= i <= hi]

    def _ready(self, j: int) -> bool:
        """Frame ``j`` may go once every reference up to ``horizon`` frames after it has arrived (the
        backward carry needs it; references before ``j`` reach it forward, inside the stream)."""
        return all(not j < r <= j + self.horizon or r <= self._last for r in self.key_idx)

    def push(self, index: int, L: np.ndarray, item: object) -> list[tuple[object, object]]:
        self._held.append((index, _u8(L), item))
        self._last = index
        out = []
        while self._held and self._ready(self._held[0][0]):
            out.append(self._release())
        return out

    def flush(self) -> list[tuple[object, object]]:
        self._last = 1 << 62
        return [self._release() for _ in range(len(self._held))]

    def _release(self) -> tuple[object, object]:
        i, _, item = self._held[0]
        g = self.guide.at(i)       # may carry a key over the held frames: release after
        self._held.pop(0)
        return item, g


def frame_references(references: dict, size: tuple[int, int], render: tuple[int, int],
                     horizon: int = DEFAULT_HORIZON) -> FrameReferences:
    """``{frame index: RGB uint8 array or image path}`` -> :class:`FrameReferences`; one-line errors."""
    keys = []
    for i, ref in references.items():
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or i < 0:
            raise UsageError(f"frame references are keyed by frame index (0, 1, ...), got {i!r}")
        rgb = read_reference(ref) if isinstance(ref, (str, Path)) else np.asarray(ref)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise UsageError(f"reference for frame {i}: expected an RGB uint8 array [H,W,3] or an image path")
        hint, mask = reference_to_guidance(rgb, size, render)
        keys.append(_Key(int(i), hint, mask))
    return FrameReferences(keys, render, horizon)


def frame_reference_args(values: list[str] | tuple[str, ...]) -> dict[int, str]:
    """``fN=IMAGE`` strings (``filmcolor pipe --reference``: raw frames carry no times) -> {N: image}."""
    out: dict[int, str] = {}
    for t, image in parse_reference_args(values):
        kind, n = parse_time(t)
        if kind != "frame":
            raise UsageError(f"--reference {t}={image}: raw frames have no timestamps; give the frame, e.g. f300={image}")
        out[int(n)] = image
    return out


class ReferencedStream:
    """A chroma stream (:class:`~filmcolor.colorizer.ChromaStream`'s ``push``/``flush``/``reset``) whose
    frames get the guidance of frame-indexed ``references`` ({index: RGB uint8 array or image path}),
    for streams with no file to look ahead in: the frame API, ``filmcolor pipe``, the OpenCV filter.

    Frames up to ``horizon`` before a reference are held back until it has arrived
    (:class:`FrameReferences`); without references this is the stream itself, frame for frame.
    """

    def __init__(self, stream, references: dict | None, size: tuple[int, int], horizon: int = DEFAULT_HORIZON) -> None:
        self.stream = stream
        self.refs = frame_references(references, size, stream.render_hw, horizon) if references else None
        self.index = 0
        self._resets: list[int] = []  # frame indices a caller's reset comes before (frames may still be held)

    @property
    def latency(self) -> int:
        """Pushes between a frame going in and its chroma coming out, at most."""
        return self.stream.latency + (self.refs.horizon if self.refs is not None else 0)

    def push(self, y: np.ndarray, tag: object = None) -> list:
        if self.refs is None:
            return self.stream.push(y, tag)
        released = self.refs.push(self.index, self.stream.render_L(y), (self.index, y, tag))
        self.index += 1
        return self._feed(released)

    def flush(self) -> list:
        out = self._feed(self.refs.flush()) if self.refs is not None else []
        return out + self.stream.flush()

    def reset(self) -> None:
        """A cut the caller knows of, before the next frame pushed: the stream forgets its state there
        (after the frames held back from before it)."""
        if self.refs is None:
            self.stream.reset()
        else:
            self._resets.append(self.index)

    def _feed(self, released: list) -> list:
        out = []
        for (i, y, tag), g in released:
            while self._resets and i >= self._resets[0]:
                self._resets.pop(0)
                self.stream.reset()
            out += self.stream.push(y, tag, g)
        return out
