"""Training of the image GAN: data, critic, losses, schedule, checkpoints.

The names below load :mod:`.loop` (and torch) on first use, so torch-free parts such as
:mod:`.choices` (what the CLI checks its options against) import without it."""

from typing import Any

__all__ = ["TrainConfig", "Trainer", "train"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import loop

        return getattr(loop, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
