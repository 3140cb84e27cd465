"""Usage errors and hostile environments through the installed console script: one line ``error: ...`` on
stderr, the documented exit code (2 usage, 1 the machine), no traceback, nothing left at the output path.

Usage errors must answer before torch, OpenCV or ONNX Runtime are imported (that is what keeps them fast);
:func:`test_usage_errors_import_no_heavy_library` checks the import log rather than a wall-clock time.
"""

from __future__ import annotations

import importlib.util
import os
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

import filmcolor
from cli_helpers import assert_one_line_error, run_cli
from conftest import make_clip

HEAVY = ("torch", "cv2", "onnxruntime")


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """A 1-second grey clip (12 frames at 12 fps)."""
    return make_clip(tmp_path_factory.mktemp("src") / "in.mp4", frames=12, rate=12)


def _nothing_written(folder: Path) -> None:
    left = [p.name for p in folder.iterdir() if p.name != "in.mp4"]
    assert not left, f"left behind: {left}"


def test_version_matches_the_package():
    r = run_cli("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"filmcolor {filmcolor.__version__}"


def test_bare_command_shows_help_and_exits_2():
    r = run_cli()
    shown = r.stdout + r.stderr
    assert r.returncode == 2 and "Usage" in shown and "colorize" in shown and "Traceback" not in shown


def test_help_follows_cli_conventions():
    r = run_cli("colorize", "--help", env={"COLUMNS": "200"})
    assert r.returncode == 0
    usage = next(line for line in r.stdout.splitlines() if "Usage:" in line)
    assert "INPUT OUTPUT" in usage
    assert "<bool>" not in r.stdout and "{input}" not in r.stdout
    for short in (" -r ", " -t ", " -q "):  # ffmpeg: frame rate, duration, quality
        assert short not in r.stdout
    assert run_cli("preview", "--help", env={"COLUMNS": "200"}).stdout.count(" -t ") == 0


@pytest.mark.parametrize("args, needles", [
    (["colorize"], ["Missing argument 'INPUT'"]),
    (["colorize", "{clip}"], ["Missing argument 'OUTPUT'"]),
    (["colorise", "{clip}", "{out}"], ["No such command 'colorise'", "colorize"]),
    (["colorize", "{clip}", "{out}", "--satration", "2"], ["--satration", "--saturation"]),
    (["colorize", "{clip}", "{out}", "--crf", "abc"], ["--crf"]),
    (["colorize", "{clip}", "{out}", "--saturation", "-1"], ["--saturation"]),
    (["colorize", "{clip}", "{out}", "--render-size", "100"], ["multiple of 32", "96", "128"]),
    (["colorize", "{clip}", "{out}", "--start", "5", "--end", "2"], ["--end"]),
    (["colorize", "{clip}", "{out}", "--smoothing", "sideways"], ["--smoothing"]),
    (["colorize", "{clip}", "{out}", "-r", "25"], ["-r"]),
    (["pipe"], ["--width"]),
    (["pipe", "-W", "64", "-H", "48", "--render-size", "50"], ["multiple of 32"]),
    (["preview", "{clip}", "{dir}/out.mp4"], ["picture", ".png"]),
    (["evaluate", "{clip}"], ["--reference"]),
    (["bench", "--sizes", "9p"], ["--sizes", "480p"]),
    (["bench", "--modes", "turbo", "--skip-model"], ["--modes", "fast"]),
    (["colorize", "{dir}/missing.mp4", "{out}"], ["does not exist"]),
    (["train", "{dir}/nothere", "--out", "{dir}/run"], ["not a folder of images"]),
    (["train", "{dir}", "--out", "{dir}/run"], ["no images in"]),
    (["train", "{dir}", "--out", "{dir}/run", "--adv-loss", "wgan"], ["--adv-loss", "hinge"]),
    (["train", "{dir}", "--out", "{dir}/run", "--ab-loss", "l2"], ["--ab-loss", "de94"]),
    (["train", "{dir}", "--out", "{dir}/run", "--ab-loss", "de94", "--rebalance", "0.1"], ["--rebalance", "l1"]),
    (["train", "{dir}", "--out", "{dir}/run", "--device", "tpu"], ["--device", "cuda"]),
])
def test_usage_errors(clip, args, needles):
    folder = clip.parent
    argv = [a.format(clip=clip, out=folder / "out.mp4", dir=folder) for a in args]
    assert_one_line_error(run_cli(*argv), 2, *needles)
    _nothing_written(folder)


def test_usage_errors_import_no_heavy_library(clip):
    """--help, parser errors and the checks made before work starts answer without importing torch, OpenCV or
    ONNX Runtime (they cost seconds)."""
    for argv in (["--help"], ["colorize", "--help"], ["pipe", "--help"], ["colorize"], ["pipe"],
                 ["colorize", str(clip), str(clip.parent / "o.mp4"), "--crf", "abc"],
                 ["colorize", str(clip), str(clip.parent / "o.mp4"), "--render-size", "100"],
                 ["colorize", str(clip.parent / "missing.mp4"), str(clip.parent / "o.mp4")],
                 ["colorize", str(clip), str(clip.parent / "o.mp4"), "--start", "30"],
                 ["colorize", str(clip), str(clip.parent / "o.mp4"), "--preset", "turbo"],
                 ["colorize", str(clip), str(clip.parent / "no" / "o.mp4")],
                 ["train", str(clip.parent), "--out", str(clip.parent / "run"), "--adv-loss", "wgan"],
                 ["train", str(clip.parent), "--out", str(clip.parent / "run"), "--ab-loss", "de94", "--rebalance", "1"]):
        r = run_cli(*argv, env={"PYTHONPROFILEIMPORTTIME": "1", "COLUMNS": "200"})
        imported = {line.split("|")[-1].strip() for line in r.stderr.splitlines() if line.startswith("import time:")}
        assert imported, r.stderr[-500:]
        assert not imported & set(HEAVY), (argv, imported & set(HEAVY))


def test_train_refuses_grey_pictures_and_unknown_architectures(tmp_path):
    import cv2
    import numpy as np

    cv2.imwrite(str(tmp_path / "grey.png"), np.full((40, 40, 3), 128, np.uint8))
    assert_one_line_error(run_cli("train", tmp_path, "--out", tmp_path / "run", "--architecture", "nope"), 2,
                          "--architecture", "sagan-unet")
    assert_one_line_error(run_cli("train", tmp_path, "--out", tmp_path / "run", "--pretrain-steps", "1",
                                  "--critic-steps", "0", "--gan-steps", "0", "--no-pretrained"), 2,
                          "no colour images", "grey")


def test_start_past_the_end_says_so(clip):
    line = assert_one_line_error(run_cli("colorize", clip, clip.parent / "out.mp4", "--start", "30"), 2, "--start 30")
    assert "past the end" in line and "1.00 s" in line
    _nothing_written(clip.parent)


def test_folder_as_output_is_refused_with_and_without_overwrite(clip, tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    for extra in ([], ["-y"]):
        assert_one_line_error(run_cli("colorize", clip, tmp_path, *extra), 2, "is a folder", "name the output file")
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_existing_output_is_kept(clip, tmp_path):
    dst = tmp_path / "out.mp4"
    dst.write_text("keep me")
    assert_one_line_error(run_cli("colorize", clip, dst), 2, "--overwrite")
    assert dst.read_text() == "keep me"


@pytest.mark.parametrize("ext, preset, needles", [
    (".mp4", "turbo", ["turbo", "libx264", "veryslow"]),
    (".mkv", "fast", ["ffv1", "no presets"]),
])
def test_preset_checked_before_work_starts(clip, tmp_path, ext, preset, needles):
    assert_one_line_error(run_cli("colorize", clip, tmp_path / f"out{ext}", "--preset", preset), 2, *needles)
    assert not list(tmp_path.iterdir())


def test_decompression_bomb_still_is_one_line(tmp_path):
    """A PNG whose header claims 60000x60000 pixels (over OpenCV's CV_IO_MAX_IMAGE_PIXELS)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 60000, 60000, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\0" * 4096)) + chunk(b"IEND", b""))
    assert_one_line_error(run_cli("colorize", bomb, tmp_path / "out.png", "--quiet"), 2, "bomb.png", "pixel limit")
    assert not (tmp_path / "out.png").exists() and not list(tmp_path.glob(".*partial*"))


def test_missing_optional_package_is_one_line(clip, tmp_path):
    if importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("tensorrt is installed here")
    assert_one_line_error(run_cli("colorize", clip, tmp_path / "out.mp4", "--engine", "tensorrt"), 1,
                          "tensorrt", "pip install")
    assert not list(tmp_path.iterdir())


def test_unknown_model_is_one_line(clip, tmp_path):
    assert_one_line_error(run_cli("colorize", clip, tmp_path / "out.mp4", "-m", "nope"), 2, "no model 'nope'")
    assert not list(tmp_path.iterdir())


# -- the machine fails: a full disk, a folder that cannot be written -------------------------------------------


def _mount_tmpfs(where: Path, options: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    where.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True, text=True)
    if r.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")


@pytest.fixture
def full_disk(tmp_path):
    """A 64 KiB file system: the output fills it."""
    where = tmp_path / "small"
    _mount_tmpfs(where, "size=64k")
    yield where
    subprocess.run(["umount", str(where)], check=False)


@pytest.fixture
def read_only_folder(tmp_path):
    """A folder this process cannot write: a read-only mount as root, else a folder without write permission."""
    where = tmp_path / "ro"
    if os.geteuid() == 0:
        _mount_tmpfs(where, "ro,size=64k")
        yield where
        subprocess.run(["umount", str(where)], check=False)
    else:
        where.mkdir()
        where.chmod(0o500)
        yield where
        where.chmod(0o700)


def test_disk_full_is_one_line_and_leaves_nothing(tiny_model_path, full_disk, tmp_path):
    src = make_clip(tmp_path / "big.mp4", frames=40, size=(320, 240), rate=25)
    r = run_cli("colorize", src, full_disk / "out.mkv", "-m", tiny_model_path, "--quiet", "--smoothing", "off")
    assert_one_line_error(r, 1, "no space left")
    assert not list(full_disk.iterdir())


def test_disk_full_for_a_still(tiny_model_path, full_disk, tmp_path):
    import cv2
    import numpy as np

    src = tmp_path / "noise.png"
    cv2.imwrite(str(src), np.random.default_rng(0).integers(0, 255, (400, 600), dtype=np.uint8))
    assert_one_line_error(run_cli("colorize", src, full_disk / "out.png", "-m", tiny_model_path, "--quiet"), 1,
                          "no space left")
    assert not list(full_disk.iterdir())


def test_unwritable_folder_is_one_line(clip, read_only_folder, tiny_model_path):
    r = run_cli("colorize", clip, read_only_folder / "out.mkv", "-m", tiny_model_path, "--quiet")
    assert_one_line_error(r, 1, "not writable")
    assert not list(read_only_folder.iterdir())
