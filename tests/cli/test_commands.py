"""The commands doing their work, through the installed console script: outputs, JSON summaries, Ctrl-C."""

import json
import os
import signal
import subprocess
import time

import pytest

from cli_helpers import console_script, run_cli as run
from conftest import make_clip


def test_help_reads_well():
    r = run("colorize", "--help")
    assert r.returncode == 0 and "--render-size" in r.stdout and "--overwrite" in r.stdout


def test_colorize_video_and_json(tmp_path, tiny_model_path):
    src = make_clip(tmp_path / "in.mp4", frames=8, audio=True)
    r = run("colorize", src, tmp_path / "out.mkv", "-m", tiny_model_path, "--engine", "torch", "--smoothing", "off",
            "--quiet", "--json", tmp_path / "s.json")
    assert r.returncode == 0, r.stderr
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["frames"] == 8 and summary["codec"] == "ffv1"


def test_colorize_still_and_folder(tmp_path, tiny_model_path):
    import cv2
    import numpy as np

    folder = tmp_path / "stills"
    folder.mkdir()
    for i in range(2):
        cv2.imwrite(str(folder / f"s{i}.png"), np.tile(np.arange(64, dtype=np.uint8)[None] * 3, (48, 1)))
    r = run("colorize", folder, tmp_path / "outdir", "-m", tiny_model_path, "--quiet")
    assert r.returncode == 0, r.stderr
    out = cv2.imread(str(tmp_path / "outdir" / "s0.png"))
    assert out.shape == (48, 64, 3) and np.abs(out[..., 0].astype(int) - out[..., 2]).mean() > 1


@pytest.mark.parametrize("case", ["missing", "not_video", "exists", "no_dir"])
def test_errors_are_one_line_with_nonzero_exit(tmp_path, tiny_model_path, case):
    src = make_clip(tmp_path / "in.mp4", frames=3)
    dst = tmp_path / "out.mp4"
    if case == "missing":
        src = tmp_path / "nope.mp4"
    elif case == "not_video":
        src = tmp_path / "x.mp4"
        src.write_bytes(os.urandom(4096))
    elif case == "exists":
        dst.write_text("keep me")
    elif case == "no_dir":
        dst = tmp_path / "no" / "out.mp4"
    r = run("colorize", src, dst, "-m", tiny_model_path, "--quiet")
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and "error:" in r.stderr
    assert len([l for l in r.stderr.strip().splitlines() if l.strip()]) == 1
    if case == "exists":
        assert dst.read_text() == "keep me"


def test_ctrl_c_leaves_no_finished_looking_file(tmp_path, tiny_model_path):
    src = make_clip(tmp_path / "long.mp4", frames=1500, size=(96, 64), rate=25)
    dst = tmp_path / "out.mp4"
    p = subprocess.Popen([console_script(), "colorize", str(src), str(dst), "-m",
                          str(tiny_model_path), "--quiet", "--smoothing", "off"], stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and not list(tmp_path.glob(".*partial*")):
        time.sleep(0.05)
    p.send_signal(signal.SIGINT)
    _, stderr = p.communicate(timeout=60)
    assert p.returncode != 0, stderr
    assert not dst.exists() and not list(tmp_path.glob(".*partial*"))


def test_engines_and_models_commands(tmp_path):
    r = run("engines", "--json", tmp_path / "e.json")
    assert r.returncode == 0
    rows = json.loads((tmp_path / "e.json").read_text())
    assert any(r["engine"] == "torch" and r["device"] == "cpu" and r["usable"] for r in rows)
    assert run("models").returncode == 0


def test_evaluate_video_pair_reports_temporal_metrics(tmp_path, tiny_model_path):
    orig = make_clip(tmp_path / "orig.mp4", frames=8, grey=False)
    grey = make_clip(tmp_path / "grey.mp4", frames=8, grey=True)
    col = tmp_path / "col.mp4"
    assert run("colorize", grey, col, "-m", tiny_model_path, "--quiet").returncode == 0
    r = run("evaluate", col, "--reference", orig, "--json", tmp_path / "m.json", "--out", tmp_path / "rep")
    assert r.returncode == 0, r.stderr
    res = json.loads((tmp_path / "m.json").read_text())
    assert res["frames"] == 8
    for clip in ("colorized", "grey", "original"):
        assert {"psnr", "ciede2000", "colourfulness", "warp_error", "cdc"} <= set(res[clip])
    assert res["original"]["ciede2000"] is None and res["colorized"]["ciede2000"] > 0  # the reference level
    assert "warp err" in (tmp_path / "rep" / "report.md").read_text()
    bad = run("evaluate", col)
    assert bad.returncode == 2 and "--reference" in bad.stderr and "Traceback" not in bad.stderr


def test_evaluate_hint_points_by_the_siggraph_protocol(tmp_path, tiny_model_path):
    import cv2
    import numpy as np

    from cli_helpers import assert_one_line_error

    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):  # colour photos: halves of two colours, some texture
        img = np.zeros((48, 64, 3), np.uint8)
        img[:, :32], img[:, 32:] = (40, 60, 200), (200, 160, 40)
        cv2.imwrite(str(folder / f"p{i}.png"), np.clip(img + rng.integers(-15, 15, img.shape), 0, 255).astype(np.uint8))
    r = run("evaluate", folder, "--hint-points", "0,5,50", "-m", tiny_model_path, "--json", tmp_path / "h.json")
    assert r.returncode == 0, r.stderr
    rows = json.loads((tmp_path / "h.json").read_text())
    assert [row["points"] for row in rows] == [0, 5, 50] and rows[0]["gain_db"] == 0
    assert rows[2]["psnr"] > rows[0]["psnr"]  # 50 true colour patches beat none, even pasted by a tiny model
    assert "gain over 0 points" in r.stdout
    assert_one_line_error(run("evaluate", folder, "--hint-points", "a,b"), 2, "--hint-points")
    assert_one_line_error(run("evaluate", folder / "p0.png", "--hint-points", "1"), 2, "--hint-points")


@pytest.mark.slow  # integration: tens of seconds on 2 cores; CI runs it (pytest -m slow)
def test_bench_reports_engines_side_by_side_and_the_ffmpeg_ceiling(tmp_path, tiny_model_path):
    src = make_clip(tmp_path / "in.mp4", frames=6, size=(128, 96))
    r = run("bench", "--clip", src, "-m", tiny_model_path, "--sizes", "480p", "--frames", "4", "--rounds", "1",
            "--render-sizes", "64", "--model-frames", "2", "--json", tmp_path / "b.json", timeout=300)
    assert r.returncode == 0, r.stderr
    report = json.loads((tmp_path / "b.json").read_text())
    by_engine = {row["engine"]: row for row in report["model"]}
    assert {"torch", "onnxruntime"} <= set(by_engine)
    assert by_engine["torch"]["speedup_vs_torch"] == 1.0 and by_engine["onnxruntime"]["speedup_vs_torch"] > 0
    rows = {row["mode"]: row for row in report["end_to_end"]}
    assert set(rows) == {"default", "fast"} and "--keyframes" in rows["fast"]["args"]
    for row in rows.values():  # whole processes timed beside ffmpeg in the same run, memory of the child
        assert row["size"] == "480p" and row["frames"] == 4 and row["ffmpeg_fps"] > 0 and row["filmcolor_fps"] > 0
        assert row["ratio"] > 0 and 50 < row["peak_rss_mib"] < 4000 and row["first_frame_s"] > 0
