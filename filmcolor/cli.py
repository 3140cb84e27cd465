"""The ``filmcolor`` command line (Typer).

Importing this module is cheap (typer, rich, numpy): torch, OpenCV, PyAV and ONNX Runtime are imported
inside the commands that use them, so ``--help``, ``--version`` and usage errors answer at once.
:func:`main` turns every user error into one line ``error: ...`` on stderr and a documented exit code
(0 done, 1 the machine failed: disk full, folder not writable, missing package; 2 usage; 130
interrupted); programming errors keep their traceback.
"""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from typing import Optional, Sequence

import typer

from . import __version__
from .cli_base import AppGroup, AppTyper, flag, run_app, write_atomic
from .cli_checks import (check_keyframes, check_output_not_folder, check_picture_output, check_preset, check_render_size,
                         check_start_inside, check_times)
from .errors import UsageError



app = AppTyper(cls=AppGroup, add_completion=False, no_args_is_help=True, rich_markup_mode="rich",
             help="Colorize black-and-white film and video. The source's luminance is kept bit for bit; "
                  "only colour is made.")


ModelOpt = typer.Option("default", "--model", "-m", metavar="NAME|PATH",
                        help="Packaged model name or path to a .safetensors file (with its .json).")
EngineOpt = typer.Option("auto", "--engine", "-e", metavar="NAME",
                         help="Inference engine: auto, torch, onnxruntime, onnxruntime-int8 (CPU, opt-in), tensorrt.")
DeviceOpt = typer.Option(None, "--device", metavar="cpu|cuda", help="Where the model runs (default: the engine's choice).")
RenderOpt = typer.Option(None, "--render-size", min=32, metavar="N",
                         help="Short side the model sees, a multiple of 32 (others are refused). Default: the "
                              "model's (256). Larger: finer colour, slower.")
SaturationOpt = typer.Option(1.0, "--saturation", min=0.0, metavar="X",
                             help="Multiply the predicted colour (1 = as the model made it, 0 = grey).")
OverwriteOpt = flag("--overwrite", "-y", help="Replace an existing output file.")
JsonOpt = typer.Option(None, "--json", metavar="PATH", help="Also write the summary/figures as JSON to this path.")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"filmcolor {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", metavar="", is_eager=True, callback=_version,
                                       help="Print the version and exit.")) -> None:
    """Colorize black-and-white film and video. The source's luminance is kept bit for bit; only colour is made."""


def _console(stderr: bool = True):
    from rich.console import Console

    return Console(stderr=stderr)


def _write_json(path: Optional[Path], data) -> None:
    if path is not None:
        path.write_text(json.dumps(data, indent=2, default=str) + "\n")


def _options(model: str, engine: str, device: Optional[str], render_size: Optional[int], saturation: float = 1.0,
             smoothing: str = "window", strength: float = 0.7, keyframes: str = "all"):
    from .colorizer import ColorizerOptions

    return ColorizerOptions(model=model, engine=engine, device=device, render_size=render_size,
                            saturation=saturation, smoothing=smoothing, smoothing_strength=strength, keyframes=keyframes)


def _colorizer(*args, **kw):
    from .colorizer import Colorizer

    return Colorizer(_options(*args, **kw))


def _check_smoothing(smoothing: str) -> None:
    if smoothing not in ("window", "stream", "off"):
        raise UsageError(f"--smoothing must be window, stream or off, got {smoothing!r}")


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
    keyframes: str = typer.Option("all", metavar="all|auto|N", help="Frames the model runs on: all, N (every N-th frame of a shot) or auto (shot starts, large motion, falling confidence); the rest carry colour along the optical flow."),
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
    write_atomic(output, data.tobytes())
    _console().print(f"wrote {output}")


@app.command()
def models(json_path: Optional[Path] = JsonOpt) -> None:
    """List packaged models and registered architectures."""
    from rich.table import Table

    from .models import list_models, list_weights
    from .models.weights import ModelConfig

    table = Table("model", "architecture", "render size", "version", "file")
    rows = []
    for name, cfg_path in list_weights().items():
        cfg = ModelConfig.from_json(cfg_path.read_text())
        rows.append({"name": name, "architecture": cfg.architecture, "render_size": cfg.render_size,
                     "version": cfg.version, "file": str(cfg_path.with_suffix(".safetensors"))})
        table.add_row(name, cfg.architecture, str(cfg.render_size), cfg.version, cfg_path.with_suffix(".safetensors").name)
    out = _console(stderr=False)
    out.print(table)
    out.print("architectures: " + ", ".join(list_models()))
    _write_json(json_path, {"weights": rows, "architectures": list_models()})


