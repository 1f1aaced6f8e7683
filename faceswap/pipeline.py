"""The one way through: `run(options, runtime, output)` swaps faces in a video and reports what it did.

Stages, streaming: decode → swap session (track → select → swap → restore, `swap.session`) → encode. Decoding
and encoding run in their own threads with small bounded queues (and the classic engine's analysis, track and
select, in a third, a frame ahead of its swap), so memory stays flat however long the video is,
and no frame ever touches the disk. Progress is reported per frame; a cancel request is honoured between frames.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from faceswap.engines.base import Engine, FaceRestorer
from faceswap.errors import FaceSwapError
from faceswap.faces.order import matches_gender, order_faces
from faceswap.faces.select import TargetSelector
from faceswap.faces.track import FaceTracker
from faceswap.faces.types import Frame
from faceswap.media.decode import DecodedFrame, planned_frame_count, read_frame, read_frames
from faceswap.media.encode import VideoWriter, resolve_output_format
from faceswap.media.images import load_image
from faceswap.media.inputs import resolve_input
from faceswap.media.probe import VideoInfo, probe_video
from faceswap.options import QUALITY_FIELDS, SwapOptions
from faceswap.report import FaceCounts, Progress, SwapReport, SwapResult
from faceswap.runtime import Runtime
from faceswap.swap.session import FrameAnalysis, FrameResult, Maskers, SwapSession

log = logging.getLogger(__name__)

ProgressCallback = Callable[[Progress], None]
CancelCheck = Callable[[], bool]

T = TypeVar("T")

QUEUE_DEPTH = 8
"""Frames buffered between decoding, processing and encoding: enough to overlap them, small enough to keep memory
flat (8 frames of 1080p are 50 MB)."""
ANALYSIS_DEPTH = 2
"""Frames buffered between the classic engine's analysis thread (track, select) and its swap (main thread)."""


def run(options: SwapOptions, runtime: Runtime, output: Path, *, progress: ProgressCallback | None = None,
        should_cancel: CancelCheck | None = None, workdir: Path | None = None) -> SwapResult:
    """Swap the chosen faces of `options.video` with the face(s) of `options.face` and write `output`.

    `output` is the file to write; without a suffix, `.mp4` or `.gif` is added by the output format. On any failure
    nothing is left at `output`. Raises FaceSwapError (catalog codes) for every failure.
    """
    started = time.monotonic()
    settings = runtime.settings
    with _scratch_dir(workdir) as scratch:
        # 1. Inputs: resolve, probe, check limits.
        video_path = resolve_input(options.video, scratch, settings, field="video")
        face_path = resolve_input(options.face, scratch, settings, field="face")
        info = probe_video(video_path, settings)
        face_image = load_image(face_path, settings)
        fmt = resolve_output_format(info, options.output_format)
        output = _output_path(Path(output), fmt)

        # 2. Engine and restorer (models load once per process, in the Runtime).
        engine = runtime.engine(options.engine, swapper=options.swapper)
        check_engine_supports(options, engine)
        restorer = runtime.restorer(options.restore) if options.restore != "none" else None
        maskers = runtime.maskers(options)

        # 3. Source faces, prepared once.
        sources = prepare_sources(face_image, options, engine)

        # 4. Stream the frames through the stages.
        total = planned_frame_count(info, start=options.start, end=options.end, frame_cap=options.frame_cap)
        stats = _swap_stream(info, options, engine, restorer, sources, output, fmt, total, progress, should_cancel,
                             maskers)

    report = SwapReport(
        engine=engine.name, provider=engine.provider, frames=stats.frames, frames_swapped=stats.frames_swapped,
        faces_per_frame=stats.face_counts(), width=info.width, height=info.height, fps=float(info.fps),
        duration_s=stats.duration_s, has_audio=info.has_audio and fmt == "mp4", output_format=fmt,
        restore=options.restore, elapsed_s=round(time.monotonic() - started, 3), frames_missed=stats.missed,
        notices=[*engine.notices, *runtime.restorer_notices(options.restore), *runtime.masker_notices(options)],
        frames_skipped_turned=stats.frames_skipped_turned, inference=inference_used(engine, restorer),
        quality=quality_used(options, engine), restore_blend=options.restore_blend)
    log.info("swapped %d/%d frames with the %s engine in %.1f s", stats.frames_swapped, stats.frames,
             engine.name, report.elapsed_s)
    return SwapResult(output=output, report=report)


