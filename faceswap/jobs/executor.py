"""Executor: a bounded pool of worker threads, and `run_task`, the one way any executor runs a job.

Workers pull from the JobStore (oldest queued first), so jobs queued before a restart simply run after it.
`run_task` heartbeats every few frames (or every second): the answer tells it whether the job was cancelled or its
lease lost, and the pipeline's `should_cancel` turns that into a clean stop between frames. Results are recorded
under the lease, and an output that is not recorded (cancelled, lost, failed) is deleted, so a job that did not
succeed leaves no file behind. A Celery executor would call the same `run_task` from its task body.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from faceswap.config import Settings
from faceswap.errors import FaceSwapError, as_faceswap_error
from faceswap.jobs.blobs import BlobStore
from faceswap.jobs.store import HeartbeatAnswer, JobStore, Lease
from faceswap.options import SwapOptions
from faceswap.report import Progress, SwapResult

log = logging.getLogger(__name__)

HEARTBEAT_EVERY_FRAMES = 5
HEARTBEAT_EVERY_S = 1.0
IDLE_POLL_S = 1.0
"""How often an idle worker looks at the store without being woken (other processes may have queued work)."""


class Runner(Protocol):
    def __call__(self, options: SwapOptions, runtime: Any, output: Path, *,
                 progress: Callable[[Progress], None] | None = None,
                 should_cancel: Callable[[], bool] | None = None,
                 workdir: Path | None = None) -> SwapResult: ...


@dataclass
class TaskContext:
    """What `run_task` needs; built once by the service and shared by every worker."""

    store: JobStore
    blobs: BlobStore
    settings: Settings
    runtime: Any
    runner: Runner
    shutdown: threading.Event
    on_finished: Callable[[str], None] = lambda job_id: None
    cancelled: set[str] = field(default_factory=set)
    """Jobs cancelled in this process, so their workers stop at once instead of at the next heartbeat."""


class _Heartbeat:
    """Progress and stop bookkeeping for one running task."""

    def __init__(self, context: TaskContext, lease: Lease) -> None:
        self._context = context
        self._lease = lease
        self.answer: HeartbeatAnswer = "ok"
        self.frames_done = self.frames_total = 0
        self._beat_frames = 0
        self._beat_time = 0.0
        limit = context.settings.job_timeout_s
        self._deadline = time.monotonic() + limit if limit > 0 else None

    @property
    def stopping(self) -> bool:
        return (self.answer != "ok" or self._context.shutdown.is_set()
                or self._lease.job_id in self._context.cancelled)

    def progress(self, progress: Progress) -> None:
        self.frames_done, self.frames_total = progress.frames_done, progress.frames_total
        if (self.frames_done - self._beat_frames >= HEARTBEAT_EVERY_FRAMES
                or time.monotonic() - self._beat_time >= HEARTBEAT_EVERY_S
                or (self.frames_total and self.frames_done >= self.frames_total)):
            self.beat()

    def should_cancel(self) -> bool:
        if self._deadline is not None and time.monotonic() > self._deadline:  # the per-job wall-clock limit
            limit = self._context.settings.job_timeout_s
            raise FaceSwapError("timeout", f"The job ran longer than the {limit:g} s this server allows "
                                "for one job; swap a shorter part (start/end) or a smaller video.")
        if not self.stopping and time.monotonic() - self._beat_time >= HEARTBEAT_EVERY_S:
            self.beat()
        return self.stopping

    def beat(self) -> None:
        if self.answer == "ok":
            self.answer = self._context.store.heartbeat(self._lease, self.frames_done, self.frames_total)
            self._beat_frames, self._beat_time = self.frames_done, time.monotonic()


def run_task(context: TaskContext, lease: Lease) -> None:
    """Run one claimed job to its end and record the outcome under its lease."""
    job_id = lease.job_id
    heartbeat = _Heartbeat(context, lease)
    workdir = context.settings.data_dir / "work" / f"{job_id}-{lease.attempt}"
    try:
        record = context.store.get(job_id)
        if record is None or record.status != "processing":
            return
        options = SwapOptions.model_validate(record.options)
        workdir.mkdir(parents=True, exist_ok=True)
        heartbeat.beat()
        started = time.monotonic()
        result = context.runner(options, context.runtime, workdir / "output", progress=heartbeat.progress,
                                should_cancel=heartbeat.should_cancel, workdir=workdir)
        heartbeat.beat()
        if heartbeat.answer != "ok" or job_id in context.cancelled:  # a finished result survives a shutdown
            _stopped(context, lease, heartbeat)
            return
        _record_success(context, lease, result)
        log.info("job %s succeeded in %.1f s (attempt %d)", job_id, time.monotonic() - started, lease.attempt)
    except FaceSwapError as exc:
        if heartbeat.stopping or exc.code == "task_cancelled":
            _stopped(context, lease, heartbeat)
        else:
            log.info("job %s failed: %s (%s)", job_id, exc.code, exc.message)
            context.store.fail(lease, exc.to_dict())
    except Exception as exc:
        log.exception("job %s crashed", job_id)
        context.store.fail(lease, as_faceswap_error(exc).to_dict())
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        context.cancelled.discard(job_id)
        context.on_finished(job_id)


def _record_success(context: TaskContext, lease: Lease, result: SwapResult) -> None:
    output = Path(result.output)
    if not output.is_file():
        raise FaceSwapError("video_output_missing", "The swap finished without writing its output file.")
    info = context.blobs.put(output, filename=f"faceswap-{lease.job_id[:8]}{output.suffix.lower()}", move=True,
                             limit=False)
    report = result.report.to_dict()
    if not context.store.complete(lease, output_file_id=info.id, engine=result.report.engine, report=report):
        log.info("job %s finished but its lease was gone (cancelled or re-run); result dropped", lease.job_id)
        context.blobs.delete(info.id)


def _stopped(context: TaskContext, lease: Lease, heartbeat: _Heartbeat) -> None:
    if heartbeat.answer == "lost":
        log.info("job %s: lease lost, stopped", lease.job_id)
    elif context.shutdown.is_set() and heartbeat.answer == "ok":
        context.store.release(lease)
        log.info("job %s: server stopping, put back in the queue", lease.job_id)
    elif heartbeat.answer == "ok" and lease.job_id not in context.cancelled:
        # The runner gave up by itself with task_cancelled: record it as a cancel.
        context.store.request_cancel(lease.job_id)
    else:
        log.info("job %s: cancelled, stopped", lease.job_id)


class ThreadExecutor:
    """`workers` threads that claim jobs from the store and run them with `run_task`."""

    def __init__(self, context: TaskContext, workers: int) -> None:
        self._context = context
        self._workers = max(1, workers)
        self._wake = threading.Condition()
        self._pending_wakeups = 0
        self._threads: list[threading.Thread] = []

    @property
    def size(self) -> int:
        return self._workers

    def start(self) -> None:
        for number in range(self._workers):
            thread = threading.Thread(target=self._loop, name=f"faceswap-worker-{number}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def dispatch(self) -> None:
        """A job was queued: wake one idle worker."""
        with self._wake:
            self._pending_wakeups += 1
            self._wake.notify()

    def cancel(self, job_id: str) -> None:
        """Stop a job running in this process at its next frame."""
        self._context.cancelled.add(job_id)

    def stop(self, timeout: float = 10.0) -> None:
        self._context.shutdown.set()
        with self._wake:
            self._wake.notify_all()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        alive = [thread.name for thread in self._threads if thread.is_alive()]
        if alive:
            log.warning("workers still busy at shutdown: %s", ", ".join(alive))
        self._threads.clear()

    def _loop(self) -> None:
        shutdown = self._context.shutdown
        while not shutdown.is_set():
            try:
                lease = self._context.store.claim()
            except Exception:
                log.exception("claiming a job failed; retrying")
                lease = None
            if lease is not None:
                run_task(self._context, lease)
                continue
            with self._wake:
                if self._pending_wakeups == 0 and not shutdown.is_set():
                    self._wake.wait(IDLE_POLL_S)
                self._pending_wakeups = max(0, self._pending_wakeups - 1)
