"""The page's layout: every component, placed once; `app.py` wires them to the handlers.

Dropdown and radio choices come from the `Literal` types in `faceswap.options`, never from lists written here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from faceswap.options import ENGINES, GENDERS, ORDERS, OUTPUT_FORMATS, RESTORES, SELECTIONS, SwapOptions

log = logging.getLogger(__name__)

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "assets" / "examples"
"""Example inputs made from public-domain photos by `assets/make_examples.py` (absent from a bare wheel install,
in which case the page simply has no examples)."""

INTRO = """# faceswap
Upload a video and a photo of a face, press **Find faces**, click the face(s) to replace, then **Swap**.
Everything runs on this server; the result keeps the video's sound, frame rate and length."""

PICK_HELP = ("Click thumbnails to pick, click again to unpick, or type indices such as 0,2 (empty: face 0). With "
             "several picks, the pick order pairs them with the photo's faces (photo face #1 → video face #1, ...).")

FRAME_HELP = ("The frame whose faces are shown, and which Preview renders. The faces you pick are counted on this "
              "frame, and the swap (selection 'track') follows those people through the whole video.")


def _default(name: str) -> object:
    return SwapOptions.model_fields[name].default


@dataclass(frozen=True)
class Page:
    """Every component the handlers read or write."""

    video: gr.Video
    face: gr.Image
    find_button: gr.Button
    frame: gr.Slider
    reference_frame: gr.Number
    """The frame whose faces the gallery lists, on which picked indices count (empty until faces are found)."""
    target_gallery: gr.Gallery
    target_faces: gr.Textbox
    target_listing: gr.JSON
    target_thumbs: gr.State
    source_gallery: gr.Gallery
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
    notices: gr.Markdown
    preview_image: gr.Image
    preview_info: gr.JSON
    result_video: gr.Video
    result_gif: gr.Image
    download: gr.File
    report: gr.JSON

    def option_inputs(self) -> list[gr.components.Component]:
        """The swap options every run endpoint takes first, in the order of `build_options`' parameters."""
        return [self.video, self.face, self.target_faces, self.source_faces, self.engine, self.order,
                self.selection, self.target_gender, self.source_gender, self.frame_cap, self.start, self.end,
                self.restore, self.codeformer_weight, self.restore_visibility, self.output_format]

    def swap_inputs(self) -> list[gr.components.Component]:
        """The swap endpoint's inputs, in the order of `UiHandlers.swap`'s parameters."""
        return [*self.option_inputs(), self.reference_frame]

    def preview_inputs(self) -> list[gr.components.Component]:
        """The preview endpoint's inputs, in the order of `UiHandlers.preview`'s parameters."""
        return [*self.option_inputs(), self.frame, self.reference_frame]


