"""The colorizer: model + engine + temporal smoother, turning luma planes into chroma planes.

``Colorizer`` holds what is expensive to set up (weights, engine session). ``ChromaStream`` is one
pass over one clip: Y planes go in in display order, (Cb, Cr) planes come out in the same order,
delayed by the smoother's look-ahead. Both are thin layers over :mod:`filmcolor.inference`, the one
inference path; nothing here touches the luma: it is passed through by callers.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

import cv2
import numpy as np
import torch

from .color import YCbCrMatrix, luma_to_lab_l_lut
from . import startup
from .cpu import opencv_threads, torch_threads
from .inference import FramePredictor, Guidance, GuidanceSource, Predictor, finish_codes, predict_ab
from .models import load_model
from .render import DEFAULT_RENDER_SIZE, render_shape
from .video.formats import PlanarYUV

SMOOTHING_MODES = ("window", "stream", "off")

Finish = Callable[[], tuple[np.ndarray, np.ndarray]]
"""A frame's chroma finish still to run: returns its (Cb, Cr) code planes."""


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
    keyframes: str = "auto"          # all | auto | N: frames the model runs on (see filmcolor.temporal.keyframes)


class Colorizer:
    """Loads a model into an engine once; makes :class:`ChromaStream` objects for clips."""

    def __init__(self, options: ColorizerOptions | None = None, **kw: Any) -> None:
        from .engines import create_engine

        self.options = options or ColorizerOptions(**kw)
        if self.options.smoothing not in SMOOTHING_MODES:
            raise ValueError(f"smoothing must be one of {SMOOTHING_MODES}, got {self.options.smoothing!r}")
        model, self.config = load_model(self.options.model)
        self.render_size = self.options.render_size or self.config.render_size or DEFAULT_RENDER_SIZE
        # render_sizes: engines that build per shape (TensorRT) make their profile around this render size
        self.engine = create_engine(self.options.engine, model, self.config, device=self.options.device,
                                    batch=self.options.batch, threads=self.options.threads,
                                    render_sizes=(self.render_size,))
        self.device = torch.device(self.engine.capabilities.device)
        self.gain = self.options.saturation * self.config.chroma_gain
        from .temporal.keyframes import KeyframePolicy

        self.keyframes = KeyframePolicy.parse(self.options.keyframes)
        self.model_frames = 0  # frames the engine has run on (keyframe inference skips some)
        startup.settled()  # the heavy start-up is over (console script only)

    def streaming_threads(self):
        """The thread setting of a run that streams frames through this colorizer (the file pipeline, the
        pipe): OpenCV on one thread on a CPU (:func:`~filmcolor.cpu.opencv_threads`), unchanged elsewhere.
        Process-wide, so it covers the runner's decoding and encoding threads too."""
        return opencv_threads(1 if self.device.type == "cpu" else None)

    def describe(self) -> str:
        return f"{self.config.name} @ {self.render_size}px on {self.engine.describe()}"

    def new_smoother(self, causal: bool = False):
        mode = "stream" if causal and self.options.smoothing == "window" else self.options.smoothing
        if mode == "off":
            return None
        from .temporal import TemporalSmoother

        return TemporalSmoother(strength=self.options.smoothing_strength, window=self.options.window if mode == "window" else 0,
                                device=self.device)

    @property
    def predictor(self) -> Predictor:
        """This colorizer as the inference path sees it: the engine, render size, gain, batch."""
        caps = self.engine.capabilities
        return Predictor(self._infer, self.render_size, self.engine.size_multiple, self.gain,
                         max(1, caps.preferred_batch), self.device, guided=self.engine.accepts_guidance,
                         prepare=self.engine.prepare)

    def frame_predictor(self, causal: bool = False) -> FramePredictor:
        """How a clip's frames get their a,b: engine, then the temporal smoother; with ``keyframes`` other
        than ``all`` the engine runs on keyframes only and the rest carry a,b along the flow."""
        if self.keyframes.every_frame:
            return FramePredictor(self.predictor, self.new_smoother(causal))
        from .temporal.keyframes import KeyframePredictor

        return KeyframePredictor(self.predictor, self.keyframes, self.new_smoother(causal))

    def stream(self, width: int, height: int, layout: PlanarYUV, matrix: YCbCrMatrix, *, causal: bool = False) -> "ChromaStream":
        """A :class:`ChromaStream` for one clip of this size and layout (``causal``: no look-ahead)."""
        return ChromaStream(self.predictor, width, height, layout, matrix, frames=self.frame_predictor(causal))

    def _infer(self, L: torch.Tensor, guidance: Guidance = None) -> torch.Tensor:
        self.model_frames += int(L.shape[0])
        if guidance is not None:
            guidance = (guidance[0].to(self.device), guidance[1].to(self.device))
        return self.engine.infer(L.to(self.device), guidance)  # the engine sets its own threads

    def infer_L(self, L: torch.Tensor) -> torch.Tensor:
        """L ``[N,1,h,w]`` at render size (any device) -> a,b on the engine's device, gain applied."""
        self.engine.prepare(*L.shape[-2:])
        return predict_ab(self._infer, L, gain=self.gain)  # automatic: no guidance

    def close(self) -> None:
        self.engine.close()


