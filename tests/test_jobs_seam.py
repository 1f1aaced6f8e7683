"""The job core's seams: injected stores and executors, blob references instead of host paths, cancel and progress
through the store from another process, and retention that never takes the inputs of a job still waiting.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, BinaryIO

import pytest
from api_support import FakeRunner, FakeRuntime
from media_factory import ClipSpec, row_layout, t1_patches, write_clip
from redis_support import redis_url  # noqa: F401  (a fixture)

from faceswap.config import Settings
from faceswap.errors import FaceSwapError
from faceswap.jobs import JobService
from faceswap.jobs.blobs import DirBlobStore, guess_content_type, safe_filename
from faceswap.jobs.executor import TaskContext, ThreadExecutor, work_on
from faceswap.jobs.interfaces import BlobInfo, BlobStore, Executor, JobStore, Task, blob_id_of
from faceswap.jobs.store import SqliteJobStore
from faceswap.options import SwapOptions


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    import cv2
    from media_factory import hanks_photo

    folder = tmp_path_factory.mktemp("seam-media")
    clip = write_clip(folder / "clip.mp4", t1_patches(100)[:2], row_layout(2, 100, 320, 240),
                      ClipSpec(width=320, height=240, fps=10, frames=6))
    face = folder / "face.png"
    cv2.imwrite(str(face), hanks_photo())
    return clip, face


def make_settings(tmp_path: Path, **changes: object) -> Settings:
    return Settings(data_dir=tmp_path / "data", models_dir=tmp_path / "models").with_(**changes)


class MemoryBlobStore:
    """A second BlobStore: bytes in a dict; `path` materialises a blob into a cache folder, as a remote store would
    download it for the worker."""

    def __init__(self, cache: Path, *, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._cache = cache
        self._data: dict[str, bytes] = {}
        self._info: dict[str, BlobInfo] = {}
        self._lock = threading.Lock()

    def put(self, data: bytes | Path | BinaryIO, *, filename: str, content_type: str | None = None,
            move: bool = False, limit: bool = True) -> BlobInfo:
        raw = data if isinstance(data, bytes) else data.read_bytes() if isinstance(data, Path) else data.read()
        if limit and len(raw) > self.max_bytes:
            raise FaceSwapError("media_too_large")
        if move and isinstance(data, Path):
            data.unlink()
        name = safe_filename(filename)
        info = BlobInfo(secrets.token_hex(16), name, content_type or guess_content_type(name), len(raw), time.time())
        with self._lock:
            self._data[info.id], self._info[info.id] = raw, info
        return info

    def reserve(self, *, filename: str, size: int, content_type: str | None) -> tuple[BlobInfo, str]:
        raise FaceSwapError("invalid_request", "uploads are not part of this test store")

    def open_upload(self, blob_id: str, token: str) -> tuple[BlobInfo, Path]:
        raise FaceSwapError("file_not_found")

    def finish_upload(self, blob_id: str, written: int) -> BlobInfo:
        raise FaceSwapError("file_not_found")

    def info(self, blob_id: str) -> BlobInfo:
        with self._lock:
            if blob_id not in self._info:
                raise FaceSwapError("file_not_found")
            return self._info[blob_id]

    def path(self, blob_id: str) -> Path:
        info = self.info(blob_id)
        target = self._cache / blob_id / ("data" + Path(info.filename).suffix)
        if not target.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(self._data[blob_id])
        return target

    def delete(self, blob_id: str) -> None:
        with self._lock:
            self._data.pop(blob_id, None)
            self._info.pop(blob_id, None)

    def sweep(self, retention_s: float, *, keep: Collection[str] = ()) -> int:
        cutoff = time.time() - retention_s
        old = [blob_id for blob_id, info in list(self._info.items())
               if info.created_at < cutoff and blob_id not in keep]
        for blob_id in old:
            self.delete(blob_id)
        return len(old)

    def ids(self) -> set[str]:
        with self._lock:
            return set(self._data)


class ParkingExecutor:
    """An Executor that runs nothing itself: it keeps the serialised tasks, as a broker would."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    @property
    def size(self) -> int:
        return 1

    def start(self, context: TaskContext, on_finished: Any = None) -> None:
        pass

    def dispatch(self, task: Task) -> None:
        self.sent.append(task.to_json())

    def cancel(self, job_id: str) -> None:
        pass

    def stop(self, timeout: float = 10.0) -> None:
        pass



