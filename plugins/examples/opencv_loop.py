"""Colorize a video (or a camera) in a plain OpenCV loop with filmcolor's ColorizeFilter.

    python plugins/examples/opencv_loop.py old.mp4 new.mp4                # a file
    python plugins/examples/opencv_loop.py 0 webcam.mp4 --frames 250      # camera 0, 250 frames
    python plugins/examples/opencv_loop.py old.mp4 new.mp4 --cut-threshold 40 --render-size 320

The loop is what you would write around any OpenCV filter: read a frame, filter it, write it. The
filter keeps temporal smoothing across calls (causal: each call returns its own frame) and is told
about hard cuts with ``reset()``; here a crude mean-difference detector stands in for your own.
(``filmcolor.plugins.opencv.colorize_capture`` does the same loop in one call, without the cut hook.)
"""

from __future__ import annotations

import argparse
import sys
import time

import cv2
import numpy as np

from filmcolor.plugins.opencv import ColorizeFilter


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src", help="video file, URL, or camera index (0, 1, ...)")
    ap.add_argument("dst", help="output video (.mp4 with mp4v, .avi with MJPG...)")
    ap.add_argument("--fourcc", default="mp4v")
    ap.add_argument("--model", default="default")
    ap.add_argument("--engine", default="auto")
    ap.add_argument("--render-size", type=int, default=None)
    ap.add_argument("--frames", type=int, default=None, help="stop after this many frames")
    ap.add_argument("--cut-threshold", type=float, default=None,
                    help="reset the smoothing when the mean grey difference to the previous frame exceeds this")
    args = ap.parse_args(argv)

    cap = cv2.VideoCapture(int(args.src) if args.src.isdigit() else args.src)
    if not cap.isOpened():
        print(f"error: cannot open {args.src!r}", file=sys.stderr)
        return 2
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    writer = None
    prev = None
    n = 0
    t0 = time.monotonic()
    with ColorizeFilter(model=args.model, engine=args.engine, render_size=args.render_size) as colorize:
        while args.frames is None or n < args.frames:
            ok, frame = cap.read()
            if not ok:
                break
            grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame
            if args.cut_threshold is not None and prev is not None and \
                    float(np.abs(grey.astype(np.int16) - prev).mean()) > args.cut_threshold:
                colorize.reset()  # a hard cut: do not carry colour across it
            prev = grey.astype(np.int16)
            out = colorize(frame)  # colorized BGR, same size; None only if the colorizer holds frames back
            if writer is None:
                h, w = frame.shape[:2]
                writer = cv2.VideoWriter(args.dst, cv2.VideoWriter_fourcc(*args.fourcc), fps, (w, h))
            if out is not None:
                writer.write(out)
            n += 1
        for out in colorize.flush():
            writer.write(out)
    cap.release()
    if writer is not None:
        writer.release()
    print(f"{n} frame(s) in {time.monotonic() - t0:.1f} s -> {args.dst}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
