"""User guidance: colour hint points and reference images, turned into the model's guidance inputs.

The model takes guidance at render size as ``hint_ab`` ``[1,2,h,w]`` (Lab units) and ``mask``
``[1,1,h,w]`` (0 = no hint, 1 = certain); see :class:`filmcolor.models.sagan_unet.GuidanceEncoder`.

Hints file (JSON; ``--hints hints.json``)::

    {
      "coordinates": "pixels",            # or "relative" (0..1 of width and height); default pixels
      "points": [
        {"x": 120, "y": 80, "color": "#b22222"},          # sRGB hex colour
        {"x": 300, "y": 40, "lab": [70, -5, -30]},        # or Lab (L is ignored: the picture's L is kept)
        {"x": 10, "y": 20, "color": "#3050c0", "radius": 4, "time": "00:00:12.50"},  # or 12.5, or "f300"
      ]
    }

A bare list of points is accepted too. ``radius`` (source pixels, default: one render pixel) sizes the
square patch a point colours; ``time`` (film only: seconds, ``hh:mm:ss.ss`` or ``f<frame>``, see :func:`parse_time`) says
which frame the point belongs to; points without a time apply to stills and to the first frame.
A reference image is a colour (or partly coloured) version of the same picture: its a,b become
dense hints; its grey pixels (chroma below ``GREY_CHROMA``) carry none.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import UsageError

GREY_CHROMA = 4.0  # Lab C*ab below this counts as grey: no hint from that reference pixel
_HEX = re.compile(r"^#?([0-9a-fA-F]{6})$")


@dataclass(frozen=True)
class HintPoint:
    """One colour hint: position (source pixels or relative), Lab a,b, patch radius, optional time."""

    x: float
    y: float
    ab: tuple[float, float]
    radius: float | None = None
    time: str | float | None = None


def hex_to_ab(text: str) -> tuple[float, float]:
    """``#rrggbb`` (sRGB) -> Lab a,b (D65), via the package's colour maths."""
    m = _HEX.match(text.strip())
    if not m:
        raise UsageError(f"invalid colour {text!r}: use sRGB hex like '#b22222' or give \"lab\": [L, a, b]")
    import torch

    from .color import rgb_to_lab

    v = int(m.group(1), 16)
    rgb = torch.tensor([(v >> 16) & 255, (v >> 8) & 255, v & 255], dtype=torch.float32).div(255).view(1, 3, 1, 1)
    lab = rgb_to_lab(rgb).flatten().tolist()
    return float(lab[1]), float(lab[2])


_CLOCK = re.compile(r"^(?:(\d+):)?(\d{1,2}):(\d{1,2}(?:\.\d*)?)$")


def parse_time(spec: str | int | float) -> tuple[str, float | int]:
    """A film time -> ``("seconds", s)`` or ``("frame", n)``; one-line errors.

    Accepted: seconds as a number or text (``12``, ``12.5``); a clock ``hh:mm:ss.ss`` or ``mm:ss.ss``
    (the part after the point is decimal seconds, not an SMPTE frame count); ``f<N>`` for the N-th
    frame (0 = the first; converted with the stream's average frame rate).
    """
    if isinstance(spec, bool):
        raise UsageError(f"invalid time {spec!r}")
    if isinstance(spec, (int, float)):
        if not math.isfinite(spec) or spec < 0:
            raise UsageError(f"invalid time {spec!r}: seconds must be a finite number >= 0")
        return "seconds", float(spec)
    t = str(spec).strip()
    if t[:1] in ("f", "F") and t[1:].isdigit():
        return "frame", int(t[1:])
    m = _CLOCK.match(t)
    if m:
        h, mnt, sec = int(m.group(1) or 0), int(m.group(2)), float(m.group(3))
        if mnt >= 60 or sec >= 60:
            raise UsageError(f"invalid time {t!r}: minutes and seconds must be below 60")
        return "seconds", h * 3600 + mnt * 60 + sec
    try:
        s = float(t)
    except ValueError:
        s = float("nan")
    if not math.isfinite(s) or s < 0:
        raise UsageError(f"invalid time {t!r}: use seconds (12.5), hh:mm:ss.ss (00:00:12.50) or a frame number (f300)")
    return "seconds", s


