"""Reference frames for film: carried forward and backward within a shot, never across a cut."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
import pytest

from conftest import write_frames

W, H, RATE, CUT, KEY = 96, 64, 12, 10, 5   # 20 frames: shot A = 0..9, shot B = 10..19; reference at frame 5


def _texture(seed: int, lo: int = 40, span: int = 180) -> np.ndarray:
    import cv2

    rng = np.random.default_rng(seed)
    t = cv2.GaussianBlur(rng.uniform(0, 255, (H, 2 * W)).astype(np.float32), (0, 0), 3)
    t = (t - t.min()) / (t.max() - t.min())
    return (lo + span * t).astype(np.uint8)


def _frame_grey(i: int) -> np.ndarray:
    """Shot A: a texture panning 2 px a frame; shot B: another, darker texture (a hard cut)."""
    tex = _texture(1) if i < CUT else _texture(2, 10, 90)
    return tex[:, 2 * i:2 * i + W]


def _write(path: Path, frames: list[np.ndarray]) -> Path:
    return write_frames(path, frames, rate=RATE, options={"crf": "12"})


@pytest.fixture
def cut_clip(tmp_path: Path) -> tuple[Path, Path]:
    """(grey clip with a cut at frame 10, a green colour reference of frame 5; the test model is reddish)."""
    import cv2

    clip = _write(tmp_path / "grey.mp4", [_frame_grey(i) for i in range(20)])
    y = _frame_grey(KEY).astype(np.int16)
    ref = np.stack([np.clip(y - 40, 0, 255), np.clip(y + 40, 0, 255), np.clip(y - 40, 0, 255)], -1).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "key.png"), cv2.cvtColor(ref, cv2.COLOR_RGB2BGR))
    return clip, tmp_path / "key.png"


def _mean_a(path: Path) -> np.ndarray:
    """Mean Lab a* per frame of a clip (red > 0 > green)."""
    import av
    import cv2

    with av.open(str(path)) as c:
        rgb = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    return np.array([cv2.cvtColor(f, cv2.COLOR_RGB2LAB)[..., 1].astype(float).mean() - 128 for f in rgb])


def _stream_for(tiny_model_path):
    """A ChromaStream of the test model for the cut clip's size (what a guide's to_L must match)."""
    from filmcolor.colorizer import Colorizer, ColorizerOptions
    from filmcolor.video.formats import choose_matrix, parse_planar

    col = Colorizer(ColorizerOptions(model=str(tiny_model_path), engine="torch", smoothing="off"))
    return col.stream(W, H, parse_planar("yuv420p"), choose_matrix(None, H))


def test_parse_time_forms():
    from filmcolor.errors import UsageError
    from filmcolor.guidance import parse_time

    assert parse_time("12.5") == ("seconds", 12.5)
    assert parse_time(3) == ("seconds", 3.0)
    assert parse_time("00:01:02.50") == ("seconds", 62.5)
    assert parse_time("1:02") == ("seconds", 62.0)
    assert parse_time("f300") == ("frame", 300)
    for bad in ("", "x", "-1", "00:61:00", "f-3", "nan"):
        with pytest.raises(UsageError):
            parse_time(bad)


def _drive(guide, clip: Path, stream, first: int = 0) -> dict[int, object]:
    """Guidance per pts, as a stream gets it: ``at(pts)`` then its resolver on the frame's L (no motion
    given: the guide tracks motion itself, as under ``--keyframes all``). Frames before ``first`` are skipped,
    as a run starting there (a segment, ``--start``) never decodes them."""
    import av

    got = {}
    with av.open(str(clip)) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i < first:
                continue
            L = torch.from_numpy(stream.render_L(f.to_ndarray(format="gray")))[None, None]
            resolve = guide.at(int(f.pts))
            got[int(f.pts)] = None if resolve is None else resolve(L, None)
    return got


def _guide(clip: Path, key: Path, stream):
    import av

    from filmcolor.temporal.references import ClipGuidance, open_guide

    with av.open(str(clip)) as c:
        return open_guide(ClipGuidance(((f"f{KEY}", str(key)),)), clip, c.streams.video[0], (H, W), stream.render_hw,
                          lambda f: stream.render_L(f.to_ndarray(format="gray")))


def test_reference_guide_carries_both_ways_within_the_shot_only(cut_clip, tiny_model_path):
    clip, key = cut_clip
    stream = _stream_for(tiny_model_path)
    guide = _guide(clip, key, stream)
    got = _drive(guide, clip, stream)
    pts = sorted(got)
    conf = [None if got[p] is None else float(got[p][1].mean()) for p in pts]
    assert conf[KEY] > 0.9                                   # the reference's own frame
    assert all(c is not None and c > 0.5 for c in conf[:CUT])  # carried back to frame 0 and on to frame 9
    assert conf[0] < conf[KEY] and conf[CUT - 1] < conf[KEY]   # falls with distance
    assert all(c is None for c in conf[CUT:])                # nothing crosses the cut
    a_carried = [float(got[p][0][0, 0].mean()) for p in pts[:CUT]]
    assert max(a_carried) < -15                              # the reference's green, carried
    assert guide.peak_frames <= guide.horizon + 1            # only the backward part is stored


def test_pre_pass_decodes_only_up_to_the_key_and_a_late_start_is_seeded(cut_clip, tiny_model_path):
    """The pre-pass covers the frames before a key (forward, the stream carries it); a run that starts
    after the key (a segment, ``--start``) gets the key carried up to its first frame, then on."""
    clip, key = cut_clip
    stream = _stream_for(tiny_model_path)
    guide = _guide(clip, key, stream)
    windows = []
    decode = guide._decode_window
    guide._decode_window = lambda lo, hi: windows.append((lo, hi)) or decode(lo, hi)  # type: ignore[method-assign]
    full = _drive(guide, clip, stream)
    pts = sorted(full)
    assert windows == [(pts[0], pts[KEY])]                    # one backward pre-pass, from frame 0 to the key

    late = _guide(clip, key, stream)
    windows.clear()
    decode = late._decode_window
    late._decode_window = lambda lo, hi: windows.append((lo, hi)) or decode(lo, hi)  # type: ignore[method-assign]
    got = _drive(late, clip, stream, first=KEY + 2)
    assert windows == [(pts[KEY], pts[KEY + 2])]              # forward from the key to the run's first frame
    for p in pts[KEY + 2:CUT]:
        assert got[p] is not None and float(got[p][1].mean()) > 0.5 and float(got[p][0][0, 0].mean()) < -15
    assert all(got[p] is None for p in pts[CUT:])


def test_resolver_follows_the_streams_motion(cut_clip, tiny_model_path):
    """Given the stream's own motion (keyframe inference's tracker), the forward carry steps on its flow
    and stops where the stream sees a new shot."""
    import av

    from filmcolor.temporal.motion import FLOW_SCALE, MotionTracker

    clip, key = cut_clip
    stream = _stream_for(tiny_model_path)
    guide, tracker = _guide(clip, key, stream), MotionTracker(scale=FLOW_SCALE)
    conf = []
    with av.open(str(clip)) as c:
        for i, f in enumerate(c.decode(video=0)):
            L = torch.from_numpy(stream.render_L(f.to_ndarray(format="gray")))[None, None]
            motion = tracker(L)
            if i == KEY + 2:
                motion = type(motion)(motion.index, True, False, None)   # the stream says: a new shot here
            resolve = guide.at(int(f.pts))
            g = None if resolve is None else resolve(L, motion)
            conf.append(None if g is None else float(g[1].mean()))
    assert all(c is not None and c > 0.5 for c in conf[:KEY + 2])
    assert all(c is None for c in conf[KEY + 2:])            # nothing carried over the stream's new shot


def test_first_step_from_a_key_at_a_shot_start_uses_the_guides_own_flow(cut_clip, tiny_model_path):
    """The key's frame starts a shot (the stream has no flow there yet); the step onto the next frame still
    runs on the guide's own DIS flow, not the stream's coarser one (it did before: 1.8 against 0.9 a,b
    RMSE after one step on a sample clip)."""
    import av

    from filmcolor.temporal.motion import FLOW_SCALE, MotionTracker

    clip, key = cut_clip
    stream = _stream_for(tiny_model_path)
    guide, tracker = _guide(clip, key, stream), MotionTracker(scale=FLOW_SCALE)
    calls, frame = [], [0]
    own = guide._carry_est
    guide._carry_est = lambda a, b: (calls.append(frame[0]), own(a, b))[1]
    with av.open(str(clip)) as c:
        for i, f in enumerate(c.decode(video=0)):
            frame[0] = i
            L = torch.from_numpy(stream.render_L(f.to_ndarray(format="gray")))[None, None]
            motion = tracker(L)
            if i == KEY:
                motion = type(motion)(motion.index, True, False, None)   # the key's frame starts a shot
            resolve = guide.at(int(f.pts))
            if resolve is not None:
                resolve(L, motion)
    assert KEY + 1 in calls and KEY + 2 in calls


def test_colorize_api_reference_reaches_its_shot_and_not_the_next(cut_clip, tiny_model_path, tmp_path):
    from filmcolor.api import colorize

    clip, key = cut_clip
    opts = dict(model=str(tiny_model_path), engine="torch", smoothing="off")
    colorize(clip, tmp_path / "auto.mp4", **opts)
    colorize(clip, tmp_path / "ref.mp4", references={KEY / RATE: str(key)}, **opts)
    auto, ref = _mean_a(tmp_path / "auto.mp4"), _mean_a(tmp_path / "ref.mp4")
    assert np.all(auto[:CUT] - ref[:CUT] > 15)                # forward and backward within shot A
    assert np.abs(ref[CUT:] - auto[CUT:]).max() < 1.0          # shot B stays automatic


def test_segments_get_the_references_of_their_span_and_resume_exactly(cut_clip, tiny_model_path, tmp_path):
    from filmcolor.api import colorize
    from filmcolor.colorizer import ColorizerOptions
    from filmcolor.segments import colorize_segmented
    from filmcolor.temporal.references import ClipGuidance

    clip, key = cut_clip
    opts = dict(model=str(tiny_model_path), engine="torch", smoothing="off")
    colorize(clip, tmp_path / "whole.mp4", references={f"f{KEY}": str(key)}, **opts)
    g = ClipGuidance(((f"f{KEY}", str(key)),))
    colorize_segmented(clip, tmp_path / "seg.mp4", ColorizerOptions(**opts), segment_seconds=0.3, guidance=g)
    whole, seg = _mean_a(tmp_path / "whole.mp4"), _mean_a(tmp_path / "seg.mp4")
    assert len(seg) == len(whole) == 20
    assert np.abs(whole - seg).max() < 1.0


def _cli(*args: str) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("filmcolor")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("case", ["outside", "unreadable", "aspect", "malformed", "badtime", "segments"])
def test_bad_references_one_line_exit_2_nothing_written(cut_clip, tiny_model_path, tmp_path, case):
    import cv2

    clip, key = cut_clip
    (tmp_path / "junk.png").write_text("not an image")
    cv2.imwrite(str(tmp_path / "square.png"), np.full((64, 64, 3), 128, np.uint8))
    arg = {"outside": f"99={key}", "unreadable": f"0.5={tmp_path / 'junk.png'}",
           "aspect": f"0.5={tmp_path / 'square.png'}", "malformed": str(key), "badtime": f"zz={key}", "segments": f"f500={key}"}[case]
    dst = tmp_path / "out.mp4"
    extra = ["--segments"] if case == "segments" else []
    r = _cli("colorize", str(clip), str(dst), "--model", str(tiny_model_path), "--reference", arg, "-q", *extra)
    assert r.returncode == 2, r.stderr
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) <= 2 and lines[0].startswith("error:"), r.stderr
    assert "Traceback" not in r.stderr
    assert not dst.exists() and not list(tmp_path.glob("*out*"))


def test_evaluate_exemplar_first_scores_both_modes_and_windows(tmp_path, tiny_model_path):
    """The colour clip's first frame as the reference: reported beside automatic and grey, whole and edges."""
    import json

    colour = []
    for i in range(CUT):
        y = _frame_grey(i).astype(np.int16)
        colour.append(np.stack([np.clip(y - 40, 0, 255), np.clip(y + 40, 0, 255), np.clip(y - 40, 0, 255)], -1).astype(np.uint8))
    write_frames(tmp_path / "colour.mp4", colour, rate=RATE, pix_fmt="yuv444p")
    grey = _write(tmp_path / "grey.mp4", [_frame_grey(i) for i in range(CUT)])
    r = _cli("evaluate", str(grey), "--reference", str(tmp_path / "colour.mp4"), "--exemplar", "first",
             "--model", str(tiny_model_path), "--json", str(tmp_path / "m.json"))
    assert r.returncode == 0, r.stderr
    res = json.loads((tmp_path / "m.json").read_text())
    assert res["frames"] == CUT
    for w in ("whole", "first10", "last10"):
        assert {"exemplar", "automatic", "grey"} <= set(res[w])
    assert res["whole"]["exemplar"]["psnr"] > res["whole"]["automatic"]["psnr"] + 3   # the reference's colour counts
    assert "exemplar" in r.stdout and "last10" in r.stdout


