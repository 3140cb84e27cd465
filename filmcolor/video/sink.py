"""The output side of the file pipeline, PyAV style: encode, mux, stream copy.

:class:`FrameSink` writes a new file under a hidden temporary name: one video stream carrying the
source's size, time base, colour tags and rotation, plus the source's audio and subtitle streams
(copied, or audio converted where the container cannot hold its codec). It becomes the user's file
only in :meth:`FrameSink.commit`; any other way out removes it.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from ..errors import FormatError
from ..fs import temp_path
from .formats import PlanarYUV, grey_bits, output_defaults, parse_planar
from .planes import new_yuv_frame, plane_view
from .source import FrameSource

# audio codec (and sample rate, None: keep) for audio the output container cannot hold as it is
AUDIO_FALLBACK = {".mkv": ("flac", None), ".webm": ("libopus", 48000)}
COLORSPACE_TAG = {"bt709": 1, "bt601": 6, "bt2020nc": 9}  # AVColorSpace


@dataclass
class EncodeOptions:
    codec: str | None = None
    crf: int | None = None
    preset: str | None = None
    pix_fmt: str | None = None
    options: dict = field(default_factory=dict)


def container_options(dst: Path, time_base: Fraction) -> dict[str, str]:
    """Muxer options: MP4/MOV edit lists in the video's own timescale, not 1/1000 s, so a clip that
    does not start at zero (a segment, a VFR source) keeps its exact timestamps."""
    if dst.suffix.lower() in (".mp4", ".m4v", ".mov") and time_base.numerator == 1:
        return {"movie_timescale": str(time_base.denominator)}
    return {}


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


def map_other_streams(container, out, dst: Path):
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


def keep_field_order(src_cc, vout, opts: dict) -> None:
    """Interlaced sources stay interlaced (never deinterlaced): the field order tag (top/bottom first) is
    copied, and the encoder codes fields (``flags +ildct+ilme``) so H.264/ProRes carry the order too."""
    order = int(src_cc.field_order or 0)  # AVFieldOrder: 0 unknown, 1 progressive, 2.. interlaced
    if order > 1:
        vout.codec_context.field_order = order
        opts.setdefault("flags", "+ildct+ilme")


class FrameSink:
    """The output file of one run: ``write(item)`` encodes/muxes, ``flush()`` ends the streams, ``commit()``
    renames the finished file into place; leaving the ``with`` block without ``commit`` removes it.

    ``copy_streams``: carry the source's audio/subtitles (False for segments: video only). ``shift``: stream
    units subtracted from every timestamp (a run that starts at ``--start``).
    """

    def __init__(self, dst: Path, source: FrameSource, encode: EncodeOptions, *, copy_streams: bool = True,
                 shift: int = 0) -> None:
        self.dst, self.tmp, self.source, self.shift = dst, temp_path(dst), source, shift
        defaults = output_defaults(dst, encode.codec)
        self.codec = defaults.codec
        self.pix_fmt = choose_output_format(source.pix_fmt, defaults.codec, defaults.pix_fmt_8, defaults.pix_fmt_10,
                                            encode.pix_fmt)
        planar = parse_planar(self.pix_fmt)
        assert planar is not None
        self.layout = PlanarYUV(planar.name, planar.bits, planar.log2_w, planar.log2_h, source.full_range)
        self.matrix = source.matrix
        self.out = av.open(str(self.tmp), "w", options=container_options(dst, source.time_base))
        self._committed, self._rotation_set = False, False
        try:
            self.video = self._add_video(defaults.options, encode)
            if copy_streams:
                self.packet_map, self.transcoders, others, self.notes = map_other_streams(source.container, self.out, dst)
                source.copy(others)
            else:
                self.packet_map, self.transcoders, self.notes = {}, {}, []
        except BaseException:
            self.abort()
            raise

    def _add_video(self, default_options: dict, encode: EncodeOptions):
        src, cc = self.source, self.source.codec
        vout = self.out.add_stream(self.codec, rate=src.rate)
        vout.width, vout.height, vout.pix_fmt = src.width, src.height, self.pix_fmt
        vout.time_base = vout.codec_context.time_base = src.time_base
        opts = dict(default_options)
        if encode.crf is not None:
            opts["crf"] = str(encode.crf)
        if encode.preset:
            opts["preset"] = encode.preset
        opts.update(encode.options)
        keep_field_order(cc, vout, opts)
        vout.options = opts
        vout.codec_context.color_range = 2 if self.layout.full_range else 1
        vout.codec_context.colorspace = COLORSPACE_TAG[self.matrix.name]
        if cc.color_primaries not in (None, 2):
            vout.codec_context.color_primaries = cc.color_primaries
        if cc.color_trc not in (None, 2):
            vout.codec_context.color_trc = cc.color_trc
        if src.stream.sample_aspect_ratio:
            vout.sample_aspect_ratio = src.stream.sample_aspect_ratio
        return vout

    def luma(self, frame: av.VideoFrame) -> np.ndarray:
        """The decoded frame's own Y' codes at the output's depth (converted only where layouts differ)."""
        name = frame.format.name
        same = name == self.pix_fmt or (name.startswith("yuvj") and "yuv" + name[4:] == self.pix_fmt) \
            or grey_bits(name) == self.layout.bits
        return plane_view(frame if same else frame.reformat(format=self.pix_fmt), 0, self.layout.dtype).copy()

    def video_frame(self, source_frame: av.VideoFrame, y: np.ndarray, cb: np.ndarray, cr: np.ndarray) -> av.VideoFrame:
        """The output frame for a source frame: its Y' and the new chroma, its timestamp shifted."""
        if not self._rotation_set:  # display rotation rides on the first frame's side data
            self._rotation_set = True
            rotation = getattr(source_frame, "rotation", 0) or 0
            if rotation:
                self.video.set_display_rotation(rotation)
        frame = new_yuv_frame(y, cb, cr, self.pix_fmt)
        frame.pts = None if source_frame.pts is None else source_frame.pts - self.shift
        frame.time_base = self.source.time_base
        return frame

    def shift_packet(self, packet) -> bool:
        """Shift a copied packet's timestamps like the video's; False when it falls before the start."""
        if self.shift and packet.pts is not None:
            delta = int(self.shift * self.source.time_base / packet.time_base)
            packet.pts -= delta
            packet.dts = packet.dts - delta if packet.dts is not None else None
            return packet.pts >= 0
        return True

    def write(self, item: tuple[str, object]) -> None:
        """Encode a ``("v", frame)`` or mux a copied ``("p", packet)`` (audio converted where it must be)."""
        kind, obj = item
        if kind == "v":
            self.out.mux(self.video.encode(obj))
        elif obj.stream.index in self.transcoders:
            _, out_s = self.transcoders[obj.stream.index]
            for af in obj.decode():
                af.pts = None
                self.out.mux(out_s.encode(af))
        else:
            obj.stream = self.packet_map[obj.stream.index]
            self.out.mux(obj)

    def flush(self) -> None:
        """End every encoder's stream (the last frames come out)."""
        self.out.mux(self.video.encode(None))
        for _, out_s in self.transcoders.values():
            self.out.mux(out_s.encode(None))

    def commit(self) -> None:
        """Close the file and rename it to its real name."""
        self.out.close()
        os.replace(self.tmp, self.dst)
        self._committed = True

    def abort(self) -> None:
        """Close and remove the unfinished file."""
        try:
            self.out.close()
        finally:
            self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> "FrameSink":
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._committed:
            self.abort()