class ChromaStream:
    """One clip: ``push(y, tag)`` returns ``[(tag, cb, cr), ...]`` ready so far, in order; ``flush()`` the rest.

    The code-plane wrapper of the one inference path (:mod:`filmcolor.inference`): integer Y' planes of
    ``layout`` in, integer Cb/Cr planes of ``layout`` out. A frame's a,b at render size come from
    ``frames`` (engine -> temporal stage, see :class:`~filmcolor.inference.FramePredictor`); the chroma
    finish is :func:`~filmcolor.inference.finish_codes` (:func:`~filmcolor.inference.finish_chroma` to codes), guided by the frame's own luma.
    """

    def __init__(self, predictor: Predictor, width: int, height: int, layout: PlanarYUV, matrix: YCbCrMatrix,
                 *, frames: FramePredictor | None = None) -> None:
        self.layout, self.matrix = layout, matrix
        self.width, self.height = width, height
        self.rh, self.rw = render_shape(height, width, predictor.render_size, predictor.multiple)
        self.cw, self.ch = layout.chroma_size(width, height)
        self.lut = luma_to_lab_l_lut(layout.code_range).numpy()
        self.y_scale = float((1 << layout.bits) - 1)
        self.frames = frames if frames is not None else FramePredictor(predictor)
        if predictor.prepare is not None:
            predictor.prepare(self.rh, self.rw)  # engines that build per shape do it now, not mid-stream
        self.on_cpu = predictor.device.type == "cpu"
        self._waiting: deque = deque()  # pushed, a,b not yet back: (tag, L, y_lo, y_hi)

    @property
    def latency(self) -> int:
        """Pushes between a frame going in and its chroma coming out."""
        return self.frames.latency

    @property
    def render_hw(self) -> tuple[int, int]:
        """(h, w) where the model runs: the size guidance must have."""
        return self.rh, self.rw

    def reset(self) -> None:
        """Scene cut known to the caller: forget temporal state."""
        self.frames.reset()

    def push(self, y: np.ndarray, tag: Any = None, guidance: GuidanceSource = None) -> list[tuple[Any, np.ndarray, np.ndarray]]:
        """Queue the luma plane ``y`` ``[H,W]`` (integer codes of the layout's depth); optional guidance."""
        return [(tag, *finish()) for tag, finish in self.push_deferred(y, tag, guidance)]

    def push_deferred(self, y: np.ndarray, tag: Any = None, guidance: GuidanceSource = None) -> list[tuple[Any, Finish]]:
        """:meth:`push` with each ready frame's chroma finish left to do: ``[(tag, finish), ...]``, where
        ``finish()`` returns ``(cb, cr)``. The file pipeline runs it in its encoding thread, so on two
        cores the finish of one frame overlaps the flow and model of the next. Call each in order, once."""
        with torch_threads(1 if self.on_cpu else None):
            return self._push(y, tag, guidance)

    def render_L(self, y: np.ndarray) -> np.ndarray:
        """The luma plane ``y`` ``[H,W]`` -> Lab L ``[h,w]`` float32 at render size, as :meth:`push` makes it
        (reference pre-passes use it so their flow sees the stream's own pixels)."""
        return self.lut[self._downscale(y)[0]]

    def _downscale(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(luma at render size, luma at chroma-plane size), area-averaged. With subsampled chroma the
        render-size plane is made from the chroma-size one: an exact 2:1 area step first is 5x cheaper
        than one odd-ratio step from full size (720p: 0.65 + ~0.5 ms against 3.6)."""
        if (self.cw, self.ch) == (self.width, self.height):
            return cv2.resize(y, (self.rw, self.rh), interpolation=cv2.INTER_AREA), y
        y_hi = cv2.resize(y, (self.cw, self.ch), interpolation=cv2.INTER_AREA)
        src = y_hi if (self.cw >= self.rw and self.ch >= self.rh) else y
        return cv2.resize(src, (self.rw, self.rh), interpolation=cv2.INTER_AREA), y_hi

    def _push(self, y: np.ndarray, tag: Any, guidance: GuidanceSource) -> list[tuple[Any, Finish]]:
        y_lo, y_hi = self._downscale(y)
        L = torch.from_numpy(self.lut[y_lo])[None]
        self._waiting.append((tag, L, y_lo, y_hi))
        return [self._finisher(ab) for ab in self.frames.push(L, guidance)]

    def flush(self) -> list[tuple[Any, np.ndarray, np.ndarray]]:
        return [(tag, *finish()) for tag, finish in self.flush_deferred()]

    def flush_deferred(self) -> list[tuple[Any, Finish]]:
        """:meth:`flush` as :meth:`push_deferred` gives frames."""
        with torch_threads(1 if self.on_cpu else None):
            return [self._finisher(ab) for ab in self.frames.flush()]

    def _finisher(self, ab: torch.Tensor) -> tuple[Any, Finish]:
        tag, L, y_lo, y_hi = self._waiting.popleft()
        return tag, lambda: self._finish(L, ab, y_lo, y_hi)

    def _finish(self, L: torch.Tensor, ab: torch.Tensor, y_lo: np.ndarray, y_hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        inv = np.float32(1.0 / self.y_scale)
        g_lo = torch.from_numpy(np.multiply(y_lo, inv, dtype=np.float32))[None, None]
        g_hi = torch.from_numpy(np.multiply(y_hi, inv, dtype=np.float32))[None, None]
        with torch.inference_mode():
            return finish_codes(L[None], ab[None], g_lo, g_hi, self.matrix, self.layout.code_range, self.layout.dtype)