def test_frame_api_references_by_index_both_ways_not_across_the_cut(cut_clip, tiny_model_path):
    import cv2

    from filmcolor.api import colorize_frames

    _, key = cut_clip
    frames = [_frame_grey(i) for i in range(20)]
    opts = dict(model=str(tiny_model_path), engine="torch", smoothing="off")
    auto = list(colorize_frames(frames, **opts))
    ref = list(colorize_frames(frames, references={KEY: str(key)}, horizon=8, **opts))
    a = lambda fs: np.array([cv2.cvtColor(f, cv2.COLOR_RGB2LAB)[..., 1].astype(float).mean() - 128 for f in fs])  # noqa: E731
    assert len(ref) == 20
    da = a(auto) - a(ref)
    assert np.all(da[:CUT] > 15)                 # green carried back to frame 0 and on to frame 9
    assert np.abs(da[CUT:]).max() < 1.0          # nothing across the cut


def test_pipe_references_agree_with_the_frame_api(cut_clip, tiny_model_path):
    """``filmcolor pipe --reference fN=IMAGE`` (run_pipe) colours as colorize_frames(references=) does."""
    import io

    from filmcolor.api import colorize_frames
    from filmcolor.colorizer import Colorizer, ColorizerOptions
    from filmcolor.plugins.ffmpeg_pipe import PipeSpec, run_pipe

    _, key = cut_clip
    frames = [_frame_grey(i) for i in range(20)]
    c = Colorizer(ColorizerOptions(model=str(tiny_model_path), engine="torch", smoothing="off"))
    want = list(colorize_frames(frames, colorizer=c, references={KEY: str(key)}, horizon=90))
    auto = list(colorize_frames(frames, colorizer=c))
    spec = PipeSpec.make(W, H, "gray", "rgb24")
    out = io.BytesIO()
    res = run_pipe(io.BytesIO(b"".join(f.tobytes() for f in frames)), out, spec, c, references={KEY: str(key)})
    got = np.frombuffer(out.getvalue(), np.uint8).reshape(20, H, W, 3)
    assert res["frames"] == 20
    assert np.abs(got.astype(int) - np.array(want)).max() <= 1
    assert np.abs(got[:CUT].astype(int) - np.array(auto[:CUT])).mean() > 5   # the reference's colour counts


