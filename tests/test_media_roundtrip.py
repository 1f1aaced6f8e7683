"""Round trips through the media layer: probe → read_frames → VideoWriter, judged by an independent reader.

Clips come from `media_factory` (PyAV writing directly, Pillow for GIFs); outputs are read back with the factory's
own PyAV reader, with OpenCV (which applies display rotation by itself), and with Pillow for GIF details.
"""

from __future__ import annotations

import queue
import threading
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from media_factory import (
    ClipSpec,
    beep_onsets,
    probe,
    read_stamp,
    row_layout,
    t1_patches,
    write_clip,
    write_timed_clip,
)
from media_factory import read_frames as independent_frames
from PIL import Image

from faceswap.config import Settings
from faceswap.media import (
    PROVENANCE_NOTE,
    DecodedFrame,
    VideoWriter,
    planned_frame_count,
    probe_video,
    read_frames,
    resolve_output_format,
)

AAC_FRAME_S = 1024 / 48000
OPUS_FRAME_S = 960 / 48000
SIZE = (320, 180)


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("media-settings")
    return Settings(data_dir=root / "data", models_dir=root / "models")


@pytest.fixture(scope="module")
def patches() -> list[np.ndarray]:
    return t1_patches(100)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory, patches: list[np.ndarray]) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("media-clips")
    layout = row_layout(2, 100, *SIZE)
    made = {}
    for suffix in ("mp4", "mov", "mkv", "webm"):
        made[suffix] = write_clip(folder / f"clip.{suffix}", patches, layout, ClipSpec(*SIZE, fps=12, frames=24))
    made["gif"] = write_clip(folder / "clip.gif", patches, layout, ClipSpec(*SIZE, fps=10, frames=20, audio=False))
    return made


def transcode(info, output: Path, fmt: str, **kwargs) -> list[DecodedFrame]:
    """The pipeline's loop without the face swap: every decoded frame goes straight to the writer."""
    cap = kwargs.pop("frame_cap", 0)
    with VideoWriter(output, info, fmt=fmt, **kwargs) as writer:
        frames = list(read_frames(info, frame_cap=cap, **kwargs))
        for frame in frames:
            writer.write(frame)
    assert writer.frames_written == len(frames)
    return frames


def mean_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


@pytest.mark.parametrize("suffix", ["mp4", "mov", "mkv", "webm", "gif"])
def test_round_trip_keeps_frames_rate_audio_and_pixels(suffix: str, clips: dict[str, Path], settings: Settings,
                                                       tmp_path: Path) -> None:
    source = clips[suffix]
    info = probe_video(source, settings)
    fmt = resolve_output_format(info, "same")
    assert fmt == ("gif" if suffix == "gif" else "mp4")
    output = tmp_path / f"out.{fmt}"
    transcode(info, output, fmt)

    before, after = probe(source), probe(output)
    assert after.frames == before.frames
    assert after.fps == pytest.approx(before.fps, rel=1e-3)
    assert (after.width, after.height) == (before.width, before.height)
    assert after.codec == ("gif" if fmt == "gif" else "h264")
    if before.has_audio:
        assert after.has_audio
        audio_frame = OPUS_FRAME_S if info.audio_codec == "opus" else AAC_FRAME_S
        assert abs(after.audio_seconds - before.audio_seconds) <= audio_frame + 1e-6
    else:
        assert not after.has_audio
    assert PROVENANCE_NOTE in after.metadata.get("comment", "")

    original, copied = independent_frames(source), independent_frames(output)
    assert [read_stamp(frame) for frame in copied] == list(range(before.frames))
    diffs = [mean_abs_diff(a, b) for a, b in zip(original, copied, strict=True)]
    assert max(diffs) < 3.0, diffs
    assert sorted(p.name for p in tmp_path.iterdir()) == [output.name]  # the temp file was renamed, not left


