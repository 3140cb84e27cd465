"""Colour conversions: sRGB <-> CIE Lab (D65) and Y'CbCr, as pure tensor functions.

Every function works on any device and float dtype; shapes are channel-first ``[..., C, H, W]``.
Lab follows CIE 1976 with the D65 white point and the sRGB transfer curve, which matches
scikit-image's ``rgb2lab`` (the golden values in the tests come from it).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

# sRGB (linear) -> XYZ, D65 (IEC 61966-2-1).
_RGB2XYZ = (
    (0.412453, 0.357580, 0.180423),
    (0.212671, 0.715160, 0.072169),
    (0.019334, 0.119193, 0.950227),
)
_WHITE_D65 = (0.95047, 1.0, 1.08883)
_EPS = 216.0 / 24389.0  # (6/29)^3
_KAPPA = 24389.0 / 27.0


def _matrix(rows: tuple, like: torch.Tensor) -> torch.Tensor:
    return torch.tensor(rows, dtype=like.dtype, device=like.device)


def srgb_to_linear(v: torch.Tensor) -> torch.Tensor:
    """Decode the sRGB transfer curve; ``v`` in [0, 1]."""
    return torch.where(v > 0.04045, ((v.clamp(min=0.04045) + 0.055) / 1.055) ** 2.4, v / 12.92)


def linear_to_srgb(v: torch.Tensor) -> torch.Tensor:
    """Encode the sRGB transfer curve; returns values in [0, 1] for inputs in [0, 1]."""
    v = v.clamp(0.0, 1.0)
    return torch.where(v > 0.0031308, 1.055 * v.clamp(min=0.0031308) ** (1 / 2.4) - 0.055, 12.92 * v)


def _f(t: torch.Tensor) -> torch.Tensor:
    return torch.where(t > _EPS, t.clamp(min=_EPS) ** (1 / 3), (_KAPPA * t + 16) / 116)


def _f_inv(f: torch.Tensor) -> torch.Tensor:
    return torch.where(f ** 3 > _EPS, f ** 3, (116 * f - 16) / _KAPPA)


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB ``[..., 3, H, W]`` in [0, 1] -> Lab ``[..., 3, H, W]`` (L in 0..100, a/b about -128..127)."""
    lin = srgb_to_linear(rgb)
    xyz = torch.einsum("ij,...jhw->...ihw", _matrix(_RGB2XYZ, rgb), lin)
    white = torch.tensor(_WHITE_D65, dtype=rgb.dtype, device=rgb.device).view(3, 1, 1)
    fx, fy, fz = _f(xyz / white).unbind(-3)
    return torch.stack((116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)), dim=-3)


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """Lab ``[..., 3, H, W]`` -> sRGB ``[..., 3, H, W]`` clipped to [0, 1]."""
    L, a, b = lab.unbind(-3)
    fy = (L + 16) / 116
    f = torch.stack((fy + a / 500, fy, fy - b / 200), dim=-3)
    white = torch.tensor(_WHITE_D65, dtype=lab.dtype, device=lab.device).view(3, 1, 1)
    xyz = _f_inv(f) * white
    inv = torch.linalg.inv(_matrix(_RGB2XYZ, lab).double()).to(lab.dtype)
    lin = torch.einsum("ij,...jhw->...ihw", inv, xyz)
    return linear_to_srgb(lin)


def grey_to_lab_l(v: torch.Tensor) -> torch.Tensor:
    """Lab L of a neutral grey with sRGB-encoded value ``v`` in [0, 1] (exact for R=G=B=v)."""
    return 116 * _f(srgb_to_linear(v)) - 16


