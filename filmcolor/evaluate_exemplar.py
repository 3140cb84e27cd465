"""``filmcolor evaluate grey.mp4 --reference colour.mp4 --exemplar first``: reference-frame colorization scored.

The grey clip is colorized twice through the file pipeline, automatically and with the colour clip's
first frame as the reference (``f0``, a complete colour frame: its grey pixels count as grey; carried through its shot, :mod:`filmcolor.temporal.references`);
both are scored against the colour clip (PSNR, CIEDE2000, CDC, warp error: :mod:`filmcolor.video_metrics`)
over the whole clip and over its first and last 10 frames, beside the grey input. Wall time per frame of
both runs gives the reference's cost.
"""

from __future__ import annotations

import tempfile
from pathlib import Path



from .video_metrics import GREY, ClipMetrics, iter_rgb, markdown_table

EDGE = 10
MODES = ("automatic", "exemplar")  # automatic first: it pays the engine's warm-up, not the reference


def _write_first_frame(colour: Path, path: Path) -> None:
    import cv2

    first = next(iter_rgb(colour, 1), None)
    if first is None:
        from .errors import FormatError

        raise FormatError(f"{str(colour)!r} has no video frames")
    cv2.imwrite(str(path), cv2.cvtColor(first, cv2.COLOR_RGB2BGR))


def evaluate_exemplar(colorizer, grey: Path, colour: Path, *, limit: int | None = None) -> dict:
    """Colorize ``grey`` (automatic and with ``colour``'s first frame as reference) and score both."""
    from .temporal.references import ClipGuidance
    from .pipeline import colorize_video

    with tempfile.TemporaryDirectory(prefix="filmcolor-exemplar-") as tmp:
        t = Path(tmp)
        _write_first_frame(colour, t / "first.png")
        end = None
        if limit:
            import av

            with av.open(str(grey)) as c:
                v = c.streams.video[0]
                rate = float(v.average_rate or v.guessed_rate or 25)
                end = float((v.start_time or 0) * (v.time_base or 0)) + (limit - 0.5) / rate
        runs = {}
        for mode in MODES:
            g = ClipGuidance((("f0", str(t / "first.png")),), complete=True) if mode == "exemplar" else None
            runs[mode] = colorize_video(grey, t / f"{mode}.mkv", colorizer, end=end, guidance=g,
                                        encode=None)
        n = min(sum(1 for _ in iter_rgb(t / "automatic.mkv", limit)), sum(1 for _ in iter_rgb(colour, limit)))
        windows = {"whole": ClipMetrics(MODES), "first10": ClipMetrics(MODES), "last10": ClipMetrics(MODES)}
        frames = zip(iter_rgb(colour, n), *(iter_rgb(t / f"{m}.mkv", n) for m in MODES))
        for i, (ref, *cands) in enumerate(frames):
            c = dict(zip(MODES, cands))
            windows["whole"].update(ref, c)
            if i < EDGE:
                windows["first10"].update(ref, c)
            if i >= n - EDGE:
                windows["last10"].update(ref, c)
    res = {"frames": n, **{w: m.result() for w, m in windows.items()}}
    res["seconds_per_frame"] = {m: runs[m]["seconds"] / max(1, runs[m]["frames"]) for m in MODES}
    res["reference_time_ratio"] = res["seconds_per_frame"]["exemplar"] / max(1e-9, res["seconds_per_frame"]["automatic"])
    return res


def format_exemplar_report(res: dict, title: str) -> str:
    """Markdown: one table per window (exemplar, automatic, grey input)."""
    lines = [f"## {title}", "", f"{res['frames']} frames; reference = the colour clip's first frame.", ""]
    for w in ("whole", "first10", "last10"):
        lines += [f"### {w}", "", markdown_table({k: res[w][k] for k in (*MODES, GREY)}), ""]
    spf = res["seconds_per_frame"]
    lines.append(f"Time per frame (whole run, decode and encode included): exemplar {spf['exemplar'] * 1e3:.1f} ms, "
                 f"automatic {spf['automatic'] * 1e3:.1f} ms (x{res['reference_time_ratio']:.3f}).")
    return "\n".join(lines) + "\n"
