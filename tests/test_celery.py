"""The celery backend: the app queues into a real redis-server, `faceswap worker` processes run the jobs.

Fast tests cover the pieces in this process (recovery on a shared store, a redelivered task meeting a live or a dead
lease, the configuration). The slow ones run the deployment for real: two worker processes (prefork, each pool
process loading the classic engine at start) and the REST app, on tiny clips — a swap with the classic engine, a
worker's pool process killed mid-job, a cancel, and queue positions.
"""

from __future__ import annotations

import contextlib
import http.server
import os
import re
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import pytest
import requests
from api_helpers import KEY, auth, data_uri
from api_support import FakeRunner, FakeRuntime, live_server, serve_handler
from celery_support import READY, WorkerProc, celery_settings, flush, worker_processes
from media_factory import ClipSpec, hanks_photo, probe, row_layout, t1_patches, write_clip, write_timed_clip
from redis_support import redis_url  # noqa: F401  (a fixture)

from faceswap import cli
from faceswap.config import Settings
from faceswap.jobs import JobService, backends
from faceswap.jobs.blobs import DirBlobStore
from faceswap.jobs.celery_executor import CeleryExecutor, execute, task_id_of
from faceswap.jobs.executor import TaskContext, ThreadExecutor
from faceswap.jobs.interfaces import Task
from faceswap.jobs.redis_store import RedisJobStore
from faceswap.jobs.store import SqliteJobStore
from faceswap.options import SwapOptions

OO_MODEL = "openoctopus/video-face-swap"


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("celery-media")
    patches, layout = t1_patches(100)[:2], row_layout(2, 100, 320, 240)
    face = folder / "face.jpg"
    cv2.imwrite(str(face), hanks_photo())
    return {"face": face,
            "short": write_clip(folder / "short.mp4", patches, layout, ClipSpec(width=320, height=240, fps=10,
                                                                                  frames=6)),
            "long": write_clip(folder / "long.mp4", patches, layout, ClipSpec(width=320, height=240, fps=10,
                                                                                frames=24))}


def _settings(tmp_path: Path, url: str, **changes: object) -> Settings:
    return celery_settings(Settings(data_dir=tmp_path / "data", models_dir=tmp_path / "models"), url, **changes)


def _options(media: dict[str, Path], clip: str = "short") -> SwapOptions:
    return SwapOptions(video=str(media[clip]), face=str(media["face"]), engine="classic")


# -- recovery on a shared store (fast) -----------------------------------------------------------------------------

def test_a_starting_service_takes_only_stale_jobs_from_a_shared_store(tmp_path: Path, redis_url: str,  # noqa: F811
                                                                      media) -> None:
    flush(redis_url)
    settings = Settings(data_dir=tmp_path / "data", models_dir=tmp_path / "models", lease_stale_s=1.0)
    blobs = DirBlobStore(tmp_path / "files", max_bytes=settings.max_upload_bytes)

    def service(runner: FakeRunner, data: str) -> JobService:
        mine = settings.with_(data_dir=tmp_path / data)
        runner.settings = mine
        made = JobService(FakeRuntime(mine), mine, runner=runner, store=RedisJobStore(redis_url), blobs=blobs,
                          executor=ThreadExecutor(1, stale_after_s=mine.lease_stale_s))
        made.start()
        return made

    first_runner = FakeRunner(frames=80, delay_s=0.025)
    first = service(first_runner, "a")
    dead = RedisJobStore(redis_url)
    try:
        live = first.submit(_options(media))
        assert first_runner.started.wait(10)
        abandoned = dead.submit(_options(media).model_dump(mode="json"), dialect="internal", owner=None, meta={})
        assert dead.claim(abandoned) is not None  # a worker that then died: its heartbeat goes stale
        second_runner = FakeRunner(frames=2)
        second = service(second_runner, "b")
        try:
            assert first.get(live.id).status == "processing" and first.get(live.id).attempt == 1
            done = second.wait(abandoned, timeout=20)
            assert done.status == "succeeded" and done.attempt == 2, "the stale job is taken over"
            finished = first.wait(live.id, timeout=20)
            assert finished.status == "succeeded" and finished.attempt == 1, "the live job was left to its worker"
            assert len(first_runner.calls) == 1 and len(second_runner.calls) == 1
        finally:
            second.close()
    finally:
        first.close()
        dead.close()


