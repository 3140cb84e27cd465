"""The ``filmcolor`` command line (Typer)."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode="rich",
                  help="Colorize black-and-white film and video. The source's luminance is kept bit for bit; only colour is made.")
err = Console(stderr=True)
out = Console()

ModelOpt = typer.Option("default", "--model", "-m", help="Packaged model name or path to a .safetensors file (with its .json).")
EngineOpt = typer.Option("auto", "--engine", "-e", help="Inference engine: auto, torch, onnxruntime, onnxruntime-int8 (CPU, opt-in), tensorrt.")
DeviceOpt = typer.Option(None, "--device", help="cpu or cuda (default: the engine's choice).")
RenderOpt = typer.Option(None, "--render-size", "-r", min=32, help="Short side the model sees (multiple of 32). Default: the model's (256). Larger: finer colour, slower.")
JsonOpt = typer.Option(None, "--json", help="Also write the summary/figures as JSON to this path.")


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


def _jobs(src: Path, dst: Path) -> list[tuple[Path, Path]]:
    """Pairs (input, output): one file, or every still/video of a folder into an output folder."""
    from .train.data import IMAGE_SUFFIXES
    from .video.formats import FormatError

    if not src.is_dir():
        return [(src, dst)]
    videos = {".mp4", ".mov", ".mkv", ".avi", ".m4v", ".mpg", ".mpeg", ".ts", ".webm", ".mxf"}
    files = sorted(p for p in src.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES | videos | {".dpx"})
    if not files:
        raise FormatError(f"folder {str(src)!r} has no images or videos")
    if dst.exists() and not dst.is_dir():
        raise FormatError(f"input is a folder, so the output {str(dst)!r} must be a folder too")
    dst.mkdir(parents=True, exist_ok=True)
    return [(f, dst / f.name) for f in files]


@app.command()
def colorize(
    input: Path = typer.Argument(..., help="Video file, image, image sequence pattern (scan_%06d.png) or folder."),
    output: Path = typer.Argument(..., help="Output file (format from extension: .mp4 H.264, .mov ProRes 422 HQ, .mkv FFV1) or folder."),
    model: str = ModelOpt, engine: str = EngineOpt, device: Optional[str] = DeviceOpt, render_size: Optional[int] = RenderOpt,
    saturation: float = typer.Option(1.0, min=0.0, help="Multiply the predicted colour (1 = as the model made it)."),
    smoothing: str = typer.Option("window", help="Temporal smoothing: window (looks ahead), stream (causal), off."),
    strength: float = typer.Option(0.7, min=0.0, max=1.0, help="Temporal smoothing strength."),
    keyframes: str = typer.Option("all", help="Frames the model runs on: all, N (every N-th frame of a shot) or auto (shot starts, large motion, falling confidence); the rest carry colour along the optical flow."),
    codec: Optional[str] = typer.Option(None, help="Video encoder (default by extension)."),
    crf: Optional[int] = typer.Option(None, help="Quality for x264/x265/VP9 (default 18 for .mp4)."),
    preset: Optional[str] = typer.Option(None, help="Encoder preset (x264: ultrafast..veryslow)."),
    pix_fmt: Optional[str] = typer.Option(None, help="Output pixel format (default: the source's layout and depth)."),
    start: Optional[float] = typer.Option(None, min=0.0, help="Start time in seconds."),
    end: Optional[float] = typer.Option(None, min=0.0, help="End time in seconds."),
    overwrite: bool = typer.Option(False, "--overwrite", "-y", help="Replace an existing output."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    json_path: Optional[Path] = JsonOpt,
    segments: bool = typer.Option(False, "--segments", help="Long films: work in resumable segments (re-run the same command after a crash to resume)."),
    segment_seconds: float = typer.Option(60.0, min=0.01, help="With --segments: target segment length (cut at the next keyframe)."),
    workers: Optional[int] = typer.Option(None, min=1, help="With --segments: worker processes sharing the segments (implies --segments); with --ray: Ray actors (default: one per GPU, else per CPU of the cluster)."),
    ray: Optional[str] = typer.Option(None, "--ray", help="Run the segments on Ray: 'local' (start one here), 'auto' (this machine's cluster) or ray://host:port (implies --segments)."),
    work_dir: Optional[Path] = typer.Option(None, help="With --segments: folder for finished segments (default: hidden folder beside the output)."),
    keep_work: bool = typer.Option(False, "--keep-work", help="With --segments: keep the segment files after joining."),
    reference: Optional[list[str]] = typer.Option(None, "--reference", help="Video: TIME=IMAGE, a colour version of the frame at TIME (seconds, hh:mm:ss.ss or f<frame>, 0 = first), carried through its shot; repeatable."),
    hints: Optional[Path] = typer.Option(None, "--hints", help="Hints JSON (points with colours; with \"time\" for film)."),
) -> None:
    """Colorize a film, clip, still or folder of them."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from .api import colorize as run
    from .video.pipeline import EncodeOptions, check_paths

    enc = EncodeOptions(codec=codec, crf=crf, preset=preset, pix_fmt=pix_fmt)
    guidance = _clip_guidance(reference, hints)
    if segments or (workers or 1) > 1 or ray or work_dir:
        return _colorize_segmented(input, output, _options(model, engine, device, render_size, saturation, smoothing, strength, keyframes),
                                   enc, segment_seconds, workers, ray, work_dir, keep_work, overwrite, quiet, json_path,
                                   start, end, guidance)
    jobs = _jobs(input, output)
    for src, dst in jobs:
        check_paths(src, dst, overwrite)
    c = _colorizer(model, engine, device, render_size, saturation, smoothing, strength, keyframes)
    results = []
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} frames"),
                  TextColumn("{task.fields[fps]:.1f} fps"), TimeRemainingColumn(), console=err, disable=quiet) as bar:
        for src, dst in jobs:
            task = bar.add_task(f"{src.name} [{c.describe()}]", total=None, fps=0.0)

            def tick(p, task=task):
                bar.update(task, completed=p.frames, total=p.total, fps=p.fps)

            if guidance:
                res = _run_guided(src, dst, c, guidance, overwrite=overwrite, encode=enc, start=start, end=end, progress=tick)
            else:
                res = run(src, dst, colorizer=c, overwrite=overwrite, encode=enc, start=start, end=end, progress=tick)
            for w in res.get("warnings", []):
                err.print(f"[yellow]warning:[/] {w}")
            results.append(res)
    c.close()
    if not quiet:
        for r in results:
            err.print(f"wrote {r['output']}: {r['frames']} frame(s)" + (f", {r['fps']} fps" if "fps" in r else ""))
    _write_json(json_path, results[0] if len(results) == 1 else results)