def _point(raw: object, i: int) -> HintPoint:
    where = f"hint point {i + 1}"
    if not isinstance(raw, dict):
        raise UsageError(f"{where}: expected an object like {{\"x\": 10, \"y\": 20, \"color\": \"#b22222\"}}")
    try:
        x, y = float(raw["x"]), float(raw["y"])
    except (KeyError, TypeError, ValueError):
        raise UsageError(f"{where}: needs numeric \"x\" and \"y\"") from None
    if not (math.isfinite(x) and math.isfinite(y)):
        raise UsageError(f"{where}: x and y must be finite numbers")
    if "color" in raw:
        if not isinstance(raw["color"], str):
            raise UsageError(f"{where}: \"color\" must be a string like '#b22222'")
        ab = hex_to_ab(raw["color"])
    elif "lab" in raw:
        lab = raw["lab"]
        if not (isinstance(lab, list) and len(lab) == 3 and all(isinstance(v, (int, float)) for v in lab)):
            raise UsageError(f"{where}: \"lab\" must be three numbers [L, a, b]")
        if not (0 <= lab[0] <= 100 and -128 <= lab[1] <= 127 and -128 <= lab[2] <= 127):
            raise UsageError(f"{where}: Lab {lab} out of range (L 0..100, a and b -128..127)")
        ab = (float(lab[1]), float(lab[2]))
    else:
        raise UsageError(f"{where}: give a colour as \"color\": \"#rrggbb\" or \"lab\": [L, a, b]")
    radius = raw.get("radius")
    if radius is not None and (not isinstance(radius, (int, float)) or not 0 < radius < 10_000):
        raise UsageError(f"{where}: \"radius\" must be a positive number of pixels")
    time = raw.get("time")
    if time is not None and not isinstance(time, (str, int, float)):
        raise UsageError(f"{where}: \"time\" must be seconds, 'hh:mm:ss.ss' or 'f<frame>'")
    if time is not None:
        try:
            parse_time(time)
        except UsageError as exc:
            raise UsageError(f"{where}: {exc}") from None
    return HintPoint(x, y, ab, radius, time)


def parse_hints(text: str, *, source: str = "hints") -> tuple[list[HintPoint], bool]:
    """Parse a hints JSON document; returns (points, relative coordinates?). One-line errors."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{source}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    coords = "pixels"
    if isinstance(doc, dict):
        coords = doc.get("coordinates", "pixels")
        if coords not in ("pixels", "relative"):
            raise UsageError(f"{source}: \"coordinates\" must be \"pixels\" or \"relative\", not {coords!r}")
        doc = doc.get("points")
    if not isinstance(doc, list):
        raise UsageError(f"{source}: expected {{\"points\": [...]}} or a list of points")
    return [_point(p, i) for i, p in enumerate(doc)], coords == "relative"


def load_hints(path: str | Path) -> tuple[list[HintPoint], bool]:
    """Read and parse a hints file."""
    p = Path(path)
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise UsageError(f"hints file {str(p)!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read hints file {str(p)!r}: {exc}") from None
    return parse_hints(text, source=str(p))


def points_to_guidance(points: list[HintPoint], relative: bool, size: tuple[int, int],
                       render: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Points on a picture of ``size`` (height, width) -> ``hint_ab`` ``[2,h,w]``, ``mask`` ``[1,h,w]`` at ``render``."""
    (H, W), (h, w) = size, render
    hint, mask = np.zeros((2, h, w), np.float32), np.zeros((1, h, w), np.float32)
    for i, p in enumerate(points):
        x, y = (p.x * W, p.y * H) if relative else (p.x, p.y)
        if not (0 <= x <= W and 0 <= y <= H):
            unit = "relative" if relative else "pixel"
            raise UsageError(f"hint point {i + 1} at ({p.x:g}, {p.y:g}) ({unit}) lies outside the {W}x{H} picture")
        cx, cy = min(int(x * w / W), w - 1), min(int(y * h / H), h - 1)
        r = 1 if p.radius is None else max(0, round(p.radius * w / W))
        hint[:, max(0, cy - r):cy + r + 1, max(0, cx - r):cx + r + 1] = np.asarray(p.ab, np.float32)[:, None, None]
        mask[:, max(0, cy - r):cy + r + 1, max(0, cx - r):cx + r + 1] = 1.0
    return hint, mask


