"""What the page's events do: turn Gradio values into core calls, and core answers into Gradio values.

No face-swap logic lives here. `detect_faces` and `preview` call `faceswap.inspect` directly; `swap` submits
`SwapOptions` to the job core (the one queue every door shares) and follows the job. Every failure a person can
cause reaches the page as `gr.Error(<the catalog message>)`, never as a stack trace.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gradio as gr
import numpy as np

from faceswap import inspect
from faceswap.errors import FaceSwapError, as_faceswap_error
from faceswap.options import QUALITY_FIELDS, SwapOptions
from faceswap.report import coverage_warning
from faceswap.ui import frame_range, picks
from faceswap.ui.status import (
    job_line,
    job_state,
    notices_markdown,
    report_queue_rank,
    speed,
)
from faceswap.ui.uploads import uploaded_file
from faceswap.ui.zerogpu import on_gpu

if TYPE_CHECKING:
    from faceswap.config import Settings
    from faceswap.jobs.service import Job, JobService
    from faceswap.runtime import Runtime

log = logging.getLogger(__name__)

POLL_INTERVAL_S = 0.4
"""How long the swap handler waits for its job to change before looking again. Gradio closes a generator only
while it is paused at a `yield`, so the handler yields on every look: this interval also bounds how long a cancel
(the Cancel button, a client's `cancel()`, a closed page) takes to reach the job core."""

GalleryItems = list[tuple[np.ndarray, str]]


@contextmanager
def shown_to_user(action: str) -> Iterator[None]:
    """Turn catalog errors into `gr.Error` with their message; anything else is logged and shown as the catalog's
    `internal_error` message (the trace stays in the log)."""
    try:
        yield
    except gr.Error:
        raise
    except FaceSwapError as exc:
        raise gr.Error(exc.message, title=_title(exc.code), print_exception=False) from None
    except Exception as exc:
        log.exception("%s failed", action)
        error = as_faceswap_error(exc)
        raise gr.Error(error.message, title=_title(error.code), print_exception=False) from None


def _title(code: str) -> str:
    return code.replace("_", " ").capitalize()


def build_options(video: str | None, face: str | None, target_faces: str | None, source_faces: str | None,
                  engine: str, order: str, selection: str, target_gender: str, source_gender: str,
                  frame_cap: float | None, start: float | None, end: float | None, restore: str,
                  codeformer_weight: float, restore_visibility: float, output_format: str,
                  reference_frame: float | None = None, quality: dict[str, Any] | None = None) -> SwapOptions:
    """SwapOptions from the page's values: empty face indices mean face 0, and a start or end of 0 (or empty)
    means the video's own start or end.

    `reference_frame` is the frame the target indices were picked on; it is kept only when indices were given
    (an empty pick means "face 0 wherever it first appears", as before any face search). The core uses it in
    'track' mode and ignores it for 'per_frame' and 'all'.

    `quality` holds the Advanced panel's options by their `SwapOptions` names; one left out, None or "" keeps its
    default."""
    video, face = uploaded_file(video, "video"), uploaded_file(face, "face")
    if not video:
        raise FaceSwapError("invalid_request", "Upload a video first.", field="video")
    if not face:
        raise FaceSwapError("invalid_request", "Upload a photo of the face to put in.", field="face")
    picked = (target_faces or "").strip()
    return SwapOptions.parse(
        video=str(video), face=str(face), target_faces=picked or "0",
        reference_frame=reference_frame if picked and reference_frame is not None else None,
        source_faces=(source_faces or "").strip() or "0",
        engine=engine, order=order, selection=selection, target_gender=target_gender, source_gender=source_gender,
        frame_cap=int(frame_cap or 0), start=start or None, end=end or None, restore=restore,
        codeformer_weight=codeformer_weight, restore_visibility=restore_visibility, output_format=output_format,
        **{name: value for name, value in (quality or {}).items() if value is not None and value != ""})


def quality_of(*values: Any) -> dict[str, Any]:
    """The Advanced panel's values (in `QUALITY_FIELDS` order) by their `SwapOptions` names."""
    return dict(zip(QUALITY_FIELDS, values, strict=True))


class UiHandlers:
    """The event handlers, bound to the app's job service and runtime (no module-level state)."""

    def __init__(self, service: JobService, runtime: Runtime, settings: Settings) -> None:
        self.service = service
        self.runtime = runtime
        self.settings = settings
        self.detect_faces = on_gpu(self._detect_faces)
        self.preview = on_gpu(self._preview)

    # -- finding and picking faces -----------------------------------------------------------------------------

    def _detect_faces(self, video: str | None, frame: float | None, order: str,
                      engine: str) -> tuple[GalleryItems, dict[str, Any], list[picks.Thumb]]:
        """Find the faces on one frame of a video (or in a photo), numbered as `swap`'s target_faces counts them.

        Parameters:
            video: the video (mp4, mov, webm, mkv, avi or gif) as swap takes it, or a photo; uploaded with handle_file()
            frame: which frame of the video to look at, 0 = the first (ignored for a photo)
            order: how faces are numbered: left_to_right or largest_first (use the same value in swap)
            engine: auto (neural when its models are installed, else classic), neural or classic
        Returns:
            thumbnails of the faces, in index order
            {engine, frame, frame_count, faces: [{index, box, score, gender, age}], notices}
        """
        with shown_to_user("detect_faces"):
            video = uploaded_file(video, "video")
        if not video:
            raise gr.Error("Upload a video (or a photo) first.", title="Nothing to look at", print_exception=False)
        with shown_to_user("detect_faces"):
            listing = inspect.find_faces(Path(video), self.runtime, frame=int(frame or 0), order=order,
                                         engine=engine)
        thumbs = picks.thumbs_from_listing(listing.faces)
        return picks.gallery_items(thumbs, []), listing.to_dict(), thumbs

    def detect_source_faces(self, face: str | None, order: str,
                            engine: str) -> tuple[GalleryItems, dict[str, Any], list[picks.Thumb]]:
        """The faces of the face photo; nothing (and no error) before a photo is uploaded."""
        if not face:
            return [], {}, []
        return self.detect_faces(face, 0, order, engine)

    @staticmethod
    def show_video_listing(listing: dict[str, Any], picked: str,
                           thumbs: list[picks.Thumb]) -> tuple[GalleryItems, dict[str, Any], str, int | None, str]:
        """After a detection: picks marked, the frame slider spanning the video, the engine's notices, the listed
        frame as the one picks count on, and the picks named (an example may have filled them in)."""
        count = int(listing.get("frame_count") or 1)
        slider = frame_range.spanning(count, int(listing.get("frame") or 0))
        faces = len(listing.get("faces") or [])
        people = "1 person" if faces == 1 else f"{faces} people"
        summary = (f"Found {people} on frame {listing.get('frame', 0)} of {count} "
                   f"({listing.get('engine', '?')} engine)." if listing else "")
        notices = notices_markdown(listing.get("notices"))
        reference = int(listing["frame"]) if listing.get("frame") is not None else None
        chosen = picks.parse_picks(picked)
        return picks.gallery_items(thumbs, chosen), slider, "\n\n".join(
            text for text in (summary, notices) if text), reference, picks.picked_summary(chosen)

    def forget_video_faces(self, video: str | None) -> tuple[GalleryItems, dict[str, Any], list[picks.Thumb],
                                                             dict[str, Any], None]:
        """A new video: its old faces and reference frame no longer apply; the Frame slider spans the new one's
        frames (or waits, with a hint, when there is none)."""
        return [], {}, [], frame_range.for_video(video, self.settings), None

    @staticmethod
    def forget_photo_faces() -> tuple[GalleryItems, dict[str, Any], list[picks.Thumb]]:
        return [], {}, []

    @staticmethod
    def show_picks(picked: str, thumbs: list[picks.Thumb]) -> tuple[GalleryItems, str]:
        chosen = picks.parse_picks(picked)
        return picks.gallery_items(thumbs, chosen), picks.picked_summary(chosen)

    @staticmethod
    def show_source_picks(picked: str, thumbs: list[picks.Thumb]) -> tuple[GalleryItems, str]:
        chosen = picks.parse_picks(picked)
        return picks.gallery_items(thumbs, chosen), picks.picked_summary(chosen, "Using")

    @staticmethod
    def toggle_pick(picked: str, thumbs: list[picks.Thumb], evt: gr.SelectData) -> tuple[str, GalleryItems, str]:
        """A click on a thumbnail picks that person, or unpicks them when picked."""
        chosen = picks.toggle_pick(picks.parse_picks(picked), int(evt.index))
        return picks.format_picks(chosen), picks.gallery_items(thumbs, chosen), picks.picked_summary(chosen)

    @staticmethod
    def toggle_source_pick(picked: str, thumbs: list[picks.Thumb],
                           evt: gr.SelectData) -> tuple[str, GalleryItems, str]:
        chosen = picks.toggle_pick(picks.parse_picks(picked), int(evt.index))
        return (picks.format_picks(chosen), picks.gallery_items(thumbs, chosen),
                picks.picked_summary(chosen, "Using"))

    # -- preview and swap --------------------------------------------------------------------------------------

    def _preview(self, video: str | None, face: str | None, target_faces: str, source_faces: str, engine: str,
                 order: str, selection: str, target_gender: str, source_gender: str, frame_cap: float,
                 start: float, end: float, restore: str, codeformer_weight: float, restore_visibility: float,
                 output_format: str, frame: float | None, reference_frame: float | None = None,
                 swapper: str | None = None, pixel_boost: str | None = None, swapper_weight: float | None = None,
                 mask: list[str] | None = None, mask_blur: float | None = None, mask_padding: str | None = None,
                 mask_regions: list[str] | None = None, mask_areas: list[str] | None = None,
                 mask_occluder: str | None = None,
                 mask_parser: str | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """One frame swapped as the whole run would swap it.

        The parameters take the same values as `swap`'s (the quality options too); face indices count on
        `reference_frame` when given (in 'track' mode), else on the rendered frame.

        Parameters:
            frame: which frame to render swapped, 0 = the first
            reference_frame: the frame target_faces were picked on, as detect_faces listed it (empty = frame)
        Returns:
            the swapped frame
            {engine, frame, faces_swapped, notices}
        """
        with shown_to_user("preview"):
            options = build_options(video, face, target_faces, source_faces, engine, order, selection,
                                    target_gender, source_gender, frame_cap, start, end, restore,
                                    codeformer_weight, restore_visibility, output_format, reference_frame,
                                    quality_of(swapper, pixel_boost, swapper_weight, mask, mask_blur, mask_padding,
                                               mask_regions, mask_areas, mask_occluder, mask_parser))
            result = inspect.preview_frame(options, self.runtime, int(frame or 0))
        info = {"engine": result.engine, "frame": int(frame or 0), "faces_swapped": result.faces_swapped,
                "notices": list(result.notices)}
        return np.ascontiguousarray(result.image[:, :, ::-1]), info

    @staticmethod
    def show_preview_info(info: dict[str, Any]) -> str:
        lines = []
        if info and not info.get("faces_swapped"):
            lines.append("**No face was swapped on this frame:** the chosen indices match no face here (press "
                         "Find faces on this frame to see the indices).")
        return "\n\n".join([*lines, notices_markdown((info or {}).get("notices"))]).strip()

    def swap(self, video: str | None, face: str | None, target_faces: str, source_faces: str, engine: str,
             order: str, selection: str, target_gender: str, source_gender: str, frame_cap: float, start: float,
             end: float, restore: str, codeformer_weight: float, restore_visibility: float, output_format: str,
             reference_frame: float | None = None, swapper: str | None = None, pixel_boost: str | None = None,
             swapper_weight: float | None = None, mask: list[str] | None = None, mask_blur: float | None = None,
             mask_padding: str | None = None, mask_regions: list[str] | None = None,
             mask_areas: list[str] | None = None, mask_occluder: str | None = None, mask_parser: str | None = None,
             progress: gr.Progress = gr.Progress()) -> Iterator[tuple[Any, dict[str, Any]]]:  # noqa: B008
        """Swap faces through a whole video as a job on the server's queue; the result keeps its sound and timing.

        While the job waits, the client's status() carries its queue rank; while it runs, progress counts frames,
        and the report output carries {job_id, status, position, frames_done, frames_total, fps, seconds_left,
        message}. Cancelling the call cancels the job; a job cancelled elsewhere ends with no file and a report
        whose status is 'cancelled'.

        Parameters:
            video: the video to change (mp4, mov, m4v, webm, mkv, avi or gif), uploaded with handle_file()
            face: a photo of the face to put in (png, jpg or webp), uploaded with handle_file()
            target_faces: the faces to replace, as detect_faces' indices: "0", "0,2" or "all" (empty = 0)
            source_faces: which faces of the photo to use: "0" or "0,1", paired in order with target_faces (empty = 0)
            engine: auto (neural when its models are installed, else classic), neural or classic
            order: how indices count: left_to_right or largest_first
            selection: track (follow the chosen person) or per_frame (re-apply the index on every frame)
            target_gender: any, male or female: only video faces of this gender count (neural engine only)
            source_gender: any, male or female: only photo faces of this gender count (neural engine only)
            frame_cap: process at most this many frames (0 = all)
            start: seconds into the video to start at (0 = the beginning)
            end: seconds into the video to stop at (0 = the end)
            restore: face restoration after the swap: none, gfpgan or codeformer (needs its model)
            codeformer_weight: CodeFormer only: 0 (quality) to 1 (fidelity to the swapped face)
            restore_visibility: 0.1 to 1, how much of the restored face shows over the swapped one
            output_format: same (a GIF stays a GIF, anything else becomes MP4), mp4 or gif
            reference_frame: the frame target_faces were picked on, as detect_faces listed it (empty = first)
        Returns:
            the output file: an MP4, or a GIF (never converted)
            the report: {job_id, status, engine, frames, frames_swapped, coverage, frames_missed, notices, ...}
        """
        with shown_to_user("swap"):
            options = build_options(video, face, target_faces, source_faces, engine, order, selection,
                                    target_gender, source_gender, frame_cap, start, end, restore,
                                    codeformer_weight, restore_visibility, output_format, reference_frame,
                                    quality_of(swapper, pixel_boost, swapper_weight, mask, mask_blur, mask_padding,
                                               mask_regions, mask_areas, mask_occluder, mask_parser))
            job = self.service.submit(options, meta={"door": "gradio"})
        log.info("ui: submitted job %s", job.id)
        settled = False
        try:
            while not job.finished:
                yield gr.skip(), job_state(job)
                self._show_progress(progress, job)  # after the yield, so the client's latest status carries it
                with shown_to_user("swap"):
                    job = self.service.wait(job.id, timeout=POLL_INTERVAL_S)
            settled = True
        finally:
            if not settled:
                self._cancel_quietly(job.id)
        yield from self._finish(job)

    def _show_progress(self, progress: gr.Progress, job: Job) -> None:
        if job.status == "queued":  # Gradio's own queue display and status().rank, not a progress bar
            report_queue_rank(job.position or 1, self.service.queue_size())
        elif job.frames_total:
            fps, left = speed(job)
            details = "".join([f" · {fps:.1f} fps" if fps else "",
                               f" · {job_line(job).rsplit(' · ', 1)[-1]}" if left is not None else ""])
            progress((job.frames_done or 0, job.frames_total), desc=f"Swapping{details}", unit="frames")
        else:
            progress(job.progress or 0.0, desc="Starting")

    def _finish(self, job: Job) -> Iterator[tuple[Any, dict[str, Any]]]:
        if job.status == "cancelled":
            yield None, job_state(job)
            return
        if job.status == "failed":
            error = job.error or {}
            message = error.get("message") or FaceSwapError("internal_error").message
            raise gr.Error(message, title=_title(error.get("code") or "internal_error"), print_exception=False)
        report = {"job_id": job.id, "status": job.status, **(job.report or {})}
        with shown_to_user("swap result"):
            staged = self._stage_output(job)
        try:
            yield str(staged), report
        finally:
            shutil.rmtree(staged.parent, ignore_errors=True)

    def _stage_output(self, job: Job) -> Path:
        """A copy of the job's output in the system temp dir, where Gradio may take it into its cache (the data
        dir is not, and must not be, one of Gradio's allowed paths: it holds everyone's files); removed once
        Gradio has its copy."""
        if not job.output_file_id:
            raise FaceSwapError("video_output_missing")
        source = Path(self.service.file_path(job.output_file_id))
        staged = Path(tempfile.mkdtemp(prefix="faceswap-ui-")) / f"faceswap-{job.id[:12]}{source.suffix}"
        try:
            staged.hardlink_to(source)
        except OSError:
            shutil.copyfile(source, staged)
        return staged

    def _cancel_quietly(self, job_id: str) -> None:
        try:
            self.service.cancel(job_id)
            log.info("ui: cancelled job %s (the page cancelled or went away)", job_id)
        except Exception:
            log.exception("ui: could not cancel job %s", job_id)

    def cancel_swap(self, report: dict[str, Any] | None) -> str:
        """The Cancel button: cancel the page's job in the job core; the swap then ends as 'Cancelled'."""
        job_id = (report or {}).get("job_id")
        if not job_id or (report or {}).get("status") not in ("queued", "processing"):
            return "Nothing to cancel."
        with shown_to_user("cancel"):
            job = self.service.cancel(str(job_id))
        return job_line(job) if job.status != "cancelled" else "Cancelled. Nothing was saved."

    @staticmethod
    def lock_actions() -> Any:
        """While a swap runs, Swap is disabled: one page starts one job at a time."""
        return gr.update(interactive=False)

    @staticmethod
    def unlock_actions() -> Any:
        return gr.update(interactive=True)

    @staticmethod
    def show_failure() -> str:
        return "Failed: see the message."

    @staticmethod
    def show_result(output: str | None, report: dict[str, Any]) -> tuple[Any, Any, str, str]:
        """After a swap: the video played (a GIF shown as an image: browsers cannot play GIF in <video>), the
        status line, and notes: low coverage (naming the frames), then the run's notices, each short."""
        report = report or {}
        if report.get("status") == "cancelled" or not output:
            return (gr.update(value=None, visible=True), gr.update(value=None, visible=False), "",
                    "Cancelled. Nothing was saved." if report.get("status") == "cancelled" else "")
        is_gif = str(output).lower().endswith(".gif")
        done = (f"Done: swapped {report.get('frames_swapped', 0)} of {report.get('frames', 0)} frames with the "
                f"{report.get('engine', '?')} engine.")
        warning = coverage_warning(report)
        notes = "\n\n".join(text for text in (f"**Low coverage:** {warning}" if warning else "",
                                               notices_markdown(report.get("notices"))) if text)
        return (gr.update(value=None if is_gif else output, visible=not is_gif),
                gr.update(value=output if is_gif else None, visible=is_gif), notes, done)


