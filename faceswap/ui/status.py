"""What the page says about the server and about a running job, in short sentences a person reads at a glance.

- `Capabilities`: which engine a person gets, which options can work (their models are here), and whether the
  neural models can be downloaded from this server; `engine_line` and `option_updates` turn it into the page.
- `job_line` / `job_state`: a job's state as one line (frames, fps, time left) and as the report's JSON.
- `report_queue_rank`: tells Gradio clients (the page and `gradio_client`'s `status().rank`) where a job waits.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from faceswap.jobs.service import Job
    from faceswap.runtime import Runtime

log = logging.getLogger(__name__)

MAX_NOTICE_CHARS = 200
"""The longest note the page shows a person; longer texts are cut at a sentence (the report keeps them whole)."""

@dataclass(frozen=True)
class Capabilities:
    neural: bool
    """The neural engine's models are all here."""
    restorers: dict[str, bool]
    """Per restorer ('gfpgan', 'codeformer'): its model is here."""
    can_download: bool
    """This server may download models (settings allow it)."""
    present: frozenset[str] = frozenset()
    """Registry names of the neural engine's and the quality tools' files that are here (analysis models, swappers,
    converters, occluders, parsers): which swappers and masks the Advanced panel offers."""

    @classmethod
    def of(cls, runtime: Runtime) -> Capabilities:
        from faceswap.engines.neural import NEURAL_MODELS
        from faceswap.models.registry import REGISTRY
        from faceswap.restore import RESTORER_MODELS

        models = runtime.models
        roles = ("detector", "recognizer", "genderage", "swapper", "converter", "occluder", "parser")
        present = frozenset(name for name, spec in REGISTRY.items()
                            if spec.role in roles and name in models.specs and models.present([name]))
        return cls(neural=models.present(NEURAL_MODELS),
                   restorers={kind: models.present(names) for kind, names in RESTORER_MODELS.items()},
                   can_download=bool(runtime.settings.allow_model_download), present=present)


def engine_line(caps: Capabilities) -> str:
    """One calm sentence: which engine you get, how good it is, and how to get the better one."""
    if caps.neural:
        return ("**Engine: neural** (InsightFace models, installed): natural-looking swaps, the best this app "
                "offers.")
    better = ("press **Get the neural models** to download them (non-commercial licences, shown first)."
              if caps.can_download else "ask whoever runs this server to install the neural models.")
    return ("**Engine: classic** (offline, no downloads): a quick, rough swap that looks pasted on. For natural "
            f"results, {better}")


def option_reasons(caps: Capabilities) -> dict[str, str | None]:
    """Why an option cannot work on this server (None: it can)."""
    missing = "needs the neural models, which are not installed"
    return {"gender": None if caps.neural else f"Gender filters {missing}.",
            "neural": None if caps.neural else f"The neural engine {missing}.",
            **{kind: None if ok else f"{kind} restoration needs its model, which is not installed."
               for kind, ok in caps.restorers.items()}}


def short_notice(text: str, limit: int = MAX_NOTICE_CHARS) -> str:
    """`text` cut to at most `limit` characters, at the end of a sentence when one ends early enough."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[:limit - 1]
    end = max(cut.rfind(". "), cut.rfind("; "))
    return (cut[:end + 1] if end > limit // 3 else cut.rstrip() + "…").strip()


def notices_markdown(notices: Sequence[str] | None) -> str:
    """Each notice as one short note (the full texts stay in the report)."""
    return "\n\n".join(f"**Note:** {short_notice(notice)}" for notice in notices or [])


def job_line(job: Job, now: datetime | None = None) -> str:
    """The job's state as one line: "Swapping: 120 of 240 frames · 11.8 fps · about 10 s left"."""
    if job.status == "queued":
        return f"Waiting in the queue (position {job.position})." if job.position else "Waiting in the queue."
    if job.status == "cancelled":
        return "Cancelled. Nothing was saved."
    if job.status == "failed":
        return "Failed (see the message)."
    if job.status == "succeeded":
        return "Done."
    fps, left = speed(job, now)
    if not job.frames_total:
        return "Starting…"
    parts = [f"Swapping: {job.frames_done} of {job.frames_total} frames"]
    if fps:
        parts.append(f"{fps:.1f} fps")
    if left is not None:
        parts.append(f"about {_duration(left)} left")
    return " · ".join(parts)


def speed(job: Job, now: datetime | None = None) -> tuple[float | None, float | None]:
    """(frames per second since the job started, seconds left at that speed); None when not known yet."""
    if not job.started_at or not job.frames_done:
        return None, None
    elapsed = ((now or datetime.now(timezone.utc)) - _aware(job.started_at)).total_seconds()
    if elapsed <= 0:
        return None, None
    fps = job.frames_done / elapsed
    left = max(job.frames_total - job.frames_done, 0) / fps if job.frames_total else None
    return fps, left


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    return f"{seconds} s" if seconds < 90 else f"{round(seconds / 60)} min"


def job_state(job: Job) -> dict[str, Any]:
    """The report output while a job runs (and when it ends without a result)."""
    fps, left = speed(job)
    return {"job_id": job.id, "status": job.status, "position": job.position, "progress": job.progress,
            "frames_done": job.frames_done, "frames_total": job.frames_total,
            "fps": round(fps, 2) if fps else None, "seconds_left": round(left, 1) if left is not None else None,
            "message": job_line(job)}


def report_queue_rank(position: int, queue_size: int) -> None:
    """Tell this event's Gradio client that its job waits at `position` (1 = next): `status().rank` is
    `position - 1` (Gradio counts from 0) and the page shows "queue: position/size".

    Gradio sends such estimations only for events in its own queue; a swap's event has left that queue and waits
    in the job core's, so the handler sends the estimation itself. Does nothing outside a Gradio event."""
    try:
        from anyio import from_thread
        from gradio.context import LocalContext
        from gradio.server_messages import EstimationMessage

        blocks, event_id = LocalContext.blocks.get(None), LocalContext.event_id.get(None)
        queue = getattr(blocks, "_queue", None)
        event = queue.event_ids_to_events.get(event_id) if queue is not None and event_id else None
        if event is None:
            return
        message = EstimationMessage(rank=max(position - 1, 0), queue_size=max(queue_size, position))
        from_thread.run_sync(queue.send_message, event, message)
    except Exception:  # a client without the rank still gets the job's state in the report
        log.debug("ui: could not report the queue rank", exc_info=True)