def reference_to_guidance(reference_rgb: np.ndarray, size: tuple[int, int],
                          render: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """A colour reference ``[H',W',3]`` uint8 RGB of the same picture -> dense ``hint_ab``, ``mask`` at ``render``.

    The reference may have another resolution but must have the same aspect ratio (within 1%).
    """
    import cv2
    import torch

    from .color import rgb_to_lab

    rh, rw = reference_rgb.shape[:2]
    H, W = size
    if abs(rw / rh - W / H) > 0.01 * (W / H):
        raise UsageError(f"the reference is {rw}x{rh} but the picture is {W}x{H}: a reference must have the "
                         "picture's aspect ratio")
    h, w = render
    small = cv2.resize(reference_rgb, (w, h), interpolation=cv2.INTER_AREA)
    rgb = torch.from_numpy(small).permute(2, 0, 1).float().div(255).unsqueeze(0)
    ab = rgb_to_lab(rgb)[0, 1:].numpy()
    coloured = (np.hypot(ab[0], ab[1]) >= GREY_CHROMA)[None].astype(np.float32)
    return (ab * coloured).astype(np.float32), coloured


def sample_patch_hints(ab_true: np.ndarray, count: int, rng: np.random.Generator,
                       patch: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """The evaluation protocol (SIGGRAPH 2017): ``count`` random ``patch`` x ``patch`` squares revealing the truth's mean a,b.

    ``ab_true`` ``[2,h,w]`` at render size; returns ``hint_ab`` ``[2,h,w]`` and ``mask`` ``[1,h,w]``.
    """
    _, h, w = ab_true.shape
    hint, mask = np.zeros_like(ab_true, dtype=np.float32), np.zeros((1, h, w), np.float32)
    for _ in range(count):
        y, x = int(rng.integers(0, h - patch + 1)), int(rng.integers(0, w - patch + 1))
        hint[:, y:y + patch, x:x + patch] = ab_true[:, y:y + patch, x:x + patch].reshape(2, -1).mean(1)[:, None, None]
        mask[:, y:y + patch, x:x + patch] = 1.0
    return hint, mask


@dataclass
class StillGuidance:
    """Guidance for one picture: hint points and/or a colour reference; :meth:`at` makes the model's inputs.

    Where both are given, points override the reference under them (the user's last word).
    """

    points: list[HintPoint] = field(default_factory=list)
    relative: bool = False
    reference: np.ndarray | None = None  # RGB uint8 [H',W',3]

    @classmethod
    def from_files(cls, hints: str | Path | None = None, reference: str | Path | None = None) -> "StillGuidance | None":
        """Read a hints file and/or a reference image; None when neither is given."""
        if hints is None and reference is None:
            return None
        points, relative = load_hints(hints) if hints is not None else ([], False)
        return cls(points, relative, read_reference(reference) if reference is not None else None)

    def check(self, size: tuple[int, int]) -> None:
        """One-line errors for points outside a picture of ``size`` (H, W) or a reference of another aspect."""
        if self.reference is not None:
            reference_to_guidance(self.reference, size, (1, 1))
        if self.points:
            points_to_guidance(self.points, self.relative, size, (1, 1))

    def at(self, size: tuple[int, int], render: tuple[int, int]):
        """``(hint_ab [2,h,w], mask [1,h,w])`` torch tensors at ``render`` for a picture of ``size`` (H, W)."""
        import torch

        h, w = render
        hint, mask = np.zeros((2, h, w), np.float32), np.zeros((1, h, w), np.float32)
        if self.reference is not None:
            hint, mask = reference_to_guidance(self.reference, size, render)
        if self.points:
            p_hint, p_mask = points_to_guidance(self.points, self.relative, size, render)
            hint = np.where(p_mask > 0, p_hint, hint)
            mask = np.maximum(mask, p_mask)
        return torch.from_numpy(hint), torch.from_numpy(mask)


def read_reference(path: str | Path) -> np.ndarray:
    """A reference picture as RGB uint8 (16-bit and alpha reduced); one-line errors."""
    import cv2

    p = Path(path)
    if not p.is_file():
        raise UsageError(f"reference image {str(p)!r} does not exist")
    raw = cv2.imread(str(p), cv2.IMREAD_COLOR)
    if raw is None:
        raise UsageError(f"reference {str(p)!r} is not an image OpenCV can read")
    return cv2.cvtColor(raw, cv2.COLOR_BGR2RGB)