@contextmanager
def parked_service(tmp_path: Path, **changes: object) -> Iterator[tuple[JobService, ParkingExecutor]]:
    """A started JobService whose executor only keeps the tasks it is sent (a separate worker runs them, or none)."""
    settings = make_settings(tmp_path, **changes)
    executor = ParkingExecutor()
    service = JobService(FakeRuntime(settings), settings, runner=FakeRunner(), executor=executor)
    service.start()
    try:
        yield service, executor
    finally:
        service.close()


def worker_context(settings: Settings, runner: Any) -> TaskContext:
    """A worker's own store connection, blob store and runner, as another process would build them."""
    return TaskContext(store=SqliteJobStore(settings.data_dir / "jobs.sqlite3"),
                       blobs=DirBlobStore(settings.data_dir / "files", max_bytes=settings.max_upload_bytes),
                       settings=settings, runtime=FakeRuntime(settings), runner=runner)

def test_the_embedded_parts_implement_the_protocols(tmp_path: Path) -> None:
    store = SqliteJobStore(tmp_path / "jobs.sqlite3")
    assert isinstance(store, JobStore)
    assert isinstance(DirBlobStore(tmp_path / "files", max_bytes=10), BlobStore)
    assert isinstance(ThreadExecutor(2), Executor) and isinstance(ParkingExecutor(), Executor)
    assert isinstance(MemoryBlobStore(tmp_path, max_bytes=10), BlobStore)
    store.close()


def test_an_injected_blob_store_holds_every_input_and_output(tmp_path: Path, inputs: tuple[Path, Path]) -> None:
    clip, face = inputs
    settings = make_settings(tmp_path)
    blobs = MemoryBlobStore(tmp_path / "cache", max_bytes=settings.max_upload_bytes)
    runner = FakeRunner(frames=3, settings=settings)
    service = JobService(FakeRuntime(settings), settings, runner=runner, blobs=blobs)
    service.start()
    try:
        job = service.wait(service.submit(SwapOptions.parse(video=str(clip), face=str(face))).id, timeout=30)
    finally:
        service.close()
    assert job.status == "succeeded", job.error
    assert Path(runner.calls[0]).is_relative_to(tmp_path / "cache"), "the worker read the input through the store"
    assert blobs.ids() == {job.output_file_id}, "the job's input copies went with its end; its output stays"
    assert service.file_path(job.output_file_id).read_bytes() == clip.read_bytes()
    assert not (settings.data_dir / "files").exists(), "nothing went to the default directory store"


def test_stored_options_name_blobs_not_host_paths(tmp_path: Path, inputs: tuple[Path, Path]) -> None:
    clip, face = inputs
    with parked_service(tmp_path) as (service, executor):
        job = service.submit(SwapOptions.parse(video=str(clip), face=str(face)), meta={"door": "gradio"})
        record = service.store.get(job.id)
    settings = service.settings
    stored = json.dumps(record.options)
    for path in (clip, face, tmp_path, settings.data_dir):
        assert str(path) not in stored
    assert "/" not in stored.replace("blob://", ""), stored
    assert all(blob_id_of(record.options[name]) for name in ("video", "face"))
    assert job.meta == {"door": "gradio"}, "the bookkeeping of input copies is not shown to callers"
    assert [Task.from_json(text) for text in executor.sent] == [Task(job.id)]


def test_a_dispatched_task_runs_in_a_worker_built_from_configuration(tmp_path: Path,
                                                                     inputs: tuple[Path, Path]) -> None:
    clip, face = inputs
    with parked_service(tmp_path) as (service, executor):
        job = service.submit(SwapOptions.parse(video=str(clip), face=str(face)))
        assert service.get(job.id).status == "queued", "the parking executor ran nothing"
        # The "worker": its own store connection, blob store and runner, and only the serialised task.
        worker = worker_context(service.settings, FakeRunner(frames=4))
        assert work_on(worker, Task.from_json(executor.sent[0]))
        assert not work_on(worker, Task.from_json(executor.sent[0])), "a task whose job already ran is dropped"
        done = service.wait(job.id, timeout=10)
        worker.store.close()
    assert done.status == "succeeded" and done.frames_done == 4
    assert service.file_path(done.output_file_id).read_bytes() == clip.read_bytes()


