"""Turn an input reference (local path, http(s) URL or data URI) into a local file.

URLs are downloaded by `faceswap.media.fetch` (SSRF-safe, size and time limited). Local paths are trusted here:
the REST doors never pass a client's path through (they accept URLs, data URIs and base64 only).
"""

from __future__ import annotations

import base64
import binascii
import mimetypes
import re
import secrets
from pathlib import Path
from urllib.parse import unquote_to_bytes

from faceswap.config import Settings
from faceswap.errors import FaceSwapError

_URL = re.compile(r"^https?://", re.IGNORECASE)
_DATA_URI = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?:;[\w=.+-]+)*?(?P<b64>;base64)?,", re.IGNORECASE)


_BASE64_TEXT = re.compile(r"^[A-Za-z0-9+/_-]+={0,2}$")
MIN_BARE_BASE64 = 64
"""Shorter strings are never taken for bare base64 (no real image or video is that small)."""

_MAGIC: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\xff\xd8\xff", ".jpg"), (0, b"\x89PNG\r\n\x1a\n", ".png"), (0, b"GIF87a", ".gif"), (0, b"GIF89a", ".gif"),
    (0, b"BM", ".bmp"), (4, b"ftypqt", ".mov"), (4, b"ftyp", ".mp4"), (0, b"\x1a\x45\xdf\xa3", ".mkv"),
)


def resolve_input(ref: str, dest_dir: Path, settings: Settings, *, field: str) -> Path:
    """A local file holding the input `ref` names; URLs are downloaded and data URIs decoded into `dest_dir`."""
    text = ref.strip()
    if _URL.match(text):
        from faceswap.media.fetch import fetch_url

        return fetch_url(text, dest_dir, settings, field=field)
    match = _DATA_URI.match(text)
    if match:
        data, suffix = _decode(text[match.end():], match["mime"], bool(match["b64"]), settings, field=field)
        dest_dir.mkdir(parents=True, exist_ok=True)
        path = dest_dir / f"{field}-{secrets.token_hex(8)}{suffix}"
        path.write_bytes(data)
        return path
    path = Path(text).expanduser()
    if path.is_file():
        return path
    raise FaceSwapError("invalid_request", f"{field}: no such file: {ref!r}", field=field)


def is_url(ref: str) -> bool:
    return bool(_URL.match(ref.strip()))


def decode_inline(ref: str, settings: Settings, *, field: str, allow_bare: bool = True) -> tuple[bytes, str] | None:
    """The bytes and a file suffix of a data URI (or, with `allow_bare`, a bare base64 string); None otherwise.

    The suffix comes from the data's own signature when known, else from the data URI's media type.
    """
    text = ref.strip()
    match = _DATA_URI.match(text)
    if match:
        payload, mime, is_base64 = text[match.end():], match["mime"], bool(match["b64"])
    elif allow_bare and len(text) >= MIN_BARE_BASE64:
        payload, mime, is_base64 = text, None, True
        if not _BASE64_TEXT.match("".join(payload.split())):
            return None
    else:
        return None
    return _decode(payload, mime, is_base64, settings, field=field)


def _decode(payload: str, mime: str | None, is_base64: bool, settings: Settings, *, field: str) -> tuple[bytes, str]:
    if len(payload) * 3 // 4 > settings.max_upload_bytes:
        raise FaceSwapError("media_too_large", f"{field}: the data is larger than the "
                            f"{settings.max_upload_bytes / 1e6:.1f} MB this server accepts.", field=field)
    if is_base64:
        compact = "".join(payload.split())
        try:
            data = base64.b64decode(compact + "=" * (-len(compact) % 4), altchars=b"-_" if "-" in compact or "_" in
                                    compact else None, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise FaceSwapError("invalid_request", f"{field}: the data is not valid base64.", field=field) from exc
    else:
        data = unquote_to_bytes(payload)
    if not data:
        raise FaceSwapError("invalid_request", f"{field}: the data is empty.", field=field)
    return data, sniff_suffix(data) or (mimetypes.guess_extension(mime) if mime else None) or ".bin"


def sniff_suffix(data: bytes) -> str | None:
    """A file suffix from the data's leading signature (common images and videos), or None."""
    if data[:4] == b"RIFF" and data[8:12] in (b"WEBP", b"AVI "):
        return ".webp" if data[8:12] == b"WEBP" else ".avi"
    for offset, magic, suffix in _MAGIC:
        if data[offset:offset + len(magic)] == magic:
            if suffix == ".mkv" and b"webm" in data[:64]:
                return ".webm"
            return suffix
    return None
