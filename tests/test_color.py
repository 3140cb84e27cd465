"""Colour maths against scikit-image (the golden source) and round trips."""

import numpy as np
import pytest
import torch
from skimage.color import lab2rgb, rgb2lab

from filmcolor.color import (BT601, BT709, CodeRange, grey_to_lab_l, lab_l_to_grey, lab_to_rgb, luma_to_lab_l_lut,
                             rgb_to_cbcr, rgb_to_lab, ycbcr_to_rgb)


def test_rgb_to_lab_matches_skimage(device, dtype):
    rng = np.random.default_rng(0)
    rgb = rng.random((8, 8, 3))
    ref = rgb2lab(rgb)
    got = rgb_to_lab(torch.from_numpy(rgb).permute(2, 0, 1).to(device, dtype)).permute(1, 2, 0).cpu().double().numpy()
    assert np.abs(got - ref).max() < 1e-3


def test_golden_values():
    # skimage.color.rgb2lab: pure sRGB red -> (53.24, 80.09, 67.20); white -> (100, 0, 0)
    lab = rgb_to_lab(torch.tensor([[[1.0]], [[0.0]], [[0.0]]]))
    assert torch.allclose(lab.flatten(), torch.tensor([53.2408, 80.0925, 67.2032]), atol=1e-2)
    white = rgb_to_lab(torch.ones(3, 1, 1)).flatten()
    assert torch.allclose(white, torch.tensor([100.0, 0.0, 0.0]), atol=1e-2)


def test_lab_to_rgb_matches_skimage():
    rng = np.random.default_rng(1)
    rgb = rng.random((6, 6, 3))
    lab = rgb2lab(rgb)
    got = lab_to_rgb(torch.from_numpy(lab).permute(2, 0, 1).float()).permute(1, 2, 0).double().numpy()
    assert np.abs(got - lab2rgb(lab)).max() < 1e-4
    assert np.abs(got - rgb).max() < 1e-4


def test_grey_l_round_trip():
    v = torch.linspace(0, 1, 101, dtype=torch.float64)
    L = grey_to_lab_l(v)
    ref = rgb2lab(np.repeat(v.numpy()[:, None, None], 3, axis=2))[..., 0, 0]
    assert np.abs(L.numpy() - ref).max() < 1e-4  # skimage sums its XYZ matrix rows slightly off 1
    assert torch.allclose(lab_l_to_grey(L), v, atol=1e-9)


@pytest.mark.parametrize("matrix", [BT601, BT709])
def test_ycbcr_round_trip(matrix):
    rgb = torch.rand(3, 5, 5, dtype=torch.float64)
    y = (matrix.kr * rgb[0] + matrix.kg * rgb[1] + matrix.kb * rgb[2])[None]
    back = ycbcr_to_rgb(y, rgb_to_cbcr(rgb, matrix), matrix)
    assert torch.allclose(back, rgb, atol=1e-9)


def test_code_ranges():
    limited, full = CodeRange(8, False), CodeRange(8, True)
    assert limited.y_to_unit(torch.tensor(16.0)) == 0 and limited.y_to_unit(torch.tensor(235.0)) == 1
    assert limited.c_from_unit(torch.tensor(0.0)) == 128 and limited.c_from_unit(torch.tensor(0.5)) == 240
    assert full.c_from_unit(torch.tensor(-0.5)) == 0
    ten = CodeRange(10, False)
    assert ten.c_from_unit(torch.tensor(0.0)) == 512 and ten.y_to_unit(torch.tensor(940.0)) == 1
    lut = luma_to_lab_l_lut(limited)
    assert lut.shape == (256,) and lut[16] == 0 and abs(lut[235] - 100) < 1e-4 and bool((lut.diff() >= 0).all())


@pytest.mark.parametrize("r", [1, 2, 5])
def test_box_mean_matches_pooling_with_replicated_edges(r):
    from filmcolor.video.chroma import box

    torch.manual_seed(0)
    x = torch.rand(2, 3, 37, 53)
    ref = torch.nn.functional.avg_pool2d(torch.nn.functional.pad(x, (r, r, r, r), mode="replicate"), 2 * r + 1,
                                         stride=1)
    out = box(x, r)
    assert out.shape == x.shape
    assert (out - ref).abs().max() < 1e-5


def test_guided_upsample_keeps_a_flat_colour_and_follows_a_luma_edge():
    from filmcolor.video.chroma import fast_guided_upsample

    guide_hi = torch.zeros(1, 1, 64, 64)
    guide_hi[..., 32:] = 1.0  # a vertical edge at x = 32
    guide_lo = guide_hi[..., ::4, ::4]
    flat = torch.full((1, 2, 16, 16), 0.25)
    assert (fast_guided_upsample(flat, guide_lo, guide_hi) - 0.25).abs().max() < 1e-4
    step = guide_lo.repeat(1, 2, 1, 1) * 0.4 - 0.2  # chroma that changes exactly at the luma edge
    up = fast_guided_upsample(step, guide_lo, guide_hi, eps=1e-4)
    assert (up[..., :, :31] + 0.2).abs().max() < 0.02 and (up[..., :, 33:] - 0.2).abs().max() < 0.02


def test_guided_upsample_keeps_render_size_detail():
    """At equal sizes the upsampling returns its input (the plain fast guided filter smoothed it over its
    boxes: 5-6 dB lost on a reference frame's exact chroma)."""
    from filmcolor.video.chroma import fast_guided_upsample

    g = torch.Generator().manual_seed(0)
    guide = torch.rand(1, 1, 24, 40, generator=g)
    src = torch.rand(1, 2, 24, 40, generator=g) - 0.5   # chroma with detail the luma does not explain
    assert (fast_guided_upsample(src, guide, guide) - src).abs().max() < 1e-5
