"""The frame-stream engine end to end on tiny synthetic clips (PyAV fixtures, real encoders)."""

import av
import numpy as np
import pytest

from conftest import make_clip
from filmcolor.colorizer import Colorizer
from filmcolor.errors import FormatError
from filmcolor.pipeline import colorize_video


@pytest.fixture(scope="module")
def colorizer(tiny_model_path):
    return Colorizer(model=str(tiny_model_path), engine="torch", smoothing="off")


def frames_of(path, fmt=None):
    with av.open(str(path)) as c:
        return [(f.pts, f.to_ndarray(format=fmt) if fmt else f) for f in c.decode(video=0)]


def y_planes(path):
    from filmcolor.video.planes import plane_view

    out = []
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            dtype = "uint16" if "10" in f.format.name or "16" in f.format.name else "uint8"
            out.append(plane_view(f, 0, dtype).copy())
    return out


def test_round_trip_mkv_keeps_luma_frames_timestamps_audio(tmp_path, colorizer):
    src = make_clip(tmp_path / "in.mp4", frames=15, audio=True)
    dst = tmp_path / "out.mkv"
    res = colorize_video(src, dst, colorizer)
    assert res["frames"] == 15 and dst.exists()
    a, b = frames_of(src), frames_of(dst)
    assert len(a) == len(b) == 15
    ta = np.array([f.time for _, f in a]); tb = np.array([f.time for _, f in b])
    assert np.allclose(np.diff(ta), np.diff(tb), atol=1e-3)
    for ya, yb in zip(y_planes(src), y_planes(dst)):
        assert np.array_equal(ya, yb)  # FFV1: luma bit-exact
    chroma = b[5][1].to_ndarray(format="yuv420p")[48:]
    assert np.abs(chroma.astype(int) - 128).mean() > 2  # visibly coloured
    with av.open(str(src)) as c1, av.open(str(dst)) as c2:
        pa = [bytes(p) for p in c1.demux(audio=0) if p.size]
        pb = [bytes(p) for p in c2.demux(audio=0) if p.size]
    assert pa == pb and len(pa) > 0  # audio copied, not re-encoded


def test_mp4_default_is_h264_yuv420p(tmp_path, colorizer):
    src = make_clip(tmp_path / "in.mp4", frames=6)
    res = colorize_video(src, tmp_path / "out.mp4", colorizer)
    with av.open(str(tmp_path / "out.mp4")) as c:
        s = c.streams.video[0]
        assert s.codec_context.name == "h264" and s.codec_context.pix_fmt == "yuv420p"
        assert s.frames == 6
    assert res["codec"] == "libx264"
    # x264's veryfast preset at CRF 18 (its settings are written into the stream: veryfast looks 10 frames
    # ahead and uses subme 2, x264's own default medium 40 and 7)
    settings = (tmp_path / "out.mp4").read_bytes()
    assert b"crf=18.0" in settings and b"rc_lookahead=10" in settings and b"subme=2" in settings


def test_ten_bit_stays_ten_bit_and_bit_exact(tmp_path, colorizer):
    src = make_clip(tmp_path / "in10.mkv", frames=5, codec="ffv1", pix_fmt="yuv420p10le")
    dst = tmp_path / "out10.mkv"
    assert colorize_video(src, dst, colorizer)["pix_fmt"] == "yuv420p10le"
    for ya, yb in zip(y_planes(src), y_planes(dst)):
        assert ya.dtype == np.uint16 and np.array_equal(ya, yb)


def test_grey_pixel_format_source_is_full_range(tmp_path, colorizer):
    src = make_clip(tmp_path / "gray.mkv", frames=4, codec="ffv1", pix_fmt="gray")
    dst = tmp_path / "out.mkv"
    res = colorize_video(src, dst, colorizer)
    assert res["full_range"] and res["pix_fmt"] == "yuv420p"
    for ya, yb in zip(y_planes(src), y_planes(dst)):
        assert np.array_equal(ya, yb)


def test_variable_frame_rate_timestamps_kept(tmp_path, colorizer):
    pts = [0, 1, 3, 4, 8, 9, 15, 16]
    src = make_clip(tmp_path / "vfr.mkv", frames=len(pts), codec="ffv1", pts=pts, time_base=(1, 12))
    dst = tmp_path / "out.mkv"
    colorize_video(src, dst, colorizer)
    ta = [round(f.time, 3) for _, f in frames_of(src)]
    tb = [round(f.time, 3) for _, f in frames_of(dst)]
    assert ta == tb


def test_start_end_range(tmp_path, colorizer):
    src = make_clip(tmp_path / "in.mkv", frames=24, codec="ffv1")  # 12 fps, 2 s
    res = colorize_video(src, tmp_path / "cut.mkv", colorizer, start=0.5, end=1.5)
    assert res["frames"] == 12


