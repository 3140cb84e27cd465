"""Raw video frames as ``filmcolor pipe`` reads and writes them: pixel formats, frame layout, and the
conversion between a raw frame's bytes and the luma/chroma planes of the streaming pipeline.

Torch-free at import (the RGB and depth helpers load when frames flow), so ``filmcolor pipe --help``
and its usage errors answer at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from filmcolor.errors import FormatError

if TYPE_CHECKING:  # pragma: no cover - typing only
    from filmcolor.color import YCbCrMatrix
    from filmcolor.video.formats import PlanarYUV


def _helpers():
    """The shared plugin helpers (they import torch): loaded when frames flow, so ``--help`` and usage
    errors of ``filmcolor pipe`` answer without importing torch."""
    from . import _common

    return _common


GREY_FORMATS = {"gray": 8, "gray10le": 10, "gray12le": 12, "gray16le": 16}


RGB_FORMATS = ("rgb24", "bgr24")


RANGES = ("auto", "full", "limited")


@dataclass(frozen=True)
class RawFormat:
    """How one raw frame of ``pix_fmt`` is laid out: kind (grey, yuv, rgb), depth, planes' sizes."""

    name: str
    kind: str                       # "grey" | "yuv" | "rgb"
    bits: int
    planar: "PlanarYUV | None" = None

    @staticmethod
    def parse(pix_fmt: str, *, output: bool = False) -> "RawFormat":
        from filmcolor.video.formats import parse_planar

        name = pix_fmt.strip().lower()
        if not output and name in GREY_FORMATS:
            return RawFormat(name, "grey", GREY_FORMATS[name])
        if name in RGB_FORMATS:
            return RawFormat(name, "rgb", 8)
        planar = parse_planar(name)
        if planar is not None and planar.bits <= 16 and (planar.bits == 8 or name.endswith("le")):
            return RawFormat(name, "yuv", planar.bits, planar)
        if output:
            raise FormatError(f"output pixel format {pix_fmt!r} is not supported: use a planar Y'CbCr format "
                                f"(yuv420p, yuv422p, yuv444p, yuv420p10le, ...) or rgb24/bgr24")
        raise FormatError(f"input pixel format {pix_fmt!r} is not supported: use gray, gray10le, gray12le, gray16le, "
                            f"a planar Y'CbCr format (yuv420p, yuv420p10le, ...) or rgb24/bgr24")

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.uint8) if self.bits == 8 else np.dtype("<u2")

    def plane_shapes(self, width: int, height: int) -> list[tuple[int, ...]]:
        """Shapes of the planes in the order they sit in one frame."""
        if self.kind == "grey":
            return [(height, width)]
        if self.kind == "rgb":
            return [(height, width, 3)]
        assert self.planar is not None
        cw, ch = self.planar.chroma_size(width, height)
        return [(height, width), (ch, cw), (ch, cw)]

    def frame_bytes(self, width: int, height: int) -> int:
        return sum(int(np.prod(s)) for s in self.plane_shapes(width, height)) * self.dtype.itemsize


@dataclass(frozen=True)
class PipeSpec:
    """Everything the pipe needs to know about its two raw streams."""

    width: int
    height: int
    src: RawFormat
    dst: RawFormat
    full_range: bool                # range of the luma codes (input's, kept in the output)
    matrix: "YCbCrMatrix"

    @staticmethod
    def make(width: int, height: int, pix_fmt: str = "gray", out_pix_fmt: str = "yuv420p", *, color_range: str = "auto",
             matrix: str | None = "auto") -> "PipeSpec":
        """Check the options and work out range and matrix (``color_range`` auto: full for grey/yuvj, limited for yuv)."""
        if width < 1 or height < 1:
            raise FormatError(f"frame size must be positive, got {width}x{height}")
        src = RawFormat.parse(pix_fmt)
        dst = RawFormat.parse(out_pix_fmt, output=True)
        if color_range not in RANGES:
            raise FormatError(f"range must be one of {', '.join(RANGES)}, got {color_range!r}")
        if color_range != "auto":
            full = color_range == "full"
        elif src.kind == "grey":
            full = True                       # what ffmpeg's format=gray makes from any source
        elif src.kind == "yuv":
            full = bool(src.planar and src.planar.full_range)
        else:
            full = dst.kind == "rgb" or bool(dst.planar and dst.planar.full_range)
        try:
            m = _helpers().matrix_named(matrix, height)
        except ValueError as exc:
            raise FormatError(str(exc)) from None
        return PipeSpec(width, height, src, dst, full, m)

    @property
    def layout(self) -> "PlanarYUV":
        """The chroma layout the ChromaStream works in: the output's (4:4:4 8-bit for RGB output)."""
        from filmcolor.video.formats import PlanarYUV

        if self.dst.kind == "rgb":
            return _helpers().layout_444(8, self.full_range)
        p = self.dst.planar
        assert p is not None
        return PlanarYUV(p.name, p.bits, p.log2_w, p.log2_h, self.full_range)

    @property
    def luma_bits(self) -> int:
        return self.layout.bits

    def describe(self) -> str:
        return (f"{self.width}x{self.height} {self.src.name} -> {self.dst.name}, "
                f"{'full' if self.full_range else 'limited'} range, {self.matrix.name}")


def _split(buf: bytearray, spec: PipeSpec) -> list[np.ndarray]:
    arr = np.frombuffer(buf, dtype=spec.src.dtype)
    planes, pos = [], 0
    for shape in spec.src.plane_shapes(spec.width, spec.height):
        n = int(np.prod(shape))
        planes.append(arr[pos:pos + n].reshape(shape))
        pos += n
    return planes


def input_luma(buf: bytearray, spec: PipeSpec) -> np.ndarray:
    """One raw input frame -> luma codes at the output's depth (the input's own codes when depths match)."""
    first = _split(buf, spec)[0]
    bits = spec.luma_bits
    if spec.src.kind == "rgb":
        return _helpers().rgb_to_luma(first, spec.matrix, bits, spec.full_range, order=spec.src.name[:3])
    y = first.astype(np.uint8 if spec.src.bits == 8 else np.uint16)  # native-endian copy of the codes
    return _helpers().convert_depth(y, spec.src.bits, bits, spec.full_range)


def output_planes(y: np.ndarray, cb: np.ndarray, cr: np.ndarray, spec: PipeSpec) -> list[np.ndarray]:
    """Planes of one output frame in their raw order and byte order."""
    if spec.dst.kind == "rgb":
        rgb = _helpers().ycbcr_planes_to_rgb(y, cb, cr, spec.layout, spec.matrix)
        return [rgb if spec.dst.name == "rgb24" else np.ascontiguousarray(rgb[..., ::-1])]
    dt = spec.dst.dtype
    return [np.ascontiguousarray(p, dtype=dt) for p in (y, cb, cr)]
