"""The ASGI app: REST dialects + files + health, the job service in the app's lifespan, and the Gradio UI at "/".

`create_app` is the one factory (`python app.py` serves it; `uvicorn --factory faceswap.server:create_app` works
too). Models load lazily, on the first job, so the app answers within seconds of starting. Without the UI, `GET /`
is a JSON health check; with it, "/" is the Gradio page and `GET /health` is the health check.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from faceswap import __version__
from faceswap.api import files, openoctopus, segmind, wavespeed
from faceswap.api.common import ApiContext, RateLimiter
from faceswap.api.errors import allowed_methods, install_error_handlers, install_unknown_route_handlers
from faceswap.api.guard import RequestGuard
from faceswap.api.openapi_doc import install_openapi
from faceswap.api.quotas import UploadQuota
from faceswap.config import Settings
from faceswap.jobs import JobService

log = logging.getLogger(__name__)

_DESCRIPTION = """Self-hosted video face swap. The same job queue speaks three hosted services' dialects:
**OpenOctopus** (`/v1/videos/generations`, `/v1/tasks/{id}`), **Segmind** (`/v2/videofaceswap`, sync
`/v1/videofaceswap`) and **WaveSpeed** (`/api/v3/wavespeed-ai/video-face-swap`, uploads). When API keys are
configured, send `Authorization: Bearer <key>` or `x-api-key: <key>`. Result files (`/v1/files/{id}`) need no key:
their unguessable id is the capability."""


def create_app(settings: Settings | None = None, *, with_ui: bool = True, runtime: Any = None,
               runner: Any = None) -> FastAPI:
    """Build the app. `runtime` and `runner` default to the real ones (tests inject a fake runner)."""
    settings = settings or Settings.from_env()
    if runtime is None:
        from faceswap.runtime import Runtime

        runtime = Runtime(settings)
    service = JobService(runtime, settings, runner=runner)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(service.start)
        try:
            yield
        finally:
            await run_in_threadpool(service.close)

    app = FastAPI(title="faceswap", version=__version__, description=_DESCRIPTION, lifespan=lifespan,
                  docs_url=None, openapi_url="/openapi.json", redoc_url=None)
    app.state.api = ApiContext(service, settings, RateLimiter(settings.rate_limit_per_minute),
                               UploadQuota(settings.max_open_uploads, settings.max_open_upload_bytes,
                                           settings.retention_s))
    app.state.service, app.state.runtime, app.state.settings = service, runtime, settings
    install_error_handlers(app)

    async def health(request: Request) -> dict[str, Any]:
        return {"status": "ok", "service": "faceswap", "version": __version__,
                "queue": {"size": await run_in_threadpool(service.queue_size), "concurrency": service.concurrency()}}

    install_offline_docs(app)
    app.add_api_route("/health", health, methods=["GET"], summary="Health check", tags=["Health"])
    app.add_api_route("/health", health, methods=["HEAD"], include_in_schema=False)
    routers = [openoctopus.router, segmind.router, wavespeed.router, files.router]
    for router in routers:
        app.include_router(router)
    install_unknown_route_handlers(app, routers)
    app.add_middleware(RequestGuard, settings=settings, allowed_methods=lambda path: allowed_methods(routers, path))
    if settings.trusted_proxies:  # outermost, so every layer sees the forwarded client address
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=list(settings.trusted_proxies))
    install_openapi(app, keys_required=bool(settings.api_keys))
    if not (with_ui and _mount_ui(app, service, runtime, settings)):
        app.add_api_route("/", health, methods=["GET"], summary="Health check", tags=["Health"],
                          operation_id="health_root")
        app.add_api_route("/", health, methods=["HEAD"], include_in_schema=False)
    return app


def _mount_ui(app: FastAPI, service: JobService, runtime: Any, settings: Settings) -> bool:
    try:
        import gradio as gr

        from faceswap.ui import PAGE_CSS, build_ui
    except ImportError as exc:
        log.warning("the Gradio UI is not available (%s); serving the REST API only", exc)
        return False
    gr.mount_gradio_app(app, build_ui(service, runtime, settings), path="/", auth=settings.ui_auth, css=PAGE_CSS)
    return True


DOCS_ASSETS = {"swagger-ui-bundle.js": "application/javascript", "swagger-ui.css": "text/css",
               "favicon-32x32.png": "image/png"}
"""Swagger UI's files, served from the `fastapi-swagger` package so /docs works with no internet (FastAPI's
default page loads them from a CDN)."""


def install_offline_docs(app: FastAPI, docs_url: str = "/docs") -> None:
    """Swagger UI at `docs_url`, its assets at `docs_url`/assets/... from the installed package."""
    assets = resources.files("fastapi_swagger.resources")

    async def docs_page(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(openapi_url=f"{root}{app.openapi_url}", title=f"{app.title} - API docs",
                                   swagger_js_url=f"{root}{docs_url}/assets/swagger-ui-bundle.js",
                                   swagger_css_url=f"{root}{docs_url}/assets/swagger-ui.css",
                                   swagger_favicon_url=f"{root}{docs_url}/assets/favicon-32x32.png")

    async def docs_asset(name: str) -> Response:
        if name not in DOCS_ASSETS:
            return Response(status_code=404)
        return Response(assets.joinpath(name).read_bytes(), media_type=DOCS_ASSETS[name],
                        headers={"Cache-Control": "public, max-age=86400"})

    app.add_api_route(docs_url, docs_page, methods=["GET"], include_in_schema=False)
    app.add_api_route(f"{docs_url}/assets/{{name}}", docs_asset, methods=["GET"], include_in_schema=False)


def is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def exposure_warnings(host: str, settings: Settings, *, with_ui: bool = True) -> list[str]:
    """What is left open when the server listens on `host` (empty on loopback)."""
    if is_loopback(host):
        return []
    warnings = []
    if not settings.api_keys:
        warnings.append(f"listening on {host} with no API keys: anyone who can reach this port can use the REST "
                        "API (set FACESWAP_API_KEYS=key1,key2)")
    if with_ui and settings.ui_auth is None:
        warnings.append(f"listening on {host} with no UI login: anyone who can reach this port can use the web app "
                        "and its Gradio API (set FACESWAP_UI_AUTH=user:password)")
    return warnings
