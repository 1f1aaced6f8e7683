"""What every REST dialect shares: the app context, API keys, the creation rate limit, absolute URLs, client
inputs, and waiting for a job in sync mode.

Rules that hold at every door (DESIGN §6): a client never names a local path (inputs are http(s) URLs, data URIs
or base64, and URLs pointing at this server's own `/v1/files/{id}` are read from the store, not fetched); URLs we
hand out are absolute; only job creation is rate limited.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from faceswap.api.fields import MaskAreas, MaskPadding, MaskRegions, MaskTypes, Percent, PixelBoost
from faceswap.config import Settings
from faceswap.errors import FaceSwapError
from faceswap.jobs import Job, JobService
from faceswap.media.fetch import precheck_url
from faceswap.media.inputs import decode_inline, is_url
from faceswap.options import Restore, SwapOptions, SwapperChoice

log = logging.getLogger(__name__)

SYNC_POLL_S = 0.25
_OWN_FILE = re.compile(r"/v1/files/(?P<id>[A-Za-z0-9_-]{32})")


class RateLimited(FaceSwapError):
    def __init__(self, retry_after: float) -> None:
        super().__init__("rate_limited", f"Too many tasks created; retry in {max(1, round(retry_after))} s.")
        self.retry_after = max(1, round(retry_after))


@dataclass
class RateLimiter:
    """A token bucket per caller: `per_minute` creations, refilled evenly; 0 or less turns the limit off."""

    per_minute: int
    clock: Any = time.monotonic
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, caller: str) -> None:
        if self.per_minute <= 0:
            return
        rate = self.per_minute / 60.0
        now = self.clock()
        with self._lock:
            tokens, seen = self._buckets.get(caller, (float(self.per_minute), now))
            tokens = min(float(self.per_minute), tokens + (now - seen) * rate)
            if tokens < 1.0:
                self._buckets[caller] = (tokens, now)
                raise RateLimited((1.0 - tokens) / rate)
            self._buckets[caller] = (tokens - 1.0, now)
            if len(self._buckets) > 10_000:  # forget idle callers (a full bucket is the default anyway)
                self._buckets = {key: value for key, value in self._buckets.items() if now - value[1] < 120}


@dataclass
class ApiContext:
    service: JobService
    settings: Settings
    limiter: RateLimiter
    uploads: Any = None
    """The upload-ticket quota (`faceswap.api.quotas.UploadQuota`); None: no quota."""


def context(request: Request) -> ApiContext:
    return request.app.state.api


# -- keys ---------------------------------------------------------------------------------------------------------

def presented_key(request: Request) -> str | None:
    return presented_key_in(request.headers)


def presented_key_in(headers: Mapping[str, str]) -> str | None:
    """The key in `Authorization: Bearer <key>` or `x-api-key` (header names in lower case)."""
    header = headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    key = headers.get("x-api-key", "").strip()
    return key or None


def check_key(settings: Settings, key: str | None) -> str | None:
    """The owner tag (a hash of the key), or None when the server runs without keys.

    Missing key: 401 `unauthorized`; a key that is not configured: 401 `invalid_api_key`.
    """
    if not settings.api_keys:
        return None
    if key is None:
        raise FaceSwapError("unauthorized", "This server needs an API key: send `Authorization: Bearer <key>` or "
                            "`x-api-key: <key>`.")
    if not any(hmac.compare_digest(key.encode(), known.encode()) for known in settings.api_keys):
        raise FaceSwapError("invalid_api_key", "The API key is invalid or inactive.")
    return hashlib.sha256(key.encode()).hexdigest()[:24]


def authenticate(request: Request) -> str | None:
    """The caller's owner tag (see `check_key`); the REST routes depend on it."""
    return check_key(context(request).settings, presented_key(request))


def caller_of(request: Request, owner: str | None) -> str:
    """Whom limits count against: the key's owner tag, else the client's address."""
    return owner or f"ip:{request.client.host if request.client else 'unknown'}"


