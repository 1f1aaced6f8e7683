"""Probing, limits, bad inputs, single frames, face photos and abort: every failure is a catalog error with a
sentence naming the file, never a PyAV, OpenCV or Pillow exception."""

from __future__ import annotations

from contextlib import closing
from dataclasses import replace
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from checks import expect
from media_factory import (
    ClipSpec,
    hanks_photo,
    read_stamp,
    row_layout,
    t1_patches,
    t1_photo,
    write_clip,
    write_timed_clip,
)
from PIL import Image

from faceswap.config import Settings
from faceswap.media import (
    VideoWriter,
    load_image,
    planned_frame_count,
    probe_video,
    read_frame,
    read_frames,
)

SIZE = (320, 180)


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("media-input-settings")
    return Settings(data_dir=root / "data", models_dir=root / "models")


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media-inputs")


@pytest.fixture(scope="module")
def clip(folder: Path) -> Path:
    """5 s at 12 fps (60 frames), a keyframe every second, moov at the end (PyAV's default), with audio."""
    return write_timed_clip(folder / "clip.mp4", t1_patches(100), row_layout(2, 100, *SIZE),
                            [i / 12 for i in range(60)], keyframe_every=12)


@pytest.fixture(scope="module")
def faststart_clip(clip: Path, folder: Path) -> Path:
    """The same clip remuxed with its index first, like a web-ready upload."""
    target = folder / "faststart.mp4"
    with av.open(str(clip)) as source, av.open(str(target), "w", options={"movflags": "+faststart"}) as out:
        streams = {s.index: out.add_stream_from_template(s) for s in source.streams}
        for packet in source.demux():
            if packet.dts is not None:
                packet.stream = streams[packet.stream.index]
                out.mux(packet)
    data = target.read_bytes()
    assert data.find(b"moov") < data.find(b"mdat")
    return target


# -- probing -----------------------------------------------------------------------------------------------------

def test_probe_reads_the_facts(clip: Path, settings: Settings) -> None:
    info = probe_video(clip, settings)
    assert info.format_name == "mov,mp4,m4a,3gp,3g2,mj2" and not info.is_gif
    assert (info.codec, info.width, info.height, info.rotation) == ("h264", 320, 180, 0)
    assert info.fps == 12 and info.frame_count == 60 and info.duration == pytest.approx(5.0)
    assert info.has_audio and info.audio_codec == "aac"


def test_missing_file_is_invalid_request(folder: Path, settings: Settings) -> None:
    expect("invalid_request", lambda: probe_video(folder / "nope.mp4", settings), "nope.mp4", "does not exist")


def test_empty_file(folder: Path, settings: Settings) -> None:
    empty = folder / "empty.mp4"
    empty.write_bytes(b"")
    expect("unsupported_media", lambda: probe_video(empty, settings), "empty.mp4", "empty (0 bytes)")


def test_text_file_named_mp4(folder: Path, settings: Settings) -> None:
    text = folder / "notes.mp4"
    text.write_text("This is not a video, just some notes.\n" * 20)
    expect("unsupported_media", lambda: probe_video(text, settings), "notes.mp4")


