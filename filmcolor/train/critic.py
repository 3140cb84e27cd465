"""PatchGAN critic (Isola et al. 2017): judges overlapping 70x70 patches of (L, a, b)."""

from __future__ import annotations

import torch
from torch import nn

from ..models.layers import AB_SCALE, maybe_sn


class PatchGAN(nn.Module):
    """(L ``[N,1,H,W]``, a,b ``[N,2,H,W]``, Lab units) -> logits ``[N,1,H/8-2,W/8-2]``."""

    def __init__(self, ndf: int = 64, layers: int = 3, *, sn: bool = True) -> None:
        super().__init__()
        seq: list[nn.Module] = [maybe_sn(nn.Conv2d(3, ndf, 4, 2, 1), sn), nn.LeakyReLU(0.2, inplace=True)]
        c = ndf
        for i in range(1, layers + 1):
            cout = ndf * min(2**i, 8)
            stride = 2 if i < layers else 1
            seq.append(maybe_sn(nn.Conv2d(c, cout, 4, stride, 1, bias=sn), sn))
            if not sn:
                seq.append(nn.BatchNorm2d(cout))
            seq.append(nn.LeakyReLU(0.2, inplace=True))
            c = cout
        seq.append(maybe_sn(nn.Conv2d(c, 1, 4, 1, 1), sn))
        self.net = nn.Sequential(*seq)

    def forward(self, L: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat((L / 50.0 - 1.0, ab / AB_SCALE), dim=1))
