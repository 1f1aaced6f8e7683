"""Probe a video: what it is, how long, how big, which way up; refuse what breaks a limit or cannot be decoded.

Checks run cheapest first (the file's size before opening it, the frame size before decoding one), and the probe
decodes the first frame, so a file that opens but cannot be decoded is refused here rather than mid-job.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.container

from faceswap.config import Settings
from faceswap.errors import FaceSwapError
from faceswap.media.limits import MediaLimits, example_size, frame_too_large, picture_refused
from faceswap.media.streams import (
    AV_TIME_BASE,
    cap_decoder,
    clockwise_rotation,
    codec_name,
    open_input,
    stream_origin,
    video_stream,
)
from faceswap.media.units import check_input_file

log = logging.getLogger(__name__)

_MOV_FAMILY = "mov,mp4,m4a,3gp,3g2,mj2"
_MATROSKA_DURATION = re.compile(r"^(\d+):(\d{2}):(\d{2}(?:\.\d+)?)$")


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    format_name: str
    """The demuxer, e.g. "mov,mp4,m4a,3gp,3g2,mj2", "gif", "matroska,webm"."""
    is_gif: bool
    codec: str
    """Video codec name, e.g. "h264", "vp9", "gif"."""
    width: int
    """Upright (display) width: the stored width, or the stored height when the display rotation is 90 or 270."""
    height: int
    rotation: int
    """Display rotation of the input, in clockwise degrees (0, 90, 180, 270), like the classic `rotate` tag: a
    phone's portrait clip stored landscape says 90. Decoded frames are already turned upright."""
    fps: Fraction
    """Average frame rate."""
    time_base: Fraction
    """Time base of the video stream (the unit of `DecodedFrame.pts`)."""
    duration: float
    """Seconds of video."""
    frame_count: int
    """Exact when the container says so (MP4/MOV/GIF), else estimated from duration × fps."""
    has_audio: bool
    audio_codec: str | None
    start_time: float = 0.0
    """Seconds at which the picture starts in the file; `DecodedFrame.time` counts from here."""
    exact_length: bool = False
    """True when the duration comes from the video stream's own header, so decoding that stops well short of it
    means the file is damaged."""
    stream_index: int = 0
    """Index of the video stream in the container (cover art is skipped)."""
    limits: MediaLimits | None = None
    """The server's limits, enforced again on every frame decoded and every byte encoded (None: none)."""


def probe_video(path: Path, settings: Settings) -> VideoInfo:
    """Read and check a video's facts, or raise the catalog error a person can act on."""
    path = Path(path)
    check_input_file(path, settings, kind="video", field="video")
    container = open_input(path)
    try:
        return _probe_open(path, container, settings)
    except FaceSwapError:
        raise
    except (av.error.FFmpegError, ValueError, OverflowError, IndexError) as exc:  # odd headers PyAV cannot map
        raise FaceSwapError("unsupported_media", f"The video '{path.name}' could not be read ({exc}).",
                            field="video") from exc
    finally:
        container.close()


