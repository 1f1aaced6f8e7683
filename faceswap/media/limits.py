"""The size limits, enforced on what is decoded and encoded, not only on what a file's header claims.

A header can say nothing (a live-style MKV, no duration) or lie (a stream that switches from 64×64 to 6000×6000
after its first frame), so the probe's checks are repeated on every decoded frame: the count of frames decoded,
the frame's own time, and its size, all before the frame is converted to an array. Each breach is
`media_too_large`.

A size change within the limit is scaled to the first frame's size (the size the probe reported and the output is
made with): the tracker, the writer and the report all rely on one frame size, and a player that keeps its window
shows such a stream the same way. The aspect ratio follows the first frame.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from faceswap.errors import FaceSwapError

if TYPE_CHECKING:
    import av

    from faceswap.config import Settings
    from faceswap.media.probe import VideoInfo

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class MediaLimits:
    max_frames: int = 0
    """Frames decoded from one file, counted as they are decoded (0: no limit)."""
    max_duration_s: float = 0.0
    """Seconds from the picture's start, read from each frame's own timestamp (0: no limit)."""
    max_pixels: int = 0
    """Pixels of every decoded frame (0: no limit)."""
    max_output_bytes: int = 0
    """Bytes written into one output video (0: no limit)."""
    decode_threads: int = 0
    """Threads the video decoder may use (0: the codec's own choice; `media.threads.codec_threads` sizes it)."""
    encode_threads: int = 0
    """Threads libx264 may use (0: the codec's own choice)."""

    @classmethod
    def from_settings(cls, settings: Settings) -> MediaLimits:
        from faceswap.media.threads import codec_threads

        decode, encode = codec_threads(decode=settings.decode_threads, encode=settings.encode_threads)
        return cls(max_frames=settings.max_frames, max_duration_s=settings.max_duration_s,
                   max_pixels=settings.max_pixels, max_output_bytes=settings.max_output_bytes,
                   decode_threads=decode, encode_threads=encode)


def example_size(pixels: int) -> str:
    width = int((pixels * 16 / 9) ** 0.5)
    return f"{width}×{pixels // max(width, 1)}"


def frame_too_large(path: Path, width: int, height: int, max_pixels: int, at: float | None = None) -> FaceSwapError:
    where = f" from {at:.1f} s on" if at is not None else ""
    return FaceSwapError(
        "media_too_large",
        f"The video '{path.name}' has frames of {width}×{height} pixels{where}; this server accepts at most "
        f"{max_pixels:,} pixels per frame (e.g. {example_size(max_pixels)}).",
        field="video",
    )


def picture_refused(path: Path, max_pixels: int, at: float) -> FaceSwapError:
    """The decoder refused a picture (FFmpeg's `max_pixels`, set by `streams.cap_decoder`): the frame is larger
    than the limit, though its exact size is not known here."""
    return FaceSwapError(
        "media_too_large",
        f"The video '{path.name}' has a frame near {at:.1f} s larger than this server accepts: at most "
        f"{max_pixels:,} pixels per frame (e.g. {example_size(max_pixels)}).",
        field="video",
    )


class FrameGuard:
    """Checks each decoded frame of one reading of a video against its limits; says what size to convert it to."""

    def __init__(self, info: VideoInfo) -> None:
        self._info = info
        self._limits = info.limits or MediaLimits()
        turned = info.rotation in (90, 270)
        self.size = (info.height, info.width) if turned else (info.width, info.height)
        """Stored (width, height) every frame is converted to: the first frame's, as probed."""
        self.decoded = 0
        self._warned = False

    def admit(self, frame: av.VideoFrame, time: float) -> tuple[int, int]:
        """Count `frame` (shown at `time` s) and check it; the (width, height) to convert it to."""
        limits, path = self._limits, self._info.path
        self.decoded += 1
        if limits.max_frames and self.decoded > limits.max_frames:
            raise FaceSwapError(
                "media_too_large",
                f"The video '{path.name}' has more than {limits.max_frames:,} frames (its header did not say so); "
                f"this server accepts at most {limits.max_frames:,}. Trim it first.",
                field="video",
            )
        if limits.max_duration_s and time >= limits.max_duration_s:
            raise FaceSwapError(
                "media_too_large",
                f"The video '{path.name}' runs past {limits.max_duration_s:g} s (its header did not say so); this "
                f"server accepts at most {limits.max_duration_s:g} s. Trim it first.",
                field="video",
            )
        width, height = frame.width, frame.height
        if limits.max_pixels and width * height > limits.max_pixels:
            raise frame_too_large(path, width, height, limits.max_pixels, time)
        if (width, height) != self.size and not self._warned:
            log.info("%s changes size to %d×%d at %.2f s; scaled to the first frame's %d×%d", path.name, width,
                     height, time, *self.size)
            self._warned = True
        return self.size
