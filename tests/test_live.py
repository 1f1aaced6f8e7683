"""The live path without a browser: sessions on real faces with the classic engine, the cap and its message,
freeing on close and when idle, frames dropped (not queued) while one is being swapped, and the recording of the
last N seconds as a real MP4."""

from __future__ import annotations

import threading
from pathlib import Path

import av
import cv2
import media_factory as mf
import numpy as np
import pytest

from faceswap.config import Settings
from faceswap.errors import FaceSwapError
from faceswap.live import LiveConfig, LiveHub, Recorder
from faceswap.runtime import Runtime


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Runtime:
    root = tmp_path_factory.mktemp("live")
    runtime = Runtime(Settings.from_env({"FACESWAP_DATA_DIR": str(root / "data"),
                                         "FACESWAP_MODELS_DIR": str(root / "models"), "HF_HUB_OFFLINE": "1"}))
    runtime.engine("classic")
    return runtime


@pytest.fixture(scope="module")
def face(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("live-face") / "astronaut.png"
    cv2.imwrite(str(path), mf.astronaut_face_photo())
    return str(path)


def camera_frame() -> np.ndarray:
    """An RGB camera picture (as a browser sends it): Tom Hanks' face on a textured background."""
    frame = mf.background(480, 360)
    frame[60:300, 120:360] = cv2.resize(mf.hanks_photo(), (240, 240), interpolation=cv2.INTER_CUBIC)
    return np.ascontiguousarray(frame[..., ::-1])


def test_a_session_swaps_the_camera_face_and_reports_fps(runtime: Runtime, face: str) -> None:
    hub = LiveHub(runtime, max_sessions=1)
    session = hub.open("visitor", LiveConfig(face=face, engine="classic"))
    frame = camera_frame()
    outputs = [session.process(frame) for _ in range(4)]
    out = outputs[-1]
    assert out is not None and out.shape == frame.shape and out.dtype == np.uint8
    face_change = np.abs(out[60:300, 120:360].astype(int) - frame[60:300, 120:360]).mean()
    corner_change = np.abs(out[:50, :100].astype(int) - frame[:50, :100]).mean()
    assert face_change > 8 and corner_change < 1, (face_change, corner_change)
    stats = session.stats()
    assert (stats.frames, stats.dropped, stats.faces, stats.swapped) == (4, 0, 1, 1)
    assert stats.fps > 0 and stats.latency_ms > 0 and "fps" in stats.markdown()
    big = cv2.resize(frame, (1280, 960))
    assert session.process(big).shape == (480, 640, 3)  # scaled to the live size first


def test_the_cap_refuses_a_second_visitor_until_the_first_stops(runtime: Runtime, face: str) -> None:
    hub = LiveHub(runtime, max_sessions=1)
    hub.open("first", LiveConfig(face=face, engine="classic"))
    with pytest.raises(FaceSwapError) as refused:
        hub.open("second", LiveConfig(face=face, engine="classic"))
    assert refused.value.code == "service_unavailable" and "Live is full" in refused.value.message
    assert hub.active == 1
    closed = hub.close("first")
    assert closed is not None and closed.closed and closed.process(camera_frame()) is None
    assert hub.open("second", LiveConfig(face=face, engine="classic")) is hub.get("second")
    hub.open("second", LiveConfig(face=face, engine="classic"))  # a visitor's new Start replaces their session
    assert hub.active == 1


def test_an_idle_session_is_closed_when_another_visitor_needs_its_place(runtime: Runtime, face: str) -> None:
    clock = Clock()
    hub = LiveHub(runtime, max_sessions=1, idle_s=20, clock=clock)
    first = hub.open("first", LiveConfig(face=face, engine="classic"))
    clock.now += 19
    with pytest.raises(FaceSwapError):
        hub.open("second", LiveConfig(face=face, engine="classic"))
    clock.now += 2
    hub.open("second", LiveConfig(face=face, engine="classic"))
    assert first.closed and hub.get("first") is None


def test_a_failed_start_gives_back_its_place_and_zero_turns_live_off(runtime: Runtime, tmp_path: Path) -> None:
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), mf.background(200, 200))
    hub = LiveHub(runtime, max_sessions=1)
    with pytest.raises(FaceSwapError) as no_face:
        hub.open("visitor", LiveConfig(face=str(blank), engine="classic"))
    assert no_face.value.code == "source_face_not_found" and hub.active == 0
    with pytest.raises(FaceSwapError) as off:
        LiveHub(runtime, max_sessions=0).open("visitor", LiveConfig(face=str(blank), engine="classic"))
    assert "turned off" in off.value.message


def test_a_frame_that_arrives_while_one_is_swapped_is_dropped_not_queued(runtime: Runtime, face: str) -> None:
    hub = LiveHub(runtime, max_sessions=1)
    session = hub.open("visitor", LiveConfig(face=face, engine="classic"))
    inside, release = threading.Event(), threading.Event()
    locate = session._swap.locate

    def slow_locate(frame: np.ndarray, time: float) -> list:
        inside.set()
        release.wait(10)
        return locate(frame, time)

    session._swap.locate = slow_locate
    results: list[np.ndarray | None] = []
    worker = threading.Thread(target=lambda: results.append(session.process(camera_frame())))
    worker.start()
    assert inside.wait(10)
    assert session.process(camera_frame()) is None  # answered at once, while the first is still being swapped
    release.set()
    worker.join(10)
    assert results and results[0] is not None
    assert (session.stats().frames, session.stats().dropped) == (1, 1)


def test_the_recording_keeps_the_last_seconds_and_saves_a_playable_mp4(tmp_path: Path) -> None:
    recorder = Recorder(seconds=2)
    frame = mf.background(320, 240)
    for i in range(50):  # 5 s at 10 fps
        shown = frame.copy()
        cv2.putText(shown, str(i), (20, 120), cv2.FONT_HERSHEY_SIMPLEX, 3, (255, 255, 255), 5)
        recorder.add(shown, 100.0 + i / 10)
    assert recorder.frame_count == 21  # 2 s of frames: 3.0 .. 5.0 s, both ends kept
    path = recorder.save(tmp_path)
    assert path.suffix == ".mp4" and not list(tmp_path.glob(".*"))
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
        assert "AI-generated" in container.metadata.get("comment", "")
    assert len(frames) == 21 and (frames[0].width, frames[0].height) == (320, 240)
    assert frames[-1].time - frames[0].time == pytest.approx(2.0, abs=0.01)
    with pytest.raises(FaceSwapError):
        Recorder(seconds=2).save(tmp_path)
