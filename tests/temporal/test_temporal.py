"""Temporal smoother: output accounting, flicker reduction, no ghosting, scene cuts, reset."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from filmcolor.temporal import TemporalSmoother
from filmcolor.temporal.flow import Warper, compose, scaled_size
from filmcolor.temporal.scenecut import SceneCutDetector, cut_score, thumbnail

S = 64


def texture(seed: int, mean: float = 50.0, size: int = S, amp: float = 18.0) -> torch.Tensor:
    """A smooth random luminance texture ``[size, size]`` (Lab L), with gradients for the flow to follow."""
    g = torch.Generator().manual_seed(seed)
    r = torch.arange(size, dtype=torch.float32)
    yy, xx = torch.meshgrid(r, r, indexing="ij")
    L = torch.full((size, size), mean)
    for _ in range(6):
        fx, fy, ph = (torch.rand(3, generator=g) * torch.tensor([0.5, 0.5, 6.28])).tolist()
        L += amp / 3 * torch.sin(fx * xx + fy * yy + ph)
    return L.clamp(0, 100)


def moving_scene(T: int, step: int = 2) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Static background (blue) with a 16x16 textured bright square (red) moving right by ``step`` px/frame.

    Returns L ``[T,1,S,S]``, true ab ``[T,2,S,S]`` and the square's mask ``[T,S,S]``."""
    bg, obj = texture(1, 40.0), texture(2, 75.0, size=16, amp=12.0)
    Ls, abs_, masks = [], [], []
    for t in range(T):
        L, ab, m = bg.clone(), torch.zeros(2, S, S), torch.zeros(S, S, dtype=torch.bool)
        ab[1] = -30.0
        x0 = 8 + step * t
        L[24:40, x0:x0 + 16] = obj
        ab[0, 24:40, x0:x0 + 16], ab[1, 24:40, x0:x0 + 16] = 45.0, 20.0
        m[24:40, x0:x0 + 16] = True
        Ls.append(L[None]), abs_.append(ab), masks.append(m)
    return torch.stack(Ls), torch.stack(abs_), torch.stack(masks)


def run(sm: TemporalSmoother, L: torch.Tensor, ab: torch.Tensor, device: torch.device) -> list[torch.Tensor]:
    out = []
    for i in range(L.shape[0]):
        out += sm.push(L[i].to(device), ab[i].to(device))
    return out + sm.flush()


@pytest.mark.parametrize("window", [0, 2])
def test_every_frame_comes_out_once_in_order(device: torch.device, window: int) -> None:
    T = 7
    L = texture(0).expand(T, 1, S, S)
    ab = torch.arange(T, dtype=torch.float32).view(T, 1, 1, 1).expand(T, 2, S, S).contiguous()
    sm = TemporalSmoother(strength=0.0, window=window, device=device)  # strength 0: the identity, shows order
    counts, out = [], []
    for i in range(T):
        got = sm.push(L[i].to(device), ab[i].to(device))
        counts.append(len(got))
        out += got
    rest = sm.flush()
    assert sm.latency == window
    assert counts == [0] * window + [1] * (T - window)
    assert len(rest) == window
    out += rest
    assert len(out) == T and all(o.shape == (2, S, S) and o.device.type == device.type for o in out)
    assert [float(o.mean()) for o in out] == list(range(T))


@pytest.mark.parametrize("window", [0, 3])
def test_counts_with_smoothing_and_short_clip(device: torch.device, window: int) -> None:
    L, ab, _ = moving_scene(5)
    sm = TemporalSmoother(window=window, device=device)
    counts = [len(sm.push(L[i].to(device), ab[i].to(device))) for i in range(5)]
    assert counts == ([1] * 5 if window == 0 else [0, 0, 0, 1, 1])
    assert len(sm.flush()) == window
    sm2 = TemporalSmoother(window=window, device=device)  # fewer frames than the window
    assert len(sm2.push(L[0].to(device), ab[0].to(device))) == (1 if window == 0 else 0)
    assert len(sm2.flush()) == (0 if window == 0 else 1)


def blotches(T: int, g: torch.Generator, amp: float) -> torch.Tensor:
    """Per-frame region-sized chroma noise ``[T,2,S,S]``: the usual flicker of a per-frame colorizer."""
    return amp * F.interpolate(torch.randn(T, 2, 6, 6, generator=g), size=(S, S), mode="bicubic", align_corners=False)


