"""``filmcolor bench``: the whole ``filmcolor colorize`` process as a user runs it, beside ffmpeg's own transcode.

For each frame size a grey H.264 clip (480 frames by default) is made with the ffmpeg binary, from its
``testsrc2`` pattern or a given clip looped. Then, round by round, the same clip is transcoded by
``ffmpeg -i in.mp4 -c:v libx264 -preset veryfast -crf 18`` and colorized by ``filmcolor colorize`` in each
mode (same x264 preset and CRF), every run a fresh process, start-up included. Speed is quoted as the
ratio of filmcolor's frame rate to ffmpeg's in the same round (absolute rates swing ~2x with load on
shared machines; paired ratios hold), the median over rounds. Peak RSS is each child's own
(``os.wait4``), the largest over rounds. Time to first frame: a 1-frame clip colorized the same way.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

SIZES = {"480p": (854, 480), "720p": (1280, 720), "1080p": (1920, 1080)}
X264 = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "18"]
# The modes measured. default: the CLI's own defaults (keyframes auto, window smoothing, int8 on a CPU).
# stream: causal smoothing instead. fast: the model on every 8th frame of a shot only (colour carried
# along the flow between), at a render size of 160, and causal smoothing. Their quality cost is measured
# by ``python -m filmcolor.bench_keyframes`` (its module docstring says what it measures; the fast mode
# is its setting ``8:stream:160``).
MODES: dict[str, list[str]] = {
    "default": [],
    "stream": ["--smoothing", "stream"],
    "fast": ["--keyframes", "8", "--smoothing", "stream", "--render-size", "160"],
}


@dataclass
class Run:
    seconds: float
    peak_rss_mib: float
    returncode: int


def make_clip(dst: Path, size: tuple[int, int], frames: int, source: Path | None = None, rate: int = 24) -> Path:
    """A grey H.264 clip of ``frames`` frames at ``size``: ``testsrc2`` or ``source`` looped and scaled."""
    w, h = size
    src = ["-stream_loop", "-1", "-i", str(source)] if source else \
        ["-f", "lavfi", "-i", f"testsrc2=size={w}x{h}:rate={rate}"]
    subprocess.run(["ffmpeg", "-v", "error", "-y", *src, "-frames:v", str(frames), "-an",
                    "-vf", f"scale={w}:{h},format=gray,format=yuv420p", "-c:v", "libx264", "-preset", "veryfast",
                    "-crf", "16", str(dst)], check=True)
    return dst


def timed(cmd: list[str]) -> Run:
    """Run ``cmd`` to completion; wall seconds and the child's own peak RSS (MiB), from ``os.wait4``."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = p.stderr.read() if p.stderr else b""
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} ... failed ({p.returncode}): {err.decode(errors='replace')[-300:]}")
    return Run(seconds, usage.ru_maxrss / 1024.0, p.returncode)  # ru_maxrss is in KiB on Linux


def filmcolor_command() -> list[str]:
    """How a user starts filmcolor: the console script beside this interpreter, else ``python -m``."""
    script = Path(sys.executable).with_name("filmcolor")
    return [str(script)] if script.exists() else [sys.executable, "-m", "filmcolor.cli"]


def bench_size(name: str, clip: Path, one_frame: Path, frames: int, modes: dict[str, list[str]], extra: list[str],
               rounds: int, tmp: Path) -> list[dict]:
    """Rows (one per mode) for one frame size: rounds of ffmpeg, then each mode, interleaved."""
    out = tmp / "out.mp4"
    ff = ["ffmpeg", "-v", "error", "-y", "-i", str(clip), *X264, "-an", str(out)]
    fc = [*filmcolor_command(), "colorize", "--quiet", "-y", "--preset", "veryfast", "--crf", "18", *extra]
    runs: dict[str, list[Run]] = {"ffmpeg": [], **{m: [] for m in modes}}
    for _ in range(rounds):
        runs["ffmpeg"].append(timed(ff))
        for m, args in modes.items():
            runs[m].append(timed([*fc, *args, str(clip), str(out)]))
    rows = []
    ff_fps = [frames / r.seconds for r in runs["ffmpeg"]]
    for m, args in modes.items():
        first = timed([*fc, *args, str(one_frame), str(out)])
        fps = [frames / r.seconds for r in runs[m]]
        rows.append({
            "size": name, "mode": m, "args": " ".join(args), "frames": frames, "rounds": rounds,
            "ffmpeg_fps": round(statistics.median(ff_fps), 2), "filmcolor_fps": round(statistics.median(fps), 2),
            "ratio": round(statistics.median(f / g for f, g in zip(fps, ff_fps)), 3),
            "ratio_min": round(min(f / g for f, g in zip(fps, ff_fps)), 3),
            "ratio_max": round(max(f / g for f, g in zip(fps, ff_fps)), 3),
            "seconds": round(statistics.median(r.seconds for r in runs[m]), 2),
            "first_frame_s": round(first.seconds, 2),
            "peak_rss_mib": round(max(r.peak_rss_mib for r in runs[m]), 1),
            "ffmpeg_peak_rss_mib": round(max(r.peak_rss_mib for r in runs["ffmpeg"]), 1),
        })
    return rows


def end_to_end(sizes: list[str], *, frames: int = 480, source: Path | None = None, modes: list[str] | None = None,
               extra: list[str] | None = None, rounds: int = 2) -> list[dict]:
    """``bench_size`` for each size in ``sizes`` (keys of :data:`SIZES`); ``extra`` goes to every colorize run."""
    if shutil.which("ffmpeg") is None:
        raise FileNotFoundError("bench needs the ffmpeg command line tool on PATH (apt-get install ffmpeg)")
    unknown = [s for s in sizes if s not in SIZES] + [m for m in (modes or []) if m not in MODES]
    if unknown:
        raise ValueError(f"unknown size or mode {unknown[0]!r}: sizes {', '.join(SIZES)}; modes {', '.join(MODES)}")
    chosen = {m: MODES[m] for m in (modes or list(MODES))}
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for name in sizes:
            clip = make_clip(tmp / f"{name}.mp4", SIZES[name], frames, source)
            one = make_clip(tmp / f"{name}-1.mp4", SIZES[name], 1, source)
            rows += bench_size(name, clip, one, frames, chosen, list(extra or []), rounds, tmp)
    return rows
