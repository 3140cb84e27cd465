"""Shared fixtures: device/dtype chosen by pytest options, tiny models, tiny synthetic clips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--device", default="cpu", help="device for tensor tests: cpu or cuda (GPU tests run only with cuda)")
    parser.addoption("--dtype", default="float32", help="float dtype for colour-math tests")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--device").startswith("cuda"):
        return
    skip = pytest.mark.skip(reason="needs an NVIDIA GPU: run with --device cuda where one exists")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def device(request: pytest.FixtureRequest) -> torch.device:
    dev = torch.device(request.config.getoption("--device"))
    if dev.type == "cuda" and not torch.cuda.is_available():
        pytest.skip("--device cuda given but torch sees no CUDA device")
    return dev


@pytest.fixture
def dtype(request: pytest.FixtureRequest) -> torch.dtype:
    return getattr(torch, request.config.getoption("--dtype"))


@pytest.fixture(autouse=True)
def _few_threads() -> None:
    torch.set_num_threads(2)
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random SAGAN U-Net saved as safetensors + JSON (render size 64): the test model."""
    from filmcolor.models import ModelConfig, create_model, save_model

    torch.manual_seed(0)
    model = create_model("sagan-unet-tiny")
    with torch.no_grad():  # give it some colour so outputs are visibly non-grey
        model.head[-1].bias.copy_(torch.tensor([0.3, 0.5]))
    config = ModelConfig(architecture="sagan-unet-tiny", kwargs={"sn": True}, render_size=64, name="tiny-test")
    return save_model(model, config, tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


def write_frames(path: Path, frames, *, rate: int = 12, codec: str = "libx264", pix_fmt: str = "yuv420p",
                 options: dict | None = None, rotation: int | None = None) -> Path:
    """Write ``frames`` (uint8 grey ``[H,W]`` or RGB ``[H,W,3]`` arrays) as a clip with PyAV, pts 0, 1, 2, ..."""
    import av

    frames = list(frames)
    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as out:
        vs = out.add_stream(codec, rate=rate)
        vs.width, vs.height, vs.pix_fmt = w, h, pix_fmt
        if options:
            vs.options = options
        if rotation is not None:
            vs.set_display_rotation(rotation)
        for i, img in enumerate(frames):
            rgb = np.repeat(img[..., None], 3, 2) if img.ndim == 2 else img
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24").reformat(format=pix_fmt)
            frame.pts = i
            out.mux(vs.encode(frame))
        out.mux(vs.encode())
    return path


def make_clip(path: Path, *, frames: int = 12, size: tuple[int, int] = (64, 48), rate: int = 12, codec: str = "libx264",
              pix_fmt: str = "yuv420p", grey: bool = True, audio: bool = False, options: dict | None = None,
              pts: list[int] | None = None, time_base: tuple[int, int] | None = None) -> Path:
    """Write a small synthetic clip with PyAV: a moving gradient and a square, optional sine audio."""
    import av

    w, h = size
    with av.open(str(path), "w") as out:
        vs = out.add_stream(codec, rate=rate)
        vs.width, vs.height, vs.pix_fmt = w, h, pix_fmt
        if time_base:
            from fractions import Fraction

            vs.time_base = vs.codec_context.time_base = Fraction(*time_base)
        if options:
            vs.options = options
        aus = out.add_stream("aac", rate=48000) if audio else None
        yy, xx = np.mgrid[0:h, 0:w]
        for i in range(frames):
            img = np.zeros((h, w, 3), np.uint8)
            img[..., 0] = (xx * 255 // max(1, w - 1) + i * 7) % 256
            img[..., 1] = yy * 255 // max(1, h - 1)
            img[..., 2] = 128
            x0 = (i * 3) % max(1, w - 16)
            img[10:26, x0:x0 + 16] = (250, 40, 40)
            if grey:
                img[:] = img.mean(axis=2, keepdims=True).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format=pix_fmt)
            frame.pts = pts[i] if pts else i
            for pkt in vs.encode(frame):
                out.mux(pkt)
        for pkt in vs.encode():
            out.mux(pkt)
        if aus is not None:
            n = int(48000 * frames / rate)
            t = np.arange(n) / 48000
            samples = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
            for start in range(0, n, 1024):
                chunk = samples[start:start + 1024]
                af = av.AudioFrame.from_ndarray(chunk[None, :], format="fltp", layout="mono")
                af.sample_rate = 48000
                af.pts = start
                for pkt in aus.encode(af):
                    out.mux(pkt)
            for pkt in aus.encode():
                out.mux(pkt)
    return path


@pytest.fixture
def grey_clip(tmp_path: Path) -> Path:
    return make_clip(tmp_path / "grey.mp4")
