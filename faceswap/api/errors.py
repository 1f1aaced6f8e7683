"""One place that renders every REST error, in the dialect of the path it happened on.

- Segmind paths (`/v2/...`, `/v1/videofaceswap`): `{"error": "<message>"}` (the SDK reads `error` as the detail).
- WaveSpeed paths (`/api/v3/...`): `{"code": <status>, "message": "<message>", "data": null}`.
- Everything else (OpenOctopus, files, health): `{"error": {"code", "message", "retryable"}}`.

Auth failures, unknown routes, bad JSON and crashes go through the same renderer; a crash is logged with its trace
and answered with `internal_error`, never with the trace. The ASGI guard in front of the REST routes
(`faceswap.api.guard`) answers 401, 405, 413 and 415 before a body is read.
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
        response = render(request.url.path, *http_failure(request, exc.status_code))
        if exc.headers and "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
        return response

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


def allowed_methods(routers: list[APIRouter], path: str) -> list[str]:
    """The methods the routers serve on `path` (empty when no route has that path)."""
    scope = {"type": "http", "path": path, "root_path": "", "headers": []}
    return sorted({method for router in routers for route in router.routes
                   for method in (getattr(route, "methods", None) or ())
                   if route.matches({**scope, "method": method})[0] == Match.FULL})


def install_unknown_route_handlers(app: FastAPI, routers: list[APIRouter]) -> None:
    """Unknown paths under the REST prefixes answer in their dialect even when the UI is mounted at "/" (which
    would otherwise take every path); a known path with the wrong method answers 405."""

    async def unknown(request: Request) -> JSONResponse:
        allowed = allowed_methods(routers, request.url.path)
        if allowed:
            error, status = http_failure(request, 405)
            response = render(request.url.path, error, status=status)
            response.headers["Allow"] = ", ".join(allowed)
            return response
        return render(request.url.path, *http_failure(request, 404))

    methods = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]
    for prefix in ("/v1", "/v2", "/api"):
        app.add_api_route(prefix + "/{rest:path}", unknown, methods=methods, include_in_schema=False)


def _short(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
