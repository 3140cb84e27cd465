"""Training throughput (images/s) of configurations timed side by side, step by step (interleaved).

``python -m filmcolor.train.bench_train IMAGES --size 160 --steps 6`` prints one row per configuration:
on a noisy 2-core machine only ratios measured in the same run hold. On an AVX2-only AMD EPYC (2 cores):
fp32 1.00, fp32 channels-last 1.14, bf16 channels-last 0.12, bf16 0.13 (bf16 is emulated there; the
trainer's default, ``bf16=None``, turns it on only where the CPU has bf16 instructions).
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from .data import BatchStream, LabImages
from .loop import Trainer, TrainConfig

CONFIGS = {
    "fp32": {"channels_last": False, "bf16": False},
    "fp32 channels-last": {"channels_last": True, "bf16": False},
    "bf16 channels-last": {"channels_last": True, "bf16": True},
    "bf16": {"channels_last": False, "bf16": True},
}


def bench(images: str, size: int, batch: int, steps: int, guidance: bool, feature_weight: float) -> dict[str, float]:
    data = LabImages(images)
    stream = BatchStream(data, batch, size, seed=0, degrade=0.5, guidance=guidance)
    batches = [next(stream) for _ in range(steps + 1)]
    stream.close()
    with tempfile.TemporaryDirectory() as tmp:
        trainers = {name: Trainer(TrainConfig(data=images, out=f"{tmp}/{i}", size=size, batch_size=batch,
                                              feature_weight=feature_weight, model_kwargs={"pretrained": True, "guidance": guidance},
                                              **kw))
                    for i, (name, kw) in enumerate(CONFIGS.items())}
        times = {name: [] for name in trainers}
        for name, tr in trainers.items():
            tr.train_step(*batches[0])  # warm-up
        for b in batches[1:]:
            for name, tr in trainers.items():  # interleaved: each step of each config in turn
                t = time.perf_counter()
                tr.train_step(*b)
                times[name].append(time.perf_counter() - t)
    return {name: batch / sorted(ts)[len(ts) // 2] for name, ts in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("images")
    ap.add_argument("--size", type=int, default=160)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--feature-weight", type=float, default=10.0)
    ap.add_argument("--no-guidance", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rates = bench(args.images, args.size, args.batch, args.steps, not args.no_guidance, args.feature_weight)
    base = rates["fp32"]
    print(f"{'config':22s} images/s  x fp32   (size {args.size}, batch {args.batch}, median of {args.steps} steps)")
    for name, r in rates.items():
        print(f"{name:22s} {r:8.2f}  {r / base:6.2f}")


if __name__ == "__main__":
    main()
