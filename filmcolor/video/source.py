"""The input side of the file pipeline, PyAV pull style: demux, decode, seek, timestamps.

:class:`FrameSource` opens a file, describes its video stream (size, pixel format, range, matrix, time
base), seeks to where a run or a segment starts and yields, in file order, decoded video frames inside
the wanted span and the packets of the streams that are copied. It knows nothing of colour models.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import av

from ..color import YCbCrMatrix
from ..errors import FormatError
from .formats import choose_matrix, grey_bits


@dataclass(frozen=True)
class Span:
    """Part of a clip in stream time-base units, for segment jobs (see :mod:`filmcolor.segments`).

    Frames from ``decode_from`` to ``decode_to`` (exclusive; None = end) go through the colorizer, so
    the temporal smoother sees the same neighbours as in one pass over the whole film; only frames in
    ``[emit_from, emit_to)`` are written, with their source timestamps unchanged.
    """

    decode_from: int
    emit_from: int
    emit_to: int | None
    decode_to: int | None
    seek: bool = True   # False for a span starting at the first frame: decode from the top, never seek

    def emits(self, pts: int | None) -> bool:
        return pts is not None and pts >= self.emit_from and (self.emit_to is None or pts < self.emit_to)


def open_input(src: Path) -> av.container.InputContainer:
    """Open a media file for reading; one-line FormatError when it is not a readable video."""
    try:
        container = av.open(str(src))
    except av.error.InvalidDataError as exc:
        raise FormatError(f"{str(src)!r} is not a video file PyAV can read ({exc.__class__.__name__})") from None
    except av.error.FFmpegError as exc:
        raise FormatError(f"cannot open {str(src)!r}: {exc}") from None
    if not container.streams.video:
        container.close()
        raise FormatError(f"{str(src)!r} has no video stream")
    return container


class FrameSource:
    """One input file's first video stream: what it is, and its frames from ``start`` to ``end``.

    ``start``/``end`` are seconds; a ``span`` (segment) gives them in stream units instead and asks for a
    frame-exact start. :meth:`items` yields ``("v", frame)`` and ``("p", packet)`` (copied streams, see
    :meth:`copy`); run it in a :class:`~filmcolor.video.threads.Prefetch` that owns this source.
    """

    def __init__(self, path: Path, *, start: float | None = None, end: float | None = None,
                 span: Span | None = None) -> None:
        self.path = path
        self.container = open_input(path)
        try:
            self._describe(start, end, span)
        except BaseException:
            self.container.close()
            raise
        self.others: list = []
        self.bad_packets = 0

    def _describe(self, start: float | None, end: float | None, span: Span | None) -> None:
        vin = self.stream = self.container.streams.video[0]
        vin.thread_type = "AUTO"
        cc = self.codec = vin.codec_context
        if cc.codec is None or not av.codec.Codec(cc.name, "r"):
            raise FormatError(f"no decoder for video codec {cc.name!r}")
        self.time_base = vin.time_base or Fraction(1, 25)
        self.start_pts = int(start / self.time_base) if start else None
        self.end_pts = int(end / self.time_base) if end else None
        self.exact_start = span is not None
        if span is not None:
            self.start_pts, self.end_pts = span.decode_from, span.decode_to
        if self.start_pts and (span is None or span.seek):
            self.container.seek(self.start_pts, stream=vin, backward=True)
        self.width, self.height = cc.width, cc.height
        if not self.width or not self.height:
            raise FormatError(f"{str(self.path)!r}: video stream has no frame size (corrupt header?)")
        self.pix_fmt = cc.pix_fmt or "yuv420p"
        self.full_range = bool(grey_bits(self.pix_fmt)) or self.pix_fmt.startswith("yuvj") or cc.color_range == 2
        self.total = vin.frames or None
        self.rate = vin.average_rate or vin.guessed_rate or Fraction(25)

    @property
    def matrix(self) -> YCbCrMatrix:
        """The tagged Y'CbCr matrix (unspecified/RGB tags: by frame height)."""
        tag = str(getattr(self.codec, "colorspace", "") or "")
        return choose_matrix(tag if self.codec.colorspace not in (0, 2) else None, self.height)

    def copy(self, streams: list) -> None:
        """Also yield the packets of these (audio/subtitle) streams."""
        self.others = list(streams)

    def items(self) -> Iterator[tuple[str, object]]:
        """Decoded frames of the span and packets of copied streams, in file order; corrupt packets skipped."""
        exact = self.exact_start
        for packet in self.container.demux(self.stream, *self.others):
            if packet.stream is not self.stream:
                if packet.dts is not None and packet.size:
                    yield "p", packet
                continue
            for frame in self._decode(packet):
                if exact and frame.pts is not None:
                    exact = False
                    if self.start_pts is not None and frame.pts > self.start_pts:
                        raise FormatError(f"{str(self.path)!r}: seeking is not frame-exact in this file (wanted pts "
                                          f"{self.start_pts}, first frame at {frame.pts}); remux it into .mkv first "
                                          f"(ffmpeg -i in -c copy out.mkv)")
                if self.start_pts is not None and frame.pts is not None and frame.pts < self.start_pts:
                    continue
                if self.end_pts is not None and frame.pts is not None and frame.pts >= self.end_pts:
                    return
                yield "v", frame

    def _decode(self, packet) -> list:
        try:
            return packet.decode()
        except av.error.FFmpegError:
            self.bad_packets += 1
            return []

    def close(self) -> None:
        self.container.close()
