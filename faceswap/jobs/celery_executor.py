"""The distributed Executor: jobs travel as Celery messages over Redis to `faceswap worker` processes.

The app process only queues: `dispatch` sends the `Task` (plain JSON) to the `faceswap` queue, and whichever worker
takes the message runs it with the same `work_on` / `run_task` the embedded executor uses, against the shared
RedisJobStore (leases, heartbeats, complete-once) and BlobStore. The Celery settings follow from that:

- `acks_late` + `task_reject_on_worker_lost`: a message is acknowledged when its task has ended, so a worker child
  killed mid-job puts the message straight back in the queue, and a whole worker that dies has its message
  delivered again once the `visibility_timeout` passes (FACESWAP_VISIBILITY_TIMEOUT_S, about twice one task's
  time; shorter would deliver a running task twice, which leases make harmless but wasteful).
- `worker_prefetch_multiplier=1` with one process per worker (`-c 1`, one worker per GPU): a worker holds only the
  message it runs, so queued jobs go to whichever worker frees up first.
- Cancel is soft first: the store marks the job cancelled and its worker stops at its next heartbeat (between
  frames). A worker that has not stopped after FACESWAP_CANCEL_GRACE_S gets `revoke(terminate=True)`.
- A delivered task whose job is still `processing` under another lease (a redelivery after a kill) waits until that
  lease's heartbeat is older than FACESWAP_LEASE_STALE_S, re-queues it through the store and runs it; a lease that
  keeps beating belongs to a live worker, and the duplicate message is dropped. The app also re-queues stale jobs
  (and sends them again) every half of that period, so a job whose worker and message are both gone still runs.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import replace

from celery import Celery

from faceswap.config import Settings
from faceswap.jobs.executor import TaskContext, drop_inputs_when_finished, work_on
from faceswap.jobs.interfaces import Task

log = logging.getLogger(__name__)

TASK_NAME = "faceswap.run"
QUEUE = "faceswap"
WORKER_START_TIMEOUT_S = 300.0
CLAIM_POLL_S = 0.5
"""How often a redelivered task looks whether the lease it waits for went stale."""


def celery_app(settings: Settings) -> Celery:
    """The Celery app both sides use: the queueing app (sends) and `faceswap worker` (registers the task, runs)."""
    if not settings.redis_url:
        raise ValueError("FACESWAP_BACKEND=celery needs FACESWAP_REDIS_URL (e.g. redis://localhost:6379/0)")
    app = Celery("faceswap", broker=settings.redis_url, set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_concurrency=1,
        # The pool process loads its models in worker_process_init before it reports up; Celery's default 4 s
        # killed every replacement of a killed pool process that was still loading (seen on a busy CPU).
        worker_proc_alive_timeout=WORKER_START_TIMEOUT_S,
        task_ignore_result=True,  # outcomes live in the JobStore; no result backend
        task_serializer="json",
        accept_content=["json"],
        task_default_queue=QUEUE,
        broker_transport_options={"visibility_timeout": settings.visibility_timeout_s},
        broker_connection_retry_on_startup=True,
        worker_send_task_events=False,
        worker_hijack_root_logger=True,
    )
    return app


def task_id_of(task: Task) -> str:
    """The Celery task id of a dispatched Task: the job id for a job's own task (so cancel can revoke it by job),
    the job id and a digest of the rest for any other kind (a segment, a stitch)."""
    if task.to_json() == Task(task.job_id).to_json():
        return task.job_id
    return f"{task.job_id}-{hashlib.sha256(task.to_json().encode()).hexdigest()[:16]}"


def send(app: Celery, task: Task) -> None:
    """Queue a Task for whichever worker is free (any kind: the worker's `work_on` decides what it runs)."""
    app.send_task(TASK_NAME, args=[task.to_json()], task_id=task_id_of(task), queue=QUEUE)


def execute(context: TaskContext, task: Task, *, redispatch: Callable[[Task], None],
            poll_s: float = CLAIM_POLL_S) -> str:
    """The body of the Celery task. Returns what happened: 'ran', 'finished' (nothing left to do: done, cancelled
    or unknown) or 'held' (a live worker runs the job; this message was a duplicate). A job's own task claims the
    job, taking it over from a dead worker once that one's lease is stale; any other Task goes to `work_on`."""
    if task_id_of(task) != task.job_id:  # a lease, or another kind of task (a segment, a stitch): work_on decides
        return "ran" if work_on(context, task) else "finished"
    stale_after_s = context.settings.lease_stale_s
    deadline = time.monotonic() + stale_after_s + 2 * poll_s
    while True:
        lease = context.store.claim(task.job_id)
        if lease is not None:
            log.info("job %s: attempt %d on %s (pid %d)", task.job_id, lease.attempt, socket.gethostname(),
                     os.getpid())
            for attempt in range(1, lease.attempt):  # earlier runs ended with their lease: drop their scratch
                shutil.rmtree(context.settings.data_dir / "work" / f"{task.job_id}-{attempt}", ignore_errors=True)
            work_on(context, replace(task, lease=lease))
            return "ran"
        record = context.store.get(task.job_id)
        if record is None or record.finished:
            return "finished"
        if record.status == "queued":  # re-queued between the two reads: claim again
            continue
        if time.monotonic() > deadline:
            log.info("job %s is running elsewhere under a live lease; duplicate message dropped", task.job_id)
            return "held"
        if task.job_id in recover_stale(context, redispatch, skip=task.job_id):
            continue
        time.sleep(poll_s)


def recover_stale(context: TaskContext, redispatch: Callable[[Task], None], *, skip: str | None = None) -> list[str]:
    """Re-queue jobs whose worker stopped beating (once; twice interrupted, they fail) and send each again, since
    its message may be gone with its worker (a duplicate finds the job taken and is dropped). Returns the ids."""
    recovered = context.store.recover(stale_after_s=context.settings.lease_stale_s)
    for job_id in recovered.requeued:
        if job_id != skip:
            redispatch(Task(job_id))
    for job_id in recovered.failed:
        drop_inputs_when_finished(context, job_id)
    return recovered.requeued


class CeleryExecutor:
    """The Executor of the `celery` backend, on the queueing side (the app). Workers run `faceswap worker`."""

    def __init__(self, settings: Settings, app: Celery | None = None) -> None:
        self._settings = settings
        self._app = app or celery_app(settings)
        self._context: TaskContext | None = None
        self._closing = threading.Event()
        self._watcher: threading.Thread | None = None
        self._timers: dict[str, threading.Timer] = {}
        self._lock = threading.Lock()

    @property
    def app(self) -> Celery:
        return self._app

    @property
    def size(self) -> int:
        """The workers this deployment declares (FACESWAP_WORKERS); they run elsewhere."""
        return max(1, self._settings.workers)

    def start(self, context: TaskContext, on_finished: Callable[[str], None] | None = None) -> None:
        self._context = context
        self._closing.clear()
        self._watcher = threading.Thread(target=self._watch, args=(context,), name="faceswap-celery-recovery",
                                         daemon=True)
        self._watcher.start()

    def dispatch(self, task: Task) -> None:
        send(self._app, task)

    def cancel(self, job_id: str) -> None:
        """The job is cancelled in the store already; its worker stops at its next heartbeat. If it has not after
        the grace period (stuck outside the frame loop), its task is terminated."""
        timer = threading.Timer(self._settings.cancel_grace_s, self._terminate, args=(job_id,))
        timer.daemon = True
        with self._lock:
            self._timers[job_id] = timer
        timer.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._closing.set()
        with self._lock:
            timers, self._timers = list(self._timers.values()), {}
        for timer in timers:
            timer.cancel()
        if self._watcher is not None:
            self._watcher.join(timeout)
        self._app.close()

    def _terminate(self, job_id: str) -> None:
        with self._lock:
            self._timers.pop(job_id, None)
        if self._closing.is_set():
            return
        try:
            # A task that already stopped is not running anywhere: this then only stops a later delivery of it.
            self._app.control.revoke(job_id, terminate=True, signal="SIGKILL")
            if self._context is not None:
                drop_inputs_when_finished(self._context, job_id)
        except Exception:
            log.exception("job %s: terminating its task failed", job_id)

    def _watch(self, context: TaskContext) -> None:
        interval = max(0.5, self._settings.lease_stale_s / 2)
        while not self._closing.wait(interval):
            try:
                recover_stale(context, self.dispatch)
            except Exception:
                log.exception("looking for abandoned jobs failed; will retry")

