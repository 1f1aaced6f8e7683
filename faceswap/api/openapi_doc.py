"""The OpenAPI document lists the status codes each REST route really answers, in its dialect's error shape.

FastAPI documents 200 and a 422 validation body by default; this server answers validation failures with 400 (in
the dialect's shape), refuses keys, sizes and media types in the guard (401, 413, 415), limits creation (429) and
answers unknown ids with 404. `install_openapi` replaces the generated responses of every REST operation with
those, so a client generator (or schemathesis) sees what really comes back.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from faceswap.api.errors import API_PREFIXES, dialect_for
from faceswap.api.guard import MEDIA_ROUTES

_SCHEMAS: dict[str, dict[str, Any]] = {
    "OpenOctopusError": {"type": "object", "required": ["error"], "properties": {"error": {
        "type": "object", "required": ["code", "message", "retryable"],
        "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "retryable": {"type": "boolean"}}}}},
    "SegmindError": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
    "WaveSpeedError": {"type": "object", "required": ["code", "message", "data"], "properties": {
        "code": {"type": "integer"}, "message": {"type": "string"}, "data": {"type": "null"}}},
}
_SCHEMA_FOR = {"openoctopus": "OpenOctopusError", "segmind": "SegmindError", "wavespeed": "WaveSpeedError"}
_WHY = {400: "Invalid request (bad field, bad JSON, a refused URL)", 401: "Missing or invalid API key",
        404: "Unknown id, route or model", 409: "The task was cancelled", 413: "Body, inline data or file too large",
        415: "Not JSON, or media this server cannot read", 422: "The task failed (its error is in the body)",
        429: "Rate or quota limit reached (see Retry-After)", 500: "Unexpected server error",
        502: "A step of the job failed", 503: "Temporarily unavailable", 504: "A download or the job timed out"}
_RATE_LIMITED = ("/v1/videos/generations", "/v2/videofaceswap", "/v1/videofaceswap",
                 "/api/v3/wavespeed-ai/video-face-swap", "/api/v3/media/uploads")
_SYNC = ("/v1/videofaceswap",)
"""Routes that wait for the job and answer its error with the job's own status."""
_FAILED_TASK = ("/v2/requests/{request_id}/status", "/v2/requests/{request_id}")


def statuses(method: str, path: str, *, keyed: bool, has_body: bool) -> list[int]:
    codes = {400, 404}
    if keyed:
        codes.add(401)
    if has_body or method in ("post", "put", "patch"):
        codes.update((413, 415))
    if path in _RATE_LIMITED:
        codes.add(429)
    if path in MEDIA_ROUTES:
        codes.update((413, 415))
    if path in _SYNC:
        codes.update((409, 422, 500, 502, 503, 504))
    if path in _FAILED_TASK:
        codes.add(422)
    if path.startswith("/api/v3/media/uploads/"):
        codes.update((401, 413))
    return sorted(codes)


def install_openapi(app: FastAPI, *, keys_required: bool) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        document = get_openapi(title=app.title, version=app.version, description=app.description,
                               routes=app.routes)
        components = document.setdefault("components", {}).setdefault("schemas", {})
        components.update(_SCHEMAS)
        for name in ("HTTPValidationError", "ValidationError"):
            components.pop(name, None)
        for path, operations in document.get("paths", {}).items():
            if not path.startswith(API_PREFIXES):
                continue
            for method, operation in operations.items():
                _document(operation, method, path, keys_required=keys_required)
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def _document(operation: dict[str, Any], method: str, path: str, *, keys_required: bool) -> None:
    responses = operation.setdefault("responses", {})
    responses.pop("422", None)  # FastAPI's validation body, which this server never sends
    keyed = keys_required and not path.startswith(("/v1/files/", "/api/v3/media/uploads/"))
    schema = {"$ref": f"#/components/schemas/{_SCHEMA_FOR[dialect_for(path)]}"}
    for status in statuses(method, path, keyed=keyed, has_body="requestBody" in operation):
        entry = responses.setdefault(str(status), {"description": _WHY[status]})
        entry.setdefault("content", {})["application/json"] = {"schema": schema}
        if status == 429:
            entry["headers"] = {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait"}}
        if status == 422 and path in _FAILED_TASK:
            entry["content"]["application/json"] = {"schema": {"type": "object", "required": [
                "request_id", "status", "error"], "properties": {"request_id": {"type": "string"},
                "status": {"type": "string"}, "error": {"type": "string"}, "error_code": {"type": "string"}}}}