def test_mp4_output_is_faststart_h264_with_tags(clips: dict[str, Path], settings: Settings, tmp_path: Path) -> None:
    output = tmp_path / "out.mp4"
    transcode(probe_video(clips["mkv"], settings), output, "mp4")
    data = output.read_bytes()
    assert 0 <= data.find(b"moov") < data.find(b"mdat")
    with av.open(str(output)) as container:
        assert container.metadata["comment"] == PROVENANCE_NOTE
        assert container.metadata["description"] == PROVENANCE_NOTE
        video = container.streams.video[0]
        assert video.codec_context.pix_fmt == "yuv420p"
        assert container.streams.audio[0].codec_context.name == "aac"  # PCM from MKV cannot go into MP4 as is


def test_audio_is_copied_without_reencoding_when_mp4_allows(clips: dict[str, Path], settings: Settings,
                                                           tmp_path: Path) -> None:
    info = probe_video(clips["mp4"], settings)
    with VideoWriter(tmp_path / "out.mp4", info, fmt="mp4") as writer:
        for frame in read_frames(info):
            writer.write(frame)
    assert writer.audio_remuxed and writer.audio_codec == "aac"
    with av.open(str(clips["mp4"])) as a, av.open(str(tmp_path / "out.mp4")) as b:
        source_packets = [bytes(p) for p in a.demux(a.streams.audio[0]) if p.size]
        copied_packets = [bytes(p) for p in b.demux(b.streams.audio[0]) if p.size]
    assert copied_packets == source_packets[:len(copied_packets)]
    assert len(copied_packets) >= len(source_packets) - 1


@pytest.mark.parametrize(("suffix", "codec", "expected", "remuxed"), [
    ("mkv", "aac", "aac", True),
    ("mkv", "libmp3lame", "mp3", True),
    ("mkv", "flac", "flac", True),
    ("mov", "pcm_s16le", "aac", False),
])
def test_audio_codecs_are_copied_or_reencoded_in_step(suffix: str, codec: str, expected: str, remuxed: bool,
                                                      patches: list[np.ndarray], settings: Settings,
                                                      tmp_path: Path) -> None:
    source = write_timed_clip(tmp_path / f"in.{suffix}", patches, row_layout(2, 100, *SIZE),
                              [i / 12 for i in range(24)], audio_codec=codec, beep_every=0.5)
    info = probe_video(source, settings)
    with VideoWriter(tmp_path / "out.mp4", info, fmt="mp4") as writer:
        for frame in read_frames(info):
            writer.write(frame)
    assert (writer.audio_codec, writer.audio_remuxed) == (expected, remuxed)
    assert abs(probe(tmp_path / "out.mp4").audio_seconds - probe(source).audio_seconds) <= AAC_FRAME_S + 1e-6
    assert beep_onsets(tmp_path / "out.mp4") == pytest.approx([0.0, 0.5, 1.0, 1.5], abs=0.015)


def test_gif_delays_and_comment_survive_gif_to_gif(patches: list[np.ndarray], settings: Settings,
                                                   tmp_path: Path) -> None:
    delays_ms = [100, 50, 200, 30, 70, 120, 40, 250]
    layout = row_layout(2, 100, *SIZE)
    from media_factory import background, render

    base = background(*SIZE)
    images = [Image.fromarray(render(patches, layout, i, *SIZE, base)[:, :, ::-1]) for i in range(len(delays_ms))]
    source = tmp_path / "irregular.gif"
    images[0].save(source, save_all=True, append_images=images[1:], duration=delays_ms, loop=0)

    info = probe_video(source, settings)
    output = tmp_path / "out.gif"
    transcode(info, output, resolve_output_format(info, "same"))

    with Image.open(output) as gif:
        assert gif.info.get("comment", b"").decode() == PROVENANCE_NOTE
        assert gif.info.get("loop") == 0
        seen = []
        for index in range(gif.n_frames):
            gif.seek(index)
            seen.append(gif.info["duration"])
    assert seen == delays_ms
    assert [read_stamp(frame) for frame in independent_frames(output)] == list(range(len(delays_ms)))


