"""Issue 10, points 4 and 7: limits hold while decoding, whatever the headers say (point 2: test_media_playlists).

* Headers that say nothing: an hour of 16×16 video in an MKV without a duration, or in a raw `.h264` stream, is
  stopped at the frame and duration limits (or refused as a format), fast, whatever the file's length.
* A stream that grows mid-way (64×64 → 6000×6000) is refused with bounded memory; a size change within the limit
  is scaled to the first frame's size.
* A job that runs past FACESWAP_JOB_TIMEOUT_S fails with `timeout` and leaves no file.

Figures (time to refuse, memory growth) are logged with `-s`/`-rP` as "FIGURE ...".
"""

from __future__ import annotations

import contextlib
import io
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from checks import expect, figure
from media_factory import ClipSpec, hanks_photo, row_layout, t1_patches, write_clip
from PIL import Image

from faceswap.config import Settings
from faceswap.errors import FaceSwapError
from faceswap.media import VideoWriter, probe_video, read_frames

FPS = 25
HOUR_FRAMES = 3600 * FPS


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media-guards")


@pytest.fixture(scope="module")
def settings(folder: Path) -> Settings:
    return Settings(data_dir=folder / "data", models_dir=folder / "models")


# -- memory -------------------------------------------------------------------------------------------------------

def _peak_rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


@contextlib.contextmanager
def peak_growth() -> Iterator[list[float]]:
    """Peak RSS growth (MB) of this process inside the block: the kernel's high-water mark is reset first."""
    Path("/proc/self/clear_refs").write_text("5")
    base = _peak_rss_mb()
    result: list[float] = []
    yield result
    result.append(_peak_rss_mb() - base)


# -- headers that say nothing (point 4) ---------------------------------------------------------------------------

def _gop_16x16() -> list[bytes]:
    """One 10 s GOP of 16×16 H.264 (an IDR frame with its parameter sets, then P frames), as Annex B packets."""
    encoder = av.CodecContext.create("libx264", "w")
    encoder.width = encoder.height = 16
    encoder.pix_fmt, encoder.time_base, encoder.gop_size = "yuv420p", Fraction(1, FPS), 10 * FPS
    encoder.options = {"preset": "ultrafast", "tune": "zerolatency"}
    packets: list[bytes] = []
    for index in range(10 * FPS):
        frame = av.VideoFrame.from_ndarray(np.full((16, 16, 3), index % 200, np.uint8), format="bgr24")
        frame.pts = index
        packets += [bytes(packet) for packet in encoder.encode(frame)]
    packets += [bytes(packet) for packet in encoder.encode(None)]
    return packets


def write_hour(path: Path, fmt: str, frames: int = HOUR_FRAMES) -> Path:
    """An hour (90,000 frames at 25 fps) of 16×16 video whose header gives no length: the GOP repeated, muxed as a
    live stream (MKV: no duration, no cues) or as a raw elementary stream."""
    gop = _gop_16x16()
    options = {"live": "1"} if fmt == "matroska" else {}
    with av.open(str(path), "w", format=fmt, options=options) as container:
        stream = container.add_stream("h264", rate=FPS)
        stream.width = stream.height = 16
        stream.pix_fmt = "yuv420p"
        for index in range(frames):
            packet = av.Packet(gop[index % len(gop)])
            packet.stream, packet.time_base = stream, Fraction(1, FPS)
            packet.pts = packet.dts = index
            packet.is_keyframe = index % len(gop) == 0
            container.mux(packet)
    return path


@pytest.fixture(scope="module")
def hour_mkv(folder: Path) -> Path:
    started = time.perf_counter()
    path = write_hour(folder / "hour.mkv", "matroska")
    figure(f"made a 1-hour 16x16 MKV without duration ({path.stat().st_size / 1e6:.1f} MB) in "
           f"{time.perf_counter() - started:.2f} s")
    return path


