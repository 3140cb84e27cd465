"""Training of the image GAN: data, critic, losses, schedule, checkpoints."""

from .loop import TrainConfig, Trainer, train

__all__ = ["TrainConfig", "Trainer", "train"]