@app.command()
def engines(json_path: Optional[Path] = JsonOpt) -> None:
    """List inference engines: usable here or why not."""
    from rich.markup import escape
    from rich.table import Table

    from .engines import AUTO_ORDER, engine_specs, probe

    table = Table("engine", "device", "usable", "why not / how to fix")
    rows = []
    for name in engine_specs():
        for dev in ("cuda", "cpu"):
            reason = probe(name, dev)
            auto = AUTO_ORDER.index((name, dev)) + 1 if (name, dev) in AUTO_ORDER else None
            rows.append({"engine": name, "device": dev, "usable": reason is None, "reason": reason, "auto_rank": auto})
            table.add_row(name, dev, "yes" if reason is None else "no", escape(reason or ""))
    _console(stderr=False).print(table)
    _write_json(json_path, rows)


@app.command()
def evaluate(
    input: Path = typer.Argument(..., metavar="INPUT",
                                 help="A folder of colour images (each made grey, colorized and scored against "
                                      "itself), or a colorized clip scored against --reference."),
    reference: Optional[Path] = typer.Option(None, "--reference", metavar="PATH", help="With a clip as INPUT: the colour original it was made from (grey-converted, then colorized)."),
    model: str = ModelOpt, engine: str = EngineOpt, render_size: Optional[int] = RenderOpt,
    saturation: float = SaturationOpt,
    out_dir: Optional[Path] = typer.Option(None, "--out", metavar="FOLDER", help="Write report.md, metrics.json and grid.png here."),
    limit: Optional[int] = typer.Option(None, min=1, metavar="N", help="Evaluate at most this many images (or video frames)."),
    json_path: Optional[Path] = JsonOpt,
    exemplar: Optional[str] = typer.Option(None, "--exemplar", metavar="first", help="first: the clip is GREY; colour it with --reference's first frame as the reference (and automatically) and score both."),
) -> None:
    """Images: PSNR, CIEDE2000, colourfulness beside the zero-chroma baseline. Video (a colorized clip and
    --reference): also warp error (Lai et al. 2018) and CDC (TCVC), beside the original and the grey clip."""
    check_render_size(render_size)
    if not input.exists():
        raise UsageError(f"input {str(input)!r} does not exist")
    if reference is not None or input.is_file():
        if reference is None:
            raise UsageError(f"{str(input)!r} is a file: give --reference ORIGINAL to score a colorized clip, "
                             f"or a folder of colour images")
        if exemplar is not None:
            return _evaluate_exemplar(input, reference, exemplar, model, engine, render_size, saturation, limit,
                                      out_dir, json_path)
        return _evaluate_video(input, reference, limit, out_dir, json_path)
    from .evaluate import evaluate_images, write_report

    c = _colorizer(model, engine, None, render_size, saturation, "off")
    try:
        rep = evaluate_images(c.infer_L, input, render_size=c.render_size, limit=limit,
                              grid=out_dir / "grid.png" if out_dir else None, multiple=c.engine.size_multiple)
    finally:
        c.close()
    _console(stderr=False).print(rep.markdown(f"{c.describe()} on {input}"))
    if out_dir:
        write_report(rep, out_dir, f"{c.describe()} on {input}")
    _write_json(json_path, rep.summary())


def _evaluate_exemplar(grey: Path, colour: Path, exemplar: str, model: str, engine: str, render_size: Optional[int],
                       saturation: float, limit: Optional[int], out_dir: Optional[Path], json_path: Optional[Path]) -> None:
    from .errors import UsageError
    from .evaluate_exemplar import evaluate_exemplar, format_exemplar_report
    from .video.pipeline import open_input

    if exemplar != "first":
        raise UsageError(f"--exemplar must be 'first', got {exemplar!r}")
    for p in (grey, colour):
        open_input(p).close()
    c = _colorizer(model, engine, None, render_size, saturation)
    try:
        res = evaluate_exemplar(c, grey, colour, limit=limit)
        text = format_exemplar_report(res, f"{grey.name} with {colour.name}'s first frame [{c.describe()}]")
    finally:
        c.close()
    _console(stderr=False).print(text)
    if out_dir:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "report.md").write_text(text)
        _write_json(out_dir / "metrics.json", res)
    _write_json(json_path, res)