def limit_creation(request: Request, owner: str | None) -> None:
    context(request).limiter.take(caller_of(request, owner))


def owned_job(ctx: ApiContext, job_id: str, owner: str | None) -> Job:
    """The job, unless another key created it (then it reads as unknown, like any id the caller cannot see)."""
    job = ctx.service.get(job_id)
    if job.owner != owner and owner is not None:
        raise FaceSwapError("task_not_found", f"No task with id {job_id!r}.")
    return job


# -- URLs ---------------------------------------------------------------------------------------------------------

def base_url(request: Request, settings: Settings) -> str:
    return settings.public_base_url or str(request.base_url).rstrip("/")


def file_url(request: Request, settings: Settings, file_id: str) -> str:
    return f"{base_url(request, settings)}/v1/files/{file_id}"


def own_file_id(url: str, request: Request, settings: Settings) -> str | None:
    """The file id when `url` is one of this server's `/v1/files/{id}` links (request host or public URL)."""
    parts = urlsplit(url.strip())
    for base in {str(request.base_url), settings.public_base_url or ""}:
        if not base:
            continue
        base_parts = urlsplit(base)
        prefix = base_parts.path.rstrip("/")
        if parts.netloc.lower() != base_parts.netloc.lower() or not parts.path.startswith(prefix):
            continue
        match = _OWN_FILE.fullmatch(parts.path[len(prefix):])
        if match:
            return match["id"]
    return None


# -- inputs and options -------------------------------------------------------------------------------------------

def client_input(value: str, *, field: str, request: Request, ctx: ApiContext) -> str:
    """A client's input reference made safe for the job: an external URL (checked now, fetched by the worker), or
    a reference (`blob://<id>`) to our own file or to the stored inline data. Local paths are refused. Runs in a
    worker thread."""
    text = value.strip()
    if is_url(text):
        file_id = own_file_id(text, request, ctx.settings)
        if file_id is not None:
            return ctx.service.input_ref(file_id)
        precheck_url(text, ctx.settings, field=field)
        return text
    limit = inline_limit(ctx.settings)
    if len(text) // 4 * 3 > limit + 3 * 1024:  # the payload alone, before decoding it (a data URI's header is short)
        raise FaceSwapError("media_too_large", f"{field}: inline data (data URI or base64) is limited to "
                            f"{limit / 1e6:.1f} MB; send larger files by URL or through an upload "
                            "(POST /api/v3/media/uploads).", field=field)
    decoded = decode_inline(text, ctx.settings, field=field)
    if decoded is None:
        raise FaceSwapError("invalid_request", f"{field}: give an http(s) URL, a data URI or base64 data "
                            "(paths on the server are not accepted).", field=field)
    data, suffix = decoded
    return ctx.service.input_ref(ctx.service.store_file(data, filename=f"{field.rsplit('.', 1)[-1]}{suffix}"))


def inline_limit(settings: Settings) -> int:
    """The largest decoded media a JSON body may carry inline, as a data URI or base64 (FACESWAP_MAX_INLINE_MB,
    never above FACESWAP_MAX_UPLOAD_MB)."""
    return min(settings.max_inline_bytes, settings.max_upload_bytes)


def build_options(fields: Mapping[str, Any], names: Mapping[str, str]) -> SwapOptions:
    """`SwapOptions.parse`, with option names in error messages replaced by the dialect's field names."""
    try:
        return SwapOptions.parse(dict(fields))
    except FaceSwapError as exc:
        message = exc.message
        for option, name in names.items():
            # "field: problem" always names the field; a bare word is renamed only when it cannot be plain English
            pattern = rf"(?<![\w.]){re.escape(option)}(?=:)" if "_" not in option else rf"(?<![\w.]){option}(?!\w)"
            message = re.sub(pattern, name, message)
        raise FaceSwapError(exc.code, message, field=names.get(exc.field or "", exc.field)) from exc


