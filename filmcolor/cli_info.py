"""Commands that list and prepare: ``models``, ``engines``, ``plugins``, ``export``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .cli_base import flag
from .cli_common import JsonOpt, ModelOpt, OverwriteOpt, _console, _write_json, app
from .errors import UsageError


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
