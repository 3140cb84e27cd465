"""A console-script run's start-up: CPython's cyclic garbage collector kept off the libraries' objects.

Importing torch, OpenCV, PyAV and ONNX Runtime leaves ~180k long-lived objects; with the default
thresholds the collector walks them again and again while they load (3 full and 33 middle collections
before the first frame) and at every full collection of the frame loop after. :func:`begin` (the
console script, before anything else) raises the first generation's threshold; :func:`settled` (the
colorizer, once its engine is built) freezes what exists (``gc.freeze``: never walked, never collected)
and puts the default thresholds back. Fast-mode 720p, paired whole processes on 2 cores: a 2-frame clip
0.83x the time (1.49 against 1.80 s), a 480-frame run 0.955x (7.86 against 8.29 s).

Only the console script calls :func:`begin`; without it :func:`settled` does nothing, so a program that
embeds filmcolor keeps its own collector settings.
"""

from __future__ import annotations

import gc

START_THRESHOLD = 100_000  # first generation, while starting (CPython's default: 700)
DEFAULT_THRESHOLDS = (700, 10, 10)


def begin() -> None:
    """Collect the first generation only every :data:`START_THRESHOLD` allocations until :func:`settled`
    (still bounded: a command that never settles keeps collecting, just less often)."""
    gc.set_threshold(START_THRESHOLD, *DEFAULT_THRESHOLDS[1:])


def settled() -> None:
    """The libraries are loaded and the engine built: freeze every object alive now and restore the default
    thresholds. A no-op unless :func:`begin` ran (and only the first time)."""
    if gc.get_threshold()[0] != START_THRESHOLD:
        return
    gc.freeze()
    gc.set_threshold(*DEFAULT_THRESHOLDS)