def _probe_open(path: Path, container: av.container.InputContainer, settings: Settings) -> VideoInfo:
    format_name = container.format.name
    stream = video_stream(container)
    if stream is None:
        kind = "it looks like an audio-only file" if container.streams.audio else "it holds no pictures"
        raise FaceSwapError("unsupported_media", f"The file '{path.name}' has no video stream: {kind}.", field="video")
    context = stream.codec_context
    if context is None or not context.name:
        raise FaceSwapError("unsupported_media", f"The video codec of '{path.name}' is not supported.", field="video")
    stored_w, stored_h = context.width, context.height
    if stored_w * stored_h > settings.max_pixels:
        raise FaceSwapError(
            "media_too_large",
            f"The video '{path.name}' is {stored_w}×{stored_h} pixels per frame; this server accepts at most "
            f"{settings.max_pixels:,} pixels per frame (e.g. {example_size(settings.max_pixels)}).",
            field="video",
        )
    fps = _frame_rate(stream)
    time_base = stream.time_base or Fraction(1, AV_TIME_BASE)
    duration, exact = _duration(container, stream)
    frame_count = stream.frames if stream.frames > 0 else max(round(duration * fps), 1)
    if duration > settings.max_duration_s:
        raise FaceSwapError(
            "media_too_large",
            f"The video '{path.name}' lasts {duration:.1f} s; this server accepts at most "
            f"{settings.max_duration_s:g} s. Trim it first.",
            field="video",
        )
    if frame_count > settings.max_frames:
        raise FaceSwapError(
            "media_too_large",
            f"The video '{path.name}' has {frame_count:,} frames; this server accepts at most "
            f"{settings.max_frames:,}.",
            field="video",
        )
    if format_name == _MOV_FAMILY:
        _check_mov_complete(path, container)
    cap_decoder(stream, settings.max_pixels)
    first = _first_frame(path, container, stream, settings.max_pixels)
    if first.width * first.height > settings.max_pixels:  # the header said less than the picture holds
        raise frame_too_large(path, first.width, first.height, settings.max_pixels)
    rotation = clockwise_rotation(first)
    width, height = (first.height, first.width) if rotation in (90, 270) else (first.width, first.height)
    audio = container.streams.audio[0] if container.streams.audio else None
    return VideoInfo(
        path=path,
        format_name=format_name,
        is_gif=format_name == "gif",
        codec=codec_name(stream),
        width=width,
        height=height,
        rotation=rotation,
        fps=fps,
        time_base=time_base,
        duration=duration,
        frame_count=frame_count,
        has_audio=audio is not None,
        audio_codec=codec_name(audio) if audio is not None and audio.codec_context else None,
        start_time=stream_origin(container, stream),
        exact_length=exact,
        stream_index=stream.index,
        limits=MediaLimits.from_settings(settings),
    )


def _frame_rate(stream: av.VideoStream) -> Fraction:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate and 0 < rate < 1000:
            return Fraction(rate)
    return Fraction(25)


def _duration(container: av.container.InputContainer, stream: av.VideoStream) -> tuple[float, bool]:
    """Seconds of video, and whether that comes from the video stream itself (not the container's maximum)."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base), True
    tag = _MATROSKA_DURATION.match(stream.metadata.get("DURATION", "").strip())
    if tag:
        hours, minutes, secs = tag.groups()
        return int(hours) * 3600 + int(minutes) * 60 + float(secs), True
    if container.duration:
        return container.duration / AV_TIME_BASE, False
    return 0.0, False


def _check_mov_complete(path: Path, container: av.container.InputContainer) -> None:
    """An MP4/MOV cut short after its index (a 'faststart' file whose upload broke off) still opens, and decodes
    its first frames; its sample index tells where the data should be, so compare with the real file size."""
    size = path.stat().st_size
    needed = 0
    for stream in container.streams:
        entries = stream.index_entries
        count = len(entries)
        for i in range(max(count - 32, 0), count):
            entry = entries[i]
            needed = max(needed, entry.pos + entry.size)
    if needed > size:
        raise FaceSwapError(
            "unsupported_media",
            f"The video '{path.name}' is incomplete: the file has {size:,} bytes but its index describes "
            f"{needed:,}. The upload or copy was probably cut short; upload the complete file.",
            field="video",
        )


def _first_frame(path: Path, container: av.container.InputContainer, stream: av.VideoStream,
                 max_pixels: int) -> av.VideoFrame:
    try:
        for frame in container.decode(stream):
            return frame
    except av.error.ArgumentError as exc:  # the decoder refused a picture over `max_pixels` (see cap_decoder)
        raise picture_refused(path, max_pixels, 0.0) from exc
    except av.error.FFmpegError as exc:
        raise FaceSwapError(
            "unsupported_media",
            f"The video '{path.name}' opens but its first frame cannot be decoded ({exc}); it may be damaged or "
            "use a codec this service cannot decode.",
            field="video",
        ) from exc
    raise FaceSwapError("unsupported_media", f"The video '{path.name}' contains no decodable frames.", field="video")