def test_a_second_server_on_the_same_sqlite_file_is_not_its_sole_user(tmp_path: Path) -> None:
    first = SqliteJobStore(tmp_path / "jobs.sqlite3")
    second = SqliteJobStore(tmp_path / "jobs.sqlite3")
    assert first.sole_user() and not second.sole_user()
    first.close()
    assert second.sole_user(), "the lock goes with the store that held it"
    second.close()


def test_a_redelivered_task_takes_a_dead_lease_and_drops_a_live_one(tmp_path: Path, redis_url: str,  # noqa: F811
                                                                     media) -> None:
    flush(redis_url)
    settings = _settings(tmp_path, redis_url, lease_stale_s=0.6)
    store = RedisJobStore(redis_url)
    runner = FakeRunner(frames=2, settings=settings)
    context = TaskContext(store=store, blobs=DirBlobStore(settings.data_dir / "files", max_bytes=10**9),
                          settings=settings, runtime=FakeRuntime(settings), runner=runner)
    sent: list[Task] = []
    options = _options(media).model_dump(mode="json")
    try:
        dead = store.submit(options, dialect="internal", owner=None, meta={})
        assert store.claim(dead) is not None  # its worker was killed: no heartbeat follows
        started = time.monotonic()
        assert execute(context, Task(dead), redispatch=sent.append, poll_s=0.1) == "ran"
        assert 0.5 < time.monotonic() - started < 5, "it waited for the lease to go stale, no longer"
        record = store.get(dead)
        assert record.status == "succeeded" and record.attempt == 2 and sent == []

        live = store.submit(options, dialect="internal", owner=None, meta={})
        lease = store.claim(live)
        stop = threading.Event()
        beating = threading.Thread(target=lambda: [store.heartbeat(lease) for _ in iter(lambda: stop.wait(0.1), True)])
        beating.start()
        try:
            assert execute(context, Task(live), redispatch=sent.append, poll_s=0.1) == "held"
        finally:
            stop.set()
            beating.join()
        assert store.get(live).status == "processing" and store.get(live).attempt == 1
        assert execute(context, Task(dead), redispatch=sent.append) == "finished", "a finished job is left alone"
        assert len(runner.calls) == 1

        leased = store.submit(options, dialect="internal", owner=None, meta={})
        task = Task(leased, store.claim(leased))  # any other kind of task goes straight to work_on
        assert task_id_of(task) != leased and task_id_of(task) == task_id_of(Task.from_json(task.to_json()))
        assert execute(context, task, redispatch=sent.append) == "ran" and store.get(leased).status == "succeeded"
    finally:
        store.close()


def test_the_celery_backend_is_configuration(tmp_path: Path, redis_url: str, monkeypatch,  # noqa: F811
                                             capsys) -> None:
    settings = Settings.from_env({"FACESWAP_DATA_DIR": str(tmp_path), "FACESWAP_BACKEND": "celery",
                                  "FACESWAP_REDIS_URL": redis_url, "FACESWAP_VISIBILITY_TIMEOUT_S": "120"})
    store, executor = backends.build_store(settings), backends.build_executor(settings)
    try:
        assert isinstance(store, RedisJobStore) and isinstance(executor, CeleryExecutor)
        conf = executor.app.conf
        assert conf.task_acks_late and conf.task_reject_on_worker_lost and conf.worker_prefetch_multiplier == 1
        assert conf.worker_concurrency == 1 and conf.broker_transport_options["visibility_timeout"] == 120
    finally:
        store.close()
        executor.app.close()
    with pytest.raises(ValueError, match="FACESWAP_REDIS_URL"):
        backends.build_store(settings.with_(redis_url=None))

    monkeypatch.delenv("FACESWAP_BACKEND", raising=False)
    assert cli.main(["worker"]) == cli.EXIT_CALLER
    assert "FACESWAP_BACKEND=celery" in capsys.readouterr().err
    assert cli.main(["worker", "--device", "first"]) == cli.EXIT_CALLER
    assert "--device" in capsys.readouterr().err


# -- two worker processes (slow) -----------------------------------------------------------------------------------

