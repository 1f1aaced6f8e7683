"""Long videos in segments, on a real 40 s clip (two people from t1.jpg who change places at 25 s, a keyframe
every 2 s, AAC audio) with the split threshold lowered to 10 s: keyframes come from packets, the split job runs
through the job core's embedded executor, and its output has the one-pass run's frames, timestamps, duration and
audio, with the chosen person swapped on the same frames. Cancelling mid-way leaves no file behind.
"""

from __future__ import annotations

import time
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from media_factory import (
    hanks_photo,
    permuted_layout,
    read_frames,
    row_layout,
    slot_boxes,
    t1_patches,
    write_timed_clip,
)

from faceswap.config import Settings
from faceswap.jobs import JobService
from faceswap.media.probe import probe_video
from faceswap.options import SwapOptions
from faceswap.runtime import Runtime
from faceswap.segments.keyframes import Span, keyframe_times, plan_spans

FPS, SECONDS, WIDTH, HEIGHT, SIZE = 2, 40, 160, 120, 70
SWITCH = 50
"""From this frame (25 s, in the third segment) the two people have changed places."""
LAYOUT = permuted_layout(row_layout(2, SIZE, WIDTH, HEIGHT), SWITCH, [1, 0])


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("segments")
    times = [index / FPS for index in range(SECONDS * FPS)]
    clip = write_timed_clip(folder / "clip.mp4", t1_patches(SIZE)[:2], LAYOUT, times, width=WIDTH, height=HEIGHT,
                            keyframe_every=4)
    face = folder / "face.png"
    cv2.imwrite(str(face), hanks_photo())
    return clip, face


def settings_for(root: Path, **changes: object) -> Settings:
    return Settings(data_dir=root / "data", models_dir=root / "models").with_(**changes)


def test_keyframes_come_from_packets_and_segments_are_cut_on_them(media, tmp_path: Path) -> None:
    clip, _ = media
    info = probe_video(clip, settings_for(tmp_path))
    with av.open(str(clip)) as container:  # the decoder's own word on which pictures are keyframes
        decoded = [float(frame.pts * frame.time_base) for frame in container.decode(video=0) if frame.key_frame]
    keyframes = keyframe_times(info)
    assert keyframes == decoded and keyframes == [2.0 * n for n in range(20)]
    assert plan_spans(keyframes, start=None, end=None, duration=info.duration, segment_s=10) == [
        Span(0, None, 10.0), Span(1, 10.0, 20.0), Span(2, 20.0, 30.0), Span(3, 30.0, None)]
    # Cuts fall on the first keyframe at or after each multiple; none leaves a sliver at the end.
    assert [span.start for span in plan_spans(keyframes, start=None, end=None, duration=40.0, segment_s=7)] == [
        None, 8.0, 16.0, 24.0, 32.0]
    assert plan_spans(keyframes, start=3.0, end=21.0, duration=40.0, segment_s=8) == [
        Span(0, 3.0, 12.0), Span(1, 12.0, 21.0)]
    assert plan_spans([0.0], start=None, end=None, duration=40.0, segment_s=10) == [Span(0, None, None)]


def run_job(root: Path, options: SwapOptions, **changes: object) -> tuple[JobService, object]:
    settings = settings_for(root, **changes)
    service = JobService(Runtime(settings), settings)
    service.start()
    job = service.wait(service.submit(options).id, timeout=300)
    return service, job


def packets(path: Path) -> tuple[list[tuple[int, int]], list[tuple[int, int, bytes]], float]:
    with av.open(str(path)) as container:
        video = sorted((packet.pts, packet.duration) for packet in container.demux(video=0) if packet.size)
    with av.open(str(path)) as container:
        audio = [(packet.pts, packet.duration, bytes(packet)) for packet in container.demux(audio=0) if packet.size]
        duration = container.duration / 1e6
    return video, audio, duration


def swapped_slots(source: list[np.ndarray], output: list[np.ndarray]) -> list[tuple[bool, bool]]:
    """Per frame, whether each slot's face area changed from the input (was swapped)."""
    flags = []
    for index, (before, after) in enumerate(zip(source, output, strict=True)):
        boxes = slot_boxes(LAYOUT, index, SIZE)
        flags.append(tuple(float(np.abs(after[y1:y2, x1:x2].astype(int) - before[y1:y2, x1:x2]).mean()) > 8
                           for x1, y1, x2, y2 in boxes))
    return flags


