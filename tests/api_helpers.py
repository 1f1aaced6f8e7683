"""Shared pieces of the REST tests (tests/test_api.py, tests/test_api_rules.py): a server factory with the fake
runner, small media, request builders in each dialect, and the checker for each dialect's error shape."""

from __future__ import annotations

import base64
import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import requests
from api_support import FakeRunner, FakeRuntime, live_server
from media_factory import ClipSpec, hanks_photo, row_layout, t1_patches, write_clip

from faceswap.config import Settings
from faceswap.jobs import JobService
from faceswap.server import create_app

KEY, OTHER_KEY = "test-key-1", "test-key-2"
OO_MODEL = "openoctopus/video-face-swap"


@dataclass
class Server:
    base: str
    service: JobService
    runner: FakeRunner
    settings: Settings


def make_media(folder: Path) -> dict[str, Path]:
    """A small two-face clip with audio and a face photo, written into `folder`."""
    import cv2

    clip = write_clip(folder / "clip.mp4", t1_patches(100)[:2], row_layout(2, 100, 320, 240),
                      ClipSpec(width=320, height=240, fps=10, frames=8))
    face = folder / "face.jpg"
    cv2.imwrite(str(face), hanks_photo())
    return {"video": clip, "face": face}


@contextlib.contextmanager
def server_factory(tmp_path: Path, redis_url: str | None = None) -> Iterator[Callable[..., Server]]:
    """`start(runner=None, **settings changes)` serves a fresh app (keys required, fake runner) until the end.

    With `redis_url`, the app runs the celery backend on that Redis and a Celery worker thread runs its jobs; there
    starting an app stops the test's previous one (app and worker). Two Celery worker threads in one process share
    kombu's event loop (a process-wide hub): one then blocks reading the other's broadcast socket and never stops.
    The REST tests start apps one after the other and use only the latest."""
    stack = contextlib.ExitStack()
    count = 0

    def start(runner: FakeRunner | None = None, **changes: object) -> Server:
        nonlocal count, stack
        count += 1
        settings = Settings(data_dir=tmp_path / f"data{count}", models_dir=tmp_path / "models",
                            api_keys=frozenset({KEY, OTHER_KEY}), rate_limit_per_minute=1000,
                            fetch_timeout_s=10).with_(**changes)
        runner = runner or FakeRunner(frames=3)
        runner.settings = settings
        if redis_url is not None:
            from celery_support import celery_settings, flush, worker_thread

            stack.close()
            stack = contextlib.ExitStack()
            # Each app on a database of its own: no message the previous app left queued reaches this one's worker.
            own_url = f"{redis_url.rsplit('/', 1)[0]}/{count % 16}"
            flush(own_url)
            settings = runner.settings = celery_settings(settings, own_url)
            stack.enter_context(worker_thread(settings, FakeRuntime(settings), runner))
        app = create_app(settings, with_ui=False, runtime=FakeRuntime(settings), runner=runner)
        base = stack.enter_context(live_server(app))
        return Server(base, app.state.service, runner, settings)

    try:
        yield start
    finally:
        stack.close()


def data_uri(path: Path, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}"


def auth(key: str = KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def oo_create(server: Server, media: dict[str, Path], key: str = KEY, **extra: object) -> requests.Response:
    body = {"model": OO_MODEL, "prompt": "swap", "input": {
        "video": data_uri(media["video"], "video/mp4"), "face_image": data_uri(media["face"], "image/jpeg"),
        "target_index": 0, **extra}}
    return requests.post(f"{server.base}/v1/videos/generations", json=body, headers=auth(key), timeout=60)


def seed_poll(base: str, task_id: str, key: str = KEY, timeout_s: float = 60, interval_s: float = 0.2) -> dict:
    """The OpenOctopus seed's own polling loop (Python version), with a shorter interval."""
    started = time.time()
    while time.time() - started < timeout_s:
        resp = requests.get(f"{base}/v1/tasks/{task_id}", headers={"Authorization": f"Bearer {key}"}, timeout=30)
        task = resp.json()
        if resp.status_code >= 400:
            raise RuntimeError(task.get("error", {}).get("message", "task query failed"))
        status = task.get("status")
        if status in ("queued", "processing"):
            time.sleep(interval_s)
            continue
        if status == "succeeded":
            return task
        raise RuntimeError(task.get("error_message", "task failed"))
    raise TimeoutError(task_id)


def wait_finished(server: Server, job_id: str) -> None:
    assert server.service.wait(job_id, timeout=30).finished


def segmind_body(media: dict[str, Path], **extra: object) -> dict:
    return {"source_img": data_uri(media["face"], "image/jpeg"), "video_input": data_uri(media["video"], "video/mp4"),
            "face_restore": False, "input_faces_index": "0", "source_faces_index": "0", "frame_load_cap": 0,
            "detect_gender_input": "no", "detect_gender_source": "no", "base_64": False, **extra}


def error_of(resp: requests.Response, dialect: str) -> tuple[str | None, str]:
    """(code, message) from an error body, checking it has exactly the dialect's shape."""
    body = resp.json()
    if dialect == "segmind":
        assert set(body) == {"error"} and isinstance(body["error"], str)
        return None, body["error"]
    if dialect == "wavespeed":
        assert set(body) == {"code", "message", "data"} and body["code"] == resp.status_code and body["data"] is None
        return None, body["message"]
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "retryable"}
    return body["error"]["code"], body["error"]["message"]
