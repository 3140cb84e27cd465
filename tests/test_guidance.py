"""Guidance inputs: the hints schema, its one-line errors, references, and the evaluation protocol."""

import json

import numpy as np
import pytest
import torch
from skimage.color import rgb2lab

from filmcolor.errors import UsageError
from filmcolor.guidance import (hex_to_ab, parse_hints, points_to_guidance, reference_to_guidance,
                                sample_patch_hints)


def test_hex_colour_matches_scikit_image():
    lab = rgb2lab(np.array([[[0xB2, 0x22, 0x22]]], np.float64) / 255.0)[0, 0]  # golden: scikit-image's D65 Lab
    assert np.allclose(hex_to_ab("#b22222"), lab[1:], atol=0.05)


def test_points_in_pixels_and_relative_land_on_the_same_render_pixels():
    doc = {"points": [{"x": 50, "y": 25, "color": "#ff0000"}, {"x": 0, "y": 99, "lab": [50, 10, -20]}]}
    pts, rel = parse_hints(json.dumps(doc))
    assert not rel and len(pts) == 2
    hint, mask = points_to_guidance(pts, rel, (100, 200), (32, 64))
    rel_doc = {"coordinates": "relative", "points": [{"x": 0.25, "y": 0.25, "color": "#ff0000"},
                                                     {"x": 0, "y": 0.99, "lab": [50, 10, -20]}]}
    pts2, rel2 = parse_hints(json.dumps(rel_doc))
    hint2, mask2 = points_to_guidance(pts2, rel2, (100, 200), (32, 64))
    assert np.array_equal(mask, mask2) and np.allclose(hint, hint2)
    assert mask[0, 8, 16] == 1 and mask.sum() == 9 + 4  # a 3x3 patch, and a 2x2 one clipped in the corner
    assert np.allclose(hint[:, 31, 0], (10, -20))


@pytest.mark.parametrize("text,message", [
    ("{not json", "not valid JSON"),
    ('{"points": [{"x": 1, "y": 2}]}', "give a colour"),
    ('{"points": [{"x": 1, "y": 2, "color": "red"}]}', "invalid colour"),
    ('{"points": [{"x": 1, "y": 2, "lab": [50, 300, 0]}]}', "out of range"),
    ('{"points": [{"x": "a", "y": 2, "color": "#ffffff"}]}', "numeric"),
    ('{"coordinates": "inches", "points": []}', "coordinates"),
    ('42', "expected"),
])
def test_malformed_hints_give_one_line_errors(text, message):
    with pytest.raises(UsageError, match=message) as info:
        parse_hints(text)
    assert "\n" not in str(info.value)


def test_points_outside_the_picture_are_refused():
    pts, rel = parse_hints('[{"x": 250, "y": 10, "color": "#00ff00"}]')
    with pytest.raises(UsageError, match="outside the 200x100 picture"):
        points_to_guidance(pts, rel, (100, 200), (32, 64))


def test_reference_grey_pixels_carry_no_hint_and_aspect_is_checked():
    ref = np.full((60, 120, 3), 128, np.uint8)
    ref[:, :60] = (200, 40, 40)
    hint, mask = reference_to_guidance(ref, (100, 200), (32, 64))
    assert mask[0, :, :28].min() == 1 and mask[0, :, 36:].max() == 0
    assert hint[0, 5, 5] > 30 and np.all(hint[:, :, 36:] == 0)
    with pytest.raises(UsageError, match="aspect ratio"):
        reference_to_guidance(np.zeros((100, 100, 3), np.uint8), (100, 200), (32, 64))


def test_patch_protocol_reveals_the_mean_of_the_truth():
    ab = np.random.default_rng(0).normal(0, 20, (2, 64, 64)).astype(np.float32)
    hint, mask = sample_patch_hints(ab, 10, np.random.default_rng(1))
    again = sample_patch_hints(ab, 10, np.random.default_rng(1))
    assert np.array_equal(hint, again[0])  # fixed seed, fixed hints
    assert 36 <= mask.sum() <= 360
    assert sample_patch_hints(ab, 0, np.random.default_rng(1))[1].sum() == 0


def test_guided_model_uses_the_hints():
    from filmcolor.models import create_model

    torch.manual_seed(0)
    m = create_model("sagan-unet-tiny", guidance=True).eval()
    for out in m.guide.outs:  # as after training: the branch's output layers are no longer zero
        torch.nn.init.normal_(out.weight, std=0.5)
    L = torch.rand(1, 1, 64, 64) * 100
    hint = torch.zeros(1, 2, 64, 64)
    with torch.no_grad():
        auto = m(L)
        assert torch.equal(auto, m(L, hint, torch.zeros(1, 1, 64, 64)))  # an empty mask is exactly automatic
        hint[:, 0] = 40.0
        guided = m(L, hint, torch.ones(1, 1, 64, 64))
    assert (guided - auto).abs().mean() > 0.1


def _guided_colorizer(tmp_path, engine="torch"):
    from filmcolor.colorizer import Colorizer, ColorizerOptions
    from filmcolor.models import ModelConfig, create_model, save_model

    torch.manual_seed(0)
    m = create_model("sagan-unet-tiny", guidance=True)
    for out in m.guide.outs:
        torch.nn.init.normal_(out.weight, std=0.5)
    save_model(m, ModelConfig(architecture="sagan-unet-tiny", kwargs={"guidance": True}, name="tiny-guided"), tmp_path / "g")
    return Colorizer(ColorizerOptions(model=str(tmp_path / "g"), engine=engine, render_size=64, smoothing="off"))


@pytest.mark.parametrize("engine", ["torch", "onnxruntime"])
def test_still_hints_change_the_picture_through_the_one_path(tmp_path, engine):
    pytest.importorskip("onnxruntime") if engine == "onnxruntime" else None
    from filmcolor.guidance import StillGuidance
    from filmcolor.images import colorize_array

    col = _guided_colorizer(tmp_path, engine)
    assert col.predictor.guided
    grey = np.tile(np.linspace(20, 230, 96, dtype=np.uint8), (64, 1))
    auto = colorize_array(col, grey).astype(int)
    pts, rel = parse_hints('{"coordinates": "relative", "points": [{"x": 0.5, "y": 0.5, "color": "#ff0000", "radius": 8}]}')
    guided = colorize_array(col, grey, StillGuidance(pts, rel)).astype(int)
    assert np.abs(guided - auto).max() > 3          # the hint changed the picture
    assert np.array_equal(colorize_array(col, grey, StillGuidance()), auto.astype(np.uint8))  # empty = automatic
    col.close()


def test_guided_onnx_graph_matches_torch(tmp_path):
    pytest.importorskip("onnxruntime")
    from filmcolor.engines.export import export_onnx, parity
    from filmcolor.models import ModelConfig, create_model

    torch.manual_seed(0)
    m = create_model("sagan-unet-tiny", guidance=True).eval()
    for out in m.guide.outs:
        torch.nn.init.normal_(out.weight, std=0.5)
    cfg = ModelConfig(architecture="sagan-unet-tiny", kwargs={"guidance": True})
    path = export_onnx(m, cfg, tmp_path / "g.onnx", guided=True)
    assert parity(m, path, [(1, 64, 96), (2, 96, 64)]) < 1e-3
    import onnx

    assert [i.name for i in onnx.load(str(path)).graph.input] == ["L", "hint_ab", "mask"]
