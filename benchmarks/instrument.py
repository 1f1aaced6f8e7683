"""Per-stage timing of the real pipeline, without changing product code: wrap methods inside this process.

`Instrument` patches, for the duration of a `with` block:
- the engine's objects: `analyzer.detect / embed / classify_gender`, `swapper.swap_crop` (the swap model's stage;
  `swapper.swap` for the classic engine), `restorer.restore`, and every
  onnxruntime session they hold (`session.run`, recorded as `<stage>.model`);
- the paste-back used by the swap session's stages and the restorers (`faces.paste.paste_back` as they import it), and
  for the classic engine its final blend (`blend.blend_into`), recorded as `paste`;
- `FaceTracker.update` and `TargetSelector.select` (their own work, e.g. the tracker's aligned look patches);
- `faceswap.pipeline.read_frames` (each `next()` on the decode thread: `decode`), `VideoWriter.write` (encode
  thread: `encode`) and `VideoWriter.close` (main thread: `encode-flush`, the encoder's buffered frames);
- `faceswap.pipeline.prepare_sources`: `setup` (the source photo's detect/embed are counted there, not per frame).

Times are exclusive: a stage's time excludes the timed stages it calls, so on the main thread the stages plus the
untimed remainder add up to the end-to-end time exactly. Decode and encode run on their own threads, overlapping
the main thread, and are reported as such.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

SETUP = "setup"


@dataclass
class StageStat:
    calls: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    """CPU time of the calling thread (time.thread_time): what the stage costs whatever the machine's load."""
    threads: set[str] = field(default_factory=set)


class StageClock:
    """Thread-safe exclusive timers keyed by stage name."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._local = threading.local()
        self.stats: dict[str, StageStat] = {}

    def reset(self) -> None:
        with self._lock:
            self.stats = {}

    def _stack(self) -> list[list[Any]]:
        stack = getattr(self._local, "stack", None)
        if stack is None:
            stack = self._local.stack = []
        return stack

    def record(self, stage: str, seconds: float, cpu_seconds: float = 0.0) -> None:
        with self._lock:
            stat = self.stats.setdefault(stage, StageStat())
            stat.calls += 1
            stat.seconds += seconds
            stat.cpu_seconds += cpu_seconds
            stat.threads.add(threading.current_thread().name)

    def wrap(self, stage: str, function: Callable[..., Any], *, model: bool = False) -> Callable[..., Any]:
        """`function` timed as `stage` (a model call is named after the stage that makes it: `swap.model`).

        Inside a `setup` call only model calls are timed (`setup.model`): the source photo's work is setup."""

        def timed(*args: Any, **kwargs: Any) -> Any:
            stack = self._stack()
            if stack and stack[-1][0] == SETUP and not model:
                return function(*args, **kwargs)
            name = f"{stack[-1][0] if stack else 'other'}.model" if model else stage
            stack.append([name, 0.0, 0.0])
            started, cpu_started = time.perf_counter(), time.thread_time()
            try:
                return function(*args, **kwargs)
            finally:
                elapsed, cpu = time.perf_counter() - started, time.thread_time() - cpu_started
                _, children, cpu_children = stack.pop()
                if stack:
                    stack[-1][1] += elapsed
                    stack[-1][2] += cpu
                self.record(name, elapsed - children, cpu - cpu_children)

        return timed

    def wrap_iterator(self, stage: str, iterator: Iterator[Any]) -> Iterator[Any]:
        """Time each `next()` of `iterator` as `stage`."""
        while True:
            started, cpu_started = time.perf_counter(), time.thread_time()
            try:
                item = next(iterator)
            except StopIteration:
                self.record(stage, time.perf_counter() - started, time.thread_time() - cpu_started)
                return
            self.record(stage, time.perf_counter() - started, time.thread_time() - cpu_started)
            yield item


class _TimedSession:
    """An onnxruntime session whose `run` is timed; everything else is the session's own."""

    def __init__(self, session: Any, run: Callable[..., Any]) -> None:
        self._session = session
        self.run = run

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)


