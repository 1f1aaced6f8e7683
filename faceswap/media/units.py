"""Numbers in messages people read."""

from __future__ import annotations


def human_size(size: float) -> str:
    """1536 → '1.5 KB'; for messages about file sizes."""
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}".replace(".0 ", " ")
        size /= 1024
    return f"{size:.1f} GB"
