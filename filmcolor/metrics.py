"""Image quality metrics for colorization, on 8-bit sRGB ``[H,W,3]`` arrays.

- PSNR on RGB.
- CIEDE2000 (Sharma et al. 2005) mean over pixels, via scikit-image's reference implementation.
- Colourfulness (Hasler & Suesstrunk 2003): sqrt(std_rg^2 + std_yb^2) + 0.3 sqrt(mean_rg^2 + mean_yb^2).
"""

from __future__ import annotations

import numpy as np


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB of two uint8 images (inf when identical)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def ciede2000(a: np.ndarray, b: np.ndarray) -> float:
    """Mean CIEDE2000 colour difference of two uint8 sRGB images."""
    from skimage.color import deltaE_ciede2000, rgb2lab

    return float(np.mean(deltaE_ciede2000(rgb2lab(a), rgb2lab(b))))


def colourfulness(rgb: np.ndarray) -> float:
    """Hasler-Suesstrunk colourfulness of a uint8 sRGB image (0 for grey; ~100+ for vivid)."""
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    rg, yb = r - g, 0.5 * (r + g) - b
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))
