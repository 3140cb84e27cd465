"""What the command modules share: the Typer app, the options every command spells alike, small helpers.

Torch-free: the colorizer is imported inside :func:`make_colorizer`, when a command runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from . import __version__
from .cli_base import AppGroup, AppTyper, flag
from .errors import UsageError


app = AppTyper(cls=AppGroup, add_completion=False, no_args_is_help=True, rich_markup_mode="rich",
             help="Colorize black-and-white film and video. The source's luminance is kept bit for bit; "
                  "only colour is made.")


ModelOpt = typer.Option("default", "--model", "-m", metavar="NAME|PATH",
                        help="Packaged model name or path to a .safetensors file (with its .json).")


EngineOpt = typer.Option("auto", "--engine", "-e", metavar="NAME",
                         help="Inference engine: auto (TensorRT, then ONNX Runtime on a GPU; int8 ONNX Runtime on a CPU), torch, onnxruntime, onnxruntime-int8, tensorrt.")


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
             smoothing: str = "window", strength: float = 0.7, keyframes: str = "auto"):
    from .colorizer import ColorizerOptions

    return ColorizerOptions(model=model, engine=engine, device=device, render_size=render_size,
                            saturation=saturation, smoothing=smoothing, smoothing_strength=strength, keyframes=keyframes)


def _colorizer(*args, **kw):
    from .colorizer import Colorizer

    return Colorizer(_options(*args, **kw))


def _check_smoothing(smoothing: str) -> None:
    if smoothing not in ("window", "stream", "off"):
        raise UsageError(f"--smoothing must be window, stream or off, got {smoothing!r}")
