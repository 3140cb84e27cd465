"""Model selection on val, as users see it: candidates x chroma gains, per subset, clean and degraded inputs.

``python -m filmcolor.train.select VAL --candidate NAME_OR_PATH ... --gains 0.9,1.0,1.1 [--degraded]``
prints one row per (candidate, gain): CIEDE2000 and PSNR against the grey input as users see it (the
image's own Y' as grey) and against the zero-chroma baseline, colourfulness against the truth's, and
the worst subset's CIEDE2000 ratio (subsets by file-name prefix). ``--degraded`` scores the same
images with archival degradations (filmcolor.train.degrade, fixed seed) applied to their lightness.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
import torch

from ..evaluate import evaluate_images
from ..fs import find_images
from ..models import load_model
from .degrade import degrade


def degraded_copy(folder: str | Path, out: Path, seed: int = 0, p_each: float = 0.3) -> Path:
    """Write each image with its Lab L degraded (a,b kept) as PNG into ``out``: the truth of a damaged print."""
    out.mkdir(parents=True, exist_ok=True)
    for i, p in enumerate(find_images(folder)):
        lab = cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2LAB).astype(np.float32)
        L = degrade(lab[..., 0] * (100 / 255), np.random.default_rng([seed, i]), p_each=p_each)
        lab[..., 0] = L * (255 / 100)
        cv2.imwrite(str(out / (p.stem + ".png")), cv2.cvtColor(np.clip(lab, 0, 255).astype(np.uint8), cv2.COLOR_LAB2BGR))
    return out


def subsets(per_image: list[dict]) -> dict[str, dict[str, float]]:
    """Mean CIEDE2000 of model and grey input per file-name prefix (``imagenet_00012.jpg`` -> ``imagenet``)."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in per_image:
        groups[r["image"].split("_")[0]].append(r)
    return {k: {"model": float(np.mean([r["model"]["ciede2000"] for r in rs])),
                "grey_input": float(np.mean([r["grey_input"]["ciede2000"] for r in rs])),
                "model_psnr": float(np.mean([r["model"]["psnr"] for r in rs])),
                "grey_psnr": float(np.mean([r["grey_input"]["psnr"] for r in rs])), "images": len(rs)}
            for k, rs in sorted(groups.items())}


def score(model_name: str, folder: str | Path, gain: float, limit: int | None) -> dict:
    model, cfg = load_model(model_name)
    model = model.to(memory_format=torch.channels_last)

    def infer(L: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return model(L.contiguous(memory_format=torch.channels_last)).float()

    rep = evaluate_images(infer, folder, render_size=cfg.render_size, chroma_gain=gain, limit=limit)
    sub = subsets(rep.per_image)
    return {"candidate": model_name, "gain": gain, "images": rep.images,
            "ciede2000": rep.model["ciede2000"], "psnr": rep.model["psnr"], "colourfulness": rep.model["colourfulness"],
            "grey_ciede2000": rep.grey_input["ciede2000"], "grey_psnr": rep.grey_input["psnr"],
            "baseline_ciede2000": rep.baseline["ciede2000"], "truth_colourfulness": rep.truth_colourfulness,
            "ciede_x_grey": rep.model["ciede2000"] / rep.grey_input["ciede2000"],
            "ciede_x_baseline": rep.model["ciede2000"] / rep.baseline["ciede2000"],
            "psnr_minus_grey": rep.model["psnr"] - rep.grey_input["psnr"],
            "colourfulness_x_truth": rep.model["colourfulness"] / rep.truth_colourfulness,
            "worst_subset_x_grey": max(s["model"] / s["grey_input"] for s in sub.values()), "subsets": sub}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("val")
    ap.add_argument("--candidate", action="append", required=True)
    ap.add_argument("--gains", default="1.0")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--degraded", action="store_true")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(2)
    folder = args.val
    tmp = tempfile.TemporaryDirectory()
    if args.degraded:
        folder = str(degraded_copy(args.val, Path(tmp.name)))
    rows = [score(c, folder, float(g), args.limit) for c in args.candidate for g in args.gains.split(",")]
    print(f"{'candidate':40s} gain  CIEDE x grey  x zero-chroma  PSNR-grey dB  colour x truth  worst subset x grey")
    for r in rows:
        print(f"{Path(r['candidate']).name[:40]:40s} {r['gain']:.2f}  {r['ciede_x_grey']:.3f}         {r['ciede_x_baseline']:.3f}"
              f"          {r['psnr_minus_grey']:+.2f}         {r['colourfulness_x_truth']:.3f}           {r['worst_subset_x_grey']:.3f}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    tmp.cleanup()


if __name__ == "__main__":
    main()
