"""filmcolor: colorize black-and-white film and video.

    import filmcolor
    filmcolor.colorize("old.mp4", "new.mp4")               # a file
    rgb = filmcolor.colorize_image(grey_array)             # one image
    for rgb in filmcolor.colorize_frames(frames): ...      # a stream of frames
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["colorize", "colorize_image", "colorize_frames", "Colorizer", "ColorizerOptions", "EncodeOptions"]


def __getattr__(name: str):
    # Lazy: importing filmcolor stays cheap (no torch/av import until used).
    if name in ("colorize", "colorize_image", "colorize_frames"):
        from . import api

        return getattr(api, name)
    if name in ("Colorizer", "ColorizerOptions"):
        from . import colorizer

        return getattr(colorizer, name)
    if name == "EncodeOptions":
        from .video.sink import EncodeOptions

        return EncodeOptions
    raise AttributeError(name)