@pytest.fixture(scope="module")
def classic_runtime(settings: Settings):
    """A Runtime with the issue's limits (1,000 frames, 30 s) and the classic engine already loaded (loading it takes
    seconds on a busy machine)."""
    from faceswap.runtime import Runtime

    runtime = Runtime(settings.with_(max_frames=1000, max_duration_s=30.0))
    runtime.engine("classic")
    return runtime


@pytest.fixture
def capped(settings: Settings) -> Settings:
    return settings.with_(max_frames=1000, max_duration_s=30.0)


def test_an_hour_without_a_duration_header_passes_the_probe(hour_mkv: Path, capped: Settings) -> None:
    info = probe_video(hour_mkv, capped)
    assert info.duration == 0.0 and info.frame_count == 1, "the header really says nothing"


@pytest.mark.parametrize(("limits", "words", "most"), [
    ({"max_frames": 1000, "max_duration_s": 30.0}, ("past 30 s",), 30 * FPS),
    ({"max_frames": 1000, "max_duration_s": 7200.0}, ("more than 1,000 frames",), 1000),
])
def test_decoding_stops_at_the_cap_whatever_the_header_says(limits: dict, words: tuple[str, ...], most: int,
                                                            hour_mkv: Path, settings: Settings) -> None:
    info = probe_video(hour_mkv, settings.with_(**limits))
    seen: list[int] = []
    started = time.perf_counter()
    expect("media_too_large", lambda: seen.extend(frame.index for frame in read_frames(info)), "hour.mkv", *words)
    took = time.perf_counter() - started
    assert len(seen) == most, "every frame within the limit is read, none past it"
    assert took < 10, f"refusing took {took:.1f} s"
    figure(f"1-hour MKV, {limits}: refused after {len(seen)} of {HOUR_FRAMES} frames in {took:.2f} s")


@pytest.mark.slow
def test_the_pipeline_fails_the_job_with_media_too_large_and_no_file(hour_mkv: Path, folder: Path,
                                                                     classic_runtime) -> None:
    from faceswap.options import SwapOptions
    from faceswap.pipeline import run

    face = folder / "hanks.png"
    cv2.imwrite(str(face), hanks_photo())
    output = folder / "hour-out.mp4"
    options = SwapOptions.parse(video=str(hour_mkv), face=str(face), engine="classic")
    started = time.perf_counter()
    expect("media_too_large", lambda: run(options, classic_runtime, output), "past 30 s")
    took = time.perf_counter() - started
    assert not output.exists() and not list(folder.glob(".hour-out*")), "nothing is left behind"
    figure(f"1-hour MKV through the pipeline (classic engine): media_too_large after {took:.2f} s")


def test_a_raw_h264_stream_is_not_an_accepted_container(folder: Path, capped: Settings) -> None:
    raw = write_hour(folder / "long.h264", "h264", frames=10 * 60 * FPS)
    started = time.perf_counter()
    expect("unsupported_media", lambda: probe_video(raw, capped), "long.h264", "not in a format")
    figure(f"10-minute raw .h264 refused in {(time.perf_counter() - started) * 1000:.1f} ms")


def test_the_output_stops_at_its_byte_limit(folder: Path, settings: Settings) -> None:
    clip = write_clip(folder / "noisy.mp4", t1_patches(60)[:1], row_layout(1, 60, 160, 120),
                      ClipSpec(160, 120, fps=10, frames=20, audio=False))
    tight = settings.with_(max_output_bytes=4000)
    info = probe_video(clip, tight)
    output = folder / "noisy-out.mp4"
    with pytest.raises(FaceSwapError) as caught, VideoWriter(output, info, fmt="mp4") as writer:
        for frame in read_frames(info):
            noisy = np.random.default_rng(frame.index).integers(0, 255, frame.image.shape, np.uint8)
            writer.write(frame.__class__(frame.index, frame.pts, frame.time, noisy, frame.duration))
    assert caught.value.code == "media_too_large" and "output video grew past" in caught.value.message
    assert 4000 < writer.bytes_written < 200_000
    assert not output.exists() and not list(folder.glob(".noisy-out*"))


