"""RedisJobStore: the JobStore that workers on several machines share (the distributed backend's store).

Same rules as the SQLite store — leases, complete-once, heartbeats answering ok | cancel | lost, re-queue once then
fail, retention from a job's end — with every change that reads and writes made atomic by a Lua script. Layout
under `prefix`: `job:<id>` a hash per job (JSON for options, meta, error and report; a field is absent when None),
`seq` the submit counter, and three sorted sets: `queued` (score: seq, so ZRANK is the queue position and a
re-queued job keeps its place), `processing` (score: last heartbeat) and `finished` (score: finished_at).
"""

from __future__ import annotations

import json
import logging
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import redis

from faceswap.jobs.interfaces import MAX_ATTEMPTS, HeartbeatAnswer, JobRecord, Lease, Recovery, SegmentCommit

log = logging.getLogger(__name__)

# cancel(job id, now, error JSON): queued or processing -> cancelled; true when it changed
_CANCEL_FUNCTION = """
local function cancel(job_id, now, error)
    local key = KEYS[1] .. 'job:' .. job_id
    local status = redis.call('HGET', key, 'status')
    if status ~= 'queued' and status ~= 'processing' then return false end
    redis.call('HSET', key, 'status', 'cancelled', 'finished_at', now, 'error', error)
    redis.call('HDEL', key, 'lease_token')
    redis.call('ZREM', KEYS[1] .. 'queued', job_id)
    redis.call('ZREM', KEYS[1] .. 'processing', job_id)
    redis.call('ZADD', KEYS[1] .. 'finished', now, job_id)
    return true
end
local function cancel_children(job_id, now, error)
    for _, child in ipairs(redis.call('LRANGE', KEYS[1] .. 'children:' .. job_id, 0, -1)) do
        cancel(child, now, error)
    end
end
"""

_CANCEL = _CANCEL_FUNCTION + """
local changed = cancel(ARGV[1], ARGV[2], ARGV[3])
cancel_children(ARGV[1], ARGV[2], ARGV[3])
return changed and 1 or 0
"""

_CLAIM = """
local job_id = ARGV[1]
if job_id == '' then
    local first = redis.call('ZRANGE', KEYS[1] .. 'queued', 0, 0)
    if #first == 0 then return false end
    job_id = first[1]
elseif not redis.call('ZSCORE', KEYS[1] .. 'queued', job_id) then
    return false
end
local key = KEYS[1] .. 'job:' .. job_id
local attempt = redis.call('HINCRBY', key, 'attempt', 1)
redis.call('HSET', key, 'status', 'processing', 'lease_token', ARGV[2], 'started_at', ARGV[3], 'heartbeat_at', ARGV[3],
           'progress', 0, 'frames_done', 0, 'frames_total', 0)
redis.call('ZREM', KEYS[1] .. 'queued', job_id)
redis.call('ZADD', KEYS[1] .. 'processing', ARGV[3], job_id)
return {job_id, attempt}
"""

_HEARTBEAT = """
local key = KEYS[1] .. 'job:' .. ARGV[1]
local status = redis.call('HGET', key, 'status')
if status == 'processing' and redis.call('HGET', key, 'lease_token') == ARGV[2] then
    redis.call('HSET', key, 'heartbeat_at', ARGV[3], 'frames_done', ARGV[4], 'frames_total', ARGV[5],
               'progress', ARGV[6])
    redis.call('ZADD', KEYS[1] .. 'processing', ARGV[3], ARGV[1])
    return 'ok'
end
if status == 'cancelled' then return 'cancel' end
return 'lost'
"""

# ARGV: job id, token, then the new status, finished_at, the error JSON for cancelled segments of a failed split
# job, and field/value pairs to set
_FINISH = _CANCEL_FUNCTION + """
local key = KEYS[1] .. 'job:' .. ARGV[1]
if redis.call('HGET', key, 'status') ~= 'processing' or redis.call('HGET', key, 'lease_token') ~= ARGV[2] then
    return 0
end
redis.call('HSET', key, 'status', ARGV[3], 'finished_at', ARGV[4])
for i = 6, #ARGV, 2 do redis.call('HSET', key, ARGV[i], ARGV[i + 1]) end
if ARGV[3] == 'failed' then cancel_children(ARGV[1], ARGV[4], ARGV[5]) end
if ARGV[3] == 'succeeded' then
    local total = tonumber(redis.call('HGET', key, 'frames_total') or '0')
    if total > 0 then redis.call('HSET', key, 'frames_done', total) end
end
redis.call('HDEL', key, 'lease_token')
redis.call('ZREM', KEYS[1] .. 'processing', ARGV[1])
redis.call('ZADD', KEYS[1] .. 'finished', ARGV[4], ARGV[1])
return 1
"""

