"""Filesystem helpers every writer shares: atomic writes (fsynced), an inter-process lock, output checks.

Standard library only (no torch), so engines' cache code, the CLI and the segment manifest can all use it.

- :func:`content_hash`: what identifies a file's bytes (weights in resume keys).
- :func:`atomic_write_bytes` / :func:`atomic_write`: readers see the old file or the whole new one,
  never a torn one, also after a power cut (the data is fsynced before the rename).
- :class:`FileLock`: an exclusive lock between processes (kernel ``flock``; released when its holder dies).
- :func:`temp_path` and :func:`check_paths`: where a user's output is written until complete, and the
  one-line checks made before anything is written.
- :data:`IMAGE_SUFFIXES` and :func:`find_images`: what counts as an image file in a folder.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import tempfile
import time
from pathlib import Path
from typing import Callable, Union

from .errors import EnvironmentFailure, FormatError

try:  # POSIX: a kernel lock, released by the OS when its holder dies (no stale locks)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


def find_images(folder: Union[str, os.PathLike]) -> list[Path]:
    """Every image file under ``folder`` (recursive), sorted for reproducibility."""
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder {str(root)!r} does not exist")
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def temp_path(dst: Path) -> Path:
    """Where a user's output is written until complete: a hidden name beside it that never looks finished."""
    return dst.with_name(f".{dst.stem}.filmcolor-partial-{os.getpid()}{dst.suffix}")


def check_output(dst: Path, overwrite: bool, src: Path | None = None, *, hint: str = "--overwrite") -> None:
    """One-line errors before writing ``dst``: same file as the input, missing or read-only folder, exists.

    ``hint``: how the caller's user asks to replace a file (``--overwrite`` on the command line,
    ``overwrite=True`` in Python)."""
    if src is not None and dst.exists() and dst.resolve() == src.resolve():
        raise FormatError("output is the same file as the input; choose another output path")
    if not dst.parent.is_dir():
        raise FormatError(f"output folder {str(dst.parent)!r} does not exist")
    if not os.access(dst.parent, os.W_OK):
        raise EnvironmentFailure(f"output folder {str(dst.parent)!r} is not writable; nothing was written")
    if dst.exists() and not overwrite:
        raise FormatError(f"output {str(dst)!r} exists; pass {hint} to replace it")


def check_paths(src: Path, dst: Path, overwrite: bool) -> None:
    """Checks for an input file (or an image-sequence pattern such as ``scan_%06d.png``) and its output."""
    if "%" in src.name:  # an image sequence pattern: PyAV's image2 demuxer reads it
        if not src.parent.is_dir():
            raise FormatError(f"folder of image sequence {str(src)!r} does not exist")
    elif not src.exists():
        raise FormatError(f"input {str(src)!r} does not exist")
    elif src.is_dir():
        raise FormatError(f"input {str(src)!r} is a folder; give a video file")
    check_output(dst, overwrite, src)


_DIGESTS: dict[tuple[str, int, int], str] = {}


def content_hash(path: Union[str, os.PathLike]) -> str:
    """SHA-256 of a file's bytes, remembered for this process by (resolved path, size, mtime)."""
    p = Path(path).resolve()
    st = p.stat()
    key = (str(p), st.st_size, st.st_mtime_ns)
    if key not in _DIGESTS:
        import hashlib

        h = hashlib.sha256()
        with p.open("rb") as f:
            while block := f.read(1 << 20):
                h.update(block)
        _DIGESTS[key] = h.hexdigest()
    return _DIGESTS[key]


