"""The job core: JobStore leases, the worker pool, cancel, failures, restarts and retention.

A fake runner stands in for the pipeline (these tests are about the queue); it resolves real inputs and writes a
real output file, and the tests check that file byte for byte.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from api_support import FakeRunner, FakeRuntime
from media_factory import ClipSpec, row_layout, t1_patches, write_clip

from faceswap.config import Settings
from faceswap.errors import FaceSwapError
from faceswap.jobs import JobService
from faceswap.jobs.blobs import FILE_ID, DirBlobStore
from faceswap.jobs.interfaces import blob_id_of
from faceswap.jobs.store import SqliteJobStore
from faceswap.options import SwapOptions


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("jobs-media")
    patches = t1_patches(100)
    spec = ClipSpec(width=320, height=240, fps=10, frames=8)
    return write_clip(folder / "clip.mp4", patches[:2], row_layout(2, 100, 320, 240), spec)


@pytest.fixture(scope="module")
def face(clip: Path) -> Path:
    import cv2
    from media_factory import hanks_photo

    path = clip.parent / "face.png"
    cv2.imwrite(str(path), hanks_photo())
    return path


def make_settings(tmp_path: Path, **changes: object) -> Settings:
    return Settings(data_dir=tmp_path / "data", models_dir=tmp_path / "models").with_(**changes)


@pytest.fixture
def service_factory(tmp_path: Path):
    made: list[JobService] = []

    def make(runner: FakeRunner, **changes: object) -> JobService:
        settings = make_settings(tmp_path, **changes)
        runner.settings = settings
        service = JobService(FakeRuntime(settings), settings, runner=runner)
        service.start()
        made.append(service)
        return service

    yield make
    for service in made:
        service.close()


def options(clip: Path, face: Path, **fields: object) -> SwapOptions:
    return SwapOptions.parse(video=str(clip), face=str(face), **fields)


def output_files(service: JobService) -> list[str]:
    """The stored files a job wrote (inputs handed in as local files are stored too, under their own names)."""
    folder = service.settings.data_dir / "files"
    return [blob.name for blob in folder.iterdir() if service.blobs.info(blob.name).filename.startswith("faceswap-")]


def test_a_job_runs_to_success_and_its_output_is_stored(service_factory, clip: Path, face: Path) -> None:
    service = service_factory(FakeRunner(frames=5))
    job = service.submit(options(clip, face), dialect="internal", meta={"note": "x"})
    assert job.status in ("queued", "processing") and job.meta == {"note": "x"}
    done = service.wait(job.id, timeout=30)
    assert done.status == "succeeded"
    assert (done.progress, done.frames_done, done.frames_total, done.position) == (1.0, 5, 5, None)
    assert done.engine == "classic" and done.report["frames_swapped"] == 5 and done.error is None
    assert done.started_at >= done.created_at and done.finished_at >= done.started_at
    assert done.options.model_copy(update={"video": str(clip), "face": str(face)}) == options(clip, face)
    for name in ("video", "face"):
        blob_id = blob_id_of(getattr(done.options, name))
        assert blob_id is not None, "a local input is stored as a blob and named by reference"
        with pytest.raises(FaceSwapError):
            service.blobs.info(blob_id)  # the job's own copy went with its end
    assert FILE_ID.match(done.output_file_id)
    assert service.file_path(done.output_file_id).read_bytes() == clip.read_bytes()
    assert not list((service.settings.data_dir / "work").glob("*")), "scratch space must be cleaned up"


def test_queue_positions_count_from_one_and_processing_is_zero(service_factory, clip: Path, face: Path) -> None:
    runner = FakeRunner(frames=40, delay_s=0.05)
    service = service_factory(runner)
    jobs = [service.submit(options(clip, face)) for _ in range(4)]
    assert runner.started.wait(10)
    time.sleep(0.2)
    positions = [service.get(job.id).position for job in jobs]
    assert positions == [0, 1, 2, 3]
    assert service.queue_size() == 3 and service.concurrency() == 1
    for job in jobs:
        service.cancel(job.id)


def test_cancel_queued_is_immediate_and_running_stops_between_frames(service_factory, clip: Path,
                                                                     face: Path) -> None:
    runner = FakeRunner(frames=200, delay_s=0.02)
    service = service_factory(runner)
    running = service.submit(options(clip, face))
    queued = service.submit(options(clip, face))
    assert runner.started.wait(10)
    time.sleep(0.3)

    cancelled = service.cancel(queued.id)
    assert cancelled.status == "cancelled" and cancelled.error["code"] == "task_cancelled"
    assert cancelled.position is None and cancelled.finished_at is not None

    stopped_at = time.monotonic()
    service.cancel(running.id)
    done = service.wait(running.id, timeout=10)
    assert done.status == "cancelled" and done.output_file_id is None
    time.sleep(0.3)
    job = service.get(running.id)
    assert job.frames_done < 200, "the worker must stop long before the last frame"
    assert time.monotonic() - stopped_at < 5
    assert output_files(service) == [], "a cancelled job leaves no file"
    assert len(runner.calls) == 1, "the cancelled queued job never ran"

    again = service.cancel(running.id)
    assert again == service.get(running.id), "cancelling a finished job changes nothing"


def test_failures_carry_catalog_errors_and_leave_no_file(service_factory, clip: Path, face: Path) -> None:
    service = service_factory(FakeRunner(frames=3, fail_code="target_face_not_found"))
    job = service.wait(service.submit(options(clip, face)).id, timeout=30)
    assert job.status == "failed"
    assert job.error["code"] == "target_face_not_found" and job.error["retryable"] is False
    assert job.output_file_id is None
    assert output_files(service) == []


def test_a_crash_becomes_internal_error_without_the_trace(service_factory, clip: Path, face: Path) -> None:
    class Crashing(FakeRunner):
        def __call__(self, *args, **kwargs):
            raise RuntimeError("secret detail /etc/passwd")

    service = service_factory(Crashing())
    job = service.wait(service.submit(options(clip, face)).id, timeout=30)
    assert job.status == "failed" and job.error["code"] == "internal_error"
    assert "secret" not in job.error["message"]


def test_a_missing_local_input_is_refused_at_submit_without_its_path(service_factory, clip: Path) -> None:
    service = service_factory(FakeRunner())
    with pytest.raises(FaceSwapError) as caught:
        service.submit(SwapOptions.parse(video=str(clip), face="/no/such/face.png"))
    assert caught.value.code == "invalid_request" and caught.value.field == "face"
    assert "/no/such" not in caught.value.message


def test_input_errors_from_the_runner_are_job_failures(service_factory, clip: Path) -> None:
    service = service_factory(FakeRunner())
    job = service.submit(SwapOptions.parse(video=str(clip), face="data:image/png;base64,@@@@"))
    job = service.wait(job.id, timeout=30)
    assert job.status == "failed" and job.error["code"] == "invalid_request"
    assert "face" in job.error["message"]


def test_unknown_ids_are_catalog_errors(service_factory) -> None:
    service = service_factory(FakeRunner())
    for call, code in ((service.get, "task_not_found"), (service.cancel, "task_not_found"),
                       (service.file_path, "file_not_found")):
        with pytest.raises(FaceSwapError) as caught:
            call("nope")
        assert caught.value.code == code
    with pytest.raises(FaceSwapError) as caught:
        service.file_path("../../etc/passwd")
    assert caught.value.code == "file_not_found"


def test_wait_with_a_timeout_returns_the_unfinished_job(service_factory, clip: Path, face: Path) -> None:
    service = service_factory(FakeRunner(frames=100, delay_s=0.05))
    job = service.submit(options(clip, face))
    started = time.monotonic()
    waited = service.wait(job.id, timeout=0.3)
    assert waited.status in ("queued", "processing") and time.monotonic() - started < 2
    service.cancel(job.id)


def test_workers_run_jobs_in_parallel_up_to_the_pool_size(service_factory, clip: Path, face: Path) -> None:
    service = service_factory(FakeRunner(frames=20, delay_s=0.05), workers=2)
    jobs = [service.submit(options(clip, face)) for _ in range(3)]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        states = [service.get(job.id).status for job in jobs]
        if states.count("processing") == 2:
            break
        time.sleep(0.02)
    assert states.count("processing") == 2 and states.count("queued") == 1
    assert all(service.wait(job.id, timeout=30).status == "succeeded" for job in jobs)


def test_retention_expires_jobs_and_files(service_factory, clip: Path, face: Path) -> None:
    service = service_factory(FakeRunner(frames=2), retention_s=1.0)
    job = service.wait(service.submit(options(clip, face)).id, timeout=30)
    path = service.file_path(job.output_file_id)
    assert path.is_file()
    time.sleep(1.2)
    with pytest.raises(FaceSwapError, match="expired"):
        service.get(job.id)
    with pytest.raises(FaceSwapError):
        service.file_path(job.output_file_id)
    deadline = time.monotonic() + 5
    while (path.exists() or service.store.get(job.id)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not path.exists(), "the sweeper deletes expired outputs"
    assert service.store.get(job.id) is None, "the sweeper deletes expired jobs"


def test_a_restarted_service_finishes_what_a_dead_one_left(tmp_path: Path, clip: Path, face: Path) -> None:
    settings = make_settings(tmp_path)
    dead = SqliteJobStore(settings.data_dir / "jobs.sqlite3")
    opts = options(clip, face).model_dump(mode="json")
    ids = [dead.submit(opts, dialect="internal", owner=None, meta={}) for _ in range(3)]
    dead.claim()  # the first was running when the process died
    dead.close()

    runner = FakeRunner(frames=2, settings=settings)
    service = JobService(FakeRuntime(settings), settings, runner=runner)
    service.start()
    try:
        finished = [service.wait(job_id, timeout=30) for job_id in ids]
    finally:
        service.close()
    assert [job.status for job in finished] == ["succeeded"] * 3
    assert finished[0].attempt == 2 and finished[1].attempt == 1


def test_closing_puts_a_running_job_back_without_spending_an_attempt(tmp_path: Path, clip: Path,
                                                                     face: Path) -> None:
    settings = make_settings(tmp_path)
    runner = FakeRunner(frames=500, delay_s=0.02, settings=settings)
    service = JobService(FakeRuntime(settings), settings, runner=runner)
    service.start()
    job = service.submit(options(clip, face))
    assert runner.started.wait(10)
    service.close()
    store = SqliteJobStore(settings.data_dir / "jobs.sqlite3")
    record = store.get(job.id)
    assert record.status == "queued" and record.attempt == 0


# -- the blob store ------------------------------------------------------------------------------------------------

def test_blob_ids_are_long_random_and_checked(tmp_path: Path) -> None:
    blobs = DirBlobStore(tmp_path / "files", max_bytes=1000)
    ids = {blobs.put(b"abc", filename="../../x.mp4").id for _ in range(20)}
    assert len(ids) == 20 and all(FILE_ID.match(blob_id) for blob_id in ids)
    blob_id = next(iter(ids))
    info = blobs.info(blob_id)
    assert info.filename == "x.mp4" and info.content_type == "video/mp4" and info.size == 3
    assert blobs.path(blob_id).parent == tmp_path / "files" / blob_id
    with pytest.raises(FaceSwapError) as caught:
        blobs.put(b"x" * 1001, filename="big.bin")
    assert caught.value.code == "media_too_large"


def test_upload_tickets_are_single_use_and_size_checked(tmp_path: Path) -> None:
    blobs = DirBlobStore(tmp_path / "files", max_bytes=1000)
    info, token = blobs.reserve(filename="face.png", size=5, content_type=None)
    with pytest.raises(FaceSwapError) as caught:
        blobs.info(info.id)
    assert caught.value.code == "file_not_found", "a pending upload cannot be downloaded"
    with pytest.raises(FaceSwapError) as caught:
        blobs.open_upload(info.id, "wrong")
    assert caught.value.code == "unauthorized"
    _, target = blobs.open_upload(info.id, token)
    target.write_bytes(b"12345")
    assert blobs.finish_upload(info.id, 5).size == 5
    assert blobs.path(info.id).read_bytes() == b"12345"
    with pytest.raises(FaceSwapError) as caught:
        blobs.open_upload(info.id, token)
    assert caught.value.code == "file_not_found", "the token works once"

    short, short_token = blobs.reserve(filename="v.mp4", size=10, content_type="video/mp4")
    blobs.open_upload(short.id, short_token)[1].write_bytes(b"123")
    with pytest.raises(FaceSwapError) as caught:
        blobs.finish_upload(short.id, 3)
    assert caught.value.code == "invalid_request"
    with pytest.raises(FaceSwapError):
        blobs.info(short.id)


def test_a_lost_lease_stops_the_worker_and_the_job_runs_again(service_factory, clip: Path, face: Path) -> None:
    runner = FakeRunner(frames=60, delay_s=0.02)
    service = service_factory(runner)
    job = service.submit(options(clip, face))
    assert runner.started.wait(10)
    time.sleep(0.2)
    assert service.store.recover().requeued == [job.id]  # as if another process judged this worker dead
    done = service.wait(job.id, timeout=30)
    assert done.status == "succeeded" and done.attempt == 2 and len(runner.calls) == 2
    assert output_files(service) == [done.output_file_id], "the lost run's output was dropped"
