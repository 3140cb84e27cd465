"""The NoGAN-style training schedule for a conditional colorization GAN (pix2pix + SAGAN tricks).

Phases, counted in steps so that a resumed run repeats an uninterrupted one exactly:
1. generator pre-training on lambda * L1 + feature loss;
2. critic pre-training on real (L, ab) against the frozen generator's output;
3. a short GAN phase: generator adds the adversarial term; two-time-scale learning rates (TTUR).
Adam with beta1 = 0.5 throughout. ``minutes`` caps wall time: the run checkpoints and stops, and the
same command resumes it. With ``ema`` > 0 an exponential moving average of G's weights (Polyak averaging,
as in ProGAN/StyleGAN and most diffusion training) is kept beside G; validation and exports use it.
"""

from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..models import ModelConfig, create_model, save_model
from .checkpoint import has_module, load_checkpoint, save_checkpoint
from .choices import AB_LOSSES, REBALANCED_AB_LOSSES
from .critic import PatchGAN
from .data import BatchStream, LabImages
from .hints import guidance_modes
from .losses import (AdversarialLoss, FeatureLoss, ab_prior, colour_balance, delta_e94_ab, l1_ab, l1_ab_weighted,
                     rebalance_table)


@dataclass
class TrainConfig:
    data: str
    out: str
    val: str | None = None
    architecture: str = "sagan-unet"
    model_kwargs: dict = field(default_factory=lambda: {"pretrained": True})
    size: int = 160
    batch_size: int = 16
    seed: int = 0
    pretrain_steps: int = 4000
    critic_steps: int = 300
    gan_steps: int = 1500
    lr_g: float = 5e-4          # generator pre-training
    lr_g_gan: float = 5e-5      # TTUR: generator slower ...
    lr_d: float = 2e-4          # ... than the critic (4x)
    betas: tuple[float, float] = (0.5, 0.999)
    lambda_l1: float = 100.0
    feature_weight: float = 10.0
    adv_weight: float = 1.0
    adv_loss: str = "bce"
    real_label: float = 0.9
    critic_sn: bool = True
    channels_last: bool = True
    bf16: bool | None = None    # CPU autocast to bfloat16; None: where the CPU has bf16 instructions (fast_cpu_bf16)
    device: str = "cpu"         # CUDA always autocasts to bfloat16 (no loss scaling needed, unlike fp16)
    workers: int = 0            # batch-making processes (0: one thread, enough for 2 cores; a GPU needs many)
    minutes: float | None = None
    checkpoint_minutes: float = 5.0
    sample_every: int = 500
    val_every: int = 1000
    val_limit: int = 60
    render_size: int = 256
    log_every: int = 25
    init_from: str | None = None   # training checkpoint whose generator (and critic) start this run
    init_weights: str | None = None  # inference weights (a packaged name or .safetensors) that start G
    resume_from: str | None = None   # a compact committed checkpoint: weights, step and clock continue
    degrade: float = 0.5           # share of samples whose input L gets archival degradations
    rebalance: float = 0.0         # 0 = plain L1; 1 = L1 fully rebalanced toward rare (saturated) colours
    balance_weight: float = 0.0    # weight of the per-picture mean a,b term (against colour casts)
    warmup: int = 100              # steps of linear LR warm-up at the start of every run (a resumed one too)
    ema: float = 0.0               # decay of the moving average of G's weights that validates and exports (0 = off)
    hint_points: float = 0.35      # share of samples with simulated point hints (guided runs; dense stays 0.2)
    freeze_bn: bool = False        # batch norms use and keep their running statistics (fine-tuning)
    ab_loss: str = "l1"            # the pixel loss weighted by lambda_l1: "l1" on a,b, or "de94" (CIE94 colour difference)


    @property
    def total_steps(self) -> int:
        return self.pretrain_steps + self.critic_steps + self.gan_steps

    def phase(self, step: int) -> str:
        if step < self.pretrain_steps:
            return "pretrain"
        if step < self.pretrain_steps + self.critic_steps:
            return "critic"
        return "gan"


def fast_cpu_bf16() -> bool:
    """True when this CPU computes bfloat16 natively (AVX-512 BF16 or AMX), where autocast pays.

    Measured with ``python -m filmcolor.train.bench_train`` (size 160, batch 16): 1.65x fp32 channels-last
    on a CPU with AVX-512 BF16; on an AVX2-only AMD EPYC 0.12x (0.61 against 6.0 images/s, emulated)."""
    cpu = getattr(torch, "cpu", None)
    return any(bool(getattr(cpu, f, lambda: False)()) for f in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))


