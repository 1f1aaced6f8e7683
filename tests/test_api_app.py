"""`python app.py` as a user runs it: it answers GET / (the Gradio page) within seconds, keeps the REST API and its
dialect errors working beside the UI, and warns when it listens beyond loopback without keys or a UI login."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from api_support import free_socket

ROOT = Path(__file__).parent.parent


def _start(tmp_path: Path, **env: str) -> tuple[subprocess.Popen, str]:
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    log = (tmp_path / "server.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "app.py")], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "PORT": str(port), "FACESWAP_DATA_DIR": str(tmp_path / "data"),
             "FACESWAP_MODELS_DIR": str(tmp_path / "models"), "HF_HUB_OFFLINE": "1", **env})
    return process, f"http://127.0.0.1:{port}"


def _wait_for_root(process: subprocess.Popen, base: str, tmp_path: Path, limit_s: float = 90) -> float:
    started = time.monotonic()
    while time.monotonic() - started < limit_s:
        if process.poll() is not None:
            pytest.fail("app.py exited:\n" + (tmp_path / "server.log").read_text()[-3000:])
        try:
            if requests.get(base + "/", timeout=5).status_code == 200:
                return time.monotonic() - started
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    pytest.fail("app.py did not answer GET / in time:\n" + (tmp_path / "server.log").read_text()[-3000:])


@pytest.mark.slow
def test_app_serves_ui_and_rest_side_by_side(tmp_path: Path) -> None:
    process, base = _start(tmp_path, GRADIO_SERVER_NAME="0.0.0.0", FACESWAP_API_KEYS="")
    try:
        seconds = _wait_for_root(process, base, tmp_path)
        print(f"app.py answered GET / after {seconds:.1f} s")
        assert "<html" in requests.get(base + "/", timeout=10).text.lower()
        assert requests.get(base + "/health", timeout=10).json()["status"] == "ok"
        assert requests.get(base + "/docs", timeout=10).status_code == 200
        unknown = requests.get(base + "/v2/requests/nope/status", timeout=10)
        assert unknown.status_code == 404 and isinstance(unknown.json()["error"], str)
        route = requests.get(base + "/api/v3/nothing/here", timeout=10)
        assert route.status_code == 404 and route.json()["data"] is None, "the UI at / does not swallow API paths"
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
    log = (tmp_path / "server.log").read_text()
    assert "no API keys" in log and "no UI login" in log


@pytest.mark.slow
def test_app_is_quiet_on_loopback(tmp_path: Path) -> None:
    process, base = _start(tmp_path, GRADIO_SERVER_NAME="127.0.0.1")
    try:
        _wait_for_root(process, base, tmp_path)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
    log = (tmp_path / "server.log").read_text()
    # uvicorn re-raises SIGTERM after a graceful shutdown, so the exit status is -15 or 0
    assert process.returncode in (0, -signal.SIGTERM) and "Application shutdown complete" in log
    assert "no API keys" not in log
