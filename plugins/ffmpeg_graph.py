"""ffmpeg-python helper: decode with ffmpeg -> colorize -> encode with ffmpeg, one call.

    from filmcolor.plugins.ffmpeg_graph import colorize_graph
    colorize_graph("in.mp4", "out.mp4", pre_filters="yadif,hqdn3d", post_filters="eq=saturation=1.1",
                   model="default", output_options={"crf": 18, "preset": "slow"})

Two ffmpeg processes are built with ffmpeg-python: the decode side (input file -> the user's pre-filter
chain -> raw ``gray``/``yuv420p`` frames on a pipe) and the encode side (raw frames from a pipe -> the
user's post-filter chain -> the output file, audio mapped from the source). The colorizer between them is
the raw pipe of :mod:`filmcolor.plugins.ffmpeg_pipe` (threads read and write, so neither ffmpeg can
block the other, and their logs are drained by threads too). Use it to put ffmpeg filters (deinterlace,
denoise, grade) around colorization; the file pipeline (``filmcolor colorize``) keeps timestamps and
every stream, this one assumes a constant frame rate.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence, Union

from filmcolor.errors import FormatError

if TYPE_CHECKING:  # pragma: no cover - typing only
    from filmcolor.colorizer import Colorizer

FilterSpec = Union[str, Sequence[Union[str, tuple, Callable[[Any], Any]]], Callable[[Any], Any], None]
DECODE_FORMATS = ("gray", "gray10le", "yuv420p", "yuv420p10le")
_COLORSPACE_TAG = {"bt601": "smpte170m", "bt709": "bt709", "bt2020nc": "bt2020nc"}


def probe() -> str | None:
    """None when ffmpeg-python and the ffmpeg/ffprobe programs are here, else why not (plugin registry)."""
    import shutil

    try:
        import ffmpeg

        if not hasattr(ffmpeg, "probe"):
            return "the ffmpeg module here is not ffmpeg-python: pip install ffmpeg-python"
    except ImportError:
        return "the ffmpeg graph plugin needs ffmpeg-python: pip install ffmpeg-python"
    missing = [p for p in ("ffmpeg", "ffprobe") if shutil.which(p) is None]
    if missing:
        return f"program(s) {', '.join(missing)} not found: install ffmpeg (apt install ffmpeg)"
    return None


def _split_unescaped(text: str, sep: str) -> list[str]:
    """Split on ``sep`` outside quotes and backslash escapes (filtergraph syntax); escapes are kept."""
    parts, cur, quote, i = [], [], False, 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            cur.append(text[i:i + 2])
            i += 2
            continue
        if ch == "'":
            quote = not quote
        if ch == sep and not quote:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    parts.append("".join(cur))
    return parts


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text.replace("'", ""))


def parse_filter(text: str) -> tuple[str, list[str], dict[str, str]]:
    """``"hqdn3d=4:3:6:4.5"`` -> ("hqdn3d", ["4", "3", "6", "4.5"], {}); ``"eq=saturation=1.1"`` -> kwargs."""
    name, _, params = text.strip().partition("=")
    if not re.fullmatch(r"[A-Za-z0-9_]+", name):
        raise FormatError(f"bad filter {text!r}: expected name or name=arguments")
    args: list[str] = []
    kwargs: dict[str, str] = {}
    for p in _split_unescaped(params, ":") if params else []:
        key, eq, value = p.partition("=")
        if eq and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            kwargs[key] = _unescape(value)
        else:
            args.append(_unescape(p))
    return name, args, kwargs


def filter_steps(spec: FilterSpec) -> list[Callable[[Any], Any]]:
    """A filter chain as steps on an ffmpeg-python stream.

    ``spec``: a filtergraph chain string (``"yadif,hqdn3d=4:3:6:4.5,eq=gamma=1.1"``), a list of such
    strings, of ``(name, args, kwargs)`` tuples or of callables (stream -> stream), or one callable.
    Strings cover plain numeric arguments; use a callable for arguments that need filtergraph escaping.
    """
    if spec is None or spec == "":
        return []
    if callable(spec):
        return [spec]
    items = _split_unescaped(spec, ",") if isinstance(spec, str) else list(spec)
    steps: list[Callable[[Any], Any]] = []
    for item in items:
        if callable(item):
            steps.append(item)
        elif isinstance(item, str):
            if not item.strip():
                continue
            name, args, kwargs = parse_filter(item)
            steps.append(lambda s, n=name, a=args, k=kwargs: s.filter(n, *a, **k))
        elif isinstance(item, tuple) and item and isinstance(item[0], str):
            name, args, kwargs = item[0], list(item[1]) if len(item) > 1 else [], dict(item[2]) if len(item) > 2 else {}
            steps.append(lambda s, n=name, a=args, k=kwargs: s.filter(n, *a, **k))
        else:
            raise FormatError(f"bad filter {item!r}: give a string, a (name, args, kwargs) tuple or a callable")
    return steps


def _apply(stream: Any, steps: list[Callable[[Any], Any]]) -> Any:
    for step in steps:
        stream = step(stream)
    return stream


def _rate(text: str | None) -> Fraction | None:
    try:
        r = Fraction(text) if text else None
    except (ValueError, ZeroDivisionError):
        return None
    return r if r else None


def probe_video(src: str | Path, *, cmd: str = "ffprobe") -> dict:
    """Width, height, frame rate (Fraction), pixel format and audio stream count of ``src`` (ffmpeg.probe)."""
    import ffmpeg

    try:
        info = ffmpeg.probe(str(src), cmd=cmd)
    except ffmpeg.Error as exc:
        raise FormatError(f"ffprobe cannot read {str(src)!r}: {_last_line(exc.stderr)}") from None
    except FileNotFoundError:
        raise FormatError(f"{cmd!r} not found: install ffmpeg (apt install ffmpeg)") from None
    video = [s for s in info.get("streams", []) if s.get("codec_type") == "video"]
    if not video:
        raise FormatError(f"{str(src)!r} has no video stream")
    v = video[0]
    rate = _rate(v.get("avg_frame_rate")) or _rate(v.get("r_frame_rate")) or Fraction(25)
    return {"width": int(v["width"]), "height": int(v["height"]), "rate": rate, "pix_fmt": v.get("pix_fmt"),
            "audio_streams": sum(1 for s in info["streams"] if s.get("codec_type") == "audio")}


def _message(lines: Sequence[str]) -> str:
    """ffmpeg's root cause in one line: with ``-loglevel error`` its first line, less the ``[ctx @ 0x..]`` prefix."""
    for line in lines:
        text = re.sub(r"^\[[^\]]*@ 0x[0-9a-f]+\]\s*", "", line.strip())
        if text:
            return text
    return "no message"


