"""The frame-stream engine: decode (PyAV) -> chroma from the model -> encode, audio copied.

Three stages overlap: a demux/decode thread, the colorizer (calling thread), an encode/mux thread;
bounded queues between them keep memory flat whatever the film's length. The output's luma plane is
the input's, bit for bit; timestamps, rotation and colour tags are carried over. The file is written
under a temporary name and renamed only when complete.
"""

from __future__ import annotations

import os
import queue
import threading
import time
import warnings
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Callable

import av
import numpy as np

from ..colorizer import Colorizer
from ..fs import check_paths, temp_path  # noqa: F401  (check_paths: re-exported for callers)
from .formats import FormatError, choose_matrix, grey_bits, output_defaults, parse_planar
from .planes import new_yuv_frame, plane_view

_END = object()


@dataclass
class EncodeOptions:
    codec: str | None = None
    crf: int | None = None
    preset: str | None = None
    pix_fmt: str | None = None
    options: dict = field(default_factory=dict)


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


@dataclass
class Progress:
    frames: int
    total: int | None
    fps: float


def container_options(dst: Path, time_base: Fraction) -> dict[str, str]:
    """Muxer options: MP4/MOV edit lists in the video's own timescale, not 1/1000 s, so a clip that
    does not start at zero (a segment, a VFR source) keeps its exact timestamps."""
    if dst.suffix.lower() in (".mp4", ".m4v", ".mov") and time_base.numerator == 1:
        return {"movie_timescale": str(time_base.denominator)}
    return {}


def open_input(src: Path) -> av.container.InputContainer:
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


def _supported_pix_fmts(codec: str) -> set[str]:
    try:
        return {f.name for f in av.codec.Codec(codec, "w").video_formats or []}
    except av.error.FFmpegError:
        raise FormatError(f"encoder {codec!r} is not available in this FFmpeg build") from None
    except Exception:  # unknown codec name
        raise FormatError(f"unknown encoder {codec!r}") from None


def choose_output_format(src_fmt: str, codec: str, default_8: str, default_10: str, requested: str | None) -> str:
    """Keep the source's layout when the encoder allows; else its depth's default."""
    supported = _supported_pix_fmts(codec)
    if requested:
        if parse_planar(requested) is None:
            raise FormatError(f"output pixel format {requested!r} is not planar Y'CbCr")
        if supported and requested not in supported:
            raise FormatError(f"encoder {codec!r} cannot write {requested!r}")
        return requested
    src = parse_planar(src_fmt)
    if src and src.bits <= 10 and (not supported or src_fmt in supported):
        return src_fmt
    if src and src.full_range:  # yuvj420p etc.: same layout, range is tagged instead
        plain = "yuv" + src_fmt[4:]
        if not supported or plain in supported:
            return plain
    bits = src.bits if src else (grey_bits(src_fmt) or 8)
    return default_10 if bits > 8 and (not supported or default_10 in supported) else default_8


