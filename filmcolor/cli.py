"""The ``filmcolor`` command line (Typer): ``colorize``, ``preview`` and ``main``; the other commands
register from :mod:`filmcolor.cli_measure` (evaluate, bench, train) and :mod:`filmcolor.cli_info`
(models, engines, plugins, export), ``pipe`` from the ffmpeg-pipe plugin.

Importing this module is cheap (typer, rich, numpy): torch, OpenCV, PyAV and ONNX Runtime are imported
inside the commands that use them, so ``--help``, ``--version`` and usage errors answer at once.
:func:`main` turns every user error into one line ``error: ...`` on stderr and a documented exit code
(0 done, 1 the machine failed: disk full, folder not writable, missing package; 2 usage; 130
interrupted); programming errors keep their traceback.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Optional, Sequence

import typer

from .cli_base import flag, run_app
from .cli_checks import (check_keyframes, check_output_not_folder, check_picture_output, check_preset, check_render_size,
                         check_start_inside, check_times)
from .cli_common import (DeviceOpt, EngineOpt, JsonOpt, ModelOpt, OverwriteOpt, RenderOpt, SaturationOpt, _check_smoothing,
                         _colorizer, _console, _options, _write_json, app)
from . import startup
from .errors import UsageError
from .fs import atomic_write_bytes


def _jobs(src: Path, dst: Path) -> list[tuple[Path, Path]]:
    """Pairs (input, output): one file, or every still/video of a folder into an output folder."""
    from .video.formats import STILL_SUFFIXES

    if not src.is_dir():
        return [(src, dst)]
    videos = {".mp4", ".mov", ".mkv", ".avi", ".m4v", ".mpg", ".mpeg", ".ts", ".webm", ".mxf"}
    files = sorted(p for p in src.iterdir() if p.is_file() and p.suffix.lower() in STILL_SUFFIXES | videos)
    if not files:
        raise UsageError(f"folder {str(src)!r} has no images or videos")
    if dst.exists() and not dst.is_dir():
        raise UsageError(f"input is a folder, so the output {str(dst)!r} must be a folder too")
    dst.mkdir(parents=True, exist_ok=True)
    return [(f, dst / f.name) for f in files]


def _check_encode(src: Path, dst: Path, codec: Optional[str], preset: Optional[str]) -> None:
    """Output format and encoder preset, checked before the model loads (videos only; stills keep their format)."""
    from .video.formats import STILL_SUFFIXES, output_defaults

    if src.is_dir() or (src.suffix.lower() in STILL_SUFFIXES and dst.suffix.lower() in STILL_SUFFIXES):
        return
    check_preset(output_defaults(dst, codec).codec, preset)


@app.command()
def colorize(
    input: Path = typer.Argument(..., metavar="INPUT",
                                 help="Video file, image, image sequence pattern (scan_%06d.png) or folder."),
    output: Path = typer.Argument(..., metavar="OUTPUT",
                                  help="Output file (format from its extension: .mp4 H.264, .mov ProRes 422 HQ, "
                                       ".mkv FFV1, or a picture for a still), or a folder when INPUT is a folder."),
    model: str = ModelOpt, engine: str = EngineOpt, device: Optional[str] = DeviceOpt, render_size: Optional[int] = RenderOpt,
    saturation: float = SaturationOpt,
    smoothing: str = typer.Option("window", metavar="MODE", help="Temporal smoothing: window (looks ahead), stream (causal), off."),
    strength: float = typer.Option(0.7, min=0.0, max=1.0, metavar="X", help="Temporal smoothing strength."),
    keyframes: str = typer.Option("auto", metavar="all|auto|N", help="Frames the model runs on: all, N (every N-th frame of a shot) or auto (shot starts, large motion, falling confidence); the rest carry colour along the optical flow."),
    codec: Optional[str] = typer.Option(None, metavar="NAME", help="Video encoder, e.g. libx265 (default by extension)."),
    crf: Optional[int] = typer.Option(None, min=0, metavar="N", help="Quality for x264/x265/VP9 (default 18 for .mp4; lower is better)."),
    preset: Optional[str] = typer.Option(None, metavar="NAME", help="Encoder preset (x264/x265: ultrafast..veryslow), checked before work starts."),
    pix_fmt: Optional[str] = typer.Option(None, metavar="FMT", help="Output pixel format (default: the source's layout and depth)."),
    start: Optional[float] = typer.Option(None, min=0.0, metavar="SECONDS", help="Start time in seconds (must lie inside the clip)."),
    end: Optional[float] = typer.Option(None, min=0.0, metavar="SECONDS", help="End time in seconds."),
    overwrite: bool = OverwriteOpt,
    quiet: bool = flag("--quiet", help="No progress bar or summary."),
    json_path: Optional[Path] = JsonOpt,
    segments: bool = flag("--segments", help="Long films: work in resumable segments (re-run the same command after a crash to resume)."),
    segment_seconds: float = typer.Option(60.0, min=0.01, metavar="SECONDS", help="With --segments: target segment length (cut at the next keyframe)."),
    workers: Optional[int] = typer.Option(None, min=1, metavar="N", help="With --segments: worker processes sharing the segments (implies --segments); with --ray: Ray actors (default: one per GPU, else per CPU of the cluster)."),
    ray: Optional[str] = typer.Option(None, "--ray", metavar="ADDRESS", help="Run the segments on Ray: 'local' (start one here), 'auto' (this machine's cluster) or ray://host:port (implies --segments)."),
    work_dir: Optional[Path] = typer.Option(None, metavar="PATH", help="With --segments: folder for finished segments (default: hidden folder beside the output)."),
    keep_work: bool = flag("--keep-work", help="With --segments: keep the segment files after joining."),
    hints: Optional[Path] = typer.Option(None, "--hints", metavar="JSON", help="Colour hints: points with sRGB hex or Lab colours, and for film a \"time\" (schema in the README)."),
    reference: Optional[list[str]] = typer.Option(None, "--reference", metavar="[TIME=]IMAGE", help="A colour (or partly coloured) version of the picture; for video TIME=IMAGE (seconds, hh:mm:ss.ss or f<frame>), carried through its shot; repeatable."),
) -> None:
    """Colorize a film, clip, still or folder of them."""
    check_render_size(render_size)
    check_keyframes(keyframes)
    check_times(start, end)
    _check_smoothing(smoothing)
    check_output_not_folder(input, output)
    check_start_inside(input, start)
    _check_encode(input, output, codec, preset)

    from .fs import check_paths

    guidance = _guidance_for(input, output, hints, reference or [])
    encode = {"codec": codec, "crf": crf, "preset": preset, "pix_fmt": pix_fmt}
    if segments or (workers or 1) > 1 or ray or work_dir:
        return _colorize_segmented(input, output, _options(model, engine, device, render_size, saturation, smoothing, strength, keyframes),
                                   encode, segment_seconds, workers, ray, work_dir, keep_work, overwrite, quiet, json_path,
                                   start, end, guidance)
    jobs = _jobs(input, output)
    for src, dst in jobs:
        check_paths(src, dst, overwrite)
    from .video.pipeline import EncodeOptions

    enc = EncodeOptions(**encode)
    c = _colorizer(model, engine, device, render_size, saturation, smoothing, strength, keyframes)
    try:
        results = _run_jobs(jobs, c, overwrite, enc, start, end, quiet, guidance)
    finally:
        c.close()
    _write_json(json_path, results[0] if len(results) == 1 else results)


def _guidance_for(input: Path, output: Path, hints: Optional[Path], reference: list[str]):
    """``--hints``/``--reference`` read and checked before any work: a still's guidance (one reference IMAGE)
    or a video's (TIME=IMAGE references, hints with times); None when neither is given."""
    if hints is None and not reference:
        return None
    from .guidance import StillGuidance, load_hints, read_reference
    from .video.formats import STILL_SUFFIXES

    if input.is_dir():
        raise UsageError("--hints and --reference guide one still picture or one video, not a folder")
    if input.suffix.lower() in STILL_SUFFIXES and output.suffix.lower() in STILL_SUFFIXES:
        if len(reference) > 1 or any("=" in r and not Path(r).exists() for r in reference):
            raise UsageError("a still takes one --reference IMAGE (TIME=IMAGE references are for videos)")
        from .images import read_image

        guidance = StillGuidance.from_files(hints, reference[0] if reference else None)
        guidance.check(read_image(input).shape[:2])
        return guidance
    from .temporal.references import ClipGuidance, parse_reference_args

    refs = parse_reference_args(reference)
    for _, image in refs:
        read_reference(image)  # unreadable: one line now, before any work
    points, relative = load_hints(hints) if hints is not None else ([], False)
    return ClipGuidance(refs, tuple(points), relative)