def _last_line(data: bytes | str | None) -> str:
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else (data or "")
    return _message(text.splitlines())


def filtered_size(src: str | Path, pre_filters: FilterSpec, *, cmd: str = "ffmpeg") -> tuple[int, int]:
    """Frame size after the pre-filters: one frame decoded through them as PGM, whose header says it."""
    import ffmpeg

    stream = _apply(ffmpeg.input(str(src)).video, filter_steps(pre_filters))
    out = stream.output("pipe:", vframes=1, format="image2pipe", vcodec="pgm", pix_fmt="gray")
    try:
        data, _ = out.global_args("-nostdin", "-loglevel", "error").run(cmd=cmd, capture_stdout=True,
                                                                         capture_stderr=True)
    except ffmpeg.Error as exc:
        raise FormatError(f"ffmpeg pre-filters failed on {str(src)!r}: {_last_line(exc.stderr)}") from None
    m = re.match(rb"P5\s+(\d+)\s+(\d+)\s", data)
    if not m:
        raise FormatError(f"ffmpeg gave no frame for {str(src)!r} through the pre-filters")
    return int(m.group(1)), int(m.group(2))


def build_graph(src: str | Path, dst: str | Path, *, width: int, height: int, rate: Fraction | float | str,
                pre_filters: FilterSpec = None, post_filters: FilterSpec = None, pix_fmt: str = "gray",
                out_pix_fmt: str = "yuv420p", full_range: bool = True, matrix: str | None = None, audio: bool = True,
                audio_codec: str = "copy", output_options: dict | None = None) -> tuple[Any, Any]:
    """The two ffmpeg-python graphs (decode, encode); nothing runs. ``get_args()`` shows their command lines."""
    import ffmpeg

    dec = _apply(ffmpeg.input(str(src)).video, filter_steps(pre_filters))
    decode = dec.output("pipe:", format="rawvideo", pix_fmt=pix_fmt).global_args("-nostdin", "-loglevel", "error")
    raw_in: dict[str, Any] = {"format": "rawvideo", "pix_fmt": out_pix_fmt, "s": f"{width}x{height}",
                              "r": str(Fraction(rate).limit_denominator(1_000_000)) if not isinstance(rate, str) else rate}
    if full_range:
        raw_in["color_range"] = "pc"  # the luma is the source's full-range codes: tag it so
    video = _apply(ffmpeg.input("pipe:", **raw_in).video, filter_steps(post_filters))
    streams = [video]
    opts: dict[str, Any] = {}
    if matrix in _COLORSPACE_TAG:
        opts["colorspace"] = _COLORSPACE_TAG[matrix]
    if audio:
        streams.append(ffmpeg.input(str(src))["a?"])  # -map 1:a? : every audio stream, none is fine
        opts["acodec"] = audio_codec
    opts.update(output_options or {})
    encode = ffmpeg.output(*streams, str(dst), **opts).global_args("-loglevel", "error")
    return decode, encode


