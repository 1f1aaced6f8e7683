"""The Frame slider's states on the page: waiting (no video yet: no range shown, a hint instead) and spanning the
loaded video's frames, set as soon as a video is loaded (not only after Find faces).

The slider keeps its place in every state, so nothing below it moves when a video arrives. Its constructed range
(up to the server's frame limit) is what API clients are checked against; these updates change only the page's
session (Gradio keeps a copy of the component's config per session).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gradio as gr

from faceswap.errors import FaceSwapError
from faceswap.inspect import IMAGE_SUFFIXES
from faceswap.media.probe import probe_video
from faceswap.ui.uploads import uploaded_file

if TYPE_CHECKING:
    from faceswap.config import Settings

log = logging.getLogger(__name__)

WAITING_CLASS = "frame-waiting"
"""The slider's class while it has no video: the page's CSS hides its track, ends and number box."""

FRAME_HELP = "The frame whose people are shown (and which Preview renders); the swap follows them through the video."
NO_VIDEO_HINT = "Load a video first: then choose here the frame whose people are shown."
PHOTO_HINT = "A photo has a single frame: nothing to choose here."
UNREADABLE_HINT = "This file could not be read as a video: Find faces says why."

CSS = f"""
#frame-slider.{WAITING_CLASS} .slider_input_container, #frame-slider.{WAITING_CLASS} .tab-like-container,
#frame-slider.{WAITING_CLASS} .min_value, #frame-slider.{WAITING_CLASS} .max_value,
#frame-slider.{WAITING_CLASS} .reset-button {{ visibility: hidden; }}
"""
"""Hides (keeping their space) the slider's parts that would show a meaningless range."""


def waiting(hint: str = NO_VIDEO_HINT) -> dict[str, Any]:
    """The slider with nothing to choose: disabled, at 0, its range hidden, `hint` in its place."""
    return gr.update(value=0, interactive=False, info=hint, elem_classes=[WAITING_CLASS])


def spanning(frame_count: int, value: int = 0) -> dict[str, Any]:
    """The slider over a video's `frame_count` frames (a single frame leaves nothing to choose)."""
    if frame_count <= 1:
        return waiting(PHOTO_HINT)
    return gr.update(minimum=0, maximum=frame_count - 1, value=min(value, frame_count - 1), interactive=True,
                     info=FRAME_HELP, elem_classes=[])


def for_video(video: str | None, settings: Settings) -> dict[str, Any]:
    """The slider for a newly loaded video (or photo, or nothing): its range read from the file's header."""
    if not video:
        return waiting()
    try:
        path = Path(uploaded_file(video, "video") or "")
        if path.suffix.lower() in IMAGE_SUFFIXES:
            return waiting(PHOTO_HINT)
        return spanning(probe_video(path, settings).frame_count)
    except FaceSwapError as exc:  # Find faces (or Swap) reports it in full
        log.info("ui: the frame range of an upload is unknown: %s", exc.message)
        return waiting(UNREADABLE_HINT)