_RELEASE = """
local key = KEYS[1] .. 'job:' .. ARGV[1]
if redis.call('HGET', key, 'status') ~= 'processing' or redis.call('HGET', key, 'lease_token') ~= ARGV[2] then
    return 0
end
redis.call('HSET', key, 'status', 'queued', 'progress', 0, 'frames_done', 0, 'frames_total', 0)
redis.call('HINCRBY', key, 'attempt', -1)
redis.call('HDEL', key, 'lease_token', 'started_at')
redis.call('ZREM', KEYS[1] .. 'processing', ARGV[1])
redis.call('ZADD', KEYS[1] .. 'queued', redis.call('HGET', key, 'seq'), ARGV[1])
return 1
"""

# ARGV: cutoff ('+inf' for every processing job), max attempts, now, error JSON, cancelled error JSON
_RECOVER = _CANCEL_FUNCTION + """
local requeued, failed = {}, {}
local upper = ARGV[1] == '+inf' and '+inf' or '(' .. ARGV[1]
for _, job_id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1] .. 'processing', '-inf', upper)) do
    local key = KEYS[1] .. 'job:' .. job_id
    redis.call('ZREM', KEYS[1] .. 'processing', job_id)
    redis.call('HDEL', key, 'lease_token')
    if tonumber(redis.call('HGET', key, 'attempt')) < tonumber(ARGV[2]) then
        redis.call('HSET', key, 'status', 'queued', 'progress', 0, 'frames_done', 0, 'frames_total', 0)
        redis.call('HDEL', key, 'started_at')
        redis.call('ZADD', KEYS[1] .. 'queued', redis.call('HGET', key, 'seq'), job_id)
        table.insert(requeued, job_id)
    else
        redis.call('HSET', key, 'status', 'failed', 'error', ARGV[4], 'finished_at', ARGV[3])
        redis.call('ZADD', KEYS[1] .. 'finished', ARGV[3], job_id)
        table.insert(failed, job_id)
        -- a split job whose segment was given up fails with it
        local parent_id = redis.call('HGET', key, 'parent_id')
        local parent = parent_id and KEYS[1] .. 'job:' .. parent_id
        if parent and redis.call('HGET', parent, 'status') == 'processing' then
            redis.call('HSET', parent, 'status', 'failed', 'error', ARGV[4], 'finished_at', ARGV[3])
            redis.call('HDEL', parent, 'lease_token')
            redis.call('ZADD', KEYS[1] .. 'finished', ARGV[3], parent_id)
            cancel_children(parent_id, ARGV[3], ARGV[5])
        end
    end
end
return {requeued, failed}
"""


# ARGV: job id, token, frames_total, now, then (child id, meta JSON) pairs
_SPLIT = """
local key = KEYS[1] .. 'job:' .. ARGV[1]
if redis.call('HGET', key, 'status') ~= 'processing' or redis.call('HGET', key, 'lease_token') ~= ARGV[2]
        or tonumber(redis.call('HGET', key, 'segments') or '0') > 0 then
    return 0
end
local job = redis.call('HMGET', key, 'options', 'dialect', 'owner')
for i = 5, #ARGV, 2 do
    local child = KEYS[1] .. 'job:' .. ARGV[i]
    local seq = redis.call('INCR', KEYS[1] .. 'seq')
    redis.call('HSET', child, 'id', ARGV[i], 'seq', seq, 'status', 'queued', 'options', job[1], 'dialect', job[2],
               'meta', ARGV[i + 1], 'progress', 0, 'frames_done', 0, 'frames_total', 0, 'attempt', 0,
               'created_at', ARGV[4], 'parent_id', ARGV[1])
    if job[3] then redis.call('HSET', child, 'owner', job[3]) end
    redis.call('ZADD', KEYS[1] .. 'queued', seq, ARGV[i])
    redis.call('RPUSH', KEYS[1] .. 'children:' .. ARGV[1], ARGV[i])
end
redis.call('HSET', key, 'segments', (#ARGV - 4) / 2, 'frames_total', ARGV[3], 'frames_done', 0, 'progress', 0)
-- held by no worker from now on: crash recovery leaves it to its segments
redis.call('ZREM', KEYS[1] .. 'processing', ARGV[1])
return 1
"""

