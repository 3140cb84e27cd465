"""filmcolor.fs: the file lock (engine builds, segment manifests) and atomic writes (every output, caches)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from filmcolor.fs import FileLock, LockTimeout, atomic_write_bytes



@pytest.mark.parametrize("use_flock", [True, False])
def test_lock_excludes_a_second_holder(tmp_path, use_flock):
    path = tmp_path / "x.engine.lock"
    first = FileLock(path, use_flock=use_flock).acquire()
    second = FileLock(path, poll=0.01, use_flock=use_flock)
    with pytest.raises(LockTimeout):
        second.acquire(timeout=0.05)
    assert not second.locked
    first.release()
    with second:
        assert second.locked
    assert not second.locked


def test_lock_excludes_another_process(tmp_path):
    """A holder in another process (filmcolor.fs imports no torch, so it starts fast)."""
    path = tmp_path / "y.lock"
    code = ("import time\nfrom filmcolor.fs import FileLock\n"
            f"l=FileLock({str(path)!r}).acquire();print('held',flush=True);time.sleep(30)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(LockTimeout):
            FileLock(path, poll=0.01).acquire(timeout=0.1)
    finally:
        proc.kill()
        proc.wait()
    with FileLock(path).acquire(timeout=5):  # released by the kernel when the holder died
        pass


def test_stale_exclusive_lock_is_taken_over(tmp_path):
    path = tmp_path / "z.lock"
    path.write_text("999999999 some-other-host\n")
    old = time.time() - 10
    os.utime(path, (old, old))
    with FileLock(path, use_flock=False, stale_after=5, poll=0.01).acquire(timeout=2) as lock:
        assert lock.locked
    assert not path.exists()  # the O_EXCL lock file is removed on release


def test_atomic_write(tmp_path):
    target = tmp_path / "sub" / "e.engine"
    atomic_write_bytes(target, b"abc")
    atomic_write_bytes(target, b"defg")
    assert target.read_bytes() == b"defg"
    assert [p.name for p in target.parent.iterdir()] == ["e.engine"]


def test_atomic_write_into_a_missing_folder_only_when_asked(tmp_path):
    with pytest.raises(FileNotFoundError):
        atomic_write_bytes(tmp_path / "missing" / "out.png", b"x", parents=False)
    assert not (tmp_path / "missing").exists()
