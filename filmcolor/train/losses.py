"""Losses: L1 on a,b (optionally class-rebalanced), a CIE94 colour difference, colour balance,
adversarial, feature loss."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..color import lab_to_rgb
from ..models.effnet_lite import EfficientNetLite0Encoder
from ..models.layers import AB_SCALE
from .choices import ADV_LOSSES


def l1_ab(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute a,b error on the [-1, 1] scale (so pix2pix's lambda = 100 applies)."""
    return (pred - target).abs().mean() / AB_SCALE


def delta_e94_ab(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-2) -> torch.Tensor:
    """Mean CIE94 colour difference (graphic-arts weights, reference = the truth) between a,b ``[N,2,H,W]``
    at equal lightness, on the [-1, 1] scale of :func:`l1_ab`.

    The selection metric, CIEDE2000, forgives chroma and hue errors of saturated colours (its ``S_C``,
    ``S_H`` grow with chroma) and measures a pixel's error as one Euclidean length, not two absolute
    values; CIE94 keeps both traits and stays smooth (CIEDE2000's hue rotation terms do not), so a model
    trained on it is steered toward the metric it is chosen by. ``eps`` (Lab units squared) keeps the
    gradient finite where the colours match. Golden values: ``skimage.color.deltaE_ciede94``."""
    c1 = torch.linalg.vector_norm(target, dim=1)
    c2 = torch.linalg.vector_norm(pred, dim=1)
    dc = c1 - c2
    dh2 = ((pred - target) ** 2).sum(1) - dc ** 2
    de2 = (dc / (1 + 0.045 * c1)) ** 2 + dh2.clamp(min=0) / (1 + 0.015 * c1) ** 2
    return (de2 + eps).sqrt().mean() / AB_SCALE


AB_BIN = 10.0     # Zhang et al. 2016 quantise a,b on a grid of 10 Lab units
AB_EDGE = 130.0   # grid [-130, 130) covers every 8-bit Lab code
AB_BINS = int(2 * AB_EDGE / AB_BIN)


def _ab_index(ab: np.ndarray | torch.Tensor):
    """Grid cell of each a,b pair: ``[..., 2]`` (numpy) or ``[N,2,H,W]`` (torch) -> flat bin indices."""
    if isinstance(ab, torch.Tensor):
        q = ((ab + AB_EDGE) / AB_BIN).floor().long().clamp_(0, AB_BINS - 1)
        return q[:, 0] * AB_BINS + q[:, 1]                        # [N,H,W]
    q = np.clip(((ab + AB_EDGE) // AB_BIN).astype(np.int64), 0, AB_BINS - 1)
    return q[..., 0] * AB_BINS + q[..., 1]


def ab_prior(ab_images: Iterable[np.ndarray]) -> np.ndarray:
    """Empirical distribution of a,b over the grid (``[AB_BINS**2]``, sums to 1) from ``[H,W,2]`` arrays in Lab units."""
    counts = np.zeros(AB_BINS * AB_BINS, np.float64)
    for ab in ab_images:
        counts += np.bincount(_ab_index(np.asarray(ab, np.float32)).ravel(), minlength=counts.size)
    if counts.sum() == 0:
        raise ValueError("ab_prior needs at least one pixel")
    return counts / counts.sum()


def rebalance_table(prior: np.ndarray, mix: float = 0.5, sigma_bins: float = 0.5, cap: float = 20.0) -> np.ndarray:
    """Per-bin loss weights that undo the pull toward common (desaturated) colours (Zhang et al. 2016, eq. 4).

    ``w ~ 1 / ((1 - mix) * smoothed prior + mix / Q)`` over the Q occupied bins, normalised so the expected
    weight under the prior is 1, and capped; bins never seen get weight 1.
    """
    import cv2

    grid = prior.reshape(AB_BINS, AB_BINS).astype(np.float64)
    smooth = cv2.GaussianBlur(grid, (0, 0), sigma_bins) if sigma_bins > 0 else grid
    smooth = smooth.ravel() / smooth.sum()
    seen = prior > 0
    w = np.ones_like(smooth)
    w[seen] = 1.0 / ((1 - mix) * smooth[seen] + mix / seen.sum())
    w[seen] /= float((prior[seen] * w[seen]).sum())
    return np.minimum(w, cap).astype(np.float32)


def l1_ab_weighted(pred: torch.Tensor, target: torch.Tensor, table: torch.Tensor, strength: float = 1.0) -> torch.Tensor:
    """:func:`l1_ab` with each pixel weighted by its true colour's rebalancing weight.

    ``pred``/``target`` ``[N,2,H,W]`` in Lab units, ``table`` ``[AB_BINS**2]`` from :func:`rebalance_table`;
    ``strength`` blends plain (0) and fully rebalanced (1) L1.
    """
    w = table.to(target.device)[_ab_index(target)]                # [N,H,W]
    w = (1 - strength) + strength * w
    return ((pred - target).abs() * w.unsqueeze(1)).mean() / AB_SCALE


def colour_balance(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1 between each picture's mean a,b and the truth's (a global colour cast), on the [-1, 1] scale."""
    return (pred.mean(dim=(2, 3)) - target.mean(dim=(2, 3))).abs().mean() / AB_SCALE


class AdversarialLoss:
    """Critic and generator terms for ``kind`` in {"bce", "lsgan", "hinge"}.

    ``real_label`` < 1 gives one-sided label smoothing (Salimans et al. 2016): only real targets move.
    """

    KINDS = ADV_LOSSES

    def __init__(self, kind: str = "bce", real_label: float = 0.9) -> None:
        if kind not in self.KINDS:
            raise ValueError(f"unknown adversarial loss {kind!r}; choose from {self.KINDS}")
        self.kind, self.real_label = kind, real_label

    def critic(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        if self.kind == "hinge":
            return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
        if self.kind == "lsgan":
            return 0.5 * (((real - self.real_label) ** 2).mean() + (fake**2).mean())
        return (F.binary_cross_entropy_with_logits(real, torch.full_like(real, self.real_label))
                + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))

    def generator(self, fake: torch.Tensor) -> torch.Tensor:
        if self.kind == "hinge":
            return -fake.mean()
        if self.kind == "lsgan":
            return 0.5 * ((fake - 1) ** 2).mean()
        return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))


class FeatureLoss(nn.Module):
    """Perceptual loss (Johnson et al. 2016) on the frozen ImageNet EfficientNet-Lite0, sRGB input.

    Compares features at strides 4, 8 and 16 of the predicted and true colour images, each layer's L1
    divided by the mean magnitude of the true features so the layers weigh alike.
    """

    def __init__(self, layers: tuple[int, ...] = (1, 2, 3)) -> None:
        super().__init__()
        self.net = EfficientNetLite0Encoder(in_channels=3)
        self.net.load_imagenet()
        self.net.eval().requires_grad_(False)
        self.layers = layers

    def train(self, mode: bool = True) -> "FeatureLoss":
        super().train(mode)
        self.net.eval()  # batch-norm statistics stay frozen
        return self

    def forward(self, L: torch.Tensor, ab_pred: torch.Tensor, ab_true: torch.Tensor) -> torch.Tensor:
        pred = lab_to_rgb(torch.cat((L, ab_pred), dim=1))
        with torch.no_grad():
            true_feats = self.net(lab_to_rgb(torch.cat((L, ab_true), dim=1)))
        pred_feats = self.net(pred)
        loss = pred.new_zeros(())
        for i in self.layers:
            loss = loss + (pred_feats[i] - true_feats[i]).abs().mean() / (true_feats[i].abs().mean() + 1e-6)
        return loss / len(self.layers)
