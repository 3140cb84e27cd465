"""Plugins: registry, OpenCV filter, `filmcolor pipe` between real ffmpeg processes, the
ffmpeg-python graph helper, and the VapourSynth plugin's pure parts. Tiny model, 64x48 clips."""

from __future__ import annotations

import importlib.util
import io
import os
import shlex
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from conftest import make_clip

W, H = 64, 48
N = 6  # frames per clip: enough for temporal state, cheap on a shared CPU
FFMPEG = shutil.which("ffmpeg")
needs_ffmpeg = pytest.mark.skipif(FFMPEG is None or shutil.which("ffprobe") is None,
                                  reason="needs the ffmpeg and ffprobe programs (apt install ffmpeg)")
VS_SKIP = ("vapoursynth is not installable here: PyPI has wheels only for VapourSynth R74+ (cp312-abi3, "
           "Python >= 3.12) and this is Python 3.11; the R73 sdist needs the system libvapoursynth, which "
           "Debian 12 does not package")


@pytest.fixture(scope="module")
def colorizer(tiny_model_path):
    from filmcolor.colorizer import Colorizer

    c = Colorizer(model=str(tiny_model_path), engine="torch", smoothing="stream")
    yield c
    c.close()


def _yuv_frames(path: Path) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Decoded (Y, Cb, Cr) planes of every frame, in the file's own format (PyAV)."""
    import av

    from filmcolor.video.planes import plane_view

    out = []
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            dt = "uint16" if "10" in f.format.name else "uint8"
            out.append(tuple(plane_view(f, i, dt).copy() for i in range(3)))
    return out


def _streams(path: Path) -> dict[str, int]:
    import av

    with av.open(str(path)) as c:
        return {"video": len(c.streams.video), "audio": len(c.streams.audio)}


def _cv_frames(path: Path) -> list[np.ndarray]:
    import cv2

    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
    cap.release()
    return frames


def _chroma_spread(cb: np.ndarray, cr: np.ndarray, mid: int = 128) -> float:
    return float(np.abs(cb.astype(int) - mid).mean() + np.abs(cr.astype(int) - mid).mean())


# ----------------------------------------------------------------------------------------------- registry
def test_registry_lists_builtins_with_reasons():
    from filmcolor.plugins.registry import list_plugins

    rows = {r["name"]: r for r in list_plugins()}
    assert {"opencv", "ffmpeg-pipe", "ffmpeg-graph", "vapoursynth"} <= set(rows)
    for r in rows.values():
        assert set(r) >= {"name", "usable", "reason"} and r["usable"] == (r["reason"] is None)
    assert rows["opencv"]["usable"] and rows["ffmpeg-pipe"]["usable"]
    if importlib.util.find_spec("vapoursynth") is None:
        assert not rows["vapoursynth"]["usable"] and "pip install" in rows["vapoursynth"]["reason"]


def test_registry_entry_points_and_unknown(monkeypatch):
    from importlib.metadata import EntryPoint

    import filmcolor.registry
    from filmcolor.plugins import registry

    eps = [EntryPoint("mine", "json:dumps", registry.ENTRY_POINT_GROUP),
           EntryPoint("broken", "no_such_module_xyz:thing", registry.ENTRY_POINT_GROUP)]
    monkeypatch.setattr(filmcolor.registry, "entry_points", lambda group: eps if group == registry.ENTRY_POINT_GROUP else [])
    rows = {r["name"]: r for r in registry.list_plugins()}
    assert rows["mine"]["usable"] and registry.plugin_target("mine") is __import__("json").dumps
    assert not rows["broken"]["usable"] and "no_such_module_xyz" in rows["broken"]["reason"]
    with pytest.raises(registry.PluginUnavailable, match="unknown plugin"):
        registry.plugin_target("nope")


