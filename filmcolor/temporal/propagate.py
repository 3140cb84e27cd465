"""Carrying chroma along optical flow with a per-pixel confidence: keyframes and reference frames.

One mechanism serves keyframe inference (the model's own output carried to the frames between
keyframes) and guided colorization (a reference frame carried forward and backward through its shot).
Everything is torch on the caller's device except the flow itself (OpenCV DIS on the CPU, through
:class:`~filmcolor.temporal.flow.FlowEstimator`, the smoother's flow code).

A step from a source frame s to a target frame t (neighbours in time, either direction):

    ab_t(x)   = ab_s(x + B(x))                                       backward warping, B: t -> s
    conf_t(x) = min(conf_s(x + B(x)), fb(x) * luma(x)) * inside(x) * decay

(with a ``floor``, ``fb * luma`` and ``inside`` each become ``floor + (1 - floor) * ...``: references;
a pixel whose flow leaves the frame and fails the checks keeps ``floor^2``).

``fb`` is the forward/backward consistency of B with F (s -> t) sampled along B (low where content is
occluded or uncovered: the two flows do not cancel), ``luma`` the agreement of the warped source
luminance with the target's (low where the flow is wrong), ``inside`` zero where B leaves the frame and
``decay`` a per-step factor, so confidence also falls with the distance from the frame the colour came
from. The confidence functions are the smoother's (:func:`fb_confidence`, :func:`luma_confidence`).

The chain keeps its weakest step (the minimum), not the product of every step: each step's checks sit a
little below 1 even where the flow is right (noise, grain), and their product had fallen under 2% of the
start within 25-45 frames on the sample clips (pillow, paragliding), where the carried colour was still
good; distance is what ``decay`` is for.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .flow import FlowEstimator, Warper, fb_confidence, flow_tensor, luma_confidence, luma_u8, resize, resize_flow

DEFAULT_DECAY = 0.97        # per step: after 23 frames at most half the confidence is left
DEFAULT_LUMA_SIGMA = 5.0    # Lab L units, as the smoother's luminance check


@dataclass(frozen=True)
class FlowPair:
    """Motion between two neighbouring frames, a target and a source, at one size.

    ``back`` ``[N,2,h,w]``: target -> source in pixels (where each target pixel's content sits in the
    source: what backward warping samples along); ``fwd`` ``[N,2,h,w]``: source -> target, for the
    consistency check. In a stream going forward the target is the new frame and the source the previous
    one; :meth:`swapped` gives the same pair for carrying the other way.
    """

    back: torch.Tensor
    fwd: torch.Tensor

    def swapped(self) -> "FlowPair":
        return FlowPair(self.fwd, self.back)

    @property
    def size(self) -> tuple[int, int]:
        return int(self.back.shape[-2]), int(self.back.shape[-1])

    def mean_magnitude(self) -> float:
        """Mean length of ``back`` in pixels (a cheap measure of how much moved)."""
        return float(self.back.square().sum(1).sqrt().mean())


def estimate_flow(L_source: torch.Tensor, L_target: torch.Tensor, estimator: FlowEstimator | None = None) -> FlowPair:
    """DIS flow both ways between ``L_source`` and ``L_target`` ``[N,1,h,w]`` (Lab L), on ``L_target``'s device.

    Two DIS calls per sample on uint8 copies of L (the flow runs on the CPU whatever the device).
    """
    est = estimator or FlowEstimator()
    pairs = [flow_pair_u8(luma_u8(s), luma_u8(t), est, L_target.device) for s, t in zip(L_source, L_target)]
    return FlowPair(torch.cat([p.back for p in pairs]), torch.cat([p.fwd for p in pairs]))


def flow_pair_u8(u_source: np.ndarray, u_target: np.ndarray, estimator: FlowEstimator,
                 device: torch.device) -> FlowPair:
    """:class:`FlowPair` ``[1,2,h,w]`` on ``device`` from uint8 luma ``[h,w]`` of source and target."""
    return FlowPair(flow_tensor(estimator(u_target, u_source), device), flow_tensor(estimator(u_source, u_target), device))


@torch.no_grad()
def propagate(L_prev: torch.Tensor, L_t: torch.Tensor, ab_prev: torch.Tensor, conf_prev: torch.Tensor,
              flow: FlowPair | None = None, *, decay: float = DEFAULT_DECAY, luma_sigma: float = DEFAULT_LUMA_SIGMA,
              warper: Warper | None = None, estimator: FlowEstimator | None = None,
              floor: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Carry ``ab_prev`` from the frame ``L_prev`` onto the neighbouring frame ``L_t`` (one step, see the module).

    Shapes at render size: ``L_prev``, ``L_t`` ``[N,1,h,w]`` (Lab L, 0..100), ``ab_prev`` ``[N,2,h,w]``
    (Lab a,b), ``conf_prev`` ``[N,1,h,w]`` in 0..1, all on one device. ``flow``: the :class:`FlowPair`
    with ``L_t`` as target and ``L_prev`` as source, when the caller has it already (the pipeline computes
    one per frame at half render size, shared with the smoother); else DIS computes it here. A flow
    smaller than the frames is checked at its own size (consistency and luminance on L shrunk to it, the
    resulting confidence enlarged) and enlarged to carry the colour and the confidence at full size.

    ``floor`` in 0..1: the share of confidence a failed check (or a flow leaving the frame) leaves; 0
    (keyframes) drops such pixels, references keep some (:mod:`~.references`).

    Returns (``ab_carried`` ``[N,2,h,w]``, ``confidence`` ``[N,1,h,w]`` in 0..1), float32.
    """
    if flow is None:
        flow = estimate_flow(L_prev, L_t, estimator)
    warp = warper or Warper()
    back, fwd = flow.back.to(torch.float32), flow.fwd.to(torch.float32)
    size = tuple(ab_prev.shape[-2:])
    if flow.size == size:
        src = torch.cat((ab_prev.float(), conf_prev.float(), L_prev.float(), fwd), 1)
        y, inside = warp(src, back)
        ab, conf_s, L_s, fwd_s = y[:, 0:2], y[:, 2:3], y[:, 3:4], y[:, 4:6]
        step = fb_confidence(back, fwd_s) * luma_confidence(L_s, L_t.float(), inside, luma_sigma)
    else:
        y, inside = warp(torch.cat((ab_prev.float(), conf_prev.float()), 1), resize_flow(back, size))
        ab, conf_s = y[:, 0:2], y[:, 2:3]
        L_prev_s, L_t_s = (resize(x.float().contiguous(), flow.size, "area") for x in (L_prev, L_t))
        z, inside_s = warp(torch.cat((L_prev_s, fwd), 1), back)
        step = fb_confidence(back, z[:, 1:3]) * luma_confidence(z[:, 0:1], L_t_s, inside_s, luma_sigma)
        step = resize(step.contiguous(), size, "bilinear")
    if floor > 0.0:
        step = step.mul_(1.0 - floor).add_(floor)
        inside = inside * (1.0 - floor) + floor
    conf = torch.minimum(conf_s, step) * inside   # the weakest link of the chain, not the product of every step
    return ab, conf.mul_(decay).clamp_(0.0, 1.0)


