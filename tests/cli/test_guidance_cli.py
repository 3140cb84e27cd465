"""Still guidance through the console script: good hints colour the picture, bad guidance is one line."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from cli_helpers import assert_one_line_error, run_cli


@pytest.fixture()
def grey(tmp_path) -> Path:
    img = np.tile(np.linspace(30, 220, 128, dtype=np.uint8), (96, 1))
    cv2.imwrite(str(tmp_path / "grey.png"), img)
    return tmp_path / "grey.png"


@pytest.mark.parametrize("doc,needle", [
    ("{oops", "not valid JSON"),
    ('{"points": [{"x": 500, "y": 10, "color": "#ff0000"}]}', "outside the 128x96 picture"),
    ('{"points": [{"x": 5, "y": 10, "color": "#ff00"}]}', "invalid colour"),
])
def test_bad_hints_are_one_line_and_write_nothing(tmp_path, grey, doc, needle):
    (tmp_path / "h.json").write_text(doc)
    r = run_cli("colorize", grey, tmp_path / "out.png", "--hints", tmp_path / "h.json", "--model", "default")
    assert_one_line_error(r, 2, needle)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grey.png", "h.json"]


def test_reference_of_another_aspect_is_refused(tmp_path, grey):
    cv2.imwrite(str(tmp_path / "ref.png"), np.zeros((50, 50, 3), np.uint8))
    r = run_cli("colorize", grey, tmp_path / "out.png", "--reference", tmp_path / "ref.png")
    assert_one_line_error(r, 2, "aspect ratio")
    assert not (tmp_path / "out.png").exists()


def test_guidance_is_for_stills(tmp_path, grey):
    (tmp_path / "h.json").write_text("[]")
    r = run_cli("colorize", tmp_path, tmp_path / "outdir", "--hints", tmp_path / "h.json")
    assert_one_line_error(r, 2, "not a folder")


def test_hints_change_the_written_picture(tmp_path, grey):
    (tmp_path / "h.json").write_text(json.dumps({"coordinates": "relative", "points": [
        {"x": 0.5, "y": 0.5, "color": "#d02020", "radius": 12}]}))
    assert run_cli("colorize", grey, tmp_path / "auto.png").returncode == 0
    r = run_cli("colorize", grey, tmp_path / "hinted.png", "--hints", tmp_path / "h.json")
    assert r.returncode == 0, r.stderr
    auto = cv2.imread(str(tmp_path / "auto.png")).astype(int)
    hinted = cv2.imread(str(tmp_path / "hinted.png")).astype(int)
    centre = (slice(40, 56), slice(56, 72))
    assert hinted[centre][..., 2].mean() > auto[centre][..., 2].mean() + 5  # redder where the hint is