# ------------------------------------------------------------------------------------------------- OpenCV
def test_opencv_capture_round_trip(tmp_path, tiny_model_path):
    import cv2

    from filmcolor.plugins.opencv import colorize_capture

    src = make_clip(tmp_path / "grey.mp4", frames=N)
    res = colorize_capture(src, tmp_path / "out.mp4", model=str(tiny_model_path), engine="torch")  # mp4v
    assert res["frames"] == N and (res["width"], res["height"]) == (W, H)
    a, b = _cv_frames(src), _cv_frames(tmp_path / "out.mp4")
    assert len(b) == len(a) == N and b[0].shape == (H, W, 3)
    y_in = np.stack([cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for f in a]).astype(int)
    ycc = np.stack([cv2.cvtColor(f, cv2.COLOR_BGR2YCrCb) for f in b]).astype(int)
    assert np.median(np.abs(ycc[..., 0] - y_in)) <= 3  # luma kept (up to MPEG-4 coding and gamut clipping)
    assert _chroma_spread(ycc[..., 2], ycc[..., 1]) > 10  # coloured
    assert not list(tmp_path.glob(".*partial*"))
    with pytest.raises(Exception, match="exists"):
        colorize_capture(src, tmp_path / "out.mp4", model=str(tiny_model_path), engine="torch")


def test_opencv_filter_is_causal_stateful_and_matches_stream_api(colorizer):
    import cv2

    import filmcolor
    from filmcolor.plugins.opencv import ColorizeFilter

    yy, xx = np.mgrid[0:H, 0:W]
    frames = [((xx * 4 + yy + 9 * i) % 256).astype(np.uint8) for i in range(5)]
    filt = ColorizeFilter(colorizer)
    outs = []
    for i, g in enumerate(frames):
        o = filt(cv2.cvtColor(g, cv2.COLOR_GRAY2BGR) if i % 2 else g)  # BGR and grey frames alike
        assert o is not None and o.shape == (H, W, 3) and o.dtype == np.uint8 and filt.latency == 0
        outs.append(o)
    assert filt.flush() == []
    # the same frames through the Python API's causal stream (RGB out): same colours
    ref = list(filmcolor.colorize_frames(frames, colorizer=colorizer))
    for o, r in zip(outs, ref):
        assert np.abs(o[..., ::-1].astype(int) - r).max() <= 2
    # state carries across calls: a fresh filter gives frame 3 other colours than the running one...
    fresh = ColorizeFilter(colorizer)
    assert np.abs(fresh(frames[3]).astype(int) - outs[3]).max() > 0
    # ...and reset() forgets it: after a reset, frame 3 comes out as from a fresh filter
    filt2 = ColorizeFilter(colorizer)
    for g in frames[:3]:
        filt2(g)
    filt2.reset()
    assert np.array_equal(filt2(frames[3]), ColorizeFilter(colorizer)(frames[3]))
    filt.close()
    assert colorizer.engine is not None  # a shared colorizer is not closed by the filter


def test_opencv_filter_handles_latency_in_order():
    """With a colorizer that holds frames back, calls return None first, then frames in order; flush the rest."""
    from filmcolor.plugins.opencv import ColorizeFilter

    class Delayed:
        latency = 2

        def __init__(self) -> None:
            self.held: list = []

        def push(self, y, tag):
            self.held.append(tag)
            return [(t, np.full_like(t, 128), np.full_like(t, 128)) for t in
                    [self.held.pop(0)]] if len(self.held) > self.latency else []

        def flush(self):
            out = [(t, np.full_like(t, 128), np.full_like(t, 128)) for t in self.held]
            self.held = []
            return out

        def reset(self) -> None:
            pass

    class FakeColorizer:
        def stream(self, w, h, layout, matrix, causal=False):
            assert causal
            return Delayed()

        def describe(self) -> str:
            return "fake"

    filt = ColorizeFilter(FakeColorizer())
    frames = [np.full((H, W), 10 * (i + 1), np.uint8) for i in range(5)]
    got = [filt(f) for f in frames]
    assert got[0] is None and got[1] is None and filt.latency == 2
    rest = filt.flush()
    out = [g for g in got if g is not None] + rest
    assert [int(o[0, 0, 0]) for o in out] == [10, 20, 30, 40, 50]  # every frame once, in order (grey stays grey)


