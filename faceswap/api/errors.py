"""One place that renders every REST error, in the dialect of the path it happened on.

- Segmind paths (`/v2/...`, `/v1/videofaceswap`): `{"error": "<message>"}` (the SDK reads `error` as the detail).
- WaveSpeed paths (`/api/v3/...`): `{"code": <status>, "message": "<message>", "data": null}`.
- Everything else (OpenOctopus, files, health): `{"error": {"code", "message", "retryable"}}`.

Auth failures, unknown routes, bad JSON and crashes go through the same renderer; a crash is logged with its trace
and answered with `internal_error`, never with the trace. The ASGI guard in front of the REST routes answers 413
for bodies over the limit and 415 for bodies that are not JSON, before they are read into memory.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Literal

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from faceswap.api.common import RateLimited
from faceswap.errors import FaceSwapError

log = logging.getLogger(__name__)

Dialect = Literal["openoctopus", "segmind", "wavespeed"]
API_PREFIXES = ("/v1/", "/v2/", "/api/v3/")


def dialect_for(path: str) -> Dialect:
    if path.startswith("/v2/") or path == "/v2" or path.rstrip("/") == "/v1/videofaceswap":
        return "segmind"
    if path.startswith("/api/"):
        return "wavespeed"
    return "openoctopus"


def render(path: str, error: FaceSwapError, status: int | None = None) -> JSONResponse:
    status = status or error.http_status
    dialect = dialect_for(path)
    body: dict[str, Any]
    if dialect == "segmind":
        body = {"error": error.message}
    elif dialect == "wavespeed":
        body = {"code": status, "message": error.message, "data": None}
    else:
        body = {"error": error.to_dict()}
    headers = {"Retry-After": str(error.retry_after)} if isinstance(error, RateLimited) else None
    return JSONResponse(body, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    async def faceswap_error(request: Request, exc: FaceSwapError) -> JSONResponse:
        return render(request.url.path, exc)

    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return render(request.url.path, validation_failure(exc))

    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if isinstance(exc.__cause__, FaceSwapError):  # FastAPI wraps errors raised while it reads the body
            return render(request.url.path, exc.__cause__)
        return render(request.url.path, *http_failure(request, exc.status_code))

    async def crash(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return render(request.url.path, FaceSwapError("internal_error"))

    app.add_exception_handler(FaceSwapError, faceswap_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, crash)


def validation_failure(exc: RequestValidationError) -> FaceSwapError:
    problems: list[str] = []
    first_field: str | None = None
    for error in exc.errors():
        location = [str(part) for part in error.get("loc", ()) if part != "body"]
        name = ".".join(location)
        kind = error.get("type", "")
        if kind == "json_invalid":
            problems.append("the body is not valid JSON")
            continue
        first_field = first_field or name or None
        if kind == "missing":
            message = "this field is required"
        elif kind in ("model_attributes_type", "dict_type") and not name:
            message = "the body must be a JSON object"
        else:
            message = str(error.get("msg", "is invalid")).removeprefix("Value error, ")
            if "input" in error and kind != "value_error" and not isinstance(error["input"], dict | list):
                message = f"{message} (got {_short(error['input'])})"
        problems.append(f"{name}: {message}" if name else message)
    text = "; ".join(dict.fromkeys(problems)) or "the request is invalid"
    return FaceSwapError("invalid_request", f"Invalid request: {text}", field=first_field)


def http_failure(request: Request, status: int) -> tuple[FaceSwapError, int]:
    method, path = request.method, request.url.path
    if status == 405:
        return FaceSwapError("invalid_request", f"{method} is not allowed on {path}."), 405
    if status == 404:
        return FaceSwapError("model_not_available", f"There is no endpoint {method} {path} on this server."), 404
    return FaceSwapError("invalid_request", f"The request could not be served (HTTP {status})."), status


def install_unknown_route_handlers(app: FastAPI, routers: list[APIRouter]) -> None:
    """Unknown paths under the REST prefixes answer in their dialect even when the UI is mounted at "/" (which
    would otherwise take every path); a known path with the wrong method answers 405."""

    async def unknown(request: Request) -> JSONResponse:
        scope = {"type": "http", "path": request.url.path, "root_path": "", "headers": []}
        allowed = sorted({method for router in routers for route in router.routes
                          for method in (getattr(route, "methods", None) or ())
                          if route.matches({**scope, "method": method})[0] == Match.FULL})
        if allowed:
            error, status = http_failure(request, 405)
            response = render(request.url.path, error, status=status)
            response.headers["Allow"] = ", ".join(allowed)
            return response
        return render(request.url.path, *http_failure(request, 404))

    methods = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]
    for prefix in ("/v1", "/v2", "/api"):
        app.add_api_route(prefix + "/{rest:path}", unknown, methods=methods, include_in_schema=False)


class RequestGuard:
    """ASGI middleware for the REST prefixes: 413 over `max_body` bytes, 415 for a POST body that is not JSON.

    The size is checked on the Content-Length header and again while the body streams in (chunked bodies).
    Upload PUTs are limited by their own ticket, not here.
    """

    def __init__(self, app: ASGIApp, *, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(API_PREFIXES) or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        headers = {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope["headers"]}
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > self.max_body:
            await self._reject(scope, receive, send, self._too_large())
            return
        content_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if content_type and length != "0" and not (content_type == "application/json"
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
                if received > self.max_body:
                    raise self._too_large()
            return message

        await self.app(scope, limited_receive, send)

    def _too_large(self) -> FaceSwapError:
        return FaceSwapError("media_too_large", f"The request body is larger than the {self.max_body / 1e6:.0f} MB "
                             "this server accepts; send large files by URL or upload them first.")

    async def _reject(self, scope: Scope, receive: Receive, send: Send, error: FaceSwapError) -> None:
        response = render(scope.get("path", ""), error)
        response.headers["Connection"] = "close"
        await response(scope, receive, send)


def _short(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
