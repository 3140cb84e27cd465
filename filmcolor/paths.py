"""Output paths, checked before any work and written under a hidden temporary name: torch-free, so the
command line can refuse a bad path at once.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import EnvironmentFailure, FormatError


def check_paths(src: Path, dst: Path, overwrite: bool) -> None:
    """Refuse, before any work: a missing input, output = input, a missing or unwritable output folder,
    an existing output without ``overwrite``."""
    if "%" in src.name:  # an image sequence pattern (scan_%06d.png): PyAV's image2 demuxer reads it
        if not src.parent.is_dir():
            raise FormatError(f"folder of image sequence {str(src)!r} does not exist")
    elif not src.exists():
        raise FormatError(f"input {str(src)!r} does not exist")
    elif src.is_dir():
        raise FormatError(f"input {str(src)!r} is a folder; give a video file")
    if dst.exists() and dst.resolve() == src.resolve():
        raise FormatError("output is the same file as the input; choose another output path")
    if not dst.parent.exists():
        raise FormatError(f"output folder {str(dst.parent)!r} does not exist")
    if not os.access(dst.parent, os.W_OK):
        raise EnvironmentFailure(f"output folder {str(dst.parent)!r} is not writable; nothing was written")
    if dst.exists() and not overwrite:
        raise FormatError(f"output {str(dst)!r} exists; pass --overwrite to replace it")


def temp_path(dst: Path) -> Path:
    """Where the output is written until complete: a hidden name that never looks finished."""
    return dst.with_name(f".{dst.stem}.filmcolor-partial-{os.getpid()}{dst.suffix}")
