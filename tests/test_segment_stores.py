"""The SegmentStore contract (a long video's split): segment jobs queued under the job's lease, each segment's
result recorded once, the stitch queued exactly once by the last commit, progress summed, cancel and failure
cascading to the segments, and a split job left alone by crash recovery and retention while its segments run.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from redis_support import redis_url  # noqa: F401  (a fixture)
from store_support import Clock, store_factory

from faceswap.jobs.interfaces import Lease, SegmentStore


@pytest.fixture(params=["sqlite", "redis"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path):
    yield from store_factory(request, tmp_path)


def split_job(store, segments: int = 3, frames_total: int = 30) -> tuple[Lease, list[str]]:
    store.submit({"video": "blob://v"}, dialect="internal", owner="k", meta={"owned_inputs": []})
    lease = store.claim()
    ids = store.split(lease, [{"segment": n, "parent_lease": lease.to_dict()} for n in range(segments)],
                      frames_total=frames_total)
    assert ids is not None and len(ids) == segments
    return lease, ids


def test_split_queues_segments_under_the_lease_and_sums_their_progress(make_store) -> None:
    store = make_store()
    assert isinstance(store, SegmentStore)
    lease, ids = split_job(store)
    assert store.split(lease, [{"segment": 0}], frames_total=1) is None, "a job is split once"
    parent = store.get(lease.job_id)
    assert (parent.status, parent.segments, parent.frames_total, parent.progress) == ("processing", 3, 30, 0.0)
    children = store.children(lease.job_id)
    assert [child.id for child in children] == ids
    assert all(child.status == "queued" and child.parent_id == lease.job_id for child in children)
    assert children[1].options == {"video": "blob://v"} and children[1].owner == "k"
    assert children[1].meta["segment"] == 1 and children[1].meta["parent_lease"] == lease.to_dict()
    assert [store.get(child_id).position for child_id in ids] == [1, 2, 3]

    first, second = store.claim(), store.claim()
    assert (first.job_id, second.job_id) == (ids[0], ids[1]), "segments run in order, any worker"
    store.heartbeat(first, 4, 10)
    store.heartbeat(second, 2, 10)
    assert store.get(lease.job_id).frames_done == 6 and store.get(lease.job_id).progress == pytest.approx(0.2)
    assert store.complete_segment(first, output_file_id="part0", report={"frames": 10}).recorded
    assert store.get(lease.job_id).frames_done == 12

    stranger = store.submit({}, dialect="internal", owner=None, meta={})
    assert store.split(Lease(stranger, "nope", 1), [{"segment": 0}], frames_total=1) is None


def test_each_segment_is_recorded_once_and_the_last_commit_queues_the_stitch(make_store) -> None:
    store = make_store()
    lease, ids = split_job(store)
    leases = [store.claim() for _ in ids]
    stale = Lease(ids[0], "not-the-token", 1)
    assert not store.complete_segment(stale, output_file_id="x", report={}).recorded
    first = store.complete_segment(leases[0], output_file_id="part0", report={"n": 0})
    assert first.recorded and first.stitch_id is None
    again = store.complete_segment(leases[0], output_file_id="other", report={"n": 9})
    assert not again.recorded and store.get(ids[0]).output_file_id == "part0", "recorded once"
    assert store.complete_segment(leases[2], output_file_id="part2", report={"n": 2}).stitch_id is None
    last = store.complete_segment(leases[1], output_file_id="part1", report={"n": 1})
    assert last.recorded and last.stitch_id is not None
    stitch = store.get(last.stitch_id)
    assert stitch.status == "queued" and stitch.parent_id == lease.job_id and stitch.meta["stitch"] is True
    assert stitch.meta["parent_lease"] == lease.to_dict(), "the stitch may complete the job under its lease"
    assert [child.output_file_id for child in store.children(lease.job_id)[:3]] == ["part0", "part1", "part2"]
    stitch_lease = store.claim()
    assert stitch_lease.job_id == last.stitch_id
    assert store.complete(lease, output_file_id="whole", engine="classic", report={"frames": 30})
    record = store.get(lease.job_id)
    assert (record.status, record.output_file_id, record.progress) == ("succeeded", "whole", 1.0)


def test_concurrent_commits_queue_exactly_one_stitch(make_store) -> None:
    store, other = make_store(), make_store()
    lease, ids = split_job(store, segments=8)
    leases = [store.claim() for _ in ids]
    stitches: list[str] = []
    lock = threading.Lock()

    def commit(worker_store, segment: Lease) -> None:
        result = worker_store.complete_segment(segment, output_file_id=f"part-{segment.job_id}", report={})
        if result.stitch_id:
            with lock:
                stitches.append(result.stitch_id)

    threads = [threading.Thread(target=commit, args=(store if n % 2 else other, segment))
               for n, segment in enumerate(leases)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(stitches) == 1
    assert [child.id for child in store.children(lease.job_id)][-1] == stitches[0]


def test_cancel_and_failure_reach_every_unfinished_segment(make_store) -> None:
    store = make_store()
    lease, ids = split_job(store)
    running = store.claim()
    store.request_cancel(lease.job_id)
    assert store.get(lease.job_id).status == "cancelled"
    assert [store.get(child_id).status for child_id in ids] == ["cancelled"] * 3
    assert store.heartbeat(running) == "cancel"
    assert not store.complete_segment(running, output_file_id="late", report={}).recorded
    assert not store.complete(lease, output_file_id="late", engine=None, report=None)

    lease, ids = split_job(store)
    done, failing = store.claim(), store.claim()
    assert store.complete_segment(done, output_file_id="part0", report={}).recorded
    assert store.fail(failing, {"code": "unsupported_media"}) and store.fail(lease, {"code": "unsupported_media"})
    assert [store.get(child_id).status for child_id in ids] == ["succeeded", "failed", "cancelled"]
    assert store.get(lease.job_id).error["code"] == "unsupported_media"


def test_recovery_and_retention_leave_a_split_job_to_its_segments(make_store) -> None:
    clock = Clock()
    store = make_store(clock)
    lease, ids = split_job(store, segments=2)
    first = store.claim()
    recovery = store.recover()
    assert recovery.requeued == [ids[0]], "the interrupted segment runs again, the split job is not re-planned"
    assert store.get(lease.job_id).status == "processing"
    first = store.claim()
    assert first.attempt == 2
    assert store.complete_segment(first, output_file_id="part0", report={}).recorded
    clock.now += 10_000
    assert store.recover(stale_after_s=60).requeued == []
    assert store.sweep_expired(retention_s=100) == [], "a finished segment of a running job is kept"
    second = store.claim()
    stitch_id = store.complete_segment(second, output_file_id="part1", report={}).stitch_id
    store.complete(store.claim(stitch_id), output_file_id="", engine=None, report=None)
    assert store.complete(lease, output_file_id="whole", engine="classic", report=None)
    clock.now += 101
    swept = store.sweep_expired(retention_s=100)
    assert sorted(record.id for record in swept) == sorted([lease.job_id, *ids, stitch_id])


def test_a_segment_given_up_by_recovery_fails_its_job(make_store) -> None:
    store = make_store()
    lease, ids = split_job(store, segments=2)
    store.claim()
    store.recover()  # interrupted once: runs again
    store.claim()
    recovery = store.recover()  # interrupted twice: given up, and the job with it
    assert recovery.failed == [ids[0]]
    record = store.get(lease.job_id)
    assert record.status == "failed" and record.error["code"] == "internal_error"
    assert store.get(ids[1]).status == "cancelled"
