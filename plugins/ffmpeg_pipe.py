"""The engine of ``filmcolor pipe``: raw frames in on stdin, colorized raw frames out on stdout.

    ffmpeg -i in.mp4 -vf format=gray -f rawvideo - \\
      | filmcolor pipe -W 720 -H 576 --pix-fmt gray \\
      | ffmpeg -f rawvideo -pix_fmt yuv420p -color_range pc -s 720x576 -r 25 -i - -i in.mp4 -map 0:v -map 1:a? out.mp4

It wraps the streaming pipeline (``Colorizer`` + ``ChromaStream(causal=True)``) between two exact raw
readers/writers (frame layouts and plane conversions: :mod:`.raw_video`). For grey and Y'CbCr input the output's luma plane is the input's, byte for byte (only
the chroma planes are made); RGB input is converted to luma first. Reading, colorizing and writing run in
three threads joined by small bounded queues, so memory stays flat, large frames cannot deadlock a
pipeline, and a frame is flushed downstream as soon as it is made. A final frame cut short is an error
(one line, non-zero exit) after every complete frame has been written; end of input is a clean end.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any, Callable, Iterator, Optional

import numpy as np
import typer

from filmcolor.errors import FormatError
from filmcolor.video.threads import Prefetch, WriteBehind

from .raw_video import PipeSpec, _helpers, input_luma, output_planes

if TYPE_CHECKING:  # pragma: no cover - typing only
    from filmcolor.colorizer import Colorizer


def probe() -> str | None:
    """The pipe needs nothing beyond filmcolor itself (ffmpeg on either side is the user's): always usable."""
    return None


def read_exact(stream: IO[bytes], buf: bytearray) -> int:
    """Fill ``buf`` from ``stream`` (readinto loop); returns the bytes read: ``len(buf)``, or fewer at EOF."""
    view = memoryview(buf)
    got = 0
    readinto = getattr(stream, "readinto", None)
    while got < len(buf):
        if readinto is not None:
            n = readinto(view[got:])
        else:
            chunk = stream.read(len(buf) - got)
            n = len(chunk) if chunk else 0
            view[got:got + n] = chunk or b""
        if not n:
            break
        got += n
    return got


def write_all(stream: IO[bytes], data: Any) -> None:
    """Write every byte of ``data`` (raw streams may write less than asked)."""
    view = memoryview(data).cast("B")
    while len(view):
        n = stream.write(view)
        if n is None:  # non-blocking stream with nothing written: try again
            continue
        view = view[n:]


class PipeInputError(ValueError):
    """The raw input stream ended inside a frame."""


def read_frames(stream: IO[bytes], frame_bytes: int, describe: str) -> Iterator[bytearray]:
    """Whole raw frames from ``stream`` until its end; a frame cut short raises :class:`PipeInputError`."""
    frames = 0
    while True:
        buf = bytearray(frame_bytes)
        got = read_exact(stream, buf)
        if got == 0:
            return
        if got < frame_bytes:
            raise PipeInputError(f"input ended inside frame {frames + 1}: got {got} of {frame_bytes} bytes; check "
                                 f"that the frame size and pixel format ({describe}) match the raw stream")
        frames += 1
        yield buf


def write_frame(stream: IO[bytes], planes: list[np.ndarray]) -> None:
    """Write one frame's planes and flush, so the frame leaves at once."""
    for part in planes:
        write_all(stream, part)
    flush = getattr(stream, "flush", None)
    if flush is not None:
        flush()


def _writer_error(exc: BaseException) -> FormatError:
    if isinstance(exc, BrokenPipeError):
        return FormatError("the output pipe was closed by the reading process before all frames were written")
    return FormatError(f"writing the output failed: {exc}")


def run_pipe(src: IO[bytes], dst: IO[bytes], spec: PipeSpec, colorizer: "Colorizer", *, queue_size: int = 4,
             progress: Callable[[int], None] | None = None, references: dict | None = None) -> dict:
    """Colorize raw frames from ``src`` into ``dst`` until the end of ``src``; returns a summary dict.

    ``references``: {frame index: RGB uint8 array or image path}, carried through their shots
    (:class:`~filmcolor.temporal.frame_references.ReferencedStream`: frames before one are held back until
    it has arrived, at most the horizon of 90 frames).

    Raises :class:`~filmcolor.errors.FormatError` (one-line message) for a cut-short last frame,
    an empty input or a closed output, after writing every complete frame it could.
    """
    frame_bytes = spec.src.frame_bytes(spec.width, spec.height)
    describe = f"{spec.width}x{spec.height} {spec.src.name}, {frame_bytes} bytes a frame"
    from filmcolor.temporal.frame_references import ReferencedStream

    stream = ReferencedStream(colorizer.stream(spec.width, spec.height, spec.layout, spec.matrix, causal=True),
                              references, (spec.height, spec.width))
    t0 = time.monotonic()
    frames, cut_short = 0, None
    # stdin is the process's, not ours: the reader may sit in a read() that never returns, so do not wait for it
    with colorizer.streaming_threads(), \
            Prefetch(lambda: read_frames(src, frame_bytes, describe), size=queue_size, name="filmcolor-pipe-read",
                     join_timeout=0.5) as inbox, \
            WriteBehind(lambda planes: write_frame(dst, planes), size=queue_size, name="filmcolor-pipe-write") as writer:
        try:
            try:
                for buf in inbox:
                    y = input_luma(buf, spec)
                    _emit(stream.push(y, y), spec, writer)
                    frames += 1
                    if progress:
                        progress(frames)
            except PipeInputError as exc:
                cut_short = exc  # every complete frame before it is still written
            except OSError as exc:
                if exc is writer.error:
                    raise
                raise FormatError(f"reading the input failed: {exc}") from exc
            _emit(stream.flush(), spec, writer)
            writer.close()
        except Exception as exc:
            if exc is writer.error:
                raise _writer_error(exc) from exc
            raise
    if cut_short is not None:
        raise FormatError(str(cut_short)) from cut_short
    if frames == 0:
        raise FormatError(f"no frames on the input ({spec.describe()}): did the process feeding it fail?")
    elapsed = time.monotonic() - t0
    return {"frames": frames, "width": spec.width, "height": spec.height, "pix_fmt": spec.src.name,
            "out_pix_fmt": spec.dst.name, "full_range": spec.full_range, "matrix": spec.matrix.name,
            "seconds": round(elapsed, 3), "fps": round(frames / max(elapsed, 1e-9), 2),
            "engine": colorizer.describe()}


def _emit(ready: list, spec: PipeSpec, writer: WriteBehind) -> None:
    for y, cb, cr in ready:
        writer.put(output_planes(y, cb, cr, spec))


_Opt = typer.Option
WidthOpt = _Opt("--width", "-W", min=1, metavar="W", help="Frame width in pixels (ffmpeg's -s W).")
HeightOpt = _Opt("--height", "-H", min=1, metavar="H", help="Frame height in pixels (ffmpeg's -s xH).")
PixFmtOpt = _Opt("--pix-fmt", metavar="FMT", help="Input pixel format: gray, gray10le, yuv420p, yuv420p10le, yuv444p, rgb24, bgr24...")
OutPixFmtOpt = _Opt("--out-pix-fmt", metavar="FMT", help="Output pixel format: yuv420p, yuv422p, yuv444p, yuv420p10le, rgb24, bgr24...")
ModelOpt = _Opt("--model", "-m", metavar="NAME|PATH", help="Packaged model name or path to a .safetensors file (with its .json).")
EngineOpt = _Opt("--engine", "-e", metavar="NAME", help="Inference engine: auto (TensorRT, then ONNX Runtime on a GPU; int8 ONNX Runtime on a CPU), torch, onnxruntime, onnxruntime-int8, tensorrt.")
RenderOpt = _Opt("--render-size", min=32, metavar="N", help="Short side the model sees, a multiple of 32 (default: the model's).")
DeviceOpt = _Opt("--device", metavar="cpu|cuda", help="cpu or cuda (default: the engine's choice).")
SaturationOpt = _Opt("--saturation", min=0.0, metavar="X", help="Multiply the predicted colour (1 = as the model made it).")
SmoothingOpt = _Opt("--smoothing", metavar="MODE", help="Temporal smoothing: stream (causal) or off.")
StrengthOpt = _Opt("--strength", min=0.0, max=1.0, metavar="X", help="Temporal smoothing strength.")
RangeOpt = _Opt("--range", metavar="auto|full|limited", help="Luma code range of the input, kept in the output: auto (full for gray, "
                                "limited for yuv), full, limited.")
MatrixOpt = _Opt("--matrix", metavar="NAME", help="Y'CbCr matrix: auto (BT.709 from 720 lines, else BT.601), bt601, bt709, bt2020nc.")
QuietOpt = _Opt("--quiet", metavar="", help="No summary lines on stderr.")
JsonOpt = _Opt("--json", metavar="PATH", help="Also write the summary as JSON to this path.")
ReferenceOpt = _Opt("--reference", metavar="fN=IMAGE", help="Colour frame N (0 = the first) from IMAGE, a colour "
                    "version of it, and carry it through its shot; repeatable. Frames near one are held back "
                    "until its shot has arrived (at most 90 frames).")


def _check_references(values: list[str], width: int, height: int) -> dict:
    """``--reference fN=IMAGE`` values -> {N: RGB array}, every image read and checked before work starts."""
    if not values:
        return {}
    from filmcolor.guidance import read_reference, reference_to_guidance
    from filmcolor.temporal.frame_references import frame_reference_args

    refs = {n: read_reference(image) for n, image in frame_reference_args(values).items()}
    for rgb in refs.values():
        reference_to_guidance(rgb, (height, width), (max(1, height // 8), max(1, width // 8)))  # aspect ratio
    return refs


def pipe(
    width: Annotated[int, WidthOpt],
    height: Annotated[int, HeightOpt],
    pix_fmt: Annotated[str, PixFmtOpt] = "gray",
    out_pix_fmt: Annotated[str, OutPixFmtOpt] = "yuv420p",
    model: Annotated[str, ModelOpt] = "default",
    engine: Annotated[str, EngineOpt] = "auto",
    render_size: Annotated[Optional[int], RenderOpt] = None,
    device: Annotated[Optional[str], DeviceOpt] = None,
    saturation: Annotated[float, SaturationOpt] = 1.0,
    smoothing: Annotated[str, SmoothingOpt] = "stream",
    strength: Annotated[float, StrengthOpt] = 0.7,
    color_range: Annotated[str, RangeOpt] = "auto",
    matrix: Annotated[str, MatrixOpt] = "auto",
    quiet: Annotated[bool, QuietOpt] = False,
    json_path: Annotated[Optional[Path], JsonOpt] = None,
    reference: Annotated[Optional[list[str]], ReferenceOpt] = None,
) -> None:
    """Colorize raw video frames from stdin to stdout (between two ffmpeg processes)."""
    from filmcolor.cli_checks import check_render_size

    check_render_size(render_size)
    references = _check_references(reference or [], width, height)
    if smoothing not in ("stream", "off"):
        raise FormatError(f"--smoothing must be stream or off for a pipe (it is causal), got {smoothing!r}")
    spec = PipeSpec.make(width, height, pix_fmt, out_pix_fmt, color_range=color_range, matrix=matrix)
    if sys.stdout.isatty():
        raise FormatError("stdout is a terminal: pipe the raw output into a program (ffmpeg -f rawvideo ... -i -)")
    colorizer, _ = _helpers().make_colorizer(None, {"model": model, "engine": engine, "device": device, "render_size": render_size,
                                         "saturation": saturation, "smoothing": smoothing,
                                         "smoothing_strength": strength})
    log = sys.stderr
    if not quiet:
        print(f"filmcolor pipe: {spec.describe()} [{colorizer.describe()}]", file=log, flush=True)
        if spec.full_range and spec.dst.kind == "yuv":
            print("filmcolor pipe: the output is full range: give the encoding ffmpeg -color_range pc before its -i",
                  file=log, flush=True)
    try:
        summary = run_pipe(sys.stdin.buffer, sys.stdout.buffer, spec, colorizer, references=references)
    except BaseException:
        _quiet_stdout()
        raise
    finally:
        colorizer.close()
    if not quiet:
        print(f"filmcolor pipe: {summary['frames']} frame(s), {summary['fps']} fps", file=log, flush=True)
    if json_path is not None:
        import json

        json_path.write_text(json.dumps(summary, indent=2) + "\n")


def _quiet_stdout() -> None:
    """After a failed write, point stdout at /dev/null so Python's exit flush does not complain again."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def main(argv: list[str] | None = None) -> None:
    """``python -m filmcolor.plugins.ffmpeg_pipe``: the same command standalone, with the CLI's one-line errors."""
    import signal

    from filmcolor.cli import run_app

    app = typer.Typer(add_completion=False)
    app.command()(pipe)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.exit(run_app(app, argv, prog_name="filmcolor pipe"))


if __name__ == "__main__":
    main()
