"""`build_ui`: the Gradio Blocks app — the layout from `layout.py`, wired to `UiHandlers`.

Three public endpoints, for the page and for `gradio_client` alike:

- `detect_faces(video, frame, order, engine)` → (thumbnails, listing JSON); `video` may also be a photo
- `preview(video, face, target_faces, ..., output_format, frame, reference_frame)` → (swapped frame, details JSON)
- `swap(video, face, target_faces, source_faces, engine, order, selection, target_gender, source_gender,
  frame_cap, start, end, restore, codeformer_weight, restore_visibility, output_format, reference_frame)` →
  (output file, report JSON): the file is returned as made, so a GIF comes back a GIF (never converted to MP4)

`reference_frame` is optional: the frame on which the target indices were picked. The page fills it with the frame
whose faces it lists, so a person who picks "face 0" on frame 40 gets that person swapped through the whole video
(selection 'track'), even when the faces are in another order on the first frame.

Concurrency. `swap` goes through the job core, whose worker pool is the real limit on swaps (one queue for the UI,
REST and CLI); the Gradio-side handler only watches its job, so many may wait at once. `detect_faces` and
`preview` read a single frame and call the core directly inside Gradio's queue, in their own small concurrency
group: they take a second or two, and must not wait behind long swaps in the job queue.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import gradio as gr
from gradio.utils import get_function_description

from faceswap.ui import frame_range
from faceswap.ui.advanced import AdvancedPanel, option_descriptions
from faceswap.ui.handlers import UiHandlers
from faceswap.ui.layout import Page, build_page
from faceswap.ui.live import build_live_tab
from faceswap.ui.models_offer import ModelsOffer
from faceswap.ui.status import Capabilities
from faceswap.ui.uploads import guard_component

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

PAGE_CSS = frame_range.CSS
"""The page's own CSS; pass it to `gr.mount_gradio_app(..., css=PAGE_CSS)` (Gradio 6 takes CSS only there)."""

SINGLE_FRAME = {"concurrency_id": "single_frame", "concurrency_limit": SINGLE_FRAME_CONCURRENCY}
PAGE_ONLY = {"api_visibility": "private", "concurrency_limit": None, "show_progress": "hidden"}


def build_ui(service: JobService, runtime: Runtime, settings: Settings) -> gr.Blocks:
    """The web app; mount it with `gr.mount_gradio_app(app, build_ui(...), path="/", css=PAGE_CSS)`."""
    handlers = UiHandlers(service, runtime, settings)
    offer = ModelsOffer(runtime)
    panel = AdvancedPanel(runtime)
    retention = max(int(settings.retention_s), CACHE_SWEEP_S)
    endpoints = {"detect_faces": [handlers.detect_faces], "preview": [handlers.swap, handlers.preview],
                 "swap": [handlers.swap]}
    with DescribedBlocks(endpoints, title="faceswap", delete_cache=(CACHE_SWEEP_S, retention),
                         option_docs=option_descriptions()) as blocks:
        with gr.Tab("Studio", id="studio"):
            page = build_page(settings.max_frames, Capabilities.of(runtime))
        guard_component(page.video, "video")
        guard_component(page.face, "face")
        _wire_models(blocks, page, offer, panel)
        _wire_advanced(blocks, page, panel)
        _wire_faces(page, handlers)
        _wire_swap(page, handlers)
        build_live_tab(blocks, runtime, settings.live_max)  # the Live tab (camera)
    blocks.queue(default_concurrency_limit=1)
    return blocks


class DescribedBlocks(gr.Blocks):
    """Blocks whose API info describes every parameter of the named endpoints with the handler's docstring
    ("Parameters:" section), where Gradio alone gives only the component's generic type text."""

    def __init__(self, endpoints: dict[str, list[Callable[..., Any]]], *, option_docs: dict[str, str] | None = None,
                 **kwargs: Any) -> None:
        """`option_docs`: texts for parameters named after `SwapOptions` fields that no docstring describes."""
        super().__init__(**kwargs)
        self._endpoint_docs = {f"/{name}": {**(option_docs or {}),
                                            **{key: text for fn in fns
                                               for key, text in get_function_description(fn)[1].items() if text}}
                               for name, fns in endpoints.items()}

    def get_api_info(self, all_endpoints: bool = False, page: str | None = None) -> Any:
        info = super().get_api_info(all_endpoints=all_endpoints, page=page)
        for name, docs in self._endpoint_docs.items():
            for parameter in (info or {}).get("named_endpoints", {}).get(name, {}).get("parameters", []):
                text = docs.get(parameter["parameter_name"])
                if text:
                    parameter["description"] = text
                    parameter["python_type"]["description"] = text
        return info


