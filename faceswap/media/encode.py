"""Write the output video: H.264 MP4 (with the input's audio) or GIF, atomically, marked as AI-generated.

Decisions (see also `audio.py`):

* **Rotation**: frames arrive upright (the decoder applied the input's display rotation), and are written upright
  with no rotation flag, so every player, and GIF, shows them like the input was shown.
* **Timestamps**: output pts = input pts − the first written frame's pts, in the input's own time base, so a
  variable-frame-rate clip keeps every frame's time and the muxer neither drops nor duplicates frames. The output
  starts at 0 with the first written frame; the audio is shifted by the same amount.
* **Odd sizes**: H.264 in 4:2:0 needs even sizes, so an odd width or height gets one extra column or row that
  repeats the edge (the picture is otherwise untouched; the output is at most one pixel larger). GIF keeps odd sizes.
* **Colour**: MP4 frames are converted with, and tagged as, BT.709 limited range (what players assume for video).
* **GIF**: a palette per frame, Floyd–Steinberg dithered (`gif.py`); delays are whole centiseconds, rounded from
  each frame's own time (so 30 fps becomes 3,3,4 cs); a frame that would round onto its predecessor is pushed one
  centisecond later.
* **Atomic**: everything goes to a hidden temp file beside `output`, renamed with `os.replace` only after the file
  is complete; on an exception (or `abort()`) the temp file is deleted and `output` is left untouched.
"""

from __future__ import annotations

import functools
import logging
import os
import secrets
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Literal

import av
import av.container
import cv2
import numpy as np

from faceswap.errors import FaceSwapError
from faceswap.faces.types import Frame
from faceswap.media.audio import AudioTrack
from faceswap.media.decode import DecodedFrame
from faceswap.media.gif import GIF_TIME_BASE, GifQuantizer, finish_gif
from faceswap.media.probe import VideoInfo

log = logging.getLogger(__name__)

OutputFormat = Literal["mp4", "gif"]

PROVENANCE_NOTE = "Made with faceswap. AI-generated: faces in this video were swapped."
"""Written into every output: MP4 `comment` and `description` tags, a GIF Comment Extension."""

X264_OPTIONS = {"crf": "18", "preset": "veryfast"}
NVENC_OPTIONS = {"preset": "p5", "tune": "hq", "rc": "vbr", "cq": "19", "b": "0"}
ENCODER_CHOICES = ("auto", "libx264", "h264_nvenc")
_MAX_PENDING_DURATIONS = 512


def resolve_output_format(info: VideoInfo, requested: Literal["same", "mp4", "gif"]) -> OutputFormat:
    """'same' keeps GIF as GIF and makes MP4 of everything else."""
    if requested == "same":
        return "gif" if info.is_gif else "mp4"
    if requested in ("mp4", "gif"):
        return requested
    raise FaceSwapError("invalid_request", f"output_format must be 'same', 'mp4' or 'gif', not {requested!r}.",
                        field="output_format")


@functools.cache
def h264_nvenc_opens(width: int, height: int) -> bool:
    """Whether NVIDIA's H.264 encoder really opens here at this size (the codec is compiled into PyAV's FFmpeg
    everywhere, but needs a GPU and driver). Cached per process; a failed open costs milliseconds."""
    try:
        context = av.CodecContext.create("h264_nvenc", "w")
        context.width, context.height, context.pix_fmt = width, height, "yuv420p"
        context.time_base = Fraction(1, 25)
        context.open()
        context.close()
    except (av.error.FFmpegError, ValueError, OSError) as exc:
        log.debug("h264_nvenc unavailable: %s", exc)
        return False
    return True


def choose_encoder(fmt: OutputFormat, requested: str, width: int, height: int) -> str:
    if fmt == "gif":
        return "gif"
    if requested not in ENCODER_CHOICES:
        raise FaceSwapError("invalid_request", f"encoder must be one of {', '.join(ENCODER_CHOICES)}, not "
                            f"{requested!r}.", field="encoder")
    even_w, even_h = _even(width), _even(height)
    if requested == "h264_nvenc" and not h264_nvenc_opens(even_w, even_h):
        raise FaceSwapError("invalid_request", "The h264_nvenc encoder is not available on this machine (it needs "
                            "an NVIDIA GPU with NVENC and its driver); use 'auto' or 'libx264'.", field="encoder")
    if requested == "auto":
        return "h264_nvenc" if h264_nvenc_opens(even_w, even_h) else "libx264"
    return requested


def _even(value: int) -> int:
    return value + (value & 1)


