"""Issue 10, point 2: a playlist (upload or data URI) never makes FFmpeg read the files it names.

Videos are opened only with an allowlist of demuxers decided from the content (MP4/MOV/M4V, MKV/WebM, AVI, GIF) and
only through the file protocol, so an HLS playlist naming a local file by a relative or `file:` segment is refused
before that file is opened: the segment here is a FIFO that records whether anyone opened it. Concat lists and
image-sequence patterns are refused the same way. Figures are printed with `-s` as "FIGURE ...".
"""

from __future__ import annotations

import base64
import contextlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import av
import cv2
import pytest
from checks import expect, figure
from media_factory import ClipSpec, hanks_photo, row_layout, t1_patches, write_clip

from faceswap.config import Settings
from faceswap.errors import FaceSwapError
from faceswap.media import probe_video, read_frames


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media-playlists")


@pytest.fixture(scope="module")
def settings(folder: Path) -> Settings:
    return Settings(data_dir=folder / "data", models_dir=folder / "models")


@contextlib.contextmanager
def watched_fifo(path: Path) -> Iterator[threading.Event]:
    """A FIFO at `path`; the event is set when anyone opens it for reading while the block runs."""
    os.mkfifo(path)
    opened, done = threading.Event(), threading.Event()

    def writer() -> None:
        fd = os.open(path, os.O_WRONLY)  # blocks until a reader opens the FIFO
        if not done.is_set():
            opened.set()
        os.close(fd)  # the reader sees an empty segment

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        yield opened
    finally:
        done.set()
        with contextlib.suppress(OSError):
            os.close(os.open(path, os.O_RDONLY | os.O_NONBLOCK))  # releases the writer if nobody else did
        thread.join(5)
        path.unlink()


@pytest.fixture(scope="module")
def host_video(folder: Path) -> Path:
    """A "private" video elsewhere on the host, as an MPEG-TS segment (what HLS playlists name)."""
    host = folder / "host"
    host.mkdir()
    clip = write_clip(host / "private.mp4", t1_patches(60)[:1], row_layout(1, 60, 160, 120),
                      ClipSpec(160, 120, fps=10, frames=10, audio=False))
    segment = host / "private.ts"
    with av.open(str(clip)) as source, av.open(str(segment), "w", format="mpegts") as out:
        stream = out.add_stream_from_template(source.streams.video[0])
        for packet in source.demux(video=0):
            if packet.dts is not None:
                packet.stream = stream
                out.mux(packet)
    return segment


def playlist_text(segment: str) -> str:
    return f"#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.0,\n{segment}\n#EXT-X-ENDLIST\n"


def test_the_playlist_reads_the_host_file_when_ffmpeg_is_left_alone(host_video: Path, folder: Path) -> None:
    """Control: the attack is real: plain `av.open` demuxes the playlist and decodes the host file's frames."""
    uploads = folder / "control"
    uploads.mkdir()
    playlist = uploads / "upload.m3u8"  # FFmpeg 8 takes HLS only by this name or MIME type
    playlist.write_text(playlist_text(f"../host/{host_video.name}"))
    with av.open(str(playlist)) as container:
        assert container.format.name == "hls"
        assert sum(1 for _ in container.decode(video=0)) == 10


@pytest.mark.parametrize("form", ["relative", "file-url"])
def test_a_playlist_upload_is_refused_without_opening_its_segment(form: str, folder: Path,
                                                                  settings: Settings) -> None:
    uploads, host = folder / f"uploads-{form}", folder / f"secret-{form}"
    uploads.mkdir()
    host.mkdir()
    segment = host / "private.ts"
    reference = f"../{host.name}/private.ts" if form == "relative" else f"file:{segment}"
    playlist = uploads / "video-upload.m3u8"
    playlist.write_text(playlist_text(reference))
    with watched_fifo(segment) as opened:
        started = time.perf_counter()
        with pytest.raises(FaceSwapError) as caught:
            probe_video(playlist, settings)
        took = time.perf_counter() - started
        time.sleep(0.2)  # a reader would have woken the writer by now
        assert not opened.is_set(), "FFmpeg opened the file the playlist names"
    error = caught.value
    assert error.code == "unsupported_media" and "video-upload.m3u8" in error.message
    assert "MP4, MOV, M4V, WebM, MKV, AVI or GIF" in error.message
    assert str(folder) not in error.message and "/" not in error.message
    figure(f"playlist upload ({form}) refused in {took * 1000:.1f} ms")


def test_a_playlist_data_uri_is_refused_without_opening_its_segment(folder: Path, settings: Settings) -> None:
    from faceswap.options import SwapOptions
    from faceswap.pipeline import run
    from faceswap.runtime import Runtime

    host = folder / "secret-data-uri"
    host.mkdir()
    segment = host / "private.ts"
    face = folder / "face.png"
    cv2.imwrite(str(face), hanks_photo())
    text = playlist_text(f"file:{segment}").encode()
    uri = "data:application/vnd.apple.mpegurl;base64," + base64.b64encode(text).decode()
    output = folder / "data-uri-out.mp4"
    with watched_fifo(segment) as opened:
        started = time.perf_counter()
        with pytest.raises(FaceSwapError) as caught:
            run(SwapOptions.parse(video=uri, face=str(face)), Runtime(settings), output)
        took = time.perf_counter() - started
        time.sleep(0.2)
        assert not opened.is_set(), "FFmpeg opened the file the playlist names"
    error = caught.value
    assert error.code == "unsupported_media", error.message
    assert str(folder) not in error.message and str(segment) not in error.message
    assert not output.exists() and not list(folder.glob(".data-uri-out*"))
    figure(f"playlist data URI refused by the pipeline in {took * 1000:.1f} ms")


def test_other_demuxers_that_read_more_than_the_file_are_refused(host_video: Path, folder: Path,
                                                                 settings: Settings) -> None:
    beside = folder / "beside.ts"  # the concat demuxer's safe mode still reads files beside the list
    beside.write_bytes(host_video.read_bytes())
    concat = folder / "list.mp4"
    concat.write_text("ffconcat version 1.0\nfile 'beside.ts'\n")
    expect("unsupported_media", lambda: probe_video(concat, settings), "list.mp4", "not in a format")
    pattern = folder / "%d.png"  # the image2 demuxer would read 0.png, 1.png, ... beside it
    cv2.imwrite(str(folder / "0.png"), hanks_photo()[:64, :64])
    pattern.write_bytes((folder / "0.png").read_bytes())
    expect("unsupported_media", lambda: probe_video(pattern, settings), "still image")


def test_the_same_video_is_accepted_in_every_listed_container(folder: Path, settings: Settings) -> None:
    patches, layout = t1_patches(60)[:1], row_layout(1, 60, 160, 120)
    spec = ClipSpec(160, 120, fps=10, frames=6, audio=False)
    names = {"a.mp4": "mov,mp4,m4a,3gp,3g2,mj2", "a.mov": "mov,mp4,m4a,3gp,3g2,mj2", "a.m4v": "mov,mp4,m4a,3gp,3g2,mj2",
             "a.mkv": "matroska,webm", "a.avi": "avi", "a.gif": "gif"}
    for name, demuxer in names.items():
        info = probe_video(write_clip(folder / name, patches, layout, spec), settings)
        assert info.format_name == demuxer
        assert len(list(read_frames(info))) == 6
