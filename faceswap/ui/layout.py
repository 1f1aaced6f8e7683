"""The page's layout: every component, placed once; `app.py` wires them to the handlers.

Dropdown and radio choices come from the `Literal` types in `faceswap.options`, never from lists written here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from faceswap.options import ENGINES, GENDERS, ORDERS, OUTPUT_FORMATS, RESTORES, SELECTIONS, SwapOptions
from faceswap.ui import frame_range
from faceswap.ui.advanced import Advanced, build_advanced
from faceswap.ui.status import Capabilities, option_reasons
from faceswap.ui.status import engine_line as engine_line_text

log = logging.getLogger(__name__)

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "assets" / "examples"
"""Example inputs made from public-domain photos by `assets/make_examples.py` (absent from a bare wheel install,
in which case the page simply has no examples)."""

INTRO = """# faceswap
Upload a video and a photo of a face, press **Find faces**, click the people to replace, then **Swap**.
Everything runs on this server; the result keeps the video's sound, frame rate and length."""

VIDEO_TYPES = [".mp4", ".mov", ".m4v", ".webm", ".mkv", ".avi", ".gif", ".png", ".jpg", ".jpeg", ".webp"]
"""What the video box accepts: a GIF is a video here (Gradio's Video box refuses GIF uploads), and the
detect_faces endpoint, which shares the box, also lists the faces of a photo."""

PICK_HELP = ("Click a person to replace them, click again to undo. With several people picked, the pick order "
             "pairs them with the photo's people (1st with 1st, ...).")

PICKS_AS_NUMBERS = ("The same picks as numbers, for scripts: 0 = Person 1, 1 = Person 2, ... (empty: 0). "
                    "Clicking people fills this in.")

UPLOAD_HEIGHT = 170
GALLERY_HEIGHT = 140
"""Pixel heights that keep Find faces and Swap on the first screen of a 1366×900 window."""


def _default(name: str) -> object:
    return SwapOptions.model_fields[name].default


@dataclass(frozen=True)
class Page:
    """Every component the handlers read or write."""

    video: gr.File
    face: gr.Image
    engine_line: gr.Markdown
    get_models_button: gr.Button
    models_panel: gr.Group
    models_text: gr.Markdown
    download_models_button: gr.Button
    not_now_button: gr.Button
    find_button: gr.Button
    frame: gr.Slider
    reference_frame: gr.Number
    """The frame whose faces the gallery lists, on which picked indices count (empty until faces are found)."""
    target_gallery: gr.Gallery
    target_summary: gr.Markdown
    target_faces: gr.Textbox
    target_listing: gr.JSON
    target_thumbs: gr.State
    source_gallery: gr.Gallery
    source_summary: gr.Markdown
    source_faces: gr.Textbox
    source_listing: gr.JSON
    source_thumbs: gr.State
    engine: gr.Radio
    order: gr.Radio
    selection: gr.Radio
    target_gender: gr.Radio
    source_gender: gr.Radio
    frame_cap: gr.Number
    start: gr.Number
    end: gr.Number
    restore: gr.Radio
    codeformer_weight: gr.Slider
    restore_visibility: gr.Slider
    output_format: gr.Radio
    preview_button: gr.Button
    swap_button: gr.Button
    cancel_button: gr.Button
    job_status: gr.Textbox
    notices: gr.Markdown
    preview_image: gr.Image
    preview_info: gr.JSON
    result_video: gr.Video
    result_gif: gr.Image
    download: gr.File
    report: gr.JSON
    advanced: Advanced
    """The quality options (swapper, pixel boost, masks): the swap and preview endpoints' last parameters."""

    def option_inputs(self) -> list[gr.components.Component]:
        """The swap options every run endpoint takes first, in the order of `build_options`' parameters."""
        return [self.video, self.face, self.target_faces, self.source_faces, self.engine, self.order,
                self.selection, self.target_gender, self.source_gender, self.frame_cap, self.start, self.end,
                self.restore, self.codeformer_weight, self.restore_visibility, self.output_format]

    def swap_inputs(self) -> list[gr.components.Component]:
        """The swap endpoint's inputs, in the order of `UiHandlers.swap`'s parameters."""
        return [*self.option_inputs(), self.reference_frame, *self.advanced.inputs()]

    def preview_inputs(self) -> list[gr.components.Component]:
        """The preview endpoint's inputs, in the order of `UiHandlers.preview`'s parameters."""
        return [*self.option_inputs(), self.frame, self.reference_frame, *self.advanced.inputs()]


