"""Decoder and encoder threads: sized from the CPU count on large machines, overridable, and really applied."""

from __future__ import annotations

import re
from pathlib import Path

import media_factory as mf
import numpy as np
import pytest

from faceswap.config import Settings
from faceswap.media.decode import read_frames
from faceswap.media.encode import VideoWriter
from faceswap.media.probe import probe_video
from faceswap.media.threads import codec_threads


def test_threads_are_sized_for_the_machine() -> None:
    assert codec_threads(16) == (4, 10)  # the H200 machine: a quarter decodes, all but two of the rest encode
    assert codec_threads(64) == (4, 58)
    assert codec_threads(8) == (2, 4)
    assert codec_threads(2) == codec_threads(4) == (0, 0)  # small machines: the codecs' own choice, as before
    assert codec_threads(2, decode=3, encode=5) == (3, 5)
    assert codec_threads(16, encode=6) == (4, 6)


def x264_threads(path: Path) -> int:
    """The `threads=` x264 wrote into the stream's settings SEI."""
    found = re.search(rb"x264 - core .*? threads=(\d+)", path.read_bytes())
    assert found is not None, "no x264 settings in the stream"
    return int(found.group(1))


@pytest.mark.parametrize("threads", [1, 3])  # x264 alone picks 2 here (2 CPUs, 240 rows)
def test_the_settings_reach_the_codecs(tmp_path: Path, threads: int) -> None:
    clip = mf.write_clip(tmp_path / "in.mp4", mf.t1_patches(96), mf.row_layout(2, 96, 320, 240),
                         mf.ClipSpec(width=320, height=240, frames=6, audio=False))
    settings = Settings(data_dir=tmp_path, models_dir=tmp_path, decode_threads=threads, encode_threads=threads)
    info = probe_video(clip, settings)
    assert (info.limits.decode_threads, info.limits.encode_threads) == (threads, threads)
    frames = list(read_frames(info))
    default = list(read_frames(probe_video(clip, Settings(data_dir=tmp_path, models_dir=tmp_path))))
    assert len(frames) == 6 and all(np.array_equal(a.image, b.image) for a, b in zip(frames, default, strict=True))
    out = tmp_path / "out.mp4"
    with VideoWriter(out, info, fmt="mp4") as writer:
        for frame in frames:
            writer.write(frame)
    assert x264_threads(out) == threads
    assert len(mf.read_frames(out)) == 6


def test_environment_overrides() -> None:
    env = {"FACESWAP_DATA_DIR": "/d", "FACESWAP_MODELS_DIR": "/m", "FACESWAP_DECODE_THREADS": "2",
           "FACESWAP_ENCODE_THREADS": "12"}
    settings = Settings.from_env(env)
    assert (settings.decode_threads, settings.encode_threads) == (2, 12)