class _Reader(threading.Thread):
    """Demuxes video + copied streams; decodes video. Puts ('v', frame) / ('p', packet) / errors on ``out``."""

    def __init__(self, container, vstream, others, out: queue.Queue, start_pts: int | None, end_pts: int | None,
                 exact_start: bool = False):
        """``exact_start``: the first decoded frame must not lie after ``start_pts`` (a segment must begin
        exactly where planned; some containers, MPEG-TS among them, seek to a later keyframe)."""
        super().__init__(daemon=True, name="filmcolor-decode")
        self.container, self.vstream, self.others, self.out = container, vstream, others, out
        self.start_pts, self.end_pts, self.exact_start = start_pts, end_pts, exact_start
        self.bad_packets = 0
        self.stop = threading.Event()

    def _put(self, item) -> bool:
        while not self.stop.is_set():
            try:
                self.out.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _frames(self, packet):
        try:
            return packet.decode()
        except av.error.FFmpegError:
            self.bad_packets += 1
            return []

    def run(self) -> None:
        try:
            for packet in self.container.demux(self.vstream, *self.others):
                if self.stop.is_set():
                    return
                if packet.stream is self.vstream:
                    for frame in self._frames(packet):
                        if self.exact_start and frame.pts is not None:
                            self.exact_start = False
                            if self.start_pts is not None and frame.pts > self.start_pts:
                                self._put(("error", f"seeking is not frame-exact in this file (wanted pts "
                                                    f"{self.start_pts}, first frame at {frame.pts}); remux it into "
                                                    f".mkv first (ffmpeg -i in -c copy out.mkv)"))
                                self._put(_END)
                                return
                        if self.start_pts is not None and frame.pts is not None and frame.pts < self.start_pts:
                            continue
                        if self.end_pts is not None and frame.pts is not None and frame.pts >= self.end_pts:
                            self._put(_END)
                            return
                        if not self._put(("v", frame)):
                            return
                elif packet.dts is not None and packet.size:
                    if not self._put(("p", packet)):
                        return
        except av.error.FFmpegError as exc:
            self._put(("error", f"decoding failed: {exc}"))
        except Exception as exc:  # keep the pipeline from hanging on any reader failure
            self._put(("error", f"decoding failed: {exc!r}"))
        self._put(_END)


class _Writer(threading.Thread):
    """Encodes frames and muxes packets from ``inbox``."""

    def __init__(self, out_container, vstream, packet_map, inbox: queue.Queue, transcoders: dict):
        super().__init__(daemon=True, name="filmcolor-encode")
        self.out, self.vstream, self.packet_map, self.inbox = out_container, vstream, packet_map, inbox
        self.transcoders = transcoders
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while True:
                item = self.inbox.get()
                if item is _END:
                    break
                kind, obj = item
                if kind == "v":
                    self.out.mux(self.vstream.encode(obj))
                elif obj.stream.index in self.transcoders:
                    in_s, out_s = self.transcoders[obj.stream.index]
                    for af in obj.decode():
                        af.pts = None
                        self.out.mux(out_s.encode(af))
                else:
                    obj.stream = self.packet_map[obj.stream.index]
                    self.out.mux(obj)
            self.out.mux(self.vstream.encode(None))
            for _, out_s in self.transcoders.values():
                self.out.mux(out_s.encode(None))
        except BaseException as exc:  # reported by the main thread
            self.error = exc
            while self.inbox.get() is not _END:  # drain so the producer never blocks
                pass