# ARGV: segment id, token, now, output file id, report JSON, the id the stitch gets if this commit queues it
_COMPLETE_SEGMENT = """
local key = KEYS[1] .. 'job:' .. ARGV[1]
local parent_id = redis.call('HGET', key, 'parent_id')
if redis.call('HGET', key, 'status') ~= 'processing' or redis.call('HGET', key, 'lease_token') ~= ARGV[2]
        or not parent_id then
    return {0, ''}
end
redis.call('HSET', key, 'status', 'succeeded', 'finished_at', ARGV[3], 'output_file_id', ARGV[4], 'report', ARGV[5],
           'progress', 1)
local total = tonumber(redis.call('HGET', key, 'frames_total') or '0')
if total > 0 then redis.call('HSET', key, 'frames_done', total) end
redis.call('HDEL', key, 'lease_token')
redis.call('ZREM', KEYS[1] .. 'processing', ARGV[1])
redis.call('ZADD', KEYS[1] .. 'finished', ARGV[3], ARGV[1])
local parent = KEYS[1] .. 'job:' .. parent_id
if redis.call('HGET', parent, 'status') ~= 'processing' then return {1, ''} end
local done = 0
for _, child in ipairs(redis.call('LRANGE', KEYS[1] .. 'children:' .. parent_id, 0, -1)) do
    if redis.call('HGET', KEYS[1] .. 'job:' .. child, 'status') == 'succeeded' then done = done + 1 end
end
if done ~= tonumber(redis.call('HGET', parent, 'segments')) then return {1, ''} end
local job = redis.call('HMGET', parent, 'options', 'dialect', 'owner', 'lease_token', 'attempt')
local meta = cjson.encode({stitch = true, parent_lease = {job_id = parent_id, token = job[4],
                                                          attempt = tonumber(job[5])}})
local stitch = KEYS[1] .. 'job:' .. ARGV[6]
local seq = redis.call('INCR', KEYS[1] .. 'seq')
redis.call('HSET', stitch, 'id', ARGV[6], 'seq', seq, 'status', 'queued', 'options', job[1], 'dialect', job[2],
           'meta', meta, 'progress', 0, 'frames_done', 0, 'frames_total', 0, 'attempt', 0, 'created_at', ARGV[3],
           'parent_id', parent_id)
if job[3] then redis.call('HSET', stitch, 'owner', job[3]) end
redis.call('ZADD', KEYS[1] .. 'queued', seq, ARGV[6])
redis.call('RPUSH', KEYS[1] .. 'children:' .. parent_id, ARGV[6])
return {1, ARGV[6]}
"""