def _clip_guidance(reference: Optional[list[str]], hints: Optional[Path]):
    """--reference TIME=IMAGE ... and --hints for a video, as a ClipGuidance (None when neither)."""
    if not reference and hints is None:
        return None
    from .guidance import load_hints, read_reference
    from .temporal.references import ClipGuidance, parse_reference_args

    refs = parse_reference_args(reference or [])
    for _, image in refs:
        read_reference(image)  # unreadable: one line now, before any work
    points, relative = load_hints(hints) if hints is not None else ([], False)
    return ClipGuidance(refs, tuple(points), relative)


def _run_guided(src: Path, dst: Path, c, guidance, **kw) -> dict:
    """A video with references/hints (stills take --reference IMAGE through the stills path)."""
    from .video.formats import STILL_SUFFIXES
    from .video.pipeline import colorize_video

    if src.suffix.lower() in STILL_SUFFIXES:
        from .errors import UsageError

        raise UsageError("TIME=IMAGE references are for videos; a still takes --reference IMAGE")
    return colorize_video(src, dst, c, guidance=guidance, **kw)


def _colorize_segmented(src: Path, dst: Path, options, enc, segment_seconds: float, workers: Optional[int], ray: Optional[str],
                        work_dir: Optional[Path], keep_work: bool, overwrite: bool, quiet: bool, json_path: Optional[Path],
                        start: Optional[float], end: Optional[float], guidance=None) -> None:
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from .colorizer import Colorizer
    from .segments import colorize_segmented
    from .video.formats import FormatError

    if src.is_dir() or "%" in src.name:
        raise FormatError("--segments/--workers/--ray take one video file, not a folder or image sequence")
    if start is not None or end is not None:
        raise FormatError("--start/--end cannot be combined with --segments; cut the clip first")
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


