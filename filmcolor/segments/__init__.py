"""Long films: resumable segments, parallel worker processes, Ray clusters."""

from .runner import DEFAULT_OVERLAP, DEFAULT_SEGMENT_SECONDS, SegmentProgress, colorize_segmented

__all__ = ["DEFAULT_OVERLAP", "DEFAULT_SEGMENT_SECONDS", "SegmentProgress", "colorize_segmented"]
