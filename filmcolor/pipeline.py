"""The file pipeline: :class:`~filmcolor.video.source.FrameSource` -> colorizer -> :class:`~filmcolor.video.sink.FrameSink`.

Three stages overlap: decoding in a :class:`~filmcolor.video.threads.Prefetch` thread that owns the input,
the colorizer in the calling thread, each frame's chroma finish and its encoding in a
:class:`~filmcolor.video.threads.WriteBehind` thread (the finish moves to the calling thread while the
encoder's queue is half full: then the encoder is the bottleneck, as in the fast mode);
bounded queues keep memory flat whatever the film's length. The output's luma plane is the input's, bit
for bit; timestamps, rotation and colour tags are carried over; the file appears only when complete.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Iterator

from .errors import FormatError
from .fs import check_paths
from .video.sink import EncodeOptions, FrameSink
from .video.source import FrameSource, Span
from .video.threads import Prefetch, WriteBehind

if TYPE_CHECKING:  # pragma: no cover - typing only
    from .colorizer import ChromaStream, Colorizer
    from .temporal.references import ClipGuidance


@dataclass
class Progress:
    frames: int
    total: int | None
    fps: float


def colorize_video(src: str | Path, dst: str | Path, colorizer: "Colorizer", *, encode: EncodeOptions | None = None,
                   start: float | None = None, end: float | None = None, overwrite: bool = False,
                   progress: Callable[[Progress], None] | None = None, queue_size: int = 8,
                   span: Span | None = None, guidance: "ClipGuidance | None" = None) -> dict:
    """Colorize the video ``src`` into ``dst``; returns a summary dict. Raises FormatError on bad input.

    With ``span`` only that part is written, video only, timestamps as in the source (a segment).
    ``guidance``: reference frames and timed hints (:mod:`filmcolor.temporal.references`), checked
    before any frame is colorized and carried through their shots.
    """
    src, dst = Path(src), Path(dst)
    check_paths(src, dst, overwrite)
    t0 = time.monotonic()
    source = FrameSource(src, start=start, end=end, span=span)
    try:
        sink = FrameSink(dst, source, encode or EncodeOptions(), copy_streams=span is None,
                         shift=(source.start_pts or 0) if span is None else 0)
    except BaseException:
        source.close()
        raise
    with sink, colorizer.streaming_threads():
        stream = colorizer.stream(source.width, source.height, sink.layout, sink.matrix)
        guide = None
        if guidance:
            from .temporal.references import open_guide

            guide = open_guide(guidance, src, source.stream, (source.height, source.width), stream.render_hw,
                               lambda f: stream.render_L(sink.luma(f)))
        run = _Run(stream, sink, span, progress, source.total, guide)
        with Prefetch(source.items, owns=source, size=queue_size, name="filmcolor-decode") as items:
            run.through(_decoded(items, src), queue_size)
        if run.frames_in == 0 or (span is not None and run.frames_out == 0):
            raise FormatError(f"{str(src)!r} has no decodable video frames" + (" in this segment" if span else ""))
        sink.commit()
    elapsed = time.monotonic() - t0
    notes = list(sink.notes)
    if source.bad_packets:
        notes.append(f"{source.bad_packets} corrupt video packet(s) could not be decoded and were skipped")
    return {"input": str(src), "output": str(dst), "frames": run.frames_out, "seconds": round(elapsed, 3),
            "fps": round(run.frames_in / max(elapsed, 1e-9), 2), "width": source.width, "height": source.height,
            "pix_fmt": sink.pix_fmt, "codec": sink.codec, "matrix": sink.matrix.name,
            "full_range": sink.layout.full_range, "bad_packets": source.bad_packets, "warnings": notes,
            "engine": colorizer.describe()}


class _Run:
    """The colorizing stage of one run: source items in, output frames and copied packets to the writer."""

    def __init__(self, stream: "ChromaStream", sink: FrameSink, span: Span | None,
                 progress: Callable[[Progress], None] | None, total: int | None, guide=None) -> None:
        self.stream, self.sink, self.span, self.progress, self.total = stream, sink, span, progress, total
        self.guide = guide  # a ReferenceGuide: per-frame (hint_ab, mask) carried from the user's references
        self.frames_in = self.frames_out = 0

    def through(self, items: Iterable[tuple[str, object]], queue_size: int) -> None:
        """Colorize every frame of ``items`` and hand everything to an encoding thread; errors become FormatError."""
        with WriteBehind(self._write, self.sink.flush, size=queue_size, name="filmcolor-encode") as writer:
            try:
                t_start = time.monotonic()
                for kind, obj in items:
                    if kind == "p":
                        if self.sink.shift_packet(obj):
                            writer.put(("p", obj))
                        continue
                    y = self.sink.luma(obj)
                    g = None if self.guide is None else self.guide.at(obj.pts)
                    self._emit(self.stream.push_deferred(y, (obj, y), g), writer)
                    self.frames_in += 1
                    if self.progress:
                        fps = self.frames_in / max(1e-6, time.monotonic() - t_start)
                        self.progress(Progress(self.frames_in, self.total, fps))
                self._emit(self.stream.flush_deferred(), writer)
                writer.close()
            except Exception as exc:
                if exc is writer.error and not isinstance(exc, OSError):
                    raise FormatError(f"encoding failed: {exc}") from exc
                raise  # disk full, permission: the CLI reports the machine's own error (exit 1)

    def _emit(self, ready: list, writer: WriteBehind) -> None:
        for (frame, y), finish in ready:
            if self.span is not None and not self.span.emits(frame.pts):
                continue  # warm-up or look-ahead frame of a segment
            self.frames_out += 1
            if writer.backlog * 2 >= writer.size:
                finish = _done(finish())  # the encoder is behind: finish the chroma here instead
            writer.put(("c", (frame, y, finish)))

    def _write(self, item: tuple[str, object]) -> None:
        """The encoding thread's work: a frame's chroma finish (it overlaps the next frame's model and flow),
        then encoding; copied packets go straight to the muxer."""
        kind, obj = item
        if kind == "c":
            frame, y, finish = obj
            kind, obj = "v", self.sink.video_frame(frame, y, *finish())
        self.sink.write((kind, obj))


def _done(planes: tuple) -> Callable[[], tuple]:
    """A chroma finish already run: returns its planes."""
    return lambda: planes


def _decoded(items: Iterable, src: Path) -> Iterator:
    """The source's items; a failure while demuxing or decoding becomes one FormatError, chained."""
    it = iter(items)
    while True:
        try:
            item = next(it)
        except StopIteration:
            return
        except FormatError:
            raise
        except Exception as exc:
            raise FormatError(f"{str(src)!r}: decoding failed: {exc}") from exc
        yield item
