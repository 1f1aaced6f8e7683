"""`build_ui`: the Gradio Blocks app — the layout from `layout.py`, wired to `UiHandlers`.

Three public endpoints, for the page and for `gradio_client` alike:

- `detect_faces(media, frame, order, engine)` → (thumbnails, listing JSON)
- `preview(video, face, target_faces, ..., output_format, frame, reference_frame)` → (swapped frame, details JSON)
- `swap(video, face, target_faces, source_faces, engine, order, selection, target_gender, source_gender,
  frame_cap, start, end, restore, codeformer_weight, restore_visibility, output_format, reference_frame)` →
  (video, report JSON)

`reference_frame` is optional: the frame on which the target indices were picked. The page fills it with the frame
whose faces it lists, so a person who picks "face 0" on frame 40 gets that person swapped through the whole video
(selection 'track'), even when the faces are in another order on the first frame.

Concurrency. `swap` goes through the job core, whose worker pool is the real limit on swaps (one queue for the UI,
REST and CLI); the Gradio-side handler only watches its job, so many may wait at once. `detect_faces` and
`preview` read a single frame and call the core directly inside Gradio's queue, in their own small concurrency
group: they take a second or two, and must not wait behind long swaps in the job queue.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import gradio as gr

from faceswap.ui.handlers import UiHandlers
from faceswap.ui.layout import Page, build_page
from faceswap.ui.live import build_live_tab

if TYPE_CHECKING:
    from faceswap.config import Settings
    from faceswap.jobs.service import JobService
    from faceswap.runtime import Runtime

SINGLE_FRAME_CONCURRENCY = 2
"""Face detections and previews running at once (each is one frame of inference)."""

SWAP_WATCHERS = 64
"""Swap handlers following their jobs at once; each mostly sleeps between polls, the job core does the work."""

CACHE_SWEEP_S = 600
"""How often Gradio deletes its cached uploads and results older than the retention period."""

SINGLE_FRAME = {"concurrency_id": "single_frame", "concurrency_limit": SINGLE_FRAME_CONCURRENCY}
PAGE_ONLY = {"api_visibility": "private", "concurrency_limit": None, "show_progress": "hidden"}


def build_ui(service: JobService, runtime: Runtime, settings: Settings) -> gr.Blocks:
    """The web app; mount it with `gr.mount_gradio_app(app, build_ui(...), path="/")`."""
    handlers = UiHandlers(service, runtime, settings)
    retention = max(int(settings.retention_s), CACHE_SWEEP_S)
    with gr.Blocks(title="faceswap", delete_cache=(CACHE_SWEEP_S, retention)) as blocks:
        with gr.Tab("Studio", id="studio"):
            page = build_page(settings.max_frames)
        _wire_faces(page, handlers)
        _wire_swap(page, handlers)
        build_live_tab(blocks, runtime, settings.live_max)  # the Live tab (camera)
    blocks.queue(default_concurrency_limit=1)
    return blocks


def _wire_faces(page: Page, handlers: UiHandlers) -> None:
    video_found = [page.target_gallery, page.target_listing, page.target_thumbs]
    source_found = [page.source_gallery, page.source_listing, page.source_thumbs]
    (page.find_button.click(handlers.detect_faces, [page.video, page.frame, page.order, page.engine], video_found,
                            api_name="detect_faces", **SINGLE_FRAME)
     .success(handlers.show_video_listing, [page.target_listing, page.target_faces, page.target_thumbs],
              [page.target_gallery, page.frame, page.notices, page.reference_frame], **PAGE_ONLY)
     .success(handlers.detect_source_faces, [page.face, page.order, page.engine], source_found,
              api_visibility="private", **SINGLE_FRAME)
     .success(handlers.show_picks, [page.source_faces, page.source_thumbs], [page.source_gallery], **PAGE_ONLY))
    (page.frame.release(handlers.detect_faces, [page.video, page.frame, page.order, page.engine], video_found,
                        api_visibility="private", **SINGLE_FRAME)
     .success(handlers.show_video_listing, [page.target_listing, page.target_faces, page.target_thumbs],
              [page.target_gallery, page.frame, page.notices, page.reference_frame], **PAGE_ONLY))
    page.video.change(handlers.forget_video_faces, None, [*video_found, page.frame, page.reference_frame],
                      **PAGE_ONLY)
    page.face.change(handlers.forget_photo_faces, None, source_found, **PAGE_ONLY)
    page.target_gallery.select(handlers.toggle_pick, [page.target_faces, page.target_thumbs],
                               [page.target_faces, page.target_gallery], **PAGE_ONLY)
    page.source_gallery.select(handlers.toggle_pick, [page.source_faces, page.source_thumbs],
                               [page.source_faces, page.source_gallery], **PAGE_ONLY)
    page.target_faces.input(handlers.show_picks, [page.target_faces, page.target_thumbs], [page.target_gallery],
                            **PAGE_ONLY)
    page.source_faces.input(handlers.show_picks, [page.source_faces, page.source_thumbs], [page.source_gallery],
                            **PAGE_ONLY)


def _wire_swap(page: Page, handlers: UiHandlers) -> None:
    (page.preview_button.click(handlers.preview, page.preview_inputs(),
                               [page.preview_image, page.preview_info], api_name="preview", **SINGLE_FRAME)
     .success(handlers.show_preview_info, [page.preview_info], [page.notices], **PAGE_ONLY))
    swapping = page.swap_button.click(handlers.swap, page.swap_inputs(), [page.result_video, page.report],
                                      api_name="swap", concurrency_id="swap", concurrency_limit=SWAP_WATCHERS,
                                      show_progress_on=[page.result_video])
    swapping.success(handlers.show_result, [page.result_video, page.report],
                     [page.download, page.result_gif, page.result_video, page.notices], **PAGE_ONLY)
    page.cancel_button.click(None, None, None, cancels=[swapping], api_visibility="private")
