"""filmcolor: colorize black-and-white film and video."""

__version__ = "0.1.0"
