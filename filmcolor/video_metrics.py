"""Video colorization metrics: per-frame quality plus temporal consistency, against the colour original.

Per frame (means over frames, via :mod:`filmcolor.metrics`): PSNR, CIEDE2000, colourfulness.
Temporal:

- warp error (Lai et al., "Learning Blind Video Temporal Consistency", ECCV 2018): frame t+1 warped back
  onto frame t with optical flow computed on the ORIGINAL clip, squared RGB difference in [0, 1] averaged
  over non-occluded pixels and channels, then over frames. Occlusion = forward/backward inconsistency or a
  motion boundary, as in their code; DIS (OpenCV) stands in for FlowNet2. The same flow is used for every
  clip compared, so the numbers are comparable: the grey input's warp error is the floor that luminance
  alone reaches, and the colorized clip's excess above it is the flicker that colorization added.
- CDC (colour distribution consistency, from TCVC, Liu et al. 2021): Jensen-Shannon divergence (natural
  log) of per-channel 256-bin RGB histograms between frames t and t+g, averaged over t, channels and
  g in {1, 2, 4}.

Everything is computed in one streaming pass (:class:`ClipMetrics`), so long clips need no memory.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import numpy as np

from .metrics import ciede2000, colourfulness, psnr

CDC_GAPS = (1, 2, 4)
ORIGINAL, GREY = "original", "grey"
METRICS = ("psnr", "ciede2000", "colourfulness", "warp_error", "cdc")


# ------------------------------------------------------------------------------------------ building blocks
def to_grey(rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB ``[H,W,3]`` -> its luma (BT.601 on gamma-encoded values, what a grey transfer keeps) ``[H,W]``."""
    import cv2

    return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)