@pytest.mark.parametrize("args, needle", [
    (["--reference", "1.5=KEY"], "no timestamps"),
    (["--reference", "f3=MISSING"], "does not exist"),
    (["--reference", "f3"], "TIME=IMAGE"),
])
def test_pipe_reference_errors_are_one_line(cut_clip, tmp_path, args, needle):
    _, key = cut_clip
    argv = [a.replace("KEY", str(key)).replace("MISSING", str(tmp_path / "nope.png")) for a in args]
    r = subprocess.run([str(Path(sys.executable).with_name("filmcolor")), "pipe", "-W", str(W), "-H", str(H), *argv],
                       input=b"", capture_output=True, timeout=60)
    err = r.stderr.decode()
    assert r.returncode == 2 and needle in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err


class _Recorder:
    """A stand-in chroma stream that records what reaches it: pushes (tag, guided?) and resets."""

    render_hw = (8, 12)
    latency = 0

    def __init__(self):
        self.calls = []

    def render_L(self, y):
        import cv2

        return cv2.resize(y, (12, 8), interpolation=cv2.INTER_AREA).astype(np.float32) * (100 / 255)

    def push(self, y, tag, guidance=None):
        self.calls.append((tag, guidance is not None))
        return [tag]

    def flush(self):
        return []

    def reset(self):
        self.calls.append(("reset", None))