@pytest.mark.parametrize("case", ["missing", "text", "audio_only", "same", "exists", "no_dir"])
def test_bad_input_is_a_clear_error_and_leaves_nothing(tmp_path, colorizer, case):
    src = make_clip(tmp_path / "ok.mp4", frames=3)
    dst = tmp_path / "out.mp4"
    if case == "missing":
        src = tmp_path / "nope.mp4"
    elif case == "text":
        src = tmp_path / "notes.mp4"
        src.write_text("this is not a video\n" * 50)
    elif case == "audio_only":
        src = tmp_path / "sound.m4a"
        with av.open(str(src), "w") as c:
            s = c.add_stream("aac", rate=48000)
            f = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            f.sample_rate, f.pts = 48000, 0
            c.mux(s.encode(f))
            c.mux(s.encode(None))
    elif case == "same":
        dst = src
    elif case == "exists":
        dst.write_bytes(b"precious")
    elif case == "no_dir":
        dst = tmp_path / "missing" / "out.mp4"
    with pytest.raises(FormatError):
        colorize_video(src, dst, colorizer)
    if case == "exists":
        assert dst.read_bytes() == b"precious"
    assert not list(tmp_path.glob(".*partial*"))


def test_truncated_stream_reports_and_finishes(tmp_path, colorizer):
    src = make_clip(tmp_path / "full.mkv", frames=30, codec="ffv1")
    data = src.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) * 2 // 3])
    dst = tmp_path / "out.mkv"
    res = colorize_video(cut, dst, colorizer)  # the frames before the cut are written, the run ends cleanly
    assert 0 < res["frames"] < 30
    written = y_planes(dst)
    assert len(written) == res["frames"]
    for ya, yb in zip(y_planes(src), written):
        assert np.array_equal(ya, yb)


def test_failure_mid_run_leaves_no_output(tmp_path, tiny_model_path, monkeypatch):
    c = Colorizer(model=str(tiny_model_path), engine="torch", smoothing="off")
    calls = {"n": 0}
    real = c.engine.infer

    def boom(L, guidance=None):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real(L, guidance)

    monkeypatch.setattr(c.engine, "infer", boom)
    src = make_clip(tmp_path / "in.mp4", frames=10)
    with pytest.raises(KeyboardInterrupt):
        colorize_video(src, tmp_path / "out.mp4", c)
    assert not (tmp_path / "out.mp4").exists() and not list(tmp_path.glob(".*partial*"))


@pytest.mark.parametrize("mode", ["window", "stream"])
def test_temporal_smoothing_keeps_every_frame_in_order(tmp_path, tiny_model_path, mode):
    c = Colorizer(model=str(tiny_model_path), engine="torch", smoothing=mode)
    src = make_clip(tmp_path / "in.mkv", frames=10, codec="ffv1")
    dst = tmp_path / "out.mkv"
    assert colorize_video(src, dst, c)["frames"] == 10
    assert [round(f.time, 3) for _, f in frames_of(src)] == [round(f.time, 3) for _, f in frames_of(dst)]
    for ya, yb in zip(y_planes(src), y_planes(dst)):
        assert np.array_equal(ya, yb)


def test_webm_output_converts_aac_audio_to_opus(colorizer, tmp_path):
    src = make_clip(tmp_path / "in.mp4", frames=6, audio=True)
    dst = tmp_path / "out.webm"
    res = colorize_video(src, dst, colorizer)
    assert any("converted to libopus" in w for w in res["warnings"])
    with av.open(str(dst)) as c:
        assert c.streams.audio[0].codec_context.name == "opus" and c.streams.video[0].codec_context.name == "vp9"


@pytest.mark.parametrize("backlog,finished_here", [(0, False), (3, False), (4, True), (8, True)])
def test_chroma_finish_moves_to_the_colorizing_thread_when_the_encoder_is_behind(backlog, finished_here):
    """With the encoding thread's queue half full the frame's finish runs where the frames are made (the
    encoder is the bottleneck); otherwise it is left to the encoding thread. The planes are the same."""
    import threading

    from filmcolor.pipeline import _Run

    class Writer:
        size = 8

        def __init__(self):
            self.backlog, self.items = backlog, []

        def put(self, item):
            self.items.append(item)

    ran_in = []

    def finish():
        ran_in.append(threading.current_thread().name)
        return "cb", "cr"

    run = _Run(stream=None, sink=None, span=None, progress=None, total=None)
    w = Writer()
    run._emit([(("frame", "y"), finish)], w)
    (kind, (frame, y, deferred)), = w.items
    assert (kind, frame, y) == ("c", "frame", "y") and bool(ran_in) == finished_here
    assert deferred() == ("cb", "cr") and len(ran_in) == 1