def _dis(preset: str):
    import cv2

    return cv2.DISOpticalFlow_create({"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
                                      "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
                                      "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}[preset])


def remap(img: np.ndarray, flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sample ``img`` at ``x + flow(x)`` (bilinear); returns (warped, inside-the-frame bool mask ``[H,W]``)."""
    import cv2

    h, w = flow.shape[:2]
    mx = flow[..., 0] + np.arange(w, dtype=np.float32)[None, :]
    my = flow[..., 1] + np.arange(h, dtype=np.float32)[:, None]
    out = cv2.remap(img, mx, my, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    inside = (mx >= 0) & (mx <= w - 1) & (my >= 0) & (my <= h - 1)
    return out, inside


def occlusion_mask(fw: np.ndarray, bw: np.ndarray) -> np.ndarray:
    """Valid (non-occluded) pixels of frame t, bool ``[H,W]``, given flows t->t+1 (``fw``) and t+1->t (``bw``).

    Lai et al.'s rule: occluded where ``|fw + bw(x+fw)|^2 > 0.01 (|fw|^2 + |bw(x+fw)|^2) + 0.5`` or on a
    motion boundary ``|grad fw|^2 > 0.01 |fw|^2 + 0.002``; pixels whose target leaves the frame are invalid.
    """
    bw_w, inside = remap(bw, fw)
    mag = lambda f: (f ** 2).sum(-1)  # noqa: E731
    occ = mag(fw + bw_w) > 0.01 * (mag(fw) + mag(bw_w)) + 0.5
    du_y, du_x = np.gradient(fw[..., 0])
    dv_y, dv_x = np.gradient(fw[..., 1])
    boundary = (du_x ** 2 + dv_x ** 2 + du_y ** 2 + dv_y ** 2) > 0.01 * mag(fw) + 0.002
    return ~(occ | boundary) & inside


def pair_warp_error(a: np.ndarray, b: np.ndarray, fw: np.ndarray, valid: np.ndarray) -> float:
    """Mean squared difference between uint8 RGB ``a`` (frame t) and ``b`` (frame t+1) warped onto it, on ``valid``."""
    n = int(valid.sum())
    if n == 0:
        return float("nan")
    bw, _ = remap(b, fw)
    d = (a.astype(np.float32) - bw.astype(np.float32)) / 255.0
    if d.ndim == 2:
        d = d[..., None]
    return float((d[valid] ** 2).mean())


def rgb_histograms(rgb: np.ndarray) -> np.ndarray:
    """Per-channel 256-bin histograms of a uint8 RGB image, each normalised to sum 1: ``[3, 256]`` float64."""
    flat = rgb.reshape(-1, rgb.shape[-1]) if rgb.ndim == 3 else rgb.reshape(-1, 1).repeat(3, 1)
    h = np.stack([np.bincount(flat[:, c], minlength=256) for c in range(3)]).astype(np.float64)
    return h / max(1, flat.shape[0])


def js_divergence(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Jensen-Shannon divergence (nats, 0..ln 2) along the last axis of two distributions."""
    m = 0.5 * (p + q)

    def kl(x: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(x > 0, x * np.log(x / np.where(m > 0, m, 1.0)), 0.0)
        return t.sum(-1)

    return 0.5 * kl(p) + 0.5 * kl(q)


def cdc(frames: Sequence[np.ndarray], gaps: Sequence[int] = CDC_GAPS) -> float:
    """CDC of a list of uint8 RGB frames (see the module docstring); nan with fewer than 2 frames."""
    hists = [rgb_histograms(f) for f in frames]
    per_gap = [np.mean([js_divergence(hists[t], hists[t + g]).mean() for t in range(len(hists) - g)])
               for g in gaps if len(hists) > g]
    return float(np.mean(per_gap)) if per_gap else float("nan")


def warp_error(frames: Sequence[np.ndarray], reference: Sequence[np.ndarray] | None = None,
               preset: str = "medium") -> float:
    """Warp error of uint8 RGB ``frames``, with flow from ``reference`` (defaults to the frames themselves)."""
    m = ClipMetrics(names=("clip",), frame_step=0, preset=preset)
    for f, r in zip(frames, reference if reference is not None else frames):
        m.update(r, {"clip": f})
    return m.result()["clip"]["warp_error"]


# ------------------------------------------------------------------------------------------ accumulator
@dataclass
class _Track:
    """Running sums for one clip (the colorized one, the original, the grey input...)."""

    per_frame: bool
    prev: np.ndarray | None = None
    hists: deque = field(default_factory=lambda: deque(maxlen=max(CDC_GAPS)))
    warp: list[float] = field(default_factory=list)
    js: dict[int, list[float]] = field(default_factory=lambda: {g: [] for g in CDC_GAPS})
    frame: dict[str, list[float]] = field(default_factory=lambda: {"psnr": [], "ciede2000": [], "colourfulness": []})

    def result(self) -> dict[str, float | None]:
        mean = lambda v: float(np.nanmean(v)) if v and not all(math.isnan(x) for x in v) else float("nan")  # noqa: E731
        gaps = [mean(v) for v in self.js.values() if v]
        out: dict[str, float | None] = {k: (mean(v) if (self.per_frame or k == "colourfulness") else None)
                                        for k, v in self.frame.items()}
        out["warp_error"] = mean(self.warp)
        out["cdc"] = float(np.mean(gaps)) if gaps else float("nan")
        return out


class ClipMetrics:
    """Streaming video metrics for one or more candidate clips against one colour original.

    ``update(reference, {"name": frame, ...})`` once per frame, in order; ``result()`` gives a dict per
    name plus ``"original"`` and ``"grey"`` (the reference's own levels; the original has no PSNR/CIEDE).
    The flow is computed once per frame pair, on the reference. ``frame_step`` evaluates the (slow)
    per-frame metrics on every n-th frame only (0: never); the temporal ones always use every frame.
    """

    def __init__(self, names: Sequence[str] = ("colorized",), *, frame_step: int = 1, preset: str = "medium") -> None:
        self.names = tuple(names)
        self.frame_step = frame_step
        self._dis = _dis(preset)
        self._tracks = {n: _Track(per_frame=True) for n in self.names}
        self._tracks[ORIGINAL] = _Track(per_frame=False)
        self._tracks[GREY] = _Track(per_frame=True)
        self._prev_grey: np.ndarray | None = None
        self.frames = 0

    def update(self, reference: np.ndarray, candidates: Mapping[str, np.ndarray]) -> None:
        grey1 = to_grey(reference)
        frames = dict(candidates)
        frames[ORIGINAL] = reference
        frames[GREY] = np.repeat(grey1[..., None], 3, axis=2)
        for name, f in frames.items():
            if f.shape != reference.shape:
                raise ValueError(f"{name}: frame shape {f.shape} differs from the reference's {reference.shape}")
        if self._prev_grey is not None:
            fw = self._dis.calc(self._prev_grey, grey1, None)
            bw = self._dis.calc(grey1, self._prev_grey, None)
            valid = occlusion_mask(fw, bw)
        do_frame = self.frame_step > 0 and self.frames % self.frame_step == 0
        for name, f in frames.items():
            tr = self._tracks[name]
            if tr.prev is not None:
                tr.warp.append(pair_warp_error(tr.prev, f, fw, valid))
            h = rgb_histograms(f)
            for g in CDC_GAPS:
                if len(tr.hists) >= g:
                    tr.js[g].append(float(js_divergence(tr.hists[-g], h).mean()))
            tr.hists.append(h)
            tr.prev = f
            if do_frame:
                tr.frame["colourfulness"].append(colourfulness(f))
                if tr.per_frame:
                    tr.frame["psnr"].append(psnr(f, reference))
                    tr.frame["ciede2000"].append(ciede2000(f, reference))
        self._prev_grey = grey1
        self.frames += 1

    def result(self) -> dict[str, dict[str, float | None]]:
        return {name: tr.result() for name, tr in self._tracks.items()}


# ------------------------------------------------------------------------------------------ files and reports
def iter_rgb(path: str | Path, max_frames: int | None = None) -> Iterator[np.ndarray]:
    """Decode a video's frames as uint8 RGB ``[H,W,3]`` with PyAV, in display order."""
    import av

    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if max_frames is not None and i >= max_frames:
                break
            yield frame.to_ndarray(format="rgb24")


def evaluate_video(colorized_path: str | Path, reference_path: str | Path, *, max_frames: int | None = None,
                   frame_step: int = 1) -> dict:
    """Metrics of a colorized clip against its colour original (see the module docstring).

    Returns ``{"frames", "colorized": {...}, "original": {...}, "grey": {...}, "warp_error_excess"}``, each
    inner dict holding :data:`METRICS`; ``warp_error_excess`` is the colorized clip's warp error minus the
    grey input's. Frames are paired in order; the shorter clip sets the count.
    """
    m = ClipMetrics(names=("colorized",), frame_step=frame_step)
    for out, ref in zip(iter_rgb(colorized_path, max_frames), iter_rgb(reference_path, max_frames)):
        m.update(ref, {"colorized": out})
    res: dict = {"frames": m.frames, **m.result()}
    res["warp_error_excess"] = res["colorized"]["warp_error"] - res[GREY]["warp_error"]
    return res


def _fmt(v: float | None, digits: int) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return "inf" if math.isinf(v) else f"{v:.{digits}f}"


def markdown_table(rows: Mapping[str, Mapping[str, float | None]], extra_columns: Sequence[str] = ()) -> str:
    """Rows of metric dicts -> a markdown table (warp error and CDC shown x1e3); ``extra_columns`` are
    further keys of the row dicts, shown as they are."""
    head = ["clip", "PSNR dB", "CIEDE2000", "colourfulness", "warp err x1e3", "CDC x1e3", *extra_columns]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for name, r in rows.items():
        we, cd = r.get("warp_error"), r.get("cdc")
        cells = [name, _fmt(r.get("psnr"), 2), _fmt(r.get("ciede2000"), 3), _fmt(r.get("colourfulness"), 2),
                 _fmt(None if we is None else we * 1e3, 3), _fmt(None if cd is None else cd * 1e3, 3)]
        for k in extra_columns:
            v = r.get(k)
            cells.append(v if isinstance(v, str) else _fmt(v, 3))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def format_report(result: Mapping, title: str = "video metrics") -> str:
    """Markdown for :func:`evaluate_video`'s result."""
    rows = {k: result[k] for k in ("colorized", GREY, ORIGINAL)}
    return "\n".join([f"## {title}", "", f"{result['frames']} frames.", "", markdown_table(rows), "",
                      "Warp error above the grey input's (flicker added): "
                      f"{result['warp_error_excess'] * 1e3:.3f} x1e-3", ""])