class Propagator:
    """Carried chroma state for one direction through a shot: ``start`` at a keyframe or reference,
    ``step`` onto each next frame, ``reset`` at a scene cut.

    ``direction`` "forward" takes frames in display order, "backward" in reverse display order (a
    reference carried back towards its shot's start). In both, ``step(L, flow)`` takes the
    :class:`FlowPair` between the new frame and the state's frame *as a forward stream computes it*
    (later frame as target): the backward propagator swaps it, so one flow per frame pair serves both
    directions and the smoother.
    """

    def __init__(self, *, direction: str = "forward", decay: float = DEFAULT_DECAY,
                 luma_sigma: float = DEFAULT_LUMA_SIGMA, estimator: FlowEstimator | None = None,
                 floor: float = 0.0) -> None:
        if direction not in ("forward", "backward"):
            raise ValueError(f"direction must be 'forward' or 'backward', got {direction!r}")
        if not 0.0 < decay <= 1.0:
            raise ValueError(f"decay must be in (0, 1], got {decay}")
        if not 0.0 <= floor < 1.0:
            raise ValueError(f"floor must be in [0, 1), got {floor}")
        self.direction = direction
        self.decay = float(decay)
        self.luma_sigma = float(luma_sigma)
        self.floor = float(floor)
        self._estimator = estimator or FlowEstimator()
        self._warper = Warper()
        self._L: torch.Tensor | None = None
        self._ab: torch.Tensor | None = None
        self._conf: torch.Tensor | None = None
        self.steps = 0   # steps since the last start()

    @property
    def active(self) -> bool:
        """True while there is carried chroma (after ``start``, until ``reset``)."""
        return self._ab is not None

    @property
    def state(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
        """(L ``[N,1,h,w]``, ab ``[N,2,h,w]``, confidence ``[N,1,h,w]``) of the last frame, or None."""
        return None if self._ab is None else (self._L, self._ab, self._conf)

    def reset(self) -> None:
        """Forget the carried chroma (scene cut, end of a shot)."""
        self._L = self._ab = self._conf = None
        self.steps = 0

    def start(self, L: torch.Tensor, ab: torch.Tensor, confidence: torch.Tensor | None = None) -> None:
        """Make ``ab`` ``[N,2,h,w]`` on the frame ``L`` ``[N,1,h,w]`` the carried state (a keyframe's model
        output, confidence 1; or a reference with its own confidence)."""
        self._L, self._ab = L.float(), ab.float()
        self._conf = torch.ones_like(self._L) if confidence is None else confidence.float()
        self.steps = 0

    def update(self, ab: torch.Tensor, confidence: torch.Tensor | None = None) -> None:
        """Replace the chroma (and optionally confidence) of the current frame, e.g. after a correction."""
        if self._ab is None:
            raise RuntimeError("update() before start()")
        self._ab = ab.float()
        if confidence is not None:
            self._conf = confidence.float()

    def step(self, L: torch.Tensor, flow: FlowPair | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Carry the state onto the next frame ``L`` ``[N,1,h,w]``; returns (ab, confidence) and keeps them as
        the new state. ``flow``: see the class docstring (None: computed here)."""
        if self._ab is None:
            raise RuntimeError("step() before start(): no carried chroma")
        if flow is not None and self.direction == "backward":
            flow = flow.swapped()
        ab, conf = propagate(self._L, L, self._ab, self._conf, flow, decay=self.decay, luma_sigma=self.luma_sigma,
                             warper=self._warper, estimator=self._estimator, floor=self.floor)
        self._L, self._ab, self._conf = L.float(), ab, conf
        self.steps += 1
        return ab, conf
