"""The three seams of the job core (DESIGN §5): JobStore, BlobStore and Executor, and the plain data they trade.

`JobService` is written against these protocols only. The embedded implementations (SQLite, a local directory,
worker threads) are the defaults; a distributed deployment swaps them by configuration. Everything that crosses a
seam is plain data: a `Task` or a `Lease` is a few strings and numbers (JSON), a job's options name their inputs
as blob references (`blob://<id>`) that any worker resolves through its BlobStore, and cancel and progress travel
through the JobStore (a worker's heartbeat answers ok | cancel | lost), so no part of a running job depends on the
process that queued it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    from faceswap.jobs.executor import TaskContext

Status = Literal["queued", "processing", "succeeded", "failed", "cancelled"]
FINISHED: tuple[str, ...] = ("succeeded", "failed", "cancelled")
HeartbeatAnswer = Literal["ok", "cancel", "lost"]

MAX_ATTEMPTS = 2
"""A job cut off mid-run (crash, kill) runs once more; cut off again, it fails with internal_error."""

FILE_ID = re.compile(r"^[A-Za-z0-9_-]{32}$")
BLOB_SCHEME = "blob://"
INPUT_FIELDS: tuple[str, ...] = ("video", "face")
"""The options that name input files."""


def blob_ref(blob_id: str) -> str:
    """How a job's options name a stored file: resolved by whichever worker runs the job, on whatever host."""
    return BLOB_SCHEME + blob_id


def blob_id_of(ref: object) -> str | None:
    """The blob id a `blob://<id>` reference names, or None for anything else (URL, data URI, malformed)."""
    if not isinstance(ref, str) or not ref.startswith(BLOB_SCHEME):
        return None
    blob_id = ref[len(BLOB_SCHEME):]
    return blob_id if FILE_ID.match(blob_id) else None


OWNED_INPUTS = "owned_inputs"
"""Job meta key: the blobs the service stored for this job alone (its copies of local files), deleted when the job
ends; files a client uploaded may serve several jobs and expire by retention instead."""


def owned_inputs(meta: dict[str, Any]) -> list[str]:
    return [blob_id for blob_id in meta.get(OWNED_INPUTS) or () if isinstance(blob_id, str) and FILE_ID.match(blob_id)]


@dataclass(frozen=True)
class Lease:
    """The right to run one job once: accepted by the store only while its token is the job's current one."""

    job_id: str
    token: str
    attempt: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Task:
    """What an executor dispatches: the job to run, and the lease when one is already held (serialisable)."""

    job_id: str
    lease: Lease | None = None

    def to_json(self) -> str:
        return json.dumps({"job_id": self.job_id, "lease": self.lease.to_dict() if self.lease else None})

    @classmethod
    def from_json(cls, text: str) -> Task:
        data = json.loads(text)
        return cls(data["job_id"], Lease(**data["lease"]) if data.get("lease") else None)


@dataclass(frozen=True)
class JobRecord:
    """One job, decoded. `options` and `meta` are plain JSON data; the service turns them into objects."""

    id: str
    seq: int
    status: Status
    options: dict[str, Any]
    dialect: str
    owner: str | None
    meta: dict[str, Any]
    progress: float
    frames_done: int
    frames_total: int
    error: dict[str, Any] | None
    engine: str | None
    report: dict[str, Any] | None
    output_file_id: str | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    attempt: int
    position: int | None
    """1-based place in the queue while queued, 0 while processing, None once finished."""
    parent_id: str | None = None
    """Set on the tasks of a split job (its segments and their stitch): the job they belong to."""
    segments: int = 0
    """How many segments a split job was cut into (0: it runs in one pass)."""

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


@dataclass(frozen=True)
class Recovery:
    requeued: list[str]
    failed: list[str]


@dataclass(frozen=True)
class BlobInfo:
    id: str
    filename: str
    content_type: str
    size: int
    created_at: float
    pending: bool = False
    expected_size: int | None = None
    token_sha256: str | None = None


