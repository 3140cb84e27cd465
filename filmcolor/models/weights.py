"""Trained weights: safetensors + a small JSON config, packaged or on disk. Never pickle."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from .layers import baked_copy
from .registry import create_model

DEFAULT_MODEL = "default"


@dataclass
class ModelConfig:
    """Everything needed to rebuild a generator and use it: architecture, its arguments, render size."""

    architecture: str
    kwargs: dict = field(default_factory=dict)
    render_size: int = 256
    name: str = "custom"
    version: str = "0"
    chroma_gain: float = 1.0  # a,b multiplier chosen on validation data (1.0 = model as trained)
    description: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "ModelConfig":
        data = json.loads(text)
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


def _packaged_dir() -> Path:
    return Path(str(resources.files("filmcolor.weights")))


def list_weights() -> dict[str, Path]:
    """Packaged weights by name (the JSON config's stem); ``default`` points at the shipped model."""
    found = {p.stem: p for p in sorted(_packaged_dir().glob("*.json"))}
    default_file = _packaged_dir() / "DEFAULT"
    if default_file.exists():
        target = default_file.read_text().strip()
        if target in found:
            found[DEFAULT_MODEL] = found[target]
    return found


def resolve_weights(name_or_path: str | Path) -> tuple[Path, Path]:
    """Map a packaged name or a path (``.json``, ``.safetensors`` or their common stem) to both files."""
    packaged = list_weights()
    if isinstance(name_or_path, str) and name_or_path in packaged:
        cfg = packaged[name_or_path]
        return cfg, cfg.with_suffix(".safetensors")
    p = Path(name_or_path)
    stem = p.with_suffix("") if p.suffix in (".json", ".safetensors") else p
    cfg, weights = stem.with_suffix(".json"), stem.with_suffix(".safetensors")
    if not cfg.exists() or not weights.exists():
        names = ", ".join(sorted(packaged)) or "none"
        raise FileNotFoundError(f"no model {str(name_or_path)!r}: give a packaged name ({names}) "
                                f"or a path to a .safetensors file with its .json config beside it")
    return cfg, weights


def load_model(name_or_path: str | Path = DEFAULT_MODEL, *, device: str | torch.device = "cpu") -> tuple[nn.Module, ModelConfig]:
    """Build the generator named by ``name_or_path`` and load its weights (eval mode, float32)."""
    cfg_path, weights_path = resolve_weights(name_or_path)
    config = ModelConfig.from_json(cfg_path.read_text())
    model = create_model(config.architecture, **config.kwargs)
    state = {k: v.float() for k, v in load_file(str(weights_path)).items()}
    model.load_state_dict(state, assign=True)  # take the loaded tensors as they are: no second copy
    return model.to(device).eval(), config


def save_model(model: nn.Module, config: ModelConfig, path: str | Path, *, half: bool = True) -> Path:
    """Write ``path``.safetensors and ``path``.json for inference (spectral norm baked in, fp16 storage)."""
    stem = Path(path).with_suffix("") if Path(path).suffix in (".json", ".safetensors") else Path(path)
    stem.parent.mkdir(parents=True, exist_ok=True)
    baked = baked_copy(model).cpu()  # the caller's (possibly training) model is left untouched
    state = {k: (v.half() if half and v.is_floating_point() else v).contiguous() for k, v in baked.state_dict().items()}
    config = dataclasses.replace(config, kwargs=dict(config.kwargs))
    config.kwargs = {**config.kwargs, "sn": False} if "sn" in _arg_names(config.architecture) else config.kwargs
    config.kwargs.pop("pretrained", None)
    save_file(state, str(stem.with_suffix(".safetensors")), metadata={"architecture": config.architecture})
    stem.with_suffix(".json").write_text(config.to_json() + "\n")
    return stem.with_suffix(".safetensors")


def _arg_names(architecture: str) -> set[str]:
    import inspect

    from .registry import _BUILDERS, _load_builtins

    _load_builtins()
    return set(inspect.signature(_BUILDERS[architecture]).parameters)
