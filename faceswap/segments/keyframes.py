"""Where a video can be cut: its keyframes, read from the demuxed packets (no frame is decoded).

A segment starts at a keyframe's presentation time, so a worker seeks straight to it and decodes only its own
frames; the frames of the whole video are split without overlap: frame times in [start, end) per segment.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import av

from faceswap.errors import FaceSwapError
from faceswap.media.probe import VideoInfo
from faceswap.media.streams import open_input

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Span:
    """One segment's frames: those with start <= time < end (seconds on `DecodedFrame.time`'s clock)."""

    index: int
    start: float | None
    """None: from the first frame of the range."""
    end: float | None
    """None: to the last frame of the range."""


def keyframe_times(info: VideoInfo) -> list[float]:
    """The presentation times of the video stream's keyframes, in seconds from `info.start_time`, ascending."""
    container = open_input(info.path)
    try:
        stream = next((s for s in container.streams.video if s.index == info.stream_index), None)
        if stream is None:
            raise FaceSwapError("unsupported_media", f"The video '{info.path.name}' changed since it was probed.")
        times: set[float] = set()
        for packet in container.demux(stream):
            if packet.is_keyframe and packet.pts is not None and packet.size:
                times.add(float(packet.pts * packet.time_base) - info.start_time)
    except av.error.FFmpegError as exc:
        raise FaceSwapError("unsupported_media", f"The video '{info.path.name}' could not be read to its end "
                            f"({exc}).", field="video") from exc
    finally:
        container.close()
    return sorted(times)


def plan_spans(keyframes: list[float], *, start: float | None, end: float | None, duration: float,
               segment_s: float) -> list[Span]:
    """Cut [start, end) at keyframes into segments of about `segment_s` seconds (at least `segment_s`, each cut at
    the first keyframe at or after the next multiple). One span when no keyframe lies inside the range."""
    low = max(start or 0.0, 0.0)
    high = min(end, duration) if end is not None else duration
    cuts: list[float] = []
    target = low + segment_s
    for time in keyframes:
        # A cut needs frames on both sides: a keyframe within half a segment of the end would make a sliver.
        if time <= low or time >= high - segment_s / 2 or math.isclose(time, low):
            continue
        if time >= target - 1e-6:
            cuts.append(time)
            target = time + segment_s
    bounds: list[float | None] = [start, *cuts, end]
    return [Span(index, bounds[index], bounds[index + 1]) for index in range(len(bounds) - 1)]