class Cluster:
    def __init__(self, base: str, service: JobService, workers: list[WorkerProc], settings: Settings) -> None:
        self.base, self.service, self.workers, self.settings = base, service, workers, settings

    def worker_of(self, job_id: str, attempt: int = 1) -> tuple[WorkerProc, int]:
        """The worker that ran this attempt of the job, and its pool process (from the workers' logs)."""
        pattern = re.compile(rf"job {job_id}: attempt {attempt} on \S+ \(pid (\d+)\)")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for worker in self.workers:
                if found := pattern.search(worker.text()):
                    return worker, int(found.group(1))
            time.sleep(0.05)
        raise TimeoutError(f"no worker logged attempt {attempt} of {job_id}")

    def successes(self, job_id: str) -> int:
        return sum(worker.text().count(f"job {job_id} succeeded") for worker in self.workers)

    def blob_ids(self) -> set[str]:
        return {path.name for path in (self.settings.data_dir / "files").iterdir() if path.is_dir()}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[Cluster]:  # noqa: F811
    from faceswap.server import create_app

    folder = tmp_path_factory.mktemp("celery-cluster")
    flush(redis_url)
    settings = celery_settings(Settings(data_dir=folder / "data", models_dir=folder / "models",
                                        api_keys=frozenset({KEY}), rate_limit_per_minute=1000, workers=2,
                                        url_allowlist=("127.0.0.1",), segment_after_s=5.0, segment_s=2.0),
                               redis_url, lease_stale_s=3.0, cancel_grace_s=2.0)
    with worker_processes(settings, folder) as workers:
        app = create_app(settings, with_ui=False)
        with live_server(app) as base:
            yield Cluster(base, app.state.service, workers, settings)


def _oo_create(cluster: Cluster, media: dict[str, Path], clip: str = "short") -> str:
    body = {"model": OO_MODEL, "input": {"video": data_uri(media[clip], "video/mp4"),
                                         "face_image": data_uri(media["face"], "image/jpeg"), "engine": "classic"}}
    resp = requests.post(f"{cluster.base}/v1/videos/generations", json=body, headers=auth(), timeout=60)
    assert resp.status_code == 200, resp.text
    return resp.json()["id"]


def _poll(cluster: Cluster, task_id: str) -> dict:
    return requests.get(f"{cluster.base}/v1/tasks/{task_id}", headers=auth(), timeout=30).json()


@pytest.mark.slow
def test_rest_jobs_run_on_worker_processes_with_the_classic_engine_in_queue_order(cluster: Cluster, media,
                                                                                 tmp_path) -> None:
    ids = [_oo_create(cluster, media) for _ in range(4)]
    seen: dict[str, list[int | None]] = {task_id: [] for task_id in ids}
    deadline = time.monotonic() + 120
    while not all(cluster.service.get(task_id).finished for task_id in ids):
        assert time.monotonic() < deadline
        for task_id in ids:
            position = _poll(cluster, task_id)["queue"]["position"]
            if not seen[task_id] or seen[task_id][-1] != position:
                seen[task_id].append(position)
        time.sleep(0.05)
    assert all(cluster.service.get(task_id).status == "succeeded" for task_id in ids)
    last = seen[ids[-1]]
    assert last[0] is not None and last[0] >= 2, f"four jobs on two workers: the last one waited ({last})"
    numbers = [position for position in last if position is not None]
    assert numbers == sorted(numbers, reverse=True) and numbers[-1] == 0, f"counted down to running: {last}"

    task = _poll(cluster, ids[0])
    report = task["output_payload"]["raw"]["report"]
    assert report["engine"] == "classic" and report["frames"] == 6 and report["frames_swapped"] >= 5
    ran_on = {cluster.worker_of(task_id)[0].name for task_id in ids}
    assert ran_on == {"w1", "w2"}, "both workers took jobs"
    worker, pid = cluster.worker_of(ids[0])
    assert pid in worker.child_pids(), "the job ran in a worker's pool process, not in the app"
    output = tmp_path / "out.mp4"
    output.write_bytes(requests.get(task["output_payload"]["assets"][0]["url"], timeout=30).content)
    facts = probe(output)
    assert facts.frames == 6 and facts.has_audio and (facts.width, facts.height) == (320, 240)


