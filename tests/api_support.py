"""Helpers for the job-core and REST tests: a fake pipeline runner, a live server on 127.0.0.1, a file server.

The fake runner stands in for `faceswap.pipeline.run` where a test is about the job core, not about swapping (50
parallel jobs, restarts, cancel timing): it resolves its inputs like the pipeline does (so URLs really are fetched
and data URIs decoded), reports progress per "frame", honours `should_cancel`, and writes a real output file (a copy
of the input video). Tests about swapping use the real pipeline.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn

from faceswap.config import Settings
from faceswap.errors import FaceSwapError
from faceswap.media.inputs import resolve_input
from faceswap.options import SwapOptions
from faceswap.report import FaceCounts, Progress, SwapReport, SwapResult


@dataclass
class FakeRunner:
    frames: int = 6
    delay_s: float = 0.0
    fail_code: str | None = None
    settings: Settings | None = None
    calls: list[str] = field(default_factory=list)
    started: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, options: SwapOptions, runtime: Any, output: Path, *,
                 progress: Callable[[Progress], None] | None = None, should_cancel: Callable[[], bool] | None = None,
                 workdir: Path | None = None) -> SwapResult:
        with self._lock:
            self.calls.append(options.video)
        self.started.set()
        settings = self.settings or getattr(runtime, "settings", None)
        scratch = workdir or output.parent
        video = resolve_input(options.video, scratch, settings, field="video")
        resolve_input(options.face, scratch, settings, field="face")
        for frame in range(self.frames):
            if should_cancel is not None and should_cancel():
                raise FaceSwapError("task_cancelled")
            time.sleep(self.delay_s)
            if progress is not None:
                progress(Progress(frame + 1, self.frames))
        if self.fail_code:
            raise FaceSwapError(self.fail_code, f"fake runner failed with {self.fail_code}")
        target = output.with_suffix(video.suffix or ".mp4")
        shutil.copyfile(video, target)
        report = SwapReport(engine="classic", provider="cpu", frames=self.frames, frames_swapped=self.frames,
                            faces_per_frame=FaceCounts(1, 1, 1.0), width=0, height=0, fps=0.0, duration_s=0.0,
                            has_audio=False, output_format=target.suffix.lstrip("."), restore=options.restore,
                            elapsed_s=self.frames * self.delay_s)
        return SwapResult(target, report)


class FakeRuntime:
    def __init__(self, settings: Settings) -> None:
        from faceswap.models.store import ModelStore

        self.settings = settings
        self.models = ModelStore(settings)


def free_socket(host: str = "127.0.0.1") -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    return sock


@contextlib.contextmanager
def live_server(app: Any) -> Iterator[str]:
    """Serve `app` with uvicorn in a thread on a random 127.0.0.1 port; yields the base URL."""
    sock = free_socket()
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    # Replaced per server by a subclass: path → Location; path → body sent with no Content-Length; slow paths.
    redirects: dict[str, str] = {}  # noqa: RUF012
    streams: dict[str, bytes] = {}  # noqa: RUF012
    slow: frozenset[str] = frozenset()
    seen_hosts: list[str] = []  # noqa: RUF012

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.seen_hosts.append(self.headers.get("Host", ""))
        if self.path in self.slow:
            time.sleep(3)
        target = self.redirects.get(self.path)
        if target is not None:
            self.send_response(302)
            self.send_header("Location", target)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = self.streams.get(self.path)
        if body is not None:  # close-delimited body: the size is only known by reading it
            self.close_connection = True
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()


@contextlib.contextmanager
def file_server(directory: Path, *, host: str = "127.0.0.1", redirects: dict[str, str] | None = None,
                streams: dict[str, bytes] | None = None, slow: frozenset[str] = frozenset(),
                seen_hosts: list[str] | None = None) -> Iterator[str]:
    """A plain HTTP server for `directory`, plus `redirects` (path → Location), `streams` (path → a body sent
    without Content-Length) and `slow` paths (answered after 3 s); yields its base URL."""
    handler = type("Handler", (_QuietHandler,), {"redirects": dict(redirects or {}), "streams": dict(streams or {}),
                                                 "slow": slow, "seen_hosts": seen_hosts if seen_hosts is not None
                                                 else []})
    with serve_handler(functools.partial(handler, directory=str(directory)), host=host) as base:
        yield base


@contextlib.contextmanager
def serve_handler(handler: Callable[..., http.server.BaseHTTPRequestHandler], *, host: str = "127.0.0.1",
                  daemon_threads: bool = False) -> Iterator[str]:
    """`handler` served on `host` at a free port from a background thread; yields the base URL.
    `daemon_threads`: requests still being answered (a trickling body) do not hold up the shutdown."""
    server = http.server.ThreadingHTTPServer((host, 0), handler)
    server.daemon_threads = daemon_threads
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def serve_fake_from_env() -> None:
    """Entry point for a server subprocess (restart tests): settings from FACESWAP_* variables, the fake runner
    shaped by FAKE_FRAMES and FAKE_DELAY_S, listening on 127.0.0.1:$PORT."""
    import os

    from faceswap.server import create_app

    settings = Settings.from_env()
    runner = FakeRunner(frames=int(os.environ.get("FAKE_FRAMES", "3")),
                        delay_s=float(os.environ.get("FAKE_DELAY_S", "0")), settings=settings)
    app = create_app(settings, with_ui=False, runtime=FakeRuntime(settings), runner=runner)
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ["PORT"]), log_level="warning")
