"""Plan a long video's split, and swap one segment of it.

`plan_split` runs once per job: the segment spans (cut at keyframes) and the people to swap, planned from the whole
video the way the one-pass run picks them — on `reference_frame` when one is given, else on the first frame that
shows enough faces — and kept as plain data (`SplitPlan.to_dict`) that travels in every segment task.

`process_segment` swaps the frames with time in [start, end) and encodes them video-only with the one-pass run's
encoder and time base. Its output's timestamps count from its own first frame; the segment's `first_pts` (input
time base) says where that frame sits, so the stitch restores the one-pass timestamps exactly. A segment that starts
after the frame the people were picked on follows them by identity from its first frame; the segment holding that
frame (and those before it) picks them as the one-pass run does, so the same frames are swapped.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from faceswap.config import Settings
from faceswap.engines.base import Engine, FaceRestorer
from faceswap.errors import FaceSwapError
from faceswap.faces.select import TargetSelector
from faceswap.faces.track import FaceTracker
from faceswap.media.decode import planned_frame_count, read_frames
from faceswap.media.encode import VideoWriter, resolve_output_format
from faceswap.media.images import load_image
from faceswap.media.inputs import resolve_input
from faceswap.media.probe import VideoInfo, probe_video
from faceswap.options import SwapOptions
from faceswap.pipeline import (
    _Encoder,
    check_engine_supports,
    inference_used,
    prepare_sources,
    quality_used,
    seed_from_reference_frame,
    swapped_frames,
)
from faceswap.report import Progress
from faceswap.runtime import Runtime
from faceswap.segments.keyframes import Span, keyframe_times, plan_spans
from faceswap.swap.session import Maskers, SwapSession

log = logging.getLogger(__name__)

ProgressCallback = Callable[[Progress], None]
CancelCheck = Callable[[], bool]


@dataclass(frozen=True)
class SplitPlan:
    spans: list[Span]
    seeds: list[dict[str, Any]] | None
    """The chosen people (`TargetSelector.identity_seeds`); None when nobody is picked (all faces, per frame)."""
    picked_at: float | None
    """Time of the frame the one-pass run picks the people on; None: picked before the run (reference frame)."""
    frames_total: int

    def to_dict(self) -> dict[str, Any]:
        return {"spans": [[span.start, span.end] for span in self.spans], "seeds": self.seeds,
                "picked_at": self.picked_at, "frames_total": self.frames_total}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SplitPlan:
        spans = [Span(index, start, end) for index, (start, end) in enumerate(data["spans"])]
        return cls(spans, data.get("seeds"), data.get("picked_at"), int(data.get("frames_total") or 0))


def splittable(options: SwapOptions, settings: Settings) -> bool:
    """Whether a job may be split at all (before its video is looked at): MP4 output of a whole-range job."""
    return settings.segment_after_s > 0 and options.frame_cap == 0 and options.output_format != "gif"


@dataclass
class _Setup:
    info: VideoInfo
    engine: Engine
    restorer: FaceRestorer | None
    maskers: Maskers | None
    sources: list[object] = field(default_factory=list)


def _setup(options: SwapOptions, runtime: Runtime, scratch: Path, *, sources: bool) -> _Setup:
    settings = runtime.settings
    video_path = resolve_input(options.video, scratch, settings, field="video")
    info = probe_video(video_path, settings)
    engine = runtime.engine(options.engine, swapper=options.swapper)
    check_engine_supports(options, engine)
    restorer = runtime.restorer(options.restore) if options.restore != "none" and sources else None
    maskers = runtime.maskers(options) if sources else None
    setup = _Setup(info, engine, restorer, maskers)
    if sources:
        face_image = load_image(resolve_input(options.face, scratch, settings, field="face"), settings)
        setup.sources = prepare_sources(face_image, options, engine)
    return setup


def plan_split(options: SwapOptions, runtime: Runtime, scratch: Path, *,
               should_cancel: CancelCheck | None = None) -> SplitPlan | None:
    """The split of a long video, or None when it runs in one pass: short, no keyframe to cut at, GIF, not a local
    file (URL inputs), or a video the probe refuses (the one-pass run then reports why)."""
    settings = runtime.settings
    video = Path(options.video)
    if not splittable(options, settings) or not video.is_file():
        return None
    try:
        info = probe_video(video, settings)
    except FaceSwapError:
        return None
    if info.is_gif or resolve_output_format(info, options.output_format) != "mp4":
        return None
    low = max(options.start or 0.0, 0.0)
    high = min(options.end, info.duration) if options.end is not None else info.duration
    if high - low <= settings.segment_after_s:
        return None
    spans = plan_spans(keyframe_times(info), start=options.start, end=options.end, duration=info.duration,
                       segment_s=max(settings.segment_s, 1.0))
    if len(spans) < 2:
        return None
    setup = _setup(options, runtime, scratch, sources=True)  # a bad face photo fails the job before any segment
    seeds, picked_at = _plan_people(info, options, setup.engine, should_cancel)
    total = planned_frame_count(info, start=options.start, end=options.end)
    log.info("%s: %.0f s in %d segments", info.path.name, high - low, len(spans))
    return SplitPlan(spans, seeds, picked_at, total)


def _plan_people(info: VideoInfo, options: SwapOptions, engine: Engine,
                 should_cancel: CancelCheck | None) -> tuple[list[dict[str, Any]] | None, float | None]:
    if options.selection != "track" or options.target_faces == "all":
        return None, None
    selector = TargetSelector(options, engine.analyzer)
    if options.reference_frame is not None:
        seed_from_reference_frame(selector, info, options, engine)
        return selector.identity_seeds(), None
    tracker = FaceTracker(engine.analyzer)
    frames, most = 0, 0
    with closing(read_frames(info, start=options.start, end=options.end)) as decoded:
        for frame in decoded:
            if should_cancel is not None and should_cancel():
                raise FaceSwapError("task_cancelled", "The swap was cancelled.")
            tracked = tracker.update(frame.image, frame.time)
            selector.select(frame.image, tracked)
            frames, most = frames + 1, max(most, len(tracked))
            if selector.started:
                return selector.identity_seeds(), frame.time
    if most == 0:
        raise FaceSwapError("target_face_not_found", f"No face was found in any of the {frames} frames of the video.",
                            field="video")
    if options.target_gender != "any":
        raise FaceSwapError("target_face_not_found", f"No {options.target_gender} face was found in the video.",
                            field="target_gender")
    raise FaceSwapError(
        "target_face_not_found", f"The video shows at most {most} face(s) at once, so target face index "
        f"{options.needed_target_count - 1} ({options.order} order) does not exist.", field="target_faces")


def process_segment(options: SwapOptions, runtime: Runtime, plan: SplitPlan, index: int, output: Path, scratch: Path,
                    *, progress: ProgressCallback | None = None,
                    should_cancel: CancelCheck | None = None) -> dict[str, Any]:
    """Swap segment `index` of `plan` into `output` (MP4, video only); returns its record (plain data) for the
    stitch: where its first frame sits, and per frame the faces found, whether one was swapped, and turned faces."""
    started = time.monotonic()
    span = plan.spans[index]
    setup = _setup(options, runtime, scratch, sources=True)
    info, engine = setup.info, setup.engine
    selector = TargetSelector(options, engine.analyzer)
    low = span.start if span.start is not None else max(options.start or 0.0, 0.0)
    if plan.seeds is not None and (plan.picked_at is None or low > plan.picked_at + 1e-6):
        selector.follow_seeds(plan.seeds)
    session = SwapSession.for_stream(options, engine.analyzer, engine.swapper, setup.sources,
                                     restorer=setup.restorer, selector=selector, tracker=FaceTracker(engine.analyzer),
                                     maskers=setup.maskers)
    total = planned_frame_count(info, start=span.start, end=span.end)
    faces: list[int] = []
    swapped: list[int] = []
    turned: list[int] = []
    record: dict[str, Any] = {"index": index}
    previous: float | None = None
    frames = read_frames(info, start=span.start, end=span.end)
    with VideoWriter(output, info, fmt="mp4", audio=False) as writer, \
            swapped_frames(session, engine, frames, should_cancel) as results, _Encoder(writer) as encoder:
        for frame, result in results:
            encoder.put(dataclasses.replace(frame, image=result.image))
            if not faces:
                record["first_pts"] = frame.pts if frame.pts is not None else round(frame.time / info.time_base)
                record["first_time"] = frame.time
            faces.append(result.faces)
            swapped.append(result.swapped)
            turned.append(int(bool(result.skipped_turned)))
            # The length the writer gives the last frame (VideoWriter._frame_duration), for the audio's end.
            record["last_time"] = frame.time
            record["last_duration"] = frame.duration or (
                frame.time - previous if previous is not None and frame.time > previous else 1.0 / float(info.fps))
            previous = frame.time
            if progress is not None:
                progress(Progress(len(faces), max(total, len(faces))))
        if not faces:
            raise FaceSwapError("unsupported_media", f"Segment {index + 1} of the video holds no frames; the video "
                                "may have changed or be damaged.", field="video")
        encoder.finish()
    record.update(frames=len(faces), faces=faces, swapped=swapped, turned=turned, engine=engine.name,
                  provider=engine.provider, elapsed_s=round(time.monotonic() - started, 3),
                  notices=[*engine.notices, *runtime.restorer_notices(options.restore),
                           *runtime.masker_notices(options)],
                  inference=inference_used(engine, setup.restorer), quality=quality_used(options, engine))
    return record
