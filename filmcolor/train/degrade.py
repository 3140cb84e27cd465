"""Archival degradations of the training input: what film and its transfers do to a picture's luminance.

Only the model's input L is degraded; the target a,b stays the clean truth, so the model learns to
colour old film as if it were clean. Each effect is a pure function of a float32 L plane (0..100,
``[H,W]``) and an RNG, so a batch is reproducible from its seed (resumed runs see the same inputs).
"""

from __future__ import annotations

from typing import Callable

import cv2
import numpy as np

Effect = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def grain(L: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Film grain: Gaussian noise, clumped by a slight blur, strongest in the mid-tones."""
    noise = rng.normal(0.0, 1.0, L.shape).astype(np.float32)
    sigma = rng.uniform(0.0, 1.2)
    if sigma > 0.3:
        noise = cv2.GaussianBlur(noise, (0, 0), sigma) * (1.0 + sigma)
    midtones = 1.0 - np.abs(L / 50.0 - 1.0) * 0.6
    return L + noise * rng.uniform(1.0, 6.0) * midtones


def softness(L: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Out-of-focus or generation-loss softness: a Gaussian blur of 0.5-1.8 px."""
    return cv2.GaussianBlur(L, (0, 0), rng.uniform(0.5, 1.8))


def fading(L: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Contrast and gamma fading: lifted blacks, dimmed whites, a gamma between 0.7 and 1.4."""
    x = np.clip(L / 100.0, 0.0, 1.0) ** rng.uniform(0.7, 1.4)
    black, white = rng.uniform(0.0, 0.15), rng.uniform(0.8, 1.0)
    return (black + x * (white - black)) * 100.0


def flicker(L: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Exposure flicker: a global gain and offset (per frame in film; per picture here)."""
    return L * rng.uniform(0.85, 1.15) + rng.uniform(-6.0, 6.0)


def vignetting(L: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Darkened corners: a radial falloff of up to 35%."""
    h, w = L.shape
    y, x = np.ogrid[-1:1:complex(0, h), -1:1:complex(0, w)]
    r2 = (x * x + y * y) / 2.0
    return L * (1.0 - rng.uniform(0.1, 0.35) * r2.astype(np.float32))


def dust_and_scratches(L: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Dark and bright specks (dust on the print or negative) and thin vertical scratches."""
    out = L.copy()
    h, w = L.shape
    for _ in range(int(rng.integers(1, 12))):
        cy, cx, r = int(rng.integers(0, h)), int(rng.integers(0, w)), int(rng.integers(1, 4))
        cv2.circle(out, (cx, cy), r, float(rng.choice([rng.uniform(0, 15), rng.uniform(85, 100)])), -1)
    for _ in range(int(rng.integers(0, 3))):
        x = int(rng.integers(0, w))
        y0, y1 = sorted(int(v) for v in rng.integers(0, h, 2))
        cv2.line(out, (x, y0), (x + int(rng.integers(-2, 3)), y1), float(rng.uniform(70, 100)), 1)
    return out


def compression(L: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Blocking and ringing of a low-bitrate transfer: a JPEG round trip at quality 15-60."""
    code = np.clip(L * 2.55, 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", code, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(15, 61))])
    return cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE).astype(np.float32) / 2.55 if ok else L


def low_resolution(L: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A low-resolution source scaled up: down by 1.5-4x (area), back up (bicubic)."""
    h, w = L.shape
    f = rng.uniform(1.5, 4.0)
    small = cv2.resize(L, (max(8, round(w / f)), max(8, round(h / f))), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


# Applied in this order (as they happen: the scene is shot soft or low-res, the print fades and
# flickers, dust lands, grain is in the emulsion, the transfer compresses).
EFFECTS: dict[str, Effect] = {
    "low_resolution": low_resolution, "softness": softness, "fading": fading, "flicker": flicker,
    "vignetting": vignetting, "dust_and_scratches": dust_and_scratches, "grain": grain, "compression": compression,
}


def degrade(L: np.ndarray, rng: np.random.Generator, p_each: float = 0.3,
            effects: dict[str, Effect] = EFFECTS) -> np.ndarray:
    """Apply each effect independently with probability ``p_each``; L float32 ``[H,W]`` in 0..100."""
    out = L.astype(np.float32, copy=True)
    for effect in effects.values():
        if rng.random() < p_each:
            out = effect(out, rng).astype(np.float32, copy=False)
    return np.clip(out, 0.0, 100.0)
