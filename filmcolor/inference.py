"""The one inference path: luminance in, chroma at output resolution out.

Every entry point (files, stills, the pipe, the plugins, the Python API, ``preview``, ``evaluate`` and
training validation) goes through the same three steps, kornia style: pure tensor functions with their
shapes stated, and one thin stateful wrapper (:class:`FramePredictor`) for what must carry across frames.

1. :func:`predict_ab`: Lab L at render size -> a,b at render size (the model, gain, optional guidance).
2. temporal stage: a,b of a frame -> a,b of that frame carried/smoothed across time (may delay frames).
3. :func:`finish_chroma`: (L, a,b) at render size -> (Cb, Cr) at the output's chroma-plane size, upsampled
   edge-aware along the source's own luma.

:func:`chroma_from_luma` is steps 1-3 for a batch with a zero-delay temporal step;
:class:`~filmcolor.colorizer.ChromaStream` runs the same steps over a stream, with the delaying stages.
Luma is never touched here: callers keep the source's own Y' plane.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional, Protocol, Union

import numpy as np
import torch

from .color import CodeRange, YCbCrMatrix
from .spread import spread_guidance
from .video.chroma import fast_guided_upsample, lab_to_chroma

Infer = Callable[[torch.Tensor], torch.Tensor]
"""A model: L ``[N,1,h,w]`` float32 Lab units (0..100), any device -> a,b ``[N,2,h,w]`` Lab units."""

Guidance = Optional[tuple[torch.Tensor, torch.Tensor]]
"""``(hint_ab [N,2,h,w] Lab units, mask [N,1,h,w] in [0,1])`` at render size; None = automatic."""

GuidanceSource = Union[Guidance, Callable[..., Guidance]]
"""What a stream's ``push`` takes: the guidance itself, or a resolver ``(L [1,1,h,w], motion) -> Guidance``
that makes it on the frame (a reference carried forward on the stream's own flow,
:class:`~filmcolor.temporal.references.ReferenceGuide`): call it once per frame, in push order."""


def resolve_guidance(guidance: GuidanceSource, L: torch.Tensor, motion: object = None) -> Guidance:
    """A frame's guidance from what was pushed with it: a resolver runs on the frame's L ``[1,1,h,w]`` and
    ``motion`` (a :class:`~filmcolor.temporal.motion.Motion`; None: the resolver tracks motion itself)."""
    return guidance(L, motion) if callable(guidance) else guidance


@dataclass(frozen=True)
class Predictor:
    """What the inference path needs of a model, whoever holds it (a Colorizer, the training loop)."""

    infer: Infer
    render_size: int
    multiple: int = 32                      # render sides are multiples of this (the model's)
    gain: float = 1.0                       # multiplies a,b: saturation x the model's calibrated gain
    batch: int = 1                          # frames per infer() call that pay off
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))  # where infer() returns a,b
    guided: bool = False                    # infer(L, guidance) feeds guidance to the model's own inputs
    prepare: Optional[Callable[[int, int], None]] = None  # called with (h, w) before a clip or picture of that render size


TRUST = 0.0
"""Guidance confidence at and above which the guidance's own colour is kept outright (below it, blended
linearly with the model's); 0: kept wherever the mask is above 0 (the default). A carried reference's
confidence falls with every step (decay 0.97, flow and luma checks), so it ranks pixels well but
understates how good the carried colour is. History (colour clip's first frame as the reference, 60
frames, mean PSNR): with model v3, trust 1 (a linear blend) 28.4 dB on pedestrians, 0.25 32.2, 0.1 33.0;
with model v5 and a confidence floor (:data:`~filmcolor.temporal.references.REFERENCE_FLOOR`) 0.02 beat
0.1. On all five shared clips (v5, int8, forward carry at render size): trust 0.02 30.27 dB (last 10
frames 27.02), 0.005 30.38 (27.13), 0 **30.85 (27.68)**: even a carried colour whose checks failed many
steps ago is closer to the truth than the guided model's repair (on apple the first keyframe that repaired
4% of the frame raised the a,b RMSE from 1.05 to 1.63), so the model only fills where no guidance reaches."""


SPARSE = 0.1
"""Guidance covering less of the picture than this (share of pixels with a mask above 0) is sparse: hint
points, scribbles, a partly coloured reference. Sparse guidance corrects the automatic model's colours
through :func:`~filmcolor.spread.spread_guidance`; denser guidance (a carried reference frame) is fed to
the guided model, which fills and repairs it. On 50 val images with Zhang et al. 2017's 6x6 patch
protocol (model v5, at render size), the PSNR gain over no hints at 2 / 10 / 100 points: guided model
+0.31 / +0.79 / +1.71 dB; guided model then spreading +0.33 / +0.92 / +2.19 (the model's own output
already matches a hint at its patch, so little residual is left to spread); automatic model then
spreading along lightness +1.47 / +3.19 / +6.66, along lightness and the model's a,b (the default)
+1.50 / +3.36 / +7.30 on 50 training photos. On all 300 val images (``filmcolor evaluate
--hint-points``, int8 engine): +1.32 / +3.04 / +6.84 (lightness alone +1.26 / +2.89 / +6.63)."""


def predict_ab(infer: Infer, L: torch.Tensor, *, gain: float = 1.0, guidance: Guidance = None,
               guided: bool = False, trust: float = TRUST, sparse: float = SPARSE) -> torch.Tensor:
    """L ``[N,1,h,w]`` (Lab units, render size) -> a,b ``[N,2,h,w]`` on ``infer``'s device, gain applied.

    ``guidance`` (hint a,b ``[N,2,h,w]`` and mask ``[N,1,h,w]`` at render size, the mask a confidence in
    0..1): sparse guidance (under ``sparse`` of the pixels, see :data:`SPARSE`) corrects the automatic
    model's colours, its residuals spread edge-aware over the regions they fall in; denser guidance, with
    ``guided`` (a model with guidance inputs, see :class:`~filmcolor.models.sagan_unet.GuidanceEncoder`),
    goes to the model as ``infer(L, guidance)``, which fills where a reference is doubtful (automatic-only
    models and engines see L alone). Either way the guidance's colour is then kept where the mask is at
    least ``trust`` and blended in linearly below (:data:`TRUST`): the user's colours and confidently
    carried references stay as given. The gain applies to the model's own colours only.
    """
    if guidance is None:
        return infer(L) * gain
    n, _, h, w = L.shape
    hint, mask = guidance
    if tuple(hint.shape) != (n, 2, h, w) or tuple(mask.shape) != (n, 1, h, w):
        raise ValueError(f"guidance must be a,b {(n, 2, h, w)} and mask {(n, 1, h, w)}, "
                         f"got {tuple(hint.shape)} and {tuple(mask.shape)}")
    dense = ((mask > 0).flatten(1).float().mean(1) >= sparse).to(mask.dtype).view(n, 1, 1, 1)  # per frame
    if guided and bool(dense.any()):
        ab = infer(L, (hint * dense, mask * dense)) * gain     # sparse frames see an empty mask: automatic
    else:
        ab = infer(L) * gain
    ab = spread_guidance(L, ab, hint, mask * (1 - dense))     # dense frames: nothing spread
    return keep_guidance(ab, guidance, trust)


def keep_guidance(ab: torch.Tensor, guidance: tuple[torch.Tensor, torch.Tensor], trust: float = TRUST) -> torch.Tensor:
    """a,b ``[N,2,h,w]`` with the guidance's colour kept where its mask is at least ``trust``, blended
    linearly below (see :data:`TRUST`)."""
    hint, mask = (t.to(ab.device, ab.dtype) for t in guidance)
    return ab + guidance_weight(mask, trust) * (hint - ab)


def kept_outright(mask: torch.Tensor, trust: float = TRUST) -> torch.Tensor:
    """Where the guidance's colour is kept outright (bool, ``mask``'s shape): mask at least ``trust``;
    with ``trust`` 0, wherever the mask is above 0."""
    return mask >= trust if trust > 0 else mask > 0


def guidance_weight(mask: torch.Tensor, trust: float = TRUST) -> torch.Tensor:
    """How much of the guidance's colour is kept per pixel (``mask`` ``[N,1,h,w]`` -> weights in 0..1):
    1 where :func:`kept_outright`, linear in the mask below ``trust``."""
    return (mask / trust).clamp(max=1.0) if trust > 0 else kept_outright(mask, trust).to(mask.dtype)


def confident_share(guidance: tuple[torch.Tensor, torch.Tensor], trust: float = TRUST) -> float:
    """Share of pixels whose guidance is kept outright (:func:`kept_outright`)."""
    return float(kept_outright(guidance[1], trust).float().mean())


def finish_chroma(L: torch.Tensor, ab: torch.Tensor, guide_lo: torch.Tensor, guide_hi: torch.Tensor,
                  matrix: YCbCrMatrix) -> torch.Tensor:
    """(L ``[N,1,h,w]``, a,b ``[N,2,h,w]``) at render size -> (Cb, Cr) ``[N,2,H,W]`` in [-0.5, 0.5].

    ``guide_lo`` ``[N,1,h,w]`` and ``guide_hi`` ``[N,1,H,W]`` are the source's luma in [0, 1] at render size
    and at the output's chroma-plane size; the guided filter takes edges from them, so colour follows
    the picture's own edges. ``matrix`` is the output's Y'CbCr matrix.

    On a CPU the same maths runs through OpenCV (:mod:`filmcolor.video.chroma_cpu`: 4-5x faster there);
    elsewhere as torch on ``ab``'s device.
    """
    if ab.device.type == "cpu":
        from .video.chroma_cpu import finish_chroma_cpu

        return finish_chroma_cpu(L, ab, guide_lo, guide_hi, matrix)
    cbcr = lab_to_chroma(L.to(ab.device), ab, matrix)
    return fast_guided_upsample(cbcr, guide_lo.to(ab.device), guide_hi.to(ab.device))


def finish_codes(L: torch.Tensor, ab: torch.Tensor, guide_lo: torch.Tensor, guide_hi: torch.Tensor,
                 matrix: YCbCrMatrix, codes: CodeRange, dtype: str = "uint8") -> tuple[np.ndarray, np.ndarray]:
    """One frame (batch of 1, shapes of :func:`finish_chroma`) -> its integer (Cb, Cr) code planes ``[H,W]``
    of ``codes`` as numpy ``dtype``: :func:`finish_chroma`, then ``codes.c_from_unit``. On a CPU both
    steps are one OpenCV pass (:func:`~filmcolor.video.chroma_cpu.finish_codes_cv2`)."""
    if ab.device.type == "cpu":
        from .video.chroma_cpu import finish_codes_cv2

        return finish_codes_cv2(L[0, 0].float().numpy(), ab[0].float().numpy(), guide_lo[0, 0].float().numpy(),
                                guide_hi[0, 0].float().numpy(), matrix, codes, dtype)
    planes = codes.c_from_unit(finish_chroma(L, ab, guide_lo, guide_hi, matrix)[0]).cpu().numpy().astype(dtype)
    return planes[0], planes[1]


def chroma_from_luma(infer: Infer, L: torch.Tensor, guide_lo: torch.Tensor, guide_hi: torch.Tensor,
                     matrix: YCbCrMatrix, *, gain: float = 1.0, guidance: Guidance = None, guided: bool = False,
                     temporal: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
    """Luminance -> chroma at output resolution, for one batch: ``finish_chroma(temporal(predict_ab(...)))``.

    Shapes as in :func:`predict_ab` and :func:`finish_chroma`; returns (Cb, Cr) ``[N,2,H,W]`` in [-0.5, 0.5].
    ``temporal(L, ab) -> ab`` is a zero-delay temporal step (None: frames independent); streams whose
    temporal stage holds frames back use :class:`FramePredictor`, which runs the same steps.
    """
    with torch.inference_mode():
        ab = predict_ab(infer, L, gain=gain, guidance=guidance, guided=guided)
        if temporal is not None:
            ab = temporal(L.to(ab.device), ab)
        return finish_chroma(L, ab, guide_lo, guide_hi, matrix)


class TemporalStage(Protocol):
    """A stateful a,b stage between the model and the chroma finish (the smoother, a propagator).

    Every frame pushed comes out exactly once, in order, ``latency`` pushes later or from ``flush``.
    """

    latency: int

    def push(self, L: torch.Tensor, ab: torch.Tensor) -> list[torch.Tensor]: ...  # [1,h,w], [2,h,w] -> [[2,h,w]]

    def flush(self) -> list[torch.Tensor]: ...

    def reset(self) -> None: ...


class FramePredictor:
    """Per-frame a,b at render size, in push order: engine (batched) -> temporal stage.

    ``push(L, guidance)`` takes one frame's L ``[1,h,w]`` (Lab units) and returns the a,b ``[2,h,w]`` of the
    frames that are ready (oldest first); ``flush()`` returns the rest. This is the one place that decides
    how a frame's a,b is made, so it is the hook for keyframe inference and propagation: a subclass (or any
    object with ``push``/``flush``/``reset``/``latency``) may skip the engine on some frames and carry a,b
    from a keyframe instead; :meth:`~filmcolor.colorizer.Colorizer.frame_predictor` says which one a clip gets.
    """

    def __init__(self, predictor: Predictor, temporal: TemporalStage | None = None) -> None:
        self.p, self.temporal = predictor, temporal
        self.batch = max(1, int(predictor.batch))
        self._pending: list[tuple[torch.Tensor, Guidance]] = []

    @property
    def latency(self) -> int:
        return (self.temporal.latency if self.temporal is not None else 0) + self.batch - 1

    def push(self, L: torch.Tensor, guidance: GuidanceSource = None) -> list[torch.Tensor]:
        self._pending.append((L, resolve_guidance(guidance, L.reshape(1, 1, *L.shape[-2:]).to(self.p.device))))
        return self._run() if len(self._pending) >= self.batch else []

    def flush(self) -> list[torch.Tensor]:
        out = self._run() if self._pending else []
        if self.temporal is not None:
            out += self.temporal.flush()
        return out

    def reset(self) -> None:
        """A scene cut known to the caller: forget temporal state (frames held back still come out)."""
        if self.temporal is not None:
            self.temporal.reset()

    def _run(self) -> list[torch.Tensor]:
        pending, self._pending = self._pending, []
        L = torch.stack([frame for frame, _ in pending])
        with torch.inference_mode():
            ab = predict_ab(self.p.infer, L, gain=self.p.gain, guidance=_stack_guidance([g for _, g in pending], L),
                            guided=self.p.guided)
            if self.temporal is None:
                return list(ab)
            L = L.to(ab.device)
            return [out for i in range(len(pending)) for out in self.temporal.push(L[i], ab[i])]


def _stack_guidance(items: list[Guidance], L: torch.Tensor) -> Guidance:
    """Per-frame guidance -> one batch (frames without guidance get a zero mask); None when none has any."""
    if all(g is None for g in items):
        return None
    n, _, h, w = L.shape
    hint, mask = torch.zeros(n, 2, h, w), torch.zeros(n, 1, h, w)
    for i, g in enumerate(items):
        if g is not None:
            hint[i], mask[i] = g[0].reshape(2, h, w), g[1].reshape(1, h, w)
    return hint, mask
