"""Segmented colorization of long films: plan, render what is missing, join; resumable.

``colorize_segmented`` is the whole job. Re-running it with the same input, output and settings after
a crash, Ctrl-C or ``kill -9`` reuses every finished segment and renders only the rest; since each
segment is computed from the same frames with the same neighbours, the joined film is frame for
frame what an uninterrupted run writes.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from .. import __version__
from ..colorizer import Colorizer, ColorizerOptions
from ..models.weights import resolve_weights
from ..errors import FormatError
from ..video.formats import output_defaults
from ..fs import check_paths, content_hash, temp_path
from ..video.sink import EncodeOptions
from .executors import create_executor
from .join import join_segments
from .manifest import WorkFolder, source_identity
from .plan import index_frames, plan_segments
from .worker import SegmentTask

DEFAULT_SEGMENT_SECONDS = 60.0
DEFAULT_OVERLAP = 8   # frames decoded on each side of a segment: > the smoother's window and cut detector
NO_SEGMENT_JOIN = (".avi",)


@dataclass
class SegmentProgress:
    segments_done: int
    segments: int
    frames: int          # frames finished (whole segments, plus the running one in this process)
    total: int
    fps: float


def default_work_dir(dst: Path) -> Path:
    return dst.with_name(f".{dst.name}.filmcolor-work")


def guidance_identity(guidance) -> dict:
    """References (time, path, size, mtime) and hint points: what makes the guidance of a job."""
    import os

    refs = []
    for t, image in guidance.references:
        st = os.stat(image)
        refs.append([str(t), str(Path(image).resolve()), st.st_size, st.st_mtime_ns])
    return {"references": refs, "points": [repr(p) for p in guidance.points], "relative": guidance.relative,
            "horizon": guidance.horizon}


def job_key(src: Path, dst: Path, options: ColorizerOptions, encode: EncodeOptions, segment_frames: int,
            overlap: int) -> dict:
    """Everything that changes the pixels of a segment; a work folder is reused only for an equal key.

    The weights count by their bytes (a retrained model of the same architecture has the same size),
    the engine by the one it resolves to here ("auto" picks TensorRT on one machine, ONNX Runtime on
    another; int8 moves colours by about one Lab unit). Device, threads and batch are left out: they
    change speed, not the picture beyond float rounding, so a job may resume elsewhere.
    """
    from ..engines.registry import resolve_engine

    config, weights = resolve_weights(options.model)
    look = {k: v for k, v in asdict(options).items() if k not in ("device", "threads", "batch")}
    look["engine"] = resolve_engine(options.engine, options.device)
    return {"source": source_identity(src), "output_suffix": dst.suffix.lower(),
            "weights": {"file": weights.name, "sha256": content_hash(weights), "config": config.read_text()},
            "colorizer": look, "encode": asdict(encode), "segment_frames": segment_frames, "overlap": overlap,
            "filmcolor": __version__}


def colorize_segmented(src: str | Path, dst: str | Path, options: ColorizerOptions | None = None, *,
                       encode: EncodeOptions | None = None, segment_seconds: float = DEFAULT_SEGMENT_SECONDS,
                       overlap: int = DEFAULT_OVERLAP, workers: int | None = None, executor: str | None = None,
                       ray_address: str = "local", work_dir: str | Path | None = None, keep_work: bool = False,
                       overwrite: bool = False, colorizer: Colorizer | None = None,
                       progress: Callable[[SegmentProgress], None] | None = None,
                       on_segment: Callable[[dict], None] | None = None, guidance=None) -> dict:
    """Colorize ``src`` into ``dst`` in resumable segments; returns a summary dict.

    ``guidance`` (:class:`~filmcolor.temporal.references.ClipGuidance`) goes to every segment: each one
    computes the carried guidance of its frames from the source itself (keys are addressed by time), so
    a segment gets the same guidance whichever run renders it; the work folder's key includes it.

    ``executor``: "inline" (this process), "processes" (``workers`` processes here) or "ray"
    (``ray_address``; ``workers`` actors, default one per GPU, else per CPU); default inline for one
    worker, processes for more.
    """
    src, dst = Path(src).resolve(), Path(dst).resolve()  # tasks may run in other processes, other folders
    options = options or (colorizer.options if colorizer else ColorizerOptions())
    encode = encode or EncodeOptions()
    _check_job(src, dst, encode, segment_seconds, overwrite, guidance)
    t0 = time.monotonic()
    index = index_frames(src)
    segment_frames = max(1, round(segment_seconds * float(index.rate)))
    planned = plan_segments(index, segment_frames, overlap, dst.suffix.lower())
    folder = WorkFolder(Path(work_dir).resolve() if work_dir else default_work_dir(dst))
    with folder.locked():  # one run per work folder at a time
        key = job_key(src, dst, options, encode, segment_frames, overlap)
        if guidance:
            key["guidance"] = guidance_identity(guidance)
        segments = folder.create_or_check(key, planned, index.frames)
        pending = [s for s in segments if not folder.is_done(s)]
        name = executor or ("inline" if (workers or 1) <= 1 else "processes")
        kw = {"colorizer": colorizer} if name == "inline" else {"address": ray_address} if name == "ray" else {}
        ex = create_executor(name, options, workers if name == "ray" else (workers or 1), **kw)
        tracker = _Tracker(len(segments), index.frames, len(segments) - len(pending),
                           sum(s.frames for s in segments if s not in pending), progress, on_segment)
        tracker.report()
        ex.run([SegmentTask(str(src), str(folder.root), s, encode, guidance or None) for s in pending], tracker.on_done,
               (lambda p: tracker.report(p.frames)) if name == "inline" else None)
        missing = [s.index for s in segments if not folder.is_done(s)]
        if missing:
            raise FormatError(f"segments {missing} did not finish; run the same command again to resume")
        joined = _join(folder, segments, src, dst, index.frames)
        if not keep_work:
            folder.remove(segments)
        elapsed = time.monotonic() - t0
        return {"input": str(src), "output": str(dst), "frames": joined["frames"], "segments": len(segments),
                "segments_reused": len(segments) - len(pending), "segments_rendered": len(pending),
                "executor": ex.describe(), "seconds": round(elapsed, 3),
                "fps": round(tracker.rendered / max(elapsed, 1e-9), 2),
                "work_dir": str(folder.root) if keep_work else None, "warnings": joined["warnings"]}


def _check_job(src: Path, dst: Path, encode: EncodeOptions, segment_seconds: float, overwrite: bool, guidance) -> None:
    """Every one-line error a segmented job can have, before any work folder exists."""
    check_paths(src, dst, overwrite)
    output_defaults(dst, encode.codec)
    if dst.suffix.lower() in NO_SEGMENT_JOIN:
        raise FormatError(f"{dst.suffix} cannot be written in segments (it stores no presentation timestamps to "
                          f"join by); write .mkv or .mp4, or colorize without --segments")
    if segment_seconds <= 0:
        raise FormatError("--segment-seconds must be positive")
    if guidance:
        from ..temporal.references import check_guidance

        check_guidance(guidance, src)


class _Tracker:
    """Segments and frames done so far (reused ones included), reported to ``progress`` as they finish."""

    def __init__(self, segments: int, frames: int, done: int, done_frames: int,
                 progress: Callable[[SegmentProgress], None] | None, on_segment: Callable[[dict], None] | None) -> None:
        self.segments, self.frames, self.done, self.done_frames = segments, frames, done, done_frames
        self.progress, self.on_segment = progress, on_segment
        self.rendered, self.t0 = 0, time.monotonic()

    def report(self, extra: int = 0) -> None:
        if self.progress:
            rate = (self.rendered + extra) / max(1e-6, time.monotonic() - self.t0)
            self.progress(SegmentProgress(self.done, self.segments, self.done_frames + extra, self.frames, rate))

    def on_done(self, summary: dict) -> None:
        self.done += 1
        self.done_frames += summary["frames"]
        self.rendered += summary["frames"]
        if self.on_segment:
            self.on_segment(summary)
        self.report()


def _join(folder: WorkFolder, segments, src: Path, dst: Path, frames: int) -> dict:
    """Join the finished segments into ``dst`` atomically, checking that every frame of the source is there."""
    tmp = temp_path(dst)
    try:
        joined = join_segments([folder.root / s.file for s in segments], src, tmp, dst)
        if joined["frames"] != frames:
            raise FormatError(f"joined {joined['frames']} frames but the input has {frames}; the work "
                              f"folder {str(folder.root)!r} is kept for inspection")
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return joined
