"""From model a,b at render size to the output's chroma planes, guided by the source's luma.

The model's (L, a, b) becomes R'G'B' and then (Cb, Cr) with the output's matrix, at render size;
a guided filter's local slope (He & Sun 2015) brings it to chroma-plane resolution with the luma's
finer detail added (:func:`fast_guided_upsample`). Tensor code: runs on the engine's device.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..color import YCbCrMatrix, lab_to_rgb, rgb_to_cbcr


def box(x: torch.Tensor, r: int) -> torch.Tensor:
    """Mean over a (2r+1)^2 window, edges replicated; ``x`` is ``[N,C,H,W]``.

    Running sums (cumsum, then differences k apart) along each axis: O(1) per pixel whatever the
    radius, 4x faster than ``avg_pool2d`` at r=2 on the CPU (that pooling was a tenth of 720p time).
    float32 rounding is ~1e-6 for values of order 1 at render size.
    """
    if r <= 0:
        return x
    k = 2 * r + 1
    c = F.pad(x, (r + 1, r, r + 1, r), mode="replicate").cumsum(-1)
    c = c[..., k:] - c[..., :-k]
    c = c.cumsum(-2)
    return (c[..., k:, :] - c[..., :-k, :]) / (k * k)


GUIDED_RADIUS = 2     # the guided filter's box radius at render size
GUIDED_EPS = 1e-3     # its regulariser: how flat the luma must be before colour stops following it


def fast_guided_upsample(src: torch.Tensor, guide_lo: torch.Tensor, guide_hi: torch.Tensor, *,
                         radius: int = GUIDED_RADIUS, eps: float = GUIDED_EPS) -> torch.Tensor:
    """Upsample ``src`` ``[N,C,h,w]`` to the size of ``guide_hi`` ``[N,1,H,W]``, edge-aware, keeping its detail.

    The local linear model ``src ~ A * guide + B`` (a guided filter, He & Sun 2015) is fitted at low
    resolution against ``guide_lo`` ``[N,1,h,w]``; its slope A, upsampled bilinearly, adds the
    full-resolution guide's finer detail to the bilinearly upsampled ``src``:

        out = up(src) + up(A) * guide_hi - up(A * guide_lo)

    (the guided filter's output plus the upsampled residual ``src - (A * guide_lo + B)``). At equal sizes
    this returns ``src`` itself. The plain fast guided filter, ``up(A) * guide_hi + up(B)``, smooths ``src``
    over its boxes: on exact chroma at render size (a reference frame, 256 px short side) it lost 5-6 dB
    PSNR against bilinear upsampling (pillow's first frame 31.4 against 37.8 dB); this form loses 0.4-0.8
    dB there and scores the same on the automatic model's val figures (150 images: CIEDE2000 9.854
    against 9.838).
    """
    mean_i = box(guide_lo, radius)
    cov_ip = box(guide_lo * src, radius) - mean_i * box(src, radius)
    var_i = box(guide_lo * guide_lo, radius) - mean_i * mean_i
    a = box(cov_ip / (var_i + eps), radius)
    size = guide_hi.shape[-2:]
    residual = src - a * guide_lo
    a = F.interpolate(a, size=size, mode="bilinear", align_corners=False)
    return a * guide_hi + F.interpolate(residual, size=size, mode="bilinear", align_corners=False)


def lab_to_chroma(L: torch.Tensor, ab: torch.Tensor, matrix: YCbCrMatrix) -> torch.Tensor:
    """Render-size L ``[N,1,h,w]`` and a,b ``[N,2,h,w]`` -> (Cb, Cr) ``[N,2,h,w]`` in [-0.5, 0.5]."""
    return rgb_to_cbcr(lab_to_rgb(torch.cat((L, ab), dim=1)), matrix)
