"""Shared glue for the plugins: making a causal colorizer, luma from RGB, Y'CbCr planes back to RGB.

Every plugin wraps the same streaming pipeline (:class:`~filmcolor.colorizer.Colorizer` and a
:class:`~filmcolor.colorizer.ChromaStream` with ``causal=True``); these helpers keep the small
conversions around it in one place so the plugins agree with each other and with the file pipeline.
Heavy imports (torch) happen inside the functions, so importing a plugin stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover - typing only
    from filmcolor.color import YCbCrMatrix
    from filmcolor.colorizer import Colorizer
    from filmcolor.video.formats import PlanarYUV


def make_colorizer(colorizer: "Colorizer | None", options: dict[str, Any], *, batch: int | None = None
                   ) -> tuple["Colorizer", bool]:
    """The caller's colorizer, or a new one from ``options`` (ColorizerOptions fields); and whether we own it.

    ``batch`` (when given and not in ``options``) asks the engine for that batch: 1 gives a frame back
    for every frame pushed, which is what per-frame filters need.
    """
    if colorizer is not None:
        if options:
            raise TypeError(f"pass either colorizer= or colorizer options, not both (got {sorted(options)})")
        return colorizer, False
    from filmcolor.colorizer import Colorizer, ColorizerOptions

    opts = dict(options)
    opts.setdefault("smoothing", "stream")
    if batch is not None:
        opts.setdefault("batch", batch)
    return Colorizer(ColorizerOptions(**opts)), True


def matrix_named(name: str | None, height: int) -> "YCbCrMatrix":
    """``bt601``/``bt709``/``bt2020nc`` (or ``601``, ``709``...) -> matrix; None/``auto``: by frame height."""
    from filmcolor.color import MATRICES
    from filmcolor.video.formats import choose_matrix

    if name in (None, "", "auto"):
        return choose_matrix(None, height)
    key = name.lower()
    for m in MATRICES.values():
        if key in (m.name, m.name.removeprefix("bt"), m.name.removesuffix("nc")):
            return m
    raise ValueError(f"unknown colour matrix {name!r}: use auto, {', '.join(MATRICES)}")


def layout_444(bits: int, full_range: bool) -> "PlanarYUV":
    """A 4:4:4 layout of the given depth and range (chroma at full size: what RGB output needs)."""
    from filmcolor.video.formats import PlanarYUV

    return PlanarYUV(f"yuv444p{'' if bits == 8 else f'{bits}le'}", bits, 0, 0, full_range)


def rgb_to_luma(rgb: np.ndarray, matrix: "YCbCrMatrix", bits: int = 8, full_range: bool = True,
                order: str = "rgb") -> np.ndarray:
    """Gamma-encoded ``[H,W,3]`` uint8/uint16 (``order`` rgb or bgr) -> Y' codes of the given depth and range."""
    x = rgb.astype(np.float32) / float(np.iinfo(rgb.dtype).max)
    r, g, b = (x[..., 0], x[..., 1], x[..., 2]) if order == "rgb" else (x[..., 2], x[..., 1], x[..., 0])
    y = matrix.kr * r + matrix.kg * g + matrix.kb * b
    scale = float(1 << (bits - 8))
    codes = y * ((1 << bits) - 1) if full_range else y * 219 * scale + 16 * scale
    return np.clip(np.rint(codes), 0, (1 << bits) - 1).astype(np.uint8 if bits == 8 else np.uint16)


def ycbcr_planes_to_rgb(y: np.ndarray, cb: np.ndarray, cr: np.ndarray, layout: "PlanarYUV",
                        matrix: "YCbCrMatrix") -> np.ndarray:
    """Integer Y', Cb, Cr planes of ``layout`` -> ``[H,W,3]`` R'G'B' uint8 (chroma resized up if subsampled)."""
    import torch

    from filmcolor.color import ycbcr_to_rgb

    h, w = y.shape
    if cb.shape != y.shape:
        import cv2

        cb = cv2.resize(cb, (w, h), interpolation=cv2.INTER_LINEAR)
        cr = cv2.resize(cr, (w, h), interpolation=cv2.INTER_LINEAR)
    rng = layout.code_range
    yt = rng.y_to_unit(torch.from_numpy(y.astype(np.float32)))[None]
    ct = rng.c_to_unit(torch.from_numpy(np.stack((cb, cr)).astype(np.float32)))
    rgb = ycbcr_to_rgb(yt, ct, matrix)
    return np.ascontiguousarray((rgb * 255).round_().to(torch.uint8).permute(1, 2, 0).numpy())


def convert_depth(y: np.ndarray, src_bits: int, dst_bits: int, full_range: bool) -> np.ndarray:
    """Luma codes from one depth to another (exact shifts in limited range, rescaled in full range)."""
    if src_bits == dst_bits:
        return y
    dtype = np.uint8 if dst_bits == 8 else np.uint16
    if not full_range:
        if dst_bits > src_bits:
            return (y.astype(np.uint32) << (dst_bits - src_bits)).astype(dtype)
        half = 1 << (src_bits - dst_bits - 1)
        return np.clip((y.astype(np.uint32) + half) >> (src_bits - dst_bits), 0, (1 << dst_bits) - 1).astype(dtype)
    scale = ((1 << dst_bits) - 1) / ((1 << src_bits) - 1)
    return np.clip(np.rint(y.astype(np.float64) * scale), 0, (1 << dst_bits) - 1).astype(dtype)
