"""Losses: L1 on a,b, adversarial (BCE with one-sided label smoothing, LSGAN, hinge), feature loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..color import lab_to_rgb
from ..models.effnet_lite import EfficientNetLite0Encoder
from ..models.layers import AB_SCALE


def l1_ab(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute a,b error on the [-1, 1] scale (so pix2pix's lambda = 100 applies)."""
    return (pred - target).abs().mean() / AB_SCALE


class AdversarialLoss:
    """Critic and generator terms for ``kind`` in {"bce", "lsgan", "hinge"}.

    ``real_label`` < 1 gives one-sided label smoothing (Salimans et al. 2016): only real targets move.
    """

    KINDS = ("bce", "lsgan", "hinge")

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