def _cosine(step: int, total: int, base: float, warmup: int = 100, since: int = 0) -> float:
    """Cosine decay to 10% over ``total`` steps, ramped up linearly over the ``warmup`` steps after ``since``.

    ``since`` is the step this run started from: a resumed run has a fresh Adam (the compact checkpoint
    keeps no optimizer state), and full-rate steps with fresh moments first pull a trained model to the mean.
    """
    cos = base * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, step / max(1, total)))))
    ramp = (step - since + 1) / warmup if warmup > 0 else 1.0
    return cos * min(1.0, ramp)


class Trainer:
    """Owns the models, optimizers, data stream and run folder of one training run."""

    def __init__(self, cfg: TrainConfig, progress: Callable[[dict], None] | None = None) -> None:
        self.cfg, self.progress = cfg, progress
        self.out = Path(cfg.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.device = torch.device(cfg.device)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed crop size: let cuDNN pick its fastest kernels once
        self.bf16 = fast_cpu_bf16() if cfg.bf16 is None else bool(cfg.bf16)
        torch.manual_seed(cfg.seed)
        self.G = create_model(cfg.architecture, **cfg.model_kwargs).to(self.device)
        self.D = PatchGAN(sn=cfg.critic_sn).to(self.device)
        if cfg.channels_last:
            self.G = self.G.to(memory_format=torch.channels_last)
            self.D = self.D.to(memory_format=torch.channels_last)
        self.feature = FeatureLoss().to(self.device) if cfg.feature_weight > 0 else None
        self.adv = AdversarialLoss(cfg.adv_loss, cfg.real_label)
        if cfg.ab_loss not in AB_LOSSES:
            raise ValueError(f"unknown pixel loss {cfg.ab_loss!r}; choose from {AB_LOSSES}")
        if cfg.rebalance > 0 and cfg.ab_loss not in REBALANCED_AB_LOSSES:
            raise ValueError(f"rebalance weights the l1 pixel loss only, not {cfg.ab_loss!r}")
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=cfg.lr_g, betas=cfg.betas)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=cfg.lr_d, betas=cfg.betas)
        self.step = 0
        self.elapsed = 0.0
        self.run_start = 0
        self.ab_table: torch.Tensor | None = None  # rebalancing weights per a,b bin (cfg.rebalance > 0)
        self.ckpt = self.out / "checkpoint"
        if self.ckpt.with_suffix(".json").exists():
            meta = load_checkpoint(self.ckpt, {"G": self.G, "D": self.D}, {"G": self.opt_g, "D": self.opt_d})
            self.step, self.elapsed = meta["step"], meta["elapsed"]
        elif cfg.resume_from:
            meta = load_checkpoint(Path(cfg.resume_from), {"G": self.G, "D": self.D}, {})
            self.step, self.elapsed = meta["step"], meta["elapsed"]
        elif cfg.init_from:
            self._init_from(Path(cfg.init_from))
        elif cfg.init_weights:
            self._init_weights(cfg.init_weights)
        self.G_ema = self._start_ema() if cfg.ema > 0 else None
        self.multiple = getattr(self.G, "size_multiple", 32)
        self.guided = getattr(self.G, "guide", None) is not None

    def _start_ema(self) -> torch.nn.Module:
        """A frozen copy of G; a checkpoint's own average continues, otherwise it starts at G's weights."""
        ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        own = self.ckpt.with_suffix(".json").exists()
        stem = self.ckpt if own else Path(self.cfg.resume_from) if self.cfg.resume_from else None
        if stem is not None and has_module(stem, "G_ema"):
            load_checkpoint(stem, {"G_ema": ema}, {})
        return ema

    @torch.no_grad()
    def _update_ema(self) -> None:
        """ema <- ema + (1 - decay) (G - ema); the decay ramps up over a run's first steps (n+1)/(n+10)."""
        n = self.step - self.run_start
        decay = min(self.cfg.ema, (n + 1) / (n + 10))
        torch._foreach_lerp_(list(self.G_ema.parameters()), list(self.G.parameters()), 1.0 - decay)
        for e, b in zip(self.G_ema.buffers(), self.G.buffers()):
            e.copy_(b)  # spectral norm's power-iteration vectors, batch-norm statistics: G's own

    @property
    def modules(self) -> dict[str, torch.nn.Module]:
        """What a checkpoint holds: G, the critic and, when kept, G's moving average."""
        return {"G": self.G, "D": self.D} | ({"G_ema": self.G_ema} if self.G_ema is not None else {})

    @property
    def G_out(self) -> torch.nn.Module:
        """The generator that validates and exports: the moving average when kept, else G."""
        return self.G_ema if self.G_ema is not None else self.G

    def _init_from(self, path: Path) -> None:
        """Start from another run's weights (fine-tuning); optimizers, step and clock start fresh."""
        src = path / "checkpoint" if path.is_dir() else path.with_suffix("")
        if not src.with_suffix(".json").exists():
            raise FileNotFoundError(f"no training checkpoint at {src}.json")
        load_checkpoint(src, {"G": self.G, "D": self.D}, {})

    def _init_weights(self, name_or_path: str) -> None:
        """Start G from inference weights; layers they lack (a new guidance branch) keep their zero init."""
        from safetensors.torch import load_file

        from ..models.weights import resolve_weights

        state = load_file(str(resolve_weights(name_or_path)[1]))
        own = self.G.state_dict()
        unknown = [k for k in state if k not in own]
        if unknown:
            raise ValueError(f"weights {name_or_path!r} do not fit {self.cfg.architecture} {self.cfg.model_kwargs}: "
                             f"{unknown[:3]} (inference weights have spectral norm baked in: build with sn=False)")
        self.G.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()}, strict=False)

    def save_compact(self, path: str | Path) -> Path:
        """A small resumable checkpoint to commit (bf16 weights of G and D, step and clock; no optimizer state)."""
        save_checkpoint(path, self.modules, {},
                        {"step": self.step, "elapsed": self.elapsed, "config": asdict(self.cfg)}, half=True)
        return Path(path).with_suffix(".safetensors")

    # -- one step of each phase ------------------------------------------------------------------
    def _train_g(self) -> None:
        """G in training mode; with ``freeze_bn`` its batch norms keep normalising with (and keeping) their
        running statistics, so the function trained is the one validated and shipped."""
        self.G.train()
        if self.cfg.freeze_bn:
            for m in self.G.modules():
                if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                    m.eval()

    def _autocast(self):
        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16)

    def _generate(self, L, hint, mask):
        return self.G(L, hint, mask) if self.guided and mask is not None else self.G(L)

    def _g_loss(self, L, ab, hint, mask, with_adv: bool) -> tuple[torch.Tensor, dict]:
        with self._autocast():
            pred = self._generate(L, hint, mask)
        pred = pred.float()
        l1 = l1_ab(pred, ab)
        if self.cfg.ab_loss == "de94":
            loss = self.cfg.lambda_l1 * delta_e94_ab(pred, ab)
        elif self.ab_table is not None:
            loss = self.cfg.lambda_l1 * l1_ab_weighted(pred, ab, self.ab_table, self.cfg.rebalance)
        else:
            loss = self.cfg.lambda_l1 * l1
        logs = {"l1": float(l1.detach())}
        if self.cfg.balance_weight > 0:
            bal = colour_balance(pred, ab)
            loss = loss + self.cfg.balance_weight * bal
            logs["balance"] = float(bal.detach())
        if self.feature is not None:
            with self._autocast():
                feat = self.feature(L, pred, ab).float()
            loss = loss + self.cfg.feature_weight * feat
            logs["feat"] = float(feat.detach())
        if with_adv:
            with self._autocast():
                g_adv = self.adv.generator(self.D(L, pred).float())
            loss = loss + self.cfg.adv_weight * g_adv
            logs["g_adv"] = float(g_adv.detach())
        return loss, logs

    def _d_step(self, L, ab, hint, mask) -> dict:
        with torch.no_grad(), self._autocast():
            fake = self._generate(L, hint, mask).float()
        with self._autocast():
            loss = self.adv.critic(self.D(L, ab).float(), self.D(L, fake).float())
        self.opt_d.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_d.step()
        return {"d": float(loss.detach())}

    def _step_g(self, loss: torch.Tensor) -> None:
        """One optimizer step of G on ``loss`` (pre-training and GAN phase alike), then its moving average."""
        self.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_g.step()
        if self.G_ema is not None:
            self._update_ema()

    def train_step(self, L: torch.Tensor, ab: torch.Tensor, hint: torch.Tensor | None = None,
                   mask: torch.Tensor | None = None) -> dict:
        cfg, phase = self.cfg, self.cfg.phase(self.step)
        torch.manual_seed(cfg.seed * 1_000_003 + self.step)  # dropout etc.: same on resume
        fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
        move = dict(memory_format=fmt, non_blocking=True)
        L, ab = L.to(self.device, **move), ab.to(self.device, **move)
        if mask is not None:
            hint, mask = hint.to(self.device, **move), mask.to(self.device, **move)
        logs: dict = {"phase": phase}
        if phase == "pretrain":
            self._train_g()
            for g in self.opt_g.param_groups:
                g["lr"] = _cosine(self.step, cfg.pretrain_steps, cfg.lr_g, cfg.warmup, self.run_start)
            loss, parts = self._g_loss(L, ab, hint, mask, with_adv=False)
            self._step_g(loss)
            logs.update(parts, g=float(loss.detach()))
        elif phase == "critic":
            self.G.eval()
            self.D.train()
            logs.update(self._d_step(L, ab, hint, mask))
        else:
            self._train_g()
            self.D.train()
            for g in self.opt_g.param_groups:
                g["lr"] = cfg.lr_g_gan
            logs.update(self._d_step(L, ab, hint, mask))
            loss, parts = self._g_loss(L, ab, hint, mask, with_adv=True)
            self._step_g(loss)
            logs.update(parts, g=float(loss.detach()))
        self.step += 1
        return logs

    # -- artefacts -------------------------------------------------------------------------------
    def model_config(self) -> ModelConfig:
        return ModelConfig(architecture=self.cfg.architecture, kwargs=dict(self.cfg.model_kwargs),
                           render_size=self.cfg.render_size, name=self.out.name, version=f"step{self.step}",
                           description=f"trained by filmcolor train, {self.step} steps")

    def save(self) -> None:
        save_checkpoint(self.ckpt, self.modules, {"G": self.opt_g, "D": self.opt_d},
                        {"step": self.step, "elapsed": self.elapsed, "config": asdict(self.cfg)})

    def export(self, name: str = "model") -> Path:
        """Inference weights (fp16 safetensors + JSON config) under ``out/export``."""
        return save_model(self.G_out, self.model_config(), self.out / "export" / name)

    def infer(self, L: torch.Tensor) -> torch.Tensor:
        G = self.G_out.eval()
        with torch.inference_mode():
            return G(L.to(self.device)).float().cpu()

    def validate(self, grid: Path | None = None) -> dict:
        from ..evaluate import evaluate_images

        benchmark = torch.backends.cudnn.benchmark
        torch.backends.cudnn.benchmark = False  # val images come in many shapes: tuning each would cost more
        try:
            rep = evaluate_images(self.infer, self.cfg.val, render_size=self.cfg.render_size,
                                  limit=self.cfg.val_limit, grid=grid, multiple=self.multiple)
        finally:
            torch.backends.cudnn.benchmark = benchmark
        return {"val_" + k: v for k, v in rep.summary().items() if not isinstance(v, dict)} | {
            "val_ciede2000": rep.model["ciede2000"], "val_psnr": rep.model["psnr"],
            "val_colourfulness": rep.model["colourfulness"]}

    # -- the loop --------------------------------------------------------------------------------
    def run(self, data: LabImages | None = None) -> dict:
        cfg = self.cfg
        data = data or LabImages(cfg.data)
        self.run_start = self.step
        if cfg.rebalance > 0:
            self.ab_table = torch.from_numpy(rebalance_table(ab_prior(
                im[..., 1:].astype(np.float32) - 128.0 for im in data.images[::4])))
        stream = BatchStream(data, cfg.batch_size, cfg.size, cfg.seed, start=self.step, degrade=cfg.degrade,
                             guidance=self.guided, modes=guidance_modes(points=cfg.hint_points),
                             workers=cfg.workers, pin_memory=self.device.type == "cuda")
        log = (self.out / "log.jsonl").open("a")
        start, last_ckpt = time.monotonic(), time.monotonic()
        base_elapsed, images, t_window = self.elapsed, 0, time.monotonic()
        stopped = "done"
        try:
            while self.step < cfg.total_steps:
                L, ab, hint, mask = next(stream)
                logs = self.train_step(L, ab, hint, mask)
                images += L.shape[0]
                now = time.monotonic()
                self.elapsed = base_elapsed + (now - start)
                if self.step % cfg.log_every == 0:
                    rate = images / max(1e-6, now - t_window)
                    images, t_window = 0, now
                    rec = {"step": self.step, "elapsed_s": round(self.elapsed, 1), "images_per_s": round(rate, 2), **logs}
                    log.write(json.dumps(rec) + "\n")
                    log.flush()
                    if self.progress:
                        self.progress(rec)
                if self.step % cfg.val_every == 0:
                    if cfg.val:
                        rec = {"step": self.step, **self.validate(self.out / "samples" / f"val_{self.step:06d}.png")}
                        log.write(json.dumps(rec) + "\n")
                        log.flush()
                        if self.progress:
                            self.progress(rec)
                    self.export(f"step_{self.step:06d}")
                if now - last_ckpt > cfg.checkpoint_minutes * 60:
                    self.save()
                    last_ckpt = now
                if cfg.minutes is not None and now - start > cfg.minutes * 60:
                    stopped = "time budget reached"
                    break
        except KeyboardInterrupt:
            stopped = "interrupted"
        finally:
            stream.close()
            self.save()
            log.close()
        self.export("model")
        return {"step": self.step, "total_steps": cfg.total_steps, "elapsed_s": self.elapsed, "stopped": stopped}


def train(cfg: TrainConfig, progress: Callable[[dict], None] | None = None) -> dict:
    """Run (or resume) the training described by ``cfg``; returns a summary."""
    return Trainer(cfg, progress).run()
