"""The queue under load and across a crash: 50 parallel submissions all finish with sane queue positions, and a
server killed with SIGKILL while jobs are queued finishes them after a restart. The fake runner keeps these fast."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from api_support import FakeRunner, FakeRuntime, free_socket, live_server
from media_factory import ClipSpec, hanks_photo, row_layout, t1_patches, write_clip

from faceswap.config import Settings
from faceswap.server import create_app

pytestmark = pytest.mark.slow  # real swaps through subprocesses, servers or clients: the full run only

TESTS = Path(__file__).parent
MODEL = "openoctopus/video-face-swap"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    import cv2

    folder = tmp_path_factory.mktemp("load-media")
    clip = write_clip(folder / "clip.mp4", t1_patches(100)[:1], row_layout(1, 100, 320, 240),
                      ClipSpec(width=320, height=240, fps=10, frames=6, audio=False))
    ok, jpeg = cv2.imencode(".jpg", hanks_photo())
    assert ok
    return {"clip": clip.read_bytes(), "body": {"model": MODEL, "input": {
        "video": "data:video/mp4;base64," + base64.b64encode(clip.read_bytes()).decode(),
        "face_image": "data:image/jpeg;base64," + base64.b64encode(jpeg.tobytes()).decode()}}}


def test_fifty_parallel_submissions_all_finish(tmp_path: Path, inputs: dict) -> None:
    settings = Settings(data_dir=tmp_path / "data", models_dir=tmp_path / "models", workers=2,
                        rate_limit_per_minute=1000)
    runner = FakeRunner(frames=4, delay_s=0.01, settings=settings)
    app = create_app(settings, with_ui=False, runtime=FakeRuntime(settings), runner=runner)
    seen: dict[str, list[tuple[str, int | None, int]]] = {}
    lock = threading.Lock()

    def one(base: str) -> dict:
        resp = requests.post(f"{base}/v1/videos/generations", json=inputs["body"], timeout=60)
        assert resp.status_code == 200, resp.text
        task_id = resp.json()["id"]
        while True:
            task = requests.get(f"{base}/v1/tasks/{task_id}", timeout=60).json()
            with lock:
                seen.setdefault(task_id, []).append((task["status"], task["queue"]["position"],
                                                     task["queue"]["size"]))
            if task["status"] not in ("queued", "processing"):
                return task
            time.sleep(0.05)

    with live_server(app) as base, ThreadPoolExecutor(50) as pool:
        tasks = list(pool.map(lambda _: one(base), range(50)))
        outputs = [requests.get(task["output_payload"]["assets"][0]["url"], timeout=60).content for task in tasks]

    assert len({task["id"] for task in tasks}) == 50
    assert [task["status"] for task in tasks] == ["succeeded"] * 50
    assert all(output == inputs["clip"] for output in outputs)
    assert len({task["output_payload"]["assets"][0]["url"] for task in tasks}) == 50
    assert len(runner.calls) == 50, "each job ran exactly once"
    queued_positions = []
    for observations in seen.values():
        positions = [position for status, position, _ in observations if status == "queued"]
        queued_positions += positions
        assert all(1 <= position <= 50 for position in positions)
        assert positions == sorted(positions, reverse=True), "a job never moves back in the queue"
        assert all(position == 0 for status, position, _ in observations if status == "processing")
        assert all(position is None for status, position, _ in observations if status == "succeeded")
        assert all(0 <= size <= 50 for _, _, size in observations)
    assert max(queued_positions) > 5, "the load really queued jobs"


def _spawn(data_dir: Path, port: int, frames: int, delay_s: float) -> subprocess.Popen:
    env = {**os.environ, "FACESWAP_DATA_DIR": str(data_dir), "FACESWAP_MODELS_DIR": str(data_dir.parent / "models"),
           "PORT": str(port), "FAKE_FRAMES": str(frames), "FAKE_DELAY_S": str(delay_s), "FACESWAP_WORKERS": "1",
           "PYTHONPATH": os.pathsep.join([str(TESTS), str(TESTS.parent), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, "-c", "import api_support; api_support.serve_fake_from_env()"],
                            env=env, cwd=TESTS, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _wait_up(base: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {process.stderr.read().decode()[-2000:]}")
        try:
            if requests.get(base + "/", timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    raise TimeoutError("server did not answer")


def test_a_killed_server_finishes_its_queue_after_a_restart(tmp_path: Path, inputs: dict) -> None:
    data_dir = tmp_path / "data"
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    base = f"http://127.0.0.1:{port}"
    first = _spawn(data_dir, port, frames=200, delay_s=0.05)
    try:
        _wait_up(base, first)
        ids = [requests.post(f"{base}/v1/videos/generations", json=inputs["body"], timeout=60).json()["id"]
               for _ in range(4)]
        deadline = time.monotonic() + 30
        while requests.get(f"{base}/v1/tasks/{ids[0]}", timeout=10).json()["progress"] <= 0:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        states = [requests.get(f"{base}/v1/tasks/{task_id}", timeout=10).json()["status"] for task_id in ids]
        assert states == ["processing", "queued", "queued", "queued"]
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(30)

    second = _spawn(data_dir, port, frames=3, delay_s=0.0)
    try:
        _wait_up(base, second)
        finished = []
        for task_id in ids:
            deadline = time.monotonic() + 60
            while (task := requests.get(f"{base}/v1/tasks/{task_id}", timeout=10).json())["status"] in (
                    "queued", "processing"):
                assert time.monotonic() < deadline
                time.sleep(0.1)
            finished.append(task)
        assert [task["status"] for task in finished] == ["succeeded"] * 4
        for task in finished:
            assert requests.get(task["output_payload"]["assets"][0]["url"], timeout=30).content == inputs["clip"]
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(30)
