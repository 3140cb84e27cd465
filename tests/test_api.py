"""The Python API in the few lines the README promises."""

import numpy as np

import filmcolor
from filmcolor.colorizer import Colorizer


def test_colorize_image_keeps_size_dtype_and_luma(tiny_model_path):
    from filmcolor.color import BT601
    from filmcolor.video.rgb import rgb_to_luma

    grey = np.tile(np.linspace(0, 255, 64, dtype=np.uint8)[None], (48, 1))
    rgb = filmcolor.colorize_image(grey, model=str(tiny_model_path), engine="torch")
    assert rgb.shape == (48, 64, 3) and rgb.dtype == np.uint8
    assert np.abs(rgb.astype(int) - rgb[..., :1]).max() > 0  # not grey any more
    # the picture's own Y' is kept (BT.601 below 720 lines, as for video), up to 8-bit rounding of R'G'B';
    # wherever no channel was clipped to the RGB gamut (the tiny test model's colour is strong)
    dy = np.abs(rgb_to_luma(rgb, BT601).astype(int) - grey)
    inside = ((rgb > 0) & (rgb < 255)).all(axis=2)
    assert inside.mean() > 0.3 and dy[inside].max() <= 1


def test_colorize_image_16_bit(tiny_model_path):
    grey = (np.arange(64 * 48).reshape(48, 64) * 20).astype(np.uint16)
    rgb = filmcolor.colorize_image(grey, model=str(tiny_model_path), engine="torch")
    assert rgb.dtype == np.uint16 and rgb.shape == (48, 64, 3)


def test_colorize_frames_streams_in_order(tiny_model_path):
    c = Colorizer(model=str(tiny_model_path), engine="torch", smoothing="off")
    frames = [np.full((48, 64), 20 * i, np.uint8) for i in range(6)]
    out = list(filmcolor.colorize_frames(frames, colorizer=c))
    assert len(out) == 6 and all(o.shape == (48, 64, 3) for o in out)
    means = [o.mean() for o in out]
    assert means == sorted(means)  # brightness order kept: frames came back in order
