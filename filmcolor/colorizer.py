"""The colorizer: model + engine + temporal smoother, turning luma planes into chroma planes.

``Colorizer`` holds what is expensive to set up (weights, engine session). ``ChromaStream`` is one
pass over one clip: Y planes go in in display order, (Cb, Cr) planes come out in the same order,
delayed by the smoother's look-ahead. Nothing here touches the luma: it is passed through by callers.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch

from .color import YCbCrMatrix, luma_to_lab_l_lut
from .models import load_model
from .render import DEFAULT_RENDER_SIZE, render_shape
from .video.chroma import fast_guided_upsample, lab_to_chroma
from .video.formats import PlanarYUV

SMOOTHING_MODES = ("window", "stream", "off")


@dataclass
class ColorizerOptions:
    model: str = "default"
    engine: str = "auto"
    device: str | None = None
    render_size: int | None = None   # None: the model's own render size
    saturation: float = 1.0          # multiplies a,b on top of the model's calibrated chroma gain
    smoothing: str = "window"        # window (look-ahead, files), stream (causal), off
    smoothing_strength: float = 0.7
    window: int = 2
    batch: int | None = None
    threads: int | None = None       # CPU threads of the engine (None: all this process may use)
    keyframes: str = "all"           # all | auto | N: frames the model runs on (see filmcolor.temporal.keyframes)


class Colorizer:
    """Loads a model into an engine once; makes :class:`ChromaStream` objects for clips."""

    def __init__(self, options: ColorizerOptions | None = None, **kw: Any) -> None:
        from .engines import create_engine

        self.options = options or ColorizerOptions(**kw)
        if self.options.smoothing not in SMOOTHING_MODES:
            raise ValueError(f"smoothing must be one of {SMOOTHING_MODES}, got {self.options.smoothing!r}")
        model, self.config = load_model(self.options.model)
        self.render_size = self.options.render_size or self.config.render_size or DEFAULT_RENDER_SIZE
        engine_opts: dict[str, Any] = {"batch": self.options.batch}
        if self.options.threads:
            engine_opts["threads"] = self.options.threads
        if self.options.engine == "tensorrt":  # build the optimization profile around this render size
            engine_opts["render_sizes"] = (self.render_size,)
        self.engine = create_engine(self.options.engine, model, self.config, device=self.options.device, **engine_opts)
        self.device = torch.device(self.engine.capabilities.device)
        self.gain = self.options.saturation * self.config.chroma_gain
        from .temporal.keyframes import KeyframePolicy

        self.keyframes = KeyframePolicy.parse(self.options.keyframes)
        self.model_frames = 0  # frames the model has run on (keyframe inference skips some)

    def describe(self) -> str:
        return f"{self.config.name} @ {self.render_size}px on {self.engine.describe()}"

    def new_smoother(self, causal: bool = False):
        mode = "stream" if causal and self.options.smoothing == "window" else self.options.smoothing
        if mode == "off":
            return None
        from .temporal import TemporalSmoother

        return TemporalSmoother(strength=self.options.smoothing_strength, window=self.options.window if mode == "window" else 0,
                                device=self.device)

    def stream(self, width: int, height: int, layout: PlanarYUV, matrix: YCbCrMatrix, *, causal: bool = False) -> "ChromaStream":
        return ChromaStream(self, width, height, layout, matrix, causal=causal)

    def infer_L(self, L: torch.Tensor) -> torch.Tensor:
        """L ``[N,1,h,w]`` at render size (any device) -> a,b on the engine's device, gain applied."""
        self.model_frames += int(L.shape[0])
        return self.engine.infer(L.to(self.device)) * self.gain

    def close(self) -> None:
        self.engine.close()


class _Keyed:
    """Keyframe inference for one clip: motion tracked once per frame, shared with the smoother."""

    def __init__(self, colorizer: Colorizer) -> None:
        from .temporal.keyframes import KeyframeInference
        from .temporal.motion import MotionTracker

        self.tracker = MotionTracker()
        self.inference = KeyframeInference(colorizer.keyframes, colorizer.infer_L)

    def reset(self) -> None:
        self.tracker.reset()
        self.inference.reset()

    def __call__(self, L: torch.Tensor):
        """L ``[1,1,h,w]`` on the engine's device -> (Motion, a,b ``[1,2,h,w]``)."""
        motion = self.tracker(L)
        return motion, self.inference(L, motion)