# -- size changes mid-stream (point 7) ----------------------------------------------------------------------------

def _jpeg(width: int, height: int, shade: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((height, width), shade, np.uint8)).save(buffer, "JPEG", quality=50)
    return buffer.getvalue()


def write_switch(path: Path, fmt: str, sizes: list[tuple[int, int, int]]) -> Path:
    """Motion-JPEG frames of the given (width, height, grey) in one stream whose header says the first size."""
    width, height, _ = sizes[0]
    with av.open(str(path), "w", format=fmt) as container:
        stream = container.add_stream("mjpeg", rate=10)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuvj420p"
        for index, (w, h, shade) in enumerate(sizes):
            packet = av.Packet(_jpeg(w, h, shade))
            packet.stream, packet.time_base = stream, Fraction(1, 10)
            packet.pts = packet.dts = index
            packet.is_keyframe = True
            container.mux(packet)
    return path


@pytest.mark.parametrize("fmt", ["avi", "matroska"])
def test_a_frame_that_grows_past_the_pixel_limit_is_refused_with_flat_memory(fmt: str, folder: Path,
                                                                             settings: Settings) -> None:
    path = write_switch(folder / f"grows.{'avi' if fmt == 'avi' else 'mkv'}", fmt,
                        [(64, 64, 60)] * 3 + [(6000, 6000, 200)] * 3)
    info = probe_video(path, settings)  # the header and the first frame say 64×64
    assert (info.width, info.height) == (64, 64)
    seen: list[tuple[int, ...]] = []
    with peak_growth() as growth:
        started = time.perf_counter()
        expect("media_too_large", lambda: seen.extend(frame.image.shape for frame in read_frames(info)),
               path.name, "near 0.3 s", f"{settings.max_pixels:,} pixels")
        took = time.perf_counter() - started
    assert seen == [(64, 64, 3)] * 3
    assert growth[0] < 40, f"memory grew by {growth[0]:.0f} MB (one 6000×6000 BGR frame is 108 MB)"
    figure(f"{fmt} 64x64 -> 6000x6000: media_too_large in {took * 1000:.0f} ms, peak RSS growth {growth[0]:.1f} MB")


def test_the_probe_checks_the_first_decoded_frame_not_only_the_header(folder: Path, settings: Settings) -> None:
    path = write_switch(folder / "lies.avi", "avi", [(6000, 6000, 200), (64, 64, 60)])
    _set_avi_header_size(path, 64, 64)
    with peak_growth() as growth:
        expect("media_too_large", lambda: probe_video(path, settings), "lies.avi", "pixels per frame")
    assert growth[0] < 40, f"memory grew by {growth[0]:.0f} MB"


def _set_avi_header_size(path: Path, width: int, height: int) -> None:
    """Make the AVI's stream header claim `width`×`height` (the BITMAPINFOHEADER after 'strf')."""
    data = bytearray(path.read_bytes())
    at = data.index(b"strf") + 8
    data[at + 4:at + 12] = width.to_bytes(4, "little") + height.to_bytes(4, "little")
    path.write_bytes(bytes(data))


def test_a_ts_that_switches_size_is_refused_before_any_frame(folder: Path, settings: Settings) -> None:
    """The finding itself: an MPEG-TS going from 64×64 to a size over the limit (MPEG-4 part 2, made here)."""
    path = folder / "switch.ts"
    with av.open(str(path), "w", format="mpegts") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width = stream.height = 64
        stream.pix_fmt = "yuv420p"
        pts = 0
        for width, count in ((64, 5), (2400, 1)):
            encoder = av.CodecContext.create("mpeg4", "w")
            encoder.width = encoder.height = width
            encoder.pix_fmt, encoder.time_base = "yuv420p", Fraction(1, 10)
            picture = av.VideoFrame.from_ndarray(np.full((width, width, 3), 90, np.uint8), format="bgr24")
            picture = picture.reformat(format="yuv420p")
            for _ in range(count):
                for packet in [*encoder.encode(picture), *encoder.encode(None)]:
                    packet.stream, packet.time_base, packet.pts, packet.dts = stream, Fraction(1, 10), pts, pts
                    container.mux(packet)
                    pts += 1
                encoder = _reopen(encoder)
    tight = settings.with_(max_pixels=1920 * 1080)
    with peak_growth() as growth:
        started = time.perf_counter()
        expect("unsupported_media", lambda: list(read_frames(probe_video(path, tight))), "switch.ts",
               "not in a format")
        took = time.perf_counter() - started
    figure(f".ts 64x64 -> 2400x2400: unsupported_media in {took * 1000:.1f} ms, peak RSS growth {growth[0]:.1f} MB")


