"""Media: probe, decode and encode video with PyAV; load face photos; resolve and fetch inputs.

The public names are re-exported here lazily, so importing a light submodule (`faceswap.media.inputs`) does not
load PyAV, OpenCV and Pillow.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from faceswap.media.decode import DecodedFrame, planned_frame_count, read_frame, read_frames
    from faceswap.media.encode import PROVENANCE_NOTE, VideoWriter, resolve_output_format
    from faceswap.media.images import load_image
    from faceswap.media.probe import VideoInfo, probe_video

_EXPORTS = {
    "VideoInfo": "probe",
    "probe_video": "probe",
    "load_image": "images",
    "DecodedFrame": "decode",
    "read_frames": "decode",
    "read_frame": "decode",
    "planned_frame_count": "decode",
    "VideoWriter": "encode",
    "resolve_output_format": "encode",
    "PROVENANCE_NOTE": "encode",
}

__all__ = [
    "PROVENANCE_NOTE",
    "DecodedFrame",
    "VideoInfo",
    "VideoWriter",
    "load_image",
    "planned_frame_count",
    "probe_video",
    "read_frame",
    "read_frames",
    "resolve_output_format",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'faceswap.media' has no attribute {name!r}")
    return getattr(import_module(f"faceswap.media.{module}"), name)
