"""Engine-cache logic shared by the exporters and the TensorRT engine, unit-testable without TensorRT.

Standard library only (no torch, no tensorrt), so it loads anywhere, fast:

- :func:`cache_root`: the cache folder (``$FILMCOLOR_CACHE`` or ``~/.cache/filmcolor``).
- :func:`profile_shapes`: the (min, opt, max) input shapes of a TensorRT optimization profile that
  covers the render sizes and aspect ratios the pipeline will feed (same snapping as
  :func:`filmcolor.render.render_shape`).
- :func:`engine_cache_key`: a stable hex key over everything that invalidates a built engine.
The file lock and atomic writes that keep two processes from building the same engine at once are
:mod:`filmcolor.fs`'s.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Mapping, Sequence, Union

CACHE_ENV = "FILMCOLOR_CACHE"
KEY_VERSION = 1  # bump when the engine-building recipe changes in a way the key does not see

Shape = tuple[int, int, int, int]
HW = tuple[int, int]
# Aspect ratios (width / height) to cover: (min, max); portrait < 1 < landscape.
AspectRange = tuple[float, float]
DEFAULT_ASPECTS: AspectRange = (9 / 16, 2.4)  # portrait phone video .. CinemaScope
DEFAULT_OPT_ASPECT = 16 / 9


def cache_root(override: Union[str, os.PathLike, None] = None) -> Path:
    """The cache folder: ``override``, else ``$FILMCOLOR_CACHE``, else ``~/.cache/filmcolor`` (not created)."""
    if override is not None:
        return Path(override)
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else Path.home() / ".cache" / "filmcolor"


def slug(text: str, limit: int = 48) -> str:
    """A file-name-safe rendering of ``text`` (for readable cache file names)."""
    s = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")
    return (s or "x")[:limit]


# ----------------------------------------------------------------------------------------------------------------
# Optimization-profile shapes


def _snap(v: float, multiple: int) -> int:
    """Round ``v`` to a multiple of ``multiple`` (at least one multiple), as ``render_shape`` does."""
    return max(multiple, int(round(v / multiple)) * multiple)


def render_hw(render_size: int, aspect: float, multiple: int = 32) -> HW:
    """(h, w) the pipeline feeds for a frame of aspect ``w/h`` at ``render_size`` (short side)."""
    if render_size < multiple:
        raise ValueError(f"render size must be at least {multiple}, got {render_size}")
    if aspect <= 0:
        raise ValueError(f"aspect ratio must be positive, got {aspect}")
    h, w = (1.0, aspect) if aspect >= 1 else (1.0 / aspect, 1.0)  # short side 1
    return _snap(h * render_size, multiple), _snap(w * render_size, multiple)


def profile_shapes(render_sizes: Sequence[int], aspects: Union[AspectRange, tuple[HW, HW, HW]] = DEFAULT_ASPECTS,
                   max_batch: int = 8, multiple: int = 32, *, opt_batch: int | None = None,
                   opt_aspect: float = DEFAULT_OPT_ASPECT) -> tuple[Shape, Shape, Shape]:
    """(min, opt, max) ``[N,1,H,W]`` shapes covering every render size and aspect ratio the pipeline may feed.

    ``aspects`` is either an aspect range ``(min_w_over_h, max_w_over_h)`` or explicit
    ``((min_h, min_w), (opt_h, opt_w), (max_h, max_w))``. The batch runs from 1 (a clip's last partial
    batch) to ``max_batch``; TensorRT tunes kernels for ``opt`` (the largest render size at
    ``opt_aspect`` clamped into the range, ``opt_batch`` frames, default ``max_batch``).
    """
    if max_batch < 1:
        raise ValueError(f"max_batch must be >= 1, got {max_batch}")
    opt_b = max_batch if opt_batch is None else opt_batch
    if not 1 <= opt_b <= max_batch:
        raise ValueError(f"opt_batch must be in 1..{max_batch}, got {opt_b}")
    if _is_hw_triple(aspects):
        (h0, w0), (h1, w1), (h2, w2) = (tuple(int(v) for v in hw) for hw in aspects)  # type: ignore[union-attr]
        for v in (h0, w0, h1, w1, h2, w2):
            if v <= 0 or v % multiple:
                raise ValueError(f"profile sides must be positive multiples of {multiple}, got {aspects}")
        if not (h0 <= h1 <= h2 and w0 <= w1 <= w2):
            raise ValueError(f"need min <= opt <= max per side, got {aspects}")
        return (1, 1, h0, w0), (opt_b, 1, h1, w1), (max_batch, 1, h2, w2)
    if not render_sizes:
        raise ValueError("need at least one render size")
    lo, hi = sorted(float(a) for a in aspects)  # type: ignore[union-attr]
    # Each side is monotonic in the aspect ratio on either side of 1, so the extremes lie at the
    # range's ends and at 1 (square) when 1 is inside the range.
    corners = [lo, hi] + ([1.0] if lo < 1.0 < hi else [])
    sizes = [render_hw(r, a, multiple) for r in render_sizes for a in corners]
    hs, ws = [s[0] for s in sizes], [s[1] for s in sizes]
    oh, ow = render_hw(max(render_sizes), min(max(opt_aspect, lo), hi), multiple)
    return (1, 1, min(hs), min(ws)), (opt_b, 1, oh, ow), (max_batch, 1, max(hs), max(ws))


def _is_hw_triple(x: object) -> bool:
    return isinstance(x, (tuple, list)) and len(x) == 3 and all(isinstance(v, (tuple, list)) and len(v) == 2 for v in x)


def shape_in_profile(shape: Sequence[int], profile: tuple[Shape, Shape, Shape]) -> bool:
    """Whether an input shape lies inside the profile's [min, max] box."""
    lo, _, hi = profile
    return len(shape) == 4 and all(a <= s <= b for s, a, b in zip(shape, lo, hi))