def test_mp4_to_gif_keeps_frames_and_length(clips: dict[str, Path], settings: Settings, tmp_path: Path) -> None:
    info = probe_video(clips["mp4"], settings)
    output = tmp_path / "out.gif"
    transcode(info, output, resolve_output_format(info, "gif"))
    with Image.open(output) as gif:
        delays = []
        for index in range(gif.n_frames):
            gif.seek(index)
            delays.append(gif.info["duration"])
    assert len(delays) == 24
    assert sum(delays) == pytest.approx(2000, abs=10)  # 12 fps in centiseconds: 8, 8, 9, …
    assert set(delays) <= {80, 90}
    copied = independent_frames(output)
    assert [read_stamp(frame) for frame in copied] == list(range(24))
    assert max(mean_abs_diff(a, b) for a, b in zip(independent_frames(clips["mp4"]), copied, strict=True)) < 6.0


def test_variable_frame_rate_keeps_every_timestamp(patches: list[np.ndarray], settings: Settings,
                                                   tmp_path: Path) -> None:
    times = [0.0, 0.05, 0.1, 0.3, 0.35, 0.8, 0.85, 0.9, 1.5, 1.55, 1.6, 2.0]
    source = write_timed_clip(tmp_path / "vfr.mp4", patches, row_layout(2, 100, *SIZE), times)
    info = probe_video(source, settings)
    transcode(info, tmp_path / "out.mp4", "mp4")
    with av.open(str(tmp_path / "out.mp4")) as container:
        decoded = [(float(f.pts * f.time_base), read_stamp(f.to_ndarray(format="bgr24")))
                   for f in container.decode(video=0)]
    assert [stamp for _, stamp in decoded] == list(range(len(times)))
    assert [t for t, _ in decoded] == pytest.approx(times, abs=1e-4)
    assert probe(tmp_path / "out.mp4").fps == pytest.approx(probe(source).fps, rel=1e-3)


def test_rotated_clip_displays_the_same_after_round_trip(patches: list[np.ndarray], settings: Settings,
                                                         tmp_path: Path) -> None:
    """A phone-style clip: stored 320×180 with a 90° display matrix, shown 180×320. OpenCV applies the matrix
    when reading, so it shows what a player shows."""
    width, height = 180, 320
    source = write_timed_clip(tmp_path / "portrait.mp4", patches, row_layout(1, 100, width, height),
                              [i / 12 for i in range(12)], width=width, height=height, display_rotation=90)
    info = probe_video(source, settings)
    assert (info.rotation, info.width, info.height) == (90, width, height)
    output = tmp_path / "out.mp4"
    frames = transcode(info, output, "mp4")
    assert frames[0].image.shape == (height, width, 3)

    shown_before, shown_after = cv2.VideoCapture(str(source)), cv2.VideoCapture(str(output))
    try:
        assert shown_before.get(cv2.CAP_PROP_ORIENTATION_META) == 90
        assert shown_after.get(cv2.CAP_PROP_ORIENTATION_META) == 0  # written upright, no flag
        for index in range(12):
            ok_a, before = shown_before.read()
            ok_b, after = shown_after.read()
            assert ok_a and ok_b
            assert after.shape == before.shape == (height, width, 3)
            assert read_stamp(after) == index
            assert mean_abs_diff(before, after) < 3.0
    finally:
        shown_before.release()
        shown_after.release()


@pytest.fixture(scope="module")
def beeping(tmp_path_factory: pytest.TempPathFactory, patches: list[np.ndarray]) -> dict[str, Path]:
    """4 s at 12 fps (48 frames) with a beep at every whole second: sound and picture can be checked in step."""
    folder = tmp_path_factory.mktemp("media-beeps")
    layout = row_layout(2, 100, *SIZE)
    times = [i / 12 for i in range(48)]
    return {suffix: write_timed_clip(folder / f"beep.{suffix}", patches, layout, times, beep_every=1.0,
                                     keyframe_every=12)
            for suffix in ("mp4", "mkv")}