def build_page(max_frames: int) -> Page:
    """Place the components; call inside a `gr.Blocks` context. `max_frames` bounds the frame slider."""
    gr.Markdown(INTRO)
    with gr.Row(equal_height=True):
        video = gr.Video(label="Video", sources=["upload"], elem_id="video-input")
        face = gr.Image(label="Face to put in", type="filepath", sources=["upload", "clipboard"],
                        elem_id="face-input")
    _examples(video, face)
    find_button = gr.Button("Find faces", variant="secondary", elem_id="find-faces")

    with gr.Row():
        with gr.Column(scale=3):
            # The range narrows to the video's frames once faces are found; the API accepts any frame up to the
            # server's limit (the core clamps it to the video).
            frame = gr.Slider(0, max(max_frames - 1, 1), value=0, step=1, precision=0, label="Frame",
                              info=FRAME_HELP, visible=False, elem_id="frame-slider")
            # Set to the listed frame by each face search (the slider may move without one); hidden, but a
            # parameter of the swap and preview endpoints.
            reference_frame = gr.Number(value=None, precision=0, minimum=0, label="Frame the picks count on",
                                        visible=False, elem_id="reference-frame")
            target_gallery = gr.Gallery(label="Faces in the video", columns=6, fit_columns=False, height=190,
                                        allow_preview=False, object_fit="contain", interactive=False,
                                        elem_id="target-gallery")
            target_faces = gr.Textbox(value="", label="Faces to replace (indices)", info=PICK_HELP, placeholder="0",
                                      elem_id="target-faces")
        with gr.Column(scale=2):
            source_gallery = gr.Gallery(label="Faces in the photo", columns=4, fit_columns=False, height=190,
                                        allow_preview=False, object_fit="contain", interactive=False,
                                        elem_id="source-gallery")
            source_faces = gr.Textbox(value="", label="Faces to use from the photo (indices)", placeholder="0",
                                      info="Needed only when the photo shows several people (empty: face 0).",
                                      elem_id="source-faces")
    with gr.Accordion("Face listings (JSON)", open=False), gr.Row():
        target_listing = gr.JSON(label="Video faces")
        source_listing = gr.JSON(label="Photo faces")

    with gr.Accordion("Options", open=False, elem_id="options"):
        with gr.Row():
            engine = gr.Radio(list(ENGINES), value=_default("engine"), label="Engine",
                              info="auto: neural when its models are installed, else classic (offline)")
            order = gr.Radio(list(ORDERS), value=_default("order"), label="Face order",
                             info="How face indices count")
            selection = gr.Radio(list(SELECTIONS), value=_default("selection"), label="Selection",
                                 info="track: follow the chosen person; per_frame: re-apply the index each frame")
        with gr.Row():
            target_gender = gr.Radio(list(GENDERS), value=_default("target_gender"), label="Video faces' gender",
                                     info="Neural engine only")
            source_gender = gr.Radio(list(GENDERS), value=_default("source_gender"), label="Photo faces' gender",
                                     info="Neural engine only")
        with gr.Row():
            frame_cap = gr.Number(value=_default("frame_cap"), label="Frame cap", precision=0, minimum=0,
                                  info="Process at most this many frames (0 = all)")
            start = gr.Number(value=0, label="Start (s)", minimum=0, info="0 = from the beginning")
            end = gr.Number(value=0, label="End (s)", minimum=0, info="0 = to the end")
        with gr.Row():
            restore = gr.Radio(list(RESTORES), value=_default("restore"), label="Face restoration",
                               info="Needs the neural models")
            codeformer_weight = gr.Slider(0, 1, value=_default("codeformer_weight"), step=0.05,
                                          label="CodeFormer weight", info="0 = quality, 1 = fidelity")
            restore_visibility = gr.Slider(0.1, 1, value=_default("restore_visibility"), step=0.05,
                                           label="Restoration visibility")
            output_format = gr.Radio(list(OUTPUT_FORMATS), value=_default("output_format"), label="Output format",
                                     info="same: GIF stays GIF, anything else becomes MP4")

    with gr.Row():
        preview_button = gr.Button("Preview frame", elem_id="preview")
        swap_button = gr.Button("Swap", variant="primary", elem_id="swap")
        cancel_button = gr.Button("Cancel", variant="stop", elem_id="cancel")
    notices = gr.Markdown(elem_id="notices")
    with gr.Row():
        with gr.Column():
            preview_image = gr.Image(label="Preview", type="numpy", format="png", interactive=False,
                                     elem_id="preview-image")
            preview_info = gr.JSON(label="Preview details", visible=False)
        with gr.Column():
            result_video = gr.Video(label="Result", interactive=False, elem_id="result-video")
            result_gif = gr.Image(label="Result (GIF)", type="filepath", interactive=False, visible=False,
                                  elem_id="result-gif")
            download = gr.File(label="Download", interactive=False, elem_id="download")
    report = gr.JSON(label="Report", elem_id="report")
    return Page(video, face, find_button, frame, reference_frame, target_gallery, target_faces, target_listing,
                gr.State([]), source_gallery, source_faces, source_listing, gr.State([]), engine, order, selection,
                target_gender, source_gender, frame_cap, start, end, restore, codeformer_weight, restore_visibility,
                output_format, preview_button, swap_button, cancel_button, notices, preview_image, preview_info,
                result_video, result_gif, download, report)


def _examples(video: gr.Video, face: gr.Image) -> None:
    clip = EXAMPLES_DIR / "two_people.mp4"
    photos = [EXAMPLES_DIR / "astronaut.jpg", EXAMPLES_DIR / "grace_hopper.jpg"]
    if not clip.is_file() or not all(photo.is_file() for photo in photos):
        log.info("no example inputs at %s; the page shows none", EXAMPLES_DIR)
        return
    gr.Examples([[str(clip), str(photo)] for photo in photos], inputs=[video, face],
                label="Examples (public-domain photos: astronaut Eileen Collins, Grace Hopper)")
