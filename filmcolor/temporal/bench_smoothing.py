"""Benchmark temporal smoothing on the sample clips: flicker, accuracy, colourfulness and cost.

    python -m filmcolor.temporal.bench_smoothing [--frames 48] [--clips apple,teddy] [--render-size 256]

For each colour clip in ``../shared/data/videos`` (skipped with a message when absent) the luminance is kept
and a,b are predicted per frame at render size by a colorizer callable, then upsampled and recombined with
the full-size L, as the pipeline does. It compares no smoothing, streaming (``window=0``) and windowed
smoothing on warp-error excess (warp error above the grey input's = flicker the colorization added),
CIEDE2000, colourfulness, PSNR, CDC, and the smoothing cost in ms/frame. It also joins clips end to end to
check that cuts are found and no colour crosses them.

The default colorizer is a STAND-IN, not a model: the clip's TRUE a,b plus realistic per-frame flicker (a
random chroma shift and saturation gain per frame, blotchy low-frequency noise and a little fine noise, all
redrawn every frame). It measures what smoothing does to flicker of that kind. For the real model call
``run(colorize_ab=...)`` with a function L ``[1,1,h,w]`` (0..100) -> a,b ``[1,2,h,w]``.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..color import lab_to_rgb, rgb_to_lab
from ..render import render_shape, resize
from ..video_metrics import GREY, ORIGINAL, ClipMetrics, iter_rgb, markdown_table
from .smoother import TemporalSmoother

DATA_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "videos"
CLIPS = ("apple", "paragliding", "pillow", "teddy", "pedestrians")
Colorize = Callable[[torch.Tensor], torch.Tensor]

# Targets of the temporal smoother (smoothed vs unsmoothed): see check_targets().
MAX_EXCESS_RATIO = 0.60
MIN_COLOURFULNESS_RATIO = 0.90
MAX_PSNR_DROP_DB = 0.20


class StandInColorizer:
    """Truth + per-frame flicker; see the module docstring. Call once per frame, in order.

    Per frame, in a,b units: ``ab * (1 + gain n) + shift n2 + blotch N_coarse + fine N_pixel`` with fresh
    standard normals each frame; ``N_coarse`` is noise on a grid 32x coarser than the render size, bicubically
    enlarged (region-sized colour changes, the typical flicker of per-frame colorizers). ``scale``
    multiplies all four; 0 gives the truth itself, which shows what smoothing costs where nothing flickers.
    """

    def __init__(self, truth: list[torch.Tensor], seed: int = 0, shift: float = 2.5, gain: float = 0.1,
                 blotch: float = 3.0, fine: float = 1.0, scale: float = 1.0) -> None:
        self.truth, self.i = truth, 0
        self.g = torch.Generator().manual_seed(seed)
        self.shift, self.gain, self.blotch, self.fine = shift * scale, gain * scale, blotch * scale, fine * scale

    def __call__(self, L: torch.Tensor) -> torch.Tensor:
        ab = self.truth[self.i]
        self.i += 1
        h, w = ab.shape[-2:]
        r = lambda *s: torch.randn(*s, generator=self.g)  # noqa: E731
        coarse = F.interpolate(r(1, 2, max(2, h // 32), max(2, w // 32)), size=(h, w), mode="bicubic",
                               align_corners=False)
        return (ab * (1 + self.gain * r(1, 1, 1, 1)) + self.shift * r(1, 2, 1, 1) + self.blotch * coarse
                + self.fine * r(1, 2, h, w))


def _lab(rgb8: np.ndarray) -> torch.Tensor:
    return rgb_to_lab(torch.from_numpy(rgb8).permute(2, 0, 1).float().div(255).unsqueeze(0))


def _rgb8(L: torch.Tensor, ab: torch.Tensor) -> np.ndarray:
    ab = F.interpolate(ab.float().cpu(), size=L.shape[-2:], mode="bilinear", align_corners=False)
    rgb = lab_to_rgb(torch.cat((L, ab), 1))[0]
    return (rgb * 255).round().byte().permute(1, 2, 0).numpy()


def _load(path: Path, max_frames: int, max_side: int | None) -> list[np.ndarray]:
    import cv2

    frames = []
    for f in iter_rgb(path, max_frames):
        h, w = f.shape[:2]
        if max_side and min(h, w) > max_side:
            s = max_side / min(h, w)
            f = cv2.resize(f, (int(round(w * s / 2)) * 2, int(round(h * s / 2)) * 2), interpolation=cv2.INTER_AREA)
        frames.append(f)
    return frames


def _smooth(sm: TemporalSmoother | None, Ls: list[torch.Tensor],
            abs_: list[torch.Tensor]) -> tuple[list[torch.Tensor], float]:
    """Run a smoother over a clip; returns (outputs, median wall ms per push). The median, because other
    processes on a shared machine make single calls slow at random."""
    if sm is None:
        return list(abs_), 0.0
    sm.reset()
    out: list[torch.Tensor] = []
    times = []
    for L, ab in zip(Ls, abs_):
        t0 = time.perf_counter()
        out += sm.push(L[0], ab[0])
        times.append(time.perf_counter() - t0)
    out += sm.flush()
    return [o[None] for o in out], 1e3 * float(np.median(times))


def bench_clip(path: Path, colorize: Colorize | None, *, render_size: int, max_frames: int, max_side: int | None,
               metric_step: int, variants: dict[str, Callable[[], TemporalSmoother | None]], seed: int,
               flicker: float = 1.0) -> dict:
    """All variants on one clip: metric dicts per variant plus grey/original, ms/frame for model and smoothing."""
    frames = _load(path, max_frames, max_side)
    H, W = frames[0].shape[:2]
    h, w = render_shape(H, W, render_size)
    Ls, Lr, truth = [], [], []
    for f in frames:
        lab = _lab(f)
        Ls.append(lab[:, :1])
        Lr.append(resize(lab[:, :1], (h, w)))
        truth.append(resize(lab[:, 1:], (h, w)))
    model = colorize if colorize is not None else StandInColorizer(truth, seed=seed, scale=flicker)
    pred, model_t = [], []
    with torch.inference_mode():
        for L in Lr:
            t0 = time.perf_counter()
            pred.append(model(L))
            model_t.append(time.perf_counter() - t0)
    outs, cost, cuts = {}, {}, {}
    for name, make in variants.items():
        sm = make()
        outs[name], cost[name] = _smooth(sm, Lr, pred)
        cuts[name] = list(sm.cuts) if sm is not None else []
    m = ClipMetrics(names=tuple(variants), frame_step=metric_step)
    for i, f in enumerate(frames):
        m.update(f, {name: _rgb8(Ls[i], outs[name][i]) for name in variants})
    res = m.result()
    for name in variants:
        res[name]["ms_per_frame"] = cost[name]
        res[name]["cuts"] = ",".join(map(str, cuts[name])) or "none"
    return {"frames": len(frames), "size": (W, H), "render": (w, h),
            "model_ms_per_frame": 1e3 * float(np.median(model_t)),
            "metrics": res}


def cut_check(paths: list[Path], *, render_size: int, frames_each: int,
              variants: dict[str, Callable[[], TemporalSmoother | None]], seed: int) -> list[str]:
    """Join clips end to end at render size and smooth the joined stream; every shot's output must equal
    smoothing that shot on its own (max difference 0: nothing crossed a cut, in either direction)."""
    Lr, ab, shots = [], [], []
    for p in paths:
        start = len(Lr)
        for f in _load(p, frames_each, None):
            lab = resize(resize(_lab(f), render_shape(*f.shape[:2], render_size)), (render_size, render_size))
            Lr.append(lab[:, :1])
            ab.append(lab[:, 1:])
        shots.append((start, len(Lr)))
    pred = [StandInColorizer(ab, seed=seed)(L) for L in Lr]
    lines = []
    for name, make in variants.items():
        sm = make()
        if sm is None:
            continue
        joined, _ = _smooth(sm, Lr, pred)
        found = list(sm.cuts)
        diff = 0.0
        for a, b in shots:
            alone, _ = _smooth(make(), Lr[a:b], pred[a:b])
            diff = max(diff, max(float((x - y).abs().max()) for x, y in zip(joined[a:b], alone)))
        lines.append(f"{name}: joins at {[a for a, _ in shots[1:]]}, cuts found at {found}, "
                     f"max |joined - each shot alone| = {diff:.6f} ({'no bleed' if diff == 0 else 'BLEED'})")
    return lines


def check_targets(res: dict) -> list[str]:
    """The smoother's targets for each smoothed variant vs ``none`` (clip means)."""
    base = res["none"]
    lines = []
    for name, r in res.items():
        if name in ("none", GREY, ORIGINAL):
            continue
        ex0 = base["warp_error"] - res[GREY]["warp_error"]
        ex = r["warp_error"] - res[GREY]["warp_error"]
        ratio = f"{ex / ex0:.2f}" if ex0 > 0 else "n/a (no flicker to remove)"
        checks = [
            (f"flicker excess {ratio} of unsmoothed (<= {MAX_EXCESS_RATIO})", ex <= MAX_EXCESS_RATIO * ex0 or ex0 <= 0),
            (f"CIEDE2000 {r['ciede2000']:.3f} vs {base['ciede2000']:.3f} (<=)",
             r["ciede2000"] <= base["ciede2000"] + 1e-9),
            (f"colourfulness {r['colourfulness'] / base['colourfulness']:.3f} of unsmoothed "
             f"(>= {MIN_COLOURFULNESS_RATIO})",
             r["colourfulness"] >= MIN_COLOURFULNESS_RATIO * base["colourfulness"]),
            (f"PSNR {r['psnr'] - base['psnr']:+.3f} dB (>= -{MAX_PSNR_DROP_DB})",
             r["psnr"] >= base["psnr"] - MAX_PSNR_DROP_DB),
        ]
        lines += [f"{name}: {'PASS' if ok else 'FAIL'} {text}" for text, ok in checks]
    return lines


