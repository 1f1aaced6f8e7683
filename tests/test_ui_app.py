"""The Gradio app, driven through `gradio_client` against the real app (`faceswap.server.create_app`) served on
127.0.0.1: finding faces, a swap job followed to its end, cancels while queued and while running, readable errors.

The app runs offline (HF_HUB_OFFLINE=1, an empty models dir and Hub cache), so `auto` falls back to the classic engine
and says so.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import uvicorn
from gradio_client import Client, handle_file
from gradio_client.client import Endpoint
from gradio_client.exceptions import AppError
from gradio_client.utils import Status
from media_factory import (
    ClipSpec,
    astronaut_face_photo,
    permuted_layout,
    probe,
    read_frames,
    read_stamp,
    row_layout,
    slot_boxes,
    t1_patches,
    write_clip,
)

from faceswap.config import Settings
from faceswap.options import QUALITY_FIELDS

pytestmark = pytest.mark.slow  # real swaps through subprocesses, servers or clients: the full run only

PATCH = 180
CLIP = ClipSpec(width=640, height=360, fps=12, frames=24)
LONG_CLIP = ClipSpec(width=640, height=360, fps=12, frames=240, audio=False)
GIF_CLIP = ClipSpec(width=640, height=360, fps=10, frames=10, audio=False)
LAYOUT = row_layout(3, PATCH, CLIP.width, CLIP.height)
REORDER_AT = 12
REORDERED = permuted_layout(LAYOUT, REORDER_AT, [2, 0, 1])  # from frame 12: slot 0 shows C, slot 1 A, slot 2 B


@dataclass
class LiveApp:
    url: str
    app: Any
    settings: Settings

    @property
    def service(self) -> Any:
        return self.app.state.service


@contextmanager
def serve_app(root: Path, *, models_dir: Path | None = None, runtime: Callable[[Settings], Any] | None = None,
              environ: dict[str, str] | None = None, **changes: object) -> Iterator[LiveApp]:
    """The real app (REST + UI) on 127.0.0.1 at a free port, offline, data and models in `root` (or models in
    `models_dir`, served by the runtime that `runtime` makes from the settings: twins, say); `changes` to the
    settings (tests/test_celery_ui.py runs it on the celery backend)."""
    from faceswap.server import create_app

    environ = {"FACESWAP_DATA_DIR": str(root / "data"), "FACESWAP_MODELS_DIR": str(models_dir or root / "models"),
               "HF_HUB_CACHE": str(root / "hub-cache"), "HF_HUB_OFFLINE": "1", **(environ or {})}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", environ["HF_HUB_OFFLINE"])
        settings = Settings.from_env(environ).with_(**changes)
        app = create_app(settings, runtime=runtime(settings) if runtime else None)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=2))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 60
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the app did not start")
            time.sleep(0.05)
        try:
            yield LiveApp(f"http://127.0.0.1:{port}/", app, settings)
        finally:
            server.should_exit = True
            thread.join(30)
            sock.close()


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("ui-media")
    patches = t1_patches(PATCH)[:3]
    face = root / "astronaut.png"
    cv2.imwrite(str(face), astronaut_face_photo())
    blank = root / "no-face.png"
    cv2.imwrite(str(blank), np.full((240, 240, 3), 128, np.uint8))
    return {
        "clip": write_clip(root / "three.mp4", patches, LAYOUT, CLIP),
        "reorder": write_clip(root / "reorder.mp4", patches, REORDERED, CLIP),
        "long": write_clip(root / "long.mp4", patches, LAYOUT, LONG_CLIP),
        "gif": write_clip(root / "three.gif", patches, LAYOUT, GIF_CLIP),
        "face": face,
        "blank": blank,
        "text": _write(root / "notes.txt", b"not a video"),
    }


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:
    with serve_app(tmp_path_factory.mktemp("ui-app")) as app:
        yield app


@pytest.fixture(scope="module")
def client(live: LiveApp, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    client = Client(live.url, verbose=False, download_files=str(tmp_path_factory.mktemp("ui-downloads")))
    yield client
    client.close()


def test_api_has_the_three_endpoints_with_plain_parameters(client: Client) -> None:
    info = client.view_api(print_info=False, return_format="dict")
    endpoints = info["named_endpoints"]
    assert {"/detect_faces", "/preview", "/swap"} <= set(endpoints)
    swap_params = [param["parameter_name"] for param in endpoints["/swap"]["parameters"]]
    assert swap_params[:4] == ["video", "face", "target_faces", "source_faces"]
    assert {"engine", "order", "selection", "frame_cap", "start", "end", "restore", "codeformer_weight",
            "restore_visibility", "output_format"} <= set(swap_params)
    assert len(endpoints["/swap"]["returns"]) == 2
    # Added last, optional, so positional calls written before them still work: the reference frame, then the
    # quality options of the Advanced panel under their SwapOptions names.
    added = ["reference_frame", *QUALITY_FIELDS]
    assert swap_params[-len(added):] == added
    assert all(param["parameter_has_default"] for param in endpoints["/swap"]["parameters"][-len(added):])
    preview_params = [param["parameter_name"] for param in endpoints["/preview"]["parameters"]]
    assert preview_params[:len(swap_params) - len(added)] == swap_params[:-len(added)]
    assert preview_params[-len(added) - 1:] == ["frame", *added]
    # Page-only helpers (picking, result display) are not part of the API.
    assert not any("toggle" in name or "show" in name for name in endpoints)


def test_detect_faces_lists_the_faces_of_a_frame_left_to_right(client: Client, media: dict[str, Path]) -> None:
    gallery, listing = client.predict(handle_file(str(media["clip"])), 10, "left_to_right", "classic",
                                      api_name="/detect_faces")
    assert listing["engine"] == "classic"
    assert listing["frame"] == 10
    assert listing["frame_count"] == CLIP.frames
    faces = listing["faces"]
    assert [face["index"] for face in faces] == [0, 1, 2]
    for face, slot in zip(faces, slot_boxes(LAYOUT, 10, PATCH), strict=True):
        centre_x = (face["box"][0] + face["box"][2]) / 2
        centre_y = (face["box"][1] + face["box"][3]) / 2
        assert slot[0] <= centre_x <= slot[2] and slot[1] <= centre_y <= slot[3], (face, slot)
    assert len(gallery) == 3
    thumbnail = cv2.imread(str(gallery[0]["image"]))
    assert thumbnail is not None and thumbnail.shape[0] == thumbnail.shape[1] >= 64


def test_detect_faces_in_a_photo(client: Client, media: dict[str, Path]) -> None:
    _, listing = client.predict(handle_file(str(media["face"])), 0, "left_to_right", "classic",
                                api_name="/detect_faces")
    assert listing["frame_count"] == 1
    assert len(listing["faces"]) == 1


def test_swap_job_reports_progress_and_returns_the_video_with_the_chosen_face_changed(
        client: Client, media: dict[str, Path]) -> None:
    job = client.submit(video=handle_file(str(media["clip"])), face=handle_file(str(media["face"])),
                        target_faces="1", engine="auto", api_name="/swap")
    progress_seen: list[tuple[int | None, int | None, str | None]] = []
    deadline = time.monotonic() + 180
    while not job.done():
        status = job.status()
        progress_seen += [(unit.index, unit.length, unit.unit) for unit in status.progress_data or []]
        assert time.monotonic() < deadline, "the swap took too long"
        time.sleep(0.05)
    video_path, report = job.result()

    assert any(length == CLIP.frames and unit == "frames" for _, length, unit in progress_seen), progress_seen
    states = [output[1] for output in job.outputs()[:-1]]
    assert states and states[0]["job_id"] == report["job_id"]
    assert any(state["status"] == "processing" for state in states), states
    running = [state for state in states if state["status"] == "processing" and state["fps"]]
    assert running and all(state["seconds_left"] is not None and "fps" in state["message"] for state in running)

    assert report["status"] == "succeeded"
    assert report["engine"] == "classic"
    assert report["frames"] == CLIP.frames
    assert report["frames_swapped"] >= CLIP.frames - 2
    assert any("classic engine" in notice for notice in report["notices"]), report["notices"]

    facts = probe(Path(video_path))
    assert facts.frames == CLIP.frames
    assert facts.fps == pytest.approx(CLIP.fps, rel=0.01)
    assert facts.has_audio and facts.audio_seconds == pytest.approx(CLIP.frames / CLIP.fps, abs=0.1)
    _assert_only_slot_changed(media["clip"], Path(video_path), slot=1)


@pytest.mark.parametrize("ffmpeg", ["with an ffmpeg on PATH", "without ffmpeg"])
def test_a_gif_previews_swaps_and_comes_back_as_a_gif(client: Client, media: dict[str, Path], ffmpeg: str,
                                                     tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The app serves in this process: PATH decides whether Gradio finds an ffmpeg (it converts what a Video
    # component returns to MP4 when it does; the swap's output is a plain file, never converted). The host's ffmpeg
    # when it has one, else the real ffmpeg build the imageio-ffmpeg wheel ships: both cases run on any machine.
    import imageio_ffmpeg

    bare = tmp_path / "bin"
    bare.mkdir()
    if ffmpeg == "with an ffmpeg on PATH":
        (bare / "ffmpeg").symlink_to(shutil.which("ffmpeg") or imageio_ffmpeg.get_ffmpeg_exe())
    monkeypatch.setenv("PATH", str(bare))
    assert (shutil.which("ffmpeg") is not None) == (ffmpeg == "with an ffmpeg on PATH")

    _, listing = client.predict(handle_file(str(media["gif"])), 3, "left_to_right", "classic",
                                api_name="/detect_faces")
    assert listing["frame_count"] == GIF_CLIP.frames and len(listing["faces"]) == 3
    _, info = client.predict(video=handle_file(str(media["gif"])), face=handle_file(str(media["face"])),
                             target_faces="0", engine="classic", frame=3, api_name="/preview")
    assert info["faces_swapped"] == 1
    video_path, report = client.predict(video=handle_file(str(media["gif"])), face=handle_file(str(media["face"])),
                                        target_faces="0", engine="classic", api_name="/swap")
    assert Path(video_path).suffix == ".gif" and report["output_format"] == "gif"
    facts = probe(Path(video_path))
    assert (facts.format, facts.frames) == ("gif", GIF_CLIP.frames)
    _assert_only_slot_changed(media["gif"], Path(video_path), slot=0)


def test_inputs_must_be_uploads_never_host_paths(live: LiveApp, media: dict[str, Path],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A client naming a host file ({"path": ..., "meta": {"_type": "gradio.FileData"}}) gets the same refusal
    whether the file exists or not, and never its frames."""
    host_paths = (str(media["clip"]), "/no/such/file.mp4", "/etc/passwd")
    upload = Endpoint._upload_file

    def send_host_paths_as_they_are(self: Endpoint, file: dict, data_index: int) -> dict:
        # gradio_client uploads local files first; an attacker's client sends the path itself.
        return file if file["path"] in host_paths else upload(self, file, data_index)

    monkeypatch.setattr(Endpoint, "_upload_file", send_host_paths_as_they_are)
    raw = Client(live.url, verbose=False)
    try:
        answers = []
        for host_path in host_paths:
            forged = {"path": host_path, "meta": {"_type": "gradio.FileData"}}
            uploaded_face = handle_file(str(media["face"]))
            calls = [((forged, 0, "left_to_right", "classic"), "/detect_faces"),
                     ((), "/preview"), ((), "/swap")]
            for args, endpoint in calls:
                kwargs = {} if args else {"video": forged, "face": uploaded_face, "engine": "classic"}
                with pytest.raises(AppError) as refused:
                    raw.predict(*args, **kwargs, api_name=endpoint)
                answers.append(str(refused.value))
        assert len(set(answers)) == 1, answers  # one answer: nothing tells which host paths exist
        assert "not uploaded through this app" in answers[0]
        assert "/" not in answers[0].split("app")[0] and "tmp" not in answers[0] and "etc" not in answers[0]
    finally:
        raw.close()


