"""int8 ONNX graphs for CPUs: ONNX Runtime static quantisation (QDQ), calibrated and cached.

Weights are quantised per output channel (int8 holding 7-bit values: ``reduce_range``), activations
per tensor (uint8) with ranges measured (min/max) on calibration frames: the packaged ``calibration.mp4``, 15 grey frames of Big Buck Bunny
(CC-BY 3.0, Blender Foundation) at 448x256, or frames the caller passes. On 2 CPU cores the default
model ran 1.4-1.5x faster than float32. Cartoon frames have narrower activation ranges than photos, so
colour comes out a little muted (300 val images: colourfulness 57% of the truth vs 60% in float32,
CIEDE2000 0.980 vs 0.991 of the grey baseline); calibrating on the footage itself narrows that. The
result differs from float32 by about one Lab unit, so it is an engine one asks for, not part of the
automatic choice.

Why 7-bit weights: on x86 CPUs without VNNI (AVX2 only, e.g. the AMD EPYC machines this project also
runs on) ONNX Runtime's u8 x s8 kernels add pairs of products in 16 bits, which saturate with full 8-bit
weights: on such a machine (AMD EPYC, AVX2) the conformance suite's tiny generator came out 0.68 Lab
units from float32 on average (0.095-0.097 on the machines of earlier sessions) and failed. ONNX Runtime
documents ``reduce_range`` for this case; with it, the same machine: mean 0.102, p99 0.33, max 2.9-4.4
(4 seeds); the default model: mean 0.33-0.35, p99 about 1.0 (3 seeds).

A model with guidance inputs has a second graph (L, hint a,b, mask); its int8 version is calibrated on
the same frames, each fed once without guidance and once with synthetic hints (random patches of
random in-gamut colours, a fixed seed), so the guidance branch's activation ranges are measured too.

The quantised file is cached beside the float32 export under a key covering the float32 graph's bytes,
the calibration inputs, the onnxruntime version and this recipe's version; one process builds it
(file lock), the file appears atomically.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from filmcolor.color import CodeRange, luma_to_lab_l_lut
from filmcolor.fs import FileLock, atomic_write

from .export import ONNX_GUIDANCE, ONNX_INPUT

QUANT_VERSION = 2  # bump when the recipe below changes: invalidates cached int8 graphs
CALIBRATION_CLIP = "calibration.mp4"


def _clip_path(clip: str | os.PathLike | None) -> Path:
    """``clip``, or the packaged calibration clip when None."""
    return Path(clip) if clip else Path(str(resources.files("filmcolor.weights") / CALIBRATION_CLIP))


def calibration_frames(clip: str | os.PathLike | None = None, limit: int = 16) -> list[np.ndarray]:
    """Lab L ``[1,1,H,W]`` float32 of up to ``limit`` frames of ``clip`` (default: the packaged one).

    Frames are decoded as grey (sRGB-encoded, full range) and converted exactly as a neutral grey.
    """
    import av

    path = _clip_path(clip)
    lut = luma_to_lab_l_lut(CodeRange(8, full=True)).numpy()   # code -> Lab L of that neutral grey
    frames = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            frames.append(lut[frame.to_ndarray(format="gray")][None, None])
            if len(frames) >= limit:
                break
    if not frames:
        raise ValueError(f"calibration clip {str(path)!r} has no video frames")
    return frames


Feed = dict[str, np.ndarray]


def calibration_feeds(frames: Sequence[np.ndarray], guided: bool = False, seed: int = 0) -> list[Feed]:
    """The calibration inputs of a graph: ``{"L": frame}`` per frame; for a guided graph each frame twice,
    with an empty mask and with 2-40 patches (3-24 px) of random colours (|a|, |b| <= 80), fixed ``seed``."""
    feeds: list[Feed] = []
    rng = np.random.default_rng(seed)
    for f in frames:
        if not guided:
            feeds.append({ONNX_INPUT: f})
            continue
        n, _, h, w = f.shape
        hint, mask = np.zeros((n, 2, h, w), np.float32), np.zeros((n, 1, h, w), np.float32)
        feeds.append({ONNX_INPUT: f, ONNX_GUIDANCE[0]: hint, ONNX_GUIDANCE[1]: mask})
        hint, mask = hint.copy(), mask.copy()
        for _ in range(int(rng.integers(2, 41))):
            s = int(rng.integers(3, 25))
            y, x = int(rng.integers(0, max(1, h - s))), int(rng.integers(0, max(1, w - s)))
            hint[:, :, y:y + s, x:x + s] = rng.uniform(-80, 80, (1, 2, 1, 1))
            mask[:, :, y:y + s, x:x + s] = rng.uniform(0.3, 1.0)
        feeds.append({ONNX_INPUT: f, ONNX_GUIDANCE[0]: hint, ONNX_GUIDANCE[1]: mask})
    return feeds


def _feeds_digest(feeds: Sequence[Feed]) -> bytes:
    """Digest of calibration given as arrays (names, shapes, values)."""
    h = hashlib.sha256()
    for feed in feeds:
        for name in sorted(feed):
            h.update(f"{name}{feed[name].shape}|".encode())
            h.update(np.ascontiguousarray(feed[name], dtype=np.float32).tobytes())
    return h.digest()


def _key(fp32_path: str | os.PathLike, calibration: bytes) -> str:
    """The recipe, onnxruntime's version, the float32 graph's bytes and a digest of the calibration."""
    import onnxruntime

    h = hashlib.sha256()
    h.update(f"v{QUANT_VERSION}|ort {onnxruntime.__version__}|".encode())
    h.update(Path(fp32_path).read_bytes())
    h.update(calibration)
    return h.hexdigest()


def _int8_path(fp32_path: str | os.PathLike, calibration: bytes) -> Path:
    """Where the int8 graph of ``fp32_path`` for this calibration digest is cached."""
    fp32_path = Path(fp32_path)
    return fp32_path.parent.parent / "onnx-int8" / f"{fp32_path.stem}-int8-{_key(fp32_path, calibration)[:20]}.onnx"


def int8_path_for(fp32_path: str | os.PathLike, feeds: Sequence[Feed]) -> Path:
    return _int8_path(fp32_path, _feeds_digest(feeds))


def _reader(feeds: Iterable[Feed]):
    """An onnxruntime ``CalibrationDataReader`` giving one input dict at a time."""
    from onnxruntime.quantization import CalibrationDataReader

    class Feeds(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(feeds)

        def get_next(self) -> dict | None:
            return next(self._it, None)

    return Feeds()


def quantize_int8(fp32_path: str | os.PathLike, dst: str | os.PathLike, feeds: Sequence[Feed]) -> Path:
    """Write the int8 (QDQ) version of ``fp32_path`` to ``dst`` (atomically), calibrated on ``feeds``."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    def write(tmp: Path) -> None:
        with tempfile.TemporaryDirectory(prefix="filmcolor-quant-") as work:
            pre = Path(work) / "pre.onnx"
            # folds constants and infers shapes so every Conv gets a quantisation node
            quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=True)
            quantize_static(str(pre), str(tmp), _reader(feeds), quant_format=QuantFormat.QDQ, per_channel=True,
                            reduce_range=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)

    return atomic_write(dst, write)


