"""Between frames of Y'CbCr planes and RGB pictures: for the Python API and the host plugins.

The file pipeline never converts to RGB (it writes the planes); callers that hand frames to or take
them from RGB hosts (OpenCV, image arrays, raw RGB pipes) share these conversions so they agree.
"""

from __future__ import annotations

import numpy as np
import torch

from ..color import YCbCrMatrix, ycbcr_to_rgb
from .formats import PlanarYUV


def layout_444(bits: int, full_range: bool) -> PlanarYUV:
    """A 4:4:4 layout of the given depth and range (chroma at full size: what RGB output needs)."""
    return PlanarYUV(f"yuv444p{'' if bits == 8 else f'{bits}le'}", bits, 0, 0, full_range)


def rgb_to_luma(rgb: np.ndarray, matrix: YCbCrMatrix, bits: int = 8, full_range: bool = True,
                order: str = "rgb") -> np.ndarray:
    """Gamma-encoded ``[H,W,3]`` uint8/uint16 (``order`` rgb or bgr) -> Y' codes of the given depth and range."""
    x = rgb.astype(np.float32) / float(np.iinfo(rgb.dtype).max)
    r, g, b = (x[..., 0], x[..., 1], x[..., 2]) if order == "rgb" else (x[..., 2], x[..., 1], x[..., 0])
    y = matrix.kr * r + matrix.kg * g + matrix.kb * b
    scale = float(1 << (bits - 8))
    codes = y * ((1 << bits) - 1) if full_range else y * 219 * scale + 16 * scale
    return np.clip(np.rint(codes), 0, (1 << bits) - 1).astype(np.uint8 if bits == 8 else np.uint16)


def ycbcr_planes_to_rgb(y: np.ndarray, cb: np.ndarray, cr: np.ndarray, layout: PlanarYUV,
                        matrix: YCbCrMatrix, dtype: np.dtype | type = np.uint8) -> np.ndarray:
    """Integer Y', Cb, Cr planes of ``layout`` -> ``[H,W,3]`` R'G'B' of ``dtype`` (uint8 or uint16;
    chroma resized up if subsampled)."""
    h, w = y.shape
    if cb.shape != y.shape:
        import cv2

        cb = cv2.resize(cb, (w, h), interpolation=cv2.INTER_LINEAR)
        cr = cv2.resize(cr, (w, h), interpolation=cv2.INTER_LINEAR)
    rng = layout.code_range
    yt = rng.y_to_unit(torch.from_numpy(y.astype(np.float32)))[None]
    ct = rng.c_to_unit(torch.from_numpy(np.stack((cb, cr)).astype(np.float32)))
    rgb = ycbcr_to_rgb(yt, ct, matrix)
    if np.dtype(dtype) == np.uint16:
        return np.ascontiguousarray((rgb * 65535).round_().to(torch.int32).permute(1, 2, 0).numpy().astype(np.uint16))
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
