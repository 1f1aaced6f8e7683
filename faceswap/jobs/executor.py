"""Executor: `run_task`, the one way any executor runs a job, and the embedded executor (a pool of threads).

Workers pull from the JobStore (oldest queued first), so jobs queued before a restart simply run after it.
`run_task` heartbeats every few frames (and at least every quarter second while the pipeline asks whether to stop),
and from a thread every few seconds whatever the job is doing (a slow download or model load keeps its lease):
the store's answer tells it whether the job was cancelled or its lease lost — from any process — and the pipeline's
`should_cancel` turns that into a clean stop between frames. Inputs named `blob://<id>` are resolved through the
BlobStore just before the run. Results are recorded under the lease, and an output that is not recorded (cancelled,
lost, failed) is deleted, so a job that did not succeed leaves no file behind. The Celery task body
(celery_executor.execute) calls `work_on` with the `Task` it was sent.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from faceswap.config import Settings
from faceswap.errors import FaceSwapError, as_faceswap_error
from faceswap.jobs.interfaces import (
    INPUT_FIELDS,
    BlobStore,
    HeartbeatAnswer,
    JobStore,
    Lease,
    Task,
    blob_id_of,
    owned_inputs,
)
from faceswap.options import SwapOptions
from faceswap.report import Progress, SwapResult

log = logging.getLogger(__name__)

HEARTBEAT_EVERY_FRAMES = 5
HEARTBEAT_EVERY_S = 1.0
CANCEL_POLL_S = 0.25
KEEP_ALIVE_MAX_S = 5.0
"""How often a running job asks the store whether it was cancelled (the pipeline asks between frames)."""
IDLE_POLL_S = 1.0
"""How often an idle worker looks at the store without being woken (other processes may have queued work)."""


class Runner(Protocol):
    def __call__(self, options: SwapOptions, runtime: Any, output: Path, *,
                 progress: Callable[[Progress], None] | None = None,
                 should_cancel: Callable[[], bool] | None = None,
                 workdir: Path | None = None) -> SwapResult: ...


@dataclass
class TaskContext:
    """What `run_task` needs, built once per worker process: nothing in it is tied to the process that queued the
    job (a Celery worker builds its own from configuration)."""

    store: JobStore
    blobs: BlobStore
    settings: Settings
    runtime: Any
    runner: Runner
    dispatch: Callable[[Task], None] | None = None
    """How a running task hands new tasks to the executor (a long video's segments, then its stitch)."""


def _never() -> bool:
    return False


class _Heartbeat:
    """Progress and stop bookkeeping for one running task; every answer comes from the store."""

    def __init__(self, store: JobStore, lease: Lease, stopping: Callable[[], bool], timeout_s: float) -> None:
        self._store = store
        self._lease = lease
        self._stopping = stopping
        self.answer: HeartbeatAnswer = "ok"
        self.frames_done = self.frames_total = 0
        self._beat_frames = 0
        self._beat_time = 0.0
        self._timeout_s = timeout_s
        self._deadline = time.monotonic() + timeout_s if timeout_s > 0 else None
        self._lock = threading.Lock()

    @property
    def stopping(self) -> bool:
        return self.answer != "ok" or self._stopping()

    def progress(self, progress: Progress) -> None:
        self.frames_done, self.frames_total = progress.frames_done, progress.frames_total
        if (self.frames_done - self._beat_frames >= HEARTBEAT_EVERY_FRAMES
                or time.monotonic() - self._beat_time >= HEARTBEAT_EVERY_S
                or (self.frames_total and self.frames_done >= self.frames_total)):
            self.beat()

    def should_cancel(self) -> bool:
        if self._deadline is not None and time.monotonic() > self._deadline:  # the per-job wall-clock limit
            raise FaceSwapError("timeout", f"The job ran longer than the {self._timeout_s:g} s this server allows "
                                "for one job; swap a shorter part (start/end) or a smaller video.")
        if not self.stopping and time.monotonic() - self._beat_time >= CANCEL_POLL_S:
            self.beat()
        return self.stopping

    def beat(self) -> None:
        with self._lock:
            if self.answer == "ok":
                self.answer = self._store.heartbeat(self._lease, self.frames_done, self.frames_total)
                self._beat_frames, self._beat_time = self.frames_done, time.monotonic()

    @contextmanager
    def kept_alive(self, every_s: float) -> Iterator[None]:
        """Beats from a thread while the task runs, so its lease stays fresh through steps that report no frames
        (fetching inputs, loading models, preparing the face photo, storing the output) however slow the machine;
        a worker that dies stops beating, and its job goes stale as it should."""
        done = threading.Event()

        def keep_beating() -> None:
            while not done.wait(every_s) and self.answer == "ok":
                if time.monotonic() - self._beat_time >= every_s:
                    self.beat()

        thread = threading.Thread(target=keep_beating, name=f"heartbeat-{self._lease.job_id[:8]}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()


def work_on(context: TaskContext, task: Task, stopping: Callable[[], bool] = _never) -> bool:
    """Run a dispatched task: claim its job (unless the task brings a lease) and run it. False when the job was no
    longer queued (cancelled, or taken by another worker)."""
    lease = task.lease or context.store.claim(task.job_id)
    if lease is None:
        return False
    run_task(context, lease, stopping)
    return True


def run_task(context: TaskContext, lease: Lease, stopping: Callable[[], bool] = _never) -> None:
    """Run one claimed job to its end and record the outcome under its lease. `stopping` says that this worker is
    shutting down (the job then goes back to the queue)."""
    job_id = lease.job_id
    heartbeat = _Heartbeat(context.store, lease, stopping, context.settings.job_timeout_s)
    workdir = context.settings.data_dir / "work" / f"{job_id}-{lease.attempt}"
    with heartbeat.kept_alive(keep_alive_interval(context.settings)):
        _run_claimed(context, lease, heartbeat, workdir)


def keep_alive_interval(settings: Settings) -> float:
    """How often a running task's lease is refreshed: a few beats within the time after which it counts as stale."""
    return min(max(settings.lease_stale_s / 4, 0.1), KEEP_ALIVE_MAX_S)


def _run_claimed(context: TaskContext, lease: Lease, heartbeat: _Heartbeat, workdir: Path) -> None:
    job_id = lease.job_id
    try:
        record = context.store.get(job_id)
        if record is None or record.status != "processing":
            return
        options = _local_inputs(SwapOptions.model_validate(record.options), context.blobs)
        workdir.mkdir(parents=True, exist_ok=True)
        heartbeat.beat()
        from faceswap.segments.jobs import run_part  # media code, loaded when a job first runs

        if run_part(context, lease, record, options, heartbeat, workdir):  # a long video's split, segment, stitch
            return
        started = time.monotonic()
        result = context.runner(options, context.runtime, workdir / "output", progress=heartbeat.progress,
                                should_cancel=heartbeat.should_cancel, workdir=workdir)
        heartbeat.beat()
        if heartbeat.answer != "ok":  # a finished result survives a shutdown
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
        drop_inputs_when_finished(context, job_id)
        shutil.rmtree(workdir, ignore_errors=True)


def drop_inputs_when_finished(context: TaskContext, job_id: str) -> None:
    """A job that ended (not one put back in the queue or taken over by another worker) needs its copies no more."""
    try:
        record = context.store.get(job_id)
        if record is not None and record.finished:
            for blob_id in owned_inputs(record.meta):
                context.blobs.delete(blob_id)
    except Exception:
        log.exception("job %s: removing its input copies failed (retention will)", job_id)


def _local_inputs(options: SwapOptions, blobs: BlobStore) -> SwapOptions:
    """The options with each `blob://` input replaced by a local file holding it (fetched by remote stores)."""
    changes: dict[str, str] = {}
    for name in INPUT_FIELDS:
        blob_id = blob_id_of(getattr(options, name))
        if blob_id is None:
            continue
        try:
            changes[name] = str(blobs.path(blob_id))
        except FaceSwapError as exc:
            raise FaceSwapError("file_not_found", f"{name}: this job's input file is no longer stored; submit the "
                                "job again.", field=name) from exc
    return options.model_copy(update=changes) if changes else options


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
    elif heartbeat.answer == "cancel":
        log.info("job %s: cancelled, stopped", lease.job_id)
    elif heartbeat.stopping:
        context.store.release(lease)
        log.info("job %s: worker stopping, put back in the queue", lease.job_id)
    else:
        # The runner gave up by itself with task_cancelled: record it as a cancel.
        context.store.request_cancel(lease.job_id)


class ThreadExecutor:
    """The embedded Executor: `workers` threads that claim jobs from the store and run them with `run_task`.

    `start` re-queues jobs a dead process left processing (once, then fails them) and clears the scratch space they
    left. Which jobs are dead depends on who else uses the store: when this process is its sole user (the SQLite
    store's file lock says so) every processing job is, so a restart resumes at once; on a shared store (Redis, or a
    second server on the same data dir) only jobs whose heartbeat is older than `stale_after_s` are, since another
    worker may be running the rest. Idle workers look for stale jobs again every `stale_after_s / 2`. `dispatch`
    only wakes a worker, which then claims the oldest queued job, so jobs run in queue order whoever queued them;
    idle workers also look every second.
    """

    def __init__(self, workers: int, *, stale_after_s: float = 30.0) -> None:
        self._workers = max(1, workers)
        self._stale_after_s = stale_after_s
        self._next_recovery = 0.0
        self._recovery_lock = threading.Lock()
        self._shutdown = threading.Event()
        self._wake = threading.Condition()
        self._pending_wakeups = 0
        self._threads: list[threading.Thread] = []
        self._on_finished: Callable[[str], None] = lambda job_id: None

    @property
    def size(self) -> int:
        return self._workers

    def start(self, context: TaskContext, on_finished: Callable[[str], None] | None = None) -> None:
        self._on_finished = on_finished or self._on_finished
        self._shutdown.clear()
        sole = getattr(context.store, "sole_user", None)
        if callable(sole) and sole():
            context.store.recover()
            shutil.rmtree(context.settings.data_dir / "work", ignore_errors=True)  # scratch left by a dead process
        else:
            context.store.recover(stale_after_s=self._stale_after_s)
            clear_stale_scratch(context)
        self._next_recovery = time.monotonic() + self._stale_after_s / 2
        for number in range(self._workers):
            thread = threading.Thread(target=self._loop, args=(context,), name=f"faceswap-worker-{number}",
                                      daemon=True)
            thread.start()
            self._threads.append(thread)

    def dispatch(self, task: Task) -> None:
        """A job was queued: wake one idle worker (it takes the oldest queued job, which keeps the queue order)."""
        with self._wake:
            self._pending_wakeups += 1
            self._wake.notify()

    def cancel(self, job_id: str) -> None:
        """Nothing to do: the job is cancelled in the store, and its worker reads that at its next heartbeat."""

    def stop(self, timeout: float = 10.0) -> None:
        self._shutdown.set()
        with self._wake:
            self._wake.notify_all()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        alive = [thread.name for thread in self._threads if thread.is_alive()]
        if alive:
            log.warning("workers still busy at shutdown: %s", ", ".join(alive))
        self._threads.clear()

    def _loop(self, context: TaskContext) -> None:
        shutdown = self._shutdown
        while not shutdown.is_set():
            try:
                lease = context.store.claim()
            except Exception:
                log.exception("claiming a job failed; retrying")
                lease = None
            if lease is not None:
                try:
                    run_task(context, lease, shutdown.is_set)
                finally:
                    self._on_finished(lease.job_id)
                continue
            self._recover_stale(context)
            with self._wake:
                if self._pending_wakeups == 0 and not shutdown.is_set():
                    self._wake.wait(IDLE_POLL_S)
                self._pending_wakeups = max(0, self._pending_wakeups - 1)

    def _recover_stale(self, context: TaskContext) -> None:
        """Now and then, one idle worker re-queues jobs whose worker (in any process) stopped beating."""
        if time.monotonic() < self._next_recovery or not self._recovery_lock.acquire(blocking=False):
            return
        try:
            self._next_recovery = time.monotonic() + self._stale_after_s / 2
            recovered = context.store.recover(stale_after_s=self._stale_after_s)
            for job_id in recovered.failed:
                drop_inputs_when_finished(context, job_id)
        except Exception:
            log.exception("looking for abandoned jobs failed; will retry")
        finally:
            self._recovery_lock.release()


def clear_stale_scratch(context: TaskContext) -> None:
    """Remove scratch folders (`<job id>-<attempt>`) of runs that no worker holds any more; a shared data dir keeps
    those of jobs still processing under that attempt (another process is using them)."""
    work = context.settings.data_dir / "work"
    if not work.is_dir():
        return
    for folder in work.iterdir():
        job_id, _, attempt = folder.name.rpartition("-")
        record = context.store.get(job_id) if job_id else None
        if record is None or record.status != "processing" or str(record.attempt) != attempt:
            shutil.rmtree(folder, ignore_errors=True)