TRIMS = [
    pytest.param({"start": 1.3}, id="start"),
    pytest.param({"start": 0.5, "end": 3.2}, id="start-end"),
    pytest.param({"end": 2.0}, id="end"),
    pytest.param({"frame_cap": 30}, id="cap"),
    pytest.param({"start": 3.4, "frame_cap": 5}, id="seek-and-cap"),
]


@pytest.mark.parametrize("suffix", ["mp4", "mkv"])
@pytest.mark.parametrize("trim", TRIMS)
def test_trim_and_cap_give_the_right_frames_and_audio(suffix: str, trim: dict, beeping: dict[str, Path],
                                                      settings: Settings, tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="faceswap.media")
    info = probe_video(beeping[suffix], settings)
    start, end, cap = trim.get("start", 0.0), trim.get("end", 4.0), trim.get("frame_cap", 0)
    expected = [i for i in range(48) if start - 1e-6 <= i / 12 < end - 1e-6]
    expected = expected[:cap] if cap else expected
    assert planned_frame_count(info, **trim) == len(expected)

    output = tmp_path / "out.mp4"
    frames = transcode(info, output, "mp4", **trim)
    assert [f.index for f in frames] == list(range(len(expected)))
    assert [read_stamp(f.image) for f in frames] == expected
    assert [read_stamp(frame) for frame in independent_frames(output)] == expected
    assert "decoding from the start" not in caplog.text  # a late start really seeked (keyframe every second)

    first, last = expected[0] / 12, (expected[-1] + 1) / 12
    after = probe(output)
    assert after.frames == len(expected)
    assert abs(after.audio_seconds - (last - first)) <= AAC_FRAME_S + 1e-6
    # In step: each beep sits where it was relative to the first frame. (A copied stream may end up to one audio
    # frame past the video, so a beep starting there may show; it is ignored.)
    expected_beeps = [b - first for b in (0.0, 1.0, 2.0, 3.0) if first - 1e-6 <= b < last - AAC_FRAME_S]
    heard = [onset for onset in beep_onsets(output) if onset < last - first - AAC_FRAME_S]
    assert heard == pytest.approx(expected_beeps, abs=0.015)


def test_odd_size_is_padded_by_one_pixel(patches: list[np.ndarray], settings: Settings, tmp_path: Path) -> None:
    from media_factory import background, render

    width, height = 161, 91
    layout = row_layout(1, 60, width, height)
    small = [cv2.resize(p, (60, 60)) for p in patches]
    base = background(width, height)
    images = [Image.fromarray(render(small, layout, i, width, height, base)[:, :, ::-1]) for i in range(6)]
    source = tmp_path / "odd.gif"
    images[0].save(source, save_all=True, append_images=images[1:], duration=100, loop=0)
    info = probe_video(source, settings)
    output = tmp_path / "odd.mp4"
    transcode(info, output, "mp4")
    original, copied = independent_frames(source), independent_frames(output)
    assert copied[0].shape == (height + 1, width + 1, 3)
    assert len(copied) == 6
    for a, b in zip(original, copied, strict=True):
        assert mean_abs_diff(a, b[:height, :width]) < 4.0
        assert mean_abs_diff(b[height], b[height - 1]) < 4.0  # the extra row repeats the edge
        assert mean_abs_diff(b[:, width], b[:, width - 1]) < 4.0


def test_decode_and_encode_in_separate_threads(clips: dict[str, Path], settings: Settings, tmp_path: Path) -> None:
    """The pipeline decodes in one thread and encodes in another; each side owns its own file handles."""
    info = probe_video(clips["mov"], settings)
    handoff: queue.Queue[DecodedFrame | None] = queue.Queue(maxsize=4)

    def decode() -> None:
        for frame in read_frames(info):
            handoff.put(frame)
        handoff.put(None)

    output = tmp_path / "threads.mp4"
    worker = threading.Thread(target=decode)
    worker.start()
    with VideoWriter(output, info, fmt="mp4") as writer:
        while (frame := handoff.get()) is not None:
            writer.write(frame)
    worker.join()
    assert [read_stamp(frame) for frame in independent_frames(output)] == list(range(24))
    assert probe(output).has_audio