def test_a_job_that_reports_no_frames_for_a_while_keeps_its_lease(tmp_path: Path, inputs: tuple[Path, Path]) -> None:
    """A slow download, model load or face preparation reports no frames; the worker still beats, so another server
    sharing the store never takes a live job for a dead one (it did, under load, with a short stale time)."""
    clip, face = inputs
    inner = FakeRunner(frames=2)

    def silent_then_done(*args: Any, **kwargs: Any) -> Any:
        time.sleep(2.0)  # five stale times without a frame
        return inner(*args, **kwargs)

    with parked_service(tmp_path, lease_stale_s=0.4) as (service, executor):
        worker = worker_context(service.settings, silent_then_done)
        try:
            job = service.submit(SwapOptions.parse(video=str(clip), face=str(face)))
            running = threading.Thread(target=work_on, args=(worker, Task.from_json(executor.sent[0])))
            running.start()
            taken = 0
            while running.is_alive():  # another server sweeping for stale jobs all along
                recovery = worker.store.recover(stale_after_s=service.settings.lease_stale_s)
                taken += len(recovery.requeued) + len(recovery.failed)
                time.sleep(0.05)
            running.join()
            done = service.wait(job.id, timeout=10)
        finally:
            worker.store.close()
    assert taken == 0 and done.status == "succeeded" and done.attempt == 1, (taken, done.status, done.attempt)


_OTHER_PROCESS = """
import sys, time
from pathlib import Path
if sys.argv[1] == "sqlite":
    from faceswap.jobs.store import SqliteJobStore
    store = SqliteJobStore(Path(sys.argv[3]))
else:
    from faceswap.jobs.redis_store import RedisJobStore
    store = RedisJobStore(sys.argv[3], prefix=sys.argv[4])
deadline = time.monotonic() + 20
while (record := store.get(sys.argv[2])).frames_done < 5 and time.monotonic() < deadline:
    time.sleep(0.02)
print(record.status, record.frames_done, record.frames_total, flush=True)
store.request_cancel(sys.argv[2])
"""


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_progress_and_cancel_travel_through_the_store_across_processes(
        kind: str, tmp_path: Path, inputs: tuple[Path, Path], request: pytest.FixtureRequest) -> None:
    clip, face = inputs
    settings = make_settings(tmp_path)
    runner = FakeRunner(frames=400, delay_s=0.02, settings=settings)
    if kind == "sqlite":
        store, where = None, [str(settings.data_dir / "jobs.sqlite3")]
    else:
        from faceswap.jobs.redis_store import RedisJobStore

        where = [request.getfixturevalue("redis_url"), f"seam-{secrets.token_hex(4)}:"]
        store = RedisJobStore(where[0], prefix=where[1])
    service = JobService(FakeRuntime(settings), settings, runner=runner, store=store)
    service.start()
    try:
        job = service.submit(SwapOptions.parse(video=str(clip), face=str(face)))
        seen = subprocess.run([sys.executable, "-c", _OTHER_PROCESS, kind, job.id, *where], capture_output=True,
                              text=True, timeout=60, env={**os.environ}, check=True).stdout
        cancelled_at = time.monotonic()
        done = service.wait(job.id, timeout=10)
        stopped_in = time.monotonic() - cancelled_at
        while (settings.data_dir / "work").exists() and any((settings.data_dir / "work").iterdir()):
            assert time.monotonic() - cancelled_at < 10
            time.sleep(0.05)
    finally:
        service.close()
    status, frames_done, frames_total = seen.split()
    assert status == "processing" and int(frames_done) >= 5 and int(frames_total) == 400, \
        "the other process read the worker's progress from the store"
    assert done.status == "cancelled" and done.error["code"] == "task_cancelled" and done.output_file_id is None
    assert done.frames_done < 400 and stopped_in < 5, "the worker stopped at a heartbeat, long before the end"
    assert [path.name for path in (settings.data_dir / "files").iterdir()] == [], "no output, no input copy left"


def test_a_job_queued_past_retention_still_runs_and_succeeds(tmp_path: Path, inputs: tuple[Path, Path]) -> None:
    clip, face = inputs
    settings = make_settings(tmp_path, retention_s=1.0)  # the sweeper runs every 0.5 s
    runner = FakeRunner(frames=40, delay_s=0.05, settings=settings)
    service = JobService(FakeRuntime(settings), settings, runner=runner)
    service.start()
    try:
        orphan = service.store_file(b"never used by a job", filename="orphan.bin")
        first = service.submit(SwapOptions.parse(video=str(clip), face=str(face)))
        # As the REST doors queue it: inputs the client sent, stored and named by reference.
        video, photo = (service.input_ref(service.store_file(path.read_bytes(), filename=path.name))
                        for path in (clip, face))
        waiting = service.submit(SwapOptions.parse(video=video, face=photo))
        assert runner.started.wait(10)
        time.sleep(1.6)
        record = service.store.get(waiting.id)
        assert record.status == "queued" and time.time() - record.created_at > settings.retention_s
        with pytest.raises(FaceSwapError):
            service.blobs.info(orphan)  # the sweeper did run meanwhile
        assert service.wait(first.id, timeout=30).status == "succeeded"
        done = service.wait(waiting.id, timeout=30)
    finally:
        service.close()
    assert done.status == "succeeded", done.error
    assert hashlib.sha256(service.blobs.path(done.output_file_id).read_bytes()).digest() == \
        hashlib.sha256(clip.read_bytes()).digest()


