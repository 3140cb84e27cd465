"""``filmcolor bench``: model speed per engine and end-to-end fps beside ffmpeg's own decode+encode rate.

Speed is quoted as a ratio to the same machine's decode+encode rate for the same clip, measured in the
same run (absolute fps swing ~2x with load on shared machines).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HEIGHTS = {"480p": (854, 480), "720p": (1280, 720), "1080p": (1920, 1080)}


def make_bench_clip(source: Path, size: tuple[int, int], seconds: float, dst: Path) -> Path:
    """A grey clip of ``size`` from ``source`` (looped if short), H.264, via the ffmpeg binary."""
    w, h = size
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-stream_loop", "-1", "-i", str(source), "-t", str(seconds),
                    "-vf", f"scale={w}:{h},format=gray,format=yuv420p", "-an", "-c:v", "libx264", "-crf", "18",
                    "-preset", "veryfast", str(dst)], check=True)
    return dst


def ffmpeg_rate(clip: Path, frames: int, encoder: list[str]) -> float:
    """Frames per second of ffmpeg decoding ``clip`` and encoding it with ``encoder`` (the ceiling)."""
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(clip), *encoder, str(Path(tmp) / "o.mp4")], check=True)
        return frames / (time.perf_counter() - t)


def filmcolor_run(clip: Path, args: list[str]) -> dict:
    """Run ``filmcolor colorize`` in a fresh process; returns its summary plus peak RSS (MiB)."""
    with tempfile.TemporaryDirectory() as tmp:
        code = ("import json,resource,sys;from filmcolor.cli import main;"
                "sys.argv=['filmcolor','colorize',*sys.argv[1:]];\n"
                "try:\n main()\nexcept SystemExit:\n pass\n"
                "print(json.dumps({'peak_rss_mib': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024}))")
        out = Path(tmp) / "o.mp4"
        r = subprocess.run([sys.executable, "-c", code, str(clip), str(out), "--quiet", "--json", str(Path(tmp) / "s.json"),
                            *args], capture_output=True, text=True, check=True)
        summary = json.loads((Path(tmp) / "s.json").read_text())
        summary.update(json.loads(r.stdout.strip().splitlines()[-1]))
        return summary


def end_to_end(source: Path, sizes: list[str], seconds: float, args: list[str], preset: str = "veryfast") -> list[dict]:
    """For each size: ffmpeg decode+encode fps, filmcolor fps, their ratio, peak memory."""
    rows = []
    enc = ["-c:v", "libx264", "-crf", "18", "-preset", preset, "-pix_fmt", "yuv420p"]
    with tempfile.TemporaryDirectory() as tmp:
        for name in sizes:
            clip = make_bench_clip(source, HEIGHTS[name], seconds, Path(tmp) / f"{name}.mp4")
            import av

            with av.open(str(clip)) as c:
                frames = c.streams.video[0].frames
            ceiling = ffmpeg_rate(clip, frames, enc)
            summary = filmcolor_run(clip, [*args, "--preset", preset])
            rows.append({"size": name, "frames": frames, "ffmpeg_fps": round(ceiling, 2), "filmcolor_fps": summary["fps"],
                         "ratio": round(summary["fps"] / ceiling, 3), "peak_rss_mib": round(summary["peak_rss_mib"], 1),
                         "engine": summary["engine"]})
    return rows