def _wire_models(blocks: gr.Blocks, page: Page, offer: ModelsOffer, panel: AdvancedPanel) -> None:
    state = [page.engine_line, page.get_models_button, page.engine, page.target_gender, page.source_gender,
             page.restore]
    blocks.load(offer.page_state, None, state, **PAGE_ONLY)
    page.get_models_button.click(offer.show_offer, None, [page.models_panel, page.models_text], **PAGE_ONLY)
    page.not_now_button.click(offer.hide_offer, None, [page.models_panel], **PAGE_ONLY)
    (page.download_models_button.click(offer.download, None, [page.models_panel, *state],
                                       api_visibility="private", concurrency_id="models", concurrency_limit=1,
                                       show_progress_on=[page.models_text])
     .success(panel.refresh, _panel_inputs(page), page.advanced.outputs(), **PAGE_ONLY))


def _panel_inputs(page: Page) -> list[gr.components.Component]:
    return [page.engine, page.advanced.swapper, page.advanced.pixel_boost]


def _wire_advanced(blocks: gr.Blocks, page: Page, panel: AdvancedPanel) -> None:
    """The Advanced panel follows the models installed (page load), the engine and the swapper chosen."""
    advanced = page.advanced
    blocks.load(panel.refresh, _panel_inputs(page), advanced.outputs(), **PAGE_ONLY)
    page.engine.input(panel.refresh, _panel_inputs(page), advanced.outputs(), **PAGE_ONLY)
    advanced.swapper.input(panel.refresh, _panel_inputs(page), advanced.outputs(), **PAGE_ONLY)
    advanced.pixel_boost.input(panel.show_boost_cost, [advanced.swapper, advanced.pixel_boost],
                               [advanced.pixel_boost], **PAGE_ONLY)


def _wire_faces(page: Page, handlers: UiHandlers) -> None:
    video_found = [page.target_gallery, page.target_listing, page.target_thumbs]
    source_found = [page.source_gallery, page.source_listing, page.source_thumbs]
    listed = [page.target_gallery, page.frame, page.notices, page.reference_frame, page.target_summary]
    (page.find_button.click(handlers.detect_faces, [page.video, page.frame, page.order, page.engine], video_found,
                            api_name="detect_faces", **SINGLE_FRAME)
     .success(handlers.show_video_listing, [page.target_listing, page.target_faces, page.target_thumbs], listed,
              **PAGE_ONLY)
     .success(handlers.detect_source_faces, [page.face, page.order, page.engine], source_found,
              api_visibility="private", **SINGLE_FRAME)
     .success(handlers.show_source_picks, [page.source_faces, page.source_thumbs],
              [page.source_gallery, page.source_summary], **PAGE_ONLY))
    (page.frame.release(handlers.detect_faces, [page.video, page.frame, page.order, page.engine], video_found,
                        api_visibility="private", **SINGLE_FRAME)
     .success(handlers.show_video_listing, [page.target_listing, page.target_faces, page.target_thumbs], listed,
              **PAGE_ONLY))
    page.video.change(handlers.forget_video_faces, [page.video], [*video_found, page.frame, page.reference_frame],
                      **PAGE_ONLY)
    page.face.change(handlers.forget_photo_faces, None, source_found, **PAGE_ONLY)
    page.target_gallery.select(handlers.toggle_pick, [page.target_faces, page.target_thumbs],
                               [page.target_faces, page.target_gallery, page.target_summary], **PAGE_ONLY)
    page.source_gallery.select(handlers.toggle_source_pick, [page.source_faces, page.source_thumbs],
                               [page.source_faces, page.source_gallery, page.source_summary], **PAGE_ONLY)
    page.target_faces.input(handlers.show_picks, [page.target_faces, page.target_thumbs],
                            [page.target_gallery, page.target_summary], **PAGE_ONLY)
    page.source_faces.input(handlers.show_source_picks, [page.source_faces, page.source_thumbs],
                            [page.source_gallery, page.source_summary], **PAGE_ONLY)


def _wire_swap(page: Page, handlers: UiHandlers) -> None:
    (page.preview_button.click(handlers.preview, page.preview_inputs(),
                               [page.preview_image, page.preview_info], api_name="preview", **SINGLE_FRAME)
     .success(handlers.show_preview_info, [page.preview_info], [page.notices], **PAGE_ONLY)
     .success(_shown, None, [page.preview_image], **PAGE_ONLY))
    # Swap is disabled first, so a second click cannot start a second job; it comes back however the swap ends.
    swapping = (page.swap_button.click(handlers.lock_actions, None, [page.swap_button], **PAGE_ONLY)
                .then(handlers.swap, page.swap_inputs(), [page.download, page.report], api_name="swap",
                      concurrency_id="swap", concurrency_limit=SWAP_WATCHERS, show_progress_on=[page.job_status]))
    swapping.success(handlers.show_result, [page.download, page.report],
                     [page.result_video, page.result_gif, page.notices, page.job_status], **PAGE_ONLY)
    swapping.failure(handlers.show_failure, None, [page.job_status], **PAGE_ONLY)
    swapping.then(handlers.unlock_actions, None, [page.swap_button], **PAGE_ONLY)
    # Cancel goes to the job core: the swap then ends as "Cancelled", not as an error.
    page.cancel_button.click(handlers.cancel_swap, [page.report], [page.job_status], **PAGE_ONLY)


def _shown() -> dict[str, Any]:
    """Shows a component kept hidden while empty (the Preview box, once there is a preview)."""
    return gr.update(visible=True)