class Instrument:
    """Patches timers into the pipeline and the given engine/restorer objects; undoes everything on exit."""

    def __init__(self, clock: StageClock, engine: Any, restorer: Any | None = None) -> None:
        self.clock = clock
        self.engine = engine
        self.restorer = restorer
        self._undo: list[tuple[Any, str, Any]] = []

    def _patch(self, owner: Any, name: str, value: Any) -> None:
        self._undo.append((owner, name, vars(owner).get(name, _MISSING)))
        setattr(owner, name, value)

    def _time_method(self, owner: Any, name: str, stage: str) -> None:
        self._patch(owner, name, self.clock.wrap(stage, getattr(owner, name)))

    def _time_sessions(self, holder: Any) -> None:
        session = getattr(holder, "session", None)
        if session is not None and hasattr(session, "run"):
            self._patch(holder, "session", _TimedSession(session, self.clock.wrap("", session.run, model=True)))

    def __enter__(self) -> Instrument:
        import faceswap.pipeline as pipeline
        from faceswap.faces.select import TargetSelector
        from faceswap.faces.track import FaceTracker
        from faceswap.media.encode import VideoWriter

        clock = self.clock
        analyzer, swapper = self.engine.analyzer, self.engine.swapper
        for name, stage in (("detect", "detect"), ("embed", "embed"), ("classify_gender", "gender")):
            self._time_method(analyzer, name, stage)
        if hasattr(analyzer, "follow"):  # the classic tracker's landmark step between detections
            self._time_method(analyzer, "follow", "follow")
        # swap_crops: a frame's faces (or one face's pixel-boost phases) in one call when batched
        method = next(name for name in ("swap_crops", "swap_crop", "swap") if hasattr(swapper, name))
        self._time_method(swapper, method, "swap")
        for part in ("detector", "embedder", "genderage"):
            if hasattr(analyzer, part):
                self._time_sessions(getattr(analyzer, part))
        self._time_sessions(swapper)
        if self.restorer is not None:
            self._time_method(self.restorer, "restore", "restore")
            self._time_sessions(self.restorer)
        self._time_paste()
        self._patch(FaceTracker, "update", clock.wrap("track", FaceTracker.update))
        self._patch(TargetSelector, "select", clock.wrap("select", TargetSelector.select))
        self._patch(pipeline, "prepare_sources", clock.wrap(SETUP, pipeline.prepare_sources))
        read_frames = pipeline.read_frames
        self._patch(pipeline, "read_frames",
                    lambda *args, **kwargs: clock.wrap_iterator("decode", read_frames(*args, **kwargs)))
        self._patch(VideoWriter, "write", clock.wrap("encode", VideoWriter.write))
        self._patch(VideoWriter, "close", clock.wrap("encode-flush", VideoWriter.close))
        return self

    def _time_paste(self) -> None:
        """Paste-back as `paste`; the classic swap's warp, masks and colour match as `swap:<part>`."""
        import importlib

        parts = (("faceswap.swap.stages", "paste_back", "paste"),
                 ("faceswap.restore.restorer", "paste_back", "paste"),
                 ("faceswap.engines.classic.blend", "blend_into", "paste"),
                 ("faceswap.engines.classic.blend", "face_masks", "swap:masks"),
                 ("faceswap.engines.classic.warp", "warp_maps", "swap:warp"),
                 ("faceswap.engines.classic.color", "match_colors", "swap:color"))
        for module_name, function, stage in parts:
            module = importlib.import_module(module_name)
            if hasattr(module, function):  # the engines change; a renamed helper is just not broken out
                self._patch(module, function, self.clock.wrap(stage, getattr(module, function)))

    def __exit__(self, *exc_info: object) -> None:
        while self._undo:
            owner, name, original = self._undo.pop()
            if original is _MISSING:
                delattr(owner, name)
            else:
                setattr(owner, name, original)


_MISSING = object()