def inference_used(engine: Engine, restorer: FaceRestorer | None) -> dict[str, object]:
    """How the models ran, for the report (empty for the classic engine)."""
    runner = getattr(restorer, "session", None)
    restored = {"restorer_precision": runner.precision} if hasattr(runner, "precision") else {}
    return {**engine.inference, **restored}


def prepare_sources(image: Frame, options: SwapOptions, engine: Engine) -> list[object]:
    """The swapper's prepared source for each entry of `options.source_faces`, in that order."""
    analyzer = engine.analyzer
    faces = analyzer.detect(image, None)
    if not faces:
        raise FaceSwapError("source_face_not_found", "No face was found in the face photo. Use a clear, frontal "
                            "photo where the face is at least about 80 pixels wide.", field="face")
    if options.source_gender != "any":
        faces = [analyzer.classify_gender(image, face) for face in faces]
        faces = [face for face in faces if matches_gender(face, options.source_gender)]
        if not faces:
            raise FaceSwapError("source_face_not_found",
                                f"The face photo shows no {options.source_gender} face.", field="source_gender")
    ordered = order_faces(faces, options.order)
    missing = [index for index in options.source_faces if index >= len(ordered)]
    if missing:
        raise FaceSwapError(
            "source_face_not_found", f"The face photo has {len(ordered)} face(s) (indices 0 to {len(ordered) - 1} "
            f"in {options.order} order), so source face index {missing[0]} does not exist.", field="source_faces")
    return [engine.swapper.prepare_source(image, analyzer.embed(image, ordered[index]))
            for index in options.source_faces]


def quality_used(options: SwapOptions, engine: Engine) -> dict[str, object]:
    """The quality options the run honoured, for the report (none for the classic engine, which refuses them)."""
    if engine.name == "classic":
        return {}
    used = options.model_dump(include=set(QUALITY_FIELDS), mode="json")
    return {name: used[name] for name in QUALITY_FIELDS}


def check_engine_supports(options: SwapOptions, engine: Engine) -> None:
    """Refuse options the engine that will run cannot honour (e.g. 'auto' fell back to classic)."""
    unsupported = options.classic_unsupported() if engine.name == "classic" else ""
    if unsupported:
        raise FaceSwapError(
            "invalid_request", f"The classic engine ran, and it cannot honour {unsupported}: it has no swap model. "
            "Install the neural models (`python -m faceswap models download`) and use engine 'neural', or leave "
            "these options at their defaults.", field=unsupported.partition("=")[0])
    gendered = options.target_gender != "any" or options.source_gender != "any"
    if gendered and not engine.analyzer.has_gender:
        raise FaceSwapError(
            "invalid_request", f"Gender filters need the neural engine's gender model, but the {engine.name} engine "
            "ran (it has none). Install the neural models (`python -m faceswap models download`) and use engine "
            "'neural', or set the gender filters to 'any'.", field="target_gender")


MISSED_RUNS = 64
"""The report lists at most this many runs of frames without a swapped face."""


class _Stats:
    def __init__(self) -> None:
        self.frames = 0
        self.frames_swapped = 0
        self.faces_min: int | None = None
        self.faces_max = 0
        self.faces_sum = 0
        self.duration_s = 0.0
        self.targets_seen = False
        self.missed: list[list[int]] = []
        """Runs [first, last] of output frames (0 = the first) on which no face was swapped."""
        self.frames_skipped_turned = 0

    def add(self, faces: int, swapped: int) -> None:
        self.frames += 1
        self.frames_swapped += swapped > 0
        if not swapped:
            frame = self.frames - 1
            if self.missed and self.missed[-1][1] == frame - 1:
                self.missed[-1][1] = frame
            elif len(self.missed) < MISSED_RUNS:
                self.missed.append([frame, frame])
        self.faces_min = faces if self.faces_min is None else min(self.faces_min, faces)
        self.faces_max = max(self.faces_max, faces)
        self.faces_sum += faces

    def face_counts(self) -> FaceCounts:
        mean = self.faces_sum / self.frames if self.frames else 0.0
        return FaceCounts(min=self.faces_min or 0, max=self.faces_max, mean=round(mean, 3))


