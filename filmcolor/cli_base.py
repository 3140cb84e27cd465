"""What every ``filmcolor`` command shares: the conventions of its help, its error handling, atomic writes.

:func:`run_app` turns user errors into one line ``error: ...`` on stderr and a documented exit code:
0 done, 1 the machine failed (disk full, folder not writable, a missing optional package), 2 a usage
error (bad argument, option, input), 130 interrupted. Anything else is a programming error and keeps its
traceback. Importing this module costs typer only.
"""

from __future__ import annotations

import errno
import sys
from typing import Any, Callable, Optional, Sequence

import typer
from typer.core import TyperCommand, TyperGroup

from .errors import FilmcolorError


class _Conventions:
    """Help as command-line tools write it: ``INPUT OUTPUT`` in usage lines (Typer 0.29 writes
    ``{INPUT} {OUTPUT}``), and ``--help`` shown as the flag it is (no ``<bool>`` placeholder)."""

    def collect_usage_pieces(self, ctx) -> list[str]:
        pieces = super().collect_usage_pieces(ctx)  # type: ignore[misc]
        return [p[1:-1] if p.startswith("{") and p.endswith("}") else p for p in pieces]

    def get_help_option(self, ctx):
        option = super().get_help_option(ctx)  # type: ignore[misc]
        if option is not None:
            option.metavar = ""
        return option


class AppCommand(_Conventions, TyperCommand):
    """A command of the filmcolor app."""


class AppGroup(_Conventions, TyperGroup):
    """The filmcolor app's group of commands."""


class AppTyper(typer.Typer):
    """A Typer app whose commands use :class:`AppCommand`."""

    def command(self, *args, **kwargs):
        kwargs.setdefault("cls", AppCommand)
        return super().command(*args, **kwargs)


def flag(*names: str, help: str) -> Any:
    """A plain on/off flag (shown without a value placeholder in --help)."""
    return typer.Option(False, *names, metavar="", help=help)


# OSErrors that are the machine's or the user's, not the program's: errno -> (exit code, what to say)
OS_ERRORS: dict[int, tuple[int, str]] = {
    errno.ENOSPC: (1, "no space left on the device"),
    errno.EDQUOT: (1, "disk quota exceeded"),
    errno.EFBIG: (1, "file too large for this file system"),
    errno.EACCES: (1, "permission denied"),
    errno.EPERM: (1, "operation not permitted"),
    errno.EROFS: (1, "read-only file system"),
    errno.EIO: (1, "input/output error"),
    errno.ENOENT: (2, "no such file or folder"),
    errno.ENOTDIR: (2, "not a folder"),
    errno.EISDIR: (2, "is a folder"),
}


def _click_exceptions():
    """The exception classes the installed typer raises: its bundled copy of click (typer 0.29) or click itself."""
    try:
        from typer import _click  # type: ignore[attr-defined]

        return _click.exceptions
    except ImportError:  # older typer: click is a dependency
        import click

        return click.exceptions


def os_error_message(exc: OSError) -> tuple[int, str] | None:
    """(exit code, one line) for an OSError users can act on, else None (a programming error: traceback)."""
    if isinstance(exc, FileNotFoundError) and exc.errno is None and exc.args:
        return 2, str(exc)  # raised with a message of ours (no model 'x': ...)
    if exc.errno not in OS_ERRORS:
        return None
    code, what = OS_ERRORS[exc.errno]
    where = f": {exc.filename}" if getattr(exc, "filename", None) else ""
    return code, f"{what}{where}" + ("; nothing was written" if code == 1 else "")


def _usage_line(exc) -> str:
    """A click usage error as one line, with the command whose --help explains it."""
    msg = " ".join(exc.format_message().split())
    ctx = getattr(exc, "ctx", None)
    return f"{msg} (see '{ctx.command_path} --help')" if ctx is not None else msg


def _error(message: str) -> None:
    print(f"error: {message}", file=sys.stderr, flush=True)


def run_app(application: Callable, argv: Optional[Sequence[str]] = None, prog_name: str = "filmcolor") -> int:
    """Run a Typer app, turning user errors into one line on stderr; returns the exit code."""
    ce = _click_exceptions()
    try:
        rc = application(args=list(argv) if argv is not None else None, prog_name=prog_name, standalone_mode=False)
    except ce.UsageError as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # bare command: Typer has printed the help already
            if exc.format_message().strip():
                print(exc.format_message(), file=sys.stderr)
        else:
            _error(_usage_line(exc))
        return exc.exit_code
    except ce.ClickException as exc:
        _error(" ".join(exc.format_message().split()))
        return exc.exit_code
    except (typer.Abort, getattr(ce, "Abort", typer.Abort)):  # click's own Abort, where typer still uses it
        _error("aborted")
        return 1
    except FilmcolorError as exc:
        _error(str(exc))
        return exc.exit_code
    except OSError as exc:
        known = os_error_message(exc)
        if known is None:
            raise
        _error(known[1])
        return known[0]
    except KeyboardInterrupt:
        rc = 130
    if rc == 130:  # Typer returns 130 for a Ctrl-C inside a command
        print("interrupted: no partial output was left behind (finished --segments are kept for resuming)",
              file=sys.stderr, flush=True)
    return rc if isinstance(rc, int) else 0
