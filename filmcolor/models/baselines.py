"""Baseline generators from the seed reports, for comparison with the default model.

All map Lab L ``[N,1,H,W]`` to a,b ``[N,2,H,W]`` in Lab units, like the default generator.
- ``pix2pix-unet``: Isola et al. 2017 U-Net (conv-BN-LeakyReLU down, ReLU up, dropout as noise).
- ``autoencoder``: the same encoder-decoder without skip connections, with max pooling.
- ``resnet-gen``: 7x7 stem, two stride-2 convs, residual blocks, two transposed convs.
- ``cnn4``: the reports' small 4-layer CNN.
"""

from __future__ import annotations

import torch
from torch import nn

from .layers import AB_SCALE
from .registry import register_model


def _to_ab(x: torch.Tensor) -> torch.Tensor:
    return torch.tanh(x) * AB_SCALE


def _norm(L: torch.Tensor) -> torch.Tensor:
    return L / 50.0 - 1.0


class Pix2PixUNet(nn.Module):
    """U-Net with ``depth`` stride-2 levels; H and W must be multiples of ``2**depth``."""

    def __init__(self, depth: int = 6, ngf: int = 32, dropout: float = 0.5) -> None:
        super().__init__()
        self.size_multiple = 2**depth
        chans = [min(ngf * 2**i, ngf * 8) for i in range(depth)]
        self.downs = nn.ModuleList()
        cin = 1
        for i, c in enumerate(chans):
            layers = [] if i == 0 else [nn.LeakyReLU(0.2, inplace=True)]
            layers.append(nn.Conv2d(cin, c, 4, 2, 1, bias=i == 0))
            if 0 < i < depth - 1:
                layers.append(nn.BatchNorm2d(c))
            self.downs.append(nn.Sequential(*layers))
            cin = c
        self.ups = nn.ModuleList()
        for i in reversed(range(depth)):
            c_in = chans[i] if i == depth - 1 else chans[i] * 2
            c_out = 2 if i == 0 else chans[i - 1]
            layers = [nn.ReLU(inplace=True), nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=i == 0)]
            if i > 0:
                layers.append(nn.BatchNorm2d(c_out))
                if i >= depth - 3 and dropout > 0:
                    layers.append(nn.Dropout(dropout))
            self.ups.append(nn.Sequential(*layers))

    def forward(self, L: torch.Tensor) -> torch.Tensor:
        x, skips = _norm(L), []
        for down in self.downs:
            x = down(x)
            skips.append(x)
        skips.pop()
        for j, up in enumerate(self.ups):
            if j > 0:
                x = torch.cat((x, skips.pop()), dim=1)
            x = up(x)
        return _to_ab(x)


class AutoEncoder(nn.Module):
    """Encoder-decoder without skips; max pooling downsamples."""

    size_multiple = 16

    def __init__(self, ngf: int = 32) -> None:
        super().__init__()
        chans = (ngf, ngf * 2, ngf * 4, ngf * 8)
        enc, cin = [], 1
        for c in chans:
            enc += [nn.Conv2d(cin, c, 3, padding=1), nn.BatchNorm2d(c), nn.LeakyReLU(0.2, inplace=True), nn.MaxPool2d(2)]
            cin = c
        dec = []
        for c in reversed((16, *chans[:-1])):
            dec += [nn.ConvTranspose2d(cin, c, 4, 2, 1), nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
            cin = c
        self.net = nn.Sequential(*enc, *dec, nn.Conv2d(cin, 2, 3, padding=1))

    def forward(self, L: torch.Tensor) -> torch.Tensor:
        return _to_ab(self.net(_norm(L)))


class ResBlock(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(c, c, 3), nn.BatchNorm2d(c), nn.ReLU(inplace=True),
            nn.ReflectionPad2d(1), nn.Conv2d(c, c, 3), nn.BatchNorm2d(c),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResNetGenerator(nn.Module):
    """Johnson et al. style generator (as in CycleGAN) with ``blocks`` residual blocks."""

    size_multiple = 4

    def __init__(self, ngf: int = 32, blocks: int = 6) -> None:
        super().__init__()
        layers = [nn.ReflectionPad2d(3), nn.Conv2d(1, ngf, 7), nn.BatchNorm2d(ngf), nn.ReLU(inplace=True)]
        c = ngf
        for _ in range(2):
            layers += [nn.Conv2d(c, c * 2, 3, 2, 1), nn.BatchNorm2d(c * 2), nn.ReLU(inplace=True)]
            c *= 2
        layers += [ResBlock(c) for _ in range(blocks)]
        for _ in range(2):
            layers += [nn.ConvTranspose2d(c, c // 2, 3, 2, 1, output_padding=1), nn.BatchNorm2d(c // 2), nn.ReLU(inplace=True)]
            c //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(c, 2, 7)]
        self.net = nn.Sequential(*layers)

    def forward(self, L: torch.Tensor) -> torch.Tensor:
        return _to_ab(self.net(_norm(L)))


class CNN4(nn.Module):
    """Four 3x3 conv layers, full resolution (the reports' hand-made CNN)."""

    size_multiple = 1

    def __init__(self, width: int = 64) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, padding=2, dilation=2), nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, padding=4, dilation=4), nn.ReLU(inplace=True),
            nn.Conv2d(width, 2, 3, padding=1),
        )

    def forward(self, L: torch.Tensor) -> torch.Tensor:
        return _to_ab(self.net(_norm(L)))


register_model("pix2pix-unet")(Pix2PixUNet)
register_model("autoencoder")(AutoEncoder)
register_model("resnet-gen")(ResNetGenerator)
register_model("cnn4")(CNN4)
