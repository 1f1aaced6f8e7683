"""The celery backend in tests: `faceswap worker` processes, or a worker thread inside the test process.

Worker processes are the real deployment (prefork parent + one pool process that loads the classic engine in
`worker_process_init`); each runs in its own session so a test can signal its pool process or the whole group.
The in-process worker (Celery's solo pool in a thread) runs a test's fake runner, for the REST tests that are about
the HTTP contract and want to run in both modes cheaply.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import redis

from faceswap.config import Settings

READY = re.compile(r"worker pid (\d+) ready")


def celery_settings(settings: Settings, redis_url: str, **changes: object) -> Settings:
    return settings.with_(backend="celery", redis_url=redis_url, **changes)


def worker_env(settings: Settings) -> dict[str, str]:
    """The environment a `faceswap worker` needs to share the app's jobs and files."""
    env = dict(os.environ)
    env.update({"FACESWAP_BACKEND": "celery", "FACESWAP_REDIS_URL": settings.redis_url or "",
                "FACESWAP_DATA_DIR": str(settings.data_dir), "FACESWAP_MODELS_DIR": str(settings.models_dir),
                "FACESWAP_LEASE_STALE_S": repr(settings.lease_stale_s),
                "FACESWAP_CANCEL_GRACE_S": repr(settings.cancel_grace_s),
                "FACESWAP_VISIBILITY_TIMEOUT_S": repr(settings.visibility_timeout_s),
                "FACESWAP_URL_ALLOWLIST": ",".join(settings.url_allowlist),
                "FACESWAP_SEGMENT_AFTER_S": repr(settings.segment_after_s),
                "FACESWAP_SEGMENT_S": repr(settings.segment_s), "FACESWAP_BLOBS": settings.blobs,
                "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent.parent),
                                               env.get("PYTHONPATH", "")]).rstrip(os.pathsep)})
    return env


@dataclass
class WorkerProc:
    name: str
    process: subprocess.Popen
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def child_pids(self) -> list[int]:
        """Pool processes that announced themselves ready and are still alive."""
        alive = []
        for pid in {int(pid) for pid in READY.findall(self.text())}:
            try:
                os.kill(pid, 0)
                alive.append(pid)
            except ProcessLookupError:
                pass
        return alive

    def wait_ready(self, count: int = 1, timeout: float = 90) -> int:
        """Wait for `count` pool processes to have announced themselves (a replacement after a kill counts too);
        returns the newest one's pid."""
        deadline = time.monotonic() + timeout
        while len(READY.findall(self.text())) < count:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker {self.name} exited:\n{self.text()[-3000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"worker {self.name} not ready:\n{self.text()[-3000:]}")
            time.sleep(0.1)
        return int(READY.findall(self.text())[-1])

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # the group this test started: parent and pool process
        self.process.wait(30)


@contextlib.contextmanager
def worker_processes(settings: Settings, folder: Path, names: tuple[str, ...] = ("w1", "w2"),
                     preload: str = "classic") -> Iterator[list[WorkerProc]]:
    """`faceswap worker` processes on the settings' Redis and data dir, started together and ready."""
    env = worker_env(settings)
    workers: list[WorkerProc] = []
    try:
        for name in names:
            log = folder / f"{name}.log"
            handle = log.open("wb")
            process = subprocess.Popen(
                [sys.executable, "-m", "faceswap", "worker", "-n", f"{name}@%h", "--preload", preload],
                env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)
            handle.close()
            workers.append(WorkerProc(name, process, log))
        for worker in workers:
            worker.wait_ready()
        yield workers
    finally:
        for worker in workers:
            worker.stop()


@contextlib.contextmanager
def worker_thread(settings: Settings, runtime: Any, runner: Any) -> Iterator[None]:
    """A Celery worker inside this process (solo pool, in a thread) running `runner`: the REST tests' fake one."""
    from celery.contrib.testing.worker import start_worker

    from faceswap.jobs.celery_executor import celery_app
    from faceswap.jobs.worker import WorkerProcess, register

    app = celery_app(settings)
    register(app, WorkerProcess(settings, runtime=runtime, runner=runner, preload="none"))
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30, loglevel="WARNING"):
        yield
    app.close()


def flush(redis_url: str) -> None:
    """Forget every job and message (tests that share one redis-server start clean)."""
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    client.close()


def suite_of(module: ModuleType, skip: dict[str, str] | None = None) -> dict[str, Callable[..., Any]]:
    """Every `test_*` function of `module`, to be collected again by a celery-mode module (which overrides the
    fixture that starts the app): new tests of the embedded suite run in both modes without being listed. `skip`
    names tests that cannot run on the celery backend, with the reason; those are wrapped (a mark on the original
    function would skip it in its own module too)."""
    skip = skip or {}
    unknown = set(skip) - set(vars(module))
    if unknown:
        raise ValueError(f"no such tests in {module.__name__}: {sorted(unknown)}")
    found: dict[str, Callable[..., Any]] = {}
    for name, value in vars(module).items():
        if not (name.startswith("test_") and callable(value)):
            continue
        if name in skip:
            value = pytest.mark.skip(reason=skip[name])(functools.wraps(value)(_skipped))
        found[name] = value
    return found


def _skipped(*args: Any, **kwargs: Any) -> None:
    raise AssertionError("a skipped test ran")
