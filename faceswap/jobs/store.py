"""SqliteJobStore: the embedded JobStore, on SQLite (one file in the data dir, WAL, safe across threads).

A worker `claim`s the oldest queued job and gets a `Lease` (a random token and the attempt number). Everything a
worker later records — progress, success, failure — is accepted only while its lease token still matches, so a
job that ran twice (a lost lease, a restart) has its result recorded once. Cancel and retention are plain updates.
The `JobStore` protocol (interfaces.py) is small on purpose: a Redis or Postgres store can take this one's place
without touching the workers.
"""

from __future__ import annotations

import json
import logging
import secrets
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, BinaryIO

from faceswap.jobs.interfaces import MAX_ATTEMPTS, HeartbeatAnswer, JobRecord, Lease, Recovery, SegmentCommit

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    id             TEXT NOT NULL UNIQUE,
    status         TEXT NOT NULL,
    options        TEXT NOT NULL,
    dialect        TEXT NOT NULL,
    owner          TEXT,
    meta           TEXT NOT NULL,
    progress       REAL NOT NULL DEFAULT 0,
    frames_done    INTEGER NOT NULL DEFAULT 0,
    frames_total   INTEGER NOT NULL DEFAULT 0,
    error          TEXT,
    engine         TEXT,
    report         TEXT,
    output_file_id TEXT,
    created_at     REAL NOT NULL,
    started_at     REAL,
    finished_at    REAL,
    lease_token    TEXT,
    attempt        INTEGER NOT NULL DEFAULT 0,
    heartbeat_at   REAL
);
CREATE INDEX IF NOT EXISTS jobs_status_seq ON jobs (status, seq);
CREATE INDEX IF NOT EXISTS jobs_finished_at ON jobs (finished_at);
"""

_SPLIT_COLUMNS = {"parent_id": "TEXT", "segments": "INTEGER NOT NULL DEFAULT 0"}
"""Columns of split jobs (segments/jobs.py), added to a database made before they existed."""


class SqliteJobStore:
    """The embedded JobStore: one SQLite file in the data dir (WAL), shared by threads and local processes."""

    def __init__(self, path: Path, *, clock=time.time) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._clock = clock
        self._lock = threading.RLock()
        self._sole: BinaryIO | None = None
        # One connection, serialised by a lock: every statement is tiny, and WAL lets readers in other processes
        # (a second server on the same data dir) proceed while we write.
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=10.0)
        self._db.row_factory = sqlite3.Row
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=10000")
            self._db.executescript(_SCHEMA)
            present = {row[1] for row in self._db.execute("PRAGMA table_info(jobs)")}
            for name, kind in _SPLIT_COLUMNS.items():
                if name not in present:
                    self._db.execute(f"ALTER TABLE jobs ADD COLUMN {name} {kind}")
            self._db.execute("CREATE INDEX IF NOT EXISTS jobs_parent ON jobs (parent_id)")

    def close(self) -> None:
        with self._lock:
            self._db.close()
            if self._sole is not None:
                self._sole.close()  # releases the lock
                self._sole = None

    def sole_user(self) -> bool:
        """Whether this process is the only one running jobs from this file: an exclusive lock on `<file>.lock`,
        taken here and held until `close` (the system drops it when a process dies). A second server on the same
        data dir gets False, and then re-queues only jobs whose heartbeat went stale."""
        with self._lock:
            if self._sole is not None:
                return True
            try:
                import fcntl
            except ImportError:  # not POSIX: the embedded default assumes one server per data dir
                return True
            handle = open(f"{self.path}.lock", "a+b")  # noqa: SIM115  (held open: the lock lives with it)
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.close()
                return False
            self._sole = handle
            return True

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # -- callers -------------------------------------------------------------------------------------------------

    def submit(self, options: dict[str, Any], *, dialect: str, owner: str | None, meta: dict[str, Any]) -> str:
        job_id = str(uuid.uuid4())
        with self._transaction() as db:
            db.execute(
                "INSERT INTO jobs (id, status, options, dialect, owner, meta, created_at) "
                "VALUES (?, 'queued', ?, ?, ?, ?, ?)",
                (job_id, json.dumps(options), dialect, owner, json.dumps(meta), self._clock()))
        return job_id

    def get(self, job_id: str) -> JobRecord | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                return None
            position = None
            if row["status"] == "queued":
                ahead = self._db.execute("SELECT COUNT(*) FROM jobs WHERE status = 'queued' AND seq < ?",
                                         (row["seq"],)).fetchone()[0]
                position = ahead + 1
            elif row["status"] == "processing":
                position = 0
            if row["segments"] and row["status"] == "processing":  # a split job's progress is its segments'
                done = self._db.execute("SELECT COALESCE(SUM(frames_done), 0) FROM jobs WHERE parent_id = ?",
                                        (job_id,)).fetchone()[0]
                total = row["frames_total"]
                return replace(_record(row, position), frames_done=min(done, total),
                               progress=min(done / total, 1.0) if total else 0.0)
        return _record(row, position)

    def queue_size(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM jobs WHERE status = 'queued'").fetchone()[0]

    def request_cancel(self, job_id: str) -> JobRecord | None:
        """Queued or processing → cancelled now; a running worker learns it at its next heartbeat and stops.

        A finished job is left as it is. Returns the job after the change (None if unknown).
        """
        error = {"code": "task_cancelled", "message": "The task was cancelled.", "retryable": False}
        with self._transaction() as db:
            db.execute(
                "UPDATE jobs SET status = 'cancelled', finished_at = ?, error = ?, lease_token = NULL "
                "WHERE (id = ? OR parent_id = ?) AND status IN ('queued', 'processing')",
                (self._clock(), json.dumps(error), job_id, job_id))
        return self.get(job_id)

    # -- workers -------------------------------------------------------------------------------------------------

    def claim(self, job_id: str | None = None) -> Lease | None:
        """Take the oldest queued job (or `job_id` if it is still queued): it becomes processing under a fresh lease."""
        token = secrets.token_hex(16)
        with self._transaction() as db:
            if job_id is None:
                row = db.execute("SELECT id, attempt FROM jobs WHERE status = 'queued' ORDER BY seq LIMIT 1").fetchone()
            else:
                row = db.execute("SELECT id, attempt FROM jobs WHERE status = 'queued' AND id = ?",
                                 (job_id,)).fetchone()
            if row is None:
                return None
            now = self._clock()
            db.execute(
                "UPDATE jobs SET status = 'processing', lease_token = ?, attempt = attempt + 1, started_at = ?, "
                "heartbeat_at = ?, progress = 0, frames_done = 0, frames_total = 0 WHERE id = ?",
                (token, now, now, row["id"]))
        return Lease(row["id"], token, row["attempt"] + 1)

    def heartbeat(self, lease: Lease, frames_done: int = 0, frames_total: int = 0) -> HeartbeatAnswer:
        """Record progress; 'cancel' when the job was cancelled, 'lost' when the lease is no longer ours."""
        progress = min(frames_done / frames_total, 1.0) if frames_total else 0.0
        with self._transaction() as db:
            updated = db.execute(
                "UPDATE jobs SET heartbeat_at = ?, frames_done = ?, frames_total = ?, progress = ? "
                "WHERE id = ? AND lease_token = ? AND status = 'processing'",
                (self._clock(), frames_done, frames_total, progress, lease.job_id, lease.token)).rowcount
            if updated:
                return "ok"
            row = db.execute("SELECT status FROM jobs WHERE id = ?", (lease.job_id,)).fetchone()
        return "cancel" if row is not None and row["status"] == "cancelled" else "lost"

    def complete(self, lease: Lease, *, output_file_id: str, engine: str | None,
                 report: dict[str, Any] | None) -> bool:
        """Record success; refused (False) unless the lease still holds, so a result is recorded once."""
        with self._transaction() as db:
            return bool(db.execute(
                "UPDATE jobs SET status = 'succeeded', output_file_id = ?, engine = ?, report = ?, progress = 1, "
                "frames_done = CASE WHEN frames_total > 0 THEN frames_total ELSE frames_done END, "
                "finished_at = ?, lease_token = NULL WHERE id = ? AND lease_token = ? AND status = 'processing'",
                (output_file_id, engine, json.dumps(report) if report is not None else None, self._clock(),
                 lease.job_id, lease.token)).rowcount)

    def fail(self, lease: Lease, error: dict[str, Any], *, engine: str | None = None) -> bool:
        """Record failure under the lease; a split job's unfinished segments are cancelled with it."""
        cancelled = {"code": "task_cancelled", "message": "The task was cancelled.", "retryable": False}
        with self._transaction() as db:
            failed = bool(db.execute(
                "UPDATE jobs SET status = 'failed', error = ?, engine = COALESCE(?, engine), finished_at = ?, "
                "lease_token = NULL WHERE id = ? AND lease_token = ? AND status = 'processing'",
                (json.dumps(error), engine, self._clock(), lease.job_id, lease.token)).rowcount)
            if failed:
                db.execute("UPDATE jobs SET status = 'cancelled', finished_at = ?, error = ?, lease_token = NULL "
                           "WHERE parent_id = ? AND status IN ('queued', 'processing')",
                           (self._clock(), json.dumps(cancelled), lease.job_id))
            return failed

    # -- split jobs (SegmentStore) -------------------------------------------------------------------------------

    def split(self, lease: Lease, children: list[dict[str, Any]], *, frames_total: int) -> list[str] | None:
        """Queue the segments of a job under its lease; the job stays processing, held by no worker (no heartbeat,
        so `recover` leaves it to its segments), its lease kept for the stitch to complete it."""
        ids = [str(uuid.uuid4()) for _ in children]
        with self._transaction() as db:
            row = db.execute("SELECT options, dialect, owner FROM jobs WHERE id = ? AND lease_token = ? AND "
                             "status = 'processing' AND segments = 0", (lease.job_id, lease.token)).fetchone()
            if row is None:
                return None
            now = self._clock()
            db.executemany(
                "INSERT INTO jobs (id, status, options, dialect, owner, meta, created_at, parent_id) "
                "VALUES (?, 'queued', ?, ?, ?, ?, ?, ?)",
                [(child_id, row["options"], row["dialect"], row["owner"], json.dumps(meta), now, lease.job_id)
                 for child_id, meta in zip(ids, children, strict=True)])
            db.execute("UPDATE jobs SET segments = ?, frames_total = ?, frames_done = 0, progress = 0, "
                       "heartbeat_at = NULL WHERE id = ?", (len(children), frames_total, lease.job_id))
        return ids

    def complete_segment(self, lease: Lease, *, output_file_id: str, report: dict[str, Any]) -> SegmentCommit:
        with self._transaction() as db:
            row = db.execute("SELECT parent_id FROM jobs WHERE id = ? AND lease_token = ? AND status = 'processing'",
                             (lease.job_id, lease.token)).fetchone()
            if row is None or row["parent_id"] is None:
                return SegmentCommit(False)
            db.execute(
                "UPDATE jobs SET status = 'succeeded', output_file_id = ?, report = ?, progress = 1, "
                "frames_done = CASE WHEN frames_total > 0 THEN frames_total ELSE frames_done END, "
                "finished_at = ?, lease_token = NULL WHERE id = ?",
                (output_file_id, json.dumps(report), self._clock(), lease.job_id))
            parent = db.execute("SELECT * FROM jobs WHERE id = ? AND status = 'processing'",
                                (row["parent_id"],)).fetchone()
            if parent is None:
                return SegmentCommit(True)
            done = db.execute("SELECT COUNT(*) FROM jobs WHERE parent_id = ? AND status = 'succeeded'",
                              (parent["id"],)).fetchone()[0]
            if done != parent["segments"]:
                return SegmentCommit(True)
            stitch_id = str(uuid.uuid4())
            meta = {"stitch": True, "parent_lease": Lease(parent["id"], parent["lease_token"],
                                                          parent["attempt"]).to_dict()}
            db.execute(
                "INSERT INTO jobs (id, status, options, dialect, owner, meta, created_at, parent_id) "
                "VALUES (?, 'queued', ?, ?, ?, ?, ?, ?)",
                (stitch_id, parent["options"], parent["dialect"], parent["owner"], json.dumps(meta), self._clock(),
                 parent["id"]))
        return SegmentCommit(True, stitch_id)

    def children(self, job_id: str) -> list[JobRecord]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM jobs WHERE parent_id = ? ORDER BY seq", (job_id,)).fetchall()
        return [_record(row, None) for row in rows]

    def release(self, lease: Lease) -> bool:
        """Give a job back to the queue without spending an attempt (the server is shutting down)."""
        with self._transaction() as db:
            return bool(db.execute(
                "UPDATE jobs SET status = 'queued', lease_token = NULL, attempt = attempt - 1, started_at = NULL, "
                "progress = 0, frames_done = 0, frames_total = 0 "
                "WHERE id = ? AND lease_token = ? AND status = 'processing'",
                (lease.job_id, lease.token)).rowcount)

    # -- housekeeping --------------------------------------------------------------------------------------------

    def recover(self, *, stale_after_s: float | None = None) -> Recovery:
        """Jobs left processing by a dead worker: re-queue them once (keeping their place), then fail them.

        `stale_after_s=None` takes every processing job (start-up of the only process using this file); a number
        takes only those whose last heartbeat is older than that.
        """
        cutoff = self._clock() - stale_after_s if stale_after_s is not None else float("inf")
        error = {"code": "internal_error", "retryable": True,
                 "message": "The task was interrupted twice (the server stopped while it ran) and was given up."}
        with self._transaction() as db:
            rows = db.execute("SELECT id, attempt FROM jobs WHERE status = 'processing' AND heartbeat_at < ?",
                              (cutoff,)).fetchall()
            requeue = [row["id"] for row in rows if row["attempt"] < MAX_ATTEMPTS]
            give_up = [row["id"] for row in rows if row["attempt"] >= MAX_ATTEMPTS]
            db.executemany(
                "UPDATE jobs SET status = 'queued', lease_token = NULL, started_at = NULL, progress = 0, "
                "frames_done = 0, frames_total = 0 WHERE id = ?", [(job_id,) for job_id in requeue])
            db.executemany(
                "UPDATE jobs SET status = 'failed', lease_token = NULL, error = ?, finished_at = ? WHERE id = ?",
                [(json.dumps(error), self._clock(), job_id) for job_id in give_up])
            # A split job whose segment was given up fails with it (its other segments are cancelled).
            parents = [row[0] for job_id in give_up for row in db.execute(
                "SELECT parent_id FROM jobs WHERE id = ? AND parent_id IS NOT NULL", (job_id,)).fetchall()]
            cancelled = {"code": "task_cancelled", "message": "The task was cancelled.", "retryable": False}
            for parent_id in parents:
                if db.execute("UPDATE jobs SET status = 'failed', lease_token = NULL, error = ?, finished_at = ? "
                              "WHERE id = ? AND status = 'processing'",
                              (json.dumps(error), self._clock(), parent_id)).rowcount:
                    db.execute("UPDATE jobs SET status = 'cancelled', finished_at = ?, error = ?, lease_token = NULL "
                               "WHERE parent_id = ? AND status IN ('queued', 'processing')",
                               (self._clock(), json.dumps(cancelled), parent_id))
        if requeue or give_up:
            log.warning("recovered interrupted jobs: %d re-queued, %d failed", len(requeue), len(give_up))
        return Recovery(requeue, give_up)

    def sweep_expired(self, retention_s: float) -> list[JobRecord]:
        """Delete jobs finished more than `retention_s` ago; returns them so their files can go too."""
        cutoff = self._clock() - retention_s
        with self._transaction() as db:
            # A split job's segments stay while it runs (the stitch needs their outputs), however old.
            expired = ("finished_at IS NOT NULL AND finished_at < ? AND (parent_id IS NULL OR parent_id NOT IN "
                       "(SELECT id FROM jobs WHERE finished_at IS NULL))")
            rows = db.execute(f"SELECT * FROM jobs WHERE {expired}", (cutoff,)).fetchall()
            db.execute(f"DELETE FROM jobs WHERE {expired}", (cutoff,))
        return [_record(row, None) for row in rows]

    def live_options(self) -> list[dict[str, Any]]:
        with self._lock:
            return [json.loads(row[0]) for row in self._db.execute("SELECT options FROM jobs").fetchall()]

    def live_outputs(self) -> set[str]:
        with self._lock:
            rows = self._db.execute("SELECT output_file_id FROM jobs WHERE output_file_id != ''").fetchall()
        return {row[0] for row in rows}


def _record(row: sqlite3.Row, position: int | None) -> JobRecord:
    def loads(text: str | None) -> Any:
        return json.loads(text) if text is not None else None

    return JobRecord(
        id=row["id"], seq=row["seq"], status=row["status"], options=json.loads(row["options"]),
        dialect=row["dialect"], owner=row["owner"], meta=json.loads(row["meta"]), progress=row["progress"],
        frames_done=row["frames_done"], frames_total=row["frames_total"], error=loads(row["error"]),
        engine=row["engine"], report=loads(row["report"]), output_file_id=row["output_file_id"],
        created_at=row["created_at"], started_at=row["started_at"], finished_at=row["finished_at"],
        attempt=row["attempt"], position=position, parent_id=row["parent_id"], segments=row["segments"])