class _Drain(threading.Thread):
    """Reads a process's stderr so it never fills up and blocks ffmpeg; keeps the first lines (the cause)."""

    def __init__(self, stream: Any) -> None:
        super().__init__(daemon=True, name="filmcolor-ffmpeg-log")
        self.stream = stream
        self.lines: list[str] = []

    def run(self) -> None:
        for line in iter(self.stream.readline, b""):
            text = line.decode("utf-8", "replace").strip()
            if text and len(self.lines) < 20:
                self.lines.append(text)

    def cause(self) -> str:
        return _message(self.lines)


def _run_graph(decode: Any, encode: Any, spec: Any, c: "Colorizer", src: Path, dst: Path, ffmpeg_cmd: str,
               progress: Callable[[int], None] | None) -> dict:
    """Run the decoding and encoding ffmpeg processes around the colorizer; ffmpeg's own failure is the
    root cause when there is one, else the colorizer's. Both processes are gone when this returns or raises."""
    from .ffmpeg_pipe import run_pipe

    procs: list[subprocess.Popen] = []
    try:
        dec = decode.run_async(cmd=ffmpeg_cmd, pipe_stdout=True, pipe_stderr=True)
        procs.append(dec)
        enc = encode.run_async(cmd=ffmpeg_cmd, pipe_stdin=True, pipe_stderr=True, overwrite_output=True)
        procs.append(enc)
        logs = [_Drain(dec.stderr), _Drain(enc.stderr)]
        for d in logs:
            d.start()
        failure: Exception | None = None
        summary: dict = {}
        try:
            summary = run_pipe(dec.stdout, enc.stdin, spec, c, progress=progress)
        except Exception as exc:  # reported below, after ffmpeg's own word on what went wrong
            failure = exc
        try:
            enc.stdin.close()
        except OSError:
            pass
        killed = failure is not None and dec.poll() is None
        if killed:  # the colorizer side failed: stop decoding, nothing will read it
            dec.kill()
        rc_dec, rc_enc = dec.wait(), enc.wait()
        for d in logs:
            d.join(timeout=5)
        if rc_dec != 0 and not (killed and rc_dec < 0):
            raise FormatError(f"ffmpeg decoding {str(src)!r} failed: {logs[0].cause()}")
        if rc_enc != 0:
            raise FormatError(f"ffmpeg encoding {str(dst)!r} failed: {logs[1].cause()}")
        if failure is not None:
            raise failure
        return summary
    except BaseException:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        raise


