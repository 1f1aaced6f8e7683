"""JobService: the one queue every door (Gradio, REST dialects, CLI) submits to.

It is written against three small protocols (interfaces.py) — JobStore, Executor and BlobStore — injected, with
the embedded ones (SQLite, worker threads running `run_task`, a local directory) built from the settings by default,
and adds the retention sweeper. Decisions worth knowing:

- A job's options never hold a host path: local files a door hands in (Gradio's uploads, the CLI's files) are
  copied into the BlobStore and named `blob://<id>`, like REST uploads and inline data; the worker that runs the
  job resolves them through its own BlobStore.
- `cancel` marks a queued or processing job `cancelled` in the store at once; the worker running it, in this
  process or another, stops at its next heartbeat (between frames) and its partial output is deleted.
- Jobs a dead worker left `processing` are re-queued once (keeping their place), then failed with
  `internal_error`: at `start` all of them when this process is the store's sole user, otherwise (a shared store)
  those whose heartbeat is older than `lease_stale_s`, then again every so often. `close` puts jobs it interrupts
  back in the queue without spending their attempt.
- Retention counts from a job's end: a job and its files go `retention_s` after it finished; the inputs of jobs
  still held (queued, running, or finished and not yet expired) are never swept, whatever their age. A job or file
  past retention reads as unknown (`task_not_found` / `file_not_found`) even before the sweeper has deleted it.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO, Literal

from faceswap.config import Settings
from faceswap.errors import FaceSwapError
from faceswap.jobs import backends
from faceswap.jobs.executor import Runner, TaskContext
from faceswap.jobs.interfaces import (
    INPUT_FIELDS,
    OWNED_INPUTS,
    BlobInfo,
    BlobStore,
    Executor,
    JobRecord,
    JobStore,
    Task,
    blob_id_of,
    blob_ref,
    owned_inputs,
)
from faceswap.media.inputs import is_url
from faceswap.options import SwapOptions

log = logging.getLogger(__name__)

JobStatus = Literal["queued", "processing", "succeeded", "failed", "cancelled"]
SWEEP_EVERY_S = 60.0


@dataclass(frozen=True)
class Job:
    id: str
    status: JobStatus
    progress: float
    frames_done: int
    frames_total: int
    position: int | None
    """1-based while queued, 0 while processing, None when finished."""
    error: dict | None
    """{"code", "message", "retryable"} from the catalog."""
    engine: str | None
    report: dict | None
    """SwapReport.to_dict() on success."""
    output_file_id: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    options: SwapOptions
    dialect: str
    meta: dict
    owner: str | None = None
    attempt: int = 0

    @property
    def finished(self) -> bool:
        return self.status in ("succeeded", "failed", "cancelled")


def _pipeline_runner(*args: Any, **kwargs: Any) -> Any:
    from faceswap.pipeline import run  # imported on first use: the app starts without loading media code

    return run(*args, **kwargs)


class JobService:
    def __init__(self, runtime: Any, settings: Settings, *, runner: Runner | None = None,
                 store: JobStore | None = None, blobs: BlobStore | None = None,
                 executor: Executor | None = None) -> None:
        self.runtime = runtime
        self.settings = settings
        self.store = store if store is not None else backends.build_store(settings)
        self.blobs = blobs if blobs is not None else backends.build_blobs(settings)
        self._executor = executor if executor is not None else backends.build_executor(settings)
        self._context = TaskContext(store=self.store, blobs=self.blobs, settings=settings, runtime=runtime,
                                    runner=runner or _pipeline_runner, dispatch=self._executor.dispatch)
        self._changed = threading.Condition()
        self._closing = threading.Event()
        self._sweeper: threading.Thread | None = None
        self._started = False

    # -- lifecycle -----------------------------------------------------------------------------------------------

    def start(self) -> None:
        if self._started:
            return
        self._started = True
        self._closing.clear()
        self._executor.start(self._context, self._notify)
        self._sweeper = threading.Thread(target=self._sweep_loop, name="faceswap-sweeper", daemon=True)
        self._sweeper.start()
        log.info("job service started: %d worker(s), data in %s", self._executor.size, self.settings.data_dir)

    def close(self) -> None:
        if not self._started:
            self.store.close()
            return
        self._closing.set()
        self._executor.stop()
        if self._sweeper is not None:
            self._sweeper.join(5.0)
        self._notify("")
        self.store.close()
        self._started = False

    # -- jobs ----------------------------------------------------------------------------------------------------

    def submit(self, options: SwapOptions, *, dialect: str = "internal", owner: str | None = None,
               meta: dict | None = None) -> Job:
        if self._closing.is_set():
            raise FaceSwapError("service_unavailable", "The server is shutting down; retry in a moment.")
        stored, copies = self._stored_inputs(options)
        try:
            job_id = self.store.submit(stored.model_dump(mode="json"), dialect=dialect, owner=owner,
                                       meta={**(meta or {}), **({OWNED_INPUTS: copies} if copies else {})})
        except BaseException:
            for blob_id in copies:
                self.blobs.delete(blob_id)
            raise
        self._executor.dispatch(Task(job_id))
        log.info("job %s queued (%s)", job_id, dialect)
        return self.get(job_id)

    def get(self, job_id: str) -> Job:
        record = self.store.get(job_id) if isinstance(job_id, str) else None
        if record is None or self._expired(record.finished_at):
            raise FaceSwapError("task_not_found", f"No task with id {job_id!r} (unknown, or its results expired "
                                f"after {self.settings.retention_s / 60:g} minutes).")
        return _job(record)

    def cancel(self, job_id: str) -> Job:
        job = self.get(job_id)
        if job.finished:
            return job
        was_running = job.status == "processing"
        record = self.store.request_cancel(job_id)
        if record is not None and record.segments:  # split: no worker holds the job itself, its segments stop
            from faceswap.segments.jobs import discard

            discard(self.store, self.blobs, job_id)
        elif was_running:
            self._executor.cancel(job_id)  # its worker removes the job's input copies once it has stopped
        else:
            for blob_id in owned_inputs(record.meta if record is not None else {}):
                self.blobs.delete(blob_id)
        self._notify(job_id)
        return _job(record) if record is not None else self.get(job_id)

    def wait(self, job_id: str, timeout: float | None = None) -> Job:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self.get(job_id)
            remaining = None if deadline is None else deadline - time.monotonic()
            if job.finished or (remaining is not None and remaining <= 0):
                return job
            with self._changed:
                self._changed.wait(0.5 if remaining is None else min(0.5, remaining))

    def queue_size(self) -> int:
        return self.store.queue_size()

    def concurrency(self) -> int:
        return self._executor.size

    # -- files ---------------------------------------------------------------------------------------------------

    def store_file(self, data: bytes | Path | BinaryIO, *, filename: str, content_type: str | None = None) -> str:
        return self.blobs.put(data, filename=filename, content_type=content_type).id

    def file_info(self, file_id: str) -> BlobInfo:
        info = self.blobs.info(file_id)
        if self._expired(info.created_at):
            raise FaceSwapError("file_not_found", "The requested file is not available (unknown id, or it expired).")
        return info

    def file_path(self, file_id: str) -> Path:
        self.file_info(file_id)
        return self.blobs.path(file_id)

    def input_ref(self, file_id: str) -> str:
        """How a job's options name one of our files (checked to exist and not to have expired)."""
        self.file_info(file_id)
        return blob_ref(file_id)

    def reserve_upload(self, *, filename: str, size: int, content_type: str | None) -> tuple[BlobInfo, str]:
        """A WaveSpeed-style upload ticket: the pending file and its single-use token (see BlobStore)."""
        return self.blobs.reserve(filename=filename, size=size, content_type=content_type)

    # -- internals -----------------------------------------------------------------------------------------------

    def _expired(self, moment: float | None) -> bool:
        return moment is not None and time.time() - moment > self.settings.retention_s

    def _notify(self, job_id: str) -> None:
        with self._changed:
            self._changed.notify_all()

    def _stored_inputs(self, options: SwapOptions) -> tuple[SwapOptions, list[str]]:
        """The options with every local file copied into the BlobStore and named by reference; and those copies."""
        changes: dict[str, str] = {}
        try:
            for name in INPUT_FIELDS:
                ref = getattr(options, name).strip()
                if blob_id_of(ref) is not None or is_url(ref) or ref.lower().startswith("data:"):
                    continue
                path = Path(ref).expanduser()
                if not path.is_file():
                    raise FaceSwapError("invalid_request", f"{name}: the file could not be read.", field=name)
                changes[name] = blob_ref(self.blobs.put(path, filename=path.name, limit=False).id)
        except BaseException:
            for ref in changes.values():
                self.blobs.delete(blob_id_of(ref) or "")
            raise
        copies = [blob_id_of(ref) or "" for ref in changes.values()]
        return (options.model_copy(update=changes) if changes else options), copies

    def sweep(self) -> tuple[int, int]:
        """Delete jobs and files past retention now; returns (jobs, files) removed.

        Jobs expire `retention_s` after they finished, with their output; other files expire by age, except the
        inputs and outputs of jobs still held (a split job's finished segments), which stay until their job expires.
        """
        expired = self.store.sweep_expired(self.settings.retention_s)
        for record in expired:
            if record.output_file_id:
                self.blobs.delete(record.output_file_id)
        # A job queued after this read names files younger than retention (`input_ref` checks), so only a file
        # that crosses that age within the next milliseconds could be taken from it.
        in_use = {blob_id for options in self.store.live_options() for name in INPUT_FIELDS
                  if (blob_id := blob_id_of(options.get(name))) is not None} | self.store.live_outputs()
        files = self.blobs.sweep(self.settings.retention_s, keep=in_use)
        if expired or files:
            log.info("retention: deleted %d job(s) with their outputs and %d other file(s)", len(expired), files)
        return len(expired), files

    def _sweep_loop(self) -> None:
        interval = min(SWEEP_EVERY_S, max(0.5, self.settings.retention_s / 4))
        while not self._closing.wait(interval):
            try:
                self.sweep()
            except Exception:
                log.exception("retention sweep failed; will retry")


def _when(moment: float | None) -> datetime | None:
    return datetime.fromtimestamp(moment, tz=timezone.utc) if moment is not None else None


def _options(data: dict[str, Any]) -> SwapOptions:
    try:
        return SwapOptions.model_validate(data)
    except ValueError:  # stored by an older version whose rules differ: show it as it was
        return SwapOptions.model_construct(**data)


def _job(record: JobRecord) -> Job:
    return Job(
        id=record.id, status=record.status, progress=record.progress, frames_done=record.frames_done,
        frames_total=record.frames_total, position=record.position, error=record.error, engine=record.engine,
        report=record.report, output_file_id=record.output_file_id, created_at=_when(record.created_at),
        started_at=_when(record.started_at), finished_at=_when(record.finished_at),
        options=_options(record.options),
        dialect=record.dialect, meta={key: value for key, value in record.meta.items() if key != OWNED_INPUTS},
        owner=record.owner, attempt=record.attempt)
