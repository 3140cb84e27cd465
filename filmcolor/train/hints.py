"""Simulated user guidance for training: sparse colour points and dense, imperfect references.

Sparse points follow Zhang et al. 2017 ("Real-Time User-Guided Image Colorization with Learned Deep
Priors"): a geometric number of points (p = 1/8), square patches of 1-9 px, each revealing the patch's
mean a,b. Dense guidance imitates a reference frame carried along optical flow: the truth's a,b under a
small random warp, with holes (no guidance), a few deliberately wrong regions, and a confidence below 1,
so the model learns to trust references where they hold and to repair them where they do not.
All functions take and return float32 arrays: ab ``[H,W,2]`` (Lab units), mask ``[H,W]`` (0..1).
"""

from __future__ import annotations

import cv2
import numpy as np

# Share of training samples per kind of guidance: most keep the automatic task.
MODES = {"none": 0.45, "points": 0.35, "dense": 0.20}


def guidance_modes(points: float = MODES["points"], dense: float = MODES["dense"]) -> dict[str, float]:
    """Shares of the kinds of guidance with ``points`` and ``dense`` given; the automatic task takes the rest.

    Inference sends sparse hints (under a tenth of the picture) to the automatic model plus
    :mod:`filmcolor.spread`, not to the guided model, so a run may drop point hints (``points=0``)."""
    if points < 0 or dense < 0 or points + dense > 1:
        raise ValueError(f"guidance shares must be >= 0 and sum to at most 1, got points={points}, dense={dense}")
    return {"none": 1.0 - points - dense, "points": points, "dense": dense}


def sample_points(ab: np.ndarray, rng: np.random.Generator, p: float = 1 / 8,
                  max_points: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Sparse hints: ``Geometric(p)`` patches (1..9 px squares) at uniform positions, each the patch's mean a,b."""
    h, w = ab.shape[:2]
    hint, mask = np.zeros_like(ab), np.zeros((h, w), np.float32)
    for _ in range(min(int(rng.geometric(p)), max_points)):
        s = int(rng.integers(1, 10))
        y, x = int(rng.integers(0, h - s + 1)), int(rng.integers(0, w - s + 1))
        hint[y:y + s, x:x + s] = ab[y:y + s, x:x + s].reshape(-1, 2).mean(0)
        mask[y:y + s, x:x + s] = 1.0
    return hint, mask


def _smooth_field(h: int, w: int, rng: np.random.Generator, amplitude: float) -> np.ndarray:
    """A smooth random displacement field ``[H,W]`` (low-resolution noise scaled up)."""
    coarse = rng.normal(0.0, 1.0, (4, 4)).astype(np.float32)
    return cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC) * amplitude


def _blobs(h: int, w: int, rng: np.random.Generator, count: int, max_radius: float) -> np.ndarray:
    """A boolean mask of ``count`` random ellipses."""
    out = np.zeros((h, w), np.uint8)
    for _ in range(count):
        centre = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        axes = (int(rng.uniform(4, max_radius)), int(rng.uniform(4, max_radius)))
        cv2.ellipse(out, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    return out.astype(bool)


def sample_dense(ab: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Reference-like guidance: warped truth, holes, wrong regions, confidence 0.3..1 that falls in the holes' rims."""
    h, w = ab.shape[:2]
    amp = rng.uniform(0.0, 6.0)
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    map_x = gx + _smooth_field(h, w, rng, amp) + rng.uniform(-3, 3)
    map_y = gy + _smooth_field(h, w, rng, amp) + rng.uniform(-3, 3)
    hint = cv2.remap(ab, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    confidence = np.full((h, w), rng.uniform(0.3, 1.0), np.float32)
    holes = _blobs(h, w, rng, int(rng.integers(0, 5)), max(h, w) / 3)
    wrong = _blobs(h, w, rng, int(rng.integers(0, 3)), max(h, w) / 6) & ~holes
    if wrong.any():  # a wrong colour: the true colour rotated in the a,b plane, or a random one
        theta = rng.uniform(np.pi / 3, np.pi)
        c, s = np.cos(theta), np.sin(theta)
        rotated = np.stack((c * hint[..., 0] - s * hint[..., 1], s * hint[..., 0] + c * hint[..., 1]), -1)
        hint[wrong] = rotated[wrong] if rng.random() < 0.5 else rng.uniform(-60, 60, 2).astype(np.float32)
    hint[holes] = 0.0
    confidence[holes] = 0.0
    # Confidence fades toward the holes (as flow-carried colour does near occlusions).
    fade = cv2.GaussianBlur((~holes).astype(np.float32), (0, 0), rng.uniform(1.0, 6.0))
    return hint.astype(np.float32), (confidence * np.minimum(fade, ~holes)).astype(np.float32)


def sample_guidance(ab: np.ndarray, rng: np.random.Generator, modes: dict[str, float] = MODES) -> tuple[np.ndarray, np.ndarray]:
    """One sample's guidance: none, sparse points or dense, drawn with the probabilities ``modes``."""
    kind = rng.choice(list(modes), p=np.array(list(modes.values())) / sum(modes.values()))
    if kind == "points":
        return sample_points(ab, rng)
    if kind == "dense":
        return sample_dense(ab, rng)
    return np.zeros_like(ab), np.zeros(ab.shape[:2], np.float32)
