"""The live recording: the last N seconds of swapped frames, kept JPEG-compressed in memory, saved as an MP4.

Frames are kept compressed (a 640×480 frame is ~40 KB as JPEG instead of 900 KB raw) and pruned by age and by
count, so a visitor streaming for an hour holds the same memory as one streaming for N seconds.
"""

from __future__ import annotations

import collections
import secrets
import threading
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from faceswap.errors import FaceSwapError
from faceswap.faces.types import Frame
from faceswap.media.encode import PROVENANCE_NOTE, choose_encoder

JPEG_QUALITY = 85
MAX_RECORD_FPS = 30
"""Frames kept per second of recording at most (a faster stream keeps every frame only up to this)."""
TIME_BASE = Fraction(1, 1000)
"""The recording's timestamps are the frames' arrival times in milliseconds (the stream's rate varies)."""


@dataclass(frozen=True)
class _Kept:
    time: float
    jpeg: bytes
    shape: tuple[int, int]


class Recorder:
    """A ring of the last `seconds` of frames; `save` writes them as an H.264 MP4 with their real timing."""

    def __init__(self, seconds: float) -> None:
        self.seconds = float(seconds)
        self._frames: collections.deque[_Kept] = collections.deque(maxlen=max(1, int(seconds * MAX_RECORD_FPS)))
        self._lock = threading.Lock()

    def add(self, frame: Frame, time: float) -> None:
        """Keep `frame` (BGR) shown at `time` (seconds, monotonic) and forget frames older than the window."""
        ok, jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            return
        with self._lock:
            if self._frames and time - self._frames[-1].time < 1.0 / MAX_RECORD_FPS:
                return
            self._frames.append(_Kept(time, jpeg.tobytes(), (frame.shape[0], frame.shape[1])))
            while self._frames and time - self._frames[0].time > self.seconds:
                self._frames.popleft()

    @property
    def frame_count(self) -> int:
        with self._lock:
            return len(self._frames)

    @property
    def bytes_held(self) -> int:
        with self._lock:
            return sum(len(kept.jpeg) for kept in self._frames)

    def clear(self) -> None:
        with self._lock:
            self._frames.clear()

    def save(self, folder: Path) -> Path:
        """Write the kept frames to a new MP4 in `folder` (atomically) and return its path."""
        with self._lock:
            kept = list(self._frames)
        if not kept:
            raise FaceSwapError("invalid_request", "Nothing is recorded yet: start the live swap and let it run a "
                                "few seconds before saving.")
        height, width = kept[-1].shape
        folder.mkdir(parents=True, exist_ok=True)
        output = folder / f"live-{secrets.token_hex(6)}.mp4"
        temp = output.with_name(f".{output.name}.part")
        try:
            self._write(temp, kept, width, height)
            temp.replace(output)
        except (av.error.FFmpegError, OSError) as exc:
            temp.unlink(missing_ok=True)
            raise FaceSwapError("internal_error", "The recording could not be written.") from exc
        return output

    @staticmethod
    def _write(path: Path, kept: list[_Kept], width: int, height: int) -> None:
        even_w, even_h = width + (width & 1), height + (height & 1)
        with av.open(str(path), mode="w", format="mp4", options={"movflags": "+faststart"}) as container:
            container.metadata["comment"] = PROVENANCE_NOTE
            container.metadata["description"] = PROVENANCE_NOTE
            stream = container.add_stream(choose_encoder("mp4", "auto", width, height), rate=MAX_RECORD_FPS)
            stream.width, stream.height, stream.pix_fmt = even_w, even_h, "yuv420p"
            stream.time_base = TIME_BASE
            start, last_pts = kept[0].time, -1
            for item in kept:
                image = cv2.imdecode(np.frombuffer(item.jpeg, np.uint8), cv2.IMREAD_COLOR)
                if image.shape[:2] != (even_h, even_w):
                    image = cv2.resize(image, (even_w, even_h), interpolation=cv2.INTER_AREA)
                frame = av.VideoFrame.from_ndarray(image, format="bgr24")
                pts = max(round((item.time - start) * 1000), last_pts + 1)
                frame.pts, frame.time_base, last_pts = pts, TIME_BASE, pts
                container.mux(stream.encode(frame))
            container.mux(stream.encode(None))
