"""Shared glue for the plugins: making a causal colorizer and naming a colour matrix.

Every plugin wraps the same streaming pipeline (:class:`~filmcolor.colorizer.Colorizer` and a
:class:`~filmcolor.colorizer.ChromaStream` with ``causal=True``); these helpers keep the small
conversions around it in one place so the plugins agree with each other and with the file pipeline.
Heavy imports (torch) happen inside the functions, so importing a plugin stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from filmcolor.video.rgb import convert_depth, layout_444, rgb_to_luma, ycbcr_planes_to_rgb

__all__ = ["make_colorizer", "matrix_named", "convert_depth", "layout_444", "rgb_to_luma", "ycbcr_planes_to_rgb"]

if TYPE_CHECKING:  # pragma: no cover - typing only
    from filmcolor.color import YCbCrMatrix
    from filmcolor.colorizer import Colorizer


def make_colorizer(colorizer: "Colorizer | None", options: dict[str, Any], *, batch: int | None = None
                   ) -> tuple["Colorizer", bool]:
    """The caller's colorizer, or a new one from ``options`` (ColorizerOptions fields); and whether we own it.

    ``batch`` (when given and not in ``options``) asks the engine for that batch: 1 gives a frame back
    for every frame pushed, which is what per-frame filters need.
    """
    if colorizer is not None:
        if options:
            raise TypeError(f"pass either colorizer= or colorizer options, not both (got {sorted(options)})")
        return colorizer, False
    from filmcolor.colorizer import Colorizer, ColorizerOptions

    opts = dict(options)
    opts.setdefault("smoothing", "stream")
    if batch is not None:
        opts.setdefault("batch", batch)
    return Colorizer(ColorizerOptions(**opts)), True


def matrix_named(name: str | None, height: int) -> "YCbCrMatrix":
    """``bt601``/``bt709``/``bt2020nc`` (or ``601``, ``709``...) -> matrix; None/``auto``: by frame height."""
    from filmcolor.color import MATRICES
    from filmcolor.video.formats import choose_matrix

    if name in (None, "", "auto"):
        return choose_matrix(None, height)
    key = name.lower()
    for m in MATRICES.values():
        if key in (m.name, m.name.removeprefix("bt"), m.name.removesuffix("nc")):
            return m
    raise ValueError(f"unknown colour matrix {name!r}: use auto, {', '.join(MATRICES)}")
