"""VapourSynth plugin: ``colorize(clip) -> VideoNode`` (GRAY or YUV integer clips in, YUV out).

    import vapoursynth as vs
    from filmcolor.plugins.vapoursynth import colorize
    clip = vs.core.bs.VideoSource("old.mkv")
    clip = colorize(clip, model="default", render_size=320)
    clip.set_output()

Built on ``core.std.ModifyFrame`` around the streaming pipeline (``Colorizer`` + ``ChromaStream`` with
``causal=True``, engine batch 1, so every frame request is answered at once). The luma plane is the
clip's own; only the chroma planes are made, and the range (``_Range``) and ``_Matrix`` properties are set.
VapourSynth asks for frames from several threads; causal smoothing needs them in order, so a request
that runs ahead waits briefly (``order_wait`` seconds) for the frames before it, and a seek (a jump in
frame numbers) restarts the smoothing, as a scene cut would. ``vapoursynth`` is imported only when
:func:`colorize` is called (the PyPI wheels need VapourSynth R74+, which needs Python >= 3.12).
"""

from __future__ import annotations

import threading
import weakref
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from ._common import make_colorizer, matrix_named

if TYPE_CHECKING:  # pragma: no cover - typing only
    from filmcolor.colorizer import Colorizer
    from filmcolor.video.formats import PlanarYUV

INSTALL_HINT = "pip install 'filmcolor[vapoursynth]' (VapourSynth R74+ wheels need Python >= 3.12)"
# VapourSynth constants (VSConstants4.h): colour families, _Matrix values.
GRAY, YUV = 1, 3
INTEGER = 0
MATRIX_FROM_PROP = {1: "bt709", 5: "bt601", 6: "bt601", 9: "bt2020nc"}
PROP_FROM_MATRIX = {"bt709": 1, "bt601": 6, "bt2020nc": 9}
# The range property: ``_Range`` (1 full, 0 limited) in current VapourSynth; before it, the now deprecated
# ``_ColorRange`` with the opposite values (0 full, 1 limited).
RANGE_PROP_FULL = {"_Range": 1, "_ColorRange": 0}
SUBSAMPLING = {"420": (1, 1), "422": (1, 0), "444": (0, 0), "440": (0, 1), "411": (2, 0), "410": (2, 2)}


def import_vapoursynth() -> Any:
    """The ``vapoursynth`` module, or ImportError saying how to install it."""
    try:
        import vapoursynth
    except ImportError as exc:
        raise ImportError(f"the VapourSynth plugin needs the vapoursynth module: {INSTALL_HINT}") from exc
    return vapoursynth


def probe() -> str | None:
    """None when this plugin can run here, else why not (for the plugin registry)."""
    try:
        import_vapoursynth()
    except ImportError as exc:
        return str(exc)
    return None


def output_format(family: int, sample_type: int, bits: int, ssw: int, ssh: int, subsampling: str = "420"
                  ) -> tuple[int, int, int, int]:
    """(family, bits, ssw, ssh) of the output for an input format; ValueError for what is not supported.

    GRAY becomes YUV with ``subsampling``; YUV keeps its own layout (only its chroma is replaced).
    """
    if sample_type != INTEGER or not 8 <= bits <= 16:
        got = "float" if sample_type != INTEGER else f"{bits}-bit"
        raise ValueError(f"colorize needs integer samples of 8 to 16 bits, got {got} samples: convert first, "
                         f"e.g. core.resize.Point(clip, format=vs.GRAY16)")
    if family == YUV:
        return YUV, bits, ssw, ssh
    if family != GRAY:
        raise ValueError("colorize needs a GRAY or YUV clip (RGB has colour already): convert with "
                         "core.resize.Bicubic(clip, format=vs.GRAY16, matrix_s='709')")
    if subsampling not in SUBSAMPLING:
        raise ValueError(f"subsampling must be one of {', '.join(SUBSAMPLING)}, got {subsampling!r}")
    w, h = SUBSAMPLING[subsampling]
    return YUV, bits, w, h


def planar_layout(bits: int, ssw: int, ssh: int, full_range: bool) -> "PlanarYUV":
    """The filmcolor layout of a VapourSynth YUV format (for the ChromaStream)."""
    from filmcolor.video.formats import PlanarYUV

    sub = {v: k for k, v in SUBSAMPLING.items()}.get((ssw, ssh), "444")
    return PlanarYUV(f"yuv{sub}p" + ("" if bits == 8 else f"{bits}le"), bits, ssw, ssh, full_range)


def range_prop(vs: Any, full: bool) -> tuple[str, int]:
    """(name, value) of the range frame property this VapourSynth understands."""
    name = "_Range" if hasattr(vs, "Range") else "_ColorRange"
    return name, RANGE_PROP_FULL[name] if full else 1 - RANGE_PROP_FULL[name]


def range_and_matrix(props: Any, family: int, height: int, color_range: str | None = None,
                     matrix: str | None = None) -> tuple[bool, str]:
    """(full_range, matrix name) from the arguments, else the frame's ``_Range``/``_Matrix``, else defaults.

    Defaults: GRAY full range (what grey sources are in filmcolor), YUV limited; BT.709 from 720 lines, else BT.601.
    """
    if color_range is not None:
        if color_range not in ("full", "limited"):
            raise ValueError(f"color_range must be 'full' or 'limited', got {color_range!r}")
        full = color_range == "full"
    elif props is not None and any(k in props for k in RANGE_PROP_FULL):
        key = next(k for k in RANGE_PROP_FULL if k in props)
        full = int(props[key]) == RANGE_PROP_FULL[key]
    else:
        full = family == GRAY
    if matrix in (None, "auto") and props is not None and "_Matrix" in props:
        matrix = MATRIX_FROM_PROP.get(int(props["_Matrix"]))
    return full, matrix_named(matrix, height).name


