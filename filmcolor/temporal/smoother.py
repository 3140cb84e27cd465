"""Temporal smoothing of predicted chroma: removes frame-to-frame colour flicker without ghosting.

The model colours each frame on its own, so a,b flicker while the luminance (passed through from the
source) is stable. The smoother follows the motion of the luminance with optical flow and blends each
frame's a,b with its neighbours' where the motion is trustworthy:

- confidence per pixel = forward/backward flow consistency x luminance agreement of the warped neighbour
  x inside-the-frame; where an object uncovers background or the flow fails, the frame keeps its own colour
  (no ghosting);
- streaming (``window=0``, causal, no delay): recursive, ``out_t = ab_t + s c (warp(out_{t-1}) - ab_t)``;
- windowed (``window=k``, delay k): confidence-weighted mean of the frames t-k..t+k warped onto t along
  chained flows, plus frame t itself;
- scene cuts (see :mod:`.scenecut`) end a shot: nothing is blended across one, in either direction.

It runs at ``work_scale`` of the render size (half by default) and adds the resulting low-frequency
correction to the full-resolution a,b, so the frame's own chroma detail survives and the cost stays at a
few milliseconds per frame on a CPU. Flow is computed by OpenCV on the CPU; everything else is torch on
``device``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..cpu import torch_threads
from .flow import (FlowEstimator, Warper, box3, compose, fb_confidence, flow_tensor, luma_confidence, luma_u8, resize,
                   resize_flow, scaled_size)
from .scenecut import DEFAULT_SCENE_THRESHOLD, SceneCutDetector

if TYPE_CHECKING:
    from .motion import Motion


@dataclass(eq=False)
class _Frame:
    seq: int                       # internal running number (never reset)
    shot: int
    dtype: torch.dtype             # dtype the caller gave, for the output
    ab: torch.Tensor               # [2, h, w] float32 on the device
    ab_w: torch.Tensor             # [1, 2, hw, ww] at working size
    L_w: torch.Tensor              # [1, 1, hw, ww]
    u8: np.ndarray | None          # [hw, ww] uint8 luma for the flow (None: the caller gives the motion)
    flow_b: torch.Tensor | None = None   # this -> previous frame of the same shot, [1, 2, hw, ww] px
    conf_b: torch.Tensor | None = None
    flow_f: torch.Tensor | None = None   # this -> next frame of the same shot
    conf_f: torch.Tensor | None = None
    out_w: torch.Tensor | None = None    # streaming: the smoothed a,b at working size (the recursion state)
    given: tuple[torch.Tensor, torch.Tensor] | None = None  # caller's flows this -> previous, previous -> this
    span: int | None = None              # keyframe inference: the keyframe this frame's colour was carried from


class TemporalSmoother:
    """Flow-guided temporal smoothing of a,b at render size; see the module docstring.

    ``push(L, ab)`` takes one frame (``L`` ``[1,h,w]`` in 0..100, ``ab`` ``[2,h,w]``) and returns the
    frames that are ready, oldest first, as ``[2,h,w]`` tensors on ``device`` (the input's device when
    None) in the input's dtype. Every pushed frame comes out exactly once, in order: streaming mode
    returns it at once, windowed mode ``latency`` = ``window`` frames later or from ``flush()``.

    ``cpu_threads``: torch intra-op threads while smoothing on the CPU; the previous setting is restored
    after each call. The tensors are small, so parallel regions cost more than they save, and on a busy
    machine (training alongside) waiting for a second thread made a frame 10-100x slower. The setting is
    process-wide while a call runs: pass None to leave torch alone when other threads run torch CPU work
    at the same time (the video pipeline runs the model and the smoother in one thread).
    """

    def __init__(self, *, strength: float = 0.7, window: int = 0, scene_threshold: float = DEFAULT_SCENE_THRESHOLD,
                 device: torch.device | str | None = None, flow: str = "dis", work_scale: float = 0.5,
                 luma_sigma: float = 5.0, correction_blur: int = 2, cpu_threads: int | None = 1) -> None:
        if not 0.0 <= strength <= 1.0:
            raise ValueError(f"strength must be in [0, 1], got {strength}")
        if window < 0:
            raise ValueError(f"window must be >= 0, got {window}")
        self.strength = float(strength)
        self.window = int(window)
        self.device = torch.device(device) if device is not None else None
        self.work_scale = float(work_scale)
        self.luma_sigma = float(luma_sigma)
        self.correction_blur = int(correction_blur)
        self.cpu_threads = cpu_threads
        self._on_cpu = True
        self._flow = FlowEstimator(flow)
        self._warp = Warper()
        self._detector = SceneCutDetector(scene_threshold)
        self.cuts: list[int] = []
        self._seq = 0            # frames ever pushed
        self._count = 0          # frames pushed since the last reset(): the public frame index
        self._shot = 0
        self._new_shot = True    # the next frame starts a shot (start, reset(), flush())
        self._prev: _Frame | None = None          # streaming state
        self._buf: deque[_Frame] = deque()        # windowed: history + pending frames
        self._next_out = 0                        # windowed: seq of the next frame to return
        self._size: tuple[int, int] | None = None

    # ----------------------------------------------------------------------------------- public API
    @property
    def latency(self) -> int:
        """Frames of delay between a push and the output of that frame."""
        return self.window

    @property
    def scene_threshold(self) -> float:
        return self._detector.threshold

    def reset(self) -> None:
        """Forget the temporal state: the next frame starts a new shot, frame indices and ``cuts`` restart.

        Frames already pushed but not yet returned (windowed mode) are not dropped: they come out of the
        next ``push``/``flush``, smoothed only among themselves, so a caller that resets at a cut it knows
        of keeps its frame accounting.
        """
        self._detector.reset()
        self._new_shot = True
        self._prev = None
        self._count = 0
        self.cuts = []

    @torch.no_grad()
    def push(self, L: torch.Tensor, ab: torch.Tensor, motion: "Motion | None" = None,
             span: int | None = None) -> list[torch.Tensor]:
        """Add one frame; returns the frames ready now (see the class docstring).

        ``motion``: the frame's :class:`~filmcolor.temporal.motion.Motion` when the caller tracks it
        already (keyframe inference does): its scene-cut decision and flow to the previous frame (any
        size; resized to the working size here) replace the smoother's own, so the flow is computed once
        per frame. Give it for every frame or for none.

        ``span`` (windowed mode, keyframe inference): which keyframe the frame's colour was carried from.
        A frame whose whole window carries one keyframe's colour along the same flow comes out as it is:
        blending such frames only re-warps one colour (interpolation blur, no flicker to remove).
        """
        self._on_cpu = (self.device or ab.device).type == "cpu"
        with self._threads():
            return self._push(L, ab, motion, span)

    @torch.no_grad()
    def push_carried(self, L: torch.Tensor, ab: torch.Tensor, motion: "Motion") -> list[torch.Tensor]:
        """Streaming mode: a frame whose a,b were carried along the flow from the previous *output*
        (keyframe inference feeds the smoothed keyframe back to its propagator). It agrees with its past
        already, so it comes out as given and becomes the recursion's state: the next keyframe is blended
        towards it as usual. Saves the warp, the checks and the finish on every carried frame."""
        if self.window != 0:
            raise RuntimeError("push_carried is for streaming mode (window=0): windowed output is delayed")
        self._on_cpu = (self.device or ab.device).type == "cpu"
        with self._threads():
            fr = self._ingest(L, ab, motion)
            self._prev, fr.out_w = fr, fr.ab_w
            return [fr.ab.to(fr.dtype)]

    @torch.no_grad()
    def flush(self) -> list[torch.Tensor]:
        """End of stream: the frames still held back, in order. The next push starts a new shot."""
        with self._threads():
            return self._flush()

    def _threads(self):
        """``cpu_threads`` torch threads while smoothing on the CPU (unchanged elsewhere), then restored."""
        return torch_threads(self.cpu_threads if self._on_cpu else None)

    def _push(self, L: torch.Tensor, ab: torch.Tensor, motion: "Motion | None" = None,
              span: int | None = None) -> list[torch.Tensor]:
        fr = self._ingest(L, ab, motion)
        fr.span = span
        if self.window == 0:
            return [self._stream(fr)]
        if self._buf and self._buf[-1].shot == fr.shot:
            self._link(self._buf[-1], fr)
        self._buf.append(fr)
        out = []
        while self._buf and self._buf[-1].seq - self._next_out >= self.window:
            out.append(self._emit())
        return out

    def _flush(self) -> list[torch.Tensor]:
        out = []
        if self.window > 0:
            while self._buf and self._buf[-1].seq >= self._next_out:
                out.append(self._emit())
            self._buf.clear()
        self._prev = None
        self._detector.reset()
        self._new_shot = True
        return out

    def smooth_clip(self, L: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
        """Batch helper: L ``[T,1,h,w]``, ab ``[T,2,h,w]`` -> smoothed ab ``[T,2,h,w]`` (state is reset first)."""
        self.reset()
        outs: list[torch.Tensor] = []
        for i in range(L.shape[0]):
            outs += self.push(L[i], ab[i])
        outs += self.flush()
        return torch.stack(outs)

    # ----------------------------------------------------------------------------------- internals
    def _ingest(self, L: torch.Tensor, ab: torch.Tensor, motion: "Motion | None" = None) -> _Frame:
        dev = self.device or ab.device
        dtype = ab.dtype
        h, w = ab.shape[-2:]
        # copies: the state must not alias buffers the caller may reuse
        ab = ab.reshape(2, h, w).to(device=dev, dtype=torch.float32, copy=True)
        L = L.reshape(1, 1, *L.shape[-2:]).to(device=dev, dtype=torch.float32, copy=True)
        hw, ww = scaled_size(h, w, self.work_scale)
        if (h, w) != self._size:  # a new size cannot be warped onto the old one: start a shot
            self._size = (h, w)
            self._new_shot = True
            self._detector.reset()
        ab_w = resize(ab[None], (hw, ww), "area")
        L_w = resize(L, (hw, ww), "area")
        u8 = luma_u8(L_w) if motion is None else None
        if motion is None:
            cut = self._detector(u8)
        else:
            cut = motion.cut
            self._new_shot = self._new_shot or (motion.new_shot and not motion.cut)
        if cut and not self._new_shot:
            self.cuts.append(self._count)
        if cut or self._new_shot:
            self._shot += 1
            self._new_shot = False
        fr = _Frame(seq=self._seq, shot=self._shot, dtype=dtype, ab=ab, ab_w=ab_w, L_w=L_w, u8=u8)
        if motion is not None and motion.flow is not None and not (cut or self._new_shot):
            fr.given = (resize_flow(motion.flow.back, (hw, ww)), resize_flow(motion.flow.fwd, (hw, ww)))
        self._seq += 1
        self._count += 1
        return fr

    def _flows(self, a: _Frame, b: _Frame) -> tuple[torch.Tensor, torch.Tensor]:
        """(a -> b, b -> a) flows as tensors on a's device; ``a`` is the later frame (its given flows if any)."""
        if a.given is not None:
            return a.given
        dev = a.ab.device
        return flow_tensor(self._flow(a.u8, b.u8), dev), flow_tensor(self._flow(b.u8, a.u8), dev)

    def _finish(self, fr: _Frame, out_w: torch.Tensor) -> torch.Tensor:
        """Full-size output: the frame's a,b plus the smoothed, upsampled correction ``out_w - ab_w``.

        Blurring the correction (``correction_blur`` 3x3 passes at working size) keeps what flicker is made
        of, region-sized colour changes, and drops the fine-scale part, which is mostly interpolation blur
        and flow error at edges. On four sample clips without flicker it halved the colour error smoothing
        adds (CIEDE2000 +0.24 -> +0.11, windowed) and changed flicker removal by a few percent; pixel-scale
        chroma noise is left as it is (``correction_blur=0`` smooths that too).
        """
        corr = out_w - fr.ab_w
        for _ in range(self.correction_blur):
            corr = box3(corr)
        if corr.shape[-2:] != fr.ab.shape[-2:]:
            corr = resize(corr, tuple(fr.ab.shape[-2:]), "bilinear")
        res = fr.ab + corr[0]
        return res.to(fr.dtype)

    def _stream(self, fr: _Frame) -> torch.Tensor:
        prev, self._prev = self._prev, fr
        if prev is None or prev.shot != fr.shot or self.strength == 0.0:
            fr.out_w = fr.ab_w
            return fr.ab.to(fr.dtype)
        back, fwd = self._flows(fr, prev)  # back: this -> prev (to fetch prev's colour); fwd only for the check
        y, inside = self._warp(torch.cat((prev.out_w, prev.L_w, fwd), 1), back)
        conf = fb_confidence(back, y[:, 3:5]) * luma_confidence(y[:, 2:3], fr.L_w, inside, self.luma_sigma) * inside
        fr.out_w = fr.ab_w + (self.strength * conf) * (y[:, :2] - fr.ab_w)
        prev.out_w = None
        return self._finish(fr, fr.out_w)

    def _link(self, prev: _Frame, cur: _Frame) -> None:
        """Flows and consistency confidences between consecutive frames of one shot, both directions."""
        back, fwd = self._flows(cur, prev)
        y, inside = self._warp(torch.cat((fwd, back), 0), torch.cat((back, fwd), 0))
        cur.flow_b, cur.conf_b = back, fb_confidence(back, y[0:1]) * inside[0:1]
        prev.flow_f, prev.conf_f = fwd, fb_confidence(fwd, y[1:2]) * inside[1:2]

    def _emit(self) -> torch.Tensor:
        """Smooth and return the frame ``_next_out`` (it is in the buffer), then drop unneeded history."""
        out = self._window_frame(self._next_out - self._buf[0].seq)
        self._next_out += 1
        while self._buf and self._buf[0].seq < self._next_out - self.window:
            self._buf.popleft()
        return out

    def _one_span(self, p: int) -> bool:
        """True when every frame of the shot within ``window`` of buffer position ``p`` carries the colour of
        the same keyframe (see ``push``'s ``span``)."""
        buf, fr = self._buf, self._buf[p]
        if fr.span is None:
            return False
        near = range(max(0, p - self.window), min(len(buf), p + self.window + 1))
        return all(buf[q].span == fr.span for q in near if buf[q].shot == fr.shot)

    def _window_frame(self, p: int) -> torch.Tensor:
        buf, k, fr = self._buf, self.window, self._buf[p]
        base = min(self.strength, 0.95) / (1.0 - min(self.strength, 0.95))
        if base == 0.0 or self._one_span(p):
            return fr.ab.to(fr.dtype)
        # chains: [direction, buffer position of the neighbour, flow fr -> neighbour, confidence]
        chains = []
        for d, flow, conf in ((-1, fr.flow_b, fr.conf_b), (1, fr.flow_f, fr.conf_f)):
            if flow is not None and 0 <= p + d < len(buf):
                chains.append([d, p + d, flow, conf])
        picked: list[tuple[_Frame, torch.Tensor, torch.Tensor, float]] = []
        for j in range(1, k + 1):
            taper = (k + 1 - j) / k
            picked += [(buf[q], g, c, taper) for _, q, g, c in chains]
            if j == k:
                break
            ext = []
            for ch in chains:
                d, q = ch[0], ch[1]
                nb = buf[q]
                link = (nb.flow_b, nb.conf_b) if d < 0 else (nb.flow_f, nb.conf_f)
                if link[0] is not None and 0 <= q + d < len(buf):
                    ext.append((ch, link))
            if not ext:
                break
            g, c = compose(torch.cat([ch[2] for ch, _ in ext]), torch.cat([lk[0] for _, lk in ext]),
                           torch.cat([ch[3] for ch, _ in ext]), torch.cat([lk[1] for _, lk in ext]), self._warp)
            chains = [[ch[0], ch[1] + ch[0], g[i:i + 1], c[i:i + 1]] for i, (ch, _) in enumerate(ext)]
        if not picked:
            return fr.ab.to(fr.dtype)
        x = torch.cat([torch.cat((nb.ab_w, nb.L_w), 1) for nb, _, _, _ in picked])
        y, inside = self._warp(x, torch.cat([g for _, g, _, _ in picked]))
        conf = torch.cat([c for _, _, c, _ in picked])
        taper = torch.tensor([t for _, _, _, t in picked], device=x.device, dtype=x.dtype).view(-1, 1, 1, 1)
        wgt = base * taper * conf * inside * luma_confidence(y[:, 2:3], fr.L_w, inside, self.luma_sigma)
        out_w = (fr.ab_w + (wgt * y[:, :2]).sum(0, keepdim=True)) / (1.0 + wgt.sum(0, keepdim=True))
        return self._finish(fr, out_w)