@pytest.mark.parametrize("which", ["clip", "faststart_clip"])
def test_mp4_cut_in_half(which: str, request: pytest.FixtureRequest, folder: Path, settings: Settings) -> None:
    whole: Path = request.getfixturevalue(which)
    half = folder / f"half-{whole.name}"
    data = whole.read_bytes()
    half.write_bytes(data[: len(data) // 2])
    expect("unsupported_media", lambda: probe_video(half, settings), half.name)


def test_audio_only_file(folder: Path, settings: Settings) -> None:
    sound = folder / "voice.m4a"
    with av.open(str(sound), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=48000)
        stream.layout = "mono"
        for index in range(20):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 48000, index * 1024
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    expect("unsupported_media", lambda: probe_video(sound, settings), "voice.m4a", "no video")


def test_still_image_is_not_a_video(folder: Path, settings: Settings) -> None:
    photo = folder / "photo.jpg"
    cv2.imwrite(str(photo), t1_photo())
    expect("unsupported_media", lambda: probe_video(photo, settings), "still image")


@pytest.mark.parametrize(("limit", "value", "words"), [
    ("max_upload_bytes", 10_000, ("9.8 KB",)),
    ("max_duration_s", 4.0, ("5.0 s", "4 s")),
    ("max_pixels", 320 * 180 - 1, ("320×180",)),
    ("max_frames", 59, ("60 frames",)),
])
def test_limits(limit: str, value: float, words: tuple[str, ...], clip: Path, settings: Settings) -> None:
    tight = replace(settings, **{limit: value})
    expect("media_too_large", lambda: probe_video(clip, tight), "clip.mp4", *words)
    probe_video(clip, settings)  # within the default limits the same file is fine


def test_damaged_mid_stream_raises_while_reading(folder: Path, settings: Settings) -> None:
    """An MKV cut short opens and its first frame decodes, so the probe passes; reading stops with a clear error."""
    whole = write_clip(folder / "long.mkv", t1_patches(100), row_layout(2, 100, *SIZE),
                       ClipSpec(*SIZE, fps=12, frames=60, audio=False))
    cut = folder / "cut.mkv"
    data = whole.read_bytes()
    cut.write_bytes(data[: len(data) * 6 // 10])
    info = probe_video(cut, settings)
    seen = []
    error = expect("unsupported_media", lambda: seen.extend(read_frames(info)), "cut.mkv", "damaged or incomplete")
    assert 0 < len(seen) < 60
    assert f"{seen[-1].time:.1f}"[:2] in error.message  # says where


# -- frames ------------------------------------------------------------------------------------------------------

def test_read_frame_by_index(clip: Path, settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="faceswap.media")
    info = probe_video(clip, settings)
    for index in (0, 7, 50, 59):  # 50 and 59 are past the point where it seeks instead of decoding from the start
        frame = read_frame(info, index)
        assert frame.shape == (180, 320, 3) and frame.flags["C_CONTIGUOUS"]
        assert read_stamp(frame) == index
    assert "decoding from the start" not in caplog.text
    expect("invalid_request", lambda: read_frame(info, 60), "60 frames")
    expect("invalid_request", lambda: read_frame(info, -1))


def test_read_frames_stops_cleanly_when_closed_early(clip: Path, settings: Settings) -> None:
    info = probe_video(clip, settings)
    with closing(read_frames(info, start=1.0)) as frames:
        first = next(frames)
    assert (first.index, read_stamp(first.image), first.time) == (0, 12, pytest.approx(1.0))
    assert planned_frame_count(info) == 60
    assert planned_frame_count(info, start=1.0, end=2.0, frame_cap=5) == 5


def test_rotated_frames_come_out_upright(folder: Path, settings: Settings) -> None:
    source = write_timed_clip(folder / "turned.mp4", t1_patches(80), row_layout(1, 80, 320, 180),
                              [i / 10 for i in range(5)], display_rotation=270, audio_codec=None)
    info = probe_video(source, settings)
    assert (info.rotation, info.width, info.height) == (270, 320, 180)
    shown = cv2.VideoCapture(str(source))
    try:
        for frame in read_frames(info):
            ok, player_view = shown.read()
            assert ok and frame.image.shape == player_view.shape == (180, 320, 3)
            assert read_stamp(frame.image) == frame.index
            assert np.abs(frame.image.astype(int) - player_view).mean() < 1.0
    finally:
        shown.release()


# -- writer ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["mp4", "gif"])
def test_abort_leaves_nothing_and_keeps_the_old_output(fmt: str, clip: Path, settings: Settings,
                                                       tmp_path: Path) -> None:
    info = probe_video(clip, settings)
    output = tmp_path / f"result.{fmt}"
    output.write_bytes(b"previous result")
    with pytest.raises(RuntimeError, match="stop here"), VideoWriter(output, info, fmt=fmt) as writer:
        for frame in read_frames(info, frame_cap=5):
            writer.write(frame)
        raise RuntimeError("stop here")
    assert output.read_bytes() == b"previous result"
    assert sorted(p.name for p in tmp_path.iterdir()) == [output.name]

    writer = VideoWriter(tmp_path / f"other.{fmt}", info, fmt=fmt)
    writer.write(next(read_frames(info)))
    writer.abort()
    assert sorted(p.name for p in tmp_path.iterdir()) == [output.name]


def test_writer_without_frames_fails_cleanly(clip: Path, settings: Settings, tmp_path: Path) -> None:
    info = probe_video(clip, settings)
    output = tmp_path / "empty.mp4"

    def write_nothing() -> None:
        with VideoWriter(output, info, fmt="mp4"):
            pass

    expect("invalid_request", write_nothing, "no frames")
    assert list(tmp_path.iterdir()) == []


def test_encoder_choice(clip: Path, settings: Settings, tmp_path: Path) -> None:
    from faceswap.media.encode import h264_nvenc_opens

    info = probe_video(clip, settings)
    auto = VideoWriter(tmp_path / "a.mp4", info, fmt="mp4")
    auto.abort()
    nvenc = h264_nvenc_opens(320, 180)
    assert auto.encoder_name == ("h264_nvenc" if nvenc else "libx264")
    if not nvenc:
        expect("invalid_request", lambda: VideoWriter(tmp_path / "b.mp4", info, fmt="mp4", encoder="h264_nvenc"),
               "h264_nvenc")
    expect("invalid_request", lambda: VideoWriter(tmp_path / "c.mp4", info, fmt="mp4", encoder="divx"), "divx")
    gif = VideoWriter(tmp_path / "d.gif", info, fmt="gif")
    gif.abort()
    assert gif.encoder_name == "gif"
    assert list(tmp_path.iterdir()) == []


# -- face photos -------------------------------------------------------------------------------------------------

def test_load_image_matches_opencv(folder: Path, settings: Settings) -> None:
    path = folder / "t1.png"
    cv2.imwrite(str(path), t1_photo())
    image = load_image(path, settings)
    assert image.dtype == np.uint8 and image.flags["C_CONTIGUOUS"]
    assert np.array_equal(image, t1_photo())


def test_load_image_applies_exif_orientation(folder: Path, settings: Settings) -> None:
    photo = hanks_photo()
    path = folder / "phone.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display", as phones write portrait shots
    Image.fromarray(photo[:, :, ::-1]).save(path, exif=exif, quality=95)
    image = load_image(path, settings)
    assert image.shape == (photo.shape[1], photo.shape[0], 3)
    assert np.abs(image.astype(int) - np.rot90(photo, k=-1)).mean() < 3.0


def test_load_image_drops_alpha_and_takes_the_first_gif_frame(folder: Path, settings: Settings) -> None:
    photo = hanks_photo()
    rgba = np.dstack([photo[:, :, ::-1], np.full(photo.shape[:2], 128, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(folder / "alpha.png")
    assert np.array_equal(load_image(folder / "alpha.png", settings), photo)

    frames = [Image.fromarray(np.full((40, 50, 3), value, np.uint8)) for value in (30, 200)]
    frames[0].save(folder / "two.gif", save_all=True, append_images=frames[1:], duration=100)
    first = load_image(folder / "two.gif", settings)
    assert first.shape == (40, 50, 3) and abs(float(first.mean()) - 30) < 2


def test_bad_images(folder: Path, settings: Settings) -> None:
    expect("invalid_request", lambda: load_image(folder / "missing.jpg", settings), "missing.jpg")
    (folder / "blank.jpg").write_bytes(b"")
    expect("unsupported_media", lambda: load_image(folder / "blank.jpg", settings), "empty (0 bytes)")
    (folder / "words.jpg").write_text("not a picture")
    expect("unsupported_media", lambda: load_image(folder / "words.jpg", settings), "words.jpg")
    cv2.imwrite(str(folder / "whole.jpg"), t1_photo())
    data = (folder / "whole.jpg").read_bytes()
    (folder / "torn.jpg").write_bytes(data[: len(data) // 3])
    expect("unsupported_media", lambda: load_image(folder / "torn.jpg", settings), "torn.jpg")
    expect("media_too_large", lambda: load_image(folder / "whole.jpg", replace(settings, max_pixels=1000)),
           "whole.jpg")
