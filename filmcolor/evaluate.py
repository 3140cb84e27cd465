"""Evaluate a generator on a folder of colour images: its metrics beside the zero-chroma baseline.

The baseline is the truth's own L with a = b = 0 (a grey picture): a model must beat it to be worth
running. Reports means over images; writes a markdown report and a grid picture on request.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import torch

from .color import lab_to_rgb, rgb_to_lab
from .metrics import ciede2000, colourfulness, psnr
from .render import predict_ab
from .train.data import find_images

METRICS = ("psnr", "ciede2000", "colourfulness")


def to_uint8(rgb: torch.Tensor) -> np.ndarray:
    """``[3,H,W]`` float in [0, 1] -> ``[H,W,3]`` uint8."""
    return (rgb.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()


def colorize_rgb(infer: Callable[[torch.Tensor], torch.Tensor], rgb8: np.ndarray, render_size: int,
                 chroma_gain: float = 1.0, multiple: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Colorize the luminance of ``rgb8`` ``[H,W,3]``; returns (colorized, zero-chroma) uint8 RGB."""
    rgb = torch.from_numpy(rgb8).permute(2, 0, 1).float().div(255).unsqueeze(0)
    L = rgb_to_lab(rgb)[:, :1]
    with torch.inference_mode():
        ab = predict_ab(infer, L, render_size, multiple) * chroma_gain
    out = lab_to_rgb(torch.cat((L, ab), 1))[0]
    grey = lab_to_rgb(torch.cat((L, torch.zeros_like(ab)), 1))[0]
    return to_uint8(out), to_uint8(grey)


@dataclass
class ImageReport:
    images: int
    model: dict[str, float]
    baseline: dict[str, float]
    truth_colourfulness: float
    per_image: list[dict] = field(default_factory=list)

    @property
    def ciede_ratio(self) -> float:
        return self.model["ciede2000"] / self.baseline["ciede2000"]

    @property
    def colourfulness_ratio(self) -> float:
        return self.model["colourfulness"] / self.truth_colourfulness

    def summary(self) -> dict:
        d = asdict(self)
        d.pop("per_image")
        d["ciede2000_ratio_to_baseline"] = self.ciede_ratio
        d["colourfulness_ratio_to_truth"] = self.colourfulness_ratio
        return d

    def markdown(self, title: str = "filmcolor evaluation") -> str:
        rows = [f"# {title}", "", f"{self.images} images.", "",
                "| metric | model | zero-chroma baseline | truth |", "| --- | --- | --- | --- |"]
        rows.append(f"| PSNR (dB, higher is better) | {self.model['psnr']:.2f} | {self.baseline['psnr']:.2f} | |")
        rows.append(f"| CIEDE2000 (lower is better) | {self.model['ciede2000']:.3f} | {self.baseline['ciede2000']:.3f} | |")
        rows.append(f"| colourfulness | {self.model['colourfulness']:.2f} | {self.baseline['colourfulness']:.2f} "
                    f"| {self.truth_colourfulness:.2f} |")
        rows += ["", f"CIEDE2000 ratio to baseline: {self.ciede_ratio:.3f}; "
                 f"colourfulness ratio to truth: {self.colourfulness_ratio:.3f}", ""]
        return "\n".join(rows)


def read_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"cannot read image {str(path)!r}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def evaluate_images(infer: Callable[[torch.Tensor], torch.Tensor], folder: str | Path, *, render_size: int = 256,
                    chroma_gain: float = 1.0, limit: int | None = None, grid: str | Path | None = None,
                    grid_rows: int = 8, multiple: int = 32) -> ImageReport:
    """Metrics of ``infer`` (L -> a,b in Lab units) on the images of ``folder`` (every ``len/limit``-th if limited)."""
    paths = find_images(folder)
    if limit and len(paths) > limit:
        paths = paths[:: max(1, len(paths) // limit)][:limit]
    if not paths:
        raise ValueError(f"no images in {str(folder)!r}")
    per_image, tiles = [], []
    for i, p in enumerate(paths):
        truth = read_rgb(p)
        out, grey = colorize_rgb(infer, truth, render_size, chroma_gain, multiple)
        per_image.append({
            "image": p.name,
            "model": {"psnr": psnr(out, truth), "ciede2000": ciede2000(out, truth), "colourfulness": colourfulness(out)},
            "baseline": {"psnr": psnr(grey, truth), "ciede2000": ciede2000(grey, truth), "colourfulness": colourfulness(grey)},
            "truth_colourfulness": colourfulness(truth),
        })
        if grid is not None and len(tiles) < grid_rows and i % max(1, len(paths) // grid_rows) == 0:
            tiles.append(grid_row(grey, out, truth))
    mean = lambda key, m: float(np.mean([r[key][m] for r in per_image]))  # noqa: E731
    report = ImageReport(
        images=len(per_image),
        model={m: mean("model", m) for m in METRICS},
        baseline={m: mean("baseline", m) for m in METRICS},
        truth_colourfulness=float(np.mean([r["truth_colourfulness"] for r in per_image])),
        per_image=per_image,
    )
    if grid is not None:
        write_grid(grid, tiles)
    return report


def grid_row(*images: np.ndarray, height: int = 192) -> np.ndarray:
    """Images side by side at a common height (grey | output | truth)."""
    resized = [cv2.resize(im, (round(im.shape[1] * height / im.shape[0]), height), interpolation=cv2.INTER_AREA)
               for im in images]
    return np.concatenate(resized, axis=1)


def write_grid(path: str | Path, rows: list[np.ndarray]) -> None:
    width = max(r.shape[1] for r in rows)
    padded = [np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(np.concatenate(padded, axis=0), cv2.COLOR_RGB2BGR))


def write_report(report: ImageReport, out_dir: str | Path, title: str) -> None:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.md").write_text(report.markdown(title))
    (out / "metrics.json").write_text(json.dumps({**report.summary(), "per_image": report.per_image}, indent=1))
