"""The Live tab: a face photo, the visitor's camera streamed through Gradio's webcam streaming, the swapped picture
back, fps and latency, Start/Stop, and "save the last N seconds" as an MP4.

Why Gradio's own streaming (`gr.Image(sources=["webcam"], streaming=True)` + `.stream`) and not WebRTC
(fastrtc / gradio-webrtc): it needs no extra dependency and no STUN/TURN server, works on loopback and offline, and
bounds latency by itself: the page sends no new frame while the last one is pending, and the server keeps only the
newest frame it was sent. WebRTC would give lower latency at higher frame rates, which this CPU-bound swap does
not reach.

Layout and wiring only; the sessions live in `faceswap.live`. `build_live_tab` is called inside the app's
`gr.Blocks`, in its own tab.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from faceswap.errors import FaceSwapError, as_faceswap_error
from faceswap.live import TARGETS, LiveConfig, LiveHub
from faceswap.options import ENGINES, RESTORES
from faceswap.runtime import Runtime
from faceswap.ui.uploads import guard_component

log = logging.getLogger(__name__)

STREAM_EVERY_S = 0.05
"""How often the page may send a camera frame; it sends none while the previous one is pending, so the real rate
is what the server keeps up with."""
CONTROL = {"concurrency_id": "live_control", "concurrency_limit": 4, "api_visibility": "private"}

INTRO = """### Live
Pick a face photo, press **Start**, then start the camera (its record button): you see yourself with that face.
Frames are skipped, never queued, when the server falls behind, so the picture stays close to real time."""

IDLE_TEXT = "Not running: press **Start**."


@dataclass(frozen=True)
class LiveTab:
    face: gr.Image
    source_face: gr.Number
    targets: gr.Radio
    engine: gr.Radio
    restore: gr.Radio
    record_seconds: gr.Slider
    start: gr.Button
    stop: gr.Button
    status: gr.Markdown
    camera: gr.Image
    output: gr.Image
    stats: gr.Markdown
    save: gr.Button
    recording: gr.File

    def config_inputs(self) -> list[gr.components.Component]:
        return [self.face, self.source_face, self.targets, self.engine, self.restore, self.record_seconds]


class LiveHandlers:
    def __init__(self, hub: LiveHub) -> None:
        self.hub = hub
        self.downloads = Path(tempfile.gettempdir()) / "faceswap-live"

    def warm_up(self, engine: str) -> str:
        """Load the engine when the tab opens, so Start answers within a second or two."""
        try:
            loaded = self.hub.runtime.engine(engine)  # type: ignore[arg-type]
        except Exception as exc:  # shown to the visitor as a catalog message
            return f"The {engine} engine is not available: {as_faceswap_error(exc).message}"
        if self.hub.max_sessions <= 0:
            return "Live swapping is turned off on this server."
        return f"Ready ({loaded.name} engine). Pick a face photo and press **Start**."

    def start(self, face: str | None, source_face: float | None, targets: str, engine: str, restore: str,
              record_seconds: float, request: gr.Request) -> str:
        if not face:
            return "Choose a face photo first."
        config = LiveConfig(face=face, source_face=int(source_face or 0), targets=targets,  # type: ignore[arg-type]
                            engine=engine, restore=restore, record_seconds=float(record_seconds))  # type: ignore
        try:
            session = self.hub.open(_visitor(request), config)
        except Exception as exc:  # every failure becomes a catalog message
            error = as_faceswap_error(exc)
            if error.code == "internal_error":
                log.exception("live start failed")
            return f"**Not started.** {error.message}"
        notices = "".join(f"\n\n{notice}" for notice in session.notices)
        return (f"**Running** with the {session.engine} engine. Start the camera (its record button) if it is not "
                f"streaming yet.{notices}")

    def frame(self, image: Any, request: gr.Request) -> tuple[Any, Any]:
        session = self.hub.get(_visitor(request))
        if image is None or session is None:
            return gr.skip(), IDLE_TEXT if session is None else gr.skip()
        try:
            swapped = session.process(image)
        except FaceSwapError as exc:
            self.hub.close(session.visitor)
            return gr.skip(), f"**Stopped:** {exc.message}"
        if swapped is None:  # dropped: the previous frame is still being swapped
            return gr.skip(), gr.skip()
        return swapped, session.stats().markdown()

    def stop(self, request: gr.Request) -> tuple[str, str]:
        session = self.hub.close(_visitor(request))
        if session is None:
            return IDLE_TEXT, gr.skip()
        return "**Stopped.** Press **Start** to go again.", f"Stopped · {session.stats().markdown()}"

    def save(self, request: gr.Request) -> Any:
        session = self.hub.get(_visitor(request))
        if session is None:
            raise gr.Error("Nothing to save: the live swap is not running (recordings are kept while it runs).")
        try:
            return str(session.recorder.save(self.downloads))
        except FaceSwapError as exc:
            raise gr.Error(exc.message) from exc

    def leave(self, request: gr.Request) -> None:
        self.hub.close(_visitor(request))


def _visitor(request: gr.Request) -> str:
    return request.session_hash or "anonymous"


def build_live_tab(blocks: gr.Blocks, runtime: Runtime, max_sessions: int) -> LiveHandlers:
    """Place the Live tab's components and wire them; call inside `blocks`' context, where the tab should go."""
    handlers = LiveHandlers(LiveHub(runtime, max_sessions=max_sessions))
    with gr.Tab("Live", id="live", elem_id="live-tab") as live_tab:
        tab = _layout()
    guard_component(tab.face, "face")  # files only from uploads, never a host path a client names
    guard_component(tab.camera, "camera")
    live_tab.select(handlers.warm_up, [tab.engine], [tab.status], **CONTROL)
    tab.start.click(handlers.start, tab.config_inputs(), [tab.status], **CONTROL)
    tab.stop.click(handlers.stop, None, [tab.status, tab.stats], **CONTROL)
    tab.camera.stream(handlers.frame, [tab.camera], [tab.output, tab.stats], stream_every=STREAM_EVERY_S,
                      concurrency_id="live_stream", concurrency_limit=None, api_visibility="private",
                      show_progress="hidden")
    tab.save.click(handlers.save, None, [tab.recording], **CONTROL)
    blocks.unload(handlers.leave)
    return handlers


def _layout() -> LiveTab:
    gr.Markdown(INTRO)
    with gr.Row():
        with gr.Column(scale=2):
            face = gr.Image(label="Face to put in", type="filepath", sources=["upload", "clipboard"],
                            elem_id="live-face")
            source_face = gr.Number(0, precision=0, minimum=0, label="Face in the photo",
                                    info="Index, largest first (0 = the largest face)", elem_id="live-source-face")
            targets = gr.Radio(list(TARGETS), value="largest", label="Faces to replace",
                               info="largest: the biggest face, followed from frame to frame; all: every face")
            engine = gr.Radio(list(ENGINES), value="auto", label="Engine",
                              info="classic runs on any CPU; neural needs its models (a GPU for a smooth picture)")
            restore = gr.Radio(list(RESTORES), value="none", label="Face restoration",
                               info="Each frame is restored: costly, use with a GPU")
            record_seconds = gr.Slider(2, 60, value=10, step=1, label="Recording length (s)",
                                       info="Save keeps the last this-many seconds")
            with gr.Row():
                start = gr.Button("Start", variant="primary", elem_id="live-start")
                stop = gr.Button("Stop", variant="stop", elem_id="live-stop")
            status = gr.Markdown(IDLE_TEXT, elem_id="live-status")
        with gr.Column(scale=3):
            camera = gr.Image(label="Camera", sources=["webcam"], streaming=True, type="numpy",
                              webcam_options=gr.WebcamOptions(mirror=False), elem_id="live-camera")
        with gr.Column(scale=3):
            output = gr.Image(label="Swapped", streaming=True, interactive=False, format="jpeg",
                              elem_id="live-output")
            stats = gr.Markdown("", elem_id="live-stats")
            save = gr.Button("Save the last seconds", elem_id="live-save")
            recording = gr.File(label="Recording", interactive=False, elem_id="live-recording")
    return LiveTab(face, source_face, targets, engine, restore, record_seconds, start, stop, status, camera, output,
                   stats, save, recording)