@pytest.mark.parametrize("window,blur", [(0, 2), (2, 2), (0, 0), (2, 0)])
def test_static_scene_flicker_is_reduced(device: torch.device, window: int, blur: int) -> None:
    T = 16
    g = torch.Generator().manual_seed(3)
    L = texture(0).expand(T, 1, S, S)
    base = torch.stack((torch.full((S, S), 20.0), torch.full((S, S), -10.0)))
    noisy = base + 4 * torch.randn(T, 2, 1, 1, generator=g) + blotches(T, g, 4.0)
    if blur == 0:  # without the correction blur, pixel-scale noise is smoothed as well
        noisy = noisy + 3 * torch.randn(T, 2, S, S, generator=g)
    sm = TemporalSmoother(window=window, device=device, correction_blur=blur)
    out = torch.stack(run(sm, L, noisy, device)).cpu()
    inp_var = noisy[4:].var(0).mean()
    out_var = out[4:].var(0).mean()
    assert out_var < 0.4 * inp_var, (float(out_var), float(inp_var))
    assert (out[4:].mean((0, 2, 3)) - noisy[4:].mean((0, 2, 3))).abs().max() < 1.5, out[4:].mean((0, 2, 3))  # no bias


@pytest.mark.parametrize("window", [0, 2])
def test_moving_object_keeps_its_colour(device: torch.device, window: int) -> None:
    T = 12
    L, truth, mask = moving_scene(T)
    g = torch.Generator().manual_seed(4)
    pred = truth + 2 * torch.randn(T, 2, 1, 1, generator=g)
    out = torch.stack(run(TemporalSmoother(window=window, device=device), L, pred, device)).cpu()
    naive = torch.stack([pred[max(0, t - 2):t + 3].mean(0) for t in range(T)])  # plain temporal average, no motion
    err = lambda x: float((x - truth).norm(dim=1)[mask].mean())  # noqa: E731  colour error on the object
    assert err(out) < 0.35 * err(naive), (err(out), err(naive))
    assert err(out) <= err(pred) + 0.5
    obj_a = out[:, 0][mask].mean()
    assert obj_a > 0.9 * 45.0


@pytest.mark.parametrize("window", [0, 2])
def test_no_colour_crosses_a_cut(device: torch.device, window: int) -> None:
    n = 6
    g = torch.Generator().manual_seed(5)
    La, Lb = texture(10, 30.0).expand(n, 1, S, S), texture(11, 75.0).expand(n, 1, S, S)
    aba = torch.tensor([40.0, 10.0]).view(1, 2, 1, 1) + 3 * torch.randn(n, 2, S, S, generator=g)
    abb = torch.tensor([-20.0, -35.0]).view(1, 2, 1, 1) + 3 * torch.randn(n, 2, S, S, generator=g)
    L, ab = torch.cat((La, Lb)), torch.cat((aba, abb))
    sm = TemporalSmoother(window=window, device=device)
    joined = torch.stack(run(sm, L, ab, device)).cpu()
    assert sm.cuts == [n]
    alone_a = torch.stack(run(TemporalSmoother(window=window, device=device), La, aba, device)).cpu()
    alone_b = torch.stack(run(TemporalSmoother(window=window, device=device), Lb, abb, device)).cpu()
    torch.testing.assert_close(joined[:n], alone_a, atol=1e-5, rtol=0)  # no look-ahead into the next shot
    torch.testing.assert_close(joined[n:], alone_b, atol=1e-5, rtol=0)  # nothing carried over
    if window == 0:
        assert torch.equal(joined[n], ab[n])  # the first frame of a shot is its own a,b
    assert (joined[n:, 0] < 0).all() and (joined[:n, 0] > 0).all()


@pytest.mark.parametrize("window", [0, 2])
def test_reset_forgets_but_loses_no_frame(device: torch.device, window: int) -> None:
    T = 5
    L, ab, _ = moving_scene(2 * T)
    ab = ab + torch.randn(2 * T, 2, 1, 1, generator=torch.Generator().manual_seed(6))
    sm = TemporalSmoother(window=window, device=device)
    out = []
    for i in range(T):
        out += sm.push(L[i].to(device), ab[i].to(device))
    sm.reset()
    assert sm.cuts == []
    first = sm.push(L[T].to(device), ab[T].to(device))
    if window == 0:
        assert torch.equal(first[0].cpu(), ab[T])
    out += first
    for i in range(T + 1, 2 * T):
        out += sm.push(L[i].to(device), ab[i].to(device))
    out = torch.stack(out + sm.flush()).cpu()
    assert out.shape[0] == 2 * T
    before = torch.stack(run(TemporalSmoother(window=window, device=device), L[:T], ab[:T], device)).cpu()
    after = torch.stack(run(TemporalSmoother(window=window, device=device), L[T:], ab[T:], device)).cpu()
    torch.testing.assert_close(out, torch.cat((before, after)), atol=1e-5, rtol=0)


