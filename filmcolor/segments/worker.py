"""One unit of work: colorize one segment into the work folder and mark it done.

Every executor (in-process, worker processes, Ray actors) calls :func:`render_segment`; they differ
only in where it runs. A ``SegmentTask`` is plain picklable data, so it travels to any of them.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..colorizer import Colorizer, ColorizerOptions
from ..errors import FormatError
from ..pipeline import Progress, colorize_video
from ..video.sink import EncodeOptions
from .manifest import WorkFolder
from .plan import Segment


def limit_cpu_threads(n: int | None) -> None:
    """Hold this process's torch and OpenCV pools to ``n`` threads. Whatever the engine, torch (colour
    conversion, smoothing) and OpenCV (optical flow) run here too; left at all CPUs, every worker's
    pools spin-wait against each other's and two workers ran 4x slower than one."""
    if not n:
        return
    import cv2
    import torch

    torch.set_num_threads(int(n))
    cv2.setNumThreads(int(n))


@dataclass(frozen=True)
class SegmentTask:
    src: str
    work_dir: str
    segment: Segment
    encode: EncodeOptions
    guidance: object = None   # ClipGuidance: references and timed hints (picklable)


def render_segment(task: SegmentTask, colorizer: Colorizer,
                   progress: Callable[[Progress], None] | None = None) -> dict:
    """Write the segment's file (temporary name, then renamed) and its done marker; return a summary."""
    folder = WorkFolder(Path(task.work_dir))
    media = folder.root / task.segment.file
    res = colorize_video(task.src, media, colorizer, encode=task.encode,
                         overwrite=True, span=task.segment.span, progress=progress,
                         guidance=task.guidance)
    if res["frames"] != task.segment.frames:  # never marked done: it would be redone forever, or join short
        media.unlink(missing_ok=True)
        raise FormatError(f"segment {task.segment.index}: decoded {res['frames']} frames where the packet index "
                          f"has {task.segment.frames}; remux the input into .mkv first (ffmpeg -i in -c copy "
                          f"out.mkv) or colorize it without --segments")
    folder.mark_done(task.segment, res)
    return {"segment": task.segment.index, "frames": res["frames"], "planned_frames": task.segment.frames,
            "seconds": res["seconds"], "worker": f"{socket.gethostname()}:{os.getpid()}", "engine": res["engine"]}


class SegmentWorker:
    """A colorizer kept for many segments: the body of a worker process or a Ray actor."""

    def __init__(self, options: ColorizerOptions) -> None:
        limit_cpu_threads(options.threads)  # a process of its own: its pools get its share of the CPUs
        self.colorizer = Colorizer(options)

    def render(self, task: SegmentTask) -> dict:
        return render_segment(task, self.colorizer)

    def describe(self) -> str:
        return self.colorizer.describe()