def build_page(max_frames: int, caps: Capabilities) -> Page:
    """Place the components; call inside a `gr.Blocks` context. `max_frames` bounds the frame slider; `caps`
    sets what the page first says about the engine and which options are usable (refreshed on each page load)."""
    gr.Markdown(INTRO)
    with gr.Row(equal_height=True, elem_id="engine-row"):
        engine_line = gr.Markdown(engine_line_text(caps), elem_id="engine-line")
        get_models_button = gr.Button("Get the neural models", size="sm", scale=0, elem_id="get-models",
                                      visible=caps.can_download and not caps.neural)
    with gr.Group(visible=False, elem_id="models-panel") as models_panel:
        models_text = gr.Markdown(elem_id="models-licence")
        with gr.Row():
            download_models_button = gr.Button("I accept these licences: download", variant="primary",
                                               elem_id="download-models")
            not_now_button = gr.Button("Not now", elem_id="models-not-now")
    with gr.Row(equal_height=True):
        video = gr.File(label="Video (MP4, MOV, WebM, MKV, AVI or GIF)", file_types=VIDEO_TYPES,
                        file_count="single", type="filepath", height=UPLOAD_HEIGHT, elem_id="video-input")
        face = gr.Image(label="Face to put in", type="filepath", sources=["upload", "clipboard"],
                        height=UPLOAD_HEIGHT, elem_id="face-input")
    # Placed in Options (below); made here so that an example can fill in its picks.
    target_faces = gr.Textbox(value="", label="People to replace, as numbers", info=PICKS_AS_NUMBERS,
                              placeholder="0", elem_id="target-faces", render=False)
    _examples(video, face, target_faces)
    with gr.Row(equal_height=True):
        find_button = gr.Button("Find faces", variant="secondary", scale=1, elem_id="find-faces")
        # Always in place (no layout shift), waiting with a hint until a video is loaded, then spanning its frames
        # (frame_range.py). The API accepts any frame up to the server's limit (the core clamps it to the video).
        frame = gr.Slider(0, max(max_frames - 1, 1), value=0, step=1, precision=0, label="Frame",
                          info=frame_range.NO_VIDEO_HINT, interactive=False, scale=3, elem_id="frame-slider",
                          elem_classes=[frame_range.WAITING_CLASS])
    # Set to the listed frame by each face search (the slider may move without one); hidden, but a parameter of
    # the swap and preview endpoints.
    reference_frame = gr.Number(value=None, precision=0, minimum=0, label="Frame the picks count on",
                                visible=False, elem_id="reference-frame")
    with gr.Row():
        with gr.Column(scale=3):
            gr.Markdown(f"**People in the video.** {PICK_HELP}")
            target_gallery = gr.Gallery(show_label=False, columns=6, fit_columns=False, height=GALLERY_HEIGHT,
                                        allow_preview=False, object_fit="contain", interactive=False,
                                        elem_id="target-gallery")
            target_summary = gr.Markdown(elem_id="target-picked")
        with gr.Column(scale=2):
            gr.Markdown("**People in the photo.** Pick one only when the photo shows several.")
            source_gallery = gr.Gallery(show_label=False, columns=4, fit_columns=False, height=GALLERY_HEIGHT,
                                        allow_preview=False, object_fit="contain", interactive=False,
                                        elem_id="source-gallery")
            source_summary = gr.Markdown(elem_id="source-picked")

    with gr.Row(equal_height=True, elem_id="actions"):
        preview_button = gr.Button("Preview frame", elem_id="preview", scale=1)
        swap_button = gr.Button("Swap", variant="primary", elem_id="swap", scale=1)
        cancel_button = gr.Button("Cancel", variant="stop", elem_id="cancel", scale=1)
        job_status = gr.Textbox(value="Ready.", show_label=False, interactive=False, max_lines=1, scale=3,
                                elem_id="job-status")
    notices = gr.Markdown(elem_id="notices")
    with gr.Row():
        # Hidden until there is a preview: an empty box would only push the result down.
        preview_image = gr.Image(label="Preview", type="numpy", format="png", interactive=False, visible=False,
                                 elem_id="preview-image")
        with gr.Column():
            result_video = gr.Video(label="Result", interactive=False, elem_id="result-video")
            result_gif = gr.Image(label="Result (GIF)", type="filepath", interactive=False, visible=False,
                                  elem_id="result-gif")
            download = gr.File(label="Download", interactive=False, elem_id="download")

    reasons = option_reasons(caps)
    with gr.Accordion("Options", open=False, elem_id="options"):
        with gr.Row():
            engine = gr.Radio(engine_choices(caps), value=_default("engine"), label="Engine",
                              info="auto: neural when its models are installed, else classic (offline)")
            order = gr.Radio(list(ORDERS), value=_default("order"), label="Face order",
                             info="How people are numbered")
            selection = gr.Radio(list(SELECTIONS), value=_default("selection"), label="Selection",
                                 info="track: follow the chosen person; per_frame: re-apply the number each frame")
        with gr.Row():
            target_gender = gr.Radio(list(GENDERS), value=_default("target_gender"), label="Video faces' gender",
                                     info=reasons["gender"] or "Only faces of this gender", elem_id="target-gender",
                                     interactive=reasons["gender"] is None)
            source_gender = gr.Radio(list(GENDERS), value=_default("source_gender"), label="Photo faces' gender",
                                     info=reasons["gender"] or "Only faces of this gender", elem_id="source-gender",
                                     interactive=reasons["gender"] is None)
        with gr.Row():
            frame_cap = gr.Number(value=_default("frame_cap"), label="Frame cap", precision=0, minimum=0,
                                  info="Process at most this many frames (0 = all)")
            start = gr.Number(value=0, label="Start (s)", minimum=0, info="0 = from the beginning")
            end = gr.Number(value=0, label="End (s)", minimum=0, info="0 = to the end")
        with gr.Row():
            restore = gr.Radio(restore_choices(caps), value=_default("restore"), label="Face restoration",
                               info=restore_info(caps), interactive=any(caps.restorers.values()),
                               elem_id="restore")
            codeformer_weight = gr.Slider(0, 1, value=_default("codeformer_weight"), step=0.05,
                                          label="CodeFormer weight", info="0 = quality, 1 = fidelity")
            restore_visibility = gr.Slider(0.1, 1, value=_default("restore_visibility"), step=0.05,
                                           label="Restoration visibility")
            output_format = gr.Radio(list(OUTPUT_FORMATS), value=_default("output_format"), label="Output format",
                                     info="same: GIF stays GIF, anything else becomes MP4")
        with gr.Row():
            target_faces.render()
            source_faces = gr.Textbox(value="", label="People from the photo, as numbers", placeholder="0",
                                      info="0 = Person 1 of the photo (empty: 0).", elem_id="source-faces")
    advanced = build_advanced(caps)
    with gr.Accordion("Details for developers (JSON)", open=False, elem_id="details"), gr.Row():
        target_listing = gr.JSON(label="Video faces")
        source_listing = gr.JSON(label="Photo faces")
        preview_info = gr.JSON(label="Preview details")
        report = gr.JSON(label="Report", elem_id="report")
    return Page(video, face, engine_line, get_models_button, models_panel, models_text, download_models_button,
                not_now_button, find_button, frame, reference_frame, target_gallery, target_summary, target_faces,
                target_listing, gr.State([]), source_gallery, source_summary, source_faces, source_listing,
                gr.State([]), engine, order, selection, target_gender, source_gender, frame_cap, start, end, restore,
                codeformer_weight, restore_visibility, output_format, preview_button, swap_button, cancel_button,
                job_status, notices, preview_image, preview_info, result_video, result_gif, download, report,
                advanced)