def lab_l_to_grey(L: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`grey_to_lab_l`: sRGB-encoded grey value in [0, 1] for Lab ``L``."""
    return linear_to_srgb(_f_inv((L + 16) / 116))


@dataclass(frozen=True)
class YCbCrMatrix:
    """A Y'CbCr colour matrix: luma weights of R and B (G follows)."""

    name: str
    kr: float
    kb: float

    @property
    def kg(self) -> float:
        return 1.0 - self.kr - self.kb


BT601 = YCbCrMatrix("bt601", 0.299, 0.114)
BT709 = YCbCrMatrix("bt709", 0.2126, 0.0722)
BT2020 = YCbCrMatrix("bt2020nc", 0.2627, 0.0593)
MATRICES = {m.name: m for m in (BT601, BT709, BT2020)}


def rgb_to_cbcr(rgb: torch.Tensor, matrix: YCbCrMatrix) -> torch.Tensor:
    """Gamma-encoded R'G'B' ``[..., 3, H, W]`` in [0, 1] -> (Cb, Cr) ``[..., 2, H, W]`` in [-0.5, 0.5]."""
    r, g, b = rgb.unbind(-3)
    y = matrix.kr * r + matrix.kg * g + matrix.kb * b
    cb = (b - y) / (2 * (1 - matrix.kb))
    cr = (r - y) / (2 * (1 - matrix.kr))
    return torch.stack((cb, cr), dim=-3)


def ycbcr_to_rgb(y: torch.Tensor, cbcr: torch.Tensor, matrix: YCbCrMatrix) -> torch.Tensor:
    """Y' ``[..., 1, H, W]`` in [0, 1] and (Cb, Cr) in [-0.5, 0.5] -> R'G'B' ``[..., 3, H, W]``."""
    cb, cr = cbcr.unbind(-3)
    y = y.squeeze(-3)
    r = y + 2 * (1 - matrix.kr) * cr
    b = y + 2 * (1 - matrix.kb) * cb
    g = (y - matrix.kr * r - matrix.kb * b) / matrix.kg
    return torch.stack((r, g, b), dim=-3).clamp(0.0, 1.0)


@dataclass(frozen=True)
class CodeRange:
    """How integer codes map to normalised Y' in [0, 1] and Cb/Cr in [-0.5, 0.5]."""

    bits: int
    full: bool

    @property
    def _scale(self) -> float:
        return float(1 << (self.bits - 8))

    def y_to_unit(self, code: torch.Tensor) -> torch.Tensor:
        if self.full:
            return code / float((1 << self.bits) - 1)
        return (code - 16 * self._scale) / (219 * self._scale)

    def c_affine(self) -> tuple[float, float, int, int]:
        """(scale, offset, lowest, highest): chroma in [-0.5, 0.5] -> code ``round(c * scale + offset)``,
        clipped to ``[lowest, highest]``. The one definition; :meth:`c_from_unit` and the CPU finish
        (:mod:`filmcolor.video.chroma_cpu`, which folds it into its own arithmetic) both use it."""
        top = (1 << self.bits) - 1
        if self.full:
            return float(top), float(1 << (self.bits - 1)), 0, top
        s = self._scale
        return 224 * s, 128 * s, int(16 * s), int(240 * s)

    def c_from_unit(self, c: torch.Tensor) -> torch.Tensor:
        """Chroma in [-0.5, 0.5] -> integer-valued codes (float tensor, rounded and clipped)."""
        scale, offset, lo, hi = self.c_affine()
        # one temporary, then in place: a chain of fresh full-frame tensors is several times slower
        return (c * scale).add_(offset).round_().clamp_(lo, hi)

    def c_to_unit(self, code: torch.Tensor) -> torch.Tensor:
        if self.full:
            return (code - float(1 << (self.bits - 1))) / float((1 << self.bits) - 1)
        return (code - 128 * self._scale) / (224 * self._scale)


def luma_to_lab_l_lut(rng: CodeRange) -> torch.Tensor:
    """Lookup table: luma code -> Lab L (float32, one entry per code of ``rng.bits``).

    Exact for neutral greys, the case of black-and-white film; for colour sources it uses luma as a
    stand-in for luminance, which is what a grey transfer of that source would show.
    """
    codes = torch.arange(1 << rng.bits, dtype=torch.float64)
    return grey_to_lab_l(rng.y_to_unit(codes).clamp(0.0, 1.0)).float()
