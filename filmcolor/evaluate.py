"""Evaluate a generator on a folder of colour images: its metrics beside two grey baselines.

The model's picture is exactly what ``filmcolor colorize`` writes for the image (same path, same file
format, decoded again). Two baselines, both without colour, say what a model must beat:

- ``grey_input``: the grey picture as users see it, the image's own Y' shown as grey (what colorize
  keeps and what ``ffmpeg -vf format=gray`` shows): colorize's output with zero chroma.
- ``baseline``: the truth's own Lab L with a = b = 0 (zero chroma at the true lightness).

Reports means over images, ratios against both baselines; writes a markdown report and a grid picture
on request. Training validation calls :func:`evaluate_images` with its own generator.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import torch

from .color import lab_to_rgb, rgb_to_lab
from .fs import find_images
from .images import colorize_array, encode_image, read_image
from .inference import Predictor
from .metrics import ciede2000, colourfulness, psnr
from .video.formats import choose_matrix
from .video.rgb import rgb_to_luma

METRICS = ("psnr", "ciede2000", "colourfulness")


def to_uint8(image: np.ndarray) -> np.ndarray:
    """An 8- or 16-bit grey or RGB array -> ``[H,W,3]`` uint8 RGB (what the metrics take)."""
    if image.dtype == np.uint16:
        image = np.round(image.astype(np.float32) / 257.0).astype(np.uint8)
    return np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image


def colorize_as_written(predictor: Predictor, image: np.ndarray, suffix: str) -> np.ndarray:
    """What ``colorize`` writes for ``image`` into a file ending in ``suffix``, decoded again."""
    data = encode_image(colorize_array(predictor, image), suffix)
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB) if bgr.ndim == 3 else bgr


def grey_input(image: np.ndarray) -> np.ndarray:
    """The image as its grey input shows it: its Y' (as the colorize path computes it) in all three channels."""
    if image.ndim == 2:
        return to_uint8(image)
    bits = 8 if image.dtype == np.uint8 else 16
    return to_uint8(rgb_to_luma(image, choose_matrix(None, image.shape[0]), bits, True))


