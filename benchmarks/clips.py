"""Benchmark clips: real faces (insightface's t1.jpg) on a panning background, at a fixed layout.

The layout is defined on SCRFD's 640-pixel-wide canvas (every benchmark size is landscape and at least 640 wide,
so a frame is letterboxed into the canvas by `640 / width`): face k of n is centred at
(640 * (k + 1) / (n + 1), FACE_Y) and spans FACE_SIZE canvas pixels, whatever the frame size. The detector cost
twin is built to report exactly these faces (see `cost_twins.py`), so the neural pipeline does the same per-frame
work as on a real video with n faces. Faces drift a few pixels and the background pans, so the encoder sees
motion as in real footage.

Photos come from `tests/media_factory.py` (the photos shipped in the insightface package), which is independent
of product code.
"""

from __future__ import annotations

import fractions
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import av
import cv2
import numpy as np

CANVAS = 640
FACE_Y = 180.0
FACE_SIZE = 112.0
PATCH_MARGIN = 1.6
"""A face patch is this many times the face box (1.6 keeps three neighbouring faces apart at 640 wide)."""
FPS = 25
DRIFT = 3.0
"""Canvas pixels faces wander around their slot."""
T1_FACES = (2, 3, 5)
"""Which of t1.jpg's six people fill the slots (left to right)."""
SIZES: dict[str, tuple[int, int]] = {"640x480": (640, 480), "720p": (1280, 720), "1080p": (1920, 1080)}
AUDIO_RATE = 48_000


@dataclass(frozen=True)
class FaceSlot:
    """Where a face sits on the 640-wide detector canvas (pixels)."""

    x: float
    y: float
    size: float


def face_slots(count: int) -> list[FaceSlot]:
    return [FaceSlot(CANVAS * (k + 1) / (count + 1), FACE_Y, FACE_SIZE) for k in range(count)]


def media_factory() -> ModuleType:
    """tests/media_factory.py, imported from the checkout (it has no dependency on product code)."""
    tests = Path(__file__).resolve().parent.parent / "tests"
    if str(tests) not in sys.path:
        sys.path.insert(0, str(tests))
    import media_factory as factory

    return factory


def frame_size(name: str) -> tuple[int, int]:
    if name not in SIZES:
        raise ValueError(f"unknown size {name!r}; choose from {', '.join(SIZES)}")
    return SIZES[name]


def write_source_photo(path: Path) -> Path:
    """The face to put in: Tom Hanks' photo from the insightface package."""
    cv2.imwrite(str(path), media_factory().hanks_photo())
    return path


def write_clip(path: Path, *, size: str, faces: int, seconds: float, fps: int = FPS, audio: bool = True) -> Path:
    """An H.264 MP4 (with an AAC tone when `audio`) of `faces` faces at `face_slots(faces)`, `seconds` long."""
    factory = media_factory()
    width, height = frame_size(size)
    scale = width / CANVAS
    photo = factory.t1_photo()
    slots = face_slots(faces)
    patches = [factory.face_patch(photo, factory.T1_FACE_BOXES[T1_FACES[k % len(T1_FACES)]],
                                  round(slot.size * scale * PATCH_MARGIN), margin=PATCH_MARGIN)
               for k, slot in enumerate(slots)]
    pan = round(width * 0.25)
    base = factory.background(width + pan, height)
    count = max(1, round(seconds * fps))
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "20", "preset": "veryfast"}
        tone = container.add_stream("aac", rate=AUDIO_RATE) if audio else None
        if tone is not None:
            tone.layout = "mono"
        for index in range(count):
            frame = _render(base, patches, slots, index, width, height, scale, pan, count)
            factory.stamp(frame, index)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
        if tone is not None:
            _write_tone(container, tone, count / fps)
    return path


def _render(base: np.ndarray, patches: list[np.ndarray], slots: list[FaceSlot], index: int, width: int,
            height: int, scale: float, pan: int, count: int) -> np.ndarray:
    offset = round(pan * index / max(count - 1, 1))
    frame = np.ascontiguousarray(base[:, offset:offset + width])
    for k, (patch, slot) in enumerate(zip(patches, slots, strict=True)):
        dx = DRIFT * math.sin(index / 5 + k)
        dy = DRIFT * math.cos(index / 7 + k)
        side = patch.shape[0]
        x0 = round((slot.x + dx) * scale - side / 2)
        y0 = round((slot.y + dy) * scale - side / 2)
        x1, y1 = max(x0, 0), max(y0, 0)
        x2, y2 = min(x0 + side, width), min(y0 + side, height)
        frame[y1:y2, x1:x2] = patch[y1 - y0:y2 - y0, x1 - x0:x2 - x0]
    return frame


def _write_tone(container: av.container.OutputContainer, stream: av.AudioStream, seconds: float) -> None:
    chunk = 1024
    total = int(AUDIO_RATE * seconds)
    for start in range(0, total, chunk):
        n = min(chunk, total - start)
        t = np.arange(start, start + n, dtype=np.float32) / AUDIO_RATE
        samples = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None, :]
        frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = AUDIO_RATE, start, fractions.Fraction(1, AUDIO_RATE)
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