def _swap_stream(info: VideoInfo, options: SwapOptions, engine: Engine, restorer: FaceRestorer | None,
                 sources: list[object], output: Path, fmt: str, total: int, progress: ProgressCallback | None,
                 should_cancel: CancelCheck | None, maskers: Maskers | None = None) -> _Stats:
    tracker = FaceTracker(engine.analyzer)
    selector = TargetSelector(options, engine.analyzer)
    if options.reference_frame is not None and options.selection == "track" and options.target_faces != "all":
        seed_from_reference_frame(selector, info, options, engine)
    session = SwapSession.for_stream(options, engine.analyzer, engine.swapper, sources, restorer=restorer,
                                     selector=selector, tracker=tracker, maskers=maskers)
    stats = _Stats()
    frames = read_frames(info, start=options.start, end=options.end, frame_cap=options.frame_cap)
    with VideoWriter(output, info, fmt=fmt, start=options.start, end=options.end) as writer, \
            swapped_frames(session, engine, frames, should_cancel) as swapped, \
            _Encoder(writer) as encoder:
        for frame, result in swapped:
            encoder.put(dataclasses.replace(frame, image=result.image))
            stats.add(result.faces, result.swapped)
            stats.frames_skipped_turned += bool(result.skipped_turned)
            stats.duration_s = frame.time - (options.start or 0.0)
            if progress is not None:
                progress(Progress(stats.frames, max(total, stats.frames)))
        if stats.frames == 0:
            raise FaceSwapError("invalid_request", "The chosen part of the video has no frames: check start, end "
                                "and the video's length.", field="start")
        if stats.frames_swapped == 0:
            raise _no_target_error(options, stats, selector)
        encoder.finish()
    log.debug("tracker: %d full searches, %d cuts; selector: %d embeddings", tracker.full_searches, tracker.cuts,
              selector.embeddings_computed)
    return stats


@contextmanager
def swapped_frames(session: SwapSession, engine: Engine, frames: Iterator[DecodedFrame],
                   should_cancel: CancelCheck | None) -> Iterator[Iterator[tuple[DecodedFrame, FrameResult]]]:
    """Each decoded frame with its swap, decoding in a thread of its own; stops with `task_cancelled` when asked.
    The classic engine's analysis (dlib, which lets go of the GIL) runs a frame ahead of its swap, in a thread of
    its own, so the two use both cores; the neural engine's onnxruntime sessions already use every core."""
    with _background(frames) as decoded, _analysis(session, decoded, engine.name == "classic") as analysed:
        def swap() -> Iterator[tuple[DecodedFrame, FrameResult]]:
            for frame, analysis in analysed:
                if should_cancel is not None and should_cancel():
                    raise FaceSwapError("task_cancelled", "The swap was cancelled.")
                yield frame, session.render(frame.image, analysis or session.analyse(frame.image, frame.time))

        yield swap()


@contextmanager
def _analysis(session: SwapSession, frames: Iterator[DecodedFrame],
              overlap: bool) -> Iterator[Iterator[tuple[DecodedFrame, FrameAnalysis | None]]]:
    """Each frame with its analysis, made in a thread of its own (`overlap`), or with None: the consumer then
    analyses it itself."""
    if not overlap:
        yield ((frame, None) for frame in frames)
        return
    analysed = ((frame, session.analyse(frame.image, frame.time)) for frame in frames)
    with _background(analysed, ANALYSIS_DEPTH, "analyse") as handed:
        yield handed