def test_every_parameter_is_described_and_the_video_has_one_name(client: Client) -> None:
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    for name in ("/detect_faces", "/preview", "/swap"):
        for parameter in endpoints[name]["parameters"]:
            text = parameter["python_type"]["description"]
            limit = 300 if parameter["parameter_name"] in QUALITY_FIELDS else 160  # SwapOptions' own texts
            assert 15 < len(text) < limit and "FileData" not in text, (name, parameter["parameter_name"], text)
    assert endpoints["/detect_faces"]["parameters"][0]["parameter_name"] == "video"
    assert endpoints["/swap"]["parameters"][0]["parameter_name"] == "video"
    assert "detect_faces" in endpoints["/swap"]["parameters"][2]["python_type"]["description"]


def _assert_only_slot_changed(original: Path, swapped: Path, *, slot: int | Any, layout: Any = LAYOUT,
                              step: int = 6) -> None:
    """On every `step`-th frame, the face in `slot` changed and no other did; `slot` may be a function of the
    frame index (when people change places)."""
    before, after = read_frames(original), read_frames(swapped)
    assert len(after) == len(before)
    for frame in after[::step]:
        index = read_stamp(frame)
        chosen = slot(index) if callable(slot) else slot
        for number, (x1, y1, x2, y2) in enumerate(slot_boxes(layout, index, PATCH)):
            change = float(np.abs(frame[y1:y2, x1:x2].astype(np.int16)
                                  - before[index][y1:y2, x1:x2].astype(np.int16)).mean())
            if number == chosen:
                assert change > 12, f"frame {index}: the chosen face barely changed ({change:.1f})"
            else:
                assert change < 6, f"frame {index}: face {number} changed ({change:.1f}) but was not chosen"


