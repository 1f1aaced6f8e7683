"""The ASGI guard in front of the REST prefixes: methods, keys and body sizes are settled from the request line and
headers, before a byte of the body is read.

- A method no route knows (TRACE, CONNECT, ...) answers 405 with `Allow`.
- A route that needs an API key answers 401 at once when none (or a wrong one) is presented, so an anonymous
  client cannot make the server buffer its body.
- Each route has its own body limit (`body_limit`): job creation takes at most two inline media inputs of
  `settings.max_inline_bytes` each (as base64, in JSON); every other JSON route takes 64 KiB; the upload PUT is
  streamed to disk by its handler and limited by its ticket (at most `settings.max_upload_bytes`). The limit is
  checked on Content-Length and again while a chunked body streams in: 413 `media_too_large`.
- A JSON route's body that is not JSON answers 415.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from faceswap.api.common import check_key, inline_limit, presented_key_in
from faceswap.api.errors import API_PREFIXES, render
from faceswap.config import Settings
from faceswap.errors import FaceSwapError

KNOWN_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")
SMALL_JSON_BYTES = 64 * 1024
MEDIA_ROUTES = ("/v1/videos/generations", "/v2/videofaceswap", "/v1/videofaceswap",
                "/api/v3/wavespeed-ai/video-face-swap")
"""The routes whose JSON may carry media inline (data URIs or base64)."""
_UPLOAD = re.compile(r"^/api/v3/media/uploads/[^/]+$")
_OPEN_ROUTES = re.compile(r"^/v1/files/[^/]+$")
"""Routes that need no key: result files (their id is the capability) and the upload PUT (its token is)."""


@dataclass(frozen=True)
class BodyRule:
    limit: int
    json: bool
    needs_key: bool


def media_json_limit(settings: Settings) -> int:
    """Two inline inputs as base64 (4 bytes per 3) plus room for the other fields."""
    return 2 * (-(-inline_limit(settings) // 3) * 4 + 256) + SMALL_JSON_BYTES


def body_rule(method: str, path: str, settings: Settings) -> BodyRule:
    normal = path.rstrip("/") or "/"
    if method == "PUT" and _UPLOAD.match(normal):
        return BodyRule(settings.max_upload_bytes, json=False, needs_key=False)
    needs_key = bool(settings.api_keys) and not _OPEN_ROUTES.match(normal)
    limit = media_json_limit(settings) if normal in MEDIA_ROUTES else SMALL_JSON_BYTES
    return BodyRule(limit, json=True, needs_key=needs_key)


class RequestGuard:
    def __init__(self, app: ASGIApp, *, settings: Settings, allowed_methods: object) -> None:
        """`allowed_methods(path)` gives the methods the REST routes serve on `path` (for 405's `Allow`)."""
        self.app = app
        self.settings = settings
        self.allowed_methods = allowed_methods

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(API_PREFIXES):
            await self.app(scope, receive, send)
            return
        method = scope.get("method", "GET").upper()
        if method not in KNOWN_METHODS:
            allowed = self.allowed_methods(path)  # type: ignore[operator]
            error = FaceSwapError("invalid_request", f"{method} is not allowed on {path}.")
            await self._reject(scope, receive, send, error, status=405,
                               headers={"Allow": ", ".join(allowed)} if allowed else None)
            return
        if method in ("GET", "HEAD", "OPTIONS", "DELETE"):
            await self.app(scope, receive, send)
            return
        headers = {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope["headers"]}
        rule = body_rule(method, path, self.settings)
        if rule.needs_key and (self.allowed_methods(path)):  # type: ignore[operator]
            try:
                check_key(self.settings, presented_key_in(headers))
            except FaceSwapError as error:
                await self._reject(scope, receive, send, error)
                return
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > rule.limit:
            await self._reject(scope, receive, send, _too_large(rule.limit))
            return
        content_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if rule.json and content_type and length != "0" and not (content_type == "application/json"
                                                                  or content_type.endswith("+json")):
            error = FaceSwapError("unsupported_media", f"Send the request body as JSON (Content-Type: "
                                  f"application/json), not {content_type}.")
            await self._reject(scope, receive, send, error)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > rule.limit:
                    raise _too_large(rule.limit)
            return message

        await self.app(scope, limited_receive, send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send, error: FaceSwapError, *,
                      status: int | None = None, headers: dict[str, str] | None = None) -> None:
        response = render(scope.get("path", ""), error, status=status)
        if not await _drain(scope, receive):
            response.headers["Connection"] = "close"  # a large unread body is not worth reading
        for name, value in (headers or {}).items():
            response.headers[name] = value
        await response(scope, receive, send)


DRAIN_BYTES = 1 << 20
"""A refused request's body up to this size is read and dropped before the answer, so that a client still sending
it reads the answer rather than a reset connection; a larger body is never read (memory and time stay bounded)."""


async def _drain(scope: Scope, receive: Receive) -> bool:
    """Read and drop the request's body if it is at most DRAIN_BYTES; True when the whole body was read."""
    declared = dict(scope.get("headers", [])).get(b"content-length", b"")
    if declared.isdigit() and int(declared) > DRAIN_BYTES:
        return False
    read = 0
    while read <= DRAIN_BYTES:
        message = await receive()
        if message["type"] != "http.request":
            return False
        read += len(message.get("body", b""))
        if not message.get("more_body", False):
            return True
    return False


def _too_large(limit: int) -> FaceSwapError:
    size = f"{limit / 1e6:.1f} MB" if limit >= 100_000 else f"{limit // 1024} KB"
    return FaceSwapError("media_too_large", f"The request body is larger than the {size} this route accepts; "
                         "send large files by URL or upload them first (POST /api/v3/media/uploads).")
