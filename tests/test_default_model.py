"""The model shipped inside the package loads offline and colours the sample."""

from pathlib import Path

import cv2
import numpy as np

from filmcolor.models import list_weights, load_model

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "bbb_grey.png"


def test_default_model_is_packaged_and_loads():
    assert "default" in list_weights()
    model, config = load_model("default")
    assert config.architecture == "sagan-unet" and config.render_size % 32 == 0
    assert not any(p.requires_grad and p.is_meta for p in model.parameters())


def test_default_model_colours_the_sample_still():
    import filmcolor

    grey = cv2.imread(str(SAMPLE), cv2.IMREAD_GRAYSCALE)
    rgb = filmcolor.colorize_image(grey, engine="torch")
    assert rgb.shape == (*grey.shape, 3)
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB).astype(int)
    chroma = np.hypot(lab[..., 1] - 128, lab[..., 2] - 128)
    assert chroma.mean() > 2.0  # visibly coloured, not grey
