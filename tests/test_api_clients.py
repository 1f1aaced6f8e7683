"""Real swaps through the official clients against a live server on 127.0.0.1: the `segmind` SDK (submit_async +
wait, run_sync), the `wavespeed` SDK (upload + run, sync mode) and the OpenOctopus seed's own polling loop with
plain `requests`. The real pipeline and classic engine run on a tiny two-face clip; each test downloads the output
and checks it: every frame in order (stamps), the audio, and that the chosen face changed while the other did not.

The clip has a small face on the left and a large face on the right, so "index 0" means the left face for Segmind
(left to right) and the right face for OpenOctopus and WaveSpeed (largest first).
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import requests
from api_helpers import data_uri, seed_poll
from api_support import file_server, live_server
from media_factory import (
    T1_FACE_BOXES,
    ClipSpec,
    face_patch,
    hanks_photo,
    probe,
    read_frames,
    read_stamp,
    t1_photo,
    write_clip,
)

from faceswap.config import Settings
from faceswap.server import create_app

pytestmark = pytest.mark.slow  # real swaps through subprocesses, servers or clients: the full run only

segmind = pytest.importorskip("segmind")
wavespeed = pytest.importorskip("wavespeed")

KEY = "client-key"
FRAMES = 10
SLOTS = ((20, 70, 100), (160, 50, 140))
"""(x, y, size) of the small left face and the large right face on frame 0; they drift a little sideways."""
LEFT, RIGHT = 0, 1


def layout(index: int) -> list[tuple[int, int, int]]:
    dx = round(4 * np.sin(index / 3))
    return [(slot, x + dx, y) for slot, (x, y, _) in enumerate(SLOTS)]


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("client-media")
    photo = t1_photo()
    patches = [face_patch(photo, T1_FACE_BOXES[0], SLOTS[0][2]), face_patch(photo, T1_FACE_BOXES[3], SLOTS[1][2])]
    clip = write_clip(folder / "clip.mp4", patches, layout, ClipSpec(width=320, height=240, fps=10, frames=FRAMES))
    face = folder / "face.jpg"
    cv2.imwrite(str(face), hanks_photo())
    blank = folder / "blank.jpg"
    cv2.imwrite(str(blank), np.full((200, 200, 3), 128, np.uint8))
    return {"video": clip, "face": face, "blank": blank, "folder": folder}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("client-server")
    settings = Settings(data_dir=root / "data", models_dir=root / "models", api_keys=frozenset({KEY}),
                        url_allowlist=("localhost",), allow_model_download=False, rate_limit_per_minute=1000)
    with live_server(create_app(settings, with_ui=False)) as base:
        yield base


@pytest.fixture(scope="module")
def files(media: dict[str, Path]) -> Iterator[str]:
    """The inputs on a plain HTTP server reached as http://localhost:PORT (allow-listed by name)."""
    with file_server(media["folder"]) as base:
        yield base.replace("127.0.0.1", "localhost")


def check_output(data: bytes, media: dict[str, Path], tmp_path: Path, *, swapped: int) -> None:
    """Every frame, in order, with audio; the face in slot `swapped` changed and the other face did not."""
    output = tmp_path / f"out-{time.monotonic_ns()}.mp4"
    output.write_bytes(data)
    facts = probe(output)
    assert facts.frames == FRAMES and (facts.width, facts.height) == (320, 240)
    assert facts.has_audio and abs(facts.audio_seconds - FRAMES / 10) < 0.1
    before, after = read_frames(media["video"]), read_frames(output)
    assert [read_stamp(frame) for frame in after] == list(range(FRAMES))
    change = {slot: [] for slot in (LEFT, RIGHT)}
    for index, (a, b) in enumerate(zip(before, after, strict=True)):
        for slot, x, y in layout(index):
            inset = SLOTS[slot][2] // 4
            box = (slice(y + inset, y + SLOTS[slot][2] - inset), slice(x + inset, x + SLOTS[slot][2] - inset))
            change[slot].append(float(np.abs(a[box].astype(np.int16) - b[box].astype(np.int16)).mean()))
    kept = RIGHT if swapped == LEFT else LEFT
    assert min(change[swapped]) > 8, f"the chosen face must change: {change}"
    assert max(change[kept]) < 5, f"the other face must stay (codec noise only): {change}"


# -- Segmind SDK ---------------------------------------------------------------------------------------------------

def segmind_payload(video: str, face: str, **extra: object) -> dict:
    return {"source_img": face, "video_input": video, "face_restore": False, "input_faces_index": "0",
            "source_faces_index": "0", "face_restore_visibility": 1, "codeformer_weight": 0.95,
            "detect_gender_input": "no", "detect_gender_source": "no", "frame_load_cap": 0, "base_64": False,
            "engine": "classic", **extra}


def test_segmind_sdk_submit_async_and_wait(server: str, files: str, media, tmp_path: Path) -> None:
    client = segmind.SegmindClient(api_key=KEY, base_url=f"{server}/v1", timeout=120)
    job = client.submit_async("videofaceswap", **segmind_payload(f"{files}/clip.mp4", f"{files}/face.jpg"))
    assert job.request_id
    result = job.wait(timeout=300, interval=0.5)
    assert result["status"] == "COMPLETED" and result["metrics"]["engine"] == "classic"
    check_output(requests.get(result["output"], timeout=60).content, media, tmp_path, swapped=LEFT)


