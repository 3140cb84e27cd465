"""The work folder of a segmented job: a manifest (what the job is, its segments) and done markers.

A segment counts as finished only when its media file was renamed into place *and* its marker
(``seg_00012.done.json``, written atomically after the rename) records the same size. A crash, Ctrl-C
or ``kill -9`` at any moment therefore leaves each segment either finished or redone on the next run.
Workers write their own markers, so a coordinator that dies loses nothing finished.
"""

from __future__ import annotations

import json
import os
import socket
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from ..errors import FormatError
from ..fs import atomic_write_bytes
from .plan import Segment

MANIFEST = "manifest.json"
LOCK = "lock.json"
FORMAT = "filmcolor-segments/1"


def write_json_atomic(path: Path, data: dict) -> None:
    atomic_write_bytes(path, json.dumps(data, indent=1).encode())


def source_identity(src: Path) -> dict:
    """What identifies the input cheaply: resolved path, size and modification time."""
    st = src.stat()
    return {"path": str(src.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


@dataclass
class WorkFolder:
    root: Path

    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the folder's lock file (created with O_EXCL) while a run coordinates it.

        A lock left by a process that no longer exists on this host (``kill -9``) is taken over; a live
        one, or one from another host, is an error naming its owner.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / LOCK
        me = {"host": socket.gethostname(), "pid": os.getpid()}
        for _ in range(2):
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                owner = _read_owner(path)
                if owner is not None and _alive(owner):
                    raise FormatError(f"work folder {str(self.root)!r} is in use by another filmcolor run (pid "
                                      f"{owner.get('pid')} on {owner.get('host')}); wait for it, or delete "
                                      f"{str(path)!r} if that run is gone") from None
                path.unlink(missing_ok=True)  # stale: its process died
                continue
            with os.fdopen(fd, "w") as f:
                json.dump(me, f)
            break
        else:
            raise FormatError(f"could not lock work folder {str(self.root)!r}")
        try:
            yield
        finally:
            if _read_owner(path) == me:
                path.unlink(missing_ok=True)
            try:
                self.root.rmdir()  # empty once the job's files were removed
            except OSError:
                pass

    def marker(self, seg: Segment) -> Path:
        return self.root / (Path(seg.file).stem + ".done.json")

    def create_or_check(self, job: dict, segments: list[Segment], frames: int) -> list[Segment]:
        """Start a new work folder, or reopen one made by the same job; returns the segments to use.

        A folder made by a different job (other input, model or settings) is an error, never reused.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        if self.manifest_path.exists():
            try:
                old = json.loads(self.manifest_path.read_text())
            except (OSError, ValueError):
                raise FormatError(f"work folder {str(self.root)!r} has an unreadable manifest; delete the folder "
                                  f"to start again") from None
            if old.get("format") != FORMAT or old.get("job") != job:
                raise FormatError(f"work folder {str(self.root)!r} belongs to a different job (input, model or "
                                  f"settings changed); delete it or choose another --work-dir")
            return [Segment.from_json(d) for d in old["segments"]]
        write_json_atomic(self.manifest_path, {"format": FORMAT, "job": job, "frames": frames,
                                               "segments": [s.to_json() for s in segments]})
        return segments

    def is_done(self, seg: Segment) -> bool:
        media, marker = self.root / seg.file, self.marker(seg)
        if not (media.exists() and marker.exists()):
            return False
        try:
            info = json.loads(marker.read_text())
        except (OSError, ValueError):
            return False
        return info.get("bytes") == media.stat().st_size and info.get("frames") == seg.frames

    def mark_done(self, seg: Segment, summary: dict) -> None:
        media = self.root / seg.file
        write_json_atomic(self.marker(seg), {"segment": seg.index, "frames": summary["frames"],
                                             "bytes": media.stat().st_size, "seconds": summary.get("seconds"),
                                             "engine": summary.get("engine")})

    def remove(self, segments: list[Segment]) -> None:
        """Delete the finished job's files (only those this job made); the lock removes the emptied folder."""
        for seg in segments:
            (self.root / seg.file).unlink(missing_ok=True)
            self.marker(seg).unlink(missing_ok=True)
        self.manifest_path.unlink(missing_ok=True)
        for leftover in self.root.glob(".seg_*"):  # partial files of killed workers
            leftover.unlink(missing_ok=True)
        for leftover in self.root.glob(".*.tmp"):  # half-written markers
            leftover.unlink(missing_ok=True)


def _read_owner(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # unreadable: a run killed while writing it


def _alive(owner: dict) -> bool:
    """Whether the lock's owner may still run: another host counts as alive (we cannot check it)."""
    if owner.get("host") != socket.gethostname():
        return True
    try:
        os.kill(int(owner.get("pid", -1)), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError, OverflowError):
        return True
    return True