def seed_from_reference_frame(selector: TargetSelector, info: VideoInfo, options: SwapOptions,
                              engine: Engine) -> None:
    """Pick the people to follow on `options.reference_frame` (track mode), as a person picked them there."""
    index = options.reference_frame or 0
    if index >= info.frame_count:
        raise FaceSwapError("invalid_request", f"reference_frame {index} is past the end of the video "
                            f"({info.frame_count} frames).", field="reference_frame")
    image = read_frame(info, index)
    faces = engine.analyzer.detect(image, None)
    if not selector.seed(image, faces):
        raise FaceSwapError(
            "target_face_not_found", f"Frame {index} shows {len(faces)} face(s), so target face index "
            f"{options.needed_target_count - 1} ({options.order} order) does not exist there.", field="target_faces")


def _no_target_error(options: SwapOptions, stats: _Stats, selector: TargetSelector) -> FaceSwapError:
    if stats.faces_max == 0:
        return FaceSwapError("target_face_not_found", f"No face was found in any of the {stats.frames} frames of "
                             "the video.", field="video")
    if options.target_gender != "any":
        return FaceSwapError("target_face_not_found", f"No {options.target_gender} face was found in the video.",
                             field="target_gender")
    if not selector.started:
        return FaceSwapError(
            "target_face_not_found", f"The video shows at most {stats.faces_max} face(s) at once, so target face "
            f"index {options.needed_target_count - 1} ({options.order} order) does not exist.", field="target_faces")
    return FaceSwapError("target_face_not_found", "The chosen face was not found in any frame of the video.",
                         field="target_faces")


def _output_path(output: Path, fmt: str) -> Path:
    suffix = "." + fmt
    if not output.suffix:
        return output.with_name(output.name + suffix)
    if output.suffix.lower() != suffix:
        raise FaceSwapError("invalid_request", f"The output name {output.name!r} does not end in {suffix}, but the "
                            f"output is {fmt.upper()}: name it *{suffix} or choose the output format.", field="output")
    if not output.parent.is_dir():
        raise FaceSwapError("invalid_request", f"The output folder {str(output.parent)!r} does not exist.",
                            field="output")
    return output


@contextmanager
def _scratch_dir(workdir: Path | None) -> Iterator[Path]:
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
        yield workdir
        return
    with tempfile.TemporaryDirectory(prefix="faceswap-") as tmp:
        yield Path(tmp)


_DONE = object()


@contextmanager
def _background(frames: Iterator[T], depth: int = QUEUE_DEPTH, name: str = "decode") -> Iterator[Iterator[T]]:
    """Run an iterator (decoding; analysis) in a thread, handing its items over through a bounded queue; errors
    surface in the consumer."""
    handoff: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in frames:
                while not stop.is_set():
                    try:
                        handoff.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    break
            item = _DONE
        except BaseException as exc:  # handed to the consumer, which re-raises it
            item = exc
        finally:
            close = getattr(frames, "close", None)
            if close is not None:
                close()
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def consume() -> Iterator[T]:
        while True:
            item = handoff.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]

    thread = threading.Thread(target=produce, name=f"faceswap-{name}", daemon=True)
    thread.start()
    try:
        yield consume()
    finally:
        stop.set()
        thread.join()


class _Encoder:
    """Encode in a thread: `put` hands a frame over (blocking when the queue is full); `finish` waits for all."""

    def __init__(self, writer: VideoWriter) -> None:
        self._writer = writer
        self._queue: queue.Queue[object] = queue.Queue(maxsize=QUEUE_DEPTH)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, name="faceswap-encode", daemon=True)

    def __enter__(self) -> _Encoder:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop()

    def put(self, frame: DecodedFrame) -> None:
        self._raise_if_failed()
        self._queue.put(frame)

    def finish(self) -> None:
        self._stop()
        self._raise_if_failed()

    def _stop(self) -> None:
        if self._thread.is_alive():
            self._queue.put(_DONE)
            self._thread.join()

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is _DONE:
                return
            if self._error is None:
                try:
                    self._writer.write(item)  # type: ignore[arg-type]
                except BaseException as exc:  # re-raised in the producing thread
                    self._error = exc
