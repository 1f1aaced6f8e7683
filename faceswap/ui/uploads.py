"""Files the page and its client API may read: only what was uploaded through Gradio (its upload/cache dir).

Gradio checks that an input file was uploaded only after `launch()`; this app is mounted into FastAPI and never
launched, so without this guard a client sending `{"path": "/any/host/file", "meta": {"_type": "gradio.FileData"}}`
would get Gradio to copy that host file into its cache and hand it to the handlers. Two checks close it:

- `guard_component(component)`: before Gradio copies an input into its cache, the path must already be in the
  upload dir (a URL or any other path is refused);
- `uploaded_file(value, field)`: every path a handler receives must be inside that dir.

Both refuse with the same catalog error whatever the path is, so the answer never tells whether a host file exists.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import gradio as gr
from gradio import utils as gradio_utils
from gradio_client import utils as client_utils

from faceswap.errors import FaceSwapError

log = logging.getLogger(__name__)

NOT_UPLOADED = "This file was not uploaded through this app. Upload it with the page or the client's handle_file()."


def upload_dir() -> Path:
    """Gradio's upload and cache dir (GRADIO_TEMP_DIR, else the system temp dir's `gradio`), resolved."""
    return Path(gradio_utils.get_upload_folder()).resolve()


def is_uploaded(value: str | Path) -> bool:
    """True when `value` is a local path inside Gradio's upload dir once symlinks and `..` are resolved."""
    text = str(value)
    if not text or client_utils.is_http_url_like(text) or "\0" in text:
        return False
    try:
        resolved = Path(text).resolve()
    except (OSError, RuntimeError, ValueError):
        return False
    root = upload_dir()
    return resolved != root and resolved.is_relative_to(root)


def uploaded_file(value: str | Path | None, field: str) -> str | None:
    """`value` when it names an uploaded file (or is empty); else `invalid_request` naming the field only."""
    if value is None or value == "":
        return None
    if not is_uploaded(value):
        log.warning("ui: refused a %s outside the upload dir: %s", field, value)
        raise FaceSwapError("invalid_request", f"{field}: {NOT_UPLOADED}", field=field)
    return str(value)


def guard_component(component: gr.components.Component, field: str) -> None:
    """Refuse, before Gradio copies it into its cache, any input file of `component` that is not an upload.

    Gradio copies inputs with the component's `move_resource_to_block_cache` (sync) or its async twin; both are
    wrapped. Call after the component's examples are built (they are copied from the app's own assets)."""
    sync_move: Callable[[Any], str | None] = component.move_resource_to_block_cache
    async_move: Callable[[Any], Awaitable[str | None]] = component.async_move_resource_to_block_cache

    def refuse_unless_uploaded(url_or_file_path: str | Path | None) -> None:
        if url_or_file_path is not None and not is_uploaded(url_or_file_path):
            log.warning("ui: refused a %s input outside the upload dir: %s", field, url_or_file_path)
            raise gr.Error(f"{field}: {NOT_UPLOADED}", title="Invalid request", print_exception=False)

    @functools.wraps(sync_move)
    def move_uploaded_only(url_or_file_path: str | Path | None) -> str | None:
        refuse_unless_uploaded(url_or_file_path)
        return sync_move(url_or_file_path)

    @functools.wraps(async_move)
    async def async_move_uploaded_only(url_or_file_path: str | Path | None) -> str | None:
        refuse_unless_uploaded(url_or_file_path)
        return await async_move(url_or_file_path)

    component.move_resource_to_block_cache = move_uploaded_only  # type: ignore[method-assign]
    component.async_move_resource_to_block_cache = async_move_uploaded_only  # type: ignore[method-assign]
