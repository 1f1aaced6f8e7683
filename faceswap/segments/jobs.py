"""The job core's side of long videos: a job whose video is long fans out into segment jobs, dispatched through
the Executor protocol like any job (the embedded threads claim them from the store; Celery sends them to workers).

- The job's own worker plans the split (`process.plan_split`) under the job's lease, then `SegmentStore.split`
  queues one job per segment with the plan in its meta, and the job stays processing, held by no worker.
- A segment job swaps its part into a blob and records it with `complete_segment`, accepted once under its lease;
  the commit that completes the set queues the stitch in the same transaction, and its worker dispatches it.
- The stitch joins the parts with the original audio and completes the job under the job's lease (which it was
  given in its meta), then deletes the parts and the job's input copies.
- A segment that fails fails the job (its other segments are cancelled); a cancelled job cancels its segments,
  which stop at their next heartbeat; `discard` deletes the parts recorded so far.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from faceswap.errors import FaceSwapError, as_faceswap_error
from faceswap.jobs.interfaces import BlobStore, JobRecord, JobStore, Lease, SegmentStore, Task, owned_inputs
from faceswap.options import SwapOptions

if TYPE_CHECKING:
    from faceswap.jobs.executor import TaskContext, _Heartbeat

log = logging.getLogger(__name__)


def run_part(context: TaskContext, lease: Lease, record: JobRecord, options: SwapOptions, heartbeat: _Heartbeat,
             workdir: Path) -> bool:
    """Run `record` if it is a segment, a stitch, or a long video to split (then True); False: a plain job, for
    the caller to run in one pass. Raises FaceSwapError like the pipeline (task_cancelled when told to stop)."""
    store = context.store
    if not isinstance(store, SegmentStore):
        return False
    if record.parent_id is not None:
        if record.meta.get("stitch"):
            _stitch(context, store, lease, record, options, heartbeat, workdir)
        else:
            _segment(context, store, lease, record, options, heartbeat, workdir)
        return True
    return _split(context, store, lease, options, heartbeat, workdir)


def discard(store: JobStore, blobs: BlobStore, job_id: str) -> None:
    """Delete what a finished split job leaves: the parts its segments recorded, and its input copies."""
    if not isinstance(store, SegmentStore):
        return
    record = store.get(job_id)
    if record is None or not record.segments or not record.finished:
        return
    for child in store.children(job_id):
        if child.output_file_id:
            blobs.delete(child.output_file_id)
    for blob_id in owned_inputs(record.meta):
        blobs.delete(blob_id)


def _dispatch(context: TaskContext, job_ids: list[str]) -> None:
    if context.dispatch is None:
        log.warning("no executor to dispatch %d task(s) to; idle workers will find them in the store", len(job_ids))
        return
    for job_id in job_ids:
        context.dispatch(Task(job_id))


def _check_still_ours(heartbeat: _Heartbeat) -> None:
    heartbeat.beat()
    if heartbeat.stopping:
        raise FaceSwapError("task_cancelled", "The swap was cancelled.")


def _give_up(context: TaskContext, store: SegmentStore, lease: Lease, parent: Lease, exc: Exception,
             heartbeat: _Heartbeat) -> None:
    """A segment or the stitch failed (not stopped): the job fails with its error, its other segments are
    cancelled, and its files go."""
    error = exc if isinstance(exc, FaceSwapError) else as_faceswap_error(exc)
    if error.code == "task_cancelled" or heartbeat.stopping:
        return
    store.fail(lease, error.to_dict())
    if store.fail(parent, error.to_dict()):
        log.info("job %s failed in %s: %s", parent.job_id, lease.job_id, error.code)
    discard(store, context.blobs, parent.job_id)


def _split(context: TaskContext, store: SegmentStore, lease: Lease, options: SwapOptions, heartbeat: _Heartbeat,
           workdir: Path) -> bool:
    from faceswap.segments.process import plan_split, splittable

    if not splittable(options, context.settings):
        return False
    plan = plan_split(options, context.runtime, workdir, should_cancel=heartbeat.should_cancel)
    if plan is None:
        return False
    _check_still_ours(heartbeat)
    plan_data = plan.to_dict()
    children = [{"segment": index, "plan": plan_data, "parent_lease": lease.to_dict()}
                for index in range(len(plan.spans))]
    ids = store.split(lease, children, frames_total=plan.frames_total)
    if ids is None:
        raise FaceSwapError("task_cancelled", "The swap was cancelled.")
    log.info("job %s split into %d segments", lease.job_id, len(ids))
    _dispatch(context, ids)
    return True


def _segment(context: TaskContext, store: SegmentStore, lease: Lease, record: JobRecord, options: SwapOptions,
             heartbeat: _Heartbeat, workdir: Path) -> None:
    from faceswap.segments.process import SplitPlan, process_segment

    parent = Lease(**record.meta["parent_lease"])
    index = int(record.meta["segment"])
    try:
        result = process_segment(options, context.runtime, SplitPlan.from_dict(record.meta["plan"]), index,
                                 workdir / f"segment-{index}.mp4", workdir, progress=heartbeat.progress,
                                 should_cancel=heartbeat.should_cancel)
        _check_still_ours(heartbeat)
    except Exception as exc:
        _give_up(context, store, lease, parent, exc, heartbeat)
        raise
    info = context.blobs.put(workdir / f"segment-{index}.mp4", filename=f"segment-{index}.mp4", move=True,
                             limit=False)
    commit = store.complete_segment(lease, output_file_id=info.id, report=result)
    if not commit.recorded:
        log.info("segment %s finished but its lease was gone; result dropped", lease.job_id)
        context.blobs.delete(info.id)
        return
    if commit.stitch_id is not None:
        _dispatch(context, [commit.stitch_id])


def _stitch(context: TaskContext, store: SegmentStore, lease: Lease, record: JobRecord, options: SwapOptions,
            heartbeat: _Heartbeat, workdir: Path) -> None:
    from faceswap.media.probe import probe_video
    from faceswap.segments.stitch import merged_report, stitch

    parent = Lease(**record.meta["parent_lease"])
    parts = [child for child in store.children(parent.job_id) if child.meta.get("segment") is not None]
    parts.sort(key=lambda child: int(child.meta["segment"]))
    records: list[dict[str, Any]] = [child.report or {} for child in parts]
    try:
        info = probe_video(Path(options.video), context.settings)
        output = workdir / "output.mp4"
        stitch([context.blobs.path(child.output_file_id or "") for child in parts], records, info, output)
        parent_record = store.get(parent.job_id)
        started = parent_record.started_at if parent_record and parent_record.started_at else time.time()
        report = merged_report(records, options, info, time.time() - started)
        if report.frames_swapped == 0:
            raise FaceSwapError("target_face_not_found", "The chosen face was not found in any frame of the video.",
                                field="target_faces")
        _check_still_ours(heartbeat)
    except Exception as exc:
        _give_up(context, store, lease, parent, exc, heartbeat)
        raise
    blob = context.blobs.put(output, filename=f"faceswap-{parent.job_id[:8]}.mp4", move=True, limit=False)
    if not store.complete(parent, output_file_id=blob.id, engine=report.engine, report=report.to_dict()):
        log.info("job %s was stitched but is no longer running (cancelled); result dropped", parent.job_id)
        context.blobs.delete(blob.id)
        raise FaceSwapError("task_cancelled", "The swap was cancelled.")
    store.complete(lease, output_file_id="", engine=report.engine, report=None)
    discard(store, context.blobs, parent.job_id)
    log.info("job %s stitched from %d segments: %d/%d frames swapped", parent.job_id, len(parts),
             report.frames_swapped, report.frames)