def _evaluate_video(clip: Path, reference: Path, limit: Optional[int], out_dir: Optional[Path],
                    json_path: Optional[Path]) -> None:
    from .video.pipeline import open_input
    from .video_metrics import evaluate_video, format_report

    for p in (clip, reference):
        open_input(p).close()  # one-line error for a missing or unreadable file
    res = evaluate_video(clip, reference, max_frames=limit)
    if res["frames"] < 2:
        raise UsageError("video metrics need at least 2 frames in both clips")
    text = format_report(res, f"{clip.name} against {reference.name}")
    _console(stderr=False).print(text)
    if out_dir:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "report.md").write_text(text + "\n")
        _write_json(out_dir / "metrics.json", res)
    _write_json(json_path, res)


@app.command()
def train(
    data: Path = typer.Argument(..., metavar="FOLDER", help="Folder of colour images (recursive)."),
    out_dir: Path = typer.Option(..., "--out", metavar="FOLDER", help="Run folder: checkpoint, log.jsonl, samples, export/."),
    val: Optional[Path] = typer.Option(None, metavar="FOLDER", help="Validation folder of colour images."),
    architecture: str = typer.Option("sagan-unet", metavar="NAME", help="Generator architecture from the registry."),
    pretrained: bool = typer.Option(True, metavar="", help="ImageNet encoder weights (sagan-unet)."),
    size: int = typer.Option(160, min=32, metavar="N", help="Training crop size in pixels."),
    batch_size: int = typer.Option(16, min=1, metavar="N", help="Images per training step."),
    pretrain_steps: int = typer.Option(2200, min=0, metavar="N", help="Generator pre-training steps (L1 + feature loss)."),
    critic_steps: int = typer.Option(150, min=0, metavar="N", help="Critic pre-training steps."),
    gan_steps: int = typer.Option(700, min=0, metavar="N", help="GAN steps (TTUR)."),
    adv_loss: str = typer.Option("bce", metavar="NAME", help="bce (label smoothing 0.9), lsgan or hinge."),
    lambda_l1: float = typer.Option(100.0, metavar="X", help="Weight of the L1 loss on a,b."),
    feature_weight: float = typer.Option(10.0, metavar="X", help="Weight of the feature (perceptual) loss."),
    minutes: Optional[float] = typer.Option(None, metavar="MINUTES", help="Wall-time budget; the same command resumes."),
    lr_g: float = typer.Option(5e-4, metavar="X", help="Generator learning rate in pre-training (cosine schedule)."),
    init_from: Optional[Path] = typer.Option(None, metavar="FOLDER", help="Start from another run's checkpoint (its folder): fine-tuning."),
    val_every: int = typer.Option(1000, min=1, metavar="N", help="Validate (and export) every this many steps."),
    device: str = typer.Option("cpu", metavar="cpu|cuda", help="Where to train."),
    seed: int = typer.Option(0, metavar="N", help="Random seed (data order, initial weights)."),
    quiet: bool = flag("--quiet", help="No progress lines on stderr."),
    guidance: bool = flag("--guidance", help="Give the generator guidance inputs (hint a,b + mask) and train them on simulated hints and references."),
    init_weights: Optional[str] = typer.Option(None, metavar="MODEL", help="Start the generator from inference weights (packaged name or .safetensors); new guidance layers start at zero."),
    resume_from: Optional[Path] = typer.Option(None, metavar="STEM", help="Continue from a compact checkpoint (weights, step, clock; e.g. one committed by an earlier machine)."),
    compact: Optional[Path] = typer.Option(None, metavar="STEM", help="At the end, also write a compact resumable checkpoint (bf16 weights, no optimizer state) here."),
    degrade: float = typer.Option(0.5, min=0.0, max=1.0, metavar="X", help="Share of samples whose input gets archival degradations (grain, blur, fading, dust, ...)."),
    bf16: bool = typer.Option(True, "--bf16/--fp32", metavar="", help="CPU: bfloat16 autocast (1.6x faster on AVX-512 bf16 CPUs); CUDA always uses fp16 autocast."),
    val_limit: int = typer.Option(60, min=1, metavar="N", help="Validation images per check."),
    rebalance: float = typer.Option(0.0, min=0.0, max=1.0, metavar="X", help="Weight rare (saturated) colours up in the L1 loss: 0 plain, 1 fully rebalanced (Zhang et al. 2016)."),
    balance_weight: float = typer.Option(0.0, min=0.0, metavar="X", help="Weight of a per-picture mean a,b term against colour casts."),
    warmup: int = typer.Option(100, min=0, metavar="N", help="Learning-rate warm-up steps at the start of this run (also after a resume)."),
) -> None:
    """Train (or resume) a generator: pre-train G, pre-train the critic, short GAN phase."""
    from .train import TrainConfig, Trainer

    kwargs = {"pretrained": pretrained} if architecture == "sagan-unet" else {}
    if init_weights or resume_from:
        kwargs = {**kwargs, "pretrained": False, "sn": False} if architecture == "sagan-unet" else kwargs
    if guidance:
        kwargs["guidance"] = True
    cfg = TrainConfig(data=str(data), out=str(out_dir), val=str(val) if val else None, architecture=architecture,
                      model_kwargs=kwargs, size=size, batch_size=batch_size, pretrain_steps=pretrain_steps,
                      critic_steps=critic_steps, gan_steps=gan_steps, adv_loss=adv_loss, lambda_l1=lambda_l1,
                      feature_weight=feature_weight, minutes=minutes, device=device, seed=seed, lr_g=lr_g,
                      init_from=str(init_from) if init_from else None, val_every=val_every,
                      init_weights=init_weights, resume_from=str(resume_from) if resume_from else None,
                      degrade=degrade, bf16=bf16, val_limit=val_limit, rebalance=rebalance,
                      balance_weight=balance_weight, warmup=warmup)
    err = _console()
    trainer = Trainer(cfg, progress=None if quiet else (lambda r: err.print(json.dumps(r))))
    res = trainer.run()
    if compact is not None:
        res["compact"] = str(trainer.save_compact(compact))
    typer.echo(json.dumps(res))


