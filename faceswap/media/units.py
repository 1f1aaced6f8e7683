"""Numbers in messages people read, and the checks on an input file every reader starts with."""

from __future__ import annotations

from pathlib import Path

from faceswap.config import Settings
from faceswap.errors import FaceSwapError


def human_size(size: float) -> str:
    """1536 → '1.5 KB'; for messages about file sizes."""
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}".replace(".0 ", " ")
        size /= 1024
    return f"{size:.1f} GB"


def check_input_file(path: Path, settings: Settings, *, kind: str, field: str) -> None:
    """The catalog error for a `kind` ('video', 'image') file that is missing, empty or over the upload limit."""
    if not path.is_file():
        raise FaceSwapError("invalid_request", f"The {kind} file '{path.name}' does not exist.", field=field)
    size = path.stat().st_size
    if size == 0:
        raise FaceSwapError("unsupported_media", f"The {kind} file '{path.name}' is empty (0 bytes).", field=field)
    if size > settings.max_upload_bytes:
        raise FaceSwapError("media_too_large", f"The {kind} file '{path.name}' is {human_size(size)}; this server "
                            f"accepts at most {human_size(settings.max_upload_bytes)}.", field=field)