def _run_jobs(jobs, c, overwrite: bool, enc, start, end, quiet: bool, guidance=None) -> list[dict]:
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from .api import colorize as run

    err = _console()
    results = []
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} frames"),
                  TextColumn("{task.fields[fps]:.1f} fps"), TimeRemainingColumn(), console=err,
                  disable=quiet or not err.is_terminal) as bar:  # no bar in logs: errors stay one line
        for src, dst in jobs:
            task = bar.add_task(f"{src.name} [{c.describe()}]", total=None, fps=0.0)

            def tick(p, task=task):
                bar.update(task, completed=p.frames, total=p.total, fps=p.fps)

            res = run(src, dst, colorizer=c, overwrite=overwrite, encode=enc, start=start, end=end, progress=tick,
                      guidance=guidance)
            for w in res.get("warnings", []):
                err.print(f"[yellow]warning:[/] {w}")
            results.append(res)
    if not quiet:
        for r in results:
            err.print(f"wrote {r['output']}: {r['frames']} frame(s)" + (f", {r['fps']} fps" if "fps" in r else ""))
    return results


def _colorize_segmented(src: Path, dst: Path, options, encode: dict, segment_seconds: float, workers: Optional[int], ray: Optional[str],
                        work_dir: Optional[Path], keep_work: bool, overwrite: bool, quiet: bool, json_path: Optional[Path],
                        start: Optional[float], end: Optional[float], guidance=None) -> None:
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from .colorizer import Colorizer
    from .segments import colorize_segmented
    from .video.pipeline import EncodeOptions

    if src.is_dir() or "%" in src.name:
        raise UsageError("--segments/--workers/--ray take one video file, not a folder or image sequence")
    if start is not None or end is not None:
        raise UsageError("--start/--end cannot be combined with --segments; cut the clip first")
    enc = EncodeOptions(**encode)
    err = _console()
    executor = "ray" if ray else ("processes" if (workers or 1) > 1 else "inline")
    colorizer = Colorizer(options) if executor == "inline" else None
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[segs]} segments"),
                  TextColumn("{task.completed}/{task.total} frames"), TextColumn("{task.fields[fps]:.1f} fps"),
                  TimeRemainingColumn(), console=err, disable=quiet) as bar:
        where = colorizer.describe() if colorizer else f"{options.engine} engine"
        task = bar.add_task(f"{src.name} [{where}]", total=None, fps=0.0, segs="0/?")

        def tick(p) -> None:
            bar.update(task, completed=p.frames, total=p.total, fps=p.fps, segs=f"{p.segments_done}/{p.segments}")

        try:
            res = colorize_segmented(src, dst, options, encode=enc, segment_seconds=segment_seconds, workers=workers,
                                     executor=executor, ray_address=ray or "local", work_dir=work_dir,
                                     keep_work=keep_work, overwrite=overwrite, colorizer=colorizer, progress=tick, guidance=guidance)
        finally:
            if colorizer:
                colorizer.close()
    for w in res.get("warnings", []):
        err.print(f"[yellow]warning:[/] {w}")
    if not quiet:
        err.print(f"wrote {res['output']}: {res['frames']} frame(s) in {res['segments']} segment(s) "
                  f"({res['segments_reused']} reused), {res['executor']}")
    _write_json(json_path, res)