class FrameSequencer:
    """Feeds a causal chroma stream in frame order although requests come from several threads.

    ``process(n, y)`` returns ``(cb, cr)`` for frame ``n`` with luma ``y``. A request for a frame a little
    ahead of the next expected one waits up to ``order_wait`` seconds for the frames before it; a jump
    (a seek, or a gap still open after the wait) resets the stream's temporal state. Recent results are
    cached, so a frame asked for twice is made once. ``make_stream`` builds the stream on first use.
    """

    def __init__(self, make_stream: Callable[[], Any], *, order_wait: float = 1.0, ahead: int = 8, cache: int = 16) -> None:
        self._make_stream = make_stream
        self.stream: Any = None
        self.order_wait = float(order_wait)
        self.ahead = int(ahead)
        self._cache: OrderedDict[int, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._cache_size = int(cache)
        self._cond = threading.Condition()
        self.next: int | None = None
        self.resets = 0

    def process(self, n: int, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with self._cond:
            if n in self._cache:
                return self._cache[n]
            deadline = time.monotonic() + self.order_wait
            while self.next is not None and self.next < n <= self.next + self.ahead and n not in self._cache:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            if n in self._cache:
                return self._cache[n]
            if self.stream is None:
                self.stream = self._make_stream()
                if self.stream.latency:
                    raise ValueError(f"VapourSynth frames must come back at once, but this colorizer holds "
                                     f"{self.stream.latency} frame(s) back: use batch=1 and causal smoothing")
            elif self.next != n:
                self.stream.reset()
                self.resets += 1
            ready = self.stream.push(y, n)
            if len(ready) != 1 or ready[0][0] != n:
                raise RuntimeError(f"chroma stream returned {len(ready)} frame(s) for frame {n}; expected exactly it")
            _, cb, cr = ready[0]
            self._cache[n] = (cb, cr)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
            self.next = n + 1
            self._cond.notify_all()
            return cb, cr


def colorize(clip: Any, *, colorizer: "Colorizer | None" = None, subsampling: str = "420",
             color_range: str | None = None, matrix: str | None = None, order_wait: float = 1.0,
             **options: Any) -> Any:
    """Colorize a GRAY or YUV integer VapourSynth clip -> YUV ``VideoNode`` of the same depth.

    ``options`` are :class:`~filmcolor.colorizer.ColorizerOptions` fields (model, engine, device,
    render_size, saturation, smoothing, smoothing_strength). ``subsampling`` sets the chroma layout for
    GRAY input (YUV input keeps its own). ``color_range`` ('full'/'limited') and ``matrix`` override the
    frame properties ``_Range`` (or the older ``_ColorRange``) and ``_Matrix``. A given ``colorizer``
    must have batch 1.
    """
    vs = import_vapoursynth()
    core = vs.core
    fmt = clip.format
    if fmt is None or not clip.width or not clip.height:
        raise ValueError("colorize needs a clip of constant format and size")
    family, bits, ssw, ssh = output_format(int(fmt.color_family), int(fmt.sample_type), fmt.bits_per_sample,
                                           fmt.subsampling_w, fmt.subsampling_h, subsampling)
    width, height = clip.width, clip.height
    if width % (1 << ssw) or height % (1 << ssh):
        raise ValueError(f"{width}x{height} does not divide by the chroma subsampling; use subsampling='444'")
    grey_in = int(fmt.color_family) == GRAY
    out_fmt = core.query_video_format(vs.YUV, vs.INTEGER, bits, ssw, ssh)
    c, owned = make_colorizer(colorizer, options, batch=1)
    settings: dict[str, Any] = {}

    def make_stream() -> Any:
        layout = planar_layout(bits, ssw, ssh, settings["full"])
        return c.stream(width, height, layout, matrix_named(settings["matrix"], height), causal=True)

    seq = FrameSequencer(make_stream, order_wait=order_wait, ahead=max(8, core.num_threads))
    if owned:  # VapourSynth has no close for a node: the engine goes when the node's callback (holding seq) is freed
        weakref.finalize(seq, c.close)

    def selector(n: int, f: Any) -> Any:
        src, fout = (f[1], f[0].copy()) if grey_in else (f, f.copy())
        if not settings:
            settings["full"], settings["matrix"] = range_and_matrix(src.props, int(fmt.color_family), height,
                                                                    color_range, matrix)
        y = np.asarray(src[0])
        cb, cr = seq.process(n, np.array(y, copy=True))
        if grey_in:
            np.asarray(fout[0])[...] = y
        np.asarray(fout[1])[...] = cb
        np.asarray(fout[2])[...] = cr
        key, value = range_prop(vs, settings["full"])
        fout.props[key] = value
        fout.props["_Matrix"] = PROP_FROM_MATRIX[settings["matrix"]]
        return fout

    if grey_in:
        template = core.std.BlankClip(clip, format=out_fmt.id, keep=True)
        node = core.std.ModifyFrame(template, [template, clip], selector)
    else:
        node = core.std.ModifyFrame(clip, clip, selector)
    return node
