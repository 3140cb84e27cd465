"""The CLI's error handler in process: which failures become one line and which keep their traceback."""

from __future__ import annotations

import errno

import pytest
import typer

from filmcolor.cli_base import AppTyper, os_error_message, run_app
from filmcolor.errors import EnvironmentFailure, FormatError


def _app(exc: BaseException) -> AppTyper:
    app = AppTyper(add_completion=False)

    @app.command()
    def boom(name: str = typer.Argument("x", metavar="NAME", help="Unused.")) -> None:
        """Raise the given exception."""
        raise exc

    @app.command()
    def other() -> None:
        """A second command, so the app is a group."""

    return app


@pytest.mark.parametrize("exc, code, text", [
    (OSError(errno.ENOSPC, "No space left on device", "/media/out.mkv"), 1, "no space left on the device: /media/out.mkv"),
    (PermissionError(errno.EACCES, "Permission denied", "/srv/x"), 1, "permission denied: /srv/x"),
    (OSError(errno.EROFS, "Read-only file system"), 1, "read-only file system"),
    (FormatError("input 'a.mp4' does not exist"), 2, "input 'a.mp4' does not exist"),
    (EnvironmentFailure("engine 'tensorrt' needs tensorrt"), 1, "engine 'tensorrt' needs tensorrt"),
])
def test_user_failures_are_one_line(capsys, exc, code, text):
    assert run_app(_app(exc), ["boom"]) == code
    err = capsys.readouterr().err
    assert err == f"error: {text}" + ("; nothing was written" if isinstance(exc, OSError) and
                                       not isinstance(exc, EnvironmentFailure) else "") + "\n"


@pytest.mark.parametrize("exc", [ValueError("a bug"), KeyError("k"), TypeError("t"), OSError("no errno")])
def test_programming_errors_keep_their_traceback(exc):
    with pytest.raises(type(exc)):
        run_app(_app(exc), ["boom"])


def test_usage_error_names_the_command_help(capsys):
    assert run_app(_app(ValueError()), ["boom", "a", "b"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "--help" in err and len(err.splitlines()) == 1


def test_os_error_without_a_known_errno_is_not_hidden():
    assert os_error_message(OSError(errno.EBADF, "Bad file descriptor")) is None