@pytest.mark.slow  # the classic engine swaps 80 frames twice (one pass, then in segments): ~35 s of CPU
def test_a_split_job_matches_the_one_pass_run(media, tmp_path: Path) -> None:
    clip, face = media
    options = SwapOptions(video=str(clip), face=str(face), engine="classic", target_faces="1")
    single_service, single = run_job(tmp_path / "single", options, segment_after_s=0)
    try:
        assert single.status == "succeeded", single.error
        assert not single_service.store.children(single.id)
        single_out = single_service.file_path(single.output_file_id)
        single_frames = read_frames(single_out)
        single_packets = packets(single_out)
    finally:
        single_service.close()

    started = time.monotonic()
    service, job = run_job(tmp_path / "split", options, segment_after_s=10, segment_s=10)
    took = time.monotonic() - started
    try:
        assert job.status == "succeeded", job.error
        children = service.store.children(job.id)
        segments = [child for child in children if "segment" in child.meta]
        stitches = [child for child in children if child.meta.get("stitch")]
        assert len(segments) == 4 and len(stitches) == 1, "40 s at 10 s per segment, one stitch"
        assert all(child.status == "succeeded" and child.attempt == 1 for child in children)
        assert job.progress == 1.0 and job.frames_done == job.frames_total == 80
        output = service.file_path(job.output_file_id)
        # Only the output is left: the parts and the job's copies of its inputs are gone.
        assert [path.name for path in (service.settings.data_dir / "files").iterdir()] == [job.output_file_id]

        video, audio, duration = packets(output)
        assert video == single_packets[0], "same frames, timestamps and frame durations"
        assert audio == single_packets[1] and len(audio) > 1000, "the original audio, packet for packet"
        assert duration == single_packets[2] == pytest.approx(SECONDS, abs=0.05)

        same = ("frames", "frames_swapped", "frames_missed", "faces_per_frame", "duration_s", "has_audio",
                "engine", "width", "height", "fps")
        assert {key: job.report[key] for key in same} == {key: single.report[key] for key in same}
        assert job.report["frames"] == 80 and job.report["frames_swapped"] >= 76

        frames = read_frames(output)
        source = read_frames(clip)
        assert len(frames) == len(single_frames) == 80
        split_flags, single_flags = swapped_slots(source, frames), swapped_slots(source, single_frames)
        assert split_flags == single_flags, "the same faces are swapped on the same frames"
        # The chosen person (the second from the left at the start) is followed when the two change places.
        assert sum(flags == (False, True) for flags in split_flags[:SWITCH]) >= SWITCH - 2
        assert sum(flags == (True, False) for flags in split_flags[SWITCH:]) >= 80 - SWITCH - 2
        differences = [float(np.abs(a.astype(int) - b).mean()) for a, b in zip(frames, single_frames, strict=True)]
        assert max(differences) < 4.0, f"pixel difference to the one-pass output: {max(differences):.2f}"
        print(f"split job: {took:.1f} s; mean pixel difference {np.mean(differences):.2f}, max "
              f"{max(differences):.2f} (0-255)")
    finally:
        service.close()


@pytest.mark.slow  # plans the split and swaps a segment or two before the cancel: ~10 s on 2 cores
def test_cancelling_a_split_job_mid_way_removes_every_file(media, tmp_path: Path) -> None:
    clip, face = media
    options = SwapOptions(video=str(clip), face=str(face), engine="classic", target_faces="1")
    settings = settings_for(tmp_path, segment_after_s=10, segment_s=10)
    service = JobService(Runtime(settings), settings)
    service.start()
    try:
        job = service.submit(options)
        deadline = time.monotonic() + 120
        while not any(child.status == "succeeded" for child in service.store.children(job.id)):
            assert time.monotonic() < deadline, "no segment finished in time"
            time.sleep(0.1)
        running = service.get(job.id)
        assert running.status == "processing" and 0 < running.progress < 1
        assert service.cancel(job.id).status == "cancelled"
        while any(not child.finished for child in service.store.children(job.id)):
            assert time.monotonic() < deadline, "the segments did not stop"
            time.sleep(0.1)
        time.sleep(0.5)  # the stopped segment's worker drops its part after recording nothing
        children = service.store.children(job.id)
        assert {child.status for child in children} <= {"succeeded", "cancelled"}
        assert any(child.status == "cancelled" for child in children)
        assert service.get(job.id).status == "cancelled" and service.get(job.id).output_file_id is None
        assert list((settings.data_dir / "files").iterdir()) == [], "parts and input copies removed"
    finally:
        service.close()


@pytest.mark.slow  # loads the classic engine, then 5 tasks each preparing the source face: ~10 s on 2 quiet cores
def test_a_short_split_job_runs_through_the_embedded_executor(tmp_path: Path) -> None:
    """The job path in the fast suite: 8 s in 2 s segments (4 frames each), stitched, every file but the output
    gone."""
    times = [index / FPS for index in range(8 * FPS)]
    clip = write_timed_clip(tmp_path / "short.mp4", t1_patches(SIZE)[:2], row_layout(2, SIZE, WIDTH, HEIGHT), times,
                            width=WIDTH, height=HEIGHT, keyframe_every=2)
    face = tmp_path / "face.png"
    cv2.imwrite(str(face), hanks_photo())
    options = SwapOptions(video=str(clip), face=str(face), engine="classic", target_faces="1")
    service, job = run_job(tmp_path, options, segment_after_s=2, segment_s=2)
    try:
        assert job.status == "succeeded", job.error
        children = service.store.children(job.id)
        assert [child.meta.get("segment", "stitch") for child in children] == [0, 1, 2, 3, "stitch"]
        assert [child.report["frames"] for child in children[:4]] == [4, 4, 4, 4]
        assert job.report["frames"] == 16 and job.report["frames_swapped"] >= 14
        video, audio, duration = packets(service.file_path(job.output_file_id))
        assert [pts for pts, _ in video] == [round(t * 90000) for t in times] and audio
        assert duration == pytest.approx(8.0, abs=0.05)
        assert [path.name for path in (service.settings.data_dir / "files").iterdir()] == [job.output_file_id]
    finally:
        service.close()
