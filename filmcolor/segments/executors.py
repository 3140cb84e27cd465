"""Where segments run: in this process, in worker processes on this machine, or on a Ray cluster.

Executors are named lazily ("module:Class", like the engine registry) so Ray is imported only when
asked for. Each takes the colorizer options and a worker count and runs ``SegmentTask`` objects,
calling ``on_done(summary)`` in the coordinating process as each segment finishes (any order).
"""

from __future__ import annotations

import importlib
import multiprocessing
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from typing import Callable, Protocol, Sequence

from ..colorizer import Colorizer, ColorizerOptions
from ..cpu import cpu_count
from ..errors import FormatError
from ..pipeline import Progress
from .worker import SegmentTask, SegmentWorker, render_segment

EXECUTORS = {
    "inline": "filmcolor.segments.executors:InlineExecutor",
    "processes": "filmcolor.segments.executors:ProcessExecutor",
    "ray": "filmcolor.segments.ray_executor:RayExecutor",
}

OnDone = Callable[[dict], None]


class Executor(Protocol):
    def describe(self) -> str: ...

    def run(self, tasks: Sequence[SegmentTask], on_done: OnDone,
            on_frames: Callable[[Progress], None] | None = None) -> None: ...


def create_executor(name: str, options: ColorizerOptions, workers: int, **kw) -> Executor:
    if name not in EXECUTORS:
        raise FormatError(f"unknown executor {name!r}; choose one of {', '.join(EXECUTORS)}")
    module, cls = EXECUTORS[name].split(":")
    return getattr(importlib.import_module(module), cls)(options, workers, **kw)


class InlineExecutor:
    """Segments one after another in this process (reuses ``colorizer`` when given)."""

    def __init__(self, options: ColorizerOptions, workers: int = 1, colorizer: Colorizer | None = None) -> None:
        self.options, self._colorizer = options, colorizer

    def describe(self) -> str:
        return "this process"

    def run(self, tasks, on_done, on_frames=None) -> None:
        own = self._colorizer is None
        colorizer = self._colorizer or Colorizer(self.options)
        try:
            for task in tasks:
                on_done(render_segment(task, colorizer, on_frames))
        finally:
            if own:
                colorizer.close()


_WORKER: SegmentWorker | None = None  # one per worker process, made by the pool's initializer
_INIT_ERROR: str | None = None         # why it could not be made (an initializer that raises breaks the pool)


def _init_process(options: ColorizerOptions) -> None:
    global _WORKER, _INIT_ERROR
    try:
        _WORKER = SegmentWorker(options)
    except Exception as exc:  # reported with the first task instead of a bare BrokenProcessPool
        _INIT_ERROR = str(exc) or exc.__class__.__name__


def _run_in_process(task: SegmentTask) -> dict:
    if _WORKER is None:
        raise FormatError(f"worker process could not start: {_INIT_ERROR or 'not initialised'}")
    return _WORKER.render(task)


class ProcessExecutor:
    """``workers`` processes on this machine share the segments; the CPUs are divided between them
    (each engine gets ``cpus // workers`` threads unless the options say otherwise). With several
    GPUs, worker ``i`` is not pinned: pass ``device`` per run or use Ray's GPU scheduling."""

    def __init__(self, options: ColorizerOptions, workers: int = 2) -> None:
        self.workers = max(1, int(workers))
        threads = options.threads or max(1, cpu_count() // self.workers)
        self.options = replace(options, threads=threads)

    def describe(self) -> str:
        return f"{self.workers} worker processes x {self.options.threads} threads"

    def run(self, tasks, on_done, on_frames=None) -> None:
        if not tasks:
            return
        ctx = multiprocessing.get_context("spawn")  # no fork of a process holding torch/ORT threads
        pool = ProcessPoolExecutor(max_workers=min(self.workers, len(tasks)), mp_context=ctx,
                                   initializer=_init_process, initargs=(self.options,))
        try:
            futures = {pool.submit(_run_in_process, t) for t in tasks}
            while futures:
                done, futures = wait(futures, return_when=FIRST_EXCEPTION)
                for f in done:
                    on_done(f.result())
        except BrokenProcessPool:
            raise FormatError("a worker process died; finished segments are kept: run the same command again "
                              "to resume") from None
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