def test_smooth_clip_matches_push_and_keeps_dtype(device: torch.device) -> None:
    L, ab, _ = moving_scene(6)
    sm = TemporalSmoother(window=1, device=device)
    a = sm.smooth_clip(L.to(device), ab.to(device))
    b = torch.stack(run(TemporalSmoother(window=1, device=device), L, ab, device))
    assert a.shape == ab.shape and a.device.type == device.type
    torch.testing.assert_close(a, b)
    half = TemporalSmoother(device=device).push(L[0].to(device), ab[0].to(device, torch.float64))[0]
    assert half.dtype == torch.float64


def test_work_scale_path_keeps_detail(device: torch.device) -> None:
    """At 128x128 the smoother works at half size and adds back a low-frequency correction: the
    frame's own fine chroma detail survives unchanged on a static scene with identical frames."""
    L = texture(0, size=128)[None].expand(3, 1, 128, 128)
    ab = torch.randn(1, 2, 128, 128, generator=torch.Generator().manual_seed(7)).expand(3, 2, 128, 128)
    out = TemporalSmoother(window=0, device=device).smooth_clip(L.to(device), ab.to(device)).cpu()
    assert scaled_size(128, 128, 0.5) == (64, 64)
    torch.testing.assert_close(out, ab.contiguous(), atol=1e-4, rtol=0)


def test_invalid_options() -> None:
    with pytest.raises(ValueError):
        TemporalSmoother(strength=1.5)
    with pytest.raises(ValueError):
        TemporalSmoother(window=-1)
    with pytest.raises(ValueError):
        TemporalSmoother(flow="raft")


def test_warp_and_compose(device: torch.device) -> None:
    w = Warper()
    x = torch.arange(S * S, dtype=torch.float32, device=device).view(1, 1, S, S)
    zero = torch.zeros(1, 2, S, S, device=device)
    y, inside = w(x, zero)
    torch.testing.assert_close(y, x)
    assert bool(inside.all())
    shift = zero.clone()
    shift[:, 0] = 3.0  # sample 3 px to the right
    y, inside = w(x, shift)
    torch.testing.assert_close(y[..., :, : S - 3], x[..., :, 3:])
    assert not bool(inside[..., S - 3:].any()) and bool(inside[..., : S - 3].all())
    f, c = compose(shift, shift, torch.ones(1, 1, S, S, device=device), torch.ones(1, 1, S, S, device=device), w)
    torch.testing.assert_close(f[..., : S - 6], torch.full_like(f[..., : S - 6], 0.0) + shift[..., : S - 6] * 2)


def test_cpu_remap_matches_grid_sample() -> None:
    """The CPU warp (OpenCV remap) against the device path (grid_sample), forced on CPU tensors."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 5, 40, 56, generator=g) * 20
    flow = torch.randn(2, 2, 40, 56, generator=g) * 4
    w = Warper()
    got, inside = w(x, flow)
    h, wd = x.shape[-2:]
    base, scale = w._base(h, wd, flow.device, flow.dtype)
    grid = torch.addcmul(base, flow.permute(0, 2, 3, 1), scale)
    want = torch.nn.functional.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=True)
    want_in = (grid.abs() <= 1.0 + 1e-6).all(-1).unsqueeze(1).float()
    assert got.shape == want.shape and inside.shape == want_in.shape
    assert float((got - want).abs().max()) < 1e-2 and float((got - want).abs().mean()) < 1e-3  # values up to ~90
    assert torch.equal(inside, want_in)


def test_scene_cut_score() -> None:
    a = (texture(0, 30.0) * 2.55).round().byte().numpy()
    b = (texture(1, 75.0) * 2.55).round().byte().numpy()
    assert cut_score(thumbnail(a), thumbnail(a)) == 0.0
    assert cut_score(thumbnail(a), thumbnail(b)) > 0.65
    det = SceneCutDetector()
    assert [det(x) for x in (a, a, b, b)] == [False, False, True, False]
    assert math.isfinite(det.last_score)


@pytest.mark.parametrize("window", [0, 1])
def test_size_change_starts_a_new_shot(device: torch.device, window: int) -> None:
    L, ab, _ = moving_scene(3)
    sm = TemporalSmoother(window=window, device=device)
    out: list[torch.Tensor] = []
    for i in range(3):
        out += sm.push(L[i].to(device), ab[i].to(device))
    small_L, small_ab = L[:, :, :32, :48].contiguous(), ab[:, :, :32, :48].contiguous()
    for i in range(3):
        out += sm.push(small_L[i].to(device), small_ab[i].to(device))
    out += sm.flush()
    assert [tuple(o.shape) for o in out] == [(2, S, S)] * 3 + [(2, 32, 48)] * 3
    assert sm.cuts == []  # a size change is not reported as a detected cut