def test_swap_cancelled_while_queued_and_while_running_leaves_nothing_behind(
        client: Client, live: LiveApp, media: dict[str, Path]) -> None:
    files_dir = live.settings.data_dir / "files"
    files_before = set(os.listdir(files_dir))
    inputs = {"video": handle_file(str(media["long"])), "face": handle_file(str(media["face"])),
              "target_faces": "0", "engine": "classic", "api_name": "/swap"}
    running = client.submit(**inputs)
    running_id = _wait_for_state(running, lambda state: state["status"] == "processing"
                                 and state["frames_done"] > 0)["job_id"]
    queued = client.submit(**inputs)
    queued_state = _wait_for_state(queued, lambda state: state["status"] == "queued")
    assert queued_state["position"] == 1
    deadline = time.monotonic() + 10
    while (status := queued.status()).rank is None:  # Gradio's own rank: 0 = next in line
        assert time.monotonic() < deadline, status
        time.sleep(0.05)
    assert (status.code, status.rank) == (Status.IN_QUEUE, 0) and status.queue_size >= 1

    assert queued.cancel()
    assert running.cancel()

    for job_id in (queued_state["job_id"], running_id):
        job = _wait_for_job(live, job_id, lambda job: job.status == "cancelled")
        assert job.output_file_id is None
        assert job.frames_done < LONG_CLIP.frames
    work_dir = live.settings.data_dir / "work"
    deadline = time.monotonic() + 30
    while work_dir.exists() and any(work_dir.iterdir()):  # the worker stops at its next frame and cleans up
        assert time.monotonic() < deadline, list(work_dir.iterdir())
        time.sleep(0.1)
    assert set(os.listdir(files_dir)) == files_before
    assert running.status().code == Status.CANCELLED or running.done()