def _reopen(encoder: av.CodecContext) -> av.CodecContext:
    """A fresh encoder of the same size (each picture is then a keyframe that carries its own headers)."""
    fresh = av.CodecContext.create("mpeg4", "w")
    fresh.width, fresh.height, fresh.pix_fmt, fresh.time_base = (encoder.width, encoder.height, "yuv420p",
                                                                 Fraction(1, 10))
    return fresh


def test_a_size_change_within_the_limit_is_scaled_to_the_first_frame(folder: Path, settings: Settings) -> None:
    path = write_switch(folder / "shrinks.avi", "avi", [(64, 64, 60)] * 3 + [(96, 48, 200)] * 3)
    info = probe_video(path, settings)
    frames = list(read_frames(info))
    assert [frame.image.shape for frame in frames] == [(64, 64, 3)] * 6
    assert [round(float(frame.image.mean()) / 10) for frame in frames] == [6, 6, 6, 20, 20, 20]
    output = folder / "shrinks-out.mp4"
    with VideoWriter(output, info, fmt="mp4") as writer:
        for frame in frames:
            writer.write(frame)
    again = probe_video(output, settings)
    assert (again.width, again.height, again.frame_count) == (64, 64, 6)


# -- job wall-clock limit (point 4) -------------------------------------------------------------------------------

@pytest.mark.slow
def test_a_job_past_its_time_limit_fails_with_timeout_and_leaves_no_file(folder: Path, classic_runtime) -> None:
    from faceswap.jobs import JobService
    from faceswap.options import SwapOptions

    frames = 100
    clip = write_clip(folder / "long.mp4", t1_patches(90)[:2], row_layout(2, 90, 320, 240),
                      ClipSpec(320, 240, fps=10, frames=frames, audio=False))
    face = folder / "timeout-face.png"
    cv2.imwrite(str(face), hanks_photo())
    limited = Settings(data_dir=folder / "timeout-data", models_dir=folder / "models", job_timeout_s=1.0)
    service = JobService(classic_runtime, limited)
    service.start()
    try:
        started = time.perf_counter()
        job = service.submit(SwapOptions.parse(video=str(clip), face=str(face), engine="classic"))
        done = service.wait(job.id, timeout=60)
        took = time.perf_counter() - started
    finally:
        service.close()
    assert done.status == "failed", done
    assert done.error["code"] == "timeout" and "1 s" in done.error["message"]
    assert done.frames_done < frames, "it stopped mid-way"
    assert done.output_file_id is None
    assert not [p for p in (limited.data_dir / "files").rglob("*") if p.is_file()], "no output file is kept"
    assert not list((limited.data_dir / "work").glob("*")), "no scratch file is left"
    assert took < 5
    figure(f"job timeout 1 s: failed with timeout {took:.2f} s after submit, at frame {done.frames_done} "
           f"of {frames}")


def test_the_time_limit_is_read_from_the_environment() -> None:
    read = Settings.from_env({"FACESWAP_JOB_TIMEOUT_S": "90", "FACESWAP_MAX_OUTPUT_MB": "2"})
    assert read.job_timeout_s == 90.0 and read.max_output_bytes == 2 * 1024 * 1024
    assert Settings.from_env({}).job_timeout_s == 3600.0
