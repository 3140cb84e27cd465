"""The Python API in the few lines the README promises."""

import numpy as np

import filmcolor
from filmcolor.colorizer import Colorizer


def test_colorize_image_keeps_size_dtype_and_luminance(tiny_model_path):
    grey = np.tile(np.linspace(0, 255, 64, dtype=np.uint8)[None], (48, 1))
    rgb = filmcolor.colorize_image(grey, model=str(tiny_model_path), engine="torch")
    assert rgb.shape == (48, 64, 3) and rgb.dtype == np.uint8
    assert np.abs(rgb.astype(int) - rgb[..., :1]).max() > 0  # not grey any more
    from skimage.color import rgb2lab

    L_out = rgb2lab(rgb)[..., 0]
    L_in = rgb2lab(np.repeat(grey[..., None], 3, axis=2))[..., 0]
    assert np.median(np.abs(L_out - L_in)) < 1.0  # L kept, up to 8-bit rounding (gamut clipping at the extremes)


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
