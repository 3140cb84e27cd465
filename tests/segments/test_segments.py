"""Long films in segments: planning, resume after crashes (in-process and kill -9), workers, Ray."""

import json
import signal
import subprocess
import sys
import time
from fractions import Fraction

import av
import numpy as np
import pytest

from filmcolor.colorizer import Colorizer, ColorizerOptions
from filmcolor.segments import colorize_segmented
from filmcolor.segments.plan import FrameIndex, index_frames, plan_segments
from filmcolor.errors import FormatError
from filmcolor.pipeline import colorize_video

from conftest import make_clip

GOP = {"g": "10", "keyint_min": "10", "sc_threshold": "0"}  # a keyframe every 10 frames
SEG = 10 / 12                                                # seconds: 10 frames at 12 fps


def decoded(path, fmt="yuv420p"):
    """[(pts in seconds, frame array)] of the first video stream."""
    with av.open(str(path)) as c:
        return [(float(f.pts * f.time_base), f.to_ndarray(format=fmt)) for f in c.decode(video=0)]


def same_frames(a, b) -> bool:
    return len(a) == len(b) and all(abs(x[0] - y[0]) < 1e-6 and np.array_equal(x[1], y[1]) for x, y in zip(a, b))


@pytest.fixture(scope="module")
def film(tmp_path_factory):
    """40 frames (4 GOPs) with audio, 128x96: x264 encodes frames of only a few macroblocks (64x48)
    differently from run to run (it reads uninitialised memory there), so lossy outputs would not compare."""
    return make_clip(tmp_path_factory.mktemp("film") / "film.mp4", frames=40, size=(128, 96), audio=True, options=GOP)


@pytest.fixture(scope="module")
def options(tiny_model_path):
    return ColorizerOptions(model=str(tiny_model_path), engine="torch")


@pytest.fixture(scope="module")
def uninterrupted(film, options, tmp_path_factory):
    dst = tmp_path_factory.mktemp("ref") / "ref.mp4"
    res = colorize_segmented(film, dst, options, segment_seconds=SEG)
    assert res["segments"] == 4 and res["segments_rendered"] == 4 and res["frames"] == 40
    return dst


def test_plan_cuts_at_keyframes_with_overlap():
    idx = FrameIndex(tuple(range(0, 400, 10)), (0, 10, 20, 30), Fraction(1, 120), Fraction(12))
    segs = plan_segments(idx, segment_frames=15, overlap=3, suffix=".mp4")
    assert [(s.first, s.end) for s in segs] == [(0, 20), (20, 40)]
    s0, s1 = segs
    assert (s0.span.decode_from, s0.span.emit_from, s0.span.emit_to, s0.span.decode_to) == (0, 0, 200, 230)
    assert (s1.span.decode_from, s1.span.emit_from, s1.span.emit_to, s1.span.decode_to) == (170, 200, None, None)
    assert s1.span.emits(200) and not s1.span.emits(190) and s0.span.emits(190) and not s0.span.emits(200)
    assert len(plan_segments(FrameIndex((0, 1, 2), (0,), Fraction(1, 25), Fraction(25)), 1, 2, ".mkv")) == 1


def test_index_frames_reads_keyframes(film):
    idx = index_frames(film)
    assert idx.frames == 40 and idx.keyframes == (0, 10, 20, 30)


@pytest.mark.slow  # integration: tens of seconds on 2 cores; CI runs it (pytest -m slow)
def test_segments_join_keeps_timestamps_audio_and_equals_one_pass(film, options, uninterrupted, tmp_path):
    src, out = decoded(film), decoded(uninterrupted)
    assert [t for t, _ in out] == pytest.approx([t for t, _ in src])
    with av.open(str(uninterrupted)) as c:
        audio = c.streams.audio[0]
        assert audio.codec_context.name == "aac" and audio.duration
        assert abs(float(audio.duration * audio.time_base) - 40 / 12) < 0.1
    # lossless output: the segmented film is the one-pass film, frame for frame (window smoothing warmed up)
    one, seg = tmp_path / "one.mkv", tmp_path / "seg.mkv"
    c = Colorizer(options)
    colorize_video(film, one, c)
    colorize_segmented(film, seg, options, segment_seconds=SEG, colorizer=c)
    assert same_frames(decoded(one, "yuv444p"), decoded(seg, "yuv444p"))


