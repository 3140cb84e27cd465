"""Output formats and pixel-format bookkeeping: what to encode with, and how planes are laid out."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the colour maths import torch: loaded where used, so the CLI's checks stay torch-free
    from ..color import CodeRange, YCbCrMatrix

STILL_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".dpx", ".exr"}


from ..errors import FormatError  # noqa: F401  (re-exported: its historical home)


@dataclass(frozen=True)
class CodecDefaults:
    codec: str
    options: dict
    pix_fmt_8: str
    pix_fmt_10: str


# Output format follows the extension: .mp4 H.264, .mov ProRes 422 HQ, .mkv FFV1 (lossless archival).
# H.264 at CRF 18 with x264's veryfast preset, the setting of the usual quick transcode
# (`ffmpeg -c:v libx264 -preset veryfast -crf 18`): with x264's own default, medium, the encoder took 65% of
# a run's CPU. 480 frames of 720p (2-core AMD EPYC, default mode): medium 18.9 s, 774 MiB peak RSS (its 40-frame
# look-ahead), 9.9 MB, output luma 48.5 dB PSNR against the source's; veryfast 11.4 s, 671 MiB, 8.1 MB, 46.8 dB
# (faster: 13.3 s, 707 MiB, 9.0 MB, 47.8 dB). `--preset` picks another; .mkv is lossless.
H264 = {"crf": "18", "preset": "veryfast"}
CONTAINER_DEFAULTS: dict[str, CodecDefaults] = {
    ".mp4": CodecDefaults("libx264", H264, "yuv420p", "yuv420p10le"),
    ".m4v": CodecDefaults("libx264", H264, "yuv420p", "yuv420p10le"),
    ".mov": CodecDefaults("prores_ks", {"profile": "3"}, "yuv422p10le", "yuv422p10le"),
    ".mkv": CodecDefaults("ffv1", {"level": "3", "slicecrc": "1"}, "yuv420p", "yuv420p10le"),
    ".avi": CodecDefaults("ffv1", {"level": "3"}, "yuv420p", "yuv420p10le"),
    ".webm": CodecDefaults("libvpx-vp9", {"crf": "24", "b": "0"}, "yuv420p", "yuv420p10le"),
}


@dataclass(frozen=True)
class PlanarYUV:
    """A planar Y'CbCr layout: bit depth, chroma subsampling shifts, code range."""

    name: str
    bits: int
    log2_w: int  # chroma width = ceil(W / 2**log2_w)
    log2_h: int
    full_range: bool

    @property
    def code_range(self) -> CodeRange:
        from ..color import CodeRange

        return CodeRange(self.bits, self.full_range)

    @property
    def dtype(self) -> str:
        return "uint8" if self.bits == 8 else "uint16"

    def chroma_size(self, width: int, height: int) -> tuple[int, int]:
        return -(-width // (1 << self.log2_w)), -(-height // (1 << self.log2_h))


_SUB = {"420": (1, 1), "422": (1, 0), "444": (0, 0), "440": (0, 1), "411": (2, 0)}


def parse_planar(pix_fmt: str) -> PlanarYUV | None:
    """``yuv420p10le`` -> PlanarYUV(bits=10, 4:2:0); None for anything that is not planar Y'CbCr."""
    name = pix_fmt
    full = pix_fmt.startswith("yuvj")
    body = pix_fmt[4:] if full else pix_fmt[3:] if pix_fmt.startswith("yuv") else None
    if body is None or len(body) < 4 or body[:3] not in _SUB or body[3] != "p":
        return None
    rest = body[4:]
    bits = 8
    if rest:
        if not rest.endswith("le"):
            return None
        try:
            bits = int(rest[:-2])
        except ValueError:
            return None
    lw, lh = _SUB[body[:3]]
    return PlanarYUV(name, bits, lw, lh, full)


def grey_bits(pix_fmt: str) -> int | None:
    """Bit depth of a grey pixel format (``gray``, ``gray10le``, ...), else None."""
    if pix_fmt == "gray":
        return 8
    if pix_fmt.startswith("gray") and pix_fmt.endswith("le"):
        try:
            return int(pix_fmt[4:-2])
        except ValueError:
            return None
    return None


def source_bits(pix_fmt: str) -> int:
    """Best guess of a source format's bit depth (for choosing 8- or 10-bit output)."""
    planar = parse_planar(pix_fmt)
    if planar:
        return planar.bits
    g = grey_bits(pix_fmt)
    if g:
        return g
    return 16 if any(t in pix_fmt for t in ("48", "64", "16", "10", "12")) else 8


def choose_matrix(colorspace: str | None, height: int) -> YCbCrMatrix:
    """The source's tagged matrix, else BT.709 for HD (>= 720 lines) and BT.601 for SD."""
    from ..color import BT601, BT709, MATRICES

    tag = (colorspace or "").lower()
    if "709" in tag:
        return BT709
    if "2020" in tag:
        return MATRICES["bt2020nc"]
    if any(t in tag for t in ("601", "470", "170m", "smpte170")):
        return BT601
    return BT709 if height >= 720 else BT601


def output_defaults(path: Path, codec: str | None) -> CodecDefaults:
    suffix = path.suffix.lower()
    if suffix in CONTAINER_DEFAULTS:
        d = CONTAINER_DEFAULTS[suffix]
    elif codec is None:
        raise FormatError(f"unsupported output extension {suffix!r}: use one of {', '.join(sorted(CONTAINER_DEFAULTS))}")
    else:
        d = CodecDefaults(codec, {}, "yuv420p", "yuv420p10le")
    if codec and codec != d.codec:
        return CodecDefaults(codec, {}, d.pix_fmt_8, d.pix_fmt_10)
    return d
