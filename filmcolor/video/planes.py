"""Zero-copy numpy views of PyAV frame planes (line padding stripped)."""

from __future__ import annotations

import av
import numpy as np


def plane_view(frame: av.VideoFrame, index: int, dtype: str) -> np.ndarray:
    """Writable ``[height, width]`` view of plane ``index`` of ``frame``."""
    plane = frame.planes[index]
    itemsize = np.dtype(dtype).itemsize
    arr = np.frombuffer(plane, dtype=dtype).reshape(plane.height, plane.line_size // itemsize)
    return arr[:, : plane.width]


def new_yuv_frame(y: np.ndarray, cb: np.ndarray, cr: np.ndarray, pix_fmt: str) -> av.VideoFrame:
    """Assemble a planar Y'CbCr frame from its three planes (copied into the frame's buffers)."""
    h, w = y.shape
    frame = av.VideoFrame(w, h, pix_fmt)
    for i, src in enumerate((y, cb, cr)):
        plane_view(frame, i, src.dtype.str if src.dtype.itemsize > 1 else "uint8")[...] = src
    return frame
