"""Reference frames and timed hints for film: guidance carried forward and backward through its shot.

A key (a reference image at time T, or hint points with a time) is dense or sparse guidance at its
frame: ``hint_ab`` the key's a,b, ``mask`` 1 where it is coloured. :class:`ReferenceGuide` carries each
key FORWARD and BACKWARD along the optical flow with :class:`~.propagate.Propagator` (the same flow
function and confidence as keyframe inference: forward/backward consistency, luma agreement, inside,
per-step decay); the carried (a,b, confidence) is the guidance ``(hint_ab, mask=confidence)`` on those
frames. Its colour is kept wherever it reaches (:data:`~filmcolor.inference.TRUST` 0: the guided model's repair
of low-confidence pixels was measured worse than the carried colour), frames it covers skip the model
(:meth:`~.keyframes.KeyframeInference._covered`), and the model fills only what it does not reach.
Carrying stops at a scene cut (the same :class:`~.scenecut.SceneCutDetector` as the stream), so shots
without a key stay automatic and nothing crosses a cut.

Forward in the stream, backward by a pre-pass. A key is carried at most ``horizon`` frames each way (at
the default decay, 0.97 per step, less than 7% confidence is left after 90 frames). Forward, the stream
carries it: from the key's own frame on, each frame's resolver steps one propagator with a flow made here
(DIS medium at half render size, ``CARRY_FLOW``/``CARRY_SCALE``: previous frame <- this one) checked
against the stream's own reverse flow, and resets where the stream sees a new shot. Backward needs
look-ahead: when the stream asks for the first frame of a key's backward window, a pre-pass decodes it
(a second decoder on the same file, seeked) from the current frame up to the key only, keeps its
render-size L as uint8, carries the key back with DIS medium at render size (``REFERENCE_FLOW``) and
stores the guidance as int8 a,b + uint8 confidence (3*h*w bytes a frame); frames behind the stream are
dropped. Memory bound: (horizon+1) * 4 * h * w bytes per key whose window overlaps the current frame
(about 41 MB at 256x448 and the default horizon 90). A run starting after a key (a segment, ``--start``)
gets a forward pre-pass from the key to its first frame, which seeds the stream's carry.

Cost and quality of the forward carry's flow (first-frame reference, 60 frames, pedestrians and pillow,
mean PSNR / last 10 frames / time per frame against the automatic run, single runs on 2 cores): the
stream's own ultrafast half-size flow 28.49 / 26.88 dB / x1.11; DIS medium at half size 30.05 / 28.08 /
x1.02; DIS fast at render size 30.01 / 28.03 / x1.09; DIS medium at render size 30.64 / 28.78 / x1.23. The
whole-window pre-pass it replaces (medium, render size, both ways) took 2.0-3.2x the automatic run's time.
Those runs still took the key's first step on the stream's coarse flow (the key's frame starts a shot, and
this guide kept no frame there). Once fixed, on all five shared clips (model v5, int8, with
:data:`~filmcolor.inference.TRUST` 0.02): half size 29.68 / 26.63 dB, render size 30.27 / 27.02. With trust 0 (the
carried colour kept wherever it reaches): half size 30.21 / 27.25, 0.75 30.66 / 27.55, render size 30.86 /
27.67, at 5.2, 8.3 and 11 ms per resolved frame (pedestrians, 256x352, its flow 2.3, 5.5 and 8.5 ms): against
an automatic run of about 13 ms a frame, render size made a CLI reference (grey pixels carry no hint, so the
model still runs at keyframes) cost 1.35x the automatic run's whole-process time, half size 1.10x (200
frames of pedestrians, 5 paired runs; 1.22x before these changes); half size stays the default. A complete
reference (the exemplar protocol) covers its frames, so the model does not run there.

A reference's carried colour is better than the automatic model's almost everywhere it reaches, even
where a check fails (measured on the first-frame protocol: carrying the colour clip's first frame along
DIS flow alone, at render size, beat the automatic model by 4-17 dB on the sample clips). So a failed
forward/backward or luma check, or a pixel whose flow leaves the frame, keeps ``REFERENCE_FLOOR`` of the
confidence instead of none (``propagate(..., floor=)``); the per-step decay still lowers it with distance,
and the confidence still ranks pixels for the guided model. First-frame reference, 60 frames, model v5
(``filmcolor evaluate GREY --reference COLOUR --exemplar first --limit 60``), mean PSNR of pedestrians,
pillow and paragliding: 29.1 dB with no floor and ultrafast flow (pillow's carry stopped after 30 frames:
its mean confidence fell under ``MIN_CONFIDENCE``), 29.7 with the floor, 30.6 with the medium preset too.
(Those figures are of the earlier whole-window pre-pass.)

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
from .flow import FlowEstimator, flow_tensor, luma_u8, resize, resize_flow, scaled_size
from .propagate import DEFAULT_DECAY, FlowPair, Propagator, flow_pair_u8
from .scenecut import SceneCutDetector

DEFAULT_HORIZON = 90      # frames each way a key is carried at most
REFERENCE_FLOOR = 0.3     # a failed flow or luma check leaves this share of a reference's confidence (see below)
REFERENCE_FLOW = "dis-medium"  # the pre-pass's DIS preset (the stream's keyframe carry uses ultrafast)
MIN_CONFIDENCE = 0.02     # carrying stops when the mean confidence falls below this
CARRY_FLOW, CARRY_SCALE = "dis-medium", 0.5   # the in-stream forward carry's own flow (see the module docstring)


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
    done: bool = False            # its backward pre-pass has run (or was not needed)
    started: bool = False         # its frame has been reached (the forward carry started, or was seeded)


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
    """Guidance per frame of one clip. ``at(pts)`` -> a resolver, or None where no key reaches the frame;
    the resolver, called once with the frame's L ``[1,1,h,w]`` (Lab units, render size, any device) and its
    :class:`~.motion.Motion` (None: the guide tracks motion itself), returns ``(hint_ab [1,2,h,w],
    mask [1,1,h,w])`` on L's device, or None.

    Forward, a key is carried inside the stream: the resolver steps a :class:`~.propagate.Propagator` with
    the stream's own flow (keyframe inference's, at half render size) and stops at the stream's cuts. Backward,
    it is carried by a pre-pass over the frames before it (they come first, so the stream cannot carry them).
    ``to_L(frame) -> L [h,w] float32`` turns a decoded PyAV frame into the stream's render-size L (the same
    lookup the stream uses, so the flow sees the same pixels). Call ``at`` with increasing pts, and the
    resolvers in the same order (a caller may ask ahead: the frame API releases several frames at once).
    """

    def __init__(self, clip: _Clip, keys: list[_Key], render: tuple[int, int],
                 to_L: Callable[[object], np.ndarray], horizon: int = DEFAULT_HORIZON,
                 decay: float = DEFAULT_DECAY, window: Callable[[int, int], list] | None = None,
                 carry_flow: str | None = CARRY_FLOW, carry_scale: float = CARRY_SCALE) -> None:
        """``window(lo, hi)``: (pts, uint8 L) of the frames in ``[lo, hi]`` from elsewhere than the file
        (the frame API's buffer); None: decoded from ``clip.path``. ``carry_flow``: the DIS preset of the
        forward carry's own flow (frame to previous frame, at ``carry_scale`` of the render size); None: the
        stream's flow alone. Its consistency check always uses the stream's flow."""
        self.clip, self.keys, self.render, self.to_L = clip, sorted(keys, key=lambda k: k.pts), render, to_L
        self.window = window
        self.horizon, self.decay = int(horizon), decay
        self._store: dict[int, tuple[np.ndarray, np.ndarray]] = {}   # backward carries: pts -> (int8 ab, uint8 conf)
        self._fwd = Propagator(direction="forward", decay=decay, floor=REFERENCE_FLOOR)
        self._age = 0                 # frames the forward carry has gone since its newest key
        self._tracker = None          # own MotionTracker, for callers without motion (keyframes all)
        self.carry_scale = float(carry_scale)
        self._carry_est = None if carry_flow is None else FlowEstimator(carry_flow)
        self._prev_u8: np.ndarray | None = None   # the last frame at the carry flow's size
        self._asked: int | None = None     # the pts of the last at()
        self._resolved: int | None = None  # the pts whose resolver ran last
        self.peak_frames = 0

    @property
    def _reach(self) -> int:
        return int(round(self.horizon * self.clip.frame_pts))

    def at(self, pts: int | None) -> Callable[..., tuple[torch.Tensor, torch.Tensor] | None] | None:
        prev, self._asked = self._asked, pts
        if pts is None:
            return None
        half = self.clip.frame_pts / 2
        starts, seed = [], None
        for key in self.keys:
            if not key.done and key.pts - self._reach <= pts + half:
                key.done = True
                if key.pts > pts + half:
                    self._carry(key, "backward", pts)      # the frames from here to the key
            if not key.started and key.pts <= pts + half:
                key.started = True
                if key.pts >= pts - half:
                    starts.append(key)                     # its own frame: the stream carries it on
                elif pts - key.pts <= self._reach:
                    seed = self._carry(key, "forward", pts)  # a run starting after the key: carried up to here
        for p in [p for p in self._store if p < pts - half]:
            del self._store[p]
        stored = self._store.get(pts)
        reached = any(k.started and pts - k.pts <= self._reach + half for k in self.keys)
        if stored is None and not starts and seed is None and not reached:
            return None
        return lambda L, motion=None: self._resolve(prev, pts, L, motion, stored, starts, seed)

    def _resolve(self, prev: int | None, pts: int, L: torch.Tensor, motion, stored, starts: list[_Key], seed):
        """The frame's guidance: the forward carry stepped onto it (or started, or seeded), merged with
        what the backward pre-pass stored for it, by the larger confidence per pixel. ``prev``: the pts
        asked for before this frame; when its resolver did not run, nothing carries over the gap."""
        with torch.inference_mode():  # the stream's threads (one on a CPU: small tensor ops)
            L = L.reshape(1, 1, *L.shape[-2:]).float()
            dev = L.device
            if self._resolved != prev:
                self._fwd.reset()
                self._prev_u8 = None
                if self._tracker is not None:
                    self._tracker.reset()
            self._resolved = pts
            if motion is None:
                motion = self._own_motion(L)
            flow = self._carry_flow(L, motion)
            if seed is not None:
                self._fwd.start(L, seed[0].to(dev), seed[1].to(dev))
                self._age = seed[2]
            elif self._fwd.active:
                if motion.new_shot or self._age >= self.horizon:
                    self._fwd.reset()
                else:
                    _, conf = self._fwd.step(L, flow)
                    self._age += 1
                    if float(conf.mean()) < MIN_CONFIDENCE:
                        self._fwd.reset()
            for key in starts:
                hint, mask = torch.from_numpy(key.hint)[None].to(dev), torch.from_numpy(key.mask)[None].to(dev)
                if self._fwd.active:
                    _, ab, conf = self._fwd.state
                    hint, mask = _more_confident(ab, conf, hint, mask)
                self._fwd.start(L, hint, mask)
                self._age = 0
            got = None if not self._fwd.active else self._fwd.state[1:]
            if stored is not None:
                ab = torch.from_numpy(stored[0].astype(np.float32))[None].to(dev)
                conf = torch.from_numpy(stored[1].astype(np.float32) / 255.0)[None].to(dev)
                got = (ab, conf) if got is None else _more_confident(*got, ab, conf)
            return got

    def _carry_flow(self, L: torch.Tensor, motion) -> FlowPair | None:
        """The flow the forward carry steps on: this guide's own DIS (previous frame <- this one, the
        direction colour is sampled along) with the stream's reverse flow as its consistency check."""
        if self._carry_est is None:
            return motion.flow
        # this frame is kept even where it starts a shot (no stream flow yet): the next frame's step, the
        # first of a reference carried from here, gets this guide's own flow too (it got the stream's
        # coarse flow before: 1.8 against 0.9 a,b RMSE after one step on paragliding)
        size = scaled_size(*L.shape[-2:], self.carry_scale)
        u8 = luma_u8(L if size == tuple(L.shape[-2:]) else resize(L, size, "area"))
        prev, self._prev_u8 = self._prev_u8, u8
        if motion.flow is None or prev is None or prev.shape != u8.shape:
            return motion.flow
        back = flow_tensor(self._carry_est(u8, prev), L.device)
        return FlowPair(back, resize_flow(motion.flow.fwd, size))

    def _own_motion(self, L: torch.Tensor):
        from .motion import FLOW_SCALE, MotionTracker

        if self._tracker is None:
            self._tracker = MotionTracker(scale=FLOW_SCALE)
        return self._tracker(L)

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

    def _carry(self, key: _Key, direction: str, pts: int):
        """The pre-pass: decode from ``pts`` to the key (backward: store the guidance of the frames before
        it) or from the key to ``pts`` (forward: return ``(ab, conf, steps)`` on frame ``pts``, or None)."""
        from ..cpu import torch_threads

        with torch.inference_mode(), torch_threads(1):  # many small tensor ops: one thread (see torch_threads)
            return self._carry_window(key, direction, pts)

    def _carry_window(self, key: _Key, direction: str, pts: int):
        lo, hi = (max(pts, key.pts - self._reach), key.pts) if direction == "backward" else (key.pts, pts)
        frames = (self.window or self._decode_window)(lo, hi)
        if not frames:
            raise UsageError(f"a reference at {float((key.pts - self.clip.start_pts) * self.clip.tb):.3f} s "
                             "lies outside the clip (no frame decoded there)")
        if direction == "backward":
            frames = frames[::-1]                      # from the key towards the run's current frame
        k = int(np.argmin([abs(p - key.pts) for p, _ in frames]))
        frames = frames[k:]
        det = SceneCutDetector()
        # cut[i]: frames i-1 and i lie in different shots (detected in display order)
        shown = frames if direction == "forward" else frames[::-1]
        cuts = [det(u8) for _, u8 in shown]
        cut = cuts if direction == "forward" else [False] + cuts[::-1][:-1]
        est = FlowEstimator(REFERENCE_FLOW)
        Ls = [torch.from_numpy(u8.astype(np.float32) / 2.55)[None, None] for _, u8 in frames]
        prop = Propagator(direction=direction, decay=self.decay, estimator=est, floor=REFERENCE_FLOOR)
        prop.start(Ls[0], torch.from_numpy(key.hint)[None], torch.from_numpy(key.mask)[None])
        cpu = torch.device("cpu")
        for i in range(1, len(frames)):
            if cut[i]:
                return None                            # nothing crosses a cut
            a, b = (i - 1, i) if direction == "forward" else (i, i - 1)  # (earlier, later) in display order
            ab, conf = prop.step(Ls[i], flow_pair_u8(frames[a][1], frames[b][1], est, cpu))
            if float(conf.mean()) < MIN_CONFIDENCE:
                return None
            if direction == "backward":
                self._store[frames[i][0]] = _quantise(ab[0].numpy(), conf[0].numpy(), self._store.get(frames[i][0]))
        self.peak_frames = max(self.peak_frames, len(self._store))
        if direction == "forward" and abs(frames[-1][0] - pts) <= self.clip.frame_pts / 2:
            _, ab, conf = prop.state
            return ab, conf, len(frames) - 1
        return None


def _more_confident(ab: torch.Tensor, conf: torch.Tensor, ab2: torch.Tensor, conf2: torch.Tensor):
    """Per pixel, the a,b of whichever of two carries is more confident, and the larger confidence."""
    better = conf2 > conf
    return torch.where(better, ab2, ab), torch.maximum(conf, conf2)


def _quantise(ab: np.ndarray, conf: np.ndarray, old: tuple[np.ndarray, np.ndarray] | None):
    """A carry as int8 a,b + uint8 confidence (3 bytes a pixel), merged with ``old`` by confidence."""
    ab8 = np.clip(np.rint(ab), -127, 127).astype(np.int8)
    c8 = np.clip(np.rint(conf * 255.0), 0, 255).astype(np.uint8)
    if old is not None:
        better = c8 > old[1]
        ab8, c8 = np.where(better, ab8, old[0]), np.maximum(c8, old[1])
    return ab8, c8


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
               to_L: Callable[[object], np.ndarray]) -> ReferenceGuide:
    """Check the user's references and hints against the clip (one-line errors) and make its guide."""
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
    return ReferenceGuide(clip, list(keys.values()), render, to_L, guidance.horizon)


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
