"""User-facing errors, importable without torch, OpenCV or ONNX Runtime.

The CLI prints any :class:`FilmcolorError` as one line ``error: ...`` on stderr and exits with its
``exit_code``; everything else is a programming error and keeps its traceback.

Exit codes (documented in the README): 0 success, 1 a run that failed for a reason outside the user's
arguments (disk full, unwritable folder, a missing optional package), 2 a usage error (bad argument,
option, input file or format), 130 interrupted.
"""

from __future__ import annotations


class FilmcolorError(Exception):
    """A failure with a one-line message meant for the user."""

    exit_code = 1


class UsageError(FilmcolorError, ValueError):
    """Bad arguments or options: exit code 2."""

    exit_code = 2


class FormatError(UsageError):
    """Input or output format problem (unreadable, unsupported, inconsistent): exit code 2."""


class EnvironmentFailure(FilmcolorError, OSError):
    """The machine, not the arguments: disk full, folder not writable, missing optional package."""

    exit_code = 1
