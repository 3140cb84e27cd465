"""Loss terms: rebalanced L1 (Zhang et al. 2016), colour balance, the resumed LR warm-up."""

import numpy as np
import pytest
import torch

from filmcolor.train.loop import _cosine
from filmcolor.train.losses import AB_BINS, ab_prior, colour_balance, l1_ab, l1_ab_weighted, rebalance_table


def _ab(a: float, b: float, n: int = 8) -> np.ndarray:
    return np.broadcast_to(np.array([a, b], np.float32), (n, n, 2)).copy()


def test_prior_counts_pixels_per_bin():
    prior = ab_prior([_ab(0, 0), _ab(0, 0), _ab(45, -25)])
    assert prior.shape == (AB_BINS * AB_BINS,) and prior.sum() == pytest.approx(1.0)
    assert sorted(prior[prior > 0].tolist()) == pytest.approx([1 / 3, 2 / 3])


def test_rare_colours_weigh_more_and_the_expected_weight_is_one():
    prior = ab_prior([_ab(0, 0)] * 9 + [_ab(60, 40)])
    w = rebalance_table(prior, sigma_bins=0)
    grey, red = np.flatnonzero(prior > 0.5)[0], np.flatnonzero((prior > 0) & (prior < 0.5))[0]
    assert w[red] / w[grey] == pytest.approx((0.5 * 0.9 + 0.5 / 2) / (0.5 * 0.1 + 0.5 / 2))  # eq. 4, Q = 2 bins
    assert float((prior * w).sum()) == pytest.approx(1.0, rel=1e-5)
    assert w[prior == 0].tolist() == [1.0] * int((prior == 0).sum())  # unseen bins are left alone


def test_weighted_l1_blends_plain_and_rebalanced():
    torch.manual_seed(0)
    target = torch.cat((torch.zeros(1, 2, 4, 4), torch.full((1, 2, 4, 4), 50.0)))   # a grey and a saturated picture
    pred = target + torch.randn_like(target)
    table = torch.from_numpy(rebalance_table(ab_prior([_ab(0, 0), _ab(50, 50, 2)]), sigma_bins=0))
    assert torch.allclose(l1_ab_weighted(pred, target, table, strength=0.0), l1_ab(pred, target))
    full = l1_ab_weighted(pred, target, table, strength=1.0)
    err = (pred - target).abs().mean(dim=(1, 2, 3)) / 110.0
    w_grey, w_sat = (float(table[i]) for i in np.argsort(-table.numpy())[[-1, 0]])
    assert float(full) == pytest.approx(float((w_grey * err[0] + w_sat * err[1]) / 2), rel=1e-4)
    assert w_sat > w_grey


def test_colour_balance_sees_a_cast_not_a_rearrangement():
    target = torch.randn(2, 2, 8, 8) * 20
    assert float(colour_balance(target.flip(-1), target)) == pytest.approx(0.0, abs=1e-6)
    assert float(colour_balance(target + 11.0, target)) == pytest.approx(0.1, rel=1e-5)


def test_a_resumed_run_warms_up_again():
    assert _cosine(0, 1000, 1.0, warmup=100) == pytest.approx(0.01)
    resumed = [_cosine(s, 1000, 1.0, warmup=100, since=500) for s in (500, 549, 599, 700)]
    assert resumed[0] < resumed[1] < resumed[2] and resumed[0] == pytest.approx(0.01 * _cosine(500, 1000, 1.0, 0))
    assert resumed[3] == pytest.approx(_cosine(700, 1000, 1.0, warmup=0))


def test_delta_e94_matches_scikit_image():
    """Golden values: skimage.color.deltaE_ciede94 (graphic arts, reference = the truth) at equal L."""
    import numpy as np
    from skimage.color import deltaE_ciede94

    from filmcolor.models.layers import AB_SCALE
    from filmcolor.train.losses import delta_e94_ab

    rng = np.random.default_rng(3)
    truth, pred = rng.uniform(-80, 80, (2, 1, 2, 5, 7)).astype(np.float32)
    L = np.full((5, 7, 1), 50.0, np.float32)
    want = deltaE_ciede94(np.concatenate([L, truth[0].transpose(1, 2, 0)], -1),
                          np.concatenate([L, pred[0].transpose(1, 2, 0)], -1)).mean()
    got = float(delta_e94_ab(torch.from_numpy(pred), torch.from_numpy(truth), eps=0.0)) * AB_SCALE
    assert abs(got - want) < 1e-3 * want
    # saturated truths forgive the same a,b error more than grey ones do (S_C, S_H grow with chroma)
    err = torch.tensor([[[[5.0]], [[0.0]]]])
    grey, vivid = torch.zeros(1, 2, 1, 1), torch.tensor([[[[60.0]], [[0.0]]]])
    assert float(delta_e94_ab(vivid + err, vivid)) < float(delta_e94_ab(grey + err, grey)) / 3
