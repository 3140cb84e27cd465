"""Commands that measure: ``evaluate`` (colour against the truth), ``bench`` (speed), ``train``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from .cli_base import flag
from .cli_checks import check_choice, check_int_list, check_list, check_render_size
from .cli_common import (EngineOpt, JsonOpt, ModelOpt, RenderOpt, SaturationOpt, _colorizer, _console, _write_json, app)
from .errors import UsageError


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
    hint_points: Optional[str] = typer.Option(None, "--hint-points", metavar="LIST", help="Images: score colour hints instead (Zhang et al. 2017's protocol): for each count, that many random 6x6 patches of the truth's mean colour, fixed seeds; e.g. 0,1,2,5,10,20,50,100."),
    seed: int = typer.Option(0, metavar="N", help="Seed of the --hint-points patches."),
) -> None:
    """Images: PSNR, CIEDE2000, colourfulness beside the zero-chroma baseline. Video (a colorized clip and
    --reference): also warp error (Lai et al. 2018) and CDC (TCVC), beside the original and the grey clip."""
    check_render_size(render_size)
    counts = _hint_counts(hint_points)
    if not input.exists():
        raise UsageError(f"input {str(input)!r} does not exist")
    if counts is not None and (reference is not None or not input.is_dir()):
        raise UsageError("--hint-points scores a folder of colour images (no --reference)")
    if counts is not None:
        return _evaluate_hints(input, counts, seed, model, engine, render_size, saturation, limit, json_path)
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


def _hint_counts(text: Optional[str]) -> Optional[tuple[int, ...]]:
    return None if text is None else check_int_list(text, "--hint-points", 0, "0,1,2,5,10")


def _evaluate_hints(folder: Path, counts: tuple[int, ...], seed: int, model: str, engine: str,
                    render_size: Optional[int], saturation: float, limit: Optional[int], json_path: Optional[Path]) -> None:
    from rich.table import Table

    from .evaluate import evaluate_hints

    c = _colorizer(model, engine, None, render_size, saturation, "off")
    try:
        rows = evaluate_hints(c.predictor, folder, counts, seed=seed, limit=limit)
    finally:
        c.close()
    table = Table("points", "PSNR dB", "gain over 0 points", "CIEDE2000", title=f"hints: {c.describe()} on {folder}")
    for r in rows:
        gain = "" if r["gain_db"] is None else f"{r['gain_db']:+.2f}"
        table.add_row(str(r["points"]), f"{r['psnr']:.2f}", gain, f"{r['ciede2000']:.3f}")
    _console(stderr=False).print(table)
    _write_json(json_path, rows)


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


def _check_train_inputs(data: Path, val: Optional[Path], architecture: str) -> None:
    """Before any run folder is made: image folders that hold images, an architecture the registry knows."""
    from .fs import find_images
    from .models import list_models

    for option, folder in (("FOLDER", data), ("--val", val)):
        if folder is not None and not folder.is_dir():
            raise UsageError(f"{option}: {str(folder)!r} is not a folder of images")
        if folder is not None and not find_images(folder):
            raise UsageError(f"{option}: no images in {str(folder)!r}")
    if architecture not in list_models():
        raise UsageError(f"--architecture: unknown {architecture!r}; known: {', '.join(list_models())}")


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
    bf16: Optional[bool] = typer.Option(None, "--bf16/--fp32", metavar="", show_default="bf16 where the CPU has bf16 instructions", help="CPU: bfloat16 autocast (1.65x faster on AVX-512 BF16 CPUs, 8x slower on AVX2-only ones); CUDA always uses bf16 autocast."),
    workers: int = typer.Option(0, min=0, metavar="N", help="Batch-making worker processes (0: one thread, enough for 2 cores; a GPU needs about one per core)."),
    val_limit: int = typer.Option(60, min=1, metavar="N", help="Validation images per check."),
    rebalance: float = typer.Option(0.0, min=0.0, max=1.0, metavar="X", help="Weight rare (saturated) colours up in the L1 loss: 0 plain, 1 fully rebalanced (Zhang et al. 2016)."),
    balance_weight: float = typer.Option(0.0, min=0.0, metavar="X", help="Weight of a per-picture mean a,b term against colour casts."),
    warmup: int = typer.Option(100, min=0, metavar="N", help="Learning-rate warm-up steps at the start of this run (also after a resume)."),
    ema: float = typer.Option(0.0, min=0.0, max=0.99999, metavar="DECAY", help="Validate and export a moving average of G's weights with this decay (e.g. 0.999; 0 = off)."),
    freeze_bn: bool = flag("--freeze-bn", help="Batch norms keep their running statistics (fine-tuning a trained model: re-estimating them alone moved val CIEDE2000 by 1-4%)."),
    ab_loss: str = typer.Option("l1", metavar="l1|de94", help="Pixel loss on a,b (weighted by --lambda-l1): l1, or de94 (CIE94 colour difference, nearer the CIEDE2000 that selection uses)."),
    hint_points: float = typer.Option(0.35, min=0.0, max=0.8, metavar="X", help="With --guidance: share of samples with simulated point hints (dense references take 0.2, the automatic task the rest)."),
) -> None:
    """Train (or resume) a generator: pre-train G, pre-train the critic, short GAN phase."""
    from .train.choices import AB_LOSSES, ADV_LOSSES, REBALANCED_AB_LOSSES

    check_choice(adv_loss, ADV_LOSSES, "--adv-loss")
    check_choice(ab_loss, AB_LOSSES, "--ab-loss")
    if rebalance > 0 and ab_loss not in REBALANCED_AB_LOSSES:
        raise UsageError(f"--rebalance weights the l1 pixel loss only; --ab-loss {ab_loss} has no rebalanced form "
                         "(leave --rebalance at 0)")
    check_choice(device, ("cpu", "cuda"), "--device")
    _check_train_inputs(data, val, architecture)
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
                      balance_weight=balance_weight, warmup=warmup, ema=ema, hint_points=hint_points,
                      ab_loss=ab_loss, freeze_bn=freeze_bn, workers=workers)
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
    sizes = check_int_list(text, "--render-sizes", 1, "192,256,320")
    for s in sizes:
        check_render_size(s)
    return sizes


@app.command()
def bench(
    clip: Optional[Path] = typer.Option(None, metavar="PATH", help="Source clip, looped and scaled (default: ffmpeg's testsrc2 pattern, made grey)."),
    sizes: str = typer.Option("480p,720p,1080p", metavar="LIST", help="Comma-separated: 480p, 720p, 1080p."),
    frames: int = typer.Option(480, min=2, metavar="N", help="Clip length per size, in frames."),
    modes: str = typer.Option("default,fast", metavar="LIST", help="Comma-separated colorize modes: default (the CLI's defaults), stream (causal smoothing), fast (keyframes 8, causal smoothing)."),
    rounds: int = typer.Option(2, min=1, metavar="N", help="Interleaved rounds of ffmpeg and each mode per size."),
    engine: str = EngineOpt, model: str = ModelOpt, render_size: Optional[int] = RenderOpt,
    render_sizes: str = typer.Option("192,256,320", metavar="LIST", help="Render sizes for the model-only timing."),
    skip_model: bool = flag("--skip-model", help="Skip the model-only timing."),
    model_frames: int = typer.Option(20, min=1, metavar="N", help="Timed calls per engine and render size (interleaved)."),
    json_path: Optional[Path] = JsonOpt,
) -> None:
    """Model ms/frame per engine and render size; whole colorize runs (start-up included) beside ffmpeg's transcode."""
    from .bench import MODES, SIZES, end_to_end  # standard library only: cheap

    check_render_size(render_size)
    render_sizes_tuple(render_sizes)
    size_list, mode_list = check_list(sizes, SIZES, "--sizes"), check_list(modes, MODES, "--modes")
    if clip is not None and not clip.exists():
        raise UsageError(f"bench clip {str(clip)!r} not found")
    from rich.table import Table

    report: dict = {"model": [], "end_to_end": []}
    if not skip_model:
        report["model"] = _bench_models(engine, model, render_sizes, model_frames)
    args = ["--engine", engine, "--model", model] + (["--render-size", str(render_size)] if render_size else [])
    rows = end_to_end(size_list, frames=frames, source=clip, modes=mode_list, extra=args, rounds=rounds)
    table = Table("size", "mode", "ffmpeg fps", "filmcolor fps", "ratio (min-max)", "first frame s", "peak RSS MiB")
    for r in rows:
        table.add_row(r["size"], r["mode"], f"{r['ffmpeg_fps']:.1f}", f"{r['filmcolor_fps']:.1f}",
                      f"{r['ratio']:.3f} ({r['ratio_min']:.3f}-{r['ratio_max']:.3f})", f"{r['first_frame_s']:.2f}",
                      f"{r['peak_rss_mib']:.0f}")
    _console(stderr=False).print(table)
    report["end_to_end"] = rows
    _write_json(json_path, report)
