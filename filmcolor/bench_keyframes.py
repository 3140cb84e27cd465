"""Quality cost of keyframe inference: each ``--keyframes`` setting against every-frame inference.

    python -m filmcolor.bench_keyframes /work/shared/data/videos/*.mp4 --settings all,auto,4,8

Each colour clip is made grey (ffmpeg), colorized with every setting (lossless FFV1, so the codec adds
nothing) and scored against the colour original with :func:`filmcolor.video_metrics.evaluate_video`:
CIEDE2000, PSNR, warp error, CDC. A setting ``N:MODE`` also sets the smoothing (``8:stream`` is the bench's
fast mode) and ``N:MODE:SIZE`` the render size too (``8:stream:192``), so a mode is compared with
every-frame inference at the default smoothing and render size. Prints per clip and
the mean over clips, with the difference to ``all``, the share of frames the model ran on and the colorize
time; ``--json PATH`` writes the rows.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

METRIC_KEYS = ("ciede2000", "psnr", "warp_error", "cdc")


def make_grey(src: Path, dst: Path, max_frames: int | None) -> Path:
    """Grey version of a colour clip (same size and frames), H.264 at high quality, via the ffmpeg binary."""
    limit = ["-frames:v", str(max_frames)] if max_frames else []
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(src), *limit, "-vf", "format=gray,format=yuv420p",
                    "-an", "-c:v", "libx264", "-crf", "12", "-preset", "veryfast", str(dst)], check=True)
    return dst


def run(clips: list[Path], settings: list[str], *, model: str = "default", engine: str = "auto",
        smoothing: str = "window", max_frames: int | None = None) -> list[dict]:
    """One row per (setting, clip) plus one ``mean`` row per setting."""
    from .colorizer import Colorizer, ColorizerOptions
    from .pipeline import colorize_video
    from .video_metrics import evaluate_video

    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        greys = [make_grey(c, Path(tmp) / f"{c.stem}.grey.mp4", max_frames) for c in clips]
        for setting in settings:
            # "8:stream": keyframes 8, causal smoothing; "8:stream:192": and the model at 192 px
            keyframes, own_smoothing, size = (setting.split(":") + ["", ""])[:3]
            col = Colorizer(ColorizerOptions(model=model, engine=engine, smoothing=own_smoothing or smoothing,
                                             keyframes=keyframes, render_size=int(size) if size else None))
            for clip, grey in zip(clips, greys):
                out = Path(tmp) / f"{clip.stem}.{setting}.mkv"
                before, t0 = col.model_frames, time.perf_counter()
                summary = colorize_video(grey, out, col, overwrite=True)
                seconds = time.perf_counter() - t0
                res = evaluate_video(out, clip, max_frames=max_frames)
                rows.append({"setting": setting, "clip": clip.stem, "frames": summary["frames"],
                             "model_share": round((col.model_frames - before) / max(1, summary["frames"]), 3),
                             "seconds": round(seconds, 2), **{k: res["colorized"][k] for k in METRIC_KEYS}})
                out.unlink()
            col.close()
    for setting in settings:
        mine = [r for r in rows if r["setting"] == setting and r["clip"] != "mean"]
        mean = {k: sum(r[k] for r in mine) / len(mine) for k in (*METRIC_KEYS, "model_share", "seconds")}
        rows.append({"setting": setting, "clip": "mean", "frames": sum(r["frames"] for r in mine), **mean})
    base = {r["clip"]: r for r in rows if r["setting"] == "all"}
    for r in rows:
        if r["clip"] in base:
            r["d_ciede2000"] = r["ciede2000"] - base[r["clip"]]["ciede2000"]
            r["warp_error_ratio"] = r["warp_error"] / base[r["clip"]]["warp_error"]
    return rows


def table(rows: list[dict]) -> str:
    head = "| setting | clip | frames | model share | s | CIEDE2000 | dCIEDE vs all | PSNR | warp err x1e3 | warp / all | CDC x1e3 |"
    lines = [head, "|" + " --- |" * (head.count("|") - 1)]
    for r in rows:
        d = r.get("d_ciede2000")
        q = r.get("warp_error_ratio")
        lines.append(f"| {r['setting']} | {r['clip']} | {r['frames']} | {r['model_share']:.2f} | {r['seconds']:.1f} | "
                     f"{r['ciede2000']:.3f} | {'-' if d is None else f'{d:+.3f}'} | {r['psnr']:.2f} | "
                     f"{r['warp_error'] * 1e3:.3f} | {'-' if q is None else f'{q:.3f}'} | {r['cdc'] * 1e3:.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("clips", nargs="+", type=Path, help="colour clips")
    ap.add_argument("--settings", default="all,auto,4,8",
                    help="comma-separated --keyframes values, each optionally :SMOOTHING (8:stream, 8:off) to "
                         "override --smoothing and :SMOOTHING:SIZE (8:stream:192) the render size too; 'all' "
                         "(with --smoothing) is the baseline")
    ap.add_argument("--model", default="default")
    ap.add_argument("--engine", default="auto")
    ap.add_argument("--smoothing", default="window")
    ap.add_argument("--max-frames", type=int, default=None)
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args(argv)
    settings = [s.strip() for s in a.settings.split(",") if s.strip()]
    if "all" not in settings:
        settings.insert(0, "all")
    rows = run(a.clips, settings, model=a.model, engine=a.engine, smoothing=a.smoothing, max_frames=a.max_frames)
    print(table(rows))
    if a.json:
        a.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