class ChromaStream:
    """One clip: ``push(y, tag)`` returns ``[(tag, cb, cr), ...]`` ready so far, in order; ``flush()`` the rest."""

    def __init__(self, colorizer: Colorizer, width: int, height: int, layout: PlanarYUV, matrix: YCbCrMatrix,
                 *, causal: bool = False) -> None:
        self.c, self.layout, self.matrix = colorizer, layout, matrix
        self.width, self.height = width, height
        multiple = colorizer.engine.size_multiple
        self.rh, self.rw = render_shape(height, width, colorizer.render_size, multiple)
        self.cw, self.ch = layout.chroma_size(width, height)
        self.lut = luma_to_lab_l_lut(layout.code_range).numpy()
        self.y_scale = float((1 << layout.bits) - 1)
        self.smoother = colorizer.new_smoother(causal)
        self.batch = max(1, colorizer.engine.capabilities.preferred_batch)
        self.keyed = None if colorizer.keyframes.every_frame else _Keyed(colorizer)
        if self.keyed is not None:
            self.batch = 1  # the model runs on the frames the policy picks, one at a time
        self._pending: list[tuple[Any, np.ndarray, np.ndarray]] = []  # waiting for inference
        self._waiting: deque = deque()  # inferred, waiting for the smoother: (tag, L, y_lo, y_hi)

    @property
    def latency(self) -> int:
        return (self.smoother.latency if self.smoother else 0) + self.batch - 1

    def reset(self) -> None:
        """Scene cut known to the caller: forget temporal state."""
        if self.smoother is not None:
            self.smoother.reset()
        if self.keyed is not None:
            self.keyed.reset()

    def push(self, y: np.ndarray, tag: Any = None) -> list[tuple[Any, np.ndarray, np.ndarray]]:
        """Queue the luma plane ``y`` ``[H,W]`` (integer codes of the layout's depth)."""
        y_lo = cv2.resize(y, (self.rw, self.rh), interpolation=cv2.INTER_AREA)
        y_hi = y if (self.cw, self.ch) == (self.width, self.height) else cv2.resize(
            y, (self.cw, self.ch), interpolation=cv2.INTER_AREA)
        self._pending.append((tag, y_lo, y_hi))
        return self._run() if len(self._pending) >= self.batch else []

    def flush(self) -> list[tuple[Any, np.ndarray, np.ndarray]]:
        out = self._run() if self._pending else []
        if self.smoother is not None:
            out += [self._finish(ab) for ab in self.smoother.flush()]
        return out

    def _run(self) -> list[tuple[Any, np.ndarray, np.ndarray]]:
        pending, self._pending = self._pending, []
        L = torch.from_numpy(np.stack([self.lut[y_lo] for _, y_lo, _ in pending]))[:, None]
        motion = None
        if self.keyed is None:
            ab = self.c.infer_L(L)
            L = L.to(ab.device)
        else:
            L = L.to(self.c.device)
            motion, ab = self.keyed(L)
        out = []
        for i, (tag, y_lo, y_hi) in enumerate(pending):
            self._waiting.append((tag, L[i], y_lo, y_hi))
            if self.smoother is None:
                out.append(self._finish(ab[i]))
            else:
                out += [self._finish(a) for a in self.smoother.push(L[i], ab[i], motion)]
        return out

    def _finish(self, ab: torch.Tensor) -> tuple[Any, np.ndarray, np.ndarray]:
        tag, L, y_lo, y_hi = self._waiting.popleft()
        dev = ab.device
        cbcr = lab_to_chroma(L[None], ab[None], self.matrix)
        g_lo = torch.from_numpy(y_lo.astype(np.float32)).to(dev)[None, None] / self.y_scale
        g_hi = torch.from_numpy(y_hi.astype(np.float32)).to(dev)[None, None] / self.y_scale
        cbcr = fast_guided_upsample(cbcr, g_lo, g_hi)
        codes = self.layout.code_range.c_from_unit(cbcr[0]).cpu().numpy().astype(self.layout.dtype)
        return tag, codes[0], codes[1]
