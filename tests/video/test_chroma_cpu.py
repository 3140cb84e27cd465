"""The OpenCV chroma finish against the torch reference (the maths of filmcolor.video.chroma)."""

import numpy as np
import pytest
import torch

from filmcolor.color import BT601, BT709, lab_to_rgb, rgb_to_cbcr
from filmcolor.video.chroma import fast_guided_upsample, lab_to_chroma
from filmcolor.video.chroma_cpu import cbcr_weights, finish_chroma_cpu


def _inputs(h=48, w=80, H=72, W=120, seed=0):
    g = torch.Generator().manual_seed(seed)
    L = torch.rand(2, 1, h, w, generator=g) * 100
    ab = torch.randn(2, 2, h, w, generator=g) * 40          # many colours out of the sRGB gamut
    hi = torch.rand(2, 1, H, W, generator=g)
    lo = torch.nn.functional.interpolate(hi, size=(h, w), mode="area")
    return L, ab, lo, hi


@pytest.mark.parametrize("matrix", [BT601, BT709])
def test_cbcr_weights_are_rgb_to_cbcr(matrix):
    rgb = torch.rand(1, 3, 4, 5)
    want = rgb_to_cbcr(rgb, matrix)[0].permute(1, 2, 0).numpy()
    got = rgb[0].permute(1, 2, 0).numpy() @ cbcr_weights(matrix).T
    assert np.abs(got - want).max() < 1e-6


@pytest.mark.parametrize("matrix", [BT601, BT709])
def test_cpu_finish_matches_torch_reference(matrix):
    L, ab, lo, hi = _inputs()
    want = fast_guided_upsample(lab_to_chroma(L, ab, matrix), lo, hi)
    got = finish_chroma_cpu(L, ab, lo, hi, matrix)
    assert got.shape == want.shape == (2, 2, 72, 120) and got.dtype == torch.float32
    err = (got - want).abs()
    # OpenCV's Lab -> sRGB is within 6e-4 of scikit-image's maths; an 8-bit chroma code is 1/224 = 4.5e-3
    assert float(err.max()) < 1.5e-3 and float(err.mean()) < 1e-4


def test_cpu_lab_to_rgb_clips_like_the_reference():
    import cv2

    lab = torch.tensor([[[[50.0]], [[120.0]], [[-120.0]]], [[[99.0]], [[-90.0]], [[90.0]]]]).reshape(2, 3, 1, 1)
    want = lab_to_rgb(lab).permute(0, 2, 3, 1).numpy()
    got = np.stack([cv2.cvtColor(np.ascontiguousarray(x.permute(1, 2, 0).numpy()), cv2.COLOR_Lab2RGB) for x in lab])
    assert np.abs(got - want).max() < 1e-3


@pytest.mark.parametrize("bits,full", [(8, False), (8, True), (10, False)])
def test_cpu_codes_match_float_finish_then_conversion(bits, full):
    """The fused finish (code scale folded in, rounding on store) gives the codes of the float finish
    followed by CodeRange.c_from_unit, up to float rounding at .5."""
    from filmcolor.color import CodeRange
    from filmcolor.video.chroma_cpu import finish_chroma_cv2, finish_codes_cv2

    L, ab, lo, hi = _inputs(seed=3)
    codes, dtype = CodeRange(bits, full), "uint8" if bits == 8 else "uint16"
    args = (L[0, 0].numpy(), ab[0].numpy(), lo[0, 0].numpy(), hi[0, 0].numpy(), BT709)
    want = codes.c_from_unit(torch.from_numpy(finish_chroma_cv2(*args))).numpy()
    got = finish_codes_cv2(*args, codes, dtype)
    _, _, low, high = codes.c_affine()
    for c in range(2):
        assert got[c].dtype == np.dtype(dtype) and got[c].shape == (72, 120)
        diff = np.abs(got[c].astype(np.int64) - want[c].astype(np.int64))
        assert diff.max() <= 1 and diff.mean() < 1e-3
        assert got[c].min() >= low and got[c].max() <= high
