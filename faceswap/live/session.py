"""Live swapping: one `SwapSession` per visitor, fed frames from a camera, outside the job queue.

- `LiveHub` owns the open sessions (one per visitor id) and the cap on how many may run at once
  (`Settings.live_max`, FACESWAP_LIVE_MAX). A visitor over the cap is refused with `service_unavailable` and a
  sentence that says why. Sessions idle for `idle_s` (the camera stopped, the tab died without saying so) are closed
  the next time anyone opens one, and `close` frees a session at once (Stop, the tab closing).
- `LiveSession.process` never queues: a frame that arrives while the previous one is still being swapped is dropped
  (counted), so the delay between the camera and the picture stays one frame's work, however slow the engine.
  The browser side does the same (Gradio's webcam sends no new frame while the last one is pending).
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import cv2
import numpy as np

from faceswap.errors import FaceSwapError
from faceswap.faces.types import Frame
from faceswap.live.recorder import Recorder
from faceswap.media.images import load_image
from faceswap.options import EngineChoice, Restore, SwapOptions
from faceswap.pipeline import check_engine_supports, prepare_sources
from faceswap.swap.session import SwapSession

if TYPE_CHECKING:
    from faceswap.runtime import Runtime

log = logging.getLogger(__name__)

Targets = Literal["largest", "all"]
TARGETS: tuple[str, ...] = ("largest", "all")

IDLE_S = 20.0
"""A session that got no frame for this long is closed when another visitor needs the room."""
MAX_SIDE = 640
"""Camera frames larger than this (longest side) are scaled down first: live cost grows with the pixels."""
STATS_WINDOW_S = 2.0
"""fps and latency are averaged over the frames of the last few seconds."""


@dataclass(frozen=True)
class LiveConfig:
    """What a visitor chose for their live swap."""

    face: str
    """Path of the face photo."""
    source_face: int = 0
    """Which face of the photo (largest first)."""
    targets: Targets = "largest"
    """Swap the largest face in the camera picture (followed from frame to frame), or every face."""
    engine: EngineChoice = "auto"
    restore: Restore = "none"
    record_seconds: float = 10.0

    def options(self) -> SwapOptions:
        return SwapOptions.parse(video="camera", face=self.face, source_faces=[self.source_face],
                                 target_faces="all" if self.targets == "all" else [0], order="largest_first",
                                 engine=self.engine, restore=self.restore)


@dataclass(frozen=True)
class LiveStats:
    fps: float
    """Frames swapped per second, over the last few seconds."""
    latency_ms: float
    """Server time per frame (receive → swapped), averaged over the same window."""
    frames: int
    dropped: int
    """Frames that arrived while the previous one was still being swapped, and were skipped."""
    faces: int
    swapped: int
    """Faces found and swapped on the last frame."""

    def markdown(self) -> str:
        return (f"**{self.fps:.1f} fps** · {self.latency_ms:.0f} ms per frame · {self.swapped}/{self.faces} "
                f"face(s) swapped · {self.frames} frames, {self.dropped} dropped")


class _Meter:
    def __init__(self) -> None:
        self.window: collections.deque[tuple[float, float]] = collections.deque()
        self.frames = 0
        self.dropped = 0
        self.faces = 0
        self.swapped = 0

    def add(self, done: float, latency: float, faces: int, swapped: int) -> None:
        self.window.append((done, latency))
        while self.window and done - self.window[0][0] > STATS_WINDOW_S:
            self.window.popleft()
        self.frames += 1
        self.faces, self.swapped = faces, swapped

    def read(self) -> LiveStats:
        times = [done for done, _ in self.window]
        span = times[-1] - times[0] if len(times) > 1 else 0.0
        fps = (len(times) - 1) / span if span > 0 else 0.0
        latency = 1000 * sum(lat for _, lat in self.window) / len(self.window) if self.window else 0.0
        return LiveStats(round(fps, 2), round(latency, 1), self.frames, self.dropped, self.faces, self.swapped)


class LiveSession:
    """One visitor's live swap: frames in (RGB, as browsers give them), swapped frames out."""

    def __init__(self, visitor: str, config: LiveConfig, swap: SwapSession, *, engine: str, notices: list[str],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.visitor = visitor
        self.config = config
        self.engine = engine
        self.notices = notices
        self.recorder = Recorder(config.record_seconds)
        self._swap = swap
        self._clock = clock
        self._busy = threading.Lock()
        self._meter = _Meter()
        self.opened = clock()
        self.last_seen = self.opened
        self.closed = False

    def process(self, rgb: Frame) -> Frame | None:
        """The swapped frame (RGB), or None when the frame was dropped (busy, or the session is closed)."""
        if self.closed or not self._busy.acquire(blocking=False):
            self._meter.dropped += 1
            return None
        try:
            started = self._clock()
            self.last_seen = started
            bgr = _fit(np.ascontiguousarray(rgb[..., 2::-1]))
            result = self._swap.process(bgr, started - self.opened)
            done = self._clock()
            self.recorder.add(result.image, done)
            self._meter.add(done, done - started, result.faces, result.swapped)
            self.last_seen = done
            return np.ascontiguousarray(result.image[..., ::-1])
        finally:
            self._busy.release()

    def stats(self) -> LiveStats:
        return self._meter.read()

    def close(self) -> None:
        self.closed = True
        self.recorder.clear()


def _fit(frame: Frame) -> Frame:
    height, width = frame.shape[:2]
    scale = MAX_SIDE / max(height, width)
    if scale >= 1:
        return frame
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


class LiveHub:
    """The live sessions of this process, at most `max_sessions` at once."""

    def __init__(self, runtime: Runtime, *, max_sessions: int, idle_s: float = IDLE_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.runtime = runtime
        self.max_sessions = max_sessions
        self.idle_s = idle_s
        self._clock = clock
        self._lock = threading.Lock()
        self._sessions: dict[str, LiveSession | None] = {}
        """Open sessions by visitor; None while one is being set up (it holds its place under the cap)."""

    @property
    def active(self) -> int:
        with self._lock:
            return len(self._sessions)

    def open(self, visitor: str, config: LiveConfig) -> LiveSession:
        """A new session for `visitor` (replacing theirs, if any), or `service_unavailable` when the cap is
        reached; bad options and face photos raise their catalog errors."""
        options = config.options()
        self.close(visitor)
        with self._lock:
            self._reap_idle()
            if self.max_sessions <= 0:
                raise FaceSwapError("service_unavailable", "Live swapping is turned off on this server.")
            if len(self._sessions) >= self.max_sessions:
                raise FaceSwapError(
                    "service_unavailable", f"Live is full: all {self.max_sessions} live session(s) of this server "
                    "are in use. Try again in a minute.")
            self._sessions[visitor] = None
        try:
            session = self._build(visitor, config, options)
        except BaseException:
            with self._lock:
                self._sessions.pop(visitor, None)
            raise
        with self._lock:
            self._sessions[visitor] = session
        log.info("live session opened (%s engine); %d of %d in use", session.engine, self.active, self.max_sessions)
        return session

    def get(self, visitor: str) -> LiveSession | None:
        with self._lock:
            return self._sessions.get(visitor)

    def close(self, visitor: str) -> LiveSession | None:
        """Close `visitor`'s session, if any, and free its place; the closed session is returned (stats)."""
        with self._lock:
            session = self._sessions.get(visitor)
            if session is None:
                return None
            del self._sessions[visitor]
        session.close()
        log.info("live session closed after %d frames", session.stats().frames)
        return session

    def close_all(self) -> None:
        with self._lock:
            sessions = [session for session in self._sessions.values() if session is not None]
            self._sessions.clear()
        for session in sessions:
            session.close()

    def _reap_idle(self) -> None:
        now = self._clock()
        for visitor, session in list(self._sessions.items()):
            if session is not None and now - session.last_seen > self.idle_s:
                del self._sessions[visitor]
                session.close()
                log.info("live session closed: no frame for %.0f s", now - session.last_seen)

    def _build(self, visitor: str, config: LiveConfig, options: SwapOptions) -> LiveSession:
        runtime = self.runtime
        engine = runtime.engine(options.engine, swapper=options.swapper)
        check_engine_supports(options, engine)
        restorer = runtime.restorer(options.restore) if options.restore != "none" else None
        sources = prepare_sources(load_image(Path(config.face), runtime.settings), options, engine)
        swap = SwapSession.for_stream(options, engine.analyzer, engine.swapper, sources, restorer=restorer)
        notices = [*engine.notices, *runtime.restorer_notices(options.restore)]
        return LiveSession(visitor, config, swap, engine=engine.name, notices=notices, clock=self._clock)