@dataclass(frozen=True)
class Calibration:
    """Where the calibration frames come from: ``clip`` (None: the packaged one), its first ``limit`` frames.

    The cache key covers the clip's bytes, not its decoded frames, so a process that finds its int8 graph
    cached neither decodes nor converts the clip (that was ~0.2 s of every start-up)."""

    clip: str | os.PathLike | None = None
    limit: int = 16

    def path(self) -> Path:
        return _clip_path(self.clip)

    def key(self) -> str:
        """Hex key of the frames this gives (the clip's bytes and ``limit``); FileNotFoundError if missing."""
        path = self.path()
        if not path.is_file():
            raise FileNotFoundError(f"calibration clip {str(path)!r} does not exist")
        return hashlib.sha256(f"clip|{self.limit}|".encode() + path.read_bytes()).hexdigest()

    def frames(self) -> list[np.ndarray]:
        return calibration_frames(self.path(), self.limit)


def ensure_int8(fp32_path: str | os.PathLike, frames: Sequence[np.ndarray] | Calibration | None = None, *,
                guided: bool = False) -> Path:
    """The cached int8 graph of the float32 ONNX file ``fp32_path`` (``guided``: its inputs are L, hint
    a,b and mask), built first if missing. ``frames``: calibration frames, or a :class:`Calibration`
    (None: the packaged clip), decoded only if the graph must be built."""
    if isinstance(frames, Calibration) or frames is None:
        source = frames or Calibration()
        path = _int8_path(fp32_path, f"{source.key()}|guided={guided}".encode())
        make_feeds = lambda: calibration_feeds(source.frames(), guided)  # noqa: E731
    else:
        feeds = calibration_feeds(list(frames), guided)
        path, make_feeds = int8_path_for(fp32_path, feeds), lambda: feeds  # noqa: E731
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(path.with_name(path.name + ".lock"), timeout=1800):
        if not path.exists():  # another process may have built it while we waited
            quantize_int8(fp32_path, path, make_feeds())
    return path