@app.command()
def preview(
    input: Path = typer.Argument(..., help="Video or image."),
    output: Path = typer.Argument(..., help="PNG/JPEG picture: before | after."),
    time: float = typer.Option(0.0, "--time", "-t", min=0.0, help="Seconds into the video."),
    model: str = ModelOpt, engine: str = EngineOpt, device: Optional[str] = DeviceOpt, render_size: Optional[int] = RenderOpt,
    saturation: float = typer.Option(1.0, min=0.0), overwrite: bool = typer.Option(False, "--overwrite", "-y"),
) -> None:
    """Colorize one frame and write a before/after picture."""
    import cv2
    import numpy as np

    from .images import colorize_array
    from .video.formats import FormatError
    from .video.pipeline import open_input

    if output.exists() and not overwrite:
        raise FormatError(f"output {str(output)!r} exists; pass --overwrite to replace it")
    img = cv2.imread(str(input), cv2.IMREAD_COLOR) if input.exists() else None
    if img is not None:
        rgb = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    else:
        if not input.exists():
            raise FormatError(f"input {str(input)!r} does not exist")
        container = open_input(input)
        vs = container.streams.video[0]
        if time:
            container.seek(int(time / vs.time_base), stream=vs)
        rgb = next((f.to_ndarray(format="rgb24") for f in container.decode(vs)
                    if f.time is None or f.time >= time - 1e-6), None)
        container.close()
        if rgb is None:
            raise FormatError(f"{str(input)!r} has no frame at {time}s")
    c = _colorizer(model, engine, device, render_size, saturation, "off")
    after = colorize_array(c, cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
    before = np.repeat(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
    if not cv2.imwrite(str(output), cv2.cvtColor(np.concatenate((before, after), axis=1), cv2.COLOR_RGB2BGR)):
        raise FormatError(f"cannot write picture {str(output)!r}")
    err.print(f"wrote {output}")


@app.command()
def models(json_path: Optional[Path] = JsonOpt) -> None:
    """List packaged models and registered architectures."""
    from .models import list_models, list_weights
    from .models.weights import ModelConfig

    table = Table("model", "architecture", "render size", "version", "file")
    rows = []
    for name, cfg_path in list_weights().items():
        cfg = ModelConfig.from_json(cfg_path.read_text())
        rows.append({"name": name, "architecture": cfg.architecture, "render_size": cfg.render_size,
                     "version": cfg.version, "file": str(cfg_path.with_suffix(".safetensors"))})
        table.add_row(name, cfg.architecture, str(cfg.render_size), cfg.version, cfg_path.with_suffix(".safetensors").name)
    out.print(table)
    out.print("architectures: " + ", ".join(list_models()))
    _write_json(json_path, {"weights": rows, "architectures": list_models()})


@app.command()
def engines(json_path: Optional[Path] = JsonOpt) -> None:
    """List inference engines: usable here or why not."""
    from .engines import AUTO_ORDER, engine_specs, probe

    table = Table("engine", "device", "usable", "why not / how to fix")
    rows = []
    for name in engine_specs():
        for dev in ("cuda", "cpu"):
            reason = probe(name, dev)
            auto = AUTO_ORDER.index((name, dev)) + 1 if (name, dev) in AUTO_ORDER else None
            rows.append({"engine": name, "device": dev, "usable": reason is None, "reason": reason, "auto_rank": auto})
            table.add_row(name, dev, "yes" if reason is None else "no", escape(reason or ""))
    out.print(table)
    _write_json(json_path, rows)


@app.command()
def evaluate(
    folder: Path = typer.Argument(..., help="Folder of colour images (made grey, colorized, compared), or a colorized clip (with --reference)."),
    reference: Optional[Path] = typer.Option(None, "--reference", help="Video: the colour original the clip was made from (grey-converted, then colorized)."),
    model: str = ModelOpt, engine: str = EngineOpt, render_size: Optional[int] = RenderOpt,
    saturation: float = typer.Option(1.0, min=0.0),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="Write report.md, metrics.json and grid.png here."),
    limit: Optional[int] = typer.Option(None, help="Evaluate at most this many images (or video frames)."),
    json_path: Optional[Path] = JsonOpt,
    exemplar: Optional[str] = typer.Option(None, "--exemplar", help="first: the clip is GREY; colour it with --reference's first frame as the reference (and automatically) and score both."),
) -> None:
    """Images: PSNR, CIEDE2000, colourfulness beside the zero-chroma baseline. Video (a colorized clip and
    --reference): also warp error (Lai et al. 2018) and CDC (TCVC), beside the original and the grey clip."""
    from .video.formats import FormatError

    if reference is not None or (folder.is_file() and folder.suffix.lower() not in (".png", ".jpg", ".jpeg")):
        if reference is None:
            raise FormatError(f"{str(folder)!r} is a file: give --reference ORIGINAL to score a colorized clip, "
                              f"or a folder of colour images")
        if exemplar is not None:
            return _evaluate_exemplar(folder, reference, exemplar, model, engine, render_size, saturation, limit,
                                      out_dir, json_path)
        return _evaluate_video(folder, reference, limit, out_dir, json_path)
    from .evaluate import evaluate_images, write_report

    c = _colorizer(model, engine, None, render_size, saturation, "off")
    rep = evaluate_images(c.infer_L, folder, render_size=c.render_size, limit=limit,
                          grid=out_dir / "grid.png" if out_dir else None, multiple=c.engine.size_multiple)
    out.print(rep.markdown(f"{c.describe()} on {folder}"))
    if out_dir:
        write_report(rep, out_dir, f"{c.describe()} on {folder}")
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
    res = evaluate_exemplar(c, grey, colour, limit=limit)
    text = format_exemplar_report(res, f"{grey.name} with {colour.name}'s first frame [{c.describe()}]")
    out.print(text)
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
        from .video.formats import FormatError

        raise FormatError("video metrics need at least 2 frames in both clips")
    text = format_report(res, f"{clip.name} against {reference.name}")
    out.print(text)
    if out_dir:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "report.md").write_text(text + "\n")
        _write_json(out_dir / "metrics.json", res)
    _write_json(json_path, res)


