"""Video metrics: warp error, CDC, and evaluate_video on tiny clips."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from conftest import make_clip
from filmcolor.video_metrics import (ClipMetrics, cdc, evaluate_video, format_report, js_divergence, markdown_table,
                                     occlusion_mask, rgb_histograms, warp_error)


def textured(seed: int = 0, size: tuple[int, int] = (64, 64)) -> np.ndarray:
    """A smooth colour texture, uint8 RGB: enough structure for optical flow."""
    import cv2

    rng = np.random.default_rng(seed)
    img = rng.random((size[0] // 4, size[1] // 4, 3)).astype(np.float32)
    img = cv2.resize(img, (size[1], size[0]), interpolation=cv2.INTER_CUBIC)
    return (np.clip(img, 0, 1) * 200 + 20).astype(np.uint8)


def test_warp_error_static_is_zero_and_flicker_positive() -> None:
    base = textured()
    static = [base] * 5
    assert warp_error(static) == 0.0
    flicker = [np.clip(base.astype(int) + (30 if i % 2 else 0) * np.array([1, -1, 0]), 0, 255).astype(np.uint8)
               for i in range(5)]
    e = warp_error(flicker, reference=static)
    assert e > 1e-3
    m = ClipMetrics(names=("flicker",), frame_step=1)
    for f, r in zip(flicker, static):
        m.update(r, {"flicker": f})
    res = m.result()
    assert res["original"]["warp_error"] == 0.0 and res["grey"]["warp_error"] == 0.0
    assert res["flicker"]["warp_error"] == pytest.approx(e)
    assert res["original"]["psnr"] is None and res["flicker"]["ciede2000"] > 1.0


def test_warp_error_follows_motion() -> None:
    """A translating texture has (near) zero warp error: the flow on the reference explains the change."""
    big = textured(1, (64, 96))
    frames = [np.ascontiguousarray(big[:, 2 * i: 2 * i + 64]) for i in range(5)]
    moving = warp_error(frames)
    unwarped = float(np.mean([((a / 255.0 - b / 255.0) ** 2).mean() for a, b in zip(frames, frames[1:])]))
    assert moving < 0.1 * unwarped


def test_occlusion_mask_zero_flow_all_valid() -> None:
    z = np.zeros((8, 8, 2), np.float32)
    assert occlusion_mask(z, z).all()
    f = z.copy()
    f[..., 0] = 3.0  # target leaves the frame on the right
    assert not occlusion_mask(f, -f)[:, -3:].any()


def test_cdc_zero_positive_symmetric() -> None:
    a, b = textured(0), textured(1)
    assert cdc([a] * 6) == 0.0
    seq = [a, b, a, a, b, b]
    assert cdc(seq) > 0.0
    assert cdc(seq) == pytest.approx(cdc(seq[::-1]))
    p, q = rgb_histograms(a), rgb_histograms(b)
    assert np.allclose(p.sum(1), 1.0)
    np.testing.assert_allclose(js_divergence(p, q), js_divergence(q, p))
    assert np.all(js_divergence(p, p) == 0)
    one, other = np.eye(4)[0], np.eye(4)[1]
    assert js_divergence(one, other) == pytest.approx(math.log(2))
    assert math.isnan(cdc([a]))


def test_evaluate_video_self_and_report(tmp_path: Path) -> None:
    src = make_clip(tmp_path / "colour.mkv", frames=6, size=(64, 48), codec="ffv1", pix_fmt="yuv444p", grey=False)
    res = evaluate_video(src, src, max_frames=5)
    assert res["frames"] == 5
    assert res["colorized"]["psnr"] == math.inf and res["colorized"]["ciede2000"] == 0.0
    for k in ("warp_error", "cdc", "colourfulness"):
        assert res["colorized"][k] == pytest.approx(res["original"][k])
    assert res["grey"]["colourfulness"] == pytest.approx(0.0, abs=1e-6)
    assert res["warp_error_excess"] == pytest.approx(res["colorized"]["warp_error"] - res["grey"]["warp_error"])
    text = format_report(res)
    assert "| colorized |" in text and "CDC" in text
    table = markdown_table({"x": {"psnr": 1.0, "extra": 2.0}}, extra_columns=("extra",))
    assert table.splitlines()[2] == "| x | 1.00 | - | - | - | - | 2.000 |"


def test_shape_mismatch_raises() -> None:
    m = ClipMetrics()
    with pytest.raises(ValueError):
        m.update(textured(), {"colorized": textured(size=(32, 32))})