def _preview_frame(input: Path, time: float):
    """RGB uint8 ``[H,W,3]`` of a still, or of the first video frame at or after ``time`` seconds."""
    import cv2

    from .video.formats import STILL_SUFFIXES
    from .video.pipeline import open_input

    if input.suffix.lower() in STILL_SUFFIXES:
        try:
            img = cv2.imread(str(input), cv2.IMREAD_COLOR)
        except cv2.error as exc:
            raise UsageError(f"{str(input)!r} cannot be decoded by OpenCV (a header over its pixel limit?): "
                             f"{str(exc).strip().splitlines()[-1]}") from None
        if img is not None:
            return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    container = open_input(input)
    try:
        vs = container.streams.video[0]
        if time:
            container.seek(int(time / vs.time_base), stream=vs)
        return next((f.to_ndarray(format="rgb24") for f in container.decode(vs)
                     if f.time is None or f.time >= time - 1e-6), None)
    finally:
        container.close()


@app.command()
def preview(
    input: Path = typer.Argument(..., metavar="INPUT", help="Video or image."),
    output: Path = typer.Argument(..., metavar="OUTPUT", help="Picture to write (.png, .jpg, .tif, ...): before | after."),
    time: float = typer.Option(0.0, "--time", min=0.0, metavar="SECONDS", help="Seconds into the video (must lie inside the clip)."),
    model: str = ModelOpt, engine: str = EngineOpt, device: Optional[str] = DeviceOpt, render_size: Optional[int] = RenderOpt,
    saturation: float = SaturationOpt, overwrite: bool = OverwriteOpt,
) -> None:
    """Colorize one frame and write a before/after picture."""
    check_render_size(render_size)
    check_picture_output(output)
    if not input.exists():
        raise UsageError(f"input {str(input)!r} does not exist")
    if output.is_dir():
        raise UsageError(f"output {str(output)!r} is a folder: name the picture file")
    if output.exists() and not overwrite:
        raise UsageError(f"output {str(output)!r} exists; pass --overwrite to replace it")
    check_start_inside(input, time)
    import cv2
    import numpy as np

    from .images import colorize_array

    rgb = _preview_frame(input, time)
    if rgb is None:
        raise UsageError(f"{str(input)!r} has no frame at {time}s")
    c = _colorizer(model, engine, device, render_size, saturation, "off")
    try:
        after = colorize_array(c, cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
    finally:
        c.close()
    before = np.repeat(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
    ok, data = cv2.imencode(output.suffix.lower(), cv2.cvtColor(np.concatenate((before, after), axis=1), cv2.COLOR_RGB2BGR))
    if not ok:
        raise UsageError(f"OpenCV cannot write {output.suffix!r} pictures")
    atomic_write_bytes(output, data.tobytes(), parents=False)
    _console().print(f"wrote {output}")


from . import cli_measure, cli_info  # noqa: E402,F401  (after colorize and preview: their commands register next)


def _register_pipe() -> None:
    from .plugins.ffmpeg_pipe import pipe  # typer + numpy at import; torch loads when the command runs

    app.command("pipe")(pipe)


_register_pipe()


def _on_sigterm(signum, frame) -> None:
    raise KeyboardInterrupt


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Entry point of the ``filmcolor`` console script."""
    startup.begin()
    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with SIGINT ignored (background jobs)
    sys.exit(run_app(app, argv))


if __name__ == "__main__":
    main()