@pytest.mark.slow  # integration: tens of seconds on 2 cores; CI runs it (pytest -m slow)
def test_resume_after_interruption_redoes_only_unfinished(film, options, uninterrupted, tmp_path):
    dst = tmp_path / "out.mp4"
    seen = []

    def crash_after_two(summary):
        seen.append(summary["segment"])
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        colorize_segmented(film, dst, options, segment_seconds=SEG, on_segment=crash_after_two)
    assert not dst.exists()
    res = colorize_segmented(film, dst, options, segment_seconds=SEG)
    assert res["segments_reused"] == 2 and res["segments_rendered"] == 2
    assert same_frames(decoded(dst), decoded(uninterrupted))
    assert not (tmp_path / ".out.mp4.filmcolor-work").exists()  # cleaned after the join


@pytest.mark.slow  # integration: tens of seconds on 2 cores; CI runs it (pytest -m slow)
def test_kill_9_at_random_points_then_resume_equals_uninterrupted(film, tiny_model_path, uninterrupted, tmp_path):
    dst = tmp_path / "out.mp4"
    work = tmp_path / ".out.mp4.filmcolor-work"
    cmd = [sys.executable, "-m", "filmcolor.cli", "colorize", str(film), str(dst), "-m", str(tiny_model_path),
           "--engine", "torch", "--segments", "--segment-seconds", str(SEG), "--quiet"]
    rng = np.random.default_rng(0)
    for kills in range(2):
        p = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
        want = kills + 1  # wait for this many finished segments, then a random extra moment
        deadline = time.time() + 90
        while time.time() < deadline and len(list(work.glob("*.done.json"))) < want and p.poll() is None:
            time.sleep(0.02)
        time.sleep(float(rng.uniform(0, 0.3)))
        p.send_signal(signal.SIGKILL)
        p.wait()
        assert not dst.exists()
    r = subprocess.run(cmd + ["--json", str(tmp_path / "r.json")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    res = json.loads((tmp_path / "r.json").read_text())
    assert res["segments_reused"] >= 2
    assert same_frames(decoded(dst), decoded(uninterrupted))
    assert not list(tmp_path.glob(".out*partial*"))


@pytest.mark.slow  # integration: tens of seconds on 2 cores; CI runs it (pytest -m slow)
def test_two_worker_processes_equal_one(film, options, uninterrupted, tmp_path):
    dst = tmp_path / "out.mp4"
    res = colorize_segmented(film, dst, options, segment_seconds=SEG, workers=2)
    assert "2 worker processes" in res["executor"]
    assert same_frames(decoded(dst), decoded(uninterrupted))


def test_work_folder_of_another_job_is_refused(film, options, tmp_path):
    dst = tmp_path / "out.mp4"
    with pytest.raises(KeyboardInterrupt):
        colorize_segmented(film, dst, options, segment_seconds=SEG, keep_work=True,
                           on_segment=lambda s: (_ for _ in ()).throw(KeyboardInterrupt))
    other = ColorizerOptions(model=options.model, engine="torch", saturation=2.0)
    with pytest.raises(FormatError, match="different job"):
        colorize_segmented(film, dst, other, segment_seconds=SEG)


def test_cli_segment_errors(film, tiny_model_path, tmp_path):
    r = subprocess.run([sys.executable, "-m", "filmcolor.cli", "colorize", str(film), str(tmp_path / "o.mp4"),
                        "-m", str(tiny_model_path), "--segments", "--start", "1"], capture_output=True, text=True)
    assert r.returncode == 2 and "cannot be combined" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow  # integration: tens of seconds on 2 cores; CI runs it (pytest -m slow)
def test_ray_local_cluster_equals_one_process(film, options, uninterrupted, tmp_path):
    ray = pytest.importorskip("ray", reason="Ray not installed (pip install 'filmcolor[ray]')")
    dst = tmp_path / "out.mp4"
    res = colorize_segmented(film, dst, options, segment_seconds=SEG, executor="ray", ray_address="local", workers=2)
    assert res["executor"] == "Ray (local)" and not ray.is_initialized()
    assert same_frames(decoded(dst), decoded(uninterrupted))


def test_next_dts_lifts_a_seam_dts_but_never_past_pts():
    from filmcolor.segments.join import next_dts
    assert next_dts(None, -2, 0) == -2 and next_dts(5, 6, 9) == 6
    assert next_dts(5, 4, 9) == 6 and next_dts(5, 5, 6) == 6   # B-frame delay of a new segment
    with pytest.raises(FormatError, match="overlap"):
        next_dts(5, 3, 5)


def test_span_at_first_frame_does_not_seek():  # a late seek being an error: the next test
    idx = FrameIndex((1000, 1010, 1020, 1030), (0, 2), Fraction(1, 100), Fraction(10))
    s0, s1 = plan_segments(idx, segment_frames=2, overlap=1, suffix=".mkv")
    assert not s0.span.seek and s1.span.seek  # an MPEG-TS-like start (pts 1000) is decoded from the top


def test_reader_refuses_a_seek_that_lands_after_the_segment(film, options, tmp_path):
    from filmcolor.video.source import Span
    c = Colorizer(options)
    # ask for a segment starting between keyframes 10 and 20 but claim it is exact: pts 15 frames in
    with av.open(str(film)) as f:
        pts = sorted(p.pts for p in f.demux(video=0) if p.size)
    span = Span(decode_from=pts[15], emit_from=pts[15], emit_to=pts[20], decode_to=pts[20])
    res = colorize_video(film, tmp_path / "ok.mkv", c, span=span)  # backward seek lands before: fine
    assert res["frames"] == 5
    late = Span(decode_from=pts[0] - 1, emit_from=pts[0], emit_to=pts[5], decode_to=pts[5], seek=False)
    with pytest.raises(FormatError, match="not frame-exact"):
        colorize_video(film, tmp_path / "late.mkv", c, span=late)
    assert not (tmp_path / "late.mkv").exists()


def test_avi_output_is_refused_in_segments(film, options, tmp_path):
    with pytest.raises(FormatError, match="cannot be written in segments"):
        colorize_segmented(film, tmp_path / "o.avi", options, segment_seconds=SEG)


def test_work_folder_lock_refuses_a_live_run_and_takes_over_a_dead_one(tmp_path):
    from filmcolor.segments.manifest import LOCK, WorkFolder
    folder = WorkFolder(tmp_path / "w")
    with folder.locked():
        with pytest.raises(FormatError, match="in use by another filmcolor run"):
            with WorkFolder(tmp_path / "w").locked():
                pass
    assert not (tmp_path / "w").exists()  # lock gone, empty folder removed
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (tmp_path / "w").mkdir()
    import socket
    (tmp_path / "w" / LOCK).write_text(json.dumps({"host": socket.gethostname(), "pid": int(dead.stdout)}))
    with folder.locked():
        assert json.loads((tmp_path / "w" / LOCK).read_text())["pid"] != int(dead.stdout)


@pytest.mark.slow  # integration: tens of seconds on 2 cores; CI runs it (pytest -m slow)
def test_worker_process_start_failure_is_reported(film, tmp_path):
    bad = ColorizerOptions(model=str(tmp_path / "missing.safetensors"), engine="torch")
    from filmcolor.segments.executors import ProcessExecutor
    from filmcolor.segments.worker import SegmentTask
    idx = index_frames(film)
    seg = plan_segments(idx, 10, 2, ".mkv")[0]
    (tmp_path / "w").mkdir()
    with pytest.raises(FormatError, match="worker process could not start"):
        ProcessExecutor(bad, workers=1).run([SegmentTask(str(film), str(tmp_path / "w"), seg, None)], lambda s: None)


def test_resume_key_sees_retrained_weights_of_the_same_size_and_the_engine(film, tiny_model_path, tmp_path):
    """A retrained model of the same architecture has the same byte size: its key (so its work) is new."""
    import shutil

    from filmcolor.segments.runner import job_key
    from filmcolor.video.sink import EncodeOptions

    model = tmp_path / "m.safetensors"
    shutil.copy(tiny_model_path, model)
    shutil.copy(tiny_model_path.with_suffix(".json"), model.with_suffix(".json"))
    key = lambda **kw: job_key(film, tmp_path / "o.mkv", ColorizerOptions(model=str(model), **kw),  # noqa: E731
                               EncodeOptions(), 10, 2)
    before = key(engine="torch")
    assert key(engine="torch") == before
    data = bytearray(model.read_bytes())
    data[-64:] = bytes(b ^ 0x01 for b in data[-64:])  # "retrained": the last weights' low bits, same size
    model.write_bytes(bytes(data))
    assert key(engine="torch") != before
    assert key(engine="torch") != key(engine="onnxruntime-int8")


def test_resume_key_names_the_engine_auto_resolves_to(film, tiny_model_path, tmp_path, monkeypatch):
    """"auto" is TensorRT on one machine and ONNX Runtime on another: the key holds what it resolved to."""
    from filmcolor.engines import registry
    from filmcolor.segments.runner import job_key
    from filmcolor.video.sink import EncodeOptions

    key = lambda: job_key(film, tmp_path / "o.mkv", ColorizerOptions(model=str(tiny_model_path), engine="auto"),  # noqa: E731
                          EncodeOptions(), 10, 2)
    here = key()
    assert here["colorizer"]["engine"] == registry.resolve_engine("auto") != "auto"
    monkeypatch.setattr(registry, "probe", lambda name, dev: None if name == "tensorrt" else "not here")
    assert key()["colorizer"]["engine"] == "tensorrt" and key() != here
