"""Edge-aware spreading of guidance residuals (filmcolor.spread) and how predict_ab routes guidance."""

import torch

from filmcolor.inference import SPARSE, predict_ab
from filmcolor.spread import spread_guidance


def _patch(h: int, w: int, y: int, x: int, ab: tuple[float, float], size: int = 6):
    hint, mask = torch.zeros(1, 2, h, w), torch.zeros(1, 1, h, w)
    hint[0, 0, y:y + size, x:x + size], hint[0, 1, y:y + size, x:x + size] = ab
    mask[..., y:y + size, x:x + size] = 1.0
    return hint, mask


def test_no_guidance_changes_nothing():
    L, ab = torch.rand(2, 1, 32, 48) * 100, torch.randn(2, 2, 32, 48) * 10
    assert torch.equal(spread_guidance(L, ab, torch.ones(2, 2, 32, 48) * 50, torch.zeros(2, 1, 32, 48)), ab)


def test_a_hint_corrects_its_region_and_fades_with_distance():
    L, ab = torch.full((1, 1, 64, 256), 50.0), torch.zeros(1, 2, 64, 256)
    hint, mask = _patch(64, 256, 29, 10, (30.0, -20.0))
    out = spread_guidance(L, ab, hint, mask)
    a = out[0, 0, 32]
    assert 25 < float(a[20]) <= 30.5                      # next to the patch: nearly the hint's colour
    assert float(a[20]) > float(a[100]) > float(a[140]) > float(a[250]) >= 0  # fading smoothly with distance
    assert torch.allclose(out[0, 1, 32, 20] / out[0, 0, 32, 20], torch.tensor(-20 / 30), atol=1e-3)  # its hue


def test_a_hint_does_not_cross_a_lightness_edge():
    L = torch.full((1, 1, 64, 128), 20.0)
    L[..., 64:] = 80.0                                      # a dark left half, a light right half
    hint, mask = _patch(64, 128, 29, 50, (30.0, 0.0))
    out = spread_guidance(L, torch.zeros(1, 2, 64, 128), hint, mask)[0, 0, 32]
    assert float(out[60]) > 20 and float(out[68]) < 2       # the same distance either side of the edge


def test_a_hint_does_not_cross_a_model_colour_edge_at_equal_lightness():
    # one grey level, but the model saw two objects: blue-ish left, red-ish right
    L, ab = torch.full((1, 1, 64, 128), 50.0), torch.zeros(1, 2, 64, 128)
    ab[:, 1, :, :64], ab[:, 0, :, 64:] = -30.0, 40.0
    hint, mask = _patch(64, 128, 29, 50, (0.0, -50.0))       # the user makes the left object bluer
    out = spread_guidance(L, ab, hint, mask)[0, :, 32]
    assert float(out[1, 60]) < -45 and abs(float(out[1, 68])) < 2 and abs(float(out[0, 68]) - 40) < 2
    lightness_only = spread_guidance(L, ab, hint, mask, sigma_ab=None)[0, :, 32]
    assert float(lightness_only[1, 68]) < -10                 # without the colour axes it leaks across


def test_pictures_of_a_batch_are_spread_independently():
    L, ab = torch.rand(2, 1, 48, 64) * 100, torch.randn(2, 2, 48, 64) * 10
    hint, mask = _patch(48, 64, 20, 20, (30.0, -20.0))
    hint, mask = torch.cat([hint, hint * 0]), torch.cat([mask, mask * 0])
    both = spread_guidance(L, ab, hint, mask)
    assert torch.allclose(both[:1], spread_guidance(L[:1], ab[:1], hint[:1], mask[:1]), atol=1e-5)
    assert torch.equal(both[1], ab[1])                         # no hints in the second: untouched


def test_sparse_hints_correct_the_automatic_model_dense_guidance_feeds_the_guided_one():
    calls = []

    def infer(L, guidance=None):
        calls.append(None if guidance is None else float(guidance[1].sum()))
        return torch.full((L.shape[0], 2, *L.shape[-2:]), 5.0)

    L = torch.full((1, 1, 64, 64), 50.0)
    hint, mask = _patch(64, 64, 10, 10, (40.0, 0.0))       # 36 of 4096 pixels: sparse
    assert float(mask.mean()) < SPARSE
    ab = predict_ab(infer, L, guidance=(hint, mask), guided=True)
    assert calls == [None]                                   # the automatic model, corrected by spreading
    assert float(ab[0, 0, 20, 20]) > 30 and torch.equal(ab[0, :, 10:16, 10:16], hint[0, :, 10:16, 10:16])
    dense = torch.zeros(1, 1, 64, 64)
    dense[..., :32] = 1.0
    ab = predict_ab(infer, L, guidance=(hint * 0 + 40.0, dense), guided=True)
    assert calls[-1] == 2048.0                               # the guided model sees the reference
    assert float(ab[0, 0, 0, 40]) == 5.0                     # and nothing is spread beyond it
    # a batch mixing both: the sparse frame's hints reach the model as an empty mask
    both = predict_ab(infer, L.repeat(2, 1, 1, 1), guidance=(torch.cat([hint, hint * 0 + 40.0]), torch.cat([mask, dense])),
                      guided=True)
    assert calls[-1] == 2048.0 and float(both[0, 0, 20, 20]) > 30 and float(both[1, 0, 0, 40]) == 5.0


def test_hint_evaluation_runs_the_model_once_per_picture(tmp_path):
    import cv2
    import numpy as np

    from filmcolor.evaluate import evaluate_hints
    from filmcolor.inference import Predictor

    calls = []

    def infer(L, guidance=None):
        calls.append(guidance is not None)
        return torch.zeros(L.shape[0], 2, *L.shape[-2:])

    for i, colours in enumerate((((40, 60, 200), (200, 180, 60)), ((30, 160, 40), (220, 90, 120)))):
        picture = np.zeros((64, 96, 3), np.uint8)
        picture[:, :48], picture[:, 48:] = colours       # BGR: two flat regions of different lightness
        cv2.imwrite(str(tmp_path / f"p{i}.png"), picture)
    rows = evaluate_hints(Predictor(infer=infer, render_size=64), tmp_path, (0, 2, 10))
    assert calls == [False, False]                       # one automatic run per picture, for all counts
    assert rows[2]["psnr"] > rows[1]["psnr"] > rows[0]["psnr"]  # more truth revealed, closer to it


def test_reach_steps_one_per_scale_and_none_means_plain_reach():
    import pytest

    L, ab = torch.full((1, 1, 32, 64), 50.0), torch.zeros(1, 2, 32, 64)
    hint, mask = _patch(32, 64, 12, 10, (30.0, -20.0))
    scales = (0.5, 0.06)
    plain = spread_guidance(L, ab, hint, mask, scales=scales, reach_steps=None)
    assert torch.equal(plain, spread_guidance(L, ab, hint, mask, scales=scales, reach_steps=(1.0, 1.0)))
    shy = spread_guidance(L, ab, hint, mask, scales=scales, reach_steps=(1.0, 3.0))
    assert not torch.equal(plain, shy)  # the factor reaches the finest level
    with pytest.raises(ValueError, match="one factor per scale"):
        spread_guidance(L, ab, hint, mask, scales=scales, reach_steps=(1.0,))
