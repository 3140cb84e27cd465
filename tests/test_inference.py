"""The one inference path: every entry point gives the same picture; ``evaluate`` scores what ``colorize`` writes."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch

from conftest import write_frames

W, H = 64, 48


def grey_picture() -> np.ndarray:
    """A grey test picture with edges: a gradient, a bright square and a dark bar."""
    yy, xx = np.mgrid[0:H, 0:W]
    img = (xx * 3 + yy * 2).astype(np.uint8)
    img[10:26, 20:36] = 230
    img[34:40, 5:60] = 15
    return img


@pytest.fixture(scope="module")
def colorizer(tiny_model_path):
    from filmcolor.colorizer import Colorizer

    c = Colorizer(model=str(tiny_model_path), engine="torch")
    yield c
    c.close()


def planes_of_video(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    with av.open(str(path)) as box:
        frame = next(box.decode(video=0))
        assert frame.format.name == "yuv444p"
        return tuple(np.asarray(frame.planes[i]).reshape(H, -1)[:, :W].copy() for i in range(3))  # type: ignore


def write_grey_clip(path: Path, picture: np.ndarray, frames: int = 1) -> Path:
    return write_frames(path, [picture] * frames, codec="ffv1", pix_fmt="gray")  # lossless: Y' = the picture


def test_pure_function_matches_the_stream(colorizer):
    """chroma_from_luma (the pure function) is what ChromaStream computes for one frame, to float rounding."""
    from filmcolor.inference import chroma_from_luma
    from filmcolor.video.rgb import layout_444
    from filmcolor.video.formats import choose_matrix

    y = grey_picture()
    layout, matrix = layout_444(8, True), choose_matrix(None, H)
    stream = colorizer.stream(W, H, layout, matrix)
    ((_, cb, cr),) = stream.push(y) + stream.flush()
    h, w = stream.render_hw
    y_lo = cv2.resize(y, (w, h), interpolation=cv2.INTER_AREA)
    L = torch.from_numpy(stream.lut[y_lo])[None, None]
    cbcr = chroma_from_luma(colorizer.predictor.infer, L, torch.from_numpy(y_lo / 255.0).float()[None, None],
                            torch.from_numpy(y / 255.0).float()[None, None], matrix, gain=colorizer.gain)
    codes = layout.code_range.c_from_unit(cbcr[0]).numpy().astype(np.uint8)
    assert np.abs(codes[0].astype(int) - cb).max() <= 1 and np.abs(codes[1].astype(int) - cr).max() <= 1
    assert np.abs(cb.astype(int) - 128).max() > 3  # there is colour to compare


def test_guidance_sets_hinted_chroma(colorizer):
    from filmcolor.inference import predict_ab

    L = torch.full((1, 1, 64, 64), 50.0)
    hint = torch.zeros(1, 2, 64, 64)
    hint[:, 0] = 30.0
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., :32] = 1.0
    auto = predict_ab(colorizer.predictor.infer, L)
    guided = predict_ab(colorizer.predictor.infer, L, guidance=(hint, mask))
    assert torch.allclose(guided[..., :32], hint[..., :32]) and torch.equal(guided[..., 32:], auto[..., 32:])
    with pytest.raises(ValueError, match="guidance"):
        predict_ab(colorizer.predictor.infer, L, guidance=(hint[..., :8], mask))


def test_confident_guidance_is_kept_and_doubtful_guidance_blended():
    """Above ``trust`` the guidance's colour is kept; below it blends linearly; a guided model sees it first."""
    from filmcolor.inference import predict_ab

    seen = []

    def infer(L, guidance=None):
        seen.append(guidance is not None)
        return torch.full((L.shape[0], 2, *L.shape[-2:]), 10.0)

    L = torch.full((1, 1, 2, 4), 50.0)
    hint = torch.full((1, 2, 2, 4), 30.0)
    mask = torch.tensor([0.0, 0.1, 0.25, 0.9]).repeat(1, 1, 2, 1)
    for guided in (False, True):
        ab = predict_ab(infer, L, gain=2.0, guidance=(hint, mask), guided=guided, trust=0.25)
        # model 10 x gain 2 = 20; the hint 30 weighs mask / 0.25, at most 1
        assert torch.allclose(ab[0, 0, 0], torch.tensor([20.0, 24.0, 30.0, 30.0]))
    assert seen == [False, True]