def test_an_old_file_that_is_a_held_jobs_output_is_not_swept_by_age(tmp_path: Path) -> None:
    """A long split job's first segments finish long before the stitch: their files are older than retention while
    their jobs are still held, and must stay until the job expires."""
    settings = make_settings(tmp_path, retention_s=0.5)
    service = JobService(FakeRuntime(settings), settings, runner=FakeRunner(), executor=ParkingExecutor())
    try:
        early = service.store_file(b"segment 1 of a long video", filename="segment-0.mp4")
        loose = service.store_file(b"nobody's file", filename="loose.bin")
        time.sleep(0.7)
        job = service.store.submit({"video": "v"}, dialect="internal", owner=None, meta={})
        service.store.complete(service.store.claim(job), output_file_id=early, engine="classic", report=None)
        assert service.sweep() == (0, 1), "the loose file went by age; the held job's output stayed"
        assert service.blobs.path(early).read_bytes() == b"segment 1 of a long video"
        with pytest.raises(FaceSwapError):
            service.blobs.info(loose)
    finally:
        service.close()


def test_an_input_gone_from_the_store_fails_without_blaming_the_caller_or_showing_a_path(
        tmp_path: Path, inputs: tuple[Path, Path]) -> None:
    clip, face = inputs
    with parked_service(tmp_path) as (service, _):
        settings = service.settings
        job = service.submit(SwapOptions.parse(video=str(clip), face=str(face)))
        service.blobs.delete(blob_id_of(service.store.get(job.id).options["video"]))
        context = TaskContext(store=service.store, blobs=service.blobs, settings=settings,
                              runtime=FakeRuntime(settings), runner=FakeRunner())
        work_on(context, Task(job.id))
        failed = service.get(job.id)
    assert failed.status == "failed" and failed.error["code"] == "file_not_found"
    assert str(settings.data_dir) not in failed.error["message"] and "video" in failed.error["message"]


def test_backends_come_from_configuration(tmp_path: Path) -> None:
    settings = Settings.from_env({"FACESWAP_DATA_DIR": str(tmp_path / "d"), "FACESWAP_MODELS_DIR": str(tmp_path),
                                  "FACESWAP_BACKEND": "Embedded", "FACESWAP_BLOBS": "dir"})
    assert (settings.backend, settings.blobs) == ("embedded", "dir")
    JobService(FakeRuntime(settings), settings).close()
    for change, name in (({"backend": "celery"}, "FACESWAP_BACKEND"), ({"blobs": "s3://bucket/x"}, "FACESWAP_BLOBS")):
        with pytest.raises(ValueError, match=name):
            JobService(FakeRuntime(settings), replace(settings, **change))


def test_a_service_on_redis_with_an_injected_blob_store_runs_jobs_to_success(
        tmp_path: Path, inputs: tuple[Path, Path], redis_url: str) -> None:  # noqa: F811
    from faceswap.jobs.redis_store import RedisJobStore

    clip, face = inputs
    settings = make_settings(tmp_path, workers=2)
    blobs = MemoryBlobStore(tmp_path / "cache", max_bytes=settings.max_upload_bytes)
    store = RedisJobStore(redis_url, prefix=f"seam-{secrets.token_hex(4)}:")
    service = JobService(FakeRuntime(settings), settings, runner=FakeRunner(frames=3, settings=settings),
                         store=store, blobs=blobs)
    service.start()
    try:
        jobs = [service.submit(SwapOptions.parse(video=str(clip), face=str(face))) for _ in range(3)]
        done = [service.wait(job.id, timeout=30) for job in jobs]
    finally:
        service.close()
    assert [job.status for job in done] == ["succeeded"] * 3 and [job.frames_done for job in done] == [3] * 3
    assert blobs.ids() == {job.output_file_id for job in done}
    assert all(service.file_path(job.output_file_id).read_bytes() == clip.read_bytes() for job in done)
    assert not (settings.data_dir / "jobs.sqlite3").exists(), "no SQLite store was built"
