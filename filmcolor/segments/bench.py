"""Throughput of segmented colorization with 1, 2, ... workers on one clip, outputs cross-checked.

    python -m filmcolor.segments.bench clip.mp4 --workers 1,2 --segment-seconds 2 [--engine onnxruntime]

Prints a table and one JSON line: fps per worker count, speed-up over one worker, and whether every
run wrote the same frames (they must: workers change speed, never pixels).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import av
import numpy as np

from ..colorizer import ColorizerOptions
from .runner import colorize_segmented


def _frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="yuv444p") for f in c.decode(video=0)]


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("clip", type=Path)
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--segment-seconds", type=float, default=2.0)
    ap.add_argument("--engine", default="auto")
    ap.add_argument("--model", default="default")
    ap.add_argument("--executor", default=None, help="inline/processes/ray (default: inline for 1, processes for more)")
    args = ap.parse_args(argv)
    opts = ColorizerOptions(model=args.model, engine=args.engine)
    rows, reference = [], None
    with tempfile.TemporaryDirectory() as tmp:
        for n in [int(w) for w in args.workers.split(",")]:
            dst = Path(tmp) / f"w{n}.mkv"
            ex = args.executor or ("inline" if n == 1 else "processes")
            t0 = time.monotonic()
            res = colorize_segmented(args.clip, dst, opts, segment_seconds=args.segment_seconds, workers=n, executor=ex)
            wall = time.monotonic() - t0
            frames = _frames(dst)
            reference = reference or frames
            same = len(frames) == len(reference) and all(np.array_equal(a, b) for a, b in zip(frames, reference))
            rows.append({"workers": n, "executor": res["executor"], "segments": res["segments"], "frames": res["frames"],
                         "seconds": round(wall, 2), "fps": round(res["frames"] / wall, 2), "same_frames_as_first": same})
    base = rows[0]["fps"]
    for r in rows:
        r["speedup"] = round(r["fps"] / base, 2)
        print(f"{r['workers']:>2} workers  {r['fps']:7.2f} fps  x{r['speedup']:.2f}  {r['segments']} segments  "
              f"same frames: {r['same_frames_as_first']}  ({r['executor']})")
    summary = {"clip": str(args.clip), "rows": rows}
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
