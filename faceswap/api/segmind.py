"""Segmind dialect (seed 003), shaped for the official `segmind` SDK given `base_url=http://HOST:PORT/v1`.

Async (v2): `POST /v2/videofaceswap` → `{request_id, status:"QUEUED", status_url, response_url}` (absolute URLs);
`GET /v2/requests/{id}/status` and `GET /v2/requests/{id}` answer 200 while running and when COMPLETED, 422 with
`{request_id, status:"FAILED", error}` on failure — a cancelled job reads as FAILED, since only COMPLETED and FAILED
end the SDK's `wait()`. Sync (v1): `POST /v1/videofaceswap` answers the video bytes, or `{status, output}` JSON with
base64 when `base_64` is true. Errors are `{"error": "<message>"}`. Face indices count from the left; a
`face_restore` of true means CodeFormer; `detect_gender_*` "no" means any gender.

Decisions: fields the seed marks required but gives defaults for (`frame_load_cap`, `input_faces_index`,
`source_faces_index`) take those defaults when left out; only the two media inputs are required. `face_restore`
defaults to true, as in the seed, when the CodeFormer model is installed; without it, a request that leaves the
field out runs unrestored (the offline default), while an explicit `true` fails with `model_not_available` and the
command that installs the model.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from faceswap.api.common import (
    ApiContext,
    QualityExtensions,
    authenticate,
    base_url,
    build_options,
    client_input,
    context,
    limit_creation,
    output_base64,
    output_mime,
    output_url,
    owned_job,
    quality_options,
    wait_for_job,
)
from faceswap.api.fields import FaceIndices, JsonInt, combination_rules, index_rules, media
from faceswap.errors import FaceSwapError
from faceswap.jobs import Job
from faceswap.options import EngineChoice

DIALECT = "segmind"
SLUG = "videofaceswap"
_STATUS = {"queued": "QUEUED", "processing": "PROCESSING", "succeeded": "COMPLETED", "failed": "FAILED",
           "cancelled": "FAILED"}

router = APIRouter(tags=["Segmind"])

GenderChoice = Literal["no", "male", "female"]


class VideoFaceSwapRequest(QualityExtensions):
    model_config = ConfigDict(extra="ignore", strict=True, json_schema_extra={"allOf": combination_rules(
        classic_genders={"detect_gender_input": ["no"], "detect_gender_source": ["no"]})
        + index_rules(sources="source_faces_index", targets="input_faces_index")})

    source_img: str = media("Your face: an http(s) URL, a data URI or base64. A close-up works best.")
    video_input: str = media("The video (or GIF) whose face is replaced: URL, data URI or base64.")
    input_faces_index: FaceIndices = Field(
        "0", description="Video faces to replace, leftmost = 0; '0,2' for several, 'all' for every face. Each index "
                         "once; with several source faces, as many indices as source faces (else 400).")
    source_faces_index: FaceIndices = Field(
        "0", description="Faces of source_img to use, leftmost = 0; '0,1' pairs with input_faces_index '0,1'.")
    face_restore: bool | None = Field(
        None, description="Restore the swapped face (CodeFormer). Left out: true when the CodeFormer model is "
                          "installed, else false.")
    face_restore_visibility: float = Field(1.0, ge=0.1, le=1, description="Visibility of the restoration, 0.1–1.")
    codeformer_weight: float = Field(0.95, ge=0, le=1, description="CodeFormer weight, 0–1.")
    detect_gender_input: GenderChoice = Field("no", description="Only replace video faces of this gender.")
    detect_gender_source: GenderChoice = Field("no", description="Only take source faces of this gender.")
    frame_load_cap: JsonInt = Field(0, ge=0, le=500, description="Frames to process; 0 = the whole video.")
    base_64: bool = Field(False, description="Answer the output as base64 instead of a URL.")
    engine: EngineChoice = Field("auto", description="Extension: 'auto', 'neural' or 'classic'.")


_NAMES = {"video": "video_input", "face": "source_img", "target_faces": "input_faces_index",
          "source_faces": "source_faces_index", "restore_visibility": "face_restore_visibility",
          "codeformer_weight": "codeformer_weight", "target_gender": "detect_gender_input",
          "source_gender": "detect_gender_source", "frame_cap": "frame_load_cap", "engine": "engine"}


@router.post("/v2/videofaceswap", summary="Submit a face swap (async)")
async def submit(body: VideoFaceSwapRequest, request: Request,
                 owner: str | None = Depends(authenticate)) -> dict[str, Any]:
    ctx = context(request)
    limit_creation(request, owner)
    job = await run_in_threadpool(_submit, body, request, ctx, owner)
    base = base_url(request, ctx.settings)
    return {"request_id": job.id, "status": _STATUS[job.status], "status_url": f"{base}/v2/requests/{job.id}/status",
            "response_url": f"{base}/v2/requests/{job.id}", "queue_position": job.position}


@router.get("/v2/requests/{request_id}/status", summary="Poll a request's status")
async def status(request_id: str, request: Request, owner: str | None = Depends(authenticate)) -> JSONResponse:
    ctx = context(request)
    job = await run_in_threadpool(owned_job, ctx, request_id, owner)
    body: dict[str, Any] = {"request_id": job.id, "status": _STATUS[job.status]}
    if job.status in ("queued", "processing"):
        body.update(progress=round(job.progress, 4), queue_position=job.position)
    return _with_failure(job, body)


@router.get("/v2/requests/{request_id}", summary="Get a request's result")
async def result(request_id: str, request: Request, owner: str | None = Depends(authenticate)) -> JSONResponse:
    ctx = context(request)
    job = await run_in_threadpool(owned_job, ctx, request_id, owner)
    body: dict[str, Any] = {"request_id": job.id, "status": _STATUS[job.status]}
    if job.status == "succeeded":
        output = (await run_in_threadpool(output_base64, ctx, job) if job.meta.get("base64")
                  else output_url(request, ctx, job))
        body.update(output=output, metrics=_metrics(job))
    return _with_failure(job, body)


@router.post(f"/v1/{SLUG}", summary="Run a face swap and wait for the video (sync)",
             responses={200: {"content": {"video/mp4": {}, "image/gif": {}, "application/json": {}}}})
async def run_sync(body: VideoFaceSwapRequest, request: Request,
                   owner: str | None = Depends(authenticate)) -> Response:
    ctx = context(request)
    limit_creation(request, owner)
    job = await run_in_threadpool(_submit, body, request, ctx, owner)
    job = await wait_for_job(request, ctx, job)
    if job.status != "succeeded":
        raise _job_error(job)
    if body.base_64:
        return JSONResponse({"status": "COMPLETED", "output": await run_in_threadpool(output_base64, ctx, job),
                             "metrics": _metrics(job)})
    path = await run_in_threadpool(ctx.service.file_path, job.output_file_id or "")
    return Response(await run_in_threadpool(path.read_bytes), media_type=output_mime(ctx, job),
                    headers={"X-Request-Id": job.id})


def _submit(body: VideoFaceSwapRequest, request: Request, ctx: ApiContext, owner: str | None) -> Job:
    options = build_options({
        "video": client_input(body.video_input, field="video_input", request=request, ctx=ctx),
        "face": client_input(body.source_img, field="source_img", request=request, ctx=ctx),
        "target_faces": body.input_faces_index,
        "source_faces": body.source_faces_index,
        "order": "left_to_right",
        "target_gender": "any" if body.detect_gender_input == "no" else body.detect_gender_input,
        "source_gender": "any" if body.detect_gender_source == "no" else body.detect_gender_source,
        "frame_cap": body.frame_load_cap,
        "restore": "codeformer" if _wants_restore(body, ctx) else "none",
        "codeformer_weight": body.codeformer_weight,
        "restore_visibility": body.face_restore_visibility,
        "engine": body.engine,
        **quality_options(body),
    }, _NAMES)
    return ctx.service.submit(options, dialect=DIALECT, owner=owner, meta={"base64": body.base_64})


def _wants_restore(body: VideoFaceSwapRequest, ctx: ApiContext) -> bool:
    if body.face_restore is not None:
        return body.face_restore
    from faceswap.restore import RESTORER_MODELS

    return ctx.service.runtime.models.present(RESTORER_MODELS["codeformer"])


def _with_failure(job: Job, body: dict[str, Any]) -> JSONResponse:
    if body["status"] == "FAILED":
        body["error"] = (job.error or {}).get("message", "The request failed.")
        body["error_code"] = (job.error or {}).get("code", "internal_error")
        return JSONResponse(body, status_code=422)
    return JSONResponse(body)


def _job_error(job: Job) -> FaceSwapError:
    error = job.error or {}
    code = error.get("code", "internal_error")
    try:
        return FaceSwapError(code, error.get("message"))
    except KeyError:
        return FaceSwapError("internal_error")


def _metrics(job: Job) -> dict[str, Any]:
    report = job.report or {}
    queued_s = (job.started_at - job.created_at).total_seconds() if job.started_at else None
    run_s = (job.finished_at - job.started_at).total_seconds() if job.started_at and job.finished_at else None
    return {"queue_time": queued_s, "inference_time": run_s, "engine": job.engine,
            "frames": report.get("frames"), "frames_swapped": report.get("frames_swapped"),
            "coverage": report.get("coverage")}
