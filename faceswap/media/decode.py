"""Decode a video into upright BGR frames, one at a time (memory stays flat however long the video is)."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass

import av
import av.container

from faceswap.errors import FaceSwapError
from faceswap.faces.types import Frame
from faceswap.media.limits import FrameGuard, picture_refused
from faceswap.media.probe import VideoInfo
from faceswap.media.streams import cap_decoder, damaged, open_input, to_bgr, upright

log = logging.getLogger(__name__)

SEEK_AFTER_S = 3.0
"""Ranges starting later than this seek to the keyframe before them; earlier ones decode from the file's start."""
SEEK_MARGIN_S = 1.0


@dataclass(frozen=True)
class DecodedFrame:
    index: int
    """0-based index within the selected range."""
    pts: int | None
    """Presentation timestamp in `VideoInfo.time_base`, as decoded."""
    time: float
    """Seconds from the start of the video (`VideoInfo.start_time`)."""
    image: Frame
    """BGR uint8, upright (the display rotation is applied), C-contiguous."""
    duration: float | None = None
    """Seconds this frame is shown, when the file says (the writer keeps the last frame's length with it).
    Keep it when replacing the image: `dataclasses.replace(frame, image=new_image)`."""


class _Overshoot(Exception):
    """A seek landed after the wanted start (inexact index): decode from the beginning instead."""


def read_frames(info: VideoInfo, *, start: float | None = None, end: float | None = None,
                frame_cap: int = 0) -> Iterator[DecodedFrame]:
    """Frames with start <= time < end, at most `frame_cap` of them (0 = no cap), in presentation order.

    Closing the generator early closes the file. A decode error mid-stream, or a stream that stops well short of
    the length its header promises, raises `unsupported_media` saying where. Every decoded frame is checked against
    `info.limits` before it is converted (`limits.FrameGuard`): too many frames, a time past the longest duration,
    or a frame over the pixel limit raise `media_too_large`; a frame of another size within the limit is scaled to
    the first frame's size.
    """
    low = max(start or 0.0, 0.0)
    high = math.inf if end is None else end
    seek = low > SEEK_AFTER_S and not info.is_gif
    try:
        yield from _read_range(info, low, high, frame_cap, seek=seek)
    except _Overshoot:
        log.info("seek in %s overshot %.3f s; decoding from the start", info.path.name, low)
        yield from _read_range(info, low, high, frame_cap, seek=False)


def _read_range(info: VideoInfo, low: float, high: float, frame_cap: int, *, seek: bool) -> Iterator[DecodedFrame]:
    container = open_input(info.path)
    try:
        stream = container.streams.video[_video_position(container, info)]
        stream.thread_type = "AUTO"
        if info.limits is not None:
            cap_decoder(stream, info.limits.max_pixels)
            if info.limits.decode_threads:
                stream.codec_context.thread_count = info.limits.decode_threads
        if seek:
            seek = _seek(container, stream, info, low - SEEK_MARGIN_S)
        yield from _decode(info, container, stream, low, high, frame_cap, seeked=seek)
    finally:
        container.close()


def _video_position(container: av.container.InputContainer, info: VideoInfo) -> int:
    for position, stream in enumerate(container.streams.video):
        if stream.index == info.stream_index:
            return position
    raise FaceSwapError("unsupported_media", f"The video '{info.path.name}' changed since it was probed.")


def _seek(container: av.container.InputContainer, stream: av.VideoStream, info: VideoInfo, at: float) -> bool:
    if at <= 0:
        return False
    try:
        container.seek(int((at + info.start_time) / info.time_base), stream=stream, backward=True)
    except av.error.FFmpegError as exc:
        log.info("cannot seek in %s (%s); decoding from the start", info.path.name, exc)
        raise _Overshoot from exc
    return True


def _decode(info: VideoInfo, container: av.container.InputContainer, stream: av.VideoStream, low: float,
            high: float, frame_cap: int, *, seeked: bool) -> Iterator[DecodedFrame]:
    step = 1.0 / float(info.fps)
    index = 0
    time = low
    last_end: float | None = None
    capped = False
    guard = FrameGuard(info)
    frames = container.decode(stream)
    while True:
        try:
            frame = next(frames, None)
        except av.error.ArgumentError as exc:  # the decoder refused a picture over the limit (cap_decoder)
            if info.limits is None or not info.limits.max_pixels:
                raise damaged(info.path, time, exc) from exc
            raise picture_refused(info.path, info.limits.max_pixels, low if last_end is None else last_end) from exc
        except av.error.FFmpegError as exc:
            raise damaged(info.path, time, exc) from exc
        if frame is None:
            break
        time = _frame_time(frame, info, last_end)
        size = guard.admit(frame, time)
        if time < low - 1e-6:
            continue
        if seeked and index == 0 and time > low + step:
            raise _Overshoot
        if time >= high - 1e-6:
            break
        duration = float(frame.duration * info.time_base) if frame.duration else None
        try:
            image = upright(to_bgr(frame, size), info.rotation)
        except (av.error.FFmpegError, ValueError) as exc:
            raise damaged(info.path, time, exc) from exc
        yield DecodedFrame(index, frame.pts, time, image, duration)
        index += 1
        last_end = time + (duration or step)
        if frame_cap and index >= frame_cap:
            capped = True
            break
    if not capped:
        _check_complete(info, low, high, last_end, step)


def _frame_time(frame: av.VideoFrame, info: VideoInfo, previous_end: float | None) -> float:
    if frame.pts is not None:
        return float(frame.pts * info.time_base) - info.start_time
    return previous_end if previous_end is not None else 0.0


def _check_complete(info: VideoInfo, low: float, high: float, last_end: float | None, step: float) -> None:
    """Truncated files often decode silently until their data runs out; the stream's own length tells."""
    if not info.exact_length or info.duration <= 0:
        return
    expected_end = min(high, info.duration)
    reached = low if last_end is None else last_end
    if low < expected_end and reached < expected_end - max(0.5, 3 * step):
        raise damaged(info.path, reached)


def planned_frame_count(info: VideoInfo, *, start: float | None = None, end: float | None = None,
                        frame_cap: int = 0) -> int:
    """How many frames `read_frames` will yield with these arguments (exact for constant frame rate; for progress
    bars, so an estimate elsewhere)."""
    if start is None and end is None:
        count = info.frame_count
    else:
        fps = float(info.fps)
        low = max(start or 0.0, 0.0)
        high = info.duration if end is None else min(end, info.duration or end)
        count = min(max(math.ceil(high * fps - 1e-6) - math.ceil(low * fps - 1e-6), 0), info.frame_count)
    return min(count, frame_cap) if frame_cap else count


def read_frame(info: VideoInfo, index: int) -> Frame:
    """One upright frame by index (for a frame slider). Exact in the first seconds of a video; later, the frame
    at index / fps (exact for constant frame rate). Past the end raises `invalid_request`."""
    if index < 0 or index >= info.frame_count:
        raise FaceSwapError(
            "invalid_request",
            f"Frame {index} does not exist: the video has {info.frame_count} frames (0 to {info.frame_count - 1}).",
            field="frame",
        )
    at = index / float(info.fps)
    if at <= SEEK_AFTER_S:
        frames = read_frames(info, frame_cap=index + 1)
    else:
        frames = read_frames(info, start=at - 0.5 / float(info.fps), frame_cap=1)
    last: Frame | None = None
    with closing(frames):
        for decoded in frames:
            last = decoded.image
    if last is None:
        raise FaceSwapError("unsupported_media", f"Frame {index} of '{info.path.name}' could not be decoded.",
                            field="frame")
    return last
