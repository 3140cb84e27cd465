"""Sources from the archive end to end through the console script: interlaced MPEG-2 (field order kept, not
deinterlaced), a DPX image sequence, a clip rotated by its display matrix."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import av
import numpy as np
import pytest

from cli_helpers import run_cli
from conftest import write_frames

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg command (apt install ffmpeg)")


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True)


def _probe(path: Path, entries: str) -> str:
    return subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", entries,
                           "-of", "csv=p=0", str(path)], capture_output=True, text=True, check=True).stdout.strip().strip(",")


@needs_ffmpeg
@pytest.mark.parametrize("ext", [".mp4", pytest.param(".mkv", marks=pytest.mark.slow),
                                 pytest.param(".mov", marks=pytest.mark.slow)])
def test_interlaced_source_keeps_its_field_order(tmp_path, tiny_model_path, ext):
    src = tmp_path / "tff.mpg"
    _ffmpeg("-f", "lavfi", "-i", "testsrc=size=128x96:rate=25", "-t", "0.4", "-vf", "format=gray,format=yuv420p,setfield=tff",
            "-c:v", "mpeg2video", "-flags", "+ildct+ilme", "-top", "1", str(src))
    assert _probe(src, "stream=field_order") == "tt"
    dst = tmp_path / f"out{ext}"
    r = run_cli("colorize", src, dst, "-m", tiny_model_path, "--quiet", "--smoothing", "off")
    assert r.returncode == 0, r.stderr
    assert _probe(dst, "stream=field_order") == "tt"
    with av.open(str(dst)) as c:  # still interlaced, full height: the fields were not merged or dropped
        assert c.streams.video[0].height == 96 and sum(1 for _ in c.decode(video=0)) == 10


@needs_ffmpeg
def test_dpx_sequence_end_to_end(tmp_path, tiny_model_path):
    scans = tmp_path / "scans"
    scans.mkdir()
    _ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=24", "-frames:v", "4", "-vf", "format=gray",
            "-pix_fmt", "gray16le", str(scans / "f_%04d.dpx"))
    dst = tmp_path / "scan.mkv"
    r = run_cli("colorize", scans / "f_%04d.dpx", dst, "-m", tiny_model_path, "--quiet", "--json", tmp_path / "s.json")
    assert r.returncode == 0, r.stderr
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["frames"] == 4 and (summary["width"], summary["height"]) == (64, 48)
    assert summary["pix_fmt"] == "yuv420p10le"  # a 16-bit scan stays deep (10-bit is FFV1's default here)
    with av.open(str(dst)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(frames) == 4
    assert np.abs(frames[0][..., 0].astype(int) - frames[0][..., 2]).mean() > 1  # colour was made


def test_rotated_clip_keeps_its_rotation(tmp_path, tiny_model_path):
    src = tmp_path / "phone.mp4"
    pictures = [np.zeros((48, 64, 3), np.uint8) for _ in range(6)]
    for i, img in enumerate(pictures):
        img[:, : 10 + 5 * i] = 200
    write_frames(src, pictures, rotation=90)
    dst = tmp_path / "out.mp4"
    r = run_cli("colorize", src, dst, "-m", tiny_model_path, "--quiet")
    assert r.returncode == 0, r.stderr
    with av.open(str(dst)) as c:
        first = next(c.decode(video=0))
        assert first.rotation == 90 and (first.width, first.height) == (64, 48)  # stored as shot, shown rotated
        assert c.streams.video[0].frames == 6