def _bench_models(engine: str, model: str, render_sizes: str, model_frames: int) -> list[dict]:
    """Model-only timing per engine and render size (an engine unusable here is reported, not fatal)."""
    from rich.markup import escape
    from rich.table import Table

    from .bench_model import bench_engines
    from .engines import EngineUnavailable, create_engine
    from .models import load_model

    names = [engine] if engine != "auto" else ["torch", "onnxruntime", "onnxruntime-int8", "tensorrt"]
    table = Table("engine", "render size", "ms/frame", "x torch")
    usable = {}
    for name in names:
        try:
            m, cfg = load_model(model)
            usable[name] = create_engine(name, m, cfg)
        except EngineUnavailable as exc:
            table.add_row(name, "-", escape(f"unavailable: {exc}"), "")
    rows = bench_engines(usable, render_sizes=render_sizes_tuple(render_sizes), frames=model_frames) if usable else []
    torch_ms = {r["render_size"]: r["ms_per_frame"] for r in rows if r["engine"] == "torch"}
    for row in rows:
        if row["render_size"] in torch_ms:  # speed-up over eager PyTorch (channels-last) in the same run
            row["speedup_vs_torch"] = round(torch_ms[row["render_size"]] / row["ms_per_frame"], 3)
        table.add_row(row["engine"], str(row["render_size"]), f"{row['ms_per_frame']:.1f}",
                      f"{row['speedup_vs_torch']:.2f}" if "speedup_vs_torch" in row else "")
    for eng in usable.values():
        eng.close()
    _console(stderr=False).print(table)
    return rows


def render_sizes_tuple(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(s) for s in text.split(","))
    except ValueError:
        raise UsageError(f"--render-sizes takes comma-separated integers, got {text!r}") from None
    for s in sizes:
        check_render_size(s)
    return sizes


