"""Temporal consistency for video colorization: flow-guided chroma smoothing and scene cuts.

    from filmcolor.temporal import TemporalSmoother
    sm = TemporalSmoother(strength=0.7, window=2)        # window=0: causal streaming, no delay
    for L, ab in frames:                                  # render-size L [1,h,w], ab [2,h,w]
        for out in sm.push(L, ab): ...
    for out in sm.flush(): ...
"""

from __future__ import annotations

from .scenecut import DEFAULT_SCENE_THRESHOLD, SceneCutDetector
from .smoother import TemporalSmoother

__all__ = ["TemporalSmoother", "SceneCutDetector", "DEFAULT_SCENE_THRESHOLD"]