def zero_chroma(truth8: np.ndarray) -> np.ndarray:
    """The truth's own Lab L with a = b = 0, as uint8 RGB."""
    L = rgb_to_lab(torch.from_numpy(truth8).permute(2, 0, 1).float().div(255)[None])[:, :1]
    grey = lab_to_rgb(torch.cat((L, torch.zeros_like(L), torch.zeros_like(L)), 1))[0]
    return (grey.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()


def scores(image: np.ndarray, truth8: np.ndarray) -> dict[str, float]:
    return {"psnr": psnr(image, truth8), "ciede2000": ciede2000(image, truth8), "colourfulness": colourfulness(image)}


@dataclass
class ImageReport:
    images: int
    model: dict[str, float]
    baseline: dict[str, float]          # zero chroma at the truth's Lab L
    grey_input: dict[str, float]        # the image's own Y' shown as grey (what the user starts from)
    truth_colourfulness: float
    per_image: list[dict] = field(default_factory=list)

    @property
    def ciede_ratio(self) -> float:
        """Model CIEDE2000 / zero-chroma baseline's (below 1: better than no colour at the true L)."""
        return self.model["ciede2000"] / self.baseline["ciede2000"]

    @property
    def ciede_ratio_grey(self) -> float:
        """Model CIEDE2000 / the grey input's (below 1: better than what the user starts from)."""
        return self.model["ciede2000"] / self.grey_input["ciede2000"]

    @property
    def colourfulness_ratio(self) -> float:
        return self.model["colourfulness"] / self.truth_colourfulness

    def summary(self) -> dict:
        d = asdict(self)
        d.pop("per_image")
        d["ciede2000_ratio_to_baseline"] = self.ciede_ratio
        d["ciede2000_ratio_to_grey_input"] = self.ciede_ratio_grey
        d["colourfulness_ratio_to_truth"] = self.colourfulness_ratio
        return d

    def markdown(self, title: str = "filmcolor evaluation") -> str:
        m, b, g = self.model, self.baseline, self.grey_input
        rows = [f"# {title}", "", f"{self.images} images.", "",
                "| metric | model | grey input (Y') | zero chroma (true L) | truth |", "| --- | --- | --- | --- | --- |"]
        rows.append(f"| PSNR (dB, higher is better) | {m['psnr']:.2f} | {g['psnr']:.2f} | {b['psnr']:.2f} | |")
        rows.append(f"| CIEDE2000 (lower is better) | {m['ciede2000']:.3f} | {g['ciede2000']:.3f} | {b['ciede2000']:.3f} | |")
        rows.append(f"| colourfulness | {m['colourfulness']:.2f} | {g['colourfulness']:.2f} | {b['colourfulness']:.2f} "
                    f"| {self.truth_colourfulness:.2f} |")
        rows += ["", f"CIEDE2000 ratio to the grey input: {self.ciede_ratio_grey:.3f}; to zero chroma: "
                 f"{self.ciede_ratio:.3f}; colourfulness ratio to truth: {self.colourfulness_ratio:.3f}", ""]
        return "\n".join(rows)


def evaluate_images(infer: Callable[[torch.Tensor], torch.Tensor] | Predictor, folder: str | Path, *,
                    render_size: int = 256, chroma_gain: float = 1.0, limit: int | None = None,
                    grid: str | Path | None = None, grid_rows: int = 8, multiple: int = 32) -> ImageReport:
    """Metrics of a model on the images of ``folder`` (every ``len/limit``-th if limited).

    ``infer`` is a :class:`~filmcolor.inference.Predictor` (e.g. ``Colorizer.predictor``) or a bare
    L -> a,b callable in Lab units, run at ``render_size`` with ``chroma_gain`` (training validation).
    """
    predictor = infer if isinstance(infer, Predictor) else Predictor(infer, render_size, multiple, chroma_gain)
    paths = find_images(folder)
    if limit and len(paths) > limit:
        paths = paths[:: max(1, len(paths) // limit)][:limit]
    if not paths:
        raise ValueError(f"no images in {str(folder)!r}")
    per_image, tiles = [], []
    for i, p in enumerate(paths):
        image = read_image(p)
        truth = to_uint8(image)
        out = to_uint8(colorize_as_written(predictor, image, p.suffix))
        grey = grey_input(image)
        per_image.append({"image": p.name, "model": scores(out, truth), "baseline": scores(zero_chroma(truth), truth),
                          "grey_input": scores(grey, truth), "truth_colourfulness": colourfulness(truth)})
        if grid is not None and len(tiles) < grid_rows and i % max(1, len(paths) // grid_rows) == 0:
            tiles.append(grid_row(grey, out, truth))
    mean = lambda key, m: float(np.mean([r[key][m] for r in per_image]))  # noqa: E731
    report = ImageReport(
        images=len(per_image),
        model={m: mean("model", m) for m in METRICS},
        baseline={m: mean("baseline", m) for m in METRICS},
        grey_input={m: mean("grey_input", m) for m in METRICS},
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


HINT_COUNTS = (0, 1, 2, 5, 10, 20, 50, 100)  # SIGGRAPH 2017's points per image


class _PatchHints:
    """Guidance revealing ``count`` random 6x6 patches of the truth's a,b at render size (fixed ``seed``)."""

    def __init__(self, truth8: np.ndarray, count: int, seed: int) -> None:
        self.truth8, self.count, self.seed = truth8, count, seed

    def at(self, size: tuple[int, int], render: tuple[int, int]):
        from .guidance import sample_patch_hints

        h, w = render
        small = cv2.resize(self.truth8, (w, h), interpolation=cv2.INTER_AREA)
        ab = rgb_to_lab(torch.from_numpy(small).permute(2, 0, 1).float().div(255)[None])[0, 1:].numpy()
        hint, mask = sample_patch_hints(ab, self.count, np.random.default_rng(self.seed))
        return torch.from_numpy(hint), torch.from_numpy(mask)


class _LastCall:
    """``infer`` that reuses its last unguided result for the same L: sparse hints correct the automatic
    model's colours (:func:`~filmcolor.inference.predict_ab`), so every hint count of a picture needs one
    model run, not one per count."""

    def __init__(self, infer: Callable) -> None:
        self.infer, self.last = infer, None

    def __call__(self, L: torch.Tensor, guidance=None) -> torch.Tensor:
        if guidance is not None:
            return self.infer(L, guidance)
        if self.last is None or self.last[0].shape != L.shape or not torch.equal(self.last[0], L):
            self.last = (L.clone(), self.infer(L))
        return self.last[1].clone()


def evaluate_hints(predictor: Predictor, folder: str | Path, counts: tuple[int, ...] = HINT_COUNTS, *,
                   seed: int = 0, limit: int | None = None) -> list[dict]:
    """PSNR and CIEDE2000 per number of revealed 6x6 ground-truth patches (Zhang et al. 2017's protocol).

    Each image gets the same patches for a given count on every run (seed from ``seed`` and the image's
    index); the pictures are what ``colorize --hints`` would write. Rows: count, psnr, ciede2000, gain_db.
    """
    paths = find_images(folder)
    if limit and len(paths) > limit:
        paths = paths[:: max(1, len(paths) // limit)][:limit]
    if not paths:
        raise ValueError(f"no images in {str(folder)!r}")
    sums = {c: {"psnr": 0.0, "ciede2000": 0.0} for c in counts}
    predictor = replace(predictor, infer=_LastCall(predictor.infer))
    for i, p in enumerate(paths):
        image = read_image(p)
        truth = to_uint8(image)
        for c in counts:
            guide = _PatchHints(truth, c, seed * 1_000_003 + i) if c else None
            data = encode_image(colorize_array(predictor, image, guide), p.suffix)
            bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
            out = to_uint8(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB) if bgr.ndim == 3 else bgr)
            sums[c]["psnr"] += psnr(out, truth)
            sums[c]["ciede2000"] += ciede2000(out, truth)
    rows = [{"points": c, "psnr": s["psnr"] / len(paths), "ciede2000": s["ciede2000"] / len(paths)} for c, s in sums.items()]
    base = next((r["psnr"] for r in rows if r["points"] == 0), None)
    for r in rows:
        r["gain_db"] = None if base is None else r["psnr"] - base
    return rows