@pytest.mark.slow
def test_a_killed_pool_process_hands_its_job_to_the_other_worker_once(cluster: Cluster, media) -> None:
    job = cluster.service.submit(_options(media, "long"))
    deadline = time.monotonic() + 60
    while cluster.service.get(job.id).frames_done < 3:
        assert time.monotonic() < deadline and not cluster.service.get(job.id).finished
        time.sleep(0.05)
    victim, pid = cluster.worker_of(job.id)
    os.kill(pid, signal.SIGKILL)
    started = time.monotonic()

    done = cluster.service.wait(job.id, timeout=120)
    assert done.status == "succeeded" and done.attempt == 2, done.error
    rescuer, _ = cluster.worker_of(job.id, attempt=2)
    assert rescuer is not victim, "the message went back to the queue and the idle worker took it"
    assert time.monotonic() - started < 60
    assert cluster.successes(job.id) == 1 and done.report["frames"] == 24
    assert done.output_file_id in cluster.blob_ids()
    victim.wait_ready(count=2)  # its parent replaced the killed pool process, which loaded the engine again
    assert not (cluster.settings.data_dir / "work" / f"{job.id}-1").exists(), "the dead run's scratch is cleared"


@pytest.mark.slow
def test_cancel_stops_a_running_job_and_removes_its_files(cluster: Cluster, media) -> None:
    before = cluster.blob_ids()
    job = cluster.service.submit(_options(media, "long"))
    owned = cluster.blob_ids() - before
    assert len(owned) == 2, "the service stored its own copies of the two local inputs"
    deadline = time.monotonic() + 60
    while cluster.service.get(job.id).frames_done < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert cluster.service.cancel(job.id).status == "cancelled"
    deadline = time.monotonic() + 20
    while cluster.blob_ids() != before:
        assert time.monotonic() < deadline, "the worker removes the job's input copies once it stopped"
        time.sleep(0.1)
    worker, pid = cluster.worker_of(job.id)
    assert re.search(rf"job {job.id}: cancelled, stopped", worker.text())
    record = cluster.service.get(job.id)
    assert record.status == "cancelled" and record.output_file_id is None and record.frames_done < 24
    time.sleep(cluster.settings.cancel_grace_s + 1)
    assert pid in worker.child_pids(), "the late revoke finds nothing to terminate: the pool process lives on"


@pytest.mark.slow
def test_a_long_video_runs_as_segments_on_both_workers_and_is_stitched(cluster: Cluster, tmp_path: Path) -> None:
    from test_segments import FPS, HEIGHT, SIZE, WIDTH, packets

    times = [index / FPS for index in range(8 * FPS)]  # 8 s > segment_after_s: four 2 s segments
    clip = write_timed_clip(tmp_path / "eight.mp4", t1_patches(SIZE)[:2], row_layout(2, SIZE, WIDTH, HEIGHT), times,
                            width=WIDTH, height=HEIGHT, keyframe_every=2)
    face = tmp_path / "face.png"
    cv2.imwrite(str(face), hanks_photo())
    before = cluster.blob_ids()
    job = cluster.service.wait(cluster.service.submit(
        SwapOptions(video=str(clip), face=str(face), engine="classic", target_faces="1")).id, timeout=180)
    assert job.status == "succeeded", job.error
    children = cluster.service.store.children(job.id)
    assert [child.meta.get("segment", "stitch") for child in children] == [0, 1, 2, 3, "stitch"]
    assert {cluster.worker_of(child.id)[0].name for child in children[:4]} == {"w1", "w2"}, "segments spread out"
    assert [(child.status, child.attempt) for child in children] == [("succeeded", 1)] * 5
    assert job.report["frames"] == 16 and job.report["frames_swapped"] >= 14
    video, audio, duration = packets(cluster.service.file_path(job.output_file_id))
    assert [pts for pts, _ in video] == [round(t * 90000) for t in times] and audio
    assert duration == pytest.approx(8.0, abs=0.05)
    assert cluster.blob_ids() - before == {job.output_file_id}, "segment outputs and input copies are gone"


