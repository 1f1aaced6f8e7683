"""Turn an input reference (local path, data URI or bare base64; URLs come later) into a local file."""

from __future__ import annotations

import base64
import binascii
import mimetypes
import re
import secrets
from pathlib import Path

from faceswap.config import Settings
from faceswap.errors import FaceSwapError

_DATA_URI = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?:;[\w=.+-]+)*?(?P<b64>;base64)?,", re.IGNORECASE)


def resolve_input(ref: str, dest_dir: Path, settings: Settings, *, field: str) -> Path:
    """A local file holding the input `ref` names; data URIs are decoded into `dest_dir`."""
    text = ref.strip()
    match = _DATA_URI.match(text)
    if match:
        return _write_data(text[match.end():], match["mime"], bool(match["b64"]), dest_dir, settings, field)
    path = Path(text).expanduser()
    if path.is_file():
        return path
    raise FaceSwapError("invalid_request", f"{field}: no such file: {ref!r}", field=field)


def _write_data(payload: str, mime: str | None, is_base64: bool, dest_dir: Path, settings: Settings,
                field: str) -> Path:
    if len(payload) * 3 // 4 > settings.max_upload_bytes:
        raise FaceSwapError("media_too_large", f"{field}: the data is larger than the "
                            f"{settings.max_upload_bytes // (1024 * 1024)} MB this server accepts.", field=field)
    try:
        data = base64.b64decode(payload, validate=True) if is_base64 else payload.encode()
    except (binascii.Error, ValueError) as exc:
        raise FaceSwapError("invalid_request", f"{field}: the data URI is not valid base64.", field=field) from exc
    suffix = (mimetypes.guess_extension(mime) if mime else None) or ".bin"
    dest_dir.mkdir(parents=True, exist_ok=True)
    path = dest_dir / f"{field}-{secrets.token_hex(8)}{suffix}"
    path.write_bytes(data)
    return path
