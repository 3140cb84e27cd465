"""Training checkpoints in safetensors (tensors) + JSON (everything else); never pickle.

Optimizer state is flattened to ``opt.<name>.<param index>.<key>`` tensors; its scalar state and
param groups go to the JSON side. Writes are atomic (temporary file, then rename).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..fs import atomic_write


def _atomic_write(path: Path, write) -> None:
    atomic_write(path, write)  # fsynced before the rename: a power cut leaves the old checkpoint or the new


def save_checkpoint(path: str | Path, modules: dict[str, torch.nn.Module], optimizers: dict[str, torch.optim.Optimizer],
                    meta: dict, *, half: bool = False) -> None:
    """Save module and optimizer states to ``path``.safetensors and ``meta`` (+ optimizer scalars) to .json."""
    stem = Path(path)
    stem.parent.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    for name, module in modules.items():
        for k, v in module.state_dict().items():
            v = v.detach().cpu()
            tensors[f"model.{name}.{k}"] = (v.bfloat16() if half and v.is_floating_point() else v).contiguous()
    opt_meta = {}
    for name, opt in optimizers.items():
        sd = opt.state_dict()
        scalars = {}
        for idx, state in sd["state"].items():
            for k, v in state.items():
                if torch.is_tensor(v) and v.dim() > 0:
                    tensors[f"opt.{name}.{idx}.{k}"] = v.detach().cpu().contiguous()
                else:
                    scalars.setdefault(str(idx), {})[k] = float(v)
        opt_meta[name] = {"param_groups": sd["param_groups"], "scalars": scalars}
    _atomic_write(stem.with_suffix(".safetensors"), lambda p: save_file(tensors, str(p)))
    payload = {"meta": meta, "optimizers": opt_meta, "half": half}
    _atomic_write(stem.with_suffix(".json"), lambda p: p.write_text(json.dumps(payload, indent=1)))


def has_module(path: str | Path, name: str) -> bool:
    """True when the checkpoint at ``path`` holds tensors of module ``name`` (read from the file's header)."""
    from safetensors import safe_open

    with safe_open(str(Path(path).with_suffix(".safetensors")), framework="pt") as f:
        return any(k.startswith(f"model.{name}.") for k in f.keys())


def load_checkpoint(path: str | Path, modules: dict[str, torch.nn.Module],
                    optimizers: dict[str, torch.optim.Optimizer]) -> dict:
    """Restore states saved by :func:`save_checkpoint`; returns the ``meta`` dict."""
    stem = Path(path)
    tensors = load_file(str(stem.with_suffix(".safetensors")))
    payload = json.loads(stem.with_suffix(".json").read_text())
    for name, module in modules.items():
        prefix = f"model.{name}."
        own = module.state_dict()
        module.load_state_dict({k[len(prefix):]: v.to(own[k[len(prefix):]].dtype)
                                for k, v in tensors.items() if k.startswith(prefix)})
    for name, opt in optimizers.items():
        info = payload["optimizers"].get(name)
        if info is None:
            continue
        state: dict[int, dict] = {}
        prefix = f"opt.{name}."
        for k, v in tensors.items():
            if k.startswith(prefix):
                idx, key = k[len(prefix):].split(".", 1)
                state.setdefault(int(idx), {})[key] = v
        for idx, scalars in info["scalars"].items():
            for key, val in scalars.items():
                state.setdefault(int(idx), {})[key] = torch.tensor(val)
        opt.load_state_dict({"state": state, "param_groups": info["param_groups"]})
    return payload["meta"]
