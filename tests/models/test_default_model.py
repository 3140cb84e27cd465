"""The model shipped inside the package loads offline and colours the sample."""

from pathlib import Path

import cv2
import numpy as np
import torch

from filmcolor.models import list_weights, load_model

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "bbb_grey.png"


def test_default_model_is_packaged_and_loads():
    assert "default" in list_weights()
    model, config = load_model("default")
    assert config.architecture == "sagan-unet" and config.render_size % 32 == 0
    from safetensors.torch import load_file

    stored = load_file(str(list_weights()["default"].with_suffix(".safetensors")))
    params = dict(model.state_dict())
    shared = [k for k in stored if k in params]
    assert len(shared) > 10  # the packaged weights are what was loaded, not a random initialisation
    assert all(torch.equal(params[k].float(), stored[k].float()) for k in shared[:20])


def test_default_model_colours_the_sample_still():
    import filmcolor

    grey = cv2.imread(str(SAMPLE), cv2.IMREAD_GRAYSCALE)
    rgb = filmcolor.colorize_image(grey, engine="torch")
    assert rgb.shape == (*grey.shape, 3)
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB).astype(int)
    chroma = np.hypot(lab[..., 1] - 128, lab[..., 2] - 128)
    assert chroma.mean() > 2.0  # visibly coloured, not grey