# ---------------------------------------------------------------------------------------------- raw pipe
def test_pipe_formats_in_process(colorizer):
    from filmcolor.plugins.ffmpeg_pipe import PipeSpec, run_pipe

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:H, 0:W]
    grey8 = ((xx * 4 + yy) % 256).astype(np.uint8)
    cases = {
        ("gray", "yuv420p"): np.stack([grey8] * 3).tobytes(),
        ("gray10le", "yuv420p10le"): np.stack([grey8.astype("<u2") * 4 + 1] * 3).tobytes(),
        ("yuv420p", "yuv444p"): b"".join(grey8.tobytes() + rng.integers(0, 256, W * H // 2, dtype=np.uint8).tobytes()
                                         for _ in range(3)),
        ("gray", "rgb24"): np.stack([grey8] * 3).tobytes(),
        ("rgb24", "yuv420p"): np.stack([np.dstack([grey8] * 3)] * 3).tobytes(),
    }
    for (fmt, out_fmt), data in cases.items():
        spec = PipeSpec.make(W, H, fmt, out_fmt)
        out = io.BytesIO()
        res = run_pipe(io.BytesIO(data), out, spec, colorizer)
        raw = out.getvalue()
        fb, ob = spec.src.frame_bytes(W, H), spec.dst.frame_bytes(W, H)
        assert res["frames"] == 3 and len(raw) == 3 * ob, (fmt, out_fmt)
        if spec.dst.kind == "yuv" and spec.src.kind != "rgb":  # luma untouched, byte for byte
            n = W * H * spec.src.dtype.itemsize
            assert all(raw[i * ob:i * ob + n] == data[i * fb:i * fb + n] for i in range(3)), (fmt, out_fmt)
        if spec.dst.kind == "rgb":
            rgb = np.frombuffer(raw[:ob], np.uint8).reshape(H, W, 3).astype(int)
            assert np.abs(rgb - rgb.mean(axis=2, keepdims=True)).mean() > 3  # coloured
        else:
            planes = spec.dst.plane_shapes(W, H)
            y_n = int(np.prod(planes[0]))
            c = np.frombuffer(raw[:ob], spec.dst.dtype)[y_n:].astype(int)
            mid = 1 << (spec.dst.bits - 1)
            assert np.abs(c - mid).mean() > 2 << (spec.dst.bits - 8), (fmt, out_fmt)
    assert spec.full_range is False  # rgb24 -> yuv420p is limited range by default


def test_pipe_batched_engine_latency(colorizer, tiny_model_path):
    """An engine batch above 1 (the GPU default) holds frames back; every frame still comes out, in order."""
    from filmcolor.colorizer import Colorizer
    from filmcolor.plugins.ffmpeg_pipe import PipeSpec, run_pipe

    yy, xx = np.mgrid[0:H, 0:W]
    data = np.stack([((xx * 3 + yy + 11 * i) % 256).astype(np.uint8) for i in range(5)]).tobytes()
    spec = PipeSpec.make(W, H, "gray")
    batched = Colorizer(model=str(tiny_model_path), engine="torch", smoothing="stream", batch=3)
    outs = []
    for c in (colorizer, batched):
        buf = io.BytesIO()
        assert run_pipe(io.BytesIO(data), buf, spec, c)["frames"] == 5
        outs.append(np.frombuffer(buf.getvalue(), np.uint8))
    assert outs[0].size == outs[1].size == 5 * W * H * 3 // 2
    assert np.abs(outs[0].astype(int) - outs[1]).max() <= 1
    batched.close()


def test_pipe_errors_in_process(colorizer):
    from filmcolor.plugins.ffmpeg_pipe import PipeSpec, run_pipe
    from filmcolor.errors import FormatError

    with pytest.raises(FormatError, match="input pixel format 'nv12'"):
        PipeSpec.make(W, H, "nv12")
    with pytest.raises(FormatError, match="output pixel format 'gray'"):
        PipeSpec.make(W, H, "gray", "gray")
    spec = PipeSpec.make(W, H, "gray")
    with pytest.raises(FormatError, match="no frames"):
        run_pipe(io.BytesIO(b""), io.BytesIO(), spec, colorizer)

    class Closed(io.RawIOBase):
        def writable(self) -> bool:
            return True

        def write(self, b) -> int:
            raise BrokenPipeError(32, "Broken pipe")

    with pytest.raises(FormatError, match="closed by the reading process"):
        run_pipe(io.BytesIO(bytes(W * H * 20)), Closed(), spec, colorizer)


def test_pipe_command_is_typer_compatible():
    import typer
    from typer.testing import CliRunner

    from filmcolor.plugins.ffmpeg_pipe import pipe

    app = typer.Typer()
    app.command("pipe")(pipe)
    app.command("other")(lambda: None)
    res = CliRunner().invoke(app, ["pipe", "--help"])
    assert res.exit_code == 0
    for opt in ("--width", "-W", "--height", "-H", "--pix-fmt", "--out-pix-fmt", "--model", "--render-size"):
        assert opt in res.output


def _bash(cmd: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    return subprocess.run(["bash", "-c", "set -o pipefail; " + cmd], capture_output=True, text=True, timeout=timeout,
                          env=env)


def _pipe_cmd(model: Path, *args: str) -> str:
    return " ".join([shlex.quote(sys.executable), "-m", "filmcolor.plugins.ffmpeg_pipe", "-W", str(W), "-H", str(H),
                     "-m", shlex.quote(str(model)), "-e", "torch", *args])


@needs_ffmpeg
def test_pipe_shell_recipe_with_filters_and_audio(tmp_path, tiny_model_path):
    src = make_clip(tmp_path / "in.mp4", frames=N, audio=True)
    out = tmp_path / "out.mp4"
    q = shlex.quote
    cmd = (f"ffmpeg -v error -i {q(str(src))} -vf hqdn3d,format=gray -f rawvideo - "
           f"| {_pipe_cmd(tiny_model_path, '--pix-fmt', 'gray')} "
           f"| ffmpeg -v error -y -f rawvideo -pix_fmt yuv420p -color_range pc -s {W}x{H} -r 12 -i - -i {q(str(src))} "
           f"-map 0:v -map '1:a?' -c:a copy -vf eq=saturation=1.1 {q(str(out))}")
    r = _bash(cmd)
    assert r.returncode == 0, r.stderr
    assert f"{N} frame(s)" in r.stderr
    assert _streams(out) == {"video": 1, "audio": 1}
    planes = _yuv_frames(out)
    assert len(planes) == N
    assert np.mean([_chroma_spread(cb, cr) for _, cb, cr in planes]) > 5  # coloured


@needs_ffmpeg
def test_pipe_short_final_frame_fails_with_one_line(tmp_path, tiny_model_path):
    src = make_clip(tmp_path / "in.mp4", frames=N)
    raw_out = tmp_path / "out.yuv"
    cut = 3 * W * H + 100  # three whole gray frames and a piece of the fourth
    err = tmp_path / "pipe.err"
    cmd = (f"ffmpeg -v quiet -i {shlex.quote(str(src))} -f rawvideo -pix_fmt gray - | head -c {cut} "
           f"| {_pipe_cmd(tiny_model_path, '--pix-fmt', 'gray', '--quiet')} > {shlex.quote(str(raw_out))} "
           f"2> {shlex.quote(str(err))}")
    r = _bash(cmd)
    assert r.returncode == 2, r.stderr
    lines = err.read_text().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: input ended inside frame 4: got 100 of 3072 bytes"), lines
    assert raw_out.stat().st_size == 3 * W * H * 3 // 2  # the complete frames were written first


@needs_ffmpeg
def test_pipe_agrees_with_file_pipeline(tmp_path, tiny_model_path):
    """Same clip, same causal smoothing: the pipe (into FFV1) and colorize_video (FFV1) give the same planes."""
    from filmcolor.colorizer import Colorizer
    from filmcolor.pipeline import colorize_video

    src = make_clip(tmp_path / "in.mp4", frames=N)
    piped = tmp_path / "pipe.mkv"
    cmd = (f"ffmpeg -v error -i {shlex.quote(str(src))} -f rawvideo -pix_fmt yuv420p - "
           f"| {_pipe_cmd(tiny_model_path, '--pix-fmt', 'yuv420p', '--quiet')} "
           f"| ffmpeg -v error -y -f rawvideo -pix_fmt yuv420p -s {W}x{H} -r 12 -i - -c:v ffv1 {shlex.quote(str(piped))}")
    r = _bash(cmd)
    assert r.returncode == 0, r.stderr
    c = Colorizer(model=str(tiny_model_path), engine="torch", smoothing="stream")
    colorize_video(src, tmp_path / "file.mkv", c)
    a, b = _yuv_frames(piped), _yuv_frames(tmp_path / "file.mkv")
    assert len(a) == len(b) == N
    for (ya, cba, cra), (yb, cbb, crb) in zip(a, b):
        assert np.array_equal(ya, yb)  # both keep the source's luma codes
        assert np.abs(cba.astype(int) - cbb).max() <= 1 and np.abs(cra.astype(int) - crb).max() <= 1
    assert np.mean([_chroma_spread(cb, cr) for _, cb, cr in a]) > 5


# ------------------------------------------------------------------------------------- ffmpeg-python graph
def test_graph_filter_parsing_and_args():
    from filmcolor.plugins.ffmpeg_graph import build_graph, parse_filter

    assert parse_filter("hqdn3d=4:3:6:4.5") == ("hqdn3d", ["4", "3", "6", "4.5"], {})
    assert parse_filter("eq=saturation=1.1:gamma=0.9") == ("eq", [], {"saturation": "1.1", "gamma": "0.9"})
    assert parse_filter("yadif") == ("yadif", [], {})
    dec, enc = build_graph("in.mp4", "out.mp4", width=W, height=H, rate=12, pre_filters="yadif,hqdn3d=4:3:6:4.5",
                           post_filters=[("eq", [], {"saturation": 1.1})], matrix="bt601")
    d, e = " ".join(dec.get_args()), enc.get_args()
    assert "yadif" in d and "hqdn3d=4:3:6:4.5" in d and "-f rawvideo" in d and "-pix_fmt gray" in d
    assert "1:a?" in e and "-color_range" in e and f"{W}x{H}" in e and "eq=saturation=1.1" in " ".join(e)


@needs_ffmpeg
def test_graph_prefilter_and_audio(tmp_path, tiny_model_path):
    from filmcolor.plugins.ffmpeg_graph import colorize_graph

    src = make_clip(tmp_path / "in.mp4", frames=N, audio=True)
    dst = tmp_path / "out.mp4"
    # the pre-filter scales up, so frames (300 KiB) outgrow the OS pipe buffers: no deadlock either way
    res = colorize_graph(src, dst, pre_filters="hqdn3d=2:2:3:3,scale=w=640:h=480", post_filters="eq=saturation=1.2",
                         model=str(tiny_model_path), engine="torch")
    assert res["frames"] == N and (res["width"], res["height"]) == (640, 480) and res["audio_streams"] == 1
    assert _streams(dst) == {"video": 1, "audio": 1}
    planes = _yuv_frames(dst)
    assert len(planes) == N and planes[0][0].shape == (480, 640)
    assert np.mean([_chroma_spread(cb, cr) for _, cb, cr in planes]) > 5
    assert not list(tmp_path.glob(".*partial*"))
    from filmcolor.errors import FormatError

    with pytest.raises(FormatError, match="No such filter"):
        colorize_graph(src, tmp_path / "bad.mp4", pre_filters="nosuchfilter", model=str(tiny_model_path), engine="torch")
    assert not (tmp_path / "bad.mp4").exists()


# ------------------------------------------------------------------------------------------ VapourSynth
def test_vapoursynth_pure_parts():
    from filmcolor.plugins import vapoursynth as fv

    assert fv.output_format(fv.GRAY, fv.INTEGER, 8, 0, 0) == (fv.YUV, 8, 1, 1)
    assert fv.output_format(fv.GRAY, fv.INTEGER, 16, 0, 0, "444") == (fv.YUV, 16, 0, 0)
    assert fv.output_format(fv.YUV, fv.INTEGER, 10, 1, 0) == (fv.YUV, 10, 1, 0)
    for bad in ((2, fv.INTEGER, 8, 0, 0), (fv.GRAY, 1, 32, 0, 0)):  # RGB, float
        with pytest.raises(ValueError):
            fv.output_format(*bad)
    assert fv.range_and_matrix({}, fv.GRAY, 48) == (True, "bt601")
    assert fv.range_and_matrix({}, fv.YUV, 1080) == (False, "bt709")
    assert fv.range_and_matrix({"_Range": 1, "_Matrix": 9}, fv.YUV, 48) == (True, "bt2020nc")
    assert fv.range_and_matrix({"_ColorRange": 1, "_Matrix": 1}, fv.GRAY, 48) == (False, "bt709")
    assert fv.range_and_matrix({"_Range": 1}, fv.GRAY, 48, "limited", "bt709") == (False, "bt709")
    lay = fv.planar_layout(10, 1, 1, False)
    assert (lay.name, lay.bits, lay.chroma_size(W, H)) == ("yuv420p10le", 10, (32, 24))


def test_vapoursynth_sequencer_orders_threaded_requests():
    from filmcolor.plugins.vapoursynth import FrameSequencer

    class Stream:
        latency = 0

        def __init__(self) -> None:
            self.pushed: list[int] = []
            self.resets = 0

        def push(self, y, tag):
            self.pushed.append(tag)
            return [(tag, y + 1, y + 2)]

        def reset(self) -> None:
            self.resets += 1

    stream = Stream()
    seq = FrameSequencer(lambda: stream, order_wait=5.0)
    order = [0, 2, 1, 4, 3, 5, 7, 6]  # requests arrive a little out of order, from several threads
    threads = []
    for n in order:
        t = threading.Thread(target=seq.process, args=(n, np.full((2, 2), n)))
        t.start()
        threads.append(t)
        if n == 0:
            t.join()
    for t in threads:
        t.join(timeout=10)
    assert stream.pushed == sorted(order) and stream.resets == 0
    cb, cr = seq.process(3, np.zeros((2, 2)))  # asked again: from the cache
    assert cb[0, 0] == 4 and stream.pushed.count(3) == 1
    seq.process(40, np.zeros((2, 2)))  # a seek restarts the smoothing
    assert stream.resets == 1 and seq.next == 41


def test_vapoursynth_missing_module_message():
    if importlib.util.find_spec("vapoursynth") is not None:
        pytest.skip("vapoursynth is installed")
    from filmcolor.plugins.vapoursynth import colorize

    with pytest.raises(ImportError, match="Python >= 3.12"):
        colorize(None)


def test_vapoursynth_integration(tiny_model_path):
    vs = pytest.importorskip("vapoursynth", reason=VS_SKIP)
    from filmcolor.plugins.vapoursynth import colorize

    core = vs.core
    clip = core.std.BlankClip(format=vs.GRAY8, width=W, height=H, length=6, color=[90])
    out = colorize(clip, model=str(tiny_model_path), engine="torch")
    assert out.format.name == "YUV420P8" and out.num_frames == 6
    for i, f in enumerate(out.frames()):
        assert np.array_equal(np.asarray(f[0]), np.asarray(clip.get_frame(i)[0]))
        assert _chroma_spread(np.asarray(f[1]), np.asarray(f[2])) > 2