# -- results ------------------------------------------------------------------------------------------------------

def output_url(request: Request, ctx: ApiContext, job: Job) -> str | None:
    if job.status != "succeeded" or not job.output_file_id:
        return None
    return file_url(request, ctx.settings, job.output_file_id)


def output_mime(ctx: ApiContext, job: Job) -> str:
    try:
        return ctx.service.file_info(job.output_file_id or "").content_type
    except FaceSwapError:
        return "video/mp4"


def output_base64(ctx: ApiContext, job: Job) -> str:
    path = ctx.service.file_path(job.output_file_id or "")
    return base64.b64encode(path.read_bytes()).decode("ascii")


def iso(moment: Any) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment is not None else None


async def wait_for_job(request: Request, ctx: ApiContext, job: Job) -> Job:
    """Block (asynchronously) until the job finishes; a client that hangs up cancels it."""
    while not job.finished:
        await asyncio.sleep(SYNC_POLL_S)
        if await request.is_disconnected():
            log.info("job %s: the sync caller went away; cancelling", job.id)
            await run_in_threadpool(ctx.service.cancel, job.id)
            return job
        job = await run_in_threadpool(ctx.service.get, job.id)
    return job


# -- quality extensions (every dialect) ----------------------------------------------------------------------------

class QualityExtensions(BaseModel):
    """Extension fields every dialect accepts (no hosted service has them): the swap model, pixel boost, masks, the
    restorer and its blend.
    They are checked by `SwapOptions` (choices: `faceswap.options`), so errors name the same field; the schema
    states the same choices and bounds (`faceswap.api.fields`)."""

    swapper: SwapperChoice | None = Field(None, description="Extension: the neural swap model (default "
                                                            "inswapper_128).")
    pixel_boost: PixelBoost = Field(
        None, description="Extension: 'native' or a crop size (256…1024, a multiple of the swapper's); 512 with "
                          "inswapper_128 runs the model 16 times per face.")
    swapper_weight: float | None = Field(
        None, ge=0, le=1, description="Extension: identity strength 0–1 (default 0.5, as the swapper makes it); "
                                      "embedding swappers only, refused for blendswap_256, uniface_256 and the "
                                      "classic engine.")
    mask: MaskTypes = Field(
        None, description="Extension: masks combined by minimum, from box, occlusion, region, area ('box,occlusion').")
    mask_blur: float | None = Field(None, ge=0, le=1, description="Extension: box mask edge blur, 0–1 (default 0.3).")
    mask_padding: MaskPadding = Field(
        None, description="Extension: box mask padding in %: 'top,right,bottom,left' or one value.")
    mask_regions: MaskRegions = Field(
        None, description="Extension: face-parsing regions the region mask swaps (leave out mouth and the lips to "
                          "keep the target's mouth).")
    mask_areas: MaskAreas = Field(
        None, description="Extension: landmark areas the area mask swaps, from upper-face, lower-face, mouth.")
    restore: Restore | None = Field(
        None, description="Extension: the face restorer by name: none, gfpgan, codeformer, gpen_bfr_256, gpen_bfr_512, "
                          "gpen_bfr_1024, gpen_bfr_2048, restoreformer_plus_plus (Segmind: overrides face_restore).")
    restore_blend: Percent = Field(
        None, description="Extension: 0–100, how much of the restored face is mixed over the swapped one when a "
                          "restorer runs (0 leaves it unrestored, 100 the default: the restorer's output).")


def quality_options(body: QualityExtensions) -> dict[str, Any]:
    """The quality extension fields the client sent, as SwapOptions fields (unsent ones keep the defaults)."""
    fields = body.model_dump(include=set(QualityExtensions.model_fields), exclude_unset=True)
    return {name: str(value) if name == "pixel_boost" else value for name, value in fields.items()
            if value is not None}