def colorize_video(src: str | Path, dst: str | Path, colorizer: Colorizer, *, encode: EncodeOptions | None = None,
                   start: float | None = None, end: float | None = None, overwrite: bool = False,
                   progress: Callable[[Progress], None] | None = None, queue_size: int = 8,
                   span: Span | None = None, guidance: "ClipGuidance | None" = None) -> dict:
    """Colorize the video ``src`` into ``dst``; returns a summary dict. Raises FormatError on bad input.

    With ``span`` only that part is written, video only, timestamps as in the source (a segment).
    ``guidance``: reference frames and timed hints (:mod:`filmcolor.temporal.references`), checked
    before anything is written and carried through their shots.
    """
    src, dst = Path(src), Path(dst)
    encode = encode or EncodeOptions()
    check_paths(src, dst, overwrite)
    defaults = output_defaults(dst, encode.codec)
    container = open_input(src)
    tmp = temp_path(dst)
    t0 = time.monotonic()
    try:
        vin = container.streams.video[0]
        vin.thread_type = "AUTO"
        cc = vin.codec_context
        if cc.codec is None or not av.codec.Codec(cc.name, "r"):
            raise FormatError(f"no decoder for video codec {cc.name!r}")
        tb = vin.time_base or Fraction(1, 25)
        start_pts = int(start / tb) if start else None
        end_pts = int(end / tb) if end else None
        if span is not None:
            start_pts, end_pts = span.decode_from, span.decode_to
        if start_pts and (span is None or span.seek):
            container.seek(start_pts, stream=vin, backward=True)
        total = vin.frames or None
        width, height = cc.width, cc.height
        if not width or not height:
            raise FormatError(f"{str(src)!r}: video stream has no frame size (corrupt header?)")
        src_fmt = cc.pix_fmt or "yuv420p"
        out_fmt = choose_output_format(src_fmt, defaults.codec, defaults.pix_fmt_8, defaults.pix_fmt_10, encode.pix_fmt)
        layout = parse_planar(out_fmt)
        full_range = bool(grey_bits(src_fmt)) or src_fmt.startswith("yuvj") or \
            (cc.color_range == 2)  # AVCOL_RANGE_JPEG
        layout = type(layout)(layout.name, layout.bits, layout.log2_w, layout.log2_h, full_range)
        colorspace_tag = str(getattr(cc, "colorspace", "") or "")
        matrix = choose_matrix(colorspace_tag if cc.colorspace not in (0, 2) else None, height)
        chroma = colorizer.stream(width, height, layout, matrix)
        guide = None
        if guidance:
            from ..temporal.references import open_guide

            guide = open_guide(guidance, src, vin, (height, width), chroma.render_hw,
                               lambda f: chroma.render_L(_luma(f, out_fmt, layout)))

        out = av.open(str(tmp), "w", options=container_options(dst, tb))
        try:
            rate = vin.average_rate or vin.guessed_rate or Fraction(25)
            vout = out.add_stream(defaults.codec, rate=rate)
            vout.width, vout.height, vout.pix_fmt = width, height, out_fmt
            vout.time_base = tb
            vout.codec_context.time_base = tb
            opts = dict(defaults.options)
            if encode.crf is not None:
                opts["crf"] = str(encode.crf)
            if encode.preset:
                opts["preset"] = encode.preset
            opts.update(encode.options)
            vout.options = opts
            vout.codec_context.color_range = 2 if full_range else 1
            vout.codec_context.colorspace = {"bt709": 1, "bt601": 6, "bt2020nc": 9}[matrix.name]
            if cc.color_primaries not in (None, 2):
                vout.codec_context.color_primaries = cc.color_primaries
            if cc.color_trc not in (None, 2):
                vout.codec_context.color_trc = cc.color_trc
            if vin.sample_aspect_ratio:
                vout.sample_aspect_ratio = vin.sample_aspect_ratio
            if span is None:
                packet_map, transcoders, others, warnings_ = _map_other_streams(container, out, dst)
            else:
                packet_map, transcoders, others, warnings_ = {}, {}, [], []
            q_in: queue.Queue = queue.Queue(maxsize=queue_size)
            q_out: queue.Queue = queue.Queue(maxsize=queue_size)
            reader = _Reader(container, vin, others, q_in, start_pts, end_pts, exact_start=span is not None)
            writer = _Writer(out, vout, packet_map, q_out, transcoders)
            shift = (start_pts or 0) if span is None else 0
            frames_in, frames_out, error = 0, 0, None
            rotation_set = False
            reader.start()
            writer.start()
            t_start = time.monotonic()

            def emit(ready) -> None:
                nonlocal frames_out
                for (frame, y), cb, cr in ready:
                    if span is not None and not span.emits(frame.pts):
                        continue  # warm-up or look-ahead frame of a segment
                    frames_out += 1
                    of = new_yuv_frame(y, cb, cr, out_fmt)
                    of.pts = None if frame.pts is None else frame.pts - shift
                    of.time_base = tb
                    _put(q_out, ("v", of), writer)

            try:
                while True:
                    item = q_in.get()
                    if item is _END:
                        break
                    kind, obj = item
                    if kind == "error":
                        error = obj
                        break
                    if kind == "p":
                        if shift and obj.pts is not None:
                            delta = int(shift * tb / obj.time_base)
                            obj.pts -= delta
                            obj.dts = obj.dts - delta if obj.dts is not None else None
                            if obj.pts < 0:
                                continue
                        _put(q_out, item, writer)
                        continue
                    if not rotation_set:
                        rotation_set = True
                        rot = getattr(obj, "rotation", 0) or 0
                        if rot:
                            vout.set_display_rotation(rot)
                    y = _luma(obj, out_fmt, layout)
                    emit(chroma.push(y, (obj, y), None if guide is None else guide.at(obj.pts)))
                    frames_in += 1
                    if progress:
                        progress(Progress(frames_in, total, frames_in / max(1e-6, time.monotonic() - t_start)))
                emit(chroma.flush())
            finally:
                reader.stop.set()
                _put(q_out, _END, writer, final=True)
                writer.join()
                reader.join(timeout=5)
            if writer.error is not None:
                raise FormatError(f"encoding failed: {writer.error}")
            if error:
                raise FormatError(f"{str(src)!r}: {error}")
            if frames_in == 0 or (span is not None and frames_out == 0):
                raise FormatError(f"{str(src)!r} has no decodable video frames" + (" in this segment" if span else ""))
        finally:
            out.close()
        os.replace(tmp, dst)
    except BaseException:
        container.close()
        tmp.unlink(missing_ok=True)
        raise
    container.close()
    elapsed = time.monotonic() - t0
    if reader.bad_packets:
        warnings_.append(f"{reader.bad_packets} corrupt video packet(s) could not be decoded and were skipped")
    return {"input": str(src), "output": str(dst), "frames": frames_out, "seconds": round(elapsed, 3),
            "fps": round(frames_in / max(elapsed, 1e-9), 2), "width": width, "height": height,
            "pix_fmt": out_fmt, "codec": defaults.codec, "matrix": matrix.name, "full_range": full_range,
            "bad_packets": reader.bad_packets, "warnings": warnings_, "engine": colorizer.describe()}