class VideoWriter:
    """Context manager that writes `DecodedFrame`s (upright, possibly modified images) into `output`.

    Use it from one thread; it reads the input's audio through its own file handle, so a decoder may run in
    another thread at the same time. The output starts with the first frame written and ends with the last one;
    the audio follows exactly that span, so `start`/`end` are kept for the record and need not be exact (a
    `frame_cap` that stops early is handled the same way).
    """

    def __init__(self, output: Path, info: VideoInfo, *, fmt: OutputFormat, start: float | None = None,
                 end: float | None = None, encoder: str = "auto", audio: bool = True) -> None:
        self.output = Path(output)
        self.info = info
        self.fmt: OutputFormat = fmt
        self.start, self.end = start, end
        self.encoder_name = choose_encoder(fmt, encoder, info.width, info.height)
        self.frames_written = 0
        self.audio_codec: str | None = None
        """The output's audio codec once the first frame is written (None: no audio)."""
        self.audio_remuxed = False
        self._with_audio = audio
        """False: video only (a segment of a long video; the stitch adds the audio once)."""
        self._temp = self.output.with_name(f".{self.output.stem}.{secrets.token_hex(8)}.{fmt}")
        self._extra_temp: Path | None = None
        self._video: av.VideoStream | None = None
        self._audio: AudioTrack | None = None
        self._gif: GifQuantizer | None = None
        self._closed = False
        self._shape: tuple[int, int, int] = (info.height, info.width, 3)
        self._first_pts = 0
        self._first_time = 0.0
        self._last_pts: int | None = None
        self._last_time: float | None = None
        self._last_duration = 1.0 / float(info.fps)
        self._durations: dict[int, int] = {}
        self.bytes_written = 0
        self._max_bytes = info.limits.max_output_bytes if info.limits is not None else 0
        try:
            options = {"movflags": "+faststart"} if fmt == "mp4" else {}
            self._container = av.open(str(self._temp), mode="w", format=fmt, options=options)
        except (av.error.FFmpegError, OSError) as exc:
            self._temp.unlink(missing_ok=True)
            raise FaceSwapError("internal_error", f"Cannot create the output file in '{self.output.parent}' "
                                f"({exc}).") from exc
        if fmt == "mp4":
            self._container.metadata["comment"] = PROVENANCE_NOTE
            self._container.metadata["description"] = PROVENANCE_NOTE

    # -- context manager ---------------------------------------------------------------------------------------

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    # -- writing -----------------------------------------------------------------------------------------------

    def write(self, frame: DecodedFrame) -> None:
        if self._closed:
            raise FaceSwapError("internal_error", "The output video was already finished or aborted.")
        try:
            if self._video is None:
                self._begin(frame)
            self._write(frame)
        except (av.error.FFmpegError, ValueError) as exc:
            raise FaceSwapError("internal_error", f"Encoding the output video failed at frame {frame.index} "
                                f"({exc}).") from exc
        self.frames_written += 1

    def _begin(self, frame: DecodedFrame) -> None:
        height, width = frame.image.shape[:2]
        self._shape = (height, width, 3)
        self._first_pts = frame.pts if frame.pts is not None else round(frame.time / self.info.time_base)
        self._first_time = frame.time
        if self.fmt == "gif":
            stream = self._container.add_stream("gif", rate=self.info.fps)
            stream.width, stream.height, stream.pix_fmt = width, height, "pal8"
            stream.codec_context.time_base = stream.time_base = GIF_TIME_BASE
            self._gif = GifQuantizer()
        else:
            stream = self._container.add_stream(self.encoder_name, rate=self.info.fps)
            stream.width, stream.height, stream.pix_fmt = _even(width), _even(height), "yuv420p"
            stream.codec_context.time_base = stream.time_base = self.info.time_base
            stream.options = dict(NVENC_OPTIONS if self.encoder_name == "h264_nvenc" else X264_OPTIONS)
            context = stream.codec_context
            if self.info.limits is not None and self.info.limits.encode_threads:
                context.thread_count = self.info.limits.encode_threads
            context.colorspace = context.color_primaries = context.color_trc = 1  # BT.709
            context.color_range = 1  # limited ("tv") range
            if self.info.has_audio and self._with_audio:
                self._audio = AudioTrack(self.info, self._container, window_start=frame.time)
                self.audio_codec, self.audio_remuxed = self._audio.codec, self._audio.remuxed
        self._video = stream

    def _write(self, frame: DecodedFrame) -> None:
        image = np.ascontiguousarray(frame.image)
        if image.shape != self._shape or image.dtype != np.uint8:
            raise FaceSwapError("internal_error", f"Frame {frame.index} is {image.dtype} {image.shape}; the output "
                                f"is uint8 {self._shape}.")
        duration = self._frame_duration(frame)
        if self._gif is not None:
            self._write_gif(frame, image)
        else:
            self._write_mp4(frame, image, duration)
        self._last_time, self._last_duration = frame.time, duration
        if self._audio is not None:
            self._audio.advance(frame.time - self._first_time)

    def _frame_duration(self, frame: DecodedFrame) -> float:
        if frame.duration:
            return frame.duration
        if self._last_time is not None and frame.time > self._last_time:
            return frame.time - self._last_time
        return 1.0 / float(self.info.fps)

    def _write_mp4(self, frame: DecodedFrame, image: Frame, duration: float) -> None:
        time_base = self.info.time_base
        pts = (frame.pts if frame.pts is not None else round(frame.time / time_base)) - self._first_pts
        pts = self._monotonic(pts, frame)
        if image.shape[0] & 1 or image.shape[1] & 1:
            image = cv2.copyMakeBorder(image, 0, image.shape[0] & 1, 0, image.shape[1] & 1, cv2.BORDER_REPLICATE)
        picture = av.VideoFrame.from_ndarray(image, format="bgr24").reformat(
            format="yuv420p", dst_colorspace="itu709", dst_color_range=1)
        picture.pts, picture.time_base = pts, time_base
        self._durations[pts] = max(round(duration / time_base), 1)
        self._mux_video(self._stream.encode(picture))

    def _mux_video(self, packets: list[av.Packet]) -> None:
        """Give each packet its frame's own duration (H.264 encoders stamp 1/fps), so a variable-frame-rate clip's
        last frame lasts as long as it did in the input."""
        for packet in packets:
            duration = self._durations.pop(packet.pts, None) if packet.pts is not None else None
            if duration:
                packet.duration = duration
        if len(self._durations) > _MAX_PENDING_DURATIONS:  # an encoder that rewrites pts: stop tracking, stay flat
            self._durations.clear()
        self._mux(packets)

    def _mux(self, packets: list[av.Packet]) -> None:
        self.bytes_written += sum(packet.size for packet in packets)
        if self._max_bytes and self.bytes_written > self._max_bytes:
            raise FaceSwapError("media_too_large", f"The output video grew past the {self._max_bytes / 2**20:,.0f} "
                                "MB this server writes for one job; swap a shorter part (start/end) or a smaller "
                                "video.", field="video")
        self._container.mux(packets)

    def _write_gif(self, frame: DecodedFrame, image: Frame) -> None:
        pts = self._monotonic(round((frame.time - self._first_time) * 100), frame)
        for picture in self._quantizer.convert(image, pts):
            self._mux(self._stream.encode(picture))

    @property
    def _stream(self) -> av.VideoStream:
        if self._video is None:
            raise FaceSwapError("internal_error", "The output video stream was not started.")
        return self._video

    @property
    def _quantizer(self) -> GifQuantizer:
        if self._gif is None:
            raise FaceSwapError("internal_error", "The GIF palette filter was not started.")
        return self._gif

    def _monotonic(self, pts: int, frame: DecodedFrame) -> int:
        if self._last_pts is not None and pts <= self._last_pts:
            log.debug("frame %d: pts %d not after %d; moved later by the writer", frame.index, pts, self._last_pts)
            pts = self._last_pts + 1
        self._last_pts = pts
        return pts

    # -- finishing ---------------------------------------------------------------------------------------------

    def close(self) -> None:
        """Flush, add the rest of the audio, and move the finished file to `output`."""
        if self._closed:
            return
        try:
            if self._video is None:
                raise FaceSwapError("invalid_request", "No frames were written: the chosen part of the video "
                                    "(start/end) holds no frames.", field="start")
            self._mux_video(self._video.encode(None))
            if self._audio is not None:
                end = (self._last_time or self._first_time) - self._first_time + self._last_duration
                self._audio.finish(end)
            self._container.close()
            final = self._temp
            if self.fmt == "gif":
                self._extra_temp = self._temp.with_name(f"{self._temp.stem}.tagged.gif")
                finish_gif(self._temp, self._extra_temp, PROVENANCE_NOTE, round(self._last_duration * 100))
                final = self._extra_temp
            os.replace(final, self.output)
            self._closed = True
            log.info("wrote %s: %d frames, %s, audio %s", self.output.name, self.frames_written,
                     self.encoder_name, self.audio_codec or "none")
        except FaceSwapError:
            self.abort()
            raise
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            self.abort()
            raise FaceSwapError("internal_error", f"Finishing the output video failed ({exc}).") from exc
        finally:
            self._remove_temps()

    def abort(self) -> None:
        """Stop and delete everything written so far; `output` is left as it was."""
        if self._audio is not None:
            self._audio.close()
        if not self._closed:
            try:
                self._container.close()
            except (av.error.FFmpegError, OSError, ValueError) as exc:
                log.debug("closing an aborted output: %s", exc)
        self._closed = True
        self._remove_temps()

    def _remove_temps(self) -> None:
        for path in (self._temp, self._extra_temp):
            if path is not None:
                path.unlink(missing_ok=True)
