"""The filmcolor generator: a U-Net with a spectral-norm decoder and SAGAN self-attention.

Encoder: ImageNet-pretrained EfficientNet-Lite0 (default) or a tiny plain CNN (tests).
Decoder: per stage learned pixel-shuffle upsampling, skip concatenation, two SN conv layers;
self-attention at stride 16, where the map is small (16x16 at a 256 px render).
"""

from __future__ import annotations

import torch
from torch import nn

from .effnet_lite import EfficientNetLite0Encoder
from .layers import AB_SCALE, PixelShuffleUp, SelfAttention, conv_bn_relu, maybe_sn
from .registry import register_model


class TinyEncoder(nn.Module):
    """A small strided CNN with the encoder interface: five maps at strides 2..32."""

    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.channels = tuple(width * m for m in (1, 2, 2, 4, 4))
        layers, cin = [], 1
        for c in self.channels:
            layers.append(nn.Sequential(nn.Conv2d(cin, c, 3, 2, 1), nn.BatchNorm2d(c), nn.ReLU(inplace=True)))
            cin = c
        self.stages = nn.ModuleList(layers)

    def forward(self, L: torch.Tensor) -> list[torch.Tensor]:
        x, feats = L / 50.0 - 1.0, []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats


class DecoderBlock(nn.Module):
    """Upsample 2x, concatenate the skip, two SN conv-BN-ReLU layers."""

    def __init__(self, cin: int, cskip: int, cout: int, *, sn: bool) -> None:
        super().__init__()
        self.up = PixelShuffleUp(cin, cout, sn=sn)
        self.conv = nn.Sequential(conv_bn_relu(cout + cskip, cout, sn=sn), conv_bn_relu(cout, cout, sn=sn))

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.up(x)
        return self.conv(torch.cat((x, skip), dim=1))


class GuidanceEncoder(nn.Module):
    """User guidance (hint a,b ``[N,2,H,W]`` in Lab units, mask ``[N,1,H,W]`` in 0..1) -> additions to the
    decoder's skips at strides 1, 2, 4, 8, 16 (channels ``skip_channels``).

    Zhang et al. 2017 ("Real-Time User-Guided Image Colorization with Learned Deep Priors") feed
    (L, hint a,b, mask) to the network; here the pretrained L encoder is kept and the hints enter
    through this side branch. It has no biases and no normalisation, so zero guidance gives exactly zero
    additions (guidance ``None`` and an all-zero mask are the same model), and its output layers start
    at zero, so a freshly added branch leaves the automatic model untouched.
    """

    def __init__(self, skip_channels: tuple[int, ...], widths: tuple[int, ...] = (8, 16, 32, 64, 64)) -> None:
        super().__init__()
        # Strides 1, 2, 4, 8, 16. Kept light (about 0.36 GFLOPs at 256x448, a sixth of the generator):
        # one conv at full resolution, two per lower stage; the automatic path skips the branch.
        self.stages = nn.ModuleList()
        cin = 3
        for i, w in enumerate(widths):
            layers = [nn.Conv2d(cin, w, 3, 1 if i == 0 else 2, 1, bias=False), nn.ReLU(inplace=True)]
            if i > 0:
                layers += [nn.Conv2d(w, w, 3, 1, 1, bias=False), nn.ReLU(inplace=True)]
            self.stages.append(nn.Sequential(*layers))
            cin = w
        self.outs = nn.ModuleList(nn.Conv2d(w, c, 1, bias=False) for w, c in zip(widths, skip_channels))
        for out in self.outs:
            nn.init.zeros_(out.weight)

    def forward(self, hint_ab: torch.Tensor, mask: torch.Tensor) -> list[torch.Tensor]:
        x, outs = torch.cat((hint_ab * mask / AB_SCALE, mask), dim=1), []
        for stage, out in zip(self.stages, self.outs):
            x = stage(x)
            outs.append(out(x))
        return outs


class SaganUNet(nn.Module):
    """L (Lab units) ``[N,1,H,W]`` -> a,b (Lab units) ``[N,2,H,W]``; H and W multiples of 32.

    With ``guidance=True`` the forward also takes optional ``hint_ab`` ``[N,2,H,W]`` (Lab units) and
    ``mask`` ``[N,1,H,W]`` (0 = no hint, 1 = certain; propagated references give values between).
    """

    size_multiple = 32

    def __init__(self, encoder: nn.Module, widths: tuple[int, ...], *, sn: bool = True, attention: bool = True,
                 guidance: bool = False):
        super().__init__()
        self.encoder = encoder
        c2, c4, c8, c16, c32 = encoder.channels
        w32, w16, w8, w4, w2, w1 = widths
        self.center = conv_bn_relu(c32, w32, sn=sn)
        self.up16 = DecoderBlock(w32, c16, w16, sn=sn)
        self.attn = SelfAttention(w16, sn=sn) if attention else nn.Identity()
        self.up8 = DecoderBlock(w16, c8, w8, sn=sn)
        self.up4 = DecoderBlock(w8, c4, w4, sn=sn)
        self.up2 = DecoderBlock(w4, c2, w2, sn=sn)
        self.up1 = PixelShuffleUp(w2, w1, sn=sn)
        self.head = nn.Sequential(
            maybe_sn(nn.Conv2d(w1 + 1, w1, 3, padding=1), sn), nn.ReLU(inplace=True), nn.Conv2d(w1, 2, 1)
        )
        # Guidance adds to the encoder's skips (strides 2..16) and to the full-resolution decoder output.
        self.guide = GuidanceEncoder((w1, c2, c4, c8, c16)) if guidance else None

    def forward(self, L: torch.Tensor, hint_ab: torch.Tensor | None = None, mask: torch.Tensor | None = None) -> torch.Tensor:
        f2, f4, f8, f16, f32 = self.encoder(L)
        g1 = None
        if self.guide is not None and mask is not None:
            g1, g2, g4, g8, g16 = self.guide(hint_ab, mask)
            f2, f4, f8, f16 = f2 + g2, f4 + g4, f8 + g8, f16 + g16
        x = self.center(f32)
        x = self.attn(self.up16(x, f16))
        x = self.up8(x, f8)
        x = self.up4(x, f4)
        x = self.up2(x, f2)
        x = self.up1(x)
        if g1 is not None:
            x = x + g1
        x = self.head(torch.cat((x, L / 50.0 - 1.0), dim=1))
        return torch.tanh(x) * AB_SCALE


@register_model("sagan-unet")
def sagan_unet(pretrained: bool = False, sn: bool = True, attention: bool = True,
               widths: tuple[int, ...] = (160, 128, 80, 48, 32, 16), guidance: bool = False) -> SaganUNet:
    """The default generator: EfficientNet-Lite0 encoder (ImageNet weights when ``pretrained``)."""
    encoder = EfficientNetLite0Encoder()
    if pretrained:
        encoder.load_imagenet()
    return SaganUNet(encoder, tuple(widths), sn=sn, attention=attention, guidance=guidance)


@register_model("sagan-unet-tiny")
def sagan_unet_tiny(sn: bool = True, attention: bool = True, width: int = 8, guidance: bool = False) -> SaganUNet:
    """Test-only variant: same decoder and attention, tiny random encoder; runs in milliseconds."""
    w = width
    return SaganUNet(TinyEncoder(w), (4 * w, 4 * w, 2 * w, 2 * w, w, w), sn=sn, attention=attention, guidance=guidance)
