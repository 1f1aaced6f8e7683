"""WaveSpeed dialect (upstream of OpenOctopus), shaped for the official `wavespeed` SDK given
`base_url=http://HOST:PORT`.

`POST /api/v3/wavespeed-ai/video-face-swap` → `{code:200, message, data:{id, model, status:"created", outputs:[],
urls:{get}, created_at}}`; `GET /api/v3/predictions/{id}/result` → the prediction, HTTP 200 in every state (a failed
task is `status:"failed"` with a string `error`). Uploads are two steps: `POST /api/v3/media/uploads` gives a
single-use absolute PUT URL and the `download_url`; the PUT (no API key: its token is the capability) stores the
bytes. Face indices count largest face first. Errors are `{code, message, data: null}` with the HTTP status.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from faceswap.api.common import (
    ApiContext,
    QualityExtensions,
    authenticate,
    base_url,
    build_options,
    caller_of,
    client_input,
    context,
    file_url,
    iso,
    limit_creation,
    output_base64,
    output_mime,
    output_url,
    owned_job,
    quality_options,
    wait_for_job,
)
from faceswap.api.fields import JsonInt, combination_rules, media
from faceswap.errors import FaceSwapError
from faceswap.jobs import Job
from faceswap.options import EngineChoice

MODEL = "wavespeed-ai/video-face-swap"
DIALECT = "wavespeed"
_STATUS = {"queued": "created", "processing": "processing", "succeeded": "completed", "failed": "failed",
           "cancelled": "cancelled"}
_GENDERS = {"": "any", "any": "any", "all": "any", "none": "any", "no": "any", "male": "male", "female": "female"}

router = APIRouter(tags=["WaveSpeed"])


class FaceSwapInput(QualityExtensions):
    model_config = ConfigDict(extra="ignore", strict=True, json_schema_extra={"allOf": combination_rules(
        classic_genders={"target_gender": ["", "any", "all", "none", "no"]})})

    video: str = media("Source video: an http(s) URL (e.g. an upload's download_url), data URI or base64.")
    face_image: str = media("Reference face: URL, data URI or base64.")
    target_index: JsonInt = Field(0, ge=0, le=10, description="Which face in the video, 0 = the largest.")
    target_gender: Literal["", "any", "all", "none", "no", "male", "female"] | None = Field(
        None, description="Only replace faces of this gender.")
    enable_sync_mode: bool = Field(False, description="Wait for the result in this request.")
    enable_base64_output: bool = Field(False, description="Give outputs as base64 data URIs instead of URLs.")
    engine: EngineChoice = Field("auto", description="Extension: 'auto', 'neural' or 'classic'.")


class UploadTicketRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    filename: str = Field(min_length=1, max_length=255)
    size: JsonInt = Field(gt=0, description="Exact size of the file in bytes.")
    content_type: str | None = Field(None, max_length=255)


_NAMES = {"video": "video", "face": "face_image", "target_faces": "target_index", "target_gender": "target_gender",
          "engine": "engine"}


@router.post(f"/api/v3/{MODEL}", summary="Submit a face swap")
async def submit(body: FaceSwapInput, request: Request, owner: str | None = Depends(authenticate)) -> dict[str, Any]:
    ctx = context(request)
    limit_creation(request, owner)
    job = await run_in_threadpool(_submit, body, request, ctx, owner)
    if body.enable_sync_mode:
        job = await wait_for_job(request, ctx, job)
    return _envelope(await run_in_threadpool(prediction, job, request, ctx))


@router.get("/api/v3/predictions/{prediction_id}/result", summary="Get a prediction's result")
async def result(prediction_id: str, request: Request, owner: str | None = Depends(authenticate)) -> dict[str, Any]:
    ctx = context(request)
    job = await run_in_threadpool(owned_job, ctx, prediction_id, owner)
    return _envelope(await run_in_threadpool(prediction, job, request, ctx))


@router.get("/api/v3/predictions/{prediction_id}", summary="Get a prediction (same as /result)")
async def get_prediction(prediction_id: str, request: Request,
                         owner: str | None = Depends(authenticate)) -> dict[str, Any]:
    return await result(prediction_id, request, owner)


@router.post("/api/v3/media/uploads", summary="Ask for an upload link")
async def upload_ticket(body: UploadTicketRequest, request: Request,
                        owner: str | None = Depends(authenticate)) -> dict[str, Any]:
    ctx = context(request)
    limit_creation(request, owner)
    handle = ctx.uploads.admit(caller_of(request, owner), body.size) if ctx.uploads else None
    try:
        info, token = await run_in_threadpool(
            lambda: ctx.service.reserve_upload(filename=body.filename, size=body.size, content_type=body.content_type))
    except BaseException:
        if handle:
            ctx.uploads.closed(handle)
        raise
    file_id = info.id
    if handle:
        ctx.uploads.bind(handle, file_id)
    base = base_url(request, ctx.settings)
    return _envelope({
        "upload": {"method": "PUT", "url": f"{base}/api/v3/media/uploads/{file_id}?token={token}",
                   "headers": {"Content-Type": info.content_type}},
        "download_url": file_url(request, ctx.settings, file_id),
        "expires_in": int(ctx.settings.retention_s),
    })


@router.put("/api/v3/media/uploads/{file_id}", summary="Send the bytes of an upload (no API key: the token is the "
            "capability)")
async def upload_bytes(file_id: str, request: Request, token: str = Query(min_length=1)) -> dict[str, Any]:
    ctx = context(request)
    info, target = await run_in_threadpool(ctx.service.blobs.open_upload, file_id, token)
    expected = info.expected_size or 0
    written = 0
    try:
        with target.open("wb") as out:
            async for chunk in request.stream():
                written += len(chunk)
                if written > expected:
                    raise FaceSwapError("invalid_request", f"The upload is longer than the {expected} bytes its "
                                        "ticket announced; request a new upload link.")
                await run_in_threadpool(out.write, chunk)
    except BaseException:
        ctx.service.blobs.delete(file_id)
        raise
    finally:
        if ctx.uploads:
            ctx.uploads.closed(file_id)
    await run_in_threadpool(ctx.service.blobs.finish_upload, file_id, written)
    return _envelope({"download_url": file_url(request, ctx.settings, file_id), "size": written})


def _submit(body: FaceSwapInput, request: Request, ctx: ApiContext, owner: str | None) -> Job:
    options = build_options({
        "video": client_input(body.video, field="video", request=request, ctx=ctx),
        "face": client_input(body.face_image, field="face_image", request=request, ctx=ctx),
        "target_faces": [body.target_index],
        "order": "largest_first",
        "target_gender": _GENDERS[body.target_gender or ""],
        "engine": body.engine,
        **quality_options(body),
    }, _NAMES)
    return ctx.service.submit(options, dialect=DIALECT, owner=owner, meta={"base64": body.enable_base64_output})


def prediction(job: Job, request: Request, ctx: ApiContext) -> dict[str, Any]:
    outputs: list[str] = []
    if job.status == "succeeded":
        url = output_url(request, ctx, job)
        if job.meta.get("base64"):
            url = f"data:{output_mime(ctx, job)};base64,{output_base64(ctx, job)}"
        outputs = [url] if url else []
    inference_ms = (round((job.finished_at - job.started_at).total_seconds() * 1000)
                    if job.started_at and job.finished_at else None)
    return {
        "id": job.id,
        "model": MODEL,
        "status": _STATUS[job.status],
        "outputs": outputs,
        "urls": {"get": f"{base_url(request, ctx.settings)}/api/v3/predictions/{job.id}/result"},
        "has_nsfw_contents": [],
        "error": (job.error or {}).get("message", "") if job.status in ("failed", "cancelled") else "",
        "error_code": (job.error or {}).get("code") if job.status in ("failed", "cancelled") else None,
        "progress": round(job.progress, 4),
        "queue_position": job.position,
        "created_at": iso(job.created_at),
        "timings": {"inference": inference_ms},
    }


def _envelope(data: dict[str, Any]) -> dict[str, Any]:
    return {"code": 200, "message": "success", "data": data}
