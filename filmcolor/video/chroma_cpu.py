"""The chroma finish on a CPU, with OpenCV: the same maths as :mod:`.chroma`, 4-5x faster there.

At 720p the torch version of the finish (Lab -> R'G'B' -> Cb,Cr at render size, then the fast guided
upsampling to the chroma planes) took 8.5-9.5 ms of a frame's ~28 ms on one core: elementwise torch
kernels make a full pass over memory per operation, and the transfer curves' powers are slow. OpenCV's
``cvtColor`` (Lab -> sRGB, SIMD, its own tables for the curves), ``blur`` (box mean, replicated borders)
and ``resize`` (bilinear, half-pixel centres) do the same steps in one pass each, on interleaved pixels.

Agreement with the torch reference (``tests/video/test_chroma_cpu.py``): OpenCV's Lab -> sRGB differs from
:func:`filmcolor.color.lab_to_rgb` (scikit-image's maths) by at most 6e-4 (a seventh of an 8-bit code) and
clips out-of-gamut colours the same way; the guided upsampling agrees to float rounding.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Iterator

import cv2
import numpy as np
import torch

from ..color import CodeRange, YCbCrMatrix, rgb_to_cbcr
from .chroma import GUIDED_EPS, GUIDED_RADIUS


@lru_cache(maxsize=8)
def cbcr_weights(matrix: YCbCrMatrix) -> np.ndarray:
    """``[2, 3]`` float32: R'G'B' -> (Cb, Cr) as one matrix, read off :func:`~filmcolor.color.rgb_to_cbcr`
    applied to the three primaries (it is linear), so the two cannot disagree."""
    primaries = torch.eye(3, dtype=torch.float64).reshape(3, 3, 1, 1)   # pure R, G, B as a batch of three
    return rgb_to_cbcr(primaries, matrix)[:, :, 0, 0].T.numpy().astype(np.float32)


def _blur(x: np.ndarray, r: int) -> np.ndarray:
    """Mean over a (2r+1)^2 window with replicated edges (:func:`~.chroma.box`)."""
    k = 2 * r + 1
    return cv2.blur(x, (k, k), borderType=cv2.BORDER_REPLICATE)


def finish_chroma_cv2(L: np.ndarray, ab: np.ndarray, guide_lo: np.ndarray, guide_hi: np.ndarray,
                      matrix: YCbCrMatrix, *, radius: int = GUIDED_RADIUS, eps: float = GUIDED_EPS) -> np.ndarray:
    """One frame: L ``[h,w]``, a,b ``[2,h,w]`` (Lab units, render size), the source luma in [0, 1] at render
    size ``guide_lo`` ``[h,w]`` and at chroma-plane size ``guide_hi`` ``[H,W]`` -> (Cb, Cr) ``[2,H,W]``
    float32 in [-0.5, 0.5]. The maths of :func:`~filmcolor.inference.finish_chroma`."""
    H, W = guide_hi.shape
    out = np.empty((2, H, W), np.float32)
    for c, (edges, flat) in enumerate(_upsampled(L, ab, guide_lo, guide_hi, matrix, radius, eps, 1.0, 0.0)):
        np.add(edges, flat, out=out[c])
    return out


def finish_codes_cv2(L: np.ndarray, ab: np.ndarray, guide_lo: np.ndarray, guide_hi: np.ndarray,
                     matrix: YCbCrMatrix, codes: CodeRange, dtype: str = "uint8", *,
                     radius: int = GUIDED_RADIUS, eps: float = GUIDED_EPS) -> tuple[np.ndarray, np.ndarray]:
    """:func:`finish_chroma_cv2` straight to the integer (Cb, Cr) planes ``[H,W]`` of ``codes`` (``dtype``
    uint8 or uint16), as ``codes.c_from_unit`` rounds and clips them.

    The code mapping is affine, so its scale goes into the Cb/Cr weights and its offset into the
    upsampled residual, and the last addition rounds and saturates as it stores (OpenCV's
    ``saturate_cast``: round half to even, like torch's ``round``): at 720p (256x448 to 640x360) 4.5 ms
    of one core against 5.1 for the float finish followed by the conversion.
    Codes agree with that path except where float rounding puts a value on the other side of .5."""
    scale, offset, lo, hi = codes.c_affine()
    depth = {"uint8": cv2.CV_8U, "uint16": cv2.CV_16U}[np.dtype(dtype).name]
    planes = []
    for edges, flat in _upsampled(L, ab, guide_lo, guide_hi, matrix, radius, eps, scale, offset):
        c = cv2.add(edges, flat, dtype=depth)
        planes.append(np.clip(c, lo, hi, out=c))
    return planes[0], planes[1]


def _upsampled(L: np.ndarray, ab: np.ndarray, guide_lo: np.ndarray, guide_hi: np.ndarray, matrix: YCbCrMatrix,
               radius: int, eps: float, scale: float, offset: float) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The fast guided upsampling of each of ``scale * (Cb, Cr) + offset`` as two ``[H,W]`` float32 terms
    to add: ``up(A) * I_hi`` (the edges the luma gives) and ``up(p - A * I_lo)`` (the rest, offset
    included); see :func:`~.chroma.fast_guided_upsample`."""
    h, w = L.shape
    lab = np.empty((h, w, 3), np.float32)
    lab[..., 0] = L
    lab[..., 1] = ab[0]
    lab[..., 2] = ab[1]
    rgb = cv2.cvtColor(lab, cv2.COLOR_Lab2RGB)                 # sRGB-encoded, clipped to [0, 1]
    # not numpy's matrix product: 6x faster in wall time, but OpenBLAS's threads spin after each call and
    # cost 50% more CPU per frame in all, which two saturated cores do not have
    cbcr = cv2.split(cv2.transform(rgb, cbcr_weights(matrix) * np.float32(scale)))
    # planar from here on: numpy on [h, w, 2] views runs its inner loop over 2 elements (5-10x slower)
    g = np.ascontiguousarray(guide_lo, dtype=np.float32)
    mean_i = _blur(g, radius)
    inv_var = 1.0 / (_blur(g * g, radius) - mean_i * mean_i + eps)
    H, W = guide_hi.shape
    gh = np.asarray(guide_hi, dtype=np.float32)
    for p in cbcr:
        a = (_blur(p * g, radius) - _blur(p, radius) * mean_i) * inv_var
        a = _blur(a, radius)
        residual = p - a * g
        residual += np.float32(offset)
        edges = cv2.resize(a, (W, H), interpolation=cv2.INTER_LINEAR)
        edges *= gh
        yield edges, cv2.resize(residual, (W, H), interpolation=cv2.INTER_LINEAR)


def finish_chroma_cpu(L: torch.Tensor, ab: torch.Tensor, guide_lo: torch.Tensor, guide_hi: torch.Tensor,
                      matrix: YCbCrMatrix) -> torch.Tensor:
    """:func:`finish_chroma_cv2` over a batch of CPU tensors (shapes of :func:`~filmcolor.inference.finish_chroma`)."""
    outs = [finish_chroma_cv2(L[i, 0].float().numpy(), ab[i].float().numpy(), guide_lo[i, 0].float().numpy(),
                              guide_hi[i, 0].float().numpy(), matrix) for i in range(L.shape[0])]
    return torch.from_numpy(outs[0][None] if len(outs) == 1 else np.stack(outs))