@contextlib.contextmanager
def trickling_server(total: int, bytes_per_s: int) -> Iterator[str]:
    """An HTTP server whose one file arrives slowly: a download a worker cannot interrupt between frames."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "video/mp4")
            self.send_header("Content-Length", str(total))
            self.end_headers()
            with contextlib.suppress(OSError):
                for _ in range(total // 4096):
                    self.wfile.write(b"\0" * 4096)
                    time.sleep(4096 / bytes_per_s)

        def log_message(self, format: str, *args: object) -> None:
            pass

    with serve_handler(Handler, daemon_threads=True) as base:
        yield f"{base}/slow.mp4"


@pytest.mark.slow
def test_a_cancelled_job_stuck_outside_the_frame_loop_is_terminated(cluster: Cluster, media) -> None:
    before = cluster.blob_ids()
    with trickling_server(total=4 * 1024 * 1024, bytes_per_s=128 * 1024) as url:
        job = cluster.service.submit(SwapOptions(video=url, face=str(media["face"]), engine="classic"))
        worker, pid = cluster.worker_of(job.id)
        ready_before = len(READY.findall(worker.text()))
        time.sleep(1.0)  # inside the download: no heartbeat until it ends (32 s)
        assert cluster.service.cancel(job.id).status == "cancelled"
        cancelled_at = time.monotonic()
        while pid in worker.child_pids():
            assert time.monotonic() - cancelled_at < cluster.settings.cancel_grace_s + 15, "never terminated"
            time.sleep(0.1)
        killed_after = time.monotonic() - cancelled_at
    assert killed_after >= cluster.settings.cancel_grace_s - 0.5, "terminated only after the grace period"
    assert cluster.service.get(job.id).status == "cancelled"
    deadline = time.monotonic() + 10
    while cluster.blob_ids() != before:
        assert time.monotonic() < deadline, "the app removes the terminated job's input copy"
        time.sleep(0.1)
    worker.wait_ready(count=ready_before + 1)  # a fresh pool process took the killed one's place


@pytest.mark.slow
def test_a_whole_worker_killed_mid_job_is_replaced_by_the_other_one(cluster: Cluster, media) -> None:
    """Last in this module: it leaves one worker. Its message stays unacknowledged until the visibility timeout;
    the app re-queues the job as soon as its heartbeat is stale and sends it again."""
    job = cluster.service.submit(_options(media, "long"))
    deadline = time.monotonic() + 60
    while cluster.service.get(job.id).frames_done < 3:
        assert time.monotonic() < deadline and not cluster.service.get(job.id).finished
        time.sleep(0.05)
    victim, _ = cluster.worker_of(job.id)
    victim.stop()  # SIGKILL to its parent and pool process together
    started = time.monotonic()
    done = cluster.service.wait(job.id, timeout=90)
    assert done.status == "succeeded" and done.attempt == 2, done.error
    rescuer, _ = cluster.worker_of(job.id, attempt=2)
    assert rescuer is not victim and cluster.successes(job.id) == 1
    assert time.monotonic() - started < cluster.settings.lease_stale_s + 45


def test_the_compose_file_runs_one_worker_per_gpu_on_the_apps_store() -> None:
    import yaml

    root = Path(__file__).parent.parent
    services = yaml.safe_load((root / "docker-compose.yml").read_text())["services"]
    app = services["app"]
    workers = {name: service for name, service in services.items() if "worker" in service.get("command", [])}
    assert len(workers) >= 2 and app["command"] == ["python", "app.py"]
    devices = []
    for service in workers.values():
        assert service["command"][:2] == ["faceswap", "worker"] and service["volumes"] == app["volumes"]
        for name in ("FACESWAP_BACKEND", "FACESWAP_REDIS_URL", "FACESWAP_DATA_DIR", "FACESWAP_LEASE_STALE_S"):
            assert service["environment"][name] == app["environment"][name]
        (reservation,) = service["deploy"]["resources"]["reservations"]["devices"]
        assert reservation["capabilities"] == ["gpu"] and len(reservation["device_ids"]) == 1
        devices += reservation["device_ids"]
    assert len(set(devices)) == len(devices), "each worker its own GPU"
    assert app["environment"]["FACESWAP_BACKEND"] == "celery"
    assert app["environment"]["FACESWAP_REDIS_URL"].startswith("redis://redis:")
    assert str(len(workers)) == app["environment"]["FACESWAP_WORKERS"]
    assert "EXTRAS" in (root / "Dockerfile").read_text() and app["build"]["args"]["EXTRAS"] == "distributed"
