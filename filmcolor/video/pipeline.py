"""The video layer's names the file pipeline is built from, in one place for callers that import them.

The pipeline itself (:func:`filmcolor.pipeline.colorize_video`) lives above the colorizer; this module,
like all of :mod:`filmcolor.video`, imports nothing of the colorizer, so the layers run one way.
"""

from __future__ import annotations

from ..fs import check_paths, temp_path
from .sink import EncodeOptions, FrameSink, choose_output_format, container_options, map_other_streams
from .source import FrameSource, Span, open_input

__all__ = ["EncodeOptions", "FrameSink", "FrameSource", "Span", "check_paths", "choose_output_format",
           "container_options", "map_other_streams", "open_input", "temp_path"]
