"""X-Forwarded-For is believed only from peers in FACESWAP_TRUSTED_PROXIES: rotating it from anywhere else does
not get around the per-address rate limit."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import uvicorn
from api_support import FakeRunner, FakeRuntime, free_socket

from faceswap.config import Settings
from faceswap.server import create_app


@contextlib.contextmanager
def served_like_app_py(settings: Settings) -> Iterator[str]:
    """The app behind uvicorn configured as app.py configures it."""
    app = create_app(settings, with_ui=False, runtime=FakeRuntime(settings), runner=FakeRunner(settings=settings))
    sock = free_socket()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", proxy_headers=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()


def tickets(base: str, count: int) -> list[int]:
    return [requests.post(f"{base}/api/v3/media/uploads", json={"filename": "a.mp4", "size": 10}, timeout=30,
                          headers={"X-Forwarded-For": f"203.0.113.{index}"}).status_code for index in range(count)]


def settings_for(tmp_path: Path, **changes: object) -> Settings:
    return Settings(data_dir=tmp_path / "data", models_dir=tmp_path / "models", rate_limit_per_minute=2,
                    max_open_uploads=100).with_(**changes)


def test_forwarded_for_from_an_untrusted_peer_is_ignored(tmp_path: Path) -> None:
    with served_like_app_py(settings_for(tmp_path)) as base:
        assert tickets(base, 4) == [200, 200, 429, 429], "the limit counts the connecting address"


def test_forwarded_for_from_a_trusted_proxy_is_believed(tmp_path: Path) -> None:
    with served_like_app_py(settings_for(tmp_path, trusted_proxies=("127.0.0.0/8",))) as base:
        assert tickets(base, 4) == [200, 200, 200, 200], "each forwarded client has its own bucket"


def test_app_py_leaves_forwarded_headers_to_the_app(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import app

    seen: dict[str, object] = {}
    monkeypatch.setenv("FACESWAP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(app, "create_app", lambda settings: "the app")
    monkeypatch.setattr(app.uvicorn, "run", lambda target, **kwargs: seen.update(kwargs))
    app.main()
    assert seen["proxy_headers"] is False
    assert Settings.from_env({"FACESWAP_TRUSTED_PROXIES": "10.0.0.1, 192.168.0.0/16"}).trusted_proxies == (
        "10.0.0.1", "192.168.0.0/16")