def colorize_graph(src: str | Path, dst: str | Path, *, pre_filters: FilterSpec = None, post_filters: FilterSpec = None,
                   pix_fmt: str = "gray", out_pix_fmt: str = "yuv420p", size: tuple[int, int] | None = None,
                   rate: Fraction | float | str | None = None, audio: bool = True, audio_codec: str = "copy",
                   output_options: dict | None = None, overwrite: bool = False, colorizer: "Colorizer | None" = None,
                   matrix: str | None = "auto", ffmpeg_cmd: str = "ffmpeg", ffprobe_cmd: str = "ffprobe",
                   progress: Callable[[int], None] | None = None, **options: Any) -> dict:
    """Colorize ``src`` into ``dst`` through ffmpeg with filters around the colorizer; returns a summary.

    ``pix_fmt``: what the decode side hands over (gray, gray10le, yuv420p, yuv420p10le); its luma goes
    through untouched. ``size``/``rate``: the frames' size and rate after the pre-filters; by default
    size is measured through the pre-filters (one frame) and the rate probed from the source, so give
    ``rate`` for filters that change it (``fps=``, ``yadif=1``). ``output_options``: ffmpeg output
    options (``{"vcodec": "libx264", "crf": 18}``). ``options``: ColorizerOptions fields.
    The output is written under a hidden name and renamed when complete.
    """
    from filmcolor.fs import check_output, temp_path

    from ._common import make_colorizer
    from .ffmpeg_pipe import PipeSpec

    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise FormatError(f"input {str(src)!r} does not exist")
    check_output(dst, overwrite, src, hint="overwrite=True")
    if pix_fmt not in DECODE_FORMATS:
        raise FormatError(f"decode pixel format must be one of {', '.join(DECODE_FORMATS)}, got {pix_fmt!r}")
    info = probe_video(src, cmd=ffprobe_cmd)
    if size is None:
        size = filtered_size(src, pre_filters, cmd=ffmpeg_cmd) if pre_filters else (info["width"], info["height"])
    width, height = size
    fps = rate if rate is not None else info["rate"]
    spec = PipeSpec.make(width, height, pix_fmt, out_pix_fmt, matrix=matrix)
    tmp = temp_path(dst)
    decode, encode = build_graph(src, tmp, width=width, height=height, rate=fps, pre_filters=pre_filters,
                                 post_filters=post_filters, pix_fmt=pix_fmt, out_pix_fmt=out_pix_fmt,
                                 full_range=spec.full_range and spec.dst.kind == "yuv", matrix=spec.matrix.name,
                                 audio=audio and info["audio_streams"] > 0, audio_codec=audio_codec,
                                 output_options=output_options)
    c, owned = make_colorizer(colorizer, options)
    t0 = time.monotonic()
    try:
        summary = _run_graph(decode, encode, spec, c, src, dst, ffmpeg_cmd, progress)
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        engine = c.describe()
        if owned:
            c.close()
    elapsed = time.monotonic() - t0
    return {"input": str(src), "output": str(dst), "frames": summary["frames"], "width": width, "height": height,
            "rate": str(fps), "pix_fmt": pix_fmt, "out_pix_fmt": out_pix_fmt, "full_range": spec.full_range,
            "matrix": spec.matrix.name, "audio_streams": info["audio_streams"] if audio else 0,
            "seconds": round(elapsed, 3), "fps": round(summary["frames"] / max(elapsed, 1e-9), 2), "engine": engine,
            "decode_cmd": [ffmpeg_cmd, *decode.get_args()],
            "encode_cmd": [ffmpeg_cmd, *encode.get_args(overwrite_output=True)]}
