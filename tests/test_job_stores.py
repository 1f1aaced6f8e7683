"""The JobStore contract, run on every store: SQLite, and Redis on a real redis-server (started on a free port).

Leases make results complete-once, heartbeats answer ok | cancel | lost, interrupted jobs run once more then fail,
positions count the queue, retention counts from a job's end — whichever store holds the jobs.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from redis_support import redis_url  # noqa: F401  (a fixture)
from store_support import Clock, store_factory

from faceswap.jobs.interfaces import Recovery


@pytest.fixture(params=["sqlite", "redis"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path):
    yield from store_factory(request, tmp_path)


def test_leases_record_a_result_once(make_store) -> None:
    store = make_store()
    job_id = store.submit({"video": "v"}, dialect="internal", owner=None, meta={})
    lease = store.claim()
    assert lease is not None and lease.job_id == job_id and lease.attempt == 1
    assert store.claim() is None
    assert store.heartbeat(lease, 3, 10) == "ok"
    assert store.get(job_id).progress == pytest.approx(0.3)

    stolen = type(lease)(job_id, "not-the-token", 1)
    assert store.heartbeat(stolen) == "lost"
    assert not store.complete(stolen, output_file_id="x", engine=None, report=None)
    assert store.complete(lease, output_file_id="out", engine="classic", report={"frames": 10})
    assert not store.complete(lease, output_file_id="again", engine="classic", report=None)
    assert not store.fail(lease, {"code": "internal_error"})
    record = store.get(job_id)
    assert record.status == "succeeded" and record.output_file_id == "out" and record.frames_done == 10


def test_heartbeat_reports_cancel(make_store) -> None:
    store = make_store()
    store.submit({}, dialect="internal", owner=None, meta={})
    lease = store.claim()
    store.request_cancel(lease.job_id)
    assert store.heartbeat(lease) == "cancel"
    assert not store.complete(lease, output_file_id="x", engine=None, report=None)
    assert store.get(lease.job_id).status == "cancelled"


def test_interrupted_jobs_are_requeued_once_then_failed(make_store) -> None:
    store = make_store()
    first = store.submit({}, dialect="internal", owner=None, meta={})
    second = store.submit({}, dialect="internal", owner=None, meta={})
    store.claim()  # `first` starts, then the process "dies"
    recovery = store.recover()
    assert recovery.requeued == [first] and recovery.failed == []
    assert store.get(first).position == 1 and store.get(second).position == 2, "a re-queued job keeps its place"
    lease = store.claim()
    assert lease.job_id == first and lease.attempt == 2
    recovery = store.recover()  # dies again
    assert recovery.failed == [first]
    record = store.get(first)
    assert record.status == "failed" and record.error["code"] == "internal_error"
    assert store.claim().job_id == second


def test_claims_by_id_releases_and_positions(make_store) -> None:
    store, other = make_store(), make_store()  # two clients of the same jobs
    ids = [store.submit({"video": f"v{n}"}, dialect="internal", owner="k", meta={"n": n}) for n in range(3)]
    assert [other.get(job_id).position for job_id in ids] == [1, 2, 3] and other.queue_size() == 3
    lease = other.claim(ids[1])
    assert lease is not None and lease.job_id == ids[1] and lease.attempt == 1
    assert other.claim(ids[1]) is None, "a job is claimed once"
    assert [store.get(job_id).position for job_id in ids] == [1, 0, 2]
    assert store.release(lease) and not store.release(lease)
    record = store.get(ids[1])
    assert (record.status, record.position, record.attempt, record.started_at) == ("queued", 2, 0, None)
    assert record.owner == "k" and record.meta == {"n": 1} and record.options == {"video": "v1"}
    store.request_cancel(ids[0])
    assert store.claim(ids[0]) is None and store.get(ids[2]).position == 2
    assert sorted(options["video"] for options in other.live_options()) == ["v0", "v1", "v2"]


def test_stale_leases_and_retention_count_from_the_store_clock(make_store) -> None:
    clock = Clock()
    store = make_store(clock)
    running, finished, fresh = (store.submit({"video": name}, dialect="internal", owner=None, meta={})
                                for name in ("running", "finished", "fresh"))
    lease = store.claim(running)
    store.complete(store.claim(finished), output_file_id="out", engine="classic", report=None)
    clock.now += 30
    assert store.recover(stale_after_s=60) == Recovery([], []), "a recent heartbeat is alive"
    assert store.heartbeat(lease, 1, 2) == "ok"
    clock.now += 61
    assert store.recover(stale_after_s=60).requeued == [running]
    assert store.heartbeat(lease) == "lost"
    assert store.sweep_expired(retention_s=100) == [], "finished 91 s ago, kept for 100"
    assert store.live_outputs() == {"out"}, "a held job's output is not for the blob sweep"
    clock.now += 10
    swept = store.sweep_expired(retention_s=100)
    assert [record.id for record in swept] == [finished] and swept[0].output_file_id == "out"
    assert store.get(finished) is None and store.get(fresh).status == "queued"
    assert sorted(options["video"] for options in store.live_options()) == ["fresh", "running"]
    assert store.live_outputs() == set()


def test_store_is_safe_across_threads(make_store) -> None:
    store = make_store()
    claimed: list[str] = []
    lock = threading.Lock()

    def submit_and_claim() -> None:
        for _ in range(20):
            store.submit({}, dialect="internal", owner=None, meta={})
            lease = store.claim()
            if lease is not None:
                with lock:
                    claimed.append(lease.job_id)

    threads = [threading.Thread(target=submit_and_claim) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    while (lease := store.claim()) is not None:
        claimed.append(lease.job_id)
    assert len(claimed) == 160 and len(set(claimed)) == 160, "every job claimed exactly once"