@runtime_checkable
class JobStore(Protocol):
    """The durable record of every job, shared by everyone who queues or runs jobs.

    Leases make results complete-once: progress, success and failure are accepted only under the job's current
    lease token. `request_cancel` is how any process cancels; the running worker learns it from `heartbeat`.
    """

    def submit(self, options: dict[str, Any], *, dialect: str, owner: str | None, meta: dict[str, Any]) -> str: ...

    def get(self, job_id: str) -> JobRecord | None: ...

    def queue_size(self) -> int: ...

    def request_cancel(self, job_id: str) -> JobRecord | None: ...

    def claim(self, job_id: str | None = None) -> Lease | None:
        """The oldest queued job (or exactly `job_id`, if still queued) becomes processing under a fresh lease."""
        ...

    def heartbeat(self, lease: Lease, frames_done: int = 0, frames_total: int = 0) -> HeartbeatAnswer: ...

    def complete(self, lease: Lease, *, output_file_id: str, engine: str | None,
                 report: dict[str, Any] | None) -> bool: ...

    def fail(self, lease: Lease, error: dict[str, Any], *, engine: str | None = None) -> bool: ...

    def release(self, lease: Lease) -> bool: ...

    def recover(self, *, stale_after_s: float | None = None) -> Recovery: ...

    def sweep_expired(self, retention_s: float) -> list[JobRecord]: ...

    def live_options(self) -> list[dict[str, Any]]:
        """The options of every job still held (queued, running, or finished and not yet swept)."""
        ...

    def live_outputs(self) -> set[str]:
        """The output files of every job still held: they go with their job (`sweep_expired`), never by age, so a
        long split job's first segments keep their files until the stitch."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class SegmentCommit:
    recorded: bool
    """False: the segment's lease was gone (cancelled, re-run elsewhere); its output is not the job's."""
    stitch_id: str | None = None
    """Set for the one segment whose commit completed the set: the stitch task it queued, to dispatch."""


@runtime_checkable
class SegmentStore(Protocol):
    """What a JobStore adds to run a long video as segments (segments/jobs.py). A job that `split`s stays
    processing, held by no worker, while its segments run as jobs of their own (`parent_id` names it): its progress
    is theirs summed, cancelling or failing it cancels them, and the last segment to commit queues the stitch."""

    def split(self, lease: Lease, children: list[dict[str, Any]], *, frames_total: int) -> list[str] | None:
        """Under the job's lease, queue one segment job per entry of `children` (their meta; the job's options are
        copied) and mark the job split; returns their ids in order, or None when the lease is gone."""
        ...

    def complete_segment(self, lease: Lease, *, output_file_id: str, report: dict[str, Any]) -> SegmentCommit:
        """Record a segment's result once (under its lease); the commit that completes the set queues the stitch
        (meta {"stitch": true}) in the same transaction."""
        ...

    def children(self, job_id: str) -> list[JobRecord]:
        """The segments (then the stitch) of a split job, in the order they were queued."""
        ...


@runtime_checkable
class BlobStore(Protocol):
    """Inputs and outputs by id. `path` gives a local file with the blob's bytes (a remote store downloads it to a
    local cache); `open_upload` gives a local file to stream an upload into, which `finish_upload` publishes."""

    max_bytes: int

    def put(self, data: bytes | Path | BinaryIO, *, filename: str, content_type: str | None = None,
            move: bool = False, limit: bool = True) -> BlobInfo: ...

    def reserve(self, *, filename: str, size: int, content_type: str | None) -> tuple[BlobInfo, str]: ...

    def open_upload(self, blob_id: str, token: str) -> tuple[BlobInfo, Path]: ...

    def finish_upload(self, blob_id: str, written: int) -> BlobInfo: ...

    def info(self, blob_id: str) -> BlobInfo: ...

    def path(self, blob_id: str) -> Path: ...

    def delete(self, blob_id: str) -> None: ...

    def sweep(self, retention_s: float, *, keep: Collection[str] = ()) -> int:
        """Delete blobs created more than `retention_s` ago, except those in `keep`; returns how many."""
        ...


@runtime_checkable
class Executor(Protocol):
    """Runs queued jobs with `run_task`. `dispatch` hands it a serialisable `Task`; `cancel` is a hint only (the
    job is already cancelled in the store, and the worker stops at its next heartbeat wherever it runs)."""

    @property
    def size(self) -> int: ...

    def start(self, context: TaskContext, on_finished: Callable[[str], None] | None = None) -> None: ...

    def dispatch(self, task: Task) -> None: ...

    def cancel(self, job_id: str) -> None: ...

    def stop(self, timeout: float = 10.0) -> None: ...
