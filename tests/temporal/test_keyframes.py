"""Keyframe inference: the policy, carried frames between keyframes, cuts, and the CLI option."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from conftest import make_clip
from test_propagate import S, smooth_ab, texture, window

from filmcolor.temporal.keyframes import AUTO_MAX_INTERVAL, KeyframeInference, KeyframePolicy, fill_low_confidence
from filmcolor.temporal.motion import MotionTracker


class CountingModel:
    """Stands in for the engine: a,b looked up from the truth of the frame it is given, and counts calls."""

    def __init__(self, truths: list[torch.Tensor], frames: list[torch.Tensor]) -> None:
        self.truths, self.frames, self.calls = truths, frames, []

    def __call__(self, L: torch.Tensor) -> torch.Tensor:
        i = next(k for k, f in enumerate(self.frames) if f.data_ptr() == L.data_ptr())
        self.calls.append(i)
        return self.truths[i].clone()


def run_clip(policy: KeyframePolicy, frames: list[torch.Tensor], truths: list[torch.Tensor]):
    model = CountingModel(truths, frames)
    inf, tracker = KeyframeInference(policy, model), MotionTracker()
    out = [inf(L, tracker(L)) for L in frames]
    return out, model.calls, inf.stats


def panning_clip(T: int, step: int = 2, device: torch.device = torch.device("cpu")):
    big_L, big_ab = texture(20, 64, 64 + step * T + 8), smooth_ab(21, 64, 64 + step * T + 8)
    frames = [window(big_L, step * t, 0)[None, None].to(device) for t in range(T)]
    truths = [window(big_ab, step * t, 0)[None].to(device) for t in range(T)]
    return frames, truths


@pytest.mark.parametrize("text,interval,adaptive", [("all", 1, False), ("AUTO", AUTO_MAX_INTERVAL, True),
                                                    ("1", 1, False), (" 6 ", 6, False)])
def test_parse(text: str, interval: int, adaptive: bool) -> None:
    p = KeyframePolicy.parse(text)
    assert (p.interval, p.adaptive) == (interval, adaptive)
    assert p.every_frame == (interval == 1 and not adaptive)


@pytest.mark.parametrize("text", ["0", "-3", "some", "2.5", ""])
def test_parse_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="--keyframes"):
        KeyframePolicy.parse(text)


def test_fixed_interval_runs_the_model_every_nth_frame_and_carries_the_rest(device: torch.device) -> None:
    frames, truths = panning_clip(10, device=device)
    out, calls, stats = run_clip(KeyframePolicy.parse("4"), frames, truths)
    assert calls == [0, 4, 8]
    assert stats["frames"] == 10 and stats["keyframes"] == 3 and stats["key_interval"] == 2 and stats["key_shot"] == 1
    for t in (1, 2, 3, 5, 7, 9):  # carried along the pan: close to the truth, far from standing still
        inner = (..., slice(6, -6), slice(6, -14))
        err = float((out[t] - truths[t]).abs()[inner].mean())
        still = float((truths[t - 1] - truths[t]).abs()[inner].mean())
        assert err < 0.3 * still, (t, err, still)
    assert torch.equal(out[4], truths[4])


def test_all_is_every_frame(device: torch.device) -> None:
    frames, truths = panning_clip(4, device=device)
    _, calls, _ = run_clip(KeyframePolicy.parse("all"), frames, truths)
    assert calls == [0, 1, 2, 3]


def test_a_cut_forces_a_keyframe_and_nothing_crosses_it(device: torch.device) -> None:
    a, b = texture(22, mean=30.0)[None, None].to(device), texture(23, mean=75.0)[None, None].to(device)
    frames = [a, a.clone(), a.clone(), b, b.clone(), b.clone()]
    red, blue = torch.full((1, 2, S, S), 30.0, device=device), torch.full((1, 2, S, S), -30.0, device=device)
    truths = [red] * 3 + [blue] * 3
    out, calls, stats = run_clip(KeyframePolicy.parse("auto"), frames, truths)
    assert calls == [0, 3] and stats["key_shot"] == 2
    assert all(float(o.mean()) > 25 for o in out[:3]) and all(float(o.mean()) < -25 for o in out[3:])


def test_auto_keys_on_large_motion_and_on_lost_confidence(device: torch.device) -> None:
    policy = KeyframePolicy.parse("auto")
    frames, truths = panning_clip(4, step=int(policy.max_motion * S) + 4, device=device)
    _, calls, stats = run_clip(policy, frames, truths)
    assert calls == [0, 1, 2, 3] and stats["key_motion"] == 3
    # a static scene loses confidence only by the decay: keyframes at the longest interval then
    L = texture(24)[None, None].to(device)
    frames = [L.clone() for _ in range(2 * AUTO_MAX_INTERVAL + 1)]
    _, calls, stats = run_clip(policy, frames, [smooth_ab(25)[None].to(device)] * len(frames))
    assert calls == [0, AUTO_MAX_INTERVAL, 2 * AUTO_MAX_INTERVAL] and stats["key_interval"] == 2
    # a strict confidence floor is reached before the interval
    strict = KeyframePolicy(interval=100, adaptive=True, min_confidence=0.95)
    _, calls, stats = run_clip(strict, frames, [smooth_ab(25)[None].to(device)] * len(frames))
    assert stats["key_confidence"] >= 2 and calls[1] == 2  # 0.97 ** 2 = 0.941 < 0.95


def test_reset_makes_the_next_frame_a_keyframe(device: torch.device) -> None:
    frames, truths = panning_clip(4, device=device)
    model = CountingModel(truths, frames)
    inf, tracker = KeyframeInference(KeyframePolicy.parse("8"), model), MotionTracker()
    inf(frames[0], tracker(frames[0]))
    inf(frames[1], tracker(frames[1]))
    inf.reset()
    tracker.reset()
    inf(frames[2], tracker(frames[2]))
    assert model.calls == [0, 2]


def test_fill_takes_the_neighbours_colour_where_confidence_is_low(device: torch.device) -> None:
    ab = torch.zeros(1, 2, S, S, device=device)
    ab[:, 0] = 20.0
    ab[:, 0, 20:30, 20:30] = -50.0   # junk where the carried colour is not trusted
    conf = torch.ones(1, 1, S, S, device=device)
    conf[..., 20:30, 20:30] = 0.0
    out = fill_low_confidence(ab, conf)
    torch.testing.assert_close(out[..., 20:30, 20:30], torch.full_like(out[..., 20:30, 20:30], 20.0).index_fill(
        1, torch.tensor([1], device=device), 0.0), atol=1e-3, rtol=0)
    torch.testing.assert_close(out[..., :10, :], ab[..., :10, :])  # confident pixels are untouched
    half = fill_low_confidence(ab, conf * 0 + 0.25)  # under the threshold (0.5): half own colour, half the local mean
    assert -50.0 < float(half[0, 0, 21, 21]) < -15.0 and float(half[0, 0, 0, 0]) == pytest.approx(20.0)
    torch.testing.assert_close(fill_low_confidence(ab, conf * 0 + 0.6), ab)  # confident enough: untouched


def cli(*args, timeout=180):
    return subprocess.run([sys.executable, "-m", "filmcolor.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def test_cli_keyframes_option(tmp_path, tiny_model_path) -> None:
    src = make_clip(tmp_path / "in.mp4", frames=10, size=(96, 64))
    for setting in ("auto", "3"):
        dst = tmp_path / f"out{setting}.mkv"
        r = cli("colorize", src, dst, "-m", tiny_model_path, "--engine", "torch", "--quiet", "--keyframes", setting,
                "--json", tmp_path / "s.json")
        assert r.returncode == 0, r.stderr
        assert json.loads((tmp_path / "s.json").read_text())["frames"] == 10 and dst.stat().st_size > 0
    bad = cli("colorize", src, tmp_path / "bad.mkv", "-m", tiny_model_path, "--quiet", "--keyframes", "often")
    assert bad.returncode == 2 and "error:" in bad.stderr and "--keyframes" in bad.stderr
    assert "Traceback" not in bad.stderr and not (tmp_path / "bad.mkv").exists()


def test_confident_guidance_everywhere_needs_no_model_run():
    """A carried reference covering the frame replaces the model's colour anyway: the model is skipped
    (a shot's first frame too), the guidance is what comes out, and its few uncovered pixels take their
    neighbours' colour. Later guided frames follow the policy (carried colour, guidance kept over it);
    guidance that begins after frames without any makes a keyframe."""
    calls = []

    def infer(L, guidance=None):
        calls.append(guidance is not None)
        return torch.full((1, 2, *L.shape[-2:]), 5.0)

    tracker, ki = MotionTracker(flow="none"), KeyframeInference(KeyframePolicy.parse("auto"), infer)
    L = torch.full((1, 1, 32, 48), 50.0)
    hint = torch.full((1, 2, 32, 48), 40.0)
    full, half, most = torch.ones(1, 1, 32, 48), torch.ones(1, 1, 32, 48), torch.full((1, 1, 32, 48), 0.01)
    half[..., 24:] = 0.0
    most[..., 0, :5] = 0.0                                 # 5 of 1536 pixels uncovered, the rest barely confident
    out = ki(L, tracker(L), (hint, full))                 # a shot's first frame, covered: no model run
    assert calls == [] and torch.allclose(out, hint) and ki.stats["guided_covered"] == 1
    out = ki(L, tracker(L), (hint * 0 + 30.0, most))      # covered but for 5 pixels: filled from around them
    assert calls == [] and torch.allclose(out, torch.full_like(hint, 30.0))
    out = ki(L, tracker(L), (hint, half))                 # half covered, mid-shot: carried, guidance kept
    assert calls == [] and ki.stats["guided_carried"] == 1
    assert torch.allclose(out[..., :24], hint[..., :24])                  # the guidance where it is
    assert torch.allclose(out[..., 24:], torch.full_like(hint[..., 24:], 30.0))  # the carried colour elsewhere
    ki(L, tracker(L))                                     # no guidance: carried
    ki(L, tracker(L), (hint, half))                       # guidance begins again, half covered: the model runs
    assert calls == [True] and ki.stats["key_guidance"] == 1


def test_streaming_carries_the_smoothed_keyframe_and_skips_the_smoother_between(device: torch.device) -> None:
    """With streaming smoothing, carried frames continue from the keyframe's *smoothed* colour (no jump
    back to the raw model colour one frame after a keyframe) and do not go through the smoother."""
    from types import SimpleNamespace

    from filmcolor.temporal import TemporalSmoother
    from filmcolor.temporal.keyframes import KeyframePredictor

    frames, truths = panning_clip(10, device=device)
    flicker = {0: 0.0, 4: 12.0, 8: -6.0}  # the model's colour cast differs from keyframe to keyframe
    model = CountingModel(truths, frames)

    def infer(L):
        i = next(k for k, f in enumerate(frames) if torch.equal(f, L))
        model.calls.append(i)
        return truths[i] + flicker.get(i, 0.0)

    smoother = TemporalSmoother(window=0, device=device)
    smoothed = []
    push = smoother.push
    smoother.push = lambda *a, **k: smoothed.append(1) or push(*a, **k)
    kp = KeyframePredictor(SimpleNamespace(infer=infer, gain=1.0, guided=False, device=device),
                           KeyframePolicy.parse("4"), smoother)
    out = [kp.push(L[0])[0] for L in frames]
    assert model.calls == [0, 4, 8] and len(smoothed) == 3   # the smoother saw the keyframes only
    inner = (..., slice(6, -6), slice(6, -14))
    offset = [float((o - t[0]).mean()) for o, t in zip(out, truths)]
    assert 0.5 < offset[4] < 11.5                 # the keyframe's cast is blended towards its past
    assert abs(offset[5] - offset[4]) < 0.5       # ... and that is what the next frame carries on
    assert abs(offset[3] - offset[2]) < 0.5
    assert float((out[6] - truths[6][0] - offset[6]).abs()[inner].mean()) < 1.5   # still follows the pan


def test_window_smoother_passes_frames_whose_window_carries_one_keyframe(device: torch.device) -> None:
    """Windowed smoothing with spans (keyframe inference): a frame whose whole window carries the same
    keyframe's colour comes out as given; frames near another keyframe are still blended."""
    from filmcolor.temporal import TemporalSmoother

    T = 10
    L = texture(30)[None].to(device)
    g = torch.Generator().manual_seed(31)
    abs_ = [(smooth_ab(32) + 4 * torch.randn(2, 1, 1, generator=g)).to(device) for _ in range(T)]
    spans = [1] * 5 + [2] * 5
    sm = TemporalSmoother(window=2, device=device)
    out = []
    for t in range(T):
        out += sm.push(L, abs_[t], span=spans[t])
    out += sm.flush()
    assert len(out) == T
    for t in (0, 1, 2, 7, 8, 9):   # windows inside one span (or cut off by the clip's ends)
        assert torch.equal(out[t], abs_[t]), t
    for t in (3, 4, 5, 6):         # windows reaching across the keyframe at t=5
        assert not torch.allclose(out[t], abs_[t], atol=0.05), t
