"""Running the installed ``filmcolor`` console script the way users meet it: a subprocess, its exit code,
its stdout and stderr."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path


def console_script() -> str:
    """The ``filmcolor`` script installed beside this Python (the venv's), else the one on PATH."""
    beside = Path(sys.executable).with_name("filmcolor")
    if beside.exists():
        return str(beside)
    found = shutil.which("filmcolor")
    if found is None:
        raise RuntimeError("the filmcolor console script is not installed: pip install -e '.[test]'")
    return found


def run_cli(*args, timeout: float = 120, env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([console_script(), *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          env=full_env, **kw)


def assert_one_line_error(r: subprocess.CompletedProcess, code: int, *needles: str) -> str:
    """Exit ``code``, no traceback, stderr exactly one line ``error: ...`` containing every needle."""
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode == code, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr, r.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]
