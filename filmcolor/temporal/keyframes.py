"""Keyframe inference: run the model on some frames and carry its chroma along the flow to the others.

``--keyframes all`` runs the model on every frame. ``N`` runs it on every N-th frame of a shot (and on
every shot's first frame). ``auto`` runs it at shot starts and wherever carrying is no longer trusted:
the mean carried confidence falls below ``min_confidence``, the mean motion exceeds ``max_motion`` (a
fraction of the short side per frame: fast pans defeat the flow), or ``max_interval`` frames have passed.

Between keyframes a frame gets the chroma carried from the previous frame (:func:`~.propagate.propagate`),
wherever the flow brought it from. A cheap fill where the carried confidence was low (the normalised
convolution of the confident carried chroma, :func:`fill_low_confidence`, so an uncovered region took its
neighbours' colour rather than that of whatever was there before) ran on every carried frame until it was
measured against plain carrying, and was removed: on the five shared clips (60 frames, model v5, int8;
CIEDE2000 against every-frame inference, ``python -m filmcolor.bench_keyframes``) the fast mode
``8:stream:160`` went from +0.226 with the fill to -0.027 without it (pillow 19.19 -> 18.39, teddy 17.74 ->
17.35: the fill's local means wash out small saturated patterns), warp error 0.967x every-frame inference's;
``auto`` -0.020 -> -0.024. The fill still completes guidance that covers almost all of a frame
(:meth:`KeyframeInference._covered`).

Streaming and memory: decisions are causal (they use only this and earlier frames) and the state is one
frame (L, a,b, confidence at render size), so memory is flat in the film's length.

Resume and segments: a span's first decoded frame always starts a shot, hence is a keyframe, and every
later decision depends only on frames decoded since. A segment therefore gives the same frames each time
it runs from the same ``decode_from``; an uninterrupted and a resumed run use the same segment plan, so
they are identical. The segment's lead-in (its overlap, decoded but not written) lets the carried state
settle before the first written frame as it lets the smoother's.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable

import torch

from ..inference import confident_share, guidance_weight, keep_guidance, predict_ab, resolve_guidance
from .motion import Motion
from .propagate import DEFAULT_DECAY, Propagator

KEYFRAME_HELP = ("Frames the model runs on: all, N (every N-th frame of a shot) or auto (shot starts, "
                 "large motion, falling carried confidence); the others carry colour along the optical flow.")


@dataclass(frozen=True)
class KeyframePolicy:
    """When to run the model. ``interval``: fixed mode's N, auto mode's longest gap; 1 = every frame."""

    interval: int = 1
    adaptive: bool = False
    min_confidence: float = 0.75
    max_motion: float = 0.04

    @classmethod
    def parse(cls, text: str | int) -> "KeyframePolicy":
        """``all`` | ``auto`` | a positive integer N; :class:`~filmcolor.errors.UsageError` (one line) otherwise."""
        from ..errors import UsageError

        t = str(text).strip().lower()
        if t == "all":
            return cls(interval=1)
        if t == "auto":
            return cls(interval=AUTO_MAX_INTERVAL, adaptive=True)
        try:
            n = int(t)
        except ValueError:
            raise UsageError(f"--keyframes must be all, auto or a positive whole number, got {text!r}") from None
        if n < 1:
            raise UsageError(f"--keyframes N must be at least 1, got {n}")
        return cls(interval=n)

    @property
    def every_frame(self) -> bool:
        return self.interval == 1 and not self.adaptive

    def describe(self) -> str:
        return "all" if self.every_frame else ("auto" if self.adaptive else str(self.interval))

    def reason(self, motion: Motion, since_key: int, mean_conf: float) -> str | None:
        """Why this frame must be a keyframe (``shot``, ``interval``, ``motion``, ``confidence``), or None.

        ``since_key``: frames since the last keyframe, this one included; ``mean_conf``: the mean carried
        confidence on this frame (with nothing carried the frame starts a shot: no need to ask).
        """
        return self.reason_before_carry(motion, since_key) or \
            ("confidence" if self.adaptive and mean_conf < self.min_confidence else None)

    def reason_before_carry(self, motion: Motion, since_key: int) -> str | None:
        """The reasons known before any colour is carried onto the frame (``shot``, ``interval``,
        ``motion``): when one holds, carrying would be wasted work."""
        if motion.new_shot:
            return "shot"
        if since_key >= self.interval:
            return "interval"
        if self.adaptive and motion.relative_magnitude > self.max_motion:
            return "motion"
        return None


AUTO_MAX_INTERVAL = 8
GUIDANCE_COVERS = 0.98  # guidance kept outright on this share of a frame: the model is not needed there


class KeyframeInference:
    """One pass over a clip: ``__call__(L, motion)`` returns the frame's a,b ``[1,2,h,w]``, from the model
    (``infer``: L ``[1,1,h,w]`` -> a,b on the same device) on keyframes, carried otherwise.

    ``stats`` counts frames and keyframes by reason.
    """

    def __init__(self, policy: KeyframePolicy, infer: Callable[..., torch.Tensor], *,
                 decay: float = DEFAULT_DECAY) -> None:
        self.policy = policy
        self.infer = infer
        self._prop = Propagator(decay=decay)
        self._since_key = 0
        self._guided = False   # the previous frame had guidance
        self.last_was_key = False
        self.span = 0          # keyframes so far: which keyframe the last frame's colour comes from
        self.stats: Counter[str] = Counter()

    def reset(self) -> None:
        """Scene cut known to the caller: the next frame is a keyframe."""
        self._prop.reset()
        self._since_key = 0
        self._guided = False

    def settle(self, ab: torch.Tensor) -> None:
        """The frame just returned came out of the temporal stage as ``ab`` ``[1,2,h,w]``: carry that on."""
        self._prop.update(ab)

    @torch.no_grad()
    def __call__(self, L: torch.Tensor, motion: Motion, guidance: Any = None) -> torch.Tensor:
        """``guidance`` (hint a,b and mask, see :mod:`filmcolor.inference`) goes to ``infer(L, guidance)`` on
        keyframes. Where the guidance is kept on almost all of the frame (``GUIDANCE_COVERS``: a carried
        reference) the model does not run at all (:meth:`_covered`). Where guidance begins (the previous
        frame had none) the frame is a keyframe. On the
        frames after, the policy decides as without guidance; between keyframes the carried colour is
        used with the guidance kept over it. Running the model on every guided frame (as before) made a
        reference cost 2.5x the automatic mode's time."""
        L = L.reshape(1, 1, *L.shape[-2:])
        if guidance is not None and confident_share(guidance) >= GUIDANCE_COVERS:
            return self._covered(L, guidance)
        self._since_key += 1
        carried = conf = None
        why = "shot" if not self._prop.active else self.policy.reason_before_carry(motion, self._since_key)
        if why is None:  # carry only when the frame may not need the model
            carried, conf = self._prop.step(L, motion.flow)
            why = self.policy.reason(motion, self._since_key, float(conf.mean()))
        guidance_starts = guidance is not None and not self._guided
        self._guided = guidance is not None
        if guidance_starts and confident_share(guidance) < GUIDANCE_COVERS:
            why = why or "guidance"
        self.stats["frames"] += 1
        if why is not None:
            ab = self.infer(L) if guidance is None else self.infer(L, guidance)
            self._prop.start(L, ab)
            self._since_key = 0
            self.stats["keyframes"] += 1
            self.stats[f"key_{why}"] += 1
            self.last_was_key = True
            self.span += 1
            return ab
        self.last_was_key = False
        if guidance is not None:
            carried = keep_guidance(carried, guidance)
            self.stats["guided_carried"] += 1
            self._prop.update(carried)
        return carried

    def _covered(self, L: torch.Tensor, guidance: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """A frame whose guidance is kept on (almost) all of it (a carried reference): the model's colour
        would be replaced, so it does not run; the few pixels the guidance misses take their neighbours'
        colour (:func:`fill_low_confidence`). The frame's colour is the carried state from here on, as a
        keyframe's would be, without counting as one (no new span: the guidance is one continuous source)."""
        hint, mask = (t.to(L.device, torch.float32) for t in guidance)
        ab = fill_low_confidence(hint, guidance_weight(mask))
        self._prop.start(L, ab)
        self._since_key = 0
        self._guided = True
        self.last_was_key = False
        self.stats["frames"] += 1
        self.stats["guided_covered"] += 1
        return ab


def fill_low_confidence(ab: torch.Tensor, conf: torch.Tensor, scales: tuple[float, ...] = (1 / 16, 1 / 4),
                        coarse: int = 8, below: float = 0.5) -> torch.Tensor:
    """``ab`` where ``conf`` is at least ``below``; under it, blended (fully at 0) towards the
    confidence-weighted mean of ``ab`` around the pixel. The threshold keeps the per-step decay alone
    from pulling well-carried colour towards the blurred fill.

    Normalised convolution (Knutsson & Westin 1993) with box windows of radius ``scale x short side``, the
    coarser scale first and the finer one where its window holds enough confidence. The means are taken
    on a grid ``coarse`` times smaller and upsampled bilinearly: the fill is smooth by construction, and
    this keeps it at a fraction of a millisecond. ``ab`` ``[N,2,h,w]``, ``conf`` ``[N,1,h,w]`` in 0..1.
    """
    from ..video.chroma import box
    from .flow import resize

    h, w = ab.shape[-2:]
    size = (max(1, h // coarse), max(1, w // coarse))
    num = resize((ab * conf).contiguous(), size, "area")   # OpenCV on a CPU: 0.3 ms for torch's pooling here
    den = resize(conf.contiguous(), size, "area")
    short = min(size)
    fill = (num.sum((-1, -2), keepdim=True) / den.sum((-1, -2), keepdim=True).clamp(min=1e-6)).expand_as(num)
    for s in reversed(scales):  # coarse first, finer estimates override where they have support
        r = max(1, int(round(s * short)))
        wgt = box(den, r)
        est = box(num, r) / wgt.clamp(min=1e-6)
        trust = (wgt / 0.25).clamp(max=1.0)  # a quarter of the window confident: the estimate holds
        fill = fill + trust * (est - fill)
    fill = resize(fill.contiguous(), (h, w), "bilinear")
    # lerp: one pass over the two a,b planes instead of three (sub, mul, add)
    return torch.lerp(ab, fill, conf.mul(-1.0 / below).add_(1.0).clamp_(0.0, 1.0))


class KeyframePredictor:
    """The pipeline's per-frame hook (the :class:`~filmcolor.inference.FramePredictor` contract: ``push``,
    ``flush``, ``reset``, ``latency``) with keyframe inference in place of the engine on every frame.

    Per frame, on the engine's device: one :class:`~.motion.MotionTracker` step (scene cut + DIS flow at
    half render size), :class:`KeyframeInference` (the engine on keyframes, carried a,b otherwise), then the
    temporal stage, which gets the same motion, so the flow is computed once per frame. With streaming
    smoothing a keyframe's smoothed output is what is carried on, and carried frames skip the smoother
    (:meth:`TemporalSmoother.push_carried`): they agree with the smoothed past by construction.
    """

    def __init__(self, predictor: Any, policy: KeyframePolicy, temporal: Any = None, *,
                 decay: float = DEFAULT_DECAY) -> None:
        from .motion import FLOW_SCALE, MotionTracker

        self.p, self.temporal = predictor, temporal
        self.batch = 1   # the engine runs on the frames the policy picks, one at a time
        self.tracker = MotionTracker(scale=FLOW_SCALE)
        self.inference = KeyframeInference(policy, self._model, decay=decay)
        from .smoother import TemporalSmoother

        self._motion_aware = isinstance(temporal, TemporalSmoother)  # takes the tracker's cuts and flow

    @property
    def latency(self) -> int:
        return self.temporal.latency if self.temporal is not None else 0

    @property
    def stats(self) -> Counter[str]:
        return self.inference.stats

    def _model(self, L: torch.Tensor, guidance: Any = None) -> torch.Tensor:
        return predict_ab(self.p.infer, L, gain=self.p.gain, guidance=guidance, guided=self.p.guided)

    def push(self, L: torch.Tensor, guidance: Any = None) -> list[torch.Tensor]:
        """One frame's L ``[1,h,w]`` (Lab units, render size) -> the a,b ``[2,h,w]`` of the frames ready now."""
        with torch.inference_mode():
            L = L.reshape(1, 1, *L.shape[-2:]).to(self.p.device)
            motion = self.tracker(L)
            ab = self.inference(L, motion, resolve_guidance(guidance, L, motion))
            if self.temporal is None:
                return [ab[0]]
            if not self._motion_aware:
                return self.temporal.push(L[0], ab[0])
            if self.temporal.window > 0:
                return self.temporal.push(L[0], ab[0], motion, span=self.inference.span)
            # streaming: keyframes are smoothed and their output carried on; carried frames pass through
            if not self.inference.last_was_key:
                return self.temporal.push_carried(L[0], ab[0], motion)
            out = self.temporal.push(L[0], ab[0], motion)
            self.inference.settle(out[0][None])
            return out

    def flush(self) -> list[torch.Tensor]:
        with torch.inference_mode():
            out = self.temporal.flush() if self.temporal is not None else []
        self.tracker.reset()
        self.inference.reset()
        return out

    def reset(self) -> None:
        """A scene cut known to the caller: the next frame is a keyframe and starts a shot."""
        self.tracker.reset()
        self.inference.reset()
        if self.temporal is not None:
            self.temporal.reset()