def test_entry_points_agree(colorizer, tmp_path, tiny_model_path):
    """File pipeline, pipe, VapourSynth's sequencer, colorize_image, colorize_frames, stills, OpenCV, preview:
    the same grey picture gets the same chroma (at most 1 code value apart)."""
    import filmcolor
    from filmcolor.images import colorize_image_file
    from filmcolor.plugins.ffmpeg_pipe import PipeSpec, run_pipe
    from filmcolor.plugins.opencv import ColorizeFilter
    from filmcolor.plugins.vapoursynth import FrameSequencer, planar_layout
    from filmcolor.video.formats import choose_matrix
    from filmcolor.pipeline import colorize_video
    from filmcolor.video.sink import EncodeOptions
    from filmcolor.video.rgb import layout_444, ycbcr_planes_to_rgb

    y = grey_picture()
    matrix, layout = choose_matrix(None, H), layout_444(8, True)

    # planes: the file pipeline (grey FFV1 in, yuv444p out), the raw pipe, VapourSynth's frame sequencer
    src = write_grey_clip(tmp_path / "grey.mkv", y)
    colorize_video(src, tmp_path / "out.mkv", colorizer, encode=EncodeOptions(pix_fmt="yuv444p"))
    fy, fcb, fcr = planes_of_video(tmp_path / "out.mkv")
    assert np.array_equal(fy, y)
    raw = io.BytesIO()
    run_pipe(io.BytesIO(y.tobytes()), raw, PipeSpec.make(W, H, "gray", "yuv444p"), colorizer)
    py, pcb, pcr = np.frombuffer(raw.getvalue(), np.uint8).reshape(3, H, W)
    seq = FrameSequencer(lambda: colorizer.stream(W, H, planar_layout(8, 0, 0, True), matrix, causal=True))
    vcb, vcr = seq.process(0, y)
    for cb, cr in ((pcb, pcr), (vcb, vcr)):
        assert np.abs(cb.astype(int) - fcb).max() <= 1 and np.abs(cr.astype(int) - fcr).max() <= 1
    assert np.abs(fcb.astype(int) - 128).max() > 3  # real colour

    # pictures: the same planes as R'G'B', and what the RGB entry points give
    want = ycbcr_planes_to_rgb(fy, fcb, fcr, layout, matrix).astype(int)
    cv2.imwrite(str(tmp_path / "grey.png"), y)
    colorize_image_file(colorizer, tmp_path / "grey.png", tmp_path / "still.png")
    with ColorizeFilter(colorizer=colorizer) as filt:
        bgr = filt(y)
    subprocess.run([sys.executable, "-m", "filmcolor.cli", "preview", str(tmp_path / "grey.png"),
                    str(tmp_path / "preview.png"), "-m", str(tiny_model_path), "-e", "torch"], check=True,
                   capture_output=True)
    pictures = {
        "colorize_image": filmcolor.colorize_image(y, colorizer=colorizer),
        "colorize_frames": next(filmcolor.colorize_frames([y], colorizer=colorizer)),
        "still file": cv2.cvtColor(cv2.imread(str(tmp_path / "still.png")), cv2.COLOR_BGR2RGB),
        "opencv": bgr[..., ::-1],
        "preview": cv2.cvtColor(cv2.imread(str(tmp_path / "preview.png")), cv2.COLOR_BGR2RGB)[:, W:],
    }
    # a chroma code apart moves R'G'B' by at most 2 * (1 - k) codes of the matrix: under 2
    for name, rgb in pictures.items():
        assert rgb.shape == (H, W, 3), name
        assert np.abs(rgb.astype(int) - want).max() <= 2, name


def test_evaluate_reports_what_colorize_writes(colorizer, tmp_path):
    """The model's scores in evaluate are the scores of the files colorize writes (PNG and JPEG)."""
    from filmcolor.evaluate import evaluate_images, grey_input, scores, to_uint8
    from filmcolor.images import colorize_image_file

    folder = tmp_path / "truth"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i, suffix in enumerate((".png", ".jpg")):
        img = cv2.GaussianBlur(rng.integers(0, 256, (H, W, 3), dtype=np.uint8), (7, 7), 0)
        cv2.imwrite(str(folder / f"im{i}{suffix}"), img)
    report = evaluate_images(colorizer.predictor, folder)
    bare = evaluate_images(colorizer.predictor.infer, folder, render_size=colorizer.render_size,
                           chroma_gain=colorizer.gain)  # the way training validation calls it
    assert bare.model == report.model and bare.grey_input == report.grey_input
    for row in report.per_image:
        src = folder / row["image"]
        dst = tmp_path / f"out-{src.name}"
        colorize_image_file(colorizer, src, dst)
        truth = cv2.cvtColor(cv2.imread(str(src)), cv2.COLOR_BGR2RGB)
        written = cv2.cvtColor(cv2.imread(str(dst)), cv2.COLOR_BGR2RGB)
        assert row["model"] == scores(written, truth)
        assert row["grey_input"] == scores(grey_input(to_uint8(truth)), truth)
    s = report.summary()
    assert s["ciede2000_ratio_to_grey_input"] == pytest.approx(report.model["ciede2000"] / report.grey_input["ciede2000"])
    assert s["ciede2000_ratio_to_baseline"] == pytest.approx(report.model["ciede2000"] / report.baseline["ciede2000"])
    assert report.grey_input["colourfulness"] == pytest.approx(0.0, abs=1e-9)
    assert "grey input" in report.markdown()
