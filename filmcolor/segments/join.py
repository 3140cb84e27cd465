"""Joining finished segments into the final file without re-encoding, audio muxed from the source.

Segment packets are copied as they are (their timestamps are the source's, so nothing is shifted);
the source's audio and subtitle streams are copied (or audio converted, as in a one-pass run) and
interleaved with the video by time. Memory stays flat: both sides are read lazily.
"""

from __future__ import annotations

import heapq
from pathlib import Path
from typing import Iterator, Sequence

import av

from ..errors import FormatError
from ..video.sink import container_options, map_other_streams
from ..video.source import open_input


def _video_packets(files: Sequence[Path], vout) -> Iterator:
    for path in files:
        with av.open(str(path)) as seg:
            vin = seg.streams.video[0]
            for packet in seg.demux(vin):
                if packet.size == 0:
                    continue
                packet.stream = vout
                yield packet


def _seconds(packet) -> float:
    t = packet.dts if packet.dts is not None else packet.pts
    return float(t * packet.time_base) if t is not None else 0.0


def next_dts(last: int | None, dts: int | None, pts: int | None) -> int | None:
    """Decode timestamp for the next video packet so that dts rises strictly across segment seams.

    Each segment was encoded alone, so its first packets may carry a dts at or below the previous
    segment's last one (B-frame delay on a variable-rate source). Moving such a dts up is harmless
    while it stays <= pts (dts orders decoding only); beyond that the seam cannot be joined.
    """
    if last is None or dts is None or dts > last:
        return dts
    fixed = last + 1
    if pts is not None and fixed > pts:
        raise FormatError(f"segment timestamps overlap at dts {dts} (pts {pts}); the work folder is inconsistent: "
                          f"delete it and run again")
    return fixed


def join_segments(files: Sequence[Path], src: Path, tmp: Path, dst: Path) -> dict:
    """Write ``files`` (in order) plus ``src``'s other streams to ``tmp``; returns counts and notes."""
    if not files:
        raise FormatError("no segments to join")
    source = open_input(src)
    out = None
    frames, last_dts = 0, None
    try:
        with av.open(str(files[0])) as first:
            template = first.streams.video[0]
            out = av.open(str(tmp), "w", options=container_options(dst, template.time_base))
            vout = out.add_stream_from_template(template)
        packet_map, transcoders, others, notes = map_other_streams(source, out, dst)
        video = ((_seconds(p), 0, p) for p in _video_packets(files, vout))
        rest = ((_seconds(p), 1, p) for p in source.demux(*others) if p.size and p.dts is not None) if others else iter(())
        for _, kind, packet in heapq.merge(video, rest, key=lambda x: (x[0], x[1])):
            if kind == 0:
                packet.dts = next_dts(last_dts, packet.dts, packet.pts)
                last_dts = packet.dts if packet.dts is not None else last_dts
                out.mux(packet)
                frames += 1
            elif packet.stream.index in transcoders:
                _, out_s = transcoders[packet.stream.index]
                for af in packet.decode():
                    af.pts = None
                    out.mux(out_s.encode(af))
            else:
                packet.stream = packet_map[packet.stream.index]
                out.mux(packet)
        for _, out_s in transcoders.values():
            out.mux(out_s.encode(None))
    finally:
        if out is not None:
            out.close()
        source.close()
    return {"frames": frames, "warnings": notes}