def test_referenced_stream_holds_frames_and_keeps_a_reset_in_its_place():
    from filmcolor.temporal.frame_references import ReferencedStream

    ref = np.zeros((16, 24, 3), np.uint8)
    ref[..., 1] = 200  # green: a coloured reference of frame 2
    rec = _Recorder()
    s = ReferencedStream(rec, {2: ref}, (16, 24), horizon=2)
    frame = np.full((16, 24), 120, np.uint8)
    out = []
    for i in range(2):
        out += s.push(frame, i)
    assert out == [] and rec.calls == []       # frames 0-1 wait for the reference (the backward carry)
    out += s.push(frame, 2)
    assert out == [0, 1, 2]                    # the reference's frame: the rest of its carry is forward
    s.reset()                                  # a cut before frame 3
    for i in range(3, 6):
        out += s.push(frame, i)
    out += s.flush()
    assert out == list(range(6))
    assert [c[0] for c in rec.calls] == [0, 1, 2, "reset", 3, 4, 5]
    assert all(g for t, g in rec.calls if t in (0, 1, 2))  # carried to 0 and 1 (both ways), the key itself at 2
    assert ReferencedStream(rec, None, (16, 24)).latency == 0 and s.latency == 2


def test_opencv_filter_takes_references(cut_clip, tiny_model_path):
    import cv2

    from filmcolor.plugins.opencv import ColorizeFilter

    _, key = cut_clip
    frames = [cv2.cvtColor(_frame_grey(i), cv2.COLOR_GRAY2BGR) for i in range(CUT)]
    opts = dict(model=str(tiny_model_path), engine="torch", smoothing="off")

    def run(**kw):
        with ColorizeFilter(**opts, **kw) as f:
            got = [f(x) for x in frames]
            return [g for g in got if g is not None] + f.flush()

    auto, ref = run(), run(references={KEY: cv2.imread(str(key))})
    assert len(ref) == CUT
    a = lambda fs: np.array([cv2.cvtColor(f, cv2.COLOR_BGR2LAB)[..., 1].astype(float).mean() - 128 for f in fs])  # noqa: E731
    assert np.all(a(auto) - a(ref) > 15)   # green reached every frame of the shot
