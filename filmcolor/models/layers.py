"""Building blocks shared by the generators and the critic."""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

AB_SCALE = 110.0  # |a|,|b| of sRGB colours stay below ~110; generators emit tanh * AB_SCALE
DENORMAL_FLOOR = 1e-30  # attention weights below this are zeroed (see SelfAttention)


def maybe_sn(module: nn.Module, enabled: bool) -> nn.Module:
    """Wrap ``module`` in spectral normalisation (Miyato et al. 2018) when ``enabled``."""
    return spectral_norm(module) if enabled else module


def conv_bn_relu(cin: int, cout: int, *, sn: bool, k: int = 3) -> nn.Sequential:
    return nn.Sequential(
        maybe_sn(nn.Conv2d(cin, cout, k, padding=k // 2, bias=False), sn),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class SelfAttention(nn.Module):
    """SAGAN self-attention (Zhang et al. 2019): ``x + gamma * softmax(q^T k) v``; gamma starts at 0."""

    def __init__(self, channels: int, *, sn: bool = True) -> None:
        super().__init__()
        inner = max(channels // 8, 1)
        self.query = maybe_sn(nn.Conv1d(channels, inner, 1, bias=False), sn)
        self.key = maybe_sn(nn.Conv1d(channels, inner, 1, bias=False), sn)
        self.value = maybe_sn(nn.Conv1d(channels, channels, 1, bias=False), sn)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        flat = x.flatten(2)  # [N, C, HW]
        q, k, v = self.query(flat), self.key(flat), self.value(flat)
        attn = torch.softmax(torch.bmm(q.transpose(1, 2), k), dim=-1)  # [N, HW, HW]
        # A trained model's softmax holds denormal floats (exp of very negative scores; 3% of the default
        # model's weights), which x86 CPUs multiply in microcode: zeroing them (< 1e-30, far below any
        # effect on a colour) took this block from 13 to 1.5 ms at 256x448 in PyTorch and ONNX Runtime.
        attn = attn.masked_fill(attn < DENORMAL_FLOOR, 0.0)
        out = torch.bmm(v, attn.transpose(1, 2))  # [N, C, HW]
        return x + self.gamma * out.view(n, c, h, w)


class PixelShuffleUp(nn.Module):
    """Learned 2x upsampling: 1x1 conv to 4x channels, pixel shuffle, ReLU (ICNR-initialised)."""

    def __init__(self, cin: int, cout: int, *, sn: bool) -> None:
        super().__init__()
        conv = nn.Conv2d(cin, cout * 4, 1)
        _icnr_(conv.weight, 2)
        self.conv = maybe_sn(conv, sn)
        self.shuffle = nn.PixelShuffle(2)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.shuffle(self.conv(x)))

    def as_transposed(self) -> "TransposedShuffleUp":
        """The same function as one stride-2 transposed convolution (for export; weights baked)."""
        return TransposedShuffleUp(self)


class TransposedShuffleUp(nn.Module):
    """``PixelShuffleUp`` rewritten as ``ConvTranspose2d(k=2, s=2)``: identical output (float rounding).

    A 1x1 conv to ``4c`` channels followed by pixel shuffle puts ``W[4j + 2dy + dx] . x[:, y, x]`` at
    output pixel ``(2y + dy, 2x + dx)`` of channel ``j``: exactly a transposed conv with kernel 2 and
    stride 2 (no overlap). Its bias differs per sub-pixel ``(dy, dx)``, which a transposed conv's
    per-channel bias cannot hold, so the periodic bias comes from a 1-channel transposed conv of ones.
    Why: ONNX Runtime's CPU kernels run convs in a blocked NCHWc layout that DepthToSpace (pixel
    shuffle) leaves, so each shuffle costs two layout reorders; this form runs the default model about
    10% faster there. PyTorch keeps the original module.
    """

    def __init__(self, up: PixelShuffleUp) -> None:
        super().__init__()
        conv = up.conv
        weight = conv.weight.detach()  # [4c, cin, 1, 1] (spectral norm already baked by the caller)
        bias = conv.bias.detach() if conv.bias is not None else weight.new_zeros(weight.shape[0])
        c4, cin = weight.shape[:2]
        c = c4 // 4
        self.up = nn.ConvTranspose2d(cin, c, 2, stride=2, bias=False)
        self.bias = nn.ConvTranspose2d(1, c, 2, stride=2, bias=False)
        with torch.no_grad():
            self.up.weight.copy_(weight[:, :, 0, 0].reshape(c, 2, 2, cin).permute(3, 0, 1, 2))
            self.bias.weight.copy_(bias.reshape(1, c, 2, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.up(x) + self.bias(torch.ones_like(x[:, :1])))


def export_friendly(model: nn.Module) -> nn.Module:
    """Swap every ``PixelShuffleUp`` of ``model`` (in place) for its ``TransposedShuffleUp`` twin."""
    for name, child in list(model.named_children()):
        if isinstance(child, PixelShuffleUp):
            setattr(model, name, child.as_transposed())
        else:
            export_friendly(child)
    return model


def _icnr_(weight: torch.Tensor, scale: int) -> None:
    """ICNR init (Aitken et al. 2017) so pixel shuffle starts as nearest-neighbour: no checkerboard."""
    out, cin, kh, kw = weight.shape
    sub = torch.empty(out // scale**2, cin, kh, kw)
    nn.init.kaiming_normal_(sub)
    with torch.no_grad():
        weight.copy_(sub.repeat_interleave(scale**2, dim=0))


def baked_copy(model: nn.Module) -> nn.Module:
    """A deep copy in eval mode with every parametrisation (spectral norm) replaced by its current value.

    Unlike ``deepcopy`` + ``parametrize.remove_parametrizations`` (which deletes the property from the
    ``Parametrized*`` class that the copy *shares* with the original, breaking the original model),
    this only swaps the copy's own ``__class__`` back and never touches the shared class.
    """
    m = copy.deepcopy(model).eval()
    for mod in list(m.modules()):
        if not parametrize.is_parametrized(mod):
            continue
        baked = {}
        with torch.no_grad():
            for name, plist in mod.parametrizations.items():
                baked[name] = (getattr(mod, name).detach().clone(), isinstance(plist.original, nn.Parameter))
        mod.__class__ = mod.__class__.__bases__[0]
        del mod._modules["parametrizations"]
        for name, (value, is_param) in baked.items():
            if is_param:
                mod.register_parameter(name, nn.Parameter(value, requires_grad=False))
            else:
                mod.register_buffer(name, value)
    return m
