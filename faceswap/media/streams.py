"""Low-level PyAV helpers shared by probing, decoding and encoding (internal to faceswap.media).

Every PyAV call that can fail on user data goes through here or is wrapped where it is made, so a PyAV exception
never escapes the media layer: it becomes a `FaceSwapError` that names the file.
"""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path

import av
import av.container
import cv2
import numpy as np

from faceswap.errors import FaceSwapError
from faceswap.faces.types import Frame

log = logging.getLogger(__name__)

AV_TIME_BASE = 1_000_000

# cv2 rotation that turns a stored frame upright, keyed by the clockwise display rotation.
_UPRIGHT = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}


ACCEPTED_VIDEO_FORMATS = {
    "mov,mp4,m4a,3gp,3g2,mj2": "MP4/MOV/M4V",
    "matroska,webm": "MKV/WebM",
    "avi": "AVI",
    "gif": "GIF",
}
"""The only demuxers a video is opened with (FFmpeg's names), decided by FFmpeg's probe of the content, never by
the file's name. Playlists (HLS, DASH, concat), image sequences, raw elementary streams and every network demuxer
are left out: several of them open further files or URLs named inside the data."""
ACCEPTED_VIDEO_NAMES = "MP4, MOV, M4V, WebM, MKV, AVI or GIF"

_OPEN_OPTIONS = {
    # FFmpeg refuses any other demuxer right after probing, before it reads a header (matched per name part).
    "format_whitelist": "mov,matroska,avi,gif",
    # The one local file we open, through the plain file protocol: no concat:, subfile:, crypto:, http: ...
    "protocol_whitelist": "file",
}


def open_input(path: Path, what: str = "video") -> av.container.InputContainer:
    """Open `path` for reading with an accepted container format, or raise `unsupported_media` naming the file."""
    try:
        container = av.open(str(Path(path).absolute()), mode="r", container_options=dict(_OPEN_OPTIONS))
    except av.error.ArgumentError as exc:  # EINVAL: FFmpeg found a format that is not on the whitelist
        raise _not_accepted(path, what) from exc
    except av.error.FFmpegError as exc:
        raise FaceSwapError(
            "unsupported_media",
            f"The {what} file '{path.name}' could not be read: it is not a video format this service understands, "
            f"or it is damaged or incomplete ({_reason(exc)}).",
        ) from exc
    except (OSError, ValueError) as exc:
        raise FaceSwapError("unsupported_media", f"The {what} file '{path.name}' could not be opened.") from exc
    if container.format.name not in ACCEPTED_VIDEO_FORMATS:
        container.close()
        raise _not_accepted(path, what)
    return container


def _not_accepted(path: Path, what: str) -> FaceSwapError:
    from faceswap.media.images import image_format

    if image_format(path) is not None:
        return FaceSwapError("unsupported_media", f"The file '{path.name}' is a still image, not a video.")
    return FaceSwapError("unsupported_media", f"The {what} file '{path.name}' is not in a format this service "
                         f"accepts: upload a video file in {ACCEPTED_VIDEO_NAMES} (playlists and streams are not "
                         "accepted).")


def cap_decoder(stream: av.VideoStream, max_pixels: int) -> None:
    """Make the decoder itself refuse a picture larger than `max_pixels` (FFmpeg's own check, made before it
    allocates the picture), so a stream that grows mid-way cannot take the memory of a huge frame per thread."""
    if max_pixels > 0:
        stream.codec_context.options = {**stream.codec_context.options, "max_pixels": str(max_pixels)}


def _reason(exc: av.error.FFmpegError) -> str:
    return str(getattr(exc, "strerror", None) or exc).strip().rstrip(".")


def video_stream(container: av.container.InputContainer) -> av.VideoStream | None:
    """The main video stream: the first one that is not a cover picture (MP4/MP3 artwork is a 'video' stream)."""
    for stream in container.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic:
            return stream
    return None


def audio_stream(container: av.container.InputContainer) -> av.AudioStream | None:
    audio = container.streams.audio
    return audio[0] if audio else None


def codec_name(stream: av.stream.Stream) -> str:
    """The format's name for the stream's codec ("mp3", "av1"), not the decoder's ("mp3float", "libdav1d")."""
    codec = stream.codec_context.codec
    return codec.canonical_name or codec.name


def stream_origin(container: av.container.InputContainer, stream: av.VideoStream) -> float:
    """Seconds at which the picture starts (MPEG-TS and edited MOV files do not start at 0).

    `DecodedFrame.time` and the audio copy both count from here, so trimming means the same thing for both.
    """
    if stream.start_time is not None and stream.time_base is not None:
        return float(stream.start_time * stream.time_base)
    return container.start_time / AV_TIME_BASE if container.start_time else 0.0


def clockwise_rotation(frame: av.VideoFrame) -> int:
    """The frame's display rotation as clockwise degrees (0/90/180/270), like the classic `rotate` tag.

    PyAV reports the display matrix as a counter-clockwise angle in [-180, 180]; a phone's portrait clip stored
    landscape reads -90 there and 90 here. Mirroring in the matrix is rare and ignored.
    """
    return int(round(-frame.rotation / 90.0)) % 4 * 90


def upright(image: Frame, rotation: int) -> Frame:
    """Turn a stored frame the way a player displays it (`rotation` clockwise degrees); always C-contiguous."""
    code = _UPRIGHT.get(rotation % 360)
    if code is None:
        return np.ascontiguousarray(image)
    return cv2.rotate(image, code)


def to_bgr(frame: av.VideoFrame, size: tuple[int, int] | None = None) -> Frame:
    """Decoded frame → BGR uint8 in stored orientation, converted with the frame's own colour matrix and range;
    scaled to `size` (width, height) in the same step when given."""
    kwargs: dict[str, object] = {}
    if frame.color_range:
        kwargs["src_color_range"] = frame.color_range
    if size is not None and size != (frame.width, frame.height):
        kwargs["width"], kwargs["height"] = size
    return frame.to_ndarray(format="bgr24", **kwargs)


def seconds(value: int | None, time_base: Fraction | None) -> float | None:
    if value is None or time_base is None:
        return None
    return float(value * time_base)


def damaged(path: Path, at: float, exc: BaseException | None = None) -> FaceSwapError:
    detail = f" ({_reason(exc)})" if isinstance(exc, av.error.FFmpegError) else ""
    return FaceSwapError(
        "unsupported_media",
        f"The video '{path.name}' is damaged or incomplete near {at:.1f} s{detail}: it cannot be decoded past that "
        "point. Re-export or re-upload the complete file.",
    )