@app.command()
def bench(
    clip: Optional[Path] = typer.Option(None, metavar="PATH", help="Source clip, looped and scaled (default: ffmpeg's testsrc2 pattern, made grey)."),
    sizes: str = typer.Option("480p,720p,1080p", metavar="LIST", help="Comma-separated: 480p, 720p, 1080p."),
    frames: int = typer.Option(480, min=2, metavar="N", help="Clip length per size, in frames."),
    modes: str = typer.Option("default,fast", metavar="LIST", help="Comma-separated colorize modes: default (the CLI's defaults), fast."),
    rounds: int = typer.Option(2, min=1, metavar="N", help="Interleaved rounds of ffmpeg and each mode per size."),
    engine: str = EngineOpt, model: str = ModelOpt, render_size: Optional[int] = RenderOpt,
    render_sizes: str = typer.Option("192,256,320", metavar="LIST", help="Render sizes for the model-only timing."),
    skip_model: bool = flag("--skip-model", help="Skip the model-only timing."),
    model_frames: int = typer.Option(20, min=1, metavar="N", help="Timed calls per engine and render size (interleaved)."),
    json_path: Optional[Path] = JsonOpt,
) -> None:
    """Model ms/frame per engine and render size; whole colorize runs (start-up included) beside ffmpeg's transcode."""
    check_render_size(render_size)
    render_sizes_tuple(render_sizes)
    if clip is not None and not clip.exists():
        raise UsageError(f"bench clip {str(clip)!r} not found")
    from rich.table import Table

    from .bench import end_to_end

    report: dict = {"model": [], "end_to_end": []}
    if not skip_model:
        report["model"] = _bench_models(engine, model, render_sizes, model_frames)
    args = ["--engine", engine, "--model", model] + (["--render-size", str(render_size)] if render_size else [])
    rows = end_to_end([s.strip() for s in sizes.split(",")], frames=frames, source=clip,
                      modes=[m.strip() for m in modes.split(",")], extra=args, rounds=rounds)
    table = Table("size", "mode", "ffmpeg fps", "filmcolor fps", "ratio (min-max)", "first frame s", "peak RSS MiB")
    for r in rows:
        table.add_row(r["size"], r["mode"], f"{r['ffmpeg_fps']:.1f}", f"{r['filmcolor_fps']:.1f}",
                      f"{r['ratio']:.3f} ({r['ratio_min']:.3f}-{r['ratio_max']:.3f})", f"{r['first_frame_s']:.2f}",
                      f"{r['peak_rss_mib']:.0f}")
    _console(stderr=False).print(table)
    report["end_to_end"] = rows
    _write_json(json_path, report)


@app.command()
def export(
    output: Path = typer.Argument(..., metavar="OUTPUT", help="Path of the .onnx file to write."),
    model: str = ModelOpt, opset: int = typer.Option(17, min=14, metavar="N", help="ONNX opset."),
    fp16: bool = flag("--fp16", help="Compute in half precision (float32 input/output)."),
    overwrite: bool = OverwriteOpt,
    json_path: Optional[Path] = JsonOpt,
) -> None:
    """Export a model to ONNX (dynamic batch, height, width) and check parity with PyTorch."""
    if output.is_dir():
        raise UsageError(f"output {str(output)!r} is a folder: name the .onnx file")
    if output.exists() and not overwrite:
        raise UsageError(f"output {str(output)!r} exists; pass --overwrite to replace it")
    import torch

    from .engines.export import export_onnx, parity
    from .models import load_model

    m, cfg = load_model(model)
    export_onnx(m, cfg, output, opset=opset, dtype=torch.float16 if fp16 else torch.float32)
    diff = parity(m, output, [(1, 1, 64, 96), (2, 1, 128, 64)])
    _console(stderr=False).print(f"wrote {output}: max |a,b| difference vs PyTorch {diff:.2e}")
    _write_json(json_path, {"output": str(output), "opset": opset, "fp16": fp16, "max_abs_diff": diff})


@app.command("plugins")
def plugins_cmd(json_path: Optional[Path] = JsonOpt) -> None:
    """List plugins (ffmpeg pipe/graph, OpenCV, VapourSynth): usable here or why not."""
    from rich.markup import escape
    from rich.table import Table

    from .plugins.registry import list_plugins

    table = Table("plugin", "usable", "what", "why not / how to fix")
    rows = list_plugins()
    for r in rows:
        table.add_row(r["name"], "yes" if r["usable"] else "no", escape(r["description"]), escape(r["reason"] or ""))
    _console(stderr=False).print(table)
    _write_json(json_path, rows)


def _register_pipe() -> None:
    from .plugins.ffmpeg_pipe import pipe  # typer + numpy at import; torch loads when the command runs

    app.command("pipe")(pipe)


_register_pipe()


def _on_sigterm(signum, frame) -> None:
    raise KeyboardInterrupt


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Entry point of the ``filmcolor`` console script."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with SIGINT ignored (background jobs)
    sys.exit(run_app(app, argv))


if __name__ == "__main__":
    main()
