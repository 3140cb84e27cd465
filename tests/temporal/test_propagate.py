"""Chroma propagation along optical flow (keyframes and references share it): shifts, occlusion, decay, reset."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from filmcolor.temporal import TemporalSmoother
from filmcolor.temporal.motion import MotionTracker
from filmcolor.temporal.propagate import DEFAULT_DECAY, FlowPair, Propagator, estimate_flow, propagate

S = 64


def texture(seed: int, h: int = S, w: int = S, mean: float = 50.0, amp: float = 18.0) -> torch.Tensor:
    """Smooth random luminance ``[h, w]`` (Lab L) with gradients everywhere for the flow to follow."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    L = torch.full((h, w), mean)
    for _ in range(6):
        fx, fy, ph = (torch.rand(3, generator=g) * torch.tensor([0.5, 0.5, 6.28])).tolist()
        L += amp / 3 * torch.sin(fx * xx + fy * yy + ph)
    return L.clamp(0, 100)


def smooth_ab(seed: int, h: int = S, w: int = S) -> torch.Tensor:
    """A smooth a,b field ``[2, h, w]`` of region-sized colour patches (what a colorizer predicts)."""
    g = torch.Generator().manual_seed(seed)
    return 25 * F.interpolate(torch.randn(1, 2, 5, 5, generator=g), size=(h, w), mode="bicubic", align_corners=False)[0]


def window(big: torch.Tensor, x: int, y: int) -> torch.Tensor:
    """An ``S x S`` view of ``big`` ``[..., H, W]`` at (x, y): a camera panning over a larger scene."""
    return big[..., y:y + S, x:x + S]


