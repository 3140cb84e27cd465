"""Reference frames and timed hints for film: guidance carried forward and backward through its shot.

A key (a reference image at time T, or hint points with a time) is dense or sparse guidance at its
frame: ``hint_ab`` the key's a,b, ``mask`` 1 where it is coloured. :class:`ReferenceGuide` carries each
key FORWARD and BACKWARD along the optical flow with :class:`~.propagate.Propagator` (the same flow
function and confidence as keyframe inference: forward/backward consistency, luma agreement, inside,
per-step decay); the carried (a,b, confidence) is the guidance ``(hint_ab, mask=confidence)`` the model
gets on those frames, so a guided model repairs where the flow loses, and an automatic-only model keeps
the carried colour where the confidence is high (:func:`~filmcolor.inference.predict_ab`'s fallback).
Carrying stops at a scene cut (the same :class:`~.scenecut.SceneCutDetector` as the stream), so shots
without a key stay automatic and nothing crosses a cut.

Look-ahead with bounded memory: a key is carried at most ``horizon`` frames each way (at the default
decay, 0.97 per step, less than 7% confidence is left after 90 frames). When the stream asks for the
first frame of a key's window, a pre-pass decodes that window (a second decoder on the same file,
seeked), keeps its render-size L as uint8 (h*w bytes a frame), carries the key both ways and stores the
guidance as int8 a,b + uint8 confidence (3*h*w bytes a frame); frames behind the stream are dropped.
Memory bound: (2*horizon+1) * 4 * h * w bytes per key whose window overlaps the current frame (about
83 MB at 256x448 and the default horizon 90). The pre-pass costs a decode and two DIS flows per window
frame: the stream's own flow is not reused because the backward carry must run before the stream gets
there.

A reference's carried colour is better than the automatic model's almost everywhere it reaches, even
where a check fails (measured on the first-frame protocol: carrying the colour clip's first frame along
DIS flow alone, at render size, beat the automatic model by 4-17 dB on the sample clips). So a failed
forward/backward or luma check, or a pixel whose flow leaves the frame, keeps ``REFERENCE_FLOOR`` of the
confidence instead of none (``propagate(..., floor=)``); the per-step decay still lowers it with distance,
and the confidence still ranks pixels for the guided model. The pre-pass runs DIS's medium preset
(``REFERENCE_FLOW``), the stream the ultrafast one. First-frame reference, 60 frames, model v5
(``filmcolor evaluate GREY --reference COLOUR --exemplar first --limit 60``), mean PSNR of pedestrians,
pillow and paragliding: 29.1 dB with no floor and ultrafast flow (pillow's carry stopped after 30 frames:
its mean confidence fell under ``MIN_CONFIDENCE``), 29.7 with the floor, 30.6 with the medium preset too.
The medium preset costs time: a reference run took 1.77-2.11x the automatic run's time per frame against
1.13-1.47x with ultrafast (single runs each, 2 CPU cores).

Keys are addressed by presentation time from the clip's first frame, so every segment of a
``--segments`` run computes the same guidance for the same frame: resume stays exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..errors import UsageError
from ..guidance import HintPoint, parse_time, points_to_guidance, read_reference, reference_to_guidance
from .flow import FlowEstimator
from .propagate import DEFAULT_DECAY, Propagator, flow_pair_u8
from .scenecut import SceneCutDetector

DEFAULT_HORIZON = 90      # frames each way a key is carried at most
REFERENCE_FLOOR = 0.3     # a failed flow or luma check leaves this share of a reference's confidence (see below)
REFERENCE_FLOW = "dis-medium"  # the pre-pass's DIS preset (the stream's keyframe carry uses ultrafast)
MIN_CONFIDENCE = 0.02     # carrying stops when the mean confidence falls below this


@dataclass(frozen=True)
class ClipGuidance:
    """What the user gave for a clip (plain picklable data, for segment workers): references as
    (time, image path) and hint points (their ``time``; none = the first frame)."""

    references: tuple[tuple[str | float, str], ...] = ()
    points: tuple[HintPoint, ...] = ()
    relative: bool = False
    horizon: int = DEFAULT_HORIZON
    complete: bool = False   # references are whole colour frames: their grey pixels mean grey (mask 1)

    def __bool__(self) -> bool:
        return bool(self.references or self.points)


@dataclass
class _Key:
    pts: int                      # target presentation timestamp (stream time base)
    hint: np.ndarray              # [2,h,w] float32
    mask: np.ndarray              # [1,h,w] float32
    done: bool = False


@dataclass
class _Clip:
    """What the guide needs of the source: path, time base, first pts, frame duration, duration."""

    path: str
    tb: Fraction
    start_pts: int
    frame_pts: float              # one frame in pts units
    duration: float | None        # seconds, None when unknown


def time_to_seconds(spec: str | float, rate: Fraction) -> float:
    """A parsed time (seconds, or ``("frame", n)``) -> seconds from the first frame."""
    kind, value = parse_time(spec)
    return float(value) if kind == "seconds" else float(value / rate)


class ReferenceGuide:
    """Guidance per frame of one clip: ``at(pts)`` -> ``(hint_ab [1,2,h,w], mask [1,1,h,w])`` or None.

    ``to_L(frame) -> L [h,w] float32`` turns a decoded PyAV frame into the stream's render-size L (the
    same lookup the stream uses, so the flow sees the same pixels). Call ``at`` with increasing pts.
    """

    def __init__(self, clip: _Clip, keys: list[_Key], render: tuple[int, int],
                 to_L: Callable[[object], np.ndarray], horizon: int = DEFAULT_HORIZON,
                 decay: float = DEFAULT_DECAY, window: Callable[[int, int], list] | None = None,
                 last_pts: int | None = None) -> None:
        """``window(lo, hi)``: (pts, uint8 L) of the frames in ``[lo, hi]`` from elsewhere than the file
        (the frame API's buffer); None: decoded from ``clip.path``. ``last_pts``: no frame after it will be
        asked for (the run's end): a key is not carried forward past it, which changes no frame's guidance."""
        self.clip, self.keys, self.render, self.to_L = clip, sorted(keys, key=lambda k: k.pts), render, to_L
        self.window = window
        self.horizon, self.decay = int(horizon), decay
        self.last_pts = last_pts
        self._store: dict[int, tuple[np.ndarray, np.ndarray]] = {}   # pts -> (int8 ab, uint8 conf)
        self.peak_frames = 0

    def _window(self, key: _Key) -> tuple[int, int]:
        reach = int(round(self.horizon * self.clip.frame_pts))
        hi = key.pts + reach
        if self.last_pts is not None:  # the key's own frame stays in: a later key still carries backward
            hi = min(hi, max(key.pts, int(self.last_pts)))
        return key.pts - reach, hi

    def at(self, pts: int | None) -> tuple[torch.Tensor, torch.Tensor] | None:
        if pts is None:
            return None
        for key in self.keys:
            lo, hi = self._window(key)
            if not key.done and lo <= pts + self.clip.frame_pts / 2:
                key.done = True
                if hi >= pts:
                    self._carry(key)
        for p in [p for p in self._store if p < pts - self.clip.frame_pts / 2]:
            del self._store[p]
        got = self._store.get(pts)
        if got is None:
            return None
        ab, conf = got
        hint = torch.from_numpy(ab.astype(np.float32))[None]
        return hint, torch.from_numpy(conf.astype(np.float32) / 255.0)[None]

    def _decode_window(self, lo: int, hi: int) -> list[tuple[int, np.ndarray]]:
        """(pts, uint8 L) of the frames with ``lo <= pts <= hi``, in display order."""
        import av

        out = []
        with av.open(self.clip.path) as c:
            v = c.streams.video[0]
            v.thread_type = "AUTO"
            if lo > self.clip.start_pts:
                c.seek(max(lo, 0), stream=v, backward=True)
            half = self.clip.frame_pts / 2
            for frame in c.decode(v):
                if frame.pts is None or frame.pts < lo - half:
                    continue
                if frame.pts > hi + half:
                    break
                out.append((int(frame.pts), _u8(self.to_L(frame))))
        return out

    def _carry(self, key: _Key) -> None:
        """Decode the key's window, find its frame and shot, carry it both ways, store the guidance."""
        from ..cpu import torch_threads

        with torch_threads(1):  # many small tensor ops: one thread (see torch_threads), as the stream's
            self._carry_window(key)

    def _carry_window(self, key: _Key) -> None:
        frames = (self.window or self._decode_window)(*self._window(key))
        if not frames:
            raise UsageError(f"a reference at {float((key.pts - self.clip.start_pts) * self.clip.tb):.3f} s "
                             "lies outside the clip (no frame decoded there)")
        k = int(np.argmin([abs(p - key.pts) for p, _ in frames]))
        det = SceneCutDetector()
        cut = [det(u8) for _, u8 in frames]          # cut[i]: frame i starts a shot
        est = FlowEstimator(REFERENCE_FLOW)
        Ls = [torch.from_numpy(u8.astype(np.float32) / 2.55)[None, None] for _, u8 in frames]
        self._merge(frames[k][0], key.hint, key.mask)
        for direction, order in (("forward", range(k + 1, len(frames))), ("backward", range(k - 1, -1, -1))):
            prop = Propagator(direction=direction, decay=self.decay, estimator=est, floor=REFERENCE_FLOOR)
            prop.start(Ls[k], torch.from_numpy(key.hint)[None], torch.from_numpy(key.mask)[None])
            for i in order:
                later = i if direction == "forward" else i + 1
                if cut[later]:
                    break                              # nothing crosses a cut
                flow = flow_pair_u8(frames[later - 1][1], frames[later][1], est, torch.device("cpu"))
                ab, conf = prop.step(Ls[i], flow)
                if float(conf.mean()) < MIN_CONFIDENCE:
                    break
                self._merge(frames[i][0], ab[0].numpy(), conf[0].numpy())
        self.peak_frames = max(self.peak_frames, len(self._store))

    def _merge(self, pts: int, ab: np.ndarray, conf: np.ndarray) -> None:
        """Keep, per pixel, the more confident of this carry and what another key left on the frame."""
        ab8 = np.clip(np.rint(ab), -127, 127).astype(np.int8)
        c8 = np.clip(np.rint(conf * 255.0), 0, 255).astype(np.uint8)
        old = self._store.get(pts)
        if old is not None:
            better = c8 > old[1]
            ab8, c8 = np.where(better, ab8, old[0]), np.maximum(c8, old[1])
        self._store[pts] = (ab8, c8)


def _u8(L: np.ndarray) -> np.ndarray:
    """Lab L ``[h,w]`` float -> uint8 as :func:`~.flow.luma_u8` makes it (what DIS and the cut check read)."""
    return np.clip(np.rint(L.astype(np.float32) * np.float32(2.55)), 0, 255).astype(np.uint8)


def clip_info(path: str, vstream) -> _Clip:
    """Time base, first pts, frame duration and duration (seconds) of the video stream ``vstream``."""
    tb = vstream.time_base or Fraction(1, 25)
    rate = vstream.average_rate or vstream.guessed_rate or Fraction(25)
    start = int(vstream.start_time or 0)
    dur = None
    if vstream.duration:
        dur = float(vstream.duration * tb)
    elif vstream.container.duration:
        dur = float(vstream.container.duration) / 1e6
    return _Clip(str(path), tb, start, float(1 / (rate * tb)), dur)


def open_guide(guidance: ClipGuidance, path: str | Path, vstream, size: tuple[int, int], render: tuple[int, int],
               to_L: Callable[[object], np.ndarray], last_pts: int | None = None) -> ReferenceGuide:
    """Check the user's references and hints against the clip (one-line errors) and make its guide.
    ``last_pts``: where the run stops decoding (a segment's or ``--end``'s end), None: the clip's end."""
    clip = clip_info(str(path), vstream)
    rate = vstream.average_rate or vstream.guessed_rate or Fraction(25)
    keys: dict[int, _Key] = {}

    def key_at(spec: str | float, what: str) -> _Key:
        t = time_to_seconds(spec, rate)
        last = None if clip.duration is None else clip.duration - 0.5 / float(rate)
        if t < 0 or (last is not None and t > last + 1e-6):
            span = "" if clip.duration is None else f" (0 to {max(0.0, last):.3f} s)"
            raise UsageError(f"{what} at {spec!r} = {t:.3f} s lies outside the clip{span}")
        pts = clip.start_pts + int(round(t / clip.tb))
        pts = clip.start_pts + int(round(round((pts - clip.start_pts) / clip.frame_pts) * clip.frame_pts))
        return keys.setdefault(pts, _Key(pts, np.zeros((2, *render), np.float32), np.zeros((1, *render), np.float32)))

    for spec, image in guidance.references:
        key = key_at(spec, f"reference {str(image)!r}")
        hint, mask = reference_to_guidance(read_reference(image), size, render)
        if guidance.complete:
            hint, mask = _complete(read_reference(image), size, render)
        key.hint, key.mask = np.where(mask > 0, hint, key.hint), np.maximum(mask, key.mask)
    by_time: dict[str | float, list[HintPoint]] = {}
    for p in guidance.points:
        by_time.setdefault(0.0 if p.time is None else p.time, []).append(p)
    for spec, pts_ in by_time.items():
        key = key_at(spec, "hint points")
        hint, mask = points_to_guidance(pts_, guidance.relative, size, render)
        key.hint, key.mask = np.where(mask > 0, hint, key.hint), np.maximum(mask, key.mask)
    return ReferenceGuide(clip, list(keys.values()), render, to_L, guidance.horizon, last_pts=last_pts)


def _complete(reference_rgb: np.ndarray, size: tuple[int, int], render: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """A whole colour frame as guidance: its a,b everywhere, grey included, mask 1 (the exemplar protocol)."""
    import cv2

    from ..color import rgb_to_lab

    small = cv2.resize(reference_rgb, (render[1], render[0]), interpolation=cv2.INTER_AREA)
    ab = rgb_to_lab(torch.from_numpy(small).permute(2, 0, 1).float().div(255).unsqueeze(0))[0, 1:].numpy()
    return ab.astype(np.float32), np.ones((1, *render), np.float32)


def parse_reference_args(values: list[str] | tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """``TIME=IMAGE`` strings (the CLI's ``--reference``) -> ((time, image), ...); one-line errors."""
    out = []
    for v in values:
        t, sep, image = v.partition("=")
        if not sep or not t.strip() or not image.strip():
            raise UsageError(f"--reference {v!r}: expected TIME=IMAGE, e.g. 12.5=key.png, 00:01:02.50=key.png or f300=key.png")
        parse_time(t.strip())
        out.append((t.strip(), image.strip()))
    return tuple(out)


def references_from_mapping(refs: dict | None) -> tuple[tuple[str | float, str], ...]:
    """The API's ``references={12.0: "key.png", "f300": "k2.png"}`` -> ((time, image), ...)."""
    if not refs:
        return ()
    out = []
    for t, image in refs.items():
        parse_time(t)
        out.append((t, str(image)))
    return tuple(out)


def check_guidance(guidance: ClipGuidance, path: str | Path) -> None:
    """Every check :func:`open_guide` makes (times inside the clip, readable images, aspect ratio, hint
    points inside the picture), before a segmented job creates anything."""
    import av

    try:
        with av.open(str(path)) as c:
            v = c.streams.video[0]
            h, w = v.codec_context.height, v.codec_context.width
            open_guide(guidance, path, v, (h, w), (max(1, h // 8), max(1, w // 8)), lambda f: f)
    except av.error.FFmpegError as exc:
        raise UsageError(f"cannot read {str(path)!r}: {exc}") from None
