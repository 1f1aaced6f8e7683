"""OpenOctopus dialect (seed 000): create a generation task, poll it, cancel it.

`POST /v1/videos/generations` → `{id, status, model}` (sync mode: the final task). `GET /v1/tasks/{id}` answers 200
in every state with the normalised task (queue object, `output_payload` once succeeded, `error` and
`error_message` once failed or cancelled). `POST /v1/tasks/{id}/cancel` answers the task; a finished task comes back
unchanged. Face indices count largest face first, as the hosted service does.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from faceswap.api.common import (
    ApiContext,
    QualityExtensions,
    authenticate,
    build_options,
    client_input,
    context,
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

MODEL = "openoctopus/video-face-swap"
UPSTREAM_MODEL = "wavespeed-ai/video-face-swap"
DIALECT = "openoctopus"

router = APIRouter(tags=["OpenOctopus"])


class GenerationInput(QualityExtensions):
    model_config = ConfigDict(extra="ignore", strict=True,
                              json_schema_extra={"allOf": combination_rules(classic_genders={})})

    video: str = media("Source video: an http(s) URL, a data URI or base64.")
    face_image: str = media("Reference face to swap into the video: URL, data URI or base64.")
    target_index: JsonInt = Field(0, ge=0, le=10, description="Which face in the video, 0 = the largest.")
    enable_sync_mode: bool = Field(False, description="Wait for the result and answer the final task.")
    enable_base64_output: bool = Field(False, description="Give the result as a data URI instead of a URL.")
    engine: EngineChoice = Field("auto", description="Extension: 'auto', 'neural' or 'classic'.")


class GenerationRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    model: str = Field(description=f"Model slug: {MODEL!r} (another answers 404).", examples=[MODEL],
                       json_schema_extra={"enum": [MODEL]})
    prompt: str | None = Field(None, description="Accepted for compatibility; face swap does not use it.")
    input: GenerationInput


_NAMES = {"video": "input.video", "face": "input.face_image", "target_faces": "input.target_index",
          "engine": "input.engine"}


@router.post("/v1/videos/generations", summary="Create a face-swap task")
async def create_generation(body: GenerationRequest, request: Request,
                            owner: str | None = Depends(authenticate)) -> dict[str, Any]:
    ctx = context(request)
    if body.model != MODEL:
        raise FaceSwapError("model_not_available", f"The model {body.model!r} is not served here; use {MODEL!r}.")
    limit_creation(request, owner)
    job = await run_in_threadpool(_submit, body.input, request, ctx, owner)
    if body.input.enable_sync_mode:
        job = await wait_for_job(request, ctx, job)
        return await run_in_threadpool(task_body, job, request, ctx)
    return {"id": job.id, "status": job.status, "model": MODEL}


@router.get("/v1/tasks/{task_id}", summary="Get a task")
async def get_task(task_id: str, request: Request, owner: str | None = Depends(authenticate)) -> dict[str, Any]:
    ctx = context(request)
    job = await run_in_threadpool(owned_job, ctx, task_id, owner)
    return await run_in_threadpool(task_body, job, request, ctx)


@router.post("/v1/tasks/{task_id}/cancel", summary="Cancel a task")
async def cancel_task(task_id: str, request: Request, owner: str | None = Depends(authenticate)) -> dict[str, Any]:
    ctx = context(request)
    await run_in_threadpool(owned_job, ctx, task_id, owner)
    job = await run_in_threadpool(ctx.service.cancel, task_id)
    return await run_in_threadpool(task_body, job, request, ctx)


def _submit(data: GenerationInput, request: Request, ctx: ApiContext, owner: str | None) -> Job:
    options = build_options({
        "video": client_input(data.video, field="input.video", request=request, ctx=ctx),
        "face": client_input(data.face_image, field="input.face_image", request=request, ctx=ctx),
        "target_faces": [data.target_index],
        "order": "largest_first",
        "engine": data.engine,
        **quality_options(data),
    }, _NAMES)
    return ctx.service.submit(options, dialect=DIALECT, owner=owner,
                              meta={"model": MODEL, "base64": data.enable_base64_output})


def task_body(job: Job, request: Request, ctx: ApiContext) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": job.id,
        "status": job.status,
        "model": job.meta.get("model", MODEL),
        "capability": "video_generation",
        "progress": round(job.progress, 4),
        "queue": {
            "enabled": True,
            "position": job.position,
            "size": ctx.service.queue_size(),
            "concurrency": ctx.service.concurrency(),
            "upstreamQueueSupported": True,
            "upstreamCancelSupported": True,
        },
        "output_payload": None,
        "error": None,
        "created_at": iso(job.created_at),
        "started_at": iso(job.started_at),
        "finished_at": iso(job.finished_at),
    }
    if job.status == "succeeded":
        mime = output_mime(ctx, job)
        url = (f"data:{mime};base64,{output_base64(ctx, job)}" if job.meta.get("base64")
               else output_url(request, ctx, job))
        body["output_payload"] = {
            "format": "openoctopus.video.output.v1",
            "assets": [{"type": "video", "url": url, "mimeType": mime}],
            "raw": {"id": job.id, "model": UPSTREAM_MODEL, "status": "completed", "outputs": [url],
                    "report": job.report},
        }
    elif job.error is not None:
        body["error"] = job.error
        body["error_message"] = job.error.get("message", "The task failed.")
    return body