@app.command()
def train(
    data: Path = typer.Argument(..., help="Folder of colour images (recursive)."),
    out_dir: Path = typer.Option(..., "--out", help="Run folder: checkpoint, log.jsonl, samples, export/."),
    val: Optional[Path] = typer.Option(None, help="Validation folder."),
    architecture: str = typer.Option("sagan-unet", help="Generator architecture from the registry."),
    pretrained: bool = typer.Option(True, help="ImageNet encoder weights (sagan-unet)."),
    size: int = typer.Option(160, help="Training crop size."),
    batch_size: int = typer.Option(16),
    pretrain_steps: int = typer.Option(2200, help="Generator pre-training steps (L1 + feature loss)."),
    critic_steps: int = typer.Option(150, help="Critic pre-training steps."),
    gan_steps: int = typer.Option(700, help="GAN steps (TTUR)."),
    adv_loss: str = typer.Option("bce", help="bce (label smoothing 0.9), lsgan or hinge."),
    lambda_l1: float = typer.Option(100.0), feature_weight: float = typer.Option(10.0),
    minutes: Optional[float] = typer.Option(None, help="Wall-time budget; the same command resumes."),
    lr_g: float = typer.Option(5e-4, help="Generator learning rate in pre-training (cosine schedule)."),
    init_from: Optional[Path] = typer.Option(None, help="Start from another run's checkpoint (its folder): fine-tuning."),
    val_every: int = typer.Option(1000, help="Validate (and export) every this many steps."),
    device: str = typer.Option("cpu"), seed: int = typer.Option(0), quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Train (or resume) a generator: pre-train G, pre-train the critic, short GAN phase."""
    from .train import TrainConfig
    from .train import train as run

    kwargs = {"pretrained": pretrained} if architecture == "sagan-unet" else {}
    cfg = TrainConfig(data=str(data), out=str(out_dir), val=str(val) if val else None, architecture=architecture,
                      model_kwargs=kwargs, size=size, batch_size=batch_size, pretrain_steps=pretrain_steps,
                      critic_steps=critic_steps, gan_steps=gan_steps, adv_loss=adv_loss, lambda_l1=lambda_l1,
                      feature_weight=feature_weight, minutes=minutes, device=device, seed=seed, lr_g=lr_g,
                      init_from=str(init_from) if init_from else None, val_every=val_every)
    res = run(cfg, progress=None if quiet else (lambda r: err.print(json.dumps(r))))
    out.print(json.dumps(res))


@app.command()
def bench(
    clip: Optional[Path] = typer.Option(None, help="Source clip, looped and scaled (default: ffmpeg's testsrc2 pattern, made grey)."),
    sizes: str = typer.Option("480p,720p,1080p", help="Comma-separated: 480p, 720p, 1080p."),
    frames: int = typer.Option(480, min=2, help="Clip length per size, in frames."),
    modes: str = typer.Option("default,fast", help="Comma-separated colorize modes: default (the CLI's defaults), fast."),
    rounds: int = typer.Option(2, min=1, help="Interleaved rounds of ffmpeg and each mode per size."),
    engine: str = EngineOpt, model: str = ModelOpt, render_size: Optional[int] = RenderOpt,
    render_sizes: str = typer.Option("192,256,320", help="Render sizes for the model-only timing."),
    skip_model: bool = typer.Option(False, help="Skip the model-only timing."),
    model_frames: int = typer.Option(20, min=1, help="Timed calls per engine and render size (interleaved)."),
    json_path: Optional[Path] = JsonOpt,
) -> None:
    """Model ms/frame per engine and render size; whole colorize runs (start-up included) beside ffmpeg's transcode."""
    from .bench import end_to_end

    report: dict = {"model": [], "end_to_end": []}
    if not skip_model:
        from .bench_model import bench_engines
        from .engines import create_engine
        from .models import load_model

        names = [engine] if engine != "auto" else ["torch", "onnxruntime", "onnxruntime-int8", "tensorrt"]
        table = Table("engine", "render size", "ms/frame", "x torch")
        usable = {}
        for name in names:
            try:
                m, cfg = load_model(model)
                usable[name] = create_engine(name, m, cfg)
            except Exception as exc:  # an engine unusable here is reported, not fatal
                table.add_row(name, "-", escape(f"unavailable: {exc}"), "")
        sizes_ = tuple(int(s) for s in render_sizes.split(","))
        rows = bench_engines(usable, render_sizes=sizes_, frames=model_frames) if usable else []
        torch_ms = {r["render_size"]: r["ms_per_frame"] for r in rows if r["engine"] == "torch"}
        for row in rows:
            if row["render_size"] in torch_ms:  # speed-up over eager PyTorch (channels-last) in the same run
                row["speedup_vs_torch"] = round(torch_ms[row["render_size"]] / row["ms_per_frame"], 3)
            report["model"].append(row)
            table.add_row(row["engine"], str(row["render_size"]), f"{row['ms_per_frame']:.1f}",
                          f"{row['speedup_vs_torch']:.2f}" if "speedup_vs_torch" in row else "")
        for eng in usable.values():
            eng.close()
        out.print(table)
    if clip is not None and not clip.exists():
        raise FileNotFoundError(f"bench clip {str(clip)!r} not found")
    args = ["--engine", engine, "--model", model] + (["--render-size", str(render_size)] if render_size else [])
    rows = end_to_end([s.strip() for s in sizes.split(",")], frames=frames, source=clip,
                      modes=[m.strip() for m in modes.split(",")], extra=args, rounds=rounds)
    table = Table("size", "mode", "ffmpeg fps", "filmcolor fps", "ratio (min-max)", "first frame s", "peak RSS MiB")
    for r in rows:
        table.add_row(r["size"], r["mode"], f"{r['ffmpeg_fps']:.1f}", f"{r['filmcolor_fps']:.1f}",
                      f"{r['ratio']:.3f} ({r['ratio_min']:.3f}-{r['ratio_max']:.3f})", f"{r['first_frame_s']:.2f}",
                      f"{r['peak_rss_mib']:.0f}")
    out.print(table)
    report["end_to_end"] = rows
    _write_json(json_path, report)


@app.command()
def export(
    output: Path = typer.Argument(..., help="Path of the .onnx file to write."),
    model: str = ModelOpt, opset: int = typer.Option(17, help="ONNX opset."),
    fp16: bool = typer.Option(False, help="Compute in half precision (float32 input/output)."),
    overwrite: bool = typer.Option(False, "--overwrite", "-y"),
    json_path: Optional[Path] = JsonOpt,
) -> None:
    """Export a model to ONNX (dynamic batch, height, width) and check parity with PyTorch."""
    import torch

    from .engines.export import export_onnx, parity
    from .models import load_model
    from .video.formats import FormatError

    if output.exists() and not overwrite:
        raise FormatError(f"output {str(output)!r} exists; pass --overwrite to replace it")
    m, cfg = load_model(model)
    export_onnx(m, cfg, output, opset=opset, dtype=torch.float16 if fp16 else torch.float32)
    diff = parity(m, output, [(1, 1, 64, 96), (2, 1, 128, 64)])
    out.print(f"wrote {output}: max |a,b| difference vs PyTorch {diff:.2e}")
    _write_json(json_path, {"output": str(output), "opset": opset, "fp16": fp16, "max_abs_diff": diff})


@app.command("plugins")
def plugins_cmd(json_path: Optional[Path] = JsonOpt) -> None:
    """List plugins (ffmpeg pipe/graph, OpenCV, VapourSynth): usable here or why not."""
    from .plugins.registry import list_plugins

    table = Table("plugin", "usable", "what", "why not / how to fix")
    rows = list_plugins()
    for r in rows:
        table.add_row(r["name"], "yes" if r["usable"] else "no", escape(r["description"]), escape(r["reason"] or ""))
    out.print(table)
    _write_json(json_path, rows)


def _register_pipe() -> None:
    from .plugins.ffmpeg_pipe import pipe  # typer + numpy only; torch loads when the command runs

    app.command("pipe")(pipe)


_register_pipe()


def _on_sigterm(signum, frame) -> None:
    raise KeyboardInterrupt


def main() -> None:
    """Entry point: one-line errors and non-zero exits instead of tracebacks."""
    from .engines import EngineUnavailable
    from .video.formats import FormatError

    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with SIGINT ignored (background jobs)
    try:
        rc = app(standalone_mode=False)  # Typer turns Ctrl-C into a returned 130 here
        if rc == 130:
            raise KeyboardInterrupt
        if isinstance(rc, int) and rc:
            sys.exit(rc)
    except (FormatError, EngineUnavailable, FileNotFoundError, ValueError) as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("[red]interrupted[/]: no partial output was left behind (finished --segments are kept for resuming)")
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:  # click usage errors and the like
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if isinstance(exc, click.exceptions.Abort):
            sys.exit(130)
        raise


if __name__ == "__main__":
    main()
