"""Cutting a film into independent segments at keyframes.

The plan comes from demuxing the video packets only (no decoding), so planning a feature film takes
seconds. Segment boundaries sit on keyframes, where a decoder can start cleanly; each segment also
decodes ``overlap`` frames before and after its own, so the temporal smoother sees the same
neighbours across a boundary as it would in one pass (no seam).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import av

from ..errors import FormatError
from ..video.source import Span, open_input


@dataclass(frozen=True)
class FrameIndex:
    """Presentation timestamps of every video frame (sorted) and which of them are keyframes."""

    pts: tuple[int, ...]
    keyframes: tuple[int, ...]     # frame numbers (indices into ``pts``) of keyframes
    time_base: Fraction
    rate: Fraction

    @property
    def frames(self) -> int:
        return len(self.pts)


@dataclass(frozen=True)
class Segment:
    """Frames ``[first, end)`` of the film, written to ``file`` inside the work folder."""

    index: int
    first: int
    end: int
    span: Span
    file: str

    @property
    def frames(self) -> int:
        return self.end - self.first

    def to_json(self) -> dict:
        return {"index": self.index, "first": self.first, "end": self.end, "file": self.file, "span": asdict(self.span)}

    @classmethod
    def from_json(cls, d: dict) -> "Segment":
        return cls(d["index"], d["first"], d["end"], Span(**d["span"]), d["file"])


def index_frames(src: str | Path) -> FrameIndex:
    """Demux (do not decode) the first video stream of ``src``: frame timestamps and keyframes."""
    container = open_input(Path(src))
    try:
        vin = container.streams.video[0]
        tb = vin.time_base or Fraction(1, 25)
        rate = vin.average_rate or vin.guessed_rate or Fraction(25)
        pts: list[int] = []
        keys: set[int] = set()
        for packet in container.demux(vin):
            if packet.size == 0 or packet.is_discard:
                continue  # the demuxer's end-of-stream flush packet; packets the decoder drops (edit lists)
            if packet.pts is None:
                raise FormatError(f"{str(src)!r}: video packets carry no timestamps; remux it into .mkv or .mp4 "
                                  f"first (ffmpeg -i in -c copy out.mkv) to colorize it in segments")
            pts.append(packet.pts)
            if packet.is_keyframe:
                keys.add(packet.pts)
    except av.error.FFmpegError as exc:
        raise FormatError(f"{str(src)!r}: cannot read packets: {exc}") from None
    finally:
        container.close()
    if not pts:
        raise FormatError(f"{str(src)!r} has no video frames")
    order = sorted(set(pts))
    where = {p: i for i, p in enumerate(order)}
    return FrameIndex(tuple(order), tuple(sorted(where[p] for p in keys)), tb, rate)


def plan_segments(index: FrameIndex, segment_frames: int, overlap: int, suffix: str) -> list[Segment]:
    """Split at the first keyframe at least ``segment_frames`` after the previous boundary.

    ``overlap``: frames decoded (and smoothed, not written) on each side of a segment. A film with no
    keyframe after its first frame stays one segment.
    """
    if segment_frames < 1:
        raise ValueError("segment_frames must be >= 1")
    n, pts = index.frames, index.pts
    bounds = [0]
    for k in index.keyframes:
        if k - bounds[-1] >= segment_frames and k < n:
            bounds.append(k)
    bounds.append(n)
    segments = []
    for i, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])):
        lo, hi = max(0, a - overlap), b + overlap
        span = Span(decode_from=pts[lo], emit_from=pts[a], emit_to=pts[b] if b < n else None,
                    decode_to=pts[hi] if hi < n else None, seek=lo > 0)
        segments.append(Segment(i, a, b, span, f"seg_{i:05d}{suffix}"))
    return segments