def _means(out: dict, variants: list[str], stand_in: bool) -> dict:
    """Per-variant means over the clips of ``out``, printed with each variant's share of the time."""
    keys = ("psnr", "ciede2000", "colourfulness", "warp_error", "cdc", "ms_per_frame")
    mean = {}
    for name in [*variants, GREY, ORIGINAL]:
        mean[name] = {k: _mean([out[c]["metrics"][name].get(k) for c in out]) for k in keys}
    for name in variants:
        mean[name]["excess x1e3"] = 1e3 * (mean[name]["warp_error"] - mean[GREY]["warp_error"])
    print(f"## mean over {len(out)} clips\n")
    print(markdown_table(mean, extra_columns=("excess x1e3", "ms_per_frame")) + "\n")
    model_ms = _mean([out[c]["model_ms_per_frame"] for c in out if c != "mean"])
    for name in variants:
        ms = mean[name]["ms_per_frame"]
        if ms:
            print(f"{name}: smoothing {ms:.2f} ms/frame = {100 * ms / (ms + model_ms):.1f}% of colorizer+smoothing "
                  f"(colorizer {model_ms:.1f} ms/frame{', a stand-in: not a real cost' if stand_in else ''})")
    return mean


def run(colorize_ab: Colorize | None = None, render_size: int = 256, *, clips: tuple[str, ...] = CLIPS,
        max_frames: int = 48, max_side: int | None = 360, metric_step: int = 4, window: int = 2, strength: float = 0.7,
        flow: str = "dis", work_scale: float = 0.5, data_dir: Path = DATA_DIR, seed: int = 0, cut_test: bool = True,
        flicker: float = 1.0) -> dict:
    """Benchmark; prints markdown and returns ``{clip: bench_clip result, "mean": {...}}`` (empty when no data).

    ``colorize_ab``: L ``[1,1,h,w]`` -> a,b ``[1,2,h,w]`` at render size; None uses :class:`StandInColorizer`.
    ``max_side`` shrinks the source frames (short side) first, to keep CIEDE2000 affordable; ``flicker``
    scales the stand-in's flicker (0: the truth, to see what smoothing costs where nothing flickers).
    """
    if not data_dir.is_dir():
        print(f"bench_smoothing: no clips at {data_dir}; skipped.")
        return {}
    variants: dict[str, Callable[[], TemporalSmoother | None]] = {
        "none": lambda: None,
        "stream": lambda: TemporalSmoother(strength=strength, window=0, flow=flow, work_scale=work_scale),
        f"window{window}": lambda: TemporalSmoother(strength=strength, window=window, flow=flow, work_scale=work_scale),
    }
    paths = [data_dir / f"{c}.mp4" for c in clips if (data_dir / f"{c}.mp4").is_file()]
    if not paths:
        print(f"bench_smoothing: none of {clips} in {data_dir}; skipped.")
        return {}
    who = (f"stand-in (truth + synthetic per-frame flicker x{flicker:g})" if colorize_ab is None
           else getattr(colorize_ab, "__name__", "model"))
    print(f"# Temporal smoothing benchmark\n\ncolorizer: {who}; render size {render_size}; strength {strength}; "
          f"flow {flow}; work scale {work_scale}; up to {max_frames} frames/clip; short side <= {max_side}; "
          f"per-frame metrics every {metric_step} frames; torch threads {torch.get_num_threads()}\n")
    out: dict = {}
    for p in paths:
        r = bench_clip(p, colorize_ab, render_size=render_size, max_frames=max_frames, max_side=max_side,
                       metric_step=metric_step, variants=variants, seed=seed, flicker=flicker)
        out[p.stem] = r
        W, H = r["size"]
        w, h = r["render"]
        print(f"## {p.stem}: {r['frames']} frames {W}x{H}, render {w}x{h}, "
              f"colorizer {r['model_ms_per_frame']:.1f} ms/frame "
              f"(ms_per_frame: median smoothing time per push)\n")
        rows = dict(r["metrics"])
        grey_we = rows[GREY]["warp_error"]
        for name in variants:
            rows[name]["excess x1e3"] = 1e3 * (rows[name]["warp_error"] - grey_we)
        print(markdown_table(rows, extra_columns=("excess x1e3", "ms_per_frame", "cuts")) + "\n")
    out["mean"] = mean = _means(out, list(variants), colorize_ab is None)
    print("\n" + "\n".join(check_targets(mean)))
    if cut_test and len(paths) > 1:
        out["cuts"] = cut_check(paths, render_size=render_size, frames_each=8, variants=variants, seed=seed)
        print("\n## scene cuts (clips joined end to end)\n\n" + "\n".join(out["cuts"]))
    return out


