"""`faceswap worker`: a Celery worker that runs jobs from the shared JobStore (Redis) and BlobStore.

One worker per GPU, one process per worker (`-c 1`): `--device N` makes only GPU N visible to it
(CUDA_VISIBLE_DEVICES=N), so its runtime's sessions run on that card as device 0. The worker's parent process
loads nothing; its pool process builds the store, blob store and `Runtime` in `worker_process_init` and loads the
default engine there (after the fork: CUDA does not survive one), so the first job does not pay for it and a child
that replaces a killed one is ready before it takes a message.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from collections.abc import Callable
from typing import Any

from celery import Celery
from celery.signals import worker_process_init

from faceswap.config import Settings
from faceswap.errors import FaceSwapError
from faceswap.jobs.celery_executor import QUEUE, TASK_NAME, celery_app, execute, send
from faceswap.jobs.executor import Runner, TaskContext, clear_stale_scratch
from faceswap.jobs.interfaces import Task

log = logging.getLogger(__name__)


class WorkerProcess:
    """What one worker process runs jobs with, built once in that process: in `worker_process_init` for a prefork
    child, or on the first task for a pool that does not fork (solo or threads, as tests run it in-process)."""

    def __init__(self, settings: Settings, *, runtime: Any = None, runner: Runner | None = None,
                 preload: str = "auto") -> None:
        self.settings = settings
        self.dispatch: Callable[[Task], None] | None = None
        """How its tasks queue new ones (a long video's segments, then the stitch): set by `register`."""
        self._runtime = runtime
        self._runner = runner
        self._preload = preload
        self._context: TaskContext | None = None
        self._lock = threading.Lock()

    def context(self) -> TaskContext:
        with self._lock:
            if self._context is None:
                self._context = self._build()
            return self._context

    def load(self, **_: Any) -> None:
        """`worker_process_init`: build the context and load the default engine's models now."""
        context = self.context()
        clear_stale_scratch(context)  # a killed predecessor's, on this host
        if self._preload == "none":
            return
        try:
            engine = context.runtime.engine(self._preload)
            log.info("worker pid %d ready: %s engine loaded", os.getpid(), getattr(engine, "name", self._preload))
        except Exception as exc:  # a job will report it properly; the worker still serves the others
            log.warning("worker pid %d: preloading the %s engine failed: %s", os.getpid(), self._preload, exc)

    def _build(self) -> TaskContext:
        from faceswap.jobs import backends

        runtime = self._runtime
        if runtime is None:
            from faceswap.runtime import Runtime

            runtime = Runtime(self.settings)
        runner = self._runner
        if runner is None:
            from faceswap.pipeline import run as runner
        return TaskContext(store=backends.build_store(self.settings), blobs=backends.build_blobs(self.settings),
                           settings=self.settings, runtime=runtime, runner=runner, dispatch=self.dispatch)


def register(app: Celery, worker: WorkerProcess) -> None:
    """Register the one task every dispatched `Task` runs through; tasks it queues go to the same app."""
    worker.dispatch = functools.partial(send, app)

    @app.task(name=TASK_NAME, shared=False)  # this app only: each worker binds its own WorkerProcess
    def run(task_json: str) -> str:
        return execute(worker.context(), Task.from_json(task_json), redispatch=functools.partial(send, app))


def check_celery_settings(settings: Settings) -> None:
    if settings.backend != "celery" or not settings.redis_url:
        raise FaceSwapError("invalid_request", "A worker needs the celery backend: set FACESWAP_BACKEND=celery and "
                            "FACESWAP_REDIS_URL=redis://host:6379/0 (the same as the app's).")


def run_worker(settings: Settings, *, concurrency: int = 1, hostname: str | None = None, loglevel: str = "INFO",
               preload: str = "auto") -> None:
    """Run a Celery worker in this process until it is stopped (SIGTERM: finish the running job first)."""
    check_celery_settings(settings)
    app = celery_app(settings)
    worker = WorkerProcess(settings, preload=preload)
    register(app, worker)
    worker_process_init.connect(worker.load, weak=False)
    argv = ["worker", f"--concurrency={max(1, concurrency)}", "--pool=prefork", f"--loglevel={loglevel}",
            f"--queues={QUEUE}", "--without-mingle", "--without-gossip"]
    if hostname:
        argv.append(f"--hostname={hostname}")
    log.info("worker for %s: %d process(es), devices %s", QUEUE, concurrency,
             os.environ.get("CUDA_VISIBLE_DEVICES", "all visible"))
    app.worker_main(argv)