class RedisJobStore:
    def __init__(self, url: str, *, prefix: str = "faceswap:", clock: Callable[[], float] = time.time) -> None:
        self._redis = redis.Redis.from_url(url, decode_responses=True)
        self._prefix = prefix
        self._clock = clock
        self._cancel = self._redis.register_script(_CANCEL)
        self._claim = self._redis.register_script(_CLAIM)
        self._heartbeat = self._redis.register_script(_HEARTBEAT)
        self._finish = self._redis.register_script(_FINISH)
        self._release = self._redis.register_script(_RELEASE)
        self._recover = self._redis.register_script(_RECOVER)
        self._split = self._redis.register_script(_SPLIT)
        self._complete_segment = self._redis.register_script(_COMPLETE_SEGMENT)

    def close(self) -> None:
        self._redis.close()

    def _key(self, name: str) -> str:
        return self._prefix + name

    # -- callers -------------------------------------------------------------------------------------------------

    def submit(self, options: dict[str, Any], *, dialect: str, owner: str | None, meta: dict[str, Any]) -> str:
        job_id = str(uuid.uuid4())
        seq = self._redis.incr(self._key("seq"))
        fields: dict[str, Any] = {"id": job_id, "seq": seq, "status": "queued", "options": json.dumps(options),
                                  "dialect": dialect, "meta": json.dumps(meta), "progress": 0, "frames_done": 0,
                                  "frames_total": 0, "attempt": 0, "created_at": repr(self._clock())}
        if owner is not None:
            fields["owner"] = owner
        with self._redis.pipeline() as pipe:  # MULTI/EXEC: the job and its place in the queue appear together
            pipe.hset(self._key(f"job:{job_id}"), mapping=fields)
            pipe.zadd(self._key("queued"), {job_id: seq})
            pipe.execute()
        return job_id

    def get(self, job_id: str) -> JobRecord | None:
        with self._redis.pipeline() as pipe:
            pipe.hgetall(self._key(f"job:{job_id}"))
            pipe.zrank(self._key("queued"), job_id)
            row, rank = pipe.execute()
        if not row:
            return None
        position = rank + 1 if row["status"] == "queued" and rank is not None else (
            0 if row["status"] == "processing" else None)
        record = _record(row, position)
        if record.segments and record.status == "processing":  # a split job's progress is its segments'
            children = self._redis.lrange(self._key(f"children:{job_id}"), 0, -1)
            with self._redis.pipeline(transaction=False) as pipe:
                for child in children:
                    pipe.hget(self._key(f"job:{child}"), "frames_done")
                done = sum(int(value or 0) for value in pipe.execute())
            total = record.frames_total
            record = replace(record, frames_done=min(done, total), progress=min(done / total, 1.0) if total else 0.0)
        return record

    def queue_size(self) -> int:
        return int(self._redis.zcard(self._key("queued")))

    def request_cancel(self, job_id: str) -> JobRecord | None:
        error = {"code": "task_cancelled", "message": "The task was cancelled.", "retryable": False}
        self._cancel(keys=[self._prefix], args=[job_id, repr(self._clock()), json.dumps(error)])
        return self.get(job_id)

    # -- workers -------------------------------------------------------------------------------------------------

    def claim(self, job_id: str | None = None) -> Lease | None:
        token = secrets.token_hex(16)
        claimed = self._claim(keys=[self._prefix], args=[job_id or "", token, repr(self._clock())])
        if not claimed:
            return None
        return Lease(claimed[0], token, int(claimed[1]))

    def heartbeat(self, lease: Lease, frames_done: int = 0, frames_total: int = 0) -> HeartbeatAnswer:
        progress = min(frames_done / frames_total, 1.0) if frames_total else 0.0
        return self._heartbeat(keys=[self._prefix], args=[lease.job_id, lease.token, repr(self._clock()),
                                                           frames_done, frames_total, repr(progress)])

    def complete(self, lease: Lease, *, output_file_id: str, engine: str | None,
                 report: dict[str, Any] | None) -> bool:
        fields = ["output_file_id", output_file_id, "progress", 1]
        fields += ["engine", engine] if engine is not None else []
        fields += ["report", json.dumps(report)] if report is not None else []
        return self._end(lease, "succeeded", fields)

    def fail(self, lease: Lease, error: dict[str, Any], *, engine: str | None = None) -> bool:
        return self._end(lease, "failed", ["error", json.dumps(error)] + (["engine", engine] if engine else []))

    def release(self, lease: Lease) -> bool:
        return bool(self._release(keys=[self._prefix], args=[lease.job_id, lease.token]))

    def _end(self, lease: Lease, status: str, fields: list[Any]) -> bool:
        cancelled = {"code": "task_cancelled", "message": "The task was cancelled.", "retryable": False}
        return bool(self._finish(keys=[self._prefix], args=[lease.job_id, lease.token, status, repr(self._clock()),
                                                            json.dumps(cancelled), *fields]))

    # -- split jobs (SegmentStore) -------------------------------------------------------------------------------

    def split(self, lease: Lease, children: list[dict[str, Any]], *, frames_total: int) -> list[str] | None:
        ids = [str(uuid.uuid4()) for _ in children]
        pairs = [value for child_id, meta in zip(ids, children, strict=True) for value in (child_id, json.dumps(meta))]
        done = self._split(keys=[self._prefix], args=[lease.job_id, lease.token, frames_total, repr(self._clock()),
                                                      *pairs])
        return ids if done else None

    def complete_segment(self, lease: Lease, *, output_file_id: str, report: dict[str, Any]) -> SegmentCommit:
        recorded, stitch_id = self._complete_segment(
            keys=[self._prefix], args=[lease.job_id, lease.token, repr(self._clock()), output_file_id,
                                       json.dumps(report), str(uuid.uuid4())])
        return SegmentCommit(bool(recorded), stitch_id or None)

    def children(self, job_id: str) -> list[JobRecord]:
        ids = self._redis.lrange(self._key(f"children:{job_id}"), 0, -1)
        return [record for child in ids if (record := self.get(child)) is not None]

    # -- housekeeping --------------------------------------------------------------------------------------------

    def recover(self, *, stale_after_s: float | None = None) -> Recovery:
        cutoff = "+inf" if stale_after_s is None else repr(self._clock() - stale_after_s)
        error = {"code": "internal_error", "retryable": True,
                 "message": "The task was interrupted twice (the server stopped while it ran) and was given up."}
        cancelled = {"code": "task_cancelled", "message": "The task was cancelled.", "retryable": False}
        requeued, failed = self._recover(keys=[self._prefix], args=[cutoff, MAX_ATTEMPTS, repr(self._clock()),
                                                                    json.dumps(error), json.dumps(cancelled)])
        if requeued or failed:
            log.warning("recovered interrupted jobs: %d re-queued, %d failed", len(requeued), len(failed))
        return Recovery(list(requeued), list(failed))

    def sweep_expired(self, retention_s: float) -> list[JobRecord]:
        ids = self._redis.zrangebyscore(self._key("finished"), "-inf", f"({self._clock() - retention_s!r}")
        records = [record for job_id in ids if (record := self.get(job_id)) is not None
                   and not self._parent_running(record)]  # a running split job keeps its finished segments
        ids = [record.id for record in records]
        if ids:
            with self._redis.pipeline() as pipe:
                pipe.delete(*(self._key(f"job:{job_id}") for job_id in ids))
                pipe.delete(*(self._key(f"children:{job_id}") for job_id in ids))
                pipe.zrem(self._key("finished"), *ids)
                pipe.execute()
        return records

    def _parent_running(self, record: JobRecord) -> bool:
        if record.parent_id is None:
            return False
        status = self._redis.hget(self._key(f"job:{record.parent_id}"), "status")
        return status in ("queued", "processing")

    def live_options(self) -> list[dict[str, Any]]:
        ids = [job_id for name in ("queued", "processing", "finished")
               for job_id in self._redis.zrange(self._key(name), 0, -1)]
        with self._redis.pipeline(transaction=False) as pipe:
            for job_id in ids:
                pipe.hget(self._key(f"job:{job_id}"), "options")
            return [json.loads(text) for text in pipe.execute() if text is not None]

    def live_outputs(self) -> set[str]:
        ids = [job_id for name in ("queued", "processing", "finished")
               for job_id in self._redis.zrange(self._key(name), 0, -1)]
        with self._redis.pipeline(transaction=False) as pipe:
            for job_id in ids:
                pipe.hget(self._key(f"job:{job_id}"), "output_file_id")
            return {text for text in pipe.execute() if text}


def _record(row: dict[str, str], position: int | None) -> JobRecord:
    def loads(name: str) -> Any:
        return json.loads(row[name]) if name in row else None

    def number(name: str) -> float | None:
        return float(row[name]) if name in row else None

    return JobRecord(
        id=row["id"], seq=int(row["seq"]), status=row["status"], options=json.loads(row["options"]),  # type: ignore[arg-type]
        dialect=row["dialect"], owner=row.get("owner"), meta=json.loads(row["meta"]),
        progress=float(row["progress"]),
        frames_done=int(row["frames_done"]), frames_total=int(row["frames_total"]), error=loads("error"),
        engine=row.get("engine"), report=loads("report"), output_file_id=row.get("output_file_id"),
        created_at=float(row["created_at"]), started_at=number("started_at"), finished_at=number("finished_at"),
        attempt=int(row["attempt"]), position=position, parent_id=row.get("parent_id"),
        segments=int(row.get("segments") or 0))