def model_colorizer(model: str, engine: str = "auto") -> Colorize:
    """A real model as the benchmark's colorizer: L -> a,b x the model's chroma gain, through ``engine``."""
    from ..engines import create_engine
    from ..models import load_model

    net, config = load_model(model)
    eng = create_engine(engine, net, config)

    def colorize(L: torch.Tensor) -> torch.Tensor:
        return eng.infer(L) * config.chroma_gain

    colorize.__name__ = f"{config.name} on {eng.describe()}"
    return colorize


def _mean(v: list) -> float | None:
    v = [x for x in v if x is not None and not (isinstance(x, float) and math.isnan(x))]
    return float(np.mean(v)) if v else None


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=48, help="frames per clip")
    ap.add_argument("--clips", default=",".join(CLIPS))
    ap.add_argument("--render-size", type=int, default=256)
    ap.add_argument("--max-side", type=int, default=360, help="shrink sources to this short side first (0: keep)")
    ap.add_argument("--metric-step", type=int, default=4, help="PSNR/CIEDE2000/colourfulness on every n-th frame")
    ap.add_argument("--window", type=int, default=2)
    ap.add_argument("--strength", type=float, default=0.7)
    ap.add_argument("--flow", default="dis")
    ap.add_argument("--work-scale", type=float, default=0.5)
    ap.add_argument("--flicker", type=float, default=1.0, help="stand-in flicker scale (0: the truth itself)")
    ap.add_argument("--no-cut-test", action="store_true")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    ap.add_argument("--data", type=Path, default=DATA_DIR)
    ap.add_argument("--model", default=None, help="a real model (packaged name or .safetensors; 'default') instead "
                                                  "of the stand-in")
    ap.add_argument("--engine", default="auto", help="engine for --model")
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    run(model_colorizer(a.model, a.engine) if a.model else None, a.render_size, clips=tuple(c for c in a.clips.split(",") if c), max_frames=a.frames,
        max_side=a.max_side or None, metric_step=a.metric_step, window=a.window, strength=a.strength, flow=a.flow,
        work_scale=a.work_scale, data_dir=a.data, flicker=a.flicker, cut_test=not a.no_cut_test)


if __name__ == "__main__":
    main()