def test_a_job_cancelled_in_the_core_ends_as_cancelled_not_as_an_error(
        client: Client, live: LiveApp, media: dict[str, Path]) -> None:
    """What the page's Cancel button does: cancel the job in the core; the call then ends normally, with no file
    and a report whose status is 'cancelled' (the page shows "Cancelled", not an error)."""
    job = client.submit(video=handle_file(str(media["long"])), face=handle_file(str(media["face"])),
                        target_faces="0", engine="classic", api_name="/swap")
    job_id = _wait_for_state(job, lambda state: state["status"] == "processing")["job_id"]
    live.service.cancel(job_id)
    output, report = job.result(timeout=60)
    assert output is None
    assert (report["job_id"], report["status"], report["message"]) == (job_id, "cancelled",
                                                                       "Cancelled. Nothing was saved.")


def _wait_for_state(job: Any, accept: Any, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = [output[1] for output in job.outputs() if isinstance(output, (list, tuple))]
        for state in reversed(states):
            if isinstance(state, dict) and "job_id" in state and accept(state):
                return state
        assert not job.done(), f"the job ended before reaching the state: {states}"
        time.sleep(0.05)
    raise AssertionError("the job never reached the awaited state")


def _wait_for_job(live: LiveApp, job_id: str, accept: Any, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        job = live.service.get(job_id)
        if accept(job):
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.1)


def test_errors_reach_the_client_as_readable_messages(client: Client, media: dict[str, Path]) -> None:
    with pytest.raises(AppError) as no_face:
        client.predict(video=handle_file(str(media["clip"])), face=handle_file(str(media["blank"])),
                       engine="classic", api_name="/swap")
    assert "face" in str(no_face.value).lower() and "Traceback" not in str(no_face.value)

    with pytest.raises(AppError) as bad_index:
        client.predict(video=handle_file(str(media["clip"])), face=handle_file(str(media["face"])),
                       target_faces="one", engine="classic", api_name="/swap")
    assert "target_faces" in str(bad_index.value)

    with pytest.raises(AppError) as not_media:
        client.predict(handle_file(str(media["text"])), 0, "left_to_right", "classic", api_name="/detect_faces")
    assert "Traceback" not in str(not_media.value) and len(str(not_media.value)) > 10


def test_preview_renders_the_chosen_frame_swapped(client: Client, media: dict[str, Path]) -> None:
    image_path, info = client.predict(video=handle_file(str(media["clip"])), face=handle_file(str(media["face"])),
                                      target_faces="2", engine="classic", frame=5, api_name="/preview")
    assert info["engine"] == "classic" and info["frame"] == 5 and info["faces_swapped"] == 1
    preview = cv2.imread(str(image_path))
    assert preview.shape == (CLIP.height, CLIP.width, 3)
    original = read_frames(media["clip"])[5]
    changes = []
    for x1, y1, x2, y2 in slot_boxes(LAYOUT, 5, PATCH):
        changes.append(float(np.abs(preview[y1:y2, x1:x2].astype(np.int16)
                                    - original[y1:y2, x1:x2].astype(np.int16)).mean()))
    assert changes[2] > 12 and max(changes[:2]) < 6, changes


def _slot_of_person_c(index: int) -> int:
    """Where person C (the rightmost at first) sits in the reordered clip: slot 2, then slot 0 after the cut."""
    return 2 if index < REORDER_AT else 0


def test_a_face_picked_on_a_later_frame_is_that_person_in_every_frame(client: Client,
                                                                      media: dict[str, Path]) -> None:
    # What the page does: list the faces of frame 15 (after the cut, where face 0 is person C), pick face 0, and
    # pass the listed frame along with the pick.
    _, listing = client.predict(handle_file(str(media["reorder"])), 15, "left_to_right", "classic",
                                api_name="/detect_faces")
    assert listing["frame"] == 15 and len(listing["faces"]) == 3
    video_path, report = client.predict(video=handle_file(str(media["reorder"])),
                                        face=handle_file(str(media["face"])), target_faces="0", engine="classic",
                                        reference_frame=listing["frame"], api_name="/swap")
    assert report["status"] == "succeeded" and report["frames_swapped"] == CLIP.frames
    _assert_only_slot_changed(media["reorder"], Path(video_path), slot=_slot_of_person_c, layout=REORDERED, step=1)


def test_a_swap_without_a_reference_frame_counts_on_the_first_frame(client: Client, media: dict[str, Path]) -> None:
    # The same request without reference_frame keeps the old meaning: face 0 of the first frame is person A,
    # who moves from slot 0 to slot 1 at the cut.
    video_path, _ = client.predict(video=handle_file(str(media["reorder"])), face=handle_file(str(media["face"])),
                                   target_faces="0", engine="classic", api_name="/swap")
    _assert_only_slot_changed(media["reorder"], Path(video_path), slot=lambda index: int(index >= REORDER_AT),
                              layout=REORDERED, step=3)


def test_preview_counts_indices_on_the_reference_frame(client: Client, media: dict[str, Path]) -> None:
    original = read_frames(media["reorder"])[5]
    for reference, changed in ((15, 2), (None, 0)):  # face 0 of frame 15 is person C, in slot 2 on frame 5
        image_path, info = client.predict(video=handle_file(str(media["reorder"])),
                                          face=handle_file(str(media["face"])), target_faces="0",
                                          engine="classic", frame=5, reference_frame=reference,
                                          api_name="/preview")
        assert info["faces_swapped"] == 1
        preview = cv2.imread(str(image_path))
        changes = [float(np.abs(preview[y1:y2, x1:x2].astype(np.int16)
                                - original[y1:y2, x1:x2].astype(np.int16)).mean())
                   for x1, y1, x2, y2 in slot_boxes(REORDERED, 5, PATCH)]
        others = [change for slot, change in enumerate(changes) if slot != changed]
        assert changes[changed] > 12 and max(others) < 6, (reference, changes)


def test_no_text_the_page_or_client_receives_names_a_host_path(client: Client, live: LiveApp,
                                                               media: dict[str, Path]) -> None:
    """Listings, previews, reports and error messages of the three endpoints: none names the server's folders (its
    data and models dirs, the temp dir, home, site-packages)."""
    import site
    import tempfile

    texts: list[str] = []
    _, listing = client.predict(handle_file(str(media["clip"])), 3, "left_to_right", "classic",
                                api_name="/detect_faces")
    texts.append(json.dumps(listing))
    _, info = client.predict(video=handle_file(str(media["clip"])), face=handle_file(str(media["face"])),
                             target_faces="1", engine="classic", frame=2, api_name="/preview")
    texts.append(json.dumps(info))
    _, report = client.predict(video=handle_file(str(media["clip"])), face=handle_file(str(media["face"])),
                               target_faces="1", engine="classic", api_name="/swap")
    texts.append(json.dumps(report))
    for call in (lambda: client.predict(video=handle_file(str(media["clip"])), face=handle_file(str(media["blank"])),
                                        engine="classic", api_name="/swap"),
                 lambda: client.predict(handle_file(str(media["text"])), 0, "left_to_right", "classic",
                                        api_name="/detect_faces"),
                 lambda: client.predict(video=handle_file(str(media["clip"])), face=handle_file(str(media["face"])),
                                        engine="neural", api_name="/preview")):
        with pytest.raises(AppError) as caught:
            call()
        texts.append(str(caught.value))
    host = {str(live.settings.data_dir), str(live.settings.models_dir), tempfile.gettempdir().rstrip("/") + "/",
            str(Path.home()) + "/", "/root/", "site-packages", *site.getsitepackages()}
    leaks = [(path, text[:200]) for text in texts for path in host if path in text]
    assert not leaks, leaks
    assert report["frames_swapped"] > 0 and len(texts) == 6
