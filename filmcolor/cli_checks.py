"""Checks the command line makes before any work starts, so a bad value fails at once with a one-line
message instead of after the model has loaded or frames were encoded.

Torch-free: these run before the colorizer is built. PyAV is imported only to look at the input clip
or at an encoder's options.
"""

from __future__ import annotations

from pathlib import Path

from .errors import UsageError

RENDER_MULTIPLE = 32  # the U-Net's down-sampling factor: render sizes are multiples of it
PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")
# Encoders whose preset is a free-form string in FFmpeg's option table: the values they accept.
X26X_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow",
                "placebo")
KNOWN_PRESETS = {"libx264": X26X_PRESETS, "libx264rgb": X26X_PRESETS, "libx265": X26X_PRESETS}


def check_render_size(render_size: int | None) -> None:
    """Refuse a render size that is not a multiple of 32 (the model could not use it as given)."""
    if render_size is not None and render_size % RENDER_MULTIPLE:
        lo = max(RENDER_MULTIPLE, render_size // RENDER_MULTIPLE * RENDER_MULTIPLE)
        raise UsageError(f"--render-size {render_size} is not a multiple of {RENDER_MULTIPLE}: "
                         f"use {lo} or {lo + RENDER_MULTIPLE}")


def check_keyframes(text: str) -> None:
    """``--keyframes`` before any work, without importing torch: the policy parser itself says why not."""
    t = text.strip().lower()
    if t not in ("all", "auto") and not (t.isdigit() and int(t) >= 1):
        raise UsageError(f"--keyframes must be all, auto or a positive whole number, got {text!r}")


def check_times(start: float | None, end: float | None) -> None:
    if start is not None and end is not None and end <= start:
        raise UsageError(f"--end {end:g} must be after --start {start:g}")


def check_output_not_folder(src: Path, dst: Path) -> None:
    """A single input needs an output file name; never write into (or replace) a folder by accident."""
    if dst.is_dir() and not src.is_dir():
        suffix = src.suffix if src.suffix and "%" not in src.name else ".mkv"
        stem = src.stem.split("%")[0].rstrip("_-.") or "out"
        raise UsageError(f"output {str(dst)!r} is a folder: name the output file, e.g. {str(dst / (stem + suffix))!r}")


def check_picture_output(dst: Path) -> None:
    if dst.suffix.lower() not in PICTURE_SUFFIXES:
        raise UsageError(f"preview writes a picture: {str(dst)!r} must end in one of {', '.join(PICTURE_SUFFIXES)}")


def check_preset(codec: str, preset: str | None) -> None:
    """The encoder must know ``preset``: from FFmpeg's option table where it lists choices, else ours."""
    if preset is None:
        return
    import av

    try:
        private = av.codec.CodecContext.create(codec, "w").supported_options.private
    except Exception:  # unknown encoder: the pipeline reports that with its own message
        return
    option = next((o for o in private if o.name == "preset"), None)
    if option is None:
        raise UsageError(f"encoder {codec!r} has no presets; leave out --preset")
    known = tuple(c.name for c in option.choices) or KNOWN_PRESETS.get(codec, ())
    if known and preset not in known:
        raise UsageError(f"unknown --preset {preset!r} for {codec}: use one of {', '.join(known)}")


def clip_duration(src: Path) -> float | None:
    """Seconds of video in ``src`` from its header, or None when the file does not say (or is no clip)."""
    import av

    try:
        with av.open(str(src)) as container:
            if not container.streams.video:
                return None
            vs = container.streams.video[0]
            if vs.duration is not None and vs.time_base is not None:
                return float(vs.duration * vs.time_base)
            if container.duration is not None:
                return container.duration / av.time_base
    except (av.error.FFmpegError, OSError):
        return None  # the pipeline opens it again and reports what is wrong
    return None


def check_start_inside(src: Path, start: float | None) -> None:
    """``--start`` must lie inside the clip (an image sequence or a file without a duration is not checked)."""
    if not start or "%" in src.name or not src.is_file():
        return
    duration = clip_duration(src)
    if duration is not None and start >= duration:
        raise UsageError(f"--start {start:g} s is past the end of {str(src)!r} ({duration:.2f} s long)")


def check_list(text: str, allowed, option: str) -> list[str]:
    """A comma-separated option (``--sizes 480p,720p``) -> its items, each one of ``allowed``; else a usage error."""
    items = [t.strip() for t in text.split(",") if t.strip()]
    bad = [t for t in items if t not in allowed]
    if bad or not items:
        raise UsageError(f"{option} takes a comma-separated list of {', '.join(allowed)}; got {text!r}")
    return items


def check_choice(value: str, allowed, option: str) -> str:
    """One of ``allowed`` (``--adv-loss hinge``); else a usage error naming the choices."""
    if value not in allowed:
        raise UsageError(f"{option} takes one of {', '.join(allowed)}; got {value!r}")
    return value


def check_int_list(text: str, option: str, minimum: int = 0, example: str = "0,1,2") -> tuple[int, ...]:
    """A comma-separated option of whole numbers (``--hint-points 0,2,10``), each at least ``minimum``;
    else a usage error."""
    try:
        values = tuple(int(t) for t in text.split(","))
    except ValueError:
        values = ()
    if not values or min(values) < minimum:
        raise UsageError(f"{option} takes comma-separated whole numbers >= {minimum} (e.g. {example}), got {text!r}")
    return values