def _luma(frame, out_fmt: str, layout) -> np.ndarray:
    """The frame's luma plane in the output layout's codes: the source's own codes where they agree."""
    dtype = "uint8" if layout.bits == 8 else "uint16"
    name = frame.format.name
    if name == out_fmt or _same_planes(name, out_fmt) or grey_bits(name) == layout.bits:
        return plane_view(frame, 0, dtype).copy()
    return plane_view(frame.reformat(format=out_fmt), 0, dtype).copy()


def _same_planes(src_fmt: str, out_fmt: str) -> bool:
    """yuvj420p and yuv420p share a memory layout (the range is a tag)."""
    return src_fmt.startswith("yuvj") and "yuv" + src_fmt[4:] == out_fmt


def _put(q: queue.Queue, item, writer: _Writer, final: bool = False) -> None:
    while True:
        try:
            q.put(item, timeout=0.1)
            return
        except queue.Full:
            if not writer.is_alive():
                if final:
                    return
                raise FormatError(f"encoding failed: {writer.error}")


# audio codec (and sample rate, None: keep) for audio the output container cannot hold as it is
AUDIO_FALLBACK = {".mkv": ("flac", None), ".webm": ("libopus", 48000)}


def _map_other_streams(container, out, dst: Path):
    """Copy audio/subtitle streams where the container holds their codec; else convert audio, report."""
    packet_map, transcoders, others, notes = {}, {}, [], []
    supported = out.supported_codecs
    for s in container.streams:
        if s.type not in ("audio", "subtitle"):
            continue
        name = s.codec_context.name if s.codec_context else None
        if name and name in supported:
            packet_map[s.index] = out.add_stream_from_template(s)
            others.append(s)
        elif s.type == "audio":
            target, rate = AUDIO_FALLBACK.get(dst.suffix.lower(), ("aac", None))
            out_s = out.add_stream(target, rate=rate or s.codec_context.sample_rate)
            out_s.layout = s.codec_context.layout
            transcoders[s.index] = (s, out_s)
            others.append(s)
            notes.append(f"audio stream {s.index} ({name}) cannot be copied into {dst.suffix}; converted to {target}")
            warnings.warn(notes[-1])
        else:
            notes.append(f"subtitle stream {s.index} ({name}) cannot be stored in {dst.suffix} and was not written; "
                         f"use .mkv to keep it")
            warnings.warn(notes[-1])
    return packet_map, transcoders, others, notes