def test_segmind_sdk_run_sync(server: str, media, tmp_path: Path) -> None:
    client = segmind.SegmindClient(api_key=KEY, base_url=f"{server}/v1", timeout=300)
    response = client.run_sync("videofaceswap", **segmind_payload(
        data_uri(media["video"], "video/mp4"), base64.b64encode(media["face"].read_bytes()).decode(),
        input_faces_index="1"))
    assert response.headers["content-type"] == "video/mp4"
    check_output(response.content, media, tmp_path, swapped=RIGHT)


def test_segmind_sdk_reports_failures(server: str, files: str) -> None:
    client = segmind.SegmindClient(api_key=KEY, base_url=f"{server}/v1", timeout=120)
    job = client.submit_async("videofaceswap", **segmind_payload(f"{files}/clip.mp4", f"{files}/blank.jpg"))
    with pytest.raises(segmind.InferenceFailed) as caught:
        job.wait(timeout=300, interval=0.5)
    assert caught.value.detail and "face" in caught.value.detail.lower()
    with pytest.raises(segmind.SegmindError) as caught:
        segmind.SegmindClient(api_key="wrong", base_url=f"{server}/v1").submit_async(
            "videofaceswap", **segmind_payload(f"{files}/clip.mp4", f"{files}/face.jpg"))
    assert caught.value.status == 401 and "invalid" in caught.value.detail


# -- WaveSpeed SDK -------------------------------------------------------------------------------------------------

def test_wavespeed_sdk_upload_and_run(server: str, media, tmp_path: Path) -> None:
    client = wavespeed.Client(api_key=KEY, base_url=server, max_retries=0)
    video_url = client.upload(str(media["video"]))
    with media["face"].open("rb") as stream:
        face_url = client.upload(stream)
    assert video_url.startswith(f"{server}/v1/files/") and face_url.startswith(f"{server}/v1/files/")
    output = client.run("wavespeed-ai/video-face-swap", {"video": video_url, "face_image": face_url,
                                                         "target_index": 0, "engine": "classic"},
                        timeout=300, poll_interval=0.5)
    check_output(requests.get(output["outputs"][0], timeout=60).content, media, tmp_path, swapped=RIGHT)


def test_wavespeed_sdk_sync_mode_and_failure(server: str, media, tmp_path: Path) -> None:
    client = wavespeed.Client(api_key=KEY, base_url=server, max_retries=0)
    video = data_uri(media["video"], "video/mp4")
    output = client.run("wavespeed-ai/video-face-swap", {"video": video, "face_image": data_uri(media["face"],
                                                         "image/jpeg"), "target_index": 1, "engine": "classic"},
                        enable_sync_mode=True, timeout=300)
    check_output(requests.get(output["outputs"][0], timeout=60).content, media, tmp_path, swapped=LEFT)
    with pytest.raises(RuntimeError, match="failed") as caught:
        client.run("wavespeed-ai/video-face-swap", {"video": video, "face_image": data_uri(media["face"],
                   "image/jpeg"), "target_index": 5, "engine": "classic"}, timeout=300, poll_interval=0.5)
    assert "face" in str(caught.value).lower()


# -- OpenOctopus seed loop -----------------------------------------------------------------------------------------

def test_openoctopus_seed_loop(server: str, media, tmp_path: Path) -> None:
    resp = requests.post(f"{server}/v1/videos/generations", headers={"Authorization": f"Bearer {KEY}"}, timeout=60,
                         json={"model": "openoctopus/video-face-swap", "prompt": "swap the face", "input": {
                             "video": data_uri(media["video"], "video/mp4"),
                             "face_image": data_uri(media["face"], "image/jpeg"), "target_index": 0,
                             "enable_sync_mode": False, "enable_base64_output": False, "engine": "classic"}})
    assert resp.status_code == 200 and resp.json()["status"] == "queued"
    payload = seed_poll(server, resp.json()["id"], KEY, timeout_s=180, interval_s=0.5)["output_payload"]
    asset = payload["assets"][0]
    assert asset["mimeType"] == "video/mp4" and payload["raw"]["report"]["frames_swapped"] == FRAMES
    check_output(requests.get(asset["url"], timeout=60).content, media, tmp_path, swapped=RIGHT)


def test_openoctopus_seed_loop_sees_a_face_missing_from_the_video(server: str, media, tmp_path: Path) -> None:
    still = tmp_path / "no-faces.mp4"
    write_clip(still, [np.full((50, 50, 3), 90, np.uint8)], lambda index: [(0, 10, 10)],
               ClipSpec(width=160, height=120, fps=10, frames=4, audio=False))
    task_id = requests.post(f"{server}/v1/videos/generations", headers={"Authorization": f"Bearer {KEY}"},
                            timeout=60, json={"model": "openoctopus/video-face-swap", "input": {
                                "video": data_uri(still, "video/mp4"), "face_image": data_uri(media["face"],
                                                                                              "image/jpeg"),
                                "engine": "classic"}}).json()["id"]
    with pytest.raises(RuntimeError) as caught:
        seed_poll(server, task_id, KEY, timeout_s=180, interval_s=0.5)
    task = requests.get(f"{server}/v1/tasks/{task_id}", headers={"x-api-key": KEY}, timeout=30).json()
    assert task["status"] == "failed" and task["error"]["code"] == "target_face_not_found"
    assert str(caught.value) == task["error_message"]