def atomic_write(path: Union[str, os.PathLike], write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` to make the file at a temp name beside ``path``, fsync it, rename it into place.

    For writers that want a file name (safetensors, ONNX, PyAV); the temp name keeps ``path``'s suffix,
    so writers that choose the format by extension still do.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def _fsync_dir(folder: Path) -> None:
    """Make a rename durable (POSIX); a no-op where folders cannot be opened."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_bytes(path: Union[str, os.PathLike], data: Union[bytes, bytearray, memoryview], *,
                       parents: bool = True) -> Path:
    """Write ``data`` to ``path`` via a temp file in the same folder, fsync, ``os.replace``: never a torn file.

    ``parents``: make missing folders (caches); False for a user's output, whose folder must exist."""
    path = Path(path)
    if parents:
        path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def temp_path_for(path: Union[str, os.PathLike]) -> Path:
    """A fresh temp-file name beside ``path`` (same file system, so ``os.replace`` is atomic)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    return Path(tmp)


class LockTimeout(TimeoutError):
    """Another process held the lock for longer than we were willing to wait."""


class FileLock:
    """Inter-process exclusive lock on ``path`` (a ``.lock`` file beside the thing being built).

    Uses ``fcntl.flock`` where available: the kernel releases it when the holder exits or crashes,
    so a dead builder never blocks others. Elsewhere (or with ``use_flock=False``) it falls back to
    creating the file with ``O_CREAT | O_EXCL``; a lock file older than ``stale_after`` seconds, or
    whose holder (same host) is no longer running, is taken over. Not reentrant.
    """

    def __init__(self, path: Union[str, os.PathLike], *, timeout: float = 3600.0, poll: float = 0.1,
                 stale_after: float = 3 * 3600.0, use_flock: bool | None = None) -> None:
        self.path = Path(path)
        self.timeout, self.poll, self.stale_after = float(timeout), float(poll), float(stale_after)
        self.use_flock = (fcntl is not None) if use_flock is None else bool(use_flock and fcntl is not None)
        self._fd: int | None = None

    @property
    def locked(self) -> bool:
        return self._fd is not None

    def acquire(self, timeout: float | None = None) -> "FileLock":
        """Block until held, or raise :class:`LockTimeout` after ``timeout`` seconds (0: try once)."""
        if self._fd is not None:
            raise RuntimeError(f"lock {self.path} is already held by this object")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        limit = self.timeout if timeout is None else float(timeout)
        deadline = time.monotonic() + limit
        while True:
            if self._try_acquire():
                return self
            if time.monotonic() >= deadline:
                raise LockTimeout(f"could not lock {self.path} within {limit:.1f} s: another process is building "
                                  f"the same thing (delete the file if no process is)")
            time.sleep(self.poll)

    def _try_acquire(self) -> bool:
        if self.use_flock:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    return False
                raise
            self._fd = fd
            _write_owner(fd)
            return True
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            if self._is_stale():
                with contextlib.suppress(OSError):
                    os.unlink(self.path)
            return False
        self._fd = fd
        _write_owner(fd)
        return True

    def _is_stale(self) -> bool:
        """A leftover O_EXCL lock: too old, or its holder on this host is gone."""
        try:
            age = time.time() - self.path.stat().st_mtime
            owner = self.path.read_text().split()
        except (OSError, UnicodeDecodeError):
            return False
        if age > self.stale_after:
            return True
        if len(owner) >= 2 and owner[1] == socket.gethostname() and owner[0].isdigit():
            return not _pid_alive(int(owner[0])) and age > 1.0  # grace: the holder may be mid-write
        return False

    def release(self) -> None:
        """Release the lock (no-op when not held)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        if self.use_flock:
            fcntl.flock(fd, fcntl.LOCK_UN)  # the file stays: unlinking would race with waiters
            os.close(fd)
        else:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(self.path)

    def __enter__(self) -> "FileLock":
        return self if self._fd is not None else self.acquire()  # also ``with lock.acquire(timeout=...):``

    def __exit__(self, *exc) -> None:
        self.release()

    def __del__(self) -> None:
        try:
            self.release()
        except Exception:
            pass


def _write_owner(fd: int) -> None:
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
    except OSError:
        pass


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return True
    return True