# ----------------------------------------------------------------------------------------------------------------
# Cache keys and paths


def _norm_cc(compute_capability: Union[str, Sequence[int]]) -> str:
    if isinstance(compute_capability, str):
        return compute_capability.strip()
    return ".".join(str(int(v)) for v in compute_capability)


def engine_cache_key(onnx_bytes_hash: str, shapes: Sequence[Sequence[int]], precision: str, trt_version: str,
                     gpu_name: str, compute_capability: Union[str, Sequence[int]],
                     extra: Mapping[str, object] | None = None) -> str:
    """A stable 32-hex-digit key over everything that makes a serialized engine unusable or stale.

    The graph (hash of the ONNX bytes), the optimization profile, the precision, the TensorRT version
    (plans do not load across versions), the GPU (plans are tuned for and tied to one model of GPU:
    name and compute capability), plus ``extra`` builder settings (workspace, ...).
    """
    payload = {
        "v": KEY_VERSION,
        "onnx": str(onnx_bytes_hash),
        "shapes": [[int(d) for d in s] for s in shapes],
        "precision": str(precision),
        "trt": str(trt_version),
        "gpu": str(gpu_name),
        "cc": _norm_cc(compute_capability),
        "extra": {str(k): extra[k] for k in sorted(extra)} if extra else {},
    }
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:32]


def file_sha256(path: Union[str, os.PathLike], chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def engine_path(root: Path, name: str, key: str) -> Path:
    """Where the engine with cache key ``key`` lives (``name`` only makes the file recognisable)."""
    return root / "tensorrt" / f"{slug(name)}-{key}.engine"


def timing_cache_path(root: Path, trt_version: str, gpu_name: str, compute_capability: Union[str, Sequence[int]]) -> Path:
    """The timing cache shared by every build on this TensorRT version and GPU model."""
    return root / "tensorrt" / f"timing-{slug(trt_version)}-{slug(gpu_name)}-sm{_norm_cc(compute_capability)}.cache"