def engine_choices(caps: Capabilities) -> list[tuple[str, str]]:
    """The engine radio's (label, value) pairs: a choice that cannot run says why; its value stays the API's."""
    reasons = option_reasons(caps)
    return [(f"{name} (models not installed)" if name == "neural" and reasons["neural"] else name, name)
            for name in ENGINES]


def restore_choices(caps: Capabilities) -> list[tuple[str, str]]:
    return [(name if name == "none" or caps.restorers.get(name) else f"{name} (model not installed)", name)
            for name in RESTORES]


def restore_info(caps: Capabilities) -> str:
    if all(caps.restorers.values()):
        return "Sharpens swapped faces"
    if not any(caps.restorers.values()):
        return "Not available: the restoration models are not installed."
    return "Only the restorers whose model is installed can run."


def option_updates(caps: Capabilities) -> tuple[Any, ...]:
    """Updates for (engine line, Get-models button, engine, target gender, source gender, restore)."""
    reasons = option_reasons(caps)
    gender = gr.update(interactive=reasons["gender"] is None,
                       info=reasons["gender"] or "Only faces of this gender")
    return (engine_line_text(caps), gr.update(visible=caps.can_download and not caps.neural),
            gr.update(choices=engine_choices(caps)), gender, gender,
            gr.update(choices=restore_choices(caps), info=restore_info(caps),
                      interactive=any(caps.restorers.values())))


EXAMPLES = (("grace_hopper.jpg", "0", "Two people: give the left one Grace Hopper's face"),
            ("astronaut.jpg", "1", "Two people: give the right one Eileen Collins's face"))
"""(photo, people to replace as the page numbers them, what the example shows) for the example clip, in which
Eileen Collins stands on the left (0) and Grace Hopper on the right (1)."""


def _examples(video: gr.File, face: gr.Image, target_faces: gr.Textbox) -> None:
    """Compact buttons, each saying what it shows; a click fills the video, the photo and the picks."""
    clip = EXAMPLES_DIR / "two_people.mp4"
    if not clip.is_file() or not all((EXAMPLES_DIR / photo).is_file() for photo, _, _ in EXAMPLES):
        log.info("no example inputs at %s; the page shows none", EXAMPLES_DIR)
        return
    gr.Examples([[str(clip), str(EXAMPLES_DIR / photo), picks] for photo, picks, _ in EXAMPLES],
                inputs=[video, face, target_faces], example_labels=[label for _, _, label in EXAMPLES],
                label="Try an example (public-domain photos)", elem_id="examples")