def pan(dx: int, dy: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Two frames of a pan over one scene, the camera moving by (dx, dy) px: L_prev, L_t, ab_prev, ab_t."""
    big_L, big_ab = texture(1, 96, 96), smooth_ab(2, 96, 96)
    x0, y0 = 16, 16
    return (window(big_L, x0, y0)[None, None], window(big_L, x0 + dx, y0 + dy)[None, None],
            window(big_ab, x0, y0)[None], window(big_ab, x0 + dx, y0 + dy)[None])


def to(device: torch.device, *xs: torch.Tensor) -> list[torch.Tensor]:
    return [x.to(device) for x in xs]


@pytest.mark.parametrize("dx,dy", [(3, 0), (2, -2), (0, 4)])
def test_pan_is_recovered(device: torch.device, dx: int, dy: int) -> None:
    L0, L1, ab0, ab1 = to(device, *pan(dx, dy))
    flow = estimate_flow(L0, L1)
    inner = (slice(None), slice(None), slice(8, -8), slice(8, -8))
    # the content of frame 1 at x sits at x + (dx, dy) in frame 0
    torch.testing.assert_close(flow.back[inner].mean((-1, -2)).cpu(), torch.tensor([[float(dx), float(dy)]]),
                               atol=0.3, rtol=0)
    ab, conf = propagate(L0, L1, ab0, torch.ones_like(L0), flow)
    assert ab.shape == ab1.shape and conf.shape == L1.shape and ab.device.type == device.type
    still = (ab0 - ab1).abs()[inner].mean()
    err = (ab - ab1).abs()[inner].mean()
    assert err < 0.1 * still, (float(err), float(still))   # carried along the motion, not left in place
    assert float(conf[inner].mean()) > 0.9 * DEFAULT_DECAY
    assert float(conf.max()) <= DEFAULT_DECAY + 1e-6


def test_content_entering_the_frame_has_no_confidence(device: torch.device) -> None:
    L0, L1, ab0, _ = to(device, *pan(4, 0))
    _, conf = propagate(L0, L1, ab0, torch.ones_like(L0))
    assert float(conf[..., -3:].max()) < 0.05   # the right edge came into view: nothing to carry from
    assert float(conf[..., 8:-8, 8:-8].min()) > 0.5


def moving_square(step: int = 3) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A bright 20x20 textured square moving right by ``step`` px over a static background: L0, L1,
    and the masks of the background uncovered behind it and of the square's interior in frame 1."""
    bg, obj = texture(3, mean=35.0), texture(4, 20, 20, mean=80.0, amp=10.0)
    L0, L1 = bg.clone(), bg.clone()
    L0[22:42, 20:40] = obj
    L1[22:42, 20 + step:40 + step] = obj
    uncovered = torch.zeros(S, S, dtype=torch.bool)
    uncovered[24:40, 20:20 + step] = True
    interior = torch.zeros(S, S, dtype=torch.bool)
    interior[26:38, 25 + step:36 + step] = True
    return L0[None, None], L1[None, None], uncovered, interior


def test_uncovered_background_gets_low_confidence(device: torch.device) -> None:
    L0, L1, uncovered, interior = moving_square()
    ab0 = torch.zeros(1, 2, S, S)
    ab0[:, 0, 22:42, 20:40] = 40.0  # the square is red, the background grey
    L0, L1, ab0 = to(device, L0, L1, ab0)
    ab, conf = propagate(L0, L1, ab0, torch.ones_like(L0))
    conf, ab = conf[0, 0].cpu(), ab[0, 0].cpu()
    far = torch.zeros(S, S, dtype=torch.bool)
    far[4:14, 4:60] = True
    assert float(conf[uncovered].mean()) < 0.35, float(conf[uncovered].mean())
    assert float(conf[far].mean()) > 0.85 and float(conf[interior].mean()) > 0.6
    assert float(ab[interior].mean()) > 30.0  # the square took its colour with it


def test_fb_and_luma_checks_golden(device: torch.device) -> None:
    """Given flows, the confidence is the formula of the module docstring. Forward/backward tolerance
    from Sundaram et al. 2010 (ECCV, "Dense point trajectories by GPU-accelerated large displacement
    optical flow"): ``|f+b|^2 <= 0.01(|f|^2+|b|^2) + 0.5`` px^2 counts as consistent."""
    L = texture(5)[None, None].to(device)
    ab = smooth_ab(6)[None].to(device)
    one = torch.ones_like(L)

    def const(vx: float) -> torch.Tensor:
        f = torch.zeros(1, 2, S, S, device=device)
        f[:, 0] = vx
        return f

    zero = const(0.0)
    ab_c, conf = propagate(L, L, ab, one, FlowPair(zero, zero), decay=0.9)
    torch.testing.assert_close(ab_c, ab, atol=1e-4, rtol=0)  # grid_sample rounding at the identity
    torch.testing.assert_close(conf, torch.full_like(conf, 0.9))  # nothing wrong: only the decay
    # consistent pair (b=+1, f=-0.5): err 0.25 <= tol 0.5125 -> 1; inconsistent (b=+1, f=+1): err 4, tol 0.52
    L_shift = torch.roll(L, -1, -1)  # frame t(x) = frame s(x+1): back flow +1 is the truth
    _, ok = propagate(L, L_shift, ab, one, FlowPair(const(1.0), const(-0.5)), decay=1.0)
    _, bad = propagate(L, L_shift, ab, one, FlowPair(const(1.0), const(1.0)), decay=1.0)
    core = (..., slice(2, -2), slice(2, -3))
    assert float(ok[core].min()) > 0.99
    torch.testing.assert_close(bad[core], torch.full_like(bad[core], math.exp(-(4.0 - 0.52))), atol=1e-4, rtol=0)
    # a wrong flow on textured content is caught by the luminance check: exp(-e / 25), e the 3x3 mean sq. error
    _, wrong = propagate(L, L, ab, one, FlowPair(const(3.0), const(-3.0)), decay=1.0)
    assert float(wrong[core].mean()) < 0.5
    # a global exposure change (a fade) is not mistaken for misalignment
    _, fade = propagate(L, (L + 10).clamp(max=100), ab, one, FlowPair(zero, zero), decay=1.0)
    assert float(fade[L[:, :, :, :] < 88].mean()) > 0.95


def test_confidence_decays_with_distance_and_composes(device: torch.device) -> None:
    L = texture(7)[None, None].to(device)
    p = Propagator(decay=0.9)
    p.start(L, smooth_ab(8)[None].to(device))
    for k in range(1, 5):
        _, conf = p.step(L)
        assert abs(float(conf[..., 4:-4, 4:-4].mean()) - 0.9 ** k) < 0.01
    assert p.steps == 4
    half = torch.full_like(L, 0.5)
    _, c = propagate(L, L, smooth_ab(8)[None].to(device), half, decay=1.0)
    assert abs(float(c[..., 4:-4, 4:-4].mean()) - 0.5) < 0.01   # the previous confidence is carried


def test_propagator_reset_and_directions(device: torch.device) -> None:
    big_L, big_ab = texture(9, 64, 120), smooth_ab(10, 64, 120)
    frames = [window(big_L, 8 + 2 * t, 0)[None, None].to(device) for t in range(6)]
    truth = [window(big_ab, 8 + 2 * t, 0)[None].to(device) for t in range(6)]
    tracker = MotionTracker()
    motions = [tracker(L) for L in frames]
    assert motions[0].new_shot and all(not m.new_shot for m in motions[1:])
    fwd = Propagator()
    fwd.start(frames[0], truth[0])
    for t in range(1, 6):
        ab, _ = fwd.step(frames[t], motions[t].flow)
    inner = (..., slice(6, -6), slice(6, -16))
    assert float((ab - truth[5]).abs()[inner].mean()) < 2.0
    # the same flows carry a reference at the last frame back to the first
    back = Propagator(direction="backward")
    back.start(frames[5], truth[5])
    for t in range(4, -1, -1):
        ab, conf = back.step(frames[t], motions[t + 1].flow)
    inner_b = (..., slice(6, -6), slice(16, -6))
    assert float((ab - truth[0]).abs()[inner_b].mean()) < 2.0
    assert float(conf[..., :, :4].max()) < 0.05   # the left edge of frame 0 was never in view of frame 5
    fwd.reset()
    assert not fwd.active and fwd.state is None and fwd.steps == 0
    with pytest.raises(RuntimeError):
        fwd.step(frames[1])
    with pytest.raises(ValueError):
        Propagator(direction="sideways")


def test_tracker_cuts_and_size_changes(device: torch.device) -> None:
    a, b = texture(11, mean=30.0)[None, None], texture(12, mean=75.0)[None, None]
    tr = MotionTracker()
    ms = [tr(x.to(device)) for x in (a, a, b, b, b[..., :32, :48])]
    assert [m.new_shot for m in ms] == [True, False, True, False, True]
    assert [m.cut for m in ms] == [False, False, True, False, False]
    assert ms[1].flow is not None and ms[1].magnitude < 0.2 and ms[2].flow is None
    tr.reset()
    assert tr(a.to(device)).index == 0


def test_smoother_uses_the_given_motion(device: torch.device) -> None:
    """Given the tracker's motion, the smoother takes its cut decisions and flows (once per frame)
    and still removes flicker on a static scene."""
    T = 10
    L = texture(13)[None].expand(T, 1, S, S).to(device)
    g = torch.Generator().manual_seed(14)
    noisy = (smooth_ab(15)[None] + 4 * torch.randn(T, 2, 1, 1, generator=g)).to(device)
    tracker, sm = MotionTracker(), TemporalSmoother(window=0, device=device)
    out = [sm.push(L[i], noisy[i], tracker(L[i][None]))[0] for i in range(T)]
    assert torch.stack(out)[3:].var(0).mean() < 0.4 * noisy[3:].var(0).mean()
    # a cut announced by the motion (not seen by the smoother's own detector: same picture) starts a shot
    sm2 = TemporalSmoother(window=0, device=device)
    m = tracker(L[0][None])
    cut = type(m)(index=m.index, new_shot=True, cut=True, flow=None)
    sm2.push(L[0], noisy[0], m)
    first = sm2.push(L[1], noisy[1], cut)[0]
    assert torch.equal(first, noisy[1]) and sm2.cuts == [1]


def test_floor_keeps_a_share_of_confidence_where_checks_fail(device: torch.device) -> None:
    """References (``floor``): content entering the frame (outside, and its checks fail) keeps
    ``floor^2 x decay`` instead of nothing, and where the checks pass the confidence is as without a floor."""
    L0, L1, ab0, _ = to(device, *pan(4, 0))
    flow = estimate_flow(L0, L1)
    _, plain = propagate(L0, L1, ab0, torch.ones_like(L0), flow)
    _, floored = propagate(L0, L1, ab0, torch.ones_like(L0), flow, floor=0.3)
    edge = (..., slice(None), slice(-3, None))
    assert float(floored[edge].min()) >= 0.09 * DEFAULT_DECAY - 1e-5 > float(plain[edge].max())
    assert float(floored.max()) <= DEFAULT_DECAY + 1e-6
    inner = (..., slice(8, -8), slice(8, -8))
    assert float((floored[inner] - plain[inner]).min()) >= -1e-6   # never lower than without a floor
    with pytest.raises(ValueError, match="floor"):
        Propagator(floor=1.0)


@pytest.mark.parametrize("dx,dy", [(4, 0), (2, -2)])
def test_half_size_flow_carries_colour_at_full_size(device: torch.device, dx: int, dy: int) -> None:
    """The pipeline's flow is at half render size (MotionTracker(scale=0.5)): propagate checks it at that
    size and carries colour and confidence at full size, almost as well as a full-size flow."""
    n = 128  # the flow is shrunk only where its short side stays at least 64 px
    big_L, big_ab = texture(1, 192, 192), smooth_ab(2, 192, 192)
    L0, L1 = big_L[None, None, 32:32 + n, 32:32 + n], big_L[None, None, 32 + dy:32 + dy + n, 32 + dx:32 + dx + n]
    ab0, ab1 = big_ab[None, :, 32:32 + n, 32:32 + n], big_ab[None, :, 32 + dy:32 + dy + n, 32 + dx:32 + dx + n]
    L0, L1, ab0, ab1 = to(device, L0, L1, ab0, ab1)
    tracker = MotionTracker(scale=0.5)
    tracker(L0)
    motion = tracker(L1)
    assert motion.flow.size == (n // 2, n // 2)
    assert abs(motion.relative_magnitude - math.hypot(dx, dy) / n) < 0.3 * math.hypot(dx, dy) / n
    ab, conf = propagate(L0, L1, ab0, torch.ones_like(L0), motion.flow)
    full, _ = propagate(L0, L1, ab0, torch.ones_like(L0), estimate_flow(L0, L1))
    assert ab.shape == ab1.shape and conf.shape == L1.shape
    inner = (slice(None), slice(None), slice(8, -8), slice(8, -8))
    still = (ab0 - ab1).abs()[inner].mean()
    err, err_full = (ab - ab1).abs()[inner].mean(), (full - ab1).abs()[inner].mean()
    assert err < 0.15 * still and err < 2.0 * err_full + 0.05, (float(err), float(err_full), float(still))
    assert float(conf[inner].mean()) > 0.8 * DEFAULT_DECAY
    edge = (slice(None), slice(None), slice(None), slice(-2, None)) if dx > 0 else None
    if edge is not None:  # content entering from the right still has no confidence
        assert float(conf[edge].max()) < 0.2
